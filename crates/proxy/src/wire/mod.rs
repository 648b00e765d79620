//! HTTP/1.1 wire formats shared by both sides of the gateway: the client-side server ([`crate::server`]) and
//! the upstream client ([`crate::upstream::h1`]) decode chunked bodies ([`chunked`]) and write heads and bodies
//! through the same output buffer and body encoder ([`out`]); a target's response fields cross from one to the
//! other as the bytes they came in ([`fields`]). Each side owns its connection state machine;
//! only the byte formats live here, so the two cannot drift apart. The Content-Length syntax ([`parse_length`])
//! is shared with the HTTP/2 server too.

pub mod chunked;
pub mod fields;
pub mod out;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName};

/// Makes room for `additional` bytes in `buf`. Buffers are given back between uses (an idle connection holds
/// none), so most of these find an empty one: that is allocated at its size at once, where `BytesMut::reserve`
/// took its general growth path first (about 70 instructions, on four buffers a request).
pub fn reserve(buf: &mut BytesMut, additional: usize) {
    if buf.capacity() == 0 {
        *buf = BytesMut::with_capacity(additional);
    } else {
        buf.reserve(additional);
    }
}

/// A Content-Length value: decimal digits only (no sign, no spaces, RFC 9110 §8.6), within u64.
pub fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Fields a sender must not put in a trailer section (RFC 9110 §6.5.1): message framing, routing, request
/// modifiers, authentication, response control and payload processing. A receiver drops them rather than
/// relay them, so that no trailer can change how the next hop frames or routes the message.
pub fn strip_forbidden_trailers(trailers: &mut HeaderMap) {
    static FORBIDDEN: [HeaderName; 20] = [
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::HOST,
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        HeaderName::from_static("proxy-connection"),
        header::CONTENT_ENCODING,
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
        header::SET_COOKIE,
        header::CACHE_CONTROL,
        header::EXPECT,
        header::MAX_FORWARDS,
        header::PRAGMA,
    ];
    // One pass over the trailer's (few) names, comparing names rather than hashing: a gRPC trailer section (one
    // or two fields) used to pay twenty hash-and-probe removals per response.
    if !trailers.keys().any(|name| FORBIDDEN.contains(name)) {
        return;
    }
    for name in &FORBIDDEN {
        trailers.remove(name);
    }
}

/// The size of a response head on the wire: an HTTP/1.1 status line and the header block.
pub fn head_bytes(headers: &http::HeaderMap) -> u64 {
    17 + header_bytes(headers)
}

/// The size of a header block on the wire: `name: value\r\n` each, and the blank line.
pub fn header_bytes(headers: &http::HeaderMap) -> u64 {
    headers.iter().map(|(n, v)| (n.as_str().len() + v.len() + 4) as u64).sum::<u64>() + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_trailer_fields_are_dropped_and_others_kept() {
        let mut t = HeaderMap::new();
        t.insert("transfer-encoding", "chunked".parse().unwrap());
        t.insert("content-length", "5".parse().unwrap());
        t.insert("grpc-status", "0".parse().unwrap());
        t.insert("x-checksum", "ab".parse().unwrap());
        t.insert("proxy-connection", "close".parse().unwrap());
        t.append("set-cookie", "a=1".parse().unwrap());
        t.append("set-cookie", "b=2".parse().unwrap());
        strip_forbidden_trailers(&mut t);
        let mut names: Vec<_> = t.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["grpc-status", "x-checksum"]);
        let mut allowed = HeaderMap::new();
        allowed.insert("grpc-status", "0".parse().unwrap());
        allowed.insert("grpc-message", "ok".parse().unwrap());
        strip_forbidden_trailers(&mut allowed);
        assert_eq!(allowed.len(), 2);
    }

    #[test]
    fn reserve_allocates_an_empty_buffer_and_grows_a_used_one_keeping_its_bytes() {
        let mut buf = BytesMut::new();
        super::reserve(&mut buf, 300);
        assert!(buf.capacity() >= 300 && buf.is_empty());
        buf.extend_from_slice(b"head");
        super::reserve(&mut buf, 4096);
        assert!(buf.capacity() - buf.len() >= 4096);
        assert_eq!(&buf[..], b"head");
    }
}
