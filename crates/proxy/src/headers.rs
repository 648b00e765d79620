//! Header rewriting at the proxy boundary (RFC 9110 §7.6.1): hop-by-hop headers are removed both ways, the
//! request gains X-Forwarded-For/-Proto/-Port, the request id (`x-request-id`, `X-Amzn-Trace-Id`), and a Host
//! header when the client spoke HTTP/2 (`:authority`). The client's Host is preserved.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

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

/// Removes hop-by-hop headers: the fixed set and any named in `Connection`. `Trailer` is end-to-end
/// (RFC 9110 §6.6.2) and stays.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) names present finds what to strip: usually nothing on requests and only
    // `Connection` on responses. Removing each of the eight names blindly cost eight hash-and-probe lookups
    // per message, both ways.
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
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

/// How many addresses the client's X-Forwarded-For headers hold (all fields, comma-separated).
pub fn xff_count(headers: &HeaderMap) -> usize {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .map(|v| v.as_bytes().split(|&b| b == b',').filter(|s| s.iter().any(|b| !b.is_ascii_whitespace())).count())
        .sum()
}

/// The forwarding headers a target sees.
pub struct Forwarded<'a> {
    /// The client's address as X-Forwarded-For writes it, made once per connection.
    pub client_ip: &'a HeaderValue,
    pub proto: &'static str,
    pub port: &'a HeaderValue,
    pub request_id: &'a HeaderValue,
    /// The client accepts trailers (HTTP/2, or `TE: trailers` on HTTP/1.1): ask the target for them too.
    pub trailers: bool,
}

/// Whether the client's request says it accepts trailer fields.
pub fn accepts_trailers(version: http::Version, headers: &HeaderMap) -> bool {
    version == http::Version::HTTP_2
        || headers
            .get_all(header::TE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers"))))
}

/// A client address as X-Forwarded-For writes it (`Display` of an IP address is slow enough to matter per
/// request, so connections make this once).
pub fn client_ip_header(ip: IpAddr) -> HeaderValue {
    // An IP address's text is always a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Rewrites a request's headers for the target.
pub fn to_upstream(headers: &mut HeaderMap, fwd: &Forwarded<'_>) {
    strip_hop_by_hop(headers);
    // Room for the five forwarding headers (and Host): one growth instead of several rehashes.
    headers.reserve(6);
    // The gateway answers `Expect: 100-continue` itself as soon as the target reads the body.
    headers.remove(header::EXPECT);
    let client = fwd.client_ip.to_str().unwrap_or_default();
    match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            if let Ok(v) = HeaderValue::from_str(&format!("{prev}, {client}")) {
                headers.insert(&X_FORWARDED_FOR, v);
            }
        }
        _ => {
            headers.insert(&X_FORWARDED_FOR, fwd.client_ip.clone());
        }
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto));
    headers.insert(&X_FORWARDED_PORT, fwd.port.clone());
    headers.insert(&X_REQUEST_ID, fwd.request_id.clone());
    headers.insert(&X_AMZN_TRACE_ID, fwd.request_id.clone());
    if fwd.trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let port = HeaderValue::from_static("8080");
        let id = HeaderValue::from_static("Root=1-00000000-000000000000000000000001");
        to_upstream(
            &mut h,
            &Forwarded {
                client_ip: &client_ip_header("127.0.0.1".parse().unwrap()),
                proto: "http",
                port: &port,
                request_id: &id,
                trailers: false,
            },
        );
        for gone in ["connection", "x-secret", "keep-alive", "transfer-encoding", "expect"] {
            assert!(!h.contains_key(gone), "{gone} kept");
        }
        assert_eq!(h["host"], "app.example");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["x-request-id"], id);
        assert_eq!(h["x-amzn-trace-id"], id);
    }
}
