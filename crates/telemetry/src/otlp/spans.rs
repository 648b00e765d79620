//! One finished exchange record as OTLP spans: the exchange (SERVER), and under it a span per phase the record
//! knows: request processing (received → sent to the target that answered), each attempt (CLIENT: its target,
//! status or cause, and for a failed one its connection snapshot and the failure as an event), and the response
//! (head received → exchange ended). Attributes follow OpenTelemetry's HTTP semantic conventions, plus
//! `waygate.*` for what they have no name for (the cause of FAULTS.md above all).
//!
//! Times come from the record alone: a failed attempt's span runs from the end of the one before it (or the
//! request's arrival) to its failure, since the record keeps when an attempt failed but not when it began.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use waygate_connect::meter::ConnSnapshot;

use crate::trace_context::{Sampler, TraceContext, new_span_id};
use crate::{Attempt, Exchange};

/// OTLP span flags: the W3C trace flags in the low byte, then whether the parent's remoteness is known and
/// whether it is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// How many spans [`spans`] makes of `ex` (what a dropped exchange counts in `waygate_tracing_spans_dropped_total`).
pub fn count(ex: &Exchange) -> u64 {
    let head = ex.request_processing_time.is_some() && ex.target_processing_time.is_some();
    1 + 2 * u64::from(head) + ex.attempts.len() as u64
}

