//! One client HTTP/2 connection as a single future: it reads the client's frames and applies them (the rules
//! of RFC 9113 that need the connection's state: stream states and identifiers, flow control, header blocks
//! and their HPACK table, SETTINGS, PING, GOAWAY), starts a stream future for each request inside itself (no
//! task per request), polls the streams that were woken, and writes everything queued in one write.
//!
//! Each turn polls the streams first, then reads; new requests start their streams and the turn repeats, so a
//! response ready at once leaves in the same write as its neighbours'. The connection ends when the client
//! closes it or after a connection error (GOAWAY with its code, written before the close), or after
//! [`Server::graceful_shutdown`] once its last stream is done.
//!
//! Bounds: frames queued for the client past [`WRITE_HIGH_WATER`] stop the reading and the streams (a client that
//! sends PINGs but reads nothing holds that much, and at most as much again being written), a header block is at most [`BLOCK_LIMIT`] bytes compressed, and
//! streams the client resets while they are in flight count against it (rapid reset, CVE-2023-44487): each such
//! reset counts two and each stream done takes one off, so a client that resets most of what it opens reaches
//! [`MAX_RESETS`] and the connection ends with ENHANCE_YOUR_CALM, while one that resets now and then never does.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use waygate_h2wire::frame::{self, Block, BlockAssembler, ErrorCode, Frame, FrameError, Settings, Taken};
use waygate_h2wire::hpack::{self, ListSize};

use super::request::Builder;
use super::stream::{Sender, Stream};
use super::tunnel::ClientTunnel;
use super::watch::Watched;
use super::{CONNECTION_WINDOW, MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST, RequestBody, STREAM_WINDOW};
use crate::body::ProxyBody;
use crate::h2conn::fields::Trailers;
use crate::h2conn::{Inner, Key, Shared, WRITE_HIGH_WATER};
use crate::server::ClientBody;

/// The most compressed header-block bytes (with the frames' heads) one request may send: twice the decoded
/// limit, room for a block that compresses badly.
pub(super) const BLOCK_LIMIT: usize = 2 * MAX_HEADER_LIST as usize + 1024;

/// Streams the client may reset while in flight beyond those the connection completed.
pub(super) const MAX_RESETS: u32 = 256;

/// The size of one read from the client.
const READ_SIZE: usize = 16 * 1024;

/// The capacity an idle connection's write buffers keep.
const KEEP_WRITE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's connection preface.
    Preface,
    /// The preface came; the first frame must be SETTINGS (RFC 9113 §3.4).
    FirstSettings,
    Open,
    /// A connection error or the client's close: what is queued goes out, then the connection ends.
    Closing,
}

/// A client's HTTP/2 connection, served by `service` (the request path).
pub struct Server<I, S, F> {
    io: I,
    shared: Arc<Shared>,
    rbuf: BytesMut,
    /// Frames taken from the shared queue, being written.
    wbuf: BytesMut,
    decoder: hpack::Decoder,
    blocks: BlockAssembler,
    service: S,
    /// Each stream's deadline while it waits on the client (the listener's idle_timeout).
    idle: Duration,
    streams: FuturesUnordered<Watched<Stream<F>>>,
    phase: Phase,
    /// The highest stream identifier the client used.
    last_id: u32,
    /// GOAWAY was sent: no new streams.
    going_away: bool,
    /// The client sent GOAWAY, or closed its side: no new streams will come.
    peer_done: bool,
    /// The rapid-reset count (see the module's doc).
    resets: u32,
    /// The bytes the listener read first were applied.
    started: bool,
}

