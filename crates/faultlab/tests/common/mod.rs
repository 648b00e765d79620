//! Helpers shared by the faultlab tests: deadlines, raw sockets, a hyper client, a rustls client.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Generous bound for things that should happen at once; only reached when a test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Awaits `fut`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut).await.expect("deadline exceeded")
}

/// Connects and writes `request` as is.
pub async fn send_raw(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = within(TcpStream::connect(addr)).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    stream
}

pub const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// Reads until EOF (or an error).
pub async fn read_all(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    within(stream.read_to_end(&mut buf)).await?;
    Ok(buf)
}

/// Reads until the buffer holds a full response head; returns (head, bytes after it).
pub async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let mut chunk = [0u8; 8192];
        let n = within(stream.read(&mut chunk)).await.expect("read head");
        assert!(n > 0, "EOF before a full head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An HTTP/1.1 client connection over any stream.
pub async fn http1<S, B>(io: S) -> SendRequest<B>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.expect("handshake");
    tokio::spawn(conn);
    send
}

pub fn get_req(path: &str) -> Request<Empty<Bytes>> {
    Request::builder().uri(path).header("host", "localhost").body(Empty::new()).unwrap()
}

/// GET `path` on a fresh connection; returns the response head and the whole body.
pub async fn get(addr: SocketAddr, path: &str) -> (Response<()>, Bytes) {
    let mut send = http1(TcpStream::connect(addr).await.unwrap()).await;
    let resp = within(send.send_request(get_req(path))).await.expect("response");
    collect(resp).await
}

pub async fn collect(resp: Response<Incoming>) -> (Response<()>, Bytes) {
    let (parts, body) = resp.into_parts();
    let body = within(body.collect()).await.expect("body").to_bytes();
    (Response::from_parts(parts, ()), body)
}

/// TLS client handshake to `addr`, presenting `name` as SNI and verification name.
pub async fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>, name: &str) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    within(TlsConnector::from(config).connect(name, tcp)).await
}

/// The rustls error behind a failed handshake.
pub fn rustls_error(err: &io::Error) -> &rustls::Error {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {err:?}"))
}

/// A request body fed from a channel, so a test controls when each chunk is sent.
pub struct ChanBody(pub mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = io::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}
