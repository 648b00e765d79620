//! The three body dialects: ALB's small HTML page, Apigee's `{"fault":...}` JSON and RFC 9457
//! problem+json. Each carries the cause and the request id so a user can quote them, and the exposed
//! details only when the operator turned them on. Built by hand with [`crate::escape`]: no serde here.

use std::fmt::Write as _;

use crate::escape::{html_text, json_string};
use crate::proxy_status::ProxyStatusDetails;
use crate::response::PROBLEM_TYPE_PREFIX;
use crate::{Cause, tls_alert_id, tls_alert_name};

/// What every body is rendered from.
pub(crate) struct View<'a> {
    pub cause: Cause,
    pub status: u16,
    pub reason: &'static str,
    pub request_id: &'a str,
    pub details: Option<&'a ProxyStatusDetails<'a>>,
}

impl View<'_> {
    /// The exposed facts as (key, value) pairs, in a fixed order. The alert is canonicalised and only
    /// shown for TargetTlsAlert, like in `Proxy-Status`.
    fn exposed(&self) -> Vec<(&'static str, String)> {
        let Some(d) = self.details else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(hop) = d.next_hop {
            out.push(("next_hop", hop.to_owned()));
        }
        if let Some(alert) = d.tls_alert.filter(|_| self.cause == Cause::TargetTlsAlert) {
            let name = tls_alert_id(alert).and_then(tls_alert_name).unwrap_or(alert);
            out.push(("tls_alert", name.to_owned()));
        }
        if let Some(message) = d.message {
            out.push(("message", message.to_owned()));
        }
        out
    }
}

/// ALB's page (`<center><h1>502 Bad Gateway</h1></center>`), with a footer line naming the cause and
/// request id where nginx-style pages name the server.
pub(crate) fn alb_html(v: &View<'_>) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n",
        v.status, v.reason
    );
    for (key, value) in v.exposed() {
        out.push_str("<center>");
        out.push_str(key);
        out.push_str(": ");
        html_text(&mut out, &value);
        out.push_str("</center>\r\n");
    }
    let _ = write!(out, "<hr><center>waygate: {} (request id ", v.cause);
    html_text(&mut out, v.request_id);
    out.push_str(")</center>\r\n</body>\r\n</html>\r\n");
    out
}

/// Apigee's fault JSON. `reason` only where Apigee X has one; `cause` and `request_id` are waygate's
/// additions inside `detail`, where Apigee clients (which match on faultstring and errorcode) ignore them.
pub(crate) fn apigee_json(v: &View<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"fault\":{\"faultstring\":");
    json_string(&mut out, v.cause.apigee_faultstring());
    out.push_str(",\"detail\":{\"errorcode\":");
    json_string(&mut out, v.cause.apigee_errorcode());
    if let Some(reason) = v.cause.apigee_reason() {
        out.push_str(",\"reason\":");
        json_string(&mut out, reason);
    }
    member(&mut out, "cause", v.cause.name());
    member(&mut out, "request_id", v.request_id);
    for (key, value) in v.exposed() {
        member(&mut out, key, &value);
    }
    out.push_str("}}}");
    out
}

/// RFC 9457 problem details. `detail` is client-level text unless a message is exposed; `cause` and
/// `request_id` are extension members.
pub(crate) fn problem_json(v: &View<'_>) -> String {
    let mut out = String::with_capacity(320);
    out.push_str("{\"type\":");
    json_string(&mut out, &format!("{PROBLEM_TYPE_PREFIX}{}", v.cause));
    member(&mut out, "title", v.cause.title());
    let _ = write!(out, ",\"status\":{}", v.status);
    let detail = match v.details.and_then(|d| d.message) {
        Some(message) => message.to_owned(),
        None => format!("{}. Quote request id {} when reporting this error.", v.cause.title(), v.request_id),
    };
    member(&mut out, "detail", &detail);
    member(&mut out, "cause", v.cause.name());
    member(&mut out, "request_id", v.request_id);
    for (key, value) in v.exposed() {
        if key != "message" {
            member(&mut out, key, &value);
        }
    }
    out.push('}');
    out
}

/// Appends `,"key":"value"`.
fn member(out: &mut String, key: &str, value: &str) {
    out.push(',');
    json_string(out, key);
    out.push(':');
    json_string(out, value);
}
