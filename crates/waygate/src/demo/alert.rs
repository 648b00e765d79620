//! The demo's one alert rule, `demo-refused`: a few refused connects within a minute fire it. This module holds
//! the rule as the configuration writes it, the commands that make it fire, show it and explain one of its
//! requests (`waygate explain`), and the remark that says where else a firing alert shows (the system log, the
//! dashboard). The test
//! `demo_alert_fires_on_the_refused_route` (crates/waygate/tests/demo.rs) runs the commands and checks each
//! place; `demo_keeps_every_printed_promise` runs them with the rest of the banner.
//!
//! The rule counts the cause, not a route: the demo's only route that produces it is `/fault/refuse`, whose
//! requests keep failing with it even once its target is unhealthy (the group fails open).

use waygate_faultlab::Fault;
use waygate_faults::Cause;

use super::routes::{Try, try_};

const NAME: &str = "demo-refused";
const CAUSE: Cause = Cause::TargetConnectionRefused;
/// Matching exchanges within [`WINDOW`] that fire the rule: few, so that one printed curl reaches it.
const THRESHOLD: u32 = 3;
const WINDOW: &str = "1m";
/// [`WINDOW`] as the log line and the admin API write it.
const WINDOW_WRITTEN: &str = "60s";
/// The route whose requests the rule counts.
const FAULT: Fault = Fault::Refuse;

/// The `[[alert]]` table of the demo's configuration.
pub fn config() -> String {
    format!(
        "# `waygate demo` prints how to make it fire and where it shows.\n\
         [[alert]]\nname = \"{NAME}\"\nwhen = {{ cause = \"{CAUSE}\" }}\nthreshold = {THRESHOLD}\nwindow = \"{WINDOW}\"\n"
    )
}

/// The line that introduces the rule, before its commands.
pub fn intro() -> String {
    format!(
        "Alert: the configuration has one rule, {NAME}: {THRESHOLD} {CAUSE} within {WINDOW} fire it (rules are \
         checked every second). Make it fire, then read it:"
    )
}

/// The command that makes the rule fire (curl's `[1-N]` sends N requests) and the one that shows it firing.
pub fn tries() -> Vec<Try> {
    let statuses = vec!["502"; THRESHOLD as usize].join(" ");
    vec![
        try_(
            format!("curl -si \"{{gw}}/fault/{}?n=[1-{THRESHOLD}]\"", FAULT.name()),
            format!("{statuses} {CAUSE} ({THRESHOLD} requests: curl's [1-{THRESHOLD}])"),
        ),
        try_(
            "curl -s {admin}/api/v1/alerts",
            format!("{NAME} \"state\": \"firing\", with its value, causes, remediation and request_ids"),
        ),
        // curl's `%header{}` writes the response's x-request-id: any id of the rule's request_ids works as well.
        try_(
            format!(
                "waygate explain \"$(curl -s -o /dev/null -w '%header{{x-request-id}}' {{gw}}/fault/{})\" \
                 --admin {{admin}}",
                FAULT.name()
            ),
            format!(
                "one refused request's story: its timeline with the failing phase marked, {CAUSE}, the evidence \
                 (errno ECONNREFUSED), the remediation, and its access-log and system-log lines"
            ),
        ),
    ]
}

/// Where else the firing rule shows; `{admin}` is the admin API's base URL.
pub fn remark() -> String {
    format!(
        "It shows in three more places: the gateway's log (below) gets a WARN waygate::alert line \"waygate alert \
         {NAME} firing: value N (threshold {THRESHOLD}, window {WINDOW_WRITTEN}); causes: {CAUSE} N ...\"; the dashboard \
         ({{admin}}/dashboard) heads with FIRING: {NAME}; and each id in the rule's request_ids names the ERROR line \
         of the log that explains its request (cause, phase, the connection's evidence). The rule resolves (an INFO \
         line) once the minute slides past the refusals."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule counts the cause its route really produces.
    #[test]
    fn the_rule_counts_its_routes_cause() {
        assert_eq!(FAULT.expected_cause(), CAUSE.to_string());
    }
}
