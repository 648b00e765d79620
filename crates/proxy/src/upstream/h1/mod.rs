//! waygate's own HTTP/1.1 client exchange on an upstream connection: the request is written and the response
//! head read by the request's own task, with no connection task, dispatcher or channel between them (replacing
//! hyper's client took the gateway from 58.0k to 49.4k instructions per request under callgrind). Every failure comes out
//! as evidence the catalogue classifies: which phase, the io error, what was wrong with the head or body, and
//! whether any byte of the request reached the socket (an unsent request may go to another target).
//!
//! - [`head`]: request head encoding and body framing; response head parsing (httparse) and RFC 9112 §6.3.
//! - [`chunked`]: the chunked coding, decoded from the read buffer.
//! - [`Conn`]: the transport with its read and write buffers; [`Conn::send`] writes a request and awaits the
//!   final response head (while the request body streams, an early response or a close is seen at once);
//!   [`Conn::poll_body`] reads the response body by its framing.

pub mod head;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use http_body::{Body as _, Frame};
use tokio::time::Sleep;
use waygate_faults::{Cause, HttpEvidence, Phase};

use crate::body::UpstreamRequestBody;
use crate::wire::chunked::{Chunked, Step};
use crate::wire::out::{Encoder, Out};
pub use head::{ExtraFields, Framing, Parsed, RequestFraming, ResponseHead};

use super::AttemptFailure;
use super::liveness::Liveness;
use super::transport::Transport;

/// First read size; doubled while reads fill the buffer, up to [`MAX_READ`].
const MIN_READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;

/// One upstream HTTP/1.1 connection: its transport and buffers. Owned by the request using it, or parked.
#[derive(Debug)]
pub struct Conn {
    io: Transport,
    rbuf: BytesMut,
    read_size: usize,
    out: Out,
}

/// How an exchange failed: the evidence, and what that means for sending the request again.
#[derive(Debug)]
pub struct SendError {
    /// Phase, io error, HTTP fault or timer; the caller adds the connection's snapshot. Boxed: failures are
    /// rare, and every exchange's result would otherwise be as large as the evidence.
    pub failure: Box<AttemptFailure>,
    /// Nothing of the request reached the socket and a streamed body was not touched: it may be sent again.
    pub unsent: bool,
    /// The client's own body failed: the client went away mid-upload (ClientClosedRequest), or sent a body
    /// its framing does not allow (ClientRequestMalformed).
    pub client_failed: Option<Cause>,
}

impl From<AttemptFailure> for SendError {
    fn from(failure: AttemptFailure) -> Self {
        Self { failure: Box::new(failure), unsent: false, client_failed: None }
    }
}

impl SendError {
    fn io(phase: Phase, err: io::Error) -> Self {
        AttemptFailure::from_io(phase, err).into()
    }

    fn http(http: HttpEvidence) -> Self {
        AttemptFailure { http: Some(http), ..AttemptFailure::new(Phase::AwaitHeaders) }.into()
    }

    fn client_failed(cause: Cause) -> Self {
        Self { client_failed: Some(cause), ..AttemptFailure::new(Phase::SendRequest).into() }
    }
}

/// A final response head, and whether the whole request was written before it came.
#[derive(Debug)]
pub struct Response {
    pub head: ResponseHead,
    /// The target answered before the request body was sent whole: the connection cannot be reused.
    pub request_complete: bool,
}

/// The request to send: its head encoded for the target once, before the first attempt ([`Request::new`]),
/// so the client's request head can be let go before the exchange and every attempt writes the same bytes.
#[derive(Debug)]
pub struct Request {
    head: Bytes,
    head_request: bool,
    framing: RequestFraming,
    /// It asks to switch protocols (`Upgrade`): a `101` is its final answer ([`head::parse_response_to`]).
    upgrade: bool,
}

