//! WebSockets through the gateway with real peers at both ends: tokio-tungstenite's client and the fault lab's
//! echo (tokio-tungstenite on the target's side), over a plain and a TLS listener and over HTTP/2 extended
//! CONNECT (hyper's h2 client with `:protocol`); a generic upgrade with half-close; the target's bad 101s named
//! in the response, the system log and the metrics; a refused upgrade passed through; the access log's
//! `ws`/`wss` lines counting the tunnel's bytes.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Message, protocol::Role};
use tokio_tungstenite::{WebSocketStream, client_async};
use waygate_faultlab::{Backend, TestPki, WsTarget};

/// The JSON access log's lines, once the gateway has shut down (which flushes it).
fn json_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path()).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// `simple_config` with a JSON access log in `dir`, and `listeners` TOML before the target group.
fn logged_config(dir: &std::path::Path, target: std::net::SocketAddr, listeners: &str) -> String {
    simple_config(&[target], "")
        .replacen(
            "[[listener]]",
            &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
            1,
        )
        .replacen("[[target_group]]", &format!("{listeners}[[target_group]]"), 1)
}

/// Sends a text and a 100 KiB binary message and expects each back; returns the payload bytes sent.
async fn echo_twice<S>(ws: &mut WebSocketStream<S>) -> u64
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let big = Bytes::from(vec![7u8; 100 * 1024]);
    for msg in [Message::text("hello through the gateway"), Message::binary(big.clone())] {
        ws.send(msg.clone()).await.unwrap();
        let back = within("the echo", ws.next()).await.expect("a message").unwrap();
        assert_eq!(back, msg);
    }
    25 + big.len() as u64
}

#[tokio::test]
async fn a_websocket_echo_goes_through_a_plain_and_a_tls_listener_and_each_is_one_record() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-log");
    let files = TestPki::shared().write_files(&tempdir("ws-pki")).unwrap();
    let tls = format!(
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"app\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n",
        files.valid.cert.display(),
        files.valid.key.display()
    );
    let (gw, addr) = gateway(&logged_config(&dir, echo.addr(), &tls)).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
    assert_eq!(resp.status(), 101);
    let plain_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let payload = echo_twice(&mut ws).await;
    // The client's connection left its HTTP/1 server at the switch; the tunnel keeps it counted as open.
    let m = gw.metrics();
    within("one active client connection", async {
        while metric(&m.encode(), "waygate_active_connections", &[("side", "client")]) != 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling interval, under the deadline
        }
    })
    .await;
    ws.close(None).await.unwrap();
    while within("the close", ws.next()).await.is_some() {}

    let connector = tokio_rustls::TlsConnector::from(tls_client(&[b"http/1.1"]));
    let tcp = TcpStream::connect(gw.local_addr("tls").await.unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    // Boxed: the TLS stream makes the handshake future large.
    let (mut wss, resp) =
        within("TLS handshake", Box::pin(client_async("wss://localhost/chat", stream))).await.unwrap();
    let tls_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    echo_twice(&mut wss).await;
    wss.close(None).await.unwrap();
    while within("the close", wss.next()).await.is_some() {}

    // A tunnel's record is written as it ends: shutdown waits for that.
    let metrics = gw.metrics();
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let metrics = metrics.encode();
    let lines = json_lines(&dir);
    let line = |id: &str| lines.iter().find(|l| l["trace_id"] == id).unwrap_or_else(|| panic!("{id}: {lines:?}"));
    for (id, kind) in [(&plain_id, "ws"), (&tls_id, "wss")] {
        let l = line(id);
        assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some(kind), Some(101)), "{l}");
        assert_eq!(l["target_status_code"], 101);
        assert!(l["error_reason"].is_null(), "{l}");
        // Frames add a few bytes each; the payload both ways is the floor.
        assert!(l["received_bytes"].as_u64().unwrap() > payload, "{l}");
        assert!(l["sent_bytes"].as_u64().unwrap() > payload, "{l}");
    }
    let processed = metric(&metrics, "waygate_processed_bytes_total", &[("listener", "public")]);
    assert!(processed > 2.0 * payload as f64, "the tunnel's bytes are processed bytes: {processed}");
}

/// RFC 8441: an HTTP/2 client's extended CONNECT becomes an HTTP/1.1 WebSocket handshake to the target (with a
/// key of the gateway's, whose Accept it checks); the client gets 200 and a stream that carries the frames.
#[tokio::test]
async fn an_http2_extended_connect_is_a_websocket_to_an_http1_target() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[echo.addr()], "")).await;
    let mut ws = h2_websocket(addr).await;
    echo_twice(&mut ws).await;
    ws.close(None).await.unwrap();
    while within("the close", ws.next()).await.is_some() {}
    let metrics = gw.metrics();
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let metrics = metrics.encode();
    assert_eq!(metric(&metrics, "waygate_requests_total", &[]), 2.0, "{metrics}");
    // The client's 200 is the gateway's translation of the target's 101: counted as the gateway's, no cause.
    let translated = [("code", "200"), ("cause", "")];
    assert_eq!(metric(&metrics, "waygate_elb_responses_total", &translated), 1.0, "{metrics}");
}

