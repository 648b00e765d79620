//! Generated logs with known answers: exact counts for every cause and target, in both formats, and the
//! pattern findings.

mod common;

use std::collections::BTreeMap;

use common::{L, alb_log, at};
use waygate_doctor::audit::Deregistration;
use waygate_doctor::report::Report;
use waygate_doctor::{Filter, Options, analyze_bytes};

const T: [&str; 6] = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80", "10.0.0.6:80"];
const FAIL: [&str; 3] = ["-1", "-1", "-1"];

/// Every cause kind, with known counts per target.
fn scenario() -> Vec<L> {
    let mut v = Vec::new();
    for i in 0..600 {
        v.push(L::ok(at(f64::from(i)), T[i as usize % 6]));
    }
    for i in 0..12 {
        v.push(L::ok(at(10.5 + f64::from(i) * 40.0), T[i as usize % 6]).status(502, None).times(FAIL));
    }
    for i in 0..5 {
        v.push(L::ok(at(100.0 + f64::from(i)), T[1]).status(504, None).times(FAIL).took(Some(10.002)));
    }
    for i in 0..4 {
        v.push(L::ok(at(200.0 + f64::from(i)), T[2]).status(504, None).times(FAIL).took(Some(60.001)));
    }
    v.push(L::ok(at(210.0), T[2]).status(504, None).times(FAIL).took(None));
    for i in 0..10 {
        let s = if i < 7 { 500 } else { 503 };
        v.push(L::ok(at(300.0 + f64::from(i)), T[3]).status(s, Some(s)));
    }
    for i in 0..3 {
        v.push(
            L::ok(at(400.0 + f64::from(i)), "x")
                .no_target()
                .status(502, None)
                .times(["0.000", "0.001", "0.000"])
                .reason("LambdaInvalidResponse"),
        );
    }
    for i in 0..6 {
        v.push(L::ok(at(450.0 + f64::from(i)), T[4]).status(502, None).times(FAIL).reason("TargetConnectionRefused"));
    }
    for i in 0..2 {
        v.push(L::ok(at(500.0 + f64::from(i)), "x").no_target().status(503, None).times(FAIL));
    }
    // The target took the request and closed mid-way (AWS's keep-alive 502 shape): TargetClosedConnection.
    v.push(L::ok(at(510.0), T[5]).status(502, None).times(["0.001", "0.200", "-1"]));
    v.push(L::ok(at(520.0), T[0]).status(460, None).times(FAIL).reason("ClientClosedRequest"));
    v.push(L::ok(at(530.0), T[0]).status(404, Some(404)));
    v
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn analyse(text: &str) -> Report {
    analyze_bytes(text.as_bytes(), &Options::default())
}

fn check_scenario(r: &Report) {
    assert_eq!(r.requests, 646);
    assert_eq!(r.malformed.count, 0);
    assert_eq!(r.elb_5xx, map(&[("502", 22), ("503", 2), ("504", 10)]));
    assert_eq!(r.target_5xx, map(&[("500", 7), ("503", 3)]));
    let got: Vec<(&str, &str, bool, u64)> =
        r.causes.iter().map(|c| (c.cause.as_str(), c.source, c.inferred, c.count)).collect();
    assert_eq!(
        got,
        [
            ("TargetConnectionFailed", "load_balancer", true, 12),
            ("TargetResponded5xx", "target", true, 10),
            ("TargetConnectionRefused", "load_balancer", false, 6),
            ("TargetConnectTimeout", "load_balancer", true, 5),
            ("TargetResponseTimeout", "load_balancer", true, 5),
            ("LambdaInvalidResponse", "load_balancer", false, 3),
            ("Unexplained503", "load_balancer", true, 2),
            ("ClientClosedRequest", "load_balancer", false, 1),
            ("TargetClosedConnection", "load_balancer", true, 1),
        ]
    );
    let by = |name: &str| r.causes.iter().find(|c| c.cause == name).unwrap();
    assert_eq!(by("TargetConnectionFailed").targets, T.iter().map(|t| ((*t).to_owned(), 2)).collect());
    assert_eq!(by("TargetConnectionFailed").statuses, map(&[("502", 12)]));
    assert_eq!(by("TargetResponded5xx").targets, map(&[(T[3], 10)]));
    assert_eq!(by("TargetResponded5xx").statuses, map(&[("500", 7), ("503", 3)]));
    assert_eq!(by("TargetConnectionRefused").targets, map(&[(T[4], 6)]));
    assert_eq!(by("TargetConnectTimeout").targets, map(&[(T[1], 5)]));
    assert_eq!(by("TargetResponseTimeout").targets, map(&[(T[2], 5)]));
    assert_eq!(by("LambdaInvalidResponse").targets, map(&[("-", 3)]));
    assert_eq!(by("Unexplained503").targets, map(&[("-", 2)]));
    assert_eq!(by("TargetClosedConnection").targets, map(&[(T[5], 1)]));
    assert_eq!(by("ClientClosedRequest").statuses, map(&[("460", 1)]));
    let tcf = by("TargetConnectionFailed");
    assert_eq!(tcf.first_seen, "2024-05-01T10:00:10.500000Z");
    assert_eq!(tcf.last_seen, "2024-05-01T10:07:30.500000Z");
    assert_eq!(tcf.timeline.0.iter().map(|p| p.1).sum::<u64>(), 12);
    assert_eq!(tcf.timeline.0.len(), 8, "one or two per minute over minutes 0..=7");
    // Remediation: catalogue text for catalogue causes, the doctor's own for the rest.
    assert_eq!(by("TargetConnectionRefused").remediation, waygate_faults::Cause::TargetConnectionRefused.remediation());
    assert_eq!(by("TargetConnectTimeout").remediation, waygate_faults::Cause::TargetConnectTimeout.remediation());
    assert!(tcf.remediation.contains("keep-alive"));
    assert!(by("LambdaInvalidResponse").remediation.len() > 20);
    assert!(r.causes.iter().all(|c| !c.remediation.is_empty()));

    let requests: BTreeMap<&str, (u64, u64, u64)> =
        r.targets.iter().map(|t| (t.target.as_str(), (t.requests, t.elb_5xx, t.target_5xx))).collect();
    assert_eq!(
        requests,
        BTreeMap::from([
            (T[0], (104, 2, 0)),
            (T[1], (107, 7, 0)),
            (T[2], (107, 7, 0)),
            (T[3], (112, 2, 10)),
            (T[4], (108, 8, 0)),
            (T[5], (103, 3, 0)),
        ])
    );
    assert_eq!(r.targets[0].target, T[3], "most 5xx first");
    let kinds: Vec<&str> = r.patterns.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, ["keep_alive_mismatch"], "19 LB 502s over all 6 targets, at most 8 on one");
    assert_eq!(r.patterns[0].count, 19);
}

