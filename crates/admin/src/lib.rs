//! The admin listener: `/live`, `/ready`, `/metrics` (Prometheus text) and `GET /api/v1/target-groups`; the
//! rest of the admin API as it lands. It runs on its own
//! thread with its own single-threaded runtime, so an overloaded data plane cannot starve the endpoints an
//! operator (or an orchestrator's probe) needs most during an incident.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use waygate_proxy::Runtime;
use waygate_telemetry::{CONTENT_TYPE, Metrics};

mod auth;
mod groups;

pub use auth::Token;

/// What the admin endpoints report.
#[derive(Debug, Default)]
pub struct AdminState {
    /// Configuration loaded and listeners bound.
    pub ready: AtomicBool,
    /// The gateway's metrics registry, once the gateway exists.
    pub metrics: OnceLock<Arc<Metrics>>,
    /// The gateway's current snapshot, once the gateway exists.
    pub runtime: OnceLock<Arc<ArcSwap<Runtime>>>,
    /// Required on everything but /live and /ready when set.
    pub token: Option<Token>,
}

/// The running admin listener; dropping it stops the thread.
pub struct AdminHandle {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds the admin address now (so a taken port fails startup with a clear error) and serves on a thread.
pub fn spawn(bind: SocketAddr, state: Arc<AdminState>) -> Result<AdminHandle, String> {
    let std_listener = std::net::TcpListener::bind(bind).map_err(|e| format!("admin: cannot bind {bind}: {e}"))?;
    std_listener.set_nonblocking(true).map_err(|e| format!("admin: {e}"))?;
    let addr = std_listener.local_addr().map_err(|e| format!("admin: {e}"))?;
    let (stop, mut stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("waygate-admin".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(target: "waygate::admin", error = %e, "admin runtime failed to start");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
                loop {
                    let (tcp, _) = tokio::select! {
                        r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                        _ = stop_rx.changed() => break,
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(state.clone(), req));
                        let _ =
                            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                    });
                }
            });
        })
        .map_err(|e| format!("admin: cannot start thread: {e}"))?;
    tracing::info!(target: "waygate::admin", addr = %addr, "admin listening");
    Ok(AdminHandle { addr, stop, thread: Some(thread) })
}

/// Admin requests are small: anything larger is refused before it is read.
const MAX_REQUEST_BODY: u64 = 64 * 1024;

async fn handle(state: Arc<AdminState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let open = matches!(path, "/live" | "/ready");
    if let Some(token) = state.token.as_ref().filter(|_| !open)
        && !token.accepts(req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()))
    {
        let mut resp = text(StatusCode::UNAUTHORIZED, "admin token required: Authorization: Bearer <token>\n");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        return Ok(resp);
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY) {
        return Ok(text(StatusCode::PAYLOAD_TOO_LARGE, "admin request body over 64 KiB\n"));
    }
    if (req.method(), req.uri().path()) == (&Method::GET, "/metrics")
        && let Some(metrics) = state.metrics.get()
    {
        let mut resp = Response::new(Full::new(Bytes::from(metrics.encode())));
        resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(CONTENT_TYPE));
        return Ok(resp);
    }
    if (req.method(), req.uri().path()) == (&Method::GET, "/api/v1/target-groups")
        && let Some(rt) = state.runtime.get()
    {
        let body = serde_json::to_vec_pretty(&groups::target_groups(&rt.load())).unwrap_or_default();
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        return Ok(resp);
    }
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/live") => (StatusCode::OK, "live\n"),
        (&Method::GET, "/ready") if state.ready.load(Ordering::Relaxed) => (StatusCode::OK, "ready\n"),
        (&Method::GET, "/ready") => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (&Method::GET, "/metrics") => (StatusCode::SERVICE_UNAVAILABLE, "gateway starting: no metrics yet\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(text(status, body))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
