//! Word-at-a-time scans behind the log formatters' fast paths: how much of a string is plain printable ASCII
//! that a column can take as it is. Eight bytes are tested at once with the usual SWAR bit tests (each exact
//! for the word as a whole); the byte-wise [`Plain::contains`] is the definition the tests compare them with.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// A class of bytes: ASCII from `lo` to `~` inclusive, less two bytes.
#[derive(Clone, Copy)]
pub(crate) struct Plain {
    lo: u8,
    deny: [u8; 2],
}

impl Plain {
    /// `lo` must be printable (`!`..=`~`) or a space; the word tests below rely on it being at most 128.
    pub(crate) const fn new(lo: u8, deny: [u8; 2]) -> Self {
        assert!(lo >= b' ' && lo <= b'~');
        Plain { lo, deny }
    }

    /// Whether `b` is in the class.
    pub(crate) fn contains(self, b: u8) -> bool {
        (self.lo..=b'~').contains(&b) && b != self.deny[0] && b != self.deny[1]
    }

    /// Whether some byte of the little-endian word `w` is outside the class.
    fn word_has_other(self, w: u64) -> bool {
        // A byte below `lo` (exact for lo <= 128): subtracting borrows into its high bit, which `!w` keeps.
        let below = w.wrapping_sub(ONES * u64::from(self.lo)) & !w;
        // A byte above `~`: adding 1 sets the high bit of 0x7f; bytes from 0x80 have it already.
        let above = w.wrapping_add(ONES) | w;
        // A byte equal to a denied one: that byte of the xor is zero.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v;
        let denied = zero(w ^ (ONES * u64::from(self.deny[0]))) | zero(w ^ (ONES * u64::from(self.deny[1])));
        (below | above | denied) & HIGH != 0
    }

    /// How many leading bytes of `s` are in the class.
    pub(crate) fn prefix_len(self, s: &[u8]) -> usize {
        let mut at = 0;
        for chunk in s.chunks_exact(8) {
            // Always eight bytes; a failed conversion would only send the word to the byte-wise scan.
            let w = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
            if self.word_has_other(w) {
                break;
            }
            at += 8;
        }
        at + s[at..].iter().position(|&b| !self.contains(b)).unwrap_or(s.len() - at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSES: [Plain; 3] =
        [Plain::new(b'!', [b'"', b',']), Plain::new(b' ', [b'"', b'\\']), Plain::new(b'!', [b'"', b'\\'])];

    fn bytewise(class: Plain, s: &[u8]) -> usize {
        s.iter().position(|&b| !class.contains(b)).unwrap_or(s.len())
    }

    #[test]
    fn word_scan_agrees_with_the_bytewise_class_for_every_byte_at_every_position() {
        for class in CLASSES {
            for b in 0..=u8::MAX {
                // The odd byte at each position of a 19-byte string: inside the first word, the second, the tail.
                for at in 0..19 {
                    let mut s = *b"arn:aws:elb:local:x";
                    s[at] = b;
                    let want = bytewise(class, &s);
                    assert_eq!(class.prefix_len(&s), want, "byte {b:#04x} at {at}");
                    assert_eq!(want == at, !class.contains(b));
                }
            }
        }
    }

    #[test]
    fn word_scan_handles_neighbouring_extremes_and_short_strings() {
        // Carries and borrows between bytes: 0xff next to 0x00, the class edges next to each other.
        let cases: [&[u8]; 7] = [
            b"",
            b"a",
            b"abcdefgh",
            b"\xff\x00abcdefgh",
            b"abcdefg\x7f",
            b"~!~!~!~!~!~!~!~! ",
            b"\x80\x7f\x21\x20\x7e\x22\x2c\x5c",
        ];
        for class in CLASSES {
            for s in cases {
                assert_eq!(class.prefix_len(s), bytewise(class, s), "{s:?}");
            }
        }
    }
}
