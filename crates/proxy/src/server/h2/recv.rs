//! A request body on an HTTP/2 stream: its DATA, then its trailers. The window each frame used goes back to the
//! client as the request path takes the frame, so a client sends only as fast as the target takes its body
//! (plus the receive window). The connection checks the body against the request's Content-Length and resets
//! the stream when they differ (RFC 9113 §8.1.1).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::h2conn::{Key, Shared, StreamGone};

/// The body of one request stream.
#[derive(Debug)]
pub struct RequestBody {
    shared: Arc<Shared>,
    key: Key,
    /// The request's Content-Length, less what was taken: the body's exact size left.
    len: Option<u64>,
    /// The DATA ended: what is left is the trailers.
    data_done: bool,
}

impl RequestBody {
    pub(super) fn new(shared: Arc<Shared>, key: Key, len: Option<u64>) -> Self {
        Self { shared, key, len, data_done: false }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.shared.lock().drop_body(self.key);
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = StreamGone;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, StreamGone>>> {
        let this = self.get_mut();
        let mut inner = this.shared.lock();
        if !this.data_done {
            match inner.poll_data(this.key, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    // Taken by the request path: the client may send as much again.
                    inner.release(this.key, data.len());
                    if let Some(len) = this.len.as_mut() {
                        *len = len.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.data_done = true,
            }
        }
        Poll::Ready(inner.take_trailers(this.key).map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.shared.lock().body_ended(self.key)
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(n) => SizeHint::with_exact(n),
            None if self.is_end_stream() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}
