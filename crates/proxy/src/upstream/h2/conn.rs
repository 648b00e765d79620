//! The task of one HTTP/2 connection to a target: it reads the target's frames and applies them (the client's
//! side of RFC 9113: the target's preface, SETTINGS, response heads and trailers, DATA under the gateway's
//! windows, resets, PING, GOAWAY), writes what the streams queued, publishes the target's stream limit to the
//! pool, and ends the connection on the gateway's side when it must:
//!
//! - a keep-alive PING that gets no PONG within [`PING_TIMEOUT`] (the target or the path is gone, and the
//!   streams on it would otherwise wait for their timeouts);
//! - no stream for `pool_idle_timeout`, or no handle left to open one (GOAWAY, then the close);
//! - a connection error in what the target sent (GOAWAY with its code, then the close).
//!
//! A GOAWAY from the target stops new streams; those above its last_stream_id fail as unprocessed (safe to
//! retry whatever the method, RFC 9113 §8.7), the others go on, and the connection closes when they are done.
//! One timer per connection, re-armed when it fires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};
use waygate_h2wire::frame::{self, Block, BlockAssembler, ErrorCode, Frame, FrameError, Taken};
use waygate_h2wire::hpack::{self, ListSize};

use super::response::Builder;
use super::{Ended, State};
use crate::h2conn::fields::Trailers;
use crate::h2conn::{self, Inner};
use crate::lock;
use crate::upstream::MAX_RESPONSE_HEAD;
use crate::upstream::liveness::Probe;
use crate::upstream::meter::ConnCounters;
use crate::upstream::transport::Transport;

/// A connection that received nothing for this long gets a PING.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A PING unanswered for this long ends the connection.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The most compressed header-block bytes (with the frames' heads) one response may send: twice the decoded
/// limit, room for a block that compresses badly.
const BLOCK_LIMIT: usize = 2 * MAX_RESPONSE_HEAD + 1024;

/// The size of one read from the target.
const READ_SIZE: usize = 16 * 1024;

/// The PING's opaque data: the gateway sends one PING at a time, so any value does.
const PING_DATA: [u8; 8] = *b"waygate!";

/// One connection's task (a future run by `tokio::spawn`).
pub(super) struct Conn {
    io: Transport,
    shared: Arc<h2conn::Shared>,
    state: Arc<State>,
    counters: Arc<ConnCounters>,
    /// A duplicate of the socket's descriptor (liveness checks, retirement): the end shuts the socket down,
    /// which dropping the connection alone would not.
    probe: Option<Arc<Probe>>,
    rbuf: BytesMut,
    /// Frames taken from the shared queue, being written.
    wbuf: BytesMut,
    decoder: hpack::Decoder,
    blocks: BlockAssembler,
    /// The target's first SETTINGS came (the server's preface, RFC 9113 §3.4).
    settled: bool,
    /// The gateway is ending the connection: what is queued goes out (a GOAWAY last), then the close.
    closing: bool,
    /// The target sent GOAWAY: the connection ends once its streams are done.
    peer_done: bool,
    idle_timeout: Duration,
    period: Duration,
    timer: Pin<Box<Sleep>>,
    last_read: u64,
    awaiting_pong: bool,
}

impl Conn {
    pub fn new(
        io: Transport,
        shared: Arc<h2conn::Shared>,
        state: Arc<State>,
        counters: Arc<ConnCounters>,
        probe: Option<Arc<Probe>>,
        idle_timeout: Duration,
    ) -> Self {
        let period = PING_INTERVAL.min(idle_timeout);
        let last_read = counters.bytes_read();
        Self {
            io,
            shared,
            state,
            counters,
            probe,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            decoder: hpack::Decoder::new(4096),
            blocks: BlockAssembler::new(BLOCK_LIMIT),
            settled: false,
            closing: false,
            peer_done: false,
            idle_timeout,
            period,
            timer: Box::pin(tokio::time::sleep(period)),
            last_read,
            awaiting_pong: false,
        }
    }

