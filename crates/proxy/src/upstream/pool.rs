//! The per-target pool of idle HTTP/1.1 connections. LIFO, so the most recently used (warmest) connection
//! is reused first and the oldest ones age out. A connection is parked only after its response body was fully
//! read; at checkout, closed or expired connections are discarded before one is handed out.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use tokio::task::AbortHandle;

use super::meter::ConnCounters;
use crate::body::UpstreamRequestBody;

/// An idle connection waiting for its next request.
#[derive(Debug)]
pub struct IdleConn {
    pub sender: SendRequest<UpstreamRequestBody>,
    pub counters: Arc<ConnCounters>,
    pub conn_task: AbortHandle,
    parked_at: Instant,
}

/// Idle connections of one target.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<IdleConn>>,
    idle_timeout: Duration,
    max_idle: usize,
}

impl Pool {
    pub fn new(idle_timeout: Duration, max_idle: usize) -> Self {
        Self { idle: Mutex::new(Vec::new()), idle_timeout, max_idle }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<IdleConn>> {
        // A panic while holding this lock cannot leave the Vec inconsistent, so poisoning is ignored.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the most recently parked connection that is still open and within the idle timeout.
    pub fn checkout(&self) -> Option<IdleConn> {
        let now = Instant::now();
        let mut idle = self.lock();
        while let Some(conn) = idle.pop() {
            if conn.sender.is_closed() || now.saturating_duration_since(conn.parked_at) >= self.idle_timeout {
                continue; // dropping the sender closes the connection
            }
            return Some(conn);
        }
        None
    }

    /// Parks a connection whose exchange completed; drops it when the pool is full or the connection closed.
    pub fn park(&self, sender: SendRequest<UpstreamRequestBody>, counters: Arc<ConnCounters>, conn_task: AbortHandle) {
        if sender.is_closed() {
            return;
        }
        counters.mark_idle();
        let now = Instant::now();
        let mut idle = self.lock();
        // Expired entries sit at the front (oldest first): sweep them so idle sockets do not linger.
        let expired =
            idle.iter().take_while(|c| now.saturating_duration_since(c.parked_at) >= self.idle_timeout).count();
        idle.drain(..expired);
        if idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push(IdleConn { sender, counters, conn_task, parked_at: now });
    }

    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// Closes every idle connection (target removed or drained).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
