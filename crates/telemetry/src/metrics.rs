//! The metrics registry: every metric docs/INTERFACE.md names, with exactly its names and labels, and the
//! CloudWatch semantics of its ALB counterpart (reference/ALB.md §4). [`Metrics::observe`] derives everything
//! one exchange record says; connection, TLS, rejection and health events have their own methods.
//!
//! Semantics:
//! - A status the gateway generated (an error, a fixed response, a redirect: `target_status != elb_status`)
//!   counts in `waygate_elb_responses_total{code, cause}` and never in `waygate_target_responses_total`; a
//!   target's own status, even a 503, counts only in `waygate_target_responses_total{class}`.
//! - Every failed attempt with a connection cause counts in `waygate_target_connection_errors_total`, with a
//!   TLS cause in `waygate_target_tls_negotiation_errors_total`; every attempt after the first counts in
//!   `waygate_retries_total` under the previous attempt's cause; every attempt that got a response head is
//!   observed in `waygate_target_response_time_seconds`.
//! - `waygate_requests_total` counts every request, including those never routed (`target_group=""`);
//!   CloudWatch's RequestCount counts only requests that reached target selection.
//! - Additions to the contract: `waygate_target_stale_connections_total{target_group, target}` (pooled
//!   connections discarded at checkout), `waygate_target_stream_errors_total{target_group, target, cause}` (a body cut
//!   short or stalled after the target's status went out: not a gateway response, so otherwise only in the
//!   access log), `waygate_client_stream_errors_total{listener, cause}` (the same for the client's side: a
//!   response it stopped reading, ClientIdleTimeout, or left mid-body, ClientClosedRequest; never a target's
//!   fault, so never in the target families) and `waygate_access_log_write_errors_total` (I/O errors, once
//!   each; the lines they lost are dropped).
//!
//! Cost per request: the four series an ordinary exchange touches (`requests`, `processed_bytes`,
//! `target_responses`, `target_response_time`) come from a small per-thread cache of recently used series (a
//! scan comparing label values by address first, then contents), so the common request takes no lock and
//! hashes nothing; a cache miss, and every other metric, is one `Family` lookup (a `RwLock` read plus a SipHash
//! of the label set). Label values are cloned by atomic increments: no allocation once a series exists. The
//! connection gauges and counters are resolved once at construction and are plain atomics. Encoding is the
//! OpenMetrics text format (what prometheus-client writes), ending in `# EOF`.

use std::cell::RefCell;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::thread::LocalKey;
use std::time::SystemTime;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use waygate_faults::{Cause, Phase, Source};

use crate::Exchange;
use crate::labels::{
    AlertLabels, CertificateLabels, DesyncLabels, ElbLabels, GroupCauseLabels, GroupLabels, ListenerCauseLabels,
    ListenerLabels, RequestLabels, Side, SideLabels, TargetCauseLabels, TargetClassLabels, TargetGrpcLabels,
    TargetLabels, status_class,
};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of `waygate_target_response_time_seconds`: 0.5 ms (a loopback target) to 300 s, in 1-2.5-5
/// steps, with 30 s and 60 s (common timeouts) as their own buckets.
pub const RESPONSE_TIME_BUCKETS: [f64; 20] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
    180.0, 300.0,
];

fn response_time_histogram() -> Histogram {
    Histogram::new(RESPONSE_TIME_BUCKETS)
}

/// The listener certificates' expiry times, and the gauges that count down to them (set at each scrape).
#[derive(Debug, Default)]
struct Certificates {
    gauges: Family<CertificateLabels, Gauge<f64, AtomicU64>>,
    not_after: Mutex<Vec<(CertificateLabels, SystemTime)>>,
}

impl Certificates {
    fn count_down(&self, now: SystemTime) {
        let known = self.not_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (labels, not_after) in known.iter() {
            let left = match not_after.duration_since(now) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            self.gauges.get_or_create(labels).set(left.trunc());
        }
    }
}

