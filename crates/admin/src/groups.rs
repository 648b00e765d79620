//! `GET /api/v1/target-groups`: every target group and target as the data plane sees it now: health state and
//! ALB reason code, requests in
//! flight, idle pooled connections, and what the gateway learned about each target's keep-alive (with the
//! mis-tuning warning when the target closes idle connections sooner than `pool_idle_timeout`).

use std::time::Duration;

use serde_json::{Value, json};
use waygate_proxy::Runtime;

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_millis() as u64))
}

pub fn target_groups(rt: &Runtime) -> Value {
    let mut groups: Vec<_> = rt.config.target_groups.iter().filter_map(|g| rt.groups.get(&g.name)).collect();
    groups.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let targets: Vec<Value> = g
                .targets
                .iter()
                .map(|t| {
                    let ka = t.upstream.keepalive.view();
                    let (state, reason) = if g.config.health_check.enabled {
                        (t.health.state().as_str(), t.health.reason())
                    } else {
                        ("unavailable", Some("Target.HealthCheckDisabled"))
                    };
                    json!({
                        "address": t.authority,
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
                            "effective_ms": ka.effective.as_millis() as u64,
                            "stale_connections_discarded": ka.stale_discarded,
                            "warning": t.upstream.keepalive.warning(),
                        },
                    })
                })
                .collect();
            json!({
                "name": g.config.name,
                "arn": &*g.tg_ref.arn,
                "protocol": format!("{:?}", g.config.protocol).to_ascii_lowercase(),
                "algorithm": format!("{:?}", g.config.algorithm),
                "targets": targets,
            })
        })
        .collect();
    json!({ "target_groups": groups })
}
