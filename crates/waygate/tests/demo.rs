//! `waygate demo` end to end, as a newcomer meets it: every command it prints is run as printed (real curl,
//! the real binary) and every promise printed beside it is checked against what really happens: status codes,
//! Proxy-Status causes, log lines, timings, cut bodies, the health-check remark, the alert rule firing where the
//! banner says it shows, the doctor commands, and the clean-up on exit. A taken port is an error naming the flag,
//! printed before anything else.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use waygate_faults::Cause;

/// One printed command and the promise printed beside it.
#[derive(Debug, Clone)]
struct Entry {
    command: String,
    expect: String,
}

/// The `command  # expectation` entries of the banner (a long command has its expectation on the next line).
fn entries(banner: &str) -> Vec<Entry> {
    let lines: Vec<&str> = banner.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !line.starts_with("  ") || !(trimmed.starts_with("curl ") || trimmed.starts_with("waygate ")) {
            continue;
        }
        let (command, expect) = match trimmed.split_once("  # ") {
            Some((c, e)) => (c.trim(), e.trim()),
            None => {
                let next = lines.get(i + 1).map_or("", |l| l.trim_start());
                let e = next.strip_prefix("# ").unwrap_or_else(|| panic!("no expectation for {line:?}"));
                (trimmed.trim(), e.trim())
            }
        };
        out.push(Entry { command: command.to_owned(), expect: expect.to_owned() });
    }
    out
}

/// Runs a printed command through sh (`waygate` is this build's binary), bounded; returns its output and how
/// long it took.
fn run_printed(command: &str) -> (Output, Duration) {
    let command = match command.strip_prefix("waygate ") {
        Some(rest) => format!("{} {rest}", bin()),
        None => command.to_owned(),
    };
    let started = Instant::now();
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {command}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let deadline = started + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20)); // polling the exit status, with a deadline
    }
    (child.wait_with_output().expect("output"), started.elapsed())
}

