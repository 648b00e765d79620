//! The `Proxy-Status` header (RFC 9209) on every response the gateway generates:
//! `waygate; error=<type>; details="<Cause>"`. `error` is an sf-token from the catalogue, `details` an
//! sf-string whose first word is always the cause name, so [`parse_proxy_status_cause`] can read it back
//! even when exposed details follow (`details="TargetTlsAlert: handshake_failure"`).
//!
//! Only when the operator sets `expose_details` does the header gain RFC 9209's `next-hop`, `alert-id`
//! and `alert-message` and a descriptive details text; by default it names the cause and nothing else.
//! ClientClosedRequest has no RFC 9209 type, so its header omits `error` (RFC 9209 makes it optional).

use std::fmt;

use crate::sf::{self, BareItem, Member};
use crate::{Cause, tls_alert_id, tls_alert_name};

/// The name this gateway uses as its `Proxy-Status` list member (an sf-token).
pub const PROXY_NAME: &str = "waygate";

/// Details the operator chose to expose (`[errors] expose_details = true`). Absent by default, and then
/// no target address, TLS library message or certificate detail reaches the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStatusDetails<'a> {
    /// The target tried, e.g. `10.0.0.7:443` (RFC 9209 `next-hop`).
    pub next_hop: Option<&'a str>,
    /// The TLS alert the target sent, by name (`handshake_failure`); becomes `alert-id`/`alert-message`
    /// for TargetTlsAlert.
    pub tls_alert: Option<&'a str>,
    /// A one-line explanation, e.g. "TCP connected, ClientHello sent, no reply in 10s".
    pub message: Option<&'a str>,
}

/// Everything that goes into one `Proxy-Status` value. `timed_out` only matters where RFC 9209 has a
/// timeout-specific type (TargetDnsFailure: `dns_timeout`), and is not a detail: it is always honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyStatus<'a> {
    pub cause: Cause,
    pub timed_out: bool,
    pub details: Option<&'a ProxyStatusDetails<'a>>,
}

impl<'a> ProxyStatus<'a> {
    /// The default header for `cause`: no details.
    pub const fn new(cause: Cause) -> Self {
        Self { cause, timed_out: false, details: None }
    }

    /// Whether the failing phase's timer fired (from [`crate::Evidence::timed_out`]).
    pub const fn timed_out(mut self, timed_out: bool) -> Self {
        self.timed_out = timed_out;
        self
    }

    /// Exposed details, or `None` to expose nothing.
    pub const fn details(mut self, details: Option<&'a ProxyStatusDetails<'a>>) -> Self {
        self.details = details;
        self
    }

    /// The RFC 9209 error type this header carries.
    pub const fn error_type(&self) -> Option<&'static str> {
        self.cause.proxy_status_error_for(self.timed_out)
    }

    /// The `details` text: the cause name, then `": "` and the exposed message or alert name if any.
    pub fn details_text(&self) -> String {
        let extra = self.details.and_then(|d| d.message.or(d.tls_alert.filter(|_| self.alerts())));
        match extra {
            Some(extra) => format!("{}: {extra}", self.cause),
            None => self.cause.name().to_owned(),
        }
    }

    fn alerts(&self) -> bool {
        self.error_type() == Some("tls_alert_received")
    }
}

impl fmt::Display for ProxyStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from(PROXY_NAME);
        if let Some(error) = self.error_type().filter(|t| sf::is_token(t)) {
            out.push_str("; error=");
            out.push_str(error);
        }
        out.push_str("; details=");
        sf::write_string(&mut out, &self.details_text());
        if let Some(d) = self.details {
            if let Some(hop) = d.next_hop {
                out.push_str("; next-hop=");
                sf::write_string(&mut out, hop);
            }
            if let Some(alert) = d.tls_alert.filter(|_| self.alerts()) {
                let id = tls_alert_id(alert);
                if let Some(id) = id {
                    out.push_str(&format!("; alert-id={id}"));
                }
                out.push_str("; alert-message=");
                let name = id.and_then(tls_alert_name).unwrap_or(alert);
                sf::write_string(&mut out, name);
            }
        }
        f.write_str(&out)
    }
}

/// The `Proxy-Status` value for `cause`, with exposed `details` when the operator turned them on.
pub fn proxy_status(cause: Cause, details: Option<&ProxyStatusDetails<'_>>) -> String {
    ProxyStatus::new(cause).details(details).to_string()
}

/// The cause in a `Proxy-Status` value: the first `waygate` member's `details`, up to the first `:` or
/// space. `None` when the value is not a valid sf-list or carries no waygate cause.
pub fn parse_proxy_status_cause(header_value: &str) -> Option<Cause> {
    sf::parse_list(header_value)?.iter().find_map(|member| {
        let Member::Item(item) = member else {
            return None;
        };
        if item.bare != BareItem::Token(PROXY_NAME.to_owned()) {
            return None;
        }
        let Some(BareItem::String(details)) = item.param("details") else {
            return None;
        };
        details.split([':', ' ']).next()?.parse().ok()
    })
}
