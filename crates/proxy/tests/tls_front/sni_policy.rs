//! Certificates by SNI (exact names, wildcards, the default) and ALB security policies, with rustls clients and
//! `openssl s_client`.

use super::*;

/// Three certificates: the first (`localhost`) is the default; `b.test` by its name; `*.w.test` covers one
/// label under `w.test`. What ALB serves for each name, rustls and openssl agree.
#[tokio::test]
async fn certificates_are_chosen_by_sni() {
    let mut ids = Vec::new();
    let front = start(
        "sni",
        |pki| {
            ids = vec![
                pki.server("default", &["localhost", "127.0.0.1"]),
                pki.server("b", &["b.test"]),
                pki.server("wild", &["*.w.test"]),
            ];
            certificates(&ids.iter().collect::<Vec<_>>())
        },
        "",
    )
    .await;
    let config = client(front.pki.roots(), BOTH, &[b"http/1.1"], None);
    for (sni, served) in [("b.test", "b.test"), ("x.w.test", "*.w.test"), ("localhost", "localhost")] {
        let tls = connect(front.addr, config.clone(), sni).await.unwrap_or_else(|e| panic!("{sni}: {e}"));
        assert_eq!(served_name(&tls), served, "SNI {sni}");
        let echo = echo_over(tls, &[]).await.unwrap();
        assert_eq!(echo["headers"]["x-forwarded-proto"][0], "https");
    }
    // Names no certificate covers get the default, which the client then rejects for its name.
    for sni in ["a.b.w.test", "w.test", "other.test"] {
        let err = connect(front.addr, config.clone(), sni).await.expect_err(sni);
        assert!(err.to_string().contains("only valid for DnsName(\"localhost\")"), "{sni}: {err}");
    }
    let ca = front.pki.ca_file("server");
    for (sni, cn) in [("b.test", "CN=b.test"), ("y.w.test", "CN=*.w.test"), ("nothing.test", "CN=localhost")] {
        let Some((_, out)) = openssl(s_client(front.addr, &ca, &["-servername", sni])).await else { return };
        let subject = out.lines().find(|l| l.starts_with("subject=")).unwrap_or_else(|| panic!("{out}"));
        assert!(subject.replace(' ', "").ends_with(cn), "{sni}: {subject}");
    }
}

/// A single `tls = { cert, key }` still works, with ALB's default policy: TLS 1.2 and 1.3.
#[tokio::test]
async fn one_certificate_and_the_default_policy() {
    let front = start(
        "single",
        |pki| {
            let id = pki.server("only", &["localhost"]);
            format!("cert = \"{}\"\nkey = \"{}\"\n", id.cert.display(), id.key.display())
        },
        "",
    )
    .await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let tls = connect(front.addr, client(front.pki.roots(), &[version], &[], None), "localhost").await.unwrap();
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
        echo_over(tls, &[]).await.unwrap();
    }
}

