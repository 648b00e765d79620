//! The admin API's changes: `POST /api/v1/target-groups/{name}/targets` (register),
//! `DELETE /api/v1/target-groups/{name}/targets/{address}` (deregister: the target drains) and
//! `POST /api/v1/reload` (the config file again; the running configuration stays when the file is invalid).
//! Each is recorded in the audit log under the caller's token name.

use std::path::Path;

use http::StatusCode;
use serde_json::{Value, json};
use waygate_config::TargetSpec;
use waygate_proxy::control::ControlError;
use waygate_proxy::{Gateway, ReloadError};

use crate::reply::{self, Reply};

fn control_error(e: &ControlError) -> Reply {
    let status = match e {
        ControlError::UnknownGroup(_) | ControlError::NotRegistered { .. } => StatusCode::NOT_FOUND,
        ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
        ControlError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply::error(status, &e.to_string())
}

/// Reads `{"targets": ["host:port", {"address": "host:port", "weight": N}, ...]}`; errors say which entry.
pub fn parse_targets(body: &[u8]) -> Result<Vec<TargetSpec>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let Some(list) = v.get("targets").and_then(Value::as_array) else {
        return Err(r#"expected {"targets": ["host:port", ...]}"#.to_owned());
    };
    if list.is_empty() {
        return Err("targets: empty list".to_owned());
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let (address, weight) = match t {
            Value::String(s) => (s.as_str(), 1),
            Value::Object(o) => {
                let Some(address) = o.get("address").and_then(Value::as_str) else {
                    return Err(format!("targets[{i}]: missing \"address\""));
                };
                let weight = match o.get("weight") {
                    None => 1,
                    Some(w) => match w.as_u64() {
                        Some(w) if w <= 999 => w as u32,
                        _ => return Err(format!("targets[{i}].weight: expected an integer 0-999, got {w}")),
                    },
                };
                (address, weight)
            }
            other => return Err(format!("targets[{i}]: expected \"host:port\" or {{\"address\": ...}}, got {other}")),
        };
        let (host, port) = waygate_config::parse_target_address(address).map_err(|e| format!("targets[{i}]: {e}"))?;
        out.push(TargetSpec { host, port, weight });
    }
    Ok(out)
}

pub async fn register(gw: &Gateway, group: &str, body: &[u8], actor: &str) -> Reply {
    let targets = match parse_targets(body) {
        Ok(t) => t,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, &e),
    };
    let asked: Vec<String> = targets.iter().map(TargetSpec::authority).collect();
    match gw.register(group, targets, actor).await {
        Ok(added) => {
            let added: Vec<String> = added.iter().map(TargetSpec::authority).collect();
            let already: Vec<&String> = asked.iter().filter(|a| !added.contains(a)).collect();
            reply::json(
                StatusCode::OK,
                &json!({ "target_group": group, "registered": added, "already_registered": already }),
            )
        }
        Err(e) => control_error(&e),
    }
}

pub async fn deregister(gw: &Gateway, group: &str, address: &str, actor: &str) -> Reply {
    match gw.deregister(group, address, actor).await {
        Ok(d) => reply::json(
            StatusCode::ACCEPTED,
            &json!({
                "target_group": group,
                "target": d.target,
                "state": "draining",
                "reason": "Target.DeregistrationInProgress",
                "in_flight": d.in_flight,
                "deregistration_delay_ms": d.delay.as_millis() as u64,
                "audit_seq": d.audit_seq,
            }),
        ),
        Err(e) => control_error(&e),
    }
}

pub async fn reload(gw: &Gateway, path: Option<&Path>, actor: &str) -> Reply {
    let Some(path) = path else {
        return reply::error(
            StatusCode::CONFLICT,
            "this gateway runs without a configuration file (demo): nothing to reload",
        );
    };
    let message = match gw.reload_file(path, actor).await {
        Ok(()) => return reply::json(StatusCode::OK, &json!({ "reloaded": path.display().to_string() })),
        Err(ReloadError::Config(e)) => format!("reload rejected, the running configuration stays:\n{e}"),
        Err(ReloadError::Apply(e)) => format!("reload rejected, the running configuration stays: {e}"),
    };
    reply::error(StatusCode::UNPROCESSABLE_ENTITY, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lists_are_read_with_their_errors_located() {
        let t = parse_targets(br#"{"targets": ["127.0.0.1:3000", {"address": "[::1]:81", "weight": 3}]}"#).unwrap();
        assert_eq!(t[0].authority(), "127.0.0.1:3000");
        assert_eq!((t[1].authority(), t[1].weight), ("[::1]:81".to_owned(), 3));
        assert!(parse_targets(b"nope").unwrap_err().starts_with("request body is not JSON"));
        assert!(parse_targets(br#"{"targets": []}"#).unwrap_err().contains("empty"));
        let e = parse_targets(br#"{"targets": ["127.0.0.1:3000", "no-port"]}"#).unwrap_err();
        assert!(e.starts_with("targets[1]: "), "{e}");
        let e = parse_targets(br#"{"targets": [{"address": "127.0.0.1:1", "weight": 1000}]}"#).unwrap_err();
        assert!(e.starts_with("targets[0].weight"), "{e}");
    }
}
