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
    with_status(cause, errors, failure, |status| {
        let rendered = render_with(status, errors.profile, id.to_str().unwrap_or("-"));
        let mut resp = Response::new(ProxyBody::full(rendered.body));
        *resp.status_mut() = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        insert_proxy_status(headers, &rendered.proxy_status);
        headers.insert(&X_REQUEST_ID, id.clone());
        resp
    })
}

/// Calls `answer` with the `Proxy-Status` of `cause`: its RFC 9209 type from the failure's timer and, only with
/// `expose_details`, the next hop, the TLS alert and a one-line explanation.
fn with_status<T>(
    cause: Cause,
    errors: Errors,
    failure: Option<(&str, &AttemptFailure)>,
    answer: impl FnOnce(&ProxyStatus<'_>) -> T,
) -> T {
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
    answer(&ProxyStatus::new(cause).timed_out(timed_out).details(details.as_ref()))
}

/// The catalogue emits RFC 8941 syntax, printable ASCII only; a failure here would be a catalogue bug.
fn insert_proxy_status(headers: &mut http::HeaderMap, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(&PROXY_STATUS, v);
    }
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The answer a gRPC client gets when the gateway fails its call: HTTP 200, trailers-only (the head ends the
/// stream), `grpc-status` from the catalogue ([`Cause::grpc_code`]), `grpc-message` naming the cause, and
/// the same `Proxy-Status` and `x-request-id` as every gateway answer (INTERFACE.md).
pub fn grpc_error(
    cause: Cause,
    errors: Errors,
    id: &HeaderValue,
    failure: Option<(&str, &AttemptFailure)>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::empty());
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(&GRPC_STATUS, HeaderValue::from(u16::from(cause.grpc_code().code())));
    let message = format!("{}: {} (request id {})", cause.name(), cause.title(), id.to_str().unwrap_or("-"));
    if let Ok(v) = HeaderValue::from_str(&grpc_percent_encode(&message)) {
        headers.insert(&GRPC_MESSAGE, v);
    }
    with_status(cause, errors, failure, |status| insert_proxy_status(headers, &status.to_string()));
    headers.insert(&X_REQUEST_ID, id.clone());
    resp
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII, and `%`, as `%XX`.
fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_answers_are_trailers_only_with_the_catalogues_code() {
        let id = HeaderValue::from_static("Root=1-abc");
        let errors = Errors { profile: waygate_config::ErrorProfile::Alb, expose_details: false };
        let resp = grpc_error(Cause::TargetConnectionRefused, errors, &id, None);
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(http_body::Body::is_end_stream(resp.body()), "trailers-only: the head ends the stream");
        let h = resp.headers();
        assert_eq!(h["grpc-status"], "14");
        assert_eq!(
            h["grpc-message"],
            "TargetConnectionRefused: The upstream server refused the connection (request id Root=1-abc)"
        );
        assert_eq!(h["content-type"], "application/grpc");
        assert!(h["proxy-status"].to_str().unwrap().contains("connection_refused"));
        assert_eq!(h["x-request-id"], "Root=1-abc");
        assert_eq!(grpc_percent_encode("100% é"), "100%25 %C3%A9");
    }
}
