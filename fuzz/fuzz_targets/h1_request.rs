//! The client-side HTTP/1 server's parsing: any bytes, read as a pipeline of requests, give heads, refusals or
//! "need more", never a panic; a served head has exactly one Host, and its body decodes by its framing with
//! the same chunked decoder the server uses. The first byte picks the desync mode. Every whole head gets the
//! classification the analyser gives its raw bytes (the server hands it httparse's fields where it can), and
//! a served head the action and body framing the raw bytes get.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use waygate_config::DesyncMode;
use waygate_proxy::guard::framing::Framing;
use waygate_proxy::guard::verdict::{Verdict, judge};
use waygate_proxy::server::head::{Parsed, head_end, parse};
use waygate_proxy::wire::chunked::{Chunked, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mode = match mode % 3 {
        0 => DesyncMode::Monitor,
        1 => DesyncMode::Defensive,
        _ => DesyncMode::Strictest,
    };
    let mut buf = BytesMut::from(input);
    let local = "127.0.0.1:80".parse().unwrap();
    // Each round consumes a head and its body, or stops.
    for _ in 0..64 {
        let before = buf.len();
        let raw = head_end(&buf).map(|end| (judge(&buf[..end], mode), buf[..end].to_vec()));
        let same = |v: &Verdict| {
            if let Some(((raw, _), head)) = &raw {
                assert_eq!((v.classification, v.reason), (raw.classification, raw.reason), "{head:?}");
            }
        };
        let head = match parse(&mut buf, mode, local) {
            Parsed::Partial => return,
            Parsed::Refused(refusal) => return same(&refusal.verdict),
            Parsed::Head(head) => head,
        };
        same(&head.verdict);
        // A served head's action and framing (read from httparse's fields) are the raw bytes' too.
        if let Some(((raw, framing), bytes)) = &raw {
            assert_eq!((head.verdict.action, head.framing), (raw.action, *framing), "{bytes:?}");
        }
        assert!(buf.len() < before, "a head consumes its bytes");
        assert_eq!(head.request.headers().get_all(http::header::HOST).iter().count(), 1);
        match head.framing {
            None => {}
            Some(Framing::Length(n)) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                let _ = buf.split_to(take);
            }
            Some(Framing::Chunked) => {
                let mut dec = Chunked::default();
                loop {
                    match dec.decode(&mut buf) {
                        Ok(Step::Data(d)) => assert!(!d.is_empty()),
                        Ok(Step::Trailers(_)) | Ok(Step::End) => break,
                        Ok(Step::NeedMore) | Err(_) => return,
                    }
                }
            }
        }
    }
});