/// The responses in curl -i output: (status, head, body), in order.
fn responses(text: &str) -> Vec<(u16, String, String)> {
    // curl -i writes `HTTP/1.1 200 OK` or, over HTTP/2, `HTTP/2 200`.
    let next = |s: &str| ["HTTP/1.1 ", "HTTP/2 "].iter().filter_map(|p| s.find(p).map(|i| (i, p.len()))).min();
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((start, len)) = next(rest) {
        rest = &rest[start..];
        let status = rest[len..len + 3].parse().expect("status code");
        let head_end = rest.find("\r\n\r\n").map_or(rest.len(), |i| i + 4);
        let head = rest[..head_end].to_owned();
        rest = &rest[head_end..];
        let body_end = next(rest).map_or(rest.len(), |(i, _)| i);
        out.push((status, head, rest[..body_end].to_owned()));
        rest = &rest[body_end..];
    }
    out
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The status codes a promise starts with (`200 200: ...`, `502 Cause`, `200, then ...`).
fn promised_statuses(expect: &str) -> Vec<u16> {
    expect
        .split([' ', ',', ':', ';'])
        .filter(|w| !w.is_empty())
        .map_while(|w| w.parse::<u16>().ok().filter(|_| w.len() == 3))
        .collect()
}

/// Causes a promise names, in the catalogue's spelling.
fn promised_causes(expect: &str) -> Vec<String> {
    let words: Vec<&str> = expect.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    Cause::ALL.iter().map(|c| c.to_string()).filter(|name| words.contains(&name.as_str())).collect()
}

/// A number of seconds in a promise's "after ... (Ns" clause: the least time the answer takes.
fn promised_delay(expect: &str) -> Option<Duration> {
    let after = expect.split_once(" after ")?.1;
    let secs = after.split_once('(')?.1.split_once("s")?.0;
    secs.parse().ok().map(Duration::from_secs)
}

/// Checks one curl entry's promise against the curl run; returns the request ids the gateway answered.
fn check_curl(gw: &Proc, entry: &Entry, out: &Output, took: Duration) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!("{}\n  # {}\n{stdout}{}", entry.command, entry.expect, String::from_utf8_lossy(&out.stderr));
    let resp = responses(&stdout);
    let statuses: Vec<u16> = resp.iter().map(|r| r.0).collect();
    let promised = promised_statuses(&entry.expect);
    assert!(!promised.is_empty(), "every curl promise starts with its status codes: {ctx}");
    assert_eq!(statuses, promised, "statuses: {ctx}");
    let ids: Vec<String> = resp.iter().filter_map(|r| header(&r.1, "x-request-id").map(str::to_owned)).collect();
    assert_eq!(ids.len(), resp.len(), "every response has x-request-id: {ctx}");
    let last = resp.last().expect("a response");
    for cause in promised_causes(&entry.expect) {
        if entry.expect.contains(&format!("{cause} in the log")) {
            // The status went out before the failure: the cause is the system log's, for that request.
            gw.wait_line(&[&format!("cause={cause}"), &ids[ids.len() - 1]]);
        } else if entry.expect.contains("WARN line logs the lost attempt") {
            // The second GET's lost attempt; the same request then succeeded on a fresh connection.
            let line = gw.wait_line(&[&format!("cause={cause}"), " WARN ", "reused=true", &ids[1]]);
            assert!(line.contains("use_count=2"), "{line}\n{ctx}");
        } else {
            let ps = header(&last.1, "proxy-status").unwrap_or_else(|| panic!("no Proxy-Status: {ctx}"));
            assert!(ps.contains(&format!("details=\"{cause}\"")), "Proxy-Status names {cause}: {ctx}");
        }
    }
    if let Some(code) = entry.expect.split("grpc-status ").nth(1).and_then(|r| r.split(' ').next())
        && entry.expect.contains(&format!("grpc-status {code} ("))
    {
        assert_eq!(header(&last.1, "grpc-status"), Some(code), "the gRPC status promised: {ctx}");
    }
    if entry.expect.contains("no Proxy-Status") {
        assert!(header(&last.1, "proxy-status").is_none(), "{ctx}");
    }
    if entry.expect.contains(" after ") && entry.expect.contains("timeout (") {
        assert!(promised_delay(&entry.expect).is_some(), "a delay this test can read (whole seconds): {ctx}");
    }
    if let Some(delay) = promised_delay(&entry.expect) {
        assert!(took >= delay, "answered after {took:?}, promised after {delay:?}: {ctx}");
    }
    if entry.expect.contains("cut after 100 of 1000 bytes (curl: error 18)") {
        assert_eq!(out.status.code(), Some(18), "{ctx}");
        assert_eq!(last.2.len(), 100, "{ctx}");
    }
    if entry.expect.contains("100 of 1000 body bytes and silence") {
        assert_ne!(out.status.code(), Some(0), "curl saw the body cut: {ctx}");
        assert_eq!(last.2.len(), 100, "{ctx}");
    }
    if entry.expect.contains("is not replayed") {
        let post_id = &ids[ids.len() - 1];
        let attempts = gw.log().lines().filter(|l| l.contains(post_id.as_str()) && l.contains("attempt=")).count();
        assert_eq!(attempts, 1, "one attempt for the POST, no replay: {ctx}\n{}", gw.log());
    }
    ids
}

/// GET on the admin API, parsed as JSON.
fn admin_json(admin: &str, path: &str) -> serde_json::Value {
    let out = Command::new("curl").args(["-s", &format!("{admin}{path}")]).output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn group_target(groups: &serde_json::Value, name: &str) -> serde_json::Value {
    let group = groups["target_groups"].as_array().unwrap().iter().find(|g| g["name"] == name).cloned();
    group.unwrap_or_else(|| panic!("no group {name}"))["targets"][0].clone()
}

/// Polls the admin API until `ok` holds for group `name`'s target (bounded).
fn wait_target(admin: &str, name: &str, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = group_target(&admin_json(admin, "/api/v1/target-groups"), name);
        if ok(&target) {
            return target;
        }
        assert!(Instant::now() < deadline, "{name}: {what} never held: {target}");
        std::thread::sleep(Duration::from_millis(200)); // polling the admin API, with a deadline
    }
}

fn field_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let rest = &text[text.find(prefix).unwrap_or_else(|| panic!("no {prefix:?} in {text}")) + prefix.len()..];
    rest.split_whitespace().next().unwrap_or("")
}

