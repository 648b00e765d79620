//! The request path's side of debug (trace) sessions (`waygate_telemetry::debug`): where each phase of a
//! traced exchange is marked on its [`Record`]. A record carries `Option<Box<Tracer>>`; every function here
//! starts with a branch on it, so an untraced request pays that branch at each hook and nothing else (the
//! tracer itself is asked for only while a session captures: one relaxed atomic load per request).
//!
//! Phases, end to end from the moment the request head was read: the client's TLS handshake and the head's
//! own reading (before zero), the desync verdict, routing (the rule), target selection (the candidates and
//! their states), the pool checkout (a reused connection and its idle time, or connect and TLS), the request
//! sent, the response head, the body (or the gateway's own answer), and the end with the status, cause and
//! byte counts. A failed attempt is marked in its catalogue phase (`connect`, `await_headers` ...).

use std::fmt::Write as _;
use std::sync::Arc;

use http::Request;
use waygate_faults::Cause;
use waygate_telemetry::debug::{BodyTap, Capture, RequestInfo, Tracer};
use waygate_telemetry::{Actions, Exchange};

use crate::group::Group;
use crate::guard::{Action, Verdict};
use crate::record::{ConnFacts, Record};
use crate::server::HeadStarted;
use crate::upstream::{AttemptFailure, Lease};
use crate::wire::fields::Fields;

/// Candidates named in a selection's detail; a larger group is summarised after them.
const NAMED_CANDIDATES: usize = 16;

impl Record {
    /// Starts tracing the request when a capturing session's filter may match it.
    #[inline]
    pub fn trace_begin<B>(&mut self, conn: &ConnFacts, req: &Request<B>, verdict: Option<&Verdict>) {
        if conn.listener.sink.debug.any() {
            self.debug = begin(self.timings.received, conn, req, verdict);
        }
    }

    /// Where the request body's first bytes go, when a session captures bodies.
    pub fn request_tap(&self) -> Option<Arc<BodyTap>> {
        self.debug.as_ref()?.request_tap()
    }

    /// Where the response body's first bytes go, when a session captures bodies.
    pub fn response_tap(&self) -> Option<Arc<BodyTap>> {
        self.debug.as_ref()?.response_tap()
    }

    pub(crate) fn trace_route(&mut self, priority: u32, actions: Actions) {
        if let Some(t) = self.debug.as_deref_mut() {
            let names: Vec<&str> = actions.names().collect();
            t.step("route", format!("rule priority {priority} ({})", names.join(",")), false);
        }
    }

    /// Sessions filtering on another target group lose interest; with none left, the tracer goes.
    pub(crate) fn trace_group(&mut self, group: &str) {
        if let Some(t) = self.debug.as_deref_mut()
            && !t.routed(group)
        {
            self.debug = None;
        }
    }

    /// Attempt `attempt` of `max` goes to `group.targets[index]`.
    pub fn trace_selected(&mut self, group: &Group, index: usize, attempt: usize, max: usize) {
        if let Some(t) = self.debug.as_deref_mut() {
            t.attempt(u8::try_from(attempt).unwrap_or(u8::MAX));
            t.step("select", selection(group, index, attempt, max), false);
        }
    }

    /// The attempt has its connection: reused from the pool, or opened (connect, then TLS when `tls`).
    pub fn trace_checkout(&mut self, lease: &Lease, tls: bool) {
        let Some(t) = self.debug.as_deref_mut() else { return };
        let c = lease.snapshot();
        if lease.reused {
            let idle = c.idle_before_use.map_or(String::new(), |d| format!(", idle {} ms in the pool", ms(d)));
            let what = format!("reused connection #{} to {} (use {}{idle})", c.id, c.remote, c.use_count);
            t.step("pool_checkout", what, false);
            return;
        }
        let what = format!("new connection #{} {} → {}", c.id, c.local, c.remote);
        let connected = lease.conn.counters.created;
        if tls && connected > t.cursor() {
            t.span("connect", t.cursor(), connected, what, false);
            t.advance(connected);
            t.step("tls_handshake", format!("TLS to {}", c.remote), false);
        } else {
            t.step("connect", what, false);
        }
    }

    /// The request body was read whole before the first attempt (kept for a retry).
    pub(crate) fn trace_body_read(&mut self, bytes: u64) {
        if let Some(t) = self.debug.as_deref_mut() {
            t.request_body_read(bytes);
        }
    }

    pub(crate) fn trace_sent(&mut self) {
        if let Some(t) = self.debug.as_deref_mut() {
            t.step("request_sent", "request head handed to the connection; the body streams on".into(), false);
        }
    }

