//! What one HTTP/2 connection and its streams share, in either role: the table of streams (each one's received
//! head, DATA and trailers, both flow-control windows, its wakers), the connection's windows, and the frames
//! queued for the peer. The connection's task (the client side's [`crate::server::h2`], or a target's
//! [`crate::upstream::h2`]) fills it from the frames it reads and writes out what is queued; a stream's handles
//! (a response's sender, a request body, a request's stream toward a target, a tunnel's halves) take and queue
//! through it. One mutex guards it all: a connection's streams run inside its task or on the same worker thread
//! (a runtime without workers, as in tests, is the exception), so it is hardly ever contended, and one lock per
//! step costs less than a lock per stream and one per connection would.
//!
//! A stream's entry lives as long as any of its handles: its last handle dropped before both directions
//! ended resets the stream (RST_STREAM CANCEL, or NO_ERROR when the gateway's side was complete and only the
//! peer's was still coming, RFC 9113 §8.1).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::AsyncWrite;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Uri};
use waygate_h2wire::frame::{self, ErrorCode};
use waygate_h2wire::hpack::{self, Pseudo};

use super::{CONNECTION_WINDOW, STREAM_WINDOW};

/// Frames queued for the peer beyond which a stream's DATA waits for the connection to write them (the
/// peer does not read): per connection, whatever the windows the peer advertises.
pub const WRITE_HIGH_WATER: usize = 256 * 1024;

/// The HTTP/2 flow-control window's ceiling (RFC 9113 §6.9.1).
const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The highest stream identifier (31 bits, RFC 9113 §5.1.1).
const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Why a stream operation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamGone {
    /// The peer reset the stream with this code.
    Reset(ErrorCode),
    /// The gateway reset the stream with this code: an error in what the peer sent on it, or the stream was
    /// abandoned (its handles dropped, or a GOAWAY left it unprocessed).
    Local(ErrorCode),
    /// The peer's header block was over the header-list limit (the stream was reset).
    HeadTooLarge,
    /// The connection ended (the peer closed it, or it failed).
    ConnectionClosed,
}

impl std::fmt::Display for StreamGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamGone::Reset(code) => write!(f, "the peer reset the HTTP/2 stream ({code})"),
            StreamGone::Local(code) => write!(f, "the HTTP/2 stream was reset by the gateway ({code})"),
            StreamGone::HeadTooLarge => f.write_str("the peer's HTTP/2 header block was too large"),
            StreamGone::ConnectionClosed => f.write_str("the HTTP/2 connection closed"),
        }
    }
}

impl std::error::Error for StreamGone {}

/// The state shared by one connection and its streams.
#[derive(Debug)]
pub struct Shared(Mutex<Inner>);

/// One stream as the table knows it: where it is, and its id to check that it is still the same stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub slot: usize,
    pub id: u32,
}

#[derive(Debug)]
pub struct Inner {
    slots: Vec<Option<StreamState>>,
    free: Vec<usize>,
    /// Frames for the peer, in the order they are to go out.
    pub out: BytesMut,
    /// What the client lets the gateway send on the connection (RFC 9113 §6.9).
    conn_send_window: i64,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
    peer_initial_window: i64,
    pub peer_max_frame: u32,
    /// What the client may still send on the connection before a WINDOW_UPDATE.
    conn_recv_window: i64,
    /// Request body bytes taken by the request path and not yet given back to the client in a WINDOW_UPDATE.
    conn_unreleased: u32,
    /// Streams not yet closed in both directions (RFC 9113 §5.1.2's count).
    pub active: u32,
    /// The connection's task, woken when something is queued from outside its poll.
    conn_waker: Option<Waker>,
    pub in_poll: bool,
    /// The next stream the gateway opens, as a client (odd identifiers, RFC 9113 §5.1.1).
    next_id: u32,
    /// The gateway opens no more streams on the connection (as a client: the peer sent GOAWAY, or the connection
    /// is being closed).
    pub no_new_streams: bool,
    /// Streams waiting for the connection's window, or for the queue to drain below [`WRITE_HIGH_WATER`].
    send_waiters: Vec<Waker>,
    /// The connection ended: every operation fails.
    pub closed: bool,
    encoder: hpack::Encoder,
    /// The header block being encoded, its buffer kept from one response to the next.
    block: BytesMut,
}

