//! The ALB access-log format (reference/ALB.md §1), as AWS writes it and as waygate writes it byte for byte.
//! Fields are separated by single spaces; quoted fields end at a `"` followed by a space or the end of the
//! line, so a quote inside a user agent does not end the field early. Fields past the 30 known ones are
//! ignored (AWS only ever appends) and the trailing ones may be missing (older logs); only the fields up to
//! `target_status_code` are required. memchr finds the separators; nothing is allocated.

use std::borrow::Cow;

use memchr::memchr;

use crate::record::{Malformed, Record, normalise_target, parse_seconds, parse_status};
use crate::time::parse_timestamp;

/// The number of fields AWS documents today (type .. conn_trace_id).
pub const ALB_FIELDS: usize = 30;

/// The names of the fields, in order, as reference/ALB.md and the Athena table call them.
pub const ALB_FIELD_NAMES: [&str; ALB_FIELDS] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target:port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
];

/// Index of each field the analysis reads (0-based).
pub(crate) mod idx {
    pub const TIME: usize = 1;
    pub const TARGET: usize = 4;
    pub const REQUEST_PROCESSING: usize = 5;
    pub const ELB_STATUS: usize = 8;
    pub const TARGET_STATUS: usize = 9;
    pub const TARGET_GROUP: usize = 16;
    pub const REQUEST_CREATION: usize = 21;
    pub const ACTIONS: usize = 22;
    pub const ERROR_REASON: usize = 24;
}

/// The fields required for a record: type .. target_status_code.
pub const MIN_FIELDS: usize = 10;

/// A line split into its raw fields (quotes removed), borrowed from the line.
#[derive(Debug, Clone, Copy)]
pub struct AlbFields<'a> {
    fields: [&'a [u8]; ALB_FIELDS],
    count: usize,
    /// Whether the line carries more fields than the 30 known ones.
    pub has_extra: bool,
}

impl<'a> AlbFields<'a> {
    /// How many of the known fields the line has.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the line had no field at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Field `i` (0-based, see [`ALB_FIELD_NAMES`]) without its quotes, or `None` when the line is shorter.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        (i < self.count).then(|| self.fields[i])
    }

    /// Field by its ALB name, e.g. `"error_reason"`.
    pub fn by_name(&self, name: &str) -> Option<&'a [u8]> {
        ALB_FIELD_NAMES.iter().position(|n| *n == name).and_then(|i| self.get(i))
    }

    #[inline]
    fn field_or_dash(&self, i: usize) -> &'a [u8] {
        if i < self.count { self.fields[i] } else { b"-" }
    }
}

