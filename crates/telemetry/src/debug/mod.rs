//! Debug (trace) sessions, Apigee's Trace tool: an operator opens a session with a filter, and the next
//! exchanges that match are captured whole, phase by phase (`POST /api/v1/debug-sessions`, `waygate trace`).
//!
//! Cost when no session is capturing: [`Sessions::begin`] is one relaxed atomic load and a branch, and the
//! request carries a `None` where a [`Tracer`] would be; every hook on the request path branches on it. When
//! sessions capture, each request reads their filters without a lock (an `ArcSwap` snapshot, published when
//! the set of capturing sessions changes) and a clock; one whose own facts match a session's filter
//! ([`spec::Filter`]) gets a tracer (at most [`MAX_TRACED_IN_FLIGHT`] at once), and its finished record reaches
//! [`Sessions`] as an [`Observer`] that keeps it, under the session list's lock, in each session whose whole
//! filter it matches.
//!
//! Memory is bounded: at most [`MAX_SESSIONS`] sessions exist (capturing or finished and kept for reading),
//! each keeps at most its `max_exchanges` (at most [`spec::MAX_EXCHANGES`]) records, and each record holds at
//! most [`CAPTURE_BOUND`] bytes: the record itself (the flight recorder's bound, URL and User-Agent cut to
//! 8 KiB each), [`HEADER_BYTES`] of headers each way, [`BODY_CAPTURE_BYTES`] of each body,
//! and [`MAX_PHASES`] phases. With the defaults (20 exchanges) a session takes at most about 1.5 MiB;
//! eight sessions of 100 exchanges, at most about 60 MiB.
//!
//! A session ends when it has its `max_exchanges`, when its timeout passes (judged whenever the registry is
//! used, so an idle gateway needs no timer), or when it is stopped (`DELETE`, which also forgets it). A
//! finished session stays readable until it is deleted or a new session needs its place.

pub mod spec;
mod tracer;
pub mod view;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;

pub use spec::{Filter, RequestInfo, SessionSpec, StatusFilter};
pub use tracer::{
    BODY_CAPTURE_BYTES, BodySample, BodyTap, Capture, HEADER_BYTES, MASKED, MAX_DETAIL, MAX_PHASES, PhaseMark, Tracer,
    is_credential,
};
pub use view::{SessionView, TracedView};

use crate::{Exchange, Observer};

/// Sessions that may exist at once, capturing or finished.
pub const MAX_SESSIONS: usize = 8;
/// Exchanges traced at once (in flight with a tracer), whatever the load: past it, requests go untraced.
pub const MAX_TRACED_IN_FLIGHT: usize = 256;
/// Bytes one captured exchange holds at most: the record (3.5 KiB, the flight recorder's bound) with its URL
/// and User-Agent (8 KiB each), the headers both ways, the bodies both ways, the phases with their details, and
/// a connection snapshot per attempt (1 KiB for all).
pub const CAPTURE_BOUND: usize = 3584
    + 2 * 8192
    + 2 * HEADER_BYTES
    + 2 * BODY_CAPTURE_BYTES
    + MAX_PHASES * MAX_DETAIL
    + MAX_PHASES.next_power_of_two() * std::mem::size_of::<PhaseMark>()
    + 1024;

/// Sessions capturing in this process, all gateways together: the HTTP/1 server stamps when a head began to
/// arrive only while this is not 0.
static CAPTURING_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// Whether a debug session captures anywhere in the process (one relaxed load).
#[inline]
pub fn capturing_anywhere() -> bool {
    CAPTURING_ANYWHERE.load(Ordering::Relaxed) != 0
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Capturing,
    /// It captured its `max_exchanges`.
    Full,
    /// Its timeout passed first.
    Expired,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Capturing => "capturing",
            Self::Full => "full",
            Self::Expired => "expired",
        }
    }
}

/// One session and what it captured.
#[derive(Debug)]
pub struct Session {
    /// Its number in the registry (what a [`Capture`] names)...
    num: u64,
    /// ... and the id users see.
    pub id: String,
    pub spec: Arc<SessionSpec>,
    pub created: SystemTime,
    started: Instant,
    pub state: State,
    /// When it stopped capturing.
    pub ended: Option<SystemTime>,
    pub exchanges: Vec<Arc<Exchange>>,
}

impl Session {
    pub fn expires(&self) -> SystemTime {
        self.created + self.spec.timeout
    }
}

/// Why a session was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooMany;

impl std::fmt::Display for TooMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{MAX_SESSIONS} debug sessions are capturing already: stop one (DELETE /api/v1/debug-sessions/ID)")
    }
}

/// Every debug session of a gateway.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Sessions capturing now: 0 turns tracing off on the request path.
    capturing: AtomicUsize,
    /// Exchanges carrying a tracer now.
    in_flight: Arc<AtomicUsize>,
    /// The capturing sessions' filters, as the request path reads them without a lock; published from `list`
    /// whenever the capturing set changes.
    live: ArcSwap<Vec<Live>>,
    list: Mutex<List>,
}

/// A capturing session as the request path sees it.
#[derive(Debug)]
struct Live {
    num: u64,
    spec: Arc<SessionSpec>,
    until: Instant,
}

#[derive(Debug, Default)]
struct List {
    sessions: Vec<Session>,
    next: u64,
}

