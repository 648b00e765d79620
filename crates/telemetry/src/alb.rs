//! The ALB access-log line (reference/ALB.md §1): every column in order, quoted the same way, `-` and `-1`
//! with ALB's meanings, so the AWS Athena table and log shippers read waygate's files unchanged.
//!
//! Decisions where ALB is silent or its tooling disagrees with its docs:
//! - Quoted free-text columns (request, user_agent, trace_id, domain_name, chosen_cert_arn, redirect_url) write
//!   `"`, `\` and control characters as `\xHH` (nginx's escape form). AWS's Athena regex reads those columns as
//!   `"([^"]*)"`, so a backslash-escaped quote (`\"`) would make the whole line unreadable there; `\x22`
//!   keeps it parseable and is still reversible. Spaces in the URL are written `%20`.
//! - `target:port_list` and `target_status_code_list` join attempts with `,`: ALB documents a space-delimited
//!   list but only ever writes one item, and its Athena regex reads these columns as `"([^\s]+?)"`, which a
//!   space would break. A failed attempt's status is `-` (e.g. `"-,200"`).
//! - IPv6 addresses are written without brackets (`2001:db8::1:443`), as ALB does; the port is after the last
//!   colon.
//! - Unquoted columns are one token: characters that would split them (whitespace, `"`, controls) become `_`;
//!   `ssl_cipher` keeps `[A-Z0-9_-]` (upper-casing) and `ssl_protocol` `[A-Za-z0-9.-]`, the Athena regex's
//!   classes for them.
//! - `user_agent` is truncated to 8 KB like ALB's. A request that could not be parsed is `"- - - "`.
//! - `conn_trace_id` is written when the record has one; without it the line is the pre-2023 format.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::digits;
use crate::scan::Plain;
use crate::timefmt::write_iso8601;
use crate::{Attempt, Exchange};

/// ALB's user-agent limit.
const USER_AGENT_MAX: usize = 8 * 1024;

/// Append the record's ALB line to `out`, without a trailing newline.
pub fn format_alb(ex: &Exchange, out: &mut String) {
    out.push_str(ex.kind.as_str());
    out.push(' ');
    write_iso8601(out, ex.time);
    out.push(' ');
    push_token(out, &ex.elb);
    out.push(' ');
    match &ex.client_column {
        Some(column) => out.push_str(column),
        None => push_addr(out, ex.client),
    }
    out.push(' ');
    match ex.target() {
        Some(t) => push_target(out, t),
        None => out.push('-'),
    }
    for t in [ex.request_processing_time, ex.target_processing_time, ex.response_processing_time] {
        out.push(' ');
        push_secs(out, t);
    }
    out.push(' ');
    push_u64(out, u64::from(ex.elb_status));
    out.push(' ');
    match ex.target_status {
        Some(s) => push_u64(out, u64::from(s)),
        None => out.push('-'),
    }
    out.push(' ');
    push_u64(out, ex.received_bytes);
    out.push(' ');
    push_u64(out, ex.sent_bytes);
    out.push(' ');
    push_request(out, ex);
    out.push(' ');
    push_quoted(out, ex.user_agent.as_deref().map(truncate_user_agent));
    out.push(' ');
    push_class(out, ex.ssl_cipher.as_deref(), '_', |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_'
    });
    out.push(' ');
    push_class(out, ex.ssl_protocol.as_deref(), '-', |c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    out.push(' ');
    match &ex.target_group {
        Some(tg) if tg.arn_is_token() => out.push_str(tg.arn()),
        Some(tg) => push_token(out, tg.arn()),
        None => out.push('-'),
    }
    out.push(' ');
    push_quoted(out, Some(&ex.trace_id));
    out.push(' ');
    push_quoted(out, ex.sni.as_deref());
    out.push(' ');
    push_quoted(out, ex.chosen_cert_arn.as_deref());
    out.push(' ');
    match ex.matched_rule_priority {
        Some(p) => push_u64(out, u64::from(p)),
        None => out.push('-'),
    }
    out.push(' ');
    write_iso8601(out, ex.request_creation_time);
    out.push_str(" \"");
    push_actions(out, ex);
    out.push_str("\" ");
    push_quoted(out, ex.redirect_url.as_deref());
    out.push(' ');
    push_quoted(out, ex.cause.map(|c| c.name()));
    out.push_str(" \"");
    push_list(out, &ex.attempts, |out, a| push_target(out, &a.target));
    out.push_str("\" \"");
    push_list(out, &ex.attempts, |out, a| match a.status {
        Some(s) => push_u64(out, u64::from(s)),
        None => out.push('-'),
    });
    out.push_str("\" \"");
    push_token(out, ex.classification.map_or("", |c| c.as_str()));
    out.push_str("\" \"");
    push_token(out, ex.classification_reason.as_deref().unwrap_or(""));
    out.push('"');
    if let Some(tid) = &ex.conn_trace_id {
        out.push(' ');
        push_token(out, tid);
    }
}

