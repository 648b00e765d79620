//! The JSON line: the ALB columns under snake_case names, `null` for `-`, `-1` kept, lists as arrays.

mod common;

use common::*;
use serde_json::{Value, json};
use waygate_faults::Cause;
use waygate_telemetry::{Attempt, Classification, json_line};

fn parse(ex: &waygate_telemetry::Exchange) -> Value {
    let line = json_line(ex);
    assert!(!line.contains('\n'), "one line: {line}");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn success_has_every_field() {
    let mut ex = success();
    ex.conn_trace_id = Some("TID_dc57cebed65b444ebc8177bb698fe166".into());
    let v = parse(&ex);
    let want = json!({
        "type": "http",
        "time": "2018-07-02T22:23:00.186641Z",
        "elb": "app/my-loadbalancer/50dc6c495c0c9188",
        "client_ip": "192.168.131.39",
        "client_port": 2817,
        "target_ip": "10.0.0.1",
        "target_port": 80,
        "request_processing_time": 0.0,
        "target_processing_time": 0.001,
        "response_processing_time": 0.0,
        "elb_status_code": 200,
        "target_status_code": 200,
        "received_bytes": 34,
        "sent_bytes": 366,
        "request_verb": "GET",
        "request_url": "http://www.example.com:80/",
        "request_proto": "HTTP/1.1",
        "user_agent": "curl/7.46.0",
        "ssl_cipher": null,
        "ssl_protocol": null,
        "target_group_arn": EXAMPLE_TG_ARN,
        "trace_id": "Root=1-58337262-36d228ad5d99923122bbe354",
        "domain_name": null,
        "chosen_cert_arn": null,
        "matched_rule_priority": 0,
        "request_creation_time": "2018-07-02T22:22:48.364000Z",
        "actions_executed": ["forward"],
        "redirect_url": null,
        "error_reason": null,
        "grpc_status": null,
        "target_port_list": ["10.0.0.1:80"],
        "target_status_code_list": [200],
        "classification": null,
        "classification_reason": null,
        "conn_trace_id": "TID_dc57cebed65b444ebc8177bb698fe166",
        "listener": "public",
        "target_group": "my-targets",
    });
    assert_eq!(v, want);
}

#[test]
fn gateway_error_keeps_minus_one_and_lists_attempts() {
    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 502;
    ex.target_status = None;
    ex.cause = Some(Cause::TargetConnectionRefused);
    ex.attempts = vec![
        Attempt::failed("[2001:db8::9]:8080", Cause::TargetConnectionRefused),
        Attempt::failed("10.0.0.2:80", Cause::TargetConnectionRefused),
    ]
    .into();
    let v = parse(&ex);
    assert_eq!(v["request_processing_time"], json!(-1));
    assert_eq!(v["target_processing_time"], json!(-1));
    assert_eq!(v["response_processing_time"], json!(-1));
    assert_eq!(v["target_status_code"], Value::Null);
    assert_eq!(v["error_reason"], json!("TargetConnectionRefused"));
    assert_eq!(v["target_ip"], json!("10.0.0.2"));
    assert_eq!(v["target_port_list"], json!(["2001:db8::9:8080", "10.0.0.2:80"]));
    assert_eq!(v["target_status_code_list"], json!([null, null]));
}

#[test]
fn unparseable_request_and_odd_text() {
    let mut ex = success();
    ex.method = "".into();
    ex.attempts.clear();
    ex.target_group = None;
    ex.user_agent = Some("a \"b\" \\ \n\u{0}".into());
    ex.classification = Some(Classification::Severe);
    ex.classification_reason = Some("BadUri".into());
    ex.attempts.push(Attempt::failed("backend.internal:443", Cause::TargetDnsFailure));
    let v = parse(&ex);
    assert_eq!(v["request_verb"], Value::Null);
    assert_eq!(v["request_url"], Value::Null);
    assert_eq!(v["request_proto"], Value::Null);
    assert_eq!(v["user_agent"], json!("a \"b\" \\ \n\u{0}"));
    assert_eq!(v["classification"], json!("Severe"));
    assert_eq!(v["classification_reason"], json!("BadUri"));
    assert_eq!(v["target_ip"], json!("backend.internal"));
    assert_eq!(v["target_port"], json!(443));
    assert_eq!(v["target_group_arn"], Value::Null);
    assert_eq!(v["target_group"], Value::Null);
}
