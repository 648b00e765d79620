//! Request heads: found in the connection's read buffer, judged and parsed once. The desync verdict (AWS's
//! `http_desync_guardian` with ALB's modes, [`crate::guard::verdict`]) and the body framing come from the same
//! bytes the request is built from, and go with the request ([`Parsed::Head`]). A head the gateway refuses
//! comes back as a [`Refusal`] carrying its cause, so the request path can answer it like any other error
//! (Proxy-Status, access log with the classification) before the connection closes.
//!
//! Strict where RFC 9110/9112 require it: two Host fields, or none on HTTP/1.1, is a 400; CONNECT (this is
//! not a forward proxy) is a 405; on HTTP/1.0 without Host the listener's own address stands in.

use std::mem::MaybeUninit;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use waygate_config::DesyncMode;
use waygate_faults::Cause;

use crate::guard::framing::Framing;
use crate::guard::verdict::{self, Action, MAX_HEAD, MAX_HEADERS, Verdict};
use crate::headers::lists_token;

/// A complete request head, parsed.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target, version and fields, as the request path receives them (the body comes separately).
    pub request: Request<()>,
    pub verdict: Verdict,
    /// How the body is delimited (`None`: no body).
    pub framing: Option<Framing>,
    /// The connection may carry another request after this one (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    pub expect_continue: bool,
}

/// A head the gateway answers itself, and closes the connection after.
#[derive(Debug)]
pub struct Refusal {
    pub verdict: Verdict,
    /// What was understood of the request, for the access log (a minimal `GET /` when nothing was).
    pub request: Request<()>,
}

/// What the front of the read buffer holds. Returned to the connection, which takes it apart at once: a head
/// served is not boxed; a refusal is rare.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned and taken apart at once, never stored: boxing the head cost an allocation per request"
)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head to serve; its bytes were consumed.
    Head(RequestHead),
    Refused(Box<Refusal>),
}

/// The end of the head (after its blank line), accepting bare LF as hyper does.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &buf[i..]) {
        let at = i + p;
        let rest = &buf[at + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

/// Parses the head at the front of `buf`, consuming it when whole. `default_host` stands in for a missing
/// Host on HTTP/1.0.
pub fn parse(buf: &mut BytesMut, mode: DesyncMode, default_host: SocketAddr) -> Parsed {
    let Some(end) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return refused(Verdict::reject(Cause::ClientRequestMalformed), None);
        }
        return Parsed::Partial;
    };
    let head = buf.split_to(end).freeze();
    // One parse: the desync analysis reads its fields, and the request is built from them.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = matches!(req.parse_with_uninit_headers(&head, &mut slots), Ok(httparse::Status::Complete(_)));
    let (verdict, framing) = verdict::judge_parsed(&head, mode, parsed.then_some(&req));
    let built = if parsed { request_of(&req, &head, default_host) } else { Err(Cause::ClientRequestMalformed) };
    let (request, noted) = match built {
        Ok(built) => built,
        Err(cause) => {
            let verdict = match verdict.action {
                Action::Reject(_) => verdict,
                _ => Verdict { action: Action::Reject(cause), ..verdict },
            };
            return refused(verdict, None);
        }
    };
    if let Action::Reject(_) = verdict.action {
        return refused(verdict, Some(request));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host field (HTTP/1.0 got one in `request_of`).
    if noted.hosts != 1 {
        return refused(Verdict { action: Action::Reject(Cause::ClientRequestMalformed), ..verdict }, Some(request));
    }
    let mut request = request;
    // RFC 9112 §9.3: HTTP/1.1 persists unless `close` is among the Connection options; HTTP/1.0 only with
    // `keep-alive`.
    let mut keep_alive = if request.version() == Version::HTTP_11 { !noted.close } else { noted.keep_alive };
    if framing == Some(Framing::Chunked) && request.headers_mut().remove(header::CONTENT_LENGTH).is_some() {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which is not forwarded, and the
        // connection closes after the response (whatever the desync mode let through).
        keep_alive = false;
    }
    let expect_continue = request.version() == Version::HTTP_11 && noted.expect_continue == Some(true);
    Parsed::Head(RequestHead { request, verdict, framing, keep_alive, expect_continue })
}

/// A head that did not arrive whole within `request_header_timeout`: 408.
pub fn timed_out() -> Parsed {
    refused(Verdict::reject(Cause::ClientRequestTimeout), None)
}

fn refused(verdict: Verdict, request: Option<Request<()>>) -> Parsed {
    let request = request.unwrap_or_else(|| {
        let mut r = Request::new(());
        *r.uri_mut() = Uri::from_static("/");
        r
    });
    Parsed::Refused(Box::new(Refusal { verdict, request }))
}

