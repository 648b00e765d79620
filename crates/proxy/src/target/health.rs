//! A target's health as ALB models it: `initial` until the first verdict, then `healthy` or `unhealthy` after
//! `healthy_threshold` / `unhealthy_threshold` consecutive results, each with ALB's reason code. The last
//! failure's cause (from the fault catalogue) is kept, so "unhealthy" always says why.
//!
//! A check or request that failed for the gateway's own reasons (GatewayResourceExhausted: out of descriptors,
//! memory or ports) says nothing about the target: it is counted as skipped, and neither breaks a passing
//! streak nor adds to a failing one. Otherwise a gateway out of descriptors would mark every healthy target
//! unhealthy and keep them out for minutes after the descriptors came back.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use waygate_faults::{Cause, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial,
    Healthy,
    Unhealthy,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The target answered with a status the matcher does not accept.
    Mismatch(u16),
    /// The check timed out (ALB: Target.Timeout).
    TimedOut(Cause),
    /// The check failed otherwise (refused, reset, TLS ...: ALB's Target.FailedHealthChecks).
    Failed(Cause),
}

impl Outcome {
    /// A verdict on the target: anything but a failure the gateway's own host caused.
    pub fn judges_target(self) -> bool {
        match self {
            Outcome::Passed | Outcome::Mismatch(_) => true,
            Outcome::TimedOut(cause) | Outcome::Failed(cause) => cause.source() != Source::Gateway,
        }
    }
}

#[derive(Debug, Default)]
struct Streak {
    passed: u32,
    failed: u32,
    last: Option<Outcome>,
}

/// The health of one target, shared by the checker (writer) and the request path (reader, lock-free).
#[derive(Debug)]
pub struct Health {
    state: AtomicU8,
    streak: Mutex<Streak>,
    /// Consecutive connect-phase failures seen by requests (passive health); an atomic so the request path
    /// never takes the lock on success.
    passive_failed: AtomicU32,
    /// When it last became healthy (ms after [`epoch`], 0: never): the start of its slow-start ramp.
    healthy_since_ms: AtomicU64,
    /// Checks that said nothing about the target (the gateway's own host failed them).
    skipped: AtomicU64,
}

/// A process-wide origin for the millisecond stamps above.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The share of its full weight a target gets `elapsed` into a slow start of `ramp` (linear, ALB).
pub fn ramp_fraction(elapsed: Duration, ramp: Duration) -> f64 {
    if ramp.is_zero() { 1.0 } else { (elapsed.as_secs_f64() / ramp.as_secs_f64()).min(1.0) }
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            streak: Mutex::new(Streak::default()),
            passive_failed: AtomicU32::new(0),
            healthy_since_ms: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }
}

/// A state change, for the system log (and the audit log when it lands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub outcome: Outcome,
}

