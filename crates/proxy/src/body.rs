//! Bodies streamed through the gateway, never buffered whole.
//!
//! - [`UpstreamRequestBody`]: the client's body on its way to the target. It counts bytes and signals when
//!   the last byte was handed to the target, which is when `response_timeout` starts (ALB: request sent to
//!   response head), so a slow upload is not mistaken for a slow target.
//! - [`ProxyBody`]: what the client receives: the target's body (which hands its connection back to the pool
//!   once fully read, and fails loudly if cut short or stalled) or a body the gateway generated.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Progress of the request body towards the target, shared with the attempt that waits for the response.
#[derive(Debug, Default)]
pub struct RequestProgress {
    bytes: AtomicU64,
    done: AtomicBool,
    client_failed: AtomicBool,
    notify: Notify,
}

impl RequestProgress {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The client's body failed (client went away mid-upload).
    pub fn client_failed(&self) -> bool {
        self.client_failed.load(Ordering::Relaxed)
    }

    fn finish(&self) {
        if !self.done.swap(true, Ordering::Release) {
            self.notify.notify_waiters();
        }
    }

    /// Resolves once the whole request body has been handed to the target connection.
    pub async fn sent(&self) {
        loop {
            let notified = self.notify.notified();
            if self.done.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// The request body sent upstream: the client's body streamed as it arrives, or a small body buffered whole
/// (so an idempotent request can be replayed after a keep-alive race).
#[derive(Debug)]
pub struct UpstreamRequestBody {
    source: Source,
    progress: Arc<RequestProgress>,
}

#[derive(Debug)]
enum Source {
    Done,
    Streaming(Incoming),
    Buffered(Bytes),
}

impl UpstreamRequestBody {
    /// Wraps the client's body; an empty one is complete at once.
    pub fn new(inner: Incoming, progress: Arc<RequestProgress>) -> Self {
        if inner.is_end_stream() {
            return Self::empty(progress);
        }
        Self { source: Source::Streaming(inner), progress }
    }

    pub fn empty(progress: Arc<RequestProgress>) -> Self {
        progress.finish();
        Self { source: Source::Done, progress }
    }

    /// A body already read whole (replayable: build another with the same bytes).
    pub fn buffered(bytes: Bytes, progress: Arc<RequestProgress>) -> Self {
        if bytes.is_empty() {
            return Self::empty(progress);
        }
        Self { source: Source::Buffered(bytes), progress }
    }
}

impl Body for UpstreamRequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match &mut this.source {
            Source::Done => Poll::Ready(None),
            Source::Buffered(bytes) => {
                let data = std::mem::take(bytes);
                this.source = Source::Done;
                this.progress.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                this.progress.finish();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Source::Streaming(inner) => {
                let res = ready!(Pin::new(&mut *inner).poll_frame(cx));
                match &res {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            this.progress.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        // hyper stops polling once the body reports its end (Content-Length reached), so the
                        // last frame, not a trailing `None`, is when the request has been sent.
                        if inner.is_end_stream() {
                            this.progress.finish();
                        }
                    }
                    Some(Err(_)) => {
                        this.progress.client_failed.store(true, Ordering::Relaxed);
                        this.progress.finish();
                    }
                    None => this.progress.finish(),
                }
                Poll::Ready(res)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Done => true,
            Source::Buffered(b) => b.is_empty(),
            Source::Streaming(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Done => SizeHint::with_exact(0),
            Source::Buffered(b) => SizeHint::with_exact(b.len() as u64),
            Source::Streaming(inner) => inner.size_hint(),
        }
    }
}

/// Told how a relayed response body ended. Implemented by the forwarder (pool return, logging, counters).
pub trait BodyObserver: Send + 'static {
    /// The body was read to its end; the connection may be reused.
    fn complete(self: Box<Self>, bytes: u64);
    /// The body failed mid-stream (`stalled`: no byte came for that long).
    fn failed(self: Box<Self>, bytes: u64, stalled: Option<Duration>, error: Option<&hyper::Error>);
    /// The client went away before the body ended.
    fn abandoned(self: Box<Self>, bytes: u64);
}

/// The target's response body on its way to the client.
pub struct RelayBody {
    inner: Incoming,
    observer: Option<Box<dyn BodyObserver>>,
    bytes: u64,
    stall: Duration,
    /// Armed the first time the target makes the client wait; most small bodies never need it.
    stall_timer: Option<Pin<Box<Sleep>>>,
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        if let Some(obs) = self.observer.take() {
            obs.abandoned(self.bytes);
        }
    }
}

impl RelayBody {
    pub fn new(inner: Incoming, observer: Box<dyn BodyObserver>, stall: Duration) -> Self {
        let mut body = Self { inner, observer: Some(observer), bytes: 0, stall, stall_timer: None };
        if body.inner.is_end_stream()
            && let Some(obs) = body.observer.take()
        {
            obs.complete(0);
        }
        body
    }
}

/// The body relayed from the target stopped producing bytes for longer than the stall timeout.
#[derive(Debug)]
pub struct Stalled(pub Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "target sent no body bytes for {:?}", self.0)
    }
}

impl StdError for Stalled {}

impl Body for RelayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let res = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let stall = this.stall;
                let timer = this.stall_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    if let Some(obs) = this.observer.take() {
                        obs.failed(this.bytes, Some(this.stall), None);
                    }
                    return Poll::Ready(Some(Err(Box::new(Stalled(this.stall)))));
                }
                return Poll::Pending;
            }
            Poll::Ready(res) => res,
        };
        match res {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if let Some(timer) = this.stall_timer.as_mut() {
                    timer.as_mut().reset(Instant::now() + this.stall);
                }
                if this.inner.is_end_stream()
                    && let Some(obs) = this.observer.take()
                {
                    obs.complete(this.bytes);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                if let Some(obs) = this.observer.take() {
                    obs.failed(this.bytes, None, Some(&e));
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            None => {
                if let Some(obs) = this.observer.take() {
                    obs.complete(this.bytes);
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Every response body the gateway sends to clients.
pub enum ProxyBody {
    Relay(RelayBody),
    Full(Option<Bytes>),
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::Full((!bytes.is_empty()).then_some(bytes))
    }

    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Relay(b) => Pin::new(b).poll_frame(cx),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Relay(b) => b.is_end_stream(),
            ProxyBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Relay(b) => b.size_hint(),
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
