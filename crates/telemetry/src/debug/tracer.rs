//! The phase recorder one traced exchange carries ([`Tracer`]) and what it leaves on the finished record
//! ([`Capture`]). The data plane makes a tracer only when a session may want the exchange
//! ([`super::Sessions::begin`]); every hook on the request path is a branch on that `Option`, so an untraced
//! request reads no clock and allocates nothing here.
//!
//! Phases are laid end to end on one axis whose zero is the moment the request head was read: each
//! [`Tracer::step`] runs from where the last one ended to now. The client's TLS handshake and the head's
//! reading happened before zero (negative starts). Everything kept is bounded: [`MAX_PHASES`] phases,
//! [`HEADER_BYTES`] of headers each way, [`BODY_CAPTURE_BYTES`] of each body when the session asks for bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use waygate_connect::meter::ConnSnapshot;

use super::spec::SessionSpec;

/// Phases kept per exchange: the dozen of one attempt, a handful per retry, with room to spare.
pub const MAX_PHASES: usize = 48;
/// Header bytes kept each way (names, values and the two strings' own size); past it the rest are left out and
/// the capture says so.
pub const HEADER_BYTES: usize = 8 * 1024;
/// A phase's detail is cut to this many bytes.
pub const MAX_DETAIL: usize = 512;
/// Body bytes kept each way when a session captures bodies.
pub const BODY_CAPTURE_BYTES: usize = 4 * 1024;
/// What a masked header's value becomes.
pub const MASKED: &str = "<masked>";

/// Headers whose values are credentials: never kept.
const CREDENTIALS: [&str; 5] = ["authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"];

/// Whether a header's value is masked in captures.
pub fn is_credential(name: &str) -> bool {
    CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c))
}

/// One phase: where it starts on the exchange's axis, how long it took, what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseMark {
    /// `client_tls`, `request_head`, `desync_verdict`, `route`, `request_body`, `select`, `pool_checkout`,
    /// `connect`, `tls_handshake`, `request_sent`, `request_body`, `response_head`, `body`, `respond`, `end`, or
    /// the failing phase's
    /// catalogue name (`connect`, `await_headers` ...).
    pub name: &'static str,
    /// The attempt (1-based) the phase belongs to; `None` before the first target was chosen.
    pub attempt: Option<u8>,
    /// Microseconds from the request head's arrival; negative before it (the client's TLS handshake).
    pub start_us: i64,
    pub duration: Duration,
    pub detail: String,
    /// The exchange failed here.
    pub failed: bool,
}

/// The first bytes of one body, and how many it had.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodySample {
    pub bytes: Vec<u8>,
    pub total: u64,
}

/// What a traced exchange carries on its finished record (`Exchange::debug`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capture {
    /// The sessions whose request-time filters it passed (their numbers in [`super::Sessions`]).
    pub sessions: Vec<u64>,
    pub phases: Vec<PhaseMark>,
    /// Credentials masked ([`MASKED`]).
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    /// Headers were left out past [`HEADER_BYTES`].
    pub headers_truncated: bool,
    /// Each attempt's connection as it was when its response head came or it failed.
    pub connections: Vec<(u8, ConnSnapshot)>,
    pub request_body: Option<BodySample>,
    pub response_body: Option<BodySample>,
}

/// A body as it streams: its length, when its last byte went by, and (when a session captures bodies) its
/// first [`BODY_CAPTURE_BYTES`]. Shared between the body being streamed and the tracer; one short lock per
/// frame, on traced exchanges only.
#[derive(Debug, Default)]
pub struct BodyTap {
    sample: Mutex<BodySample>,
    /// Keep the bytes, not only count them.
    capture: bool,
    ended: OnceLock<Instant>,
}

impl BodyTap {
    /// A tap that counts, and keeps the first bytes when `capture`.
    pub fn new(capture: bool) -> Self {
        Self { capture, ..Self::default() }
    }

    pub fn push(&self, data: &[u8]) {
        let mut s = self.sample.lock().unwrap_or_else(PoisonError::into_inner);
        s.total += data.len() as u64;
        if !self.capture {
            return;
        }
        if s.bytes.capacity() == 0 && !data.is_empty() {
            // At once and exactly: grown piece by piece, the vector could double past the cap.
            s.bytes.reserve_exact(BODY_CAPTURE_BYTES);
        }
        let room = BODY_CAPTURE_BYTES.saturating_sub(s.bytes.len());
        s.bytes.extend_from_slice(&data[..room.min(data.len())]);
    }

    /// The body's last byte went by now (the first call counts).
    pub fn end(&self) {
        let _ = self.ended.set(Instant::now());
    }

    /// When the body's last byte went by, if it has.
    pub fn ended(&self) -> Option<Instant> {
        self.ended.get().copied()
    }

