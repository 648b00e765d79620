//! The field rules both HTTP/2 ends apply to what their peer sends (RFC 9113 §8.2.2, §8.1): no
//! connection-specific field, and trailers made of regular fields only. A request's or response's head adds its
//! own pseudo-header rules (the server's `request`, the upstream's `response`).

use http::HeaderMap;
use http::header::{self, HeaderName};
use waygate_h2wire::hpack::Field;

/// Trailers as their fields arrive: regular fields only.
#[derive(Debug, Default)]
pub struct Trailers {
    pub headers: HeaderMap,
    pub malformed: bool,
}

impl Trailers {
    pub fn field(&mut self, field: Field) {
        match field {
            Field::Header(name, value) if !connection_specific(&name) => {
                self.headers.append(name, value);
            }
            _ => self.malformed = true,
        }
    }
}

/// A Content-Length value added to what the message's earlier ones said (`length`): digits only (RFC 9110
/// §8.6), and every value the same (RFC 9113 §8.1.1); false when the message is malformed by it.
pub fn agree_length(length: &mut Option<u64>, value: &http::HeaderValue) -> bool {
    match crate::wire::parse_length(value.as_bytes()) {
        Some(n) if length.is_none_or(|l| l == n) => {
            *length = Some(n);
            true
        }
        _ => false,
    }
}

/// Fields that describe one HTTP/1 connection and have no place in HTTP/2 (RFC 9113 §8.2.2).
pub fn connection_specific(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}
