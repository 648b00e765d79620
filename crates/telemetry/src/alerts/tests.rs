//! The engine with a fake clock: records are observed as the data plane emits them, and `evaluate` is called
//! at chosen instants instead of by the timer.

use std::time::{Duration, SystemTime};

use waygate_config::{Alert, AlertMatch, AlertTrigger, Origin, StatusMatch};
use waygate_faults::Cause;

use super::*;
use crate::{Attempt, Metrics, TargetGroupRef};

fn at(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn rule(name: &str, when: AlertMatch, trigger: AlertTrigger, window: u64) -> Alert {
    Alert {
        name: name.into(),
        when,
        trigger,
        window: Duration::from_secs(window),
        resolve_below: trigger.threshold() / 2.0,
        webhook: None,
        runbook: None,
    }
}

fn record(status: u16, cause: Option<Cause>, id: &str) -> Exchange {
    let mut ex = Exchange::new("public".into(), "app/waygate/public".into(), "127.0.0.1:1".parse().unwrap());
    ex.elb_status = status;
    ex.cause = cause;
    ex.trace_id = id.into();
    ex.target_group = Some(TargetGroupRef::new("api"));
    match cause {
        Some(c) => ex.attempts.push(Attempt::failed("127.0.0.1:2", c)),
        None => ex.target_status = Some(status),
    }
    ex
}

fn firing_metric(m: &Metrics, name: &str) -> Option<String> {
    let text = m.encode();
    let prefix = format!("waygate_alert_firing{{alert=\"{name}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn a_count_rule_fires_at_its_threshold_and_resolves_below_half() {
    let metrics = Metrics::new();
    let alerts = Alerts::new(metrics.alert_counters());
    let when = AlertMatch { causes: vec![Cause::TargetConnectionRefused], ..AlertMatch::default() };
    alerts.configure_at(&[rule("refused", when, AlertTrigger::Count(3), 10)], at(0));
    assert_eq!(firing_metric(&metrics, "refused").as_deref(), Some("0"));

    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "id-1"));
    alerts.observe(&record(200, None, "ok"));
    alerts.observe(&record(504, Some(Cause::TargetResponseTimeout), "other"));
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "id-2"));
    assert!(alerts.evaluate(at(1)).is_empty(), "2 of 3");
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "id-3"));
    let events = alerts.evaluate(at(2));
    let [(hook, e)] = &events[..] else { panic!("one event: {events:?}") };
    assert!(hook.is_none());
    assert_eq!((e.state, e.value, e.threshold), (AlertState::Firing, 3.0, 3.0));
    assert_eq!(e.causes, [("TargetConnectionRefused", 3)]);
    assert_eq!(e.request_ids, ["id-3", "id-2", "id-1"]);
    assert_eq!(e.remediation, Some(Cause::TargetConnectionRefused.remediation()));
    assert_eq!(firing_metric(&metrics, "refused").as_deref(), Some("1"));
    let status = &alerts.status()[0];
    assert_eq!((status.state, status.since, status.matching, status.in_scope), (AlertState::Firing, at(2), 3, 5));

    // Hysteresis: resolve_below is 1.5. At t=11 the first two left the window (1 left): still >= 1.5? no.
    assert!(alerts.evaluate(at(10)).is_empty(), "all three still in (0, 10]");
    let events = alerts.evaluate(at(11));
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].1.state, events[0].1.value), (AlertState::Ok, 1.0));
    assert_eq!(events[0].1.word(), "resolved");
    assert_eq!(firing_metric(&metrics, "refused").as_deref(), Some("0"));
}

#[test]
fn hysteresis_holds_a_count_between_the_two_thresholds() {
    let alerts = Alerts::new(Metrics::new().alert_counters());
    let mut r = rule("any", AlertMatch::default(), AlertTrigger::Count(4), 5);
    r.resolve_below = 2.0;
    alerts.configure_at(&[r], at(0));
    for i in 0..4 {
        alerts.observe(&record(503, None, &format!("r{i}")));
    }
    assert_eq!(alerts.evaluate(at(1)).len(), 1);
    // 4 then 1 more at t=3: at t=6 the first four leave, 1 remains (< 2): resolves. At t=5 all 5 remain.
    alerts.observe(&record(503, None, "r4"));
    assert!(alerts.evaluate(at(3)).is_empty());
    assert!(alerts.evaluate(at(5)).is_empty());
    let events = alerts.evaluate(at(6));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.state, AlertState::Ok);
    // Target's own 503s have no cause: counted as TargetStatus ("").
    assert_eq!(events[0].1.causes, [("", 1)]);
}

#[test]
fn a_ratio_waits_for_min_requests_and_divides_by_its_scope() {
    let alerts = Alerts::new(Metrics::new().alert_counters());
    let when = AlertMatch { status: Some(StatusMatch::Class(5)), origin: Origin::Gateway, ..AlertMatch::default() };
    alerts.configure_at(&[rule("ratio", when, AlertTrigger::Ratio { ratio: 0.5, min_requests: 4 }, 60)], at(0));
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "a"));
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "b"));
    assert!(alerts.evaluate(at(1)).is_empty(), "100% of 2 requests: too few to judge");
    alerts.observe(&record(200, None, "c"));
    alerts.observe(&record(503, None, "target's own 503 is no gateway 5xx"));
    let events = alerts.evaluate(at(2));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.value, 0.5);
    for i in 0..12 {
        alerts.observe(&record(200, None, &format!("ok{i}")));
    }
    // 2 of 16 = 0.125, below resolve_below 0.25.
    let events = alerts.evaluate(at(3));
    assert_eq!((events.len(), events[0].1.state), (1, AlertState::Ok));
}

