//! Turning the instants the data plane captures into ALB's three processing times and two wall-clock columns.
//!
//! ALB's rules (reference/ALB.md §1): `request_processing_time` runs from receiving the request to sending it
//! to a target, `target_processing_time` from sending it to the target's response head beginning, and
//! `response_processing_time` from receiving that head to starting to send the response to the client. All
//! three are `-1` when the request could not be dispatched or the target did not answer: a connect or TLS
//! failure, a target that closed or reset before responding, or a response timeout. So either a response head
//! arrived and all three are numbers, or none is. Fixed responses and redirects, never dispatched, are `-1`
//! too. The data plane captures monotonic instants ([`Instant`]) and one wall-clock reading, so the columns
//! are immune to clock steps mid-request.

use std::time::{Duration, Instant, SystemTime};

use crate::Exchange;

/// The three processing times; `None` is written `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessingTimes {
    pub request: Option<Duration>,
    pub target: Option<Duration>,
    pub response: Option<Duration>,
}

/// The moments of one exchange, captured by the data plane where they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Wall clock when the request head was received (`request_creation_time`).
    pub received_at: SystemTime,
    /// The same moment, monotonic.
    pub received: Instant,
    /// The request head was written to the target on the attempt that got a response (for a function
    /// target: the invoke was sent). Set again on each attempt.
    pub request_sent: Option<Instant>,
    /// The target's response head was received (function target: the invoke's response arrived).
    pub response_head: Option<Instant>,
    /// The first byte of the response was written to the client; `None` when that was the moment its head
    /// arrived (the proxy relays a head at once, so it leaves this unset rather than store the same reading and
    /// subtract it: some 40 instructions a request).
    pub response_started: Option<Instant>,
}

impl Timings {
    /// Start timing now: call when the request head has been read.
    pub fn start() -> Self {
        Self::starting_at(SystemTime::now(), Instant::now())
    }

    /// Start timing at a given moment (tests, or a head read earlier).
    pub fn starting_at(received_at: SystemTime, received: Instant) -> Self {
        Self { received_at, received, request_sent: None, response_head: None, response_started: None }
    }

    /// ALB's processing times: all three only when a response head arrived after the request was sent.
    /// A `response_started` missing (nothing written yet) counts as zero response processing time.
    pub fn processing_times(&self) -> ProcessingTimes {
        match (self.request_sent, self.response_head) {
            (Some(sent), Some(head)) => ProcessingTimes {
                request: Some(sent.saturating_duration_since(self.received)),
                target: Some(head.saturating_duration_since(sent)),
                response: Some(self.response_started.map_or(Duration::ZERO, |s| s.saturating_duration_since(head))),
            },
            _ => ProcessingTimes::default(),
        }
    }

    /// The wall-clock time of a later instant, derived from the monotonic clock.
    pub fn wall_time(&self, at: Instant) -> SystemTime {
        let since = at.saturating_duration_since(self.received);
        self.received_at.checked_add(since).unwrap_or(self.received_at)
    }

    /// Fill the record's `request_creation_time`, `time` (= `finished`) and processing times.
    pub fn fill(&self, finished: Instant, exchange: &mut Exchange) {
        let times = self.processing_times();
        exchange.request_creation_time = self.received_at;
        exchange.time = self.wall_time(finished);
        exchange.request_processing_time = times.request;
        exchange.target_processing_time = times.target;
        exchange.response_processing_time = times.response;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn success_gives_three_numbers() {
        let t0 = Instant::now();
        let t = Timings {
            request_sent: Some(t0 + ms(2)),
            response_head: Some(t0 + ms(50)),
            response_started: Some(t0 + ms(51)),
            ..Timings::starting_at(SystemTime::UNIX_EPOCH, t0)
        };
        let p = t.processing_times();
        assert_eq!((p.request, p.target, p.response), (Some(ms(2)), Some(ms(48)), Some(ms(1))));
        let same = Timings { response_started: t.response_head, ..t };
        assert_eq!(same.processing_times().response, Some(Duration::ZERO));
    }

    #[test]
    fn connect_failure_is_all_minus_one() {
        let t = Timings::start();
        assert_eq!(t.processing_times(), ProcessingTimes::default());
    }

    #[test]
    fn response_timeout_is_all_minus_one() {
        let t0 = Instant::now();
        let t = Timings { request_sent: Some(t0), ..Timings::starting_at(SystemTime::UNIX_EPOCH, t0) };
        assert_eq!(t.processing_times(), ProcessingTimes::default());
    }

    #[test]
    fn fill_sets_wall_times() {
        let t0 = Instant::now();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t = Timings { request_sent: Some(t0), response_head: Some(t0 + ms(5)), ..Timings::starting_at(start, t0) };
        let mut ex = Exchange::new("l".into(), "app/waygate/l".into(), "127.0.0.1:1".parse().unwrap());
        t.fill(t0 + ms(7), &mut ex);
        assert_eq!(ex.request_creation_time, start);
        assert_eq!(ex.time, start + ms(7));
        assert_eq!(ex.target_processing_time, Some(ms(5)));
        assert_eq!(ex.response_processing_time, Some(Duration::ZERO));
    }
}
