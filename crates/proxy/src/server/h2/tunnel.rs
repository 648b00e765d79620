//! An extended CONNECT's stream (RFC 8441) as the client's end of a tunnel: the request carries a
//! [`ClientTunnel`]; once the gateway's 2xx is queued the stream hands itself over ([`Opener`]) as a
//! [`ClientStreamIo`], a byte stream whose reads take the client's DATA (giving their window back as they are
//! copied on) and whose writes wait for the client's windows; its shutdown is END_STREAM.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::shared::{Key, Shared, StreamGone};
use crate::lock;

/// In an extended CONNECT's extensions: the stream, once the gateway answered it 2xx ([`ClientTunnel::open`]).
#[derive(Debug, Clone)]
pub struct ClientTunnel(Arc<Mutex<Option<oneshot::Receiver<ClientStreamIo>>>>);

impl ClientTunnel {
    pub(super) fn new() -> (Self, Opener) {
        let (tx, rx) = oneshot::channel();
        (ClientTunnel(Arc::new(Mutex::new(Some(rx)))), Opener { tx })
    }

    /// The stream after its 2xx was queued; `None` when it was answered otherwise or the client left.
    pub async fn open(self) -> Option<ClientStreamIo> {
        let rx = lock(&self.0).take()?;
        rx.await.ok()
    }
}

/// The stream's side of a [`ClientTunnel`].
#[derive(Debug)]
pub(super) struct Opener {
    tx: oneshot::Sender<ClientStreamIo>,
}

impl Opener {
    /// Hands the stream over; the caller added the handle the [`ClientStreamIo`] holds.
    pub(super) fn open(self, shared: Arc<Shared>, key: Key) {
        // Not taken (the request was dropped): dropping the io drops its handle, which resets the stream.
        let _ = self.tx.send(ClientStreamIo { shared, key, pending: Bytes::new(), ended: false });
    }
}

/// A client's HTTP/2 stream as a byte stream.
#[derive(Debug)]
pub struct ClientStreamIo {
    shared: Arc<Shared>,
    key: Key,
    /// The current DATA's bytes not copied out yet.
    pending: Bytes,
    /// END_STREAM was queued.
    ended: bool,
}

impl Drop for ClientStreamIo {
    fn drop(&mut self) {
        self.shared.lock().drop_handle(self.key);
    }
}

fn io_error(gone: StreamGone) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, gone)
}

impl AsyncRead for ClientStreamIo {
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
                // END_STREAM: the client's half-close.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for ClientStreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Copied straight into the frames queued for the client.
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
