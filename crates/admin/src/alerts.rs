//! `GET /api/v1/alerts`: every `[[alert]]` rule with its state (ok, firing), value, since when, the evidence in
//! its window (matching exchanges by cause) and the request ids of its latest matches, each one that
//! `waygate explain` opens; plus what the rule is (trigger, window, match, webhook, runbook), so the dashboard
//! and an operator read the rule and its state from one answer.

use serde_json::{Map, Value, json};
use waygate_config::{AlertTrigger, Origin, StatusMatch};
use waygate_proxy::Gateway;
use waygate_telemetry::{AlertState, alerts::seconds_text, alerts::trigger_kind, iso8601};

pub fn alerts(gw: &Gateway) -> Value {
    let rules: Vec<Value> = gw
        .alerts()
        .status()
        .into_iter()
        .map(|s| {
            let a = &s.alert;
            let causes: Map<String, Value> = s
                .causes
                .iter()
                .map(|(c, n)| ((if c.is_empty() { "TargetStatus" } else { c }).to_owned(), json!(n)))
                .collect();
            let (min_requests, threshold) = match a.trigger {
                AlertTrigger::Count(n) => (Value::Null, json!(n)),
                AlertTrigger::Ratio { ratio, min_requests } => (json!(min_requests), json!(ratio)),
            };
            json!({
                "name": a.name,
                "state": s.state.as_str(),
                "firing": s.state == AlertState::Firing,
                "value": s.value,
                "threshold": threshold,
                "trigger": trigger_kind(&a.trigger),
                "min_requests": min_requests,
                "resolve_below": a.resolve_below,
                "window": seconds_text(a.window),
                "since": iso8601(s.since),
                "in_scope": s.in_scope,
                "matching": s.matching,
                "causes": causes,
                "request_ids": s.request_ids,
                "explain": s.request_ids.first().map(|id| format!("waygate explain {id}")),
                "remediation": s.remediation,
                "runbook": a.runbook,
                "webhook": a.webhook.as_ref().map(|w| &w.url),
                "when": when(&a.when),
            })
        })
        .collect();
    json!({ "alerts": rules })
}

/// The match as the config writes it.
fn when(m: &waygate_config::AlertMatch) -> Value {
    let mut out = Map::new();
    if !m.causes.is_empty() {
        out.insert("cause".into(), json!(m.causes.iter().map(|c| c.name()).collect::<Vec<_>>()));
    }
    if let Some(s) = m.status {
        let text = match s {
            StatusMatch::Class(c) => format!("{c}xx"),
            StatusMatch::Code(c) => c.to_string(),
        };
        out.insert("status".into(), json!(text));
    }
    if let Some(s) = m.source {
        out.insert("source".into(), json!(format!("{s:?}").to_lowercase()));
    }
    if let Some(g) = &m.target_group {
        out.insert("target_group".into(), json!(g));
    }
    if let Some(l) = &m.listener {
        out.insert("listener".into(), json!(l));
    }
    match m.origin {
        Origin::Any => {}
        Origin::Gateway => {
            out.insert("elb_only".into(), json!(true));
        }
        Origin::Target => {
            out.insert("target_only".into(), json!(true));
        }
    }
    Value::Object(out)
}
