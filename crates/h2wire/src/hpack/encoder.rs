//! Header block encoding for what the gateway sends: static-table indexes where Appendix A has the field or its
//! name, plain literals without indexing otherwise.
//!
//! No dynamic table and no Huffman coding: both cost instructions on every response (hashing each field to find
//! table entries, coding each string bit by bit) to save bytes that matter little on a client connection. With
//! no dynamic table in use the encoder never owes the peer a table size update, whatever SETTINGS_HEADER_TABLE_SIZE
//! it advertises (RFC 7541 §4.2 only requires updates for a table the encoder uses).
//!
//! Each representation's head goes out as a fixed-size array where it can, which compiles to a few stores
//! rather than a copy call per octet.

use bytes::BytesMut;
use http::{HeaderName, HeaderValue, StatusCode};

use super::field::Pseudo;
use super::integer;
use super::table::static_name_index;

/// Encodes header blocks; it holds no state today, but takes `&mut self` so that one can be added without
/// changing callers.
#[derive(Debug, Default)]
pub struct Encoder {
    _state: (),
}

impl Encoder {
    /// An encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// `:status`: indexed from the static table for 200, 204, 206, 304, 400, 404, 500; otherwise a literal
    /// without indexing whose name is static index 8.
    pub fn status(&mut self, status: StatusCode, dst: &mut BytesMut) {
        let code = status.as_u16();
        match static_status_index(code) {
            Some(index) => dst.extend_from_slice(&[0x80 | index]),
            None => {
                // `StatusCode` is 100 to 999: three digits.
                let digit = |n: u16| b'0' + (n % 10) as u8;
                dst.extend_from_slice(&[0x08, 3, digit(code / 100), digit(code / 10), digit(code)]);
            }
        }
    }

    /// A pseudo-header (for the client side: :method, :scheme, :authority, :path, :protocol; :status works
    /// too): indexed when the static table has the exact pair (GET, POST, /, /index.html, http, https, and the
    /// statuses [`Encoder::status`] indexes), else a literal without indexing with the static name index
    /// (`:protocol`, not in the static table, goes as a literal name).
    pub fn pseudo(&mut self, pseudo: Pseudo, value: &[u8], dst: &mut BytesMut) {
        let exact = match (pseudo, value) {
            (Pseudo::Method, b"GET") => Some(2),
            (Pseudo::Method, b"POST") => Some(3),
            (Pseudo::Path, b"/") => Some(4),
            (Pseudo::Path, b"/index.html") => Some(5),
            (Pseudo::Scheme, b"http") => Some(6),
            (Pseudo::Scheme, b"https") => Some(7),
            (Pseudo::Status, b"200") => Some(8),
            (Pseudo::Status, b"204") => Some(9),
            (Pseudo::Status, b"206") => Some(10),
            (Pseudo::Status, b"304") => Some(11),
            (Pseudo::Status, b"400") => Some(12),
            (Pseudo::Status, b"404") => Some(13),
            (Pseudo::Status, b"500") => Some(14),
            _ => None,
        };
        if let Some(index) = exact {
            dst.extend_from_slice(&[0x80 | index]);
            return;
        }
        dst.reserve(value.len() + 16);
        let name_index = match pseudo {
            Pseudo::Authority => 1,
            Pseudo::Method => 2,
            Pseudo::Path => 4,
            Pseudo::Scheme => 6,
            Pseudo::Status => 8,
            Pseudo::Protocol => 0,
        };
        dst.extend_from_slice(&[name_index]);
        if name_index == 0 {
            string(pseudo.name().as_bytes(), dst);
        }
        string(value, dst);
    }

    /// A regular field: literal without indexing (never-indexed when `value.is_sensitive()`), its name by static
    /// index when the static table has the name, else as a literal string. No Huffman coding, no dynamic table.
    pub fn field(&mut self, name: &HeaderName, value: &HeaderValue, dst: &mut BytesMut) {
        let pattern = if value.is_sensitive() { 0x10 } else { 0x00 };
        let name = name.as_str();
        dst.reserve(name.len() + value.len() + 16);
        match static_name_index(name) {
            // Regular names are at 15 to 61: over a 4-bit prefix, always 15 then one more octet.
            Some(index) => dst.extend_from_slice(&[pattern | 0x0f, index.saturating_sub(15)]),
            None => {
                dst.extend_from_slice(&[pattern]);
                string(name.as_bytes(), dst);
            }
        }
        string(value.as_bytes(), dst);
    }
}

/// The static index of `:status` with this code, for the seven Appendix A has.
fn static_status_index(code: u16) -> Option<u8> {
    Some(match code {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => return None,
    })
}

/// A string literal without Huffman coding (RFC 7541 §5.2).
#[inline]
fn string(value: &[u8], dst: &mut BytesMut) {
    match u8::try_from(value.len()) {
        Ok(len) if len < 0x7f => dst.extend_from_slice(&[len]),
        _ => integer::encode(value.len(), 7, 0, dst),
    }
    dst.extend_from_slice(value);
}
