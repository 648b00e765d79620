//! Connection-level logs that sit in the same AWSLogs trees as ALB access logs: one line per client
//! connection rather than per request. Each is parsed into a [`Conn`], which `accum` counts into a summary per
//! kind (connections, failures by reason, listeners) next to the request analysis; they never become 5xx.
//!
//! - **ALB connection logs** (AWS: "Connection logs for your Application Load Balancer"; files named
//!   `conn_log_...`): `time client_ip client_port listener_port tls_protocol tls_cipher tls_handshake_latency
//!   "leaf_client_cert_subject" leaf_client_cert_validity leaf_client_cert_serial_number tls_verify_status
//!   conn_trace_id [tls_keyexchange elb ip_address ...]`. `tls_verify_status` is `Success` or
//!   `Failed:<code>` (`ClientCertUntrusted`, `ClientCertExpired`, `UnmappedConnectionError` ...): the client
//!   TLS failure and its reason.
//! - **NLB access logs** (AWS: "Access logs for your Network Load Balancer"; TLS listeners only): `tls 2.0
//!   time elb listener client:port destination:port connection_time tls_handshake_time received_bytes
//!   sent_bytes incoming_tls_alert chosen_cert_arn chosen_cert_serial tls_cipher tls_protocol_version
//!   tls_named_group domain_name alpn_fe_protocol alpn_be_protocol alpn_client_preference_list
//!   tls_connection_creation_time`. AWS writes `tls_handshake_time` `-` when the handshake failed; the
//!   alert the client sent, if any, names the failure (`incoming_tls_alert`, the alert's number).
//! - **Classic ELB TCP/SSL listener lines**: Classic's access-log layout with `-` for both status codes and
//!   `"- - - "` for the request; a backend of `-` (or processing times of -1) is a connection the ELB could
//!   not pass to an instance.

use std::borrow::Cow;

use crate::alb::{AlbFields, split_alb};
use crate::record::{Malformed, normalise_target, parse_seconds};
use crate::time::{Micros, parse_timestamp};

/// Which connection log a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnKind {
    /// An ALB connection-log line.
    AlbConnection,
    /// An NLB (TLS listener) access-log line.
    NlbTls,
    /// A Classic ELB access-log line of a TCP or SSL listener.
    ClassicTcp,
}

impl ConnKind {
    /// Every kind, in report order.
    pub const ALL: [ConnKind; 3] = [Self::AlbConnection, Self::NlbTls, Self::ClassicTcp];

    /// The name in reports: `alb_connection`, `nlb_tls` or `classic_tcp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AlbConnection => "alb_connection",
            Self::NlbTls => "nlb_tls",
            Self::ClassicTcp => "classic_tcp",
        }
    }

    /// What the kind is, for a malformed line's reason.
    pub const fn what(self) -> &'static str {
        match self {
            Self::AlbConnection => "an ALB connection log",
            Self::NlbTls => "an NLB access log",
            Self::ClassicTcp => "a Classic ELB TCP/SSL listener",
        }
    }
}

/// One client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn<'a> {
    pub kind: ConnKind,
    pub time: Micros,
    /// ALB: the listener port; NLB: the listener id; Classic: the load balancer's name.
    pub listener: &'a [u8],
    /// NLB: `destination:port`; Classic: `backend:port`; empty when none (and always for ALB).
    pub target: Cow<'a, [u8]>,
    /// Why the connection failed, `None` when it did not: ALB's `tls_verify_status` code, NLB's alert name
    /// (`no alert` when the client sent none), Classic's `no backend`.
    pub failure: Option<Cow<'a, [u8]>>,
    /// NLB: the TLS alert the client sent, by name (`close_notify` on a completed connection is common).
    pub alert: Option<Cow<'a, [u8]>>,
    /// ALB: `conn_trace_id`, which the connection's access-log lines carry too; empty when none.
    pub trace_id: &'a [u8],
}

/// The reason an NLB line with a failed handshake and no incoming alert gets.
pub const NO_ALERT: &[u8] = b"no alert";
/// The reason a Classic TCP/SSL line gets when no backend took the connection.
pub const NO_BACKEND: &[u8] = b"no backend";

