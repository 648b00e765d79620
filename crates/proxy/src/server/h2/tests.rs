//! The server on its own, over an in-memory pipe: the bytes the listener read while it told HTTP/2 from HTTP/1
//! are applied before anything else is read, even when they hold a whole request and the client then waits for
//! its answer; request bodies the request path dropped unread hold none of the connection's window; and a client
//! that opens its windows wide but reads nothing holds a bounded queue of frames.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use waygate_h2wire::frame::{self, Frame, Settings};
use waygate_h2wire::hpack::{Encoder, Pseudo};

use super::Server;
use crate::body::ProxyBody;
use crate::server::ClientBody;

/// A request head for `path`.
fn head(method: &[u8], path: &[u8]) -> BytesMut {
    let mut block = BytesMut::new();
    let mut encoder = Encoder::new();
    encoder.pseudo(Pseudo::Method, method, &mut block);
    encoder.pseudo(Pseudo::Scheme, b"http", &mut block);
    encoder.pseudo(Pseudo::Path, path, &mut block);
    encoder.pseudo(Pseudo::Authority, b"a", &mut block);
    block
}

/// Reads frames until stream `id` ends with DATA; `None` when the connection ends first (a GOAWAY, a close).
async fn answer(client: &mut (impl tokio::io::AsyncRead + Unpin), id: u32) -> Option<Bytes> {
    let mut got = BytesMut::new();
    let mut body = BytesMut::new();
    loop {
        while let Ok(Some(parsed)) = frame::parse(&mut got, frame::DEFAULT_MAX_FRAME_SIZE) {
            match parsed {
                Frame::Data { stream, data, end_stream, .. } if stream == id => {
                    body.extend_from_slice(&data);
                    if end_stream {
                        return Some(body.freeze());
                    }
                }
                Frame::GoAway { .. } => return None,
                _ => {}
            }
        }
        if client.read_buf(&mut got).await.unwrap_or(0) == 0 {
            return None;
        }
    }
}

#[tokio::test]
async fn a_request_read_with_the_preface_is_answered() {
    let mut first = BytesMut::from(&frame::PREFACE[..]);
    Settings::default().write(&mut first);
    frame::write_headers(1, &head(b"GET", b"/"), true, frame::DEFAULT_MAX_FRAME_SIZE, &mut first);
    // The client has sent everything it will until it is answered.
    let (mut client, io) = tokio::io::duplex(64 * 1024);
    let service = |_: Request<ClientBody>| async { Response::new(ProxyBody::full(Bytes::from_static(b"ok"))) };
    let server = tokio::spawn(Server::new(io, first, Duration::from_secs(60), service));
    let answered = tokio::time::timeout(Duration::from_secs(30), answer(&mut client, 1)).await;
    assert_eq!(
        answered.ok().flatten(),
        Some(Bytes::from_static(b"ok")),
        "stream 1 answered from the first bytes alone"
    );
    drop(client);
    let _ = server.await;
}