#[test]
fn every_cause_and_target_alb() {
    check_scenario(&analyse(&alb_log(&scenario())));
}

#[test]
fn json_format_gives_the_same_answers() {
    let lines = scenario();
    let json: String = lines.iter().map(|l| l.json() + "\n").collect();
    let a = analyse(&alb_log(&lines));
    let b = analyse(&json);
    check_scenario(&b);
    // Everything but the input size is the same.
    let value = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        v["bytes"] = 0.into();
        v
    };
    assert_eq!(value(&a), value(&b));
    // Mixed in one file, in any order.
    let mixed: String =
        lines.iter().enumerate().map(|(i, l)| if i % 2 == 0 { l.json() } else { l.alb() } + "\n").collect();
    assert_eq!(value(&analyse(&mixed)), value(&a));
}

#[test]
fn keep_alive_signature() {
    let targets: Vec<String> = (1..=10).map(|i| format!("10.1.0.{i}:8080")).collect();
    let mut v: Vec<L> = (0..2000).map(|i| L::ok(at(f64::from(i) * 0.3), &targets[i as usize % 10])).collect();
    for i in 0..20 {
        v.push(L::ok(at(f64::from(i) * 29.0), &targets[i as usize % 10]).status(502, None).times(FAIL));
    }
    let r = analyse(&alb_log(&v));
    assert_eq!(r.patterns.len(), 1, "{:?}", r.patterns);
    let p = &r.patterns[0];
    assert_eq!(p.kind, "keep_alive_mismatch");
    assert_eq!(p.count, 20);
    assert_eq!(p.targets.len(), 10);
    assert!(p.targets.values().all(|n| *n == 2));
    assert!(p.summary.contains("10 of 10 targets"), "{}", p.summary);
}

#[test]
fn concentration_on_one_target() {
    let targets: Vec<String> = (1..=5).map(|i| format!("10.2.0.{i}:80")).collect();
    let mut v: Vec<L> = (0..1000).map(|i| L::ok(at(f64::from(i) * 0.5), &targets[i as usize % 5])).collect();
    for i in 0..30 {
        v.push(L::ok(at(f64::from(i) * 10.0), &targets[2]).status(500, Some(500)));
    }
    v.push(L::ok(at(50.0), &targets[0]).status(500, Some(500)));
    v.push(L::ok(at(60.0), &targets[1]).status(503, Some(503)));
    let r = analyse(&alb_log(&v));
    let kinds: Vec<&str> = r.patterns.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, ["target_concentration"]);
    let p = &r.patterns[0];
    assert_eq!(p.targets, map(&[(&targets[2], 30)]));
    assert!(p.summary.contains("TargetResponded5xx 30"), "{}", p.summary);
    assert_eq!(r.target_5xx, map(&[("500", 31), ("503", 1)]));
}

