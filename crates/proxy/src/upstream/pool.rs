//! The per-target pool of idle connections (exclusive sessions: HTTP/1.1). LIFO, so the most recently used (warmest) connection
//! is reused first and the oldest ones age out. A connection is parked only after its response body was fully
//! read; at checkout, expired connections are discarded before one is handed out. With thread-per-core workers
//! the pool has one slot per worker: a connection's socket is registered with the worker that opened it, so a
//! request leases only connections of its own worker and never wakes another thread.
//!
//! Each slot has a watcher task on its worker: every parked socket is registered with it, so the moment a
//! target closes an idle connection (FIN, RST, a TLS alert) the connection leaves the pool, and its idle age
//! then is the target's keep-alive in practice ([`KeepAlive::observed_close`]). Registering is a readiness
//! check, with no syscall unless the socket was left marked readable (a peek then confirms it is quiet); the
//! watcher runs only when a parked socket has something to say.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use waygate_connect::meter::coarse_now_ns;
use waygate_telemetry::Metrics;

use super::Connection;
use super::keepalive::KeepAlive;
use super::liveness::Liveness;
use crate::lock;

/// An idle connection waiting for its next request.
#[derive(Debug)]
struct IdleConn {
    conn: Box<Connection>,
    /// When it was parked, on the coarse clock ([`coarse_now_ns`]): a tick's error (a few milliseconds) is far
    /// inside the margin [`KeepAlive::effective`] keeps under the target's keep-alive (at least 100 ms), and a
    /// request parks and checks out a connection each, where the precise clock and `Instant` arithmetic cost some
    /// 250 instructions a request (callgrind).
    parked_at_ns: u64,
}

/// A connection taken from the pool, and how long it sat there.
#[derive(Debug)]
pub struct CheckedOut {
    pub conn: Box<Connection>,
    pub idle_for: Duration,
}

/// One worker's idle connections and its watcher.
#[derive(Debug, Default)]
struct Slot {
    idle: Vec<IdleConn>,
    /// The watcher task's waker, once it first ran.
    watcher: Option<Waker>,
    watching: bool,
}

/// Where a pool reports connections the target closed: the target's keep-alive learning and metrics.
#[derive(Debug)]
pub struct Report {
    pub keepalive: Arc<KeepAlive>,
    pub metrics: Arc<Metrics>,
    /// The target group's name and the target's `host:port`, for metric labels and log lines.
    pub group: Arc<str>,
    pub authority: Arc<str>,
}

impl Report {
    /// A pooled connection found dead (admin API and `waygate_target_stale_connections_total`).
    pub fn stale(&self) {
        self.keepalive.discarded_stale();
        self.metrics.stale_connection(&self.group, &self.authority);
    }

    /// The target ended (or spoke on) a connection idle for `idle`.
    pub fn idle_event(&self, state: &Liveness, idle: Duration, conn: &Connection) {
        if matches!(state, Liveness::Closed | Liveness::Reset) {
            self.keepalive.observed_close(idle, &self.authority);
        }
        self.stale();
        tracing::debug!(target: "waygate::pool", target_addr = %self.authority, conn = conn.counters.id, ?state,
            idle_ms = idle.as_millis() as u64, "the target ended an idle pooled connection");
    }
}

/// Idle connections of one target.
#[derive(Debug)]
pub struct Pool {
    /// One per worker, indexed by [`crate::workers::current`] (modulo, for a thread that is not a worker). Each
    /// on cache lines of its own: a request locks its worker's slot twice (checkout, park), and slots sharing a
    /// line made those locks pull the line from the other worker's core.
    slots: Box<[CachePadded<Mutex<Slot>>]>,
    /// Per slot.
    max_idle: usize,
    pub report: Report,
}

impl IdleConn {
    fn expired(&self, now_ns: u64, idle_timeout: Duration) -> bool {
        self.idle_for(now_ns) >= idle_timeout
    }

    fn idle_for(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.parked_at_ns))
    }

    /// Closes it on the gateway's own initiative.
    fn evict(self) {
        self.conn.counters.close_by_gateway();
    }
}

impl Pool {
    /// `slots`: one per worker thread (at least one).
    pub fn new(max_idle: usize, slots: usize, report: Report) -> Self {
        Self { slots: (0..slots.max(1)).map(|_| CachePadded::default()).collect(), max_idle, report }
    }

    /// How many slots (worker threads) the pool has.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The calling worker's slot index.
    fn index(&self) -> usize {
        crate::workers::current() % self.slots.len()
    }

    fn slot(&self, index: usize) -> MutexGuard<'_, Slot> {
        lock(&self.slots[index])
    }

    /// Takes the most recently parked connection that is within `idle_timeout`.
    pub fn checkout(&self, idle_timeout: Duration) -> Option<CheckedOut> {
        let now = coarse_now_ns();
        let mut slot = self.slot(self.index());
        while let Some(parked) = slot.idle.pop() {
            if parked.expired(now, idle_timeout) {
                parked.evict();
                continue;
            }
            let idle_for = parked.idle_for(now);
            return Some(CheckedOut { conn: parked.conn, idle_for });
        }
        None
    }

    /// Parks a connection whose exchange completed; drops the oldest when the pool is full.
    pub fn park(self: &Arc<Self>, conn: Box<Connection>, idle_timeout: Duration) {
        let now = coarse_now_ns();
        let index = self.index();
        let mut slot = self.slot(index);
        // Expired entries sit at the front (oldest first): sweep them so idle sockets do not linger.
        let expired = slot.idle.iter().take_while(|c| c.expired(now, idle_timeout)).count();
        slot.idle.drain(..expired).for_each(IdleConn::evict);
        if slot.idle.len() >= self.max_idle {
            slot.idle.remove(0).evict();
        }
        if let Some(waker) = &slot.watcher {
            // Registered with the watcher; a connection the target already ended is not parked at all.
            if let Poll::Ready(state) = conn.session.poll_idle_event(&mut Context::from_waker(waker)) {
                drop(slot);
                self.report.idle_event(&state, Duration::ZERO, &conn);
                return;
            }
        } else if !slot.watching
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            slot.watching = true;
            runtime.spawn(watch(Arc::downgrade(self), index));
        }
        slot.idle.push(IdleConn { conn, parked_at_ns: now });
    }

    /// Closes every idle connection.
    pub fn clear(&self) {
        for slot in &self.slots {
            lock(slot).idle.drain(..).for_each(IdleConn::evict);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.slots.iter().map(|s| lock(s).idle.len()).sum()
    }
}

impl Drop for Pool {
    /// Lets the watchers see the pool is gone and end.
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(waker) = lock(slot).watcher.take() {
                waker.wake();
            }
        }
    }
}

/// A slot's watcher: polls every parked socket of the slot for an event, and removes the connections the
/// target ended. Runs until the pool is dropped.
async fn watch(pool: Weak<Pool>, index: usize) {
    poll_fn(|cx| {
        let Some(pool) = pool.upgrade() else { return Poll::Ready(()) };
        let mut slot = pool.slot(index);
        if !slot.watcher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.watcher = Some(cx.waker().clone());
        }
        let now = coarse_now_ns();
        let mut i = 0;
        while i < slot.idle.len() {
            match slot.idle[i].conn.session.poll_idle_event(cx) {
                Poll::Ready(state) => {
                    let ended = slot.idle.remove(i);
                    pool.report.idle_event(&state, ended.idle_for(now), &ended.conn);
                }
                Poll::Pending => i += 1,
            }
        }
        Poll::Pending
    })
    .await;
}
