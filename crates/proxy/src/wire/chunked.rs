//! The chunked transfer coding (RFC 9112 §7.1), decoded from the connection's read buffer: chunk data is
//! handed on as slices of that buffer (no copy), chunk extensions are skipped, trailer fields are parsed and
//! relayed. Bad framing is the target's body failing (HttpEvidence::BodyIncomplete): the connection is not
//! reused and the client's response is cut, never silently repaired.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use waygate_faults::HttpEvidence;

/// A chunk-size line or trailer section longer than this is not HTTP.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Decoder state between reads.
#[derive(Debug)]
pub struct Chunked {
    state: State,
}

/// What [`Chunked::decode`] produced.
#[derive(Debug)]
pub enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The last chunk and the trailer section were read.
    End,
    /// The buffer holds no whole unit: read more.
    NeedMore,
}

impl Default for Chunked {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

impl Chunked {
    /// Decodes the next unit from `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, HttpEvidence> {
        const BAD: HttpEvidence = HttpEvidence::BodyIncomplete;
        loop {
            match self.state {
                State::Size => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        return if buf.len() > MAX_LINE { Err(BAD) } else { Ok(Step::NeedMore) };
                    };
                    let line = buf.split_to(nl + 1);
                    let line = line.strip_suffix(b"\r\n").ok_or(BAD)?;
                    let size = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii_end();
                    let n = parse_hex(size).ok_or(BAD)?;
                    self.state = if n == 0 { State::Trailers } else { State::Data(n) };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let rest = left - take as u64;
                    self.state = if rest == 0 { State::DataEnd } else { State::Data(rest) };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BAD);
                    }
                    let _ = buf.split_to(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        self.state = State::Done;
                        return Ok(Step::End);
                    }
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    let mut slots = [httparse::EMPTY_HEADER; 64];
                    let (len, map) = match httparse::parse_headers(buf, &mut slots) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let mut map = HeaderMap::with_capacity(fields.len());
                            for f in fields.iter() {
                                let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| BAD)?;
                                let value = HeaderValue::from_bytes(f.value).map_err(|_| BAD)?;
                                map.append(name, value);
                            }
                            (len, map)
                        }
                        Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => return Ok(Step::NeedMore),
                        _ => return Err(BAD),
                    };
                    let _ = buf.split_to(len);
                    self.state = State::Done;
                    return Ok(if map.is_empty() { Step::End } else { Step::Trailers(map) });
                }
                State::Done => return Ok(Step::End),
            }
        }
    }
}

/// Hex digits, at most 16 (a u64).
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| Some(n << 4 | u64::from(char::from(b).to_digit(16)? as u8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed `step` bytes at a time; returns the body, trailers and whether it ended.
    fn run(wire: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>, bool), HttpEvidence> {
        let mut dec = Chunked::default();
        let mut buf = BytesMut::new();
        let (mut body, mut trailers) = (Vec::new(), None);
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf)? {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::Trailers(t) => trailers = Some(t),
                Step::End => return Ok((body, trailers, true)),
                Step::NeedMore if fed >= wire.len() => return Ok((body, trailers, false)),
                Step::NeedMore => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let wire = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n";
        for step in [1, 3, wire.len()] {
            let (body, trailers, ended) = run(wire, step).unwrap();
            assert_eq!((&body[..], trailers.is_none(), ended), (&b"hello0123456789"[..], true, true), "step {step}");
        }
    }

    #[test]
    fn trailers_are_parsed() {
        let wire = b"2\r\nok\r\n0\r\ngrpc-status: 0\r\nx-sum: ab\r\n\r\n";
        let (body, trailers, ended) = run(wire, 4).unwrap();
        let trailers = trailers.unwrap();
        assert_eq!((&body[..], trailers["grpc-status"].as_bytes(), ended), (&b"ok"[..], &b"0"[..], true));
        assert_eq!(trailers["x-sum"], "ab");
    }

    #[test]
    fn bad_framing_is_an_incomplete_body() {
        for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"5\nhello\r\n", b"11111111111111111\r\n"] {
            assert_eq!(run(bad, 64).unwrap_err(), HttpEvidence::BodyIncomplete, "{:?}", String::from_utf8_lossy(bad));
        }
        let (_, _, ended) = run(b"5\r\nhel", 64).unwrap();
        assert!(!ended, "a short body is not an end");
    }
}
