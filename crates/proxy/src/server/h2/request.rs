//! A request head from the fields of a client's header block, checked as RFC 9113 §8.3 requires: the
//! pseudo-header fields first, each at most once, the ones the method needs (`:method`, `:scheme` and a
//! non-empty `:path`; a CONNECT only `:authority`, an extended CONNECT (RFC 8441) `:protocol` with all four),
//! no connection-specific field (§8.2.2), `TE` only as `trailers`, and Content-Length values that agree. A
//! head that breaks a rule is malformed: the connection resets its stream with PROTOCOL_ERROR (§8.1.1).
//! Trailers are checked the same way, without pseudo-header fields ([`crate::h2conn::fields::Trailers`]).

use bytes::Bytes;
use http::header;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri};
use waygate_h2wire::hpack::{Field, Pseudo};

use crate::h2conn::fields::{agree_length, connection_specific};

/// An extended CONNECT's `:protocol` (RFC 8441 §4), in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol(Bytes);

impl Protocol {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A request head as its fields arrive.
#[derive(Debug, Default)]
pub(super) struct Builder {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: Option<Bytes>,
    headers: HeaderMap,
    /// A regular field was seen: pseudo-header fields may no longer come.
    regular: bool,
    /// The request's Content-Length, when it has one.
    length: Option<u64>,
    malformed: bool,
}

/// A checked request head.
#[derive(Debug)]
pub(super) struct Head {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub protocol: Option<Protocol>,
    pub length: Option<u64>,
}

impl Builder {
    pub fn field(&mut self, field: Field) {
        match field {
            Field::Pseudo(pseudo, value) => {
                let slot = match pseudo {
                    Pseudo::Method => &mut self.method,
                    Pseudo::Scheme => &mut self.scheme,
                    Pseudo::Authority => &mut self.authority,
                    Pseudo::Path => &mut self.path,
                    Pseudo::Protocol => &mut self.protocol,
                    Pseudo::Status => {
                        self.malformed = true;
                        return;
                    }
                };
                if self.regular || slot.is_some() {
                    self.malformed = true;
                }
                *slot = Some(value);
            }
            Field::Header(name, value) => {
                self.regular = true;
                if connection_specific(&name) || (name == header::TE && value.as_bytes() != b"trailers") {
                    self.malformed = true;
                    return;
                }
                if name == header::CONTENT_LENGTH && !agree_length(&mut self.length, &value) {
                    self.malformed = true;
                }
                self.headers.append(name, value);
            }
            Field::Invalid { .. } => self.malformed = true,
        }
    }

    /// The head, or `None` when it is malformed.
    pub fn finish(self) -> Option<Head> {
        if self.malformed {
            return None;
        }
        let method = Method::from_bytes(&self.method?).ok()?;
        let authority = match self.authority {
            Some(a) => Some(Authority::from_maybe_shared(a).ok()?),
            None => None,
        };
        let connect = method == Method::CONNECT;
        if connect && self.protocol.is_none() {
            // A classic CONNECT names only where to connect (§8.5); the request path answers it.
            if self.scheme.is_some() || self.path.is_some() {
                return None;
            }
            let uri = Uri::from_parts({
                let mut parts = http::uri::Parts::default();
                parts.authority = Some(authority?);
                parts
            })
            .ok()?;
            return Some(Head { method, uri, headers: self.headers, protocol: None, length: self.length });
        }
        if self.protocol.is_some() && (!connect || authority.is_none()) {
            return None;
        }
        let scheme = Scheme::try_from(&self.scheme?[..]).ok()?;
        let path = self.path?;
        if path.is_empty() || (path[..] == *b"*" && method != Method::OPTIONS) {
            return None;
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(scheme);
        parts.authority = authority;
        parts.path_and_query = Some(PathAndQuery::from_maybe_shared(path).ok()?);
        let uri = Uri::from_parts(parts).ok()?;
        Some(Head { method, uri, headers: self.headers, protocol: self.protocol.map(Protocol), length: self.length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_with_length(values: &[&'static str]) -> Option<Head> {
        let mut b = Builder::default();
        for (p, v) in
            [(Pseudo::Method, "POST"), (Pseudo::Scheme, "http"), (Pseudo::Path, "/"), (Pseudo::Authority, "a")]
        {
            b.field(Field::Pseudo(p, Bytes::from_static(v.as_bytes())));
        }
        for v in values {
            b.field(Field::Header(header::CONTENT_LENGTH, http::HeaderValue::from_static(v)));
        }
        b.finish()
    }

    #[test]
    fn content_length_is_digits_only_and_agreed() {
        assert_eq!(head_with_length(&["5"]).and_then(|h| h.length), Some(5));
        assert_eq!(head_with_length(&["5", "5"]).and_then(|h| h.length), Some(5));
        // A sign, a space or a second value that disagrees: malformed (RFC 9110 §8.6, RFC 9113 §8.1.1).
        for bad in [&["+5"][..], &[" 5"], &["5", "6"], &["-1"], &[""]] {
            assert!(head_with_length(bad).is_none(), "{bad:?} accepted");
        }
    }
}
