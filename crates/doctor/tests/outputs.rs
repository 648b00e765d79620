//! The terminal and HTML renderings, and the command's exit codes.

mod common;

use std::path::PathBuf;

use clap::Parser;
use common::{L, alb_log, at};
use waygate_doctor::{LogsArgs, Options, analyze_bytes, run_logs, run_logs_to};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    logs: LogsArgs,
}

fn args(a: &[&str]) -> LogsArgs {
    Cli::try_parse_from(std::iter::once("doctor-logs").chain(a.iter().copied())).unwrap().logs
}

fn sample() -> String {
    let mut v: Vec<L> = (0..3000).map(|i| L::ok(at(f64::from(i) * 0.5), &format!("10.0.0.{}:80", i % 5))).collect();
    for i in 0..40 {
        v.push(
            L::ok(at(f64::from(i) * 30.0), &format!("10.0.0.{}:80", i % 5)).status(502, None).times(["-1", "-1", "-1"]),
        );
        v.push(L::ok(at(f64::from(i) * 31.0), "10.0.0.3:80").status(503, Some(503)));
    }
    v.push(L::ok(at(7.0), "x").no_target().status(502, None).reason("LambdaUnhandled"));
    alb_log(&v)
}

#[test]
fn terminal_report_has_the_tables() {
    let r = analyze_bytes(sample().as_bytes(), &Options::default());
    let t = waygate_doctor::term::render(&r);
    for needle in [
        "3081 requests",
        "5xx by status and source",
        "TargetConnectionFailed (inferred)",
        "TargetResponded5xx",
        "LambdaUnhandled",
        "What to do",
        "Targets with 5xx",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
}

#[test]
fn html_is_self_contained_with_charts() {
    let r = analyze_bytes(sample().as_bytes(), &Options::default());
    let h = waygate_doctor::html::render(&r);
    assert!(h.starts_with("<!doctype html>"));
    assert_eq!(h.matches("<svg").count(), 2, "by cause and by target");
    assert!(h.contains("Errors per minute by cause") && h.contains("5xx per minute by target"));
    assert!(h.contains("TargetConnectionFailed") && h.contains("10.0.0.3:80"));
    for external in ["<script", "src=", "href=", "@import", "url(", "<link"] {
        assert!(!h.contains(external), "{external} in a self-contained page");
    }
    // Escaped: a cause name is data from the log.
    let evil = L::ok(at(0.0), "10.0.0.1:80").status(502, None).reason("<script>alert(1)</script>").alb();
    let h = waygate_doctor::html::render(&analyze_bytes(evil.as_bytes(), &Options::default()));
    assert!(!h.contains("<script>") && h.contains("&lt;script&gt;"));
}

#[test]
fn long_spans_are_bucketed() {
    // Two days of one error per 10 minutes: 288 minutes with data over 2880, drawn as at most 240 bars.
    let v: Vec<L> = (0..288)
        .map(|i| L::ok(at(f64::from(i) * 600.0), "10.0.0.1:80").status(502, None).times(["-1", "-1", "-1"]))
        .collect();
    let h = waygate_doctor::html::render(&analyze_bytes(alb_log(&v).as_bytes(), &Options::default()));
    assert!(h.contains("(per 15 minutes)"), "2880 minutes / 15 = 192 bars");
    assert!(h.matches("<rect").count() <= 2 * waygate_doctor::html::MAX_BARS);
}

#[test]
fn exit_codes() {
    assert_eq!(run_logs(&args(&["/nonexistent/waygate-doctor-logs"])), 1);
    let d = common::tempdir("exit");
    let f = d.join("a.log");
    std::fs::write(&f, sample()).unwrap();
    let p = f.to_str().unwrap();
    assert_eq!(run_logs(&args(&[p, "--since", "yesterday"])), 1);
    assert_eq!(run_logs(&args(&[p, "--threads", "0"])), 1);
    assert_eq!(run_logs(&args(&[p, "--audit", "/nonexistent/audit.json"])), 1);
    let html = d.join("no-such-dir").join("r.html");
    assert_eq!(run_logs(&args(&[p, "--json", "--html", html.to_str().unwrap()])), 1);
    let html: PathBuf = d.join("r.html");
    let mut out = Vec::new();
    let a =
        args(&[p, "--json", "--since", "2024-05-01T10:10", "--target", "10.0.0.3", "--html", html.to_str().unwrap()]);
    assert_eq!(run_logs_to(&a, &mut out), 0);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["requests"], 360 + 4 + 20, "from 10:10 on 10.0.0.3: 200s, 502s, its own 503s");
    let mut out = Vec::new();
    assert_eq!(run_logs_to(&args(&[p]), &mut out), 0);
    assert!(String::from_utf8(out).unwrap().contains("Causes"));
    let _ = std::fs::remove_dir_all(&d);
}
