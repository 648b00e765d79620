//! One client HTTP/1 connection, as a state machine the connection's task polls: read a head, judge and parse
//! it once ([`super::head`]), hand the request to the request path, feed its body from the read buffer as the
//! request path asks for it, write the response head and stream its body, then the next request (keep-alive,
//! pipelining) or the end. The read buffer exists only while a head or body is being read, the write buffer
//! only while a response is being written: an idle keep-alive connection holds neither.
//!
//! A `101 Switching Protocols` response hands the raw connection over ([`Handover`], [`Upgraded`]), with
//! any bytes the client sent after its request in front of it.
//!
//! A client that closes while its request is in flight cancels it (the request path records 460
//! ClientClosedRequest); a head refused by the desync guard, the parser or the header timeout is answered by
//! the request path with its cause, then the connection closes.
//!
//! While an exchange waits on the client, `idle_timeout` ([`Idle`]) bounds the wait: a request body that stalls
//! fails with ClientRequestTimeout (the request path answers 408), a response the client stops reading ends
//! with ClientIdleTimeout and the connection closes, releasing the target's.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use waygate_config::DesyncMode;
use waygate_faults::Cause;

use super::body::{ClientBody, ClientBodyError, Slot};
use super::head::{self, Parsed};
use super::idle::Idle;
use super::rewind::Rewind;
use super::write;
use crate::body::ProxyBody;
use crate::guard::framing::Framing;
use crate::guard::verdict::Verdict;
use crate::wire::chunked::{Chunked, Step};
use crate::wire::out::{Encoder, Out};

/// Body bytes are read in pieces of up to this size.
const BODY_READ: usize = 16 * 1024;
/// Pipelined bytes read ahead while a request is served, at most.
const READ_AHEAD: usize = 64 * 1024;
/// The response body is not asked for more while this much is waiting to be written.
const WRITE_HIGH: usize = 64 * 1024;

/// What a connection needs to know of its listener.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: DesyncMode,
    /// From a head's first byte to its last (`request_header_timeout`).
    pub header_timeout: Duration,
    /// Bounds every wait on the client mid-exchange (`idle_timeout`). Its socket counters also name the address
    /// the client connected to: the Host of an HTTP/1.0 request without one.
    pub idle: Idle,
}

/// Serves requests on `io` with `service` until the connection ends. `rbuf` holds bytes already read.
pub struct Conn<I, S, F> {
    /// `None` once handed over after a `101 Switching Protocols`.
    io: Option<I>,
    rbuf: BytesMut,
    out: Out,
    settings: Settings,
    service: S,
    state: State<F>,
    /// Graceful shutdown: finish the exchange in progress, then close.
    closing: bool,
    /// The one timer: the head timeout while a head is read, the idle deadline while an exchange waits on the
    /// client; emptied between the two.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the next head began to arrive: stamped only while a debug session captures somewhere, for its
    /// `request_head` phase, and handed to the request path as a request extension.
    head_started: Option<std::time::Instant>,
}

/// When an HTTP/1 request's head began to arrive (the connection's accept for its first request), on requests
/// read while a debug session captures.
#[derive(Debug, Clone, Copy)]
pub struct HeadStarted(pub std::time::Instant);

enum State<F> {
    /// Between requests (a partial head may be in `rbuf`).
    Idle,
    Active(Box<Exchange<F>>),
    /// Writing what is left, then closing.
    Closing,
    /// A `101` head is being written; then the connection goes to the taker, if there is one.
    Upgrading(Option<Handover>),
    Done,
}

/// One request and its response.
struct Exchange<F> {
    /// The request path's future, until it answers.
    pending: Option<Pin<Box<F>>>,
    /// The request body still being read from the client.
    feed: Option<Feed>,
    /// The response body being written.
    writing: Option<(ProxyBody, Encoder)>,
    keep_alive: bool,
    head_request: bool,
    version: Version,
    /// A refused head: nothing after it on the connection is read.
    refused: bool,
}

/// A request body's decoding.
struct Feed {
    slot: Arc<Slot>,
    decoder: Decoder,
    expect_continue: bool,
    /// The last poll waited for the client's bytes (not for the request path to take a frame).
    starved: bool,
}

