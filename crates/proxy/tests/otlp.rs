//! `[tracing]` end to end: a gateway exporting to an OTLP/HTTP receiver on 127.0.0.1 (`common::otlp`: a small
//! hyper server that decodes the real protobuf with opentelemetry-proto), targets that echo the `traceparent` they received, and
//! the exporter's bounds: sampling by ratio with every failure exported, propagation of the client's trace,
//! a queue that drops and counts behind a collector that never answers, and export failures that never fail a
//! request.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::otlp::*;
use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use waygate_faultlab::{Backend, Fault};
use waygate_proxy::Drain;

/// Ratio 1: every exchange is a tree of spans in the request id's trace; the target's parent is the gateway's span.
#[tokio::test]
async fn a_sampled_exchange_is_a_tree_of_spans_its_target_continues() {
    let (otlp, mut rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let (_gw, addr) = traced(&[backend.addr()], &tracing_table(otlp, 1.0, ""), "").await;
    let mut req = request("GET", "/echo?x=1", "app.example", Bytes::new());
    req.headers_mut().insert("user-agent", "otlp-test/1".parse().unwrap());
    let resp = within("request", h1(addr, req)).await;
    assert_eq!(resp.status, 200);
    let id = resp.header("x-request-id").to_owned();
    let spans = spans_of(&mut rx, &id).await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server as i32).expect("a SERVER span");
    // The request id Root=1-{8 hex}-{24 hex} is the trace id, as X-Ray's maps to W3C's.
    assert_eq!(hex(&server.trace_id), format!("{}{}", &id[7..15], &id[16..40]));
    assert!(server.parent_span_id.is_empty(), "no client trace: a root span");
    assert_eq!(server.name, "GET");
    for (key, want) in [
        ("http.request.method", str_value("GET")),
        ("url.path", str_value("/echo")),
        ("url.query", str_value("x=1")),
        ("url.scheme", str_value("http")),
        ("server.address", str_value("app.example")),
        ("http.response.status_code", Value::IntValue(200)),
        ("client.address", str_value("127.0.0.1")),
        ("network.peer.address", str_value("127.0.0.1")),
        ("user_agent.original", str_value("otlp-test/1")),
        ("network.protocol.version", str_value("1.1")),
        ("waygate.target_group", str_value("app")),
        ("waygate.listener", str_value("public")),
    ] {
        assert_eq!(attr(server, key), Some(want), "{key}");
    }
    assert_eq!(attr(server, "error.type"), None);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["GET", "request processing", "GET", "response"]);
    let attempt = spans.iter().find(|s| s.kind == SpanKind::Client as i32).expect("a CLIENT span");
    assert_eq!(attr(attempt, "server.address"), Some(str_value("127.0.0.1")));
    assert_eq!(attr(attempt, "server.port"), Some(Value::IntValue(i64::from(backend.addr().port()))));
    assert_eq!(attr(attempt, "http.response.status_code"), Some(Value::IntValue(200)));
    for child in spans.iter().filter(|s| s.kind != SpanKind::Server as i32) {
        assert_eq!(child.parent_span_id, server.span_id, "{} is the exchange's child", child.name);
        assert!(child.start_time_unix_nano >= server.start_time_unix_nano);
        assert!(child.end_time_unix_nano <= server.end_time_unix_nano);
    }
    // The target continues the gateway's span, sampled.
    let want = format!("00-{}-{}-01", hex(&server.trace_id), hex(&server.span_id));
    assert_eq!(echoed(&resp, "traceparent"), [want]);
}