/// The `client:port` column for `client`, for a connection to make once and put in each of its records
/// ([`Exchange::client_column`]): written per line it was the costliest column after the timestamps.
pub fn client_column(client: SocketAddr) -> std::sync::Arc<str> {
    let mut s = String::with_capacity(47);
    push_addr(&mut s, client);
    s.into()
}

/// The ALB line as a new string.
pub fn alb_line(ex: &Exchange) -> String {
    let mut s = String::with_capacity(512);
    format_alb(ex, &mut s);
    s
}

/// Seconds with millisecond precision (rounded), or `-1`.
pub(crate) fn push_secs(out: &mut String, d: Option<Duration>) {
    let Some(d) = d else {
        out.push_str("-1");
        return;
    };
    // Whole milliseconds in 64 bits: `as_nanos` is 128-bit and its division a library call. A whole second is a
    // whole number of milliseconds, so rounding the fraction alone rounds the total.
    let ms =
        d.as_secs().checked_mul(1_000).and_then(|s| s.checked_add(u64::from((d.subsec_nanos() + 500_000) / 1_000_000)));
    match ms {
        Some(ms) => {
            push_u64(out, ms / 1_000);
            out.push('.');
            out.push_str(digits::three((ms % 1_000) as u32));
        }
        None => {
            let ms = (d.as_nanos() + 500_000) / 1_000_000;
            let _ = write!(out, "{}.{:03}", ms / 1_000, ms % 1_000);
        }
    }
}

/// Decimal digits of `v`, without `core::fmt` (several numbers per line add up on every request); most
/// (status codes, whole seconds, a rule priority) are below 1000 and come from the digit table.
pub(crate) fn push_u64(out: &mut String, v: u64) {
    match u32::try_from(v) {
        Ok(small) if small < 1000 => out.push_str(digits::below_1000(small)),
        _ => out.push_str(itoa::Buffer::new().format(v)),
    }
}

/// `ip:port`, IPv6 without brackets.
fn push_addr(out: &mut String, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits::below_1000(u32::from(octet)));
            }
        }
        ip @ IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
    out.push(':');
    push_u64(out, u64::from(a.port()));
}

/// A target as `host:port`: socket addresses in [`push_addr`] form; anything else as a token that still ends in
/// `:port` (an empty port when it has none), which the Athena regex's `([^ ]*)[:-]([0-9]*)` requires.
fn push_target(out: &mut String, t: &str) {
    // A function target has no address: ALB writes `-`.
    if t == "-" {
        return out.push('-');
    }
    // Only a bracketed IPv6 address is written differently from its text: an IPv4 `ip:port` that parses is
    // already in canonical form, so it (like a host name) goes through the token path below unparsed.
    if t.starts_with('[')
        && let Ok(a) = t.parse::<SocketAddr>()
    {
        return push_addr(out, a);
    }
    // The port is the digits after the last colon: counted from the end, where `rsplit_once(':')` and a check
    // of its suffix took two passes.
    let digits = t.bytes().rev().take_while(u8::is_ascii_digit).count();
    match (t.len() - digits).checked_sub(1) {
        Some(colon) if t.as_bytes().get(colon) == Some(&b':') => {
            let host = t.get(..colon).unwrap_or_default();
            if !host.is_empty() && TOKEN_SAFE.prefix_len(host.as_bytes()) == colon {
                // The usual `ip:port` needs nothing replaced: one copy.
                out.push_str(t);
            } else {
                push_token(out, host);
                out.push_str(t.get(colon..).unwrap_or_default());
            }
        }
        _ => {
            push_token(out, t);
            out.push(':');
        }
    }
}

