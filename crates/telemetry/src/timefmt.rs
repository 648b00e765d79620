//! UTC time formatting for the access log: ISO 8601 with microseconds (`2018-07-02T22:23:00.186641Z`) for the
//! `time` and `request_creation_time` columns, and the minute stamp ALB puts in file names (`20140215T2340Z`).
//! Hand-rolled (Howard Hinnant's days-to-civil) rather than a date crate: it is twenty lines and allocation-free.
//! Times before 1970 are clamped to the epoch.

use std::cell::Cell;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use arrayvec::ArrayString;

use crate::digits;

/// Civil (proleptic Gregorian) date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    micros: u32,
}

fn utc(t: SystemTime) -> Utc {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    Utc {
        year,
        month,
        day,
        hour: rem / 3_600,
        minute: rem % 3_600 / 60,
        second: rem % 60,
        micros: since.subsec_micros(),
    }
}

/// Append `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Digits are written by hand: two of these per access-log line made
/// `core::fmt` a tenth of the access log's work. The text up to the seconds is kept per thread for the last
/// second written (every line of a busy second shares it) as checked text, so most calls only add the
/// microseconds, from the digit table (the crate's `digits` module), and nothing is validated as UTF-8 again.
pub fn write_iso8601(out: &mut String, t: SystemTime) {
    thread_local! {
        /// The last whole second written (seconds since the epoch) and its `YYYY-MM-DDTHH:MM:SS.` text.
        static LAST: Cell<(u64, ArrayString<20>)> = const { Cell::new((u64::MAX, ArrayString::new_const())) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let prefix = match LAST.get() {
        (last, prefix) if last == secs => prefix,
        _ => match four_digit_year(t).and_then(|b| ArrayString::from_byte_string(&b).ok()) {
            Some(prefix) => {
                LAST.set((secs, prefix));
                prefix
            }
            None => {
                // Beyond four digits (never for a real clock): the general formatter keeps the exact old output.
                let u = utc(t);
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                    u.year, u.month, u.day, u.hour, u.minute, u.second, u.micros
                );
                return;
            }
        },
    };
    let micros = since.subsec_micros();
    out.reserve(27);
    out.push_str(&prefix);
    out.push_str(digits::three(micros / 1_000));
    out.push_str(digits::three(micros));
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` for a year of four digits; `None` beyond.
fn four_digit_year(t: SystemTime) -> Option<[u8; 20]> {
    let u = utc(t);
    if !(0..=9999).contains(&u.year) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.";
    put_digits(&mut b[0..4], u.year as u64);
    put_digits(&mut b[5..7], u64::from(u.month));
    put_digits(&mut b[8..10], u64::from(u.day));
    put_digits(&mut b[11..13], u.hour);
    put_digits(&mut b[14..16], u.minute);
    put_digits(&mut b[17..19], u.second);
    Some(b)
}

/// Writes `v` zero-padded into exactly `dst.len()` ASCII digits (the low digits, if `v` is wider).
fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` as a new string.
pub fn iso8601(t: SystemTime) -> String {
    let mut s = String::with_capacity(27);
    write_iso8601(&mut s, t);
    s
}

/// ALB's file-name stamp, `YYYYMMDDTHHMMZ`.
pub fn file_stamp(t: SystemTime) -> String {
    let u = utc(t);
    format!("{:04}{:02}{:02}T{:02}{:02}Z", u.year, u.month, u.day, u.hour, u.minute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1_000)
    }

    #[test]
    fn alb_example_times() {
        assert_eq!(iso8601(at(1_530_570_180, 186_641)), "2018-07-02T22:23:00.186641Z");
        assert_eq!(iso8601(at(1_530_570_168, 364_000)), "2018-07-02T22:22:48.364000Z");
        assert_eq!(file_stamp(at(1_392_507_600, 0)), "20140215T2340Z");
    }

    #[test]
    fn the_per_second_prefix_never_leaks_into_another_second() {
        // Same second twice (the cached path), then the next second, then back: each is written in full.
        assert_eq!(iso8601(at(1_530_570_180, 1)), "2018-07-02T22:23:00.000001Z");
        assert_eq!(iso8601(at(1_530_570_180, 999_999)), "2018-07-02T22:23:00.999999Z");
        assert_eq!(iso8601(at(1_530_570_181, 0)), "2018-07-02T22:23:01.000000Z");
        assert_eq!(iso8601(at(1_530_570_180, 5)), "2018-07-02T22:23:00.000005Z");
        assert_eq!(iso8601(at(253_402_300_800, 7)), "10000-01-01T00:00:00.000007Z");
        assert_eq!(iso8601(at(253_402_300_800, 8)), "10000-01-01T00:00:00.000008Z");
    }

    /// The uncached formatter: what every call must write.
    fn reference(t: SystemTime) -> String {
        let u = utc(t);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            u.year, u.month, u.day, u.hour, u.minute, u.second, u.micros
        )
    }

    #[test]
    fn cached_prefix_matches_the_uncached_formatter_across_second_minute_day_and_year_boundaries() {
        // 2023-12-31T23:59:58: the walk crosses a second, a minute, an hour, a day, a month and a year, with
        // several calls per second (the cached path) and returns to an earlier second (a cache miss).
        let start = 1_704_067_198;
        let mut times = Vec::new();
        for s in 0..4 {
            for micros in [0, 1, 999, 1_000, 123_456, 999_999] {
                times.push(at(start + s, micros));
            }
        }
        times.extend([at(start, 42), at(start + 3, 7), at(start + 60, 0), at(start + 86_400, 5)]);
        for t in times {
            let mut s = String::from("x ");
            write_iso8601(&mut s, t);
            assert_eq!(s, format!("x {}", reference(t)));
        }
    }

    #[test]
    fn edges() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso8601(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso8601(at(951_782_400, 0)), "2000-02-29T00:00:00.000000Z");
        assert_eq!(iso8601(at(4_102_444_799, 999_999)), "2099-12-31T23:59:59.999999Z");
        // Every day for 400 years round-trips through the month lengths without gaps.
        let mut prev = civil_from_days(-1);
        for d in 0..146_097 {
            let c = civil_from_days(d);
            assert!(c > prev, "{c:?} after {prev:?}");
            assert!((1..=12).contains(&c.1) && (1..=31).contains(&c.2));
            prev = c;
        }
    }
}
