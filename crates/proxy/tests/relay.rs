//! Relaying: methods, headers, bodies streamed both ways, 100-continue, trailers, HTTP/2 clients.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::Backend;

const FIFTY_MB: u64 = 50 * 1024 * 1024;

#[tokio::test]
async fn get_is_relayed_with_forwarding_headers_and_request_id() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let req = Request::builder()
        .uri("/echo?x=1")
        .header("host", "app.example")
        .header("connection", "x-drop")
        .header("x-drop", "secret")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-for", "203.0.113.7")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = h1(addr, req).await;
    assert_eq!(resp.status, 200);
    let echo = resp.json();
    let h = &echo["headers"];
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["uri"], "/echo?x=1");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(h["host"][0], "app.example", "Host preserved");
    assert_eq!(h["x-forwarded-for"][0], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"][0], "http");
    assert_eq!(h["x-forwarded-port"][0], addr.port().to_string());
    assert!(h.get("x-drop").is_none() && h.get("keep-alive").is_none(), "hop-by-hop headers removed: {h}");
    let id = resp.header("x-request-id");
    assert!(id.starts_with("Root=1-") && id.len() == 40, "ALB trace-id form: {id}");
    assert_eq!(h["x-request-id"][0], id, "target sees the id the client gets");
    assert_eq!(h["x-amzn-trace-id"][0], id);
    assert_eq!(resp.header("x-backend"), "b1");
}

#[tokio::test]
async fn post_body_is_relayed() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let resp = h1(addr, request("POST", "/echo", "app.example", "hello, target")).await;
    assert_eq!(resp.status, 200);
    let echo = resp.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], "hello, target");
    assert_eq!(echo["body_bytes"], 13);
}

/// The target holds its 50 MB response after the first chunk until released: the client receiving the head and
/// first bytes while the target is blocked proves the gateway streams instead of buffering.
#[tokio::test]
async fn fifty_mb_download_is_streamed() {
    let backend = Backend::new("big").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = request("GET", &format!("/bytes/{FIFTY_MB}?hold=1"), "app.example", Bytes::new());
    let resp = within("response head", send.send_request(req)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = within("first body bytes", body.frame()).await.unwrap().unwrap().into_data().unwrap();
    assert!(!first.is_empty());
    assert!(backend.stats().body_bytes_sent() < FIFTY_MB, "target is still holding most of the body");
    assert_eq!(backend.stats().streams_completed(), 0);
    backend.release();
    let mut total = first.len() as u64;
    let mut last = first;
    while let Some(frame) = within("body", body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            total += data.len() as u64;
            last = data;
        }
    }
    assert_eq!(total, FIFTY_MB);
    let expected = waygate_faultlab::pattern(FIFTY_MB as usize);
    assert_eq!(&expected[expected.len() - last.len()..], &last[..], "content intact to the last byte");
}

/// The target must receive the first megabyte of an upload while the client still holds the rest.
#[tokio::test]
async fn fifty_mb_upload_is_streamed() {
    let backend = Backend::new("sink").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "app.example")
        .header("content-length", FIFTY_MB.to_string())
        .body(body)
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let pending = tokio::spawn(send.send_request(req));
    let chunk = Bytes::from(vec![b'u'; 1024 * 1024]);
    tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    within("target receives the first MB", backend.stats().wait_until(|s| s.body_bytes_received() >= 1024 * 1024))
        .await;
    for _ in 1..50 {
        tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    }
    drop(tx);
    let resp = within("upload response", pending).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["body_bytes"], FIFTY_MB);
}