impl Request {
    /// `target` is the origin form (path and query); `extra` adds (and replaces) fields after `headers`.
    pub fn new(
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        extra: &dyn ExtraFields,
        framing: RequestFraming,
    ) -> Self {
        let mut head = BytesMut::new();
        head::encode_request(method, target, headers, extra, &mut head);
        Self { head: head.freeze(), head_request: *method == Method::HEAD, framing, upgrade: false }
    }

    /// The request asks the target to switch protocols: its `101` ends the exchange, and the connection is
    /// then the caller's to tunnel ([`Conn::upgraded`]).
    pub fn upgrading(mut self) -> Self {
        self.upgrade = true;
        self
    }
}

/// The deadline of a request the target stops taking: one timer, armed the first time the target's socket is
/// full, and re-armed only when it fires early because the target took bytes since (the use's byte counter
/// moved, noted with the time it was seen to): a blocked write costs a counter read, never a timer reset.
#[derive(Default)]
struct SendStall {
    timer: Option<Pin<Box<Sleep>>>,
    /// Request bytes the target had taken, and when that count was first seen.
    taken: Option<(u64, tokio::time::Instant)>,
}

impl SendStall {
    fn poll<T>(&mut self, timeout: Duration, written: u64, cx: &mut Context<'_>) -> Poll<Result<T, SendError>> {
        let since = match self.taken {
            Some((seen, since)) if seen == written => since,
            _ => {
                let now = tokio::time::Instant::now();
                self.taken = Some((written, now));
                now
            }
        };
        let deadline = since + timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            ready!(timer.as_mut().poll(cx));
            if tokio::time::Instant::now() >= deadline {
                return Poll::Ready(Err(AttemptFailure::timeout(Phase::SendRequest, timeout).into()));
            }
            timer.as_mut().reset(deadline);
        }
    }
}

impl Conn {
    pub fn new(io: Transport) -> Self {
        Self { io, rbuf: BytesMut::new(), read_size: MIN_READ, out: Out::default() }
    }

    /// While idle: resolves when the target sends anything or hangs up (a FIN, an RST, a late byte, a TLS
    /// alert), without consuming it; registers `cx` for that moment otherwise.
    pub fn poll_idle_event(&self, cx: &mut Context<'_>) -> Poll<Liveness> {
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        self.io.tcp().poll_peek(cx, &mut buf).map(|peeked| match peeked {
            Ok(0) => Liveness::Closed,
            Ok(_) => Liveness::Unexpected,
            Err(_) => Liveness::Reset,
        })
    }

