//! The write side of an HTTP/1.1 connection: a head and small body frames gathered in one buffer (one write
//! per message when it fits), large frames written from their own buffer without a copy, and the body coding
//! (Content-Length or chunked, with trailers) applied as frames arrive.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::AsyncWrite;

/// Body frames up to this size are copied behind the head or chunk line (one write); larger ones are written
/// from their own buffer.
const COPY_BELOW: usize = 16 * 1024;

/// Bytes waiting to be written, in order: `buf`, then `data`, then `tail`.
#[derive(Debug, Default)]
pub struct Out {
    pub buf: BytesMut,
    /// A large body frame written after `buf`.
    data: Bytes,
    /// Bytes after `data` (a chunk's CRLF).
    tail: &'static [u8],
    unflushed: bool,
}

/// Where a body's encoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// This many bytes are still to come (`Content-Length`).
    Length(u64),
    Chunked,
    /// Until the connection closes (an HTTP/1.0 response of unknown length).
    Close,
    Done,
}

impl Out {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.data.is_empty() && self.tail.is_empty()
    }

    /// Whether another body frame can be taken now: a large frame waits alone, small ones gather in the
    /// buffer up to `high` bytes.
    pub fn has_room(&self, high: usize) -> bool {
        self.data.is_empty() && self.tail.is_empty() && self.buf.len() < high
    }

    /// Gives the buffer's memory back (an idle connection holds none).
    pub fn release(&mut self) {
        if self.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Writes everything pending until done or the socket is full.
    pub fn poll_write<W: AsyncWrite + Unpin>(&mut self, io: &mut W, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let chunk: &[u8] = if !self.buf.is_empty() {
                &self.buf
            } else if !self.data.is_empty() {
                &self.data
            } else if !self.tail.is_empty() {
                self.tail
            } else {
                return Poll::Ready(Ok(()));
            };
            let n = ready!(Pin::new(&mut *io).poll_write(cx, chunk))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unflushed = true;
            if !self.buf.is_empty() {
                self.buf.advance(n);
            } else if !self.data.is_empty() {
                self.data.advance(n);
            } else {
                self.tail = &self.tail[n..];
            }
        }
    }

    /// Writes what is pending, then flushes the transport (a TLS session's records).
    pub fn poll_flush<W: AsyncWrite + Unpin>(&mut self, io: &mut W, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write(io, cx))?;
        if self.unflushed {
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Appends a body frame under the body's coding. A `Length` body longer than declared is cut at its length.
    pub fn data(&mut self, enc: &mut Encoder, data: Bytes) {
        if data.is_empty() {
            return;
        }
        match enc {
            Encoder::Done => {}
            Encoder::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= take as u64;
                self.put(data.slice(..take), b"");
                if *left == 0 {
                    *enc = Encoder::Done;
                }
            }
            Encoder::Close => self.put(data, b""),
            Encoder::Chunked => {
                use std::fmt::Write as _;
                let _ = write!(HexOut(&mut self.buf), "{:x}\r\n", data.len());
                self.put(data, b"\r\n");
            }
        }
    }

    fn put(&mut self, data: Bytes, tail: &'static [u8]) {
        if data.len() < COPY_BELOW {
            self.buf.extend_from_slice(&data);
            self.buf.put_slice(tail);
        } else {
            self.data = data;
            self.tail = tail;
        }
    }

    /// The body ended: the last chunk for a chunked body (a Content-Length body needs nothing).
    pub fn finish(&mut self, enc: &mut Encoder) {
        if *enc == Encoder::Chunked {
            self.buf.put_slice(b"0\r\n\r\n");
        }
        *enc = Encoder::Done;
    }

    /// The body ended with trailers: sent on a chunked body, dropped on any other.
    pub fn trailers(&mut self, enc: &mut Encoder, trailers: &HeaderMap) {
        if *enc == Encoder::Chunked {
            self.buf.put_slice(b"0\r\n");
            put_fields(trailers, &mut self.buf);
            *enc = Encoder::Done;
        } else {
            self.finish(enc);
        }
    }
}

/// One `name: value` line.
pub fn put_field(name: &HeaderName, value: &HeaderValue, out: &mut BytesMut) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Header fields, then the blank line that ends a head or a trailer section.
pub fn put_fields(fields: &HeaderMap, out: &mut BytesMut) {
    for (name, value) in fields {
        put_field(name, value, out);
    }
    out.put_slice(b"\r\n");
}

/// `fmt::Write` into a `BytesMut` (chunk-size lines).
struct HexOut<'a>(&'a mut BytesMut);

impl std::fmt::Write for HexOut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}
