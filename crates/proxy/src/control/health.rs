//! Active health checks (ALB §6): one task per target group checks every target each `interval` (with ±10%
//! jitter so fleets do not synchronise). A check is a request: the data plane's connector, TLS and upstream
//! [`Session`], so a target that requests would fail on fails its checks with the same cause (a refused check
//! says TargetConnectionRefused, a malformed answer TargetMalformedResponse). HTTP and HTTPS checks send
//! `GET path` with `User-Agent: waygate-healthcheck/1` and compare the status with the matcher; TCP checks only
//! connect. Targets of http2 and grpc groups are checked over HTTP/2, gRPC ones with ALB's gRPC check
//! ([`super::health_h2`]). A check the gateway's own host fails (GatewayResourceExhausted) is no verdict on the target
//! ([`crate::target::health`]); it is logged once a second with a count. Checkers belong to one runtime snapshot
//! and stop when it is replaced; health state lives on the target, so a reload keeps it. A lambda group's
//! checker invokes its function with ALB's health-check event instead ([`crate::function::check`]).

use std::sync::{Arc, LazyLock};

use http::{HeaderMap, HeaderValue, Method, header};
use tokio::sync::watch;
use waygate_config::{HealthCheck, HealthProtocol, TargetProtocol};
use waygate_faults::{Cause, Phase};
use waygate_telemetry::{Metrics, Throttle};

use crate::body::UpstreamRequestBody;
use crate::function::Function;
use crate::group::Group;
use crate::runtime::Runtime;
use crate::target::Target;
use crate::target::health::{Outcome, State};
use crate::upstream::h1::{self, RequestFraming};
use crate::upstream::{AttemptFailure, ConnectSpec, Session, TlsTarget, connector, tls};

const USER_AGENT: &str = "waygate-healthcheck/1";

/// Starts a checker for every group with health checks on; they run until `stop` flips.
pub fn spawn_checkers(rt: &Runtime, metrics: &Arc<Metrics>, stop: &watch::Receiver<bool>) {
    for group in rt.groups.values() {
        let hc = &group.config.health_check;
        if hc.enabled
            && let Some(function) = &group.function
        {
            tokio::spawn(run_function(group.clone(), function.clone(), metrics.clone(), stop.clone()));
            continue;
        }
        if !hc.enabled || group.config.protocol == TargetProtocol::Lambda || group.targets.is_empty() {
            continue;
        }
        tokio::spawn(run(group.clone(), metrics.clone(), stop.clone()));
    }
}

