//! RFC 7541 Appendix C.2 to C.6, decoded: each example's fields, then the dynamic table's entries and size as
//! the RFC prints them after the block.

use super::{decode, hex, pairs, table, text};
use crate::hpack::{Decoder, Field};

/// Decodes one example block and checks the fields, the table (newest first) and the table's size.
fn example(decoder: &mut Decoder, dump: &str, fields: &[(&str, &str)], entries: &[(&str, &str)], size: usize) {
    let decoded = decode(decoder, &hex(dump));
    assert_eq!(decoded.iter().map(text).collect::<Vec<_>>(), pairs(fields));
    assert!(decoded.iter().all(|field| !matches!(field, Field::Invalid { .. })), "{decoded:?}");
    assert_eq!(table(decoder), pairs(entries));
    assert_eq!(decoder.table().size(), size);
}

#[test]
fn c2_1_literal_with_indexing() {
    let kv = [("custom-key", "custom-header")];
    example(&mut Decoder::new(4096), "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", &kv, &kv, 55);
}

#[test]
fn c2_2_literal_without_indexing() {
    example(&mut Decoder::new(4096), "040c 2f73 616d 706c 652f 7061 7468", &[(":path", "/sample/path")], &[], 0);
}

#[test]
fn c2_3_literal_never_indexed() {
    let mut decoder = Decoder::new(4096);
    example(&mut decoder, "1008 7061 7373 776f 7264 0673 6563 7265 74", &[("password", "secret")], &[], 0);
    let fields = decode(&mut decoder, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    assert!(matches!(&fields[..], [Field::Header(_, value)] if value.is_sensitive()), "{fields:?}");
}

#[test]
fn c2_4_indexed() {
    example(&mut Decoder::new(4096), "82", &[(":method", "GET")], &[], 0);
}

const REQUEST_1: [(&str, &str); 4] =
    [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];
const REQUEST_2: [(&str, &str); 5] = [
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: [(&str, &str); 5] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const AUTHORITY: (&str, &str) = (":authority", "www.example.com");
const NO_CACHE: (&str, &str) = ("cache-control", "no-cache");
const CUSTOM: (&str, &str) = ("custom-key", "custom-value");

#[test]
fn c3_requests_without_huffman() {
    let d = &mut Decoder::new(4096);
    example(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", &REQUEST_1, &[AUTHORITY], 57);
    example(d, "8286 84be 5808 6e6f 2d63 6163 6865", &REQUEST_2, &[NO_CACHE, AUTHORITY], 110);
    let c3_3 = "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65";
    example(d, c3_3, &REQUEST_3, &[CUSTOM, NO_CACHE, AUTHORITY], 164);
}

#[test]
fn c4_requests_with_huffman() {
    let d = &mut Decoder::new(4096);
    example(d, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", &REQUEST_1, &[AUTHORITY], 57);
    example(d, "8286 84be 5886 a8eb 1064 9cbf", &REQUEST_2, &[NO_CACHE, AUTHORITY], 110);
    let c4_3 = "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf";
    example(d, c4_3, &REQUEST_3, &[CUSTOM, NO_CACHE, AUTHORITY], 164);
}

const RESPONSE_1: [(&str, &str); 4] = [
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: [(&str, &str); 4] = [
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const SET_COOKIE: (&str, &str) = ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1");
const RESPONSE_3: [(&str, &str); 6] = [
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    SET_COOKIE,
];
/// The table after the first response, newest first.
const TABLE_1: [(&str, &str); 4] = [
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const TABLE_2: [(&str, &str); 4] = [
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const TABLE_3: [(&str, &str); 3] =
    [SET_COOKIE, ("content-encoding", "gzip"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT")];

#[test]
fn c5_responses_without_huffman() {
    let d = &mut Decoder::new(256);
    let c5_1 = "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                6c65 2e63 6f6d";
    example(d, c5_1, &RESPONSE_1, &TABLE_1, 222);
    example(d, "4803 3330 37c1 c0bf", &RESPONSE_2, &TABLE_2, 222);
    let c5_3 = "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                3d31";
    example(d, c5_3, &RESPONSE_3, &TABLE_3, 215);
}

#[test]
fn c6_responses_with_huffman() {
    let d = &mut Decoder::new(256);
    let c6_1 = "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3";
    example(d, c6_1, &RESPONSE_1, &TABLE_1, 222);
    example(d, "4883 640e ffc1 c0bf", &RESPONSE_2, &TABLE_2, 222);
    let c6_3 = "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                9587 3160 65c0 03ed 4ee5 b106 3d50 07";
    example(d, c6_3, &RESPONSE_3, &TABLE_3, 215);
}
