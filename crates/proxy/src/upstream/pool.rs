//! The per-target pool of idle HTTP/1.1 connections. LIFO, so the most recently used (warmest) connection
//! is reused first and the oldest ones age out. A connection is parked only after its response body was fully
//! read; at checkout, expired connections are discarded before one is handed out. With thread-per-core workers
//! the pool has one slot per worker: a connection's socket is registered with the worker that opened it, so a
//! request leases only connections of its own worker and never wakes another thread.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Connection;
use crate::lock;

/// An idle connection waiting for its next request.
#[derive(Debug)]
struct IdleConn {
    conn: Connection,
    parked_at: Instant,
}

/// A connection taken from the pool, and how long it sat there.
#[derive(Debug)]
pub struct CheckedOut {
    pub conn: Connection,
    pub idle_for: Duration,
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
        self.conn.counters.close_by_gateway();
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

    /// Takes the most recently parked connection that is within `idle_timeout`.
    pub fn checkout(&self, idle_timeout: Duration) -> Option<CheckedOut> {
        let now = Instant::now();
        let mut idle = self.lock();
        while let Some(parked) = idle.pop() {
            if parked.expired(now, idle_timeout) {
                parked.evict();
                continue;
            }
            let idle_for = now.saturating_duration_since(parked.parked_at);
            return Some(CheckedOut { conn: parked.conn, idle_for });
        }
        None
    }

    /// Parks a connection whose exchange completed; drops the oldest when the pool is full.
    pub fn park(&self, conn: Connection, idle_timeout: Duration) {
        conn.counters.mark_idle();
        let now = Instant::now();
        let mut idle = self.lock();
        // Expired entries sit at the front (oldest first): sweep them so idle sockets do not linger.
        let expired = idle.iter().take_while(|c| c.expired(now, idle_timeout)).count();
        idle.drain(..expired).for_each(IdleConn::evict);
        if idle.len() >= self.max_idle {
            idle.remove(0).evict();
        }
        idle.push(IdleConn { conn, parked_at: now });
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