    /// Applies the frames read so far; `Err` is a connection error.
    fn process(&mut self) -> Result<(), ErrorCode> {
        loop {
            let parsed = match frame::parse(&mut self.rbuf, frame::DEFAULT_MAX_FRAME_SIZE) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(FrameError::Connection(code)) => return Err(code),
                Err(FrameError::Stream(id, code)) => {
                    let mut inner = self.shared.lock();
                    match inner.find(id) {
                        Some(key) => inner.reset(key, code),
                        None => frame::write_rst_stream(id, code, &mut inner.out),
                    }
                    continue;
                }
            };
            if !self.settled && !matches!(parsed, Frame::Settings(_)) {
                // The target's preface is a SETTINGS frame (RFC 9113 §3.4); an HTTP/1 server's answer is not.
                return Err(ErrorCode::PROTOCOL_ERROR);
            }
            self.frame(parsed)?;
        }
    }

    fn frame(&mut self, parsed: Frame) -> Result<(), ErrorCode> {
        let parsed = match self.blocks.take(parsed).map_err(|e| e.code())? {
            Taken::Frame(frame) => frame,
            Taken::Block(block) => return self.headers(block),
            Taken::Partial => return Ok(()),
        };
        match parsed {
            Frame::Data { stream, data, end_stream, flow_len } => {
                let mut inner = self.shared.lock();
                if !inner.recv_data(stream, data, end_stream, flow_len)? {
                    return opened(&inner, stream);
                }
            }
            // Taken by the block assembler above.
            Frame::Headers { .. } | Frame::Continuation { .. } => {}
            Frame::Priority { .. } | Frame::SettingsAck | Frame::Unknown { .. } => {}
            Frame::Ping { ack: true, .. } => self.awaiting_pong = false,
            Frame::Ping { ack: false, data } => frame::write_ping(true, data, &mut self.shared.lock().out),
            Frame::RstStream { stream, code } => {
                let mut inner = self.shared.lock();
                opened(&inner, stream)?;
                if let Some(key) = inner.find(stream) {
                    inner.peer_reset(key, code);
                }
            }
            Frame::Settings(settings) => {
                let mut inner = self.shared.lock();
                inner.apply_settings(&settings)?;
                if let Some(max) = settings.max_concurrent_streams {
                    self.state.max_streams.store(max as usize, Ordering::Relaxed);
                }
                if let Some(enabled) = settings.enable_connect_protocol {
                    self.state.connect_protocol.store(enabled, Ordering::Release);
                }
                drop(inner);
                if !self.settled {
                    self.settled = true;
                    self.state.settled.send_replace(true);
                }
            }
            // The gateway's SETTINGS disabled push (RFC 9113 §8.4).
            Frame::PushPromise { .. } => return Err(ErrorCode::PROTOCOL_ERROR),
            Frame::GoAway { last_stream, code, .. } => {
                self.state.set_goaway(last_stream, code);
                self.state.closing.store(true, Ordering::Release);
                self.peer_done = true;
                let mut inner = self.shared.lock();
                inner.no_new_streams = true;
                inner.refuse_above(last_stream);
            }
            Frame::WindowUpdate { stream: 0, increment } => {
                if !self.shared.lock().conn_window(increment) {
                    return Err(ErrorCode::FLOW_CONTROL_ERROR);
                }
            }
            Frame::WindowUpdate { stream, increment } => {
                let mut inner = self.shared.lock();
                opened(&inner, stream)?;
                if let Some(key) = inner.find(stream)
                    && !inner.stream_window(key, increment)
                {
                    inner.reset(key, ErrorCode::FLOW_CONTROL_ERROR);
                }
            }
        }
        Ok(())
    }

    /// A whole header block: a response head (informational ones skipped), or a response's trailers.
    fn headers(&mut self, block: Block) -> Result<(), ErrorCode> {
        let mut inner = self.shared.lock();
        opened(&inner, block.stream)?;
        let Some(key) = inner.find(block.stream) else {
            // A stream the gateway closed: the block still goes through the decoder, whose table is the
            // connection's.
            drop(inner);
            return self.decode(&block, drop).map(drop);
        };
        let has_head = inner.has_head(key);
        drop(inner);
        if has_head {
            let mut trailers = Trailers::default();
            let size = self.decode(&block, |f| trailers.field(f))?;
            let mut inner = self.shared.lock();
            // Trailers end the response (RFC 9113 §8.1): without END_STREAM they are a second head.
            if !block.end_stream || trailers.malformed {
                inner.reset(key, ErrorCode::PROTOCOL_ERROR);
            } else if size == ListSize::TooLarge {
                inner.reset_too_large(key);
            } else if let Err(code) = inner.trailers(key, trailers.headers) {
                inner.reset(key, code);
            }
            return Ok(());
        }
        let mut builder = Builder::default();
        let size = self.decode(&block, |f| builder.field(f))?;
        let mut inner = self.shared.lock();
        if size == ListSize::TooLarge {
            inner.reset_too_large(key);
            return Ok(());
        }
        let Some(head) = builder.finish() else {
            inner.reset(key, ErrorCode::PROTOCOL_ERROR);
            return Ok(());
        };
        if head.status.is_informational() {
            // 1xx heads come before the final one and are not relayed; 101 has no place in HTTP/2 (§8.6), and an
            // informational head cannot end the stream (§8.1).
            if head.status == http::StatusCode::SWITCHING_PROTOCOLS || block.end_stream {
                inner.reset(key, ErrorCode::PROTOCOL_ERROR);
            }
            return Ok(());
        }
        if let Err(code) = inner.response_head(key, head.status, head.headers, head.length, block.end_stream) {
            inner.reset(key, code);
        }
        Ok(())
    }

    /// Decodes a header block into `field`; a decoding error is the connection's (COMPRESSION_ERROR).
    fn decode(&mut self, block: &Block, field: impl FnMut(hpack::Field)) -> Result<ListSize, ErrorCode> {
        self.decoder.decode(&block.block, MAX_RESPONSE_HEAD, field).map_err(|_| ErrorCode::COMPRESSION_ERROR)
    }

    /// The gateway ends the connection: GOAWAY with `code` goes out after what is queued, then the close; `why`
    /// is the evidence for the streams still on it, whatever the close then meets.
    fn end_with(&mut self, code: ErrorCode, why: Ended) {
        if !self.closing {
            self.closing = true;
            // The pool hands the connection out no more.
            self.state.closing.store(true, Ordering::Release);
            lock(&self.state.ended).get_or_insert(why);
            let mut inner = self.shared.lock();
            inner.no_new_streams = true;
            frame::write_goaway(0, code, b"", &mut inner.out);
        }
    }

    /// The keep-alive and idle timer: `Some` when it ends the connection.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Option<(ErrorCode, Ended)> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let now = Instant::now();
            if self.awaiting_pong {
                let words = format!("the target answered no keep-alive PING within {PING_TIMEOUT:?}");
                return Some((ErrorCode::NO_ERROR, Ended::Gateway(words)));
            }
            let idle_since = *lock(&self.state.idle_since);
            if self.state.streams.load(Ordering::Acquire) == 0
                && idle_since.is_some_and(|t| now >= t + self.idle_timeout)
            {
                // `end_with` takes the connection out of the pool's hands, at once (the caller's next step).
                return Some((ErrorCode::NO_ERROR, Ended::Gateway("idle past pool_idle_timeout".to_owned())));
            }
            let read = self.counters.bytes_read();
            if read == self.last_read {
                frame::write_ping(false, PING_DATA, &mut self.shared.lock().out);
                self.awaiting_pong = true;
                self.timer.as_mut().reset(now + PING_TIMEOUT);
            } else {
                self.timer.as_mut().reset(now + self.period);
            }
            self.last_read = read;
        }
    }

    /// Writes what is queued; Ready(Err) when the target cannot be written to.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.shared.poll_write_out(&mut self.io, &mut self.wbuf, cx)
    }

    /// Whether the connection has nothing more to do: no stream can open on it (the target went away, the
    /// gateway let it go) and none is in flight.
    fn finished(&self) -> bool {
        (self.peer_done || self.state.closing.load(Ordering::Acquire)) && self.shared.lock().active == 0
    }

    /// The end: every stream still on the connection fails with `why` as its evidence.
    fn finish(&mut self, why: Option<Ended>) {
        self.state.closing.store(true, Ordering::Release);
        if let Some(why) = why {
            lock(&self.state.ended).get_or_insert(why);
        }
        self.state.settled.send_replace(true);
        let mut inner = self.shared.lock();
        inner.no_new_streams = true;
        inner.close();
        drop(inner);
        if let Some(probe) = &self.probe {
            probe.shutdown();
        }
    }
}

