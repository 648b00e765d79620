//! The evaluator's side of one rule: the per-tick counts the request path accumulated, kept over the rule's
//! sliding window with running sums, and the firing state with its hysteresis. Only the evaluator touches it
//! (one thread), so it is plain data.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use waygate_config::AlertTrigger;

/// What one tick added: exchanges in scope, matching ones, and the matching ones by cause (`None` last).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Delta {
    pub scope: u64,
    pub hits: u64,
    /// (cause index, count), only the causes seen: most ticks have none.
    pub causes: Vec<(usize, u64)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Window {
    length: Duration,
    ticks: VecDeque<(SystemTime, Delta)>,
    pub scope: u64,
    pub hits: u64,
    /// Running sum per cause index; the last slot counts matches without a cause (a target's own 5xx).
    pub causes: Vec<u64>,
}

impl Window {
    pub fn new(length: Duration, cause_slots: usize) -> Self {
        Self { length, ticks: VecDeque::new(), scope: 0, hits: 0, causes: vec![0; cause_slots] }
    }

    /// Adds the tick ending at `now` and forgets ticks that left the window `(now - length, now]`.
    pub fn push(&mut self, now: SystemTime, delta: Delta) {
        self.scope += delta.scope;
        self.hits += delta.hits;
        for &(c, n) in &delta.causes {
            self.causes[c] += n;
        }
        if delta != Delta::default() {
            self.ticks.push_back((now, delta));
        }
        let horizon = now.checked_sub(self.length).unwrap_or(SystemTime::UNIX_EPOCH);
        while self.ticks.front().is_some_and(|(t, _)| *t <= horizon) {
            let Some((_, old)) = self.ticks.pop_front() else { break };
            self.scope -= old.scope;
            self.hits -= old.hits;
            for (c, n) in old.causes {
                self.causes[c] -= n;
            }
        }
    }

    /// The rule's value now: the count, or the fraction of exchanges in scope (0 with none).
    pub fn value(&self, trigger: &AlertTrigger) -> f64 {
        match trigger {
            AlertTrigger::Count(_) => self.hits as f64,
            AlertTrigger::Ratio { .. } if self.scope == 0 => 0.0,
            AlertTrigger::Ratio { .. } => self.hits as f64 / self.scope as f64,
        }
    }
}

/// Whether the alert fires now, given whether it fired before: it starts at the trigger (a ratio only once
/// `min_requests` were in scope) and stops only below `resolve_below`.
pub(crate) fn firing(was: bool, value: f64, scope: u64, trigger: &AlertTrigger, resolve_below: f64) -> bool {
    if was {
        return value >= resolve_below;
    }
    match *trigger {
        AlertTrigger::Count(n) => value >= n as f64,
        AlertTrigger::Ratio { ratio, min_requests } => scope >= min_requests && value >= ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn sums_slide_with_the_window() {
        let mut w = Window::new(Duration::from_secs(10), 3);
        w.push(at(0), Delta { scope: 5, hits: 2, causes: vec![(0, 2)] });
        w.push(at(5), Delta { scope: 5, hits: 1, causes: vec![(2, 1)] });
        assert_eq!((w.scope, w.hits, w.causes.clone()), (10, 3, vec![2, 0, 1]));
        w.push(at(9), Delta::default());
        assert_eq!(w.hits, 3);
        // At t=10 the tick of t=0 is out of (0, 10].
        w.push(at(10), Delta::default());
        assert_eq!((w.scope, w.hits, w.causes.clone()), (5, 1, vec![0, 0, 1]));
        w.push(at(15), Delta::default());
        assert_eq!((w.scope, w.hits), (0, 0));
        assert_eq!(w.value(&AlertTrigger::Ratio { ratio: 0.5, min_requests: 1 }), 0.0);
    }

    #[test]
    fn hysteresis() {
        let count = AlertTrigger::Count(10);
        assert!(!firing(false, 9.0, 0, &count, 5.0));
        assert!(firing(false, 10.0, 0, &count, 5.0));
        assert!(firing(true, 5.0, 0, &count, 5.0), "still at resolve_below: keeps firing");
        assert!(!firing(true, 4.0, 0, &count, 5.0));
        let ratio = AlertTrigger::Ratio { ratio: 0.1, min_requests: 20 };
        assert!(!firing(false, 1.0, 19, &ratio, 0.05), "too few requests to judge a ratio");
        assert!(firing(false, 0.1, 20, &ratio, 0.05));
        assert!(firing(true, 0.06, 3, &ratio, 0.05));
    }
}
