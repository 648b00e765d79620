//! One access-log line, reduced to what the analysis needs. Both parsers (`alb`, `json`) produce a
//! [`Record`]; the analysis never sees which format a line came from. Fields borrow from the input buffer
//! (`Cow::Borrowed`) so the ALB hot path allocates nothing; the JSON path may own a field when it had to
//! unescape it or join `target_ip` and `target_port`.

use std::borrow::Cow;
use std::fmt;

use crate::connlog::Conn;
use crate::time::{Micros, SECOND};

/// The fields of one request the doctor reasons about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the load balancer generated the response.
    pub time: Micros,
    /// `elb_status_code`.
    pub elb_status: u16,
    /// `target_status_code`; `None` for `-` (no response from a target) or a missing field.
    pub target_status: Option<u16>,
    /// `target:port`, empty for `-`.
    pub target: Cow<'a, [u8]>,
    /// request, target and response processing times; `-1` s is `Some(-SECOND)`, unparseable or missing is `None`.
    pub processing: [Option<Micros>; 3],
    /// `target_group_arn`, empty when missing or `-`.
    pub target_group: Cow<'a, [u8]>,
    /// `request_creation_time`, when present and valid.
    pub request_creation_time: Option<Micros>,
    /// `error_reason` verbatim (ALB's codes, waygate's cause names), empty for `-` or missing.
    pub error_reason: Cow<'a, [u8]>,
    /// `actions_executed` (`forward`, `fixed-response`, `waf,forward` ...), empty for `-` or missing.
    pub actions: Cow<'a, [u8]>,
    /// A Classic ELB access line (its statuses are `elb_status_code` and `backend_status_code`).
    pub classic: bool,
}

/// One parsed line: a request (ALB, waygate, Classic HTTP) or a client connection (ALB connection logs,
/// NLB, Classic TCP/SSL listeners; see [`crate::connlog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    Request(Record<'a>),
    Connection(Conn<'a>),
}

impl Record<'_> {
    /// ALB writes `-1` in all three processing times when the request could not be dispatched to a target
    /// or the target closed the connection before answering.
    pub fn all_processing_failed(&self) -> bool {
        self.processing.iter().all(|t| matches!(t, Some(v) if *v < 0))
    }

    /// The target took the request (its processing time is known) and the response never started
    /// (`response_processing_time` -1): the target closed the connection mid-request.
    pub fn target_closed_mid_request(&self) -> bool {
        matches!(self.processing[1], Some(t) if t >= 0) && matches!(self.processing[2], Some(t) if t < 0)
    }

    /// Whether `actions_executed` lists `action` (comma-separated names).
    pub fn executed(&self, action: &[u8]) -> bool {
        self.actions.split(|b| *b == b',').any(|a| a == action)
    }

    /// Time from the request's arrival to the response (`time - request_creation_time`), when both are known.
    pub fn duration(&self) -> Option<Micros> {
        self.request_creation_time.map(|c| self.time - c).filter(|d| *d >= 0)
    }
}

/// A target as reports show it and filters match it: `ip:port` for IPv4, `[v6]:port` for IPv6 in its
/// canonical (RFC 5952) spelling. AWS writes IPv6 targets unbracketed (`2001:db8::1:80`, the port after the
/// last colon); waygate brackets them. Only IPv6 targets are rewritten, so the IPv4 path allocates nothing.
pub fn normalise_target(t: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let colons = t.iter().filter(|b| **b == b':').count();
    if colons < 2 {
        return t;
    }
    let Ok(text) = std::str::from_utf8(&t) else { return t };
    if let Ok(a) = text.parse::<std::net::SocketAddrV6>() {
        return Cow::Owned(std::net::SocketAddr::V6(a).to_string().into_bytes());
    }
    // A target always has a port: `2001:db8::1:80` is address and port, though it parses as an address too.
    match text.rsplit_once(':').map(|(ip, port)| (ip.parse::<std::net::Ipv6Addr>(), port.parse::<u16>())) {
        Some((Ok(ip), Ok(port))) => Cow::Owned(format!("[{ip}]:{port}").into_bytes()),
        _ => t,
    }
}

/// A `--target` value in the form [`normalise_target`] gives records: `[v6]` alone matches any port.
pub fn normalise_target_filter(t: &str) -> String {
    let bare = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(t);
    if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
        return format!("[{ip}]");
    }
    String::from_utf8_lossy(&normalise_target(Cow::Borrowed(t.as_bytes()))).into_owned()
}

