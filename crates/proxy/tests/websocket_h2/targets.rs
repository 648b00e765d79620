//! Which targets of an http2 group carry a WebSocket: one whose SETTINGS lack extended CONNECT is tried once per
//! request (another target of the group may take the retry), and https targets carry it on a stream of an h2
//! connection negotiated by ALPN, or name the target that did not offer h2.

use std::sync::Arc;

use futures_util::StreamExt as _;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{WebSocketStream, client_async};
use waygate_faultlab::{TestPki, WsH2Target};

use super::{echo_twice, h2_config, line};
use crate::common::*;

/// The attempts the access log lists for a request.
fn attempts(l: &serde_json::Value) -> Vec<&str> {
    l["target_port_list"].as_array().unwrap_or_else(|| panic!("{l}")).iter().map(|t| t.as_str().unwrap()).collect()
}

/// A WebSocket through the gateway at `addr` that the gateway refuses: its answer.
async fn refused(addr: std::net::SocketAddr) -> http::Response<Option<Vec<u8>>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err:?}") };
    *resp
}

/// Extended CONNECT is a property of the target (its SETTINGS), not a transient fault: the group's retries do
/// not go back to it, so the 502 comes after one attempt.
#[tokio::test]
async fn a_target_without_extended_connect_is_tried_once() {
    let target = WsH2Target::NoExtendedConnect.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-once");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let resp = refused(addr).await;
    assert_eq!(resp.status(), 502);
    assert!(resp.headers()["proxy-status"].to_str().unwrap().contains("TargetExtendedConnectDisabled"));
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!(attempts(l), [target.addr().to_string()], "one attempt: {l}");
    assert_eq!(l["error_reason"], "TargetExtendedConnectDisabled", "{l}");
    assert_eq!(target.stats().connections_accepted(), 1, "no fresh connection to ask again");
}

/// A group that mixes targets: a WebSocket that met one without extended CONNECT goes on to one with it.
#[tokio::test]
async fn a_websocket_goes_on_to_a_target_with_extended_connect() {
    let without = WsH2Target::NoExtendedConnect.spawn(loopback()).await.unwrap();
    let with = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-mixed");
    let config = simple_config(&[without.addr(), with.addr()], "protocol_version = \"http2\"\n").replacen(
        "[[listener]]",
        &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
        1,
    );
    let (gw, addr) = gateway(&config).await;
    // Round robin starts every other request on the target without: two requests meet it at least once.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
        assert_eq!(resp.status(), 101);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
        echo_twice(&mut ws).await;
        ws.close(None).await.unwrap();
        while within("the close", ws.next()).await.is_some() {}
    }
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let (without, with) = (without.addr().to_string(), with.addr().to_string());
    let mut retried = 0;
    for id in &ids {
        let l = line(&lines, id);
        assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some("ws"), Some(101)), "{l}");
        match attempts(l).as_slice() {
            [only] if *only == with => {}
            [first, second] if *first == without && *second == with => retried += 1,
            other => panic!("{other:?}: {l}"),
        }
    }
    assert!(retried >= 1, "a WebSocket met the target without extended CONNECT first");
}

/// The group keys of an https http2 group trusting `pki`'s CA (written to a directory of its own).
fn https(pki: &TestPki) -> String {
    let ca = tempdir("ws-h2-ca").join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", ca.display())
}

/// An https target that selects h2 by ALPN: an HTTP/1.1 WebSocket and an HTTP/2 client's extended CONNECT both
/// open on streams of its TLS connection, echo both ways and close.
#[tokio::test]
async fn websockets_reach_an_http2_target_over_tls() {
    let pki = TestPki::new();
    let target = WsH2Target::Echo.spawn_tls(loopback(), pki.valid().server_config()).await.unwrap();
    let dir = tempdir("ws-h2-tls");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), &https(&pki))).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
    assert_eq!(resp.status(), 101);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    echo_twice(&mut ws).await;
    ws.close(None).await.unwrap();
    while within("the close", ws.next()).await.is_some() {}

    let resp = h2_connect(addr, "/chat").await;
    assert_eq!(resp.status(), 200, "{resp:?}");
    let upgraded = within("the stream", hyper::upgrade::on(resp)).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    echo_twice(&mut ws).await;
    ws.close(None).await.unwrap();
    while within("the close", ws.next()).await.is_some() {}
    assert_eq!(target.stats().connections_accepted(), 1, "both on streams of one TLS connection");

    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!((l["type"].as_str(), l["target_status_code"].as_u64()), (Some("ws"), Some(200)), "{l}");
    assert!(l["error_reason"].is_null(), "{l}");
    let tunnels = lines.iter().filter(|l| l["type"] == "ws" && l["elb_status_code"] == 200).count();
    assert_eq!(tunnels, 1, "the HTTP/2 client's tunnel: {lines:?}");
}

/// An https target whose ALPN offers only http/1.1 cannot carry a stream: the WebSocket is the existing
/// TargetHttp2NotNegotiated, as any request to it.
#[tokio::test]
async fn a_tls_target_without_h2_by_alpn_is_target_http2_not_negotiated() {
    let pki = TestPki::new();
    let mut http1_only = (*pki.valid().server_config()).clone();
    http1_only.alpn_protocols = vec![b"http/1.1".to_vec()];
    let target = WsH2Target::Echo.spawn_tls(loopback(), Arc::new(http1_only)).await.unwrap();
    let dir = tempdir("ws-h2-tls-h1");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), &https(&pki))).await;
    let resp = refused(addr).await;
    assert_eq!(resp.status(), 502);
    let ps = resp.headers()["proxy-status"].to_str().unwrap();
    assert!(ps.contains("error=tls_protocol_error") && ps.contains("TargetHttp2NotNegotiated"), "{ps}");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!(l["error_reason"], "TargetHttp2NotNegotiated");
    // Its ALPN answer is the target's own: the group's retries do not ask it again.
    assert_eq!(attempts(l), [target.addr().to_string()], "one attempt: {l}");
    assert_eq!(target.stats().requests_served(), 0);
}
