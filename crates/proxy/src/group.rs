//! Target groups at run time: their targets, the group's in-flight limit, the selection algorithms (round
//! robin, least outstanding requests with ties broken round robin, weighted random, slow start), and what a
//! health transition of one of its targets means for the group (logged, audited, failing open).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use waygate_config::{Algorithm, TargetGroup};
use waygate_faults::Cause;
use waygate_telemetry::TargetGroupRef;

use crate::audit::{Action, AuditLog};
use crate::count::Held;
use crate::target::Target;
use crate::target::health::{Outcome, State, Transition};

/// A target group with its targets.
#[derive(Debug)]
pub struct Group {
    pub config: TargetGroup,
    /// Name and synthetic ARN, as the access log and metrics label it.
    pub tg_ref: TargetGroupRef,
    pub targets: Vec<Arc<Target>>,
    next: AtomicUsize,
    /// Requests in flight to the group (for `max_in_flight_requests`).
    in_flight: Arc<AtomicUsize>,
    /// Where health transitions are recorded.
    pub audit: Arc<AuditLog>,
    /// Every target was unhealthy when last noted ([`Group::note_all_unhealthy`]).
    all_down: AtomicBool,
    /// A lambda group's function: requests invoke it instead of going to `targets` (which is empty).
    pub function: Option<Arc<crate::function::Function>>,
}

/// One request counted against the group's in-flight limit until dropped.
pub type Admitted = Held;

impl Group {
    pub fn new(config: TargetGroup, targets: Vec<Arc<Target>>, audit: Arc<AuditLog>) -> Self {
        let tg_ref = TargetGroupRef::new(config.name.as_str());
        let in_flight = Arc::new(AtomicUsize::new(0));
        Self {
            config,
            tg_ref,
            targets,
            next: AtomicUsize::new(0),
            in_flight,
            audit,
            all_down: AtomicBool::new(false),
            function: None,
        }
    }

    /// The group with its function (a lambda group).
    pub fn with_function(mut self, function: Arc<crate::function::Function>) -> Self {
        self.function = Some(function);
        self
    }

    /// Admits one request, or `None` when `max_in_flight_requests` are already in flight (GatewayOverloaded).
    pub fn admit(&self) -> Option<Admitted> {
        let limit = self.config.max_in_flight_requests as usize;
        let (admitted, before) = Held::enter(&self.in_flight);
        (limit == 0 || before < limit).then_some(admitted)
    }

    /// Notes whether every target is unhealthy now; `Some(now)` when that changed since it was last noted (a
    /// health transition), so the change is logged once, not per request.
    fn note_all_unhealthy(&self) -> Option<bool> {
        let now = self.all_unhealthy();
        (self.all_down.swap(now, Ordering::AcqRel) != now).then_some(now)
    }

    /// Passive health: a request's connect-phase failure (refused, unreachable, connect or TLS failure) counts
    /// towards taking the target out before the next active check. Only where active checks run, since they
    /// are what brings a target back. The gateway's own exhaustion is neither kind, so it never counts.
    pub fn observe_failure(&self, target: &Target, cause: Cause) {
        let hc = &self.config.health_check;
        let unreachable = cause.is_target_connection_error() || cause.is_target_tls_error();
        if !hc.enabled || !unreachable {
            return;
        }
        if let Some(t) = target.health.passive_failure(cause, hc.unhealthy_threshold) {
            self.health_transition(target, &t, "passive-health");
        }
    }

    /// Logs a target's health transition, records it in the audit log, and logs the group's own turn to all
    /// unhealthy (failing open, or 503 NoHealthyTargets) and back, once per turn.
    pub fn health_transition(&self, target: &Target, t: &Transition, actor: &str) {
        let group = self.config.name.as_str();
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
        self.audit.record(actor, Action::Health, Some(group), Some(&*target.authority), details);
        match self.note_all_unhealthy() {
            Some(true) if self.config.fail_open => tracing::warn!(target: "waygate::health", target_group = %group,
                "every target is unhealthy: requests fail open to all of them, as ALB does (fail_open = false answers 503 NoHealthyTargets instead)"),
            Some(true) => tracing::warn!(target: "waygate::health", target_group = %group,
                "every target is unhealthy: requests get 503 NoHealthyTargets (fail_open = false)"),
            Some(false) => tracing::info!(target: "waygate::health", target_group = %group,
                "a target is healthy again: requests go to healthy targets only"),
            None => {}
        }
    }

