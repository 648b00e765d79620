//! The fields a header block decodes to, and the HTTP/2 field rules (RFC 9113 §8.2.1, §8.3) that sort them into
//! pseudo-headers, regular headers and invalid fields as they come out of HPACK.
//!
//! The check happens once, when a field first appears as a literal; a field the peer then indexes from the
//! dynamic table comes back out as the same, already sorted, [`Field`].

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// An HTTP/2 pseudo-header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// `:method` (RFC 9113 §8.3.1).
    Method,
    /// `:scheme` (RFC 9113 §8.3.1).
    Scheme,
    /// `:authority` (RFC 9113 §8.3.1).
    Authority,
    /// `:path` (RFC 9113 §8.3.1).
    Path,
    /// `:protocol`, for extended CONNECT (RFC 8441 §4).
    Protocol,
    /// `:status` (RFC 9113 §8.3.2).
    Status,
}

impl Pseudo {
    /// The field name as it goes on the wire, colon included.
    pub const fn name(self) -> &'static str {
        match self {
            Pseudo::Method => ":method",
            Pseudo::Scheme => ":scheme",
            Pseudo::Authority => ":authority",
            Pseudo::Path => ":path",
            Pseudo::Protocol => ":protocol",
            Pseudo::Status => ":status",
        }
    }

    /// The pseudo-header a name denotes; `None` for any other name, with or without a colon.
    pub(crate) fn from_name(name: &[u8]) -> Option<Pseudo> {
        Some(match name {
            b":method" => Pseudo::Method,
            b":scheme" => Pseudo::Scheme,
            b":authority" => Pseudo::Authority,
            b":path" => Pseudo::Path,
            b":protocol" => Pseudo::Protocol,
            b":status" => Pseudo::Status,
            _ => return None,
        })
    }
}

/// One decoded field of a header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A pseudo-header with its raw value.
    Pseudo(Pseudo, Bytes),
    /// A regular field. Never-indexed literals (RFC 7541 §6.2.3) come with `HeaderValue::set_sensitive(true)`.
    Header(HeaderName, HeaderValue),
    /// Valid HPACK that is not a valid HTTP/2 field (RFC 9113 §8.2.1, §8.3): a name with uppercase letters or
    /// characters outside a token, an empty name, a pseudo-header name not in [`Pseudo`], or a value containing
    /// NUL, CR or LF (or anything `http::HeaderValue` rejects) or starting or ending with SP or HTAB.
    /// The message carrying it is malformed; the connection (and the decoder's table) goes on.
    Invalid {
        /// The name as the peer sent it.
        name: Bytes,
        /// The value as the peer sent it.
        value: Bytes,
    },
}

impl Field {
    /// The field's size as RFC 7541 §4.1 counts it for the dynamic table, and RFC 9113 §6.5.2 for the
    /// header-list limit: name and value lengths plus 32.
    pub(crate) fn hpack_size(&self) -> usize {
        let (name, value) = match self {
            Field::Pseudo(pseudo, value) => (pseudo.name().len(), value.len()),
            Field::Header(name, value) => (name.as_str().len(), value.len()),
            Field::Invalid { name, value } => (name.len(), value.len()),
        };
        name + value + 32
    }

    /// The field's name, to pair with a new value when a literal refers to this entry by index.
    pub(crate) fn name(&self) -> Name {
        match self {
            Field::Pseudo(pseudo, _) => Name::Pseudo(*pseudo),
            Field::Header(name, _) => Name::Header(name.clone()),
            Field::Invalid { name, .. } => Name::Invalid(name.clone()),
        }
    }
}

/// A field name already sorted by the HTTP/2 rules, so that a value can be attached without checking the name
/// again.
#[derive(Debug, Clone)]
pub(crate) enum Name {
    Pseudo(Pseudo),
    Header(HeaderName),
    /// Not a valid HTTP/2 name: every field with it is [`Field::Invalid`].
    Invalid(Bytes),
}

impl Name {
    /// Sorts a literal name. Only lowercase names are valid in HTTP/2, so `from_lowercase` (which refuses
    /// uppercase) is exactly the rule; a leading colon is only valid on the pseudo-headers this crate knows.
    pub(crate) fn parse(raw: Bytes) -> Name {
        if raw.first() == Some(&b':') {
            return match Pseudo::from_name(&raw) {
                Some(pseudo) => Name::Pseudo(pseudo),
                None => Name::Invalid(raw),
            };
        }
        match HeaderName::from_lowercase(&raw) {
            Ok(name) => Name::Header(name),
            Err(_) => Name::Invalid(raw),
        }
    }

    /// The field this name makes with `value`; `sensitive` marks a never-indexed literal.
    pub(crate) fn with_value(self, value: Bytes, sensitive: bool) -> Field {
        match self {
            Name::Invalid(name) => Field::Invalid { name, value },
            _ if !value_is_valid(&value) => Field::Invalid { name: self.into_bytes(), value },
            Name::Pseudo(pseudo) => Field::Pseudo(pseudo, value),
            Name::Header(name) => match HeaderValue::from_maybe_shared(value) {
                Ok(mut value) => {
                    value.set_sensitive(sensitive);
                    Field::Header(name, value)
                }
                // `value_is_valid` is http's own rule plus more, so this does not happen; were http ever
                // stricter, the field would still come out invalid, without its value.
                Err(_) => {
                    Field::Invalid { name: Bytes::copy_from_slice(name.as_str().as_bytes()), value: Bytes::new() }
                }
            },
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Name::Pseudo(pseudo) => Bytes::from_static(pseudo.name().as_bytes()),
            Name::Header(name) => Bytes::copy_from_slice(name.as_str().as_bytes()),
            Name::Invalid(name) => name,
        }
    }
}

/// RFC 9113 §8.2.1 for values, in the form `http::HeaderValue` enforces (no control characters but HTAB, no
/// DEL, which covers NUL, CR and LF) plus the rule http leaves out: no SP or HTAB at either end. Pseudo-header
/// values go through the same check so that every valid field can be re-encoded and decoded unchanged.
fn value_is_valid(value: &[u8]) -> bool {
    let is_blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    if is_blank(value.first()) || is_blank(value.last()) {
        return false;
    }
    // No early return, so the loop vectorizes.
    value.iter().fold(true, |ok, &b| ok & ((b >= 0x20 && b != 0x7f) || b == b'\t'))
}
