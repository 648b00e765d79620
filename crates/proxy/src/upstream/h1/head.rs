//! HTTP/1.1 message heads on the upstream side: the request head written to the target (RFC 9112 §3) with its
//! body framing, and the target's response head parsed with `httparse` into a status, its fields (kept as the
//! bytes they came in, [`WireFields`]) and the body framing RFC 9112 §6.3 gives it. The response's hop-by-hop fields (RFC 9110 §7.6.1) are dropped as the head
//! is read, since no client is ever sent them. A head the target got wrong is named precisely (malformed or too large), so
//! the catalogue can tell TargetMalformedResponse from TargetResponseHeadersTooLarge.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use waygate_faults::HttpEvidence;

use crate::headers;
use crate::wire::fields::{Fields, WireFields};
use crate::wire::out::put_field;

/// At most this many header fields in a response head (hyper's default); more is a head too large.
const MAX_HEADERS: usize = 100;

/// How the request body travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body, and no header says otherwise.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (length unknown until the client's body ends).
    Chunked,
}

/// Decides the request body's framing from its headers and what is known of its length. The client-side
/// `Transfer-Encoding` was removed as hop-by-hop, so a `Content-Length` present is the body's validated
/// length (the client-side server checked it). Without one: a known length gets a `Content-Length`,
/// an unknown one is chunked, and an empty body on a method that carries one says `Content-Length: 0`.
/// `may_declare: false` says the headers are known to hold no `Content-Length` (the request path's one pass
/// over them found none), which saves looking it up: a hash and probe, 138 instructions a request.
pub fn request_framing(
    method: &Method,
    headers: &mut HeaderMap,
    may_declare: bool,
    exact: Option<u64>,
    empty: bool,
) -> RequestFraming {
    let declared = if may_declare { headers.get(header::CONTENT_LENGTH) } else { None };
    match declared.map(|v| crate::wire::parse_length(v.as_bytes())) {
        Some(Some(n)) => return if n == 0 { RequestFraming::Empty } else { RequestFraming::Length(n) },
        // Not a length: it goes, so that it cannot travel beside the framing chosen below.
        Some(None) => {
            headers.remove(header::CONTENT_LENGTH);
        }
        None => {}
    }
    if empty {
        if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        return RequestFraming::Empty;
    }
    match exact {
        Some(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            if n == 0 { RequestFraming::Empty } else { RequestFraming::Length(n) }
        }
        None => {
            headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            RequestFraming::Chunked
        }
    }
}

/// Writes `METHOD target HTTP/1.1`, the headers `extra` lets through, `extra`'s own fields and the blank line.
pub fn encode_request(method: &Method, target: &str, headers: &HeaderMap, extra: &dyn ExtraFields, out: &mut BytesMut) {
    let size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    // The extra fields (forwarding headers, a trace id...) are a few hundred bytes at most.
    crate::wire::reserve(out, method.as_str().len() + target.len() + 13 + size + 512);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if extra.forwards(name) {
            put_field(name, value, out);
        }
    }
    extra.write(out);
    out.put_slice(b"\r\n");
}

/// No extra fields: the request's own are written as they are (a health check's request).
impl ExtraFields for () {
    fn forwards(&self, _: &HeaderName) -> bool {
        true
    }

    fn write(&self, _: &mut BytesMut) {}
}

/// Fields a request head gains beyond its own, and which of its own give way to them.
pub trait ExtraFields: Sync {
    /// Whether the request's own field `name` is written.
    fn forwards(&self, name: &HeaderName) -> bool;
    /// Writes the extra field lines (`name: value\r\n` each).
    fn write(&self, out: &mut BytesMut);
}

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to HEAD, or a 204 or 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the target closes the connection.
    Close,
}

/// A parsed final response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    /// As the target sent them, hop-by-hop ones out (a 101 keeps its `Connection` and `Upgrade`).
    pub fields: Fields,
    pub framing: Framing,
    /// The connection may carry another request once this body is read whole.
    pub keep_alive: bool,
    /// The target's `Keep-Alive` field (`timeout=N`), which is hop-by-hop and not in `fields`.
    pub keep_alive_field: Option<Bytes>,
}

/// What [`parse_response`] found at the start of the buffer.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet: read more.
    Partial,
    /// An interim response (100 Continue, 103 Early Hints...), consumed: the final one follows.
    Interim,
    Final(ResponseHead),
}