/// The health-check remark: the groups it says pass their checks do, `refuse` turns unhealthy, and its
/// requests still answer 502 TargetConnectionRefused (fail open).
fn check_health_remark(banner: &str, admin: &str, refuse: &Entry) {
    let text = banner.replace('\n', " ");
    let list = text.split_once("pass on ").expect("the remark").1.split_once(", whose").unwrap().0;
    let passing: Vec<&str> = list.split([',', ' ']).filter(|w| !w.is_empty() && *w != "and").collect();
    assert_eq!(passing.len(), 2, "{list}");
    for name in passing {
        wait_target(admin, name, "last_check Passed", |t| t["last_check"] == "Passed");
    }
    assert!(text.contains("refuse turns unhealthy after two failed checks"), "{text}");
    wait_target(admin, "refuse", "state unhealthy", |t| t["state"] == "unhealthy");
    let (out, _) = run_printed(&refuse.command);
    let resp = responses(&String::from_utf8_lossy(&out.stdout));
    let (status, head, _) = &resp[0];
    assert_eq!(*status, 502, "fails open: {head}");
    assert!(header(head, "proxy-status").unwrap().contains("TargetConnectionRefused"), "{head}");
}

fn check_then(gw: &Proc, entry: &Entry, causes_seen: &[String]) {
    let ctx = format!("{}\n  # {}", entry.command, entry.expect);
    if entry.command.starts_with("waygate doctor logs ") {
        // The access log is written off the request path: poll until the last request's line is in.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (out, _) = run_printed(&entry.command);
            let text = String::from_utf8_lossy(&out.stdout);
            let missing: Vec<&String> = causes_seen.iter().filter(|c| !text.contains(c.as_str())).collect();
            if out.status.success() && missing.is_empty() {
                assert!(text.contains("What to do"), "with remediation: {text}");
                return;
            }
            assert!(Instant::now() < deadline, "{ctx}: missing {missing:?} in\n{text}");
            std::thread::sleep(Duration::from_millis(200)); // polling the log writer's output, with a deadline
        }
    }
    if entry.command.contains("/api/v1/target-groups") {
        let (out, _) = run_printed(&entry.command);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let target = group_target(&v, "refuse");
        for key in ["state", "reason", "last_check", "keepalive"] {
            assert!(target.get(key).is_some(), "{key} in {target}: {ctx}");
        }
        return;
    }
    if entry.command.ends_with("/metrics") {
        let (out, _) = run_printed(&entry.command);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().any(|l| l.starts_with("waygate_elb_responses_total{") && l.contains("cause=")), "{ctx}");
        let firing = format!("waygate_alert_firing{{alert=\"{ALERT}\"}} ");
        assert!(entry.expect.contains("waygate_alert_firing by alert") && text.contains(&firing), "{ctx}");
        return;
    }
    if entry.command.ends_with("/api/v1/alerts") {
        check_alert_fired(gw, entry, &[]);
        return;
    }
    if entry.command.starts_with("waygate explain ") {
        let (out, _) = run_printed(&entry.command);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{ctx}\n{text}{}", String::from_utf8_lossy(&out.stderr));
        let cause = Cause::TargetConnectionRefused;
        for want in ["Timeline: ", "✗ FAILED HERE", &format!("Cause: {cause}"), "errno ECONNREFUSED", " 502 "] {
            assert!(text.contains(want), "no {want:?} in:\n{text}\n{ctx}");
        }
        assert!(entry.expect.contains(&cause.to_string()), "{ctx}");
        return;
    }
    if entry.command.ends_with("/dashboard") {
        let (out, _) = run_printed(&entry.command);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("<title>waygate dashboard</title>"), "{ctx}\n{text}");
        return;
    }
    if entry.command.starts_with("waygate doctor probe ") {
        let (out, _) = run_printed(&entry.command);
        let text = String::from_utf8_lossy(&out.stdout);
        if entry.expect.contains("keep-alive measured: about 2s") {
            assert!(text.contains("target closed the idle connection after 2."), "{ctx}\n{text}");
        } else {
            let causes = promised_causes(&entry.expect);
            assert_eq!(causes.len(), 1, "{ctx}");
            assert!(text.contains(&format!("{} (", causes[0])), "{ctx}\n{text}");
        }
        return;
    }
    panic!("a printed command the test does not check: {ctx}\n{}", gw.stdout());
}

