//! The control plane: the [`Gateway`] controller (start, reload, register, deregister, shutdown), the
//! registrations and draining of targets ([`registry`], [`drain`]), the compiling of a configuration into
//! the data plane's [`Runtime`] snapshot ([`build`]) and active health checks ([`health`]). Everything here
//! runs off the request path and drives the data plane's modules; none of them imports this one.

pub mod build;
mod drain;
pub mod health;
mod health_h2;
pub mod registry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use waygate_config::{Config, LogFormat, TargetSpec};
use waygate_telemetry::otlp::OtlpExporter;
use waygate_telemetry::{AccessLog, AccessLogConfig, FlightRecorder, Metrics, NameParts};

pub use registry::{ControlError, Draining};
use registry::{Registrations, Registry};

use crate::audit::{Action, AuditLog};
use crate::listener::{self, ConnShared};
use crate::lock;
use crate::record::Sink;
use crate::runtime::Runtime;
use crate::target::Target;
use crate::workers::Workers;

/// A listener that is accepting.
struct Bound {
    configured: SocketAddr,
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

/// The running data plane. A cheap handle: clones share one gateway, and its control operations (reload,
/// register, deregister, shutdown) may be called from any thread or runtime (the admin API runs on its own);
/// they run on the runtime the gateway started on.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

struct Inner {
    runtime: Arc<ArcSwap<Runtime>>,
    sink: Arc<Sink>,
    /// The last failed exchanges (`[admin] flight_recorder`, sized at start), attached to `sink`.
    flight: Arc<FlightRecorder>,
    /// The access log settings in force, to restart the writer only when they change.
    access_log: Mutex<Option<waygate_config::AccessLog>>,
    /// `[tracing]` in force and its exporter (attached to `sink`), restarted only when it changes.
    tracing: Mutex<Option<(waygate_config::Tracing, Arc<OtlpExporter>)>>,
    listeners: Mutex<HashMap<String, Bound>>,
    shutdown: watch::Sender<bool>,
    /// Stops the health checkers of the snapshot in force (replaced on every reload).
    health_stop: std::sync::Mutex<watch::Sender<bool>>,
    /// Cloned into every connection task; taken (dropped) by shutdown so `drained` sees the last one go.
    tracker: std::sync::Mutex<Option<mpsc::Sender<()>>>,
    drained: Mutex<mpsc::Receiver<()>>,
    /// Registrations, draining targets and the audit log.
    registry: Arc<Registry>,
    /// One control-plane change at a time (reload, register, deregister).
    control: Mutex<()>,
    /// The runtime the gateway started on: its tasks run there whoever asks.
    handle: tokio::runtime::Handle,
    /// Where client connections run; `None`: on `handle`'s runtime.
    workers: Option<Arc<Workers>>,
    /// The open tunnels (WebSockets): closed by shutdown once the rest has drained.
    tunnels: Arc<crate::tunnel::Tunnels>,
}

/// Why the gateway could not start or reload.
#[derive(Debug)]
pub struct GatewayError(pub String);

/// Why a reload from a file was refused. Either way the running configuration stays, and the audit log has a
/// `reload_rejected` event saying why.
#[derive(Debug)]
pub enum ReloadError {
    /// The file did not load (every error located at file:line:col).
    Config(waygate_config::ConfigErrors),
    /// It loaded but could not be applied (e.g. a new listener could not bind).
    Apply(GatewayError),
}

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

/// A deregistration that was accepted: the target drains for `delay` at most.
#[derive(Debug, Clone)]
pub struct Deregistered {
    pub target: String,
    pub delay: Duration,
    pub in_flight: u32,
    /// The audit event of this deregistration: its drain's end is a later event.
    pub audit_seq: u64,
}

impl Gateway {
    /// Compiles the configuration and binds every listener. Errors name the listener and address. Client
    /// connections run on the calling runtime.
    pub async fn start(config: Config) -> Result<Self, GatewayError> {
        Self::launch(config, None).await
    }

    /// [`Gateway::start`], with client connections served on `workers` (thread-per-core) and the control
    /// plane (accepting, health checks, reloads, drains) on the calling runtime.
    pub async fn start_with_workers(config: Config, workers: Arc<Workers>) -> Result<Self, GatewayError> {
        Self::launch(config, Some(workers)).await
    }