#[derive(Debug)]
struct StreamState {
    id: u32,
    /// The peer's response head not taken yet (the gateway as a client), and whether the peer's head came (a
    /// client's request opens its stream with its head).
    head: Option<(StatusCode, HeaderMap)>,
    has_head: bool,
    /// The request was a HEAD (the gateway as a client): its response's Content-Length counts no body.
    head_request: bool,
    /// Received DATA not taken yet, and the trailers.
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// END_STREAM received (the request is whole).
    recv_done: bool,
    /// What the client may still send on this stream before a WINDOW_UPDATE.
    recv_window: i64,
    recv_unreleased: u32,
    /// The request's Content-Length, less the DATA received (RFC 9113 §8.1.1).
    remaining: Option<u64>,
    body_waker: Option<Waker>,
    /// What the gateway may send on this stream.
    send_window: i64,
    /// END_STREAM (or the 2xx of a tunnel's CONNECT and later its END_STREAM) queued.
    send_done: bool,
    send_waker: Option<Waker>,
    /// The stream was reset, and by whom.
    reset: Option<StreamGone>,
    reset_waker: Option<Waker>,
    /// Handles alive: the response's sender, the request body, a tunnel's halves.
    handles: u8,
    /// The request body's handle is gone: what the client still sends is taken and dropped as it comes, its
    /// window given back, so that it holds none of the connection's window while the response goes on.
    body_gone: bool,
    /// Counted in `active` until both directions end.
    counted: bool,
}

impl StreamState {
    /// Wakes every party waiting on the stream: its state changed for all of them.
    fn wake_all(&mut self) {
        for w in [self.body_waker.take(), self.send_waker.take(), self.reset_waker.take()].into_iter().flatten() {
            w.wake();
        }
    }

    /// The peer sent all it will on the stream and the gateway took all of it: no data, no trailers left.
    fn received_all(&self) -> bool {
        self.recv_done && self.data.is_empty() && self.trailers.is_none()
    }
}

/// A response head as the gateway, as a client, takes it from a stream.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The head ended the stream: the response has no body and no trailers.
    pub whole: bool,
}

/// What the client sent on a stream was refused: the stream error to reset it with.
pub type Refused = Result<(), ErrorCode>;

