//! WebSocket targets over HTTP/2 (RFC 8441) for `protocol_version = "http2"` groups, h2c with prior knowledge:
//! an echo (hyper's HTTP/2 server with extended CONNECT enabled, tokio-tungstenite on the opened stream), the
//! same server without extended CONNECT (the gateway must say it cannot open a WebSocket there), and one that
//! accepts the CONNECT and resets the stream once the client sends (built on the `h2` crate, whose resets are
//! explicit). Each answers a plain request (a health check) with `200`. Each also serves over TLS
//! ([`WsH2Target::spawn_tls`]), HTTP/2 whatever ALPN selected, so a config without `h2` tests its absence.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::running::{self, Running, Shared};

/// The path whose WebSocket [`WsH2Target::Echo`] refuses.
pub const REFUSED_PATH: &str = "/refuse";
/// The body of that refusal.
pub const REFUSED_BODY: &str = "no WebSocket here\n";

/// A WebSocket target over HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WsH2Target {
    /// Enables extended CONNECT, answers a WebSocket's CONNECT `200` (echoing its first
    /// `Sec-WebSocket-Protocol`) and echoes every message; answers a close with a close. A CONNECT to
    /// [`REFUSED_PATH`] is refused: `403` with a body.
    Echo,
    /// HTTP/2 without SETTINGS_ENABLE_CONNECT_PROTOCOL: plain requests only.
    NoExtendedConnect,
    /// Enables extended CONNECT, answers `200`, and resets the stream (RST_STREAM CANCEL) once the client's first
    /// bytes arrive.
    ResetMidStream,
}

impl WsH2Target {
    /// Starts the target on `bind` (usually `127.0.0.1:0`).
    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        running::serve(listener, move |stream: TcpStream, shared| {
            let _ = stream.set_nodelay(true);
            serve(self, stream, shared)
        })
    }

    /// Starts the target on `bind` behind TLS with `tls` (its certificate, and the ALPN protocols it offers:
    /// see [`crate::Identity::server_config`]).
    pub async fn spawn_tls(self, bind: SocketAddr, tls: Arc<ServerConfig>) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        let acceptor = TlsAcceptor::from(tls);
        running::serve(listener, move |stream: TcpStream, shared| {
            let acceptor = acceptor.clone();
            async move {
                let _ = stream.set_nodelay(true);
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(self, tls, shared).await;
                }
            }
        })
    }
}

async fn serve<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(target: WsH2Target, io: T, shared: Arc<Shared>) {
    if target == WsH2Target::ResetMidStream {
        return reset_mid_stream(io, shared).await;
    }
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    if target == WsH2Target::Echo {
        builder.enable_connect_protocol();
    }
    let service = hyper::service::service_fn(move |req| answer(req, shared.clone()));
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

async fn answer(mut req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    shared.stats.add_request();
    let websocket = req.method() == Method::CONNECT
        && req.extensions().get::<hyper::ext::Protocol>().is_some_and(|p| p.as_str() == "websocket");
    if !websocket {
        return Ok(Response::new(Full::new(Bytes::from_static(b"websocket over HTTP/2 target\n"))));
    }
    if req.uri().path() == REFUSED_PATH {
        let mut refused = Response::new(Full::new(Bytes::from_static(REFUSED_BODY.as_bytes())));
        *refused.status_mut() = http::StatusCode::FORBIDDEN;
        return Ok(refused);
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    let protocol = req.headers().get("sec-websocket-protocol").and_then(|p| p.to_str().ok());
    if let Some(first) = protocol.and_then(|p| p.split(',').next()).and_then(|p| p.trim().parse().ok()) {
        resp.headers_mut().insert("sec-websocket-protocol", first);
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
            if msg.is_text() || msg.is_binary() {
                let len = msg.len();
                shared.stats.add_received(len);
                if ws.send(msg).await.is_err() {
                    return;
                }
                shared.stats.add_sent(len);
            }
        }
        let _ = ws.close(None).await;
    });
    Ok(resp)
}

/// Accepts each extended CONNECT with `200`, then resets its stream when the first DATA arrives.
async fn reset_mid_stream<T: AsyncRead + AsyncWrite + Unpin>(io: T, shared: Arc<Shared>) {
    let mut builder = h2::server::Builder::new();
    builder.enable_connect_protocol();
    let Ok(mut conn) = builder.handshake::<_, Bytes>(io).await else { return };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        shared.stats.add_request();
        let connect = req.method() == Method::CONNECT;
        let Ok(mut send) = respond.send_response(Response::new(()), !connect) else { continue };
        if !connect {
            continue;
        }
        let mut body = req.into_body();
        tokio::spawn(async move {
            let _ = body.data().await;
            send.send_reset(h2::Reason::CANCEL);
        });
    }
}
