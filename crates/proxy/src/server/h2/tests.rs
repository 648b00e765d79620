//! The connection's start: the bytes the listener read while it told HTTP/2 from HTTP/1 are applied before
//! anything else is read, even when they hold a whole request and the client then waits for its answer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use tokio::io::AsyncReadExt as _;
use waygate_h2wire::frame::{self, Frame, Settings};
use waygate_h2wire::hpack::{Encoder, Pseudo};

use super::Server;
use crate::body::ProxyBody;
use crate::server::ClientBody;

#[tokio::test]
async fn a_request_read_with_the_preface_is_answered() {
    let mut first = BytesMut::from(&frame::PREFACE[..]);
    Settings::default().write(&mut first);
    let mut block = BytesMut::new();
    let mut encoder = Encoder::new();
    encoder.pseudo(Pseudo::Method, b"GET", &mut block);
    encoder.pseudo(Pseudo::Scheme, b"http", &mut block);
    encoder.pseudo(Pseudo::Path, b"/", &mut block);
    encoder.pseudo(Pseudo::Authority, b"a", &mut block);
    frame::write_headers(1, &block, true, frame::DEFAULT_MAX_FRAME_SIZE, &mut first);
    // The client has sent everything it will until it is answered.
    let (mut client, io) = tokio::io::duplex(64 * 1024);
    let service = |_: Request<ClientBody>| async { Response::new(ProxyBody::full(Bytes::from_static(b"ok"))) };
    let server = tokio::spawn(Server::new(io, first, Duration::from_secs(60), service));
    let mut got = BytesMut::new();
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            while let Ok(Some(parsed)) = frame::parse(&mut got, frame::DEFAULT_MAX_FRAME_SIZE) {
                if let Frame::Data { stream: 1, data, end_stream: true, .. } = parsed {
                    return data;
                }
            }
            if client.read_buf(&mut got).await.unwrap_or(0) == 0 {
                return Bytes::new();
            }
        }
    })
    .await;
    assert_eq!(answered.ok(), Some(Bytes::from_static(b"ok")), "stream 1 answered from the first bytes alone");
    drop(client);
    let _ = server.await;
}
