//! Attribution: who generated a response and what caused it (issue 7, "Attribution"), from one record.
//!
//! - **Source**, as AWS's 502 playbook reads the log: `elb_status_code` equal to `target_status_code`
//!   means the target generated the response; anything else (above all `target_status_code` `-`) means the
//!   load balancer did.
//! - **Cause**: `error_reason` verbatim when present (ALB's Lambda/Auth/WAF codes, waygate's cause names).
//!   Otherwise, for 5xx, a cause inferred from the other fields:
//!   - `TargetConnectionFailed`: 502, target status `-`, all three processing times `-1` (the target refused,
//!     reset or closed the connection, or TLS failed; ALB cannot tell these apart in its log),
//!   - `TargetConnectTimeout`: 504, target status `-`, `time - request_creation_time` within
//!     [`CONNECT_TIMEOUT_WINDOW`] (ALB's fixed 10 s connect timeout),
//!   - `TargetResponseTimeout`: the other 504s with target status `-` (silent until the idle timeout),
//!   - `TargetClosedConnection`: 502, target status `-`, `target_processing_time` >= 0 and
//!     `response_processing_time` -1: the target closed (FIN or RST) with the request outstanding, after the
//!     request was sent (AWS's own example: `0.001 4.205 -1`), the most common real ALB 502,
//!   - `ListenerFixedResponse`, `ListenerRedirect`, `AuthenticateFailed`, `WafBlocked`: `actions_executed`
//!     says a listener rule answered without forwarding (a fixed-response, a redirect, an authenticate or a
//!     WAF action): configuration, not a target,
//!   - `ClassicElbUnavailable`: a Classic ELB 503 with no backend status: no healthy instance registered, the
//!     surge queue full, or the ELB short of capacity (Classic's own meanings of 503),
//!   - `TargetResponded5xx`: the target's own 5xx (not a gateway error, but where a 5xx came from),
//!   - `Unexplained<status>` (e.g. `Unexplained503`): any other load-balancer 5xx without an `error_reason`.

use crate::record::Record;
use crate::time::{Micros, SECOND};

/// The `time - request_creation_time` range read as ALB's 10 s connect timeout: the timer fires after 10 s
/// and the response is written a little later; an idle timeout (default 60 s) lands far outside.
pub const CONNECT_TIMEOUT_WINDOW: (Micros, Micros) = (9 * SECOND + SECOND / 2, 11 * SECOND);

/// Which side generated the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The load balancer (or waygate) generated it: `target_status_code` is `-` or differs.
    LoadBalancer,
    /// The target's own response, relayed.
    Target,
}

impl Source {
    /// The name used in reports and JSON: `load_balancer` or `target`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoadBalancer => "load_balancer",
            Self::Target => "target",
        }
    }
}

/// A cause the doctor names when the log line has no `error_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Inferred {
    /// 502, target `-`, processing times all `-1`.
    TargetConnectionFailed,
    /// 504, target `-`, about 10 s after the request arrived.
    TargetConnectTimeout,
    /// Any other 504 with target `-`.
    TargetResponseTimeout,
    /// 502, target `-`, target processing time >= 0, response processing time -1.
    TargetClosedConnection,
    /// A listener rule's fixed-response action produced the 5xx.
    ListenerFixedResponse,
    /// A listener rule's redirect action produced the 5xx.
    ListenerRedirect,
    /// An authenticate action ran and nothing was forwarded.
    AuthenticateFailed,
    /// AWS WAF ran and nothing was forwarded.
    WafBlocked,
    /// A Classic ELB 503 without a backend status: no healthy instance, or the surge queue full.
    ClassicElbUnavailable,
    /// A 5xx the target generated itself.
    TargetResponded5xx,
    /// A load-balancer 5xx without `error_reason` that matches no rule (the status).
    Unexplained(u16),
}

impl Inferred {
    /// The cause name in reports (`Unexplained` carries its status: `Unexplained503`).
    pub fn name(self) -> String {
        match self {
            Self::TargetConnectionFailed => "TargetConnectionFailed".into(),
            Self::TargetConnectTimeout => "TargetConnectTimeout".into(),
            Self::TargetResponseTimeout => "TargetResponseTimeout".into(),
            Self::TargetClosedConnection => "TargetClosedConnection".into(),
            Self::ListenerFixedResponse => "ListenerFixedResponse".into(),
            Self::ListenerRedirect => "ListenerRedirect".into(),
            Self::AuthenticateFailed => "AuthenticateFailed".into(),
            Self::WafBlocked => "WafBlocked".into(),
            Self::ClassicElbUnavailable => "ClassicElbUnavailable".into(),
            Self::TargetResponded5xx => "TargetResponded5xx".into(),
            Self::Unexplained(s) => format!("Unexplained{s}"),
        }
    }