    pub(crate) fn trace_failed(&mut self, cause: Cause, failure: &AttemptFailure, message: &str) {
        if let Some(t) = self.debug.as_deref_mut() {
            t.request_body_sent();
            t.step(failure.phase.as_str(), format!("{}: {message}", cause.name()), true);
            if let Some(c) = &failure.conn {
                t.connection(c.clone());
            }
        }
    }

    /// The target's response head arrived on `lease`.
    pub fn trace_response(&mut self, status: u16, fields: &Fields, lease: &Lease) {
        if let Some(t) = self.debug.as_deref_mut() {
            t.request_body_sent();
            let c = lease.snapshot();
            t.step("response_head", format!("{status} from {}", c.remote), status >= 500);
            t.response_headers(&fields.to_map());
            t.connection(c);
        }
    }

    /// The last phases on the finished record: the body (or the gateway's answer), then the end.
    pub(crate) fn trace_finish(&mut self) {
        if let Some(t) = self.debug.take() {
            self.ex.debug = Some(finish(*t, &self.ex));
        }
    }
}

#[cold]
#[inline(never)]
fn begin<B>(
    origin: std::time::Instant,
    conn: &ConnFacts,
    req: &Request<B>,
    verdict: Option<&Verdict>,
) -> Option<Box<Tracer>> {
    let info = RequestInfo {
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: req.headers(),
        client: conn.client.ip(),
    };
    let mut t = conn.listener.sink.debug.begin(origin, &info)?;
    // The head cannot have begun before the handshake ended (a connection's first head counts from its accept).
    let mut handshake_end = None;
    if let Some(tls) = &conn.tls
        && let Some((start, took)) = tls.handshake
    {
        let sni = tls.sni.as_deref().map_or(String::new(), |s| format!(", SNI {s}"));
        let what = format!("{} {}{sni} (the connection's handshake)", tls.protocol, tls.cipher);
        t.span("client_tls", start, start + took, what, false);
        handshake_end = Some(start + took);
    }
    if let Some(HeadStarted(at)) = req.extensions().get::<HeadStarted>() {
        let at = handshake_end.map_or(*at, |end| end.max(*at)).min(origin);
        t.span("request_head", at, origin, format!("{} {:?}", req.method(), req.version()), false);
    }
    if let Some(v) = verdict {
        let class = v
            .classification
            .map_or("compliant".to_owned(), |c| format!("{} ({})", c.as_str(), v.reason.unwrap_or("-")));
        let action = match v.action {
            Action::Allow => "allowed".to_owned(),
            Action::AllowThenClose => "allowed, then the connection closes".to_owned(),
            Action::Reject(cause) => format!("refused: {}", cause.name()),
        };
        t.span("desync_verdict", origin, origin, format!("{class}, {action}"), matches!(v.action, Action::Reject(_)));
    }
    t.request_headers(req.headers());
    Some(t)
}

fn selection(group: &Group, index: usize, attempt: usize, max: usize) -> String {
    let chosen = group.targets.get(index).map_or("-", |t| &*t.authority);
    let mut s = format!("{chosen} (attempt {attempt}/{max}); candidates:");
    for target in group.targets.iter().take(NAMED_CANDIDATES) {
        let draining = if target.lifecycle.is_draining() { " draining" } else { "" };
        let _ = write!(
            s,
            " {} {}{draining} ({} in flight);",
            target.authority,
            target.health.state().as_str(),
            target.in_flight()
        );
    }
    if group.targets.len() > NAMED_CANDIDATES {
        let _ = write!(s, " and {} more", group.targets.len() - NAMED_CANDIDATES);
    }
    s.trim_end_matches(';').to_owned()
}

fn finish(mut t: Tracer, ex: &Exchange) -> Box<Capture> {
    let cause = ex.cause.map_or("", |c| c.name());
    if ex.target_status.is_some() && ex.is_target_response() {
        let what = format!("{} bytes to the client{}{cause}", ex.sent_bytes, if cause.is_empty() { "" } else { "; " });
        t.step("body", what, ex.cause.is_some());
    } else if let Some(c) = ex.cause.filter(|_| !t.failed()) {
        t.attempts_over();
        // Failed before any attempt did (routing, selection, the client's own request): the failing phase is
        // the cause's own.
        t.step(c.phase().as_str(), c.name().to_owned(), true);
    } else {
        t.attempts_over();
        t.step("respond", format!("the gateway answered {}", ex.elb_status), false);
    }
    t.attempts_over();
    let target = ex.target_status.map_or("-".to_owned(), |s| s.to_string());
    let summary = format!(
        "status {} (target {target}), cause {}, {} attempt(s), {} bytes received, {} sent",
        ex.elb_status,
        if cause.is_empty() { "-" } else { cause },
        ex.attempts.len(),
        ex.received_bytes,
        ex.sent_bytes
    );
    let end = t.cursor();
    t.span("end", end, end, summary, false);
    t.finish()
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_micros() as f64 / 1000.0)
}
