//! `doctor logs` on the shapes real ALB logs take that the first version misread: AWS's own keep-alive 502
//! (`0.001 4.205 -1`, target status `-`), listener rules that answer themselves (`actions_executed`),
//! unbracketed IPv6 targets, and CR-only line ends. Lines are AWS's documented example with the fields
//! each case changes.

use waygate_doctor::record::normalise_target_filter;
use waygate_doctor::{Filter, Options, Report, analyze_bytes};

/// AWS's documented HTTP example line with `target`, the three processing times, the two statuses and
/// `actions_executed` replaced.
fn line(target: &str, times: &str, elb: u16, tgt: &str, actions: &str) -> String {
    format!(
        "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 {target} {times} \
         {elb} {tgt} 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - \
         arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \
         \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 2018-07-02T22:22:48.364000Z \"{actions}\" \"-\" \
         \"-\" \"{target}\" \"{tgt}\" \"-\" \"-\""
    )
}

fn report(text: &str) -> Report {
    analyze_bytes(text.as_bytes(), &Options::default())
}

fn causes(r: &Report) -> Vec<(String, &'static str, u64)> {
    r.causes.iter().map(|c| (c.cause.clone(), c.source, c.count)).collect()
}

/// AWS's keep-alive 502: the target took the request (4.205 s) and closed the connection before a response
/// (`-1`). One line is enough to name it TargetClosedConnection (was Unexplained502, with advice for
/// malformed responses); all three times at -1 stay TargetConnectionFailed.
#[test]
fn the_target_closed_mid_request_signature() {
    let r = report(&line("10.0.0.1:80", "0.001 4.205 -1", 502, "-", "forward"));
    assert_eq!(causes(&r), [("TargetClosedConnection".to_owned(), "load_balancer", 1)]);
    let c = &r.causes[0];
    assert!(c.inferred && c.inferred_from.unwrap().contains("response_processing_time -1"), "{:?}", c.inferred_from);
    assert!(c.remediation.contains("keep-alive timeout longer"), "{}", c.remediation);
    let r = report(&line("10.0.0.1:80", "-1 -1 -1", 502, "-", "forward"));
    assert_eq!(causes(&r), [("TargetConnectionFailed".to_owned(), "load_balancer", 1)]);
}

/// `actions_executed` says a listener rule answered: a fixed-response 503 (alone or after WAF) is the rule's,
/// not "no registered targets"; redirect, authenticate and WAF outcomes are named apart. A forwarded 503 is
/// still Unexplained503.
#[test]
fn actions_executed_is_honoured() {
    let cases = [
        ("fixed-response", "ListenerFixedResponse"),
        ("waf,fixed-response", "ListenerFixedResponse"),
        ("redirect", "ListenerRedirect"),
        ("authenticate", "AuthenticateFailed"),
        ("waf", "WafBlocked"),
        ("waf,forward", "Unexplained503"),
        ("forward", "Unexplained503"),
    ];
    for (actions, want) in cases {
        let r = report(&line("-", "-1 -1 -1", 503, "-", actions));
        assert_eq!(causes(&r), [(want.to_owned(), "load_balancer", 1)], "{actions}");
        if want == "ListenerFixedResponse" {
            assert!(!r.causes[0].remediation.contains("registered"), "{}", r.causes[0].remediation);
            assert!(r.causes[0].remediation.contains("fixed-response"), "{}", r.causes[0].remediation);
        }
    }
}

/// AWS writes IPv6 targets unbracketed (`2001:db8::1:80`): the report shows `[2001:db8::1]:80`, and `--target`
/// matches it given as `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`, as it matches waygate's bracketed
/// lines.
#[test]
fn ipv6_targets_are_normalised() {
    let aws = line("2001:db8::1:80", "0.001 4.205 -1", 502, "-", "forward");
    let waygate = line("[2001:db8:0::1]:80", "0.001 4.205 -1", 502, "-", "forward");
    let other = line("2001:db8::2:80", "0.001 4.205 -1", 502, "-", "forward");
    let text = [aws, waygate, other].join("\n");
    let r = report(&text);
    let targets: Vec<&str> = r.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(targets, ["[2001:db8::1]:80", "[2001:db8::2]:80"]);
    for given in ["2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80"] {
        let filter = Filter { target: Some(normalise_target_filter(given)), ..Filter::default() };
        let r = analyze_bytes(text.as_bytes(), &Options { filter, ..Options::default() });
        assert_eq!((r.requests, r.filtered_out), (2, 1), "--target {given}");
    }
}

/// Ten records with CR-only line ends (old Mac tools) are ten records, not one; CRLF and LF read the same.
#[test]
fn every_line_ending_style() {
    let one = line("10.0.0.1:80", "0.000 0.001 0.000", 200, "200", "forward");
    for sep in ["\r", "\r\n", "\n"] {
        let text = [one.as_str(); 10].join(sep);
        let r = report(&text);
        assert_eq!((r.lines, r.requests, r.malformed.count), (10, 10, 0), "{sep:?}");
    }
}

/// Classic ELB lines (AWS's documented example, and a 503 with no backend) are parsed, not malformed: the
/// 503 is counted as the load balancer's (ClassicElbUnavailable: no healthy instance or the surge queue full,
/// not ALB's advice), a backend's own 500 as the target's (was "time is not an ISO 8601
/// timestamp" for all, and the 503 lost). NLB and ALB connection-log lines sitting in the same AWSLogs tree
/// are connections (summarised in `tests/log_kinds.rs`), not malformed.
#[test]
fn classic_elb_nlb_and_connection_log_lines() {
    let ok = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    let no_backend = r#"2015-05-13T23:39:44.945958Z my-loadbalancer 192.168.131.39:2818 - -1 -1 -1 503 0 0 0 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    let backend_500 = r#"2015-05-13T23:39:45.945958Z my-loadbalancer 192.168.131.39:2819 10.0.0.2:80 0.000073 0.101048 0.000057 500 500 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    let r = report(&[ok, no_backend, backend_500].join("\n"));
    assert_eq!((r.requests, r.malformed.count), (3, 0), "{:?}", r.malformed.examples);
    assert_eq!(r.elb_5xx.get("503"), Some(&1));
    assert_eq!(r.target_5xx.get("500"), Some(&1));
    let mut got = causes(&r);
    got.sort();
    assert_eq!(
        got,
        [("ClassicElbUnavailable".to_owned(), "load_balancer", 1), ("TargetResponded5xx".to_owned(), "target", 1)]
    );
    let classic = r.causes.iter().find(|c| c.cause == "ClassicElbUnavailable").unwrap();
    assert!(classic.remediation.contains("SpilloverCount"), "{}", classic.remediation);

    let nlb = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd \
               72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - \
               arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - \
               ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com \
               - - - 2018-12-20T02:59:30";
    let conn = "2023-10-26T18:44:03.562345Z 192.0.2.1 52120 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4 - - - \
                Success TID_1234";
    let r = analyze_bytes([nlb, conn].join("\n").as_bytes(), &Options { max_examples: 10, ..Options::default() });
    assert_eq!(r.malformed.count, 0, "{:?}", r.malformed.examples);
    let kinds: Vec<(&str, u64)> = r.connection_logs.iter().map(|c| (c.kind, c.connections)).collect();
    assert_eq!(kinds, [("alb_connection", 1), ("nlb_tls", 1)]);
    let one = waygate_doctor::parse_line(nlb.as_bytes()).unwrap_err().to_string();
    assert_eq!(one, "an NLB access log line: a connection, not an HTTP request");
}
