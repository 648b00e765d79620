//! What a client's HTTP/2 connection and its streams share: the table of streams (each one's received DATA
//! and trailers, both flow-control windows, its wakers), the connection's windows, and the frames queued for
//! the client. The connection ([`super::conn`]) fills it from the frames it reads and writes out what is
//! queued; a stream's handles (its response [`Sender`], its request body, a tunnel's halves) take and queue
//! through it. One mutex guards it all: the streams run inside the connection's task, and a tunnel's task runs on
//! the same worker thread (a runtime without workers, as in tests, is the exception), so it is hardly ever
//! contended, and one lock per step costs less than a lock per stream and one per connection would.
//!
//! A stream's entry lives as long as any of its handles: its last handle dropped before both directions
//! ended resets the stream (RST_STREAM CANCEL, or NO_ERROR when the response was complete and only the
//! client's request was still coming, RFC 9113 §8.1).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use waygate_h2wire::frame::{self, ErrorCode};
use waygate_h2wire::hpack;

use super::{CONNECTION_WINDOW, STREAM_WINDOW};

/// Frames queued for the client beyond which a stream's DATA waits for the connection to write them (the
/// client does not read): per connection, whatever the windows the client advertises.
pub(super) const WRITE_HIGH_WATER: usize = 256 * 1024;

/// The HTTP/2 flow-control window's ceiling (RFC 9113 §6.9.1).
const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Why a stream operation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamGone {
    /// The client reset the stream with this code.
    Reset(ErrorCode),
    /// The connection ended (the client closed it, or it failed).
    ConnectionClosed,
}

impl std::fmt::Display for StreamGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamGone::Reset(code) => write!(f, "the client reset the HTTP/2 stream ({code})"),
            StreamGone::ConnectionClosed => f.write_str("the client's HTTP/2 connection closed"),
        }
    }
}

impl std::error::Error for StreamGone {}

/// The state shared by one connection and its streams.
#[derive(Debug)]
pub(super) struct Shared(Mutex<Inner>);

/// One stream as the table knows it: where it is, and its id to check that it is still the same stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub slot: usize,
    pub id: u32,
}

#[derive(Debug)]
pub(super) struct Inner {
    slots: Vec<Option<StreamState>>,
    free: Vec<usize>,
    /// Frames for the client, in the order they are to go out.
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
    /// The stream was reset: by the client (its code), or by the gateway.
    reset: Option<(ErrorCode, bool)>,
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
}

/// What the client sent on a stream was refused: the stream error to reset it with.
pub(super) type Refused = Result<(), ErrorCode>;

impl Shared {
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

    /// A new stream from the client's HEADERS, with its handles to be (the sender and the request body).
    pub fn open(&mut self, id: u32, recv_done: bool, remaining: Option<u64>, handles: u8) -> Key {
        let state = StreamState {
            id,
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

    /// The live stream with this id, if any (the table is small: at most the streams in flight).
    pub fn find(&self, id: u32) -> Option<Key> {
        self.slots.iter().enumerate().find_map(|(slot, s)| s.as_ref().filter(|s| s.id == id).map(|_| Key { slot, id }))
    }

    /// Wakes the connection's task if this runs outside its poll.
    fn wake_conn(&mut self) {
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

    /// A DATA frame for `key`; `flow_len` counts its padding too. A refused frame's window goes back to the
    /// connection at once: no stream will take it.
    pub fn data(&mut self, key: Key, data: Bytes, end_stream: bool, flow_len: u32) -> Refused {
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

    /// The client's RST_STREAM.
    pub fn client_reset(&mut self, key: Key, code: ErrorCode) {
        let Some(s) = self.get(key) else { return };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some((code, true));
        s.wake_all();
        self.settle(key);
    }

    /// The gateway resets the stream (a stream error in what the client sent, or the response failed).
    pub fn reset(&mut self, key: Key, code: ErrorCode) {
        let Some(s) = self.get(key) else { return };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some((code, false));
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

    /// A DATA frame's `flow_len` against the connection's receive window; false when it exceeds it (a
    /// connection error FLOW_CONTROL_ERROR).
    pub fn recv_conn(&mut self, flow_len: u32) -> bool {
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
        if let Some((code, by_client)) = s.reset {
            return Poll::Ready(Some(Err(if by_client {
                StreamGone::Reset(code)
            } else {
                StreamGone::ConnectionClosed
            })));
        }
        if s.recv_done {
            return Poll::Ready(None);
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
        self.get(key).is_none_or(|s| s.recv_done && s.data.is_empty() && s.trailers.is_none())
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
            Some((code, true)) => Err(StreamGone::Reset(code)),
            Some((_, false)) => Err(StreamGone::ConnectionClosed),
            None if closed || s.send_done => Err(StreamGone::ConnectionClosed),
            None => Ok(s),
        }
    }

    /// Ready with the client's code once the client reset the stream.
    pub fn poll_reset(&mut self, key: Key, cx: &Context<'_>) -> Poll<ErrorCode> {
        let closed = self.closed;
        let Some(s) = self.get(key) else { return Poll::Ready(ErrorCode::CANCEL) };
        match s.reset {
            Some((code, true)) => Poll::Ready(code),
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
                s.reset = Some((code, false));
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
