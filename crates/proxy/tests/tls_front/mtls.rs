//! Mutual TLS in ALB's modes, every outcome: `verify` accepts a certificate from the trust store and sends
//! its fields to targets (a client's forged copies never pass), and refuses no certificate, an unknown CA, an
//! expired one (unless expiry is ignored) and a revoked one, each with its reason in the connection log and
//! the metric; `passthrough` sends the chain URL-encoded.

use super::*;

/// A front with `verify` against a trust store of `clients` CA (and `crl`, if any): returns the front and
/// the client CA.
async fn verifying(tag: &str, ignore_expiry: bool, revoked: &[u64]) -> (Front, Pki) {
    let dir = tempdir(&format!("{tag}-clients"));
    let clients = Pki::new(&dir, "clients");
    let mut store = std::fs::read_to_string(clients.ca_file("clients")).unwrap();
    if !revoked.is_empty() {
        store.push_str(&clients.crl(revoked));
    }
    let store_file = dir.join("trust-store.pem");
    std::fs::write(&store_file, store).unwrap();
    let front = start(
        tag,
        |pki| {
            format!(
                "{}mutual_authentication = {{ mode = \"verify\", trust_store = \"{}\", ignore_client_certificate_expiry = {ignore_expiry} }}\n",
                certificates(&[&pki.server("srv", &["localhost"])]),
                store_file.display()
            )
        },
        "",
    )
    .await;
    (front, clients)
}

/// A request with `cert` (or none): the target's view of it, or the failure.
async fn request_with(front: &Front, cert: Option<&Id>, headers: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let config = client(front.pki.roots(), BOTH, &[b"http/1.1"], cert);
    let tls = connect(front.addr, config, "localhost").await.map_err(|e| e.to_string())?;
    echo_over(tls, headers).await
}

fn refused(front: &Front, cause: &str) -> f64 {
    common::metric(
        &front.gw.metrics().encode(),
        "waygate_client_tls_negotiation_errors_total",
        &[("listener", "public"), ("cause", cause)],
    )
}

#[tokio::test]
async fn verify_sends_the_leaf_fields_and_refuses_each_bad_certificate_with_its_reason() {
    let (front, clients) = verifying("verify", false, &[]).await;
    let good = clients.client("good", "client-a", 0x1234, (2020, 2090));
    let forged = [("x-amzn-mtls-clientcert-subject", "CN=admin"), ("x-amzn-mtls-clientcert", "forged")];
    let echo = request_with(&front, Some(&good), &forged).await.unwrap();
    let h = &echo["headers"];
    assert_eq!(h["x-amzn-mtls-clientcert-subject"][0], "CN=client-a,O=Example Org", "{h}");
    assert_eq!(h["x-amzn-mtls-clientcert-issuer"][0], "CN=clients test CA", "{h}");
    assert_eq!(h["x-amzn-mtls-clientcert-serial-number"][0], "1234", "{h}");
    assert_eq!(h["x-amzn-mtls-clientcert-validity"][0], "NotBefore=2020-01-01T00:00:00Z;NotAfter=2090-01-01T00:00:00Z");
    let leaf = h["x-amzn-mtls-clientcert-leaf"][0].as_str().unwrap();
    assert!(leaf.starts_with("-----BEGIN%20CERTIFICATE-----%0A"), "{leaf}");
    assert!(h.get("x-amzn-mtls-clientcert").is_none(), "the client's forged chain header is dropped: {h}");
    let ok = conn_line(&front.dir, |l| l.contains("Success")).await;
    assert!(
        ok.contains(" \"CN=client-a,O=Example Org\" NotBefore=2020-01-01T00:00:00Z;NotAfter=2090-01-01T00:00:00Z 1234 Success TID_"),
        "{ok}"
    );

    let other = Pki::new(&front.dir.join("other"), "other");
    let cases = [
        (None, "ClientCertMissing", None),
        (Some(other.client("stranger", "stranger", 7, (2020, 2090))), "ClientCertUntrusted", Some("CN=stranger")),
        (Some(clients.client("old", "old-client", 8, (2020, 2021))), "ClientCertExpired", Some("CN=old-client")),
        (Some(clients.client("young", "young-client", 9, (2080, 2090))), "ClientCertNotYetValid", Some("CN=young")),
    ];
    for (cert, code, subject) in &cases {
        let err = request_with(&front, cert.as_ref(), &[]).await.expect_err(code);
        assert!(!err.contains("waygate"), "no internal detail reaches the client: {err}");
        let line = conn_line(&front.dir, |l| l.contains(&format!("Failed:{code} "))).await;
        if let Some(subject) = subject {
            assert!(line.contains(&format!("\"{subject}")), "{code}: the rejected certificate is named: {line}");
        }
        common::within("the refusal to be counted", async {
            while refused(&front, code) < 1.0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    assert_eq!(front.backend.stats().requests_served(), 1, "only the good client's request reached the target");
    let ca = front.pki.ca_file("server");
    let cert_args =
        ["-cert", good.cert.to_str().unwrap(), "-key", good.key.to_str().unwrap(), "-servername", "localhost"];
    if let Some((ok, out)) = openssl(s_client(front.addr, &ca, &cert_args)).await {
        assert!(ok, "{out}");
        assert!(out.contains("Verify return code: 0"), "{out}");
    }
}

#[tokio::test]
async fn verify_can_ignore_expiry_and_refuses_revoked_certificates() {
    let (front, clients) = verifying("revoked", true, &[66]).await;
    let old = clients.client("old", "old-client", 8, (2020, 2021));
    let echo = request_with(&front, Some(&old), &[]).await.unwrap();
    assert_eq!(echo["headers"]["x-amzn-mtls-clientcert-subject"][0], "CN=old-client,O=Example Org");
    let revoked = clients.client("revoked", "revoked-client", 66, (2020, 2090));
    request_with(&front, Some(&revoked), &[]).await.expect_err("a revoked certificate is refused");
    conn_line(&front.dir, |l| l.contains("Failed:ClientCertCrlHit") && l.contains("CN=revoked-client")).await;
    let fine = clients.client("fine", "fine-client", 67, (2020, 2090));
    request_with(&front, Some(&fine), &[]).await.unwrap();
}

#[tokio::test]
async fn passthrough_sends_the_chain_url_encoded() {
    let dir = tempdir("pass-clients");
    let anyone = Pki::new(&dir, "anyone");
    let front = start(
        "passthrough",
        |pki| {
            format!(
                "{}mutual_authentication = {{ mode = \"passthrough\" }}\n",
                certificates(&[&pki.server("srv", &["localhost"])])
            )
        },
        "",
    )
    .await;
    let cert = anyone.client("c", "any-client", 5, (2020, 2090));
    let echo = request_with(&front, Some(&cert), &[("x-amzn-mtls-clientcert-subject", "CN=forged")]).await.unwrap();
    let h = &echo["headers"];
    let pem = std::fs::read_to_string(&cert.cert).unwrap();
    let decoded = percent_decode(h["x-amzn-mtls-clientcert"][0].as_str().unwrap());
    assert_eq!(decoded, pem.replace("\r\n", "\n"), "{h}");
    assert!(h.get("x-amzn-mtls-clientcert-subject").is_none(), "{h}");
    // No certificate is fine too: no header then.
    let echo = request_with(&front, None, &[("x-amzn-mtls-clientcert", "forged")]).await.unwrap();
    assert!(echo["headers"].get("x-amzn-mtls-clientcert").is_none(), "{}", echo["headers"]);
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
