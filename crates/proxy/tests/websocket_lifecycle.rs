//! How a WebSocket tunnel ends, with real peers: the listener's idle_timeout closes a silent one, a target that
//! resets mid-stream is named in the access log, the target's deregistration_delay cuts its tunnels, and a
//! graceful shutdown closes tunnels once the rest has drained, each with its record written.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};
use waygate_faultlab::WsTarget;
use waygate_proxy::{Drain, Gateway};

type Ws = WebSocketStream<TcpStream>;

/// A gateway on `target` logging JSON to `dir`, with `listener` and `group` TOML added to theirs.
async fn logged(dir: &std::path::Path, target: std::net::SocketAddr, listener: &str, group: &str) -> Gateway {
    let text = simple_config(&[target], group)
        .replacen(
            "[[listener]]",
            &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
            1,
        )
        .replacen("default_target_group", &format!("{listener}default_target_group"), 1);
    gateway(&text).await.0
}

async fn open(gw: &Gateway) -> (Ws, String) {
    let tcp = TcpStream::connect(gw.local_addr("public").await.unwrap()).await.unwrap();
    let (ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
    (ws, resp.headers()["x-request-id"].to_str().unwrap().to_owned())
}

/// Reads until the tunnel ends (a close frame, the end of the stream, or an error): the gateway closed it.
async fn until_closed(ws: &mut Ws) {
    within("the tunnel to close", async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "only a close may come: {msg:?}");
        }
    })
    .await;
}

/// The access log's lines in `dir`.
fn lines(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        lines.extend(std::fs::read_to_string(file.unwrap().path()).unwrap().lines().map(str::to_owned));
    }
    lines
}

/// The record of request `id`, after the gateway's shutdown flushed the log.
async fn record(gw: Gateway, dir: &std::path::Path, id: &str) -> serde_json::Value {
    gw.shutdown(DEADLINE).await;
    let lines = lines(dir);
    let line = lines.iter().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no line for {id}: {lines:?}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn a_silent_tunnel_closes_after_the_listeners_idle_timeout() {
    let silent = WsTarget::Silent.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-idle");
    let gw = logged(&dir, silent.addr(), "idle_timeout = \"1s\"\n", "").await;
    let (mut ws, id) = open(&gw).await;
    let opened = Instant::now();
    ws.send(Message::text("anyone?")).await.unwrap();
    until_closed(&mut ws).await;
    assert!(opened.elapsed() >= Duration::from_secs(1), "not before idle_timeout: {:?}", opened.elapsed());
    within("the target's side to close", silent.stats().wait_until(|s| s.connections_closed() >= 1)).await;
    let l = record(gw, &dir, &id).await;
    assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some("ws"), Some(101)), "{l}");
    assert!(l["error_reason"].is_null(), "an idle tunnel is nobody's fault: {l}");
    assert!(l["received_bytes"].as_u64().unwrap() > 7, "the frame sent is counted: {l}");
}

/// Messages both ways more often than idle_timeout keep the tunnel open past it (each one moves the deadline);
/// once they stop, it closes after idle_timeout.
#[tokio::test]
async fn traffic_keeps_a_tunnel_open_past_the_idle_timeout() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-busy");
    let gw = logged(&dir, echo.addr(), "idle_timeout = \"2s\"\n", "").await;
    let (mut ws, id) = open(&gw).await;
    let opened = Instant::now();
    // Six round trips 400 ms apart: the tunnel lives past twice its idle_timeout only if each one counts.
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        let echoed = within("the echo", ws.next()).await;
        assert_eq!(echoed.unwrap().unwrap(), Message::text(format!("ping {i}")), "the tunnel is still open");
    }
    assert!(opened.elapsed() >= Duration::from_millis(2400), "the traffic outlived idle_timeout");
    let last = Instant::now();
    until_closed(&mut ws).await;
    assert!(last.elapsed() >= Duration::from_secs(2), "not before idle_timeout: {:?}", last.elapsed());
    let l = record(gw, &dir, &id).await;
    assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some("ws"), Some(101)), "{l}");
    assert!(l["error_reason"].is_null(), "an idle tunnel is nobody's fault: {l}");
}

