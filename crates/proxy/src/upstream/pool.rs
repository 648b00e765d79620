//! The per-target pool of idle HTTP/1.1 connections. LIFO, so the most recently used (warmest) connection
//! is reused first and the oldest ones age out. A connection is parked only after its response body was fully
//! read; at checkout, closed or expired connections are discarded before one is handed out. With
//! thread-per-core workers the pool has one slot per worker: a connection's I/O task runs on the worker that
//! opened it, so a request leases only connections of its own worker and never wakes another thread.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::lock;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use tokio::task::AbortHandle;

use super::liveness::Probe;
use super::meter::ConnCounters;
use crate::body::UpstreamRequestBody;

/// An idle connection waiting for its next request.
#[derive(Debug)]
pub struct IdleConn {
    pub sender: SendRequest<UpstreamRequestBody>,
    pub counters: Arc<ConnCounters>,
    pub conn_task: AbortHandle,
    pub probe: Option<Probe>,
    parked_at: Instant,
}

/// Idle connections of one target.
#[derive(Debug)]
pub struct Pool {
    /// One per worker, indexed by [`crate::workers::current`] (modulo, for a thread that is not a worker).
    slots: Box<[Mutex<Vec<IdleConn>>]>,
    /// Per slot.
    max_idle: usize,
}

impl IdleConn {
    fn expired(&self, now: Instant, idle_timeout: Duration) -> bool {
        now.saturating_duration_since(self.parked_at) >= idle_timeout
    }

    /// Closes it on the gateway's own initiative.
    fn evict(self) {
        self.counters.close_by_gateway();
    }
}

impl Pool {
    /// `slots`: one per worker thread (at least one).
    pub fn new(max_idle: usize, slots: usize) -> Self {
        Self { slots: (0..slots.max(1)).map(|_| Mutex::new(Vec::new())).collect(), max_idle }
    }

    /// The calling worker's slot.
    fn lock(&self) -> MutexGuard<'_, Vec<IdleConn>> {
        lock(&self.slots[crate::workers::current() % self.slots.len()])
    }

    /// Takes the most recently parked connection that is still open and within `idle_timeout`; also returns how
    /// many parked connections it found already closed by the target (stale) and dropped.
    pub fn checkout(&self, idle_timeout: Duration) -> (Option<IdleConn>, usize) {
        let now = Instant::now();
        let mut stale = 0;
        let mut idle = self.lock();
        while let Some(conn) = idle.pop() {
            if conn.sender.is_closed() {
                stale += 1;
                continue;
            }
            if conn.expired(now, idle_timeout) {
                conn.evict(); // dropping the sender closes the connection
                continue;
            }
            return (Some(conn), stale);
        }
        (None, stale)
    }

    /// Parks a connection whose exchange completed; drops it when the pool is full or the connection closed.
    pub fn park(&self, conn: Parked, idle_timeout: Duration) {
        if conn.sender.is_closed() {
            return;
        }
        conn.counters.mark_idle();
        let now = Instant::now();
        let mut idle = self.lock();
        // Expired entries sit at the front (oldest first): sweep them so idle sockets do not linger.
        let expired = idle.iter().take_while(|c| c.expired(now, idle_timeout)).count();
        idle.drain(..expired).for_each(IdleConn::evict);
        if idle.len() >= self.max_idle {
            idle.remove(0).evict();
        }
        let Parked { sender, counters, conn_task, probe } = conn;
        idle.push(IdleConn { sender, counters, conn_task, probe, parked_at: now });
    }

    /// Closes every idle connection.
    pub fn clear(&self) {
        for slot in &self.slots {
            lock(slot).drain(..).for_each(IdleConn::evict);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.slots.iter().map(|s| lock(s).len()).sum()
    }
}

/// A connection handed back after a complete exchange.
pub struct Parked {
    pub sender: SendRequest<UpstreamRequestBody>,
    pub counters: Arc<ConnCounters>,
    pub conn_task: AbortHandle,
    pub probe: Option<Probe>,
}
