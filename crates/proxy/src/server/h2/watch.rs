//! Each HTTP/2 stream's deadline: a stream whose flow-control window stays shut for `idle_timeout` (the client
//! does not read it) is reset with RST_STREAM CANCEL and its exchange ends with ClientIdleTimeout, releasing the
//! target's connection; a stream whose request body stalls for `idle_timeout` is answered 408
//! ClientRequestTimeout (as on HTTP/1). The watch sits around the stream's future ([`Watched`]), and the
//! bodies ([`StreamBody`], and the request body through [`request_polled`]) note, in a thread-local the watch
//! reads back after each poll of that stream, what their last poll did: a response frame given or a request
//! body with nothing yet means the stream waits on the client; the opposite, on the target (whose own
//! deadlines apply). The bodies are polled, and dropped, only within their stream's poll, so the note never
//! crosses streams. One timer per stream, inline in its future, armed when the stream first waits on the client
//! and re-armed only when it fires early: no ticks, no allocation.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use waygate_faults::Cause;

use crate::body::{BoxError, ProxyBody};

/// The last poll of a body of the stream being polled, and what it means the stream waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// No body was polled during this poll of the stream.
    Unpolled,
    /// The response body gave a frame (or its end): the stream now waits for the client's window, if it waits.
    ResponseGave,
    /// The response body had nothing yet: the stream waits on the target.
    ResponseWaited,
    /// The request body gave a frame: the stream waits on the target to take it, if it waits.
    RequestGave,
    /// The request body had nothing yet: the stream waits for the client to send more.
    RequestWaited,
}

/// Which side of the client a stream waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// To read its response (its window is shut).
    Response,
    /// To send more of its request body.
    Request,
}

thread_local! {
    /// Written by the bodies of the stream being polled, read by its [`Watched`] after each poll.
    static STEP: Cell<Step> = const { Cell::new(Step::Unpolled) };
    /// Whether a body of the stream being polled moved bytes to or from the client during this poll.
    static MOVED: Cell<bool> = const { Cell::new(false) };
    /// Set while a [`Watched`] stream drops its exchange for a cause: the body's drop tells the exchange why.
    static ABANDONED: Cell<Option<Cause>> = const { Cell::new(None) };
    /// Set while a [`Watched`] stream is polled once more because its request body stalled: the body fails.
    static REQUEST_EXPIRED: Cell<bool> = const { Cell::new(false) };
}

/// For the client's request body on HTTP/2 ([`super::ClientBody`]): whether its stream's deadline expired, in
/// which case the body fails with ClientRequestTimeout (the request path answers 408).
pub(crate) fn request_expired() -> bool {
    REQUEST_EXPIRED.get()
}

/// For the client's request body on HTTP/2: what its poll gave (`true`: a frame or its end).
pub(crate) fn request_polled(ready: bool) {
    if ready {
        MOVED.set(true);
        STEP.set(Step::RequestGave);
    } else {
        STEP.set(Step::RequestWaited);
    }
}

pin_project_lite::pin_project! {
    /// A stream's future, ended once it has waited on the client for `idle`. `waiting`: since when, and for
    /// what, the stream waits on the client (`None`: it does not).
    pub struct Watched<F> {
        #[pin]
        stream: Option<F>,
        idle: Duration,
        waiting: Option<(Instant, Wait)>,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F> Watched<F> {
    pub fn new(stream: F, idle: Duration) -> Self {
        Self { stream: Some(stream), idle, waiting: None, timer: None }
    }
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else { return Poll::Ready(()) };
        STEP.set(Step::Unpolled);
        MOVED.set(false);
        if stream.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let wait = match STEP.replace(Step::Unpolled) {
            Step::Unpolled => this.waiting.map(|(_, wait)| wait),
            Step::ResponseWaited | Step::RequestGave => None,
            Step::ResponseGave => Some(Wait::Response),
            Step::RequestWaited => Some(Wait::Request),
        };
        // Bytes moved with the client this poll, or a wait begins: the client's idle time starts now.
        *this.waiting = match (wait, *this.waiting) {
            (None, _) => None,
            (Some(wait), Some((since, _))) if !MOVED.get() => Some((since, wait)),
            (Some(wait), _) => Some((Instant::now(), wait)),
        };
        let Some((since, wait)) = *this.waiting else { return Poll::Pending };
        let deadline = since + *this.idle;
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep_until(deadline)));
        }
        let Some(mut timer) = this.timer.as_pin_mut() else { return Poll::Pending };
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                break;
            }
            timer.as_mut().reset(deadline);
        }
        *this.waiting = None;
        if wait == Wait::Request {
            // Polled once more, the request body fails: the request path answers 408 ClientRequestTimeout on
            // the stream and aborts the target's connection.
            let Some(stream) = this.stream.as_mut().as_pin_mut() else { return Poll::Ready(()) };
            REQUEST_EXPIRED.set(true);
            let polled = stream.poll(cx);
            REQUEST_EXPIRED.set(false);
            return polled;
        }
        // Dropping the stream resets it (RST_STREAM CANCEL); the body, dropped with it, ends the exchange.
        ABANDONED.set(Some(Cause::ClientIdleTimeout));
        this.stream.set(None);
        ABANDONED.set(None);
        Poll::Ready(())
    }
}

/// A response body on an HTTP/2 stream: notes each poll's outcome for the stream's [`Watched`] deadline.
pub struct StreamBody(ProxyBody);

impl StreamBody {
    pub fn new(body: ProxyBody) -> Self {
        Self(body)
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if let Some(cause) = ABANDONED.get() {
            self.0.abandon(cause);
        }
    }
}

impl Body for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = Pin::new(&mut self.get_mut().0).poll_frame(cx);
        if frame.is_ready() {
            MOVED.set(true);
            STEP.set(Step::ResponseGave);
        } else {
            STEP.set(Step::ResponseWaited);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
