//! A target's HTTP/1 response fields as it sent them: the head's bytes and where each kept field sits, checked
//! by `httparse` and turned into a `HeaderMap` only when something needs one. An HTTP/1 client is written the
//! fields as they came ([`crate::server::write`]). Building the map cost a name lookup, a value check, a hash
//! and an append per field, then a drop of each, for a map that writer only iterated: reading the target's head
//! and writing the client's took 5,981 instructions of a small proxied request's 31,366, and take 3,771 this
//! way (callgrind).
//!
//! httparse admits only token characters in a name, and HTAB, SP, VCHAR and obs-text in a value (RFC 9110
//! §5.1, §5.5). Those are exactly the bytes `HeaderName` and `HeaderValue` accept, so [`WireFields::to_map`]
//! keeps every field (the `h1_response` fuzz target asserts it).

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Fields kept as the bytes of the head they came in.
#[derive(Debug, Clone, Default)]
pub struct WireFields {
    head: Bytes,
    /// Each field's name and value: (name start, name end, value start, value end) in `head`.
    at: Vec<[u32; 4]>,
}

/// A response head's fields: as an HTTP/1 target sent them, or a map (an HTTP/2 target's decoded block).
#[derive(Debug, Clone)]
pub enum Fields {
    Wire(WireFields),
    Map(HeaderMap),
}

impl WireFields {
    /// `at` are ranges of `head`, each field's name and value as httparse found them.
    pub(crate) fn new(head: Bytes, at: Vec<[u32; 4]>) -> Self {
        debug_assert!(at.iter().all(|&[ns, ne, vs, ve]| ns < ne && ne <= vs && vs <= ve && ve as usize <= head.len()));
        Self { head, at }
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The fields in the order they came, as (name, value) bytes. Names keep the target's case.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.at
            .iter()
            .map(|&[ns, ne, vs, ve]| (&self.head[ns as usize..ne as usize], &self.head[vs as usize..ve as usize]))
    }

    /// The first value of the field `name` (lower case), in any case.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// Removes every field named `name` (lower case), in any case.
    pub fn remove(&mut self, name: &str) {
        let head = &self.head;
        self.at.retain(|&[ns, ne, _, _]| !head[ns as usize..ne as usize].eq_ignore_ascii_case(name.as_bytes()));
    }

    /// The fields' size on the wire, `name: value\r\n` each (as [`crate::wire::header_bytes`] counts a map's).
    pub fn wire_len(&self) -> u64 {
        self.at.iter().map(|&[ns, ne, vs, ve]| u64::from(ne - ns + ve - vs + 4)).sum()
    }

    /// Writes the fields `keep` accepts, each `name:value` as the target wrote it (its spacing after the colon
    /// kept) and CRLF. A run of kept fields the target ended with CRLF is one copy of the head's bytes; a field it
    /// ended otherwise (a bare LF, trailing spaces) is written with CRLF.
    pub fn put_kept(&self, out: &mut BytesMut, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        let head = &self.head[..];
        // Lines of `head` waiting to be copied in one go, each ending with CRLF.
        let mut run = 0..0;
        for &[ns, ne, vs, ve] in &self.at {
            let [ns, ne, vs, ve] = [ns, ne, vs, ve].map(|n| n as usize);
            if !keep(&head[ns..ne], &head[vs..ve]) {
                out.put_slice(&head[std::mem::take(&mut run)]);
                continue;
            }
            // httparse put only the colon and spaces or tabs between a name and its value.
            if head.get(ve..ve + 2) == Some(b"\r\n") {
                if run.is_empty() || run.end != ns {
                    out.put_slice(&head[std::mem::take(&mut run)]);
                    run.start = ns;
                }
                run.end = ve + 2;
            } else {
                out.put_slice(&head[std::mem::take(&mut run)]);
                out.put_slice(&head[ns..ve]);
                out.put_slice(b"\r\n");
            }
        }
        out.put_slice(&head[run]);
    }

    /// The fields appended to `map` (names lower-cased, values sharing the head's bytes).
    pub fn append_to(&self, map: &mut HeaderMap) {
        for &[ns, ne, vs, ve] in &self.at {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&self.head[ns as usize..ne as usize]),
                HeaderValue::from_maybe_shared(self.head.slice(vs as usize..ve as usize)),
            ) else {
                // Unreachable for what httparse accepted (see the module doc); never relayed malformed.
                continue;
            };
            map.append(name, value);
        }
    }

    /// The fields as a map.
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.at.len());
        self.append_to(&mut map);
        map
    }
}

impl Fields {
    /// The first value of the field `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self {
            Fields::Wire(w) => w.get(name),
            Fields::Map(m) => m.get(name).map(HeaderValue::as_bytes),
        }
    }

    pub fn into_map(self) -> HeaderMap {
        match self {
            Fields::Wire(w) => w.to_map(),
            Fields::Map(m) => m,
        }
    }

    pub fn to_map(&self) -> HeaderMap {
        match self {
            Fields::Wire(w) => w.to_map(),
            Fields::Map(m) => m.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str, at: &[[u32; 4]]) -> WireFields {
        WireFields::new(Bytes::copy_from_slice(text.as_bytes()), at.to_vec())
    }

    #[test]
    fn fields_are_read_found_removed_and_mapped() {
        // "Set-Cookie: a\r\nX-Id: 7\r\nset-cookie: b\r\n"
        let text = "Set-Cookie: a\r\nX-Id: 7\r\nset-cookie: b\r\n";
        let mut f = fields(text, &[[0, 10, 12, 13], [15, 19, 21, 22], [24, 34, 36, 37]]);
        let pairs: Vec<_> = f.iter().collect();
        assert_eq!(pairs, [(&b"Set-Cookie"[..], &b"a"[..]), (b"X-Id", b"7"), (b"set-cookie", b"b")]);
        assert_eq!(f.get("set-cookie"), Some(&b"a"[..]));
        assert_eq!(f.get("x-id"), Some(&b"7"[..]));
        assert_eq!(f.get("x-other"), None);
        assert_eq!(f.wire_len(), text.len() as u64);
        let map = f.to_map();
        let cookies: Vec<_> = map.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!((cookies, map.len()), (vec!["a", "b"], 3));
        let mut out = BytesMut::new();
        f.put_kept(&mut out, |_, _| true);
        assert_eq!(&out[..], text.as_bytes());
        f.remove("set-cookie");
        assert_eq!(f.iter().collect::<Vec<_>>(), [(&b"X-Id"[..], &b"7"[..])]);
        assert_eq!(Fields::Wire(f).into_map()["x-id"], "7");
    }

    /// Kept lines ending with CRLF are copied as they are; a skipped field breaks the run, and a line ended
    /// with trailing spaces or a bare LF is written with CRLF.
    #[test]
    fn kept_fields_are_written_with_crlf() {
        let text = "A: 1\r\nB:2 \r\nC: 3\nD: 4\r\nE: 5\r\n";
        let f = fields(text, &[[0, 1, 3, 4], [6, 7, 8, 9], [12, 13, 15, 16], [17, 18, 20, 21], [23, 24, 26, 27]]);
        let mut out = BytesMut::new();
        f.put_kept(&mut out, |name, _| name != b"D");
        assert_eq!(&out[..], b"A: 1\r\nB:2\r\nC: 3\r\nE: 5\r\n");
        out.clear();
        f.put_kept(&mut out, |name, _| name != b"A");
        assert_eq!(&out[..], b"B:2\r\nC: 3\r\nD: 4\r\nE: 5\r\n");
    }
}
