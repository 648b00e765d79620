//! Telemetry: the exchange record and its observers (docs/ARCHITECTURE.md, "One request, one record").
//!
//! The data plane fills one [`Exchange`] per request ([`Timings`] turns the instants it captured into ALB's
//! processing times), then hands it to the observers, which never reach back into the data plane:
//! [`Metrics::observe`] and [`AccessLogHandle::log`] (both by reference; the log formats a [`format_alb`] or
//! [`format_json`] line into a bounded per-thread buffer that a writer thread writes into ALB-named, rotated
//! files).
//!
//! ```
//! use std::time::Instant;
//! use waygate_faults::Cause;
//! use waygate_telemetry::*;
//!
//! let metrics = Metrics::new();
//! // Per connection: the listener's names and one connection trace id.
//! let mut ex = Exchange::new("public".into(), "app/waygate/public".into(), "203.0.113.7:50432".parse().unwrap());
//! ex.conn_trace_id = Some(new_conn_trace_id());
//! // Request head read.
//! let mut timings = Timings::start();
//! ex.kind = RequestKind::from_connection(false, false);
//! (ex.method, ex.url, ex.http_version) = ("GET".into(), "http://example.com:80/".into(), "HTTP/1.1".into());
//! ex.trace_id = "Root=1-6740a1b2-9f8e7d6c5b4a39281706f5e4".into();
//! ex.target_group = Some(TargetGroupRef::new("app"));
//! ex.matched_rule_priority = Some(0);
//! ex.actions = Actions::FORWARD;
//! // The connect failed: one failed attempt, no response head, so all three processing times are -1.
//! ex.attempts.push(Attempt::failed("10.0.0.7:8080", Cause::TargetConnectionRefused));
//! ex.cause = Some(Cause::TargetConnectionRefused);
//! ex.elb_status = 502;
//! timings.fill(Instant::now(), &mut ex);
//! metrics.observe(&ex);
//! let line = alb_line(&ex);
//! assert!(line.contains(" 10.0.0.7:8080 -1 -1 -1 502 - "));
//! assert!(line.contains(r#""TargetConnectionRefused" "10.0.0.7:8080" "-""#));
//! assert!(metrics.encode().contains(r#"code="502",cause="TargetConnectionRefused""#));
//! ```
//!
//! - `sink`: what every file log does on a full or read-only disk (count once, back off, recover);
//!   `logfile`: the system log's file (`--log-file`), a non-blocking line appender using it; `reserve`: a few
//!   descriptors held for when the process runs out (the admin listener, the log writers).
//! - `record`: the record and its small types, `inline_str` its allocation-free request id; `timing`: processing
//!   times; `timefmt`: UTC formatting; `digits`: decimal digits from a table.
//! - `alb` / `json`: the two line formats; `writer` / `rotate`: the buffers, the thread, the files.
//! - `metrics` / `labels`: the Prometheus registry with docs/INTERFACE.md's names.
//! - `alerts`: `[[alert]]` rules over the records, evaluated on a timer, with their webhooks.
//! - `client`: the HTTP/1.1 connections webhooks and the OTLP exporter send on (TLS for https).
//! - `flight`: the flight recorder, the last N failed records by request id, and their JSON view.
//! - `debug`: debug (trace) sessions: filters, the per-exchange phase recorder, the captured records and their
//!   JSON view.
//! - `throttle`: one system-log line a second for failures that repeat, with their count.
//! - `trace_context`: W3C `traceparent`/`tracestate` and head sampling; `otlp`: `[tracing]`'s exporter, the
//!   spans of sampled and failed exchanges over OTLP/HTTP (opentelemetry-proto and prost encode them).
//!
//! Dependencies: prometheus-client (the registry), flate2 (gzip files), tokio (a `watch` channel so
//! `shutdown` can be awaited; the alert thread's runtime), serde/serde_json (JSON lines), tracing (write errors), rand (file-name and
//! connection-id randomness), smallvec and arrayvec (inline attempts, request id and timestamp prefix), and for the
//! alerts: waygate-config (the rules' model), arc-swap (the rule set the request path reads), hyper's HTTP/1
//! client and waygate-connect's TLS client settings with tokio-rustls (webhooks). Timestamps are formatted by hand (`timefmt`), needing no date crate.

mod alb;
pub mod alerts;
pub mod athena;
mod client;
pub mod debug;
mod digits;
pub mod flight;
mod inline_str;
mod json;
mod labels;
mod logfile;
mod metrics;
mod observer;
pub mod otlp;
mod record;
pub mod reserve;
mod rotate;
mod scan;
pub mod sink;
mod throttle;
mod timefmt;
mod timing;
mod trace_context;
mod writer;

pub use alb::{alb_line, client_column, format_alb};
pub use alerts::{AlertEvent, AlertState, AlertStatus, Alerts};
pub use flight::{ExchangeView, FlightRecorder};
pub use inline_str::InlineStr;
pub use json::{format_json, json_line};
pub use labels::Side;
pub use logfile::SystemLogFile;
pub use metrics::{
    AccessLogCounters, AlertCounters, CONTENT_TYPE, ConnectionGuard, LogCounters, Metrics, RESPONSE_TIME_BUCKETS,
    system_log_counters,
};
pub use observer::Observer;
pub use record::{
    ACCOUNT, Actions, Attempt, AttemptDetail, Attempts, Classification, Exchange, REGION, RequestKind, TargetGroupRef,
    new_conn_trace_id,
};
pub use rotate::NameParts;
pub use throttle::Throttle;
pub use timefmt::{file_stamp, iso8601, write_iso8601};
pub use timing::{ProcessingTimes, Timings};
pub use trace_context::{Sampler, TRACEPARENT, TRACESTATE, TraceContext, Traceparent, hex_into, parse_traceparent};
pub use writer::{AccessLog, AccessLogConfig, AccessLogHandle, LogFormat, WriterSummary};
