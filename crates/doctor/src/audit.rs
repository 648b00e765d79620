//! waygate's audit log (control-plane events from `GET /api/v1/audit`), read only for deregistrations: with
//! it, "502s on a target just before it left" becomes exact (which deregistration, when, by whom).
//!
//! The reader is deliberately tolerant of the shape, since the admin API owns it: a JSON array, an object
//! with an `events` array, or JSON lines; each event an object with a time (`time`, `timestamp`, `at`: ISO
//! 8601 or epoch seconds), an action (`action`, `event`, `type`, `kind`, `op`) containing "deregister"
//! (any case), a target (`target`, `address`, or a `targets` array), and optionally `target_group` and
//! `actor`. Other events and unreadable lines are skipped.

use serde_json::Value;

use crate::time::{Micros, SECOND, parse_timestamp};

/// One deregistration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deregistration {
    pub time: Micros,
    pub target: String,
    pub target_group: Option<String>,
    pub actor: Option<String>,
}

fn first_str<'v>(o: &'v serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'v str> {
    keys.iter().find_map(|k| o.get(*k).and_then(Value::as_str))
}

fn event(v: &Value, out: &mut Vec<Deregistration>) {
    let Some(o) = v.as_object() else { return };
    let action = first_str(o, &["action", "event", "type", "kind", "op", "operation"]).unwrap_or("");
    if !action.to_ascii_lowercase().contains("deregister") {
        return;
    }
    let time = ["time", "timestamp", "at", "ts"].iter().find_map(|k| match o.get(*k)? {
        Value::String(s) => parse_timestamp(s.as_bytes()),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|f| (f * SECOND as f64) as Micros),
        _ => None,
    });
    let Some(time) = time else { return };
    let target_group = first_str(o, &["target_group", "group", "target_group_name"]).map(str::to_owned);
    let actor = first_str(o, &["actor", "by", "user", "principal"]).map(str::to_owned);
    let mut targets: Vec<String> =
        first_str(o, &["target", "address", "target_address"]).map(str::to_owned).into_iter().collect();
    if let Some(Value::Array(a)) = o.get("targets") {
        targets.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    for target in targets {
        out.push(Deregistration { time, target, target_group: target_group.clone(), actor: actor.clone() });
    }
}

/// Reads the deregistrations from an audit log's text.
pub fn parse_audit(text: &str) -> Vec<Deregistration> {
    let mut out = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a.iter().for_each(|v| event(v, &mut out)),
        Ok(Value::Object(o)) if o.get("events").is_some_and(Value::is_array) => {
            if let Some(Value::Array(a)) = o.get("events") {
                a.iter().for_each(|v| event(v, &mut out));
            }
        }
        _ => {
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    event(&v, &mut out);
                }
            }
        }
    }
    out.sort_by(|a, b| (a.time, &a.target).cmp(&(b.time, &b.target)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let lines = r#"{"time":"2024-05-01T10:00:00Z","action":"deregister","target":"10.0.0.1:80","actor":"ops"}
{"time":"2024-05-01T10:00:00Z","action":"register","target":"10.0.0.2:80"}
not json"#;
        let d = parse_audit(lines);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].target, "10.0.0.1:80");
        assert_eq!(d[0].actor.as_deref(), Some("ops"));
        let arr = r#"{"events":[{"at":1714557600,"event":"TargetDeregistered","targets":["a:1","b:2"]}]}"#;
        assert_eq!(parse_audit(arr).len(), 2);
        let array =
            r#"[{"time":"2024-05-01T10:00:00Z","action":"deregister","target":"10.0.0.3:80"},{"action":"reload"}]"#;
        assert_eq!(parse_audit(array).iter().map(|d| d.target.as_str()).collect::<Vec<_>>(), ["10.0.0.3:80"]);
    }
}
