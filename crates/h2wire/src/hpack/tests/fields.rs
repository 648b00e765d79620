//! HTTP/2's field rules as the decoder applies them (invalid fields come out as [`Field::Invalid`] and the block
//! goes on), and the header-list size limit (the fields stop, the table keeps in step).

use bytes::{Bytes, BytesMut};
use http::HeaderValue;

use super::{decode, text};
use crate::hpack::{Decoder, Encoder, Field, ListSize, Pseudo};

/// A literal with incremental indexing and a literal name (§6.2.1).
fn indexed_literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0x40);
    for string in [name, value] {
        block.push(u8::try_from(string.len()).expect("short test string"));
        block.extend_from_slice(string);
    }
}

#[test]
fn invalid_fields_come_out_invalid_and_do_not_break_later_ones() {
    let invalid: [(&[u8], &[u8]); 9] = [
        (b"X-Upper", b"a"),
        (b":foo", b"b"),
        (b":", b"b"),
        (b"", b"empty name"),
        (b"x-cr", b"a\rb"),
        (b"x-nul", b"a\0b"),
        (b"x-leading", b" a"),
        (b"x-trailing", b"a\t"),
        (b":path", b" /"),
    ];
    let mut block = Vec::new();
    for (name, value) in invalid {
        indexed_literal(&mut block, name, value);
    }
    indexed_literal(&mut block, b"x-ok", b"fine");
    // The invalid entries are in the table like any other: index 71 is the oldest, the uppercase one.
    block.push(0x80 | 71);
    block.push(0x80 | 62);
    let fields = decode(&mut Decoder::new(4096), &Bytes::from(block));
    assert_eq!(fields.len(), invalid.len() + 3);
    for ((name, value), field) in invalid.iter().zip(&fields) {
        assert_eq!(field, &Field::Invalid { name: Bytes::copy_from_slice(name), value: Bytes::copy_from_slice(value) });
    }
    assert_eq!(text(&fields[9]), ("x-ok".to_owned(), "fine".to_owned()));
    assert!(matches!(fields[9], Field::Header(..)));
    assert_eq!(fields[10], fields[0]);
    assert_eq!(fields[11], fields[9]);
}

#[test]
fn a_valid_name_from_the_table_with_an_invalid_value_is_invalid() {
    // content-type (static 31) with a CR; :authority (static 1) with a trailing space.
    let fields = decode(&mut Decoder::new(4096), &Bytes::from_static(b"\x0f\x10\x03a\rb\x01\x02a "));
    assert_eq!(
        fields,
        [
            Field::Invalid { name: Bytes::from_static(b"content-type"), value: Bytes::from_static(b"a\rb") },
            Field::Invalid { name: Bytes::from_static(b":authority"), value: Bytes::from_static(b"a ") },
        ]
    );
}

#[test]
fn pseudo_headers_are_recognized() {
    let mut block = Vec::new();
    for name in [":method", ":scheme", ":authority", ":path", ":protocol", ":status"] {
        indexed_literal(&mut block, name.as_bytes(), b"v");
    }
    let fields = decode(&mut Decoder::new(4096), &Bytes::from(block));
    let expected = [Pseudo::Method, Pseudo::Scheme, Pseudo::Authority, Pseudo::Path, Pseudo::Protocol, Pseudo::Status];
    assert_eq!(fields, expected.map(|pseudo| Field::Pseudo(pseudo, Bytes::from_static(b"v"))));
}

#[test]
fn values_are_slices_of_the_block() {
    let block = Bytes::from_static(b"\x00\x04x-id\x05hello");
    let fields = decode(&mut Decoder::new(4096), &block);
    let [Field::Header(_, value)] = &fields[..] else { panic!("{fields:?}") };
    assert_eq!(value.as_bytes().as_ptr(), block[7..].as_ptr());
}

#[test]
fn list_size_limit_stops_the_fields_but_keeps_the_table_in_step() {
    let mut decoder = Decoder::new(4096);
    let mut block = vec![0x82]; // :method GET, 42 octets
    indexed_literal(&mut block, b"x-big", &[b'v'; 100]); // 137 octets: over 100
    indexed_literal(&mut block, b"x-after", b"v"); // added after the limit was crossed
    block.push(0x84); // :path /
    let mut fields = Vec::new();
    let size = decoder.decode(&Bytes::from(block), 100, |field| fields.push(field));
    assert_eq!(size, Ok(ListSize::TooLarge));
    assert_eq!(fields, [Field::Pseudo(Pseudo::Method, Bytes::from_static(b"GET"))]);

    // The next block refers to both entries, and to one the limit kept from being handed out.
    let fields = decode(&mut decoder, &Bytes::from_static(&[0xbe, 0xbf]));
    assert_eq!(text(&fields[0]), ("x-after".to_owned(), "v".to_owned()));
    assert_eq!(text(&fields[1]), ("x-big".to_owned(), "v".repeat(100)));
}

#[test]
fn list_size_counts_32_octets_per_field() {
    // :method GET is 7 + 3 + 32 = 42 octets: exactly at the limit is within it.
    let block = Bytes::from_static(&[0x82]);
    assert_eq!(Decoder::new(4096).decode(&block, 42, |_| {}), Ok(ListSize::Within));
    assert_eq!(Decoder::new(4096).decode(&block, 41, |_| {}), Ok(ListSize::TooLarge));
    assert_eq!(Decoder::new(4096).decode(&Bytes::new(), 0, |_| {}), Ok(ListSize::Within));
}

#[test]
fn never_indexed_values_stay_sensitive_through_a_table_name() {
    // authorization (static 23) never indexed; then the same name with incremental indexing is not sensitive.
    let mut block = BytesMut::new();
    let mut secret = HeaderValue::from_static("secret");
    secret.set_sensitive(true);
    Encoder::new().field(&http::header::AUTHORIZATION, &secret, &mut block);
    block.extend_from_slice(b"\x57\x04open");
    let fields = decode(&mut Decoder::new(4096), &block.freeze());
    let [Field::Header(_, first), Field::Header(_, second)] = &fields[..] else { panic!("{fields:?}") };
    assert!(first.is_sensitive());
    assert!(!second.is_sensitive());
}
