//! The admin listener: `/live`, `/ready`, `/metrics` (Prometheus text), target groups with their health and
//! draining state, registration and deregistration, the audit log and reload (INTERFACE.md's admin API), the
//! alert rules' state, the flight recorder's failed exchanges, debug (trace) sessions, and the live dashboard
//! page with the summary it polls. It runs on its own thread with its own single-threaded runtime, so an
//! overloaded data plane cannot starve the endpoints an operator (or an orchestrator's probe) needs most during
//! an incident; changes it asks for run on the gateway's runtime. `serve` holds the accept loop and the limits
//! that keep it reachable (header timeout, connection cap, accept back-off).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::watch;
use waygate_proxy::Gateway;
use waygate_telemetry::CONTENT_TYPE;

mod alerts;
mod audit;
mod auth;
mod control;
mod debug_sessions;
mod exchanges;
mod groups;
mod reply;
mod serve;
pub mod summary;

use reply::Reply;

pub use auth::Token;
/// The register endpoint's body parser, public for the fuzz target (fuzz/fuzz_targets/admin_body.rs).
pub use control::parse_targets;
/// The debug-session body parser, public for the fuzz target (fuzz/fuzz_targets/debug_session.rs).
pub use debug_sessions::parse_debug_session;
pub use serve::Limits;

/// What the admin endpoints report.
#[derive(Debug, Default)]
pub struct AdminState {
    /// Configuration loaded and listeners bound.
    pub ready: AtomicBool,
    /// The gateway, once it exists.
    pub gateway: OnceLock<Gateway>,
    /// Required on everything but /live and /ready when set.
    pub token: Option<Token>,
    /// The file `POST /api/v1/reload` reads (none for the demo).
    pub config_path: Option<PathBuf>,
    /// The dashboard chart's recent past.
    pub history: summary::History,
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
    spawn_with(bind, state, Limits::default())
}

/// [`spawn`] with other limits than the defaults (tests shorten the header timeout).
pub fn spawn_with(bind: SocketAddr, state: Arc<AdminState>, limits: Limits) -> Result<AdminHandle, String> {
    let std_listener = std::net::TcpListener::bind(bind).map_err(|e| format!("admin: cannot bind {bind}: {e}"))?;
    std_listener.set_nonblocking(true).map_err(|e| format!("admin: {e}"))?;
    let addr = std_listener.local_addr().map_err(|e| format!("admin: {e}"))?;
    let (stop, stop_rx) = watch::channel(false);
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
                let sampled = state.clone();
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(summary::HISTORY_EVERY);
                    loop {
                        every.tick().await;
                        if let Some(gw) = sampled.gateway.get() {
                            sampled.history.sample(gw);
                        }
                    }
                });
                serve::serve(listener, state, limits, stop_rx, handle).await;
            });
        })
        .map_err(|e| format!("admin: cannot start thread: {e}"))?;
    tracing::info!(target: "waygate::admin", addr = %addr, "admin listening");
    Ok(AdminHandle { addr, stop, thread: Some(thread) })
}

/// The dashboard: one self-contained page (styles and script inline, nothing fetched but the admin API).
const DASHBOARD: &str = include_str!("../assets/dashboard.html");

/// Admin requests are small: anything larger is refused.
const MAX_REQUEST_BODY: usize = 64 * 1024;

