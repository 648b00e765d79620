//! `chosen_cert_arn`: the access log names the certificate the client's hello chose (by SNI, the default without
//! one), on a full handshake and on a resumed session alike (TLS 1.3 and 1.2), where no certificate is sent.
//! That sessions resume at all is `sni_policy::sessions_resume`'s test.

use rustls::HandshakeKind;

use super::*;

/// One request over a new connection; the connection's handshake kind and the response's request id.
async fn one_request(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> (Option<HandshakeKind>, String) {
    let tls = connect(addr, config, sni).await.unwrap_or_else(|e| panic!("{sni}: {e}"));
    let kind = tls.get_ref().1.handshake_kind();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder().uri("/echo").header("host", "localhost");
    let resp =
        common::within("a response", send.send_request(req.body(Full::new(Bytes::new())).unwrap())).await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Reading the whole response also reads the session tickets the server sent after its handshake.
    resp.into_body().collect().await.unwrap();
    (kind, id)
}

#[tokio::test]
async fn chosen_cert_arn_names_the_certificate_and_tickets_resume_sessions() {
    let access = tempdir("session-access");
    let mut ids = Vec::new();
    let front = start(
        "session",
        |pki| {
            ids = vec![pki.server("default", &["localhost", "127.0.0.1"]), pki.server("b", &["b.test"])];
            certificates(&ids.iter().collect::<Vec<_>>())
        },
        &format!("[access_log]\ndir = \"{}\"\n", access.display()),
    )
    .await;
    let arn = |i: usize| format!("file:{}", ids[i].cert.display());
    let mut expected = Vec::new();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One client config per version: its session store is where the tickets are kept.
        let config = client(front.pki.roots(), &[version], &[b"http/1.1"], None);
        let (first, id) = one_request(front.addr, config.clone(), "b.test").await;
        assert_eq!(first, Some(HandshakeKind::Full), "{version:?}: the first connection");
        expected.push((id, arn(1)));
        let (second, id) = one_request(front.addr, config.clone(), "b.test").await;
        assert_eq!(second, Some(HandshakeKind::Resumed), "{version:?}: the second connection resumes by ticket");
        expected.push((id, arn(1)));
        // No SNI (an address): the default certificate.
        let (_, id) = one_request(front.addr, config, "127.0.0.1").await;
        expected.push((id, arn(0)));
    }
    front.gw.shutdown(DEADLINE).await;
    let lines = common::function_lab::access_log(&access);
    for (id, arn) in &expected {
        let line = lines.get(id).unwrap_or_else(|| panic!("no access-log line for {id}: {lines:#?}"));
        assert_eq!(&line["chosen_cert_arn"], arn, "{id}");
        assert_eq!(line["type"], "https", "{id}");
    }
    assert_eq!(lines.values().filter(|l| l["domain_name"] == "b.test").count(), 4, "SNI b.test: 2 per version");
}
