//! Retry safety (FAULTS.md "Retries are visible, never silent"): always when nothing was sent; otherwise
//! only a keep-alive race for an idempotent request with a replayable body.

use std::io::ErrorKind;

use waygate_faults::errno::ECONNRESET;
use waygate_faults::{Evidence, HttpEvidence, LambdaEvidence, Phase, RetrySafety, retry_safety};

fn race() -> Evidence {
    Evidence {
        reused: true,
        bytes_written: 300,
        http: Some(HttpEvidence::ClosedBeforeHead),
        ..Evidence::new(Phase::AwaitHeaders)
    }
}

#[test]
fn nothing_sent_is_always_safe() {
    for phase in [Phase::Dns, Phase::Connect, Phase::TlsHandshake] {
        let e = Evidence { timed_out: true, bytes_written: 517, ..Evidence::new(phase) };
        for (idem, replay) in [(false, false), (true, true)] {
            assert_eq!(retry_safety(&e, idem, replay), RetrySafety::NothingSent, "{phase}");
        }
    }
    // A pooled connection found dead at checkout: no request byte written.
    let dead = Evidence { reused: true, os_errno: Some(ECONNRESET), ..Evidence::new(Phase::SendRequest) };
    assert_eq!(retry_safety(&dead, false, false), RetrySafety::NothingSent);
    let unreachable = Evidence { io_kind: Some(ErrorKind::ConnectionRefused), ..Evidence::new(Phase::FunctionInvoke) };
    assert_eq!(retry_safety(&unreachable, false, false), RetrySafety::NothingSent);
}

#[test]
fn keep_alive_race_needs_idempotent_and_replayable() {
    assert_eq!(retry_safety(&race(), true, true), RetrySafety::ReusedConnectionRace);
    assert!(retry_safety(&race(), true, true).is_safe());
    assert_eq!(retry_safety(&race(), false, true), RetrySafety::Unsafe);
    assert_eq!(retry_safety(&race(), true, false), RetrySafety::Unsafe);
}

#[test]
fn written_requests_are_unsafe_otherwise() {
    let fresh = Evidence { reused: false, ..race() };
    assert_eq!(retry_safety(&fresh, true, true), RetrySafety::Unsafe, "fresh connection: target may have acted");
    let answered = Evidence { bytes_read: 1, ..race() };
    assert_eq!(retry_safety(&answered, true, true), RetrySafety::Unsafe, "a response byte arrived");
    let slow = Evidence { timed_out: true, http: None, ..race() };
    assert_eq!(retry_safety(&slow, true, true), RetrySafety::Unsafe, "a timeout is not a race");
    assert!(!RetrySafety::Unsafe.is_safe());
}

#[test]
fn never_after_the_response_started_or_the_client_left() {
    let started = Evidence { response_started: true, ..Evidence::new(Phase::Connect) };
    assert_eq!(retry_safety(&started, true, true), RetrySafety::Unsafe);
    let gone = Evidence { client_closed: true, ..Evidence::new(Phase::Connect) };
    assert_eq!(retry_safety(&gone, true, true), RetrySafety::Unsafe);
    let body = Evidence { bytes_written: 0, ..Evidence::new(Phase::StreamBody) };
    assert_eq!(retry_safety(&body, true, true), RetrySafety::Unsafe);
}

#[test]
fn not_attempts_and_verdicts_are_not_retried() {
    for phase in [Phase::Route, Phase::Select] {
        assert_eq!(retry_safety(&Evidence::new(phase), true, true), RetrySafety::Unsafe, "{phase}");
    }
    let throttled =
        Evidence { lambda: Some(LambdaEvidence::InvokeStatus(429)), ..Evidence::new(Phase::FunctionInvoke) };
    assert_eq!(retry_safety(&throttled, true, true), RetrySafety::Unsafe);
    let invoked = Evidence {
        bytes_written: 10,
        io_kind: Some(ErrorKind::ConnectionReset),
        ..Evidence::new(Phase::FunctionInvoke)
    };
    assert_eq!(retry_safety(&invoked, true, true), RetrySafety::Unsafe);
}

/// RFC 9113 §8.7: a stream the target refused, or one above a GOAWAY's last_stream_id, was not processed: a
/// retry is safe for any method once the body can go again; a stream it accepted and then lost is not.
#[test]
fn unprocessed_http2_streams_are_safe_for_any_method() {
    use waygate_faults::H2Evidence;
    let ev = |h2| Evidence { h2: Some(h2), bytes_written: 200, ..Evidence::new(Phase::AwaitHeaders) };
    let refused = ev(H2Evidence::StreamReset { code: 0x7 });
    assert_eq!(retry_safety(&refused, false, true), RetrySafety::Unprocessed);
    assert_eq!(retry_safety(&refused, false, false), RetrySafety::Unsafe, "the body is gone");
    let above = ev(H2Evidence::GoAway { code: 0, unprocessed: true });
    assert_eq!(retry_safety(&above, false, true), RetrySafety::Unprocessed);
    let accepted = ev(H2Evidence::GoAway { code: 0, unprocessed: false });
    assert_eq!(retry_safety(&accepted, true, true), RetrySafety::Unsafe);
    let cancelled = ev(H2Evidence::StreamReset { code: 0x8 });
    assert_eq!(retry_safety(&cancelled, true, true), RetrySafety::Unsafe);
}
