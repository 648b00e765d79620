//! A response head from the fields of a target's header block, checked as RFC 9113 §8.3.2 requires: exactly
//! one `:status` (three digits) and no other pseudo-header field, pseudo-header fields first, no
//! connection-specific field (§8.2.2), and Content-Length values that agree (digits only, RFC 9110 §8.6). A head
//! that breaks a rule is malformed: the stream is reset with PROTOCOL_ERROR (§8.1.1) and the request fails as
//! the target's protocol error.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use waygate_h2wire::hpack::{Field, Pseudo};

use crate::h2conn::fields::{agree_length, connection_specific};

/// A response head as its fields arrive.
#[derive(Debug, Default)]
pub(super) struct Builder {
    status: Option<Bytes>,
    headers: HeaderMap,
    /// A regular field was seen: pseudo-header fields may no longer come.
    regular: bool,
    length: Option<u64>,
    malformed: bool,
}

/// A checked response head.
#[derive(Debug)]
pub(super) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Its Content-Length, when it has one.
    pub length: Option<u64>,
}

impl Builder {
    pub fn field(&mut self, field: Field) {
        match field {
            Field::Pseudo(Pseudo::Status, value) if !self.regular && self.status.is_none() => {
                self.status = Some(value);
            }
            Field::Pseudo(..) | Field::Invalid { .. } => self.malformed = true,
            Field::Header(name, value) => {
                self.regular = true;
                if connection_specific(&name) {
                    self.malformed = true;
                    return;
                }
                if name == header::CONTENT_LENGTH && !agree_length(&mut self.length, &value) {
                    self.malformed = true;
                }
                self.headers.append(name, value);
            }
        }
    }

    /// The head, or `None` when it is malformed.
    pub fn finish(self) -> Option<Head> {
        let status = self.status.filter(|s| s.len() == 3 && !self.malformed)?;
        let status = StatusCode::from_bytes(&status).ok()?;
        Some(Head { status, headers: self.headers, length: self.length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(fields: Vec<Field>) -> Option<Head> {
        let mut b = Builder::default();
        fields.into_iter().for_each(|f| b.field(f));
        b.finish()
    }

    fn status(s: &'static str) -> Field {
        Field::Pseudo(Pseudo::Status, Bytes::from_static(s.as_bytes()))
    }

    fn field(name: &'static str, value: &'static str) -> Field {
        Field::Header(http::HeaderName::from_static(name), HeaderValue::from_static(value))
    }

    #[test]
    fn a_response_head_has_one_status_first_and_agreed_lengths() {
        let ok = head(vec![status("200"), field("content-length", "5"), field("content-length", "5")]).unwrap();
        assert_eq!((ok.status, ok.length), (StatusCode::OK, Some(5)));
        assert!(head(vec![field("a", "b")]).is_none(), "no :status");
        assert!(head(vec![status("200"), status("200")]).is_none(), "two :status");
        assert!(head(vec![field("a", "b"), status("200")]).is_none(), "a pseudo-header after a field");
        assert!(head(vec![status("20")]).is_none(), "not three digits");
        assert!(head(vec![status("200"), Field::Pseudo(Pseudo::Path, Bytes::from_static(b"/"))]).is_none());
        assert!(head(vec![status("200"), field("connection", "close")]).is_none(), "connection-specific");
        for bad in [&["+5"][..], &["5", "6"], &[""]] {
            let mut fields = vec![status("200")];
            fields.extend(bad.iter().map(|v| field("content-length", v)));
            assert!(head(fields).is_none(), "{bad:?} accepted");
        }
    }
}