/// The two counters a log writer updates (shared with the registry): for the access log,
/// `waygate_access_log_dropped_total` and `waygate_access_log_write_errors_total`; for the system log file,
/// `waygate_system_log_dropped_total` and `waygate_system_log_write_errors_total`; for the connection log,
/// `waygate_connection_log_dropped_total` and `waygate_connection_log_write_errors_total`.
#[derive(Debug, Clone, Default)]
pub struct LogCounters {
    /// Lines not logged because a buffer was full, the log was closed, or an I/O error lost them (a full or
    /// read-only disk).
    pub dropped: Counter,
    /// File I/O errors, each counted once however many lines it lost.
    pub write_errors: Counter,
}

impl LogCounters {
    /// Registers `waygate_{log}_dropped_total` and `waygate_{log}_write_errors_total`.
    fn register(&self, r: &mut Registry, log: &str, lines: &str, file: &str) {
        r.register(
            format!("waygate_{log}_dropped"),
            format!("{lines} dropped (buffer full, closed, or lost to a file I/O error)"),
            self.dropped.clone(),
        );
        r.register(
            format!("waygate_{log}_write_errors"),
            format!("{file} I/O errors (each once, however many lines it lost)"),
            self.write_errors.clone(),
        );
    }
}

/// The access log's counters.
pub type AccessLogCounters = LogCounters;

/// The system log file's counters: one set per process (the system log is the process's, not a gateway's),
/// registered in every [`Metrics`].
pub fn system_log_counters() -> &'static LogCounters {
    static COUNTERS: std::sync::LazyLock<LogCounters> = std::sync::LazyLock::new(LogCounters::default);
    &COUNTERS
}

/// The alert engine's metrics (shared with the registry): `waygate_alert_firing{alert}` (INTERFACE.md) and its
/// webhook deliveries.
#[derive(Debug, Clone, Default)]
pub struct AlertCounters {
    pub(crate) firing: Family<AlertLabels, Gauge>,
    /// `waygate_alert_webhooks_delivered_total`: events a receiver accepted (2xx).
    pub webhook_delivered: Counter,
    /// `waygate_alert_webhook_retries_total`: failed attempts that were retried.
    pub webhook_retries: Counter,
    /// `waygate_alert_webhook_dropped_total`: events never delivered (queue full, or every attempt failed).
    pub webhook_dropped: Counter,
}

type Counters<L> = Family<L, Counter>;

/// How many series of one family each thread keeps in its [`Recent`] cache.
const RECENT: usize = 32;

/// The series of one family a thread used last, so the common request finds its series without the family's
/// lock and hash. An entry holds its registry weakly: the allocation, hence its address, stays reserved while
/// the entry lives, so a later registry (tests make many) never matches it. Its labels are held by value and
/// compared through a [`Key`], so a match never rests on an address alone either. Sound because these families
/// never remove a series (only the health gauges are removed): a cached handle is the exported series.
struct Recent<L, M> {
    entries: Vec<(Weak<Inner>, L, M)>,
    /// The entry replaced next once the cache is full (round robin).
    next: usize,
}

impl<L: Clone + Hash + Eq, M: Clone> Recent<L, M> {
    const fn new() -> Self {
        Self { entries: Vec::new(), next: 0 }
    }

    fn get<C: MetricConstructor<M>>(&mut self, owner: &Arc<Inner>, family: &Family<L, M, C>, key: &impl Key<L>) -> &M {
        let ptr = Arc::as_ptr(owner);
        let at = match self.entries.iter().position(|(o, l, _)| o.as_ptr() == ptr && key.matches(l)) {
            Some(at) => at,
            None => {
                let labels = key.labels();
                let series = family.get_or_create_owned(&labels);
                let entry = (Arc::downgrade(owner), labels, series);
                if self.entries.len() < RECENT {
                    self.entries.push(entry);
                    self.entries.len() - 1
                } else {
                    let at = self.next;
                    self.next = (at + 1) % RECENT;
                    self.entries[at] = entry;
                    at
                }
            }
        };
        &self.entries[at].2
    }
}

