//! Faults after the request is sent, poked with raw sockets (and hyper's client where its verdict matters).

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::{Fault, pattern, wire};

/// Sends one request on a fresh hyper connection and returns hyper's error.
async fn hyper_error(addr: std::net::SocketAddr) -> hyper::Error {
    let mut send = http1(TcpStream::connect(addr).await.unwrap()).await;
    within(send.send_request(get_req("/"))).await.expect_err("the response should be rejected")
}

#[tokio::test]
async fn close_before_response_sends_fin_without_a_byte() {
    let target = Fault::CloseBeforeResponse.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let mut buf = [0u8; 64];
    assert_eq!(within(stream.read(&mut buf)).await.unwrap(), 0);
    assert_eq!(target.stats().requests_served(), 1);
    assert!(hyper_error(target.addr()).await.is_incomplete_message());
}

#[tokio::test]
async fn close_before_response_stays_a_fin_even_with_a_request_body() {
    let target = Fault::CloseBeforeResponse.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello").await;
    let mut buf = [0u8; 64];
    assert_eq!(within(stream.read(&mut buf)).await.unwrap(), 0);
}

#[tokio::test]
async fn reset_before_response_sends_rst() {
    let target = Fault::ResetBeforeResponse.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let mut buf = [0u8; 64];
    let err = within(stream.read(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn malformed_status_line() {
    let target = Fault::MalformedStatusLine.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let reply = read_all(&mut stream).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 2OO OK\r\n"));
    assert!(hyper_error(target.addr()).await.is_parse());
}

#[tokio::test]
async fn malformed_header() {
    let target = Fault::MalformedHeader.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let reply = String::from_utf8(read_all(&mut stream).await.unwrap()).unwrap();
    assert!(reply.contains("\r\nx-bad header: 1\r\n"), "{reply}");
    assert!(hyper_error(target.addr()).await.is_parse());
}

#[tokio::test]
async fn huge_head_is_over_32_kib() {
    let target = Fault::HugeHead.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let reply = read_all(&mut stream).await.unwrap();
    assert_eq!(reply, wire::huge_head());
    let head_len = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(head_len > 60 * 1024 && head_len < 70 * 1024, "{head_len}");
}

#[tokio::test]
async fn slow_head_answers_after_the_delay() {
    let delay = Duration::from_millis(300);
    let target = Fault::SlowHead(delay).spawn(local()).await.unwrap();
    let started = Instant::now();
    let mut stream = send_raw(target.addr(), GET).await;
    within(target.stats().wait_until(|s| s.requests_served() == 1)).await;
    let (head, _) = read_head(&mut stream).await;
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
}

#[tokio::test]
async fn truncated_body_closes_after_100_of_1000_bytes() {
    let target = Fault::TruncatedBody.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let (head, mut body) = read_head(&mut stream).await;
    assert!(head.contains(&format!("content-length: {}\r\n", wire::PROMISED_BODY)), "{head}");
    body.extend(read_all(&mut stream).await.unwrap());
    assert_eq!(body, pattern(wire::SENT_BODY));
    assert_eq!(target.stats().body_bytes_sent(), wire::SENT_BODY as u64);

    let mut send = http1(TcpStream::connect(target.addr()).await.unwrap()).await;
    let resp = within(send.send_request(get_req("/"))).await.unwrap();
    let err = within(http_body_util::BodyExt::collect(resp.into_body())).await.unwrap_err();
    assert!(format!("{err:?}").contains("IncompleteBody"), "{err:?}");
}

#[tokio::test]
async fn stalled_body_goes_silent_until_released() {
    let target = Fault::StalledBody.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let (head, mut body) = read_head(&mut stream).await;
    assert!(head.contains("content-length: 1000\r\n"), "{head}");
    while body.len() < wire::SENT_BODY {
        let mut buf = [0u8; 1024];
        let n = within(stream.read(&mut buf)).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(body, pattern(wire::SENT_BODY));
    // Silence is the behaviour under test: nothing more arrives, the connection stays open.
    let mut buf = [0u8; 1024];
    let more = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(more.is_err(), "expected silence, got {more:?}");

    target.release();
    body.extend(read_all(&mut stream).await.unwrap());
    assert_eq!(body, pattern(wire::PROMISED_BODY));
    within(target.stats().wait_until(|s| s.streams_completed() == 1)).await;
}

#[tokio::test]
async fn stalled_body_connection_ends_when_the_client_leaves() {
    let target = Fault::StalledBody.spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    let _ = read_head(&mut stream).await;
    drop(stream);
    within(target.stats().wait_until(|s| s.connections_closed() == 1)).await;
}

#[tokio::test]
async fn keepalive_closer_serves_keep_alive_then_closes_idle_connections() {
    let idle = Duration::from_millis(200);
    let target = Fault::KeepAliveCloser(idle).spawn(local()).await.unwrap();
    let mut stream = send_raw(target.addr(), GET).await;
    for round in 0..2 {
        let (head, body) = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(!head.contains("connection:") && !head.contains("keep-alive:"), "{head}");
        let mut body = body;
        while body.len() < "hello from keepalive-closer\n".len() {
            let mut buf = [0u8; 64];
            let n = within(stream.read(&mut buf)).await.unwrap();
            body.extend_from_slice(&buf[..n]);
        }
        if round == 0 {
            stream.write_all(GET).await.unwrap();
        }
    }
    assert_eq!(target.stats().connections_accepted(), 1);
    let idle_from = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(within(stream.read(&mut buf)).await.unwrap(), 0, "idle connection closed with FIN");
    assert!(idle_from.elapsed() >= idle - Duration::from_millis(20), "{:?}", idle_from.elapsed());
}

#[tokio::test]
async fn server_error_is_the_targets_own_503_on_a_keep_alive_connection() {
    let target = Fault::ServerError.spawn(local()).await.unwrap();
    let mut send = http1(TcpStream::connect(target.addr()).await.unwrap()).await;
    for _ in 0..2 {
        let (resp, body) = collect(within(send.send_request(get_req("/"))).await.unwrap()).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["x-backend"], "server-error");
        assert!(String::from_utf8_lossy(&body).contains("503 from the target itself"));
    }
    assert_eq!(target.stats().connections_accepted(), 1);
}
