//! Request body framing (RFC 9112 §6.3), as a request head declares it: Transfer-Encoding with chunked last
//! wins over Content-Length; otherwise Content-Length; otherwise no body. The HTTP/1 server decodes the body by
//! it ([`crate::server`]); the head's own fields are read in one pass by [`super::verdict`].

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// This many body bytes follow the head.
    Length(u64),
    Chunked,
}

impl Framing {
    /// The framing a request head declares: `te_chunked` (Transfer-Encoding present with chunked last) wins,
    /// else `content_length`, else no body.
    pub fn of(te_chunked: bool, content_length: Option<u64>) -> Option<Framing> {
        if te_chunked {
            return Some(Framing::Chunked);
        }
        match content_length {
            Some(0) | None => None,
            Some(n) => Some(Framing::Length(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_wins_then_a_length_then_nothing() {
        assert_eq!(Framing::of(true, Some(5)), Some(Framing::Chunked));
        assert_eq!(Framing::of(false, Some(5)), Some(Framing::Length(5)));
        assert_eq!(Framing::of(false, Some(0)), None);
        assert_eq!(Framing::of(false, None), None);
    }
}
