//! A request body on an HTTP/2 stream: its DATA frames, then its trailers. Each frame's flow-control capacity
//! goes back to the client as the request path takes the frame, so a client sends only as fast as the target
//! takes its body (plus the receive window). The `h2` crate checks the body against the request's
//! Content-Length and fails the stream when they differ.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// The body of one request stream.
#[derive(Debug)]
pub struct RequestBody {
    recv: h2::RecvStream,
    /// The request's Content-Length, when it has one: the body's exact size.
    len: Option<u64>,
    /// The DATA frames ended: what is left is the trailers.
    data_done: bool,
}

impl RequestBody {
    pub(super) fn new(recv: h2::RecvStream, headers: &HeaderMap) -> Self {
        let len = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        Self { recv, len, data_done: false }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Taken by the request path: the client may send as much again.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    if let Some(len) = this.len.as_mut() {
                        *len = len.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            _ if self.recv.is_end_stream() => SizeHint::with_exact(0),
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