/// Parses (and consumes) a response head from the start of `buf`. `head_request`: the request was a HEAD,
/// so the response has no body whatever its headers say. A head still incomplete at `max` bytes is too large.
pub fn parse_response(buf: &mut BytesMut, head_request: bool, max: usize) -> Result<Parsed, HttpEvidence> {
    parse_response_to(buf, head_request, false, max)
}

/// [`parse_response`] for a request that asked to switch protocols (`Upgrade`): a `101` is then its final
/// head, with no body, and keeps its `Upgrade` and `Connection` fields for the gateway to check
/// (`crate::upgrade`). A request that did not ask still gets a 101 refused as malformed.
pub fn parse_response_to(
    buf: &mut BytesMut,
    head_request: bool,
    upgrade: bool,
    max: usize,
) -> Result<Parsed, HttpEvidence> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len > max => return Err(HttpEvidence::HeadTooLarge),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max => return Err(HttpEvidence::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpEvidence::HeadTooLarge),
        Err(_) => return Err(HttpEvidence::MalformedHead),
    };
    let code = resp.code.ok_or(HttpEvidence::MalformedHead)?;
    let status = StatusCode::from_u16(code).map_err(|_| HttpEvidence::MalformedHead)?;
    let version = if resp.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let switched = status == StatusCode::SWITCHING_PROTOCOLS;
    if status.is_informational() && !(switched && upgrade) {
        // The gateway asks to switch protocols only for an upgrade it relays: any other 101 is a violation.
        if switched {
            return Err(HttpEvidence::MalformedHead);
        }
        let _ = buf.split_to(len);
        return Ok(Parsed::Interim);
    }
    // The fields stay in the head's bytes (`WireFields`): where each relayed one sits is noted (name start, name
    // end, value start, value end), with no map built. A head is at most `max` (32 KiB) long, so every offset
    // fits in u32.
    let base = buf.as_ptr() as usize;
    let offset = |p: &[u8]| (p.as_ptr() as usize - base) as u32;
    let mut kept = Vec::with_capacity(resp.headers.len());
    let mut seen = Seen::default();
    for h in resp.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        if name.is_empty() {
            return Err(HttpEvidence::MalformedHead);
        }
        let (ns, vs) = (offset(name), offset(value));
        let at = [ns, ns + name.len() as u32, vs, vs + value.len() as u32];
        seen.note(name, value, [at[2], at[3]])?;
        if !switched && headers::is_hop_by_hop_name(name) {
            if name.eq_ignore_ascii_case(headers::KEEP_ALIVE.as_ref()) {
                seen.keep_alive_at = Some([at[2], at[3]]);
            }
            continue;
        }
        kept.push(at);
    }
    let head = buf.split_to(len).freeze();
    let keep_alive_field = seen.keep_alive_at.map(|[vs, ve]| head.slice(vs as usize..ve as usize));
    // Fields the target's `Connection` named are hop-by-hop too (a 101 keeps them: they describe the switch).
    for &[vs, ve] in seen.connection_named.iter().filter(|_| !switched) {
        for token in head[vs as usize..ve as usize].split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            kept.retain(|&[ns, ne, _, _]| !head[ns as usize..ne as usize].eq_ignore_ascii_case(token));
        }
    }
    let fields = WireFields::new(head, kept);
    // After a 101 the connection carries the new protocol: no body, and never another request.
    let (framing, framing_keeps) = if switched { (Framing::Empty, false) } else { seen.framing(status, head_request) };
    let keep_alive = framing_keeps && if version == Version::HTTP_10 { seen.keep_alive } else { !seen.close };
    Ok(Parsed::Final(ResponseHead {
        status,
        version,
        fields: Fields::Wire(fields),
        framing,
        keep_alive,
        keep_alive_field,
    }))
}

/// What the fields that decide framing and persistence said, gathered as the head is read.
#[derive(Default)]
struct Seen {
    /// The agreed `Content-Length` (every field and list member must agree, RFC 9112 §6.3 ¶5).
    length: Option<u64>,
    transfer_encoding: bool,
    /// The final transfer coding seen is chunked.
    chunked: bool,
    close: bool,
    keep_alive: bool,
    /// Where the `Keep-Alive` field's value is in the head.
    keep_alive_at: Option<[u32; 2]>,
    /// Where the `Connection` values naming fields other than `close` and `keep-alive` (rare) are in the head.
    connection_named: Vec<[u32; 2]>,
}

