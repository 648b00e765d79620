//! waygate's own upstream connection layer: `hyper::client::conn::http1` over connections we open, meter and
//! pool ourselves, so that every failure carries the connection's evidence (ARCHITECTURE.md: own the
//! upstream connection). A pooled connection is checked for liveness before reuse and expires before the
//! target's learned keep-alive, so the keep-alive race is avoided rather than suffered.

pub mod keepalive;
pub mod pool;

// The connection layer itself lives in `waygate-connect` (shared with the doctor's probe); these re-exports
// keep the `crate::upstream::{connector, meter, ...}` paths the rest of the data plane uses.
pub use waygate_connect::{connector, failure, liveness, meter, tls, transport};

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use waygate_faults::Phase;
use waygate_telemetry::{Metrics, Side};

use crate::body::UpstreamRequestBody;
pub use connector::{ConnectSpec, TlsTarget};
pub use failure::AttemptFailure;
pub use keepalive::{KeepAlive, KeepAliveView};
use liveness::{Liveness, Probe};
pub use meter::{ConnCounters, ConnSnapshot};
use pool::{Parked, Pool};

pub use waygate_connect::MAX_RESPONSE_HEAD;
/// Pooled connections idle at least this long are peeked at before reuse ([`liveness`]).
const PROBE_AFTER_IDLE: Duration = Duration::from_millis(1);
/// Idle connections kept per target and worker (pool slot).
const MAX_IDLE_PER_TARGET: usize = 1024;

/// One target's way in: how to connect, its pool of idle connections, and what it taught us about keep-alive.
#[derive(Debug)]
pub struct Upstream {
    pub spec: ConnectSpec,
    /// `host:port`, for log lines.
    authority: Arc<str>,
    pool: Pool,
    pub keepalive: Arc<KeepAlive>,
    metrics: Arc<Metrics>,
    /// The target group's name, for metric labels.
    group: Arc<str>,
    /// Set when the target's drain ends: every connection of it closes, in flight or pooled.
    retired: watch::Sender<bool>,
}

/// A connection leased for one request.
#[derive(Debug)]
pub struct Lease {
    pub sender: SendRequest<UpstreamRequestBody>,
    pub counters: Arc<ConnCounters>,
    /// Taken from the pool rather than opened for this request.
    pub reused: bool,
    /// How long it sat idle in the pool before this request.
    pub idle_before_use: Option<Duration>,
    /// Ends the connection's I/O task: used when an attempt is abandoned mid-exchange (timeout, cut body),
    /// so that no half-used connection lingers or returns to the pool.
    pub conn_task: AbortHandle,
    probe: Option<Probe>,
}

impl Lease {
    pub fn snapshot(&self) -> ConnSnapshot {
        self.counters.snapshot(self.reused, self.idle_before_use)
    }

    /// Closes the connection now.
    pub fn abort(&self) {
        self.counters.close_by_gateway();
        self.conn_task.abort();
        self.counters.mark_closed();
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
        Self {
            spec,
            authority,
            pool: Pool::new(MAX_IDLE_PER_TARGET, pool_slots),
            keepalive: Arc::new(KeepAlive::new(pool_idle_timeout)),
            metrics,
            group,
            retired: watch::Sender::new(false),
        }
    }