/// An HTTP/2 connection stays open under its tunnels' streams: shutdown closes them once only tunnels hold
/// connections, instead of waiting for its deadline.
#[tokio::test]
async fn shutdown_closes_an_http2_tunnel_without_waiting_for_its_deadline() {
    let echo = WsTarget::Echo.spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[echo.addr()], "")).await;
    let mut ws = h2_websocket(addr).await;
    echo_twice(&mut ws).await;
    let ended = async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "{msg:?}");
        }
    };
    let (drain, ()) = tokio::join!(gw.shutdown(DEADLINE), within("the tunnel to end", ended));
    assert_eq!(drain, waygate_proxy::Drain::Complete);
}

/// A WebSocket over an extended CONNECT on a new HTTP/2 connection to `addr`.
async fn h2_websocket(addr: std::net::SocketAddr) -> WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    let resp = h2_connect(addr, "/chat").await;
    assert_eq!(resp.status(), 200, "{resp:?}");
    assert!(resp.headers().contains_key("x-request-id"));
    assert!(!resp.headers().contains_key("sec-websocket-accept"), "HTTP/1.1's handshake fields stay behind");
    let upgraded = within("the stream", hyper::upgrade::on(resp)).await.unwrap();
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

/// A target that answers an HTTP/2 client's WebSocket with a plain 200 did not open one: passed on, the client
/// would take it for an open tunnel.
#[tokio::test]
async fn a_2xx_without_a_switch_to_an_http2_websocket_is_target_malformed_response() {
    let backend = Backend::new("plain").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "retries = 0\n")).await;
    let resp = h2_connect(addr, "/status/200").await;
    assert_eq!(resp.status(), 502);
    let ps = resp.headers()["proxy-status"].to_str().unwrap();
    assert!(ps.contains("details=\"TargetMalformedResponse\""), "{ps}");
}

/// A generic upgrade token, and half-close: the client ends its side, the target still answers on its own, and
/// the client reads that answer to the end.
#[tokio::test]
async fn a_generic_upgrade_tunnels_bytes_with_half_close_honoured() {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let target = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(s.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.contains("upgrade: x-raw/1\r\n") && head.contains("connection: upgrade\r\n"), "{head}");
        let switch = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-raw/1\r\nConnection: Upgrade\r\nKeep-Alive: timeout=5\r\n\r\n";
        s.write_all(switch.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(format!("target read {} bytes", got.len()).as_bytes()).await.unwrap();
    });
    let (_gw, addr) = gateway(&simple_config(&[target], "")).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /raw HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x-raw/1\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(within("the 101", c.read_u8()).await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
    assert!(head.contains("connection: upgrade\r\n") && head.contains("upgrade: x-raw/1\r\n"), "{head}");
    assert!(!head.contains("keep-alive"), "the target's other hop-by-hop fields stay behind: {head}");
    c.write_all(&[1u8; 50_000]).await.unwrap();
    c.shutdown().await.unwrap();
    let mut answer = String::new();
    within("the target's answer after the client's FIN", c.read_to_string(&mut answer)).await.unwrap();
    assert_eq!(answer, "target read 50000 bytes");
    server.await.unwrap();
}

/// A target that refuses the upgrade: its answer passes through as a response, and nothing is tunnelled.
#[tokio::test]
async fn a_refused_upgrade_passes_through() {
    let backend = Backend::new("plain").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    match within("handshake", client_async("ws://app.example/status/426", tcp)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 426);
            assert!(!resp.headers().contains_key("proxy-status"), "the target's own answer: {resp:?}");
        }
        other => panic!("expected the target's 426: {other:?}"),
    }
}

/// A 101 that does not switch as asked is the target's fault, named with its evidence.
#[tokio::test]
async fn bad_101s_are_target_malformed_response_with_the_evidence() {
    let log = LogCapture::default();
    let _guard = log.install();
    for (target, evidence) in [
        (WsTarget::BadAccept, "Sec-WebSocket-Accept does not match the request's Sec-WebSocket-Key"),
        (WsTarget::NoUpgrade, "101 Switching Protocols but no Upgrade field"),
    ] {
        let running = target.spawn(loopback()).await.unwrap();
        let (gw, addr) = gateway(&simple_config(&[running.addr()], "retries = 0\n")).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let resp = match within("handshake", client_async("ws://app.example/chat", tcp)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp,
            other => panic!("{target:?}: expected a 502: {other:?}"),
        };
        assert_eq!(resp.status(), 502, "{target:?}");
        let ps = resp.headers()["proxy-status"].to_str().unwrap();
        assert!(ps.contains("details=\"TargetMalformedResponse\""), "{target:?}: {ps}");
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        let line = log.line(id, "TargetMalformedResponse");
        assert!(line.contains(evidence), "{target:?}: {line}");
        let metrics = gw.metrics().encode();
        let labels = [("code", "502"), ("cause", "TargetMalformedResponse")];
        assert_eq!(metric(&metrics, "waygate_elb_responses_total", &labels), 1.0, "{target:?}: {metrics}");
        assert_eq!(target.expected_cause(), "TargetMalformedResponse");
    }
}