    /// Every target is unhealthy (then requests fail open to all of them, unless `fail_open = false`).
    pub fn all_unhealthy(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| !t.health.routable())
    }

    /// Picks a target not in `tried` (indices), per the group's algorithm, among the routable ones (all of
    /// them when none is: fail open); `None` when none is left.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let n = self.targets.len();
        if tried.len() >= n {
            return None;
        }
        let fail_open = self.all_unhealthy();
        // A target of an older snapshot may be draining: never a new request to it.
        let available = |i: &usize| {
            !tried.contains(i)
                && (fail_open || self.targets[*i].health.routable())
                && !self.targets[*i].lifecycle.is_draining()
        };
        match self.config.algorithm {
            Algorithm::RoundRobin => self.round_robin(available),
            Algorithm::LeastOutstandingRequests => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).filter(available).min_by_key(|&i| self.targets[i].in_flight())
            }
            Algorithm::WeightedRandom => self.weighted(tried, fail_open).or_else(|| self.round_robin(available)),
        }
    }

    fn round_robin(&self, available: impl Fn(&usize) -> bool) -> Option<usize> {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut candidates = (0..n).map(|k| (start + k) % n).filter(|i| available(i));
        let first = candidates.next()?;
        let ramp = self.config.slow_start;
        if ramp.is_zero() {
            return Some(first);
        }
        // Slow start: a target that just became healthy takes its turn with probability equal to its ramp
        // fraction, so its share grows linearly; never when it is the only one available.
        let mut fallback = first;
        for i in std::iter::once(first).chain(candidates) {
            let fraction = self.targets[i].health.slow_start_fraction(ramp);
            if fraction >= 1.0 || rand::random::<f64>() < fraction {
                return Some(i);
            }
            fallback = i;
        }
        Some(fallback)
    }

    fn weighted(&self, tried: &[usize], fail_open: bool) -> Option<usize> {
        let excluded = |i: usize| {
            tried.contains(&i)
                || !(fail_open || self.targets[i].health.routable())
                || self.targets[i].lifecycle.is_draining()
        };
        let weight = |i: usize| if excluded(i) { 0 } else { u64::from(self.targets[i].spec.weight) };
        let total = (0..self.targets.len()).map(weight).sum();
        if total == 0 {
            return None;
        }
        let mut point = rand::random_range(0..total);
        for i in 0..self.targets.len() {
            let w = weight(i);
            if point < w {
                return Some(i);
            }
            point -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{ConnectSpec, Upstream};
    use std::time::Duration;
    use waygate_config::TargetSpec;

    fn group(algorithm: Algorithm, weights: &[u32]) -> Group {
        let targets = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                let spec = TargetSpec { host: "127.0.0.1".into(), port: 1000 + i as u16, weight };
                let connect = ConnectSpec {
                    host: spec.host.clone(),
                    port: spec.port,
                    connect_timeout: Duration::from_secs(1),
                    tls_handshake_timeout: Duration::from_secs(1),
                    tls: None,
                };
                let upstream = Upstream::new(
                    connect,
                    spec.authority().into(),
                    Duration::from_secs(60),
                    Default::default(),
                    "g".into(),
                    1,
                );
                Arc::new(Target::new(spec, upstream))
            })
            .collect();
        let mut config = test_group();
        config.algorithm = algorithm;
        Group::new(config, targets, Default::default())
    }

    fn test_group() -> TargetGroup {
        let text = "[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\ndefault_target_group = \"g\"\n[[target_group]]\nname = \"g\"\n";
        waygate_config::parse(text, std::path::Path::new("t.toml")).unwrap().target_groups.remove(0)
    }

    #[test]
    fn round_robin_cycles_and_skips_tried() {
        let g = group(Algorithm::RoundRobin, &[1, 1, 1]);
        let picks: Vec<_> = (0..6).map(|_| g.pick(&[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_ne!(g.pick(&[0]).unwrap(), 0);
        assert_eq!(g.pick(&[0, 1, 2]), None);
    }

    #[test]
    fn least_outstanding_prefers_idle_target() {
        let g = group(Algorithm::LeastOutstandingRequests, &[1, 1, 1]);
        let _a = g.targets[0].begin();
        let _b = g.targets[2].begin();
        assert_eq!(g.pick(&[]), Some(1));
        assert_eq!(g.targets[0].in_flight(), 1);
    }

    #[test]
    fn slow_start_ramps_a_newly_healthy_target() {
        let mut g = group(Algorithm::RoundRobin, &[1, 1]);
        g.config.slow_start = Duration::from_secs(30);
        // Target 1 just became healthy; target 0 was never checked (full weight).
        g.targets[1].health.record(crate::target::health::Outcome::Passed, 1, 2);
        let picks = (0..1000).filter(|_| g.pick(&[]) == Some(1)).count();
        assert!(picks < 50, "seconds into a 30 s ramp it gets a sliver, not half: {picks}/1000");
        assert_eq!(g.pick(&[0]), Some(1), "the only one left is still used");
    }

    #[test]
    fn ramp_is_linear() {
        use crate::target::health::ramp_fraction;
        let s = Duration::from_secs;
        assert_eq!(ramp_fraction(s(0), s(30)), 0.0);
        assert_eq!(ramp_fraction(s(15), s(30)), 0.5);
        assert_eq!(ramp_fraction(s(45), s(30)), 1.0);
        assert_eq!(ramp_fraction(s(1), Duration::ZERO), 1.0);
    }

    #[test]
    fn weighted_random_honours_weights() {
        let g = group(Algorithm::WeightedRandom, &[1, 3, 0]);
        let mut counts = [0u32; 3];
        let n = 40_000;
        for _ in 0..n {
            counts[g.pick(&[]).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0, "weight 0 never chosen");
        // Expected 10,000 / 30,000; the bound is over 20 standard deviations wide (sd ~ 87).
        assert!((8_000..12_000).contains(&counts[0]), "{counts:?}");
        assert_eq!(g.pick(&[1]), Some(0));
    }
}
