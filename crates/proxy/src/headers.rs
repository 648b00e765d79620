//! Header rewriting at the proxy boundary (RFC 9110 §7.6.1): hop-by-hop headers are removed both ways, the
//! request gains X-Forwarded-For/-Proto/-Port, the request id (`x-request-id`, `X-Amzn-Trace-Id`), a
//! `traceparent` with `[tracing]` on, and a Host header when the client spoke HTTP/2 (`:authority`). The
//! client's Host is preserved.

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

use waygate_telemetry::TRACEPARENT;

use crate::upstream::h1::ExtraFields;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The fixed hop-by-hop set (RFC 9110 §7.6.1, plus `Keep-Alive` and `Proxy-Connection`).
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
];

/// One of the fixed hop-by-hop fields. Asked of every field of every message: a name of another length (most
/// of them) is told apart without comparing it to the eight.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(name.as_str().len(), 2 | 7 | 10 | 16..=19) && HOP_BY_HOP.contains(&name)
}

/// [`is_hop_by_hop`] for a name as it came on the wire, in any case.
pub fn is_hop_by_hop_name(name: &[u8]) -> bool {
    matches!(name.len(), 2 | 7 | 10 | 16..=19) && HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop.as_ref()))
}

/// Removes hop-by-hop headers: the fixed set and any named in `Connection`. `Trailer` is end-to-end
/// (RFC 9110 §6.6.2) and stays.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) names present finds what to strip: usually nothing on requests and only
    // `Connection` on responses. Removing each of the eight names blindly cost eight hash-and-probe lookups
    // per message, both ways.
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys().filter(|name| is_hop_by_hop(name)) {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| *hop == name) {
            present[i] = true;
        }
    }
    if present == [false; HOP_BY_HOP.len()] {
        return;
    }
    if let Some(conn) = headers.get(header::CONNECTION).cloned() {
        // Removing by `&str` parses each token on the stack (no `HeaderName` allocation); a token that is not a
        // valid name matches nothing.
        for token in conn.to_str().unwrap_or("").split(',') {
            headers.remove(token.trim());
        }
    }
    for (name, present) in HOP_BY_HOP.into_iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
}

/// How many addresses one X-Forwarded-For field holds.
fn addresses(value: &HeaderValue) -> usize {
    value.as_bytes().split(|&b| b == b',').filter(|s| s.iter().any(|b| !b.is_ascii_whitespace())).count()
}

/// Whether a comma-separated field (`Connection`, `TE`) lists `token`, in any case.
pub fn lists_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether a `TE` field lists `trailers`.
fn lists_trailers(value: &HeaderValue) -> bool {
    lists_token(value.as_bytes(), b"trailers")
}

/// What the gateway reads from a request's own fields, gathered in one pass over them. Looked up one by one,
/// a request's fields were hashed and probed for eight times (Host three times: the record, routing, the
/// forwarded head).
#[derive(Debug, Default)]
pub struct RequestFields<'a> {
    /// The first `Host` field.
    pub host: Option<&'a HeaderValue>,
    /// The first `User-Agent` field.
    pub user_agent: Option<&'a HeaderValue>,
    /// The first `X-Forwarded-For` field, which the target's copy extends ([`Forwarded::prior_xff`])...
    pub xff: Option<&'a HeaderValue>,
    /// ... and the addresses all of them hold.
    pub xff_addresses: usize,
    /// How many X-Forwarded-For fields the request has (each is part of the one list, RFC 9110 §5.3).
    pub xff_fields: usize,
    /// A `TE` field lists `trailers`.
    pub te_trailers: bool,
    /// A `Content-Length` field is present.
    pub content_length: bool,
    /// A hop-by-hop field is present, so [`strip_hop_by_hop`] has work to do (and a `Connection` field may
    /// name any other field as hop-by-hop, which then goes too).
    pub hop_by_hop: bool,
}

