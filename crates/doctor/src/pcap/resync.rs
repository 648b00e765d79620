//! Finding the way back into a capture after a corrupt block: which bytes can start a legacy pcap record
//! or a pcapng block, so that one bad length field costs the frames it garbled, not the rest of the file.
//! A candidate is accepted only when its own fields are sane and, where the buffer holds it, the record or
//! block after it is sane too (pcapng: the trailing length repeats the leading one), so a random byte run
//! is not taken for a frame.

/// What a legacy record header must satisfy, besides its byte order.
#[derive(Debug, Clone, Copy)]
pub struct Legacy {
    pub big: bool,
    /// Timestamp fraction units per second (10^6 or 10^9).
    pub units: u64,
    /// The previous frame's seconds, when there was one.
    pub last_secs: Option<u32>,
    /// Largest block the reader accepts.
    pub max: usize,
}

/// A record's time may go back a little (merged interfaces) or jump ahead (a long capture), not by more.
const BACK_SECS: u32 = 24 * 3600;
const AHEAD_SECS: u32 = 366 * 24 * 3600;

fn u32_at(d: &[u8], at: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
}

impl Legacy {
    /// The record header at the start of `d` is sane: a fraction below one second, a captured length no
    /// longer than the frame's, a time near the previous frame's. Returns the record's total size.
    pub fn header(&self, d: &[u8]) -> Option<usize> {
        let secs = u32_at(d, 0, self.big)?;
        let frac = u32_at(d, 4, self.big)?;
        let caplen = u32_at(d, 8, self.big)? as usize;
        let origlen = u32_at(d, 12, self.big)? as usize;
        let near = self
            .last_secs
            .is_none_or(|last| secs >= last.saturating_sub(BACK_SECS) && secs <= last.saturating_add(AHEAD_SECS));
        (u64::from(frac) < self.units && caplen <= origlen && caplen <= self.max && near).then_some(16 + caplen)
    }

    /// What is wrong with the record header at the start of `d` (None: sane, or not all held yet).
    pub fn problem(&self, d: &[u8]) -> Option<String> {
        if d.len() < 16 || self.header(d).is_some() {
            return None;
        }
        let (secs, frac) = (u32_at(d, 0, self.big)?, u32_at(d, 4, self.big)?);
        let (caplen, origlen) = (u32_at(d, 8, self.big)?, u32_at(d, 12, self.big)?);
        Some(if caplen as usize > self.max {
            format!("a block larger than {} MiB: not a real packet", self.max >> 20)
        } else if caplen > origlen {
            format!("the record says it holds {caplen} bytes of a {origlen}-byte frame")
        } else if u64::from(frac) >= self.units {
            format!("a timestamp fraction of {frac}, over one second")
        } else {
            let last = self.last_secs.unwrap_or(secs);
            format!("a timestamp {} s away from the previous frame's", i64::from(secs) - i64::from(last))
        })
    }

    /// The first offset from `from` where a sane record starts and the next one (when held) is sane too, or
    /// the input ends exactly after it (`at_end`: no more bytes will come).
    pub fn find(&self, d: &[u8], from: usize, at_end: bool) -> Option<usize> {
        (from..d.len().saturating_sub(15)).find(|&k| {
            let Some(size) = self.header(&d[k..]) else { return false };
            let next = k + size;
            match d.get(next..) {
                Some([]) => at_end,
                Some(rest) if rest.len() >= 16 => self.header(rest).is_some(),
                Some(_) => !at_end,
                None => !at_end && size <= self.max,
            }
        })
    }
}

/// Block types a pcapng file holds in practice: section header, interface description, packet (obsolete),
/// simple packet, name resolution, interface statistics, enhanced packet, systemd journal, decryption
/// secrets, custom.
const NG_TYPES: [u32; 10] = [0x0a0d_0d0a, 1, 2, 3, 4, 5, 6, 9, 10, 0x0000_0bad];

/// A pcapng block at the start of `d` whose type is known and whose trailing length, held in `d`, repeats
/// the leading one. Returns its size.
pub fn ng_block(d: &[u8], big: bool, max: usize) -> Option<usize> {
    let kind = u32_at(d, 0, big)?;
    // A section header announces its own byte order: read its length in that order.
    let big = if kind == 0x0a0d_0d0a { u32_at(d, 8, true)? == 0x1a2b_3c4d } else { big };
    let len = u32_at(d, 4, big)? as usize;
    if !NG_TYPES.contains(&kind) || len < 12 || !len.is_multiple_of(4) || len > max {
        return None;
    }
    (u32_at(d, len - 4, big)? as usize == len).then_some(len)
}

/// The first 4-aligned offset from `from` where a whole, sane pcapng block starts.
pub fn ng_find(d: &[u8], from: usize, big: bool, max: usize) -> Option<usize> {
    (from..d.len()).step_by(4).find(|&k| ng_block(&d[k..], big, max).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(secs: u32, caplen: u32) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [secs, 5, caplen, caplen] {
            r.extend(v.to_le_bytes());
        }
        r.extend(vec![0xee; caplen as usize]);
        r
    }

    #[test]
    fn legacy_skips_garbage_to_two_sane_records() {
        let l = Legacy { big: false, units: 1_000_000, last_secs: Some(1_700_000_000), max: 1 << 20 };
        let mut d = vec![0xffu8; 7];
        d.extend(rec(1_700_000_001, 40));
        d.extend(rec(1_700_000_002, 60));
        assert_eq!(l.find(&d, 1, true), Some(7));
        // A lone sane-looking header followed by garbage is not taken.
        let mut d = vec![0xffu8; 3];
        d.extend(rec(1_700_000_001, 4));
        d.extend([0xff; 40]);
        assert_eq!(l.find(&d, 1, true), None);
    }

    #[test]
    fn ng_needs_the_trailing_length() {
        let mut b = vec![0u8; 8];
        b.extend(6u32.to_le_bytes());
        b.extend(16u32.to_le_bytes());
        b.extend([1, 2, 3, 4]);
        b.extend(16u32.to_le_bytes());
        assert_eq!(ng_find(&b, 4, false, 1 << 20), Some(8));
        b[20] = 20;
        assert_eq!(ng_find(&b, 4, false, 1 << 20), None);
    }
}