impl Sessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any session is capturing: the request path's whole cost when none is.
    #[inline]
    pub fn any(&self) -> bool {
        self.capturing.load(Ordering::Relaxed) != 0
    }

    /// A tracer for a request whose head was read at `origin`, when some capturing session's filter may match
    /// it; `None` (after one atomic load, when no session captures) otherwise.
    #[inline]
    pub fn begin(&self, origin: Instant, req: &RequestInfo<'_>) -> Option<Box<Tracer>> {
        if !self.any() {
            return None;
        }
        self.begin_matching(origin, req)
    }

    fn begin_matching(&self, origin: Instant, req: &RequestInfo<'_>) -> Option<Box<Tracer>> {
        if self.in_flight.load(Ordering::Relaxed) >= MAX_TRACED_IN_FLIGHT {
            return None;
        }
        let now = Instant::now();
        let live = self.live.load();
        if live.iter().any(|l| now >= l.until) {
            // Once per session: its timeout passed, and nobody asked the registry since.
            self.expire(&mut self.lock(), now);
        }
        let matching: Vec<(u64, Arc<SessionSpec>)> = live
            .iter()
            .filter(|l| now < l.until && l.spec.filter.request_matches(req))
            .map(|l| (l.num, l.spec.clone()))
            .collect();
        if matching.is_empty() {
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Box::new(Tracer::new(origin, matching, tracer::InFlight(self.in_flight.clone()))))
    }

    /// Starts a session; its id. Refused when [`MAX_SESSIONS`] are capturing; a finished one (the oldest)
    /// makes room otherwise.
    pub fn start(&self, spec: SessionSpec) -> Result<String, TooMany> {
        let mut list = self.lock();
        self.expire(&mut list, Instant::now());
        if list.sessions.len() >= MAX_SESSIONS {
            let oldest_finished = list.sessions.iter().position(|s| s.state != State::Capturing).ok_or(TooMany)?;
            list.sessions.remove(oldest_finished);
        }
        list.next += 1;
        let num = list.next;
        // Random, so that ids from before a restart do not name new sessions.
        let id = format!("{:016x}", rand::random::<u64>());
        list.sessions.push(Session {
            num,
            id: id.clone(),
            spec: Arc::new(spec),
            created: SystemTime::now(),
            started: Instant::now(),
            state: State::Capturing,
            ended: None,
            exchanges: Vec::new(),
        });
        self.capturing.fetch_add(1, Ordering::Relaxed);
        CAPTURING_ANYWHERE.fetch_add(1, Ordering::Relaxed);
        self.publish(&list);
        Ok(id)
    }

    /// Every session, oldest first, without its exchanges.
    pub fn list(&self) -> Vec<SessionView> {
        let mut list = self.lock();
        self.expire(&mut list, Instant::now());
        list.sessions.iter().map(|s| SessionView::of(s, false)).collect()
    }

    /// One session with its captured exchanges.
    pub fn get(&self, id: &str) -> Option<SessionView> {
        let mut list = self.lock();
        self.expire(&mut list, Instant::now());
        list.sessions.iter().find(|s| s.id == id).map(|s| SessionView::of(s, true))
    }

    /// Stops and forgets a session; what it was, without its exchanges.
    pub fn stop(&self, id: &str) -> Option<SessionView> {
        let mut list = self.lock();
        self.expire(&mut list, Instant::now());
        let at = list.sessions.iter().position(|s| s.id == id)?;
        let session = list.sessions.remove(at);
        if session.state == State::Capturing {
            self.capture_ended();
            self.publish(&list);
        }
        Some(SessionView::of(&session, false))
    }

    /// Keeps a finished traced record in every session that still captures and whose whole filter it matches.
    pub fn collect(&self, ex: &Exchange) {
        let Some(capture) = ex.debug.as_deref() else { return };
        let mut shared: Option<Arc<Exchange>> = None;
        let mut full = false;
        let mut list = self.lock();
        self.expire(&mut list, Instant::now());
        for s in list.sessions.iter_mut().filter(|s| capture.sessions.contains(&s.num)) {
            if s.state != State::Capturing || !s.spec.filter.end_matches(ex) {
                continue;
            }
            s.exchanges.push(shared.get_or_insert_with(|| Arc::new(crate::flight::trimmed(ex))).clone());
            if s.exchanges.len() >= s.spec.max_exchanges {
                s.state = State::Full;
                s.ended = Some(SystemTime::now());
                self.capture_ended();
                full = true;
            }
        }
        if full {
            self.publish(&list);
        }
    }

    /// Ends the sessions whose timeout has passed.
    fn expire(&self, list: &mut List, now: Instant) {
        let mut expired = false;
        for s in list.sessions.iter_mut().filter(|s| s.state == State::Capturing) {
            let after = now.saturating_duration_since(s.started);
            if after >= s.spec.timeout {
                s.state = State::Expired;
                s.ended = Some(s.created + s.spec.timeout);
                self.capture_ended();
                expired = true;
            }
        }
        if expired {
            self.publish(list);
        }
    }

    /// Hands the request path the capturing sessions' filters.
    fn publish(&self, list: &List) {
        let live = list
            .sessions
            .iter()
            .filter(|s| s.state == State::Capturing)
            .map(|s| Live { num: s.num, spec: s.spec.clone(), until: s.started + s.spec.timeout })
            .collect();
        self.live.store(Arc::new(live));
    }

    fn capture_ended(&self) {
        self.capturing.fetch_sub(1, Ordering::Relaxed);
        CAPTURING_ANYWHERE.fetch_sub(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, List> {
        // Every critical section leaves the list whole: a panic in one teaches a reader nothing.
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        CAPTURING_ANYWHERE.fetch_sub(*self.capturing.get_mut(), Ordering::Relaxed);
    }
}

impl Observer for Sessions {
    /// An untraced record costs one branch.
    fn observe(&self, exchange: &Exchange) {
        self.collect(exchange);
    }
}
