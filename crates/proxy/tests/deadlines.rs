//! idle_timeout on every direction of a client connection (issue 24, item 1): a client that stops reading its
//! response, or stops sending its request body, is ended after idle_timeout with a client-side cause, logged
//! and counted, and the target's connection is released. Never a Target* cause.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::{Backend, Running};
use waygate_proxy::{Drain, Gateway};

/// A listener with a short idle_timeout in front of `target`, logging to `dir`.
fn config(target: &Running, dir: &Path) -> String {
    format!(
        "[access_log]\ndir = \"{}\"\nformat = \"json\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         idle_timeout = \"1s\"\ndefault_target_group = \"app\"\n[[target_group]]\nname = \"app\"\n\
         targets = [\"{}\"]\nretries = 0\n[target_group.health_check]\nenabled = false\n",
        dir.display(),
        target.addr()
    )
}

/// A gateway with a short idle_timeout in front of a well-behaved target, and a client connection that sent
/// `request` to it; the system log is captured.
struct Setup {
    logs: LogCapture,
    _guard: tracing::subscriber::DefaultGuard,
    target: Running,
    dir: std::path::PathBuf,
    gw: Gateway,
    tcp: TcpStream,
}

async fn setup(tag: &str, request: &[u8]) -> Setup {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let target = Backend::new(tag).spawn(loopback()).await.unwrap();
    let dir = tempdir(tag);
    let (gw, addr) = gateway(&config(&target, &dir)).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    Setup { logs, _guard, target, dir, gw, tcp }
}

/// Polls the gateway's metrics until `done` holds for them (a generous deadline, no sleeps as synchronisation).
async fn metrics_until(gw: &Gateway, what: &str, done: impl Fn(&str) -> bool) -> String {
    within(what, async {
        loop {
            let text = gw.metrics().encode();
            if done(&text) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Every access-log line written to `dir` (after the gateway's shutdown flushed them).
fn access_log(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    text
}

/// 32 MB asked for and never read: after idle_timeout (1 s) the connection is closed, the exchange ends with
/// ClientIdleTimeout (access log, metrics, system log) and the target's connection is closed. Before the fix
/// the connection and its target connection were held for as long as the client stayed.
#[tokio::test]
async fn an_http1_client_that_does_not_read_is_closed_after_idle_timeout() {
    let Setup { logs, _guard, target, dir, gw, mut tcp } =
        setup("idle-unread", b"GET /bytes/33554432 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    within("the target answers", target.stats().wait_until(|s| s.requests_served() >= 1)).await;
    let text = metrics_until(&gw, "the client's stream error", |t| {
        metric(t, "waygate_client_stream_errors_total", &[("cause", "ClientIdleTimeout")]) >= 1.0
    })
    .await;
    assert_eq!(metric(&text, "waygate_target_stream_errors_total", &[]), 0.0, "{text}");
    metrics_until(&gw, "the target connection closed", |t| {
        metric(t, "waygate_active_connections", &[("side", "target")]) == 0.0
    })
    .await;
    within("the target sees its connection closed", target.stats().wait_until(|s| s.connections_closed() >= 1)).await;
    assert!(target.stats().streams_completed() == 0, "the body was not sent whole");
    // The client's connection is closed: what the kernel buffered can be read, then the end.
    let mut sink = vec![0; 1 << 16];
    let mut read = 0usize;
    loop {
        match within("the client connection ends", tcp.read(&mut sink)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    assert!(read < 32 << 20, "the response was cut short ({read} bytes)");
    let line = logs.text().lines().find(|l| l.contains("cause=ClientIdleTimeout")).map(str::to_owned);
    assert!(line.is_some_and(|l| l.contains("WARN")), "{}", logs.text());
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let log = access_log(&dir);
    assert!(log.contains("\"ClientIdleTimeout\""), "{log}");
    assert!(!log.contains("\"Target"), "no target is blamed: {log}");
}

/// `Content-Length: 100000`, 3 bytes, then silence: after idle_timeout the client gets 408 ClientRequestTimeout
/// and the connection closes; the target's connection, which had the partial request, is closed. Before the fix
/// it never timed out.
#[tokio::test]
async fn a_stalled_request_body_ends_with_408_after_idle_timeout() {
    let request = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc";
    let Setup { logs, _guard, target, dir, gw, mut tcp } = setup("idle-stalled", request).await;
    let mut answer = Vec::new();
    within("the 408 and the end of the connection", tcp.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("ClientRequestTimeout") && answer.contains("connection: close"), "{answer}");
    within("the target sees its connection closed", target.stats().wait_until(|s| s.connections_closed() >= 1)).await;
    let text = metrics_until(&gw, "the target connection closed", |t| {
        metric(t, "waygate_active_connections", &[("side", "target")]) == 0.0
    })
    .await;
    let labels = [("code", "408"), ("cause", "ClientRequestTimeout")];
    assert_eq!(metric(&text, "waygate_elb_responses_total", &labels), 1.0, "{text}");
    assert_eq!(metric(&text, "waygate_target_connection_errors_total", &[]), 0.0, "{text}");
    let line = logs.text().lines().find(|l| l.contains("cause=ClientRequestTimeout")).map(str::to_owned);
    assert!(line.is_some_and(|l| l.contains("stalled")), "{}", logs.text());
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let log = access_log(&dir);
    assert!(log.contains("\"ClientRequestTimeout\"") && log.contains("408"), "{log}");
}