/// ELBSecurityPolicy-TLS13-1-3-2021-06: a TLS 1.2-only client (rustls, `openssl s_client -tls1_2`) is refused,
/// and the connection log says why; TLS 1.3 is served.
#[tokio::test]
async fn a_tls13_only_policy_refuses_tls12_and_says_why() {
    let front = start(
        "tls13",
        |pki| {
            let id = pki.server("only", &["localhost"]);
            format!("{}policy = \"ELBSecurityPolicy-TLS13-1-3-2021-06\"\n", certificates(&[&id]))
        },
        "",
    )
    .await;
    let tls12 = client(front.pki.roots(), &[&rustls::version::TLS12], &[], None);
    assert!(connect(front.addr, tls12, "localhost").await.is_err());
    let line = conn_line(&front.dir, |l| l.contains("Failed:")).await;
    assert!(line.contains(" - - - - - - Failed:NoSharedProtocolVersion TID_"), "{line}");
    let tls13 = client(front.pki.roots(), &[&rustls::version::TLS13], &[], None);
    let tls = connect(front.addr, tls13, "localhost").await.unwrap();
    let cipher = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    echo_over(tls, &[]).await.unwrap();
    // The client's own order does not matter: the policy's first suite is chosen.
    assert_eq!(cipher, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let ok = conn_line(&front.dir, |l| l.contains("Success")).await;
    assert!(ok.contains(" TLSv1.3 TLS_AES_128_GCM_SHA256 "), "{ok}");
    let metrics = front.gw.metrics().encode();
    let refused = common::metric(
        &metrics,
        "waygate_client_tls_negotiation_errors_total",
        &[("listener", "public"), ("cause", "NoSharedProtocolVersion")],
    );
    assert_eq!(refused, 1.0, "{metrics}");
    let ca = front.pki.ca_file("server");
    if let Some((ok, out)) = openssl(s_client(front.addr, &ca, &["-tls1_2", "-servername", "localhost"])).await {
        assert!(!ok, "openssl -tls1_2 connected:\n{out}");
        conn_line(&front.dir, |l| l.contains("Failed:NoSharedProtocolVersion") && !l.contains(&line)).await;
    }
}

/// ELBSecurityPolicy-FS-1-2-Res-2020-10: TLS 1.2 with the ECDHE GCM suites only; a TLS 1.3-only client is
/// refused, and a client offering only ChaCha20 finds no shared cipher.
#[tokio::test]
async fn a_tls12_policy_serves_its_ciphers_only() {
    let front = start(
        "fs12",
        |pki| {
            let id = pki.server("only", &["localhost"]);
            format!("{}policy = \"ELBSecurityPolicy-FS-1-2-Res-2020-10\"\n", certificates(&[&id]))
        },
        "",
    )
    .await;
    let tls13 = client(front.pki.roots(), &[&rustls::version::TLS13], &[], None);
    assert!(connect(front.addr, tls13, "localhost").await.is_err());
    let tls = connect(front.addr, client(front.pki.roots(), BOTH, &[], None), "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let suite = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    assert_eq!(suite, rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
    drop(tls);
    let mut chacha_only = waygate_faultlab::crypto_provider().as_ref().clone();
    chacha_only
        .cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(chacha_only))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(front.pki.roots())
        .with_no_client_auth();
    assert!(connect(front.addr, Arc::new(config), "localhost").await.is_err());
    conn_line(&front.dir, |l| l.contains("Failed:NoSharedCipher")).await;
    let ca = front.pki.ca_file("server");
    if let Some((ok, out)) =
        openssl(s_client(front.addr, &ca, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"])).await
    {
        assert!(ok, "{out}");
        assert!(out.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "{out}");
    }
}

/// ALPN h2 is HTTP/2 only: an HTTP/1.1 request on it gets the server preface and GOAWAY(PROTOCOL_ERROR), not
/// an HTTP/1 answer; ALPN http/1.1 is served as HTTP/1.1, and h2 as HTTP/2.
#[tokio::test]
async fn alpn_h2_means_http2_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let front = start("alpn", |pki| certificates(&[&pki.server("only", &["localhost"])]), "").await;
    let h2 = client(front.pki.roots(), BOTH, &[b"h2"], None);
    let mut tls = connect(front.addr, h2.clone(), "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let _ = common::within("the gateway to close", tls.read_to_end(&mut got)).await;
    assert!(!got.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&got));
    // SETTINGS (type 4) on stream 0, then GOAWAY (type 7): last stream 0, error PROTOCOL_ERROR (1).
    assert_eq!(&got[3..5], &[0x4, 0], "{got:?}");
    assert_eq!(&got[9..], &[0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "{got:?}");
    let tls = connect(front.addr, h2, "localhost").await.unwrap();
    let resp = common::h2_over(tls, common::h2_request("https", "localhost", "/echo")).await;
    assert_eq!(resp.version, http::Version::HTTP_2);
    let tls = connect(front.addr, client(front.pki.roots(), BOTH, &[b"http/1.1"], None), "localhost").await.unwrap();
    assert_eq!(echo_over(tls, &[]).await.unwrap()["version"], "HTTP/1.1");
}

/// The certificates' expiry is a metric, by listener and name.
#[tokio::test]
async fn certificate_expiry_is_a_metric() {
    let front =
        start("expiry", |pki| certificates(&[&pki.server("a", &["a.test"]), &pki.server("b", &["b.test"])]), "").await;
    let text = front.gw.metrics().encode();
    for name in ["a.test", "b.test"] {
        let left = common::metric(
            &text,
            "waygate_listener_certificate_expiry_seconds",
            &[("listener", "public"), ("name", name)],
        );
        // rcgen's default validity runs to 4096: far beyond a year.
        assert!(left > 365.0 * 86_400.0, "{name}: {left}\n{text}");
    }
}

/// Session resumption is on: a client's second connection resumes its first session, with TLS 1.3 tickets
/// and TLS 1.2 tickets alike.
#[tokio::test]
async fn sessions_resume() {
    let front = start("resume", |pki| certificates(&[&pki.server("only", &["localhost"])]), "").await;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client(front.pki.roots(), &[version], &[b"http/1.1"], None);
        let first = connect(front.addr, config.clone(), "localhost").await.unwrap();
        assert_eq!(first.get_ref().1.handshake_kind(), Some(rustls::HandshakeKind::Full));
        // A request read to its end: TLS 1.3 tickets arrive after the handshake.
        echo_over(first, &[]).await.unwrap();
        let second = connect(front.addr, config, "localhost").await.unwrap();
        assert_eq!(second.get_ref().1.handshake_kind(), Some(rustls::HandshakeKind::Resumed), "{version:?}");
        echo_over(second, &[]).await.unwrap();
    }
}
