//! `/api/v1/debug-sessions`: debug (trace) sessions, Apigee's Trace tool (INTERFACE.md). `POST` starts one
//! from `{"filter": {...}, "max_exchanges": 20, "timeout": "10m", "capture_body": false}` and answers 201 with
//! its id; `GET` lists them, `GET /{id}` shows one with its captured exchanges, `DELETE /{id}` stops and forgets
//! it. A body that does not parse is a 400 naming its field; a ninth capturing session is a 429. The sessions,
//! their limits and their memory bound live in `waygate_telemetry::debug`.

use http::StatusCode;
use serde_json::json;
use waygate_proxy::Gateway;
use waygate_telemetry::debug::{SessionSpec, spec};

use crate::reply::{self, Reply};

/// Parses a session's body, for the admin API and its fuzz target (fuzz/fuzz_targets/debug_session.rs).
pub fn parse_debug_session(body: &[u8]) -> Result<SessionSpec, String> {
    SessionSpec::parse(body)
}

pub fn start(gw: &Gateway, body: &[u8], actor: &str) -> Reply {
    let spec = match parse_debug_session(body) {
        Ok(spec) => spec,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, &format!("debug session: {e}")),
    };
    let shown = spec.to_json();
    match gw.debug_sessions().start(spec) {
        Ok(id) => {
            tracing::info!(target: "waygate::admin", id = %id, actor = %actor, spec = %shown, "debug session started");
            let mut v = json!({ "id": id });
            if let (Some(obj), serde_json::Value::Object(spec)) = (v.as_object_mut(), shown) {
                obj.extend(spec);
            }
            let mut resp = reply::json(StatusCode::CREATED, &v);
            if let Ok(location) = http::HeaderValue::from_str(&format!("/api/v1/debug-sessions/{id}")) {
                resp.headers_mut().insert(http::header::LOCATION, location);
            }
            resp
        }
        Err(too_many) => reply::error(StatusCode::TOO_MANY_REQUESTS, &too_many.to_string()),
    }
}

pub fn list(gw: &Gateway) -> Reply {
    let sessions = gw.debug_sessions().list();
    let limits = json!({
        "max_sessions": waygate_telemetry::debug::MAX_SESSIONS,
        "max_exchanges": spec::MAX_EXCHANGES,
        "bytes_per_exchange_at_most": waygate_telemetry::debug::CAPTURE_BOUND,
    });
    reply::json(StatusCode::OK, &json!({ "debug_sessions": sessions, "limits": limits }))
}

pub fn get(gw: &Gateway, id: &str) -> Reply {
    match gw.debug_sessions().get(id) {
        Some(view) => reply::json(StatusCode::OK, &json!(view)),
        None => not_found(id),
    }
}

pub fn stop(gw: &Gateway, id: &str, actor: &str) -> Reply {
    match gw.debug_sessions().stop(id) {
        Some(view) => {
            tracing::info!(target: "waygate::admin", id = %id, actor = %actor, captured = view.captured, "debug session stopped");
            reply::json(StatusCode::OK, &json!(view))
        }
        None => not_found(id),
    }
}

fn not_found(id: &str) -> Reply {
    reply::error(
        StatusCode::NOT_FOUND,
        &format!("no debug session {id:?}: it was stopped, replaced by a newer one, or the gateway restarted"),
    )
}
