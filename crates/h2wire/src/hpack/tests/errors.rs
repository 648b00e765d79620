//! Blocks that must end the connection with COMPRESSION_ERROR, and the dynamic table size updates around them.

use bytes::Bytes;

use super::{decode, hex, table};
use crate::hpack::{DecodeError, Decoder, integer};

fn error(decoder: &mut Decoder, block: &[u8]) -> DecodeError {
    decoder.decode(&Bytes::copy_from_slice(block), usize::MAX, |_| {}).expect_err("block must fail")
}

fn fresh(block: &[u8]) -> DecodeError {
    error(&mut Decoder::new(4096), block)
}

/// A dynamic table size update (§6.3) to `size`.
fn size_update(size: usize) -> Vec<u8> {
    let mut block = Vec::new();
    integer::encode(size, 5, 0x20, &mut block);
    block
}

#[test]
fn index_zero() {
    assert_eq!(fresh(&[0x80]), DecodeError::IndexOutOfRange);
}

#[test]
fn index_beyond_the_tables() {
    // 62 with an empty dynamic table, as a field and as a literal's name.
    assert_eq!(fresh(&[0xbe]), DecodeError::IndexOutOfRange);
    assert_eq!(fresh(&[0x7e, 0x01, b'a']), DecodeError::IndexOutOfRange);
    assert_eq!(fresh(&[0x0f, 0x2f, 0x01, b'a']), DecodeError::IndexOutOfRange);
    // 62 once an entry is there, 63 still not.
    let mut decoder = Decoder::new(4096);
    decode(&mut decoder, &hex("4001 6101 62"));
    assert_eq!(decode(&mut decoder, &hex("be")).len(), 1);
    assert_eq!(error(&mut decoder, &[0xbf]), DecodeError::IndexOutOfRange);
}

#[test]
fn truncated_integer() {
    assert_eq!(fresh(&[0xff]), DecodeError::Truncated);
    assert_eq!(fresh(&[0x82, 0xff, 0x80]), DecodeError::Truncated);
}

#[test]
fn overflowing_integer() {
    assert_eq!(fresh(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), DecodeError::IntegerOverflow);
    assert_eq!(fresh(&[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), DecodeError::IntegerOverflow);
}

#[test]
fn strings_that_end_past_the_block() {
    assert_eq!(fresh(&[0x40, 0x05, b'a', b'b']), DecodeError::Truncated);
    assert_eq!(fresh(&[0x00, 0x01, b'a', 0x02, b'b']), DecodeError::Truncated);
    assert_eq!(fresh(&[0x00, 0x01, b'a']), DecodeError::Truncated);
    assert_eq!(fresh(&[0x00, 0x01, b'a', 0x81]), DecodeError::Truncated);
    // The largest length an integer may carry, far past the block.
    assert_eq!(fresh(&[0x00, 0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f]), DecodeError::Truncated);
}

#[test]
fn huffman_padding_that_is_not_eos_ones() {
    // 'a' is 00011: padded with zeros instead of ones.
    assert_eq!(fresh(&[0x00, 0x01, b'x', 0x81, 0x18]), DecodeError::HuffmanPadding);
    // Correctly padded, it decodes.
    let fields = decode(&mut Decoder::new(4096), &Bytes::from_static(&[0x00, 0x01, b'x', 0x81, 0x1f]));
    assert_eq!(super::text(&fields[0]).1, "a");
}

#[test]
fn huffman_padding_longer_than_seven_bits() {
    // 'a' then 3 + 8 bits of ones.
    assert_eq!(fresh(&[0x00, 0x01, b'x', 0x82, 0x1f, 0xff]), DecodeError::HuffmanPadding);
    // A whole octet of ones and nothing else.
    assert_eq!(fresh(&[0x00, 0x01, b'x', 0x81, 0xff]), DecodeError::HuffmanPadding);
}

#[test]
fn huffman_eos_in_a_string() {
    // EOS (30 ones) then 2 bits of padding.
    assert_eq!(fresh(&[0x00, 0x01, b'x', 0x84, 0xff, 0xff, 0xff, 0xff]), DecodeError::HuffmanEos);
    // EOS between two 'a's: 00011 + 30 ones + 00011, 40 bits.
    let bits: u64 = (0b00011 << 35) | (0x3fff_ffff << 5) | 0b00011;
    let mut block = vec![0x00, 0x01, b'x', 0x85];
    block.extend_from_slice(&bits.to_be_bytes()[3..]);
    assert_eq!(fresh(&block), DecodeError::HuffmanEos);
}

#[test]
fn size_update_above_the_advertised_maximum() {
    assert!(decode(&mut Decoder::new(4096), &Bytes::from(size_update(4096))).is_empty());
    assert_eq!(fresh(&size_update(4097)), DecodeError::SizeUpdateTooLarge);
    assert_eq!(error(&mut Decoder::new(0), &size_update(1)), DecodeError::SizeUpdateTooLarge);
}

#[test]
fn size_update_after_a_field() {
    assert_eq!(fresh(&[0x82, 0x20]), DecodeError::SizeUpdateNotAtStart);
    assert_eq!(fresh(&[0x20, 0x82, 0x3f, 0xe1, 0x1f]), DecodeError::SizeUpdateNotAtStart);
}

#[test]
fn at_most_two_size_updates() {
    assert_eq!(decode(&mut Decoder::new(4096), &hex("20 3fe11f 82")).len(), 1);
    assert_eq!(fresh(&[0x20, 0x20, 0x20]), DecodeError::TooManySizeUpdates);
}

#[test]
fn size_updates_evict_and_zero_empties() {
    let mut decoder = Decoder::new(4096);
    // Two entries of 34 octets each.
    decode(&mut decoder, &hex("4001 6101 62 4001 6301 64"));
    assert_eq!(table(&decoder).len(), 2);
    // Down to 40: only the newest fits.
    decode(&mut decoder, &Bytes::from(size_update(40)));
    assert_eq!(table(&decoder), super::pairs(&[("c", "d")]));
    decode(&mut decoder, &Bytes::from(size_update(0)));
    assert!(table(&decoder).is_empty());
    // Back up: inserts work again.
    decode(&mut decoder, &hex("3fe11f 4001 6501 66"));
    assert_eq!(table(&decoder), super::pairs(&[("e", "f")]));
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut decoder = Decoder::new(64);
    decode(&mut decoder, &hex("4001 6101 62"));
    // 33 + 32 octets: larger than 64, so the table empties and the field is not added, but still decoded.
    let mut block = vec![0x40, 0x01, b'a', 0x20];
    block.extend_from_slice(&[b'a'; 32]);
    let fields = decode(&mut decoder, &Bytes::from(block));
    assert_eq!(fields.len(), 1);
    assert!(table(&decoder).is_empty());
    assert_eq!(decoder.table().size(), 0);
}

#[test]
fn errors_display_and_are_errors() {
    let error: &dyn std::error::Error = &DecodeError::HuffmanEos;
    assert_eq!(error.to_string(), "HPACK Huffman string containing EOS");
}
