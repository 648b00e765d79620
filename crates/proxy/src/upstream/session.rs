//! The protocol a target connection speaks, behind one interface for the pool and the request path: HTTP/1.1
//! now ([`h1`]), HTTP/2 next (a shared, multiplexed session beside the exclusive HTTP/1 ones). The pool, the
//! liveness checks and the relay ask a [`Session`], never a protocol's connection, so a new protocol is a
//! variant here and a module of its own, not a change through every layer.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;

use super::h1::{self, BodyError, BodyState};
use super::liveness::Liveness;
use crate::body::UpstreamRequestBody;

/// One target connection's protocol state.
#[derive(Debug)]
pub enum Session {
    /// Exclusive: one request at a time, leased whole.
    H1(h1::Conn),
}

impl Session {
    /// While idle: resolves when the target sends anything or hangs up, without consuming it.
    pub fn poll_idle_event(&self, cx: &mut Context<'_>) -> Poll<Liveness> {
        match self {
            Session::H1(c) => c.poll_idle_event(cx),
        }
    }

    /// At checkout: what the runtime already knows about the idle connection, without waiting.
    pub fn idle_event_seen(&self) -> Liveness {
        match self {
            Session::H1(c) => c.idle_event_seen(),
        }
    }

    /// Whether another request may follow the one that just completed (nothing unasked-for was received).
    pub fn reusable(&self) -> bool {
        match self {
            Session::H1(c) => !c.has_unread(),
        }
    }

    /// Sends a request and awaits its final response head; `bytes_written` reads this use's counter.
    pub fn send<'a>(
        &'a mut self,
        req: &'a h1::Request,
        body: &'a mut UpstreamRequestBody,
        response_timeout: Duration,
        bytes_written: impl Fn() -> u64 + Send + Sync + 'a,
    ) -> impl Future<Output = Result<h1::Response, h1::SendError>> + Send + 'a {
        match self {
            Session::H1(c) => c.send(req, body, response_timeout, bytes_written),
        }
    }

    /// The next frame of the response body.
    pub fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        state: &mut BodyState,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self {
            Session::H1(c) => c.poll_body(cx, state),
        }
    }
}
