//! HTTP/2 to targets (`protocol_version = "http2"` or `"grpc"`): one connection carries many requests'
//! streams. The gateway speaks HTTP/2 to targets itself, as it does to clients: frames and HPACK are
//! `waygate_h2wire`'s, the stream table and flow control are [`crate::h2conn`]'s (shared with the server for
//! clients), and this module owns the client's side of the protocol and what the gateway needs around it. It
//! replaced the `h2` crate here: with h2, a small gRPC call took 76,961 instructions through the gateway, about
//! 28,000 of them in h2's client (docs/benchmarks.md, "Instructions per request"); and h2 hid what the
//! gateway's evidence needs (a GOAWAY's last_stream_id, which a reader beside it had to pick out of the bytes).
//!
//! - [`Shared`]: one connection, shared by the requests whose streams it carries, up to the target's
//!   SETTINGS_MAX_CONCURRENT_STREAMS; beyond that a new connection opens ([`Pool`]).
//! - [`conn`]: the connection's task: frames read and applied, what the streams queued written, keep-alive
//!   PINGs on a quiet connection (closed when a PONG does not come), and the close after `pool_idle_timeout`
//!   without streams.
//! - [`response`]: a response head from its fields, checked (RFC 9113 §8.3.2).
//! - [`stream`]: one request's stream: send, response head, body and trailers, and every failure as evidence
//!   (a reset and its code, a GOAWAY and whether it spared the stream, a protocol error).
//! - [`connect`]: a WebSocket's stream, opened by an extended CONNECT (RFC 8441).

mod conn;
pub mod connect;
mod response;
pub mod stream;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use crossbeam_utils::CachePadded;
use waygate_faults::{H2Evidence, Phase};
use waygate_h2wire::frame::{self, ErrorCode, Settings};
use waygate_telemetry::ConnectionGuard;

use super::AttemptFailure;
use super::liveness::Probe;
use super::meter::ConnCounters;
use super::transport::Transport;
use crate::h2conn::{self, CONNECTION_WINDOW, STREAM_WINDOW};
use crate::lock;
pub use stream::{Request, Stream, describe};

/// One HTTP/2 connection to a target, as the pool and the streams on it see it.
#[derive(Debug)]
pub struct Shared {
    /// The stream table, flow control and frames queued, shared with the connection's task.
    conn: Arc<h2conn::Shared>,
    state: Arc<State>,
    pub counters: Arc<ConnCounters>,
    pub probe: Option<Arc<Probe>>,
    /// Keeps the connection in `waygate_active_connections{side="target"}` while it is open (not a health
    /// check's).
    _open: Option<ConnectionGuard>,
}

/// What the connection's task, the pool and the streams share beside the stream table.
#[derive(Debug)]
struct State {
    /// Streams open on the connection now (leased by requests).
    streams: AtomicUsize,
    /// The target's SETTINGS_MAX_CONCURRENT_STREAMS, as the connection last reported it.
    max_streams: AtomicUsize,
    /// No new streams: the target sent GOAWAY, or the connection ended or is being closed.
    closing: AtomicBool,
    /// The target's SETTINGS allowed extended CONNECT (RFC 8441 §3).
    connect_protocol: AtomicBool,
    /// The last GOAWAY: last_stream_id and error code, packed; `u64::MAX` until one comes.
    goaway: AtomicU64,
    /// How the connection ended, once it did.
    ended: Mutex<Option<Ended>>,
    /// Set by the connection's task once the target's SETTINGS were applied (its stream limit is known).
    settled: tokio::sync::watch::Sender<bool>,
    /// When the last stream ended (for the idle close), as the tokio clock read it.
    idle_since: Mutex<Option<tokio::time::Instant>>,
}

/// How a connection ended: the evidence for the streams it took with it.
#[derive(Debug)]
enum Ended {
    /// The target closed it, or the socket failed.
    Io(std::io::Error),
    /// The gateway found a connection error in what the target sent (and sent GOAWAY with this code).
    Protocol(ErrorCode),
    /// The gateway ended it, for the reason given (a keep-alive PING unanswered).
    Gateway(String),
}

impl State {
    /// `(last_stream_id, error_code)` of the last GOAWAY received, if any.
    fn goaway(&self) -> Option<(u32, u32)> {
        let v = self.goaway.load(Ordering::Acquire);
        (v != u64::MAX).then_some(((v >> 32) as u32, v as u32))
    }

    fn set_goaway(&self, last_stream_id: u32, code: ErrorCode) {
        self.goaway.store(u64::from(last_stream_id) << 32 | u64::from(code.0), Ordering::Release);
    }
}

impl Shared {
    /// Opens HTTP/2 on a connected transport: the preface and SETTINGS go out, and the connection's task starts.
    /// A TLS transport must have negotiated `h2` ([`H2Evidence::NotNegotiated`] otherwise). The target's
    /// SETTINGS are awaited for at most `settle_within`, so that its stream limit is known before the connection
    /// is shared; a target that sends none in time is left to fail the request with what it does instead.
    pub async fn handshake(
        transport: Transport,
        counters: Arc<ConnCounters>,
        probe: Option<Arc<Probe>>,
        open: Option<ConnectionGuard>,
        idle_timeout: Duration,
        settle_within: Duration,
    ) -> Result<Arc<Self>, AttemptFailure> {
        if let Transport::Tls(tls) = &transport
            && tls.get_ref().1.alpn_protocol() != Some(b"h2")
        {
            let mut f =
                AttemptFailure { h2: Some(H2Evidence::NotNegotiated), ..AttemptFailure::new(Phase::TlsHandshake) };
            f.conn = Some(counters.snapshot(false, None));
            counters.close_by_gateway();
            return Err(f);
        }
        let conn = h2conn::Shared::new();
        preface(&mut conn.lock().out);
        let state = Arc::new(State {
            streams: AtomicUsize::new(0),
            // Until the target's SETTINGS say otherwise: RFC 9113 §6.5.2 sets no limit, and h2 assumed 100.
            max_streams: AtomicUsize::new(100),
            closing: AtomicBool::new(false),
            connect_protocol: AtomicBool::new(false),
            goaway: AtomicU64::new(u64::MAX),
            ended: Mutex::new(None),
            settled: tokio::sync::watch::Sender::new(false),
            idle_since: Mutex::new(Some(tokio::time::Instant::now())),
        });
        let mut settled = state.settled.subscribe();
        let task =
            conn::Conn::new(transport, conn.clone(), state.clone(), counters.clone(), probe.clone(), idle_timeout);
        tokio::spawn(task);
        let _ = tokio::time::timeout(settle_within, settled.wait_for(|s| *s)).await;
        Ok(Arc::new(Self { conn, state, counters, probe, _open: open }))
    }