/// The spans of `ex`, the exchange's first.
pub fn spans(ex: &Exchange) -> Vec<Span> {
    // A record made before the request path set a context (a head that did not parse) gets one now.
    let ctx = ex.trace.clone().unwrap_or_else(|| TraceContext::root(ex.trace_id.as_str(), Sampler::new(0.0)));
    let start = nanos(ex.request_creation_time);
    let end = nanos(ex.time).max(start);
    let at = |d: Duration| (start + d.as_nanos() as u64).min(end);
    let sampled = u32::from(ctx.sampled);
    let child = |name: &str, kind: SpanKind, from: u64, to: u64| Span {
        trace_id: ctx.trace_id.to_vec(),
        span_id: new_span_id().to_vec(),
        parent_span_id: ctx.span_id.to_vec(),
        flags: sampled | HAS_IS_REMOTE,
        name: name.to_owned(),
        kind: kind as i32,
        start_time_unix_nano: from,
        end_time_unix_nano: to.max(from),
        ..Span::default()
    };
    let (method, method_original) = method(&ex.method);
    let mut out = Vec::with_capacity(count(ex) as usize);
    out.push(Span {
        trace_id: ctx.trace_id.to_vec(),
        span_id: ctx.span_id.to_vec(),
        parent_span_id: ctx.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        trace_state: ctx.trace_state.as_deref().unwrap_or_default().to_owned(),
        flags: sampled | HAS_IS_REMOTE | if ctx.parent_span_id.is_some() { IS_REMOTE } else { 0 },
        name: span_name(method).to_owned(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: server_attributes(ex, method, method_original),
        status: ex.is_failure().then(|| error(failure_message(ex))),
        ..Span::default()
    });
    let rpt = ex.request_processing_time;
    let head = rpt.zip(ex.target_processing_time).map(|(r, t)| r + t);
    if let (Some(rpt), Some(_)) = (rpt, head) {
        out.push(child("request processing", SpanKind::Internal, start, at(rpt)));
    }
    let mut previous_end = start;
    for (i, a) in ex.attempts.iter().enumerate() {
        let (from, to) = match (&a.detail, a.response_time, rpt) {
            (Some(d), _, _) => (previous_end, at(d.failed_after)),
            (None, Some(rt), Some(rpt)) => (at(rpt), at(rpt + rt)),
            (None, Some(rt), None) => (previous_end, (previous_end + rt.as_nanos() as u64).min(end)),
            (None, None, _) => (previous_end, end),
        };
        previous_end = to.max(from);
        let mut span = child(span_name(method), SpanKind::Client, from, to);
        span.attributes = attempt_attributes(a, i + 1, method);
        if let Some(d) = &a.detail {
            let mut attrs = vec![str_kv("waygate.phase", d.phase.as_str()), str_kv("waygate.message", &d.message)];
            attrs.extend(d.errno.map(|e| str_kv("waygate.errno", e)));
            attrs.extend(d.timed_out.map(|t| f64_kv("waygate.timed_out_after_ms", ms(t))));
            span.events.push(Event {
                time_unix_nano: to,
                name: "waygate.attempt_failed".to_owned(),
                attributes: attrs,
                dropped_attributes_count: 0,
            });
        }
        span.status = a.cause.map(|c| error(c.name().to_owned()));
        out.push(span);
    }
    if let Some(head) = head {
        let mut span = child("response", SpanKind::Internal, at(head), end);
        span.attributes.push(int_kv("http.response.size", ex.sent_bytes as i64));
        // A cause after the target's head (its body cut short) failed this phase.
        span.status = ex.cause.filter(|_| ex.target_status.is_some()).map(|c| error(c.name().to_owned()));
        out.push(span);
    }
    out
}

fn server_attributes(ex: &Exchange, method: &str, method_original: Option<&str>) -> Vec<KeyValue> {
    let mut a = Vec::with_capacity(24);
    if !ex.method.is_empty() {
        a.push(str_kv("http.request.method", method));
        a.extend(method_original.map(|m| str_kv("http.request.method_original", m)));
    }
    if let Some(url) = Url::parse(&ex.url) {
        a.push(str_kv("url.scheme", url.scheme));
        a.push(str_kv("server.address", url.host));
        a.extend(url.port.map(|p| int_kv("server.port", i64::from(p))));
        a.push(str_kv("url.path", url.path));
        a.extend(url.query.map(|q| str_kv("url.query", q)));
    }
    a.push(str_kv("network.protocol.name", "http"));
    a.push(str_kv("network.protocol.version", protocol_version(&ex.http_version)));
    let ip = ex.client.ip().to_string();
    a.push(str_kv("client.address", &ip));
    a.push(int_kv("client.port", i64::from(ex.client.port())));
    a.push(str_kv("network.peer.address", &ip));
    a.push(int_kv("network.peer.port", i64::from(ex.client.port())));
    a.extend(ex.user_agent.as_ref().map(|ua| str_kv("user_agent.original", ua.as_str())));
    if ex.elb_status != 0 {
        a.push(int_kv("http.response.status_code", i64::from(ex.elb_status)));
    }
    a.push(int_kv("http.request.size", ex.received_bytes as i64));
    a.push(int_kv("http.response.size", ex.sent_bytes as i64));
    if let Some(cause) = ex.cause {
        a.push(str_kv("error.type", cause.name()));
        a.push(str_kv("waygate.cause", cause.name()));
    } else if ex.is_failure() {
        // The conventions' error.type for a 5xx without an exception: the status code.
        a.push(str_kv("error.type", &ex.elb_status.to_string()));
    }
    a.push(str_kv("waygate.request_id", ex.trace_id.as_str()));
    a.push(str_kv("waygate.listener", &ex.listener));
    a.push(str_kv("waygate.type", ex.kind.as_str()));
    a.extend(ex.target_group.as_ref().map(|g| str_kv("waygate.target_group", &g.name)));
    a.extend(ex.target_status.map(|s| int_kv("waygate.target_status", i64::from(s))));
    a.extend(ex.matched_rule_priority.map(|p| int_kv("waygate.matched_rule_priority", i64::from(p))));
    a.extend(ex.grpc_status.map(|s| int_kv("rpc.grpc.status_code", i64::from(s))));
    a.extend(ex.classification.map(|c| str_kv("waygate.classification", c.as_str())));
    a.extend(ex.classification_reason.as_ref().map(|r| str_kv("waygate.classification_reason", r)));
    a.extend(ex.conn_trace_id.as_ref().map(|c| str_kv("waygate.conn_trace_id", c)));
    if let Some(p) = &ex.ssl_protocol {
        a.push(str_kv("tls.protocol.version", p.trim_start_matches("TLSv")));
    }
    a.extend(ex.ssl_cipher.as_ref().map(|c| str_kv("tls.cipher", c)));
    a.extend(ex.sni.as_ref().map(|s| str_kv("tls.server.name", s)));
    a
}

fn attempt_attributes(a: &Attempt, number: usize, method: &str) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(24);
    out.push(str_kv("http.request.method", method));
    let (host, port) = split_target(&a.target);
    out.push(str_kv("server.address", host));
    out.extend(port.map(|p| int_kv("server.port", i64::from(p))));
    out.push(int_kv("waygate.attempt", number as i64));
    out.extend(a.status.map(|s| int_kv("http.response.status_code", i64::from(s))));
    if let Some(cause) = a.cause {
        out.push(str_kv("error.type", cause.name()));
        out.push(str_kv("waygate.cause", cause.name()));
    }
    if let Some(d) = &a.detail {
        out.push(int_kv("waygate.max_attempts", i64::from(d.max_attempts)));
        out.push(str_kv("waygate.phase", d.phase.as_str()));
        out.push(f64_kv("waygate.failed_after_ms", ms(d.failed_after)));
        if let Some(c) = &d.conn {
            conn_attributes(c, &mut out);
        }
    }
    out
}