impl Health {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Healthy,
            2 => State::Unhealthy,
            _ => State::Initial,
        }
    }

    /// Requests may go to it: anything but unhealthy (ALB routes to targets still in their initial check).
    pub fn routable(&self) -> bool {
        self.state() != State::Unhealthy
    }

    /// How far into its slow-start ramp the target is: 1.0 when it has been healthy for `ramp` or longer, or
    /// was never marked healthy (no checks: nothing to ramp from).
    pub fn slow_start_fraction(&self, ramp: Duration) -> f64 {
        match self.healthy_since_ms.load(Ordering::Relaxed) {
            0 => 1.0,
            since => ramp_fraction(Duration::from_millis(now_ms().saturating_sub(since)), ramp),
        }
    }

    fn set(&self, s: State) {
        if s == State::Healthy && self.state() != State::Healthy {
            self.healthy_since_ms.store(now_ms(), Ordering::Relaxed);
        }
        self.state.store(
            match s {
                State::Initial => 0,
                State::Healthy => 1,
                State::Unhealthy => 2,
            },
            Ordering::Relaxed,
        );
    }

    /// Records one check; returns the transition it caused, if any. A check the gateway's own host failed
    /// is only counted in [`Health::skipped_checks`].
    pub fn record(&self, outcome: Outcome, healthy_threshold: u32, unhealthy_threshold: u32) -> Option<Transition> {
        if !outcome.judges_target() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut streak = crate::lock(&self.streak);
        streak.last = Some(outcome);
        if outcome == Outcome::Passed {
            streak.passed += 1;
            streak.failed = 0;
            self.passive_failed.store(0, Ordering::Relaxed);
        } else {
            streak.failed += 1;
            streak.passed = 0;
        }
        let from = self.state();
        let to = if streak.passed >= healthy_threshold {
            State::Healthy
        } else if streak.failed >= unhealthy_threshold {
            State::Unhealthy
        } else {
            from
        };
        (to != from).then(|| {
            self.set(to);
            Transition { from, to, outcome }
        })
    }

    /// ALB's reason code for the current state.
    pub fn reason(&self) -> Option<&'static str> {
        let streak = crate::lock(&self.streak);
        match (self.state(), streak.last) {
            (State::Initial, _) => Some("Elb.InitialHealthChecking"),
            (State::Healthy, _) => None,
            (State::Unhealthy, Some(Outcome::Mismatch(_))) => Some("Target.ResponseCodeMismatch"),
            (State::Unhealthy, Some(Outcome::TimedOut(_))) => Some("Target.Timeout"),
            (State::Unhealthy, _) => Some("Target.FailedHealthChecks"),
        }
    }

    /// The last check's result.
    pub fn last(&self) -> Option<Outcome> {
        crate::lock(&self.streak).last
    }

    /// How many checks the gateway's own host failed (no verdict on the target).
    pub fn skipped_checks(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

impl Health {
    /// A request to this target failed in a way that proves the target unreachable (connect-phase causes).
    /// After `threshold` in a row the target is taken out of rotation at once, ahead of the next active check
    /// (like HAProxy's `observe layer4` or Envoy's outlier detection); active checks bring it back. Returns the
    /// transition when this failure ejected it.
    pub fn passive_failure(&self, cause: Cause, threshold: u32) -> Option<Transition> {
        if !Outcome::Failed(cause).judges_target() {
            return None;
        }
        let failed = self.passive_failed.fetch_add(1, Ordering::Relaxed) + 1;
        if failed < threshold || self.state() == State::Unhealthy {
            return None;
        }
        let mut streak = crate::lock(&self.streak);
        let from = self.state();
        let outcome = Outcome::Failed(cause);
        streak.last = Some(outcome);
        streak.passed = 0;
        self.set(State::Unhealthy);
        Some(Transition { from, to: State::Unhealthy, outcome })
    }

    /// A request to this target got a response: the passive failure streak ends.
    pub fn passive_success(&self) {
        if self.passive_failed.load(Ordering::Relaxed) != 0 {
            self.passive_failed.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_move_the_state() {
        let h = Health::default();
        assert_eq!((h.state(), h.reason()), (State::Initial, Some("Elb.InitialHealthChecking")));
        assert!(h.routable());
        assert_eq!(h.record(Outcome::Passed, 2, 2), None);
        let t = h.record(Outcome::Passed, 2, 2).unwrap();
        assert_eq!((t.from, t.to), (State::Initial, State::Healthy));
        assert_eq!(h.record(Outcome::Mismatch(503), 2, 2), None);
        let t = h.record(Outcome::Mismatch(503), 2, 2).unwrap();
        assert_eq!(t.to, State::Unhealthy);
        assert_eq!(h.reason(), Some("Target.ResponseCodeMismatch"));
        assert!(!h.routable());
        h.record(Outcome::TimedOut(Cause::TargetResponseTimeout), 2, 2);
        assert_eq!(h.reason(), Some("Target.Timeout"));
        h.record(Outcome::Failed(Cause::TargetConnectionRefused), 2, 2);
        assert_eq!(h.reason(), Some("Target.FailedHealthChecks"));
        h.record(Outcome::Passed, 2, 2);
        assert_eq!(h.state(), State::Unhealthy, "one pass is not enough");
        assert_eq!(h.record(Outcome::Passed, 2, 2).map(|t| t.to), Some(State::Healthy));
    }

    #[test]
    fn the_gateways_own_failures_judge_no_target() {
        let h = Health::default();
        h.record(Outcome::Passed, 2, 2);
        h.record(Outcome::Passed, 2, 2);
        let exhausted = Outcome::Failed(Cause::GatewayResourceExhausted);
        for _ in 0..10 {
            assert_eq!(h.record(exhausted, 2, 2), None);
            assert_eq!(h.passive_failure(Cause::GatewayResourceExhausted, 1), None);
        }
        assert_eq!((h.state(), h.skipped_checks()), (State::Healthy, 10));
        assert_eq!(h.last(), Some(Outcome::Passed), "the last verdict stays the target's own");
        // Skips do not join a failing streak either: one real failure after them is one, not eleven.
        assert_eq!(h.record(Outcome::Failed(Cause::TargetConnectionRefused), 2, 2), None);
        assert_eq!(h.state(), State::Healthy);
    }
}
