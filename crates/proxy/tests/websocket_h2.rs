//! WebSockets to `protocol_version = "http2"` groups, opened toward the target as RFC 8441 extended CONNECTs,
//! with real peers: tokio-tungstenite's client over HTTP/1.1 and hyper's HTTP/2 client with `:protocol` through
//! the gateway, the fault lab's HTTP/2 WebSocket targets behind it (hyper's server with extended CONNECT and
//! tokio-tungstenite; the same without it; one that resets the stream). Also the HTTP/1.1 upgrade edge cases:
//! an HTTP/1.0 `Upgrade`, and an `Upgrade` with a body, go as plain requests with the connection in step. Which
//! targets carry them (retries, TLS): [`targets`].

mod common;
#[path = "websocket_h2/targets.rs"]
mod targets;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{Message, protocol::Role};
use tokio_tungstenite::{WebSocketStream, client_async};
use waygate_faultlab::{Backend, REFUSED_BODY, REFUSED_PATH, WsH2Target};

/// The large message's size.
const BIG: usize = 2 * 1024 * 1024;

/// An http2 group of `target`, with a JSON access log in `dir`; `extra` goes into the group.
fn h2_config(dir: &std::path::Path, target: std::net::SocketAddr, extra: &str) -> String {
    simple_config(&[target], &format!("protocol_version = \"http2\"\n{extra}")).replacen(
        "[[listener]]",
        &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
        1,
    )
}

/// Sends a text and a 2 MiB binary message and expects each back: larger than every HTTP/2 window on the way
/// (64 KiB by default, the gateway's 256 KiB per stream, hyper's 1 MiB), so flow control must move it.
async fn echo_twice<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for msg in [Message::text("hello over a stream"), Message::binary(vec![7u8; BIG])] {
        ws.send(msg.clone()).await.unwrap();
        let back = within("the echo", ws.next()).await.expect("a message").unwrap();
        assert_eq!(back, msg);
    }
}

/// The access log's line of request `id`.
fn line<'a>(lines: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    lines.iter().find(|l| l["trace_id"] == id).unwrap_or_else(|| panic!("{id}: {lines:?}"))
}

#[tokio::test]
async fn an_http1_websocket_reaches_an_http2_target_as_an_extended_connect() {
    let target = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-log");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let mut req = "ws://app.example/chat".into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "chat, superchat".parse().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    // tokio-tungstenite checks the 101: Upgrade, Connection and the Sec-WebSocket-Accept of its own key.
    let (mut ws, resp) = within("handshake", client_async(req, tcp)).await.unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat", "the target's subprotocol answer");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    echo_twice(&mut ws).await;
    ws.close(None).await.unwrap();
    while within("the close", ws.next()).await.is_some() {}
    assert_eq!(target.stats().connections_accepted(), 1);

    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some("ws"), Some(101)), "{l}");
    assert_eq!(l["target_status_code"], 200, "the target's answer to its CONNECT: {l}");
    assert!(l["error_reason"].is_null(), "{l}");
    assert!(l["received_bytes"].as_u64().unwrap() > BIG as u64, "{l}");
    assert!(l["sent_bytes"].as_u64().unwrap() > BIG as u64, "{l}");
}

/// An HTTP/2 client's extended CONNECT to an http2 group goes on as one, stream to stream; shutdown closes the
/// tunnel once only tunnels are left.
#[tokio::test]
async fn an_http2_extended_connect_reaches_an_http2_target_stream_to_stream() {
    let target = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-h2");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let resp = h2_connect(addr, "/chat").await;
    assert_eq!(resp.status(), 200, "{resp:?}");
    assert!(!resp.headers().contains_key("sec-websocket-accept") && !resp.headers().contains_key("upgrade"));
    let upgraded = within("the stream", hyper::upgrade::on(resp)).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    echo_twice(&mut ws).await;
    let ended = async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "{msg:?}");
        }
    };
    let (drain, ()) = tokio::join!(gw.shutdown(DEADLINE), within("the tunnel to end", ended));
    assert_eq!(drain, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let tunnel = lines.iter().find(|l| l["type"] == "ws").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!((tunnel["elb_status_code"].as_u64(), tunnel["target_status_code"].as_u64()), (Some(200), Some(200)));
}