    /// A pooled connection that is ready and alive, else a new one.
    pub async fn lease(&self) -> Result<Lease, AttemptFailure> {
        loop {
            let (found, stale) = self.pool.checkout(self.keepalive.effective());
            for _ in 0..stale {
                self.discarded_stale();
            }
            let Some(mut idle) = found else { break };
            if !idle.sender.is_ready() && idle.sender.ready().await.is_err() {
                // Closed while parked (the target hung up, or its last exchange ended the connection).
                self.discarded_stale();
                continue;
            }
            let idle_before_use = idle.counters.idle_for(Instant::now());
            // A connection reused within a millisecond cannot have outlived any real keep-alive timer: skip the
            // syscall on hot connections; probe the ones that sat long enough for the target to give up on them.
            let probe = idle.probe.as_ref().filter(|_| idle_before_use.is_none_or(|d| d >= PROBE_AFTER_IDLE));
            if let Some(probe) = probe {
                let state = probe.check();
                if state != Liveness::Alive {
                    if let (Liveness::Closed | Liveness::Reset, Some(idle_for)) = (&state, idle_before_use) {
                        self.keepalive.observed_close(idle_for, &self.authority);
                    }
                    self.discarded_stale();
                    idle.counters.close_by_gateway();
                    tracing::debug!(target: "waygate::pool", target_addr = %self.authority, conn = idle.counters.id, ?state,
                        "discarded a pooled connection found unusable at checkout");
                    continue;
                }
            }
            idle.counters.begin_use();
            return Ok(Lease {
                sender: idle.sender,
                counters: idle.counters,
                reused: true,
                idle_before_use,
                conn_task: idle.conn_task,
                probe: idle.probe,
            });
        }
        self.connect().await
    }

    /// A new connection, bypassing the pool (the retry after a keep-alive race).
    pub async fn connect(&self) -> Result<Lease, AttemptFailure> {
        // Boxed: connecting (TCP, TLS handshake, HTTP/1 handshake) is a kilobyte and a half of future state that
        // every request would otherwise carry, and move, although most reuse a pooled connection.
        Box::pin(self.open()).await
    }

    async fn open(&self) -> Result<Lease, AttemptFailure> {
        let connected = connector::connect(&self.spec).await?;
        let counters = connected.counters.clone();
        let io = TokioIo::new(connected.transport);
        let handshake = http1::Builder::new().max_header_size(MAX_RESPONSE_HEAD).handshake(io);
        let (sender, conn) = match handshake.await {
            Ok(parts) => parts,
            Err(e) => {
                return Err(AttemptFailure::from_hyper(Phase::SendRequest, e).with_conn(counters.snapshot(false, None)));
            }
        };
        let conn_counters = counters.clone();
        let keepalive = self.keepalive.clone();
        let authority = self.authority.clone();
        let open_gauge = self.metrics.connection_opened(Side::Target);
        let mut retired = self.retired.subscribe();
        let conn_task = tokio::spawn(async move {
            let _open = open_gauge;
            let retire = async move {
                if retired.wait_for(|r| *r).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                // Errors surface through the request that was in flight; an idle connection just ends.
                _ = conn => {}
                // The target's drain ended: the exchange in flight is cut (TargetDeregistered).
                () = retire => conn_counters.close_by_gateway(),
            }
            // A connection that ends while parked, and not by our hand, was closed by the target: its idle
            // age is the target's keep-alive in practice.
            if !conn_counters.closed_by_gateway()
                && let Some(idle) = conn_counters.idle_for(Instant::now())
            {
                keepalive.observed_close(idle, &authority);
            }
            conn_counters.mark_closed();
        })
        .abort_handle();
        counters.begin_use();
        Ok(Lease { sender, counters, reused: false, idle_before_use: None, conn_task, probe: connected.probe })
    }

    /// Counts a pooled connection found dead at checkout (admin API and `waygate_target_stale_connections_total`).
    fn discarded_stale(&self) {
        self.keepalive.discarded_stale();
        self.metrics.stale_connection(&self.group, &self.authority);
    }

    /// Hands a connection whose exchange completed back to the pool.
    pub fn release(&self, lease: Lease) {
        let parked =
            Parked { sender: lease.sender, counters: lease.counters, conn_task: lease.conn_task, probe: lease.probe };
        self.pool.park(parked, self.keepalive.effective());
    }

    /// Ends the target's service: closes its pooled connections and every connection still carrying a request.
    pub fn retire(&self) {
        self.retired.send_replace(true);
        self.pool.clear();
    }

    /// [`Upstream::retire`] was called: a failure now is the deregistration's doing.
    pub fn is_retired(&self) -> bool {
        *self.retired.borrow()
    }

    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }
}