pub(crate) fn splits(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '"' || c == ','
}

/// Bytes a token may hold as they are: [`splits`] for ASCII (printable, not a space, `"` or `,`); no byte of a
/// multi-byte character, which takes the slow path.
const TOKEN_SAFE: Plain = Plain::new(b'!', [b'"', b',']);
/// Bytes a quoted column keeps as they are (printable ASCII and the space, less `"` and `\`)...
const QUOTED_PLAIN: Plain = Plain::new(b' ', [b'"', b'\\']);
/// ... and a URL, whose spaces are written `%20`.
const URL_PLAIN: Plain = Plain::new(b'!', [b'"', b'\\']);

/// Whether [`push_token`] copies `s` whole: not empty, and ASCII with nothing to replace (its fast path, and
/// what [`crate::TargetGroupRef`] decides of its ARN once).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && TOKEN_SAFE.prefix_len(s.as_bytes()) == s.len()
}

/// One unquoted token: `-` when empty, splitting characters replaced with `_`.
fn push_token(out: &mut String, s: &str) {
    // ASCII with nothing to replace (the usual case) is copied whole.
    if is_token(s) {
        out.push_str(s);
        return;
    }
    if s.is_empty() {
        out.push('-');
        return;
    }
    out.extend(s.chars().map(|c| if splits(c) { '_' } else { c }));
}

/// A token restricted to a character class (upper-casing letters the class lacks in lower case, replacing
/// anything else with `other`, itself in the class); `-` when absent or empty.
fn push_class(out: &mut String, s: Option<&str>, other: char, keep: fn(char) -> bool) {
    match s {
        Some(s) if !s.is_empty() && s.chars().all(keep) => out.push_str(s),
        Some(s) if !s.is_empty() => {
            out.extend(s.chars().map(|c| {
                let c = if keep(c) { c } else { c.to_ascii_uppercase() };
                if keep(c) { c } else { other }
            }));
        }
        _ => out.push('-'),
    }
}

/// A quoted free-text column: `"-"` when absent or empty, else the text with `"`, `\` and controls as `\xHH`.
fn push_quoted(out: &mut String, s: Option<&str>) {
    out.push('"');
    match s {
        Some(s) if !s.is_empty() => push_escaped(out, s, false),
        _ => out.push('-'),
    }
    out.push('"');
}

