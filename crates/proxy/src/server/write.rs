//! Response heads as the client gets them (RFC 9112 §4, §6): the status line, the fields, the framing the
//! body needs on this connection (its Content-Length when known, chunked for HTTP/1.1 otherwise, or the end
//! of the connection for an HTTP/1.0 client), `Date` when the response has none, and `Connection` as the
//! connection's fate decides.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderValue};
use http::{StatusCode, Version, response};
use http_body::Body;

use crate::body::ProxyBody;
use crate::headers::lists_token;
use crate::wire::out::{Encoder, put_field};

/// Writes the head of `parts` into `out` and returns the body's encoder. `keep_alive` comes in as the
/// request allows it and goes out as the response leaves it (a `Connection: close` field, or a body only the
/// connection's end can delimit, ends it).
pub fn head(
    out: &mut BytesMut,
    parts: &mut response::Parts,
    body: &ProxyBody,
    version: Version,
    head_request: bool,
    keep_alive: &mut bool,
) -> Encoder {
    let headers = &mut parts.headers;
    if headers.get_all(header::CONNECTION).iter().any(|v| lists_token(v, b"close")) {
        *keep_alive = false;
    }
    headers.remove(header::CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    let status = parts.status;
    let bodiless_status = status.is_informational() || status == StatusCode::NO_CONTENT;
    let no_body = head_request || bodiless_status || status == StatusCode::NOT_MODIFIED;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let enc = if bodiless_status {
        headers.remove(header::CONTENT_LENGTH);
        Encoder::Done
    } else if let Some(n) = declared {
        if no_body || n == 0 { Encoder::Done } else { Encoder::Length(n) }
    } else if let Some(n) = body.size_hint().exact() {
        if status != StatusCode::NOT_MODIFIED {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        if no_body || n == 0 { Encoder::Done } else { Encoder::Length(n) }
    } else if no_body {
        Encoder::Done
    } else if version == Version::HTTP_11 {
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Encoder::Chunked
    } else {
        *keep_alive = false;
        Encoder::Close
    };
    let reason = status.canonical_reason().unwrap_or("");
    out.reserve(64 + reason.len() + headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>());
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers.iter() {
        put_field(name, value, out);
    }
    if !headers.contains_key(header::DATE) {
        out.put_slice(b"date: ");
        with_date(|d| out.put_slice(d));
        out.put_slice(b"\r\n");
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // The connection goes on in the protocol switched to (RFC 9110 §7.8: Upgrade is listed in Connection).
        out.put_slice(b"connection: upgrade\r\n");
    } else if !*keep_alive {
        out.put_slice(b"connection: close\r\n");
    } else if version == Version::HTTP_10 {
        out.put_slice(b"connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
    enc
}

/// The IMF-fixdate of the current second, formatted once a second per thread.
pub(crate) fn with_date(f: impl FnOnce(&[u8])) {
    thread_local! {
        static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == text.len() {
                text.copy_from_slice(s.as_bytes());
                *at = secs;
            }
        }
        f(&text[..])
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Response;

    fn write(resp: Response<ProxyBody>, version: Version, head_request: bool, keep: bool) -> (String, Encoder, bool) {
        let (mut parts, body) = resp.into_parts();
        let mut out = BytesMut::new();
        let mut keep_alive = keep;
        let enc = head(&mut out, &mut parts, &body, version, head_request, &mut keep_alive);
        (String::from_utf8(out.to_vec()).unwrap(), enc, keep_alive)
    }

    #[test]
    fn a_known_length_gets_content_length() {
        let (text, enc, keep) = write(Response::new(ProxyBody::full("hello")), Version::HTTP_11, false, true);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 5\r\n") && text.contains("date: ") && text.ends_with("\r\n\r\n"));
        assert_eq!((enc, keep), (Encoder::Length(5), true));
        let (text, enc, _) = write(Response::new(ProxyBody::full("hello")), Version::HTTP_11, true, true);
        assert!(text.contains("content-length: 5\r\n"), "HEAD keeps the length: {text}");
        assert_eq!(enc, Encoder::Done);
    }

    #[test]
    fn connection_fate_is_written() {
        let mut resp = Response::new(ProxyBody::empty());
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        let (text, _, keep) = write(resp, Version::HTTP_11, false, true);
        assert!(!keep && text.contains("connection: close\r\n"), "{text}");
        let (text, _, keep) = write(Response::new(ProxyBody::empty()), Version::HTTP_10, false, true);
        assert!(keep && text.contains("connection: keep-alive\r\n"), "{text}");
    }

    #[test]
    fn no_content_has_no_framing() {
        let mut resp = Response::new(ProxyBody::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let (text, enc, _) = write(resp, Version::HTTP_11, false, true);
        assert!(!text.contains("content-length") && !text.contains("transfer-encoding"), "{text}");
        assert_eq!(enc, Encoder::Done);
    }
}
