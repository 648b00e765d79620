//! Alerts end to end: `waygate run` in front of a fault-lab target that refuses connections, a real HTTP
//! webhook receiver on loopback, and the admin API. The rule fires on real failures (system-log line,
//! `waygate_alert_firing`, webhook with the evidence), the receiver's failures are retried, the rule resolves
//! when the window slides past them, and a receiver that is down costs dropped (counted) events, nothing else.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use waygate_faultlab::{Backend, Fault};
use waygate_faults::Cause;

/// What the receiver got: the status it answered and the JSON body.
type Got = Arc<(Mutex<Vec<(u16, Value)>>, Condvar)>;

/// A webhook receiver: answers 503 to the first `fail_first` POSTs, 200 after.
fn receiver(fail_first: usize) -> (SocketAddr, Got) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Got = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let mut reader = BufReader::new(tcp.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let (lock, changed) = &*sink;
            let mut got = lock.lock().unwrap();
            let status = if got.len() < fail_first { 503 } else { 200 };
            got.push((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            changed.notify_all();
            drop(got);
            let _ = write!(tcp, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

/// Waits (bounded) until the receiver has `n` deliveries; returns them.
fn deliveries(got: &Got, n: usize) -> Vec<(u16, Value)> {
    let deadline = Instant::now() + DEADLINE;
    let (lock, changed) = &**got;
    let mut list = lock.lock().unwrap();
    while list.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the receiver got {} deliveries, not {n}: {list:?}", list.len());
        list = changed.wait_timeout(list, left).unwrap().0;
    }
    list.clone()
}

/// Polls the admin API (bounded) until `path`'s body contains every fragment.
fn admin_until(admin: SocketAddr, path: &str, fragments: &[&str]) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = http_get(admin, path);
        if fragments.iter().all(|f| text.contains(f)) {
            return text;
        }
        assert!(Instant::now() < deadline, "{path} never had {fragments:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50)); // polling the API, with a deadline
    }
}

fn json_body(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}

fn write_config(dir: &std::path::Path, refused: SocketAddr, ok: SocketAddr, alerts: &str) -> std::path::PathBuf {
    let path = dir.join("waygate.toml");
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"ok\"\n[[listener.rule]]\npriority = 1\npath = \"/broken*\"\ntarget_group = \"broken\"\n\
         [[target_group]]\nname = \"broken\"\nretries = 0\ntargets = [\"{refused}\"]\n\
         [target_group.health_check]\nenabled = false\n\
         [[target_group]]\nname = \"ok\"\ntargets = [\"{ok}\"]\n{alerts}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_alert_fires_on_real_failures_retries_its_webhook_and_resolves() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let (hook, got) = receiver(2);
    let alerts = format!(
        "[[alert]]\nname = \"refused\"\nwhen = {{ cause = [\"TargetConnectionRefused\"], target_group = \"broken\" }}\n\
         threshold = 3\nwindow = \"2s\"\nwebhook = \"http://{hook}/hook\"\nwebhook_retries = 3\n\
         [[alert]]\nname = \"quiet\"\nwhen = {{ cause = \"NoRoute\" }}\nthreshold = 1\n"
    );
    let dir = tempdir("alerts");
    let gw = Proc::start(&write_config(&dir, refused.addr(), ok.addr(), &alerts));
    let (addr, admin) = (gw.listener("public"), gw.admin());

    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp = http_get(addr, "/broken");
        assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
        ids.push(request_id(&resp));
        assert!(http_get(addr, "/").starts_with("HTTP/1.1 200"));
    }

    // Fired: two attempts the receiver refused, then the delivery it accepted, all with the same body.
    let firing = deliveries(&got, 3);
    assert_eq!(firing.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [503, 503, 200]);
    assert!(firing.iter().all(|(_, body)| *body == firing[2].1), "a retry resends the same event: {firing:?}");
    let body = &firing[2].1;
    assert_eq!(body["alert"], "refused");
    assert_eq!(body["state"], "firing");
    assert_eq!((body["value"].as_f64(), body["threshold"].as_f64()), (Some(3.0), Some(3.0)));
    assert_eq!(body["window"], "2s");
    assert_eq!(body["causes"], serde_json::json!({ "TargetConnectionRefused": 3 }));
    let mut sent: Vec<String> =
        body["request_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    sent.sort();
    ids.sort();
    assert_eq!(sent, ids, "the ids of the failing requests, for `waygate explain`");
    assert_eq!(body["remediation"], Cause::TargetConnectionRefused.remediation());
    assert_eq!(body["runbook"], Value::Null);

    let line = gw.wait_line(&["waygate::alert", "waygate alert refused firing", "causes: TargetConnectionRefused 3"]);
    assert!(line.contains("WARN") && line.contains("explain: waygate explain Root=1-"), "{line}");
    let metrics = admin_until(
        admin,
        "/metrics",
        &["waygate_alert_webhooks_delivered_total 1", "waygate_alert_webhook_retries_total 2"],
    );
    assert!(metrics.contains("waygate_alert_firing{alert=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("waygate_alert_firing{alert=\"quiet\"} 0"), "{metrics}");
    assert!(metrics.contains("waygate_alert_webhook_dropped_total 0"), "{metrics}");

    let api = json_body(&http_get(admin, "/api/v1/alerts"));
    let rules = api["alerts"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{api}");
    let (rule, quiet) = (&rules[0], &rules[1]);
    assert_eq!((rule["name"].as_str(), quiet["name"].as_str()), (Some("refused"), Some("quiet")));
    assert_eq!(quiet["state"], "ok");
    // The window may already be sliding: state is still firing (hysteresis) until below 1.5.
    if rule["state"] == "firing" {
        assert!(
            rule["request_ids"].as_array().unwrap().iter().any(|id| ids.contains(&id.as_str().unwrap().to_owned()))
        );
        assert!(rule["explain"].as_str().unwrap().starts_with("waygate explain Root=1-"), "{rule}");
    }
    assert_eq!(rule["when"], serde_json::json!({ "cause": ["TargetConnectionRefused"], "target_group": "broken" }));

    // No more failures: the window slides past them and the rule resolves.
    let all = deliveries(&got, 4);
    let resolved = &all[3].1;
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert!(resolved["value"].as_f64().unwrap() < 1.5, "{resolved}");
    gw.wait_line(&["waygate::alert", "waygate alert refused resolved"]);
    admin_until(admin, "/metrics", &["waygate_alert_firing{alert=\"refused\"} 0"]);
    drop(rt);
}

#[test]
fn a_webhook_that_is_down_is_retried_then_dropped_and_counted() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    // A port nothing listens on: every delivery attempt is refused.
    let down = TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    let alerts = format!(
        "[[alert]]\nname = \"refused\"\nwhen = {{ target_group = \"broken\" }}\nthreshold = 1\nwindow = \"1m\"\n\
         webhook = \"http://{down}/hook\"\nwebhook_retries = 1\nwebhook_timeout = \"1s\"\n"
    );
    let dir = tempdir("alerts-down");
    let gw = Proc::start(&write_config(&dir, refused.addr(), ok.addr(), &alerts));
    let (addr, admin) = (gw.listener("public"), gw.admin());
    assert!(http_get(addr, "/broken").starts_with("HTTP/1.1 502"));
    admin_until(admin, "/metrics", &["waygate_alert_webhook_dropped_total 1", "waygate_alert_webhook_retries_total 1"]);
    let line = gw.wait_line(&["waygate::alert", "alert webhook failed on every attempt"]);
    assert!(line.contains("ERROR") && line.contains("connect") && line.contains("attempts=2"), "{line}");
    // The gateway serves on, alert firing, while its receiver is down.
    assert!(http_get(addr, "/").starts_with("HTTP/1.1 200"));
    let metrics = http_get(admin, "/metrics");
    assert!(metrics.contains("waygate_alert_firing{alert=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("waygate_alert_webhooks_delivered_total 0"), "{metrics}");
    drop(rt);
}

/// A reload installs the new file's rules: added ones start counting, removed ones leave the API and /metrics.
#[test]
fn a_reload_changes_the_rules() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("alerts-reload");
    let first = "[[alert]]\nname = \"old\"\nthreshold = 100\n";
    let path = write_config(&dir, refused.addr(), ok.addr(), first);
    let gw = Proc::start(&path);
    let (addr, admin) = (gw.listener("public"), gw.admin());
    admin_until(admin, "/metrics", &["waygate_alert_firing{alert=\"old\"} 0"]);
    write_config(
        &dir,
        refused.addr(),
        ok.addr(),
        "[[alert]]\nname = \"new\"\nwhen = { target_group = \"broken\" }\nthreshold = 1\n",
    );
    gw.signal("HUP");
    admin_until(admin, "/api/v1/alerts", &["\"name\": \"new\""]);
    assert!(http_get(addr, "/broken").starts_with("HTTP/1.1 502"));
    let metrics = admin_until(admin, "/metrics", &["waygate_alert_firing{alert=\"new\"} 1"]);
    assert!(!metrics.contains("alert=\"old\""), "{metrics}");
    assert!(!http_get(admin, "/api/v1/alerts").contains("\"old\""));
    drop(rt);
}

/// An https receiver: delivered when its CA is the rule's `webhook_ca`, refused (and counted) when the system's
/// roots do not know it.
#[test]
fn https_webhooks_verify_the_receiver() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let pki = waygate_faultlab::TestPki::shared();
    let receiver = rt.block_on(Backend::new("hook").tls(pki.valid()).spawn(loopback())).unwrap();
    let dir = tempdir("alerts-https");
    let files = pki.write_files(&dir.join("pki")).unwrap();
    let port = receiver.addr().port();
    let alerts = format!(
        "[[alert]]\nname = \"trusted\"\nwhen = {{ target_group = \"broken\" }}\nthreshold = 1\n\
         webhook = \"https://localhost:{port}/hook\"\nwebhook_ca = \"{}\"\nwebhook_retries = 0\n\
         [[alert]]\nname = \"untrusted\"\nwhen = {{ target_group = \"broken\" }}\nthreshold = 1\n\
         webhook = \"https://localhost:{port}/hook\"\nwebhook_retries = 0\n",
        files.ca.display()
    );
    let gw = Proc::start(&write_config(&dir, refused.addr(), ok.addr(), &alerts));
    let (addr, admin) = (gw.listener("public"), gw.admin());
    assert!(http_get(addr, "/broken").starts_with("HTTP/1.1 502"));
    admin_until(
        admin,
        "/metrics",
        &["waygate_alert_webhooks_delivered_total 1", "waygate_alert_webhook_dropped_total 1"],
    );
    let line = gw.wait_line(&["waygate::alert", "alert=untrusted", "TLS handshake with localhost"]);
    assert!(line.contains("failed on every attempt"), "{line}");
    assert_eq!(receiver.stats().requests_served(), 1, "the trusted rule's event reached the receiver over TLS");
    drop(rt);
}

/// `webhook_format = "slack"`: the receiver gets Slack's `{"text": ...}` with the cause and where to look.
#[test]
fn slack_format_webhooks() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let (hook, got) = receiver(0);
    let alerts = format!(
        "[[alert]]\npreset = \"target-cause-spike\"\nthreshold = 1\nwebhook = \"http://{hook}/slack\"\nwebhook_format = \"slack\"\n"
    );
    let dir = tempdir("alerts-slack");
    let gw = Proc::start(&write_config(&dir, refused.addr(), ok.addr(), &alerts));
    let resp = http_get(gw.listener("public"), "/broken");
    let id = request_id(&resp);
    let body = &deliveries(&got, 1)[0].1;
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("waygate alert target-cause-spike firing: value 1 (threshold 1, window 60s)"), "{text}");
    assert!(text.contains("causes: TargetConnectionRefused 1"), "{text}");
    assert!(text.contains(&format!("explain: waygate explain {id}")), "{text}");
    assert!(text.contains("remediation: "), "{text}");
    drop(rt);
}