/// The index of the first `needle` at or after `from`, or `hay.len()`. Eight bytes at a time (SWAR): most
/// fields are a few bytes long, where a `memchr` call costs more than the search.
#[inline(always)]
fn find_short(hay: &[u8], from: usize, needle: u8, limit: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(needle);
    let end = hay.len().min(from.saturating_add(limit));
    let mut i = from;
    while i + 8 <= end {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hay[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ pat;
        // The lowest set bit marks the first zero byte of x exactly (borrows only corrupt higher bytes).
        let m = x.wrapping_sub(LO) & !x & HI;
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while i < end {
        if hay[i] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The first `needle` at or after `from`: SWAR over the first bytes, then memchr for long fields.
#[inline(always)]
fn find(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    const SHORT: usize = 48;
    match find_short(hay, from, needle, SHORT) {
        Some(i) => Some(i),
        None if hay.len() - from <= SHORT => None,
        None => memchr(needle, &hay[from + SHORT..]).map(|k| from + SHORT + k),
    }
}

/// Splits the first `want` fields (at most [`ALB_FIELDS`]).
#[inline(always)]
fn split_upto(line: &[u8], want: usize) -> Result<AlbFields<'_>, Malformed> {
    let mut fields: [&[u8]; ALB_FIELDS] = [&[]; ALB_FIELDS];
    let n = line.len();
    let mut pos = 0;
    let mut count = 0;
    while pos < n && count < want {
        if line[pos] == b'"' {
            let start = pos + 1;
            let mut search = start;
            loop {
                let Some(q) = find(line, search, b'"') else {
                    return Err(Malformed::UnterminatedQuote(count + 1));
                };
                if q + 1 == n || line[q + 1] == b' ' {
                    fields[count] = &line[start..q];
                    pos = q + 1;
                    break;
                }
                search = q + 1;
            }
        } else {
            let end = find(line, pos, b' ').unwrap_or(n);
            fields[count] = &line[pos..end];
            pos = end;
        }
        count += 1;
        if pos < n {
            // The byte at `pos` is the separating space.
            pos += 1;
        }
    }
    Ok(AlbFields { fields, count, has_extra: pos < n })
}

/// Splits a line into its fields. Fails only on a quote that never closes.
pub fn split_alb(line: &[u8]) -> Result<AlbFields<'_>, Malformed> {
    split_upto(line, ALB_FIELDS)
}

#[inline]
fn dash_empty(b: &[u8]) -> &[u8] {
    if b == b"-" { &[] } else { b }
}

/// Builds a [`Record`] from split fields.
#[inline]
pub fn record_from_fields<'a>(f: &AlbFields<'a>) -> Result<Record<'a>, Malformed> {
    if f.count < MIN_FIELDS {
        return Err(Malformed::TooFewFields(f.count));
    }
    let time = parse_timestamp(f.fields[idx::TIME]).ok_or(Malformed::BadTime)?;
    let elb_status = parse_status(f.fields[idx::ELB_STATUS]).ok_or(Malformed::BadStatus)?;
    let target_status = match f.fields[idx::TARGET_STATUS] {
        b"-" | b"" => None,
        s => Some(parse_status(s).ok_or(Malformed::BadStatus)?),
    };
    let p = idx::REQUEST_PROCESSING;
    let processing = [parse_seconds(f.fields[p]), parse_seconds(f.fields[p + 1]), parse_seconds(f.fields[p + 2])];
    Ok(Record {
        time,
        elb_status,
        target_status,
        target: normalise_target(Cow::Borrowed(dash_empty(f.fields[idx::TARGET]))),
        processing,
        target_group: Cow::Borrowed(dash_empty(f.field_or_dash(idx::TARGET_GROUP))),
        request_creation_time: parse_timestamp(f.field_or_dash(idx::REQUEST_CREATION)),
        error_reason: Cow::Borrowed(dash_empty(f.field_or_dash(idx::ERROR_REASON))),
        actions: Cow::Borrowed(dash_empty(f.field_or_dash(idx::ACTIONS))),
        classic: false,
    })
}

/// Parses one ALB-format line. Only the fields up to `error_reason` are split: the record needs no later
/// one, so a quote left open after it does not make the line malformed.
#[inline]
pub fn parse_alb_line(line: &[u8]) -> Result<Record<'_>, Malformed> {
    record_from_fields(&split_upto(line, idx::ERROR_REASON + 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_inside_a_quoted_field() {
        let f = split_alb(br#"a "b "c"d" e"#).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get(1), Some(&br#"b "c"d"#[..]));
        assert_eq!(f.get(2), Some(&b"e"[..]));
        assert_eq!(split_alb(br#"a "b"#).unwrap_err(), Malformed::UnterminatedQuote(2));
    }

    #[test]
    fn swar_search_matches_a_plain_scan() {
        let hay = b"abc def\"ghi jklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz \"";
        for needle in [b' ', b'"', b'z', b'#', 0x80] {
            for from in 0..hay.len() {
                let want = hay[from..].iter().position(|b| *b == needle).map(|k| k + from);
                assert_eq!(find(hay, from, needle), want, "needle {needle} from {from}");
            }
        }
    }

    #[test]
    fn empty_fields_and_trailing_space() {
        let f = split_alb(b"a  b ").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get(1), Some(&b""[..]));
        assert!(!f.has_extra);
    }
}