enum Decoder {
    Length(u64),
    Chunked(Chunked),
}

/// What feeding the body did.
enum Fed {
    /// A frame was handed over: the request path has it to take.
    Handed,
    /// Read whole: the connection can go on to the next request.
    Whole,
    /// Left unread, or broken: the connection cannot.
    Broken,
}

impl<I, S, F> Conn<I, S, F>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: FnMut(Request<ClientBody>, Verdict) -> F,
    F: Future<Output = Response<ProxyBody>>,
{
    pub fn new(io: I, rbuf: BytesMut, settings: Settings, service: S) -> Self {
        // The first head's bytes were read before this server existed: its reading began with the connection.
        let head_started = (!rbuf.is_empty() && waygate_telemetry::debug::capturing_anywhere())
            .then(|| settings.idle.activity.created);
        Self {
            io: Some(io),
            rbuf,
            out: Out::default(),
            settings,
            service,
            state: State::Idle,
            closing: false,
            timer: None,
            head_started,
        }
    }

    /// Ends the connection once the exchange in progress is done (at once if there is none).
    pub fn graceful_shutdown(&mut self) {
        self.closing = true;
    }

    fn start(&mut self, parsed: Parsed) {
        self.timer = None;
        let (request, verdict, framing, keep_alive, expect_continue, refused) = match parsed {
            Parsed::Partial => return,
            Parsed::Head(h) => (h.request, h.verdict, h.framing, h.keep_alive, h.expect_continue, false),
            Parsed::Refused(r) => (r.request, r.verdict, None, false, false, true),
        };
        let (mut parts, ()) = request.into_parts();
        if let Some(at) = self.head_started.take() {
            parts.extensions.insert(HeadStarted(at));
        }
        let (version, head_request) = (parts.version, parts.method == Method::HEAD);
        let (body, feed) = match framing {
            None => (ClientBody::Empty, None),
            Some(framing) => {
                let slot = Arc::new(Slot::default());
                let (decoder, len) = match framing {
                    Framing::Length(n) => (Decoder::Length(n), Some(n)),
                    Framing::Chunked => (Decoder::Chunked(Chunked::default()), None),
                };
                (
                    ClientBody::H1 { slot: slot.clone(), len },
                    Some(Feed { slot, decoder, expect_continue, starved: false }),
                )
            }
        };
        let pending = Box::pin((self.service)(Request::from_parts(parts, body), verdict));
        self.state = State::Active(Box::new(Exchange {
            pending: Some(pending),
            feed,
            writing: None,
            keep_alive,
            head_request,
            version,
            refused,
        }));
    }

    /// Idle: parse what was read, or wait for more under the head timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.closing && self.rbuf.is_empty() {
                self.state = State::Closing;
                return Poll::Ready(());
            }
            if !self.rbuf.is_empty() {
                match head::parse(&mut self.rbuf, self.settings.mode, self.settings.idle.activity.local) {
                    Parsed::Partial => {
                        let timeout = self.settings.header_timeout;
                        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        if timer.as_mut().poll(cx).is_ready() {
                            let refused = head::timed_out();
                            self.rbuf.clear();
                            self.start(refused);
                            return Poll::Ready(());
                        }
                    }
                    parsed => {
                        self.start(parsed);
                        return Poll::Ready(());
                    }
                }
            } else {
                self.rbuf = BytesMut::new();
                self.out.release();
            }
            let Some(io) = self.io.as_mut() else {
                self.state = State::Done;
                return Poll::Ready(());
            };
            let first = self.rbuf.is_empty();
            match ready!(read_small(io, &mut self.rbuf, cx)) {
                Ok(0) | Err(_) => {
                    // The client closed between requests (or mid-head, which nothing answers).
                    self.state = State::Done;
                    return Poll::Ready(());
                }
                Ok(_) if first && waygate_telemetry::debug::capturing_anywhere() => {
                    self.head_started = Some(std::time::Instant::now());
                }
                Ok(_) => {}
            }
        }
    }

    /// Drives the exchange; `Ready` when it is over (the state says what comes next).
    fn poll_exchange(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (State::Active(ex), Some(io)) = (&mut self.state, self.io.as_mut()) else {
            self.state = State::Done;
            return Poll::Ready(());
        };
        loop {
            let mut progress = false;
            if let Some(pending) = ex.pending.as_mut()
                && let Poll::Ready(resp) = pending.as_mut().poll(cx)
            {
                ex.pending = None;
                progress = true;
                let (mut parts, body) = resp.into_parts();
                if parts.status == StatusCode::SWITCHING_PROTOCOLS {
                    // The connection becomes whatever was switched to: written the head, it is handed over.
                    let handover = parts.extensions.remove::<Handover>();
                    let mut keep = false;
                    write::head(&mut self.out.buf, &parts, &body, ex.version, false, &mut keep);
                    self.state = State::Upgrading(handover);
                    return Poll::Ready(());
                }
                // A body not read whole cannot be skipped to the next request: the connection ends after this
                // response.
                if ex.feed.take().is_some() || ex.refused || self.closing {
                    ex.keep_alive = false;
                }
                let enc =
                    write::head(&mut self.out.buf, &parts, &body, ex.version, ex.head_request, &mut ex.keep_alive);
                ex.writing = Some((body, enc));
            }
            if let Some(feed) = ex.feed.as_mut() {
                match feed.poll(io, &mut self.rbuf, &mut self.out, cx) {
                    Poll::Ready(Fed::Whole) => {
                        ex.feed = None;
                        progress = true;
                    }
                    Poll::Ready(Fed::Broken) => {
                        ex.feed = None;
                        ex.keep_alive = false;
                        progress = true;
                    }
                    Poll::Ready(Fed::Handed) => progress = true,
                    Poll::Pending => {}
                }
            }
            // Whether the response body was polled until it had nothing more: it then wakes the task itself.
            let mut body_waits = false;
            if let Some((body, enc)) = ex.writing.as_mut() {
                while *enc != Encoder::Done && self.out.has_room(WRITE_HIGH) {
                    let frame = Pin::new(&mut *body).poll_frame(cx);
                    progress |= frame.is_ready();
                    body_waits = frame.is_pending();
                    match frame {
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) => self.out.data(enc, data),
                            Err(frame) => {
                                if let Ok(trailers) = frame.into_trailers() {
                                    self.out.trailers(enc, &trailers);
                                }
                            }
                        },
                        Poll::Ready(Some(Err(_))) => {
                            // The target's body broke: what was relayed goes out, then the connection is cut
                            // without a final chunk, so the client sees the response is incomplete.
                            self.state = State::Closing;
                            return Poll::Ready(());
                        }
                        Poll::Ready(None) => {
                            if matches!(enc, Encoder::Length(_)) {
                                self.state = State::Closing;
                                return Poll::Ready(());
                            }
                            self.out.finish(enc);
                        }
                        Poll::Pending => break,
                    }
                }
            }
            let flushed = match self.out.poll_flush(io, cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(_)) => {
                    self.state = State::Done;
                    return Poll::Ready(());
                }
                Poll::Pending => false,
            };
            let writing = ex.writing.as_ref().map(|(_, enc)| *enc);
            if flushed && writing == Some(Encoder::Done) && ex.feed.is_none() {
                let keep_alive = ex.keep_alive && !self.closing;
                self.state = if keep_alive { State::Idle } else { State::Closing };
                return Poll::Ready(());
            }
            // Waiting on the target, with nothing else to do and the body read whole: a close from the client
            // cancels the request; bytes of a pipelined request wait in the buffer.
            if !progress && ex.pending.is_some() && ex.feed.is_none() && !ex.refused && self.rbuf.len() < READ_AHEAD {
                let mut chunk = [MaybeUninit::<u8>::uninit(); 4096];
                let mut rb = ReadBuf::uninit(&mut chunk);
                match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                        self.state = State::Done;
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(())) => {
                        self.rbuf.extend_from_slice(rb.filled());
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => {
                        self.state = State::Done;
                        return Poll::Ready(());
                    }
                    Poll::Pending => {}
                }
            }
            // The socket took what was waiting: the body, not polled since it last gave a frame, is asked again.
            progress |= flushed && !body_waits && writing.is_some_and(|enc| enc != Encoder::Done);
            if !progress {
                // Waiting on the client (to read what is written, or to send the body) is bounded by idle_timeout.
                let starved = ex.feed.as_ref().is_some_and(|f| f.starved);
                if (!flushed || starved) && self.settings.idle.poll_expired(&mut self.timer, cx).is_ready() {
                    self.timer = None;
                    if let Some(feed) = ex.feed.take().filter(|_| ex.pending.is_some()) {
                        // The request path answers 408 with the body's error; the connection ends after it.
                        feed.slot.put(Some(Err(ClientBodyError(Cause::ClientRequestTimeout))), cx);
                        ex.keep_alive = false;
                        continue;
                    }
                    if let Some((body, _)) = ex.writing.as_mut() {
                        body.abandon(Cause::ClientIdleTimeout);
                    }
                    self.state = State::Done;
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
        }
    }
}