#[tokio::test]
async fn a_target_reset_mid_stream_is_named_in_the_access_log() {
    let reset = WsTarget::ResetMidStream.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-rst");
    let gw = logged(&dir, reset.addr(), "", "").await;
    let (mut ws, id) = open(&gw).await;
    ws.send(Message::text("first")).await.unwrap();
    until_closed(&mut ws).await;
    let l = record(gw, &dir, &id).await;
    assert_eq!(l["error_reason"], WsTarget::ResetMidStream.expected_cause(), "{l}");
    assert_eq!(l["elb_status_code"], 101, "{l}");
}

#[tokio::test]
async fn deregistration_cuts_the_targets_tunnels_when_its_delay_elapses() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-dereg");
    let gw = logged(&dir, echo.addr(), "", "deregistration_delay = \"1s\"\n").await;
    let (mut ws, id) = open(&gw).await;
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(within("the echo", ws.next()).await.unwrap().unwrap(), Message::text("before"));
    let started = Instant::now();
    let dereg = gw.deregister("app", &echo.addr().to_string(), "test").await.expect("deregistered");
    assert_eq!(dereg.in_flight, 1, "the tunnel is in flight at its target");
    until_closed(&mut ws).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the delay: {:?}", started.elapsed());
    let l = record(gw, &dir, &id).await;
    assert_eq!(l["error_reason"], "TargetDeregistered", "{l}");
}

#[tokio::test]
async fn shutdown_closes_tunnels_once_the_rest_has_drained() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-shutdown");
    let gw = logged(&dir, echo.addr(), "", "").await;
    let (mut ws, id) = open(&gw).await;
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(within("the echo", ws.next()).await.unwrap().unwrap(), Message::text("still here"));
    let (drain, ()) = tokio::join!(gw.shutdown(DEADLINE), until_closed(&mut ws));
    assert_eq!(drain, Drain::Complete, "a tunnel does not hold shutdown to its deadline");
    let lines = lines(&dir);
    assert!(lines.iter().any(|l| l.contains(&id) && l.contains("\"type\":\"ws\"")), "its record is written: {lines:?}");
}

/// A client that stops reading while the target keeps sending: once nothing has moved for idle_timeout (the
/// bounded buffers are full), the tunnel closes, and the client is named, as on any response it stops taking.
#[tokio::test]
async fn a_client_that_stops_reading_is_client_idle_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(s.read_u8().await.unwrap());
        }
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-flood\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        // Until the gateway closes its side: bounded by the socket buffers and the tunnel's.
        while s.write_all(&[0u8; 64 * 1024]).await.is_ok() {}
    });
    let dir = tempdir("ws-blocked");
    let gw = logged(&dir, target, "idle_timeout = \"1s\"\n", "").await;
    let mut c = TcpStream::connect(gw.local_addr("public").await.unwrap()).await.unwrap();
    c.write_all(b"GET /flood HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x-flood\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(within("the 101", c.read_u8()).await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    let id = head.lines().find_map(|l| l.strip_prefix("x-request-id: ")).expect("x-request-id").to_owned();
    // The client reads nothing more; the tunnel's record is emitted once the gateway gave up on it.
    let metrics = gw.metrics();
    within("the tunnel's record", async {
        while metric(&metrics.encode(), "waygate_requests_total", &[]) < 1.0 {
            tokio::time::sleep(Duration::from_millis(20)).await; // polling interval, under the deadline
        }
    })
    .await;
    let l = record(gw, &dir, &id).await;
    assert_eq!(l["error_reason"], "ClientIdleTimeout", "{l}");
    assert!(l["sent_bytes"].as_u64().unwrap() > 0, "{l}");
    drop(c);
}
