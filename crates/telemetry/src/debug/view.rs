//! A session as JSON (`GET /api/v1/debug-sessions[/{id}]`), and back (`waygate trace show`): its filter and
//! limits, where it stands, and each captured exchange as the flight recorder shows a record
//! ([`ExchangeView`]) with the capture beside it: the phases (start and duration in milliseconds from the
//! request head's arrival), the masked headers, each attempt's connection, and the bodies' first bytes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BodySample, Capture, Session};
use crate::flight::ConnView;
use crate::{Exchange, ExchangeView, iso8601};

/// One session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    /// `capturing`, `full` or `expired`.
    pub state: String,
    /// The session's body as it was accepted, defaults filled in (`filter`, `max_exchanges`, `timeout`,
    /// `capture_body`).
    pub spec: Value,
    /// ISO 8601.
    pub created: String,
    /// When its timeout ends it (or ended it).
    pub expires: String,
    /// When it stopped capturing (full or expired).
    pub ended: Option<String>,
    pub captured: usize,
    /// With `GET /api/v1/debug-sessions/{id}` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchanges: Option<Vec<TracedView>>,
}

/// One captured exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracedView {
    pub exchange: ExchangeView,
    /// Attempts beyond the first.
    pub retries: usize,
    pub phases: Vec<PhaseView>,
    /// `[name, value]`, credentials masked.
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub headers_truncated: bool,
    /// Each attempt's connection when its response head came or it failed.
    pub connections: Vec<AttemptConnView>,
    /// With `capture_body` only.
    pub request_body: Option<BodyView>,
    pub response_body: Option<BodyView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseView {
    pub name: String,
    pub attempt: Option<u8>,
    /// From the request head's arrival; negative before it.
    pub start_ms: f64,
    pub duration_ms: f64,
    pub detail: String,
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptConnView {
    pub attempt: u8,
    pub conn: ConnView,
}

/// A body's first bytes (as text, bytes that are not UTF-8 replaced) and its whole length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyView {
    pub total_bytes: u64,
    pub captured_bytes: usize,
    pub truncated: bool,
    pub text: String,
}

fn ms_micros(us: i64) -> f64 {
    us as f64 / 1000.0
}

impl BodyView {
    fn of(b: &BodySample) -> Self {
        Self {
            total_bytes: b.total,
            captured_bytes: b.bytes.len(),
            truncated: b.total > b.bytes.len() as u64,
            text: String::from_utf8_lossy(&b.bytes).into_owned(),
        }
    }
}

impl TracedView {
    /// A finished record with its capture (an untraced one gets an empty capture).
    pub fn of(ex: &Exchange) -> Self {
        let empty = Capture::default();
        let c = ex.debug.as_deref().unwrap_or(&empty);
        Self {
            exchange: ExchangeView::of(ex),
            retries: ex.attempts.len().saturating_sub(1),
            phases: c
                .phases
                .iter()
                .map(|p| PhaseView {
                    name: p.name.to_owned(),
                    attempt: p.attempt,
                    start_ms: ms_micros(p.start_us),
                    duration_ms: p.duration.as_micros() as f64 / 1000.0,
                    detail: p.detail.clone(),
                    failed: p.failed,
                })
                .collect(),
            request_headers: c.request_headers.clone(),
            response_headers: c.response_headers.clone(),
            headers_truncated: c.headers_truncated,
            connections: c
                .connections
                .iter()
                .map(|(attempt, snap)| AttemptConnView { attempt: *attempt, conn: ConnView::of(snap) })
                .collect(),
            request_body: c.request_body.as_ref().map(BodyView::of),
            response_body: c.response_body.as_ref().map(BodyView::of),
        }
    }
}

impl SessionView {
    pub(super) fn of(s: &Session, with_exchanges: bool) -> Self {
        Self {
            id: s.id.clone(),
            state: s.state.as_str().to_owned(),
            spec: s.spec.to_json(),
            created: iso8601(s.created),
            expires: iso8601(s.expires()),
            ended: s.ended.map(iso8601),
            captured: s.exchanges.len(),
            exchanges: with_exchanges.then(|| s.exchanges.iter().map(|ex| TracedView::of(ex)).collect()),
        }
    }
}
