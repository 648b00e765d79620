//! `GET /api/v1/exchanges/{request_id}`: the flight recorder's full record of a recent failed exchange
//! (gateway-generated 4xx/5xx, or target 5xx), as `waygate explain` reads it; 404 saying why when there is
//! none (the request succeeded, never came here, or has left the ring).

use http::StatusCode;
use waygate_proxy::Gateway;
use waygate_telemetry::ExchangeView;

use crate::reply::{self, Reply};

pub fn exchange(gw: &Gateway, request_id: &str) -> Reply {
    let recorder = gw.flight_recorder();
    if let Some(ex) = recorder.get(request_id) {
        return match serde_json::to_value(ExchangeView::of(&ex)) {
            Ok(v) => reply::json(StatusCode::OK, &v),
            Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode the record: {e}")),
        };
    }
    let message = if recorder.capacity() == 0 {
        format!(
            "no record of request {request_id}: the flight recorder is off ([admin] flight_recorder = 0); \
             search the access log and the system log for the id"
        )
    } else {
        format!(
            "no failed exchange with request id {request_id} in the flight recorder: it keeps the last {} \
             failures (gateway-generated 4xx/5xx and target 5xx), so this request succeeded, did not pass \
             through this gateway, or has left the ring; search the access log and the system log for the id",
            recorder.capacity()
        )
    };
    reply::error(StatusCode::NOT_FOUND, &message)
}
