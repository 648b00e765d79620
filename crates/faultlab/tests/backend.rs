//! The well-behaved backend: every route, keep-alive, streaming with hold/release, uploads, TLS.

mod common;

use std::io;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use waygate_faultlab::{Backend, CHUNK, TestPki, pattern};

#[tokio::test]
async fn hello_on_any_path_with_backend_header() {
    let b = Backend::new("b1").spawn(local()).await.unwrap();
    let (resp, body) = get(b.addr(), "/anything/at/all?x=1").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-backend"], "b1");
    assert_eq!(body, "hello from b1\n");
}

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let b = Backend::new("ka").spawn(local()).await.unwrap();
    let mut send = http1(TcpStream::connect(b.addr()).await.unwrap()).await;
    for _ in 0..2 {
        let (resp, _) = collect(within(send.send_request(get_req("/"))).await.unwrap()).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(b.stats().connections_accepted(), 1);
    assert_eq!(b.stats().requests_served(), 2);
}

#[tokio::test]
async fn echo_reports_the_request() {
    let b = Backend::new("echoer").spawn(local()).await.unwrap();
    let mut send = http1(TcpStream::connect(b.addr()).await.unwrap()).await;
    let req = Request::post("/echo?a=1&b=2")
        .header("host", "localhost")
        .header("x-test", "one")
        .header("x-test", "two")
        .body(Full::new(Bytes::from_static(b"hello body")))
        .unwrap();
    let (resp, body) = collect(within(send.send_request(req)).await.unwrap()).await;
    assert_eq!(resp.headers()["x-backend"], "echoer");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["backend"], "echoer");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["uri"], "/echo?a=1&b=2");
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["headers"]["x-test"], serde_json::json!(["one", "two"]));
    assert_eq!(v["body"], "hello body");
    assert_eq!(v["body_bytes"], 10);
    assert_eq!(v["trailers"], serde_json::json!({}));
}

#[tokio::test]
async fn echo_keeps_only_a_prefix_but_counts_everything_and_sees_trailers() {
    let b = Backend::new("e").spawn(local()).await.unwrap();
    let total = 200 * 1024;
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{total:x}\r\n"
    )
    .into_bytes();
    req.extend(std::iter::repeat_n(b'z', total));
    req.extend_from_slice(b"\r\n0\r\nx-sum: 42\r\n\r\n");
    let mut stream = send_raw(b.addr(), &req).await;
    let (head, mut rest) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    rest.extend(read_all(&mut stream).await.unwrap());
    let v: Value = serde_json::from_slice(&rest).unwrap();
    assert_eq!(v["body_bytes"], total);
    assert_eq!(v["body"].as_str().unwrap().len(), waygate_faultlab::ECHO_PREFIX);
    assert_eq!(v["trailers"]["x-sum"], serde_json::json!(["42"]));
    assert_eq!(b.stats().body_bytes_received(), total as u64);
}

#[tokio::test]
async fn expect_100_continue_is_answered() {
    let b = Backend::new("c").spawn(local()).await.unwrap();
    let head =
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n";
    let mut stream = send_raw(b.addr(), head).await;
    let (interim, rest) = read_head(&mut stream).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    assert!(rest.is_empty());
    stream.write_all(b"hello").await.unwrap();
    let all = read_all(&mut stream).await.unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"body_bytes\":5"), "{text}");
}

#[tokio::test]
async fn status_delay_trailers_keepalive_routes() {
    let b = Backend::new("r").spawn(local()).await.unwrap();

    let (resp, body) = get(b.addr(), "/status/418").await;
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.headers()["x-backend"], "r");
    assert_eq!(body, "status 418\n");

    let started = std::time::Instant::now();
    let (resp, _) = get(b.addr(), "/delay/50").await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));

    let mut send = http1(TcpStream::connect(b.addr()).await.unwrap()).await;
    // hyper (HTTP/1) writes trailers only when the request says `TE: trailers`.
    let mut req = get_req("/trailers");
    req.headers_mut().insert("te", http::HeaderValue::from_static("trailers"));
    let resp = within(send.send_request(req)).await.unwrap();
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let collected = within(resp.into_body().collect()).await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-trailer"], "done");
    assert_eq!(collected.to_bytes(), "ok\n");
    within(b.stats().wait_until(|s| s.streams_completed() == 1)).await;

    let mut stream = send_raw(b.addr(), b"GET /trailers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    let raw = String::from_utf8(read_all(&mut stream).await.unwrap()).unwrap();
    assert!(raw.ends_with("3\r\nok\n\r\n0\r\n\r\n"), "without TE: trailers they are dropped: {raw}");

    let (resp, body) = get(b.addr(), "/keepalive/7").await;
    assert_eq!(resp.headers()["keep-alive"], "timeout=7");
    assert_eq!(body, "hello from r\n");
}

