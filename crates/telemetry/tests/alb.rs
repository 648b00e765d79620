//! The ALB line: AWS's three documented example lines reproduced byte for byte, and many kinds of exchange
//! read back through AWS's Athena regex column by column.

mod common;

use std::sync::Arc;

use common::*;
use waygate_faults::Cause;
use waygate_telemetry::{
    Actions, Attempt, Classification, Exchange, RequestKind, TargetGroupRef, alb_line, client_column,
};

const EXAMPLE_1: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
const EXAMPLE_2: &str = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
const EXAMPLE_3: &str = r#"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-""#;

#[test]
fn aws_example_1_plain_http() {
    assert_eq!(alb_line(&success()), EXAMPLE_1);
}

#[test]
fn aws_example_2_https() {
    let mut ex = success();
    ex.kind = RequestKind::Https;
    ex.request_processing_time = Some(ms(86));
    ex.target_processing_time = Some(ms(48));
    ex.response_processing_time = Some(ms(37));
    ex.received_bytes = 0;
    ex.sent_bytes = 57;
    ex.url = "https://www.example.com:443/".into();
    ex.ssl_cipher = Some("ECDHE-RSA-AES128-GCM-SHA256".into());
    ex.ssl_protocol = Some("TLSv1.2".into());
    ex.trace_id = "Root=1-58337281-1d84f3d73c47ec4e58577259".into();
    ex.sni = Some("www.example.com".into());
    ex.chosen_cert_arn =
        Some(Arc::from("arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"));
    ex.matched_rule_priority = Some(1);
    ex.actions = Actions::AUTHENTICATE | Actions::FORWARD;
    assert_eq!(alb_line(&ex), EXAMPLE_2);
}

#[test]
fn aws_example_3_lambda_error() {
    let mut ex = success();
    ex.time = utc(2018, 11, 30, 22, 23, 0, 186_641);
    ex.request_creation_time = utc(2018, 11, 30, 22, 22, 48, 364_000);
    ex.elb_status = 502;
    ex.target_status = None;
    ex.trace_id = "Root=1-58337364-23a8c76965a2ef7629b185e3".into();
    ex.cause = Some(Cause::LambdaInvalidResponse);
    ex.attempts.clear();
    assert_eq!(alb_line(&ex), EXAMPLE_3);
    assert!(ex.is_gateway_error());
    // A function's failed invoke is an attempt on target `-`: the line is still AWS's.
    ex.attempts.push(Attempt::failed("-", Cause::LambdaInvalidResponse));
    assert_eq!(alb_line(&ex), EXAMPLE_3);
}