impl<I, S, F> Server<I, S, F>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: FnMut(Request<ClientBody>) -> F,
    F: Future<Output = Response<ProxyBody>>,
{
    /// Serves `io`; `read`: the bytes already read from it (the start of the client's preface).
    pub fn new(io: I, read: BytesMut, idle: Duration, service: S) -> Self {
        let shared = Shared::new();
        {
            let mut inner = shared.lock();
            let settings = Settings {
                max_concurrent_streams: Some(MAX_CONCURRENT_STREAMS),
                initial_window_size: Some(STREAM_WINDOW),
                max_header_list_size: Some(MAX_HEADER_LIST),
                enable_connect_protocol: Some(true),
                ..Settings::default()
            };
            settings.write(&mut inner.out);
            frame::write_window_update(0, CONNECTION_WINDOW - 65_535, &mut inner.out);
        }
        Self {
            io,
            shared,
            rbuf: read,
            wbuf: BytesMut::new(),
            decoder: hpack::Decoder::new(4096),
            blocks: BlockAssembler::new(BLOCK_LIMIT),
            service,
            idle,
            streams: FuturesUnordered::new(),
            phase: Phase::Preface,
            last_id: 0,
            going_away: false,
            peer_done: false,
            resets: 0,
            started: false,
        }
    }

    /// Sends GOAWAY: no new streams; those in progress finish, then the connection closes.
    pub fn graceful_shutdown(&mut self) {
        if !self.going_away {
            self.going_away = true;
            frame::write_goaway(self.last_id, ErrorCode::NO_ERROR, b"", &mut self.shared.lock().out);
        }
    }

    /// A connection error: GOAWAY with its code, then the close.
    fn fail(&mut self, code: ErrorCode) {
        let mut inner = self.shared.lock();
        frame::write_goaway(self.last_id, code, b"", &mut inner.out);
        inner.close();
        drop(inner);
        self.going_away = true;
        self.phase = Phase::Closing;
    }

    /// Applies the frames read so far; `Err` is a connection error.
    fn process(&mut self) -> Result<(), ErrorCode> {
        loop {
            match self.phase {
                Phase::Preface => {
                    if self.rbuf.len() < frame::PREFACE.len() {
                        return if frame::PREFACE.starts_with(&self.rbuf) {
                            Ok(())
                        } else {
                            Err(ErrorCode::PROTOCOL_ERROR)
                        };
                    }
                    if self.rbuf[..frame::PREFACE.len()] != frame::PREFACE[..] {
                        return Err(ErrorCode::PROTOCOL_ERROR);
                    }
                    self.rbuf.advance(frame::PREFACE.len());
                    self.phase = Phase::FirstSettings;
                }
                Phase::Closing => return Ok(()),
                Phase::FirstSettings | Phase::Open => {
                    let parsed = match frame::parse(&mut self.rbuf, frame::DEFAULT_MAX_FRAME_SIZE) {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return Ok(()),
                        Err(FrameError::Connection(code)) => return Err(code),
                        Err(FrameError::Stream(id, code)) => {
                            self.stream_error(id, code);
                            continue;
                        }
                    };
                    if self.phase == Phase::FirstSettings {
                        if !matches!(parsed, Frame::Settings(_)) {
                            return Err(ErrorCode::PROTOCOL_ERROR);
                        }
                        self.phase = Phase::Open;
                    }
                    self.frame(parsed)?;
                }
            }
        }
    }

    /// Resets stream `id` for an error in what the client sent on it.
    fn stream_error(&mut self, id: u32, code: ErrorCode) {
        let mut inner = self.shared.lock();
        match inner.find(id) {
            Some(key) => inner.reset(key, code),
            None => frame::write_rst_stream(id, code, &mut inner.out),
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
                    return self.closed_stream(&mut inner, stream);
                }
            }
            // Taken by the block assembler above.
            Frame::Headers { .. } | Frame::Continuation { .. } => {}
            Frame::Priority { .. } | Frame::SettingsAck | Frame::Unknown { .. } | Frame::Ping { ack: true, .. } => {}
            Frame::RstStream { stream, code } => {
                if stream > self.last_id {
                    // A stream that never opened (RFC 9113 §6.4).
                    return Err(ErrorCode::PROTOCOL_ERROR);
                }
                let mut inner = self.shared.lock();
                if let Some(key) = inner.find(stream) {
                    if inner.receiving(key) || inner.sending(key) {
                        self.resets += 2;
                    }
                    inner.peer_reset(key, code);
                }
                if self.resets > MAX_RESETS {
                    return Err(ErrorCode::ENHANCE_YOUR_CALM);
                }
            }
            Frame::Settings(settings) => self.shared.lock().apply_settings(&settings)?,
            Frame::PushPromise { .. } => return Err(ErrorCode::PROTOCOL_ERROR),
            Frame::Ping { ack: false, data } => frame::write_ping(true, data, &mut self.shared.lock().out),
            Frame::GoAway { .. } => self.peer_done = true,
            Frame::WindowUpdate { stream: 0, increment } => {
                if !self.shared.lock().conn_window(increment) {
                    return Err(ErrorCode::FLOW_CONTROL_ERROR);
                }
            }
            Frame::WindowUpdate { stream, increment } => {
                if stream > self.last_id {
                    return Err(ErrorCode::PROTOCOL_ERROR);
                }
                let mut inner = self.shared.lock();
                if let Some(key) = inner.find(stream)
                    && !inner.stream_window(key, increment)
                {
                    inner.reset(key, ErrorCode::FLOW_CONTROL_ERROR);
                }
            }
        }
        Ok(())
    }

    /// A frame for a stream the table no longer has: one that never opened is a connection error, one that
    /// closed gets STREAM_CLOSED (RFC 9113 §5.1).
    fn closed_stream(&self, inner: &mut Inner, stream: u32) -> Result<(), ErrorCode> {
        if stream > self.last_id {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        frame::write_rst_stream(stream, ErrorCode::STREAM_CLOSED, &mut inner.out);
        Ok(())
    }

    /// A whole header block: a new request, or the trailers of one in progress.
    fn headers(&mut self, block: Block) -> Result<(), ErrorCode> {
        let id = block.stream;
        if id.is_multiple_of(2) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        let existing = self.shared.lock().find(id);
        if let Some(key) = existing {
            let mut trailers = Trailers::default();
            let size = self.decode(&block, |f| trailers.field(f))?;
            let mut inner = self.shared.lock();
            // Trailers end the request (RFC 9113 §8.1); a second head, or one too large, is a stream error.
            if !block.end_stream || trailers.malformed || size == ListSize::TooLarge {
                inner.reset(key, ErrorCode::PROTOCOL_ERROR);
            } else if let Err(code) = inner.trailers(key, trailers.headers) {
                inner.reset(key, code);
            }
            return Ok(());
        }
        if id <= self.last_id {
            // Not above every stream the client opened (RFC 9113 §5.1.1); the block is decoded all the same,
            // for the GOAWAY's sake: the table is the connection's.
            self.decode(&block, drop)?;
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        self.last_id = id;
        let mut builder = Builder::default();
        let size = self.decode(&block, |f| builder.field(f))?;
        if self.going_away || self.peer_done {
            // After GOAWAY no stream above its last identifier is processed (RFC 9113 §6.8).
            return Ok(());
        }
        let mut inner = self.shared.lock();
        if inner.active >= MAX_CONCURRENT_STREAMS {
            frame::write_rst_stream(id, ErrorCode::REFUSED_STREAM, &mut inner.out);
            return Ok(());
        }
        if size == ListSize::TooLarge {
            // RFC 9113 §10.5.1: a 431, and the request's body is not wanted.
            let key = inner.open(id, block.end_stream, None, 1);
            let _ = inner.send_head(key, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &http::HeaderMap::new(), true);
            inner.drop_handle(key);
            return Ok(());
        }
        // A request that ends with its head has no body, whatever its Content-Length says (RFC 9113 §8.1.1).
        let Some(head) = builder.finish().filter(|h| !block.end_stream || h.length.is_none_or(|n| n == 0)) else {
            frame::write_rst_stream(id, ErrorCode::PROTOCOL_ERROR, &mut inner.out);
            return Ok(());
        };
        let extended_connect = head.method == Method::CONNECT && head.protocol.is_some();
        let body_handle = !block.end_stream && !extended_connect;
        let key = inner.open(id, block.end_stream, head.length, 1 + u8::from(body_handle));
        drop(inner);
        self.start(key, head, body_handle, extended_connect);
        Ok(())
    }

    /// Decodes a header block into `field`; a decoding error is the connection's (COMPRESSION_ERROR).
    fn decode(&mut self, block: &Block, field: impl FnMut(hpack::Field)) -> Result<ListSize, ErrorCode> {
        self.decoder.decode(&block.block, MAX_HEADER_LIST as usize, field).map_err(|_| ErrorCode::COMPRESSION_ERROR)
    }

    /// Starts a request's stream future.
    fn start(&mut self, key: Key, head: super::request::Head, body_handle: bool, extended_connect: bool) {
        let body = if body_handle {
            ClientBody::H2(RequestBody::new(self.shared.clone(), key, head.length))
        } else {
            ClientBody::Empty
        };
        let mut req = Request::new(body);
        *req.method_mut() = head.method;
        *req.uri_mut() = head.uri;
        *req.version_mut() = http::Version::HTTP_2;
        *req.headers_mut() = head.headers;
        let tunnel = if extended_connect {
            // The stream itself is what the tunnel carries; it opens once the gateway answers 2xx.
            let (client_tunnel, opener) = ClientTunnel::new();
            req.extensions_mut().insert(client_tunnel);
            Some(opener)
        } else {
            None
        };
        if let Some(protocol) = head.protocol {
            req.extensions_mut().insert(protocol);
        }
        let fut = (self.service)(req);
        self.streams.push(Watched::new(Stream::new(fut, Sender::new(self.shared.clone(), key), tunnel), self.idle));
    }

    /// With no stream in flight and nothing unread, the read buffer goes, and write buffers that a burst grew
    /// past [`KEEP_WRITE`]: an idle connection holds no read buffer and small write buffers (the read buffer
    /// comes back with the next bytes; freeing the small write buffers too cost more per request than it saved).
    fn release_idle(&mut self) {
        if self.streams.is_empty() && self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > KEEP_WRITE {
            self.wbuf = BytesMut::new();
        }
        let mut inner = self.shared.lock();
        if inner.out.is_empty() && inner.out.capacity() > KEEP_WRITE {
            inner.out = BytesMut::new();
        }
    }

    /// Frame bytes held for the client: queued, and taken to be written.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.wbuf.len() + self.shared.lock().out.len()
    }

    /// Writes what is queued; Ready(Err) when the client cannot be written to.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.shared.poll_write_out(&mut self.io, &mut self.wbuf, cx)
    }
}