fn deregistration_log() -> (Vec<L>, String) {
    let targets: Vec<String> = (1..=3).map(|i| format!("10.3.0.{i}:80")).collect();
    let leaving = targets[2].clone();
    let mut v = Vec::new();
    for i in 0..600 {
        let t = &targets[i as usize % 3];
        // The third target takes no new requests after 240 s (deregistered at 240 s).
        if *t == leaving && i >= 240 {
            v.push(L::ok(at(f64::from(i)), &targets[0]));
        } else {
            v.push(L::ok(at(f64::from(i)), t));
        }
    }
    // Long requests cut when the 30 s delay ran out, each started before the deregistration.
    for i in 0..4 {
        v.push(
            L::ok(at(270.0 + f64::from(i) * 0.01), &leaving)
                .status(502, None)
                .times(["0.000", "-1", "-1"])
                .took(Some(45.0)),
        );
    }
    (v, leaving)
}

#[test]
fn deregistration_before_leaving_the_logs() {
    let (v, leaving) = deregistration_log();
    let r = analyse(&alb_log(&v));
    let p: Vec<_> = r.patterns.iter().filter(|p| p.kind == "deregistered_mid_request").collect();
    assert_eq!(p.len(), 1, "{:?}", r.patterns);
    assert_eq!(p[0].targets, map(&[(&leaving, 4)]));
    assert!(!p[0].exact);
    assert!(p[0].remediation.contains("45.0 s"), "{}", p[0].remediation);

    // With the audit log the finding is exact and names the event.
    let opts = Options {
        audit: vec![Deregistration {
            time: at(240.0),
            target: leaving.clone(),
            target_group: Some("api".into()),
            actor: Some("ops@example.com".into()),
        }],
        ..Options::default()
    };
    let r = analyze_bytes(alb_log(&v).as_bytes(), &opts);
    let p: Vec<_> = r.patterns.iter().filter(|p| p.kind == "deregistered_mid_request").collect();
    assert_eq!(p.len(), 1);
    assert!(p[0].exact);
    assert_eq!(p[0].count, 4);
    assert!(p[0].summary.contains("ops@example.com") && p[0].summary.contains("30.0 s later"), "{}", p[0].summary);
}

#[test]
fn filters() {
    let lines = scenario();
    let text = alb_log(&lines);
    let run = |filter: Filter| analyze_bytes(text.as_bytes(), &Options { filter, ..Options::default() });
    let r = run(Filter { target: Some(T[3].to_owned()), ..Filter::default() });
    assert_eq!(r.requests, 112);
    assert_eq!(r.filtered_out, 646 - 112);
    assert_eq!(r.target_5xx, map(&[("500", 7), ("503", 3)]));
    let r = run(Filter { target: Some("10.0.0.5".to_owned()), ..Filter::default() });
    assert_eq!(r.requests, 108, "an ip alone matches any port");
    let r = run(Filter { since: Some(at(100.0)), until: Some(at(200.0)), ..Filter::default() });
    assert_eq!(r.requests, 100 + 2 + 5, "100 200s, 2 TargetConnectionFailed (130.5, 170.5), 5 connect timeouts");
    let r = run(Filter { target_group: Some("my-targets".to_owned()), ..Filter::default() });
    assert_eq!(r.requests, 646);
    let r = run(Filter { target_group: Some(common::TG.to_owned()), ..Filter::default() });
    assert_eq!(r.requests, 646);
    let r = run(Filter { target_group: Some("other".to_owned()), ..Filter::default() });
    assert_eq!((r.requests, r.filtered_out), (0, 646));
}

/// A 504 with target `-` is `TargetConnectTimeout` when `time - request_creation_time` falls in [9.5 s, 11 s)
/// (ALB's 10 s connect timeout), `TargetResponseTimeout` outside it or without a request_creation_time.
#[test]
fn connect_timeout_window_is_9_5_to_11_seconds() {
    for (took, cause) in [
        (Some(9.499), "TargetResponseTimeout"),
        (Some(9.5), "TargetConnectTimeout"),
        (Some(10.999), "TargetConnectTimeout"),
        (Some(11.0), "TargetResponseTimeout"),
        (None, "TargetResponseTimeout"),
    ] {
        let line = L::ok(at(100.0), T[0]).status(504, None).times(FAIL).took(took);
        let r = analyse(&alb_log(&[line]));
        let got: Vec<(&str, bool)> = r.causes.iter().map(|c| (c.cause.as_str(), c.inferred)).collect();
        assert_eq!(got, [(cause, true)], "took {took:?}");
    }
}