/// The demo's alert rule, as its banner promises.
const ALERT: &str = "demo-refused";

/// The rule `demo-refused` in the printed `/api/v1/alerts` command's answer, if it is listed.
fn alert_rule(alerts: &Entry) -> Option<serde_json::Value> {
    let (out, _) = run_printed(&alerts.command);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["alerts"].as_array().expect("alerts").iter().find(|r| r["name"] == ALERT).cloned()
}

/// The admin API's base URL in a printed `curl -s ADMIN/api/v1/...` command.
fn admin_of(command: &str) -> &str {
    let url = command.rsplit(' ').next().unwrap();
    &url[..url.find("/api/").unwrap()]
}

/// After the printed command that makes it fire: `demo-refused` goes firing in the printed `/api/v1/alerts`
/// command's answer, with its evidence (the ids `fired` of those requests among its request ids, when given),
/// and shows where the banner says: `waygate_alert_firing`, the WARN line, the dashboard's summary, and each of
/// its request ids on the ERROR line that explains that request.
fn check_alert_fired(gw: &Proc, alerts: &Entry, fired: &[String]) -> serde_json::Value {
    let ctx = format!("{}\n  # {}", alerts.command, alerts.expect);
    assert!(alerts.expect.starts_with(&format!("{ALERT} \"state\": \"firing\"")), "{ctx}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let rule = loop {
        let rule = alert_rule(alerts).unwrap_or_else(|| panic!("no rule {ALERT}: {ctx}"));
        if rule["state"] == "firing" {
            break rule;
        }
        assert!(Instant::now() < deadline, "{ALERT} never fired: {rule}\n{ctx}");
        std::thread::sleep(Duration::from_millis(200)); // polling the admin API, with a deadline
    };
    let cause = Cause::TargetConnectionRefused;
    assert_eq!(rule["when"], serde_json::json!({ "cause": [cause.to_string()] }), "{rule}");
    assert_eq!((rule["threshold"].as_f64(), rule["window"].as_str()), (Some(3.0), Some("60s")), "{rule}");
    assert!(rule["value"].as_f64().unwrap() >= 3.0, "{rule}");
    let causes = rule["causes"].as_object().unwrap();
    assert!(causes.len() == 1 && causes[&cause.to_string()].as_u64().unwrap() >= 3, "{rule}");
    assert_eq!(rule["remediation"], cause.remediation(), "{rule}");
    let ids: Vec<&str> = rule["request_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!ids.is_empty(), "{rule}");
    for id in fired {
        assert!(ids.contains(&id.as_str()), "{id} of the printed curl is among the request ids: {rule}");
    }

    let admin = admin_of(&alerts.command);
    let metric = format!("waygate_alert_firing{{alert=\"{ALERT}\"}} 1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (out, _) = run_printed(&format!("curl -s {admin}/metrics"));
        if String::from_utf8_lossy(&out.stdout).lines().any(|l| l == metric) {
            break;
        }
        assert!(Instant::now() < deadline, "no {metric} on /metrics");
        std::thread::sleep(Duration::from_millis(200)); // polling the admin API, with a deadline
    }
    let line = gw.wait_line(&[
        "waygate::alert",
        &format!("waygate alert {ALERT} firing: value "),
        "(threshold 3, window 60s); causes: TargetConnectionRefused ",
    ]);
    assert!(line.contains(" WARN "), "{line}");
    // The dashboard's banner reads FIRING: <names> from the summary's alerts.
    let summary = admin_json(admin, "/api/v1/summary");
    let listed = summary["alerts"].as_array().unwrap().iter().find(|r| r["name"] == ALERT).cloned();
    assert_eq!(listed.map(|r| r["state"].clone()), Some("firing".into()), "{summary}");
    for id in ids {
        gw.wait_line(&[" ERROR ", &format!("request_id={id}"), &format!("cause={cause}")]);
    }
    rule
}

/// Text with every run of whitespace made one space: the banner wraps lines at a width the port numbers change.
fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A running demo whose banner is printed.
struct Demo {
    gw: Proc,
    /// Its TMPDIR: a directory of the test's own, so what the demo leaves in it is the demo's, not an earlier
    /// process's.
    tmp: PathBuf,
    banner: String,
    /// The gateway's and the admin API's base URLs, as printed.
    base: String,
    admin: String,
}

/// Starts `waygate demo` on ports the kernel picks and waits for its banner; `None` where `test` cannot run.
fn start_demo(test: &str) -> Option<Demo> {
    if cannot_run(test, "the printed commands are curl commands", &["curl"]) {
        return None;
    }
    let tmp = tempdir(test);
    let gw = Proc::start_args_env(&["demo", "--port", "0", "--admin-port", "0"], &[("TMPDIR", &tmp)]);
    gw.wait_stdout(&["Stop with Ctrl-C"]);
    let banner = gw.stdout();
    let base = field_after(&banner, "gateway on ").trim_end_matches(',').to_owned();
    let admin = field_after(&banner, "admin API on ").to_owned();
    Some(Demo { gw, tmp, banner, base, admin })
}

#[test]
fn demo_keeps_every_printed_promise() {
    let Some(Demo { mut gw, tmp, banner, base, admin }) = start_demo("demo_keeps_every_printed_promise") else {
        return;
    };
    // The printed URLs are the bound sockets (port 0: the kernel's choice), not the flags' values.
    assert_eq!(base, format!("http://{}", gw.listener("demo")), "{banner}");
    assert_eq!(admin, format!("http://{}", gw.admin()), "{banner}");
    let dir = PathBuf::from(field_after(&banner, "configuration: ")).parent().unwrap().to_owned();
    assert!(dir.starts_with(&tmp), "the demo's directory is under TMPDIR: {}", dir.display());
    assert!(dir.join("ca.pem").exists() && dir.join("waygate.toml").exists());
    let keys: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "key"))
        .collect();
    assert!(keys.is_empty(), "no private key on disk: {keys:?}");

    let all = entries(&banner);
    let (tries, then): (Vec<Entry>, Vec<Entry>) =
        all.into_iter().partition(|e| e.command.starts_with("curl ") && e.command.contains(&format!("{base}/")));
    assert!(tries.len() >= 20 && then.len() >= 4, "{banner}");
    // The curl commands run concurrently (the slow ones take seconds), except the keep-alive race's: those share
    // one target's pooled connections, so they run one after the other. Each is checked against its promise.
    let (race, others): (Vec<&Entry>, Vec<&Entry>) = tries.iter().partition(|e| e.command.contains("keepalive-race"));
    let run = |e: &Entry| {
        let (out, took) = run_printed(&e.command);
        (e.clone(), out, took)
    };
    let results: Vec<(Entry, Output, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = others.into_iter().map(|e| s.spawn(move || run(e))).collect();
        let mut results: Vec<_> = race.into_iter().map(run).collect();
        results.extend(handles.into_iter().map(|h| h.join().unwrap()));
        results
    });
    let mut causes_seen = Vec::new();
    for (entry, out, took) in &results {
        check_curl(&gw, entry, out, *took);
        if !entry.expect.contains("WARN line logs the lost attempt") {
            causes_seen.extend(promised_causes(&entry.expect));
        }
        if entry.command.ends_with(&format!("{base}/")) {
            // Round robin: a second request reaches the other backend.
            let first = &responses(&String::from_utf8_lossy(&out.stdout))[0].2;
            let (again, _) = run_printed(&entry.command);
            let second = &responses(&String::from_utf8_lossy(&again.stdout))[0].2;
            let backends = [first, second].map(|b| b.contains("app-1") as u8 + 2 * b.contains("app-2") as u8);
            assert!(backends == [1, 2] || backends == [2, 1], "app-1, then app-2: {first:?} {second:?}");
        }
        if entry.expect.contains("a WARN line says its keep-alive is shorter than pool_idle_timeout") {
            let target = wait_target(&admin, "keepalive-closer", "a keep-alive warning", |t| {
                t["keepalive"]["warning"].as_str().is_some_and(|w| w.contains("shorter than pool_idle_timeout"))
            });
            let addr = target["address"].as_str().unwrap();
            gw.wait_line(&["WARN", "shorter than pool_idle_timeout", &format!("target_addr={addr}")]);
        }
    }
    check_health_remark(&banner, &admin, tries.iter().find(|e| e.command.ends_with("/fault/refuse")).unwrap());
    let fire = tries.iter().find(|e| e.command.contains("/fault/refuse?n=[1-3]")).expect("the command that fires it");
    for entry in &then {
        if entry.command.ends_with("/api/v1/alerts") {
            // Fired again just before: the refusals of the first pass may have left the rule's one-minute window
            // while the checks above ran on a slow machine.
            run_printed(&fire.command);
        }
        check_then(&gw, entry, &causes_seen);
    }

    gw.signal("INT");
    assert_eq!(gw.wait_exit(), 0, "{}", gw.log());
    assert!(!dir.join("ca.pem").exists() && !dir.join("waygate.toml").exists(), "certificate and config removed");
    assert!(std::fs::read_dir(dir.join("logs")).unwrap().count() > 0, "the access log stays");
    gw.wait_line(&["access log stays in", &dir.join("logs").display().to_string()]);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The demo's one alert rule: listed and quiet at the start, then firing after the printed curl that makes it