impl<I, S, F> Future for Server<I, S, F>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: FnMut(Request<ClientBody>) -> F + Unpin,
    F: Future<Output = Response<ProxyBody>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            {
                let mut inner = this.shared.lock();
                inner.set_conn_waker(cx);
                inner.in_poll = true;
            }
            while let Poll::Ready(Some(())) = this.streams.poll_next_unpin(cx) {
                this.resets = this.resets.saturating_sub(1);
            }
            this.shared.lock().in_poll = false;
            // Another turn after this one: new streams are polled in it.
            let mut read_more = false;
            if !this.started {
                // What the listener read while it told HTTP/2 from HTTP/1: the preface, maybe more.
                this.started = true;
                if let Err(code) = this.process() {
                    this.fail(code);
                }
                read_more = true;
            }
            let backed_up = this.shared.lock().out.len() >= WRITE_HIGH_WATER;
            if this.phase != Phase::Closing && !backed_up {
                if this.rbuf.capacity() - this.rbuf.len() < READ_SIZE / 2 {
                    this.rbuf.reserve(READ_SIZE);
                }
                match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut this.rbuf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        // The client closed the connection or it failed: no stream can go on.
                        this.shared.lock().close();
                        this.streams.clear();
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(_)) => {
                        if let Err(code) = this.process() {
                            this.fail(code);
                        }
                        read_more = true;
                    }
                    Poll::Pending => {}
                }
            }
            match this.poll_write(cx) {
                Poll::Ready(Err(_)) => {
                    this.shared.lock().close();
                    this.streams.clear();
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => {
                    // Reading stopped for a queue now written: read again.
                    read_more |= backed_up && this.phase != Phase::Closing;
                    let done = match this.phase {
                        Phase::Closing => true,
                        _ => {
                            (this.going_away || this.peer_done)
                                && this.streams.is_empty()
                                && this.shared.lock().active == 0
                        }
                    };
                    if done {
                        this.shared.lock().close();
                        this.streams.clear();
                        let _ = Pin::new(&mut this.io).poll_shutdown(cx);
                        return Poll::Ready(());
                    }
                }
                Poll::Pending => {}
            }
            if !read_more {
                this.release_idle();
                return Poll::Pending;
            }
        }
    }
}
