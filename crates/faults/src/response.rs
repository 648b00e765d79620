//! Error responses: the status, content type, body and `Proxy-Status` value for a cause in each profile.
//! Pure data (no `http` types) so the data plane, the demo and the doctor render identically.
//!
//! Bodies never contain a target address, TLS library message or certificate detail unless the operator
//! exposes details. The two stream_body causes have no status of their own (the target's went out
//! first); rendering them anyway gives 502 (Incomplete) and 504 (Stalled), what the same failure gets
//! before the head is sent, for the doctor and docs. The data plane never sends those.

use crate::body::{self, View};
use crate::proxy_status::{ProxyStatus, ProxyStatusDetails};
use crate::{Cause, Profile};

/// The `type` of problem+json bodies is this prefix plus the cause name. A URN because it identifies the
/// cause and is not meant to be dereferenced (RFC 9457 §3.1.1 allows non-resolvable URIs); clients switch
/// on it, or on the `cause` member.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:waygate:cause:";

/// The details exposed in bodies are the ones exposed in `Proxy-Status`: one switch, one set of facts.
pub type ResponseDetails<'a> = ProxyStatusDetails<'a>;

/// A gateway-generated response, ready for the data plane to send with `x-request-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// The `Proxy-Status` header value.
    pub proxy_status: String,
}

/// Renders `cause` in `profile` for the request `request_id`, exposing `details` only when given.
pub fn render(
    cause: Cause,
    profile: Profile,
    request_id: &str,
    details: Option<&ResponseDetails<'_>>,
) -> ErrorResponse {
    render_with(&ProxyStatus::new(cause).details(details), profile, request_id)
}

/// Like [`render`], from a full [`ProxyStatus`] (e.g. to say `dns_timeout` when the resolver timed out).
pub fn render_with(status: &ProxyStatus<'_>, profile: Profile, request_id: &str) -> ErrorResponse {
    let cause = status.cause;
    let code = cause.status(profile).unwrap_or(match cause {
        Cause::TargetResponseStalled => 504,
        _ => 502,
    });
    let view = View {
        cause,
        status: code,
        reason: reason_phrase(code).unwrap_or("Error"),
        request_id,
        details: status.details,
    };
    let (content_type, body) = match profile {
        Profile::Alb => ("text/html", body::alb_html(&view)),
        Profile::Apigee => ("application/json", body::apigee_json(&view)),
        Profile::Problem => ("application/problem+json", body::problem_json(&view)),
    };
    ErrorResponse { status: code, content_type, body, proxy_status: status.to_string() }
}

/// The reason phrase for a status the gateway can generate, including ALB's 460/463/464 and nginx's 499
/// (names chosen here where no standard exists).
pub const fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        460 => "Client Closed Request",
        463 => "Too Many X-Forwarded-For Addresses",
        464 => "Incompatible Protocol Version",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}
