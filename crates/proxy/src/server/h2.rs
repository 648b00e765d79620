//! HTTP/2 client connections, served by hyper, with bounds and a deadline per stream.
//!
//! Bounds (docs/config.md, "Limits of one client connection"): one client connection holds at most [`MAX_CONCURRENT_STREAMS`]
//! requests at once, so at most that many target connections (each request leases one), and per stream at most
//! [`MAX_SEND_BUF`] of response bytes queued for a client that does not take them, plus the one body chunk
//! hyper holds while it waits (up to the upstream read size, 256 KiB). What a client may send unread is
//! bounded by the receive windows, [`STREAM_WINDOW`] per stream and [`CONNECTION_WINDOW`] in all.
//!
//! Deadline: a stream whose flow-control window stays shut for `idle_timeout` (the client does not read it) is
//! reset with RST_STREAM CANCEL and its exchange ends with ClientIdleTimeout, releasing the target's
//! connection. hyper drives each stream as a task of its executor ([`Streams`]) and, while the window is shut,
//! does not poll the response body at all, so the watch sits around the stream's task ([`Watched`]): the
//! response body ([`StreamBody`]) notes, in a thread-local the watch reads back after each poll of that task,
//! whether its last poll gave a frame (then a pending stream waits on the client's window) or waited for the
//! target (whose own deadlines apply). The body is polled, and dropped, only within its stream's task, so the
//! note never crosses streams. One timer per stream, armed when the stream first waits on the client and
//! re-armed only when it fires early: no ticks.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http2::Builder;
use hyper_util::rt::TokioTimer;
use tokio::time::{Instant, Sleep};
use waygate_faults::Cause;

use crate::body::{BoxError, ProxyBody};

/// SETTINGS_MAX_CONCURRENT_STREAMS: ALB's limit of 128 requests in parallel on one HTTP/2 connection. Each holds
/// at most one target connection, so this is also the bound on target connections per client connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Response bytes h2 queues per stream beyond what the client's window lets out (hyper's default is 400 KB).
pub const MAX_SEND_BUF: usize = 64 * 1024;
/// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send on a stream before the gateway reads them.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window: request body bytes in flight on all streams at once.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// hyper's HTTP/2 server as the gateway runs it: the bounds above, and each stream watched for `idle`.
pub fn builder(idle: Duration) -> Builder<Streams> {
    let mut builder = Builder::new(Streams { idle });
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_send_buf_size(MAX_SEND_BUF)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    builder
}

/// What the response body of the stream being polled did on its last poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Not polled during this poll of the stream.
    Unpolled,
    /// Gave a frame (or its end): hyper now waits for the client's window, if it waits at all.
    Gave,
    /// Had nothing yet: the stream waits on the target.
    Waited,
}

thread_local! {
    /// Written by the [`StreamBody`] being polled, read by its [`Watched`] stream after each poll.
    static STEP: Cell<Step> = const { Cell::new(Step::Unpolled) };
    /// Set while a [`Watched`] stream drops its exchange for a cause: the body's drop tells the exchange why.
    static ABANDONED: Cell<Option<Cause>> = const { Cell::new(None) };
}

/// hyper's executor for the streams of one client connection: each stream is spawned on the current runtime
/// (the connection's worker), under a [`Watched`] deadline.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    idle: Duration,
}

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        tokio::spawn(Watched { stream: Some(stream), idle: self.idle, waiting_since: None, timer: None });
    }
}

pin_project_lite::pin_project! {
    /// A stream's task, reset once its response has waited on the client's window for `idle`.
    /// `waiting_since`: since when the stream waits for the client's window (`None`: it does not).
    pub struct Watched<F> {
        #[pin]
        stream: Option<F>,
        idle: Duration,
        waiting_since: Option<Instant>,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else { return Poll::Ready(()) };
        STEP.set(Step::Unpolled);
        if stream.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        match STEP.replace(Step::Unpolled) {
            // Bytes went to the client this poll: its wait, if any, starts now.
            Step::Gave => *this.waiting_since = Some(Instant::now()),
            Step::Waited => *this.waiting_since = None,
            Step::Unpolled => {}
        }
        let Some(since) = *this.waiting_since else { return Poll::Pending };
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
        // Dropping hyper's stream resets it (RST_STREAM CANCEL); the body, dropped with it, ends the exchange.
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
        STEP.set(if frame.is_ready() { Step::Gave } else { Step::Waited });
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