/// A frame on stream `id` that the gateway never opened (an even identifier: the gateway's SETTINGS forbid
/// push) is a connection error (RFC 9113 §5.1.1); one the gateway closed is ignored (frames in flight).
fn opened(inner: &Inner, id: u32) -> Result<(), ErrorCode> {
    if inner.opened_locally(id) { Ok(()) } else { Err(ErrorCode::PROTOCOL_ERROR) }
}

impl Future for Conn {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            this.shared.lock().set_conn_waker(cx);
            let mut again = false;
            if !this.closing {
                if this.rbuf.capacity() - this.rbuf.len() < READ_SIZE / 2 {
                    this.rbuf.reserve(READ_SIZE);
                }
                match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut this.rbuf) {
                    Poll::Ready(Ok(0)) => {
                        let eof = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the target closed the HTTP/2 connection",
                        );
                        this.finish(Some(Ended::Io(eof)));
                        return Poll::Ready(());
                    }
                    Poll::Ready(Err(e)) => {
                        this.finish(Some(Ended::Io(e)));
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(_)) => {
                        if let Err(code) = this.process() {
                            this.end_with(code, Ended::Protocol(code));
                        }
                        again = true;
                    }
                    Poll::Pending => {}
                }
            }
            if !this.closing {
                if let Some((code, why)) = this.poll_timer(cx) {
                    this.end_with(code, why);
                } else if this.finished() {
                    this.end_with(ErrorCode::NO_ERROR, Ended::Gateway("no stream left".to_owned()));
                }
            }
            match this.poll_write(cx) {
                Poll::Ready(Err(e)) => {
                    this.finish(Some(Ended::Io(e)));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => {
                    if this.closing {
                        // What was queued (the GOAWAY last) is written: the close.
                        if matches!(*lock(&this.state.ended), Some(Ended::Gateway(_))) {
                            this.counters.close_by_gateway();
                        }
                        let _ = Pin::new(&mut this.io).poll_shutdown(cx);
                        this.finish(None);
                        return Poll::Ready(());
                    }
                }
                Poll::Pending => {}
            }
            if !again {
                return Poll::Pending;
            }
        }
    }
}