#[test]
fn scope_limits_the_denominator() {
    let alerts = Alerts::new(Metrics::new().alert_counters());
    let when = AlertMatch { target_group: Some("web".into()), ..AlertMatch::default() };
    alerts.configure_at(&[rule("web", when, AlertTrigger::Count(1), 60)], at(0));
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "api-failure"));
    assert!(alerts.evaluate(at(1)).is_empty());
    assert_eq!((alerts.status()[0].in_scope, alerts.status()[0].matching), (0, 0));
}

#[test]
fn a_reload_keeps_unchanged_rules_and_resolves_changed_ones() {
    let metrics = Metrics::new();
    let alerts = Alerts::new(metrics.alert_counters());
    let keep = rule("keep", AlertMatch::default(), AlertTrigger::Count(1), 60);
    let change = rule("change", AlertMatch::default(), AlertTrigger::Count(1), 60);
    let gone = rule("gone", AlertMatch::default(), AlertTrigger::Count(1), 60);
    alerts.configure_at(&[keep.clone(), change.clone(), gone], at(0));
    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), "x"));
    assert_eq!(alerts.evaluate(at(1)).len(), 3);

    let mut changed = change;
    changed.trigger = AlertTrigger::Count(100);
    changed.resolve_below = 50.0;
    alerts.configure_at(&[keep, changed], at(2));
    let events = alerts.evaluate(at(3));
    let notes: Vec<(&str, AlertState, Option<&str>)> =
        events.iter().map(|(_, e)| (e.alert.as_str(), e.state, e.note)).collect();
    assert_eq!(
        notes,
        [
            ("change", AlertState::Ok, Some("resolved because a reload changed the rule")),
            ("gone", AlertState::Ok, Some("resolved because a reload removed the rule")),
        ]
    );
    let status = alerts.status();
    assert_eq!((status[0].alert.name.as_str(), status[0].state, status[0].matching), ("keep", AlertState::Firing, 1));
    assert_eq!(firing_metric(&metrics, "keep").as_deref(), Some("1"));
    assert_eq!(firing_metric(&metrics, "gone"), None, "a removed rule leaves /metrics");
}

#[test]
fn counts_from_many_threads_all_arrive() {
    let alerts = std::sync::Arc::new(Alerts::new(Metrics::new().alert_counters()));
    alerts.configure_at(&[rule("n", AlertMatch::default(), AlertTrigger::Count(1_000_000), 60)], at(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let alerts = alerts.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    alerts.observe(&record(502, Some(Cause::TargetConnectionRefused), &format!("{t}-{i}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    alerts.evaluate(at(1));
    assert_eq!(alerts.status()[0].matching, 8000);
    assert_eq!(alerts.status()[0].request_ids.len(), RECENT_IDS);
}

/// What 20 rules cost a record on the request path (run it in release:
/// `cargo test --release -p waygate-telemetry --lib observe_cost -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check: run it by hand in release mode"]
fn observe_cost_with_20_rules() {
    let alerts = Alerts::new(Metrics::new().alert_counters());
    let mut rules = Vec::new();
    for i in 0..5 {
        let when =
            AlertMatch { causes: vec![Cause::ALL[i + 4]], target_group: Some("api".into()), ..AlertMatch::default() };
        rules.push(rule(&format!("cause-{i}"), when, AlertTrigger::Count(10), 60));
    }
    for (i, code) in [500u16, 502, 503, 504, 400].into_iter().enumerate() {
        let when =
            AlertMatch { status: Some(StatusMatch::Code(code)), origin: Origin::Gateway, ..AlertMatch::default() };
        rules.push(rule(&format!("status-{i}"), when, AlertTrigger::Count(5), 300));
    }
    for i in 0..10 {
        let when = AlertMatch {
            status: Some(StatusMatch::Class(5)),
            listener: Some("public".into()),
            ..AlertMatch::default()
        };
        rules.push(rule(&format!("ratio-{i}"), when, AlertTrigger::Ratio { ratio: 0.05, min_requests: 20 }, 60));
    }
    let ok = record(200, None, "Root=1-00000000-000000000000000000000000");
    let n = 2_000_000u32;
    for count in [0, 1] {
        alerts.configure_at(&rules[..count], at(0));
        let start = std::time::Instant::now();
        for _ in 0..n {
            alerts.observe(std::hint::black_box(&ok));
        }
        println!("{count} rules, success: {:.1} ns per record", start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    alerts.configure_at(&rules, at(0));
    let ok = record(200, None, "Root=1-00000000-000000000000000000000000");
    let failed = record(502, Some(Cause::TargetConnectionRefused), "Root=1-00000000-000000000000000000000001");
    for (name, ex) in [("success", &ok), ("failure", &failed)] {
        let start = std::time::Instant::now();
        for _ in 0..n {
            alerts.observe(std::hint::black_box(ex));
        }
        println!("20 rules, {name}: {:.1} ns per record", start.elapsed().as_nanos() as f64 / f64::from(n));
    }
}
