//! Response heads as the client gets them (RFC 9112 §4, §6): the status line, the fields, the framing the
//! body needs on this connection (its Content-Length when known, chunked for HTTP/1.1 otherwise, or the end
//! of the connection for an HTTP/1.0 client), `Date` when the response has none, and `Connection` as the
//! connection's fate decides.
//!
//! The head is written in one pass over the response's fields, which decides the framing on the way: looking
//! each framing field up first (and removing the hop-by-hop ones) took five hash lookups per response.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderName};
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
    parts: &response::Parts,
    body: &ProxyBody,
    version: Version,
    head_request: bool,
    keep_alive: &mut bool,
) -> Encoder {
    let headers = &parts.headers;
    let status = parts.status;
    let bodiless_status = status.is_informational() || status == StatusCode::NO_CONTENT;
    let no_body = head_request || bodiless_status || status == StatusCode::NOT_MODIFIED;
    let reason = status.canonical_reason().unwrap_or("");
    // An HTTP/1 target's own fields travel with the body as it sent them; the map holds the gateway's.
    let target = body.target_fields();
    // The framing fields this may add are under 64 bytes, like the date and connection lines.
    let fields = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>();
    crate::wire::reserve(out, 128 + reason.len() + fields + target.map_or(0, |t| t.wire_len() as usize));
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    let mut copy = Copier { keep_alive, bodiless_status, declared: None, dated: false };
    if let Some(target) = target {
        target.put_kept(out, |name, value| copy.keeps(Role::of_wire(name), value));
    }
    for (name, value) in headers {
        if copy.keeps(Role::of(name), value.as_bytes()) {
            put_field(name, value, out);
        }
    }
    let Copier { declared, dated, .. } = copy;
    let enc = if bodiless_status {
        Encoder::Done
    } else if let Some(n) = declared {
        if no_body || n == 0 { Encoder::Done } else { Encoder::Length(n) }
    } else if let Some(n) = body.size_hint().exact() {
        if status != StatusCode::NOT_MODIFIED {
            out.put_slice(b"content-length: ");
            out.put_slice(itoa::Buffer::new().format(n).as_bytes());
            out.put_slice(b"\r\n");
        }
        if no_body || n == 0 { Encoder::Done } else { Encoder::Length(n) }
    } else if no_body {
        Encoder::Done
    } else if version == Version::HTTP_11 {
        out.put_slice(b"transfer-encoding: chunked\r\n");
        Encoder::Chunked
    } else {
        *keep_alive = false;
        Encoder::Close
    };
    if !dated {
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

/// What a field is to the head's writer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Connection,
    TransferEncoding,
    ContentLength,
    Date,
    Other,
}

impl Role {
    fn of(name: &HeaderName) -> Self {
        if name == header::CONNECTION {
            Role::Connection
        } else if name == header::TRANSFER_ENCODING {
            Role::TransferEncoding
        } else if name == header::CONTENT_LENGTH {
            Role::ContentLength
        } else if name == header::DATE {
            Role::Date
        } else {
            Role::Other
        }
    }

    /// A name as the target sent it, in any case: told apart by length first.
    fn of_wire(name: &[u8]) -> Self {
        let (role, known) = match name.len() {
            4 => (Role::Date, &header::DATE),
            10 => (Role::Connection, &header::CONNECTION),
            14 => (Role::ContentLength, &header::CONTENT_LENGTH),
            17 => (Role::TransferEncoding, &header::TRANSFER_ENCODING),
            _ => return Role::Other,
        };
        if name.eq_ignore_ascii_case(known.as_ref()) { role } else { Role::Other }
    }
}

/// Which fields are copied into the head, and what the copied ones decided.
struct Copier<'a> {
    keep_alive: &'a mut bool,
    bodiless_status: bool,
    /// The Content-Length copied.
    declared: Option<u64>,
    dated: bool,
}

impl Copier<'_> {
    /// Connection and Transfer-Encoding are this connection's to decide, and are not copied. Only the first
    /// Content-Length that is digits only (RFC 9110 §8.6) is (a 1xx or 204 has none): another one, or one that
    /// is not, would leave the client two framings to choose from.
    fn keeps(&mut self, role: Role, value: &[u8]) -> bool {
        match role {
            Role::Connection => {
                if lists_token(value, b"close") {
                    *self.keep_alive = false;
                }
                false
            }
            Role::TransferEncoding => false,
            Role::ContentLength if self.bodiless_status || self.declared.is_some() => false,
            Role::ContentLength => {
                self.declared = crate::wire::parse_length(value);
                self.declared.is_some()
            }
            Role::Date => {
                self.dated = true;
                true
            }
            Role::Other => true,
        }
    }
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
    use http::header::HeaderValue;

    fn write(resp: Response<ProxyBody>, version: Version, head_request: bool, keep: bool) -> (String, Encoder, bool) {
        let (parts, body) = resp.into_parts();
        let mut out = BytesMut::new();
        let mut keep_alive = keep;
        let enc = head(&mut out, &parts, &body, version, head_request, &mut keep_alive);
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
    fn the_connections_own_fields_and_a_bad_length_are_not_copied() {
        let mut resp = Response::new(ProxyBody::full("hello"));
        let h = resp.headers_mut();
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("five"));
        h.insert(header::DATE, HeaderValue::from_static("Sun, 06 Dec 2026 23:00:00 GMT"));
        let (text, enc, keep) = write(resp, Version::HTTP_11, false, true);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            ["", "HTTP/1.1 200 OK", "content-length: 5", "date: Sun, 06 Dec 2026 23:00:00 GMT"],
            "the body's own length replaces the bad one, the target's date stays: {text}"
        );
        assert_eq!((enc, keep), (Encoder::Length(5), true));
        let mut resp = Response::new(ProxyBody::full("hello"));
        resp.headers_mut().append(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        resp.headers_mut().append(header::CONTENT_LENGTH, HeaderValue::from_static("7"));
        let (text, enc, _) = write(resp, Version::HTTP_11, false, true);
        assert_eq!(text.matches("content-length").count(), 1, "{text}");
        assert!(text.contains("content-length: 5\r\n") && enc == Encoder::Length(5), "{text}");
        // A length is digits only (RFC 9110 §8.6): a sign or whitespace makes it a bad one.
        for bad in ["+5", " 5", "5 "] {
            let mut resp = Response::new(ProxyBody::full("hello"));
            resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static(bad));
            let (text, enc, _) = write(resp, Version::HTTP_11, false, true);
            assert_eq!(text.matches("content-length").count(), 1, "{bad:?}: {text}");
            assert!(text.contains("content-length: 5\r\n") && enc == Encoder::Length(5), "{bad:?}: {text}");
        }
    }

    /// A name as a target sent it has the role of the same name in a map, whatever its case.
    #[test]
    fn a_wire_name_has_the_role_of_its_map_name() {
        for name in ["connection", "transfer-encoding", "content-length", "date", "x-date", "etag", "server", "te"] {
            let role = Role::of(&HeaderName::from_static(name));
            assert!(role == Role::of_wire(name.as_bytes()), "{name}");
            assert!(role == Role::of_wire(name.to_ascii_uppercase().as_bytes()), "{name}");
        }
        assert!(Role::of_wire(b"Content-Length") == Role::ContentLength && Role::of_wire(b"Dat") == Role::Other);
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
