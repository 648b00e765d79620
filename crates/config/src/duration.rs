//! Durations as written in the config: a sequence of `<integer><unit>` parts with units `h`, `m`, `s`, `ms`
//! in descending order (`"500ms"`, `"10s"`, `"5m"`, `"1h30m"`). No fractions, signs or spaces, so a value reads
//! one way only.

use std::time::Duration;

/// Parses `"500ms"`, `"10s"`, `"5m"`, `"1h30m"`; the message of an error says what is wrong.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("empty duration; expected a number with a unit, like \"10s\"".into());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    // Rank of the previous unit: each part must use a strictly smaller unit than the one before.
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number at {rest:?} (units: ms, s, m, h)"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("duration {s:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (rank, millis_per_unit) = match unit {
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1_000),
            "ms" => (0, 1),
            "" if rest.is_empty() => {
                return Err(format!("duration {s:?} needs a unit: ms, s, m or h (like \"{number}s\")"));
            }
            "" => {
                return Err(format!("invalid duration {s:?}: unexpected {rest:?}; write it like \"1h30m\""));
            }
            other => {
                return Err(format!("duration {s:?} has unknown unit {other:?}; use ms, s, m or h"));
            }
        };
        if rank >= last_rank {
            return Err(format!("invalid duration {s:?}: write units once each, largest first (like \"1h30m\")"));
        }
        last_rank = rank;
        let millis = number.checked_mul(millis_per_unit).ok_or_else(|| format!("duration {s:?} is too large"))?;
        total =
            total.checked_add(Duration::from_millis(millis)).ok_or_else(|| format!("duration {s:?} is too large"))?;
    }
    Ok(total)
}

/// Formats a duration the way users write them, for range messages: `"1s"`, `"500ms"`, `"4000s"`.
pub fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(1000) { format!("{}s", millis / 1000) } else { format!("{millis}ms") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m30s250ms"), Ok(Duration::from_millis(90_250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "1.5s",
            "-1s",
            " 10s",
            "10s ",
            "10 s",
            "30m1h",
            "1s1s",
            "10sec",
            "1h30",
            "99999999999999999999s",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit \"x\""));
    }

    #[test]
    fn formats_whole_seconds_and_millis() {
        assert_eq!(format_duration(Duration::from_secs(4000)), "4000s");
        assert_eq!(format_duration(Duration::from_millis(1)), "1ms");
    }
}
