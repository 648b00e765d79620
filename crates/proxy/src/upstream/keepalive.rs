//! Keep-alive learning per target. A target that closes idle connections sooner than the gateway's
//! `pool_idle_timeout` causes the keep-alive race; waygate learns the target's real keep-alive from what it
//! advertises (`Keep-Alive: timeout=N`, the target's own word, taken at once) and from what it does (the idle
//! age at which it closed pooled connections, taken only when two closes at different moments agree: see
//! [`closes`], since a restart closes idle connections at any age), expires its own idle connections shortly
//! before that, and says once, with the numbers, that the configuration is mis-tuned.
//!
//! A learned close age only ever goes down: a later corroborated pair that is longer is not taken, because a
//! server that checks its timers periodically closes at the timeout or up to a period later, and the earliest
//! is the one that races. A target restarted with a longer keep-alive keeps the shorter value (the pool then
//! expires its connections early, which costs reconnections, not errors) until the gateway restarts.

mod closes;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::closes::{BURST, Closes, Verdict};
use crate::lock;

/// What one target has taught us about its keep-alive.
#[derive(Debug)]
pub struct KeepAlive {
    configured: Duration,
    /// From `Keep-Alive: timeout=N`, in ms (0: never advertised).
    advertised_ms: AtomicU64,
    /// Shortest corroborated idle age at which the target closed pooled connections, in ms (0: none yet). An
    /// atomic: [`KeepAlive::effective`] reads it on every checkout and park.
    observed_ms: AtomicU64,
    /// Idle closes waiting for corroboration; touched only when the target closes an idle connection.
    closes: Mutex<Closes>,
    /// Pooled connections found closed (or otherwise unusable) at checkout and discarded.
    stale_discarded: AtomicU64,
    warned: AtomicBool,
}

/// A view for logs and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveView {
    pub configured: Duration,
    pub advertised: Option<Duration>,
    pub observed_close: Option<Duration>,
    /// An idle close age seen once (one event), waiting for a close at another moment to agree.
    pub observed_close_candidate: Option<Duration>,
    pub effective: Duration,
    pub stale_discarded: u64,
}

impl KeepAlive {
    pub fn new(configured: Duration) -> Self {
        Self {
            configured,
            advertised_ms: AtomicU64::new(0),
            observed_ms: AtomicU64::new(0),
            closes: Mutex::default(),
            stale_discarded: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    fn load(v: &AtomicU64) -> Option<Duration> {
        match v.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// How long an idle connection may stay pooled: the configured timeout, cut to just under what the target
    /// advertised or was seen to do (a tenth earlier, at least 100 ms), so the gateway always closes first.
    pub fn effective(&self) -> Duration {
        let learned = [Self::load(&self.advertised_ms), Self::load(&self.observed_ms)].into_iter().flatten().min();
        match learned {
            Some(l) if l <= self.configured => l.saturating_sub((l / 10).max(Duration::from_millis(100))),
            _ => self.configured,
        }
    }

    /// A `Keep-Alive` response header value, e.g. `timeout=5, max=100`.
    pub fn advertised(&self, header: &[u8], target: &str) {
        let Ok(text) = std::str::from_utf8(header) else { return };
        let secs = text.split(',').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("timeout").then(|| v.trim().parse::<u64>().ok()).flatten()
        });
        if let Some(secs) = secs.filter(|&s| s > 0) {
            let ms = secs.saturating_mul(1000);
            if self.advertised_ms.swap(ms, Ordering::Relaxed) != ms {
                self.warn_if_short(target, "advertised Keep-Alive timeout");
            }
        }
    }

    /// The target closed a pooled connection that had been idle for `idle`. Called by the pool's watcher, off
    /// the request path.
    pub fn observed_close(self: &Arc<Self>, idle: Duration, target: &str) {
        self.closed_at(Instant::now(), idle, target);
    }

    fn closed_at(self: &Arc<Self>, now: Instant, idle: Duration, target: &str) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        let (settled, opened) = lock(&self.closes).record(now, ms);
        if let Some(verdict) = settled {
            self.judged(verdict, target);
        }
        if opened {
            self.settle_later(target);
        }
    }

