//! A debug session on a TLS listener: each exchange of a connection carries the connection's handshake as its
//! `client_tls` phase (before the request, with the version, cipher and SNI), the head's reading after it, and
//! a request on the kept-alive connection shows the same handshake further back.

use waygate_telemetry::debug::SessionSpec;

use super::*;

#[tokio::test]
async fn traced_exchanges_carry_their_connections_handshake() {
    let front = start("trace-tls", |pki| certificates(&[&pki.server("srv", &["localhost"])]), "").await;
    let sessions = front.gw.debug_sessions();
    let id = sessions.start(SessionSpec::parse(br#"{"filter": {"path_prefix": "/echo"}}"#).unwrap()).unwrap();
    let tls = connect(front.addr, client(front.pki.roots(), BOTH, &[b"http/1.1"], None), "localhost").await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    echo_on(&mut send, &[]).await.unwrap();
    echo_on(&mut send, &[]).await.unwrap();
    // The records reach the session as each exchange ends: polled with a deadline.
    let deadline = std::time::Instant::now() + DEADLINE;
    let view = loop {
        let view = sessions.get(&id).unwrap();
        if view.captured == 2 {
            break view;
        }
        assert!(std::time::Instant::now() < deadline, "{view:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling, with a deadline
    };
    front.gw.shutdown(DEADLINE).await;
    let exchanges = view.exchanges.unwrap();
    let tls_of = |n: usize| exchanges[n].phases.iter().find(|p| p.name == "client_tls").cloned().unwrap();
    let (first, second) = (tls_of(0), tls_of(1));
    assert!(first.start_ms < 0.0 && first.duration_ms > 0.0, "{first:?}");
    assert!(first.detail.contains("TLSv1.3") && first.detail.contains("SNI localhost"), "{first:?}");
    let head = exchanges[0].phases.iter().find(|p| p.name == "request_head").unwrap();
    assert!(
        head.start_ms >= first.start_ms + first.duration_ms - 0.001,
        "the head is read after the handshake: {head:?}"
    );
    // The same handshake, seen from the second request: further back.
    assert!((second.duration_ms - first.duration_ms).abs() < 0.001 && second.start_ms < first.start_ms, "{second:?}");
    assert_eq!(exchanges[1].exchange.ssl_protocol.as_deref(), Some("TLSv1.3"));
}
