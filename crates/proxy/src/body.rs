//! Bodies streamed through the gateway, never buffered whole.
//!
//! - [`UpstreamRequestBody`]: the client's body on its way to the target, counted (a failure of the client's
//!   side reaches the exchange as the body's error).
//! - [`ProxyBody`]: what the client receives: the target's body, read from the upstream connection by its
//!   framing (which hands the connection back to the pool once fully read, and fails loudly if cut short or
//!   stalled), or a body the gateway generated.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use waygate_faults::Cause;
use waygate_telemetry::debug::BodyTap;

use crate::server::{ClientBody, ClientBodyError};
use crate::upstream::Lease;
use crate::upstream::h1::{BodyError, BodyState};
use crate::wire::fields::WireFields;

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Progress of the request body towards the target, shared with the access-log record.
#[derive(Debug, Default)]
pub struct RequestProgress {
    bytes: AtomicU64,
    /// A debug session's copy of the body's first bytes (`None` unless one captures bodies).
    tap: Option<Arc<BodyTap>>,
}

impl RequestProgress {
    /// Progress whose bytes also go to `tap`.
    pub fn tapped(tap: Option<Arc<BodyTap>>) -> Self {
        Self { bytes: AtomicU64::new(0), tap }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn sent(&self, data: &[u8]) {
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        if let Some(tap) = &self.tap {
            tap.push(data);
        }
    }

    /// The body's last byte was handed to the target's connection (a debug session's `request_body` phase).
    fn ended(&self) {
        if let Some(tap) = &self.tap {
            tap.end();
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
    Streaming(ClientBody),
    Buffered(Bytes),
}

impl UpstreamRequestBody {
    /// Wraps the client's body; an empty one is complete at once.
    pub fn new(inner: ClientBody, progress: Arc<RequestProgress>) -> Self {
        if inner.is_end_stream() {
            return Self::empty(progress);
        }
        Self { source: Source::Streaming(inner), progress }
    }

    pub fn empty(progress: Arc<RequestProgress>) -> Self {
        Self { source: Source::Done, progress }
    }

    /// A body already read whole (replayable: build another with the same bytes).
    pub fn buffered(bytes: Bytes, progress: Arc<RequestProgress>) -> Self {
        if bytes.is_empty() {
            return Self::empty(progress);
        }
        Self { source: Source::Buffered(bytes), progress }
    }

    /// Takes what is left of the body, leaving an empty one (its progress is shared).
    pub fn take(&mut self) -> Self {
        let progress = self.progress.clone();
        std::mem::replace(self, Self::empty(progress))
    }

    /// The whole body at once, when it was read whole (counted as sent).
    pub fn take_buffered(&mut self) -> Option<Bytes> {
        let Source::Buffered(bytes) = &mut self.source else { return None };
        let data = std::mem::take(bytes);
        self.source = Source::Done;
        self.progress.sent(&data);
        self.progress.ended();
        Some(data)
    }
}

impl Body for UpstreamRequestBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        match &mut this.source {
            Source::Done => Poll::Ready(None),
            Source::Buffered(bytes) => {
                let data = std::mem::take(bytes);
                this.source = Source::Done;
                this.progress.sent(&data);
                this.progress.ended();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Source::Streaming(inner) => {
                let res = ready!(Pin::new(&mut *inner).poll_frame(cx));
                match &res {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            this.progress.sent(data);
                        }
                        if inner.is_end_stream() {
                            this.progress.ended();
                        }
                    }
                    None => this.progress.ended(),
                    Some(Err(_)) => {}
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

/// Told how a relayed response body ended, with the connection it came on. Implemented by the forwarder
/// (pool return, logging, counters).
pub trait BodyObserver: Send + 'static {
    /// The body was read to its end; the connection may be reused if `reusable`. `grpc_status`: the
    /// `grpc-status` its trailers carried.
    fn complete(self: Box<Self>, bytes: u64, lease: Lease, reusable: bool, grpc_status: Option<u8>);
    /// The body failed mid-stream (`stalled`: no byte came for that long).
    fn failed(self: Box<Self>, bytes: u64, stalled: Option<Duration>, error: Option<&BodyError>, lease: Lease);
    /// The client will not take the rest of the body: it went away (ClientClosedRequest), or stopped reading
    /// (ClientIdleTimeout).
    fn abandoned(self: Box<Self>, bytes: u64, lease: Lease, cause: Cause);
}

/// The target's response body on its way to the client, read from the leased connection.
pub struct RelayBody {
    /// Present until the body ends; then handed to the observer.
    lease: Option<Lease>,
    state: BodyState,
    /// The connection may carry another request once this body is read whole.
    reusable: bool,
    observer: Option<Box<dyn BodyObserver>>,
    bytes: u64,
    stall: Duration,
    /// Armed the first time the target makes the client wait; most small bodies never need it.
    stall_timer: Option<Pin<Box<Sleep>>>,
    /// A failure held back for one poll, so that what the client was already given is flushed first.
    failure: Option<BodyError>,
    /// The `grpc-status` of the trailers, once they passed.
    grpc_status: Option<u8>,
    /// A debug session's copy of the body's first bytes (`None` unless one captures bodies).
    tap: Option<Arc<BodyTap>>,
    /// An HTTP/1 target's response fields, not merged into the response's map (see [`Self::with_target_fields`]).
    target_fields: Option<WireFields>,
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        self.abandon(Cause::ClientClosedRequest);
    }
}

impl RelayBody {
    pub fn new(
        lease: Lease,
        state: BodyState,
        reusable: bool,
        observer: Box<dyn BodyObserver>,
        stall: Duration,
    ) -> Self {
        let mut body = Self {
            lease: Some(lease),
            state,
            reusable,
            observer: Some(observer),
            bytes: 0,
            stall,
            stall_timer: None,
            failure: None,
            grpc_status: None,
            tap: None,
            target_fields: None,
        };
        if body.state.is_done() {
            body.end();
        }
        body
    }

    /// Copies the body's first bytes to a debug session's `tap` as they pass.
    pub fn with_tap(mut self, tap: Option<Arc<BodyTap>>) -> Self {
        self.tap = tap;
        self
    }

    /// The target's response fields as it sent them over HTTP/1, which the response's own map (the gateway's
    /// fields) does not hold: an HTTP/1 client's writer copies them as they are
    /// ([`crate::server::write::head`]), and every other reader of the response first merges them
    /// ([`ProxyBody::merge_target_fields`]). That saves a map built and dropped per relayed response.
    pub fn with_target_fields(mut self, fields: Option<WireFields>) -> Self {
        self.target_fields = fields;
        self
    }

    /// The body was read whole.
    fn end(&mut self) {
        if let (Some(obs), Some(lease)) = (self.observer.take(), self.lease.take()) {
            obs.complete(self.bytes, lease, self.reusable, self.grpc_status);
        }
    }

    /// The client will not take the rest, for `cause`: the exchange ends now (what the client was given is
    /// recorded) and the target's connection is closed. Dropping the body afterwards changes nothing.
    pub fn abandon(&mut self, cause: Cause) {
        if let (Some(obs), Some(lease)) = (self.observer.take(), self.lease.take()) {
            obs.abandoned(self.bytes, lease, cause);
        }
    }

    fn fail(&mut self, stalled: Option<Duration>, error: Option<&BodyError>) {
        if let (Some(obs), Some(lease)) = (self.observer.take(), self.lease.take()) {
            obs.failed(self.bytes, stalled, error, lease);
        }
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
        if let Some(e) = this.failure.take() {
            this.fail(None, Some(&e));
            return Poll::Ready(Some(Err(Box::new(e))));
        }
        let Some(lease) = this.lease.as_mut() else { return Poll::Ready(None) };
        let res = match lease.conn.session.poll_body(cx, &mut this.state) {
            Poll::Pending => {
                let stall = this.stall;
                let timer = this.stall_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.fail(Some(stall), None);
                    return Poll::Ready(Some(Err(Box::new(Stalled(stall)))));
                }
                return Poll::Pending;
            }
            Poll::Ready(res) => res,
        };
        match res {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    if let Some(tap) = &this.tap {
                        tap.push(data);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.grpc_status = grpc_status(trailers);
                }
                if let Some(timer) = this.stall_timer.as_mut() {
                    timer.as_mut().reset(Instant::now() + this.stall);
                }
                if this.state.is_done() {
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                // The client's connection ends with the error, and hyper drops what it has not written yet: the
                // error waits one poll, so the status and the bytes already relayed reach the client first (the
                // access log says what they received).
                this.failure = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.state.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// The `grpc-status` field's code, when it holds one (0-255; gRPC's are 0-16).
pub fn grpc_status(headers: &http::HeaderMap) -> Option<u8> {
    grpc_code(headers.get("grpc-status")?.as_bytes())
}

/// A `grpc-status` value's code.
pub fn grpc_code(value: &[u8]) -> Option<u8> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
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

    /// The target's fields that travel with a relayed body (see [`RelayBody::with_target_fields`]).
    pub fn target_fields(&self) -> Option<&WireFields> {
        match self {
            Self::Relay(b) => b.target_fields.as_ref(),
            Self::Full(_) => None,
        }
    }

    /// Moves the target's fields that travel with the body into `headers`, for a reader that needs one map: a
    /// map sized for both, the target's fields first, then the gateway's, which replace a target's field of the
    /// same name (as `relay` does with `x-request-id`). Growing the gateway's small map instead rehashed it.
    pub fn merge_target_fields(&mut self, headers: &mut http::HeaderMap) {
        if let Self::Relay(b) = self
            && let Some(fields) = b.target_fields.take()
        {
            let mut merged = http::HeaderMap::with_capacity(fields.len() + headers.len());
            fields.append_to(&mut merged);
            merged.extend(std::mem::take(headers));
            *headers = merged;
        }
    }

    /// The client will not take the rest of this body, for `cause` (see [`RelayBody::abandon`]).
    pub fn abandon(&mut self, cause: Cause) {
        if let Self::Relay(b) = self {
            b.abandon(cause);
        }
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