/// The connection snapshot, named as the flight recorder's JSON names it.
fn conn_attributes(c: &ConnSnapshot, out: &mut Vec<KeyValue>) {
    out.push(str_kv("network.peer.address", &c.remote.ip().to_string()));
    out.push(int_kv("network.peer.port", i64::from(c.remote.port())));
    out.push(str_kv("network.local.address", &c.local.ip().to_string()));
    out.push(int_kv("network.local.port", i64::from(c.local.port())));
    out.push(int_kv("waygate.conn.id", c.id as i64));
    out.push(bool_kv("waygate.conn.reused", c.reused));
    out.push(int_kv("waygate.conn.use_count", i64::from(c.use_count)));
    out.push(int_kv("waygate.conn.bytes_read", c.bytes_read as i64));
    out.push(int_kv("waygate.conn.bytes_written", c.bytes_written as i64));
    out.push(int_kv("waygate.conn.attempt_bytes_read", c.attempt_bytes_read as i64));
    out.push(int_kv("waygate.conn.attempt_bytes_written", c.attempt_bytes_written as i64));
    out.push(f64_kv("waygate.conn.age_ms", ms(c.age)));
    out.push(f64_kv("waygate.conn.last_io_ago_ms", ms(c.last_io_ago)));
    out.extend(c.idle_before_use.map(|d| f64_kv("waygate.conn.idle_before_use_ms", ms(d))));
    out.push(bool_kv("waygate.conn.open", c.open));
}

fn failure_message(ex: &Exchange) -> String {
    match ex.cause {
        Some(c) => c.name().to_owned(),
        None => format!("the target answered {}", ex.target_status.unwrap_or(ex.elb_status)),
    }
}

fn error(message: String) -> Status {
    Status { message, code: StatusCode::Error as i32 }
}

/// The conventions' method: a known one as is, any other `_OTHER` with the original kept.
fn method(m: &str) -> (&str, Option<&str>) {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    if KNOWN.contains(&m) { (m, None) } else { ("_OTHER", Some(m).filter(|m| !m.is_empty())) }
}

/// `{method}`, or `HTTP` for a method the conventions do not know (no route template is known to name it by).
fn span_name(method: &str) -> &str {
    if method == "_OTHER" { "HTTP" } else { method }
}

/// `HTTP/1.1` → `1.1`, `HTTP/2.0` → `2`.
fn protocol_version(v: &str) -> &str {
    match v.trim_start_matches("HTTP/") {
        "2.0" => "2",
        other => other,
    }
}

/// `host:port`, `[v6]:port` or a bare v6 `a::b:port` (the access log's form).
fn split_target(target: &str) -> (&str, Option<u16>) {
    match target.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(port) => (host.trim_start_matches('[').trim_end_matches(']'), Some(port)),
            Err(_) => (target, None),
        },
        None => (target, None),
    }
}

/// The record's URL, `scheme://host:port/path?query`, in parts.
struct Url<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (authority, target) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let (host, port) = split_target(authority);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Some(Self { scheme, host, port, path, query })
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn value(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

pub(super) fn str_kv(key: &str, v: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value(Value::StringValue(v.to_owned())), ..KeyValue::default() }
}

fn int_kv(key: &str, v: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value(Value::IntValue(v)), ..KeyValue::default() }
}

fn f64_kv(key: &str, v: f64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value(Value::DoubleValue(v)), ..KeyValue::default() }
}

fn bool_kv(key: &str, v: bool) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value(Value::BoolValue(v)), ..KeyValue::default() }
}

#[cfg(test)]
#[path = "spans_tests.rs"]
mod tests;
