//! The frames a target sends, watched as they pass (headers only): the `h2` crate fails every stream of a
//! connection that ends after a GOAWAY with the same error, whether the stream was above the GOAWAY's
//! last_stream_id (not processed: safe to retry whatever the method, RFC 9113 §6.8 and §8.7) or at or below it
//! (accepted, maybe acted on). The crate does not expose last_stream_id, so this reader notes it, with the
//! error code, from the frame itself. It also notes the target's first SETTINGS, so the pool knows the
//! target's stream limit before it shares the connection. It reads the 9-byte frame headers and a GOAWAY's
//! first 8 payload bytes and copies nothing else.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// RFC 9113 §6.5 and §6.8.
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const HEADER: usize = 9;

/// What the target's frames said so far.
#[derive(Debug)]
pub struct Seen {
    /// The last GOAWAY: last_stream_id and error code, packed; `u64::MAX` until one comes.
    goaway: AtomicU64,
    /// The target's first SETTINGS frame arrived.
    settings: AtomicBool,
}

impl Default for Seen {
    fn default() -> Self {
        Self { goaway: AtomicU64::new(u64::MAX), settings: AtomicBool::new(false) }
    }
}

impl Seen {
    /// `(last_stream_id, error_code)` of the last GOAWAY received, if any.
    pub fn get(&self) -> Option<(u32, u32)> {
        let v = self.goaway.load(Ordering::Acquire);
        (v != u64::MAX).then_some(((v >> 32) as u32, v as u32))
    }

    /// The target's SETTINGS (not an ACK) came.
    pub fn settings(&self) -> bool {
        self.settings.load(Ordering::Acquire)
    }

    fn set(&self, last_stream_id: u32, code: u32) {
        self.goaway.store(u64::from(last_stream_id & 0x7fff_ffff) << 32 | u64::from(code), Ordering::Release);
    }
}

/// Where the reader stands in the target's frame sequence.
#[derive(Debug, Default)]
struct Cursor {
    /// Bytes of the current frame header read so far, and the header.
    header: [u8; HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u32,
    /// In a GOAWAY: its first 8 payload bytes, as they come.
    goaway: Option<([u8; 8], usize)>,
}

impl Cursor {
    /// Follows `bytes`, the next ones the target sent.
    fn feed(&mut self, mut bytes: &[u8], seen: &Seen) {
        while !bytes.is_empty() {
            if self.payload_left == 0 && self.goaway.is_none() {
                let take = (HEADER - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len < HEADER {
                    return;
                }
                self.header_len = 0;
                let h = self.header;
                self.payload_left = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                if h[3] == SETTINGS && h[4] & ACK == 0 {
                    seen.settings.store(true, Ordering::Release);
                }
                if h[3] == GOAWAY && self.payload_left >= 8 {
                    self.goaway = Some(([0; 8], 0));
                }
                continue;
            }
            if let Some((buf, filled)) = &mut self.goaway {
                let take = (8 - *filled).min(bytes.len());
                buf[*filled..*filled + take].copy_from_slice(&bytes[..take]);
                *filled += take;
                self.payload_left -= take as u32;
                bytes = &bytes[take..];
                if *filled == 8 {
                    let last = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    seen.set(last, u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
                    self.goaway = None;
                }
                continue;
            }
            let skip = (self.payload_left as usize).min(bytes.len());
            self.payload_left -= skip as u32;
            bytes = &bytes[skip..];
        }
    }
}

/// A transport whose incoming frames are followed for GOAWAY.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    cursor: Cursor,
    seen: std::sync::Arc<Seen>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, seen: std::sync::Arc<Seen>) -> Self {
        Self { inner, cursor: Cursor::default(), seen }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.cursor.feed(&buf.filled()[before..], &this.seen);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// The GOAWAY is found behind other frames whatever the read boundaries, and its fields are read whole
    /// even when they arrive a byte at a time.
    #[test]
    fn finds_goaway_across_any_split() {
        let mut wire = frame(0x4, 0, &[0, 3, 0, 0, 0, 100]);
        wire.extend(frame(0x1, 1, &[0x88; 20]));
        wire.extend(frame(0x0, 1, &[7; 300]));
        let mut goaway = 5u32.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes());
        goaway.extend_from_slice(b"restarting");
        // Its last_stream_id and error code end here; its debug data follows.
        let fields_end = wire.len() + HEADER + 8;
        wire.extend(frame(GOAWAY, 0, &goaway));
        for chunk in [1, 2, 7, 9, 64, wire.len()] {
            let seen = Seen::default();
            let mut cursor = Cursor::default();
            let mut fed = 0;
            for piece in wire.chunks(chunk) {
                assert_eq!(seen.get(), None, "not before the GOAWAY's fields");
                cursor.feed(piece, &seen);
                fed += piece.len();
                if fed >= fields_end {
                    break;
                }
            }
            cursor.feed(&wire[fed.min(wire.len())..], &seen);
            assert_eq!(seen.get(), Some((5, 0)), "chunks of {chunk}");
            assert!(seen.settings());
        }
        let seen = Seen::default();
        let mut cursor = Cursor::default();
        let mut ack = frame(SETTINGS, 0, &[]);
        ack[4] = ACK;
        cursor.feed(&ack, &seen);
        assert!(!seen.settings(), "an ACK of ours is not the target's SETTINGS");
        cursor.feed(&frame(GOAWAY, 0, &[0x80, 0, 0, 3, 0, 0, 0, 1]), &seen);
        assert_eq!(seen.get(), Some((3, 1)), "the reserved bit is not part of the id");
    }
}