/// `Expect: 100-continue` over raw TCP: the gateway must answer 100 before the client sends its body.
#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"POST /echo HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("100 Continue\r\n\r\n") {
        let n = within("100 Continue", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "connection closed before 100 Continue: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    tcp.write_all(b"howdy").await.unwrap();
    let mut rest = Vec::new();
    while !String::from_utf8_lossy(&rest).contains("\"body_bytes\":5") {
        let n = within("final response", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn h2c_prior_knowledge_client_is_served() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let resp = h2_over(tcp, h2_request("http", "app.example", "/echo")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.version, http::Version::HTTP_2);
    let echo = resp.json();
    assert_eq!(echo["version"], "HTTP/1.1", "targets are spoken to in HTTP/1.1");
    assert_eq!(echo["headers"]["host"][0], "app.example", "Host comes from :authority");
    assert!(resp.header("x-request-id").starts_with("Root=1-"));
}

/// The gateway's own answer on HTTP/2 (a refused target's 502) is framed as a relayed one: `Date` and
/// `Content-Length` set, its body whole, and no field HTTP/2 forbids (RFC 9113 §8.2.2).
#[tokio::test]
async fn the_gateways_own_http2_answer_has_date_and_length() {
    let dead = std::net::TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    let (_gw, addr) = gateway(&simple_config(&[dead], "retries = 0\n")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let resp = h2_over(tcp, h2_request("http", "app.example", "/x")).await;
    assert_eq!(resp.status, 502);
    assert_eq!(resp.version, http::Version::HTTP_2);
    assert!(resp.header("proxy-status").contains("TargetConnectionRefused"), "{:?}", resp.headers);
    assert!(httpdate::parse_http_date(resp.header("date")).is_ok(), "{:?}", resp.headers);
    assert_eq!(resp.header("content-length"), resp.body.len().to_string());
    for hop in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
        assert!(!resp.headers.contains_key(hop), "{hop}: {:?}", resp.headers);
    }
}

/// A gateway with, beside `public`, an HTTPS listener `tls` (the fault lab's valid certificate) forwarding to
/// `target`; returns the gateway and the `tls` listener's address.
async fn tls_gateway(target: std::net::SocketAddr, tag: &str) -> (waygate_proxy::Gateway, std::net::SocketAddr) {
    let files = waygate_faultlab::TestPki::shared().write_files(&tempdir(tag)).unwrap();
    let extra = format!(
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"app\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n",
        files.valid.cert.display(),
        files.valid.key.display()
    );
    let text = simple_config(&[target], "").replacen("[[target_group]]", &format!("{extra}[[target_group]]"), 1);
    let (gw, _) = gateway(&text).await;
    let addr = gw.local_addr("tls").await.unwrap();
    (gw, addr)
}

#[tokio::test]
async fn h2_over_tls_with_alpn_is_served_and_trailers_pass() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (_gw, addr) = tls_gateway(backend.addr(), "h2tls").await;
    let connector = tokio_rustls::TlsConnector::from(tls_client(&[b"h2", b"http/1.1"]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(h2_request("https", "localhost", "/echo")).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"][0], "https");
    let resp = send.send_request(h2_request("https", "localhost", "/trailers")).await.unwrap();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers relayed to the HTTP/2 client");
    assert_eq!(trailers["x-trailer"], "done");
    assert_eq!(collected.to_bytes(), "ok\n");
}

/// Plain HTTP sent to an HTTPS listener fails the handshake: the gateway closes the connection without serving
/// anything and counts the failure for the listener (ALB's ClientTLSNegotiationErrorCount).
#[tokio::test]
async fn a_failed_client_tls_handshake_is_counted_and_closed() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let (gw, addr) = tls_gateway(backend.addr(), "tlsfail").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    // A TLS alert at most, then the close; never an HTTP response.
    let _ = within("the gateway to close", tcp.read_to_end(&mut rest)).await;
    assert!(!rest.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&rest));
    let errors =
        || metric(&gw.metrics().encode(), "waygate_client_tls_negotiation_errors_total", &[("listener", "tls")]);
    within("the failure to be counted", async {
        while errors() < 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(errors(), 1.0);
    assert_eq!(backend.stats().connections_accepted(), 0, "nothing reached the target");
}

/// A client connection with no request in flight and no bytes for `idle_timeout` is closed by the gateway.
#[tokio::test]
async fn idle_client_connections_are_closed_after_idle_timeout() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let text = simple_config(&[backend.addr()], "")
        .replace("default_target_group", "idle_timeout = \"1s\"\ndefault_target_group");
    let (_gw, addr) = gateway(&text).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = within("response", tcp.read(&mut buf)).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_from = std::time::Instant::now();
    let n = within("idle close", tcp.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "the gateway closed the idle connection");
    assert!(idle_from.elapsed() >= std::time::Duration::from_millis(900), "not before idle_timeout");
}

/// After `client_keep_alive` a client connection is closed (gracefully: between requests). The configured
/// minimum is ALB's 60 s, so the test shortens the validated model directly.
#[tokio::test]
async fn client_connections_end_after_client_keep_alive() {
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let text = simple_config(&[backend.addr()], "");
    let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    config.listeners[0].client_keep_alive = std::time::Duration::from_secs(1);
    let gw = waygate_proxy::Gateway::start(config).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    let opened = std::time::Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let n = within("response", tcp.read(&mut buf)).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let n = within("keep-alive expiry", tcp.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "closed by the gateway");
    assert!(opened.elapsed() >= std::time::Duration::from_millis(900), "not before client_keep_alive");
}
