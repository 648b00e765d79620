//! The protocol a target connection speaks, behind one interface for the pool and the request path: HTTP/1.1
//! ([`h1`]: a connection leased whole, one request at a time) and HTTP/2 ([`h2`]: a stream on a connection
//! shared by many requests). The pool, the liveness checks and the relay ask a [`Session`], never a
//! protocol's connection, so a new protocol is a variant here and a module of its own, not a change through
//! every layer.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{self, Either};
use http_body::Frame;

use super::h1::{self, BodyError, BodyState};
use super::h2;
use super::liveness::Liveness;
use crate::body::UpstreamRequestBody;

/// One target connection's protocol state, as a request holds it.
#[derive(Debug)]
pub enum Session {
    /// Exclusive: one request at a time, leased whole.
    H1(h1::Conn),
    /// One stream of a shared connection.
    H2(h2::Stream),
}

/// A request encoded for the protocol its target group speaks, once, before the first attempt.
#[derive(Debug)]
pub enum Request {
    H1(h1::Request),
    H2(h2::Request),
}

impl Session {
    /// While idle: resolves when the target sends anything or hangs up, without consuming it. (HTTP/2 streams
    /// are never parked: their connection's own task watches it.)
    pub fn poll_idle_event(&self, cx: &mut Context<'_>) -> Poll<Liveness> {
        match self {
            Session::H1(c) => c.poll_idle_event(cx),
            Session::H2(_) => Poll::Pending,
        }
    }

    /// At checkout: what the runtime already knows about the idle connection, without waiting.
    pub fn idle_event_seen(&self) -> Liveness {
        match self {
            Session::H1(c) => c.idle_event_seen(),
            Session::H2(s) if s.shared().is_closing() => Liveness::Closed,
            Session::H2(_) => Liveness::Alive,
        }
    }

    /// Whether the lease owns the whole connection (HTTP/1), so that closing it or parking it in the pool is the
    /// lease's decision; a stream's connection carries other requests and is its own task's to close.
    pub fn is_exclusive(&self) -> bool {
        matches!(self, Session::H1(_))
    }

    /// Whether another request may follow the one that just completed (nothing unasked-for was received).
    pub fn reusable(&self) -> bool {
        match self {
            Session::H1(c) => !c.has_unread(),
            Session::H2(_) => true,
        }
    }

    /// Sends a request and awaits its final response head; `bytes_written` reads this use's counter (HTTP/1;
    /// a stream counts its own).
    pub fn send<'a>(
        &'a mut self,
        req: &'a Request,
        body: &'a mut UpstreamRequestBody,
        response_timeout: Duration,
        bytes_written: impl Fn() -> u64 + Send + Sync + 'a,
    ) -> impl Future<Output = Result<h1::Response, h1::SendError>> + Send + 'a {
        match (self, req) {
            (Session::H1(c), Request::H1(r)) => Either::Left(c.send(r, body, response_timeout, bytes_written)),
            (Session::H2(s), Request::H2(r)) => Either::Right(Either::Left(s.send(r, body, response_timeout))),
            // The group's protocol decides both the request's encoding and its targets' sessions, from the same
            // snapshot: a mismatch is the gateway's bug, failed before any byte is written.
            _ => Either::Right(Either::Right(future::ready(Err(h1::SendError {
                unsent: true,
                ..super::AttemptFailure::new(waygate_faults::Phase::SendRequest).into()
            })))),
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
            Session::H2(s) => s.poll_body(cx, state),
        }
    }
}
