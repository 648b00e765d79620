//! Rate-limited system-log lines: a failure that repeats thousands of times a second (out of descriptors, a
//! full disk, an accept loop failing) is logged at most once per period, and that line carries how many
//! occurrences it stands for. The operator still sees every class of trouble, and the log cannot become the
//! next thing to exhaust the disk or a core. Lock-free, so the request path may call it on every failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One log line per `period`, counting the occurrences in between.
#[derive(Debug)]
pub struct Throttle {
    epoch: Instant,
    period_ns: u64,
    /// Nanoseconds after `epoch` when the next line may be written (0: the first occurrence always logs).
    next_ns: AtomicU64,
    /// Occurrences since the last line, including the one that writes the next line.
    count: AtomicU64,
}

impl Throttle {
    /// One line per second: what "rate-limited" means everywhere in waygate's log.
    pub fn per_second() -> Self {
        Self::new(Duration::from_secs(1))
    }

    pub fn new(period: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            period_ns: period.as_nanos().try_into().unwrap_or(u64::MAX),
            next_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence. Returns `Some(n)` when this occurrence should write the line, `n` being how many
    /// occurrences (this one included) the line stands for; `None` when a line was written less than a period
    /// ago.
    pub fn hit(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ns();
        let next = self.next_ns.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        // One caller wins the period; the others only counted.
        self.next_ns
            .compare_exchange(next, now.saturating_add(self.period_ns), Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        Some(self.count.swap(0, Ordering::AcqRel).max(1))
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos().try_into().unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_counting_the_rest() {
        // A period no test run can outlast: only the first hit logs, the others are counted for the next line.
        let t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.hit(), Some(1));
        for _ in 0..999 {
            assert_eq!(t.hit(), None);
        }
        assert_eq!(t.count.load(Ordering::Relaxed), 999);
        // The period elapsed (moved by hand rather than waited for): the next line stands for all 1,000.
        t.next_ns.store(0, Ordering::Relaxed);
        assert_eq!(t.hit(), Some(1000));
        assert_eq!(t.hit(), None);
    }
}
