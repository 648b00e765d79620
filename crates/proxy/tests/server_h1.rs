//! The gateway's own HTTP/1 server on a real socket: what RFC 9110/9112 require of it and the catalogue's
//! cause on every refusal, with the fault lab's backend behind it.

mod common;

use std::net::SocketAddr;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::Backend;
use waygate_faults::Cause;

/// Sends `raw` and reads everything until the gateway closes the connection.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    within("the gateway closes", tcp.read_to_end(&mut out)).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ").filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok()).collect()
}

async fn backend_gateway() -> (Backend, waygate_faultlab::Running, waygate_proxy::Gateway, SocketAddr) {
    let backend = Backend::new("b");
    let running = backend.clone().spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[running.addr()], "")).await;
    (backend, running, gw, addr)
}

#[tokio::test]
async fn connect_gets_405_with_allow_and_its_cause() {
    let (_b, running, _gw, addr) = backend_gateway().await;
    let text = exchange(addr, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n").await;
    assert_eq!(statuses(&text), [405], "{text}");
    assert!(text.contains("allow: GET, HEAD, POST"), "{text}");
    assert!(text.contains(&format!("details=\"{}\"", Cause::ClientMethodNotAllowed.name())), "{text}");
    assert_eq!(running.stats().requests_served(), 0);
}

#[tokio::test]
async fn host_rules_are_enforced_and_http_1_0_gets_the_listeners_address() {
    let (_b, running, _gw, addr) = backend_gateway().await;
    for raw in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"] {
        let text = exchange(addr, raw).await;
        assert_eq!(statuses(&text), [400], "{text}");
        assert!(text.contains("details=\"ClientRequestMalformed\""), "{text}");
    }
    assert_eq!(running.stats().requests_served(), 0);
    let text = exchange(addr, b"GET /echo HTTP/1.0\r\n\r\n").await;
    assert_eq!(statuses(&text), [200], "{text}");
    assert!(text.contains(&format!("\"host\":[\"{addr}\"]")), "the target sees the listener's address: {text}");
}

#[tokio::test]
async fn a_malformed_chunk_size_is_400_not_460() {
    let (_b, _running, _gw, addr) = backend_gateway().await;
    let text =
        exchange(addr, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            .await;
    assert_eq!(statuses(&text), [400], "{text}");
    assert!(text.contains("details=\"ClientRequestMalformed\""), "{text}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_head_has_no_body() {
    let (_b, _running, _gw, addr) = backend_gateway().await;
    let text = exchange(
        addr,
        b"GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /status/202 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&text), [201, 200, 200, 202], "{text}");
    let head_resp = &text[text.find("HTTP/1.1 200").unwrap()..];
    let after_head = &head_resp[head_resp.find("\r\n\r\n").unwrap() + 4..];
    assert!(after_head.starts_with("HTTP/1.1 200"), "HEAD's response has no body: {text}");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let (_b, _running, _gw, addr) = backend_gateway().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut first = [0u8; 25];
    within("100 Continue", tcp.read_exact(&mut first)).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    tcp.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    within("response", tcp.read_to_end(&mut rest)).await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert_eq!(statuses(&rest), [200], "{rest}");
    assert!(rest.contains("hello"), "the target got the body: {rest}");
}

#[tokio::test]
async fn a_trailing_dot_routes_like_the_name_without_it() {
    let api = Backend::new("api").spawn(loopback()).await.unwrap();
    let app = Backend::new("app").spawn(loopback()).await.unwrap();
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"app\"\n[[listener.rule]]\npriority = 1\nhost = \"api.example.com\"\n\
         target_group = \"api\"\n[[target_group]]\nname = \"app\"\ntargets = [\"{}\"]\n\
         [target_group.health_check]\nenabled = false\n[[target_group]]\nname = \"api\"\ntargets = [\"{}\"]\n\
         [target_group.health_check]\nenabled = false\n",
        app.addr(),
        api.addr()
    );
    let (_gw, addr) = gateway(&text).await;
    for host in ["api.example.com", "api.example.com.", "API.example.com.:8080"] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let resp = exchange(addr, raw.as_bytes()).await;
        assert!(resp.contains("hello from api"), "{host}: {resp}");
    }
}

/// Two X-Forwarded-For fields are one list (RFC 9110 §5.3): the target gets both, in order, then the client.
#[tokio::test]
async fn every_x_forwarded_for_field_reaches_the_target() {
    let (_b, _running, _gw, addr) = backend_gateway().await;
    let text = exchange(
        addr,
        b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.contains("\"x-forwarded-for\":[\"203.0.113.9, 198.51.100.2, 127.0.0.1\"]"), "{text}");
}