/// A request's label values, borrowed: a cached label set is matched by address first (`==` on `Arc<str>`
/// always compares the contents, std's pointer shortcut needing a sized type, and a request's listener and
/// target group are the same `Arc`s as the cached ones; the target is copied per request, so it usually goes on
/// to the contents). The owned set is made only for a series not cached: cloning it for every lookup bumped
/// reference counts that all worker threads share.
trait Key<L> {
    fn matches(&self, labels: &L) -> bool;
    fn labels(&self) -> L;
}

fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// (listener, target group)
impl Key<RequestLabels> for (&Arc<str>, &Arc<str>) {
    fn matches(&self, l: &RequestLabels) -> bool {
        same(&l.listener, self.0) && same(&l.target_group, self.1)
    }
    fn labels(&self) -> RequestLabels {
        RequestLabels { listener: self.0.clone(), target_group: self.1.clone() }
    }
}

/// listener
impl Key<ListenerLabels> for &Arc<str> {
    fn matches(&self, l: &ListenerLabels) -> bool {
        same(&l.listener, self)
    }
    fn labels(&self) -> ListenerLabels {
        ListenerLabels { listener: Arc::clone(self) }
    }
}

/// (target group, target, class)
impl Key<TargetClassLabels> for (&Arc<str>, &Arc<str>, &'static str) {
    fn matches(&self, l: &TargetClassLabels) -> bool {
        same(l.class, self.2) && same(&l.target, self.1) && same(&l.target_group, self.0)
    }
    fn labels(&self) -> TargetClassLabels {
        TargetClassLabels { target_group: self.0.clone(), target: self.1.clone(), class: self.2 }
    }
}

/// (target group, target)
impl Key<TargetLabels> for (&Arc<str>, &Arc<str>) {
    fn matches(&self, l: &TargetLabels) -> bool {
        same(&l.target, self.1) && same(&l.target_group, self.0)
    }
    fn labels(&self) -> TargetLabels {
        TargetLabels { target_group: self.0.clone(), target: self.1.clone() }
    }
}

thread_local! {
    static REQUESTS: RefCell<Recent<RequestLabels, Counter>> = const { RefCell::new(Recent::new()) };
    static PROCESSED_BYTES: RefCell<Recent<ListenerLabels, Counter>> = const { RefCell::new(Recent::new()) };
    static TARGET_RESPONSES: RefCell<Recent<TargetClassLabels, Counter>> = const { RefCell::new(Recent::new()) };
    static RESPONSE_TIMES: RefCell<Recent<TargetLabels, Histogram>> = const { RefCell::new(Recent::new()) };
}

/// Applies `f` to `owner`'s series of `family` under `key`'s labels, found through this thread's `cache` (or the
/// family itself while the thread is being torn down and its cache is gone).
fn with_series<L: Clone + Hash + Eq, M: Clone, C: MetricConstructor<M>>(
    cache: &'static LocalKey<RefCell<Recent<L, M>>>,
    owner: &Arc<Inner>,
    family: &Family<L, M, C>,
    key: impl Key<L>,
    f: impl FnOnce(&M),
) {
    let mut f = Some(f);
    let _ = cache.try_with(|c| {
        if let Some(f) = f.take() {
            f(c.borrow_mut().get(owner, family, &key));
        }
    });
    if let Some(f) = f {
        f(&family.get_or_create(&key.labels()));
    }
}

