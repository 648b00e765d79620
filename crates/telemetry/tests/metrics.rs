//! The metrics: exactly docs/INTERFACE.md's names and labels, and CloudWatch's rules for what counts where.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use waygate_faults::Cause;
use waygate_telemetry::{Actions, Attempt, Classification, Metrics, Side, TargetGroupRef};

/// The value of the sample `name{labels}` (labels in registration order), or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn exposed_names_are_the_contract() {
    let m = Metrics::new();
    let tg: Arc<str> = Arc::from("app");
    let l: Arc<str> = Arc::from("public");
    let mut ex = success();
    ex.target_group = Some(TargetGroupRef::new("app"));
    ex.classification = Some(Classification::Acceptable);
    ex.attempts = vec![
        Attempt::failed("10.0.0.1:80", Cause::TargetConnectionRefused),
        Attempt::failed("10.0.0.1:80", Cause::TargetTlsAlert),
        Attempt::responded("10.0.0.2:80", 200, ms(3)),
    ]
    .into();
    m.observe(&ex);
    let mut lambda = success();
    lambda.target_status = None;
    lambda.elb_status = 502;
    lambda.cause = Some(Cause::LambdaUnhandled);
    m.observe(&lambda);
    lambda.cause = Some(Cause::LambdaServiceException);
    m.observe(&lambda);
    let _g = m.connection_opened(Side::Client);
    m.client_tls_error(&l, "ClientCertUntrusted");
    let in_a_year = std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 86_400 + 30);
    m.set_listener_certificates("public", &[("a.example.com".to_owned(), in_a_year)]);
    m.connection_rejected(&l);
    m.set_target_health(&tg, 2, 1);
    m.access_log_counters().dropped.inc();

    let text = m.encode();
    assert!(text.ends_with("# EOF\n"));
    let want: BTreeSet<String> = [
        "waygate_requests_total",
        "waygate_elb_responses_total",
        "waygate_target_responses_total",
        "waygate_target_connection_errors_total",
        "waygate_target_tls_negotiation_errors_total",
        "waygate_target_stream_errors_total",
        "waygate_client_stream_errors_total",
        "waygate_client_tls_negotiation_errors_total",
        "waygate_listener_certificate_expiry_seconds",
        "waygate_target_response_time_seconds_bucket",
        "waygate_target_response_time_seconds_count",
        "waygate_target_response_time_seconds_sum",
        "waygate_healthy_hosts",
        "waygate_unhealthy_hosts",
        "waygate_active_connections",
        "waygate_new_connections_total",
        "waygate_rejected_connections_total",
        "waygate_processed_bytes_total",
        "waygate_retries_total",
        "waygate_lambda_user_errors_total",
        "waygate_lambda_internal_errors_total",
        "waygate_desync_noncompliant_requests_total",
        "waygate_access_log_dropped_total",
        "waygate_access_log_write_errors_total",
        "waygate_system_log_dropped_total",
        "waygate_system_log_write_errors_total",
        "waygate_connection_log_dropped_total",
        "waygate_connection_log_write_errors_total",
        // Alert webhooks; waygate_alert_firing{alert} has a series per configured rule (none here).
        "waygate_alert_webhooks_delivered_total",
        "waygate_alert_webhook_retries_total",
        "waygate_alert_webhook_dropped_total",
        // [tracing]'s OTLP exporter.
        "waygate_tracing_spans_exported_total",
        "waygate_tracing_spans_dropped_total",
        "waygate_tracing_export_errors_total",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // Stream errors only appear once one happened.
    let mut got = families(&text);
    got.insert("waygate_target_stream_errors_total".into());
    got.insert("waygate_client_stream_errors_total".into());
    assert_eq!(got, want, "{text}");

    for series in [
        r#"waygate_requests_total{listener="public",target_group="app"} 1"#,
        r#"waygate_target_responses_total{target_group="app",target="10.0.0.2:80",class="2xx"} 1"#,
        r#"waygate_target_connection_errors_total{target_group="app",target="10.0.0.1:80",cause="TargetConnectionRefused"} 1"#,
        r#"waygate_target_tls_negotiation_errors_total{target_group="app",target="10.0.0.1:80",cause="TargetTlsAlert"} 1"#,
        r#"waygate_retries_total{target_group="app",cause="TargetConnectionRefused"} 1"#,
        r#"waygate_retries_total{target_group="app",cause="TargetTlsAlert"} 1"#,
        r#"waygate_target_response_time_seconds_count{target_group="app",target="10.0.0.2:80"} 1"#,
        r#"waygate_target_response_time_seconds_bucket{le="0.005",target_group="app",target="10.0.0.2:80"} 1"#,
        r#"waygate_target_response_time_seconds_bucket{le="0.0025",target_group="app",target="10.0.0.2:80"} 0"#,
        r#"waygate_elb_responses_total{listener="public",code="502",cause="LambdaUnhandled"} 1"#,
        r#"waygate_lambda_user_errors_total{target_group="my-targets",cause="LambdaUnhandled"} 1"#,
        r#"waygate_lambda_internal_errors_total{target_group="my-targets",cause="LambdaServiceException"} 1"#,
        r#"waygate_desync_noncompliant_requests_total{listener="public",classification="Acceptable"} 1"#,
        r#"waygate_active_connections{side="client"} 1"#,
        r#"waygate_active_connections{side="target"} 0"#,
        r#"waygate_new_connections_total{side="client"} 1"#,
        r#"waygate_client_tls_negotiation_errors_total{listener="public",cause="ClientCertUntrusted"} 1"#,
        r#"waygate_rejected_connections_total{listener="public"} 1"#,
        r#"waygate_healthy_hosts{target_group="app"} 2"#,
        r#"waygate_unhealthy_hosts{target_group="app"} 1"#,
        r#"waygate_processed_bytes_total{listener="public"} 1200"#,
        "waygate_access_log_dropped_total 1",
    ] {
        assert!(text.lines().any(|l| l == series), "missing `{series}` in\n{text}");
    }
    // Counted down at each scrape: a year and a few seconds, give or take the time this test took.
    let expiry = r#"waygate_listener_certificate_expiry_seconds{listener="public",name="a.example.com"} "#;
    let left: f64 = text.lines().find_map(|l| l.strip_prefix(expiry)).expect(expiry).parse().unwrap();
    assert!((365.0 * 86_400.0..=365.0 * 86_400.0 + 30.0).contains(&left), "{left}");
    m.set_listener_certificates("public", &[]);
    assert!(!m.encode().contains("name=\"a.example.com\""), "a listener's certificates are replaced");
}

