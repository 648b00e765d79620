//! Decimal digits for the access log's hot columns (the timestamps' microseconds, the processing times'
//! milliseconds, IPv4 octets, status codes) as slices of one
//! table built at compile time: a `&str` needs no UTF-8 check at run time, where digits written into a byte
//! buffer did (`str::from_utf8`, about sixty instructions a call), and `unsafe` is denied.

/// `000001002…999`: every number below 1000 as three digits.
const TABLE: [u8; 3000] = {
    let mut t = [0u8; 3000];
    let mut i = 0;
    while i < 1000 {
        t[3 * i] = b'0' + (i / 100) as u8;
        t[3 * i + 1] = b'0' + (i / 10 % 10) as u8;
        t[3 * i + 2] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// [`TABLE`] as text, checked once by the compiler.
const TEXT: &str = match std::str::from_utf8(&TABLE) {
    Ok(s) => s,
    Err(_) => panic!("the digit table is ASCII"),
};

/// `v % 1000` as exactly three digits, zero-padded (`7` → `007`).
pub(crate) fn three(v: u32) -> &'static str {
    let at = (v % 1000) as usize * 3;
    TEXT.get(at..at + 3).unwrap_or("000")
}

/// `v % 1000` without leading zeros (`7` → `7`, `255` → `255`): an IPv4 octet, a status code.
pub(crate) fn below_1000(v: u32) -> &'static str {
    let v = v % 1000;
    let at = v as usize * 3;
    let skip = usize::from(v < 10) + usize::from(v < 100);
    TEXT.get(at + skip..at + 3).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_slices_match_core_fmt() {
        for v in 0..1000u32 {
            assert_eq!(super::three(v), format!("{v:03}"));
        }
        assert_eq!(super::three(1_234), "234");
        for v in 0..1000u32 {
            assert_eq!(super::below_1000(v), v.to_string());
        }
        assert_eq!(super::below_1000(1_007), "7");
    }
}