struct Inner {
    registry: Registry,
    empty: Arc<str>,
    requests: Counters<RequestLabels>,
    elb_responses: Counters<ElbLabels>,
    target_responses: Counters<TargetClassLabels>,
    target_grpc_responses: Counters<TargetGrpcLabels>,
    target_connection_errors: Counters<TargetCauseLabels>,
    target_tls_errors: Counters<TargetCauseLabels>,
    target_stream_errors: Counters<TargetCauseLabels>,
    client_stream_errors: Counters<ListenerCauseLabels>,
    stale_connections: Counters<TargetLabels>,
    client_tls_errors: Counters<ListenerCauseLabels>,
    certificates: Certificates,
    target_response_time: Family<TargetLabels, Histogram, fn() -> Histogram>,
    healthy: Family<GroupLabels, Gauge>,
    unhealthy: Family<GroupLabels, Gauge>,
    active: [Gauge; 2],
    new: [Counter; 2],
    rejected: Counters<ListenerLabels>,
    processed_bytes: Counters<ListenerLabels>,
    retries: Counters<GroupCauseLabels>,
    lambda_user: Counters<GroupCauseLabels>,
    lambda_internal: Counters<GroupCauseLabels>,
    desync: Counters<DesyncLabels>,
    access_log: AccessLogCounters,
    connection_log: LogCounters,
    alerts: AlertCounters,
    tracing: crate::otlp::TracingCounters,
}

/// The registry and its metrics. Cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps `waygate_active_connections{side}` one higher while alive.
#[derive(Debug)]
#[must_use = "the connection counts as active only while the guard lives"]
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Target => 1,
    }
}

