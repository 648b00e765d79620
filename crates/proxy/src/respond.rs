//! Responses the gateway generates itself. The status, body and `Proxy-Status` come from the fault
//! catalogue's renderer (one place decides them); this module only turns them into an HTTP response with
//! `x-request-id`, and adds the failure's facts when the operator set `expose_details`.

use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use waygate_config::Errors;
use waygate_faults::{Cause, ProxyStatus, ProxyStatusDetails, TlsEvidence, render_with};

use crate::body::ProxyBody;
use crate::headers::X_REQUEST_ID;
use crate::log::describe;
use crate::upstream::AttemptFailure;

static PROXY_STATUS: HeaderName = HeaderName::from_static("proxy-status");

/// The error response for `cause`. `failure` (target authority and evidence) feeds the RFC 9209 type
/// (e.g. `dns_timeout`) and, only with `expose_details`, the next hop and a one-line explanation.
pub fn error(
    cause: Cause,
    errors: Errors,
    id: &HeaderValue,
    failure: Option<(&str, &AttemptFailure)>,
) -> Response<ProxyBody> {
    let timed_out = failure.is_some_and(|(_, f)| f.timed_out.is_some());
    let message;
    let alert;
    let details = match failure.filter(|_| errors.expose_details) {
        Some((target, f)) => {
            message = describe(f);
            alert = match f.evidence().tls {
                Some(TlsEvidence::AlertReceived { description }) => Some(description),
                _ => None,
            };
            Some(ProxyStatusDetails { next_hop: Some(target), tls_alert: alert.as_deref(), message: Some(&message) })
        }
        None => None,
    };
    let status = ProxyStatus::new(cause).timed_out(timed_out).details(details.as_ref());
    let rendered = render_with(&status, errors.profile, id.to_str().unwrap_or("-"));
    let mut resp = Response::new(ProxyBody::full(rendered.body));
    *resp.status_mut() = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The catalogue emits RFC 8941 syntax, printable ASCII only; a failure here would be a catalogue bug.
    if let Ok(v) = HeaderValue::from_str(&rendered.proxy_status) {
        headers.insert(&PROXY_STATUS, v);
    }
    headers.insert(&X_REQUEST_ID, id.clone());
    resp
}