#[test]
fn conn_trace_id_is_appended() {
    let mut ex = success();
    ex.conn_trace_id = Some(Arc::from("TID_dc57cebed65b444ebc8177bb698fe166"));
    assert_eq!(alb_line(&ex), format!("{EXAMPLE_1} TID_dc57cebed65b444ebc8177bb698fe166"));
    let id = waygate_telemetry::new_conn_trace_id();
    assert!(id.len() == 36 && id.starts_with("TID_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn a_client_column_made_once_writes_the_same_line() {
    for client in ["192.168.131.39:2817", "[2001:db8::7]:50432", "0.0.0.0:0"] {
        let mut ex = success();
        ex.client = client.parse().unwrap();
        let per_line = alb_line(&ex);
        ex.client_column = Some(client_column(ex.client));
        assert_eq!(alb_line(&ex), per_line);
    }
    assert!(alb_line(&success()).contains(" 192.168.131.39:2817 "));
}

#[test]
fn the_documented_examples_parse_with_athena() {
    let re = athena();
    for line in [EXAMPLE_1, EXAMPLE_2, EXAMPLE_3] {
        assert!(columns(&re, line).is_some(), "{line}");
    }
}

/// One case: a record and the Athena columns it must produce.
struct Case {
    name: &'static str,
    ex: Exchange,
    want: Vec<(&'static str, &'static str)>,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut push = |name, ex, want: &[(&'static str, &'static str)]| v.push(Case { name, ex, want: want.to_vec() });

    push(
        "success",
        success(),
        &[
            ("type", "http"),
            ("time", "2018-07-02T22:23:00.186641Z"),
            ("elb", "app/my-loadbalancer/50dc6c495c0c9188"),
            ("client_ip", "192.168.131.39"),
            ("client_port", "2817"),
            ("target_ip", "10.0.0.1"),
            ("target_port", "80"),
            ("request_processing_time", "0.000"),
            ("target_processing_time", "0.001"),
            ("response_processing_time", "0.000"),
            ("elb_status_code", "200"),
            ("target_status_code", "200"),
            ("received_bytes", "34"),
            ("sent_bytes", "366"),
            ("request_verb", "GET"),
            ("request_url", "http://www.example.com:80/"),
            ("request_proto", "HTTP/1.1"),
            ("user_agent", "curl/7.46.0"),
            ("ssl_cipher", "-"),
            ("ssl_protocol", "-"),
            ("target_group_arn", EXAMPLE_TG_ARN),
            ("trace_id", "Root=1-58337262-36d228ad5d99923122bbe354"),
            ("domain_name", "-"),
            ("chosen_cert_arn", "-"),
            ("matched_rule_priority", "0"),
            ("request_creation_time", "2018-07-02T22:22:48.364000Z"),
            ("actions_executed", "forward"),
            ("redirect_url", "-"),
            ("lambda_error_reason", "-"),
            ("target_port_list", "10.0.0.1:80"),
            ("target_status_code_list", "200"),
            ("classification", "-"),
            ("classification_reason", "-"),
            ("trailing", ""),
        ],
    );

    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 502;
    ex.target_status = None;
    ex.cause = Some(Cause::TargetConnectionRefused);
    ex.attempts = vec![Attempt::failed("10.0.0.9:8080", Cause::TargetConnectionRefused)].into();
    push(
        "refused",
        ex,
        &[
            ("target_ip", "10.0.0.9"),
            ("target_port", "8080"),
            ("request_processing_time", "-1"),
            ("target_processing_time", "-1"),
            ("response_processing_time", "-1"),
            ("elb_status_code", "502"),
            ("target_status_code", "-"),
            ("lambda_error_reason", "TargetConnectionRefused"),
            ("target_port_list", "10.0.0.9:8080"),
            ("target_status_code_list", "-"),
        ],
    );

    for cause in [Cause::TargetResponseTimeout, Cause::TargetConnectTimeout, Cause::TargetTlsHandshakeTimeout] {
        let mut ex = success();
        undispatched(&mut ex);
        ex.elb_status = 504;
        ex.target_status = None;
        ex.cause = Some(cause);
        ex.attempts = vec![Attempt::failed("10.0.0.1:80", cause)].into();
        push(
            "timeout",
            ex,
            &[
                ("request_processing_time", "-1"),
                ("target_processing_time", "-1"),
                ("response_processing_time", "-1"),
                ("elb_status_code", "504"),
                ("target_status_code", "-"),
                ("lambda_error_reason", cause.name()),
                ("target_status_code_list", "-"),
            ],
        );
    }

    let mut ex = success();
    ex.request_processing_time = Some(ms(1_234));
    ex.target_processing_time = Some(std::time::Duration::from_micros(20_499_600));
    ex.attempts = vec![
        Attempt::failed("10.0.0.1:80", Cause::TargetKeepAliveRace),
        Attempt::responded("10.0.0.2:80", 200, ms(20_500)),
    ]
    .into();
    push(
        "retried",
        ex,
        &[
            ("target_ip", "10.0.0.2"),
            ("target_port", "80"),
            ("request_processing_time", "1.234"),
            ("target_processing_time", "20.500"),
            ("target_port_list", "10.0.0.1:80,10.0.0.2:80"),
            ("target_status_code_list", "-,200"),
            ("lambda_error_reason", "-"),
        ],
    );

    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 503;
    ex.target_status = None;
    ex.target_group = None;
    ex.attempts.clear();
    ex.matched_rule_priority = Some(7);
    ex.actions = Actions::FIXED_RESPONSE;
    push(
        "fixed response",
        ex,
        &[
            ("target_ip", ""),
            ("target_port", ""),
            ("elb_status_code", "503"),
            ("target_group_arn", "-"),
            ("matched_rule_priority", "7"),
            ("actions_executed", "fixed-response"),
            ("target_port_list", "-"),
            ("target_status_code_list", "-"),
        ],
    );

    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 404;
    ex.target_status = None;
    ex.target_group = None;
    ex.attempts.clear();
    ex.matched_rule_priority = None;
    ex.actions = Actions::NONE;
    ex.cause = Some(Cause::NoRoute);
    push(
        "no route",
        ex,
        &[
            ("elb_status_code", "404"),
            ("matched_rule_priority", "-"),
            ("actions_executed", "-"),
            ("lambda_error_reason", "NoRoute"),
            ("target_group_arn", "-"),
        ],
    );

    let mut ex = success();
    ex.kind = RequestKind::H2;
    ex.http_version = "HTTP/2.0".into();
    ex.url = "https://api.example.com:443/v1/items?page=2&q=a%20b".into();
    ex.ssl_cipher = Some("ECDHE-RSA-AES128-GCM-SHA256".into());
    ex.ssl_protocol = Some("TLSv1.2".into());
    ex.sni = Some("api.example.com".into());
    push(
        "h2",
        ex,
        &[
            ("type", "h2"),
            ("request_proto", "HTTP/2.0"),
            ("request_url", "https://api.example.com:443/v1/items?page=2&q=a%20b"),
            ("domain_name", "api.example.com"),
            ("ssl_protocol", "TLSv1.2"),
        ],
    );

    let mut ex = success();
    ex.kind = RequestKind::from_connection(true, false);
    ex.ssl_cipher = Some("TLS_AES_128_GCM_SHA256".into());
    ex.ssl_protocol = Some("TLSv1.3".into());
    ex.chosen_cert_arn = Some(Arc::from("arn:aws:acm:local:000000000000:certificate/public"));
    push(
        "https tls1.3",
        ex,
        &[
            ("type", "https"),
            ("ssl_cipher", "TLS_AES_128_GCM_SHA256"),
            ("ssl_protocol", "TLSv1.3"),
            ("chosen_cert_arn", "arn:aws:acm:local:000000000000:certificate/public"),
        ],
    );

    let mut ex = success();
    ex.client = "[2001:db8::1]:51234".parse().unwrap();
    ex.attempts = vec![Attempt::responded("[2001:db8::2]:8080", 200, ms(1))].into();
    push(
        "ipv6",
        ex,
        &[
            ("client_ip", "2001:db8::1"),
            ("client_port", "51234"),
            ("target_ip", "2001:db8::2"),
            ("target_port", "8080"),
            ("target_port_list", "2001:db8::2:8080"),
        ],
    );

    let mut ex = success();
    ex.user_agent = Some("Mozilla/5.0 \"quoted\" back\\slash\ttab\nnewline  two spaces \u{7f} ünïcode".into());
    push(
        "weird user agent",
        ex,
        &[("user_agent", "Mozilla/5.0 \\x22quoted\\x22 back\\x5cslash\\x09tab\\x0anewline  two spaces \\x7f ünïcode")],
    );

    let mut ex = success();
    ex.user_agent = Some("a\" \"b\" \"c".into());
    push("user agent that looks like fields", ex, &[("user_agent", "a\\x22 \\x22b\\x22 \\x22c"), ("ssl_cipher", "-")]);

    let mut ex = success();
    ex.user_agent = None;
    push("no user agent", ex, &[("user_agent", "-")]);

    let mut ex = success();
    ex.user_agent = Some("x".repeat(20_000).into());
    push("long user agent", ex, &[]);

    let mut ex = success();
    undispatched(&mut ex);
    ex.method = "".into();
    ex.elb_status = 400;
    ex.target_status = None;
    ex.target_group = None;
    ex.attempts.clear();
    ex.matched_rule_priority = None;
    ex.cause = Some(Cause::ClientRequestMalformed);
    ex.classification = Some(Classification::Severe);
    ex.classification_reason = Some("BadContentLength".into());
    push(
        "malformed",
        ex,
        &[
            // ALB's own form for an unparseable request; Athena's greedy `(.*)` reads AWS's lines this way too.
            ("request_verb", "-"),
            ("request_url", "- -"),
            ("request_proto", ""),
            ("elb_status_code", "400"),
            ("classification", "Severe"),
            ("classification_reason", "BadContentLength"),
        ],
    );

    let mut ex = success();
    ex.url = "http://www.example.com:80/a b\"c".into();
    ex.classification = Some(Classification::Ambiguous);
    ex.classification_reason = Some("AmbiguousUri".into());
    push(
        "odd url",
        ex,
        &[
            ("request_url", "http://www.example.com:80/a%20b\\x22c"),
            ("classification", "Ambiguous"),
            ("classification_reason", "AmbiguousUri"),
        ],
    );

    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 301;
    ex.target_status = None;
    ex.target_group = None;
    ex.attempts.clear();
    ex.actions = Actions::REDIRECT;
    ex.redirect_url = Some("https://www.example.com:443/?q=\"x\"".into());
    push(
        "redirect",
        ex,
        &[
            ("actions_executed", "redirect"),
            ("redirect_url", "https://www.example.com:443/?q=\\x22x\\x22"),
            ("elb_status_code", "301"),
        ],
    );

    let mut ex = success();
    undispatched(&mut ex);
    ex.elb_status = 502;
    ex.target_status = None;
    ex.cause = Some(Cause::TargetDnsFailure);
    ex.attempts = vec![Attempt::failed("backend.internal:443", Cause::TargetDnsFailure)].into();
    ex.elb = Arc::from("app/way gate/x");
    ex.ssl_cipher = Some("tls13_aes_256_gcm_sha384".into());
    ex.ssl_protocol = Some("TLS v1.3".into());
    push(
        "dns target and odd tokens",
        ex,
        &[
            ("target_ip", "backend.internal"),
            ("target_port", "443"),
            ("elb", "app/way_gate/x"),
            ("ssl_cipher", "TLS13_AES_256_GCM_SHA384"),
            ("ssl_protocol", "TLS-v1.3"),
            ("target_port_list", "backend.internal:443"),
        ],
    );

    let mut ex = success();
    ex.elb_status = 503;
    ex.target_status = Some(503);
    ex.attempts = vec![Attempt::responded("10.0.0.1:80", 503, ms(3))].into();
    push(
        "target's own 503",
        ex,
        &[
            ("elb_status_code", "503"),
            ("target_status_code", "503"),
            ("lambda_error_reason", "-"),
            ("target_status_code_list", "503"),
        ],
    );

    let mut ex = success();
    ex.target_group = Some(TargetGroupRef::new("api"));
    ex.conn_trace_id = Some(Arc::from("TID_0123456789abcdef0123456789abcdef"));
    ex.trace_id = Default::default();
    push("synthetic arn and conn id", ex, &[("trailing", "TID_0123456789abcdef0123456789abcdef"), ("trace_id", "-")]);
    v
}

#[test]
fn every_kind_of_exchange_parses_with_athena() {
    let re = athena();
    for case in cases() {
        let line = alb_line(&case.ex);
        assert!(!line.contains('\n') && !line.contains('\r'), "{}: one line: {line}", case.name);
        let cols = columns(&re, &line).unwrap_or_else(|| panic!("{}: Athena cannot read {line}", case.name));
        for (col, want) in &case.want {
            assert_eq!(cols[col], *want, "{}: column {col} of {line}", case.name);
        }
        assert_eq!(cols["elb_status_code"], case.ex.elb_status.to_string(), "{}", case.name);
        assert!(!cols["trace_id"].is_empty(), "{}", case.name);
    }
}

#[test]
fn synthetic_target_group_arn_is_stable() {
    let a = TargetGroupRef::new("api");
    assert_eq!(a, TargetGroupRef::new("api"));
    assert_ne!(a.arn(), TargetGroupRef::new("app").arn());
    assert!(a.arn().starts_with("arn:aws:elasticloadbalancing:local:000000000000:targetgroup/api/"), "{}", a.arn());
    assert_eq!(a.arn().rsplit('/').next().map(str::len), Some(16));
    assert!(!TargetGroupRef::new("with space").arn().contains(' '));
    assert!(!TargetGroupRef::new("with,comma").arn().contains(','));
}

/// An ARN of the operator's choosing is written as one token like any other column; the synthetic ones need
/// nothing replaced.
#[test]
fn target_group_arns_are_one_token() {
    let mut ex = success();
    ex.target_group = Some(TargetGroupRef::with_arn("tg", "arn:x,y z"));
    let cols = columns(&athena(), &alb_line(&ex)).unwrap();
    assert_eq!(cols["target_group_arn"], "arn:x_y_z");
    let tg = TargetGroupRef::new("api.v2_x-1");
    assert!(tg.arn_is_token());
    ex.target_group = Some(tg.clone());
    let cols = columns(&athena(), &alb_line(&ex)).unwrap();
    assert_eq!(cols["target_group_arn"], &**tg.arn());
}

#[test]
fn long_user_agent_is_truncated_to_8k() {
    let mut ex = success();
    ex.user_agent = Some("é".repeat(5_000).into());
    let cols = columns(&athena(), &alb_line(&ex)).unwrap();
    assert_eq!(cols["user_agent"].len(), 8_192);
}

#[test]
fn gateway_or_target() {
    let ok = success();
    assert!(ok.is_target_response() && !ok.is_gateway_generated() && !ok.is_gateway_error());
    let mut incomplete = success();
    incomplete.cause = Some(Cause::TargetResponseIncomplete);
    assert!(incomplete.is_target_response() && !incomplete.is_gateway_error());
    let mut fixed = success();
    fixed.target_status = None;
    fixed.elb_status = 503;
    assert!(fixed.is_gateway_generated() && !fixed.is_gateway_error());
    fixed.cause = Some(Cause::NoHealthyTargets);
    assert!(fixed.is_gateway_error());
}

/// A tiny deterministic generator (xorshift), so the test needs no extra crate and always sees the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self) -> String {
        const PALETTE: &[char] = &[
            'a', 'Z', '0', ' ', '"', '\\', '\t', '\n', '\r', '\0', ',', ':', '-', '/', '%', '\u{7f}', '\u{85}',
            '\u{2028}', 'é', '😀', '[', ']', '=',
        ];
        let len = (self.next() % 24) as usize;
        (0..len).map(|_| PALETTE[(self.next() % PALETTE.len() as u64) as usize]).collect()
    }
}

