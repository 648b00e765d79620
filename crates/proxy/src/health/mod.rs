//! Active health checks (ALB §6): one task per target group checks every target each `interval` (with ±10%
//! jitter so fleets do not synchronise), over the same connector the data plane uses, so a check behaves like a
//! request would. A check the gateway's own host fails (GatewayResourceExhausted) is no verdict on the target
//! ([`state`]); it is logged once a second with a count. HTTP and HTTPS checks send `GET path` with `User-Agent: waygate-healthcheck/1` and compare the
//! status with the matcher; TCP checks only connect. A failed check is named by the fault catalogue (a refused
//! check says TargetConnectionRefused). Checkers belong to one runtime snapshot and stop when it is replaced;
//! health state lives on the target, so a reload keeps it.

pub mod state;

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use waygate_config::{HealthCheck, HealthProtocol, TargetProtocol};
use waygate_faults::{Cause, Phase};
use waygate_telemetry::{Metrics, Throttle};

use crate::group::{Group, Target};
use crate::runtime::Runtime;
use crate::upstream::{AttemptFailure, ConnectSpec, TlsTarget, connector, tls};
pub use state::{Health, Outcome, State, Transition};

const USER_AGENT: &str = "waygate-healthcheck/1";

/// Starts a checker for every group with health checks on; they run until `stop` flips.
pub fn spawn_checkers(rt: &Runtime, metrics: &Arc<Metrics>, stop: &watch::Receiver<bool>) {
    for group in rt.groups.values() {
        let hc = &group.config.health_check;
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
                log_transition(&group, target, &t, "health-check");
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

/// Passive health: a request's connect-phase failure (refused, unreachable, connect or TLS failure) counts
/// towards taking the target out before the next active check. Only where active checks run, since they are
/// what brings a target back. The gateway's own exhaustion is neither kind, so it never counts.
pub fn observe_failure(group: &Group, target: &Target, cause: Cause) {
    let hc = &group.config.health_check;
    let unreachable = cause.is_target_connection_error() || cause.is_target_tls_error();
    if !hc.enabled || !unreachable {
        return;
    }
    if let Some(t) = target.health.passive_failure(cause, hc.unhealthy_threshold) {
        log_transition(group, target, &t, "passive-health");
    }
}

/// Logs a health transition and records it in the audit log.
fn log_transition(g: &Group, target: &Target, t: &Transition, actor: &str) {
    let group = g.config.name.as_str();
    let detail = match t.outcome {
        Outcome::Passed => "health checks passing".to_owned(),
        Outcome::Mismatch(status) => format!("health check answered {status}, not in the matcher"),
        Outcome::TimedOut(cause) | Outcome::Failed(cause) => format!("health check failed: {cause}"),
    };
    let reason = target.health.reason().unwrap_or("-");
    if t.to == State::Unhealthy {
        tracing::warn!(target: "waygate::health", target_group = %group, target_addr = %target.authority,
            from = t.from.as_str(), to = t.to.as_str(), reason, "{detail}");
    } else {
        tracing::info!(target: "waygate::health", target_group = %group, target_addr = %target.authority,
            from = t.from.as_str(), to = t.to.as_str(), "{detail}");
    }
    let details = format!("{} -> {} ({}): {detail}", t.from.as_str(), t.to.as_str(), reason);
    g.audit.record(actor, crate::lifecycle::Action::Health, Some(group), Some(&*target.authority), details);
    match g.note_all_unhealthy() {
        Some(true) if g.config.fail_open => tracing::warn!(target: "waygate::health", target_group = %group,
            "every target is unhealthy: requests fail open to all of them, as ALB does (fail_open = false answers 503 NoHealthyTargets instead)"),
        Some(true) => tracing::warn!(target: "waygate::health", target_group = %group,
            "every target is unhealthy: requests get 503 NoHealthyTargets (fail_open = false)"),
        Some(false) => tracing::info!(target: "waygate::health", target_group = %group,
            "a target is healthy again: requests go to healthy targets only"),
        None => {}
    }
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

/// One check of one target, bounded by the check's timeout.
pub async fn check(target: &Target, hc: &HealthCheck, https_fallback: Option<&Arc<rustls::ClientConfig>>) -> Outcome {
    let spec = check_spec(target, hc, https_fallback);
    let attempt = async {
        let connected = connector::connect(&spec).await?;
        if hc.protocol == HealthProtocol::Tcp {
            return Ok(None);
        }
        let io = TokioIo::new(connected.transport);
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| AttemptFailure::from_hyper(Phase::SendRequest, e))?;
        tokio::spawn(conn);
        let req = Request::get(hc.path.as_str())
            .header(header::HOST, &*target.authority)
            .header(header::USER_AGENT, USER_AGENT)
            .body(Empty::<Bytes>::new())
            .map_err(|_| AttemptFailure::new(Phase::SendRequest))?;
        let resp = send.send_request(req).await.map_err(|e| AttemptFailure::from_hyper(Phase::AwaitHeaders, e))?;
        Ok::<_, AttemptFailure>(Some(resp.status().as_u16()))
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