/// A target that refuses the CONNECT: its answer, body included, is the client's, and no tunnel opens.
#[tokio::test]
async fn a_refused_extended_connect_passes_through_with_its_body() {
    let target = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-refused");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://app.example{REFUSED_PATH}");
    let err = within("handshake", client_async(url, tcp)).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err:?}") };
    assert_eq!(resp.status(), 403);
    assert!(!resp.headers().contains_key("proxy-status"), "the target's own answer");
    assert_eq!(resp.body().as_deref(), Some(REFUSED_BODY.as_bytes()));
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0]["type"].as_str(), lines[0]["elb_status_code"].as_u64()), (Some("http"), Some(403)));
}

/// A target whose SETTINGS did not enable extended CONNECT: the gateway's answer names that, in the response,
/// the access log and the metrics; plain requests to it still work.
#[tokio::test]
async fn a_target_without_extended_connect_is_target_extended_connect_disabled() {
    let log = LogCapture::default();
    let _guard = log.install();
    let target = WsH2Target::NoExtendedConnect.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-off");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "retries = 0\n")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err:?}") };
    assert_eq!(resp.status(), 502);
    let ps = resp.headers()["proxy-status"].to_str().unwrap();
    assert!(ps.contains("error=http_upgrade_failed") && ps.contains("TargetExtendedConnectDisabled"), "{ps}");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let plain = within("a plain request", h1(addr, request("GET", "/", "app.example", Bytes::new()))).await;
    assert_eq!(plain.status, 200, "{}", plain.text());

    let metrics = gw.metrics();
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let metrics = metrics.encode();
    let labels = [("code", "502"), ("cause", "TargetExtendedConnectDisabled")];
    assert_eq!(metric(&metrics, "waygate_elb_responses_total", &labels), 1.0, "{metrics}");
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!(
        (l["elb_status_code"].as_u64(), l["error_reason"].as_str()),
        (Some(502), Some("TargetExtendedConnectDisabled"))
    );
    let line = log.line(&id, "TargetExtendedConnectDisabled");
    assert!(line.contains("did not enable extended CONNECT (RFC 8441"), "{line}");
}

/// The target resets the stream mid-tunnel: the HTTP/1.1 client's connection is closed, and the access log says
/// the target cut it.
#[tokio::test]
async fn a_stream_reset_mid_tunnel_closes_the_client_and_is_logged() {
    let log = LogCapture::default();
    let _guard = log.install();
    let target = WsH2Target::ResetMidStream.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-reset");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
    assert_eq!(resp.status(), 101);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    ws.send(Message::text("reset me")).await.unwrap();
    // The socket closes under the client: an end of stream or an error, no message.
    match within("the client's end", ws.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("{msg:?}"),
    }
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let l = line(&lines, &id);
    assert_eq!((l["type"].as_str(), l["elb_status_code"].as_u64()), (Some("ws"), Some(101)), "{l}");
    assert_eq!(l["error_reason"], "TargetResponseIncomplete", "{l}");
    let line = log.line(&id, "TargetResponseIncomplete");
    assert!(
        line.contains("tunnel cut on the target's side: the target reset the stream (RST_STREAM CANCEL)"),
        "{line}"
    );
}

/// An HTTP/2 client's tunnel whose target stream is reset: the client's stream is reset too.
#[tokio::test]
async fn a_stream_reset_mid_tunnel_resets_the_http2_clients_stream() {
    let target = WsH2Target::ResetMidStream.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-reset2");
    let (gw, addr) = gateway(&h2_config(&dir, target.addr(), "")).await;
    let resp = h2_connect(addr, "/chat").await;
    assert_eq!(resp.status(), 200);
    let mut io = TokioIo::new(within("the stream", hyper::upgrade::on(resp)).await.unwrap());
    io.write_all(b"any bytes").await.unwrap();
    let mut buf = [0u8; 64];
    let read = within("the client's stream to end", io.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    let tunnel = lines.iter().find(|l| l["type"] == "ws").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(tunnel["error_reason"], "TargetResponseIncomplete", "{tunnel}");
}

/// A WebSocket to a grpc group is not gRPC: ALB's 464, as for any other request that is not.
#[tokio::test]
async fn a_websocket_to_a_grpc_group_is_464() {
    let target = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let config = simple_config(&[target.addr()], "protocol_version = \"grpc\"\n");
    let (_gw, addr) = gateway(&config).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err:?}") };
    assert_eq!(resp.status(), 464);
    let resp = h2_connect(addr, "/chat").await;
    assert_eq!(resp.status(), 464, "an HTTP/2 extended CONNECT");
    assert_eq!(target.stats().requests_served(), 0);
}