#[test]
fn hostile_strings_never_break_the_line() {
    let re = athena();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let mut ex = success();
        ex.elb = Arc::from(rng.text());
        ex.method = rng.text().into();
        ex.url = rng.text().into();
        ex.http_version = rng.text().into();
        ex.user_agent = Some(rng.text().into());
        ex.ssl_cipher = Some(rng.text().into());
        ex.ssl_protocol = Some(rng.text().into());
        ex.target_group = Some(if rng.0.is_multiple_of(2) {
            TargetGroupRef::new(rng.text())
        } else {
            TargetGroupRef::with_arn(rng.text(), rng.text())
        });
        ex.trace_id = rng.text().into();
        ex.sni = Some(rng.text());
        ex.chosen_cert_arn = Some(Arc::from(rng.text()));
        ex.redirect_url = Some(rng.text());
        ex.classification_reason = Some(rng.text().into());
        ex.conn_trace_id = Some(Arc::from(rng.text()));
        ex.attempts = vec![
            Attempt::failed(rng.text(), Cause::TargetResetConnection),
            Attempt::failed(rng.text(), Cause::TargetTlsAlert),
        ]
        .into();
        let line = alb_line(&ex);
        assert!(!line.contains(['\n', '\r']), "one line: {line:?}");
        assert!(re.is_match(&line), "Athena cannot read {line:?}");
        let json = waygate_telemetry::json_line(&ex);
        assert!(!json.contains(['\n', '\r']));
        serde_json::from_str::<serde_json::Value>(&json).unwrap();
    }
}
