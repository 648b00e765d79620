//! The metrics registry: every metric design/INTERFACE.md names, with exactly its names and labels, and the
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
//!   access log) and `waygate_access_log_write_errors_total` (records lost to I/O errors).
//!
//! Cost per request: one `Family` lookup per metric touched (a `RwLock` read plus a hash of the label set,
//! whose `Arc<str>` values are cloned by atomic increments: no allocation once a series exists); typically
//! four or five lookups. The connection gauges and counters are resolved once at construction and are plain
//! atomics. Encoding is the OpenMetrics text format (what prometheus-client writes), ending in `# EOF`.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use waygate_faults::{Cause, Phase};

use crate::Exchange;
use crate::labels::{
    DesyncLabels, ElbLabels, GroupCauseLabels, GroupLabels, ListenerLabels, RequestLabels, Side, SideLabels,
    TargetCauseLabels, TargetClassLabels, TargetLabels, status_class,
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

/// The two counters the access-log writer updates (shared with the registry).
#[derive(Debug, Clone, Default)]
pub struct AccessLogCounters {
    /// `waygate_access_log_dropped_total`: records not queued because the queue was full or closed.
    pub dropped: Counter,
    /// `waygate_access_log_write_errors_total`: records lost to file I/O errors.
    pub write_errors: Counter,
}

type Counters<L> = Family<L, Counter>;

struct Inner {
    registry: Registry,
    empty: Arc<str>,
    requests: Counters<RequestLabels>,
    elb_responses: Counters<ElbLabels>,
    target_responses: Counters<TargetClassLabels>,
    target_connection_errors: Counters<TargetCauseLabels>,
    target_tls_errors: Counters<TargetCauseLabels>,
    target_stream_errors: Counters<TargetCauseLabels>,
    stale_connections: Counters<TargetLabels>,
    client_tls_errors: Counters<ListenerLabels>,
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
        let client_tls_errors = Counters::default();
        r.register(
            "waygate_client_tls_negotiation_errors",
            "Client TLS handshakes that failed (ClientTLSNegotiationErrorCount)",
            client_tls_errors.clone(),
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
        r.register(
            "waygate_access_log_dropped",
            "Access-log records dropped (queue full or closed)",
            access_log.dropped.clone(),
        );
        r.register(
            "waygate_access_log_write_errors",
            "Access-log records lost to file write errors",
            access_log.write_errors.clone(),
        );
        let side = |s| SideLabels { side: s };
        let active = [Side::Client, Side::Target].map(|s| active_family.get_or_create_owned(&side(s)));
        let new = [Side::Client, Side::Target].map(|s| new_family.get_or_create_owned(&side(s)));
        let inner = Inner {
            registry: r,
            empty: Arc::from(""),
            requests,
            elb_responses,
            target_responses,
            target_connection_errors,
            target_tls_errors,
            target_stream_errors,
            stale_connections,
            client_tls_errors,
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
        };
        Self { inner: Arc::new(inner) }
    }

    /// Count everything one finished exchange says (see the module doc for the rules).
    pub fn observe(&self, ex: &Exchange) {
        let i = &*self.inner;
        let tg = ex.target_group.as_ref().map_or(&i.empty, |t| &t.name);
        let listener = &ex.listener;
        i.requests.get_or_create(&RequestLabels { listener: listener.clone(), target_group: tg.clone() }).inc();
        i.processed_bytes
            .get_or_create(&ListenerLabels { listener: listener.clone() })
            .inc_by(ex.received_bytes.saturating_add(ex.sent_bytes));
        let target = ex.attempts.last().map_or(&i.empty, |a| &a.target);
        match ex.target_status {
            Some(status) if ex.is_target_response() => {
                let labels =
                    TargetClassLabels { target_group: tg.clone(), target: target.clone(), class: status_class(status) };
                i.target_responses.get_or_create(&labels).inc();
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
                let labels = TargetLabels { target_group: tg.clone(), target: a.target.clone() };
                i.target_response_time.get_or_create(&labels).observe(rt.as_secs_f64());
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
            if c.phase() == Phase::StreamBody {
                let labels = TargetCauseLabels { target_group: tg.clone(), target: target.clone(), cause: c.name() };
                i.target_stream_errors.get_or_create(&labels).inc();
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

    /// A pooled connection to `target` was discarded at checkout (the target had closed it).
    pub fn stale_connection(&self, target_group: &Arc<str>, target: &Arc<str>) {
        let labels = TargetLabels { target_group: target_group.clone(), target: target.clone() };
        self.inner.stale_connections.get_or_create(&labels).inc();
    }

    /// A client TLS handshake failed on `listener`.
    pub fn client_tls_error(&self, listener: &Arc<str>) {
        self.inner.client_tls_errors.get_or_create(&ListenerLabels { listener: listener.clone() }).inc();
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

    /// Forget a removed target group's health gauges (after a reload), so it stops being exported.
    pub fn remove_target_group(&self, target_group: &Arc<str>) {
        let labels = GroupLabels { target_group: target_group.clone() };
        self.inner.healthy.remove(&labels);
        self.inner.unhealthy.remove(&labels);
    }

    /// The counters the access-log writer updates.
    pub fn access_log_counters(&self) -> AccessLogCounters {
        self.inner.access_log.clone()
    }

    /// Append the OpenMetrics text exposition (ending in `# EOF`) to `out`.
    pub fn encode_into(&self, out: &mut String) {
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