/// fire, in every place the banner names. Without the rule in the demo's configuration, this fails at once.
#[test]
fn demo_alert_fires_on_the_refused_route() {
    let Some(Demo { mut gw, tmp, banner, base, admin }) = start_demo("demo_alert_fires_on_the_refused_route") else {
        return;
    };
    let text = banner.replace('\n', " ");
    assert!(text.contains(&format!("the dashboard ({admin}/dashboard) heads with FIRING: {ALERT}")), "{banner}");
    // README quotes the block with the default ports: it is the demo's own.
    let block = banner.split_once("\nAlert: ").expect("the alert block").1.split_once("\n\nThen:").unwrap().0;
    let block = block
        .replace(&format!("{base}/"), "http://127.0.0.1:8080/")
        .replace(&format!("{admin}/"), "http://127.0.0.1:9901/")
        .replace(&format!("--admin {admin}"), "--admin http://127.0.0.1:9901");
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join("README.md")).unwrap();
    let excerpt =
        readme.split_once("\nAlert: ").expect("README quotes the alert block").1.split_once("\n```").unwrap().0;
    assert_eq!(normalized(excerpt), normalized(&block), "README's excerpt of the banner");
    let all = entries(&banner);
    let fire = all.iter().find(|e| e.command.contains("/fault/refuse?n=[1-3]")).expect("the command that fires it");
    let alerts = all.iter().find(|e| e.command == format!("curl -s {admin}/api/v1/alerts")).expect("the alerts API");

    let before = alert_rule(alerts).unwrap_or_else(|| panic!("the demo has the rule {ALERT}: {banner}"));
    assert_eq!(before["state"], "ok", "nothing failed yet: {before}");
    let (out, took) = run_printed(&fire.command);
    let ids = check_curl(&gw, fire, &out, took);
    assert_eq!(ids.len(), 3, "three requests");
    let rule = check_alert_fired(&gw, alerts, &ids);
    // Those three requests alone fired it, as README shows.
    assert_eq!(rule["causes"], serde_json::json!({ "TargetConnectionRefused": 3 }), "{rule}");
    gw.wait_line(&[&format!(
        " WARN waygate::alert: waygate alert {ALERT} firing: value 3 (threshold 3, window 60s); causes: \
         TargetConnectionRefused 3; "
    )]);

    gw.signal("INT");
    assert_eq!(gw.wait_exit(), 0, "{}", gw.log());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `waygate demo` with `port_flag` set to a port something else holds: exit 1 before printing anything, an
/// error naming the flag, and no demo directory left behind.
fn taken_port_is_named(port_flag: &str, other_flag: &str) {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let tmp = tempdir("demo-taken-tmp");
    let mut child = Command::new(bin())
        .args(["demo", port_flag, &port, other_flag, "0"])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "demo on a taken port did not exit");
        std::thread::sleep(Duration::from_millis(20)); // polling the exit status, with a deadline
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed before the ports are bound: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("in use"), "{stderr}");
    assert!(stderr.contains(&format!("{port_flag} N")) && stderr.contains(&format!("{port_flag} 0")), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "a failed start removes its directory (demo pid {pid}): {left:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn demo_on_a_taken_gateway_port_names_port() {
    taken_port_is_named("--port", "--admin-port");
}

#[test]
fn demo_on_a_taken_admin_port_names_admin_port() {
    taken_port_is_named("--admin-port", "--port");
}
