//! The client's side of `idle_timeout` in the middle of an exchange (ALB's meaning: no byte sent or received on
//! the connection). Between requests the listener's watch closes an idle connection; during one, only the
//! connection itself knows whether it waits on the client (a response the client does not read, a request body
//! it stopped sending) or on the target (whose own timers then run), so the HTTP/1 connection asks [`Idle`]
//! while, and only while, it waits on the client.
//!
//! A connection told to close that does not finish because its client takes nothing is dropped the same way
//! ([`Idle::poll_stuck`]).
//!
//! Timers, not ticks: one timer per connection, armed the first time an exchange waits on the client and
//! re-armed only when it fires early. When bytes last moved is read from the socket's own counters (the metered
//! socket stamps them on every read and write), so a read or a write costs the deadline nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::upstream::ConnCounters;

/// A connection's idle deadline: `timeout` after the last byte either way on `activity`'s socket.
#[derive(Debug, Clone)]
pub struct Idle {
    pub timeout: Duration,
    pub activity: Arc<ConnCounters>,
}

impl Idle {
    /// Ready once nothing moved on the connection for the timeout. `timer` is the connection's one timer slot:
    /// filled the first time, then re-armed in place, only when it fires before the deadline (bytes moved since
    /// it was armed).
    pub fn poll_expired(&self, timer: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
        let timer = match timer {
            Some(t) => t,
            None => timer.insert(Box::pin(tokio::time::sleep(self.left(Instant::now())))),
        };
        loop {
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            let left = self.left(now);
            if left.is_zero() {
                return Poll::Ready(());
            }
            timer.as_mut().reset(tokio::time::Instant::from_std(now + left));
        }
    }

    /// For a connection told to close (graceful shutdown, idle, expired) that has not finished: Ready once it has
    /// been silent for the timeout, counted from when the closing began, and nothing is `in_flight`. A client that
    /// takes nothing at all (an HTTP/2 GOAWAY never flushed, a final HTTP/1 write never read) is then dropped.
    /// Counting from the closing, not from the last byte, leaves the exchange's and the streams' own deadlines
    /// (which end them with their causes) the first word.
    pub fn poll_stuck(&self, timer: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(self.timeout)));
        loop {
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            let left = self.left(now);
            if left.is_zero() && self.activity.requests_in_flight() == 0 {
                return Poll::Ready(());
            }
            let wait = if left.is_zero() { self.timeout } else { left };
            timer.as_mut().reset(tokio::time::Instant::from_std(now + wait));
        }
    }

    /// How long until the connection counts as idle, from `now`.
    fn left(&self, now: Instant) -> Duration {
        self.timeout.saturating_sub(self.activity.last_io_ago(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_a_timeout_after_the_last_byte_and_not_before() {
        let started = Instant::now();
        let addr = "127.0.0.1:1".parse().unwrap();
        let idle = Idle { timeout: Duration::from_millis(200), activity: ConnCounters::new(addr, addr) };
        let mut timer = None;
        std::future::poll_fn(|cx| idle.poll_expired(&mut timer, cx)).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Fired: it stays fired until bytes move, and the same timer is used again.
        assert!(std::future::poll_fn(|cx| Poll::Ready(idle.poll_expired(&mut timer, cx).is_ready())).await);
    }
}
