//! The encoder against the decoder: what the gateway encodes decodes to the same fields, in the bytes the
//! encoder's rules promise.

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, StatusCode};

use super::decode;
use crate::hpack::{Decoder, Encoder, Field, Pseudo};

fn round_trip(encode: impl FnOnce(&mut Encoder, &mut BytesMut)) -> (Bytes, Vec<Field>) {
    let mut block = BytesMut::new();
    encode(&mut Encoder::new(), &mut block);
    let block = block.freeze();
    let fields = decode(&mut Decoder::new(4096), &block);
    (block, fields)
}

#[test]
fn every_status_round_trips() {
    for code in 100..=999 {
        let status = StatusCode::from_u16(code).expect("valid status");
        let (block, fields) = round_trip(|encoder, dst| encoder.status(status, dst));
        assert_eq!(fields, [Field::Pseudo(Pseudo::Status, Bytes::copy_from_slice(status.as_str().as_bytes()))]);
        let indexed = [200, 204, 206, 304, 400, 404, 500].contains(&code);
        assert_eq!(block.len(), if indexed { 1 } else { 5 }, "{code}");
    }
    assert_eq!(round_trip(|e, dst| e.status(StatusCode::OK, dst)).0, &[0x88][..]);
    assert_eq!(round_trip(|e, dst| e.status(StatusCode::FOUND, dst)).0, &b"\x08\x03302"[..]);
}

#[test]
fn pseudo_headers_round_trip() {
    let cases: [(Pseudo, &[u8], usize); 12] = [
        (Pseudo::Method, b"GET", 1),
        (Pseudo::Method, b"POST", 1),
        (Pseudo::Method, b"CONNECT", 9),
        (Pseudo::Path, b"/", 1),
        (Pseudo::Path, b"/index.html", 1),
        (Pseudo::Path, b"/search?q=1", 13),
        (Pseudo::Scheme, b"http", 1),
        (Pseudo::Scheme, b"https", 1),
        (Pseudo::Authority, b"example.com:8443", 18),
        (Pseudo::Protocol, b"websocket", 21),
        (Pseudo::Status, b"404", 1),
        (Pseudo::Status, b"302", 5),
    ];
    for (pseudo, value, len) in cases {
        let (block, fields) = round_trip(|encoder, dst| encoder.pseudo(pseudo, value, dst));
        assert_eq!(fields, [Field::Pseudo(pseudo, Bytes::copy_from_slice(value))]);
        assert_eq!(block.len(), len, "{pseudo:?} {value:?}");
    }
}

#[test]
fn regular_fields_round_trip() {
    let long_value = "v".repeat(300);
    let long_name = "x-".to_owned() + &"n".repeat(200);
    let cases = [
        ("content-type", "text/html; charset=utf-8"),
        ("accept-charset", ""),
        ("www-authenticate", "Basic"),
        ("set-cookie", "a=b; Path=/"),
        ("x-request-id", "0af7651916cd43dd8448eb211c80319c"),
        ("te", "trailers"),
        ("content-length", &long_value),
        (&long_name, &long_value),
    ];
    for (name, value) in cases {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
        let value = HeaderValue::from_str(value).expect("value");
        let (_, fields) = round_trip(|encoder, dst| encoder.field(&name, &value, dst));
        assert_eq!(fields, [Field::Header(name, value)]);
        assert!(matches!(&fields[..], [Field::Header(_, value)] if !value.is_sensitive()));
    }
}

#[test]
fn static_names_go_by_index_and_others_as_literals() {
    let (block, _) = round_trip(|e, dst| e.field(&http::header::CONTENT_TYPE, &HeaderValue::from_static("a"), dst));
    // Without indexing, index 31 over a 4-bit prefix: 15 then 16.
    assert_eq!(block, &b"\x0f\x10\x01a"[..]);
    let (block, _) = round_trip(|e, dst| e.field(&http::header::AGE, &HeaderValue::from_static("1"), dst));
    assert_eq!(block, &b"\x0f\x06\x011"[..]);
    let name = HeaderName::from_static("x-a");
    let (block, _) = round_trip(|e, dst| e.field(&name, &HeaderValue::from_static("1"), dst));
    assert_eq!(block, &b"\x00\x03x-a\x011"[..]);
}

#[test]
fn sensitive_values_stay_sensitive() {
    let mut value = HeaderValue::from_static("Bearer abc");
    value.set_sensitive(true);
    for name in [http::header::AUTHORIZATION, HeaderName::from_static("x-api-key")] {
        let (block, fields) = round_trip(|encoder, dst| encoder.field(&name, &value, dst));
        assert_eq!(block[0] & 0xf0, 0x10, "never indexed");
        assert_eq!(fields, [Field::Header(name, value.clone())]);
        assert!(matches!(&fields[..], [Field::Header(_, value)] if value.is_sensitive()));
    }
}

#[test]
fn a_whole_response_round_trips_and_leaves_the_table_empty() {
    let fields = [
        (http::header::CONTENT_TYPE, "application/json"),
        (http::header::CONTENT_LENGTH, "1234"),
        (http::header::DATE, "Mon, 21 Oct 2013 20:13:21 GMT"),
        (HeaderName::from_static("x-served-by"), "waygate"),
    ];
    let mut block = BytesMut::new();
    let mut encoder = Encoder::new();
    encoder.status(StatusCode::OK, &mut block);
    for (name, value) in &fields {
        encoder.field(name, &HeaderValue::from_static(value), &mut block);
    }
    let mut decoder = Decoder::new(4096);
    let decoded = decode(&mut decoder, &block.freeze());
    let mut expected = vec![Field::Pseudo(Pseudo::Status, Bytes::from_static(b"200"))];
    expected.extend(fields.map(|(name, value)| Field::Header(name, HeaderValue::from_static(value))));
    assert_eq!(decoded, expected);
    assert_eq!(decoder.table().size(), 0);
}
