//! The gateway's own HTTP/2 server (`waygate_proxy::server::h2::Server`) on any frames a client sends after its
//! preface and SETTINGS: the connection never panics, and it always ends once the client has sent everything and
//! closed (no stream, window or header block left waiting forever). Each request is answered with the length of
//! its body, read whole, so that DATA, trailers, flow control and resets on the way are all exercised.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use waygate_proxy::body::ProxyBody;
use waygate_proxy::server::ClientBody;
use waygate_proxy::server::h2::Server;

/// The preface and an empty SETTINGS frame: what every client sends first.
const START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    rt.block_on(async {
        let (mut client, io) = tokio::io::duplex(64 * 1024);
        let service = |req: Request<ClientBody>| async move {
            let len = req.into_body().collect().await.map_or(0, |body| body.to_bytes().len());
            Response::new(ProxyBody::full(len.to_string()))
        };
        let server = Server::new(io, BytesMut::new(), Duration::from_secs(3600), service);
        let talk = async move {
            let _ = client.write_all(START).await;
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            // Everything the server writes is read, to its close.
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        let ended = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(server, talk) }).await;
        assert!(ended.is_ok(), "the connection did not end after the client closed");
    });
});
