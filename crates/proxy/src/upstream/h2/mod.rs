//! HTTP/2 to targets (`protocol_version = "http2"` or `"grpc"`): one connection carries many requests'
//! streams. The `h2` crate speaks the protocol; this module owns what the gateway needs around it:
//!
//! - [`Shared`]: one connection, shared by the requests whose streams it carries, up to the target's
//!   SETTINGS_MAX_CONCURRENT_STREAMS; beyond that a new connection opens ([`Pool`]).
//! - the connection's task ([`driver`]): drives the connection, sends keep-alive PINGs on a quiet
//!   connection and closes it when a PONG does not come, and closes it after `pool_idle_timeout` without
//!   streams.
//! - [`frames`]: the GOAWAY's last_stream_id and error code, read from the frame as it passes, so that a stream
//!   the target never processed is told from one it accepted.
//! - [`stream`]: one request's stream: send, response head, body and trailers, and every failure as evidence.
//! - [`connect`]: a WebSocket's stream, opened by an extended CONNECT (RFC 8441).

pub mod connect;
mod driver;
pub mod frames;
pub mod stream;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_utils::CachePadded;
use waygate_faults::{H2Evidence, Phase};
use waygate_telemetry::ConnectionGuard;

use super::liveness::Probe;
use super::meter::ConnCounters;
use super::transport::Transport;
use super::{AttemptFailure, failure};
use crate::lock;
use frames::{Seen, Watched};
pub use stream::{Request, Stream, describe};

/// Flow-control windows the gateway gives targets: as the client side's (server/h2.rs), so a relayed body
/// moves at the same pace on both sides.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// One HTTP/2 connection to a target, as the pool and the streams on it see it.
#[derive(Debug)]
pub struct Shared {
    send: h2::client::SendRequest<Bytes>,
    state: Arc<State>,
    pub counters: Arc<ConnCounters>,
    pub probe: Option<Arc<Probe>>,
    /// Keeps the connection in `waygate_active_connections{side="target"}` while it is open (not a health
    /// check's).
    _open: Option<ConnectionGuard>,
}

/// What the connection's task and its streams share.
#[derive(Debug)]
struct State {
    /// Streams open on the connection now (leased by requests).
    streams: AtomicUsize,
    /// The target's SETTINGS_MAX_CONCURRENT_STREAMS, as the connection last reported it.
    max_streams: AtomicUsize,
    /// No new streams: the target sent GOAWAY, or the connection ended or is being closed.
    closing: AtomicBool,
    /// Why the connection ended, when the gateway ended it (a PING unanswered, idle past the pool timeout).
    ended: Mutex<Option<String>>,
    seen: Arc<Seen>,
    /// Set by the connection's task once the target's SETTINGS were applied (its stream limit is known).
    settled: tokio::sync::watch::Sender<bool>,
    /// When the last stream ended (for the idle close), as the tokio clock read it.
    idle_since: Mutex<Option<tokio::time::Instant>>,
}

impl Shared {
    /// Opens HTTP/2 on a connected transport: the preface and SETTINGS go out, and the connection's task starts.
    /// A TLS transport must have negotiated `h2` ([`H2Evidence::NotNegotiated`] otherwise).
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
        let goaway = Arc::new(Seen::default());
        let io = Watched::new(transport, goaway.clone());
        let handshake = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(super::MAX_RESPONSE_HEAD as u32)
            .handshake::<_, Bytes>(io)
            .await;
        let (send, conn) = match handshake {
            Ok(pair) => pair,
            Err(e) => {
                let f =
                    stream::failure(Phase::SendRequest, &e, None, &goaway).with_conn(counters.snapshot(false, None));
                return Err(f);
            }
        };
        let state = Arc::new(State {
            streams: AtomicUsize::new(0),
            max_streams: AtomicUsize::new(conn.max_concurrent_send_streams()),
            closing: AtomicBool::new(false),
            ended: Mutex::new(None),
            seen: goaway,
            settled: tokio::sync::watch::Sender::new(false),
            idle_since: Mutex::new(None),
        });
        let mut settled = state.settled.subscribe();
        tokio::spawn(driver::drive(conn, state.clone(), counters.clone(), idle_timeout, probe.clone()));
        // The target's stream limit is known before the connection is shared (one round trip). A target that
        // sends no SETTINGS in time is left to fail the request with what it does instead.
        let _ = tokio::time::timeout(settle_within, settled.wait_for(|s| *s)).await;
        Ok(Arc::new(Self { send, state, counters, probe, _open: open }))
    }

    /// A stream on this connection, if it has room for one.
    pub fn stream(this: &Arc<Self>) -> Option<Stream> {
        this.try_take().then(|| Stream::new(this.clone()))
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

/// The io error of an `h2` error, copied.
fn io_of(e: &h2::Error) -> Option<std::io::Error> {
    e.get_io().map(failure::copy_io)
}
