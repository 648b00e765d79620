//! Requests and connections joined by `conn_trace_id` (issue 23 item 6): each cause's first requests come
//! with the connection-log line of their connection (client, TLS version and cipher, client certificate,
//! `tls_verify_status`) and that connection's requests; each client TLS failure's first connections are
//! shown with no request. On AWS's documented connection-log examples, with access lines in AWS's documented
//! format carrying their ids (field 30), and on waygate's JSON lines; in memory and through the file reader's
//! two passes. (A live gateway writing both logs: crates/waygate/tests/doctor_conn_links.rs.)

mod common;

use common::{ALB_CONN_OK as CONN_OK, ALB_CONN_UNTRUSTED as CONN_UNTRUSTED};
use waygate_doctor::{Options, Report, analyze, analyze_bytes, html, term};

const OK_ID: &str = "TID_3180a73013c8ca4bac2f731159d4b0fe";

/// AWS's documented HTTPS access-log example, at `time`, with `times` and statuses, and `conn_trace_id`
/// appended as the 30th field.
fn https(time: &str, times: &str, elb: &str, target: &str, path: &str, id: &str) -> String {
    format!(
        "https {time} app/my-loadbalancer/50dc6c495c0c9188 203.0.113.1:36280 10.0.0.1:80 {times} {elb} {target} 0 57 \
         \"GET https://www.example.com:443{path} HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 \
         arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \
         \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \
         \"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 1 \
         2023-10-04T17:05:15.600000Z \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" {id}"
    )
}

/// Three requests on the verified connection, the last one a 502 (the target closed mid-request: AWS's
/// keep-alive 502), and one 502 on a connection the logs do not hold.
fn access_lines() -> Vec<String> {
    vec![
        https("2023-10-04T17:05:16.000000Z", "0.000 0.002 0.000", "200", "200", "/a", OK_ID),
        https("2023-10-04T17:05:17.000000Z", "0.000 0.002 0.000", "200", "200", "/b", OK_ID),
        https("2023-10-04T17:05:22.000000Z", "0.001 4.205 -1", "502", "-", "/c", OK_ID),
        https("2023-10-04T17:05:23.000000Z", "0.001 4.205 -1", "502", "-", "/d", "TID_ffff"),
    ]
}