/// Why a line is not a log record. Counted and shown with file and line; never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than the fields up to `target_status_code`.
    TooFewFields(usize),
    /// A quoted field (1-based index) with no closing quote.
    UnterminatedQuote(usize),
    /// `time` is not an ISO 8601 timestamp.
    BadTime,
    /// `elb_status_code` or `target_status_code` is not a status.
    BadStatus,
    /// A JSON line that does not parse or is not an object.
    InvalidJson,
    /// A JSON object without a required key.
    MissingField(&'static str),
    /// A connection-log line where a request line was expected ([`parse_line`]; its kind).
    OtherLog(&'static str),
    /// A connection-log line with fewer fields than its kind needs (had, needed).
    TooFewConnectionFields(usize, usize),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewFields(n) => write!(f, "only {n} fields (need at least 10: type .. target_status_code)"),
            Self::UnterminatedQuote(i) => write!(f, "field {i} opens a quote that never closes"),
            Self::BadTime => f.write_str("time is not an ISO 8601 timestamp"),
            Self::BadStatus => f.write_str("status code is not a number"),
            Self::InvalidJson => f.write_str("invalid JSON object"),
            Self::MissingField(k) => write!(f, "JSON object without `{k}`"),
            Self::OtherLog(k) => write!(f, "{k} line: a connection, not an HTTP request"),
            Self::TooFewConnectionFields(n, need) => {
                write!(f, "connection-log line with only {n} fields (need at least {need})")
            }
        }
    }
}

/// Parses one line (without its newline) in any supported format: a line starting with `{` is waygate's
/// JSON format, one starting with a digit a Classic ELB access line or an ALB connection-log line, `tls 2.0 `
/// an NLB access line, anything else AWS's (and waygate's) ALB format.
pub fn parse_entry(line: &[u8]) -> Result<Entry<'_>, Malformed> {
    use crate::classic::{Kind, kind, parse_classic_line};
    match line.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) if line[i] == b'{' => crate::json::parse_json_line(&line[i..]).map(Entry::Request),
        Some(i) if line[i].is_ascii_digit() => match kind(&line[i..]) {
            Kind::ClassicElb => parse_classic_line(&line[i..]),
            Kind::AlbConnection => crate::connlog::parse_alb_connection(&line[i..]).map(Entry::Connection),
        },
        Some(i) if line[i..].starts_with(b"tls 2.0 ") => crate::connlog::parse_nlb(&line[i..]).map(Entry::Connection),
        _ => crate::alb::parse_alb_line(line).map(Entry::Request),
    }
}

/// Parses one request line in any supported format (see [`parse_entry`]); a connection-log line is
/// [`Malformed::OtherLog`].
pub fn parse_line(line: &[u8]) -> Result<Record<'_>, Malformed> {
    match parse_entry(line)? {
        Entry::Request(r) => Ok(r),
        Entry::Connection(c) => Err(Malformed::OtherLog(c.kind.what())),
    }
}

/// Parses an HTTP status: exactly three digits, 100 to 999.
#[inline]
pub(crate) fn parse_status(b: &[u8]) -> Option<u16> {
    match *b {
        [a @ b'1'..=b'9', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Parses a processing time in seconds (`0.001`, `-1`) into microseconds.
#[inline]
pub(crate) fn parse_seconds(b: &[u8]) -> Option<Micros> {
    let (neg, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if b.is_empty() || b.len() > 24 {
        return None;
    }
    let mut whole: i64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        whole = whole.checked_mul(10)?.checked_add(i64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac: i64 = 0;
    let mut scale = SECOND;
    if i < b.len() {
        if b[i] != b'.' {
            return None;
        }
        i += 1;
        while i < b.len() {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            if scale > 1 {
                scale /= 10;
                frac += i64::from(d) * scale;
            }
            i += 1;
        }
    }
    let v = whole.checked_mul(SECOND)?.checked_add(frac)?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds(b"-1"), Some(-SECOND));
        assert_eq!(parse_seconds(b"0.001"), Some(1000));
        assert_eq!(parse_seconds(b"10.5"), Some(10_500_000));
        assert_eq!(parse_seconds(b"1.1234567"), Some(1_123_456));
        for bad in [&b""[..], b"-", b"x", b"1.2.3", b"99999999999999999999"] {
            assert_eq!(parse_seconds(bad), None);
        }
    }

    #[test]
    fn ipv6_targets_are_bracketed_and_canonical() {
        let n = |t: &str| String::from_utf8(normalise_target(Cow::Borrowed(t.as_bytes())).into_owned()).unwrap();
        assert_eq!(n("2001:db8::1:80"), "[2001:db8::1]:80");
        assert_eq!(n("2001:DB8:0:0::1:80"), "[2001:db8::1]:80");
        assert_eq!(n("[2001:db8::1]:80"), "[2001:db8::1]:80");
        assert_eq!(n("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(normalise_target_filter("2001:db8::1"), "[2001:db8::1]");
        assert_eq!(normalise_target_filter("[2001:db8:0::1]"), "[2001:db8::1]");
        assert_eq!(normalise_target_filter("[2001:db8::1]:80"), "[2001:db8::1]:80");
        assert_eq!(normalise_target_filter("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn status() {
        assert_eq!(parse_status(b"502"), Some(502));
        assert_eq!(parse_status(b"-"), None);
        assert_eq!(parse_status(b"5021"), None);
        assert_eq!(parse_status(b"004"), None, "found by the fuzzer: statuses start at 100");
    }
}
