//! The `--json` schema is a contract (docs/doctor.md): this test pins every key at every level. Adding a
//! key means updating the docs and this list; removing or renaming one means a new `schema` version.

mod common;

use common::{L, alb_log, at};
use serde_json::Value;
use waygate_doctor::audit::Deregistration;
use waygate_doctor::{Options, SCHEMA, analyze_bytes};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

#[test]
fn json_keys_are_pinned() {
    let mut lines: Vec<L> = (0..100).map(|i| L::ok(at(f64::from(i)), &format!("10.0.0.{}:80", i % 4))).collect();
    for i in 0..12 {
        lines
            .push(L::ok(at(f64::from(i)), &format!("10.0.0.{}:80", i % 4)).status(502, None).times(["-1", "-1", "-1"]));
    }
    lines.push(L::ok(at(5.0), "10.0.0.1:80").status(500, Some(500)));
    let mut text = alb_log(&lines);
    text.push_str("garbage\n");
    let opts = Options {
        audit: vec![Deregistration { time: at(0.0), target: "10.0.0.1:80".into(), target_group: None, actor: None }],
        ..Options::default()
    };
    let v = serde_json::to_value(analyze_bytes(text.as_bytes(), &opts)).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(SCHEMA, "waygate.doctor.logs/1");
    assert_eq!(
        keys(&v),
        sorted(vec![
            "schema",
            "files",
            "bytes",
            "lines",
            "requests",
            "filtered_out",
            "first_seen",
            "last_seen",
            "elb_5xx",
            "target_5xx",
            "causes",
            "patterns",
            "targets",
            "malformed",
            "file_errors",
            "connection_logs",
            "classic",
        ])
    );
    assert_eq!(v["connection_logs"], serde_json::json!([]));
    assert_eq!(v["classic"], Value::Null);
    assert_eq!(v["requests"], 113);
    assert_eq!(v["elb_5xx"], serde_json::json!({"502": 12}));
    assert_eq!(v["target_5xx"], serde_json::json!({"500": 1}));
    let cause = &v["causes"][0];
    assert_eq!(
        keys(cause),
        sorted(vec![
            "cause",
            "source",
            "inferred",
            "inferred_from",
            "count",
            "statuses",
            "targets",
            "first_seen",
            "last_seen",
            "remediation",
            "timeline",
            "examples",
        ])
    );
    assert_eq!(
        keys(&cause["examples"][0]),
        sorted(vec![
            "time",
            "elb_status_code",
            "target",
            "request",
            "conn_trace_id",
            "connection",
            "connection_requests"
        ])
    );
    assert_eq!(cause["cause"], "TargetConnectionFailed");
    assert_eq!(cause["source"], "load_balancer");
    assert_eq!(cause["targets"]["10.0.0.1:80"], 3);
    assert_eq!(cause["timeline"]["2024-05-01T10:00Z"], 12);
    let pattern = &v["patterns"][0];
    assert_eq!(
        keys(pattern),
        sorted(vec!["kind", "summary", "count", "targets", "first_seen", "last_seen", "exact", "remediation"])
    );
    assert_eq!(
        keys(&v["targets"][0]),
        sorted(vec![
            "target",
            "requests",
            "elb_5xx",
            "target_5xx",
            "first_seen",
            "last_seen",
            "max_request_seconds",
            "timeline"
        ])
    );
    assert_eq!(keys(&v["malformed"]), sorted(vec!["count", "by_file", "examples"]));
    assert_eq!(keys(&v["malformed"]["examples"][0]), sorted(vec!["file", "line", "reason", "text"]));
    assert_eq!(v["malformed"]["examples"][0]["line"], 114);
    assert_eq!(v["malformed"]["examples"][0]["file"], "<input>");
}

/// The connection-log and Classic keys, from one line of each kind, and the keys of a linked example: an
/// access line and a connection-log line with the same `conn_trace_id`.
#[test]
fn connection_log_keys_are_pinned() {
    let mut access = L::ok(at(1.0), "10.0.0.1:80").status(502, None).times(["-1", "-1", "-1"]).alb();
    access = access.replace("TID_dc57cebed65b444ebc8177bb698fe166", "TID_2");
    let text = [
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 - - - - \
         Failed:UnmappedConnectionError TID_1",
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36281 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 - - - \
         Success TID_2",
        &access,
        r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 503 0 0 0 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
    ]
    .join("\n");
    let v = serde_json::to_value(analyze_bytes(text.as_bytes(), &Options::default())).unwrap();
    let c = &v["connection_logs"][0];
    assert_eq!(
        keys(c),
        sorted(vec!["kind", "connections", "failures", "first_seen", "last_seen", "reasons", "alerts", "listeners"])
    );
    assert_eq!(keys(&c["reasons"][0]), sorted(vec!["reason", "count", "advice", "examples"]));
    let detail = [
        "time",
        "client",
        "listener_port",
        "tls_protocol",
        "tls_cipher",
        "tls_handshake_latency",
        "client_cert_subject",
        "tls_verify_status",
        "conn_trace_id",
    ];
    let with_requests: Vec<&str> = detail.iter().copied().chain(["requests"]).collect();
    assert_eq!(keys(&c["reasons"][0]["examples"][0]), sorted(with_requests));
    let causes = v["causes"].as_array().unwrap();
    let linked = causes.iter().find(|c| c["cause"] == "TargetConnectionFailed").expect("the 502's cause");
    let example = &linked["examples"][0];
    assert_eq!(keys(&example["connection"]), sorted(detail.to_vec()), "{example}");
    assert_eq!(keys(&example["connection_requests"]), sorted(vec!["count", "elb_5xx", "first"]));
    assert_eq!(keys(&example["connection_requests"]["first"][0]), sorted(vec!["time", "elb_status_code", "request"]));
    assert_eq!(keys(&c["listeners"]["443"]), sorted(vec!["connections", "failures"]));
    assert_eq!(keys(&v["classic"]), sorted(vec!["requests", "elb_5xx", "backend_5xx"]));
}

#[test]
fn file_error_keys_are_pinned() {
    let d = common::tempdir("schema");
    let f = d.join("bad.gz");
    std::fs::write(&f, [0x1f, 0x8b, 0, 0, 0]).unwrap();
    let r = waygate_doctor::analyze(&[f], &Options::default()).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(keys(&v["file_errors"][0]), sorted(vec!["file", "line", "error"]));
    let _ = std::fs::remove_dir_all(&d);
}
