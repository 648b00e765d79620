//! HPACK's tests beyond each file's own: the RFC 7541 examples, the error cases, the HTTP/2 field rules, and
//! encoder-to-decoder round trips.

mod appendix_c;
mod errors;
mod fields;
mod huffman;
mod recent;
mod roundtrip;
mod static_table;

use bytes::Bytes;

use super::{Decoder, Field};

/// The bytes of a hex dump as the RFC prints them: pairs of hex digits, whitespace anywhere.
fn hex(dump: &str) -> Bytes {
    let digits: Vec<u8> = dump.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits in {dump:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex digits"))
        .collect()
}

/// A field as the RFC prints it: name and value.
fn text(field: &Field) -> (String, String) {
    let (name, value): (&[u8], &[u8]) = match field {
        Field::Pseudo(pseudo, value) => (pseudo.name().as_bytes(), value),
        Field::Header(name, value) => (name.as_str().as_bytes(), value.as_bytes()),
        Field::Invalid { name, value } => (name, value),
    };
    (String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(value).into_owned())
}

/// Decodes a block with no list-size limit, expecting success.
fn decode(decoder: &mut Decoder, block: &Bytes) -> Vec<Field> {
    let mut fields = Vec::new();
    let size = decoder.decode(block, usize::MAX, |field| fields.push(field)).expect("block decodes");
    assert_eq!(size, super::ListSize::Within);
    fields
}

/// The dynamic table as the RFC prints it, newest first.
fn table(decoder: &Decoder) -> Vec<(String, String)> {
    decoder.table().entries().map(text).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|&(name, value)| (name.to_owned(), value.to_owned())).collect()
}
