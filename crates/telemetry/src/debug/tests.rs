//! Sessions: the body's parsing (each error naming its field), the filter's three steps, the cap on sessions,
//! max_exchanges and expiry, masking, and the bounds on headers and bodies.

use std::time::{Duration, Instant, SystemTime};

use waygate_faults::Cause;

use super::*;
use crate::TargetGroupRef;

fn spec(body: &str) -> SessionSpec {
    SessionSpec::parse(body.as_bytes()).unwrap()
}

fn refused(body: &str) -> String {
    SessionSpec::parse(body.as_bytes()).unwrap_err()
}

fn info<'a>(method: &'a str, path: &'a str, headers: &'a http::HeaderMap) -> RequestInfo<'a> {
    RequestInfo { method, path, headers, client: "127.0.0.1".parse().unwrap() }
}

fn record(status: u16, cause: Option<Cause>, group: Option<&str>, capture: Capture) -> Exchange {
    let client = "127.0.0.1:40000".parse().unwrap();
    let mut ex = Exchange::received_at("l".into(), "app/waygate/l".into(), client, SystemTime::now());
    ex.elb_status = status;
    ex.cause = cause;
    ex.target_group = group.map(TargetGroupRef::new);
    ex.debug = Some(Box::new(capture));
    ex
}

/// Traces one request with `method path` through `sessions` to its finished record.
fn traced(sessions: &Sessions, path: &str, status: u16, cause: Option<Cause>) -> bool {
    let headers = http::HeaderMap::new();
    let Some(t) = sessions.begin(Instant::now(), &info("GET", path, &headers)) else { return false };
    sessions.observe(&record(status, cause, None, *t.finish()));
    true
}

#[test]
fn an_empty_body_takes_apigees_defaults() {
    let s = spec("");
    assert_eq!((s.max_exchanges, s.timeout, s.capture_body), (20, Duration::from_secs(600), false));
    assert_eq!(s.filter, Filter::default());
    assert_eq!(spec("{}"), s);
}

