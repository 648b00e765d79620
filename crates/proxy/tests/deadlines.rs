//! idle_timeout on every direction of a client connection (issue 24, item 1): a client that stops reading its
//! response, or stops sending its request body, is ended after idle_timeout with a client-side cause, logged
//! and counted, and the target's connection is released. Never a Target* cause.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::{Backend, Running};
use waygate_proxy::{Drain, Gateway};

/// The tests of this file run one at a time: they capture the system log per thread, and tracing's callsite
/// interest, shared by all threads, can miss a capture installed while another thread registers callsites.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A listener with a short idle_timeout in front of `target`, logging to `dir`.
fn config(target: &Running, dir: &Path) -> String {
    config_for(target.addr(), dir)
}

fn config_for(target: std::net::SocketAddr, dir: &Path) -> String {
    format!(
        "[access_log]\ndir = \"{}\"\nformat = \"json\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         idle_timeout = \"1s\"\ndefault_target_group = \"app\"\n[[target_group]]\nname = \"app\"\n\
         targets = [\"{}\"]\nretries = 0\n[target_group.health_check]\nenabled = false\n",
        dir.display(),
        target
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
    let (target, dir, gw, mut tcp) = start(tag).await;
    tcp.write_all(request).await.unwrap();
    Setup { logs, _guard, target, dir, gw, tcp }
}

/// A well-behaved target, a gateway with a short idle_timeout in front of it logging to a fresh directory, and
/// a client connection to the gateway (its peer address is the gateway's).
async fn start(tag: &str) -> (Running, std::path::PathBuf, Gateway, TcpStream) {
    let target = Backend::new(tag).spawn(loopback()).await.unwrap();
    let dir = tempdir(tag);
    let (gw, addr) = gateway(&config(&target, &dir)).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    (target, dir, gw, tcp)
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

/// Waits until the target saw `closed` of its connections end and the gateway holds none open; the metrics then.
async fn targets_released(gw: &Gateway, target: &Running, closed: u64) -> String {
    within("the target sees its connections closed", target.stats().wait_until(|s| s.connections_closed() >= closed))
        .await;
    metrics_until(gw, "no target connection open", |t| {
        metric(t, "waygate_active_connections", &[("side", "target")]) == 0.0
    })
    .await
}

/// The 408 of a stalled request body, as counted.
const TIMEOUT_408: [(&str, &str); 2] = [("code", "408"), ("cause", "ClientRequestTimeout")];

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
    let _serial = SERIAL.lock().await;
    let Setup { logs, _guard, target, dir, gw, mut tcp } =
        setup("idle-unread", b"GET /bytes/33554432 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    within("the target answers", target.stats().wait_until(|s| s.requests_served() >= 1)).await;
    let text = metrics_until(&gw, "the client's stream error", |t| {
        metric(t, "waygate_client_stream_errors_total", &[("cause", "ClientIdleTimeout")]) >= 1.0
    })
    .await;
    assert_eq!(metric(&text, "waygate_target_stream_errors_total", &[]), 0.0, "{text}");
    targets_released(&gw, &target, 1).await;
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
    let _serial = SERIAL.lock().await;
    let request = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc";
    let Setup { logs, _guard, target, dir, gw, mut tcp } = setup("idle-stalled", request).await;
    let mut answer = Vec::new();
    within("the 408 and the end of the connection", tcp.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("ClientRequestTimeout") && answer.contains("connection: close"), "{answer}");
    let text = targets_released(&gw, &target, 1).await;
    assert_eq!(metric(&text, "waygate_elb_responses_total", &TIMEOUT_408), 1.0, "{text}");
    assert_eq!(metric(&text, "waygate_target_connection_errors_total", &[]), 0.0, "{text}");
    let line = logs.text().lines().find(|l| l.contains("cause=ClientRequestTimeout")).map(str::to_owned);
    assert!(line.is_some_and(|l| l.contains("stalled")), "{}", logs.text());
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let log = access_log(&dir);
    assert!(log.contains("\"ClientRequestTimeout\"") && log.contains("408"), "{log}");
}

/// HTTP/2 streams whose client does not read them (a small window, never released): after idle_timeout with the
/// window shut each is reset (RST_STREAM CANCEL), ends with ClientIdleTimeout and releases its target connection,
/// while the client connection itself goes on serving. The server announces its bound on concurrent streams.
/// Before the fix the streams and their target connections were held for as long as the client stayed.
#[tokio::test]
async fn http2_streams_the_client_does_not_drain_are_reset_after_idle_timeout() {
    let _serial = SERIAL.lock().await;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let logs = LogCapture::default();
    let _guard = logs.install();
    let (target, dir, gw, tcp) = start("idle-h2").await;
    let addr = tcp.peer_addr().unwrap();
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(8 * 1024)
        .initial_connection_window_size(1 << 20)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let max_streams = Arc::new(AtomicUsize::new(0));
    let seen = max_streams.clone();
    tokio::spawn(async move {
        let mut conn = conn;
        let _ = std::future::poll_fn(|cx| {
            seen.store(conn.max_concurrent_send_streams(), Ordering::SeqCst);
            std::pin::Pin::new(&mut conn).poll(cx)
        })
        .await;
    });
    let mut client = within("h2 ready", client.ready()).await.unwrap();
    const UNREAD: usize = 3;
    let mut unread = Vec::new();
    for _ in 0..UNREAD {
        let req = http::Request::get(format!("http://{addr}/bytes/33554432")).body(()).unwrap();
        let (resp, _) = client.send_request(req, true).unwrap();
        let resp = within("response head", resp).await.unwrap();
        assert_eq!(resp.status(), 200);
        unread.push(resp.into_body());
        client = within("h2 ready", client.ready()).await.unwrap();
    }
    let text = metrics_until(&gw, "the streams' idle timeouts", |t| {
        metric(t, "waygate_client_stream_errors_total", &[("cause", "ClientIdleTimeout")]) >= UNREAD as f64
    })
    .await;
    assert_eq!(metric(&text, "waygate_target_stream_errors_total", &[]), 0.0, "{text}");
    targets_released(&gw, &target, UNREAD as u64).await;
    // Each unread stream was reset: what it had buffered, then CANCEL.
    for mut body in unread {
        let reason = within("the reset", async {
            loop {
                match body.data().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return e.reason(),
                    None => return None,
                }
            }
        })
        .await;
        assert_eq!(reason, Some(h2::Reason::CANCEL));
    }
    assert_eq!(max_streams.load(Ordering::SeqCst), 128, "SETTINGS_MAX_CONCURRENT_STREAMS");
    // The connection itself still serves.
    let req = http::Request::get(format!("http://{addr}/")).body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let mut body = within("a later response", resp).await.unwrap().into_body();
    while let Some(chunk) = within("its body", body.data()).await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    assert!(logs.text().lines().filter(|l| l.contains("cause=ClientIdleTimeout")).count() >= UNREAD);
    drop(client);
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let log = access_log(&dir);
    assert_eq!(log.matches("\"ClientIdleTimeout\"").count(), UNREAD, "{log}");
}

/// An HTTP/2 request body that stalls (`content-length: 100000`, 3 bytes, then silence) is answered 408
/// ClientRequestTimeout on its stream after idle_timeout, and its target connection is closed.
#[tokio::test]
async fn a_stalled_http2_request_body_ends_with_408_after_idle_timeout() {
    let _serial = SERIAL.lock().await;
    let (target, _dir, gw, tcp) = start("idle-h2-stalled").await;
    let addr = tcp.peer_addr().unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = within("h2 ready", client.ready()).await.unwrap();
    let req = http::Request::post(format!("http://{addr}/upload")).header("content-length", "100000").body(()).unwrap();
    let (resp, mut send) = client.send_request(req, false).unwrap();
    send.send_data(Bytes::from_static(b"abc"), false).unwrap();
    let resp = within("the 408", resp).await.unwrap();
    assert_eq!(resp.status(), 408);
    let status = resp.headers()["proxy-status"].to_str().unwrap().to_owned();
    assert!(status.contains("ClientRequestTimeout"), "{status}");
    let text = targets_released(&gw, &target, 1).await;
    assert_eq!(metric(&text, "waygate_elb_responses_total", &TIMEOUT_408), 1.0, "{text}");
    drop((client, send));
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
}

/// A client that stops reading its socket altogether (not only a stream's window: the TCP window closes too):
/// its stream is reset and the target's connection released after idle_timeout, and the connection, whose
/// GOAWAY can never be written, is dropped after another idle_timeout instead of being held for as long as the
/// client stays.
#[tokio::test]
async fn an_http2_client_that_stops_reading_its_socket_is_dropped() {
    let _serial = SERIAL.lock().await;
    let (target, _dir, gw, tcp) = start("idle-h2-deaf").await;
    let addr = tcp.peer_addr().unwrap();
    // Windows wide open: the gateway writes until the socket is full.
    let (client, mut conn) = h2::client::Builder::new()
        .initial_window_size(i32::MAX as u32)
        .initial_connection_window_size(i32::MAX as u32)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let req = http::Request::get(format!("http://{addr}/bytes/1073741824")).body(()).unwrap();
    let head = async {
        let mut client = client.ready().await.unwrap();
        let (resp, _) = client.send_request(req, true).unwrap();
        (client, resp.await.unwrap())
    };
    // The connection is driven until the response head is in, then never again: nothing more is read.
    let (client, resp) = within("response head", async {
        tokio::select! {
            r = head => r,
            _ = &mut conn => panic!("connection ended"),
        }
    })
    .await;
    assert_eq!(resp.status(), 200);
    let text = metrics_until(&gw, "the stream's idle timeout", |t| {
        metric(t, "waygate_client_stream_errors_total", &[("cause", "ClientIdleTimeout")]) >= 1.0
    })
    .await;
    assert_eq!(metric(&text, "waygate_target_stream_errors_total", &[]), 0.0, "{text}");
    targets_released(&gw, &target, 1).await;
    metrics_until(&gw, "the client connection dropped", |t| {
        metric(t, "waygate_active_connections", &[("side", "client")]) == 0.0
    })
    .await;
    drop((client, resp, conn));
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
}

/// The other direction: a target that reads the request head and then takes none of the body. Once its socket
/// is full, response_timeout (1 s here) ends the attempt with TargetResponseTimeout (a target cause: the target
/// is at fault), the client gets 504 and the target's connection is closed. Before, both connections were held
/// for as long as the target waited.
#[tokio::test]
async fn a_target_that_stops_reading_the_request_times_out() {
    let _serial = SERIAL.lock().await;
    let deaf = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let target = deaf.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let (mut conn, _) = deaf.accept().await.unwrap();
        let mut head = [0u8; 512];
        let _ = conn.read(&mut head).await;
        // A behaviour, not synchronisation: the target keeps the connection and reads nothing more.
        std::future::pending::<()>().await;
        drop(conn);
    });
    let dir = tempdir("target-deaf");
    let text = config_for(target, &dir).replace("retries = 0\n", "retries = 0\nresponse_timeout = \"1s\"\n");
    let (gw, addr) = gateway(&text).await;
    let (_rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let len: u64 = 1 << 30;
    let writer = tokio::spawn(async move {
        let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        let chunk = vec![b'x'; 1 << 16];
        let _ = wr.write_all(head.as_bytes()).await;
        while wr.write_all(&chunk).await.is_ok() {}
    });
    let labels = [("code", "504"), ("cause", "TargetResponseTimeout")];
    metrics_until(&gw, "the 504", |t| metric(t, "waygate_elb_responses_total", &labels) == 1.0).await;
    metrics_until(&gw, "no target connection open", |t| {
        metric(t, "waygate_active_connections", &[("side", "target")]) == 0.0
    })
    .await;
    writer.abort();
    holder.abort();
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
}