async fn run(group: Arc<Group>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let hc = group.config.health_check.clone();
    let name: Arc<str> = group.config.name.as_str().into();
    let https_fallback = match (hc.protocol, group.config.protocol) {
        // An HTTPS check on a plain-HTTP group: like ALB, the check does not verify the target's certificate.
        (HealthProtocol::Https, TargetProtocol::Http) => tls::client_config(false, None).ok(),
        _ => None,
    };
    loop {
        let checks = group.targets.iter().map(|t| check(t, &hc, https_fallback.as_ref()));
        let outcomes = futures_util::future::join_all(checks).await;
        for (target, outcome) in group.targets.iter().zip(outcomes) {
            if !outcome.judges_target() {
                skipped(&group, target, outcome);
            }
            if let Some(t) = target.health.record(outcome, hc.healthy_threshold, hc.unhealthy_threshold) {
                group.health_transition(target, &t, "health-check");
            }
        }
        let healthy = group.targets.iter().filter(|t| t.health.state() == State::Healthy).count() as u32;
        let unhealthy = group.targets.iter().filter(|t| t.health.state() == State::Unhealthy).count() as u32;
        metrics.set_target_health(&name, healthy, unhealthy);
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        tokio::select! {
            () = tokio::time::sleep(hc.interval.mul_f64(jitter)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Checks skipped because the gateway's own host failed them, every group and target together: one line a second.
static SKIPPED: LazyLock<Throttle> = LazyLock::new(Throttle::per_second);

fn skipped(group: &Group, target: &Target, outcome: Outcome) {
    let Some(count) = SKIPPED.hit() else { return };
    tracing::warn!(target: "waygate::health", target_group = %group.config.name, target_addr = %target.authority,
        count, "health check skipped, no verdict on the target: {outcome:?}; {count} check(s) skipped this way since \
        the last such line");
}

/// The connection settings of a check: the target's own, with the check's port, timeout and protocol.
fn check_spec(target: &Target, hc: &HealthCheck, https_fallback: Option<&Arc<rustls::ClientConfig>>) -> ConnectSpec {
    let mut spec = target.upstream.spec.clone();
    spec.port = hc.port.unwrap_or(spec.port);
    spec.connect_timeout = hc.timeout;
    spec.tls_handshake_timeout = hc.timeout;
    spec.tls = match hc.protocol {
        HealthProtocol::Https => spec.tls.or_else(|| {
            let config = https_fallback?.clone();
            let server_name = tls::server_name(None, &target.spec.host).ok()?;
            Some(TlsTarget { config, server_name })
        }),
        HealthProtocol::Http | HealthProtocol::Tcp => None,
    };
    spec
}

/// One check of one target, bounded by the check's timeout. An HTTP check is an exchange on the data plane's
/// own upstream [`Session`] (the same connector, TLS, request encoding and response parser as a request's),
/// so whatever a request would be refused for, or fail on, a check is too, with the same cause.
pub async fn check(target: &Target, hc: &HealthCheck, https_fallback: Option<&Arc<rustls::ClientConfig>>) -> Outcome {
    let spec = check_spec(target, hc, https_fallback);
    let attempt = async {
        let connected = connector::connect(&spec).await?;
        if hc.protocol == HealthProtocol::Tcp {
            return Ok(None);
        }
        if target.upstream.is_h2() {
            let scheme = if spec.tls.is_some() { "https" } else { "http" };
            let (authority, path) = (&target.authority, &hc.path);
            let answer = super::health_h2::check(connected, scheme, authority, path, hc.grpc, USER_AGENT, hc.timeout);
            return answer.await.map(Some);
        }
        let mut session = Session::H1(h1::Conn::new(connected.transport));
        let mut headers = HeaderMap::with_capacity(2);
        let host = HeaderValue::from_str(&target.authority).map_err(|_| AttemptFailure::new(Phase::SendRequest))?;
        headers.insert(header::HOST, host);
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let request = h1::Request::new(&Method::GET, &hc.path, &headers, &(), RequestFraming::Empty);
        let mut body = UpstreamRequestBody::empty(Arc::default());
        let request = crate::upstream::Request::H1(request);
        let response = session.send(&request, &mut body, hc.timeout, || 0).await.map_err(|e| *e.failure)?;
        Ok::<_, AttemptFailure>(Some(response.head.status.as_u16()))
    };
    match tokio::time::timeout(hc.timeout, attempt).await {
        Err(_) => Outcome::TimedOut(Cause::TargetResponseTimeout),
        Ok(Err(failure)) if failure.timed_out.is_some() => Outcome::TimedOut(failure.classify()),
        Ok(Err(failure)) => Outcome::Failed(failure.classify()),
        Ok(Ok(None)) => Outcome::Passed,
        Ok(Ok(Some(status))) if hc.matcher.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) => Outcome::Passed,
        Ok(Ok(Some(status))) => Outcome::Mismatch(status),
    }
}

/// A lambda group's checker: the function invoked with ALB's health-check event each `interval`.
async fn run_function(
    group: Arc<Group>,
    function: Arc<Function>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let hc = group.config.health_check.clone();
    let name: Arc<str> = group.config.name.as_str().into();
    loop {
        let outcome = crate::function::check::check(&function, &hc, group.tg_ref.arn()).await;
        if let Some(t) = function.health.record(outcome, hc.healthy_threshold, hc.unhealthy_threshold) {
            let (from, to) = (t.from.as_str(), t.to.as_str());
            let reason = function.health.reason().unwrap_or("-");
            let details = format!("{from} -> {to} ({reason}): {outcome:?}");
            tracing::warn!(target: "waygate::health", target_group = %name, function = %function.config.name,
                from, to, reason, "function health check: {outcome:?}");
            group.audit.record(
                "health-check",
                crate::audit::Action::Health,
                Some(&name),
                Some(&*function.authority),
                details,
            );
        }
        let state = function.health.state();
        metrics.set_target_health(&name, u32::from(state == State::Healthy), u32::from(state == State::Unhealthy));
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        tokio::select! {
            () = tokio::time::sleep(hc.interval.mul_f64(jitter)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
