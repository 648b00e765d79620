//! `[[alert]]`: the accepted forms (presets, count and ratio triggers, webhooks) and each mistake at its
//! line:col.

mod common;

use std::time::Duration;

use common::{LISTENER, errors, ok, one};

/// [`one`], collecting every mismatch so one run shows them all.
fn at(bad: &mut Vec<String>, text: &str, line: usize, col: usize, message: &str) {
    let found = errors(text);
    match &found[..] {
        [e] if (e.line, e.col) == (line, col) && e.message.contains(message) => {}
        _ => bad.push(format!(
            "want {line}:{col} {message:?}, got {:?}",
            found.iter().map(ToString::to_string).collect::<Vec<_>>()
        )),
    }
}
use waygate_config::{AlertTrigger, Origin, StatusMatch, WebhookFormat};
use waygate_faults::{Cause, Source};

const GROUP: &str = "[[target_group]]\nname = \"api\"\ntargets = [\"127.0.0.1:3000\"]\n";

#[test]
fn a_count_rule_as_interface_md_writes_it() {
    let config = ok(&format!(
        "{LISTENER}{GROUP}[[alert]]\nname = \"bad-gateway\"\n\
         when = {{ cause = [\"TargetConnectionRefused\", \"TargetTlsHandshakeTimeout\"], target_group = \"api\" }}\n\
         threshold = 10\nwindow = \"1m\"\nwebhook = \"http://127.0.0.1:9099/hook\"\n\
         runbook = \"https://wiki.example.com/runbooks/502\"\n"
    ));
    let a = &config.alerts[0];
    assert_eq!(a.name, "bad-gateway");
    assert_eq!(a.when.causes, [Cause::TargetConnectionRefused, Cause::TargetTlsHandshakeTimeout]);
    assert_eq!(a.when.target_group.as_deref(), Some("api"));
    assert_eq!(a.trigger, AlertTrigger::Count(10));
    assert_eq!(a.window, Duration::from_secs(60));
    assert_eq!(a.resolve_below, 5.0);
    let hook = a.webhook.as_ref().unwrap();
    assert_eq!(hook.ca, None);
    assert_eq!(
        (hook.url.as_str(), hook.format, hook.retries),
        ("http://127.0.0.1:9099/hook", WebhookFormat::Waygate, 3)
    );
    assert_eq!(a.runbook.as_deref(), Some("https://wiki.example.com/runbooks/502"));
}

#[test]
fn presets_turn_on_with_one_line_and_keys_beside_them_win() {
    let config = ok(&format!(
        "{LISTENER}[[alert]]\npreset = \"gateway-5xx-ratio\"\n\
         [[alert]]\npreset = \"target-cause-spike\"\nthreshold = 3\nwebhook = \"http://[::1]:9/x\"\nwebhook_format = \"slack\"\n"
    ));
    let [ratio, spike] = &config.alerts[..] else { panic!("two alerts") };
    assert_eq!(ratio.name, "gateway-5xx-ratio");
    assert_eq!(ratio.trigger, AlertTrigger::Ratio { ratio: 0.05, min_requests: 20 });
    assert_eq!((ratio.when.status, ratio.when.origin), (Some(StatusMatch::Class(5)), Origin::Gateway));
    assert_eq!(ratio.window, Duration::from_secs(300));
    assert_eq!(spike.name, "target-cause-spike");
    assert_eq!(spike.when.source, Some(Source::Target));
    assert_eq!(spike.trigger, AlertTrigger::Count(3));
    assert_eq!(spike.webhook.as_ref().unwrap().format, WebhookFormat::Slack);
}

#[test]
fn status_source_and_listener_matches() {
    let config = ok(&format!(
        "{LISTENER}name = \"public\"\n[[alert]]\nname = \"t5\"\nwhen = {{ status = 502, listener = \"public\", target_only = true }}\n\
         ratio = 0.5\nmin_requests = 4\nresolve_below = 0.1\nwindow = \"30s\"\n"
    ));
    let a = &config.alerts[0];
    assert_eq!((a.when.status, a.when.origin), (Some(StatusMatch::Code(502)), Origin::Target));
    assert_eq!(a.when.listener.as_deref(), Some("public"));
    assert_eq!(a.trigger, AlertTrigger::Ratio { ratio: 0.5, min_requests: 4 });
    assert_eq!(a.resolve_below, 0.1);
}

