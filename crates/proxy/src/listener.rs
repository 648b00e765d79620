//! Client-facing listeners: accept, optional TLS (ALPN h2 and http/1.1), then HTTP/1.1 and HTTP/2 on the same
//! port through hyper-util's auto server (h2c with prior knowledge on plain listeners). Each connection is
//! watched for `idle_timeout` (no bytes either way and no request in flight) and `client_keep_alive` (age),
//! and drains gracefully on shutdown: a response in progress finishes, then the connection closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::forward::{self, ClientConn};
use crate::guard::{Guarded, Verdicts};
use crate::record::{ConnFacts, Sink, TlsInfo};
use crate::runtime::{ListenerRuntime, Runtime};
use crate::upstream::{ConnCounters, meter::Metered};
use waygate_telemetry::{Side, new_conn_trace_id};

/// Client TLS handshakes must finish within this time.
const CLIENT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection task shares.
#[derive(Clone)]
pub struct ConnShared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Flips to true when the gateway shuts down: connections finish what is in flight, then close.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every connection task; the gateway waits for all clones to drop when draining.
    pub tracker: mpsc::Sender<()>,
    pub sink: Arc<Sink>,
}

/// A listener's names as records carry them, made once per listener rather than per connection.
#[derive(Clone)]
struct Names {
    listener: Arc<str>,
    elb: Arc<str>,
}

/// Accepts connections until `stop` flips.
pub async fn accept_loop(listener: TcpListener, name: String, shared: ConnShared, mut stop: watch::Receiver<bool>) {
    let names = Names { elb: format!("app/waygate/{name}").into(), listener: name.into() };
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let shared = shared.clone();
                let names = names.clone();
                tokio::spawn(async move { serve_connection(tcp, peer, names, shared).await });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning on the error.
                shared.sink.metrics.connection_rejected(&names.listener);
                tracing::warn!(target: "waygate::listener", listener = %names.listener, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(tcp: TcpStream, peer: SocketAddr, names: Names, shared: ConnShared) {
    let _tracker = shared.tracker.clone();
    let _open = shared.sink.metrics.connection_opened(Side::Client);
    let Some(listener) = shared.runtime.load().listeners.get(&*names.listener).cloned() else { return };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(peer);
    let counters = ConnCounters::new(peer, local);
    let io = Metered::new(tcp, counters.clone());
    let facts = |tls| ConnFacts {
        listener: names.listener.clone(),
        elb: names.elb.clone(),
        conn_trace_id: new_conn_trace_id(),
        tls,
        port: local.port(),
    };
    let client = |tls: Option<TlsInfo>| ClientConn {
        verdicts: Arc::new(Verdicts::default()),
        peer,
        client_ip: crate::headers::client_ip_header(peer.ip()),
        proto: if tls.is_some() { "https" } else { "http" },
        port_header: HeaderValue::from(local.port()),
        facts: facts(tls),
        sink: shared.sink.clone(),
    };
    match &listener.tls {
        None => serve_http(io, client(None), counters, &listener, shared.clone()).await,
        Some(tls) => {
            let accept = TlsAcceptor::from(tls.clone()).accept(io);
            match tokio::time::timeout(CLIENT_TLS_HANDSHAKE_TIMEOUT, accept).await {
                Ok(Ok(stream)) => {
                    let info = TlsInfo::of(stream.get_ref().1);
                    serve_http(stream, client(Some(info)), counters, &listener, shared.clone()).await;
                }
                Ok(Err(e)) => {
                    shared.sink.metrics.client_tls_error(&names.listener);
                    tracing::debug!(target: "waygate::listener", listener = %names.listener, client = %peer, error = %e, "client TLS handshake failed");
                }
                Err(_) => {
                    shared.sink.metrics.client_tls_error(&names.listener);
                    tracing::debug!(target: "waygate::listener", listener = %names.listener, client = %peer, "client TLS handshake timed out");
                }
            }
        }
    }
}

/// Decrements the connection's in-flight count even when hyper drops a request future early.
struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_http<I>(
    io: I,
    client: ClientConn,
    counters: Arc<ConnCounters>,
    listener: &ListenerRuntime,
    shared: ConnShared,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &listener.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The guard owns the request-head timeout (so it can answer 408 with a cause); hyper's would race it.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let verdicts = client.verdicts.clone();
    let client = Arc::new(client);
    let runtime = shared.runtime.clone();
    let requests = in_flight.clone();
    let service = service_fn(move |req| {
        let rt = runtime.load_full();
        let client = client.clone();
        requests.fetch_add(1, Ordering::Relaxed);
        let guard = InFlightGuard(requests.clone());
        async move {
            let resp = forward::handle(rt, client, req).await;
            drop(guard);
            resp
        }
    });
    let io = Guarded::new(io, cfg.desync_mitigation, cfg.request_header_timeout, verdicts);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut shutdown = shared.shutdown.clone();
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    let (idle_timeout, keep_alive) = (cfg.idle_timeout, cfg.client_keep_alive);
    let opened = Instant::now();
    loop {
        let now = Instant::now();
        let idle_left = idle_timeout.saturating_sub(counters.last_io_ago(now));
        let age_left = keep_alive.saturating_sub(now.saturating_duration_since(opened));
        let wake = idle_left.min(age_left).max(Duration::from_millis(10));
        tokio::select! {
            _ = conn.as_mut() => break,
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(wake), if !closing => {
                let now = Instant::now();
                let idle = in_flight.load(Ordering::Relaxed) == 0 && counters.last_io_ago(now) >= idle_timeout;
                let expired = now.saturating_duration_since(opened) >= keep_alive;
                if idle || expired {
                    // Idle: closes at once. Expired: the request in progress finishes with `Connection: close`
                    // (HTTP/1) or a GOAWAY (HTTP/2), as ALB does after client_keep_alive.
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
