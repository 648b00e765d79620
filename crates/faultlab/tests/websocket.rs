//! The WebSocket targets, met directly by tokio-tungstenite's client: the echo echoes, each misbehaving target
//! fails the way its description says, and every one answers a plain request (a health check) with 200.

mod common;

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::{Error, Message};
use waygate_faultlab::WsTarget;

async fn handshake(target: &waygate_faultlab::Running) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, Error> {
    let tcp = TcpStream::connect(target.addr()).await.unwrap();
    within(client_async("ws://localhost/chat", tcp)).await.map(|(ws, _)| ws)
}

#[tokio::test]
async fn every_websocket_target_answers_a_plain_request() {
    for t in WsTarget::ALL {
        let target = t.spawn(local()).await.unwrap();
        let mut s = TcpStream::connect(target.addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut head = [0u8; 15];
        within(s.read_exact(&mut head)).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200 OK", "{t:?}");
    }
}

#[tokio::test]
async fn the_echo_echoes_text_and_binary() {
    let target = WsTarget::Echo.spawn(local()).await.unwrap();
    let mut ws = handshake(&target).await.expect("the echo accepts");
    for msg in [Message::text("one"), Message::binary(vec![1u8; 70_000])] {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within(ws.next()).await.unwrap().unwrap(), msg);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_bad_handshake_is_refused_by_a_real_client() {
    let bad = WsTarget::BadAccept.spawn(local()).await.unwrap();
    let err = handshake(&bad).await.expect_err("a wrong Sec-WebSocket-Accept fails the handshake");
    assert!(err.to_string().contains("Sec-WebSocket-Accept") || err.to_string().contains("key"), "{err}");
    let none = WsTarget::NoUpgrade.spawn(local()).await.unwrap();
    let err = handshake(&none).await.expect_err("a 101 without Upgrade fails the handshake");
    assert!(err.to_string().to_ascii_lowercase().contains("upgrade"), "{err}");
    assert_eq!(WsTarget::BadAccept.expected_cause(), "TargetMalformedResponse");
}

#[tokio::test]
async fn the_reset_target_resets_at_the_first_message() {
    let target = WsTarget::ResetMidStream.spawn(local()).await.unwrap();
    let mut ws = handshake(&target).await.expect("it accepts first");
    ws.send(Message::text("first")).await.unwrap();
    match within(ws.next()).await {
        Some(Err(Error::Io(e))) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        other => panic!("expected a reset: {other:?}"),
    }
}

#[tokio::test]
async fn the_silent_target_reads_and_never_writes() {
    let target = WsTarget::Silent.spawn(local()).await.unwrap();
    let mut ws = handshake(&target).await.expect("it accepts first");
    let before = target.stats().bytes_read();
    ws.send(Message::text("anyone?")).await.unwrap();
    within(target.stats().wait_until(|s| s.bytes_read() > before)).await;
    assert_eq!(target.stats().connections_closed(), 0, "the connection stays open");
    ws.close(None).await.unwrap();
    // It answers nothing, not even the close: it closes when the client does.
    drop(ws);
    within(target.stats().wait_until(|s| s.connections_closed() == 1)).await;
}