async fn handle(state: Arc<AdminState>, peer: SocketAddr, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_owned();
    let open = matches!(path.as_str(), "/live" | "/ready");
    // Who is asking: the token's name, recorded as the actor of any change.
    let actor = match (&state.token, open) {
        (Some(token), false) => match token.identify(req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes())) {
            Some(name) => name.to_owned(),
            None => {
                let mut resp =
                    reply::text(StatusCode::UNAUTHORIZED, "admin token required: Authorization: Bearer <token>\n");
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
                // Browsers (the dashboard) prompt on a Basic challenge; the token is the password.
                resp.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Basic realm=\"waygate admin\", charset=\"UTF-8\""),
                );
                return Ok(resp);
            }
        },
        _ => format!("anonymous@{}", peer.ip()),
    };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return Ok(reply::text(StatusCode::PAYLOAD_TOO_LARGE, "admin request body over 64 KiB\n"));
    }
    let method = req.method().clone();
    let segments: Vec<String> = path.trim_matches('/').split('/').map(reply::percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let gateway = state.gateway.get();
    let resp = match (&method, segments.as_slice(), gateway) {
        (&Method::GET, ["live"], _) => reply::text(StatusCode::OK, "live\n"),
        (&Method::GET, ["ready"], _) if state.ready.load(Ordering::Relaxed) => reply::text(StatusCode::OK, "ready\n"),
        (&Method::GET, ["ready"], _) => reply::text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (&Method::GET, ["metrics"], Some(gw)) => {
            let mut resp = Response::new(Full::new(Bytes::from(gw.metrics().encode())));
            resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(CONTENT_TYPE));
            resp
        }
        (_, ["api", ..] | ["metrics"], None) => {
            reply::text(StatusCode::SERVICE_UNAVAILABLE, "gateway starting: not available yet\n")
        }
        (&Method::GET, ["api", "v1", "target-groups"], Some(gw)) => {
            reply::json(StatusCode::OK, &groups::target_groups(gw, None))
        }
        (&Method::GET, ["api", "v1", "target-groups", name], Some(gw)) => match groups::target_groups(gw, Some(name)) {
            v if v["target_groups"].as_array().is_some_and(|a| a.is_empty()) => {
                reply::error(StatusCode::NOT_FOUND, &format!("no target group named {name:?}"))
            }
            v => reply::json(StatusCode::OK, &v["target_groups"][0]),
        },
        (&Method::GET, ["api", "v1", "target-groups", name, "targets", address], Some(gw)) => {
            match groups::target(gw, name, address) {
                Some(v) => reply::json(StatusCode::OK, &v),
                None => reply::error(StatusCode::NOT_FOUND, &format!("no target group named {name:?}")),
            }
        }
        (&Method::POST, ["api", "v1", "target-groups", name, "targets"], Some(gw)) => {
            match reply::read_body(req.into_body(), MAX_REQUEST_BODY).await {
                Ok(body) => control::register(gw, name, &body, &actor).await,
                Err(resp) => resp,
            }
        }
        (&Method::DELETE, ["api", "v1", "target-groups", name, "targets", address], Some(gw)) => {
            control::deregister(gw, name, address, &actor).await
        }
        (&Method::GET, ["api", "v1", "alerts"], Some(gw)) => reply::json(StatusCode::OK, &alerts::alerts(gw)),
        (&Method::GET, ["api", "v1", "exchanges", request_id], Some(gw)) => exchanges::exchange(gw, request_id),
        (&Method::POST, ["api", "v1", "debug-sessions"], Some(gw)) => {
            match reply::read_body(req.into_body(), MAX_REQUEST_BODY).await {
                Ok(body) => debug_sessions::start(gw, &body, &actor),
                Err(resp) => resp,
            }
        }
        (&Method::GET, ["api", "v1", "debug-sessions"], Some(gw)) => debug_sessions::list(gw),
        (&Method::GET, ["api", "v1", "debug-sessions", id], Some(gw)) => debug_sessions::get(gw, id),
        (&Method::DELETE, ["api", "v1", "debug-sessions", id], Some(gw)) => debug_sessions::stop(gw, id, &actor),
        (&Method::GET, ["api", "v1", "summary"], Some(gw)) => {
            reply::json(StatusCode::OK, &summary::summary(gw, &state.history))
        }
        (&Method::GET, ["dashboard"], _) => reply::html(DASHBOARD),
        (&Method::GET, ["api", "v1", "audit"], Some(gw)) => audit::audit(gw, req.uri().query()),
        (&Method::POST, ["api", "v1", "reload"], Some(gw)) => {
            control::reload(gw, state.config_path.as_deref(), &actor).await
        }
        _ => reply::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(resp)
}
