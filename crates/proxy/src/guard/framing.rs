//! Request body framing (RFC 9112 §6.3), tracked on the raw byte stream so the guard knows where the next
//! request head starts. It must agree with hyper's own parser byte for byte: Transfer-Encoding with chunked
//! last wins over Content-Length; otherwise Content-Length; otherwise no body. Only sizes are parsed: body bytes
//! pass through untouched.

/// Where the current message's body stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// This many body bytes are still to come.
    Length(u64),
    Chunked(Chunked),
}

/// The chunked decoder's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk-size line (hex digits, optional extensions, CRLF); `size` accumulated so far.
    Size { size: u64, digits: u8, in_ext: bool },
    /// Skipping `left` data bytes, then the CRLF after them (`crlf` bytes of it still to see).
    Data { left: u64, crlf: u8 },
    /// After the last chunk: trailer lines until an empty line. `line_len` counts the current line's bytes.
    Trailers { line_len: usize },
}

/// What feeding bytes found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// All of the input belongs to this body; more may come.
    More,
    /// The body ends after this many bytes of the input; the rest starts the next message.
    Done(usize),
    /// The chunked framing is broken: hyper will reject it too; stop tracking.
    Invalid,
}

impl Framing {
    /// The framing a request head declares: `te_chunked` (Transfer-Encoding present with chunked last) wins,
    /// else `content_length`, else no body.
    pub fn of(te_chunked: bool, content_length: Option<u64>) -> Option<Framing> {
        if te_chunked {
            return Some(Framing::Chunked(Chunked::Size { size: 0, digits: 0, in_ext: false }));
        }
        match content_length {
            Some(0) | None => None,
            Some(n) => Some(Framing::Length(n)),
        }
    }

    /// Consumes body bytes from `input`.
    pub fn feed(&mut self, input: &[u8]) -> Step {
        match self {
            Framing::Length(left) => {
                let n = input.len() as u64;
                if n < *left {
                    *left -= n;
                    Step::More
                } else {
                    let used = *left as usize;
                    *left = 0;
                    Step::Done(used)
                }
            }
            Framing::Chunked(state) => feed_chunked(state, input),
        }
    }
}

/// Longest chunk-size line or trailer line tolerated before calling the framing broken.
const MAX_LINE: usize = 8 * 1024;

fn feed_chunked(state: &mut Chunked, input: &[u8]) -> Step {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match state {
            Chunked::Size { size, digits, in_ext } => {
                match b {
                    b'\n' => {
                        if *digits == 0 {
                            return Step::Invalid;
                        }
                        *state = if *size == 0 {
                            Chunked::Trailers { line_len: 0 }
                        } else {
                            Chunked::Data { left: *size, crlf: 2 }
                        };
                    }
                    b'\r' => {}
                    _ if *in_ext => {}
                    b';' | b' ' | b'\t' => *in_ext = true,
                    _ => {
                        let Some(d) = (b as char).to_digit(16) else { return Step::Invalid };
                        if *digits >= 16 {
                            return Step::Invalid;
                        }
                        *size = *size * 16 + u64::from(d);
                        *digits += 1;
                    }
                }
                i += 1;
            }
            Chunked::Data { left, crlf } => {
                if *left > 0 {
                    let take = (*left).min((input.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    continue;
                }
                match (b, *crlf) {
                    (b'\r', 2) => *crlf = 1,
                    (b'\n', 1 | 2) => *state = Chunked::Size { size: 0, digits: 0, in_ext: false },
                    _ => return Step::Invalid,
                }
                i += 1;
            }
            Chunked::Trailers { line_len } => {
                i += 1;
                match b {
                    b'\n' if *line_len == 0 => return Step::Done(i),
                    b'\n' => *line_len = 0,
                    b'\r' if *line_len == 0 => {}
                    _ => {
                        *line_len += 1;
                        if *line_len > MAX_LINE {
                            return Step::Invalid;
                        }
                    }
                }
            }
        }
    }
    Step::More
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked() -> Framing {
        Framing::of(true, Some(99)).unwrap()
    }

    #[test]
    fn content_length_counts_across_reads() {
        let mut f = Framing::of(false, Some(10)).unwrap();
        assert_eq!(f.feed(b"12345"), Step::More);
        assert_eq!(f.feed(b"67890GET / HTTP/1.1"), Step::Done(5));
        assert_eq!(Framing::of(false, Some(0)), None);
        assert_eq!(Framing::of(false, None), None);
    }

    #[test]
    fn chunked_wins_over_content_length_and_ends_exactly() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /next";
        let mut f = chunked();
        assert_eq!(f.feed(body), Step::Done(body.len() - b"GET /next".len()));
    }

    #[test]
    fn chunked_byte_by_byte_with_trailers() {
        let body = b"A\r\n0123456789\r\n0\r\nx-trailer: done\r\n\r\n";
        let mut f = chunked();
        for (i, b) in body.iter().enumerate() {
            let step = f.feed(std::slice::from_ref(b));
            if i + 1 < body.len() {
                assert_eq!(step, Step::More, "byte {i}");
            } else {
                assert_eq!(step, Step::Done(1));
            }
        }
    }

    #[test]
    fn broken_chunked_is_invalid() {
        assert_eq!(chunked().feed(b"zz\r\n"), Step::Invalid);
        assert_eq!(chunked().feed(b"\r\n"), Step::Invalid);
        assert_eq!(chunked().feed(b"3\r\nabcX"), Step::Invalid);
        assert_eq!(chunked().feed(b"11111111111111111\r\n"), Step::Invalid, "size overflow");
    }
}