#[test]
fn every_mistake_is_located() {
    let rule = |body: &str| format!("{LISTENER}[[alert]]\nname = \"a\"\n{body}");
    let mut bad = Vec::new();
    at(
        &mut bad,
        &rule("threshold = 1\nwhen = { cause = \"TargetOops\" }\n"),
        6,
        18,
        "unknown fault cause `TargetOops`",
    );
    at(
        &mut bad,
        &rule("threshold = 1\nwhen = { cause = [\"NoRoute\", \"Nope\"] }\n"),
        6,
        30,
        "unknown fault cause `Nope`",
    );
    at(&mut bad, &rule("threshold = 1\nwhen = { status = \"6xx\" }\n"), 6, 19, "when.status \"6xx\"");
    at(&mut bad, &rule("threshold = 1\nwhen = { causes = [] }\n"), 6, 10, "unknown key `causes`");
    at(
        &mut bad,
        &rule("threshold = 1\nwhen = { target_group = \"nope\" }\n"),
        6,
        25,
        "when.target_group \"nope\" is not defined",
    );
    at(
        &mut bad,
        &rule("threshold = 1\nwhen = { listener = \"nope\" }\n"),
        6,
        21,
        "when.listener \"nope\" is not defined",
    );
    at(&mut bad, &rule("threshold = 1\nwhen = { elb_only = true, target_only = true }\n"), 6, 8, "exclude each other");
    at(&mut bad, &rule("threshold = 1\nratio = 0.5\n"), 6, 9, "either threshold");
    at(&mut bad, &rule("threshold = 0\n"), 5, 13, "threshold 0 out of range");
    at(&mut bad, &rule("ratio = 1.5\n"), 5, 9, "ratio 1.5 out of range");
    at(&mut bad, &rule("threshold = 2\nmin_requests = 5\n"), 6, 16, "min_requests applies to a ratio");
    at(&mut bad, &rule("threshold = 2\nresolve_below = 2\n"), 6, 17, "below the firing value 2");
    at(&mut bad, &rule("threshold = 1\nwindow = \"2h\"\n"), 6, 10, "window \"2h\" out of range");
    at(&mut bad, &rule("threshold = 1\nwindow = \"1500ms\"\n"), 6, 10, "whole seconds");
    at(&mut bad, &rule("threshold = 1\nwebhook = \"ftp://hooks.example.com/x\"\n"), 6, 11, "must start with http://");
    at(
        &mut bad,
        &rule("threshold = 1\nwebhook = \"http://h/\"\nwebhook_ca = \"ca.pem\"\n"),
        7,
        14,
        "applies to an https",
    );
    at(&mut bad, &rule("threshold = 1\nwebhook = \"http://h:0/x\"\n"), 6, 11, "port \"0\"");
    at(&mut bad, &rule("threshold = 1\nwebhook_retries = 2\n"), 6, 19, "webhook_retries needs a webhook");
    at(
        &mut bad,
        &rule("threshold = 1\nwebhook = \"http://h/\"\nwebhook_timeout = \"2m\"\n"),
        7,
        19,
        "webhook_timeout \"2m\" out of range",
    );
    at(
        &mut bad,
        &rule("threshold = 1\nwebhook = \"http://h/\"\nwebhook_format = \"teams\"\n"),
        7,
        18,
        "unknown variant `teams`",
    );
    at(&mut bad, &rule("threshold = 1\nthreshhold = 2\n"), 6, 1, "alert \"a\": unknown key `threshhold`");
    at(&mut bad, &rule(""), 3, 1, "missing key `threshold` (a count) or `ratio`");
    at(&mut bad, &format!("{LISTENER}[[alert]]\nthreshold = 1\n"), 3, 1, "alert #1: missing key `name`");
    at(&mut bad, &format!("{LISTENER}[[alert]]\npreset = \"latency\"\n"), 4, 10, "unknown preset \"latency\"");
    at(
        &mut bad,
        &format!("{LISTENER}[[alert]]\nname = \"bad name\"\nthreshold = 1\n"),
        4,
        8,
        "name \"bad name\" is invalid",
    );
    assert!(bad.is_empty(), "misplaced or misworded:\n{}", bad.join("\n"));
    let dup = format!("{LISTENER}[[alert]]\nname = \"x\"\nthreshold = 1\n[[alert]]\nname = \"x\"\nthreshold = 2\n");
    one(&dup, 7, 8, "alert \"x\": another alert has this name");
    // Two bad rules: both reported.
    let two = format!("{LISTENER}[[alert]]\nname = \"x\"\nthreshold = -1\n[[alert]]\nname = \"y\"\nratio = 0.0\n");
    assert_eq!(errors(&two).len(), 2);
}