#[tokio::test]
async fn bodies_dropped_unread_give_their_window_back() {
    // Four requests whose bodies the request path drops unread, each sent a whole stream window: together the
    // connection's window. A fifth request's body must still be taken, and read whole.
    let service = |req: Request<ClientBody>| async move {
        if req.uri().path() == "/drop" {
            drop(req.into_body());
            return std::future::pending().await;
        }
        let len = req.into_body().collect().await.map_or(0, |b| b.to_bytes().len());
        Response::new(ProxyBody::full(len.to_string()))
    };
    let (mut client, io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(Server::new(io, BytesMut::new(), Duration::from_secs(60), service));
    let mut out = BytesMut::from(&frame::PREFACE[..]);
    Settings::default().write(&mut out);
    let chunk = [7u8; 16 * 1024];
    for id in [1, 3, 5, 7] {
        frame::write_headers(id, &head(b"POST", b"/drop"), false, frame::DEFAULT_MAX_FRAME_SIZE, &mut out);
    }
    // The drops happen once the streams start: the heads go first, then the bodies.
    client.write_all(&out).await.expect("written");
    out.clear();
    for id in [1, 3, 5, 7] {
        for _ in 0..super::STREAM_WINDOW as usize / chunk.len() {
            frame::write_data_head(id, chunk.len() as u32, false, &mut out);
            out.extend_from_slice(&chunk);
        }
    }
    frame::write_headers(9, &head(b"POST", b"/read"), false, frame::DEFAULT_MAX_FRAME_SIZE, &mut out);
    for i in 0..6 {
        frame::write_data_head(9, chunk.len() as u32, i == 5, &mut out);
        out.extend_from_slice(&chunk);
    }
    let (mut rx, mut tx) = tokio::io::split(client);
    let send = async move {
        tx.write_all(&out).await.expect("written");
        tx
    };
    let read = async move { answer(&mut rx, 9).await };
    let answered = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(send, read).1 }).await;
    assert_eq!(answered.ok().flatten(), Some(Bytes::from((6 * chunk.len()).to_string())), "stream 9's body read whole");
    server.abort();
}

/// A stream's request future is dropped as soon as its answer is taken, not once the answer's body is out: what
/// it holds (the request counted in flight on the connection) goes while a client that reads nothing holds the
/// body up.
#[tokio::test]
async fn a_request_future_is_dropped_once_it_answered() {
    let mut first = BytesMut::from(&frame::PREFACE[..]);
    Settings::default().write(&mut first);
    frame::write_headers(1, &head(b"GET", b"/"), true, frame::DEFAULT_MAX_FRAME_SIZE, &mut first);
    let probe = crate::server::tests::Probe::default();
    let answers = probe.clone();
    let service =
        move |_: Request<ClientBody>| answers.answer(Response::new(ProxyBody::full(Bytes::from(vec![7u8; 1 << 20]))));
    let (client, io) = tokio::io::duplex(4096);
    let mut server = Box::pin(Server::new(io, first, Duration::from_secs(60), service));
    // The client reads nothing: the server's polls find the pipe full and the stream's body waiting.
    for _ in 0..200 {
        let done = std::future::poll_fn(|cx| std::task::Poll::Ready(server.as_mut().poll(cx).is_ready())).await;
        assert!(!done, "the server ended with a body its client has not read");
        if probe.released() {
            drop(client);
            return;
        }
    }
    panic!("the stream's request future was still held after 200 polls");
}

#[tokio::test]
async fn a_client_that_reads_nothing_holds_a_bounded_queue() {
    let mut first = BytesMut::from(&frame::PREFACE[..]);
    Settings { initial_window_size: Some((1 << 31) - 1), ..Settings::default() }.write(&mut first);
    frame::write_window_update(0, (1 << 31) - 1 - 65_535, &mut first);
    frame::write_headers(1, &head(b"GET", b"/"), true, frame::DEFAULT_MAX_FRAME_SIZE, &mut first);
    let body = Bytes::from(vec![7u8; 8 << 20]);
    let service = move |_: Request<ClientBody>| {
        let body = body.clone();
        async move { Response::new(ProxyBody::full(body)) }
    };
    let (client, io) = tokio::io::duplex(64 * 1024);
    let mut server = Box::pin(Server::new(io, first, Duration::from_secs(60), service));
    // The client reads nothing: every poll after the first few finds the pipe full and the streams waiting.
    for _ in 0..200 {
        std::future::poll_fn(|cx| {
            let _ = server.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }
    let queued = server.queued();
    // What waits to be queued is bounded (a frame may pass the mark), and as much again may be being written.
    let bound = 2 * (crate::h2conn::WRITE_HIGH_WATER + frame::HEAD_LEN + frame::DEFAULT_MAX_FRAME_SIZE as usize);
    assert!(queued > 0 && queued <= bound, "{queued} bytes held for a client that reads nothing (bound {bound})");
    drop(client);
}
