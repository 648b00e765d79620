//! The other logs of an AWSLogs tree, each with its own summary: ALB connection logs (client TLS failures by
//! `tls_verify_status` reason), NLB access logs (TLS handshakes failed, by the client's alert), Classic ELB
//! (the ELB's 5xx against the backends', and TCP/SSL listener connections without a backend). Lines are AWS's
//! documented examples (joined onto one line where the docs wrap them) and lines written here in the
//! documented field order.

mod common;

use common::{ALB_CONN_OK, ALB_CONN_UNTRUSTED};
use waygate_doctor::record::normalise_target_filter;
use waygate_doctor::report::ConnectionSummary;
use waygate_doctor::{Filter, Options, Report, analyze_bytes, html, term};

/// AWS's documented NLB access-log example: a completed handshake (2 ms).
const NLB_OK: &str = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd \
    72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - \
    arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA \
    tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com - - - 2018-12-20T02:59:30";

/// An NLB line of this test's: handshake time `handshake`, incoming alert `alert`, destination `dest`.
fn nlb(second: u32, dest: &str, handshake: &str, alert: &str) -> String {
    format!(
        "tls 2.0 2018-12-20T02:59:{second:02} net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd \
         198.51.100.7:40000 {dest} 3 {handshake} 0 7 {alert} - - - - - - - - - 2018-12-20T02:59:00"
    )
}

/// AWS's documented Classic ELB examples: HTTP, HTTPS, TCP and SSL listeners.
const CLASSIC_HTTP: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
const CLASSIC_HTTPS: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2"#;
const CLASSIC_TCP: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -"#;
const CLASSIC_SSL: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001065 0.000015 0.000023 - - 57 502 "- - - " "-" ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2"#;

fn report(lines: &[&str]) -> Report {
    analyze_bytes(lines.join("\n").as_bytes(), &Options::default())
}

fn kind<'a>(r: &'a Report, name: &str) -> &'a ConnectionSummary {
    r.connection_logs.iter().find(|c| c.kind == name).unwrap_or_else(|| panic!("no {name} in {:?}", r.connection_logs))
}

fn reasons(c: &ConnectionSummary) -> Vec<(&str, u64)> {
    c.reasons.iter().map(|r| (r.reason.as_str(), r.count)).collect()
}

/// ALB connection logs: client TLS failures by reason, per listener, with advice; a non-mTLS line (`-`
/// certificate fields) and a line with the newer appended fields (tls_keyexchange, elb, ip_address) too.
/// None of them is a request or a malformed line.
#[test]
fn alb_connection_logs_give_client_tls_failures_by_reason() {
    let plain = "2023-10-04T17:06:00.000000Z 198.51.100.9 50000 8443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.002 - - - \
                 Success TID_aa X25519 app/my-lb/50dc6c495c0c9188 10.0.0.5";
    let unmapped = "2023-10-04T17:07:00.000000Z 198.51.100.9 50001 8443 - - - - - - \
                    Failed:UnmappedConnectionError TID_ab X25519 app/my-lb/50dc6c495c0c9188 10.0.0.5";
    let r = report(&[ALB_CONN_OK, ALB_CONN_UNTRUSTED, ALB_CONN_UNTRUSTED, plain, unmapped]);
    assert_eq!((r.requests, r.malformed.count, r.lines), (0, 0, 5), "{:?}", r.malformed.examples);
    let c = kind(&r, "alb_connection");
    assert_eq!((c.connections, c.failures), (5, 3));
    assert_eq!(reasons(c), [("ClientCertUntrusted", 2), ("UnmappedConnectionError", 1)]);
    assert!(c.reasons[0].advice.contains("trust store"), "{}", c.reasons[0].advice);
    let listeners: Vec<(&str, u64, u64)> =
        c.listeners.iter().map(|(l, n)| (l.as_str(), n.connections, n.failures)).collect();
    assert_eq!(listeners, [("443", 3, 2), ("8443", 2, 1)]);
    assert_eq!(c.first_seen.as_deref(), Some("2023-10-04T17:05:15.514108Z"));
    assert_eq!(c.last_seen.as_deref(), Some("2023-10-04T17:07:00.000000Z"));
}

/// NLB access logs: a handshake time of `-` is a failed handshake, named by the alert the client sent
/// (`40`: handshake_failure; `554`, level and description: bad_certificate) or `no alert`; a completed
/// connection's close_notify is counted among the alerts, not the failures. An unbracketed IPv6
/// destination is shown bracketed, and `--target` matches NLB destinations.
#[test]
fn nlb_access_logs_give_failed_handshakes_by_alert() {
    let lines = [
        NLB_OK.to_owned(),
        nlb(41, "172.100.100.185:443", "-", "40"),
        nlb(42, "172.100.100.185:443", "-", "40"),
        nlb(43, "2001:db8::7:443", "-", "554"),
        nlb(44, "172.100.100.185:443", "-", "-"),
        nlb(45, "172.100.100.185:443", "1", "0"),
    ];
    let text: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = report(&text);
    assert_eq!((r.requests, r.malformed.count), (0, 0), "{:?}", r.malformed.examples);
    let c = kind(&r, "nlb_tls");
    assert_eq!((c.connections, c.failures), (6, 4));
    assert_eq!(reasons(c), [("handshake_failure", 2), ("bad_certificate", 1), ("no alert", 1)]);
    assert!(c.reasons[0].advice.contains("security policy"), "{}", c.reasons[0].advice);
    let alerts: Vec<(&str, u64)> = c.alerts.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    assert_eq!(alerts, [("bad_certificate", 1), ("close_notify", 1), ("handshake_failure", 2)]);
    assert_eq!(c.listeners["g3d4b5e8bb8464cd"].connections, 6);

    let filter = Filter { target: Some(normalise_target_filter("2001:db8::7")), ..Filter::default() };
    let r = analyze_bytes(text.join("\n").as_bytes(), &Options { filter, ..Options::default() });
    assert_eq!((kind(&r, "nlb_tls").connections, r.filtered_out), (1, 5));
}

