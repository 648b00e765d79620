//! The Huffman code as transcribed (complete, canonical, a few codes checked against Appendix B by eye) and the
//! decoder against the test encoder.

use crate::hpack::DecodeError;
use crate::hpack::huffman::{CODES, decode, encode};

fn decoded(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
    // A scratch buffer with stale contents, as the decoder's is after its first string.
    let mut scratch = vec![0xa5; 3];
    decode(src, &mut scratch).map(<[u8]>::to_vec)
}

fn encoded(src: &[u8]) -> Vec<u8> {
    let mut dst = Vec::new();
    encode(src, &mut dst);
    dst
}

#[test]
fn the_code_is_complete() {
    // Kraft: the sum of 2^-len over the 257 symbols is exactly 1, counted in units of 2^-30.
    let sum: u64 = CODES.iter().map(|&(_, len)| 1u64 << (30 - len)).sum();
    assert_eq!(sum, 1 << 30);
}

#[test]
fn the_code_is_canonical() {
    // Derived from the lengths alone: by length, then symbol, each code one more than the last, shifted left
    // when the length grows.
    let mut order: Vec<usize> = (0..CODES.len()).collect();
    order.sort_by_key(|&sym| (CODES[sym].1, sym));
    let (mut code, mut len) = (0u32, CODES[order[0]].1);
    for (i, &sym) in order.iter().enumerate() {
        if i > 0 {
            code = (code + 1) << (CODES[sym].1 - len);
            len = CODES[sym].1;
        }
        assert_eq!(CODES[sym], (code, len), "symbol {sym}");
    }
}

#[test]
fn codes_as_appendix_b_prints_them() {
    let rows: [(usize, u32, u8); 12] = [
        (0, 0x1ff8, 13),
        (10, 0x3ffffffc, 30),
        (b' ' as usize, 0x14, 6),
        (b'0' as usize, 0x0, 5),
        (b'a' as usize, 0x3, 5),
        (b'A' as usize, 0x21, 6),
        (b':' as usize, 0x5c, 7),
        (b'\\' as usize, 0x7fff0, 19),
        (b'~' as usize, 0x1ffd, 13),
        (128, 0xfffe6, 20),
        (255, 0x3ffffee, 26),
        (256, 0x3fffffff, 30),
    ];
    for (sym, code, len) in rows {
        assert_eq!(CODES[sym], (code, len), "symbol {sym}");
    }
}

#[test]
fn appendix_c_strings_encode_as_printed() {
    assert_eq!(encoded(b"www.example.com"), super::hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
    assert_eq!(encoded(b"no-cache"), super::hex("a8eb 1064 9cbf"));
    assert_eq!(encoded(b"custom-key"), super::hex("25a8 49e9 5ba9 7d7f"));
    assert_eq!(encoded(b"302"), super::hex("6402"));
    assert_eq!(encoded(b"gzip"), super::hex("9bd9 ab"));
}

#[test]
fn every_octet_round_trips() {
    for octet in 0..=255u8 {
        assert_eq!(decoded(&encoded(&[octet])), Ok(vec![octet]), "octet {octet}");
        assert_eq!(decoded(&encoded(&[octet, b'a', octet])), Ok(vec![octet, b'a', octet]), "octet {octet}");
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(decoded(&encoded(&all)), Ok(all.clone()));
    let reversed: Vec<u8> = all.into_iter().rev().collect();
    assert_eq!(decoded(&encoded(&reversed)), Ok(reversed));
}

#[test]
fn pseudo_random_strings_round_trip() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        // Half the strings from text alone, half from any octet, so both short and long codes are common.
        let text = next() % 2 == 0;
        let string: Vec<u8> =
            (0..len).map(|_| if text { b"abcxyz019-./:ABZ _"[(next() % 18) as usize] } else { next() as u8 }).collect();
        assert_eq!(decoded(&encoded(&string)), Ok(string.clone()), "{string:?}");
    }
}

#[test]
fn padding_rules() {
    assert_eq!(decoded(&[]), Ok(vec![]));
    // 'a' (5 bits) and 3 bits of ones; every octet a whole number of codes with no padding.
    assert_eq!(decoded(&[0x1f]), Ok(b"a".to_vec()));
    assert_eq!(decoded(&encoded(b"0000000")).map(|v| v.len()), Ok(7));
    // 7 bits of padding is the most there can be: five '0's (25 zero bits), then 7 ones.
    assert_eq!(decoded(&[0x00, 0x00, 0x00, 0x7f]), Ok(b"00000".to_vec()));
    assert_eq!(decoded(&[0xfe]), Err(DecodeError::HuffmanPadding));
    assert_eq!(decoded(&[0xff]), Err(DecodeError::HuffmanPadding));
    assert_eq!(decoded(&[0x1f, 0xff]), Err(DecodeError::HuffmanPadding));
    assert_eq!(decoded(&[0x1f, 0xff, 0xff, 0xff]), Err(DecodeError::HuffmanPadding));
    assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xfc]), Err(DecodeError::HuffmanEos));
    // The same after a string long enough to go through the eight-octet refills first.
    let long = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)".repeat(3);
    let mut coded = encoded(&long);
    assert_eq!(decoded(&coded), Ok(long.clone()));
    coded.push(0xff);
    assert_eq!(decoded(&coded), Err(DecodeError::HuffmanPadding));
    coded.extend_from_slice(&[0xff, 0xff, 0xff]);
    assert_eq!(decoded(&coded), Err(DecodeError::HuffmanEos));
}