    /// A stream on this connection, if it has room for one (the connection's first: `reused` false).
    pub fn stream(this: &Arc<Self>) -> Option<Stream> {
        this.try_take().then(|| Stream::new(this.clone(), false))
    }

    /// Takes a stream slot whatever the limit or the connection's state: for the request that opened the
    /// connection when the pool would not take it (it is closing already: the stream's send then fails, with
    /// what closed it as the evidence).
    pub fn take_slot(&self) {
        self.state.streams.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes a stream slot if the connection is open and below the target's limit.
    fn try_take(self: &Arc<Self>) -> bool {
        if self.state.closing.load(Ordering::Acquire) {
            return false;
        }
        let max = self.state.max_streams.load(Ordering::Relaxed).max(1);
        let taken =
            self.state.streams.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.is_ok()
    }

    /// The stream that ended gives its slot back.
    fn give_back(&self) {
        if self.state.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.state.idle_since) = Some(tokio::time::Instant::now());
        }
    }

    pub fn is_closing(&self) -> bool {
        self.state.closing.load(Ordering::Acquire)
    }

    /// Closes the connection now (the target was retired): every stream on it fails.
    pub fn close(&self) {
        self.state.closing.store(true, Ordering::Release);
        if let Some(probe) = &self.probe {
            probe.shutdown();
        }
    }
}

/// The last handle on the connection gone (the pool let it go, the last stream ended): no stream can come any
/// more, so its task ends it once the streams on it are done.
impl Drop for Shared {
    fn drop(&mut self) {
        self.state.closing.store(true, Ordering::Release);
        self.conn.lock().wake_conn();
    }
}

/// The client's connection preface (RFC 9113 §3.4): the magic, SETTINGS (no push; the gateway's windows and
/// response-head limit), and the connection window opened to [`CONNECTION_WINDOW`].
fn preface(out: &mut BytesMut) {
    out.extend_from_slice(frame::PREFACE);
    let settings = Settings {
        enable_push: Some(false),
        initial_window_size: Some(STREAM_WINDOW),
        max_header_list_size: Some(super::MAX_RESPONSE_HEAD as u32),
        ..Settings::default()
    };
    settings.write(out);
    frame::write_window_update(0, CONNECTION_WINDOW - 65_535, out);
}

/// A target's HTTP/2 connections, one set per worker thread: every request takes a stream on the first
/// connection of its own worker with room. A connection's task runs on the worker that opened it, so a stream
/// shared with another worker would wake that thread for each frame (an eventfd write and a context switch
/// per response, the largest cost in a gRPC profile before this split); with 2 workers a target sees 2
/// connections instead of 1, which HTTP/2 servers expect of any multi-threaded client.
#[derive(Debug)]
pub struct Pool {
    slots: Box<[CachePadded<Slot>]>,
}

#[derive(Debug, Default)]
struct Slot {
    conns: Mutex<Vec<Arc<Shared>>>,
    /// Held while a connection opens ([`super::Upstream::lease`]).
    opening: tokio::sync::Mutex<()>,
}

impl Pool {
    /// A pool with one set of connections per worker (`slots`, at least one).
    pub fn new(slots: usize) -> Self {
        Self { slots: (0..slots.max(1)).map(|_| CachePadded::default()).collect() }
    }

    fn slot(&self) -> &Slot {
        &self.slots[crate::workers::current() % self.slots.len()]
    }

    /// The calling worker's lock, held while one of its connections opens.
    pub fn opening(&self) -> &tokio::sync::Mutex<()> {
        &self.slot().opening
    }

    /// A stream slot on an open connection of the calling worker with room, if there is one.
    pub fn checkout(&self) -> Option<Arc<Shared>> {
        let mut conns = lock(&self.slot().conns);
        conns.retain(|c| !c.is_closing());
        conns.iter().find(|c| c.try_take()).cloned()
    }

    /// Adds a new connection to the calling worker's, its first stream slot taken for the request that opened it.
    pub fn add(&self, shared: &Arc<Shared>) -> bool {
        if !shared.try_take() {
            return false;
        }
        lock(&self.slot().conns).push(shared.clone());
        true
    }

    /// Closes every connection (the target is retired).
    pub fn clear(&self) {
        for slot in &self.slots {
            for c in lock(&slot.conns).drain(..) {
                c.close();
            }
        }
    }

    /// Open connections carrying no stream.
    pub fn idle_count(&self) -> usize {
        let idle = |c: &&Arc<Shared>| !c.is_closing() && c.state.streams.load(Ordering::Relaxed) == 0;
        self.slots.iter().map(|s| lock(&s.conns).iter().filter(idle).count()).sum()
    }
}