fn log(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

/// The 502 example names its connection (AWS's documented connection-log line) and that connection's three
/// requests; the 502 on a connection the logs do not hold says so; the untrusted connection is shown with
/// no request on it.
fn check_linked(r: &Report) {
    let v = json(r);
    let cause = &v["causes"][0];
    assert_eq!(cause["cause"], "TargetClosedConnection", "{v}");
    let examples = cause["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2, "{v}");
    let e = &examples[0];
    assert_eq!(e["request"], "GET https://www.example.com:443/c HTTP/1.1");
    assert_eq!(e["conn_trace_id"], OK_ID);
    assert_eq!(e["target"], "10.0.0.1:80");
    let c = &e["connection"];
    assert_eq!(c["client"], "203.0.113.1:36280", "{e}");
    assert_eq!(c["listener_port"], "443");
    assert_eq!(c["tls_protocol"], "TLSv1.2");
    assert_eq!(c["tls_cipher"], "ECDHE-RSA-AES128-GCM-SHA256");
    assert_eq!(c["tls_handshake_latency"], "4.036");
    assert_eq!(c["client_cert_subject"], "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US");
    assert_eq!(c["tls_verify_status"], "Success");
    let reqs = &e["connection_requests"];
    assert_eq!(reqs["count"], 3, "{e}");
    assert_eq!(reqs["elb_5xx"], 1);
    let paths: Vec<&str> = reqs["first"].as_array().unwrap().iter().map(|q| q["request"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    for (p, want) in paths.iter().zip([":443/a ", ":443/b ", ":443/c "]) {
        assert!(p.contains(want), "{paths:?}");
    }
    // The second 502's connection is not in the connection log: its requests are still counted.
    assert!(examples[1]["connection"].is_null(), "{}", examples[1]);
    assert_eq!(examples[1]["connection_requests"]["count"], 1);

    let failed = &v["connection_logs"][0]["reasons"][0];
    assert_eq!(failed["reason"], "ClientCertUntrusted", "{v}");
    let f = &failed["examples"][0];
    assert_eq!(f["conn_trace_id"], "TID_1c71a68d70587445ad5127ff8b2687d7", "{failed}");
    assert_eq!(f["tls_verify_status"], "Failed:ClientCertUntrusted");
    assert_eq!(f["requests"], 0);

    let page = html::render(r);
    assert!(page.contains("Example requests") && page.contains("verify Success"), "{page}");
    assert!(page.contains("no request on it"), "{page}");
    let text = term::render(r);
    for want in [
        "e.g. 2023-10-04T17:05:22 502 \"GET https://www.example.com:443/c HTTP/1.1\" → 10.0.0.1:80",
        "on connection TID_3180a73013c8ca4bac2f731159d4b0fe: 203.0.113.1:36280 → :443, TLSv1.2 \
         ECDHE-RSA-AES128-GCM-SHA256, handshake 4.036 s, client certificate \"CN=amazondomains.com",
        "verify Success",
        "3 request(s) on that connection, 1 5xx:",
        "on connection TID_ffff: not in the connection logs read",
        "Failed:ClientCertUntrusted (TID_1c71a68d70587445ad5127ff8b2687d7): no request on it",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn a_failed_request_shows_its_connection_and_the_connections_requests() {
    let mut lines = access_lines();
    lines.push(CONN_OK.into());
    lines.push(CONN_UNTRUSTED.into());
    check_linked(&analyze_bytes(log(&lines).as_bytes(), &Options::default()));
    // Any order: the connection logs first, the access lines reversed.
    lines.reverse();
    check_linked(&analyze_bytes(log(&lines).as_bytes(), &Options::default()));
}

/// Through the file reader: the access log and the connection log in their own files (as AWS and waygate
/// write them), read by several threads, then read again for the join.
#[test]
fn files_are_read_twice_for_the_join() {
    let dir = std::env::temp_dir().join(format!("doctor-conn-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("access.log"), log(&access_lines())).unwrap();
    std::fs::write(dir.join("conn_log.log"), log(&[CONN_OK.into(), CONN_UNTRUSTED.into()])).unwrap();
    let opts = Options { threads: Some(2), ..Options::default() };
    let r = analyze(std::slice::from_ref(&dir), &opts).unwrap();
    check_linked(&r);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a connection log nothing is read twice: the examples name their `conn_trace_id`, and their
/// connection and its requests are null.
#[test]
fn without_connection_logs_the_examples_name_the_id_only() {
    let r = analyze_bytes(log(&access_lines()).as_bytes(), &Options::default());
    let v = json(&r);
    let e = &v["causes"][0]["examples"][0];
    assert_eq!(e["conn_trace_id"], OK_ID, "{v}");
    assert!(e["connection"].is_null() && e["connection_requests"].is_null(), "{e}");
    let text = term::render(&r);
    assert!(text.contains(&format!("  on connection {OK_ID}\n")), "{text}");
}

/// waygate's JSON lines carry `conn_trace_id` as a key: they link the same way.
#[test]
fn json_lines_link_too() {
    let line = format!(
        "{{\"type\":\"https\",\"time\":\"2023-10-04T17:05:22Z\",\"elb_status_code\":502,\
         \"target_status_code\":\"-\",\"target\":\"10.0.0.1:80\",\"request_processing_time\":0.001,\
         \"target_processing_time\":4.205,\"response_processing_time\":-1,\
         \"request\":\"GET https://www.example.com:443/j HTTP/1.1\",\"conn_trace_id\":\"{OK_ID}\"}}"
    );
    let r = analyze_bytes(log(&[line, CONN_OK.into()]).as_bytes(), &Options::default());
    let v = json(&r);
    let e = &v["causes"][0]["examples"][0];
    assert_eq!(e["request"], "GET https://www.example.com:443/j HTTP/1.1", "{v}");
    assert_eq!(e["connection"]["tls_verify_status"], "Success", "{e}");
    assert_eq!(e["connection_requests"]["count"], 1);
}

/// A cause keeps its three earliest requests, whatever the order of the lines.
#[test]
fn each_cause_keeps_its_earliest_requests() {
    let lines: Vec<String> = (0..10)
        .rev()
        .map(|i| https(&format!("2023-10-04T17:06:{i:02}.000000Z"), "-1 -1 -1", "502", "-", &format!("/{i}"), "-"))
        .collect();
    let r = analyze_bytes(log(&lines).as_bytes(), &Options::default());
    let v = json(&r);
    let examples = v["causes"][0]["examples"].as_array().unwrap();
    let paths: Vec<&str> = examples.iter().map(|e| e["request"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3, "{v}");
    assert!(paths[0].contains(":443/0 ") && paths[2].contains(":443/2 "), "{paths:?}");
    assert!(examples.iter().all(|e| e["conn_trace_id"].is_null()));
}
