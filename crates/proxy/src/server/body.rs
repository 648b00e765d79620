//! The client's request body as the request path sees it: one type for both client protocols. On HTTP/2 it is
//! the stream's DATA frames ([`super::h2::RequestBody`]); on HTTP/1 the connection ([`super::conn`]) owns the socket and decodes the body from its
//! read buffer, and hands each frame over through a one-frame [`Slot`] when the body asks for one, so the
//! client is read only as fast as the target takes the body (no buffering beyond one read).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use waygate_faults::Cause;

use crate::lock;

/// Why the client's body could not be read: the client went away (`ClientClosedRequest`), sent a body its
/// framing does not allow (`ClientRequestMalformed`), or stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBodyError(pub Cause);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the client's request body failed: {}", self.0.name())
    }
}

impl std::error::Error for ClientBodyError {}

/// A request body from a client.
#[derive(Debug)]
pub enum ClientBody {
    Empty,
    /// HTTP/1: decoded by the connection, `len` its Content-Length when it has one.
    H1 {
        slot: Arc<Slot>,
        len: Option<u64>,
    },
    H2(super::h2::RequestBody),
}

/// Between the connection and the body it decodes: at most one frame waiting, and who waits for whom.
#[derive(Debug, Default)]
pub struct Slot(Mutex<SlotState>);

#[derive(Debug, Default)]
struct SlotState {
    frame: Option<Result<Frame<Bytes>, ClientBodyError>>,
    /// The body ended (after the frame waiting, if any).
    ended: bool,
    /// The body asked for a frame and none was waiting.
    wanted: bool,
    /// The body was dropped: nobody will read more.
    dropped: bool,
    body: Option<Waker>,
    conn: Option<Waker>,
}

impl Slot {
    /// For the connection: whether the body wants a frame now.
    pub fn wants(&self, cx: &Context<'_>) -> bool {
        let mut s = lock(&self.0);
        if !s.conn.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.conn = Some(cx.waker().clone());
        }
        s.wanted && s.frame.is_none() && !s.ended && !s.dropped
    }

    /// Whether the reader is gone (its request finished or was abandoned without reading the body whole).
    pub fn dropped(&self) -> bool {
        lock(&self.0).dropped
    }

    /// For the connection: hands over a frame, an error, or the end (`None`).
    pub fn put(&self, item: Option<Result<Frame<Bytes>, ClientBodyError>>, cx: &Context<'_>) {
        let mut s = lock(&self.0);
        match item {
            Some(frame) => s.frame = Some(frame),
            None => s.ended = true,
        }
        s.wanted = false;
        if let Some(w) = s.body.take().filter(|w| !w.will_wake(cx.waker())) {
            drop(s);
            w.wake();
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let mut s = lock(&self.0);
        if let Some(frame) = s.frame.take() {
            return Poll::Ready(Some(frame));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        s.wanted = true;
        s.body = Some(cx.waker().clone());
        // The connection runs the request in its own task, and looks at the slot after polling it; a body
        // polled from elsewhere must wake it.
        if let Some(w) = s.conn.as_ref().filter(|w| !w.will_wake(cx.waker())) {
            w.wake_by_ref();
        }
        Poll::Pending
    }

    fn is_end(&self) -> bool {
        let s = lock(&self.0);
        s.ended && s.frame.is_none()
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        if let ClientBody::H1 { slot, .. } = self {
            let mut s = lock(&slot.0);
            s.dropped = true;
            if let Some(w) = s.conn.take() {
                drop(s);
                w.wake();
            }
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::H1 { slot, .. } => slot.poll_take(cx),
            ClientBody::H2(body) => {
                // The stream's idle deadline expired while the request path waited for this body.
                if super::h2::request_expired() {
                    return Poll::Ready(Some(Err(ClientBodyError(Cause::ClientRequestTimeout))));
                }
                let frame = Pin::new(body)
                    .poll_frame(cx)
                    .map(|f| f.map(|r| r.map_err(|_| ClientBodyError(Cause::ClientClosedRequest))));
                super::h2::request_polled(frame.is_ready());
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::H1 { slot, .. } => slot.is_end(),
            ClientBody::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::H1 { len: Some(n), .. } => SizeHint::with_exact(*n),
            ClientBody::H1 { len: None, .. } => SizeHint::default(),
            ClientBody::H2(body) => body.size_hint(),
        }
    }
}