    /// Judges the event just opened once its window has passed, unless a later close does it first. Outside a
    /// runtime only a later close does.
    fn settle_later(self: &Arc<Self>, target: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (ka, target, at) = (Arc::downgrade(self), target.to_owned(), tokio::time::Instant::now() + BURST);
        runtime.spawn(async move {
            tokio::time::sleep_until(at).await;
            if let Some(ka) = ka.upgrade() {
                ka.settle_at(Instant::now(), &target);
            }
        });
    }

    fn settle_at(&self, now: Instant, target: &str) {
        let settled = lock(&self.closes).settle(now);
        if let Some(verdict) = settled {
            self.judged(verdict, target);
        }
    }

    fn judged(&self, verdict: Verdict, target: &str) {
        match verdict {
            Verdict::Learned(ms) => {
                let lower = |prev: u64| (prev == 0 || ms < prev).then_some(ms);
                if self.observed_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, lower).is_ok() {
                    self.warn_if_short(target, "observed idle closes");
                }
            }
            Verdict::Candidate(ms) => tracing::debug!(target: "waygate::keepalive", target_addr = %target,
                idle_ms = ms, "the target closed idle connections: a candidate keep-alive until a close at another \
                moment agrees"),
            Verdict::Restart { closes, shortest_ms, longest_ms } => tracing::info!(target: "waygate::keepalive",
                target_addr = %target, closes, shortest_idle_ms = shortest_ms, longest_idle_ms = longest_ms,
                "the target closed {closes} idle connections at one moment, idle for {shortest_ms} to {longest_ms} \
                ms: a restart or a reset, not a keep-alive timeout; nothing learned"),
        }
    }

    pub fn discarded_stale(&self) {
        self.stale_discarded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> KeepAliveView {
        KeepAliveView {
            configured: self.configured,
            advertised: Self::load(&self.advertised_ms),
            observed_close: Self::load(&self.observed_ms),
            observed_close_candidate: lock(&self.closes).candidate_ms().map(Duration::from_millis),
            effective: self.effective(),
            stale_discarded: self.stale_discarded.load(Ordering::Relaxed),
        }
    }

    /// The mis-tuning in words, when the target keeps idle connections for less than `pool_idle_timeout`.
    pub fn warning(&self) -> Option<String> {
        let view = self.view();
        let learned = [view.advertised, view.observed_close].into_iter().flatten().min()?;
        (learned < self.configured).then(|| {
            format!(
                "target keeps idle connections for {learned:?}, shorter than pool_idle_timeout ({:?}); waygate expires \
                 them after {:?}. Raise the target's keep-alive timeout above {:?}, or set pool_idle_timeout below {learned:?}",
                self.configured, view.effective, self.configured
            )
        })
    }

    fn warn_if_short(&self, target: &str, source: &str) {
        let view = self.view();
        let learned = [view.advertised, view.observed_close].into_iter().flatten().min();
        let Some(learned) = learned.filter(|l| *l < self.configured) else { return };
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            target: "waygate::keepalive",
            target_addr = %target,
            learned_ms = learned.as_millis() as u64,
            source,
            pool_idle_timeout_ms = self.configured.as_millis() as u64,
            effective_ms = view.effective.as_millis() as u64,
            "target keeps idle connections for {learned:?}, shorter than pool_idle_timeout ({:?}): this is the keep-alive \
             race behind intermittent 502 TargetKeepAliveRace. waygate now expires this target's idle connections after \
             {:?}. Fix: raise the target's keep-alive timeout above {:?}, or set pool_idle_timeout below {learned:?}",
            self.configured,
            view.effective,
            self.configured,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// Two closes of connections idle for `idle_ms` and `again_ms`, a second apart, both settled.
    fn corroborated(ka: &Arc<KeepAlive>, idle_ms: u64, again_ms: u64) {
        let t = Instant::now();
        ka.closed_at(t, Duration::from_millis(idle_ms), "t");
        ka.closed_at(at(t, 1000), Duration::from_millis(again_ms), "t");
        ka.settle_at(at(t, 1100), "t");
    }

    #[test]
    fn learns_from_header_and_corroborated_observations() {
        let ka = Arc::new(KeepAlive::new(Duration::from_secs(60)));
        assert_eq!(ka.effective(), Duration::from_secs(60));
        ka.advertised(b"timeout=5, max=100", "t");
        assert_eq!(ka.view().advertised, Some(Duration::from_secs(5)));
        assert_eq!(ka.effective(), Duration::from_millis(4500));
        corroborated(&ka, 2050, 2000);
        assert_eq!(ka.view().observed_close, Some(Duration::from_secs(2)), "the shorter of the pair");
        assert_eq!(ka.effective(), Duration::from_millis(1800));
        corroborated(&ka, 3000, 3000);
        assert_eq!(ka.view().observed_close, Some(Duration::from_secs(2)), "the shortest pair wins");
        corroborated(&ka, 1500, 1510);
        assert_eq!(ka.view().observed_close, Some(Duration::from_millis(1500)), "a shorter pair lowers it");
        ka.advertised(b"max=5", "t");
        assert_eq!(ka.view().advertised, Some(Duration::from_secs(5)), "no timeout: unchanged");
    }

    #[test]
    fn a_single_close_is_a_candidate_not_a_lesson() {
        let ka = Arc::new(KeepAlive::new(Duration::from_secs(60)));
        let t = Instant::now();
        ka.closed_at(t, Duration::from_millis(52_600), "t");
        ka.settle_at(at(t, 100), "t");
        let view = ka.view();
        assert_eq!(view.observed_close, None);
        assert_eq!(view.observed_close_candidate, Some(Duration::from_millis(52_600)));
        assert_eq!(view.effective, Duration::from_secs(60));
        assert_eq!(ka.warning(), None);
        ka.closed_at(at(t, 90_000), Duration::from_millis(30_000), "t");
        ka.settle_at(at(t, 90_100), "t");
        assert_eq!(ka.view().observed_close, None, "a close that disagrees teaches nothing either");
        assert_eq!(ka.view().observed_close_candidate, Some(Duration::from_secs(30)), "it is the new candidate");
    }

    #[test]
    fn a_burst_of_closes_at_different_ages_teaches_nothing_and_warns_not() {
        let ka = Arc::new(KeepAlive::new(Duration::from_secs(60)));
        let t = Instant::now();
        for (i, idle_ms) in [52_600u64, 3_100, 17_000, 52_610].into_iter().enumerate() {
            ka.closed_at(at(t, i as u64 * 3), Duration::from_millis(idle_ms), "t");
        }
        ka.settle_at(at(t, 100), "t");
        // The same again later (the target restarted twice): still nothing, though 52.6 s recurs.
        for (i, idle_ms) in [52_600u64, 900].into_iter().enumerate() {
            ka.closed_at(at(t, 60_000 + i as u64), Duration::from_millis(idle_ms), "t");
        }
        ka.settle_at(at(t, 60_100), "t");
        let view = ka.view();
        assert_eq!((view.observed_close, view.observed_close_candidate), (None, None));
        assert_eq!(view.effective, Duration::from_secs(60));
        assert_eq!(ka.warning(), None);
        assert!(!ka.warned.load(Ordering::Relaxed), "no WARN line");
    }

    #[test]
    fn longer_target_keepalive_changes_nothing() {
        let ka = Arc::new(KeepAlive::new(Duration::from_secs(60)));
        ka.advertised(b"timeout=75", "t");
        assert_eq!(ka.effective(), Duration::from_secs(60));
        assert!(!ka.warned.load(Ordering::Relaxed));
        corroborated(&ka, 50, 50);
        assert_eq!(ka.effective(), Duration::ZERO, "a target closing after 50 ms: never reuse");
        assert!(ka.warned.load(Ordering::Relaxed));
    }
}
