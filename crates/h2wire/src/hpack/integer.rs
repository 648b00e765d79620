//! HPACK's integers (RFC 7541 §5.1): an N-bit prefix in the representation's first octet, then 7 bits per
//! continuation octet, least significant group first. Indexes, string lengths and table sizes all use them.

use bytes::BufMut;

use super::DecodeError;

/// The largest integer the decoder accepts: every HPACK integer is an index, a length within one header block,
/// or a table size bounded by a 32-bit setting, so anything larger is an attack or a broken peer.
const MAX: u64 = u32::MAX as u64;

/// Continuation octets needed for [`MAX`] (32 bits at 7 per octet); a longer run can only be padding with
/// zero groups, which a peer has no reason to send.
const MAX_CONTINUATIONS: u32 = 5;

/// Decodes the integer starting at `src[*pos]` with a `prefix_bits`-bit prefix (1 to 8), moving `*pos` past it.
/// Inlined so that the common case, a value within the prefix, costs a few instructions at each call site.
#[inline]
pub(crate) fn decode(src: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<usize, DecodeError> {
    let mask = u8::MAX >> (8 - prefix_bits.clamp(1, 8));
    let first = *src.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let prefix = first & mask;
    if prefix < mask { Ok(usize::from(prefix)) } else { continuation(src, pos, prefix) }
}

/// The continuation octets of an integer whose prefix is all ones (`prefix`).
fn continuation(src: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, DecodeError> {
    let mut value = u64::from(prefix);
    for group in 0..MAX_CONTINUATIONS {
        let octet = *src.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += u64::from(octet & 0x7f) << (7 * group);
        if octet & 0x80 == 0 {
            return usize::try_from(value).ok().filter(|_| value <= MAX).ok_or(DecodeError::IntegerOverflow);
        }
    }
    Err(DecodeError::IntegerOverflow)
}

/// Appends `value` with a `prefix_bits`-bit prefix (1 to 8); `first` holds the representation's bits above the
/// prefix (its pattern, such as 0x80 for an indexed field).
pub(crate) fn encode(value: usize, prefix_bits: u32, first: u8, dst: &mut impl BufMut) {
    let mask = u8::MAX >> (8 - prefix_bits.clamp(1, 8));
    if value < usize::from(mask) {
        // Fits in the prefix: `value < mask <= 255`.
        dst.put_u8(first | value as u8);
        return;
    }
    dst.put_u8(first | mask);
    let mut rest = value - usize::from(mask);
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(src: &[u8], prefix_bits: u32) -> Result<(usize, usize), DecodeError> {
        let mut pos = 0;
        decode(src, &mut pos, prefix_bits).map(|value| (value, pos))
    }

    fn encoded(value: usize, prefix_bits: u32, first: u8) -> Vec<u8> {
        let mut dst = Vec::new();
        encode(value, prefix_bits, first, &mut dst);
        dst
    }

    #[test]
    fn rfc_c1_1_ten_in_a_5_bit_prefix() {
        assert_eq!(encoded(10, 5, 0), [0b0000_1010]);
        // The bits above the prefix belong to the representation and do not change the value.
        assert_eq!(decoded(&[0b1110_1010], 5), Ok((10, 1)));
    }

    #[test]
    fn rfc_c1_2_1337_in_a_5_bit_prefix() {
        assert_eq!(encoded(1337, 5, 0), [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        assert_eq!(decoded(&[0b0001_1111, 0b1001_1010, 0b0000_1010, 0xff], 5), Ok((1337, 3)));
    }

    #[test]
    fn rfc_c1_3_42_at_an_octet_boundary() {
        assert_eq!(encoded(42, 8, 0), [42]);
        assert_eq!(decoded(&[42], 8), Ok((42, 1)));
    }

    #[test]
    fn prefix_boundaries_round_trip() {
        for prefix_bits in 1..=8 {
            for value in [0, 1, 30, 31, 32, 126, 127, 128, 254, 255, 256, 16_383, 16_384, 1 << 21, u32::MAX as usize] {
                let bytes = encoded(value, prefix_bits, 0);
                assert_eq!(decoded(&bytes, prefix_bits), Ok((value, bytes.len())), "{value} in {prefix_bits} bits");
            }
        }
    }

    #[test]
    fn truncated_integers_are_errors() {
        assert_eq!(decoded(&[], 5), Err(DecodeError::Truncated));
        assert_eq!(decoded(&[0x1f], 5), Err(DecodeError::Truncated));
        assert_eq!(decoded(&[0x1f, 0x80, 0x80], 5), Err(DecodeError::Truncated));
    }

    #[test]
    fn overflowing_integers_are_errors() {
        // 2^32: one past the largest accepted value.
        assert_eq!(decoded(&encoded(1 << 32, 5, 0), 5), Err(DecodeError::IntegerOverflow));
        assert_eq!(decoded(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 5), Err(DecodeError::IntegerOverflow));
        // Zero groups beyond the fifth continuation octet.
        assert_eq!(decoded(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5), Err(DecodeError::IntegerOverflow));
        let largest = encoded(u32::MAX as usize, 5, 0);
        assert_eq!(decoded(&largest, 5), Ok((u32::MAX as usize, largest.len())));
    }
}
