//! `GET /api/v1/target-groups[/{name}]`: every target group and target as the data plane sees it now: state
//! (initial, healthy, unhealthy, draining, unused, unavailable) and ALB's reason code, requests in flight, idle
//! pooled connections, time left to drain, and what the gateway learned about each target's keep-alive (with
//! the mis-tuning warning when the target closes idle connections sooner than `pool_idle_timeout`). A lambda
//! group also has its `function`: name, qualifier, region, endpoint, health state, idle connections.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waygate_config::{Action, Algorithm, Config};
use waygate_proxy::Gateway;
use waygate_proxy::function::Function;
use waygate_proxy::target::Target;

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_millis() as u64))
}

/// The config spelling of an algorithm.
fn algorithm(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RoundRobin => "round_robin",
        Algorithm::LeastOutstandingRequests => "least_outstanding_requests",
        Algorithm::WeightedRandom => "weighted_random",
    }
}

/// Groups some listener rule or default action forwards to (ALB: the others' targets are `unused`,
/// Target.NotInUse).
fn groups_in_use(config: &Config) -> HashSet<&str> {
    let mut used = HashSet::new();
    for l in &config.listeners {
        let actions = l.rules.iter().map(|r| &r.action).chain(l.default_action.as_ref());
        for a in actions {
            if let Action::Forward(name) = a {
                used.insert(name.as_str());
            }
        }
    }
    used
}

fn target_json(t: &Target, state: &str, reason: Option<&str>) -> Value {
    let ka = t.upstream.keepalive.view();
    json!({
        "address": &*t.authority,
        "state": state,
        "reason": reason,
        "last_check": t.health.last().map(|o| format!("{o:?}")),
        "weight": t.spec.weight,
        "in_flight": t.in_flight(),
        "idle_connections": t.upstream.idle_connections(),
        "keepalive": {
            "pool_idle_timeout_ms": ka.configured.as_millis() as u64,
            "advertised_ms": ms(ka.advertised),
            "observed_close_ms": ms(ka.observed_close),
            "observed_close_candidate_ms": ms(ka.observed_close_candidate),
            "effective_ms": ka.effective.as_millis() as u64,
            "stale_connections_discarded": ka.stale_discarded,
            "warning": t.upstream.keepalive.warning(),
        },
    })
}

/// A lambda group's function: what it invokes, where, and its health as the target states say it.
fn function_json(f: &Function, in_use: bool, checked: bool) -> Value {
    let (state, reason) = match (in_use, checked) {
        (false, _) => ("unused", Some("Target.NotInUse")),
        (true, true) => (f.health.state().as_str(), f.health.reason()),
        (true, false) => ("unavailable", Some("Target.HealthCheckDisabled")),
    };
    json!({
        "name": f.config.name,
        "qualifier": f.config.qualifier,
        "region": f.config.region,
        "endpoint": f.config.endpoint,
        "multi_value_headers": f.config.multi_value_headers,
        "state": state,
        "reason": reason,
        "last_check": f.health.last().map(|o| format!("{o:?}")),
        "idle_connections": f.upstream.idle_connections(),
    })
}

/// One target of a group: its entry as listed, or (like ALB's DescribeTargetHealth) `unused` with
/// Target.NotRegistered when the group does not have it; `None` for an unknown group.
pub fn target(gw: &Gateway, group: &str, address: &str) -> Option<Value> {
    let groups = target_groups(gw, Some(group));
    let g = groups["target_groups"].as_array()?.first()?.clone();
    let wanted = waygate_config::parse_target_address(address)
        .map(|(host, port)| waygate_config::TargetSpec { host, port, weight: 1 }.authority())
        .unwrap_or_else(|_| address.to_owned());
    let found = g["targets"].as_array().into_iter().flatten().find(|t| t["address"] == wanted.as_str()).cloned();
    Some(found.unwrap_or_else(|| json!({ "address": wanted, "state": "unused", "reason": "Target.NotRegistered" })))
}

/// Every group (or only `only`), sorted by name.
pub fn target_groups(gw: &Gateway, only: Option<&str>) -> Value {
    let rt = gw.runtime();
    let draining = gw.draining();
    let used = groups_in_use(&rt.config);
    let mut groups: Vec<_> = rt
        .config
        .target_groups
        .iter()
        .filter(|g| only.is_none_or(|o| o == g.name))
        .filter_map(|g| rt.groups.get(&g.name))
        .collect();
    groups.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let now = Instant::now();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let in_use = used.contains(g.config.name.as_str());
            let mut targets: Vec<Value> = g
                .targets
                .iter()
                .map(|t| {
                    let (state, reason) = if !in_use {
                        ("unused", Some("Target.NotInUse"))
                    } else if g.config.health_check.enabled {
                        (t.health.state().as_str(), t.health.reason())
                    } else {
                        ("unavailable", Some("Target.HealthCheckDisabled"))
                    };
                    target_json(t, state, reason)
                })
                .collect();
            for d in draining.iter().filter(|d| d.group == g.config.name) {
                let mut v = target_json(&d.target, "draining", Some("Target.DeregistrationInProgress"));
                if let Some(info) = d.target.lifecycle.drain_info() {
                    v["drain_time_left_ms"] = json!(info.deadline.saturating_duration_since(now).as_millis() as u64);
                    v["deregistered_at"] = json!(waygate_telemetry::iso8601(info.since));
                    v["deregistered_by"] = json!(info.actor);
                }
                targets.push(v);
            }
            let mut v = json!({
                "name": g.config.name,
                "arn": &**g.tg_ref.arn(),
                "protocol": format!("{:?}", g.config.protocol).to_ascii_lowercase(),
                "algorithm": algorithm(g.config.algorithm),
                "deregistration_delay_ms": g.config.deregistration_delay.as_millis() as u64,
                "targets": targets,
            });
            if let Some(f) = &g.function {
                v["function"] = function_json(f, in_use, g.config.health_check.enabled);
            }
            v
        })
        .collect();
    json!({ "target_groups": groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lambda_group_lists_its_function() {
        let text = "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"fn\"\n\
                    [[target_group]]\nname = \"fn\"\nprotocol = \"lambda\"\n\
                    function = { name = \"my-fn\", endpoint = \"http://127.0.0.1:9\", qualifier = \"live\" }\n";
        let config = waygate_config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let gw = Gateway::start(config).await.unwrap();
        let v = target_groups(&gw, Some("fn"));
        let g = &v["target_groups"][0];
        assert_eq!(g["protocol"], "lambda");
        assert_eq!(g["targets"], json!([]));
        let f = &g["function"];
        assert_eq!((f["name"].as_str(), f["qualifier"].as_str()), (Some("my-fn"), Some("live")));
        assert_eq!(f["endpoint"], "http://127.0.0.1:9");
        assert_eq!(
            (f["state"].as_str(), f["reason"].as_str()),
            (Some("unavailable"), Some("Target.HealthCheckDisabled"))
        );
        gw.shutdown(std::time::Duration::from_secs(5)).await;
    }
}