impl<I, S, F> Future for Conn<I, S, F>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: FnMut(Request<ClientBody>, Verdict) -> F + Unpin,
    F: Future<Output = Response<ProxyBody>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Idle => ready!(this.poll_idle(cx)),
                State::Active(_) => {
                    ready!(this.poll_exchange(cx));
                    // The idle deadline of the exchange is not the next head's timer.
                    this.timer = None;
                }
                State::Closing => {
                    // Best effort: the client may already be gone, or take nothing more (idle_timeout).
                    if let Some(io) = this.io.as_mut() {
                        match this.out.poll_flush(io, cx) {
                            Poll::Ready(Ok(())) => drop(ready!(Pin::new(io).poll_shutdown(cx))),
                            Poll::Ready(Err(_)) => {}
                            Poll::Pending => ready!(this.settings.idle.poll_expired(&mut this.timer, cx)),
                        }
                    }
                    this.state = State::Done;
                }
                State::Upgrading(_) => {
                    let Some(io) = this.io.as_mut() else { return Poll::Ready(()) };
                    let flushed = ready!(this.out.poll_flush(io, cx));
                    let State::Upgrading(handover) = std::mem::replace(&mut this.state, State::Done) else {
                        continue;
                    };
                    // Without a taker (a 101 nobody asked to tunnel) or a client gone, the connection just ends.
                    if let (Ok(()), Some(handover), Some(io)) = (flushed, handover, this.io.take()) {
                        let read_ahead = this.rbuf.split().freeze();
                        handover.send(Rewind::new(read_ahead, Box::new(io)));
                    }
                }
                State::Done => return Poll::Ready(()),
            }
        }
    }
}

