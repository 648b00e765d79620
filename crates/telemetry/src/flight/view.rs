//! A kept record as JSON (`GET /api/v1/exchanges/{request_id}`), and back (`waygate explain`): every field of
//! the record under its access-log column's name, durations in milliseconds (`null` where the log writes
//! `-1`), the cause with its catalogue title, phase and remediation, each attempt with its detail and
//! connection snapshot, and the two lines the gateway wrote for it: the access-log line (ALB format, by the
//! access log's own formatter) and the system-log lines (see [`system_log_line`]).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use waygate_connect::meter::ConnSnapshot;
use waygate_faults::Cause;

use super::system_log_line;
use crate::{Exchange, alb_line, iso8601};

/// One failed exchange as the admin API serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeView {
    pub request_id: String,
    pub listener: String,
    pub elb: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `request_creation_time`, ISO 8601.
    pub request_creation_time: String,
    /// `time`: when the exchange ended, ISO 8601.
    pub time: String,
    /// From receiving the request to its end.
    pub duration_ms: f64,
    pub client: String,
    pub method: String,
    pub url: String,
    pub http_version: String,
    pub user_agent: Option<String>,
    pub ssl_cipher: Option<String>,
    pub ssl_protocol: Option<String>,
    pub sni: Option<String>,
    pub target_group: Option<String>,
    pub target_group_arn: Option<String>,
    pub matched_rule_priority: Option<u32>,
    pub actions: Vec<String>,
    pub redirect_url: Option<String>,
    pub elb_status: u16,
    pub target_status: Option<u16>,
    pub cause: Option<CauseView>,
    pub request_processing_time_ms: Option<f64>,
    pub target_processing_time_ms: Option<f64>,
    pub response_processing_time_ms: Option<f64>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub classification: Option<String>,
    pub classification_reason: Option<String>,
    pub conn_trace_id: Option<String>,
    pub attempts: Vec<AttemptView>,
    /// The access-log line of this exchange, ALB format.
    pub access_log_line: String,
    /// The system-log lines of its failed attempts, timestamps aside, in order.
    pub system_log_lines: Vec<String>,
}

/// The cause and what the catalogue says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseView {
    pub name: String,
    pub title: String,
    /// The catalogue's phase for the cause (an attempt's own phase is where it was seen).
    pub phase: String,
    pub source: String,
    pub remediation: String,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub target: String,
    pub status: Option<u16>,
    pub cause: Option<String>,
    pub response_time_ms: Option<f64>,
    /// Where it failed (with the rest below, only for a failed attempt).
    pub phase: Option<String>,
    /// When it failed, since the request was received.
    pub failed_after_ms: Option<f64>,
    pub timed_out_after_ms: Option<f64>,
    pub message: Option<String>,
    pub errno: Option<String>,
    /// `1/2`: which attempt of how many allowed.
    pub attempt: Option<String>,
    pub conn: Option<ConnView>,
}

/// The upstream connection as it was when the attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnView {
    pub id: u64,
    pub remote: String,
    pub local: String,
    pub reused: bool,
    pub use_count: u32,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub attempt_bytes_read: u64,
    pub attempt_bytes_written: u64,
    pub age_ms: f64,
    pub last_io_ago_ms: f64,
    pub idle_before_use_ms: Option<f64>,
    pub open: bool,
}

fn ms(d: Duration) -> f64 {
    // Microsecond precision, as the access log's seconds with six decimals.
    d.as_micros() as f64 / 1000.0
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

impl CauseView {
    pub fn of(cause: Cause) -> Self {
        Self {
            name: cause.name().to_owned(),
            title: cause.title().to_owned(),
            phase: cause.phase().as_str().to_owned(),
            source: format!("{:?}", cause.source()).to_lowercase(),
            remediation: cause.remediation().to_owned(),
        }
    }
}

impl ConnView {
    pub fn of(c: &ConnSnapshot) -> Self {
        Self {
            id: c.id,
            remote: c.remote.to_string(),
            local: c.local.to_string(),
            reused: c.reused,
            use_count: c.use_count,
            bytes_read: c.bytes_read,
            bytes_written: c.bytes_written,
            attempt_bytes_read: c.attempt_bytes_read,
            attempt_bytes_written: c.attempt_bytes_written,
            age_ms: ms(c.age),
            last_io_ago_ms: ms(c.last_io_ago),
            idle_before_use_ms: c.idle_before_use.map(ms),
            open: c.open,
        }
    }
}

impl ExchangeView {
    pub fn of(ex: &Exchange) -> Self {
        let attempts = ex
            .attempts
            .iter()
            .map(|a| {
                let d = a.detail.as_deref();
                AttemptView {
                    target: a.target.to_string(),
                    status: a.status,
                    cause: a.cause.map(|c| c.name().to_owned()),
                    response_time_ms: a.response_time.map(ms),
                    phase: d.map(|d| d.phase.as_str().to_owned()),
                    failed_after_ms: d.map(|d| ms(d.failed_after)),
                    timed_out_after_ms: d.and_then(|d| d.timed_out).map(ms),
                    message: d.map(|d| d.message.clone()),
                    errno: d.and_then(|d| d.errno).map(str::to_owned),
                    attempt: d.map(|d| format!("{}/{}", d.attempt, d.max_attempts)),
                    conn: d.and_then(|d| d.conn.as_ref()).map(ConnView::of),
                }
            })
            .collect();
        Self {
            request_id: ex.trace_id.as_str().to_owned(),
            listener: ex.listener.to_string(),
            elb: ex.elb.to_string(),
            kind: ex.kind.as_str().to_owned(),
            request_creation_time: iso8601(ex.request_creation_time),
            time: iso8601(ex.time),
            duration_ms: ms(since(ex.time, ex.request_creation_time)),
            client: ex.client.to_string(),
            method: ex.method.to_string(),
            url: ex.url.as_str().to_owned(),
            http_version: ex.http_version.to_string(),
            user_agent: ex.user_agent.as_ref().map(|u| u.as_str().to_owned()),
            ssl_cipher: ex.ssl_cipher.as_ref().map(|c| c.to_string()),
            ssl_protocol: ex.ssl_protocol.as_ref().map(|p| p.to_string()),
            sni: ex.sni.clone(),
            target_group: ex.target_group.as_ref().map(|g| g.name.to_string()),
            target_group_arn: ex.target_group.as_ref().map(|g| g.arn().to_string()),
            matched_rule_priority: ex.matched_rule_priority,
            actions: ex.actions.names().map(str::to_owned).collect(),
            redirect_url: ex.redirect_url.clone(),
            elb_status: ex.elb_status,
            target_status: ex.target_status,
            cause: ex.cause.map(CauseView::of),
            request_processing_time_ms: ex.request_processing_time.map(ms),
            target_processing_time_ms: ex.target_processing_time.map(ms),
            response_processing_time_ms: ex.response_processing_time.map(ms),
            received_bytes: ex.received_bytes,
            sent_bytes: ex.sent_bytes,
            classification: ex.classification.map(|c| c.as_str().to_owned()),
            classification_reason: ex.classification_reason.as_ref().map(|r| r.to_string()),
            conn_trace_id: ex.conn_trace_id.as_ref().map(|c| c.to_string()),
            attempts,
            access_log_line: alb_line(ex),
            system_log_lines: ex.attempts.iter().filter_map(|a| system_log_line(ex, a)).collect(),
        }
    }
}
