//! waygate's data plane: client listeners, routing, target groups, the upstream connection layer and
//! forwarding. [`Gateway`] owns it: start it on a validated configuration, reload it with another, shut it
//! down gracefully.
//!
//! Request flow (ARCHITECTURE.md): `listener` → `forward` (router, then a target from `group`) → `upstream`
//! (pool checkout or connect → TLS) → relay, with every failure classified through the fault catalogue.

pub mod body;
mod forward;
pub mod group;
pub mod guard;
mod headers;
pub mod health;
mod listener;
mod log;
pub mod record;
mod relay;
pub mod request_id;
mod respond;
pub mod router;
pub mod runtime;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use waygate_config::{Config, LogFormat};
use waygate_telemetry::{AccessLog, AccessLogConfig, Metrics, NameParts};

use record::Sink;

use listener::ConnShared;
pub use runtime::Runtime;

/// A listener that is accepting.
struct Bound {
    configured: SocketAddr,
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

/// The running data plane.
pub struct Gateway {
    runtime: Arc<ArcSwap<Runtime>>,
    sink: Arc<Sink>,
    /// The access log settings in force, to restart the writer only when they change.
    access_log: Mutex<Option<waygate_config::AccessLog>>,
    listeners: Mutex<HashMap<String, Bound>>,
    shutdown: watch::Sender<bool>,
    /// Stops the health checkers of the snapshot in force (replaced on every reload).
    health_stop: std::sync::Mutex<watch::Sender<bool>>,
    tracker: mpsc::Sender<()>,
    drained: Mutex<mpsc::Receiver<()>>,
}

/// Why the gateway could not start or reload.
#[derive(Debug)]
pub struct GatewayError(pub String);

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GatewayError {}

/// How a graceful shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished.
    Complete,
    /// The deadline passed with connections still open.
    TimedOut,
}

impl Gateway {
    /// Compiles the configuration and binds every listener. Errors name the listener and address.
    pub async fn start(config: Config) -> Result<Self, GatewayError> {
        let metrics = Arc::new(Metrics::new());
        let runtime = Runtime::build(config, None, &metrics).map_err(GatewayError)?;
        let (shutdown, _) = watch::channel(false);
        let (tracker, drained) = mpsc::channel(1);
        let gw = Self {
            health_stop: std::sync::Mutex::new(watch::channel(false).0),
            sink: Arc::new(Sink::new(metrics)),
            access_log: Mutex::new(None),
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            listeners: Mutex::new(HashMap::new()),
            shutdown,
            tracker,
            drained: Mutex::new(drained),
        };
        // The access log first: a request accepted the moment a listener is up must already have its log.
        gw.sync_access_log().await?;
        gw.sync_listeners().await?;
        gw.restart_health_checks();
        Ok(gw)
    }

