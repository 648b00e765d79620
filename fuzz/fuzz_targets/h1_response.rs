//! The upstream client's response parsing: any bytes give a head, an interim response, "need more" or the
//! evidence of a malformed or oversized head, never a panic; a final head's body then decodes by its framing
//! with the chunked decoder shared with the server. The first byte says whether the request was a HEAD (bit 0)
//! and whether it asked to switch protocols (bit 1: a WebSocket's handshake, where a 101 is final). The head's
//! fields, kept as the bytes they came in, always convert to a map whole.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use waygate_proxy::upstream::h1::head::{Framing, Parsed, parse_response_to};
use waygate_proxy::wire::fields::Fields;
use waygate_proxy::wire::chunked::{Chunked, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else { return };
    let head_request = flags & 1 == 1;
    let upgrade = flags & 2 == 2;
    let mut buf = BytesMut::from(input);
    for _ in 0..16 {
        let before = buf.len();
        let head = match parse_response_to(&mut buf, head_request, upgrade, 32 * 1024) {
            Ok(Parsed::Interim) => {
                assert!(buf.len() < before, "an interim response consumes its bytes");
                continue;
            }
            Ok(Parsed::Final(head)) => head,
            Ok(Parsed::Partial) | Err(_) => return,
        };
        // The fields stay as bytes; whatever httparse accepted must convert to a map whole (an HTTP/2 client's).
        let Fields::Wire(fields) = &head.fields else { panic!("an HTTP/1 head keeps its bytes") };
        assert_eq!(fields.to_map().len(), fields.len(), "every field httparse accepted is a valid map field");
        if head.status.as_u16() == 101 {
            assert!(upgrade, "a 101 is final only when an upgrade was asked for");
            assert_eq!((head.framing, head.keep_alive), (Framing::Empty, false), "after a 101, no body, no reuse");
            return;
        }
        assert!(head.status.as_u16() >= 200);
        if head_request {
            assert_eq!(head.framing, Framing::Empty, "a HEAD's response has no body");
        }
        match head.framing {
            Framing::Chunked => {
                let mut dec = Chunked::default();
                loop {
                    match dec.decode(&mut buf) {
                        Ok(Step::Data(d)) => assert!(!d.is_empty()),
                        Ok(Step::Trailers(_)) | Ok(Step::End) => break,
                        Ok(Step::NeedMore) | Err(_) => return,
                    }
                }
            }
            Framing::Length(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                let _ = buf.split_to(take);
            }
            Framing::Empty => {}
            Framing::Close => return,
        }
    }
});
