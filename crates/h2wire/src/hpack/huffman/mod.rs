//! HPACK's static Huffman code (RFC 7541 §5.2, Appendix B), for the string literals a peer sends coded.
//!
//! Decoding reads the input through a 64-bit window, refilled eight octets at a time, and looks the next
//! [`PRIMARY_BITS`] bits up in one table ([`tables`]), which resolves one or two short codes per step; the
//! rare codes longer than that are resolved by the code's canonical order, one comparison per length.

mod tables;

use self::tables::{CANONICAL, EOS, MAX_LEN, PRIMARY, PRIMARY_BITS};
use super::DecodeError;

#[cfg(test)]
pub(crate) use self::tables::CODES;

/// The symbol whose code, longer than [`PRIMARY_BITS`], starts `window` (bits from the most significant end),
/// and the code's length: the first length whose codes extend past the window's prefix of that length.
fn lookup_long(window: u64) -> (u16, u32) {
    let bits = (window >> (64 - MAX_LEN)) as u32;
    for len in PRIMARY_BITS + 1..=MAX_LEN {
        let code = bits >> (MAX_LEN - len);
        let l = len as usize;
        if code < CANONICAL.end[l] {
            let i = usize::from(CANONICAL.offset[l]) + code.wrapping_sub(CANONICAL.first[l]) as usize;
            return (CANONICAL.symbols.get(i).copied().unwrap_or(EOS), len);
        }
    }
    // Not reached: the code is complete, so every 30-bit window starts with a code.
    (EOS, MAX_LEN)
}

/// Decodes a Huffman-coded string into `out` (a scratch buffer whose contents do not matter, kept by the caller
/// so that its allocation is reused), returning the decoded octets.
pub(crate) fn decode<'a>(src: &[u8], out: &'a mut Vec<u8>) -> Result<&'a [u8], DecodeError> {
    // Every code is at least 5 bits, so this is room for the whole output, plus one octet because a step
    // writes two octets even when it decodes one.
    out.clear();
    out.resize(src.len() * 8 / 5 + 2, 0);
    let mut n = 0;
    // Unread bits, most significant first: `bits` of them, at most 56 so that `u64::MAX >> bits` below never
    // shifts by 64. Bits past those may already hold the next octets, at their places, from a bulk refill.
    let mut window: u64 = 0;
    let mut bits: u32 = 0;
    let mut pos = 0;
    loop {
        match src.get(pos..pos + 8).and_then(|chunk| <[u8; 8]>::try_from(chunk).ok()) {
            Some(chunk) => {
                // Eight octets at once; the whole ones that fit count, the rest load again next time.
                window |= u64::from_be_bytes(chunk) >> bits;
                let octets = (56 - bits) / 8;
                pos += octets as usize;
                bits += octets * 8;
            }
            None => {
                while bits <= 48 {
                    let Some(&octet) = src.get(pos) else { break };
                    window |= u64::from(octet) << (56 - bits);
                    pos += 1;
                    bits += 8;
                }
            }
        }
        // With EOS's length in hand, every code is whole.
        if bits < MAX_LEN {
            break;
        }
        while bits >= MAX_LEN {
            let entry = PRIMARY[(window >> (64 - PRIMARY_BITS)) as usize];
            let (Some([a, b]), len) = (out.get_mut(n..n + 2), u32::from(entry.len1 + entry.len2)) else {
                return Err(overrun());
            };
            if entry.len1 != 0 {
                *a = entry.sym1;
                *b = entry.sym2;
                n += 1 + usize::from(entry.len2 != 0);
                window <<= len;
                bits -= len;
            } else {
                let (sym, len) = lookup_long(window);
                if sym == EOS {
                    return Err(DecodeError::HuffmanEos);
                }
                *a = sym as u8;
                n += 1;
                window <<= len;
                bits -= len;
            }
        }
    }
    // The input is all in the window, under 30 bits of it. Past its end the window reads as ones, which start no
    // code shorter than EOS: a code that runs past the end means that what is left is padding.
    while bits > 0 {
        let filled = window | u64::MAX >> bits;
        let entry = PRIMARY[(filled >> (64 - PRIMARY_BITS)) as usize];
        let (sym, len) =
            if entry.len1 != 0 { (u16::from(entry.sym1), u32::from(entry.len1)) } else { lookup_long(filled) };
        if len > bits {
            // At most 7 bits, all ones (the most significant bits of EOS).
            let left = !(u64::MAX >> bits);
            return if bits <= 7 && window & left == left {
                Ok(out.get(..n).unwrap_or_default())
            } else {
                Err(DecodeError::HuffmanPadding)
            };
        }
        let Some(slot) = out.get_mut(n) else { return Err(overrun()) };
        *slot = sym as u8;
        n += 1;
        window <<= len;
        bits -= len;
    }
    Ok(out.get(..n).unwrap_or_default())
}

/// Not reached: `out` has room for one octet per 5 input bits, and every code is at least that long. Were it
/// reached, the string is refused rather than cut short.
#[cold]
fn overrun() -> DecodeError {
    DecodeError::HuffmanPadding
}

/// Appends `src` Huffman-coded and padded with ones to an octet boundary. The gateway's encoder sends plain
/// literals; this is the other half the decoder's tests check against.
#[cfg(test)]
pub(crate) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    let mut pending: u64 = 0;
    let mut bits = 0;
    for &octet in src {
        let (code, len) = CODES[usize::from(octet)];
        pending = pending << len | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.push((pending >> bits) as u8);
        }
    }
    if bits > 0 {
        dst.push((pending << (8 - bits)) as u8 | 0xff >> bits);
    }
}