    /// Stops the previous snapshot's health checkers and starts the current one's. Health state lives on the
    /// targets, so targets kept by a reload keep their state.
    fn restart_health_checks(&self) {
        let (stop, stop_rx) = watch::channel(false);
        let old =
            std::mem::replace(&mut *self.health_stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner), stop);
        let _ = old.send(true);
        health::spawn_checkers(&self.runtime.load(), &self.sink.metrics, &stop_rx);
    }

    /// The metrics registry (for `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.sink.metrics.clone()
    }

    /// Starts, swaps or stops the access log writer to match the snapshot's `[access_log]`. The old writer is
    /// drained (every queued line written) before this returns.
    async fn sync_access_log(&self) -> Result<(), GatewayError> {
        let wanted = self.runtime.load().config.access_log.clone();
        let mut current = self.access_log.lock().await;
        if *current == wanted {
            return Ok(());
        }
        let handle = match &wanted {
            None => None,
            Some(cfg) => {
                let format = match cfg.format {
                    LogFormat::Alb => waygate_telemetry::LogFormat::Alb,
                    LogFormat::Json => waygate_telemetry::LogFormat::Json,
                };
                let mut log_config = AccessLogConfig::new(&cfg.dir, format, NameParts::new("waygate", &node_name()));
                log_config.gzip = cfg.gzip;
                let (handle, _writer) = AccessLog::start(log_config, self.sink.metrics.access_log_counters())
                    .map_err(|e| GatewayError(format!("access log: cannot write to {}: {e}", cfg.dir.display())))?;
                tracing::info!(target: "waygate::access_log", dir = %cfg.dir.display(), format = ?cfg.format, "access log on");
                Some(handle)
            }
        };
        if let Some(old) = self.sink.set_access_log(handle) {
            old.shutdown().await;
        }
        *current = wanted;
        Ok(())
    }

    /// A handle that always reads the current snapshot (for the admin API, which outlives reloads).
    pub fn runtime_handle(&self) -> Arc<ArcSwap<Runtime>> {
        self.runtime.clone()
    }

    /// The snapshot requests are served from now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The address a listener actually bound (differs from the configured one for port 0).
    pub async fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.listeners.lock().await.get(listener).map(|b| b.local)
    }

    /// Swaps in a new configuration: requests in flight finish on the old snapshot, listeners added to the
    /// file start, removed ones stop accepting. On error nothing changes.
    pub async fn reload(&self, config: Config) -> Result<(), GatewayError> {
        let current = self.runtime.load_full();
        let next = Runtime::build(config, Some(&current), &self.sink.metrics).map_err(GatewayError)?;
        let previous = self.runtime.swap(Arc::new(next));
        let synced = match self.sync_listeners().await {
            Ok(()) => self.sync_access_log().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.runtime.store(previous);
            self.sync_listeners().await?;
            return Err(e);
        }
        self.restart_health_checks();
        Ok(())
    }

    /// Binds listeners the snapshot has and the gateway does not; stops the ones it no longer has.
    async fn sync_listeners(&self) -> Result<(), GatewayError> {
        let rt = self.runtime.load_full();
        let mut bound = self.listeners.lock().await;
        let mut fresh = Vec::new();
        for l in &rt.config.listeners {
            if bound.get(&l.name).is_some_and(|b| b.configured == l.bind) {
                continue;
            }
            // A listener that moved is rebound: stop the old socket first so the new bind can take it.
            if let Some(old) = bound.remove(&l.name) {
                let _ = old.stop.send(true);
            }
            let socket = TcpListener::bind(l.bind)
                .await
                .map_err(|e| GatewayError(format!("listener {:?}: cannot bind {}: {e}", l.name, l.bind)))?;
            fresh.push((l.name.clone(), l.bind, socket));
        }
        bound.retain(|name, b| {
            let keep = rt.listeners.contains_key(name);
            if !keep {
                let _ = b.stop.send(true);
            }
            keep
        });
        for (name, configured, socket) in fresh {
            let local = socket.local_addr().map_err(|e| GatewayError(format!("listener {name:?}: {e}")))?;
            let (stop, stop_rx) = watch::channel(false);
            let shared = ConnShared {
                runtime: self.runtime.clone(),
                shutdown: self.shutdown.subscribe(),
                tracker: self.tracker.clone(),
                sink: self.sink.clone(),
            };
            tokio::spawn(listener::accept_loop(socket, name.clone(), shared, stop_rx));
            tracing::info!(target: "waygate::listener", listener = %name, addr = %local, "listening");
            bound.insert(name, Bound { configured, local, stop });
        }
        Ok(())
    }

    /// Stops accepting, lets in-flight requests finish (up to `deadline`), then returns.
    pub async fn shutdown(self, deadline: Duration) -> Drain {
        for b in self.listeners.lock().await.values() {
            let _ = b.stop.send(true);
        }
        let _ = self.shutdown.send(true);
        let _ = self.health_stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(true);
        drop(self.tracker);
        let mut drained = self.drained.lock().await;
        let outcome = match tokio::time::timeout(deadline, drained.recv()).await {
            Ok(_) => Drain::Complete,
            Err(_) => Drain::TimedOut,
        };
        // Every finished request's line is written before the process exits.
        if let Some(log) = self.sink.set_access_log(None) {
            log.shutdown().await;
        }
        outcome
    }
}

/// This instance's name in access log file names (ALB writes the node's IP there).
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}