/// What the fields that decide the connection's handling said, noted as the request was built (looking each up
/// in the built map afterwards cost a hash lookup apiece).
#[derive(Debug, Default)]
struct Noted {
    /// How many Host fields (one supplied on HTTP/1.0 counts).
    hosts: usize,
    /// `close` among the Connection options.
    close: bool,
    /// `keep-alive` among the Connection options.
    keep_alive: bool,
    /// Whether the first `Expect` field is `100-continue` (`None`: there is none).
    expect_continue: Option<bool>,
}

/// The request as http's types hold it, from httparse's parse of `head`, and what its connection-handling
/// fields said. Values are slices of the head's one buffer (no copy per field). `Err`: it parsed, but is not a
/// request this gateway serves.
fn request_of(
    req: &httparse::Request<'_, '_>,
    head: &Bytes,
    default_host: SocketAddr,
) -> Result<(Request<()>, Noted), Cause> {
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes()).map_err(|_| malformed())?;
    if method == Method::CONNECT {
        return Err(Cause::ClientMethodNotAllowed);
    }
    let path = req.path.unwrap_or_default();
    let uri = if path.starts_with('/') || path == "*" || path.contains("://") {
        Uri::from_maybe_shared(head.slice_ref(path.as_bytes())).map_err(|_| malformed())?
    } else {
        return Err(Cause::ClientRequestMalformed);
    };
    let version = if req.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut noted = Noted::default();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| malformed())?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value)).map_err(|_| malformed())?;
        if name == header::HOST {
            noted.hosts += 1;
        } else if name == header::CONNECTION {
            noted.close |= lists_token(value.as_bytes(), b"close");
            noted.keep_alive |= lists_token(value.as_bytes(), b"keep-alive");
        } else if name == header::EXPECT && noted.expect_continue.is_none() {
            noted.expect_continue = Some(value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        }
        headers.append(name, value);
    }
    if version == Version::HTTP_10 && noted.hosts == 0 {
        let host = HeaderValue::from_str(&default_host.to_string()).map_err(|_| malformed())?;
        headers.insert(header::HOST, host);
        noted.hosts = 1;
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok((request, noted))
}

const fn malformed() -> Cause {
    Cause::ClientRequestMalformed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(head: &str) -> Parsed {
        parse(&mut BytesMut::from(head), DesyncMode::Defensive, "10.0.0.1:80".parse().unwrap())
    }

    fn refusal(head: &str) -> Option<Cause> {
        match p(head) {
            Parsed::Refused(r) => match r.verdict.action {
                Action::Reject(c) => Some(c),
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn a_plain_get_parses_with_its_fields_in_order() {
        let Parsed::Head(h) = p("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n") else { panic!() };
        assert_eq!((h.request.method(), h.request.uri().to_string()), (&Method::GET, "/a?b=1".to_string()));
        let xa: Vec<_> = h.request.headers().get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert!(h.keep_alive && h.framing.is_none() && !h.expect_continue);
    }

    #[test]
    fn host_rules_follow_rfc_9112() {
        assert_eq!(refusal("GET / HTTP/1.1\r\n\r\n"), Some(Cause::ClientRequestMalformed), "no Host on 1.1");
        assert_eq!(refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), Some(Cause::ClientRequestMalformed));
        let Parsed::Head(h) = p("GET / HTTP/1.0\r\n\r\n") else { panic!("1.0 without Host is served") };
        assert_eq!(h.request.headers()[header::HOST], "10.0.0.1:80");
        assert!(!h.keep_alive, "1.0 closes by default");
        let Parsed::Head(h) = p("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") else { panic!() };
        assert!(h.keep_alive);
    }

    #[test]
    fn connect_is_not_allowed() {
        assert_eq!(refusal("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), Some(Cause::ClientMethodNotAllowed));
    }

    #[test]
    fn connection_close_and_expect_are_read() {
        let Parsed::Head(h) = p(
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        ) else {
            panic!()
        };
        assert!(!h.keep_alive && h.expect_continue);
        assert_eq!(h.framing, Some(Framing::Length(3)));
    }

    #[test]
    fn partial_and_oversized_heads() {
        assert!(matches!(p("GET / HTTP/1.1\r\nHost: a\r\n"), Parsed::Partial));
        let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(refusal(&big), Some(Cause::ClientRequestMalformed));
        assert_eq!(refusal("GET nope HTTP/1.1\r\nHost: a\r\n\r\n"), Some(Cause::ClientRequestMalformed));
        assert_eq!(refusal("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), Some(Cause::ClientRequestMalformed));
    }
}
