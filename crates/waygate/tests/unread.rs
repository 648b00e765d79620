//! Many clients that ask for a large body and never read it (issue 24's reproduction, scaled to a test): the
//! gateway process cuts every one off after idle_timeout (ClientIdleTimeout, counted), releases every target
//! connection, and its resident memory stays bounded while they hang on. Before the fix, 1,000 such HTTP/1
//! clients held their connections for as long as they stayed and took the gateway from 8 MB to 483 MB; over
//! HTTP/2, 5 connections × 100 unread streams pinned 1,000 target connections.
//!
//! The bound: at most [`PER_UNREAD`] of resident memory per unread exchange above the process's level after a
//! warm-up, plus [`SLACK`] for the allocator and runtime growth. An unread exchange may hold the relay's buffers
//! (a chunk in flight each way, hyper's write buffer, HTTP/2's send buffer of 64 KiB per stream and a stream
//! window) but never the body: the target's 32 MiB stays in the target, held back by TCP and HTTP/2 flow
//! control. Measured on a debug build with 200 at once: about 280 KiB per HTTP/1 exchange and 60 KiB per HTTP/2
//! stream at the peak; the bound is above both with room for a slower machine's timing, and a hundredth of what
//! buffering the bodies would cost (32 MiB each).
//! Resident memory is read from `/proc/PID/status` (VmHWM, the peak, so nothing between samples is missed).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waygate_faultlab::Backend;

/// Unread exchanges at once: enough that a per-exchange leak of the body's size (32 MiB) or of a few MiB shows
/// far above the bound, few enough for a CI host's descriptor limit (two per exchange in the gateway).
const UNREAD: usize = 200;
const BODY: u64 = 32 << 20;
const PER_UNREAD: u64 = 512 << 10;
const SLACK: u64 = 48 << 20;

fn config(dir: &std::path::Path, target: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join("waygate.toml");
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         idle_timeout = \"2s\"\ndefault_target_group = \"app\"\n\n[[target_group]]\nname = \"app\"\n\
         targets = [\"{target}\"]\nretries = 0\n[target_group.health_check]\nenabled = false\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Resident memory of the process now (VmRSS) and at its peak (VmHWM), in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {status}"));
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The value of one series in the gateway's /metrics (0 when absent).
fn metric(admin: std::net::SocketAddr, series: &str) -> f64 {
    let text = http_get(admin, "/metrics");
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

/// Polls the metrics until every unread exchange ended as ClientIdleTimeout and no target connection is open.
async fn all_cut_off(admin: std::net::SocketAddr, gw: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cut = metric(admin, "waygate_client_stream_errors_total{listener=\"public\",cause=\"ClientIdleTimeout\"}");
        let open = metric(admin, "waygate_active_connections{side=\"target\"}");
        if cut >= UNREAD as f64 && open == 0.0 {
            assert_eq!(cut, UNREAD as f64, "one ClientIdleTimeout per unread exchange");
            return;
        }
        assert!(Instant::now() < deadline, "{cut} of {UNREAD} cut off, {open} target connections open\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(100)).await; // polling the metrics, with the deadline above
    }
}

/// Starts a target and the gateway, warms it up with one request; returns them and the warm resident memory.
async fn start(tag: &str) -> (waygate_faultlab::Running, Proc, u64) {
    let backend = Backend::new(tag).spawn(loopback()).await.unwrap();
    let dir = tempdir(tag);
    let gw = Proc::start(&config(&dir, backend.addr()));
    let public = gw.listener("public");
    assert!(http_get(public, "/bytes/65536").starts_with("HTTP/1.1 200"));
    let (warm, _) = rss(gw.child.id());
    (backend, gw, warm)
}

fn assert_bounded(gw: &Proc, warm: u64) {
    let (_, peak) = rss(gw.child.id());
    let bound = warm + PER_UNREAD * UNREAD as u64 + SLACK;
    assert!(
        peak <= bound,
        "resident memory peaked at {} KiB with {UNREAD} unread exchanges: over {} KiB ({} KiB warm)",
        peak >> 10,
        bound >> 10,
        warm >> 10
    );
    println!("{UNREAD} unread exchanges: {} KiB warm, {} KiB peak", warm >> 10, peak >> 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_clients_that_never_read_are_cut_off_and_memory_stays_bounded() {
    let (_backend, gw, warm) = start("unread-h1").await;
    let (public, admin) = (gw.listener("public"), gw.admin());
    let mut clients = Vec::new();
    for _ in 0..UNREAD {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let mut tcp = socket.connect(public).await.unwrap();
        tcp.write_all(format!("GET /bytes/{BODY} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes()).await.unwrap();
        clients.push(tcp);
    }
    all_cut_off(admin, &gw).await;
    assert_bounded(&gw, warm);
    // Each was closed: a read ends (what the kernel held, then EOF or a reset) well short of the body.
    for mut tcp in clients {
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(DEADLINE, tcp.read(&mut buf)).await.expect("the connection was closed") {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        assert!(got < BODY, "a whole body reached a client that did not read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_never_read_are_reset_and_memory_stays_bounded() {
    const CONNECTIONS: usize = 2;
    let (_backend, gw, warm) = start("unread-h2").await;
    let (public, admin) = (gw.listener("public"), gw.admin());
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        let tcp = tokio::net::TcpStream::connect(public).await.unwrap();
        // Small windows: the client's side takes 8 KiB per stream and 1 MiB per connection, then flow control
        // holds the gateway back, as with a client that stopped reading.
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(8 * 1024)
            .initial_connection_window_size(1 << 20)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut heads = Vec::new();
        for _ in 0..UNREAD / CONNECTIONS {
            let mut send = send.clone();
            heads.push(tokio::spawn(async move {
                send.ready().await.unwrap();
                let req = http::Request::get(format!("http://app.example/bytes/{BODY}")).body(Empty::new()).unwrap();
                send.send_request(req).await
            }));
        }
        for h in heads {
            let resp = tokio::time::timeout(DEADLINE, h).await.expect("a response head").unwrap().unwrap();
            assert_eq!(resp.status(), 200);
            held.push(resp); // never read
        }
    }
    all_cut_off(admin, &gw).await;
    assert_bounded(&gw, warm);
    drop(held);
}
