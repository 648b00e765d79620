//! What a function endpoint sends back, on arbitrary bytes: the Invoke API's answer (status, headers, body:
//! `waygate_proxy::function::invoke::answer`), the function's response as ALB validates it
//! (`waygate_proxy::function::response::parse`, single- and multi-value), STS's XML
//! (`waygate_proxy::function::sts::element`) and the query of an event (`event::query_pairs`). None may panic,
//! and a valid response's status and headers must be usable as they are.
#![no_main]

use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use waygate_proxy::function::{event, invoke, response, sts};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else { return };
    let multi = flags & 1 == 1;
    if let Ok(r) = response::parse(input, multi) {
        assert!((100..=599).contains(&r.status.as_u16()));
        assert!(r.headers.get("content-length").is_none(), "the gateway frames the body itself");
    }
    let status = StatusCode::from_u16(200 + u16::from(flags >> 1) * 2).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    if flags & 2 == 2 {
        headers.insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
    }
    if let Ok(t) = HeaderValue::from_bytes(&input[..input.len().min(64)]) {
        headers.insert("x-amzn-errortype", t);
    }
    let _ = invoke::answer(status, &headers, input);
    let text = String::from_utf8_lossy(input);
    let _ = sts::element(&text, "AccessKeyId");
    let _ = sts::parse_iso8601(&text);
    for (k, v) in event::query_pairs(&text) {
        assert!(!k.contains('&') && !v.contains('&'));
    }
});
