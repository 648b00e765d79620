//! HPACK's indexing tables (RFC 7541 §2.3): the static table of Appendix A and the decoder's dynamic table,
//! one index space (1 to 61 static, 62 on dynamic, newest first).
//!
//! Both hold ready [`Field`]s, so an indexed field is handed out as a clone (reference-count bumps) without
//! checking or copying anything; the static entries are built at compile time.

use std::collections::VecDeque;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use super::DecodeError;
use super::field::{Field, Pseudo};

/// RFC 7541 Appendix A, entry `i` at `STATIC[i - 1]`, with its size (§4.1) worked out at compile time.
/// `HeaderName::from_static` gives http's standard representation for every one of these names, so cloning one
/// copies nothing.
/// The static table's size (RFC 7541 Appendix A): indexes above it are the dynamic table's.
pub(crate) const STATIC_ENTRIES: usize = 61;

pub(crate) static STATIC: [(Field, usize); STATIC_ENTRIES] = [
    pseudo(Pseudo::Authority, ""),
    pseudo(Pseudo::Method, "GET"),
    pseudo(Pseudo::Method, "POST"),
    pseudo(Pseudo::Path, "/"),
    pseudo(Pseudo::Path, "/index.html"),
    pseudo(Pseudo::Scheme, "http"),
    pseudo(Pseudo::Scheme, "https"),
    pseudo(Pseudo::Status, "200"),
    pseudo(Pseudo::Status, "204"),
    pseudo(Pseudo::Status, "206"),
    pseudo(Pseudo::Status, "304"),
    pseudo(Pseudo::Status, "400"),
    pseudo(Pseudo::Status, "404"),
    pseudo(Pseudo::Status, "500"),
    header("accept-charset", ""),
    header("accept-encoding", "gzip, deflate"),
    header("accept-language", ""),
    header("accept-ranges", ""),
    header("accept", ""),
    header("access-control-allow-origin", ""),
    header("age", ""),
    header("allow", ""),
    header("authorization", ""),
    header("cache-control", ""),
    header("content-disposition", ""),
    header("content-encoding", ""),
    header("content-language", ""),
    header("content-length", ""),
    header("content-location", ""),
    header("content-range", ""),
    header("content-type", ""),
    header("cookie", ""),
    header("date", ""),
    header("etag", ""),
    header("expect", ""),
    header("expires", ""),
    header("from", ""),
    header("host", ""),
    header("if-match", ""),
    header("if-modified-since", ""),
    header("if-none-match", ""),
    header("if-range", ""),
    header("if-unmodified-since", ""),
    header("last-modified", ""),
    header("link", ""),
    header("location", ""),
    header("max-forwards", ""),
    header("proxy-authenticate", ""),
    header("proxy-authorization", ""),
    header("range", ""),
    header("referer", ""),
    header("refresh", ""),
    header("retry-after", ""),
    header("server", ""),
    header("set-cookie", ""),
    header("strict-transport-security", ""),
    header("transfer-encoding", ""),
    header("user-agent", ""),
    header("vary", ""),
    header("via", ""),
    header("www-authenticate", ""),
];

const fn pseudo(pseudo: Pseudo, value: &'static str) -> (Field, usize) {
    (Field::Pseudo(pseudo, Bytes::from_static(value.as_bytes())), pseudo.name().len() + value.len() + 32)
}

const fn header(name: &'static str, value: &'static str) -> (Field, usize) {
    (Field::Header(HeaderName::from_static(name), HeaderValue::from_static(value)), name.len() + value.len() + 32)
}

/// The static index of a regular field name, for the encoder: Appendix A's names from 15 on, each of which
/// appears once. Grouped by length first, because a `match` on strings tries its arms one after another, and a
/// name the table does not have would otherwise be compared with all 47.
pub(crate) fn static_name_index(name: &str) -> Option<u8> {
    Some(match name.len() {
        3 => match name {
            "age" => 21,
            "via" => 60,
            _ => return None,
        },
        4 => match name {
            "date" => 33,
            "etag" => 34,
            "from" => 37,
            "host" => 38,
            "link" => 45,
            "vary" => 59,
            _ => return None,
        },
        5 => match name {
            "allow" => 22,
            "range" => 50,
            _ => return None,
        },
        6 => match name {
            "accept" => 19,
            "cookie" => 32,
            "expect" => 35,
            "server" => 54,
            _ => return None,
        },
        7 => match name {
            "expires" => 36,
            "referer" => 51,
            "refresh" => 52,
            _ => return None,
        },
        8 => match name {
            "if-match" => 39,
            "if-range" => 42,
            "location" => 46,
            _ => return None,
        },
        10 => match name {
            "set-cookie" => 55,
            "user-agent" => 58,
            _ => return None,
        },
        11 => match name {
            "retry-after" => 53,
            _ => return None,
        },
        12 => match name {
            "content-type" => 31,
            "max-forwards" => 47,
            _ => return None,
        },
        13 => match name {
            "accept-ranges" => 18,
            "authorization" => 23,
            "cache-control" => 24,
            "content-range" => 30,
            "if-none-match" => 41,
            "last-modified" => 44,
            _ => return None,
        },
        14 => match name {
            "accept-charset" => 15,
            "content-length" => 28,
            _ => return None,
        },
        15 => match name {
            "accept-encoding" => 16,
            "accept-language" => 17,
            _ => return None,
        },
        16 => match name {
            "content-encoding" => 26,
            "content-language" => 27,
            "content-location" => 29,
            "www-authenticate" => 61,
            _ => return None,
        },
        17 => match name {
            "if-modified-since" => 40,
            "transfer-encoding" => 57,
            _ => return None,
        },
        18 => match name {
            "proxy-authenticate" => 48,
            _ => return None,
        },
        19 => match name {
            "content-disposition" => 25,
            "if-unmodified-since" => 43,
            "proxy-authorization" => 49,
            _ => return None,
        },
        25 => match name {
            "strict-transport-security" => 56,
            _ => return None,
        },
        27 => match name {
            "access-control-allow-origin" => 20,
            _ => return None,
        },
        _ => return None,
    })
}

/// The decoder's copy of the peer encoder's dynamic table (RFC 7541 §2.3.2, §4).
#[derive(Debug)]
pub(crate) struct DynamicTable {
    /// Newest first, each with its RFC 7541 §4.1 size.
    entries: VecDeque<(Field, usize)>,
    /// The sum of the entries' sizes.
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize) -> Self {
        DynamicTable { entries: VecDeque::new(), size: 0, max_size }
    }

    /// The entry at `index` in the combined index space, and its size.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Result<(&Field, usize), DecodeError> {
        let entry = match index.checked_sub(STATIC.len() + 1) {
            Some(dynamic) => self.entries.get(dynamic).map(|(field, size)| (field, *size)),
            None => index.checked_sub(1).and_then(|i| STATIC.get(i)).map(|(field, size)| (field, *size)),
        };
        entry.ok_or(DecodeError::IndexOutOfRange)
    }

    /// Adds a field as the newest entry, evicting the oldest until it fits; a field larger than the whole table
    /// empties it and is not added (RFC 7541 §4.4).
    pub(crate) fn insert(&mut self, field: Field, size: usize) {
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((field, size));
    }

    /// Applies a dynamic table size update (RFC 7541 §4.3, §6.3); 0 empties the table.
    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            let Some((_, evicted)) = self.entries.pop_back() else { break };
            self.size -= evicted;
        }
    }

    /// The entries newest first, for tests that compare the table with the RFC's examples.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Field> {
        self.entries.iter().map(|(field, _)| field)
    }

    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}
