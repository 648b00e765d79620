//! Which idle closes teach a target's keep-alive. A keep-alive timeout closes every connection at the same idle
//! age, each at its own moment; a restart (a crash, a deploy, a reset by a device in front of the target)
//! closes every idle connection at one moment, at whatever ages they had. One close cannot tell the two apart,
//! so a close teaches nothing on its own:
//!
//! - closes within [`BURST`] of an event's first close are one event (a restart's closes arrive together; the
//!   window is counted from the first close, not the last, so a steady stream of keep-alive closes still makes
//!   separate events);
//! - an event whose idle ages disagree is a restart: it teaches nothing and drops the candidate, since the
//!   target that came back may be configured differently;
//! - an event whose ages agree becomes the candidate, unless a candidate from an earlier event agrees with it:
//!   then the pair is corroborated and the shorter of the two is learned.
//!
//! Ages agree within a tenth, or 50 ms for short timeouts ([`agree`]). The same timer seen from the gateway
//! drifts by a few milliseconds (the target starts it when it writes the response's last byte, the gateway
//! when it has read it and parked the connection, and the watcher runs when its worker gets to it), and some
//! servers check their keep-alive timers only periodically, so the band cannot be exact; a restart's ages
//! spread over the whole of `pool_idle_timeout`, so a band of a tenth rarely holds two of them. The 50 ms
//! floor keeps a 300 ms keep-alive (a tenth: 30 ms) from missing on scheduling noise.
//!
//! Events are judged [`BURST`] after their first close, by the next close or by a timer the caller sets.

use std::time::{Duration, Instant};

/// Closes within this of an event's first close are one event.
pub const BURST: Duration = Duration::from_millis(100);

/// The least disagreement tolerated between two idle ages, in ms.
const FLOOR_MS: u64 = 50;

/// Whether two idle ages (ms) are the same keep-alive timer: within a tenth of the longer, or 50 ms.
pub fn agree(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= (a.max(b) / 10).max(FLOOR_MS)
}

/// Closes gathered into one event.
#[derive(Debug, Clone, Copy)]
struct Event {
    first: Instant,
    shortest_ms: u64,
    longest_ms: u64,
    closes: u32,
}

/// What a settled event taught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its ages agree, with no earlier candidate to corroborate: the new candidate, in ms.
    Candidate(u64),
    /// It corroborated the candidate: the target's keep-alive in ms, the shorter of the pair.
    Learned(u64),
    /// Closes at different idle ages at one moment: a restart's signature.
    Restart { closes: u32, shortest_ms: u64, longest_ms: u64 },
}

/// The open event and the candidate of one target.
#[derive(Debug, Default)]
pub struct Closes {
    event: Option<Event>,
    candidate_ms: Option<u64>,
}

impl Closes {
    /// A close at `now` of a connection idle for `idle_ms`. Returns the verdict on the previous event when this
    /// close came after its window, and whether this close opened a new event (to settle [`BURST`] later).
    pub fn record(&mut self, now: Instant, idle_ms: u64) -> (Option<Verdict>, bool) {
        let settled = self.settle(now);
        match &mut self.event {
            Some(e) => {
                e.shortest_ms = e.shortest_ms.min(idle_ms);
                e.longest_ms = e.longest_ms.max(idle_ms);
                e.closes = e.closes.saturating_add(1);
                (settled, false)
            }
            None => {
                self.event = Some(Event { first: now, shortest_ms: idle_ms, longest_ms: idle_ms, closes: 1 });
                (settled, true)
            }
        }
    }

    /// Judges the open event if its window has passed by `now`.
    pub fn settle(&mut self, now: Instant) -> Option<Verdict> {
        let e = self.event.take_if(|e| now.saturating_duration_since(e.first) >= BURST)?;
        if !agree(e.shortest_ms, e.longest_ms) {
            self.candidate_ms = None;
            return Some(Verdict::Restart { closes: e.closes, shortest_ms: e.shortest_ms, longest_ms: e.longest_ms });
        }
        match self.candidate_ms.take() {
            Some(c) if agree(c, e.shortest_ms) => Some(Verdict::Learned(c.min(e.shortest_ms))),
            _ => {
                self.candidate_ms = Some(e.shortest_ms);
                Some(Verdict::Candidate(e.shortest_ms))
            }
        }
    }

    /// The settled observation waiting for a second one, in ms.
    pub fn candidate_ms(&self) -> Option<u64> {
        self.candidate_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn the_band_is_a_tenth_or_fifty_ms() {
        assert!(agree(5000, 5500) && !agree(5000, 5600));
        assert!(agree(300, 350) && !agree(300, 351), "the floor for short timeouts");
        assert!(agree(7, 7));
    }

    #[test]
    fn one_event_is_a_candidate_and_a_later_agreeing_one_teaches_the_shorter() {
        let t = Instant::now();
        let mut c = Closes::default();
        assert_eq!(c.record(t, 5020), (None, true));
        assert_eq!(c.settle(at(t, 99)), None, "still gathering");
        assert_eq!(c.settle(at(t, 100)), Some(Verdict::Candidate(5020)));
        assert_eq!(c.candidate_ms(), Some(5020));
        assert_eq!(c.record(at(t, 3000), 5001), (None, true));
        assert_eq!(c.settle(at(t, 3100)), Some(Verdict::Learned(5001)));
        assert_eq!(c.candidate_ms(), None, "used up");
    }

    #[test]
    fn the_next_close_settles_an_event_whose_window_passed() {
        let t = Instant::now();
        let mut c = Closes::default();
        c.record(t, 2000);
        assert_eq!(c.record(at(t, 150), 2010), (Some(Verdict::Candidate(2000)), true));
        assert_eq!(c.settle(at(t, 250)), Some(Verdict::Learned(2000)));
    }

    #[test]
    fn closes_of_one_moment_are_one_event_and_do_not_corroborate_each_other() {
        let t = Instant::now();
        let mut c = Closes::default();
        c.record(t, 2000);
        assert_eq!(c.record(at(t, 40), 2003), (None, false));
        assert_eq!(c.record(at(t, 99), 2001), (None, false), "the window runs from the first close");
        assert_eq!(c.settle(at(t, 100)), Some(Verdict::Candidate(2000)));
    }

    #[test]
    fn a_burst_at_different_ages_is_a_restart_and_drops_the_candidate() {
        let t = Instant::now();
        let mut c = Closes::default();
        c.record(t, 800);
        c.settle(at(t, 100));
        assert_eq!(c.candidate_ms(), Some(800));
        c.record(at(t, 5000), 810);
        c.record(at(t, 5001), 3000);
        c.record(at(t, 5002), 120);
        assert_eq!(c.settle(at(t, 5100)), Some(Verdict::Restart { closes: 3, shortest_ms: 120, longest_ms: 3000 }));
        assert_eq!(c.candidate_ms(), None);
        c.record(at(t, 9000), 805);
        assert_eq!(c.settle(at(t, 9100)), Some(Verdict::Candidate(805)), "starts over");
    }

    #[test]
    fn a_disagreeing_event_replaces_the_candidate() {
        let t = Instant::now();
        let mut c = Closes::default();
        c.record(t, 1000);
        c.settle(at(t, 100));
        c.record(at(t, 2000), 4000);
        assert_eq!(c.settle(at(t, 2100)), Some(Verdict::Candidate(4000)));
        c.record(at(t, 9000), 4100);
        assert_eq!(c.settle(at(t, 9100)), Some(Verdict::Learned(4000)));
    }
}
