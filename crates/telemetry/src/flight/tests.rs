//! The ring: failures only, oldest out first, the index following it, the bound on a record's size.

use std::time::{Duration, SystemTime};

use waygate_faults::{Cause, Phase};

use super::FlightRecorder;
use crate::{Attempt, AttemptDetail, Exchange, ExchangeView, TargetGroupRef};

fn exchange(id: &str, status: u16, cause: Option<Cause>) -> Exchange {
    let client = "127.0.0.1:40000".parse().unwrap();
    let mut ex = Exchange::received_at("l".into(), "app/waygate/l".into(), client, SystemTime::UNIX_EPOCH);
    ex.trace_id = id.into();
    ex.elb_status = status;
    ex.cause = cause;
    ex
}

#[test]
fn successes_are_not_kept() {
    let fr = FlightRecorder::new(4);
    fr.observe_all(&[exchange("ok", 200, None), exchange("nf", 404, None), exchange("redirect", 301, None)]);
    assert!(fr.is_empty());
    fr.record(&exchange("t503", 503, None));
    let mut target_5xx = exchange("t500", 500, None);
    target_5xx.target_status = Some(500);
    fr.record(&target_5xx);
    fr.record(&exchange("gw", 502, Some(Cause::TargetConnectionRefused)));
    assert_eq!(fr.request_ids(), ["gw", "t500", "t503"]);
}

#[test]
fn the_oldest_leaves_first() {
    let fr = FlightRecorder::new(3);
    for i in 0..10 {
        fr.record(&exchange(&format!("id-{i}"), 502, Some(Cause::TargetConnectionRefused)));
    }
    assert_eq!(fr.len(), 3);
    assert_eq!(fr.request_ids(), ["id-9", "id-8", "id-7"]);
    assert!(fr.get("id-6").is_none());
    assert_eq!(fr.get("id-7").unwrap().trace_id.as_str(), "id-7");
}

#[test]
fn a_repeated_id_keeps_its_latest_record() {
    let fr = FlightRecorder::new(2);
    fr.record(&exchange("same", 502, Some(Cause::TargetConnectionRefused)));
    fr.record(&exchange("same", 504, Some(Cause::TargetResponseTimeout)));
    fr.record(&exchange("other", 503, Some(Cause::NoHealthyTargets)));
    // The first "same" was pushed out; the index still points at the second.
    assert_eq!(fr.get("same").unwrap().elb_status, 504);
    assert_eq!(fr.len(), 2);
}

#[test]
fn zero_keeps_nothing() {
    let fr = FlightRecorder::new(0);
    fr.record(&exchange("x", 502, Some(Cause::TargetConnectionRefused)));
    assert!(fr.get("x").is_none());
}

#[test]
fn long_urls_are_cut_to_the_bound() {
    let fr = FlightRecorder::new(1);
    let mut ex = exchange("long", 502, Some(Cause::TargetConnectionRefused));
    ex.url = format!("http://h:80/{}", "é".repeat(10_000)).into();
    fr.record(&ex);
    let kept = fr.get("long").unwrap();
    assert!(kept.url.as_str().len() <= super::MAX_TEXT && kept.url.as_str().len() > super::MAX_TEXT - 4);
}

/// The documented bound holds for a record of the largest usual shape: every attempt failed with a
/// connection snapshot and a message.
#[test]
fn a_record_fits_its_bound() {
    let mut ex = exchange("Root=1-00000000-000000000000000000000000", 502, Some(Cause::TargetResetConnection));
    let conn = waygate_connect::meter::ConnSnapshot {
        id: 1,
        remote: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        reused: true,
        use_count: 2,
        bytes_read: 0,
        bytes_written: 0,
        attempt_bytes_read: 0,
        attempt_bytes_written: 0,
        age: Duration::ZERO,
        last_io_ago: Duration::ZERO,
        idle_before_use: None,
        open: false,
    };
    let max_attempts = 1 + waygate_config::MAX_RETRIES as usize;
    for i in 0..max_attempts {
        let detail = AttemptDetail {
            phase: Phase::AwaitHeaders,
            failed_after: Duration::from_millis(i as u64),
            timed_out: None,
            message: "x".repeat(100),
            errno: Some("ECONNRESET"),
            conn: Some(conn.clone()),
            attempt: i as u8 + 1,
            max_attempts: max_attempts as u8,
        };
        ex.attempts.push(Attempt::failed_with("127.0.0.1:1", Cause::TargetResetConnection, detail));
    }
    let detail = std::mem::size_of::<AttemptDetail>() + 100;
    let bytes = std::mem::size_of::<Exchange>()
        + 16 // Arc counts
        + 64 // index entry: key, number, hash table overhead
        + max_attempts * (std::mem::size_of::<crate::Attempt>() + detail);
    assert!(bytes <= FlightRecorder::RECORD_BOUND, "{bytes} bytes per record");
}

#[test]
fn the_view_round_trips_and_carries_both_lines() {
    let mut ex = exchange("Root=1-1", 502, Some(Cause::TargetConnectionRefused));
    ex.target_group = Some(TargetGroupRef::new("web"));
    let detail = AttemptDetail {
        phase: Phase::Connect,
        failed_after: Duration::from_micros(1250),
        timed_out: None,
        message: "Connection refused (os error 111)".into(),
        errno: Some("ECONNREFUSED"),
        conn: None,
        attempt: 1,
        max_attempts: 1,
    };
    ex.attempts.push(Attempt::failed_with("127.0.0.1:9", Cause::TargetConnectionRefused, detail));
    let view = ExchangeView::of(&ex);
    assert_eq!(view.attempts[0].failed_after_ms, Some(1.25));
    assert_eq!(view.cause.as_ref().unwrap().title, Cause::TargetConnectionRefused.title());
    assert_eq!(view.access_log_line, crate::alb_line(&ex));
    assert_eq!(
        view.system_log_lines,
        ["ERROR waygate::upstream: Connection refused (os error 111) request_id=Root=1-1 \
          cause=TargetConnectionRefused phase=connect target_group=web target=127.0.0.1:9 attempt=1/1"]
    );
    let json = serde_json::to_string(&view).unwrap();
    assert_eq!(serde_json::from_str::<ExchangeView>(&json).unwrap(), view);
}

impl FlightRecorder {
    fn observe_all(&self, exs: &[Exchange]) {
        for ex in exs {
            self.record(ex);
        }
    }
}

/// Threads recording at once (successes between the failures): the ring holds exactly its capacity, every
/// indexed id resolves to its own record, and no success got in.
#[test]
fn the_ring_under_concurrent_failures() {
    let fr = std::sync::Arc::new(FlightRecorder::new(64));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let fr = fr.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    fr.record(&exchange(&format!("t{t}-{i}"), 502, Some(Cause::TargetConnectionRefused)));
                    if i % 2 == 0 {
                        fr.record(&exchange("ok", 200, None));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ids = fr.request_ids();
    assert_eq!((ids.len(), fr.len()), (64, 64));
    for id in &ids {
        assert_eq!(fr.get(id).unwrap().trace_id.as_str(), id);
    }
    assert!(fr.get("ok").is_none());
}
