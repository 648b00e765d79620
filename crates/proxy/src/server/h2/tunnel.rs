//! An extended CONNECT's stream (RFC 8441) as the client's end of a tunnel: the request carries a
//! [`ClientTunnel`]; once the gateway's 2xx is queued the stream hands itself over ([`Opener`]) as a
//! [`StreamIo`], the byte stream both HTTP/2 ends share.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::h2conn::{Key, Shared, StreamIo};
use crate::lock;

/// In an extended CONNECT's extensions: the stream, once the gateway answered it 2xx ([`ClientTunnel::open`]).
#[derive(Debug, Clone)]
pub struct ClientTunnel(Arc<Mutex<Option<oneshot::Receiver<StreamIo>>>>);

impl ClientTunnel {
    pub(super) fn new() -> (Self, Opener) {
        let (tx, rx) = oneshot::channel();
        (ClientTunnel(Arc::new(Mutex::new(Some(rx)))), Opener { tx })
    }

    /// The stream after its 2xx was queued; `None` when it was answered otherwise or the client left.
    pub async fn open(self) -> Option<StreamIo> {
        let rx = lock(&self.0).take()?;
        rx.await.ok()
    }
}

/// The stream's side of a [`ClientTunnel`].
#[derive(Debug)]
pub(super) struct Opener {
    tx: oneshot::Sender<StreamIo>,
}

impl Opener {
    /// Hands the stream over; the caller added the handle the [`StreamIo`] holds.
    pub(super) fn open(self, shared: Arc<Shared>, key: Key) {
        // Not taken (the request was dropped): dropping the io drops its handle, which resets the stream.
        let _ = self.tx.send(StreamIo::new(shared, key));
    }
}
