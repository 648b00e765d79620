//! W3C trace context from a client: any bytes as `traceparent` (and `tracestate`) give either a valid parent,
//! whose fields are lowercase hex, non-zero ids and a version other than `ff`, or a new trace; either way the
//! `traceparent` the gateway sends targets parses back to the same trace and the gateway's own span.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use waygate_telemetry::{Sampler, TraceContext, parse_traceparent};

const ID: &str = "Root=1-6740a1b2-9f8e7d6c5b4a39281706f5e4";

fuzz_target!(|data: &[u8]| {
    let parsed = parse_traceparent(data);
    if let Some(p) = parsed {
        assert!(p.version != 0xff && p.trace_id != [0; 16] && p.parent_id != [0; 8]);
        assert!(data.len() >= 55 && (p.version != 0 || data.len() == 55));
    }
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", value.clone());
    headers.insert("tracestate", value);
    let ctx = TraceContext::of_request(&headers, ID, Sampler::new(0.5));
    match parsed {
        Some(p) => {
            assert_eq!((ctx.trace_id, ctx.parent_span_id, ctx.sampled), (p.trace_id, Some(p.parent_id), p.flags & 1 == 1));
        }
        None => assert_eq!(ctx.parent_span_id, None, "an invalid traceparent starts a new trace"),
    }
    let sent = ctx.traceparent();
    let back = parse_traceparent(&sent).expect("the gateway's traceparent is valid");
    assert_eq!((back.version, back.trace_id, back.parent_id, back.flags), (0, ctx.trace_id, ctx.span_id, u8::from(ctx.sampled)));
});
