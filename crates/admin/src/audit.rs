//! `GET /api/v1/audit[?since=SEQ]`: the control-plane events (register, deregister, drained, reload, health)
//! with time, actor and details, oldest first. Polling with `since` set to the last `seq` seen returns only
//! what is new.

use http::StatusCode;
use serde_json::json;
use waygate_proxy::Gateway;

use crate::reply::{self, Reply};

pub fn audit(gw: &Gateway, query: Option<&str>) -> Reply {
    let mut since = 0;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("since", v)) => match v.parse() {
                Ok(n) => since = n,
                Err(_) => {
                    return reply::error(StatusCode::BAD_REQUEST, &format!("since={v}: expected a sequence number"));
                }
            },
            _ => {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown query parameter {pair:?} (only since=SEQ)"),
                );
            }
        }
    }
    let events: Vec<_> = gw
        .audit()
        .since(since)
        .into_iter()
        .map(|e| {
            let mut event = json!({
                "seq": e.seq,
                "time": waygate_telemetry::iso8601(e.time),
                "actor": e.actor,
                "action": e.action.as_str(),
                "target_group": e.target_group,
                "target": e.target,
                "details": e.details,
            });
            if let Some(aborted) = e.aborted {
                event["aborted"] = json!(aborted);
            }
            event
        })
        .collect();
    reply::json(StatusCode::OK, &json!({ "events": events }))
}