impl<'a> RequestFields<'a> {
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut f = Self::default();
        for (name, value) in headers {
            if name == header::HOST {
                f.host.get_or_insert(value);
            } else if name == header::USER_AGENT {
                f.user_agent.get_or_insert(value);
            } else if name == X_FORWARDED_FOR {
                f.xff.get_or_insert(value);
                f.xff_addresses += addresses(value);
                f.xff_fields += 1;
            } else if name == header::CONTENT_LENGTH {
                f.content_length = true;
            } else if is_hop_by_hop(name) {
                f.hop_by_hop = true;
                f.te_trailers |= name == header::TE && lists_trailers(value);
            }
        }
        f
    }

    /// What the forwarded head needs once the request itself is taken apart.
    pub fn carried(&self) -> CarriedFields {
        CarriedFields {
            host: self.host.is_some(),
            te_trailers: self.te_trailers,
            content_length: self.content_length,
            // Several fields are one list: looked up and joined once the head is taken apart (rare).
            hop_by_hop: self.hop_by_hop || self.xff_fields > 1,
            xff: self.xff.filter(|v| nonblank(v)).cloned(),
        }
    }
}

/// [`RequestFields`] as the forwarded head uses them, owning what it keeps.
#[derive(Debug)]
pub struct CarriedFields {
    pub host: bool,
    pub te_trailers: bool,
    /// The client sent a `Content-Length` (stripping hop-by-hop fields may have removed it since, never added
    /// one).
    pub content_length: bool,
    hop_by_hop: bool,
    /// [`Forwarded::prior_xff`] before hop-by-hop fields are stripped: valid only when there were none (and one
    /// X-Forwarded-For field at most).
    xff: Option<HeaderValue>,
}

impl CarriedFields {
    /// Whether the request may have hop-by-hop fields (an HTTP/1.1 upgrade needs `Connection` and `Upgrade`):
    /// when not, nothing needs looking up.
    pub fn hop_by_hop(&self) -> bool {
        self.hop_by_hop
    }

    /// Strips hop-by-hop fields from `headers` (the request's, as [`RequestFields::of`] read them) and returns
    /// the client's X-Forwarded-For the target's copy extends. A `Connection` field can name X-Forwarded-For
    /// itself, so with hop-by-hop fields present it is looked up again after the strip.
    pub fn strip_and_prior_xff(self, headers: &mut HeaderMap) -> Option<HeaderValue> {
        if !self.hop_by_hop {
            return self.xff;
        }
        strip_hop_by_hop(headers);
        Forwarded::prior_xff(headers)
    }
}

fn nonblank(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|s| !s.trim().is_empty())
}

/// The forwarding headers a target sees.
pub struct Forwarded<'a> {
    /// The client's own `X-Forwarded-For` ([`Forwarded::prior_xff`]), extended with `client_ip`.
    pub prior_xff: Option<HeaderValue>,
    /// The client's address as X-Forwarded-For writes it, made once per connection.
    pub client_ip: &'a HeaderValue,
    pub proto: &'static str,
    pub port: &'a HeaderValue,
    pub request_id: &'a HeaderValue,
    /// The client accepts trailers (HTTP/2, or `TE: trailers` on HTTP/1.1): ask the target for them too.
    pub trailers: bool,
    /// With `[tracing]`: the gateway's `traceparent`, which replaces the client's (`tracestate` passes as is).
    pub traceparent: Option<[u8; 55]>,
}

/// A client address as X-Forwarded-For writes it (`Display` of an IP address is slow enough to matter per
/// request, so connections make this once).
pub fn client_ip_header(ip: IpAddr) -> HeaderValue {
    // An IP address's text is always a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Fields the gateway sets on every forwarded request: the client's own copies are not forwarded. (`Expect`:
/// the gateway answers `100-continue` itself as soon as the target reads the body.)
static REPLACED: [&HeaderName; 6] =
    [&X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_FORWARDED_PORT, &X_REQUEST_ID, &X_AMZN_TRACE_ID, &header::EXPECT];

impl Forwarded<'_> {
    /// The client's `X-Forwarded-For`, which the target's copy extends: every field of it, in order, joined as
    /// one list (a second field is never dropped).
    pub fn prior_xff(headers: &HeaderMap) -> Option<HeaderValue> {
        let mut fields = headers.get_all(&X_FORWARDED_FOR).iter().filter(|v| nonblank(v));
        let first = fields.next()?;
        let Some(second) = fields.next() else { return Some(first.clone()) };
        let mut joined = first.as_bytes().to_vec();
        for v in std::iter::once(second).chain(fields) {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(v.as_bytes());
        }
        HeaderValue::from_bytes(&joined).ok()
    }
}