/// RFC 9110 §7.8: an HTTP/1.0 request cannot switch, so its `Upgrade` is ignored: a plain request to the
/// target (without `Upgrade`), a plain answer to the client.
#[tokio::test]
async fn an_http10_upgrade_is_a_plain_request() {
    let backend = Backend::new("plain").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let head = format!(
        "GET /echo HTTP/1.0\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    within("the answer and the close", tcp.read_to_end(&mut out)).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(echoed["headers"].get("upgrade").is_none(), "{echoed}");
}

/// An `Upgrade` with a body is not switched (a WebSocket handshake has none, and the body would have to reach
/// the target before the switch): the body goes whole with the request, and the next request on the
/// connection is read as a request, not as tunnel bytes.
#[tokio::test]
async fn an_upgrade_with_a_body_is_a_plain_request_and_the_connection_stays_in_step() {
    let backend = Backend::new("plain").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[backend.addr()], "")).await;
    for framing in ["Content-Length: 5\r\n\r\nhello", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let first = format!(
            "POST /echo HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{framing}"
        );
        let second = "GET /echo?second HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n";
        tcp.write_all(format!("{first}{second}").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        within("both answers and the close", tcp.read_to_end(&mut out)).await.unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("HTTP/1.1 200 ").count(), 2, "{text}");
        assert!(!text.contains(" 101 "), "{text}");
        let bodies: Vec<serde_json::Value> = text
            .split("HTTP/1.1 200 ")
            .skip(1)
            .map(|r| serde_json::from_str(r[r.find("\r\n\r\n").unwrap() + 4..].trim_end()).unwrap())
            .collect();
        assert_eq!(bodies[0]["body"], "hello", "{framing}: {}", bodies[0]);
        assert!(bodies[0]["headers"].get("upgrade").is_none(), "{}", bodies[0]);
        assert_eq!(bodies[1]["uri"], "/echo?second", "{}", bodies[1]);
    }
}

/// Reads until the tunnel ends (a close frame, the end of the stream, or an error): the gateway closed it.
async fn until_closed<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    within("the tunnel to close", async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "only a close may come: {msg:?}");
        }
    })
    .await;
}

/// A tunnel on a stream to an http2 target is cut when the target's deregistration_delay elapses, and one that
/// carries nothing closes after the listener's idle_timeout, as a tunnel to an http1 target.
#[tokio::test]
async fn deregistration_and_idle_timeout_close_a_tunnel_on_a_stream() {
    let target = WsH2Target::Echo.spawn(loopback()).await.unwrap();
    let dir = tempdir("ws-h2-dereg");
    let config = h2_config(&dir, target.addr(), "deregistration_delay = \"1s\"\n").replacen(
        "default_target_group",
        "idle_timeout = \"2s\"\ndefault_target_group",
        1,
    );
    let (gw, addr) = gateway(&config).await;
    let open = || async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (ws, resp) = within("handshake", client_async("ws://app.example/chat", tcp)).await.unwrap();
        (ws, resp.headers()["x-request-id"].to_str().unwrap().to_owned())
    };
    let (mut idle, idle_id) = open().await;
    let opened = std::time::Instant::now();
    until_closed(&mut idle).await;
    assert!(opened.elapsed() >= std::time::Duration::from_secs(2), "not before idle_timeout: {:?}", opened.elapsed());

    let (mut ws, id) = open().await;
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(within("the echo", ws.next()).await.unwrap().unwrap(), Message::text("before"));
    let started = std::time::Instant::now();
    let dereg = gw.deregister("app", &target.addr().to_string(), "test").await.expect("deregistered");
    assert_eq!(dereg.in_flight, 1, "the tunnel is in flight at its target");
    until_closed(&mut ws).await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "not before the delay: {:?}", started.elapsed());

    assert_eq!(gw.shutdown(DEADLINE).await, waygate_proxy::Drain::Complete);
    let lines = json_log_lines(&dir);
    assert!(line(&lines, &idle_id)["error_reason"].is_null(), "an idle tunnel is nobody's fault");
    assert_eq!(line(&lines, &id)["error_reason"], "TargetDeregistered", "{}", line(&lines, &id));
}