impl Metrics {
    /// A registry with every metric registered (names below are without the `_total` prometheus-client adds).
    pub fn new() -> Self {
        let mut r = Registry::default();
        let requests = Counters::default();
        r.register("waygate_requests", "Requests received (CloudWatch RequestCount)", requests.clone());
        let elb_responses = Counters::default();
        r.register(
            "waygate_elb_responses",
            "Responses generated by the gateway itself, by status code and fault cause (HTTPCode_ELB_*_Count)",
            elb_responses.clone(),
        );
        let target_responses = Counters::default();
        r.register(
            "waygate_target_responses",
            "Responses generated by targets, by status class (HTTPCode_Target_*_Count)",
            target_responses.clone(),
        );
        let target_grpc_responses = Counters::default();
        r.register(
            "waygate_target_grpc_responses",
            "gRPC calls answered by targets, by the target's grpc-status (in waygate_target_responses too, by HTTP class)",
            target_grpc_responses.clone(),
        );
        let target_connection_errors = Counters::default();
        r.register(
            "waygate_target_connection_errors",
            "Connections to targets not established (TargetConnectionErrorCount)",
            target_connection_errors.clone(),
        );
        let target_tls_errors = Counters::default();
        r.register(
            "waygate_target_tls_negotiation_errors",
            "TLS sessions to targets not established (TargetTLSNegotiationErrorCount)",
            target_tls_errors.clone(),
        );
        let target_stream_errors = Counters::default();
        r.register(
            "waygate_target_stream_errors",
            "Target responses cut short or stalled after their status was sent to the client",
            target_stream_errors.clone(),
        );
        let client_stream_errors = Counters::default();
        r.register(
            "waygate_client_stream_errors",
            "Target responses the client did not take whole after their status was sent: it stopped reading \
            (ClientIdleTimeout) or went away (ClientClosedRequest)",
            client_stream_errors.clone(),
        );
        let client_tls_errors = Counters::default();
        r.register(
            "waygate_client_tls_negotiation_errors",
            "Client TLS handshakes that failed, by why (ClientTLSNegotiationErrorCount)",
            client_tls_errors.clone(),
        );
        let certificates = Certificates::default();
        r.register_with_unit(
            "waygate_listener_certificate_expiry",
            "Seconds until each listener certificate expires (negative: expired)",
            Unit::Seconds,
            certificates.gauges.clone(),
        );
        let target_response_time: Family<TargetLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(response_time_histogram);
        r.register_with_unit(
            "waygate_target_response_time",
            "Request sent to the target until its response head arrived (TargetResponseTime)",
            Unit::Seconds,
            target_response_time.clone(),
        );
        let healthy = Family::default();
        r.register("waygate_healthy_hosts", "Healthy targets (HealthyHostCount)", healthy.clone());
        let unhealthy = Family::default();
        r.register("waygate_unhealthy_hosts", "Unhealthy targets (UnHealthyHostCount)", unhealthy.clone());
        let active_family: Family<SideLabels, Gauge> = Family::default();
        r.register("waygate_active_connections", "Open connections (ActiveConnectionCount)", active_family.clone());
        let new_family: Counters<SideLabels> = Family::default();
        r.register("waygate_new_connections", "Connections opened (NewConnectionCount)", new_family.clone());
        let rejected = Counters::default();
        r.register(
            "waygate_rejected_connections",
            "Client connections refused at a limit (RejectedConnectionCount)",
            rejected.clone(),
        );
        let processed_bytes = Counters::default();
        r.register(
            "waygate_processed_bytes",
            "Request and response bytes, headers included (ProcessedBytes)",
            processed_bytes.clone(),
        );
        let stale_connections = Counters::default();
        r.register(
            "waygate_target_stale_connections",
            "Pooled connections found closed or unusable at checkout and discarded before a request was written",
            stale_connections.clone(),
        );
        let retries = Counters::default();
        r.register("waygate_retries", "Attempts after the first, by the previous attempt's cause", retries.clone());
        let lambda_user = Counters::default();
        r.register(
            "waygate_lambda_user_errors",
            "Function errors caused by the function (LambdaUserError)",
            lambda_user.clone(),
        );
        let lambda_internal = Counters::default();
        r.register(
            "waygate_lambda_internal_errors",
            "Function errors caused by the invoke service (LambdaInternalError)",
            lambda_internal.clone(),
        );
        let desync = Counters::default();
        r.register(
            "waygate_desync_noncompliant_requests",
            "Requests not compliant with RFC 7230, by desync classification (DesyncMitigationMode_NonCompliant_Request_Count)",
            desync.clone(),
        );
        let access_log = AccessLogCounters::default();
        access_log.register(&mut r, "access_log", "Access-log records", "Access-log file");
        system_log_counters().register(&mut r, "system_log", "System-log lines (--log-file)", "System-log file");
        let connection_log = LogCounters::default();
        connection_log.register(&mut r, "connection_log", "Connection-log lines", "Connection-log file");
        let alerts = AlertCounters::default();
        r.register("waygate_alert_firing", "1 while the alert rule fires, else 0", alerts.firing.clone());
        r.register(
            "waygate_alert_webhooks_delivered",
            "Alert events a webhook receiver accepted",
            alerts.webhook_delivered.clone(),
        );
        r.register(
            "waygate_alert_webhook_retries",
            "Alert webhook attempts that failed and were retried",
            alerts.webhook_retries.clone(),
        );
        r.register(
            "waygate_alert_webhook_dropped",
            "Alert events never delivered (queue full, or every attempt failed)",
            alerts.webhook_dropped.clone(),
        );
        let tracing_counters = crate::otlp::TracingCounters::default();
        tracing_counters.register(&mut r);
        let side = |s| SideLabels { side: s };
        let active = [Side::Client, Side::Target].map(|s| active_family.get_or_create_owned(&side(s)));
        let new = [Side::Client, Side::Target].map(|s| new_family.get_or_create_owned(&side(s)));
        let inner = Inner {
            registry: r,
            empty: Arc::from(""),
            requests,
            elb_responses,
            target_responses,
            target_grpc_responses,
            target_connection_errors,
            target_tls_errors,
            target_stream_errors,
            client_stream_errors,
            stale_connections,
            client_tls_errors,
            certificates,
            target_response_time,
            healthy,
            unhealthy,
            active,
            new,
            rejected,
            processed_bytes,
            retries,
            lambda_user,
            lambda_internal,
            desync,
            access_log,
            connection_log,
            alerts,
            tracing: tracing_counters,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Count everything one finished exchange says (see the module doc for the rules).
    pub fn observe(&self, ex: &Exchange) {
        let i = &*self.inner;
        let tg = ex.target_group.as_ref().map_or(&i.empty, |t| &t.name);
        let listener = &ex.listener;
        with_series(&REQUESTS, &self.inner, &i.requests, (listener, tg), |c| {
            c.inc();
        });
        let bytes = ex.received_bytes.saturating_add(ex.sent_bytes);
        with_series(&PROCESSED_BYTES, &self.inner, &i.processed_bytes, listener, |c| {
            c.inc_by(bytes);
        });
        let target = ex.attempts.last().map_or(&i.empty, |a| &a.target);
        match ex.target_status {
            Some(status) if ex.is_target_response() => {
                let key = (tg, target, status_class(status));
                with_series(&TARGET_RESPONSES, &self.inner, &i.target_responses, key, |c| {
                    c.inc();
                });
                if let Some(grpc_status) = ex.grpc_status {
                    let labels = TargetGrpcLabels { target_group: tg.clone(), target: target.clone(), grpc_status };
                    i.target_grpc_responses.get_or_create(&labels).inc();
                }
            }
            _ => {
                let labels = ElbLabels {
                    listener: listener.clone(),
                    code: ex.elb_status,
                    cause: ex.cause.map_or("", Cause::name),
                };
                i.elb_responses.get_or_create(&labels).inc();
            }
        }
        let mut previous: Option<Option<Cause>> = None;
        for a in &ex.attempts {
            if let Some(prev) = previous {
                let labels = GroupCauseLabels { target_group: tg.clone(), cause: prev.map_or("", Cause::name) };
                i.retries.get_or_create(&labels).inc();
            }
            previous = Some(a.cause);
            if let Some(c) = a.cause {
                let family = if c.is_target_connection_error() {
                    Some(&i.target_connection_errors)
                } else if c.is_target_tls_error() {
                    Some(&i.target_tls_errors)
                } else {
                    None
                };
                if let Some(family) = family {
                    let labels =
                        TargetCauseLabels { target_group: tg.clone(), target: a.target.clone(), cause: c.name() };
                    family.get_or_create(&labels).inc();
                }
            }
            if let Some(rt) = a.response_time {
                with_series(&RESPONSE_TIMES, &self.inner, &i.target_response_time, (tg, &a.target), |h| {
                    h.observe(rt.as_secs_f64());
                });
            }
        }
        if let Some(c) = ex.cause {
            let lambda = if c.is_lambda_user_error() {
                Some(&i.lambda_user)
            } else if c.is_lambda_internal_error() {
                Some(&i.lambda_internal)
            } else {
                None
            };
            if let Some(family) = lambda {
                family.get_or_create(&GroupCauseLabels { target_group: tg.clone(), cause: c.name() }).inc();
            }
            if c.phase() == Phase::StreamBody && c.source() == Source::Target {
                let labels = TargetCauseLabels { target_group: tg.clone(), target: target.clone(), cause: c.name() };
                i.target_stream_errors.get_or_create(&labels).inc();
            } else if c.source() == Source::Client && ex.is_target_response() {
                let labels = ListenerCauseLabels { listener: listener.clone(), cause: c.name() };
                i.client_stream_errors.get_or_create(&labels).inc();
            }
        }
        if let Some(class) = ex.classification {
            let labels = DesyncLabels { listener: listener.clone(), classification: class.as_str() };
            i.desync.get_or_create(&labels).inc();
        }
    }

    /// A connection opened on `side`: counts it in `waygate_new_connections_total` and keeps it in
    /// `waygate_active_connections` until the guard is dropped.
    pub fn connection_opened(&self, side: Side) -> ConnectionGuard {
        let n = side_index(side);
        self.inner.new[n].inc();
        let gauge = self.inner.active[n].clone();
        gauge.inc();
        ConnectionGuard(gauge)
    }

    /// A connection already counted by [`Metrics::connection_opened`] goes on under another owner (a client's
    /// HTTP/1 connection handed to a WebSocket tunnel): it stays in the active gauge while the guard lives, and is
    /// not counted as new again.
    pub fn connection_carried(&self, side: Side) -> ConnectionGuard {
        let gauge = self.inner.active[side_index(side)].clone();
        gauge.inc();
        ConnectionGuard(gauge)
    }

    /// A pooled connection to `target` was discarded at checkout (the target had closed it).
    pub fn stale_connection(&self, target_group: &Arc<str>, target: &Arc<str>) {
        let labels = TargetLabels { target_group: target_group.clone(), target: target.clone() };
        self.inner.stale_connections.get_or_create(&labels).inc();
    }

    /// A client TLS handshake failed on `listener`.
    pub fn client_tls_error(&self, listener: &Arc<str>, cause: &'static str) {
        self.inner.client_tls_errors.get_or_create(&ListenerCauseLabels { listener: listener.clone(), cause }).inc();
    }

    /// The certificates `listener` serves now, by name, with when each expires; replaces the listener's previous
    /// ones (`&[]`: it serves none). `waygate_listener_certificate_expiry_seconds` counts down from these at
    /// every scrape.
    pub fn set_listener_certificates(&self, listener: &str, certificates: &[(String, SystemTime)]) {
        let c = &self.inner.certificates;
        let mut known = c.not_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.retain(|(labels, _)| {
            let keep = &*labels.listener != listener;
            if !keep {
                c.gauges.remove(labels);
            }
            keep
        });
        for (name, not_after) in certificates {
            let labels = CertificateLabels { listener: listener.into(), name: name.as_str().into() };
            // Two certificates of one name: the one expiring first is the one to renew first.
            match known.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, t)) => *t = (*t).min(*not_after),
                None => known.push((labels, *not_after)),
            }
        }
    }

    /// A client connection was refused on `listener` (connection limit reached).
    pub fn connection_rejected(&self, listener: &Arc<str>) {
        self.inner.rejected.get_or_create(&ListenerLabels { listener: listener.clone() }).inc();
    }

    /// The health checker's current counts for a target group. Draining targets count in neither, like
    /// CloudWatch (deregistering lowers HealthyHostCount, not UnHealthyHostCount).
    pub fn set_target_health(&self, target_group: &Arc<str>, healthy: u32, unhealthy: u32) {
        let labels = GroupLabels { target_group: target_group.clone() };
        self.inner.healthy.get_or_create(&labels).set(i64::from(healthy));
        self.inner.unhealthy.get_or_create(&labels).set(i64::from(unhealthy));
    }

    /// Forget a removed target group's health gauges (after a reload), so it stops being exported. Only these
    /// gauges are ever removed: the families the per-thread `Recent` caches serve must keep every series.
    pub fn remove_target_group(&self, target_group: &Arc<str>) {
        let labels = GroupLabels { target_group: target_group.clone() };
        self.inner.healthy.remove(&labels);
        self.inner.unhealthy.remove(&labels);
    }

    /// The counters the access-log writer updates.
    pub fn access_log_counters(&self) -> AccessLogCounters {
        self.inner.access_log.clone()
    }

    /// The counters the connection-log writer updates.
    pub fn connection_log_counters(&self) -> LogCounters {
        self.inner.connection_log.clone()
    }

    /// The metrics the alert engine updates.
    pub fn alert_counters(&self) -> AlertCounters {
        self.inner.alerts.clone()
    }

    /// The OTLP exporter's counters (`waygate_tracing_*`).
    pub fn tracing_counters(&self) -> crate::otlp::TracingCounters {
        self.inner.tracing.clone()
    }

    /// Append the OpenMetrics text exposition (ending in `# EOF`) to `out`.
    pub fn encode_into(&self, out: &mut String) {
        self.inner.certificates.count_down(SystemTime::now());
        // Writing into a String cannot fail.
        let _ = encode(out, &self.inner.registry);
    }

    /// The OpenMetrics text exposition, served with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.encode_into(&mut out);
        out
    }
}
