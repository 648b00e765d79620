//! A tunnel's target end on an HTTP/2 stream (a WebSocket opened by an extended CONNECT, RFC 8441), as bytes:
//! reads take the stream's DATA frames and give their flow-control capacity back only as the bytes are copied
//! on (so a client that does not read holds the target up), writes wait for the target's window, and a
//! shutdown is END_STREAM. The `h2` crate offers frames, not a byte stream; this adapter is the little between.
//! A reset or GOAWAY from the target is noted as evidence for the tunnel's record.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use waygate_faults::H2Evidence;

/// One HTTP/2 stream as a byte stream.
pub struct StreamIo<'a> {
    send: &'a mut SendStream<Bytes>,
    recv: &'a mut RecvStream,
    /// The current DATA frame's bytes not copied out yet.
    pending: Bytes,
    /// END_STREAM was sent.
    ended: bool,
    /// What the target said when it ended the stream (a reset, a GOAWAY).
    said: &'a OnceLock<H2Evidence>,
}

impl<'a> StreamIo<'a> {
    pub fn new(send: &'a mut SendStream<Bytes>, recv: &'a mut RecvStream, said: &'a OnceLock<H2Evidence>) -> Self {
        Self { send, recv, pending: Bytes::new(), ended: false, said }
    }

    /// The io error for an `h2` one, the target's reset or GOAWAY noted and named.
    fn error(&self, e: &h2::Error) -> io::Error {
        let code = e.reason().map_or(0, u32::from);
        let said = if e.is_reset() && e.is_remote() {
            Some(H2Evidence::StreamReset { code })
        } else if e.is_go_away() && e.is_remote() {
            Some(H2Evidence::GoAway { code, unprocessed: false })
        } else {
            None
        };
        if let Some(said) = said {
            let _ = self.said.set(said);
            return io::Error::new(io::ErrorKind::ConnectionReset, crate::upstream::h2::describe(said));
        }
        match e.get_io() {
            Some(io) => crate::upstream::failure::copy_io(io),
            None => io::Error::other(e.to_string()),
        }
    }
}

impl AsyncRead for StreamIo<'_> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = buf.remaining().min(this.pending.len());
                buf.put_slice(&this.pending.split_to(n));
                let _ = this.recv.flow_control().release_capacity(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.pending = data,
                Some(Err(e)) => return Poll::Ready(Err(this.error(&e))),
                // END_STREAM: the target's half-close.
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for StreamIo<'_> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            this.send.reserve_capacity(buf.len());
            let granted = match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Poll::Ready(Err(this.error(&e))),
                None => return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the stream is closed"))),
            };
            if granted == 0 {
                continue;
            }
            let n = granted.min(buf.len());
            if let Err(e) = this.send.send_data(Bytes::copy_from_slice(&buf[..n]), false) {
                return Poll::Ready(Err(this.error(&e)));
            }
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames go out with the connection's task; nothing is held here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            this.ended = true;
            if let Err(e) = this.send.send_data(Bytes::new(), true) {
                return Poll::Ready(Err(this.error(&e)));
            }
        }
        Poll::Ready(Ok(()))
    }
}