impl Forwarded<'_> {
    /// The policy itself, apart from any protocol's encoding: each field the gateway adds, as the parts of its
    /// value (HTTP/1 writes them into the head below; HTTP/2 will put them in its field map).
    pub(crate) fn each(&self, mut field: impl FnMut(&HeaderName, &[&[u8]])) {
        match &self.prior_xff {
            Some(prior) => field(&X_FORWARDED_FOR, &[prior.as_bytes(), b", ", self.client_ip.as_bytes()]),
            None => field(&X_FORWARDED_FOR, &[self.client_ip.as_bytes()]),
        }
        field(&X_FORWARDED_PROTO, &[self.proto.as_bytes()]);
        field(&X_FORWARDED_PORT, &[self.port.as_bytes()]);
        field(&X_REQUEST_ID, &[self.request_id.as_bytes()]);
        field(&X_AMZN_TRACE_ID, &[self.request_id.as_bytes()]);
        if let Some(traceparent) = &self.traceparent {
            field(&TRACEPARENT, &[traceparent]);
        }
        if self.trailers {
            field(&header::TE, &[b"trailers"]);
        }
    }
}

impl Forwarded<'_> {
    /// HTTP/2 puts the policy into the request's field map: the client's own copies of the replaced fields go,
    /// the gateway's are inserted. Their values are written into one buffer and split off it, so the five or six
    /// fields cost one allocation, not one each.
    pub fn apply(&self, headers: &mut HeaderMap) {
        // One pass over the client's (few) fields finds whether any is replaced: usually none is, and removing
        // each name blindly cost six or seven hash-and-probe lookups per request.
        if headers.keys().any(|name| !self.forwards(name)) {
            for name in REPLACED {
                headers.remove(name);
            }
            if self.traceparent.is_some() {
                headers.remove(&TRACEPARENT);
            }
        }
        // A traceparent is 55 bytes more.
        let mut buf = BytesMut::with_capacity(if self.traceparent.is_some() { 320 } else { 256 });
        self.each(|name, parts| {
            parts.iter().for_each(|p| buf.put_slice(p));
            if let Ok(mut v) = HeaderValue::from_maybe_shared(buf.split().freeze()) {
                // A value unique to this request is sent as a never-indexed literal (RFC 7541 §6.2.3): put into
                // the connection's HPACK table it could never be referenced again, and each insertion evicted
                // entries that later requests would have reused (user-agent, content-type, the forwarded
                // address), so every request paid for encoding its fields in full.
                if name == X_REQUEST_ID || name == X_AMZN_TRACE_ID || name == TRACEPARENT {
                    v.set_sensitive(true);
                }
                headers.insert(name.clone(), v);
            }
        });
    }
}