#[test]
fn every_filter_key_is_read() {
    let s = spec(
        r#"{"filter": {"path_prefix": "/api", "method": "post", "header": {"name": "X-Tenant", "value": "a"},
            "target_group": "web", "status": "5XX", "cause": "TargetConnectionRefused", "client_ip": "::1"},
            "max_exchanges": 3, "timeout": "2m", "capture_body": true}"#,
    );
    let f = &s.filter;
    assert_eq!((f.path_prefix.as_deref(), f.method.as_deref()), (Some("/api"), Some("POST")));
    assert_eq!(f.header.as_ref().map(|(n, v)| (n.as_str(), v.as_str())), Some(("x-tenant", "a")));
    assert_eq!((f.status, f.cause), (Some(StatusFilter::Class(5)), Some(Cause::TargetConnectionRefused)));
    assert_eq!(f.client_ip, Some("::1".parse().unwrap()));
    assert_eq!((s.max_exchanges, s.timeout, s.capture_body), (3, Duration::from_secs(120), true));
    assert_eq!(spec(r#"{"filter": {"status": 502}}"#).filter.status, Some(StatusFilter::Exact(502)));
    // What GET shows reads back as the same session.
    assert_eq!(spec(&s.to_json().to_string()), s);
}

#[test]
fn errors_name_the_field() {
    for (body, field) in [
        ("[]", "JSON object"),
        ("{", "not JSON"),
        (r#"{"max": 3}"#, r#"unknown field "max""#),
        (r#"{"max_exchanges": 0}"#, "max_exchanges"),
        (r#"{"max_exchanges": 101}"#, "max_exchanges"),
        (r#"{"timeout": "10 minutes"}"#, "timeout"),
        (r#"{"timeout": "2h"}"#, "timeout: \"2h\" is out of range"),
        (r#"{"capture_body": "yes"}"#, "capture_body"),
        (r#"{"filter": {"path": "/"}}"#, r#"filter: unknown field "path""#),
        (r#"{"filter": {"path_prefix": "api"}}"#, "filter.path_prefix"),
        (r#"{"filter": {"method": "GE T"}}"#, "filter.method"),
        (r#"{"filter": {"status": "6xx"}}"#, "filter.status"),
        (r#"{"filter": {"status": "50"}}"#, "filter.status"),
        (r#"{"filter": {"cause": "Nope"}}"#, "filter.cause"),
        (r#"{"filter": {"client_ip": "localhost"}}"#, "filter.client_ip"),
        (r#"{"filter": {"header": {"name": "a b", "value": "x"}}}"#, "filter.header.name"),
        (r#"{"filter": {"header": {"name": "a"}}}"#, "filter.header.value"),
        (r#"{"filter": {"header": "a: b"}}"#, "filter.header"),
        (r#"{"filter": {"target_group": ""}}"#, "filter.target_group"),
    ] {
        let e = refused(body);
        assert!(e.contains(field), "{body}: {e}");
    }
}

#[test]
fn the_filter_judges_in_three_steps() {
    let f = spec(
        r#"{"filter": {"path_prefix": "/api", "method": "GET", "header": {"name": "x-t", "value": "a"},
            "client_ip": "127.0.0.1", "target_group": "web", "status": "502", "cause": "TargetConnectionRefused"}}"#,
    )
    .filter;
    let mut h = http::HeaderMap::new();
    h.append("x-t", "b".parse().unwrap());
    h.append("x-t", "a".parse().unwrap());
    assert!(f.request_matches(&info("get", "/api/x", &h)));
    assert!(!f.request_matches(&info("GET", "/other", &h)));
    assert!(!f.request_matches(&info("POST", "/api", &h)));
    assert!(!f.request_matches(&info("GET", "/api", &http::HeaderMap::new())));
    let mut other = info("GET", "/api", &h);
    other.client = "::ffff:127.0.0.1".parse().unwrap();
    assert!(f.request_matches(&other), "a v4-mapped address is the v4 one");
    other.client = "10.0.0.1".parse().unwrap();
    assert!(!f.request_matches(&other));
    assert!(f.group_matches("web") && !f.group_matches("api"));
    let c = Capture::default();
    assert!(f.end_matches(&record(502, Some(Cause::TargetConnectionRefused), Some("web"), c.clone())));
    assert!(!f.end_matches(&record(502, Some(Cause::TargetConnectionRefused), None, c.clone())));
    assert!(!f.end_matches(&record(503, Some(Cause::TargetConnectionRefused), Some("web"), c.clone())));
    assert!(!f.end_matches(&record(502, None, Some("web"), c)));
}

#[test]
fn no_session_no_tracer() {
    let sessions = Sessions::new();
    assert!(!sessions.any());
    assert!(!traced(&sessions, "/", 200, None));
    let id = sessions.start(spec(r#"{"filter": {"path_prefix": "/api"}}"#)).unwrap();
    assert!(sessions.any());
    assert!(!traced(&sessions, "/web", 200, None), "the request's own facts do not match");
    assert!(traced(&sessions, "/api", 200, None));
    assert_eq!(sessions.get(&id).unwrap().captured, 1);
    assert!(sessions.stop(&id).is_some());
    assert!(!sessions.any() && sessions.get(&id).is_none() && sessions.stop(&id).is_none());
}

#[test]
fn a_session_keeps_its_max_then_stops_capturing() {
    let sessions = Sessions::new();
    let id = sessions.start(spec(r#"{"filter": {"status": "5xx"}, "max_exchanges": 2}"#)).unwrap();
    assert!(traced(&sessions, "/", 200, None), "traced, then not kept: the status is known at the end");
    for _ in 0..2 {
        assert!(traced(&sessions, "/", 502, Some(Cause::TargetConnectionRefused)));
    }
    let s = sessions.get(&id).unwrap();
    assert_eq!((s.state.as_str(), s.captured), ("full", 2));
    assert!(s.ended.is_some());
    assert!(!sessions.any(), "a full session turns tracing off");
    assert!(!traced(&sessions, "/", 502, None));
    assert_eq!(sessions.list().len(), 1, "kept for reading");
}

#[test]
fn a_session_expires_after_its_timeout() {
    let sessions = Sessions::new();
    let mut s = spec("{}");
    s.timeout = Duration::from_millis(30);
    let id = sessions.start(s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Polled with a deadline: expiry is judged whenever the registry is used.
    while sessions.get(&id).unwrap().state != "expired" {
        assert!(Instant::now() < deadline, "the session never expired");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!sessions.any());
    assert!(!traced(&sessions, "/", 200, None));
}

#[test]
fn at_most_eight_sessions_capture_and_finished_ones_make_room() {
    let sessions = Sessions::new();
    let ids: Vec<String> = (0..MAX_SESSIONS).map(|_| sessions.start(spec("{}")).unwrap()).collect();
    assert_eq!(sessions.start(spec("{}")), Err(TooMany));
    // One fills up: the next session takes its place.
    sessions.stop(&ids[1]);
    let full = sessions.start(spec(r#"{"max_exchanges": 1, "filter": {"path_prefix": "/only-me"}}"#)).unwrap();
    assert!(traced(&sessions, "/only-me", 200, None));
    assert_eq!(sessions.get(&full).unwrap().state, "full");
    let newest = sessions.start(spec("{}")).unwrap();
    assert!(sessions.get(&full).is_none(), "the finished session made room");
    assert_eq!(sessions.list().len(), MAX_SESSIONS);
    assert!(sessions.get(&newest).is_some());
}

#[test]
fn credentials_are_masked_and_headers_bounded() {
    let sessions = Sessions::new();
    sessions.start(spec("{}")).unwrap();
    let empty = http::HeaderMap::new();
    let mut t = sessions.begin(Instant::now(), &info("GET", "/", &empty)).unwrap();
    let mut h = http::HeaderMap::new();
    for name in ["authorization", "cookie", "x-api-key", "proxy-authorization"] {
        h.insert(name, "secret".parse().unwrap());
    }
    h.insert("x-visible", "shown".parse().unwrap());
    t.request_headers(&h);
    let mut resp = http::HeaderMap::new();
    resp.append("set-cookie", "sid=secret".parse().unwrap());
    resp.append("x-big", "v".repeat(HEADER_BYTES).parse().unwrap());
    t.response_headers(&resp);
    let c = t.finish();
    assert!(c.request_headers.iter().all(|(n, v)| (n == "x-visible") == (v == "shown")), "{:?}", c.request_headers);
    assert_eq!(c.request_headers.iter().filter(|(_, v)| v == MASKED).count(), 4);
    assert_eq!(c.response_headers, [("set-cookie".to_owned(), MASKED.to_owned())]);
    assert!(c.headers_truncated);
}

#[test]
fn bodies_are_captured_only_when_asked_and_capped() {
    let sessions = Sessions::new();
    sessions.start(spec("{}")).unwrap();
    let empty = http::HeaderMap::new();
    let t = sessions.begin(Instant::now(), &info("GET", "/", &empty)).unwrap();
    // Without capture the request's tap only counts and marks the end (for the `request_body` phase).
    assert!(t.response_tap().is_none());
    t.request_tap().unwrap().push(b"not kept");
    let c = t.finish();
    assert!(c.request_body.is_none() && c.response_body.is_none(), "{c:?}");
    sessions.start(spec(r#"{"capture_body": true}"#)).unwrap();
    let t = sessions.begin(Instant::now(), &info("GET", "/", &empty)).unwrap();
    let tap = t.request_tap().unwrap();
    tap.push(&[b'a'; 3000]);
    tap.push(&[b'b'; 3000]);
    t.response_tap().unwrap().push(b"ok");
    let c = t.finish();
    let body = c.request_body.unwrap();
    assert_eq!((body.bytes.len(), body.total), (BODY_CAPTURE_BYTES, 6000));
    assert_eq!(body.bytes[2999..3001], *b"ab");
    assert_eq!(c.response_body.unwrap(), BodySample { bytes: b"ok".to_vec(), total: 2 });
}

#[test]
fn an_upload_that_ends_before_the_response_is_a_phase_of_its_own() {
    let sessions = Sessions::new();
    sessions.start(spec("{}")).unwrap();
    let empty = http::HeaderMap::new();
    let origin = Instant::now();
    let mut t = sessions.begin(origin, &info("POST", "/", &empty)).unwrap();
    t.step("request_sent", String::new(), false);
    let sent = t.cursor();
    let tap = t.request_tap().unwrap();
    t.request_body_sent();
    assert_eq!(t.cursor(), sent, "no phase while the body streams on");
    tap.push(&[b'x'; 10]);
    tap.end();
    let ended = tap.ended().unwrap();
    t.request_body_sent();
    t.request_body_sent();
    t.step("response_head", String::new(), false);
    let c = t.finish();
    let names: Vec<&str> = c.phases.iter().map(|p| p.name).collect();
    assert_eq!(names, ["request_sent", "request_body", "response_head"], "one request_body phase");
    let body = &c.phases[1];
    assert_eq!(body.start_us, c.phases[0].start_us + c.phases[0].duration.as_micros() as i64);
    assert_eq!(body.duration, ended.duration_since(sent));
    assert!(body.detail.starts_with("10 bytes"), "{}", body.detail);

    // A body read whole before the attempt has its phase then, and none again at the response.
    let mut t = sessions.begin(origin, &info("PUT", "/", &empty)).unwrap();
    t.request_body_read(7);
    let tap = t.request_tap().unwrap();
    tap.push(&[b'y'; 7]);
    tap.end();
    t.request_body_sent();
    let c = t.finish();
    assert_eq!(c.phases.iter().map(|p| p.name).collect::<Vec<_>>(), ["request_body"]);
    assert!(c.phases[0].detail.starts_with("7 bytes read whole"), "{}", c.phases[0].detail);
}

#[test]
fn phases_lie_on_one_axis_from_the_head() {
    let sessions = Sessions::new();
    sessions.start(spec("{}")).unwrap();
    let origin = Instant::now();
    let empty = http::HeaderMap::new();
    let mut t = sessions.begin(origin, &info("GET", "/", &empty)).unwrap();
    let before = origin.checked_sub(Duration::from_millis(5)).unwrap();
    t.span("client_tls", before, before + Duration::from_millis(2), String::new(), false);
    t.step("route", "rule 0".into(), false);
    t.attempt(1);
    t.step("connect", "refused".into(), true);
    assert!(t.failed());
    for _ in 0..MAX_PHASES {
        t.step("select", String::new(), false);
    }
    let c = t.finish();
    assert_eq!(c.phases.len(), MAX_PHASES);
    assert_eq!((c.phases[0].start_us, c.phases[0].duration), (-5000, Duration::from_millis(2)));
    assert_eq!((c.phases[1].start_us, c.phases[1].attempt), (0, None));
    let (route, connect) = (&c.phases[1], &c.phases[2]);
    assert_eq!(connect.start_us, route.start_us + route.duration.as_micros() as i64, "end to end");
    assert_eq!((connect.attempt, connect.failed), (Some(1), true));
}

#[test]
fn the_view_round_trips() {
    let sessions = Sessions::new();
    let id = sessions.start(spec(r#"{"filter": {"status": "502"}}"#)).unwrap();
    assert!(traced(&sessions, "/", 502, Some(Cause::TargetConnectionRefused)));
    let view = sessions.get(&id).unwrap();
    let back: SessionView = serde_json::from_value(serde_json::to_value(&view).unwrap()).unwrap();
    assert_eq!(back, view);
    assert_eq!(view.exchanges.as_ref().unwrap()[0].exchange.elb_status, 502);
    assert_eq!(view.spec["filter"]["status"], "502");
    assert!(sessions.list()[0].exchanges.is_none(), "the list leaves the exchanges out");
}

/// A capture filled past every cap (headers, details, phases, bodies, attempts) holds no more heap than
/// [`CAPTURE_BOUND`] allows beside the record itself.
#[test]
fn a_capture_at_every_cap_stays_within_its_bound() {
    let sessions = Sessions::new();
    sessions.start(spec(r#"{"capture_body": true}"#)).unwrap();
    let empty = http::HeaderMap::new();
    let mut t = sessions.begin(Instant::now(), &info("GET", "/", &empty)).unwrap();
    let mut h = http::HeaderMap::new();
    for i in 0..90 {
        h.insert(http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(), "v".repeat(200).parse().unwrap());
    }
    t.request_headers(&h);
    t.response_headers(&h);
    let addr = "127.0.0.1:1".parse().unwrap();
    for attempt in 1..=7 {
        t.attempt(attempt);
        t.connection(waygate_connect::meter::ConnCounters::new(addr, addr).snapshot(false, None));
    }
    for _ in 0..2 * MAX_PHASES {
        t.step("select", "d".repeat(3000), false);
    }
    let (req, resp) = (t.request_tap().unwrap(), t.response_tap().unwrap());
    for _ in 0..100 {
        req.push(&[b'x'; 100]);
        resp.push(&[b'y'; 1000]);
    }
    let c = t.finish();
    let strings = |v: &Vec<(String, String)>| {
        v.capacity() * std::mem::size_of::<(String, String)>()
            + v.iter().map(|(n, v)| n.capacity() + v.capacity()).sum::<usize>()
    };
    let heap = std::mem::size_of::<Capture>()
        + c.phases.capacity() * std::mem::size_of::<PhaseMark>()
        + c.phases.iter().map(|p| p.detail.capacity()).sum::<usize>()
        + strings(&c.request_headers)
        + strings(&c.response_headers)
        + c.connections.capacity() * std::mem::size_of::<(u8, waygate_connect::meter::ConnSnapshot)>()
        + c.request_body.as_ref().unwrap().bytes.capacity()
        + c.response_body.as_ref().unwrap().bytes.capacity()
        + c.sessions.capacity() * 8;
    assert!(c.headers_truncated && c.phases.len() == MAX_PHASES);
    let record = 3584 + 2 * 8192;
    assert!(heap <= CAPTURE_BOUND - record, "{heap} bytes beside the record, bound {}", CAPTURE_BOUND - record);
}
