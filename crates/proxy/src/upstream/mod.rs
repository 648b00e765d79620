//! waygate's own upstream connection layer: `hyper::client::conn::http1` over connections we open, meter and
//! pool ourselves, so that every failure carries the connection's evidence (ARCHITECTURE.md: own the
//! upstream connection).

pub mod connector;
pub mod failure;
pub mod meter;
pub mod pool;
pub mod tls;
pub mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;
use waygate_faults::Phase;

use crate::body::UpstreamRequestBody;
pub use connector::{ConnectSpec, TlsTarget};
pub use failure::AttemptFailure;
pub use meter::{ConnCounters, ConnSnapshot};
use pool::Pool;

/// Response heads larger than this are a TargetResponseHeadersTooLarge (ALB's limit).
pub const MAX_RESPONSE_HEAD: usize = 32 * 1024;
/// Idle connections kept per target.
const MAX_IDLE_PER_TARGET: usize = 1024;

/// One target's way in: how to connect, and its pool of idle connections.
#[derive(Debug)]
pub struct Upstream {
    pub spec: ConnectSpec,
    pool: Pool,
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
    pub connect_time: Option<Duration>,
    pub tls_time: Option<Duration>,
    /// Ends the connection's I/O task: used when an attempt is abandoned mid-exchange (timeout, cut body),
    /// so that no half-used connection lingers or returns to the pool.
    pub conn_task: AbortHandle,
}

impl Lease {
    /// Closes the connection now.
    pub fn abort(&self) {
        self.conn_task.abort();
        self.counters.mark_closed();
    }

    pub fn snapshot(&self) -> ConnSnapshot {
        self.counters.snapshot(self.reused, self.idle_before_use)
    }
}

impl Upstream {
    pub fn new(spec: ConnectSpec, pool_idle_timeout: Duration) -> Self {
        Self { spec, pool: Pool::new(pool_idle_timeout, MAX_IDLE_PER_TARGET) }
    }

    /// A pooled connection that is ready for a request, else a new one.
    pub async fn lease(&self) -> Result<Lease, AttemptFailure> {
        while let Some(mut idle) = self.pool.checkout() {
            if !idle.sender.is_ready() && idle.sender.ready().await.is_err() {
                // Closed while parked (the target hung up, or its last exchange ended the connection).
                continue;
            }
            let idle_before_use = idle.counters.idle_for(Instant::now());
            idle.counters.begin_use();
            return Ok(Lease {
                sender: idle.sender,
                counters: idle.counters,
                reused: true,
                idle_before_use,
                connect_time: None,
                tls_time: None,
                conn_task: idle.conn_task,
            });
        }
        self.open().await
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
        let conn_task = tokio::spawn(async move {
            // Errors surface through the request that was in flight; an idle connection just ends.
            let _ = conn.await;
            conn_counters.mark_closed();
        })
        .abort_handle();
        counters.begin_use();
        Ok(Lease {
            sender,
            counters,
            reused: false,
            idle_before_use: None,
            connect_time: Some(connected.connect_time),
            tls_time: connected.tls_time,
            conn_task,
        })
    }

    /// Hands a connection whose exchange completed back to the pool.
    pub fn release(&self, lease: Lease) {
        self.pool.park(lease.sender, lease.counters, lease.conn_task);
    }

    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Closes all idle connections.
    pub fn close_idle(&self) {
        self.pool.clear();
    }
}