/// HTTP/1 writes the policy straight into the request head, after the client's fields: the map of the client's
/// fields is never grown and rehashed for them (five inserts a request).
impl ExtraFields for Forwarded<'_> {
    fn forwards(&self, name: &HeaderName) -> bool {
        // Asked of every field of every request: a name of another length than the replaced ones and
        // traceparent (most names) is told apart without comparing it to them.
        if !matches!(name.as_str().len(), 6 | 11 | 12 | 15..=17) {
            return true;
        }
        // The client's traceparent goes only when the gateway sends its own.
        !REPLACED.contains(&name) && (self.traceparent.is_none() || name != TRACEPARENT)
    }

    /// The lines [`Forwarded::each`] gives, written out with the names and separators as constants: a copy of
    /// constant length is inlined, where each of the twenty-odd pieces through `each` was a call to `memcpy`
    /// (callgrind: 399 instructions a request for the five fields). The test below holds the two to the same
    /// bytes.
    fn write(&self, out: &mut BytesMut) {
        out.put_slice(b"x-forwarded-for: ");
        if let Some(prior) = &self.prior_xff {
            out.put_slice(prior.as_bytes());
            out.put_slice(b", ");
        }
        out.put_slice(self.client_ip.as_bytes());
        match self.proto {
            "https" => out.put_slice(b"\r\nx-forwarded-proto: https\r\nx-forwarded-port: "),
            "http" => out.put_slice(b"\r\nx-forwarded-proto: http\r\nx-forwarded-port: "),
            other => {
                out.put_slice(b"\r\nx-forwarded-proto: ");
                out.put_slice(other.as_bytes());
                out.put_slice(b"\r\nx-forwarded-port: ");
            }
        }
        out.put_slice(self.port.as_bytes());
        out.put_slice(b"\r\nx-request-id: ");
        out.put_slice(self.request_id.as_bytes());
        out.put_slice(b"\r\nx-amzn-trace-id: ");
        out.put_slice(self.request_id.as_bytes());
        out.put_slice(b"\r\n");
        if let Some(traceparent) = &self.traceparent {
            out.put_slice(b"traceparent: ");
            out.put_slice(traceparent);
            out.put_slice(b"\r\n");
        }
        if self.trailers {
            out.put_slice(b"te: trailers\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in fields {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    /// The one pass finds what a lookup of each name found: the first value of a repeated field, every
    /// X-Forwarded-For address, `trailers` anywhere in any TE field.
    #[test]
    fn one_pass_agrees_with_lookups_by_name() {
        let cases = [
            map(&[]),
            map(&[("host", "a.example"), ("user-agent", "curl/8"), ("accept", "*/*")]),
            map(&[("x-forwarded-for", "203.0.113.9, 198.51.100.2"), ("host", "a"), ("x-forwarded-for", " , 10.0.0.1")]),
            map(&[("host", "first"), ("host", "second"), ("user-agent", "one"), ("user-agent", "two")]),
            map(&[("te", "gzip"), ("te", "deflate, Trailers ")]),
            map(&[("te", "gzip")]),
            map(&[("x-forwarded-for", "  ")]),
            map(&[("host", "a"), ("content-length", "3")]),
        ];
        for h in &cases {
            let f = RequestFields::of(h);
            assert_eq!(f.host, h.get(header::HOST), "{h:?}");
            assert_eq!(f.user_agent, h.get(header::USER_AGENT), "{h:?}");
            assert_eq!(f.xff, h.get(&X_FORWARDED_FOR), "{h:?}");
            let count: usize = h.get_all(&X_FORWARDED_FOR).iter().map(addresses).sum();
            assert_eq!(f.xff_addresses, count, "{h:?}");
            assert_eq!(f.te_trailers, h.get_all(header::TE).iter().any(lists_trailers), "{h:?}");
            assert_eq!(f.hop_by_hop, h.keys().any(is_hop_by_hop), "{h:?}");
            assert_eq!(f.content_length, h.contains_key(header::CONTENT_LENGTH), "{h:?}");
        }
        assert_eq!(RequestFields::of(&cases[2]).xff_addresses, 3);
        assert!(RequestFields::of(&cases[4]).te_trailers);
        assert_eq!(RequestFields::of(&cases[3]).host.unwrap(), "first");
    }

    /// The prior X-Forwarded-For read before the strip is used only when nothing is stripped: a `Connection`
    /// field naming X-Forwarded-For removes the client's copy, as it did when the lookup followed the strip.
    #[test]
    fn prior_xff_follows_the_strip() {
        let mut plain = map(&[("x-forwarded-for", "203.0.113.9"), ("host", "a")]);
        let carried = RequestFields::of(&plain).carried();
        assert_eq!(carried.strip_and_prior_xff(&mut plain).unwrap(), "203.0.113.9");
        assert_eq!(plain.len(), 2);
        let mut named = map(&[("x-forwarded-for", "203.0.113.9"), ("connection", "x-forwarded-for")]);
        let carried = RequestFields::of(&named).carried();
        assert_eq!(carried.strip_and_prior_xff(&mut named), None);
        assert!(named.is_empty(), "{named:?}");
        let mut two =
            map(&[("x-forwarded-for", "203.0.113.9"), ("host", "a"), ("x-forwarded-for", "198.51.100.2, 10.0.0.1")]);
        let carried = RequestFields::of(&two).carried();
        assert_eq!(
            carried.strip_and_prior_xff(&mut two).unwrap(),
            "203.0.113.9, 198.51.100.2, 10.0.0.1",
            "both fields"
        );
        let mut blank = map(&[("x-forwarded-for", " ")]);
        let carried = RequestFields::of(&blank).carried();
        assert_eq!(carried.strip_and_prior_xff(&mut blank), None);
    }

    #[test]
    fn strips_and_forwards() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::HOST, HeaderValue::from_static("app.example"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("client-chosen"));
        strip_hop_by_hop(&mut h);
        let port = HeaderValue::from_static("8080");
        let id = HeaderValue::from_static("Root=1-00000000-000000000000000000000001");
        let fwd = Forwarded {
            prior_xff: Forwarded::prior_xff(&h),
            client_ip: &client_ip_header("127.0.0.1".parse().unwrap()),
            proto: "http",
            port: &port,
            request_id: &id,
            trailers: true,
            traceparent: None,
        };
        let mut out = BytesMut::new();
        crate::upstream::h1::head::encode_request(&http::Method::GET, "/", &h, &fwd, &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        for gone in ["connection", "x-secret", "keep-alive", "transfer-encoding", "expect", "client-chosen"] {
            assert!(!text.contains(gone), "{gone} kept: {text}");
        }
        assert_eq!(
            text,
            "GET / HTTP/1.1\r\nhost: app.example\r\nx-forwarded-for: 203.0.113.9, 127.0.0.1\r\n\
             x-forwarded-proto: http\r\nx-forwarded-port: 8080\r\nx-request-id: {id}\r\nx-amzn-trace-id: {id}\r\n\
             te: trailers\r\n\r\n"
                .replace("{id}", id.to_str().unwrap())
        );
    }

    /// An HTTP request's forwarding fields, with no prior X-Forwarded-For and no trailers.
    fn plain<'a>(
        ip: &'a HeaderValue,
        port: &'a HeaderValue,
        id: &'a HeaderValue,
        traceparent: Option<[u8; 55]>,
    ) -> Forwarded<'a> {
        Forwarded { prior_xff: None, client_ip: ip, proto: "http", port, request_id: id, trailers: false, traceparent }
    }

    /// The length filter in front of the comparison lets no replaced field through, nor the client's
    /// traceparent when the gateway sends its own.
    #[test]
    fn replaced_fields_are_not_forwarded() {
        let (ip, port, id) =
            (HeaderValue::from_static("1"), HeaderValue::from_static("80"), HeaderValue::from_static("i"));
        let fwd = |traceparent| plain(&ip, &port, &id, traceparent);
        let traced = fwd(Some([b'0'; 55]));
        for name in REPLACED {
            assert!(!fwd(None).forwards(name) && !traced.forwards(name), "{name}");
        }
        assert!(!traced.forwards(&TRACEPARENT) && fwd(None).forwards(&TRACEPARENT));
        for kept in ["host", "accept", "user-agent", "x-forwarded-fox", "tracestate", "content-length"] {
            assert!(traced.forwards(&HeaderName::from_static(kept)), "{kept}");
        }
    }

    /// HTTP/1's writer spells out what the policy gives ([`Forwarded::each`]), in every combination.
    #[test]
    fn http1_lines_are_the_policys_fields() {
        let (ip, id) = (client_ip_header("2001:db8::1".parse().unwrap()), HeaderValue::from_static("Root=1-2-3"));
        let port = HeaderValue::from_static("8443");
        let tp = *b"00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
        let priors = [None, Some("203.0.113.9, 198.51.100.2")];
        let every = priors.into_iter().flat_map(|prior| {
            ["http", "https", "wss"].into_iter().flat_map(move |proto| {
                [None, Some(tp)]
                    .into_iter()
                    .flat_map(move |tp| [false, true].map(|trailers| (prior, proto, tp, trailers)))
            })
        });
        for (prior, proto, traceparent, trailers) in every {
            let fwd = Forwarded {
                prior_xff: prior.map(HeaderValue::from_static),
                client_ip: &ip,
                proto,
                port: &port,
                request_id: &id,
                trailers,
                traceparent,
            };
            let mut want = Vec::new();
            fwd.each(|name, parts| {
                want.extend_from_slice(name.as_str().as_bytes());
                want.extend_from_slice(b": ");
                parts.iter().for_each(|p| want.extend_from_slice(p));
                want.extend_from_slice(b"\r\n");
            });
            let mut out = BytesMut::new();
            fwd.write(&mut out);
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
        }
    }

    /// With `[tracing]`, the gateway's traceparent replaces the client's in both encodings and tracestate passes
    /// as is; without it, the client's traceparent passes untouched.
    #[test]
    fn traceparent_is_the_gateways_when_tracing() {
        let client_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ours = *b"00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
        let h = map(&[("host", "a"), ("traceparent", client_tp), ("tracestate", "rojo=1")]);
        let (port, id) = (HeaderValue::from_static("80"), HeaderValue::from_static("Root=1-1-1"));
        let ip = client_ip_header("127.0.0.1".parse().unwrap());
        let fwd = |traceparent| plain(&ip, &port, &id, traceparent);
        let h1 = |f: &Forwarded<'_>| {
            let mut out = BytesMut::new();
            crate::upstream::h1::head::encode_request(&http::Method::GET, "/", &h, f, &mut out);
            String::from_utf8(out.to_vec()).unwrap()
        };
        let traced = h1(&fwd(Some(ours)));
        assert_eq!(traced.matches("traceparent: ").count(), 1, "{traced}");
        assert!(traced.contains(&format!("traceparent: {}\r\n", std::str::from_utf8(&ours).unwrap())), "{traced}");
        assert!(traced.contains("tracestate: rojo=1\r\n"), "{traced}");
        let untraced = h1(&fwd(None));
        assert!(untraced.contains(&format!("traceparent: {client_tp}\r\n")), "{untraced}");
        let mut h2 = h.clone();
        fwd(Some(ours)).apply(&mut h2);
        assert_eq!(h2.get_all("traceparent").iter().collect::<Vec<_>>(), [&HeaderValue::from_bytes(&ours).unwrap()]);
        assert_eq!(h2["tracestate"], "rojo=1");
        // Unique to the request, the ids go as never-indexed literals (no HPACK table churn); the rest may be
        // indexed.
        for name in ["x-request-id", "x-amzn-trace-id", "traceparent"] {
            assert!(h2[name].is_sensitive(), "{name} would be indexed");
        }
        assert!(!h2["x-forwarded-proto"].is_sensitive());
        assert!(!h2["tracestate"].is_sensitive());
    }

    /// The length filter in front of the comparison keeps every hop-by-hop name and only those.
    #[test]
    fn hop_by_hop_names_and_only_those() {
        for hop in HOP_BY_HOP {
            assert!(is_hop_by_hop(hop), "{hop}");
            assert!(is_hop_by_hop_name(hop.as_str().as_bytes()), "{hop}");
            assert!(is_hop_by_hop_name(hop.as_str().to_ascii_uppercase().as_bytes()), "{hop}");
        }
        for other in ["user-agent", "x-forwarded-for", "accept", "content-length", "trailer", "tk", "authorization"] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(other)), "{other}");
            assert!(!is_hop_by_hop_name(other.as_bytes()), "{other}");
        }
    }

    /// HTTP/2's map: the client's copies of the replaced fields go (found in one pass), and a request without
    /// any keeps its own fields untouched.
    #[test]
    fn http2_map_replaces_the_clients_copies_only() {
        let (port, id) = (HeaderValue::from_static("443"), HeaderValue::from_static("Root=1-2-3"));
        let ip = client_ip_header("192.0.2.1".parse().unwrap());
        let fwd = Forwarded {
            prior_xff: None,
            client_ip: &ip,
            proto: "https",
            port: &port,
            request_id: &id,
            trailers: false,
            traceparent: None,
        };
        let mut with = map(&[("x-request-id", "mine"), ("expect", "100-continue"), ("accept", "*/*")]);
        fwd.apply(&mut with);
        assert_eq!(with.get_all("x-request-id").iter().collect::<Vec<_>>(), [&id]);
        assert!(with.get("expect").is_none());
        assert_eq!(with["accept"], "*/*");
        let mut without = map(&[("accept", "*/*"), ("user-agent", "grpc-go/1.60")]);
        fwd.apply(&mut without);
        assert_eq!(without.len(), 2 + 5, "{without:?}");
        assert_eq!(without["x-forwarded-for"], "192.0.2.1");
    }
}