/// A client's sampled trace is continued whatever the ratio: its span is the parent, its tracestate passes.
#[tokio::test]
async fn a_client_trace_is_continued_and_propagated() {
    let (otlp, mut rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let (_gw, addr) = traced(&[backend.addr()], &tracing_table(otlp, 0.0, ""), "").await;
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = request("GET", "/echo", "app.example", Bytes::new());
    req.headers_mut().insert("traceparent", format!("00-{client_trace}-00f067aa0ba902b7-01").parse().unwrap());
    req.headers_mut().insert("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
    let resp = within("request", h1(addr, req)).await;
    let id = resp.header("x-request-id").to_owned();
    let spans = spans_of(&mut rx, &id).await;
    let server = &spans[0];
    assert_eq!(
        (hex(&server.trace_id).as_str(), hex(&server.parent_span_id).as_str()),
        (client_trace, "00f067aa0ba902b7")
    );
    assert_eq!(server.trace_state, "rojo=00f067aa0ba902b7");
    assert_eq!(echoed(&resp, "traceparent"), [format!("00-{client_trace}-{}-01", hex(&server.span_id))]);
    assert_eq!(echoed(&resp, "tracestate"), ["rojo=00f067aa0ba902b7"]);
}

/// Ratio 0: successes are not exported (their targets are told so), every failure is, with its cause.
#[tokio::test]
async fn ratio_zero_exports_only_failures() {
    let (otlp, mut rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let down = format!(
        "[[listener.rule]]\npriority = 1\npath = \"/down*\"\ntarget_group = \"down\"\n\
         [[target_group]]\nname = \"down\"\ntargets = [\"{}\"]\n[target_group.health_check]\nenabled = false\n",
        refused.addr()
    );
    let config =
        simple_config(&[backend.addr()], "").replacen("[[target_group]]", &format!("{down}[[target_group]]"), 1);
    let (gw, addr) = gateway(&format!("{}\n{config}", tracing_table(otlp, 0.0, ""))).await;
    let mut unsampled = String::new();
    for _ in 0..5 {
        let resp = within("request", get(addr, "/echo")).await;
        assert_eq!(resp.status, 200);
        let tp = echoed(&resp, "traceparent").pop().expect("a traceparent");
        assert!(tp.ends_with("-00"), "not sampled: {tp}");
        unsampled = resp.header("x-request-id").to_owned();
    }
    let failed = within("request", get(addr, "/down")).await;
    assert_eq!(failed.status, 502);
    let id = failed.header("x-request-id").to_owned();
    // Shutdown exports whatever is queued, and waits for the receiver's answers: every span sent is here now.
    assert_eq!(gw.shutdown(DEADLINE).await, Drain::Complete);
    let mut spans = Vec::new();
    while let Ok((_, _, more)) = rx.try_recv() {
        spans.extend(more);
    }
    let server = spans.iter().find(|s| s.kind == SpanKind::Server as i32).expect("the failure was exported");
    assert_eq!(attr(server, "waygate.request_id"), Some(str_value(&id)), "no success was exported");
    assert!(spans.iter().all(|s| s.trace_id == server.trace_id), "only the failure's spans");
    assert_eq!(spans.iter().filter(|s| s.kind == SpanKind::Server as i32).count(), 1);
    assert!(!spans.iter().any(|s| attr(s, "waygate.request_id") == Some(str_value(&unsampled))));
    assert_eq!(attr(server, "waygate.cause"), Some(str_value("TargetConnectionRefused")));
    assert_eq!(attr(server, "error.type"), Some(str_value("TargetConnectionRefused")));
    assert_eq!(server.status.as_ref().map(|s| s.code), Some(2), "ERROR");
    let attempt = spans.iter().find(|s| s.kind == SpanKind::Client as i32).expect("the failed attempt");
    assert_eq!(attr(attempt, "waygate.phase"), Some(str_value("connect")));
    assert_eq!(attempt.events[0].name, "waygate.attempt_failed");
}

/// HTTP/2 targets receive the gateway's traceparent in place of the client's too.
#[tokio::test]
async fn h2_targets_get_the_gateways_traceparent() {
    let (otlp, mut rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&format!(
        "{}\n{}",
        tracing_table(otlp, 1.0, ""),
        simple_config(&[backend.addr()], "protocol_version = \"http2\"\n")
    ))
    .await;
    let mut req = request("GET", "/echo", "app.example", Bytes::new());
    req.headers_mut().insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".parse().unwrap());
    let resp = within("request", h1(addr, req)).await;
    assert_eq!(resp.json()["version"], "HTTP/2.0");
    let spans = spans_of(&mut rx, resp.header("x-request-id")).await;
    let want = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-00", hex(&spans[0].span_id));
    assert_eq!(echoed(&resp, "traceparent"), [want], "one traceparent, the gateway's, unsampled as the client's");
}

/// A collector that never answers: requests go on at full speed, the queue holds `max_queue` exchanges, and
/// every exchange beyond it is dropped with its spans counted.
#[tokio::test]
async fn a_full_queue_drops_and_counts_and_requests_go_on() {
    let (otlp, _rx) = receiver(Answer::Never).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let tracing = tracing_table(otlp, 1.0, "max_queue = 2\nmax_batch = 1\nexport_timeout = \"60s\"\n");
    let (gw, addr) = traced(&[backend.addr()], &tracing, "").await;
    const N: usize = 20;
    for _ in 0..N {
        assert_eq!(within("request", get(addr, "/")).await.status, 200);
    }
    // One exchange in the stuck export at most, two in the queue: the rest dropped, four spans each.
    let text = gw.metrics().encode();
    let dropped = metric(&text, "waygate_tracing_spans_dropped_total", &[]);
    assert!(dropped >= ((N - 3) * 4) as f64, "dropped {dropped}:\n{text}");
    assert_eq!(metric(&text, "waygate_tracing_spans_exported_total", &[]), 0.0);
}

/// A collector answering 500: counted as export errors and dropped spans, and every request still succeeds.
#[tokio::test]
async fn export_failures_never_fail_requests() {
    let (otlp, mut rx) = receiver(Answer::Status(500)).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let (gw, addr) = traced(&[backend.addr()], &tracing_table(otlp, 1.0, ""), "").await;
    for _ in 0..3 {
        assert_eq!(within("request", get(addr, "/")).await.status, 200);
    }
    next_spans(&mut rx).await;
    within("the export error counted", async {
        loop {
            let text = gw.metrics().encode();
            if metric(&text, "waygate_tracing_export_errors_total", &[]) >= 1.0 {
                assert!(metric(&text, "waygate_tracing_spans_dropped_total", &[]) >= 4.0, "{text}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(within("request", get(addr, "/")).await.status, 200);
}

/// A request the server refuses before routing (no Host) is a failure: exported at ratio 0, in the trace its
/// request id names.
#[tokio::test]
async fn a_refused_request_head_is_exported_in_its_request_ids_trace() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (otlp, mut rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let (gw, addr) = traced(&[backend.addr()], &tracing_table(otlp, 0.0, ""), "").await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    within("the gateway closes", tcp.read_to_end(&mut answer)).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"));
    assert_eq!(gw.shutdown(DEADLINE).await, Drain::Complete);
    let mut spans = Vec::new();
    while let Ok((_, _, more)) = rx.try_recv() {
        spans.extend(more);
    }
    let [server] = &spans[..] else { panic!("one span, the exchange's: {spans:?}") };
    assert_eq!(attr(server, "waygate.cause"), Some(str_value("ClientRequestMalformed")));
    let Some(Value::StringValue(id)) = attr(server, "waygate.request_id") else { panic!("a request id") };
    assert_eq!(hex(&server.trace_id), format!("{}{}", &id[7..15], &id[16..40]));
    assert!(server.parent_span_id.is_empty());
}
