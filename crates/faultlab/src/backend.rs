//! The well-behaved test backend: a hyper server (HTTP/1.1 keep-alive and HTTP/2, optionally over TLS)
//! answering the routes below, every response tagged `x-backend: {name}`.
//!
//! | route | answer |
//! |---|---|
//! | any other path | 200 `hello from {name}\n` |
//! | `/echo` | 200 JSON: backend, method, uri, version, headers, body (first 64 KiB), body_bytes, trailers |
//! | `/bytes/{n}` | n pattern bytes in 64 KiB chunks; `?chunked=1` drops Content-Length; `?hold=1` pauses after the first chunk until [`Running::release`] |
//! | `/upload` | consumes the body as it streams in, answers `{"body_bytes":N}` |
//! | `/status/{code}` | that status (200-599), body `status {code}\n` |
//! | `/delay/{ms}` | answers after `ms` milliseconds |
//! | `/trailers` | chunked `ok\n` plus trailer `x-trailer: done` (HTTP/1 only if the request has `TE: trailers`: hyper's rule) |
//! | `/keepalive/{secs}` | hello, with `Keep-Alive: timeout={secs}` (the header only; idle connections are kept) |
//!
//! `Expect: 100-continue` is answered by hyper when a route reads the body.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::pki::Identity;
use crate::routes::handle;
use crate::running::{self, Running, Shared};

/// Builder for a test backend.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let b = waygate_faultlab::Backend::new("b1").spawn("127.0.0.1:0".parse().unwrap()).await?;
/// println!("listening on {}", b.addr());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Backend {
    name: Arc<str>,
    tls: Option<Arc<ServerConfig>>,
}

impl Backend {
    /// A plain-HTTP backend answering as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: Arc::from(name.into()), tls: None }
    }

    /// Serve HTTPS with `identity` (ALPN `h2`, `http/1.1`).
    pub fn tls(self, identity: &Identity) -> Self {
        self.tls_config(identity.server_config())
    }

    /// Serve HTTPS with a custom rustls config.
    pub fn tls_config(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Binds `bind` (usually `127.0.0.1:0`) and starts serving on the current runtime.
    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        let acceptor = self.tls.map(TlsAcceptor::from);
        let name = self.name;
        running::serve(listener, move |stream, shared| serve_conn(stream, shared, name.clone(), acceptor.clone()))
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>, name: Arc<str>, tls: Option<TlsAcceptor>) {
    let _ = stream.set_nodelay(true);
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handle(req, shared.clone(), name.clone()))
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    // Connection errors (client reset, bad TLS) are the client's business; the counters tell the story.
    let _ = match tls {
        None => builder.serve_connection(TokioIo::new(stream), service).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
            Err(_) => return,
        },
    };
}
