//! Response bodies of the test backend, generated on demand so nothing large is ever buffered.
//!
//! Every data frame is counted into [`crate::Stats::body_bytes_sent`] as hyper pulls it, which is the
//! moment it is written to the connection. `/bytes/{n}` content is a deterministic pattern
//! ([`pattern`]) so a test can check what came through the gateway byte for byte.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::running::Shared;

/// Size of each chunk `/bytes/{n}` writes.
pub const CHUNK: usize = 64 * 1024;
const PATTERN: &[u8; 16] = b"0123456789abcdef";

/// The first `n` bytes `/bytes/{n}` sends: `0123456789abcdef` repeated.
pub fn pattern(n: usize) -> Vec<u8> {
    PATTERN.iter().copied().cycle().take(n).collect()
}

fn chunk(len: usize) -> Bytes {
    static FULL: OnceLock<Bytes> = OnceLock::new();
    FULL.get_or_init(|| Bytes::from(pattern(CHUNK))).slice(..len)
}

type Hold = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Kind {
    Full(Option<Bytes>),
    /// `/bytes/{n}`: `remaining` pattern bytes, optionally pausing after the first chunk.
    Pattern {
        remaining: u64,
        exact: bool,
        hold: Option<Hold>,
        first_sent: bool,
    },
    /// `/trailers`: one data frame, then the trailers.
    Trailers {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
}

/// The backend's response body.
pub(crate) struct RespBody {
    kind: Kind,
    shared: Arc<Shared>,
}

impl RespBody {
    pub(crate) fn full(shared: &Arc<Shared>, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let data = (!data.is_empty()).then_some(data);
        Self { kind: Kind::Full(data), shared: shared.clone() }
    }

    /// `exact` advertises the length (the route also sets Content-Length); `hold` pauses after the
    /// first chunk until it resolves.
    pub(crate) fn pattern(shared: &Arc<Shared>, n: u64, exact: bool, hold: Option<Hold>) -> Self {
        if n == 0 {
            shared.stats.add_stream_completed();
        }
        Self { kind: Kind::Pattern { remaining: n, exact, hold, first_sent: false }, shared: shared.clone() }
    }

    pub(crate) fn trailers(shared: &Arc<Shared>, data: &'static str, trailers: HeaderMap) -> Self {
        Self {
            kind: Kind::Trailers { data: Some(Bytes::from_static(data.as_bytes())), trailers: Some(trailers) },
            shared: shared.clone(),
        }
    }

    fn sent(&self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = frame.data_ref() {
            self.shared.stats.add_sent(data.len());
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        match &mut this.kind {
            Kind::Full(data) => match data.take() {
                Some(data) => this.sent(Frame::data(data)),
                None => Poll::Ready(None),
            },
            Kind::Pattern { remaining, hold, first_sent, .. } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                if *first_sent && let Some(h) = hold {
                    ready!(h.as_mut().poll(cx));
                    *hold = None;
                }
                let len = (*remaining).min(CHUNK as u64) as usize;
                *remaining -= len as u64;
                *first_sent = true;
                let done = *remaining == 0;
                let poll = this.sent(Frame::data(chunk(len)));
                // Counted on the last chunk: hyper may not poll again once Content-Length is satisfied.
                if done {
                    this.shared.stats.add_stream_completed();
                }
                poll
            }
            Kind::Trailers { data, trailers } => {
                if let Some(data) = data.take() {
                    return this.sent(Frame::data(data));
                }
                match trailers.take() {
                    Some(trailers) => {
                        this.shared.stats.add_stream_completed();
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Pattern { remaining, .. } => *remaining == 0,
            Kind::Trailers { data, trailers } => data.is_none() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Pattern { remaining, exact: true, .. } => SizeHint::with_exact(*remaining),
            _ => SizeHint::default(),
        }
    }
}