    async fn launch(config: Config, workers: Option<Arc<Workers>>) -> Result<Self, GatewayError> {
        let metrics = Arc::new(Metrics::new());
        let registry = Arc::new(Registry::default());
        let (config, registrations, changes) = registry.plan_load(config);
        registry.commit(registrations);
        for c in changes {
            let details = "registered: listed in the configuration file".to_owned();
            registry.audit.record("config", c.action, Some(&c.group), Some(&c.target), details);
        }
        let pool_slots = workers.as_ref().map_or(1, |w| w.len());
        let runtime = build::runtime(config, None, &metrics, &registry, pool_slots).map_err(GatewayError)?;
        build::publish_certificates(&runtime, None, &metrics);
        let (shutdown, _) = watch::channel(false);
        let (tracker, drained) = mpsc::channel(1);
        let sink = Arc::new(Sink::new(metrics));
        sink.alerts.configure(&runtime.config.alerts);
        waygate_telemetry::Alerts::start(&sink.alerts).map_err(|e| GatewayError(format!("alerts: {e}")))?;
        let flight = Arc::new(FlightRecorder::new(runtime.config.admin.flight_recorder));
        if flight.capacity() > 0 {
            sink.set_observer("flight_recorder", Some(flight.clone()));
        }
        sink.set_observer("debug_sessions", Some(sink.debug.clone()));
        let inner = Inner {
            flight,
            health_stop: std::sync::Mutex::new(watch::channel(false).0),
            sink,
            access_log: Mutex::new(None),
            tracing: Mutex::new(None),
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            listeners: Mutex::new(HashMap::new()),
            shutdown,
            tracker: std::sync::Mutex::new(Some(tracker)),
            drained: Mutex::new(drained),
            registry,
            control: Mutex::new(()),
            handle: tokio::runtime::Handle::current(),
            workers,
            tunnels: Arc::default(),
        };
        // The access log first: a request accepted the moment a listener is up must already have its log.
        inner.sync_access_log().await?;
        inner.sync_tracing().await?;
        inner.sync_connection_log().await?;
        inner.sync_listeners().await?;
        inner.restart_health_checks();
        tokio::spawn(build::watch_expiry(inner.runtime.clone(), inner.shutdown.subscribe()));
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Runs `f` on the gateway's own runtime and waits for it.
    async fn on_gateway<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Inner>) -> futures_util::future::BoxFuture<'static, T> + Send + 'static,
        lost: impl FnOnce(String) -> T,
    ) -> T {
        let inner = self.inner.clone();
        match self.inner.handle.spawn(f(inner)).await {
            Ok(v) => v,
            Err(e) => lost(format!("control task failed: {e}")),
        }
    }

    /// The metrics registry (for `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.sink.metrics.clone()
    }

    /// The alert rules and their state (for `GET /api/v1/alerts`).
    pub fn alerts(&self) -> Arc<waygate_telemetry::Alerts> {
        self.inner.sink.alerts.clone()
    }

    /// The last failed exchanges (for `GET /api/v1/exchanges/{request_id}`).
    pub fn flight_recorder(&self) -> Arc<FlightRecorder> {
        self.inner.flight.clone()
    }

    /// The debug (trace) sessions (for `/api/v1/debug-sessions`).
    pub fn debug_sessions(&self) -> Arc<waygate_telemetry::debug::Sessions> {
        self.inner.sink.debug.clone()
    }

    /// The control-plane events (for `GET /api/v1/audit`).
    pub fn audit(&self) -> Arc<AuditLog> {
        self.inner.registry.audit.clone()
    }

    /// The targets draining now.
    pub fn draining(&self) -> Vec<Draining> {
        self.inner.registry.draining()
    }

    /// The snapshot requests are served from now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.inner.runtime.load_full()
    }

    /// The address a listener actually bound (differs from the configured one for port 0).
    pub async fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.inner.listeners.lock().await.get(listener).map(|b| b.local)
    }

    /// Loads `path` and applies it as [`Gateway::reload_by`] does; what SIGHUP and the admin API both do. A file
    /// that does not load is refused and audited like one that cannot be applied.
    pub async fn reload_file(&self, path: &std::path::Path, actor: &str) -> Result<(), ReloadError> {
        let config = match waygate_config::load_checked(path) {
            Ok(config) => config,
            Err(e) => {
                self.audit().record(actor, Action::ReloadRejected, None, None, e.to_string());
                return Err(ReloadError::Config(e));
            }
        };
        self.reload_by(config, actor).await.map_err(ReloadError::Apply)
    }

    /// [`Gateway::reload_by`] with the actor "config".
    pub async fn reload(&self, config: Config) -> Result<(), GatewayError> {
        self.reload_by(config, "config").await
    }

    /// Swaps in a new configuration: requests in flight finish on the old snapshot, listeners added to the
    /// file start, removed ones stop accepting, targets removed from the file drain. The file's own target
    /// changes since its last load apply on top of registrations made through the API. On error nothing
    /// changes. `actor` is recorded in the audit log ("signal", an admin token's name ...).
    pub async fn reload_by(&self, config: Config, actor: &str) -> Result<(), GatewayError> {
        let actor = actor.to_owned();
        self.on_gateway(
            move |inner| Box::pin(async move { inner.reload(config, &actor).await }),
            |e| Err(GatewayError(e)),
        )
        .await
    }

    /// Registers targets in a group (already registered ones are left as they are); returns those added.
    pub async fn register(
        &self,
        group: &str,
        targets: Vec<TargetSpec>,
        actor: &str,
    ) -> Result<Vec<TargetSpec>, ControlError> {
        let (group, actor) = (group.to_owned(), actor.to_owned());
        self.on_gateway(
            move |inner| Box::pin(async move { inner.register(&group, &targets, &actor).await }),
            |e| Err(ControlError::Failed(e)),
        )
        .await
    }

    /// Deregisters a target (`host:port`): it drains for the group's deregistration_delay.
    pub async fn deregister(&self, group: &str, target: &str, actor: &str) -> Result<Deregistered, ControlError> {
        let (group, target, actor) = (group.to_owned(), target.to_owned(), actor.to_owned());
        self.on_gateway(
            move |inner| Box::pin(async move { inner.deregister(&group, &target, &actor).await }),
            |e| Err(ControlError::Failed(e)),
        )
        .await
    }

    /// Stops accepting, lets in-flight requests finish (up to `deadline`), then returns.
    pub async fn shutdown(&self, deadline: Duration) -> Drain {
        self.on_gateway(move |inner| Box::pin(async move { inner.shutdown(deadline).await }), |_| Drain::TimedOut).await
    }
}