fn dash(b: &[u8]) -> bool {
    b.is_empty() || b == b"-"
}

fn field<'a>(f: &AlbFields<'a>, i: usize) -> &'a [u8] {
    f.get(i).unwrap_or(b"-")
}

fn need(f: &AlbFields<'_>, n: usize) -> Result<(), Malformed> {
    if f.len() < n { Err(Malformed::TooFewConnectionFields(f.len(), n)) } else { Ok(()) }
}

/// Parses an ALB connection-log line (`time client_ip client_port listener_port ...`).
pub fn parse_alb_connection(line: &[u8]) -> Result<Conn<'_>, Malformed> {
    let f = split_alb(line)?;
    need(&f, 11)?;
    let time = parse_timestamp(field(&f, 0)).ok_or(Malformed::BadTime)?;
    let status = field(&f, 10);
    let failure = match status {
        b"Success" => None,
        s if dash(s) => None,
        s => Some(Cow::Borrowed(s.strip_prefix(b"Failed:").unwrap_or(s))),
    };
    Ok(Conn {
        kind: ConnKind::AlbConnection,
        time,
        listener: field(&f, 3),
        target: Cow::Borrowed(&[]),
        failure,
        alert: None,
        trace_id: match field(&f, 11) {
            t if dash(t) => &[],
            t => t,
        },
    })
}

/// The name of an NLB `incoming_tls_alert` value: the alert's number (a value above 255 is read as level
/// and description, the two bytes of the alert record).
fn alert_name(v: &[u8]) -> Option<Cow<'static, [u8]>> {
    if dash(v) {
        return None;
    }
    let n = std::str::from_utf8(v).ok().and_then(|s| s.parse::<u32>().ok());
    Some(match n.map(|n| waygate_faults::tls_alert_name((n & 0xff) as u8)) {
        Some(Some(name)) => Cow::Borrowed(name.as_bytes()),
        _ => Cow::Owned(format!("alert {}", String::from_utf8_lossy(v)).into_bytes()),
    })
}

/// Parses an NLB access-log line (`tls 2.0 time elb listener client:port destination:port ...`).
pub fn parse_nlb(line: &[u8]) -> Result<Conn<'_>, Malformed> {
    let f = split_alb(line)?;
    need(&f, 12)?;
    let time = parse_timestamp(field(&f, 2)).ok_or(Malformed::BadTime)?;
    let alert = alert_name(field(&f, 11));
    let failure = dash(field(&f, 8)).then(|| alert.clone().unwrap_or(Cow::Borrowed(NO_ALERT)));
    let target = match field(&f, 6) {
        t if dash(t) => Cow::Borrowed(&b""[..]),
        t => normalise_target(Cow::Borrowed(t)),
    };
    Ok(Conn { kind: ConnKind::NlbTls, time, listener: field(&f, 4), target, failure, alert, trace_id: &[] })
}

/// Parses a Classic ELB TCP/SSL listener line from its split fields (the caller saw `-` statuses).
pub(crate) fn classic_tcp<'a>(f: &AlbFields<'a>) -> Result<Conn<'a>, Malformed> {
    let time = parse_timestamp(field(f, 0)).ok_or(Malformed::BadTime)?;
    let backend = field(f, 3);
    let unsent = (4..7).all(|i| matches!(parse_seconds(field(f, i)), Some(t) if t < 0));
    let target = if dash(backend) { Cow::Borrowed(&b""[..]) } else { normalise_target(Cow::Borrowed(backend)) };
    let failure = (target.is_empty() || unsent).then_some(Cow::Borrowed(NO_BACKEND));
    Ok(Conn { kind: ConnKind::ClassicTcp, time, listener: field(f, 1), target, failure, alert: None, trace_id: &[] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_numbers_and_level_description_pairs() {
        assert_eq!(alert_name(b"40").as_deref(), Some(&b"handshake_failure"[..]));
        assert_eq!(alert_name(b"554").as_deref(), Some(&b"bad_certificate"[..]), "2 << 8 | 42");
        assert_eq!(alert_name(b"-"), None);
        assert_eq!(alert_name(b"7x").as_deref(), Some(&b"alert 7x"[..]));
    }
}