/// Reads more of a head (or the first byte of the next one): a small read on the stack, copied, so that
/// waiting costs no buffer. `Ok(0)`: end of stream.
fn read_small(io: &mut (impl AsyncRead + Unpin), rbuf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); 4096];
    let mut rb = ReadBuf::uninit(&mut chunk);
    ready!(Pin::new(io).poll_read(cx, &mut rb))?;
    crate::wire::reserve(rbuf, rb.filled().len());
    rbuf.extend_from_slice(rb.filled());
    Poll::Ready(Ok(rb.filled().len()))
}

/// The connection's raw stream after a `101 Switching Protocols`, with whatever the client sent after its
/// request already in front of it.
pub type Upgraded = Rewind<Box<dyn UpgradedIo>>;

/// What an upgraded connection can do.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> UpgradedIo for T {}

/// Put in a `101` response's extensions by the request path: the connection is sent there once the head is
/// written (WebSockets and other upgrades tunnel it to the target). Extensions must be `Clone`; the first
/// clone to hand over takes the taker.
#[derive(Debug, Clone)]
pub struct Handover(Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Upgraded>>>>);

impl Handover {
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<Upgraded>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self(Arc::new(std::sync::Mutex::new(Some(tx)))), rx)
    }

    fn send(self, upgraded: Upgraded) {
        if let Some(taker) = crate::lock(&self.0).take() {
            let _ = taker.send(upgraded);
        }
    }
}