#[tokio::test]
async fn bytes_with_content_length_and_chunked() {
    let b = Backend::new("bytes").spawn(local()).await.unwrap();
    let n = 3 * CHUNK + 123;
    let (resp, body) = get(b.addr(), &format!("/bytes/{n}")).await;
    assert_eq!(resp.headers()["content-length"], n.to_string().as_str());
    assert_eq!(body, Bytes::from(pattern(n)));

    let (resp, body) = get(b.addr(), &format!("/bytes/{n}?chunked=1")).await;
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(body.len(), n);
    within(b.stats().wait_until(|s| s.streams_completed() == 2)).await;
    assert_eq!(b.stats().body_bytes_sent(), 2 * n as u64);
}

#[tokio::test]
async fn bytes_hold_sends_one_chunk_until_released() {
    let b = Backend::new("hold").spawn(local()).await.unwrap();
    let n = 4 * CHUNK;
    let mut send = http1(TcpStream::connect(b.addr()).await.unwrap()).await;
    let resp = within(send.send_request(get_req(&format!("/bytes/{n}?hold=1")))).await.unwrap();
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while got.len() < CHUNK {
        let frame = within(body.frame()).await.expect("frame").unwrap();
        got.extend_from_slice(&frame.into_data().unwrap());
    }
    // The client holds the whole first chunk; the server cannot have produced more before release().
    assert_eq!(got.len(), CHUNK);
    assert_eq!(b.stats().body_bytes_sent(), CHUNK as u64);
    assert_eq!(b.stats().streams_completed(), 0);

    b.release();
    while let Some(frame) = within(body.frame()).await {
        got.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(got, pattern(n));
    within(b.stats().wait_until(|s| s.streams_completed() == 1)).await;
}

#[tokio::test]
async fn upload_counts_ten_megabytes_while_streaming() {
    let b = Backend::new("up").spawn(local()).await.unwrap();
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut send = http1(TcpStream::connect(b.addr()).await.unwrap()).await;
    let total = 10 * 1024 * 1024;
    let req = Request::post("/upload")
        .header("host", "localhost")
        .header("content-length", total)
        .body(ChanBody(rx))
        .unwrap();
    let response = tokio::spawn(send.send_request(req));
    let chunk = Bytes::from(vec![b'u'; CHUNK]);
    for _ in 0..total / CHUNK / 2 {
        tx.send(chunk.clone()).await.unwrap();
    }
    // Half the body is out and the request is not complete: the backend has consumed (not waited for) it.
    let half = total as u64 / 2 - 4 * CHUNK as u64;
    within(b.stats().wait_until(|s| s.body_bytes_received() >= half)).await;
    assert!(!response.is_finished());
    for _ in 0..total / CHUNK / 2 {
        tx.send(chunk.clone()).await.unwrap();
    }
    drop(tx);
    let resp = within(response).await.unwrap().unwrap();
    let (_, body) = collect(resp).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["body_bytes"], total);
    assert_eq!(b.stats().body_bytes_received(), total as u64);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let b = Backend::new("gone").spawn(local()).await.unwrap();
    let addr = b.addr();
    let (resp, _) = get(addr, "/").await;
    assert_eq!(resp.status(), 200);
    b.shutdown().await;
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn drop_closes_open_connections() {
    let b = Backend::new("dropped").spawn(local()).await.unwrap();
    let mut stream = send_raw(b.addr(), GET).await;
    let _ = read_head(&mut stream).await;
    drop(b);
    // The connection task is aborted: the client sees EOF (or a reset), not a hang.
    let _ = read_all(&mut stream).await;
}

#[tokio::test]
async fn tls_backend_serves_http1_and_h2() {
    let pki = TestPki::new();
    let b = Backend::new("secure").tls(pki.valid()).spawn(local()).await.unwrap();

    for name in ["localhost", "127.0.0.1"] {
        let tls = tls_connect(b.addr(), pki.client_config(), name).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut send = http1(tls).await;
        let (resp, body) = collect(within(send.send_request(get_req("/"))).await.unwrap()).await;
        assert_eq!(resp.headers()["x-backend"], "secure");
        assert_eq!(body, "hello from secure\n");
    }

    let mut h2 = (*pki.client_config()).clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tls_connect(b.addr(), std::sync::Arc::new(h2), "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://localhost/echo").body(http_body_util::Empty::<Bytes>::new()).unwrap();
    let (_, body) = collect(within(send.send_request(req)).await.unwrap()).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["version"], "HTTP/2.0");
}