    /// At checkout: what the runtime already knows about the idle socket, without waiting. A peek is made only
    /// if the socket is marked readable (an event not yet handled by the pool's watcher); otherwise the
    /// connection is taken as alive without a syscall. Nothing is registered: the watcher's waker stays on the
    /// socket until the exchange's first read replaces it (registering a no-op waker here, and dropping the
    /// watcher's, cost 327 instructions a request).
    pub fn idle_event_seen(&self) -> Liveness {
        let tcp = self.io.tcp();
        let peeked = tcp.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [std::mem::MaybeUninit::uninit()];
            socket2::SockRef::from(tcp).peek(&mut byte)
        });
        match peeked {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Liveness::Alive,
            Ok(0) => Liveness::Closed,
            Ok(_) => Liveness::Unexpected,
            Err(_) => Liveness::Reset,
        }
    }

    /// Bytes the target sent that no exchange asked for (while parked, or after a response): such a
    /// connection must not carry another request.
    pub fn has_unread(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Sends `req` with `body`, then awaits the final response head for at most `response_timeout` after the
    /// request was written whole (ALB's target processing time). `bytes_written` reads the connection's
    /// counter of this use: zero when a failure left the request unsent.
    pub async fn send(
        &mut self,
        req: &Request,
        body: &mut UpstreamRequestBody,
        response_timeout: Duration,
        bytes_written: impl Fn() -> u64 + Sync,
    ) -> Result<Response, SendError> {
        self.out.buf.clear();
        self.out.buf.extend_from_slice(&req.head);
        let mut enc = match req.framing {
            RequestFraming::Empty => Encoder::Done,
            RequestFraming::Length(n) => Encoder::Length(n),
            RequestFraming::Chunked => Encoder::Chunked,
        };
        // A body read whole already goes out with the head, in one write.
        if enc != Encoder::Done
            && let Some(bytes) = body.take_buffered()
        {
            self.out.data(&mut enc, bytes);
            self.out.finish(&mut enc);
        }
        let (head_request, upgrade) = (req.head_request, req.upgrade);
        let mut touched = false;
        // A target that takes no request bytes for response_timeout fails the attempt as one that does not answer
        // does (TargetResponseTimeout), instead of holding both connections for as long as it waits.
        let mut stall = SendStall::default();
        let sent = poll_fn(|cx| match self.poll_send(cx, body, &mut enc, &mut touched, head_request, upgrade) {
            Poll::Pending if !self.out.is_empty() => stall.poll(response_timeout, bytes_written(), cx),
            polled => polled,
        })
        .await;
        let unsent = |e: SendError| SendError { unsent: !touched && bytes_written() == 0, ..e };
        if let Some(head) = sent.map_err(unsent)? {
            return Ok(Response { head, request_complete: false });
        }
        match tokio::time::timeout(response_timeout, poll_fn(|cx| self.poll_head(cx, head_request, upgrade))).await {
            Ok(Ok(head)) => Ok(Response { head, request_complete: true }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AttemptFailure::timeout(Phase::AwaitHeaders, response_timeout).into()),
        }
    }

    /// Writes the request out, streaming its body; returns a final head if the target answered first.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        body: &mut UpstreamRequestBody,
        enc: &mut Encoder,
        touched: &mut bool,
        head_request: bool,
        upgrade: bool,
    ) -> Poll<Result<Option<ResponseHead>, SendError>> {
        let fail = |e: io::Error| SendError::io(Phase::SendRequest, e);
        loop {
            let mut progress = false;
            match self.out.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(fail(e))),
                Poll::Pending => {}
            }
            let drained = self.out.is_empty();
            if drained && *enc != Encoder::Done {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        *touched = true;
                        progress = true;
                        match frame.into_data() {
                            Ok(data) => self.out.data(enc, data),
                            Err(frame) => {
                                if let (Encoder::Chunked, Ok(trailers)) = (*enc, frame.into_trailers()) {
                                    self.out.trailers(enc, &trailers);
                                }
                            }
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(SendError::client_failed(e.0))),
                    Poll::Ready(None) => {
                        *touched = true;
                        progress = true;
                        if let Encoder::Length(n) = *enc
                            && n > 0
                        {
                            // The client's body ended short of its Content-Length.
                            return Poll::Ready(Err(SendError::client_failed(Cause::ClientClosedRequest)));
                        }
                        self.out.finish(enc);
                    }
                    Poll::Pending => {}
                }
            }
            if *enc == Encoder::Done && self.out.is_empty() {
                return match self.out.poll_flush(&mut self.io, cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(None)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(fail(e))),
                    Poll::Pending => Poll::Pending,
                };
            }
            // While the body streams, the target may answer early (413, 401...) or hang up.
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(SendError::http(HttpEvidence::ClosedBeforeHead))),
                Poll::Ready(Ok(_)) => {
                    progress = true;
                    match self.parse_head(head_request, upgrade) {
                        Ok(Some(head)) => return Poll::Ready(Ok(Some(head))),
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(fail(e))),
                Poll::Pending => {}
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Reads the response head, skipping interim responses.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        head_request: bool,
        upgrade: bool,
    ) -> Poll<Result<ResponseHead, SendError>> {
        if let Some(head) = self.parse_head(head_request, upgrade)? {
            return Poll::Ready(Ok(head));
        }
        loop {
            match ready!(self.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(Err(SendError::http(HttpEvidence::ClosedBeforeHead))),
                Ok(_) => {
                    if let Some(head) = self.parse_head(head_request, upgrade)? {
                        return Poll::Ready(Ok(head));
                    }
                }
                Err(e) => return Poll::Ready(Err(SendError::io(Phase::AwaitHeaders, e))),
            }
        }
    }

    /// A final head from the read buffer, if it holds one whole.
    fn parse_head(&mut self, head_request: bool, upgrade: bool) -> Result<Option<ResponseHead>, SendError> {
        while !self.rbuf.is_empty() {
            match head::parse_response_to(&mut self.rbuf, head_request, upgrade, super::MAX_RESPONSE_HEAD) {
                Ok(Parsed::Partial) => return Ok(None),
                Ok(Parsed::Interim) => {}
                Ok(Parsed::Final(head)) => return Ok(Some(head)),
                Err(http) => return Err(SendError::http(http)),
            }
        }
        Ok(None)
    }

    /// After a `101 Switching Protocols`: the transport, now carrying the protocol switched to, and the bytes of
    /// it the target sent behind its 101 (read with the head), which come first. The connection is never
    /// reused after this ([`Conn::has_unread`] aside, its exchange did not complete).
    pub fn upgraded(&mut self) -> (&mut Transport, Bytes) {
        (&mut self.io, self.rbuf.split().freeze())
    }

    /// Reads more into `rbuf`; `Ok(0)` is the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ / 2 {
            crate::wire::reserve(&mut self.rbuf, self.read_size);
        }
        let room = self.rbuf.capacity() - self.rbuf.len();
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf))?;
        if n == room && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// The next frame of a response body framed by `state`; `None` at its end.
    pub fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        state: &mut BodyState,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            match state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(left) => {
                    if !self.rbuf.is_empty() {
                        let take = usize::try_from(*left).unwrap_or(usize::MAX).min(self.rbuf.len());
                        *left -= take as u64;
                        if *left == 0 {
                            *state = BodyState::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(self.rbuf.split_to(take).freeze()))));
                    }
                }
                BodyState::Close => {
                    if !self.rbuf.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(self.rbuf.split().freeze()))));
                    }
                }
                BodyState::Chunked(dec) => match dec.decode(&mut self.rbuf) {
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::Trailers(mut t)) => {
                        crate::wire::strip_forbidden_trailers(&mut t);
                        *state = BodyState::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(t))));
                    }
                    Ok(Step::End) => {
                        *state = BodyState::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Step::NeedMore) => {}
                    Err(http) => return Poll::Ready(Some(Err(BodyError { io: None, http }))),
                },
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) if matches!(state, BodyState::Close) => {
                    *state = BodyState::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the target closed the connection mid-body");
                    return Poll::Ready(Some(Err(BodyError { io: Some(eof), http: HttpEvidence::BodyIncomplete })));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(BodyError { io: Some(e), http: HttpEvidence::BodyIncomplete }))),
            }
        }
    }
}

/// Where a response body's reading stands.
#[derive(Debug)]
pub enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

impl BodyState {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(Chunked::default()),
            Framing::Close => Self::Close,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Done => Some(0),
            Self::Chunked(_) | Self::Close => None,
        }
    }
}

/// A response body that failed mid-stream.
#[derive(Debug)]
pub struct BodyError {
    pub io: Option<io::Error>,
    pub http: HttpEvidence,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.io {
            Some(io) => write!(f, "{io}"),
            None => f.write_str("invalid chunked framing"),
        }
    }
}

impl std::error::Error for BodyError {}

impl BodyError {
    /// The HTTP/2 error code the target reset its stream with, when that is what ended the body.
    pub fn reset_code(&self) -> Option<u32> {
        let reset = self.io.as_ref()?.get_ref()?.downcast_ref::<crate::upstream::h2::stream::TargetReset>()?;
        Some(reset.0)
    }
}
