//! The JSON access-log line (`format = "json"`): one object per line with the ALB columns under snake_case
//! names (the Athena table's column names, with `error_reason` and `conn_trace_id` as ALB names them).
//!
//! Where the ALB line writes `-`, the JSON has `null`; the three processing times keep ALB's `-1`, so the same
//! queries work on both. Lists are arrays: `actions_executed` (names), `target_port_list` (`"ip:port"`
//! strings) and `target_status_code_list` (numbers, `null` for an attempt that got no response). Two fields are
//! added after ALB's: `listener` and `target_group` (the names used as metrics labels).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::alb::truncate_user_agent;
use crate::timefmt::iso8601;
use crate::{Actions, Attempt, Exchange};

/// Append the record's JSON object to `out`, without a trailing newline.
pub fn format_json(ex: &Exchange, out: &mut String) {
    let target = ex.target().map(split_target);
    let line = Line {
        r#type: ex.kind.as_str(),
        time: Iso(ex.time),
        elb: &ex.elb,
        client_ip: ex.client.ip().to_string(),
        client_port: ex.client.port(),
        target_ip: target.as_ref().map(|t| t.0.as_str()),
        target_port: target.as_ref().and_then(|t| t.1),
        request_processing_time: Secs(ex.request_processing_time),
        target_processing_time: Secs(ex.target_processing_time),
        response_processing_time: Secs(ex.response_processing_time),
        elb_status_code: ex.elb_status,
        target_status_code: ex.target_status,
        received_bytes: ex.received_bytes,
        sent_bytes: ex.sent_bytes,
        request_verb: non_empty(&ex.method),
        request_url: if ex.method.is_empty() { None } else { non_empty(&ex.url) },
        request_proto: if ex.method.is_empty() { None } else { non_empty(&ex.http_version) },
        user_agent: ex.user_agent.as_deref().map(truncate_user_agent),
        ssl_cipher: ex.ssl_cipher.as_deref(),
        ssl_protocol: ex.ssl_protocol.as_deref(),
        target_group_arn: ex.target_group.as_ref().map(|tg| &**tg.arn()),
        trace_id: &ex.trace_id,
        domain_name: ex.sni.as_deref(),
        chosen_cert_arn: ex.chosen_cert_arn.as_deref(),
        matched_rule_priority: ex.matched_rule_priority,
        request_creation_time: Iso(ex.request_creation_time),
        actions_executed: ActionList(ex.actions),
        redirect_url: ex.redirect_url.as_deref(),
        error_reason: ex.cause.map(|c| c.name()),
        grpc_status: ex.grpc_status,
        target_port_list: Targets(&ex.attempts),
        target_status_code_list: Statuses(&ex.attempts),
        classification: ex.classification.map(|c| c.as_str()),
        classification_reason: ex.classification_reason.as_deref(),
        conn_trace_id: ex.conn_trace_id.as_deref(),
        listener: &ex.listener,
        target_group: ex.target_group.as_ref().map(|tg| &*tg.name),
    };
    match serde_json::to_string(&line) {
        Ok(s) => out.push_str(&s),
        // Serializing plain strings and numbers cannot fail; keep the line count honest if it ever does.
        Err(_) => out.push_str("{}"),
    }
}

/// The JSON line as a new string.
pub fn json_line(ex: &Exchange) -> String {
    let mut s = String::with_capacity(768);
    format_json(ex, &mut s);
    s
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// `(ip or host, port)` of a target string.
fn split_target(t: &str) -> (String, Option<u16>) {
    if let Ok(a) = t.parse::<SocketAddr>() {
        return (a.ip().to_string(), Some(a.port()));
    }
    match t.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host.to_owned(), port.parse().ok()),
        _ => (t.to_owned(), None),
    }
}

fn target_string(t: &str) -> String {
    match t.parse::<SocketAddr>() {
        Ok(a) => format!("{}:{}", a.ip(), a.port()),
        Err(_) => t.to_owned(),
    }
}

#[derive(Serialize)]
struct Line<'a> {
    r#type: &'static str,
    time: Iso,
    elb: &'a str,
    client_ip: String,
    client_port: u16,
    target_ip: Option<&'a str>,
    target_port: Option<u16>,
    request_processing_time: Secs,
    target_processing_time: Secs,
    response_processing_time: Secs,
    elb_status_code: u16,
    target_status_code: Option<u16>,
    received_bytes: u64,
    sent_bytes: u64,
    request_verb: Option<&'a str>,
    request_url: Option<&'a str>,
    request_proto: Option<&'a str>,
    user_agent: Option<&'a str>,
    ssl_cipher: Option<&'a str>,
    ssl_protocol: Option<&'a str>,
    target_group_arn: Option<&'a str>,
    trace_id: &'a str,
    domain_name: Option<&'a str>,
    chosen_cert_arn: Option<&'a str>,
    matched_rule_priority: Option<u32>,
    request_creation_time: Iso,
    actions_executed: ActionList,
    redirect_url: Option<&'a str>,
    error_reason: Option<&'static str>,
    grpc_status: Option<u8>,
    target_port_list: Targets<'a>,
    target_status_code_list: Statuses<'a>,
    classification: Option<&'static str>,
    classification_reason: Option<&'a str>,
    conn_trace_id: Option<&'a str>,
    listener: &'a str,
    target_group: Option<&'a str>,
}

struct Iso(SystemTime);

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso8601(self.0))
    }
}

/// Seconds with millisecond precision, or `-1`.
struct Secs(Option<Duration>);

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(d) => {
                let ms = (d.as_nanos() + 500_000) / 1_000_000;
                s.serialize_f64(ms as f64 / 1_000.0)
            }
            None => s.serialize_i64(-1),
        }
    }
}

struct ActionList(Actions);

impl Serialize for ActionList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for name in self.0.names() {
            seq.serialize_element(name)?;
        }
        seq.end()
    }
}

struct Targets<'a>(&'a [Attempt]);

impl Serialize for Targets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&target_string(&a.target))?;
        }
        seq.end()
    }
}

struct Statuses<'a>(&'a [Attempt]);

impl Serialize for Statuses<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&a.status)?;
        }
        seq.end()
    }
}