impl Inner {
    /// Stops the previous snapshot's health checkers and starts the current one's. Health state lives on the
    /// targets, so targets kept by a reload keep their state.
    fn restart_health_checks(&self) {
        let (stop, stop_rx) = watch::channel(false);
        let old = std::mem::replace(&mut *lock(&self.health_stop), stop);
        let _ = old.send(true);
        health::spawn_checkers(&self.runtime.load(), &self.sink.metrics, &stop_rx);
    }

    /// Starts, moves or stops the connection log to match the snapshot's `[connection_log]`.
    async fn sync_connection_log(&self) -> Result<(), GatewayError> {
        let wanted = self.runtime.load().config.connection_log.as_ref().map(|c| c.dir.clone());
        let counters = self.sink.metrics.connection_log_counters();
        self.sink.connection_log.sync(wanted, &node_name(), counters).await.map_err(GatewayError)
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

    /// Starts, replaces or stops the OTLP exporter to match the snapshot's `[tracing]`. A replaced exporter
    /// exports what it holds on its own thread; the reload does not wait for its collector.
    async fn sync_tracing(&self) -> Result<(), GatewayError> {
        let wanted = self.runtime.load().config.tracing.clone();
        let mut current = self.tracing.lock().await;
        if current.as_ref().map(|(c, _)| c) == wanted.as_ref() {
            return Ok(());
        }
        let next = match wanted {
            None => None,
            Some(cfg) => {
                let exporter = OtlpExporter::start(&cfg, self.sink.metrics.tracing_counters())
                    .map_err(|e| GatewayError(format!("[tracing]: cannot start the OTLP exporter: {e}")))?;
                tracing::info!(target: "waygate::tracing", endpoint = %cfg.otlp_endpoint, sample_ratio = cfg.sample_ratio,
                    "OTLP export on");
                Some((cfg, exporter))
            }
        };
        self.sink.set_observer(TRACING, next.as_ref().map(|(_, e)| e.clone() as Arc<dyn waygate_telemetry::Observer>));
        if let Some((config, old)) = std::mem::replace(&mut *current, next) {
            tokio::spawn(async move { old.shutdown(config.export_timeout).await });
        }
        Ok(())
    }

    async fn reload(&self, config: Config, actor: &str) -> Result<(), GatewayError> {
        let _one = self.control.lock().await;
        let (config, registrations, changes) = self.registry.plan_load(config);
        match self.apply(config, registrations).await {
            Ok(drains) => {
                let audit = &self.registry.audit;
                for c in &changes {
                    let details = match c.action {
                        Action::Register => "registered: added to the configuration file",
                        _ => "deregistered: removed from the configuration file",
                    };
                    audit.record(actor, c.action, Some(&c.group), Some(&c.target), details.to_owned());
                }
                audit.record(
                    actor,
                    Action::Reload,
                    None,
                    None,
                    format!("configuration reloaded ({} target changes)", changes.len()),
                );
                self.start_drains(drains, actor);
                Ok(())
            }
            Err(e) => {
                self.registry.audit.record(actor, Action::ReloadRejected, None, None, e.0.clone());
                Err(e)
            }
        }
    }

    async fn register(
        &self,
        group: &str,
        targets: &[TargetSpec],
        actor: &str,
    ) -> Result<Vec<TargetSpec>, ControlError> {
        let _one = self.control.lock().await;
        let current = (*self.runtime.load().config).clone();
        let (config, registrations, added) = self.registry.plan_register(current, group, targets)?;
        if added.is_empty() {
            return Ok(added);
        }
        let drains = self.apply(config, registrations).await.map_err(|e| ControlError::Failed(e.0))?;
        self.start_drains(drains, actor);
        for t in &added {
            self.registry.audit.record(
                actor,
                Action::Register,
                Some(group),
                Some(&t.authority()),
                format!("registered (weight {})", t.weight),
            );
        }
        Ok(added)
    }

    async fn deregister(&self, group: &str, target: &str, actor: &str) -> Result<Deregistered, ControlError> {
        let _one = self.control.lock().await;
        let current = (*self.runtime.load().config).clone();
        let (config, registrations, removed) = self.registry.plan_deregister(current, group, target)?;
        let old = self.runtime.load_full();
        let old_group = old.groups.get(group);
        let delay = old_group.map_or(Duration::ZERO, |g| g.config.deregistration_delay);
        let in_flight = old_group
            .and_then(|g| g.targets.iter().find(|t| t.spec.host == removed.host && t.spec.port == removed.port))
            .map_or(0, |t| t.in_flight());
        let drains = self.apply(config, registrations).await.map_err(|e| ControlError::Failed(e.0))?;
        let authority = removed.authority();
        let audit_seq = self.registry.audit.record(
            actor,
            Action::Deregister,
            Some(group),
            Some(&authority),
            format!("deregistered: draining for up to {} ({in_flight} request(s) in flight)", seconds(delay)),
        );
        self.start_drains(drains, actor);
        Ok(Deregistered { target: authority, delay, in_flight, audit_seq })
    }

    /// Starts draining the targets that left (after the caller recorded why, so the audit log reads in order).
    fn start_drains(&self, drains: Vec<Leaving>, actor: &str) {
        for Leaving { group, target, delay } in drains {
            self.registry.begin_drain(&self.handle, &group, target, delay, actor);
        }
    }

    /// Slots of every target's pool: one per worker thread (one without workers).
    fn pool_slots(&self) -> usize {
        self.workers.as_ref().map_or(1, |w| w.len())
    }

    /// Builds and swaps in a snapshot of `config` (whose target lists are the registered ones) and revives
    /// the targets registered again; returns the targets that left, for [`Inner::start_drains`]. The caller
    /// holds `control`.
    async fn apply(&self, config: Config, registrations: Registrations) -> Result<Vec<Leaving>, GatewayError> {
        let current = self.runtime.load_full();
        let mut next = Arc::new(
            build::runtime(config, Some(&current), &self.sink.metrics, &self.registry, self.pool_slots())
                .map_err(GatewayError)?,
        );
        // A draining target revived by the build may have been retired in the meantime: build once more
        // without it (the build never reuses a retired target).
        if has_retired(&next) {
            let config = (*next.config).clone();
            next = Arc::new(
                build::runtime(config, Some(&next), &self.sink.metrics, &self.registry, self.pool_slots())
                    .map_err(GatewayError)?,
            );
        }
        let previous = self.runtime.swap(next.clone());
        let synced = match self.sync_listeners().await {
            Ok(()) => match self.sync_access_log().await {
                Ok(()) => match self.sync_connection_log().await {
                    Ok(()) => self.sync_tracing().await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.runtime.store(previous);
            self.sync_listeners().await?;
            return Err(e);
        }
        self.registry.commit(registrations);
        build::publish_certificates(&next, Some(&previous), &self.sink.metrics);
        self.sink.alerts.configure(&next.config.alerts);
        let in_service: Vec<(String, Arc<Target>)> =
            next.groups.iter().flat_map(|(name, g)| g.targets.iter().map(move |t| (name.clone(), t.clone()))).collect();
        self.registry.revived(&in_service);
        let mut leaving = Vec::new();
        for (name, old_group) in &previous.groups {
            let new_group = next.groups.get(name);
            for t in &old_group.targets {
                let stays = new_group.is_some_and(|g| g.targets.iter().any(|n| Arc::ptr_eq(n, t)));
                // Same address, new connection settings: requests in flight on the old one just finish.
                let replaced = new_group.is_some_and(|g| g.targets.iter().any(|n| n.authority == t.authority));
                if stays || replaced || t.lifecycle.is_draining() {
                    continue;
                }
                let delay = old_group.config.deregistration_delay;
                leaving.push(Leaving { group: name.clone(), target: t.clone(), delay });
            }
        }
        self.restart_health_checks();
        Ok(leaving)
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
        let Some(tracker) = lock(&self.tracker).clone() else {
            return Err(GatewayError("the gateway is shutting down".to_owned()));
        };
        for (name, configured, socket) in fresh {
            let local = socket.local_addr().map_err(|e| GatewayError(format!("listener {name:?}: {e}")))?;
            let (stop, stop_rx) = watch::channel(false);
            let shared = ConnShared {
                runtime: self.runtime.clone(),
                shutdown: self.shutdown.subscribe(),
                tracker: tracker.clone(),
                sink: self.sink.clone(),
                workers: self.workers.clone(),
                tunnels: self.tunnels.clone(),
            };
            tokio::spawn(listener::accept_loop(socket, name.clone(), shared, stop_rx));
            tracing::info!(target: "waygate::listener", listener = %name, addr = %local, "listening");
            bound.insert(name, Bound { configured, local, stop });
        }
        Ok(())
    }

    async fn shutdown(&self, deadline: Duration) -> Drain {
        for b in self.listeners.lock().await.values() {
            let _ = b.stop.send(true);
        }
        let _ = self.shutdown.send(true);
        let _ = lock(&self.health_stop).send(true);
        // Weak: it counts the connections still open (each holds a tracker) without keeping one.
        let open = lock(&self.tracker).take().map(|t| t.downgrade());
        let mut drained = self.drained.lock().await;
        let outcome = match tokio::time::timeout(deadline, self.drain(&mut drained, open)).await {
            Ok(()) => Drain::Complete,
            Err(_) => Drain::TimedOut,
        };
        if outcome == Drain::TimedOut {
            // Tunnels still open are closed now, and write their records before the access log's last flush.
            self.tunnels.close_all();
            let _ = tokio::time::timeout(TUNNELS_CLOSE, self.tunnels.closed()).await;
        }
        // Every finished request's line is written before the process exits.
        if let Some(log) = self.sink.set_access_log(None) {
            log.shutdown().await;
        }
        // And the spans still queued are exported (within one export's timeout).
        if let Some((config, exporter)) = self.tracing.lock().await.take() {
            self.sink.set_observer(TRACING, None);
            exporter.shutdown(config.export_timeout).await;
        }
        self.sink.connection_log.shutdown().await;
        outcome
    }
}

impl Inner {
    /// Requests in flight finish and their connections close. Tunnels have no end of their own: they are closed
    /// once every connection still open is one that only tunnels hold (HTTP/2 streams; an HTTP/1 tunnel's
    /// client connection left the server at the switch), and the drain ends when they have written their
    /// records and the last connection is gone.
    async fn drain(&self, drained: &mut mpsc::Receiver<()>, open: Option<mpsc::WeakSender<()>>) {
        let connections = || open.as_ref().map_or(0, mpsc::WeakSender::strong_count);
        while connections() > self.tunnels.carriers() {
            tokio::select! {
                _ = drained.recv() => break,
                // Connections end without telling anyone but `drained`: looked at again shortly.
                () = tokio::time::sleep(TUNNELS_CHECK) => {}
            }
        }
        self.tunnels.close_all();
        self.tunnels.closed().await;
        drained.recv().await;
    }
}

/// The name the OTLP exporter is attached under in the sink's observers.
const TRACING: &str = "tracing";

/// While shutdown drains, how often it looks whether only tunnels hold connections open.
const TUNNELS_CHECK: Duration = Duration::from_millis(50);
/// After the shutdown deadline, how long tunnels get to close and write their records.
const TUNNELS_CLOSE: Duration = Duration::from_secs(2);

/// A target that left its group and is to drain.
struct Leaving {
    group: String,
    target: Arc<Target>,
    delay: Duration,
}

fn has_retired(rt: &Runtime) -> bool {
    rt.groups.values().any(|g| g.targets.iter().any(|t| t.upstream.is_retired()))
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// This instance's name in access log file names (ALB writes the node's IP there).
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}
