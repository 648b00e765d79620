//! Classic ELB access logs, which sit in the same AWSLogs trees as ALB's: an HTTP listener's line is parsed
//! into the same [`Record`] (so attribution reads Classic's backend-vs-ELB 5xx the ALB way, and the report
//! counts them apart), a TCP/SSL listener's line (statuses `-`) into a [`crate::connlog::Conn`]. Lines that
//! start with a digit are either Classic's or an ALB connection log's; [`kind`] tells them apart.
//!
//! Classic ELB (reference: AWS's "Access logs for your Classic Load Balancer"): `time elb client:port
//! backend:port request_processing_time backend_processing_time response_processing_time elb_status_code
//! backend_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol`.

use std::borrow::Cow;

use crate::alb::split_alb;
use crate::record::{Entry, Malformed, Record, normalise_target, parse_seconds, parse_status};
use crate::time::parse_timestamp;

/// What a line that starts with a timestamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ClassicElb,
    AlbConnection,
}

/// A line starting with a digit: a Classic ELB access line (`elb-name client:port ...`) or an ALB connection
/// log line (`client_ip client_port listener_port ...`).
pub fn kind(line: &[u8]) -> Kind {
    let mut f = line.split(|b| *b == b' ');
    let (_, second, third) = (f.next(), f.next().unwrap_or(&[]), f.next().unwrap_or(&[]));
    let ip = std::str::from_utf8(second).ok().and_then(|s| s.parse::<std::net::IpAddr>().ok());
    if ip.is_some() && !third.is_empty() && third.iter().all(u8::is_ascii_digit) {
        Kind::AlbConnection
    } else {
        Kind::ClassicElb
    }
}

/// Parses a Classic ELB access-log line. A backend of `-` (no registered or healthy instance, or the
/// request never reached one) has no target status, as in ALB's logs. A TCP/SSL listener's line (both
/// statuses `-`) is a connection.
pub fn parse_classic_line(line: &[u8]) -> Result<Entry<'_>, Malformed> {
    let f = split_alb(line)?;
    if f.len() < 9 {
        return Err(Malformed::TooFewFields(f.len()));
    }
    let field = |i: usize| f.get(i).unwrap_or(b"-");
    if field(7) == b"-" && field(8) == b"-" {
        return crate::connlog::classic_tcp(&f).map(Entry::Connection);
    }
    let time = parse_timestamp(field(0)).ok_or(Malformed::BadTime)?;
    let elb_status = parse_status(field(7)).ok_or(Malformed::BadStatus)?;
    // Classic writes 0 (or `-`) when no instance answered.
    let target_status = match field(8) {
        b"-" | b"" | b"0" => None,
        s => Some(parse_status(s).ok_or(Malformed::BadStatus)?),
    };
    let backend = match field(3) {
        b"-" => &b""[..],
        b => b,
    };
    Ok(Entry::Request(Record {
        time,
        elb_status,
        target_status,
        target: normalise_target(Cow::Borrowed(backend)),
        processing: [parse_seconds(field(4)), parse_seconds(field(5)), parse_seconds(field(6))],
        target_group: Cow::Borrowed(field(1)),
        request_creation_time: None,
        error_reason: Cow::Borrowed(&[]),
        actions: Cow::Borrowed(&[]),
        classic: true,
    }))
}