impl Feed {
    /// Hands the body frames as the request path asks for them; `Ready` once the body was read whole, or
    /// cannot be. A `100 Continue` it owes the client is queued in `out`, which the exchange writes.
    fn poll(
        &mut self,
        io: &mut (impl AsyncRead + Unpin),
        rbuf: &mut BytesMut,
        out: &mut Out,
        cx: &mut Context<'_>,
    ) -> Poll<Fed> {
        self.starved = false;
        loop {
            if self.slot.dropped() {
                return Poll::Ready(Fed::Broken);
            }
            if !self.slot.wants(cx) {
                return Poll::Pending;
            }
            let step = match &mut self.decoder {
                Decoder::Length(_) if rbuf.is_empty() => Ok(Step::NeedMore),
                Decoder::Length(left) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(rbuf.len());
                    *left -= take as u64;
                    Ok(Step::Data(rbuf.split_to(take).freeze()))
                }
                Decoder::Chunked(dec) => dec.decode(rbuf),
            };
            match step {
                Ok(Step::Data(data)) => {
                    let end = matches!(self.decoder, Decoder::Length(0));
                    self.slot.put(Some(Ok(Frame::data(data))), cx);
                    if end {
                        self.slot.put(None, cx);
                        return Poll::Ready(Fed::Whole);
                    }
                    return Poll::Ready(Fed::Handed);
                }
                Ok(Step::Trailers(mut trailers)) => {
                    crate::wire::strip_forbidden_trailers(&mut trailers);
                    self.slot.put(Some(Ok(Frame::trailers(trailers))), cx);
                    self.slot.put(None, cx);
                    return Poll::Ready(Fed::Whole);
                }
                Ok(Step::End) => {
                    self.slot.put(None, cx);
                    return Poll::Ready(Fed::Whole);
                }
                Ok(Step::NeedMore) => {
                    if self.expect_continue {
                        // The client waits for this before it sends the body (RFC 9110 §10.1.1).
                        self.expect_continue = false;
                        out.buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    if rbuf.capacity() - rbuf.len() < BODY_READ / 4 {
                        rbuf.reserve(BODY_READ);
                    }
                    match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, rbuf) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            self.slot.put(Some(Err(ClientBodyError(Cause::ClientClosedRequest))), cx);
                            return Poll::Ready(Fed::Broken);
                        }
                        Poll::Ready(Ok(_)) => {}
                        Poll::Pending => {
                            self.starved = true;
                            return Poll::Pending;
                        }
                    }
                }
                Err(_) => {
                    self.slot.put(Some(Err(ClientBodyError(Cause::ClientRequestMalformed))), cx);
                    return Poll::Ready(Fed::Broken);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tests::Probe;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// The request path's future is dropped as soon as its answer is taken, not once the answer's body is out:
    /// what it holds (the request counted in flight, which keeps the connection from counting as idle) goes
    /// while a client that reads nothing holds the body up.
    #[tokio::test]
    async fn a_request_future_is_dropped_once_it_answered() {
        let probe = Probe::default();
        let answers = probe.clone();
        let service = move |_: Request<ClientBody>, _: Verdict| {
            answers.answer(Response::new(ProxyBody::full(vec![b'x'; 1 << 20])))
        };
        let idle = crate::server::Idle {
            timeout: Duration::from_secs(3600),
            activity: crate::upstream::ConnCounters::new(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:80".parse().unwrap(),
            ),
        };
        let settings = Settings { mode: DesyncMode::Defensive, header_timeout: Duration::from_secs(3600), idle };
        // 4 KiB between the two ends: the 1 MiB body cannot be out while the client reads nothing.
        let (mut client, server) = tokio::io::duplex(4096);
        let conn = tokio::spawn(Conn::new(server, BytesMut::new(), settings, service));
        client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut released = false;
        for _ in 0..3000 {
            if probe.released() {
                released = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(released, "the answered request's future was still held after 30 s");
        assert!(!conn.is_finished(), "the connection is still writing the body its client does not read");
        // The head went first; the rest of the body follows once the client reads.
        let mut got = vec![0u8; 17];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HTTP/1.1 200 OK\r\n");
    }
}
