//! A record as spans: the tree, the times, the attributes by the HTTP conventions, the failure's evidence.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use waygate_connect::meter::ConnSnapshot;
use waygate_faults::{Cause, Phase};

use super::{count, spans};
use crate::trace_context::{Sampler, TraceContext, hex};
use crate::{Attempt, AttemptDetail, Exchange, TargetGroupRef};

const ID: &str = "Root=1-6740a1b2-9f8e7d6c5b4a39281706f5e4";

fn attrs(span: &Span) -> HashMap<&str, Value> {
    span.attributes.iter().map(|kv| (kv.key.as_str(), kv.value.clone().unwrap().value.unwrap())).collect()
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn record() -> Exchange {
    let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let client = "203.0.113.7:50432".parse().unwrap();
    let mut ex = Exchange::received_at("public".into(), "app/waygate/public".into(), client, received);
    ex.trace_id = ID.into();
    ex.method = "GET".into();
    ex.url = "https://app.example:443/items/7?q=1".into();
    ex.http_version = "HTTP/2.0".into();
    ex.user_agent = Some("curl/8.5.0".into());
    ex.target_group = Some(TargetGroupRef::new("app"));
    ex.time = received + Duration::from_millis(100);
    ex
}

fn snapshot() -> ConnSnapshot {
    ConnSnapshot {
        id: 9,
        remote: "10.0.0.7:8080".parse().unwrap(),
        local: "10.0.0.1:41000".parse().unwrap(),
        reused: true,
        use_count: 3,
        bytes_read: 10,
        bytes_written: 20,
        attempt_bytes_read: 0,
        attempt_bytes_written: 5,
        age: Duration::from_secs(4),
        last_io_ago: Duration::from_millis(1500),
        idle_before_use: Some(Duration::from_millis(1400)),
        open: false,
    }
}

/// A keep-alive race retried on another target, which answered: five spans, in one trace, under the exchange.
#[test]
fn a_retried_exchange_is_a_tree_of_phases() {
    let mut ex = record();
    ex.trace = Some(TraceContext::root(ID, Sampler::new(1.0)));
    let detail = AttemptDetail {
        phase: Phase::AwaitHeaders,
        failed_after: Duration::from_millis(10),
        timed_out: None,
        message: "the connection closed before a complete response head".into(),
        errno: None,
        conn: Some(snapshot()),
        attempt: 1,
        max_attempts: 2,
    };
    ex.attempts.push(Attempt::failed_with("10.0.0.7:8080", Cause::TargetKeepAliveRace, detail));
    ex.attempts.push(Attempt::responded("10.0.0.8:8080", 200, Duration::from_millis(50)));
    ex.request_processing_time = Some(Duration::from_millis(20));
    ex.target_processing_time = Some(Duration::from_millis(50));
    ex.response_processing_time = Some(Duration::ZERO);
    ex.elb_status = 200;
    ex.target_status = Some(200);
    let out = spans(&ex);
    assert_eq!(out.len() as u64, count(&ex));
    let [server, request, failed, answered, response] = &out[..] else { panic!("5 spans: {out:?}") };
    let ctx = ex.trace.as_ref().unwrap();
    assert_eq!(hex(&server.trace_id), "6740a1b29f8e7d6c5b4a39281706f5e4");
    assert_eq!((server.span_id.as_slice(), server.parent_span_id.is_empty()), (&ctx.span_id[..], true));
    for child in &out[1..] {
        assert_eq!((&child.trace_id, &child.parent_span_id), (&server.trace_id, &server.span_id));
    }
    let kinds: Vec<i32> = out.iter().map(|s| s.kind).collect();
    let (srv, int, cli) = (SpanKind::Server as i32, SpanKind::Internal as i32, SpanKind::Client as i32);
    assert_eq!(kinds, [srv, int, cli, cli, int]);
    assert_eq!(
        [&server.name, &request.name, &failed.name, &answered.name, &response.name],
        ["GET", "request processing", "GET", "GET", "response"]
    );
    let t0 = server.start_time_unix_nano;
    let ms = |n: u64| t0 + n * 1_000_000;
    assert_eq!(server.end_time_unix_nano, ms(100));
    assert_eq!((request.start_time_unix_nano, request.end_time_unix_nano), (t0, ms(20)));
    assert_eq!((failed.start_time_unix_nano, failed.end_time_unix_nano), (t0, ms(10)));
    assert_eq!((answered.start_time_unix_nano, answered.end_time_unix_nano), (ms(20), ms(70)));
    assert_eq!((response.start_time_unix_nano, response.end_time_unix_nano), (ms(70), ms(100)));

    let a = attrs(server);
    for (key, want) in [
        ("http.request.method", s("GET")),
        ("url.scheme", s("https")),
        ("url.path", s("/items/7")),
        ("url.query", s("q=1")),
        ("server.address", s("app.example")),
        ("server.port", Value::IntValue(443)),
        ("http.response.status_code", Value::IntValue(200)),
        ("network.protocol.version", s("2")),
        ("client.address", s("203.0.113.7")),
        ("network.peer.address", s("203.0.113.7")),
        ("network.peer.port", Value::IntValue(50432)),
        ("user_agent.original", s("curl/8.5.0")),
        ("waygate.request_id", s(ID)),
        ("waygate.target_group", s("app")),
    ] {
        assert_eq!(a.get(key), Some(&want), "{key}");
    }
    assert!(!a.contains_key("error.type") && !a.contains_key("waygate.cause"), "{a:?}");
    assert_eq!(server.status, None, "a success leaves the status unset");

    let f = attrs(failed);
    assert_eq!(f.get("waygate.cause"), Some(&s("TargetKeepAliveRace")));
    assert_eq!(f.get("error.type"), Some(&s("TargetKeepAliveRace")));
    assert_eq!(f.get("server.address"), Some(&s("10.0.0.7")));
    assert_eq!(f.get("server.port"), Some(&Value::IntValue(8080)));
    assert_eq!(f.get("waygate.conn.reused"), Some(&Value::BoolValue(true)));
    assert_eq!(f.get("waygate.conn.idle_before_use_ms"), Some(&Value::DoubleValue(1400.0)));
    assert_eq!(f.get("network.local.port"), Some(&Value::IntValue(41000)));
    assert_eq!(
        failed.status.as_ref().map(|s| (s.code, s.message.as_str())),
        Some((StatusCode::Error as i32, "TargetKeepAliveRace"))
    );
    let event = &failed.events[0];
    assert_eq!((event.name.as_str(), event.time_unix_nano), ("waygate.attempt_failed", ms(10)));
    assert_eq!(
        attrs(&Span { attributes: event.attributes.clone(), ..Span::default() }).get("waygate.phase"),
        Some(&s("await_headers"))
    );
    assert_eq!(attrs(answered).get("http.response.status_code"), Some(&Value::IntValue(200)));
    assert_eq!(answered.status, None);
}

/// A gateway error without a target answer: the exchange and its one failed attempt, both ERROR with the cause.
#[test]
fn a_failure_carries_its_cause() {
    let mut ex = record();
    ex.attempts.push(Attempt::failed("10.0.0.7:8080", Cause::TargetConnectionRefused));
    ex.elb_status = 502;
    ex.cause = Some(Cause::TargetConnectionRefused);
    // No context: a record the request path did not give one gets a trace from its request id.
    let out = spans(&ex);
    assert_eq!(out.len(), 2);
    assert_eq!(hex(&out[0].trace_id), "6740a1b29f8e7d6c5b4a39281706f5e4");
    let a = attrs(&out[0]);
    assert_eq!(a.get("error.type"), Some(&s("TargetConnectionRefused")));
    assert_eq!(a.get("waygate.cause"), Some(&s("TargetConnectionRefused")));
    assert_eq!(a.get("http.response.status_code"), Some(&Value::IntValue(502)));
    for span in &out {
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32), "{}", span.name);
    }
    // A target's own 5xx: the conventions' error.type is the status.
    let mut t500 = record();
    (t500.elb_status, t500.target_status) = (500, Some(500));
    assert_eq!(attrs(&spans(&t500)[0]).get("error.type"), Some(&s("500")));
}

/// A continued trace: the client's span is the parent (remote), its tracestate kept, other methods named `_OTHER`.
#[test]
fn a_continued_trace_names_the_remote_parent() {
    let mut ex = record();
    ex.method = "PURGE".into();
    let mut ctx = TraceContext::root(ID, Sampler::new(0.0));
    ctx.parent_span_id = Some([1, 2, 3, 4, 5, 6, 7, 8]);
    ctx.trace_state = Some("rojo=1".into());
    ex.trace = Some(ctx);
    let server = &spans(&ex)[0];
    assert_eq!(hex(&server.parent_span_id), "0102030405060708");
    assert_eq!(server.trace_state, "rojo=1");
    assert_eq!(server.flags, 0x300, "unsampled, parent known remote");
    assert_eq!(server.name, "HTTP");
    let a = attrs(server);
    assert_eq!(
        (a.get("http.request.method"), a.get("http.request.method_original")),
        (Some(&s("_OTHER")), Some(&s("PURGE")))
    );
}
