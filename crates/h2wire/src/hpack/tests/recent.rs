//! The decoder's memory of literals: bytes seen before decode as they did, except where their
//! meaning can change (a name from the dynamic table) or must not be kept (never-indexed).

use super::{decode, hex, text};
use crate::hpack::Decoder;

fn texts(decoder: &mut Decoder, dump: &str) -> Vec<(String, String)> {
    decode(decoder, &hex(dump)).iter().map(text).collect()
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[test]
fn a_repeated_literal_decodes_the_same_and_is_remembered() {
    let mut decoder = Decoder::new(4096);
    // RFC 7541 C.6.1's `date` (static name 33), Huffman-coded, as a literal without indexing, then a literal name.
    let block = "0f12 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff 000b 6772 7063 2d73 7461 7475 7301 30";
    let expected = vec![pair("date", "Mon, 21 Oct 2013 20:13:21 GMT"), pair("grpc-status", "0")];
    assert_eq!(texts(&mut decoder, block), expected);
    assert_eq!(decoder.recent_len(), 2);
    for _ in 0..3 {
        assert_eq!(texts(&mut decoder, block), expected);
    }
    assert_eq!(decoder.recent_len(), 2, "the same bytes are remembered once");
}

#[test]
fn a_name_from_the_dynamic_table_is_read_afresh() {
    let mut decoder = Decoder::new(4096);
    // `x-a: 1` into the dynamic table (index 62), then a literal without indexing named by index 62.
    assert_eq!(texts(&mut decoder, "4003 782d 6101 31 0f2f 0176"), vec![pair("x-a", "1"), pair("x-a", "v")]);
    assert_eq!(decoder.recent_len(), 1, "only the literal with a literal name");
    // `x-b: 2` is now index 62: the same bytes name it.
    assert_eq!(texts(&mut decoder, "4003 782d 6201 32 0f2f 0176"), vec![pair("x-b", "2"), pair("x-b", "v")]);
}

#[test]
fn a_never_indexed_literal_is_not_kept() {
    let mut decoder = Decoder::new(4096);
    // RFC 7541 C.2.3: `password: secret`, never indexed.
    let block = "1008 7061 7373 776f 7264 0673 6563 7265 74";
    assert_eq!(texts(&mut decoder, block), vec![pair("password", "secret")]);
    assert_eq!(decoder.recent_len(), 0);
}

#[test]
fn a_repeated_literal_with_indexing_is_remembered_and_still_indexed() {
    let mut decoder = Decoder::new(4096);
    // RFC 7541 C.2.1: `custom-key: custom-header` with incremental indexing, twice: two table entries.
    let block = "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572";
    assert_eq!(texts(&mut decoder, block), vec![pair("custom-key", "custom-header")]);
    assert_eq!(texts(&mut decoder, block), vec![pair("custom-key", "custom-header")]);
    assert_eq!(decoder.recent_len(), 1);
    // Both are in the table: index 62 and 63 name the same field.
    assert_eq!(texts(&mut decoder, "be bf"), vec![pair("custom-key", "custom-header"); 2]);
}
