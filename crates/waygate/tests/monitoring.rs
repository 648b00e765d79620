//! The monitoring pack (`monitoring/`): the Prometheus rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`); every expression of the Grafana dashboard parses (promtool checks it as a recording
//! rule); and every metric the rules and the dashboard name is one a live gateway's `/metrics` declares.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::{Backend, Fault};

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../monitoring")
}

/// promtool, or why the test cannot run (a failure under WAYGATE_TEST_REQUIRE_ALL: CI installs it).
fn promtool(test: &str) -> bool {
    if Command::new("sh").args(["-c", "command -v promtool"]).output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "{test} cannot run: promtool is not installed");
    println!("SKIPPED {test}: promtool is not installed (apt-get install prometheus)");
    false
}

fn run_promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).current_dir(dir).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The dashboard's expressions with Grafana's variables replaced by what Grafana would send.
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(pack().join("grafana/waygate-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_owned())
        .collect();
    assert!(exprs.len() >= 20, "{} expressions", exprs.len());
    exprs.iter().map(|e| e.replace("$__rate_interval", "5m").replace("$instance", ".*")).collect()
}

/// Every `waygate_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("waygate_") {
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        out.insert(name);
    }
    out
}

#[test]
fn prometheus_rules_check_and_pass_their_unit_tests() {
    if !promtool("prometheus_rules_check_and_pass_their_unit_tests") {
        return;
    }
    let dir = pack().join("prometheus");
    let checked = run_promtool(&dir, &["check", "rules", "waygate-rules.yml"]);
    assert!(checked.contains("SUCCESS: 12 rules found"), "{checked}");
    let tested = run_promtool(&dir, &["test", "rules", "waygate-rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn grafana_expressions_parse() {
    if !promtool("grafana_expressions_parse") {
        return;
    }
    let dir = tempdir("grafana-exprs");
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (i, e) in dashboard_exprs().iter().enumerate() {
        rules += &format!("      - record: grafana:expr_{i}\n        expr: {}\n", serde_json::to_string(e).unwrap());
    }
    std::fs::write(dir.join("exprs.yml"), rules).unwrap();
    run_promtool(&dir, &["check", "rules", "exprs.yml"]);
    // And a broken one is caught: the check is not vacuous.
    std::fs::write(
        dir.join("bad.yml"),
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(rate(x[5m])\n",
    )
    .unwrap();
    let out = Command::new("promtool").args(["check", "rules", "bad.yml"]).current_dir(&dir).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn every_metric_the_pack_names_is_on_a_live_gateway() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let tls_alert = rt.block_on(Fault::TlsAlert.spawn(loopback())).unwrap();
    let dir = tempdir("monitoring");
    let pki = waygate_faultlab::TestPki::shared().write_files(&dir.join("pki")).unwrap();
    let config = dir.join("waygate.toml");
    // One route per family a scrape shows only once it has a sample: target connection and TLS errors,
    // retries, client TLS errors, a desync classification.
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
             desync_mitigation = \"monitor\"\ndefault_target_group = \"ok\"\n\
             [[listener.rule]]\npriority = 1\npath = \"/broken\"\ntarget_group = \"broken\"\n\
             [[listener.rule]]\npriority = 2\npath = \"/tls\"\ntarget_group = \"tls\"\n\
             [[listener]]\nname = \"secure\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"ok\"\n\
             tls = {{ cert = \"{cert}\", key = \"{key}\" }}\n\
             [[target_group]]\nname = \"broken\"\nretries = 1\ntargets = [\"{refused}\"]\n\
             [[target_group]]\nname = \"tls\"\nprotocol = \"https\"\nretries = 0\ntargets = [\"{tls_alert}\"]\n\
             tls = {{ ca = \"{ca}\", sni = \"localhost\" }}\n\
             [[target_group]]\nname = \"ok\"\ntargets = [\"{ok}\"]\n[[alert]]\npreset = \"gateway-5xx-ratio\"\n",
            cert = pki.valid.cert.display(),
            key = pki.valid.key.display(),
            ca = pki.ca.display(),
            refused = refused.addr(),
            tls_alert = tls_alert.addr(),
            ok = ok.addr(),
        ),
    )
    .unwrap();
    let gw = Proc::start(&config);
    let (addr, admin, secure) = (gw.listener("public"), gw.admin(), gw.listener("secure"));
    for path in ["/", "/broken", "/tls"] {
        http_get(addr, path);
    }
    // Plain text on the TLS listener: a failed client handshake (the gateway may reset before the write ends).
    {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(secure).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let _ = tcp.read_to_end(&mut Vec::new());
    }
    // Two Content-Length headers: non-compliant, counted by classification (monitor mode forwards it).
    {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let _ = tcp.read_to_end(&mut Vec::new());
    }
    let rules = std::fs::read_to_string(pack().join("prometheus/waygate-rules.yml")).unwrap();
    let named: BTreeSet<String> =
        metric_names(&rules).into_iter().chain(dashboard_exprs().iter().flat_map(|e| metric_names(e))).collect();
    assert!(named.len() >= 15, "{named:?}");
    // Families no request here can produce: only a failed accept (EMFILE) rejects a connection, and function
    // (Lambda) targets are not served by this data plane yet (drop them from this list when they are).
    let unproducible = [
        "waygate_rejected_connections_total",
        "waygate_lambda_user_errors_total",
        "waygate_lambda_internal_errors_total",
    ];
    // Each counter appears with its first sample, some (a failed client handshake) a moment after the client
    // saw the connection end: scrape until every named family is there, with the deadline.
    let deadline = Instant::now() + DEADLINE;
    let (exposed, missing) = loop {
        let exposed = http_get(admin, "/metrics");
        let names = declared(&exposed);
        let missing: Vec<String> =
            named.iter().filter(|n| !names.contains(*n) && !unproducible.contains(&n.as_str())).cloned().collect();
        let alerts = names.contains("waygate_alert_firing") && names.contains("waygate_requests_total");
        if (missing.is_empty() && alerts) || Instant::now() > deadline {
            assert!(alerts, "{exposed}");
            break (exposed, missing);
        }
        std::thread::sleep(Duration::from_millis(50)); // polling the API, with a deadline
    };
    assert!(missing.is_empty(), "named by the pack but not on /metrics: {missing:?}\n{exposed}");
    drop(rt);
}

/// The metric names a scrape declares: each `# TYPE` family with its suffixes.
fn declared(exposed: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposed.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            match kind {
                "counter" => names.extend([format!("{family}_total")]),
                "histogram" => names.extend(["_bucket", "_count", "_sum"].map(|s| format!("{family}{s}"))),
                _ => names.extend([family.to_owned()]),
            }
        }
    }
    names
}
