//! Timestamps as the logs write them (ISO 8601 UTC with microseconds, `2018-07-02T22:23:00.186641Z`),
//! parsed by hand into microseconds since the Unix epoch. Hand-written because every log line carries two of
//! them and a general date library would cost more than the rest of the line; formatting goes the other way
//! for reports.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// One second in [`Micros`].
pub const SECOND: Micros = 1_000_000;
/// One minute in [`Micros`].
pub const MINUTE: Micros = 60 * SECOND;

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of `days_from_civil`).
const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac][Z|±hh:mm]` (a space may replace the `T`; no zone means UTC).
/// Fractions beyond microseconds are truncated. Returns `None` for anything else, never panics.
#[inline]
pub fn parse_timestamp(s: &[u8]) -> Option<Micros> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || !(s[10] == b'T' || s[10] == b' ') || s[13] != b':' {
        return None;
    }
    if s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let min = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &tail[..n];
        let kept = &frac[..n.min(6)];
        micros = digits(kept)? * 10i64.pow(6 - kept.len() as u32);
        rest = &tail[n..];
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            let o = (h * 60 + m) * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(secs * SECOND + micros)
}

/// Parses a `--since`/`--until` argument: a full timestamp, or a date alone (`2024-05-01`, midnight UTC),
/// or a timestamp without seconds (`2024-05-01T10:30`).
pub fn parse_time_arg(s: &str) -> Option<Micros> {
    let b = s.trim().as_bytes();
    if let Some(t) = parse_timestamp(b) {
        return Some(t);
    }
    match b.len() {
        10 => parse_timestamp(format!("{}T00:00:00Z", s.trim()).as_bytes()),
        16 | 17 => {
            let (head, zone) = b.split_at(16);
            let mut full = head.to_vec();
            full.extend_from_slice(b":00");
            full.extend_from_slice(zone);
            parse_timestamp(&full)
        }
        _ => None,
    }
}

fn split(t: Micros) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = t.div_euclid(SECOND);
    let micros = t.rem_euclid(SECOND);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, micros)
}

/// RFC 3339 with microseconds, as ALB writes it: `2018-07-02T22:23:00.186641Z`.
pub fn format_timestamp(t: Micros) -> String {
    let (y, mo, d, h, mi, s, us) = split(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// The minute a timestamp falls in, as a key for timelines: `2018-07-02T22:23Z`.
pub fn format_minute(t: Micros) -> String {
    let (y, mo, d, h, mi, _, _) = split(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}Z")
}

/// Short form for tables and charts: `07-02 22:23:00`.
pub fn format_short(t: Micros) -> String {
    let (_, mo, d, h, mi, s, _) = split(t);
    format!("{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_timestamp(b"2018-07-02T22:23:00.186641Z").unwrap();
        assert_eq!(t, 1_530_570_180_186_641);
        assert_eq!(format_timestamp(t), "2018-07-02T22:23:00.186641Z");
        assert_eq!(format_minute(t), "2018-07-02T22:23Z");
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp(b"2000-02-29T00:00:00.5Z"), Some(951_782_400_500_000));
        assert_eq!(parse_timestamp(b"2018-07-02T23:23:00+01:00"), parse_timestamp(b"2018-07-02T22:23:00Z"));
        for days in [-800_000i64, -1, 0, 1, 17_000, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in
            [&b""[..], b"2018-07-02", b"2018-13-02T22:23:00Z", b"2018-07-02T22:23:00.Z", b"2018-07-02T22:23:00Zx"]
        {
            assert_eq!(parse_timestamp(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn args() {
        assert_eq!(parse_time_arg("2018-07-02"), parse_timestamp(b"2018-07-02T00:00:00Z"));
        assert_eq!(parse_time_arg("2018-07-02T10:30"), parse_timestamp(b"2018-07-02T10:30:00Z"));
        assert_eq!(parse_time_arg("2018-07-02T10:30Z"), parse_timestamp(b"2018-07-02T10:30:00Z"));
        assert_eq!(parse_time_arg("2018-07-02T10:30:00Z"), parse_timestamp(b"2018-07-02T10:30:00Z"));
        // An offset instead of `Z`: 12:30 at +02:00 is 10:30 UTC.
        assert_eq!(parse_time_arg("2018-07-02T12:30:00+02:00"), parse_timestamp(b"2018-07-02T10:30:00Z"));
        assert_eq!(parse_time_arg("yesterday"), None);
    }
}
