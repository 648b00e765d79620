//! One HTTP/2 stream as a byte stream, for a tunnel's end on either side (a WebSocket opened by an extended
//! CONNECT, RFC 8441): reads take the peer's DATA and give their flow-control window back only as the bytes
//! are copied on (so a peer at the other end that does not read holds this one up), writes are copied straight
//! into the frames queued and wait for the peer's windows, and a shutdown is END_STREAM. Dropping it drops its
//! handle on the stream: the last handle resets a stream not ended both ways.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::shared::{Key, Shared, StreamGone};

/// An HTTP/2 stream as a byte stream.
#[derive(Debug)]
pub struct StreamIo {
    shared: Arc<Shared>,
    key: Key,
    /// The current DATA's bytes not copied out yet.
    pending: Bytes,
    /// END_STREAM was queued.
    ended: bool,
}

impl StreamIo {
    /// The stream's byte stream; the caller added the handle it holds ([`super::Inner::add_handle`]).
    pub fn new(shared: Arc<Shared>, key: Key) -> Self {
        Self { shared, key, pending: Bytes::new(), ended: false }
    }

    /// How the stream ended, if it did.
    pub fn gone(&self) -> Option<StreamGone> {
        self.shared.lock().gone(self.key)
    }
}

impl Drop for StreamIo {
    fn drop(&mut self) {
        self.shared.lock().drop_handle(self.key);
    }
}

fn io_error(gone: StreamGone) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, gone)
}

impl AsyncRead for StreamIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = this.shared.lock();
        loop {
            if !this.pending.is_empty() {
                let n = buf.remaining().min(this.pending.len());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                inner.release(this.key, n);
                return Poll::Ready(Ok(()));
            }
            match inner.poll_data(this.key, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => this.pending = data,
                Poll::Ready(Some(Err(gone))) => return Poll::Ready(Err(io_error(gone))),
                // END_STREAM: the peer's half-close.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for StreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Copied straight into the frames queued for the peer.
        let mut rest = buf;
        let mut inner = this.shared.lock();
        match inner.poll_send_data(this.key, cx, &mut rest, false) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.len())),
            Poll::Ready(Err(gone)) => Poll::Ready(Err(io_error(gone))),
            // Part went out: that much is written; none: wait for the window.
            Poll::Pending if rest.len() < buf.len() => Poll::Ready(Ok(buf.len() - rest.len())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queued frames go out with the connection's next write, which queueing woke.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        let mut inner = this.shared.lock();
        match inner.poll_send_data(this.key, cx, &mut &[][..], true) {
            Poll::Ready(Ok(())) => {
                this.ended = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(gone)) => Poll::Ready(Err(io_error(gone))),
            Poll::Pending => Poll::Pending,
        }
    }
}