/// Slow is not idle: a client that reads a little at a time, with pauses well under idle_timeout, gets its whole
/// response, however long that takes in all.
#[tokio::test]
async fn a_slow_reader_is_not_cut_off() {
    let _serial = SERIAL.lock().await;
    let (target, _dir, gw, mut tcp) = start("idle-slow-reader").await;
    let len: usize = 16 << 20;
    tcp.write_all(format!("GET /bytes/{len} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).await.unwrap();
    let mut got = 0usize;
    let mut chunk = vec![0; 1 << 20];
    within("the whole response, slowly", async {
        loop {
            let n = tcp.read(&mut chunk).await.unwrap();
            got += n;
            if n == 0 || got >= len {
                break;
            }
            // The client's behaviour under test: it pauses between reads, for less than idle_timeout (1 s).
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
    .await;
    assert!(got >= len, "read {got} of {len} body bytes");
    within("the target's stream", target.stats().wait_until(|s| s.streams_completed() >= 1)).await;
    let text = gw.metrics().encode();
    assert_eq!(metric(&text, "waygate_client_stream_errors_total", &[]), 0.0, "{text}");
}

/// A target that reads the request body slowly, pausing between reads for less than response_timeout, is not
/// timed out: only a target that takes nothing for response_timeout is. (It answers before the body's end, so
/// that only the sending is timed, not the response head's wait after it.)
#[tokio::test]
async fn a_target_that_reads_slowly_is_not_timed_out() {
    let _serial = SERIAL.lock().await;
    let slow = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let target = slow.local_addr().unwrap();
    let (len, answer_after): (usize, usize) = (64 << 20, 24 << 20);
    let reader = tokio::spawn(async move {
        let (mut conn, _) = slow.accept().await.unwrap();
        let mut buf = vec![0; 1 << 20];
        let mut got = 0usize;
        while got < answer_after {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway closed the request early");
            got += n;
            // The target's behaviour under test: it pauses between reads, for less than response_timeout (1 s).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await.unwrap();
        // Read on until the gateway closes: closing with unread bytes would reset the answer away.
        while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let dir = tempdir("target-slow");
    let text = config_for(target, &dir).replace("retries = 0\n", "retries = 0\nresponse_timeout = \"1s\"\n");
    let (gw, addr) = gateway(&text).await;
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&vec![b'x'; len]).await;
        wr
    });
    let mut answer = vec![0; 512];
    let n = within("the target's answer", rd.read(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    writer.abort();
    within("the target's connection closed", reader).await.unwrap();
    let text = gw.metrics().encode();
    assert_eq!(metric(&text, "waygate_elb_responses_total", &[("code", "504")]), 0.0, "{text}");
}

/// Slow is not idle on HTTP/2 either: a stream whose client reads a window's worth, then pauses (for less than
/// idle_timeout), again and again, gets its whole response.
#[tokio::test]
async fn a_slow_http2_reader_is_not_reset() {
    let _serial = SERIAL.lock().await;
    let (target, _dir, gw, tcp) = start("idle-h2-slow").await;
    let addr = tcp.peer_addr().unwrap();
    let window: usize = 1 << 20;
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(window as u32)
        .initial_connection_window_size(window as u32)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut client = within("h2 ready", client.ready()).await.unwrap();
    let len = 8 * window;
    let req = http::Request::get(format!("http://{addr}/bytes/{len}")).body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let mut body = within("response head", resp).await.unwrap().into_body();
    let mut got = 0usize;
    within("the whole body, slowly", async {
        while let Some(chunk) = body.data().await {
            let n = chunk.unwrap().len();
            got += n;
            let _ = body.flow_control().release_capacity(n);
            if got % window < n {
                // The client's behaviour under test: a pause for each window's worth, under idle_timeout (1 s).
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    })
    .await;
    assert_eq!(got, len);
    within("the target's stream", target.stats().wait_until(|s| s.streams_completed() >= 1)).await;
    let text = gw.metrics().encode();
    assert_eq!(metric(&text, "waygate_client_stream_errors_total", &[]), 0.0, "{text}");
}