impl Seen {
    /// Notes one field; `at` is where its value is in the head.
    fn note(&mut self, name: &[u8], value: &[u8], at: [u32; 2]) -> Result<(), HttpEvidence> {
        let items = || value.split(|&b| b == b',').map(<[u8]>::trim_ascii);
        // Told apart by length first: most names are none of the three.
        let is = |known: &HeaderName| name.len() == known.as_str().len() && name.eq_ignore_ascii_case(known.as_ref());
        if is(&header::CONTENT_LENGTH) {
            for part in items() {
                let n = crate::wire::parse_length(part).ok_or(HttpEvidence::MalformedHead)?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(HttpEvidence::MalformedHead);
                }
                self.length = Some(n);
            }
        } else if is(&header::TRANSFER_ENCODING) {
            self.transfer_encoding = true;
            self.chunked = items().next_back().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        } else if is(&header::CONNECTION) {
            let mut named = false;
            for token in items() {
                let close = token.eq_ignore_ascii_case(b"close");
                let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                self.close |= close;
                self.keep_alive |= keep_alive;
                named |= !close && !keep_alive && !token.is_empty();
            }
            if named {
                self.connection_named.push(at);
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.3: the body's framing, and whether it leaves the connection reusable.
    fn framing(&self, status: StatusCode, head_request: bool) -> (Framing, bool) {
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return (Framing::Empty, true);
        }
        if self.transfer_encoding {
            // Transfer-Encoding beside Content-Length is a smuggling signature (§6.3 ¶3): honour the coding, and
            // never reuse the connection.
            let clean = self.length.is_none();
            return if self.chunked { (Framing::Chunked, clean) } else { (Framing::Close, false) };
        }
        match self.length {
            Some(0) => (Framing::Empty, true),
            Some(n) => (Framing::Length(n), true),
            None => (Framing::Close, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &str) -> BytesMut {
        BytesMut::from(text.as_bytes())
    }

    fn parse(text: &str, head: bool) -> Result<Parsed, HttpEvidence> {
        parse_response(&mut head_of(text), head, 32 * 1024)
    }

    fn fin(text: &str) -> ResponseHead {
        match parse(text, false) {
            Ok(Parsed::Final(h)) => h,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = fin("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((h.status.as_u16(), h.framing, h.keep_alive), (200, Framing::Length(5), true));
        assert_eq!(fin("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing, Framing::Chunked);
        let te_cl = fin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!((te_cl.framing, te_cl.keep_alive), (Framing::Chunked, false), "TE wins, never reused");
        let gz = fin("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!((gz.framing, gz.keep_alive), (Framing::Close, false));
        let close = fin("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((close.framing, close.keep_alive), (Framing::Close, false));
        assert_eq!(fin("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").framing, Framing::Empty);
        assert_eq!(fin("HTTP/1.1 304 Not Modified\r\n\r\n").framing, Framing::Empty);
        match parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true) {
            Ok(Parsed::Final(h)) => assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true)),
            other => panic!("{other:?}"),
        }
        assert_eq!(fin("HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n").framing, Framing::Length(4));
    }

    #[test]
    fn persistence_by_version_and_connection() {
        assert!(!fin("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(!fin("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        let ka = fin("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert!(ka.keep_alive && ka.version == Version::HTTP_10);
    }

    #[test]
    fn bad_heads_are_named() {
        for bad in [
            "HTTP/1.1 2OO OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx-bad header: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(matches!(parse(bad, false), Err(HttpEvidence::MalformedHead)), "{bad:?}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}\r\n", "a".repeat(40_000));
        assert!(matches!(parse(&huge, false), Err(HttpEvidence::HeadTooLarge)));
        let many: String = (0..101).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(matches!(parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), false), Err(HttpEvidence::HeadTooLarge)));
        assert!(matches!(parse("HTTP/1.1 200 OK\r\nx: 1\r\n", false), Ok(Parsed::Partial)));
    }

    #[test]
    fn a_101_is_final_only_when_an_upgrade_was_asked_for() {
        let text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x01\x02hi";
        assert!(matches!(parse(text, false), Err(HttpEvidence::MalformedHead)));
        let mut buf = head_of(text);
        let Ok(Parsed::Final(h)) = parse_response_to(&mut buf, false, true, 1 << 15) else { panic!("{text:?}") };
        assert_eq!((h.status.as_u16(), h.framing, h.keep_alive), (101, Framing::Empty, false));
        let headers = h.fields.to_map();
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "Upgrade", "a 101 keeps the fields that describe the switch");
        assert_eq!(&buf[..], b"\x01\x02hi", "the new protocol's first bytes stay in the buffer");
        let mut interim = head_of("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(parse_response_to(&mut interim, false, true, 1 << 15), Ok(Parsed::Interim)));
    }

    #[test]
    fn interim_responses_are_consumed() {
        let mut buf = head_of("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(matches!(parse_response(&mut buf, false, 1 << 15), Ok(Parsed::Interim)));
        match parse_response(&mut buf, false, 1 << 15) {
            Ok(Parsed::Final(h)) => assert_eq!(h.framing, Framing::Length(2)),
            other => panic!("{other:?}"),
        }
        assert_eq!(&buf[..], b"ok", "the body stays in the buffer");
    }

    #[test]
    fn hop_by_hop_fields_are_dropped() {
        let h = fin("HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\nx-hop: 1\r\n\
                     Upgrade: h2c\r\nProxy-Connection: close\r\nx-end: 2\r\nContent-Length: 0\r\n\r\n");
        let Fields::Wire(wire) = &h.fields else { panic!("an HTTP/1 head keeps its bytes") };
        let mut names: Vec<_> = wire.iter().map(|(n, _)| std::str::from_utf8(n).unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["Content-Length", "x-end"], "names keep the target's case");
        assert_eq!(wire.to_map().len(), 2);
        assert_eq!(h.keep_alive_field.unwrap(), "timeout=5");
        assert!(h.keep_alive);
    }

    #[test]
    fn header_values_and_order_are_kept() {
        let h =
            fin("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Y:  spaced \r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n");
        let headers = h.fields.to_map();
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(headers["x-y"], "spaced");
        let Fields::Wire(wire) = &h.fields else { panic!("an HTTP/1 head keeps its bytes") };
        let order: Vec<_> = wire
            .iter()
            .map(|(n, v)| format!("{}={}", String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(order, ["Set-Cookie=a=1", "X-Y=spaced", "Set-Cookie=b=2", "Content-Length=0"]);
    }

    #[test]
    fn request_head_and_framing() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("app"));
        assert_eq!(request_framing(&Method::POST, &mut headers, true, None, true), RequestFraming::Empty);
        assert_eq!(headers["content-length"], "0");
        let mut h2 = HeaderMap::new();
        assert_eq!(request_framing(&Method::GET, &mut h2, true, None, true), RequestFraming::Empty);
        assert!(h2.is_empty(), "a GET without a body says nothing about one");
        assert_eq!(request_framing(&Method::POST, &mut h2, true, None, false), RequestFraming::Chunked);
        assert_eq!(h2["transfer-encoding"], "chunked");
        let mut h3 = HeaderMap::new();
        assert_eq!(request_framing(&Method::PUT, &mut h3, true, Some(7), false), RequestFraming::Length(7));
        // A Content-Length that is not digits only is no length: it goes, and the body's own framing is used.
        for bad in ["+5", " 5"] {
            let mut h4 = HeaderMap::new();
            h4.insert(header::CONTENT_LENGTH, HeaderValue::from_static(bad));
            assert_eq!(
                request_framing(&Method::POST, &mut h4, true, Some(5), false),
                RequestFraming::Length(5),
                "{bad:?}"
            );
            assert_eq!(h4["content-length"], "5", "{bad:?}");
            h4.insert(header::CONTENT_LENGTH, HeaderValue::from_static(bad));
            assert_eq!(request_framing(&Method::POST, &mut h4, true, None, false), RequestFraming::Chunked, "{bad:?}");
            assert!(!h4.contains_key(header::CONTENT_LENGTH), "{bad:?}: never beside Transfer-Encoding");
        }
        // Known to hold no Content-Length: decided as when looked up.
        for (method, exact, empty) in
            [(Method::GET, None, true), (Method::POST, None, true), (Method::PUT, Some(3), false)]
        {
            let (mut looked, mut known) = (HeaderMap::new(), HeaderMap::new());
            let want = request_framing(&method, &mut looked, true, exact, empty);
            assert_eq!(request_framing(&method, &mut known, false, exact, empty), want);
            assert_eq!(looked, known);
        }
        let mut out = BytesMut::new();
        encode_request(&Method::GET, "/a?b=1", &headers, &(), &mut out);
        assert_eq!(&out[..], b"GET /a?b=1 HTTP/1.1\r\nhost: app\r\ncontent-length: 0\r\n\r\n");
    }
}
