//! One API call over an [`Upstream`]: a buffered request out, the whole (bounded) response body in. The Invoke
//! API and STS answer with a document, not a stream, so the body is read whole here, and the connection goes
//! back to the pool once it was. Failures come out as [`AttemptFailure`]s carrying the connection's snapshot,
//! exactly as a proxied request's do.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use waygate_faults::Phase;

use crate::body::{RequestProgress, UpstreamRequestBody};
use crate::upstream::h1::{self, BodyState};
use crate::upstream::{AttemptFailure, Upstream, failure, session};

/// A whole answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The exchange failed: the evidence with the connection's snapshot; `unsent`: no request byte reached the
    /// socket; `reused`: the connection came from the pool.
    Failed { failure: Box<AttemptFailure>, unsent: bool, reused: bool },
    /// The answer's body exceeded the limit (the connection is closed, the rest unread).
    TooLarge { status: StatusCode, headers: HeaderMap },
}

impl CallError {
    /// A reused connection found closed before any answer byte, with nothing sent or an idempotent request:
    /// worth one more try on a fresh connection (FAULTS.md's keep-alive race).
    pub fn keep_alive_race(&self) -> bool {
        match self {
            Self::Failed { failure, reused, .. } => {
                *reused
                    && failure.conn.as_ref().is_some_and(|c| c.attempt_bytes_read == 0)
                    && failure.timed_out.is_none()
            }
            Self::TooLarge { .. } => false,
        }
    }
}

/// Sends `request` with `payload` on a pooled connection (a fresh one when `fresh`), and reads the answer whole
/// within `timeout` (after the head's own `timeout`), `limit` bytes of body at most.
pub async fn call(
    upstream: &Upstream,
    request: &session::Request,
    payload: Bytes,
    timeout: Duration,
    limit: usize,
    fresh: bool,
) -> Result<Reply, CallError> {
    let leased = if fresh { upstream.connect().await } else { upstream.lease().await };
    let mut lease = leased.map_err(|f| CallError::Failed { failure: Box::new(f), unsent: true, reused: false })?;
    let mut body = UpstreamRequestBody::buffered(payload, Arc::new(RequestProgress::default()));
    let resp = match lease.send(request, &mut body, timeout).await {
        Ok(resp) => resp,
        Err(e) => {
            let failure = Box::new((*e.failure).with_conn(lease.snapshot()));
            let reused = lease.reused;
            lease.abort();
            return Err(CallError::Failed { failure, unsent: e.unsent, reused });
        }
    };
    let h1::Response { head, request_complete } = resp;
    let mut state = BodyState::new(head.framing);
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(frame) = poll_fn(|cx| lease.conn.session.poll_body(cx, &mut state)).await {
            let frame = frame.map_err(|e| {
                let mut f = AttemptFailure::new(Phase::StreamBody);
                f.http = Some(e.http);
                f.io = e.io.as_ref().map(failure::copy_io);
                f
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Ok(false);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok::<_, AttemptFailure>(true)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(true)) => {
            if head.keep_alive && request_complete && state.is_done() {
                upstream.release(lease);
            } else {
                lease.abort();
            }
            Ok(Reply { status: head.status, headers: head.fields.into_map(), body: buf.freeze() })
        }
        Ok(Ok(false)) => {
            lease.abort();
            Err(CallError::TooLarge { status: head.status, headers: head.fields.into_map() })
        }
        Ok(Err(f)) => {
            let failure = Box::new(f.with_conn(lease.snapshot()));
            lease.abort();
            Err(CallError::Failed { failure, unsent: false, reused: false })
        }
        Err(_) => {
            let failure = Box::new(AttemptFailure::timeout(Phase::StreamBody, timeout).with_conn(lease.snapshot()));
            lease.abort();
            Err(CallError::Failed { failure, unsent: false, reused: false })
        }
    }
}
