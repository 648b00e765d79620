//! waygate's own upstream connection layer: connections we open, meter, pool and speak HTTP on ourselves (a
//! [`Session`] per connection: [`h1`] now), so that every failure carries the connection's evidence (ARCHITECTURE.md: own the
//! upstream connection). A pooled connection is checked for liveness before reuse and expires before the
//! target's learned keep-alive, so the keep-alive race is avoided rather than suffered.

pub mod h1;
pub mod h2;
pub mod keepalive;
pub mod pool;
pub mod session;

// The connection layer itself lives in `waygate-connect` (shared with the doctor's probe); these re-exports
// keep the `crate::upstream::{connector, meter, ...}` paths the rest of the data plane uses.
pub use waygate_connect::{connector, failure, liveness, meter, tls, transport};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use waygate_telemetry::{ConnectionGuard, Metrics, Side};

use crate::body::UpstreamRequestBody;
use crate::lock;
pub use connector::{ConnectSpec, TlsTarget};
pub use failure::AttemptFailure;
pub use keepalive::{KeepAlive, KeepAliveView};
use liveness::{Liveness, Probe};
pub use meter::{ConnCounters, ConnSnapshot};
use pool::Pool;
pub use session::{Request, Session};

pub use waygate_connect::MAX_RESPONSE_HEAD;
/// Pooled connections idle at least this long are peeked at before reuse ([`liveness`]), with a syscall even
/// when the runtime has seen no event on the socket. Keep-alive timers are set in seconds (nginx 75 s, Apache and
/// Node.js 5 s, ALB's advice 60 s or more), so a connection idle for less than a tenth of a second cannot have
/// outlived one: it gets the runtime's view only, which is free unless the socket was marked readable.
const PROBE_AFTER_IDLE: Duration = Duration::from_millis(100);
/// Idle connections kept per target and worker (pool slot).
const MAX_IDLE_PER_TARGET: usize = 1024;

/// One target's way in: how to connect, its pool of idle connections, and what it taught us about keep-alive.
#[derive(Debug)]
pub struct Upstream {
    pub spec: ConnectSpec,
    pool: Arc<Pool>,
    pub keepalive: Arc<KeepAlive>,
    metrics: Arc<Metrics>,
    /// Set when the target's drain ends: every connection of it closes, in flight or pooled.
    retired: AtomicBool,
    /// Every open connection's socket, so that retiring the target can cut the ones carrying a request.
    live: Mutex<Vec<Weak<Probe>>>,
    /// The target's shared HTTP/2 connections, when its group speaks HTTP/2 (then `pool` stays empty).
    h2: Option<h2::Pool>,
    pool_idle_timeout: Duration,
}

/// An open connection to a target: its protocol session and what explains it.
#[derive(Debug)]
pub struct Connection {
    pub session: Session,
    pub counters: Arc<ConnCounters>,
    probe: Option<Arc<Probe>>,
    /// Keeps the connection in `waygate_active_connections{side="target"}` while it is open (an HTTP/2
    /// stream's connection keeps its own).
    _open: Option<ConnectionGuard>,
}

/// A connection leased for one request.
#[derive(Debug)]
pub struct Lease {
    /// Boxed: a connection moves from the pool to a request, into its response body and back, and its
    /// buffers and counters (over 200 bytes) were copied at each move and held inline in the request's future.
    pub conn: Box<Connection>,
    /// Taken from the pool rather than opened for this request.
    pub reused: bool,
    /// How long it sat idle in the pool before this request.
    pub idle_before_use: Option<Duration>,
}

impl Lease {
    pub fn snapshot(&self) -> ConnSnapshot {
        match &self.conn.session {
            Session::H2(stream) => stream.snapshot(),
            Session::H1(_) => self.conn.counters.snapshot(self.reused, self.idle_before_use),
        }
    }

    /// Closes the connection now, on the gateway's initiative (an abandoned or failed exchange). An HTTP/2
    /// stream is reset instead: its connection carries other requests.
    pub fn abort(self) {
        if self.conn.session.is_exclusive() {
            self.conn.counters.close_by_gateway();
        }
    }

    /// Sends a request and awaits its response head ([`Session::send`]). The exchange's own future, not one
    /// wrapped around it: an async fn here added its arguments to every request's state.
    pub fn send<'a>(
        &'a mut self,
        req: &'a Request,
        body: &'a mut UpstreamRequestBody,
        response_timeout: Duration,
    ) -> impl Future<Output = Result<h1::Response, h1::SendError>> + Send + 'a {
        let Connection { session, counters, .. } = &mut *self.conn;
        session.send(req, body, response_timeout, || counters.attempt_bytes_written())
    }
}

impl Upstream {
    /// `authority` is the target's `host:port` as written ([`waygate_config::TargetSpec::authority`]);
    /// `pool_slots` is the number of worker threads whose requests use this target (one slot each).
    pub fn new(
        spec: ConnectSpec,
        authority: Arc<str>,
        pool_idle_timeout: Duration,
        metrics: Arc<Metrics>,
        group: Arc<str>,
        pool_slots: usize,
    ) -> Self {
        let keepalive = Arc::new(KeepAlive::new(pool_idle_timeout));
        let report = pool::Report {
            keepalive: keepalive.clone(),
            metrics: metrics.clone(),
            group,
            authority: authority.clone(),
        };
        Self {
            spec,
            pool: Arc::new(Pool::new(MAX_IDLE_PER_TARGET, pool_slots, report)),
            keepalive,
            metrics,
            retired: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            h2: None,
            pool_idle_timeout,
        }
    }