fn push_escaped(out: &mut String, s: &str, url: bool) {
    // The longest prefix of plain printable ASCII is copied whole; the rest goes character by character.
    let plain = if url { URL_PLAIN } else { QUOTED_PLAIN }.prefix_len(s.as_bytes());
    let (head, rest) = s.split_at(plain);
    out.push_str(head);
    for c in rest.chars() {
        match c {
            '"' | '\\' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            ' ' if url => out.push_str("%20"),
            c if c.is_control() => {
                // Control characters outside ASCII (U+0080..U+009F) are written as their UTF-8 bytes.
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
}

/// `"METHOD URL PROTO"`, or `"- - - "` for a request that could not be parsed.
fn push_request(out: &mut String, ex: &Exchange) {
    if ex.method.is_empty() {
        out.push_str("\"- - - \"");
        return;
    }
    out.push('"');
    push_token(out, &ex.method);
    out.push(' ');
    if ex.url.is_empty() {
        out.push('-');
    } else {
        push_escaped(out, &ex.url, true);
    }
    out.push(' ');
    push_token(out, &ex.http_version);
    out.push('"');
}

fn push_actions(out: &mut String, ex: &Exchange) {
    if ex.actions.is_empty() {
        out.push('-');
        return;
    }
    for (i, name) in ex.actions.names().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
    }
}

fn push_list(out: &mut String, attempts: &[Attempt], item: impl Fn(&mut String, &Attempt)) {
    if attempts.is_empty() {
        out.push('-');
    }
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item(out, a);
    }
}

/// The user agent as ALB keeps it: at most 8 KB.
pub(crate) fn truncate_user_agent(s: &str) -> &str {
    truncate(s, USER_AGENT_MAX)
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fast_path_agrees_with_splits_and_fast_paths_write_what_the_slow_ones_did() {
        for b in 0u8..128 {
            assert_eq!(TOKEN_SAFE.contains(b), !splits(char::from(b)), "byte {b:#04x}");
        }
        for b in 0..=u8::MAX {
            let quoted = (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\';
            assert_eq!(QUOTED_PLAIN.contains(b), quoted, "byte {b:#04x}");
            assert_eq!(URL_PLAIN.contains(b), quoted && b != b' ', "byte {b:#04x}");
        }
        let mut out = String::new();
        push_token(&mut out, "a b,\"c\u{85}d");
        assert_eq!(out, "a_b__c_d");
        for (s, token) in [("", false), ("arn:aws:x", true), ("a b", false), ("a,b", false), ("a\"b", false)] {
            let mut out = String::new();
            push_token(&mut out, s);
            assert_eq!((is_token(s), out == s), (token, token), "{s:?}");
        }
        // Not ASCII: written as it is, but by the slow path (not a token as the ARN's check counts it).
        assert!(!is_token("é"));
        for (target, want) in [
            ("10.0.0.7:8080", "10.0.0.7:8080"),
            ("[2001:db8::1]:443", "2001:db8::1:443"),
            ("app.internal:80", "app.internal:80"),
            ("no port", "no_port:"),
            (":80", "-:80"),
            ("a b:80", "a_b:80"),
            ("host:", "host:"),
            ("host:8x", "host:8x:"),
            ("1234", "1234:"),
            ("", "-:"),
        ] {
            let mut out = String::new();
            push_target(&mut out, target);
            assert_eq!(out, want, "{target}");
        }
    }

    #[test]
    fn hand_written_numbers_match_core_fmt() {
        for v in [0, 1, 7, 9, 10, 99, 100, 65_535, 1_000_000, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        for a in ["0.0.0.0:0", "203.0.113.7:50432", "255.255.255.255:65535", "[2001:db8::1]:443"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut s = String::new();
            push_addr(&mut s, a);
            assert_eq!(s, format!("{}:{}", a.ip(), a.port()));
        }
        for (d, want) in [
            (Some(Duration::ZERO), "0.000"),
            (Some(Duration::from_micros(1_234_567)), "1.235"),
            (Some(Duration::from_micros(999_500)), "1.000"),
            (Some(Duration::from_micros(1_999_499)), "1.999"),
            (Some(Duration::new(u64::MAX / 1_000, 614_000_000)), "18446744073709551.614"),
            (Some(Duration::new(u64::MAX / 1_000, 999_999_999)), "18446744073709552.000"),
            (Some(Duration::new(u64::MAX, 999_999_999)), "18446744073709551616.000"),
            (None, "-1"),
        ] {
            let mut s = String::new();
            push_secs(&mut s, d);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn escaping_fast_paths_keep_the_slow_paths_output() {
        let mut s = String::new();
        push_escaped(&mut s, "http://a:80/x y\"z\\\u{7f}\u{85}é", true);
        assert_eq!(s, "http://a:80/x%20y\\x22z\\x5c\\x7f\\xc2\\x85é");
        s.clear();
        push_escaped(&mut s, "curl/8 (x)", false);
        assert_eq!(s, "curl/8 (x)");
        s.clear();
        push_token(&mut s, "a b,c\u{a0}");
        assert_eq!(s, "a_b_c_");
    }
}