impl Shared {
    /// Writes what is queued to `io`, through `wbuf` (the frames taken from the queue, being written); Ready(Err)
    /// when the peer cannot be written to. Streams that waited for the queue to drain go on once it has.
    pub fn poll_write_out<I: AsyncWrite + Unpin>(
        &self,
        io: &mut I,
        wbuf: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if wbuf.is_empty() {
                let mut inner = self.lock();
                if inner.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                std::mem::swap(wbuf, &mut inner.out);
            }
            while !wbuf.is_empty() {
                let n = ready!(Pin::new(&mut *io).poll_write(cx, wbuf))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                wbuf.advance(n);
            }
            wbuf.clear();
            self.lock().drained();
        }
    }

    pub fn new() -> Arc<Self> {
        Arc::new(Shared(Mutex::new(Inner {
            slots: Vec::new(),
            free: Vec::new(),
            out: BytesMut::with_capacity(4096),
            conn_send_window: 65_535,
            peer_initial_window: 65_535,
            peer_max_frame: frame::DEFAULT_MAX_FRAME_SIZE,
            conn_recv_window: i64::from(CONNECTION_WINDOW),
            conn_unreleased: 0,
            active: 0,
            conn_waker: None,
            in_poll: false,
            next_id: 1,
            no_new_streams: false,
            send_waiters: Vec::new(),
            closed: false,
            encoder: hpack::Encoder::new(),
            block: BytesMut::new(),
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock(&self.0)
    }
}

impl Inner {
    fn get(&mut self, key: Key) -> Option<&mut StreamState> {
        self.slots.get_mut(key.slot)?.as_mut().filter(|s| s.id == key.id)
    }

    /// A new stream from a client's HEADERS, with its handles to be (the sender and the request body).
    pub fn open(&mut self, id: u32, recv_done: bool, remaining: Option<u64>, handles: u8) -> Key {
        let state = StreamState {
            id,
            head: None,
            has_head: true,
            head_request: false,
            data: VecDeque::new(),
            trailers: None,
            recv_done,
            recv_window: i64::from(STREAM_WINDOW),
            recv_unreleased: 0,
            remaining,
            body_waker: None,
            send_window: self.peer_initial_window,
            send_done: false,
            send_waker: None,
            reset: None,
            reset_waker: None,
            handles,
            counted: true,
            body_gone: false,
        };
        self.active += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(state);
                slot
            }
            None => {
                self.slots.push(Some(state));
                self.slots.len() - 1
            }
        };
        Key { slot, id }
    }

    /// A new stream the gateway opens as a client, held by one handle; `None` once the connection ended or the
    /// identifiers ran out (RFC 9113 §5.1.1: then only a new connection can carry more).
    pub fn open_local(&mut self, head_request: bool) -> Option<Key> {
        if self.closed || self.no_new_streams || self.next_id > MAX_STREAM_ID {
            return None;
        }
        let id = self.next_id;
        self.next_id += 2;
        let key = self.open(id, false, None, 1);
        if let Some(s) = self.get(key) {
            s.head_request = head_request;
            s.has_head = false;
        }
        Some(key)
    }

    /// Whether `id` names a stream the gateway opened as a client (open now or not).
    pub fn opened_locally(&self, id: u32) -> bool {
        id % 2 == 1 && id < self.next_id
    }

    /// The live stream with this id, if any (the table is small: at most the streams in flight).
    pub fn find(&self, id: u32) -> Option<Key> {
        self.slots.iter().enumerate().find_map(|(slot, s)| s.as_ref().filter(|s| s.id == id).map(|_| Key { slot, id }))
    }

    /// Wakes the connection's task if this runs outside its poll.
    pub fn wake_conn(&mut self) {
        if !self.in_poll
            && let Some(w) = &self.conn_waker
        {
            w.wake_by_ref();
        }
    }

    pub fn set_conn_waker(&mut self, cx: &Context<'_>) {
        if !self.conn_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.conn_waker = Some(cx.waker().clone());
        }
    }

    /// Counts a stream's end in both directions once.
    fn settle(&mut self, key: Key) {
        let Some(s) = self.get(key) else { return };
        if s.counted && (s.reset.is_some() || (s.recv_done && s.send_done)) {
            s.counted = false;
            self.active -= 1;
        }
    }

    // ---- From the connection: what the client sent. ----

    /// A DATA frame from the peer on `stream`; `flow_len` counts its padding too. It counts against the
    /// connection's window first (`Err`: a connection error FLOW_CONTROL_ERROR), then goes to its stream, which
    /// takes it or is reset with the stream error (DATA before the peer's head is one, RFC 9113 §8.1).
    /// `Ok(false)`: no stream in the table has that identifier; its window went back to the connection, and
    /// whether the frame is an error is the caller's to say.
    pub fn recv_data(&mut self, stream: u32, data: Bytes, end_stream: bool, flow_len: u32) -> Result<bool, ErrorCode> {
        if !self.recv_conn(flow_len) {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        let Some(key) = self.find(stream) else {
            self.release_conn(flow_len);
            return Ok(false);
        };
        let taken = if self.has_head(key) {
            self.data(key, data, end_stream, flow_len)
        } else {
            self.release_conn(flow_len);
            Err(ErrorCode::PROTOCOL_ERROR)
        };
        if let Err(code) = taken {
            self.reset(key, code);
        }
        Ok(true)
    }

    /// A DATA frame for `key`. A refused frame's window goes back to the connection at once: no stream will take
    /// it.
    fn data(&mut self, key: Key, data: Bytes, end_stream: bool, flow_len: u32) -> Refused {
        let taken = self.take_data(key, data, end_stream, flow_len);
        if taken.is_err() {
            self.release_conn(flow_len);
        }
        taken
    }

    fn take_data(&mut self, key: Key, data: Bytes, end_stream: bool, flow_len: u32) -> Refused {
        let Some(s) = self.get(key) else { return Ok(()) };
        if s.recv_done || s.reset.is_some() {
            // Its window was counted on the connection's by the caller; the stream takes no more.
            return Err(ErrorCode::STREAM_CLOSED);
        }
        if i64::from(flow_len) > s.recv_window {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        s.recv_window -= i64::from(flow_len);
        let len = data.len() as u64;
        let malformed = match &mut s.remaining {
            Some(left) if len > *left => true,
            Some(left) => {
                *left -= len;
                end_stream && *left != 0
            }
            None => false,
        };
        if malformed {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        // Padding is not the request's: its window goes back at once, and all of it when nobody reads the body.
        let mut padding = flow_len - data.len() as u32;
        if s.body_gone {
            padding = flow_len;
        } else if !data.is_empty() {
            s.data.push_back(data);
        }
        s.recv_done = end_stream;
        if let Some(w) = s.body_waker.take() {
            w.wake();
        }
        if padding > 0 {
            self.release(key, padding as usize);
        }
        if end_stream {
            self.settle(key);
        }
        Ok(())
    }

    /// The request's trailers (a HEADERS frame with END_STREAM after the head).
    pub fn trailers(&mut self, key: Key, trailers: HeaderMap) -> Refused {
        let Some(s) = self.get(key) else { return Ok(()) };
        if s.recv_done || s.reset.is_some() {
            return Err(ErrorCode::STREAM_CLOSED);
        }
        if s.remaining.is_some_and(|left| left != 0) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        s.trailers = Some(trailers);
        s.recv_done = true;
        if let Some(w) = s.body_waker.take() {
            w.wake();
        }
        self.settle(key);
        Ok(())
    }

    /// Whether the stream still takes frames from the client.
    pub fn receiving(&mut self, key: Key) -> bool {
        self.get(key).is_some_and(|s| !s.recv_done && s.reset.is_none())
    }

    /// Whether the gateway still has a response to send on the stream.
    pub fn sending(&mut self, key: Key) -> bool {
        self.get(key).is_some_and(|s| !s.send_done && s.reset.is_none())
    }

    /// One more handle on the stream (a tunnel taking over from the response's sender).
    pub fn add_handle(&mut self, key: Key) {
        if let Some(s) = self.get(key) {
            s.handles += 1;
        }
    }

    /// The peer's RST_STREAM.
    pub fn peer_reset(&mut self, key: Key, code: ErrorCode) {
        let Some(s) = self.get(key) else { return };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some(StreamGone::Reset(code));
        s.wake_all();
        self.settle(key);
    }

    /// The gateway resets the stream (a stream error in what the peer sent, or the gateway's side failed).
    pub fn reset(&mut self, key: Key, code: ErrorCode) {
        self.reset_as(key, code, StreamGone::Local(code));
    }

    /// The peer's header block on the stream was over the header-list limit: the stream is reset (as a client:
    /// a response head too large; a client's request gets its 431 instead).
    pub fn reset_too_large(&mut self, key: Key) {
        self.reset_as(key, ErrorCode::CANCEL, StreamGone::HeadTooLarge);
    }

    fn reset_as(&mut self, key: Key, code: ErrorCode, why: StreamGone) {
        let Some(s) = self.get(key) else { return };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some(why);
        s.wake_all();
        frame::write_rst_stream(key.id, code, &mut self.out);
        self.settle(key);
        self.wake_conn();
    }

    /// A WINDOW_UPDATE for a stream; false when it takes the window past its ceiling (a stream error).
    pub fn stream_window(&mut self, key: Key, increment: u32) -> bool {
        let Some(s) = self.get(key) else { return true };
        s.send_window += i64::from(increment);
        if s.send_window > MAX_WINDOW {
            return false;
        }
        if let Some(w) = s.send_waker.take() {
            w.wake();
        }
        true
    }

    /// A WINDOW_UPDATE for the connection; false past the ceiling (a connection error).
    pub fn conn_window(&mut self, increment: u32) -> bool {
        self.conn_send_window += i64::from(increment);
        for w in self.send_waiters.drain(..) {
            w.wake();
        }
        self.conn_send_window <= MAX_WINDOW
    }

    /// The client's SETTINGS_INITIAL_WINDOW_SIZE: every stream's window moves by the difference (RFC 9113
    /// §6.9.2); false when one would pass the ceiling.
    pub fn initial_window(&mut self, size: u32) -> bool {
        let delta = i64::from(size) - self.peer_initial_window;
        self.peer_initial_window = i64::from(size);
        let mut ok = true;
        for s in self.slots.iter_mut().flatten() {
            s.send_window += delta;
            ok &= s.send_window <= MAX_WINDOW;
            if delta > 0
                && let Some(w) = s.send_waker.take()
            {
                w.wake();
            }
        }
        ok
    }

    /// The peer's SETTINGS, as they bear on what the gateway sends: every stream's window moves with
    /// INITIAL_WINDOW_SIZE, DATA is cut to MAX_FRAME_SIZE; the ACK is queued. `Err` is a connection error.
    pub fn apply_settings(&mut self, settings: &frame::Settings) -> Result<(), ErrorCode> {
        if let Some(size) = settings.initial_window_size
            && !self.initial_window(size)
        {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        if let Some(size) = settings.max_frame_size {
            self.peer_max_frame = size;
        }
        frame::write_settings_ack(&mut self.out);
        Ok(())
    }

    /// A DATA frame's `flow_len` against the connection's receive window; false when it exceeds it (a
    /// connection error FLOW_CONTROL_ERROR).
    fn recv_conn(&mut self, flow_len: u32) -> bool {
        self.conn_recv_window -= i64::from(flow_len);
        self.conn_recv_window >= 0
    }

    /// `n` bytes of the connection's window taken (by the request path, or by a frame no stream takes): the
    /// client may send as much again, told once half the window has gathered.
    pub fn release_conn(&mut self, n: u32) {
        self.conn_unreleased += n;
        if self.conn_unreleased >= CONNECTION_WINDOW / 2 {
            frame::write_window_update(0, self.conn_unreleased, &mut self.out);
            self.conn_recv_window += i64::from(self.conn_unreleased);
            self.conn_unreleased = 0;
        }
    }

    /// The connection ended: every handle's next step fails, and every waiting party is woken to see it.
    pub fn close(&mut self) {
        self.closed = true;
        for s in self.slots.iter_mut().flatten() {
            s.wake_all();
        }
        for w in self.send_waiters.drain(..) {
            w.wake();
        }
    }

    /// After the connection wrote what was queued: streams that waited for the queue to drain go on.
    pub fn drained(&mut self) {
        for w in self.send_waiters.drain(..) {
            w.wake();
        }
    }

    // ---- From the handles: the request body. ----

    /// The next DATA of the request (`None` at its end; then [`Inner::take_trailers`]).
    pub fn poll_data(&mut self, key: Key, cx: &Context<'_>) -> Poll<Option<Result<Bytes, StreamGone>>> {
        let closed = self.closed;
        let Some(s) = self.get(key) else { return Poll::Ready(Some(Err(StreamGone::ConnectionClosed))) };
        if let Some(data) = s.data.pop_front() {
            return Poll::Ready(Some(Ok(data)));
        }
        // What the peer sent whole stays whole, whatever reset came after (a server's RST_STREAM NO_ERROR once
        // its response is complete, RFC 9113 §8.1).
        if s.recv_done {
            return Poll::Ready(None);
        }
        if let Some(gone) = s.reset {
            return Poll::Ready(Some(Err(gone)));
        }
        if closed {
            return Poll::Ready(Some(Err(StreamGone::ConnectionClosed)));
        }
        s.body_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub fn take_trailers(&mut self, key: Key) -> Option<HeaderMap> {
        self.get(key)?.trailers.take()
    }

    /// Whether the request has nothing more to give.
    pub fn body_ended(&mut self, key: Key) -> bool {
        self.get(key).is_none_or(|s| s.received_all())
    }

    /// `n` bytes of the request taken by the request path: the client may send as much again, told once half a
    /// window has gathered (one WINDOW_UPDATE per half window, not per frame).
    pub fn release(&mut self, key: Key, n: usize) {
        let n = n as u32;
        if let Some(s) = self.get(key) {
            s.recv_unreleased += n;
            if !s.recv_done && s.reset.is_none() && s.recv_unreleased >= STREAM_WINDOW / 2 {
                let inc = s.recv_unreleased;
                s.recv_unreleased = 0;
                s.recv_window += i64::from(inc);
                frame::write_window_update(key.id, inc, &mut self.out);
            }
        }
        self.release_conn(n);
        self.wake_conn();
    }

    // ---- From the handles: the response. ----

    /// The response head; `end_stream` when it has no body.
    pub fn send_head(
        &mut self,
        key: Key,
        status: StatusCode,
        headers: &HeaderMap,
        end_stream: bool,
    ) -> Result<(), StreamGone> {
        let mut block = std::mem::take(&mut self.block);
        self.encoder.status(status, &mut block);
        for (name, value) in headers {
            self.encoder.field(name, value, &mut block);
        }
        self.send_block(key, block, end_stream)
    }

    /// The response's trailers, which end the stream.
    pub fn send_trailers(&mut self, key: Key, trailers: &HeaderMap) -> Result<(), StreamGone> {
        let mut block = std::mem::take(&mut self.block);
        for (name, value) in trailers {
            self.encoder.field(name, value, &mut block);
        }
        self.send_block(key, block, true)
    }

    /// Frames an encoded block for the stream; the block's buffer is kept for the next one.
    fn send_block(&mut self, key: Key, mut block: BytesMut, end_stream: bool) -> Result<(), StreamGone> {
        let sent = self.frame_block(key, &block, end_stream);
        block.clear();
        self.block = block;
        sent
    }

    fn frame_block(&mut self, key: Key, block: &[u8], end_stream: bool) -> Result<(), StreamGone> {
        let max_frame = self.peer_max_frame;
        let s = self.check_send(key)?;
        if end_stream {
            s.send_done = true;
        }
        frame::write_headers(key.id, block, end_stream, max_frame, &mut self.out);
        if end_stream {
            self.settle(key);
        }
        self.wake_conn();
        Ok(())
    }

    /// Response DATA: as much of `data` as the windows let out now, in frames of the client's size; Ready once
    /// all of it is queued (with END_STREAM on the last frame when `end_stream`).
    pub fn poll_send_data(
        &mut self,
        key: Key,
        cx: &Context<'_>,
        data: &mut impl Buf,
        end_stream: bool,
    ) -> Poll<Result<(), StreamGone>> {
        if !data.has_remaining() && !end_stream {
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.out.len() >= WRITE_HIGH_WATER {
                self.wait_to_send(cx);
                self.wake_conn();
                return Poll::Pending;
            }
            let conn_window = self.conn_send_window;
            let max_frame = self.peer_max_frame as usize;
            let s = match self.check_send(key) {
                Ok(s) => s,
                Err(gone) => return Poll::Ready(Err(gone)),
            };
            let room = s.send_window.min(conn_window).max(0) as usize;
            let n = data.remaining().min(room).min(max_frame);
            if n == 0 && data.has_remaining() {
                if s.send_window <= 0 {
                    s.send_waker = Some(cx.waker().clone());
                } else {
                    self.wait_to_send(cx);
                }
                return Poll::Pending;
            }
            s.send_window -= n as i64;
            let last = n == data.remaining();
            let eos = last && end_stream;
            if eos {
                s.send_done = true;
            }
            self.conn_send_window -= n as i64;
            frame::write_data_head(key.id, n as u32, eos, &mut self.out);
            // A `Bytes` or a slice: one contiguous chunk.
            self.out.extend_from_slice(&data.chunk()[..n]);
            data.advance(n);
            self.wake_conn();
            if last {
                if eos {
                    self.settle(key);
                }
                return Poll::Ready(Ok(()));
            }
        }
    }

    // ---- As a client: the request out, the response head in. ----

    /// A request's head on a stream from [`Inner::open_local`]; `protocol`: an extended CONNECT's (RFC 8441).
    pub fn send_request(
        &mut self,
        key: Key,
        method: &Method,
        uri: &Uri,
        protocol: Option<&str>,
        headers: &HeaderMap,
        end_stream: bool,
    ) -> Result<(), StreamGone> {
        let mut block = std::mem::take(&mut self.block);
        self.encoder.pseudo(Pseudo::Method, method.as_str().as_bytes(), &mut block);
        self.encoder.pseudo(Pseudo::Scheme, uri.scheme_str().unwrap_or("http").as_bytes(), &mut block);
        if let Some(authority) = uri.authority() {
            self.encoder.pseudo(Pseudo::Authority, authority.as_str().as_bytes(), &mut block);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        self.encoder.pseudo(Pseudo::Path, path.as_bytes(), &mut block);
        if let Some(protocol) = protocol {
            self.encoder.pseudo(Pseudo::Protocol, protocol.as_bytes(), &mut block);
        }
        for (name, value) in headers {
            self.encoder.field(name, value, &mut block);
        }
        self.send_block(key, block, end_stream)
    }

    /// Whether the stream's final response head came.
    pub fn has_head(&mut self, key: Key) -> bool {
        self.get(key).is_some_and(|s| s.has_head)
    }

    /// The peer's final response head, with its Content-Length (`length`): checked against the DATA to come
    /// (RFC 9113 §8.1.1), except after a HEAD request or on a 204 or 304, whose Content-Length counts no body.
    pub fn response_head(
        &mut self,
        key: Key,
        status: StatusCode,
        headers: HeaderMap,
        length: Option<u64>,
        end_stream: bool,
    ) -> Refused {
        let Some(s) = self.get(key) else { return Ok(()) };
        if s.recv_done || s.reset.is_some() {
            return Err(ErrorCode::STREAM_CLOSED);
        }
        let counts_body = !s.head_request && status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED;
        let remaining = length.filter(|_| counts_body);
        if end_stream && remaining.is_some_and(|n| n != 0) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        s.remaining = remaining;
        s.head = Some((status, headers));
        s.has_head = true;
        s.recv_done = end_stream;
        if let Some(w) = s.body_waker.take() {
            w.wake();
        }
        if end_stream {
            self.settle(key);
        }
        Ok(())
    }

    /// The final response head, once it came, and whether it is the whole response (no body, no trailers).
    pub fn poll_head(&mut self, key: Key, cx: &Context<'_>) -> Poll<Result<ResponseHead, StreamGone>> {
        let closed = self.closed;
        let Some(s) = self.get(key) else { return Poll::Ready(Err(StreamGone::ConnectionClosed)) };
        if let Some((status, headers)) = s.head.take() {
            let whole = s.received_all();
            return Poll::Ready(Ok(ResponseHead { status, headers, whole }));
        }
        if let Some(gone) = s.reset {
            return Poll::Ready(Err(gone));
        }
        if closed || s.has_head {
            return Poll::Ready(Err(StreamGone::ConnectionClosed));
        }
        s.body_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// How the stream ended, if it did: its reset, or the connection's end.
    pub fn gone(&mut self, key: Key) -> Option<StreamGone> {
        let closed = self.closed;
        match self.get(key) {
            Some(s) => s.reset.or(closed.then_some(StreamGone::ConnectionClosed)),
            None => Some(StreamGone::ConnectionClosed),
        }
    }

    /// Streams above `last_id` (a GOAWAY's last_stream_id): the peer will not process them (RFC 9113 §6.8).
    pub fn refuse_above(&mut self, last_id: u32) {
        let above: Vec<Key> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.as_ref().filter(|s| s.id > last_id).map(|s| Key { slot, id: s.id }))
            .collect();
        for key in above {
            self.reset(key, ErrorCode::REFUSED_STREAM);
        }
    }

    /// Registers a stream's waker for the connection's window or the queue's draining, once.
    fn wait_to_send(&mut self, cx: &Context<'_>) {
        if !self.send_waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.send_waiters.push(cx.waker().clone());
        }
    }

    fn check_send(&mut self, key: Key) -> Result<&mut StreamState, StreamGone> {
        let closed = self.closed;
        let s = self.get(key).ok_or(StreamGone::ConnectionClosed)?;
        match s.reset {
            Some(gone) => Err(gone),
            None if closed || s.send_done => Err(StreamGone::ConnectionClosed),
            None => Ok(s),
        }
    }

    /// Ready with the client's code once the client reset the stream.
    pub fn poll_reset(&mut self, key: Key, cx: &Context<'_>) -> Poll<ErrorCode> {
        let closed = self.closed;
        let Some(s) = self.get(key) else { return Poll::Ready(ErrorCode::CANCEL) };
        match s.reset {
            Some(StreamGone::Reset(code)) => Poll::Ready(code),
            _ if closed => Poll::Ready(ErrorCode::CANCEL),
            _ => {
                s.reset_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The request body's handle is dropped: what it left unread, and what the client sends from now on, is
    /// dropped and its window given back.
    pub fn drop_body(&mut self, key: Key) {
        if let Some(s) = self.get(key) {
            s.body_gone = true;
            let unread: usize = s.data.drain(..).map(|d| d.len()).sum();
            if unread > 0 {
                self.release(key, unread);
            }
        }
        self.drop_handle(key);
    }

    /// One of the stream's handles is dropped; the last one resets a stream not ended both ways and frees its
    /// entry.
    pub fn drop_handle(&mut self, key: Key) {
        let Some(s) = self.get(key) else { return };
        s.handles = s.handles.saturating_sub(1);
        if s.handles > 0 {
            return;
        }
        let unfinished = s.reset.is_none() && !(s.recv_done && s.send_done);
        let code = if s.send_done { ErrorCode::NO_ERROR } else { ErrorCode::CANCEL };
        // Request bytes never taken go back to the connection's window (those taken already went back as they
        // were taken, [`Inner::release`]).
        let untaken: usize = s.data.iter().map(Bytes::len).sum::<usize>();
        if unfinished && !self.closed {
            frame::write_rst_stream(key.id, code, &mut self.out);
            if let Some(s) = self.get(key) {
                s.reset = Some(StreamGone::Local(code));
            }
        }
        self.settle(key);
        self.slots[key.slot] = None;
        self.free.push(key.slot);
        if untaken > 0 {
            self.release_conn(untaken as u32);
        }
        self.wake_conn();
    }
}