#[test]
fn gateway_502_vs_target_502() {
    let m = Metrics::new();
    let mut gw = success();
    undispatched(&mut gw);
    gw.elb_status = 502;
    gw.target_status = None;
    gw.cause = Some(Cause::TargetResetConnection);
    gw.attempts = vec![Attempt::failed("10.0.0.1:80", Cause::TargetResetConnection)].into();
    m.observe(&gw);
    let mut own = success();
    own.elb_status = 502;
    own.target_status = Some(502);
    own.attempts = vec![Attempt::responded("10.0.0.1:80", 502, ms(1))].into();
    m.observe(&own);
    let mut own503 = success();
    own503.elb_status = 503;
    own503.target_status = Some(503);
    m.observe(&own503);

    let t = m.encode();
    let elb = r#"waygate_elb_responses_total{listener="public",code="502",cause="TargetResetConnection"}"#;
    assert_eq!(sample(&t, elb), 1.0);
    let tgt = r#"waygate_target_responses_total{target_group="my-targets",target="10.0.0.1:80",class="5xx"}"#;
    assert_eq!(sample(&t, tgt), 2.0);
    assert!(!t.contains(r#"code="503""#), "a target's 503 is not the gateway's:\n{t}");
    // A reset is neither a connection error (connection was established) nor a TLS error.
    assert!(!t.contains("waygate_target_connection_errors_total{"));
    assert!(!t.contains("waygate_target_tls_negotiation_errors_total{"));
    // No response head, no response-time observation for the failed attempt.
    assert_eq!(
        sample(&t, r#"waygate_target_response_time_seconds_count{target_group="my-targets",target="10.0.0.1:80"}"#),
        2.0
    );
}

#[test]
fn fixed_responses_and_stream_errors() {
    let m = Metrics::new();
    let mut fixed = success();
    undispatched(&mut fixed);
    fixed.elb_status = 404;
    fixed.target_status = None;
    fixed.target_group = None;
    fixed.attempts.clear();
    fixed.actions = Actions::FIXED_RESPONSE;
    m.observe(&fixed);
    let mut cut = success();
    cut.cause = Some(Cause::TargetResponseIncomplete);
    m.observe(&cut);
    let mut unread = success();
    unread.cause = Some(Cause::ClientIdleTimeout);
    m.observe(&unread);

    let t = m.encode();
    assert_eq!(sample(&t, r#"waygate_elb_responses_total{listener="public",code="404",cause=""}"#), 1.0);
    assert_eq!(sample(&t, r#"waygate_requests_total{listener="public",target_group=""}"#), 1.0);
    assert_eq!(
        sample(&t, r#"waygate_target_responses_total{target_group="my-targets",target="10.0.0.1:80",class="2xx"}"#),
        2.0,
        "a body cut short or left unread is still the target's response"
    );
    let stream = r#"waygate_target_stream_errors_total{target_group="my-targets",target="10.0.0.1:80",cause="TargetResponseIncomplete"}"#;
    assert_eq!(sample(&t, stream), 1.0);
    // The client's side of a body never counts against the target.
    let client = r#"waygate_client_stream_errors_total{listener="public",cause="ClientIdleTimeout"}"#;
    assert_eq!(sample(&t, client), 1.0);
    assert!(
        !t.contains(
            r#"target_stream_errors_total{target_group="my-targets",target="10.0.0.1:80",cause="ClientIdleTimeout"}"#
        ),
        "{t}"
    );
}

#[test]
fn connection_guards_and_health_removal() {
    let m = Metrics::new();
    let a = m.connection_opened(Side::Target);
    let b = m.connection_opened(Side::Target);
    assert_eq!(sample(&m.encode(), r#"waygate_active_connections{side="target"}"#), 2.0);
    drop(a);
    drop(b);
    let t = m.encode();
    assert_eq!(sample(&t, r#"waygate_active_connections{side="target"}"#), 0.0);
    assert_eq!(sample(&t, r#"waygate_new_connections_total{side="target"}"#), 2.0);
    let tg: Arc<str> = Arc::from("old");
    m.set_target_health(&tg, 1, 0);
    assert!(m.encode().contains(r#"target_group="old""#));
    m.remove_target_group(&tg);
    assert!(!m.encode().contains(r#"target_group="old""#));
}

#[test]
fn per_thread_series_cache_is_per_registry_and_by_value() {
    // The same label `Arc`s observed into two registries (one dropped first, as tests do) count in each.
    let ex = success();
    let old = Metrics::new();
    old.observe(&ex);
    drop(old);
    let (a, b) = (Metrics::new(), Metrics::new());
    a.observe(&ex);
    a.observe(&ex);
    b.observe(&ex);
    let requests = r#"waygate_requests_total{listener="public",target_group="my-targets"}"#;
    let target = r#"waygate_target_responses_total{target_group="my-targets",target="10.0.0.1:80",class="2xx"}"#;
    let time = r#"waygate_target_response_time_seconds_count{target_group="my-targets",target="10.0.0.1:80"}"#;
    let bytes = r#"waygate_processed_bytes_total{listener="public"}"#;
    for (m, n) in [(&a, 2.0), (&b, 1.0)] {
        let t = m.encode();
        for series in [requests, target, time] {
            assert_eq!(sample(&t, series), n, "{series} in\n{t}");
        }
        assert_eq!(sample(&t, bytes), 400.0 * n);
    }
    // Equal label values in other allocations are the same series; more series than the cache holds all count.
    let m = Metrics::new();
    for round in 0..3 {
        for i in 0..100 {
            let mut ex = success();
            ex.listener = Arc::from("public");
            ex.target_group = Some(TargetGroupRef::new(format!("g{}", i % 7)));
            ex.attempts = vec![Attempt::responded(format!("10.0.0.{i}:80"), 200 + (i % 2) * 300, ms(1))].into();
            ex.target_status = ex.attempts[0].status;
            ex.elb_status = ex.target_status.unwrap();
            m.observe(&ex);
            if round == 2 && i == 99 {
                let t = m.encode();
                let class = if i % 2 == 0 { "2xx" } else { "5xx" };
                let one = format!(
                    r#"waygate_target_responses_total{{target_group="g{}",target="10.0.0.{i}:80",class="{class}"}}"#,
                    i % 7
                );
                assert_eq!(sample(&t, &one), 3.0, "{t}");
                assert_eq!(sample(&t, r#"waygate_processed_bytes_total{listener="public"}"#), 300.0 * 400.0);
                assert_eq!(sample(&t, r#"waygate_requests_total{listener="public",target_group="g0"}"#), 45.0);
            }
        }
    }
}

#[test]
#[ignore = "prints the exposition for a human to read"]
fn print_exposition() {
    let m = Metrics::new();
    m.observe(&success());
    println!("{}", m.encode());
}