    /// Which fields the inference read, for the report.
    pub const fn evidence(self) -> &'static str {
        match self {
            Self::TargetConnectionFailed => "502, target_status_code -, processing times -1 -1 -1",
            Self::TargetConnectTimeout => "504, target_status_code -, time - request_creation_time about 10 s",
            Self::TargetResponseTimeout => "504, target_status_code -, not at the 10 s connect timeout",
            Self::TargetClosedConnection => {
                "502, target_status_code -, target_processing_time >= 0, response_processing_time -1"
            }
            Self::ListenerFixedResponse => "actions_executed includes fixed-response",
            Self::ListenerRedirect => "actions_executed includes redirect",
            Self::AuthenticateFailed => "actions_executed includes authenticate, not forward",
            Self::WafBlocked => "actions_executed includes waf, not forward",
            Self::ClassicElbUnavailable => "Classic ELB 503, backend_status_code - or 0",
            Self::TargetResponded5xx => "elb_status_code = target_status_code (the target's own response)",
            Self::Unexplained(_) => "load-balancer 5xx without error_reason matching no other rule",
        }
    }
}

/// What caused one response: a name from the log, or an inferred one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseRef<'a> {
    /// `error_reason` verbatim.
    Reason(&'a [u8]),
    /// No `error_reason`: inferred from status and timings.
    Inferred(Inferred),
}

/// Who generated a response and why; `None` for a line with neither an `error_reason` nor a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub source: Source,
    pub cause: CauseRef<'a>,
}

/// The side that generated the response (see the module docs).
#[inline]
pub fn source_of(r: &Record<'_>) -> Source {
    if r.target_status == Some(r.elb_status) { Source::Target } else { Source::LoadBalancer }
}

/// A listener rule that answered itself, by `actions_executed`: the load balancer's response is the rule's,
/// not a target's (a fixed-response 503 is not "no registered targets").
fn listener_action(r: &Record<'_>) -> Option<Inferred> {
    if r.actions.is_empty() || r.target_status.is_some() {
        return None;
    }
    if r.executed(b"fixed-response") {
        Some(Inferred::ListenerFixedResponse)
    } else if r.executed(b"redirect") {
        Some(Inferred::ListenerRedirect)
    } else if r.executed(b"forward") {
        None
    } else if r.executed(b"authenticate") {
        Some(Inferred::AuthenticateFailed)
    } else if r.executed(b"waf") {
        Some(Inferred::WafBlocked)
    } else {
        None
    }
}

/// Attributes one record.
#[inline]
pub fn attribute<'r>(r: &'r Record<'_>) -> Option<Outcome<'r>> {
    let source = source_of(r);
    if !r.error_reason.is_empty() {
        return Some(Outcome { source, cause: CauseRef::Reason(&r.error_reason) });
    }
    if !(500..600).contains(&r.elb_status) {
        return None;
    }
    if let Some(action) = listener_action(r) {
        return Some(Outcome { source, cause: CauseRef::Inferred(action) });
    }
    let inferred = match (source, r.target_status, r.elb_status) {
        (Source::Target, _, _) => Inferred::TargetResponded5xx,
        (_, None, 503) if r.classic => Inferred::ClassicElbUnavailable,
        (_, None, 502) if r.target_closed_mid_request() => Inferred::TargetClosedConnection,
        (_, None, 502) if r.all_processing_failed() => Inferred::TargetConnectionFailed,
        (_, None, 504) => match r.duration() {
            Some(d) if (CONNECT_TIMEOUT_WINDOW.0..CONNECT_TIMEOUT_WINDOW.1).contains(&d) => {
                Inferred::TargetConnectTimeout
            }
            _ => Inferred::TargetResponseTimeout,
        },
        (_, _, status) => Inferred::Unexplained(status),
    };
    Some(Outcome { source, cause: CauseRef::Inferred(inferred) })
}