    /// Requests to this target go over HTTP/2 (its group's `protocol_version` is http2 or grpc).
    pub fn speaking_h2(mut self) -> Self {
        self.h2 = Some(h2::Pool::new(self.pool.slot_count()));
        self
    }

    /// Whether requests to this target go over HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.h2.is_some()
    }

    /// A pooled connection that is alive, else a new one.
    pub async fn lease(&self) -> Result<Lease, AttemptFailure> {
        if let Some(pool) = &self.h2 {
            if let Some(shared) = pool.checkout() {
                return Ok(Self::stream_lease(shared, true));
            }
            // One connection opens at a time: requests that find every connection full wait for it and share
            // it, instead of each opening its own.
            let _opening = pool.opening().lock().await;
            if let Some(shared) = pool.checkout() {
                return Ok(Self::stream_lease(shared, true));
            }
            return self.connect().await;
        }
        loop {
            let Some(idle) = self.pool.checkout(self.keepalive.effective()) else { break };
            let (conn, idle_before_use) = (idle.conn, idle.idle_for);
            // Hot connections (the usual case under load) are checked against the runtime's readiness, which
            // costs a peek only when an event the watcher has not handled yet is pending; the ones that sat
            // long enough for the target to give up on them are peeked at whatever the runtime has seen.
            let state = match conn.probe.as_ref().filter(|_| idle_before_use >= PROBE_AFTER_IDLE) {
                Some(probe) => probe.check(),
                None => conn.session.idle_event_seen(),
            };
            if state != Liveness::Alive {
                // Ended before the watcher saw it: the idle age now bounds the target's keep-alive from above.
                self.pool.report.idle_event(&state, idle_before_use, &conn);
                continue;
            }
            conn.counters.begin_use();
            return Ok(Lease { conn, reused: true, idle_before_use: Some(idle_before_use) });
        }
        self.connect().await
    }

    /// A new connection, bypassing the pool (the retry after a keep-alive race).
    pub async fn connect(&self) -> Result<Lease, AttemptFailure> {
        // Boxed: connecting (TCP, TLS handshake) is a kilobyte of future state that every request would otherwise
        // carry, and move, although most reuse a pooled connection.
        Box::pin(self.open()).await
    }

    /// A lease of one stream on `shared`, whose slot was taken for it.
    fn stream_lease(shared: Arc<h2::Shared>, reused: bool) -> Lease {
        let counters = shared.counters.clone();
        let conn = Box::new(Connection {
            session: Session::H2(h2::Stream::new(shared, reused)),
            counters,
            probe: None,
            _open: None,
        });
        Lease { conn, reused, idle_before_use: None }
    }

    async fn open(&self) -> Result<Lease, AttemptFailure> {
        let connected = match connector::connect(&self.spec).await {
            Ok(connected) => connected,
            Err(mut failure) => {
                // Offered only `h2`, a target without it may refuse the handshake outright (RFC 7301 §3.2).
                if self.h2.is_some()
                    && matches!(
                        failure.tls,
                        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol))
                    )
                {
                    failure.h2 = Some(waygate_faults::H2Evidence::NotNegotiated);
                }
                return Err(failure);
            }
        };
        let probe = connected.probe.map(Arc::new);
        if let Some(probe) = &probe {
            let mut live = lock(&self.live);
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(probe));
            drop(live);
            // Retired while this connection was being opened: it carries nothing.
            if self.is_retired() {
                probe.shutdown();
            }
        }
        let counters = connected.counters;
        counters.begin_use();
        let open = self.metrics.connection_opened(Side::Target);
        if let Some(pool) = &self.h2 {
            let settle = self.spec.tls_handshake_timeout;
            let shared =
                h2::Shared::handshake(connected.transport, counters, probe, Some(open), self.pool_idle_timeout, settle)
                    .await?;
            if !pool.add(&shared) {
                // Retired, or sent GOAWAY, while the handshake ran: the stream is the request's all the same (its
                // send fails with that as the evidence), its slot taken so that giving it back balances.
                shared.take_slot();
                shared.close();
            }
            return Ok(Self::stream_lease(shared, false));
        }
        let conn = Box::new(Connection {
            session: Session::H1(h1::Conn::new(connected.transport)),
            counters,
            probe,
            _open: Some(open),
        });
        Ok(Lease { conn, reused: false, idle_before_use: None })
    }

    /// Hands a connection whose exchange completed back to the pool.
    pub fn release(&self, lease: Lease) {
        if !lease.conn.session.is_exclusive() {
            // The stream ended; its slot goes back as it drops.
            return;
        }
        if self.is_retired() || !lease.conn.session.reusable() {
            lease.abort();
            return;
        }
        self.pool.park(lease.conn, self.keepalive.effective());
    }

    /// Ends the target's service: closes its pooled connections and cuts every connection still carrying a
    /// request (its read or write fails at once; the request's failure is TargetDeregistered).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.pool.clear();
        if let Some(pool) = &self.h2 {
            pool.clear();
        }
        for probe in lock(&self.live).drain(..).filter_map(|w| w.upgrade()) {
            probe.shutdown();
        }
    }

    /// [`Upstream::retire`] was called: a failure now is the deregistration's doing.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count() + self.h2.as_ref().map_or(0, h2::Pool::idle_count)
    }
}

#[cfg(test)]
mod tests;
