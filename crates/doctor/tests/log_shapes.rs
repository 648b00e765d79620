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
