//! Keep-alive learning per target. A target that closes idle connections sooner than the gateway's
//! `pool_idle_timeout` causes the keep-alive race; waygate learns the target's real keep-alive from what it
//! advertises (`Keep-Alive: timeout=N`) and from what it does (the idle age at which it closed pooled
//! connections), expires its own idle connections shortly before that, and says once, with the numbers,
//! that the configuration is mis-tuned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What one target has taught us about its keep-alive.
#[derive(Debug)]
pub struct KeepAlive {
    configured: Duration,
    /// From `Keep-Alive: timeout=N`, in ms (0: never advertised).
    advertised_ms: AtomicU64,
    /// Shortest idle age at which the target closed a pooled connection, in ms (0: never seen).
    observed_ms: AtomicU64,
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
    pub effective: Duration,
    pub stale_discarded: u64,
}

impl KeepAlive {
    pub fn new(configured: Duration) -> Self {
        Self {
            configured,
            advertised_ms: AtomicU64::new(0),
            observed_ms: AtomicU64::new(0),
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

    /// The target closed a pooled connection that had been idle for `idle`.
    pub fn observed_close(&self, idle: Duration, target: &str) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        let prev = self.observed_ms.load(Ordering::Relaxed);
        if prev == 0 || ms < prev {
            self.observed_ms.store(ms, Ordering::Relaxed);
            self.warn_if_short(target, "observed idle close");
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

    #[test]
    fn learns_from_header_and_observation() {
        let ka = KeepAlive::new(Duration::from_secs(60));
        assert_eq!(ka.effective(), Duration::from_secs(60));
        ka.advertised(b"timeout=5, max=100", "t");
        assert_eq!(ka.view().advertised, Some(Duration::from_secs(5)));
        assert_eq!(ka.effective(), Duration::from_millis(4500));
        ka.observed_close(Duration::from_secs(2), "t");
        assert_eq!(ka.effective(), Duration::from_millis(1800));
        ka.observed_close(Duration::from_secs(3), "t");
        assert_eq!(ka.view().observed_close, Some(Duration::from_secs(2)), "the shortest close wins");
        ka.advertised(b"max=5", "t");
        assert_eq!(ka.view().advertised, Some(Duration::from_secs(5)), "no timeout: unchanged");
    }

    #[test]
    fn longer_target_keepalive_changes_nothing() {
        let ka = KeepAlive::new(Duration::from_secs(60));
        ka.advertised(b"timeout=75", "t");
        assert_eq!(ka.effective(), Duration::from_secs(60));
        ka.observed_close(Duration::from_millis(50), "t");
        assert_eq!(ka.effective(), Duration::ZERO, "a target closing after 50 ms: never reuse");
    }
}