/// Classic ELB: AWS's four documented examples (HTTP, HTTPS, TCP, SSL) and lines of this test's. HTTP lines
/// are requests, counted apart as well: the ELB's 503 (no backend) and 504 against a backend's own 500. TCP
/// and SSL listener lines are connections; one the ELB could not pass to an instance (`-`, times -1) fails
/// with `no backend`.
#[test]
fn classic_elb_backend_against_elb_5xx_and_tcp_connections() {
    let elb_503 = r#"2015-05-13T23:40:00.000000Z my-loadbalancer 192.168.131.39:2818 - -1 -1 -1 503 0 0 0 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    let elb_504 = r#"2015-05-13T23:40:01.000000Z my-loadbalancer 192.168.131.39:2819 10.0.0.1:80 0.000040 -1 -1 504 0 0 0 "GET http://www.example.com:80/slow HTTP/1.1" "curl/7.38.0" - -"#;
    let backend_500 = r#"2015-05-13T23:40:02.000000Z my-loadbalancer 192.168.131.39:2820 10.0.0.2:80 0.000073 0.101048 0.000057 500 500 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    let tcp_no_backend =
        r#"2015-05-13T23:40:03.000000Z my-loadbalancer 192.168.131.39:2821 - -1 -1 -1 - - 0 0 "- - - " "-" - -"#;
    let r =
        report(&[CLASSIC_HTTP, CLASSIC_HTTPS, CLASSIC_TCP, CLASSIC_SSL, elb_503, elb_504, backend_500, tcp_no_backend]);
    assert_eq!((r.requests, r.malformed.count), (5, 0), "{:?}", r.malformed.examples);
    let classic = r.classic.as_ref().unwrap();
    assert_eq!(classic.requests, 5);
    let map = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    assert_eq!(classic.elb_5xx, map(&[("503", 1), ("504", 1)]));
    assert_eq!(classic.backend_5xx, map(&[("500", 1)]));
    let sentence = classic.sentence();
    assert!(sentence.contains("5xx generated by the ELB: 503 x1, 504 x1; returned by backend instances: 500 x1"));
    let c = kind(&r, "classic_tcp");
    assert_eq!((c.connections, c.failures), (3, 1));
    assert_eq!(reasons(c), [("no backend", 1)]);
    assert_eq!(c.listeners["my-loadbalancer"].connections, 3);
}

/// `--target-group` leaves connection lines out (they name no target group); `--since` applies to them.
#[test]
fn filters_apply_to_connection_lines() {
    let text = [ALB_CONN_OK, ALB_CONN_UNTRUSTED, NLB_OK].join("\n");
    let filter = Filter { target_group: Some("my-targets".into()), ..Filter::default() };
    let r = analyze_bytes(text.as_bytes(), &Options { filter, ..Options::default() });
    assert_eq!((r.connection_logs.len(), r.filtered_out), (0, 3));
    let since = waygate_doctor::time::parse_timestamp(b"2020-01-01T00:00:00Z");
    let filter = Filter { since, ..Filter::default() };
    let r = analyze_bytes(text.as_bytes(), &Options { filter, ..Options::default() });
    assert_eq!((kind(&r, "alb_connection").connections, r.filtered_out), (2, 1));
}

/// A connection-log line cut short, or with a bad time, is malformed with a reason that says so.
#[test]
fn short_connection_lines_are_malformed_with_a_reason() {
    let cut = "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2";
    let nlb_cut = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234";
    let bad_time = "tls 2.0 yesterday net/my-nlb/c6e77e28c25b2234 g3d4b5e8bb8464cd 198.51.100.7:40000 \
                    172.100.100.185:443 3 1 0 7 - - - - - - - - - -";
    let r = report(&[cut, nlb_cut, bad_time]);
    let reasons: Vec<&str> = r.malformed.examples.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "connection-log line with only 5 fields (need at least 11)",
            "connection-log line with only 4 fields (need at least 12)",
            "time is not an ISO 8601 timestamp",
        ]
    );
}

/// The terminal and HTML reports draw the connection-log table and the Classic sentence.
#[test]
fn reports_show_connection_logs() {
    let r = report(&[ALB_CONN_UNTRUSTED, CLASSIC_HTTP, CLASSIC_TCP]);
    let text = term::render(&r);
    assert!(text.contains("Connection logs") && text.contains("ClientCertUntrusted"), "{text}");
    assert!(text.contains("Classic ELB: 1 request(s)"), "{text}");
    assert!(text.contains("alb_connection ClientCertUntrusted [1]\n    The client's certificate"), "{text}");
    let page = html::render(&r);
    assert!(page.contains("<h2>Connection logs</h2>") && page.contains("ClientCertUntrusted"));
}