    fn total(&self) -> u64 {
        self.sample.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    fn take(&self) -> BodySample {
        std::mem::take(&mut *self.sample.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Counts a traced exchange in flight (the registry bounds them) until it is finished or dropped.
#[derive(Debug)]
pub(super) struct InFlight(pub(super) Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The recorder of one exchange in flight.
#[derive(Debug)]
pub struct Tracer {
    origin: Instant,
    cursor: Instant,
    attempt: Option<u8>,
    /// The sessions still interested, with their specs (the target group is judged once routed).
    sessions: Vec<(u64, Arc<SessionSpec>)>,
    capture: Capture,
    header_bytes: usize,
    request_tap: Option<Arc<BodyTap>>,
    response_tap: Option<Arc<BodyTap>>,
    /// The request body has its phase already.
    body_phased: bool,
    _in_flight: InFlight,
}

impl Tracer {
    pub(super) fn new(origin: Instant, sessions: Vec<(u64, Arc<SessionSpec>)>, in_flight: InFlight) -> Self {
        let bodies = sessions.iter().any(|(_, s)| s.capture_body);
        Self {
            origin,
            cursor: origin,
            attempt: None,
            sessions,
            capture: Capture::default(),
            header_bytes: 0,
            // Always there: the request body's end is a phase of its own (an upload is not the target's wait).
            request_tap: Some(Arc::new(BodyTap::new(bodies))),
            response_tap: bodies.then(|| Arc::new(BodyTap::new(true))),
            body_phased: false,
            _in_flight: in_flight,
        }
    }

    fn offset(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.origin) {
            Some(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            None => -i64::try_from(self.origin.duration_since(at).as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// A phase from `start` to `end`.
    pub fn span(&mut self, name: &'static str, start: Instant, end: Instant, mut detail: String, failed: bool) {
        if self.capture.phases.len() >= MAX_PHASES {
            return;
        }
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.shrink_to_fit();
        }
        let start_us = self.offset(start);
        let duration = end.saturating_duration_since(start);
        self.capture.phases.push(PhaseMark { name, attempt: self.attempt, start_us, duration, detail, failed });
    }

    /// A phase from where the last one ended to now.
    pub fn step(&mut self, name: &'static str, detail: String, failed: bool) {
        let now = Instant::now();
        self.span(name, self.cursor, now, detail, failed);
        self.cursor = now;
    }

    /// Phases to come belong to this attempt (1-based).
    pub fn attempt(&mut self, attempt: u8) {
        self.attempt = Some(attempt);
    }

    /// Phases to come belong to the exchange, not to one attempt (the gateway's answer, the end).
    pub fn attempts_over(&mut self) {
        self.attempt = None;
    }

    /// Where the axis now stands (the end of the last step).
    pub fn cursor(&self) -> Instant {
        self.cursor
    }

    /// Moves the axis on to `at` without a phase (the next step starts there).
    pub fn advance(&mut self, at: Instant) {
        self.cursor = self.cursor.max(at);
    }

    /// Whether any phase so far failed.
    pub fn failed(&self) -> bool {
        self.capture.phases.iter().any(|p| p.failed)
    }

    /// The request was routed to `group`: sessions filtering on another group lose interest. `false`: none is
    /// left, and the tracer can go.
    pub fn routed(&mut self, group: &str) -> bool {
        self.sessions.retain(|(_, s)| s.filter.group_matches(group));
        !self.sessions.is_empty()
    }

    pub fn request_headers(&mut self, headers: &http::HeaderMap) {
        self.capture.request_headers = self.masked(headers);
    }

    pub fn response_headers(&mut self, headers: &http::HeaderMap) {
        self.capture.response_headers = self.masked(headers);
    }

    fn masked(&mut self, headers: &http::HeaderMap) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(headers.len().min(64));
        for (name, value) in headers {
            let value: String = if is_credential(name.as_str()) {
                MASKED.into()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into()
            };
            self.header_bytes += name.as_str().len() + value.len() + 2 * std::mem::size_of::<String>();
            if self.header_bytes > HEADER_BYTES {
                self.capture.headers_truncated = true;
                break;
            }
            out.push((name.as_str().to_owned(), value));
        }
        out.shrink_to_fit();
        out
    }

    /// The connection of the current attempt.
    pub fn connection(&mut self, snapshot: ConnSnapshot) {
        let attempt = self.attempt.unwrap_or(1);
        self.capture.connections.push((attempt, snapshot));
    }

    /// The request body was read whole from the client (to be kept for a retry), `bytes` of it: the phase
    /// from the last one to now is the upload's.
    pub fn request_body_read(&mut self, bytes: u64) {
        self.step("request_body", format!("{bytes} bytes read whole from the client, kept for a retry"), false);
        self.body_phased = true;
    }

    /// Before the response head's (or a failure's) phase: a request body that streamed on after the head was
    /// sent and ended since gets the phase up to its last byte, so that an upload's time is not counted as the
    /// target's wait.
    pub fn request_body_sent(&mut self) {
        let Some(tap) = self.request_tap.as_ref().filter(|_| !self.body_phased) else { return };
        let Some(ended) = tap.ended().filter(|at| *at >= self.cursor) else { return };
        let detail = format!("{} bytes handed to the target's connection, the last at this phase's end", tap.total());
        self.span("request_body", self.cursor, ended, detail, false);
        self.cursor = ended;
        self.body_phased = true;
    }

    /// Where the request body goes as it streams (counted, its end marked, its first bytes kept when a
    /// session captures bodies).
    pub fn request_tap(&self) -> Option<Arc<BodyTap>> {
        self.request_tap.clone()
    }

    /// Where the response body's first bytes go, when a session captures bodies.
    pub fn response_tap(&self) -> Option<Arc<BodyTap>> {
        self.response_tap.clone()
    }

    /// The capture, for the finished record.
    pub fn finish(mut self) -> Box<Capture> {
        self.capture.sessions = self.sessions.iter().map(|(n, _)| *n).collect();
        self.capture.request_body = self.request_tap.as_ref().filter(|t| t.capture).map(|t| t.take());
        self.capture.response_body = self.response_tap.as_ref().map(|t| t.take());
        Box::new(std::mem::take(&mut self.capture))
    }
}
