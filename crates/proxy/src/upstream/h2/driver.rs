//! The task of one HTTP/2 connection to a target. It drives the connection (frames in and out for every
//! stream), publishes the target's stream limit to the pool, and ends the connection on the gateway's side
//! when it must: a keep-alive PING that gets no PONG within [`PING_TIMEOUT`] (the target or the path is
//! gone, and the streams on it would otherwise wait for their timeouts), or no stream for
//! `pool_idle_timeout`. One timer per connection, re-armed when it fires.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::State;
use super::frames::Watched;
use crate::lock;
use crate::upstream::liveness::Probe;
use crate::upstream::meter::ConnCounters;
use crate::upstream::transport::Transport;

/// A connection that received nothing for this long gets a PING.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A PING unanswered for this long ends the connection.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);

type Conn = h2::client::Connection<Watched<Transport>, Bytes>;

/// How the connection's task ended it, or saw it end.
enum End {
    /// The connection ended (the target closed it, or an error).
    Closed,
    PingUnanswered,
    Idle,
}

/// Drives `conn` until it ends. `probe` holds a duplicate of the socket's descriptor (for liveness checks and
/// retirement): dropping the connection alone would leave the socket open through it, so the end shuts the
/// socket down too.
pub(super) async fn drive(
    mut conn: Conn,
    state: Arc<State>,
    counters: Arc<ConnCounters>,
    idle_timeout: Duration,
    probe: Option<Arc<Probe>>,
) {
    let mut pinger = conn.ping_pong();
    let period = PING_INTERVAL.min(idle_timeout);
    let mut timer = Box::pin(tokio::time::sleep(period));
    let mut last_read = counters.bytes_read();
    let mut awaiting_pong = false;
    let mut settled = false;
    let end = poll_fn(|cx| {
        loop {
            if Pin::new(&mut conn).poll(cx).is_ready() {
                return Poll::Ready(End::Closed);
            }
            state.max_streams.store(conn.max_concurrent_send_streams(), Ordering::Relaxed);
            if !settled && state.seen.settings() {
                settled = true;
                state.settled.send_replace(true);
            }
            if awaiting_pong
                && let Some(p) = pinger.as_mut()
                && let Poll::Ready(pong) = p.poll_pong(cx)
            {
                awaiting_pong = false;
                if pong.is_err() {
                    return Poll::Ready(End::Closed);
                }
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if awaiting_pong {
                return Poll::Ready(End::PingUnanswered);
            }
            let idle_since = *lock(&state.idle_since);
            if state.streams.load(Ordering::Acquire) == 0 && idle_since.is_some_and(|t| now >= t + idle_timeout) {
                return Poll::Ready(End::Idle);
            }
            let read = counters.bytes_read();
            if read == last_read
                && let Some(p) = pinger.as_mut()
                && p.send_ping(h2::Ping::opaque()).is_ok()
            {
                awaiting_pong = true;
                timer.as_mut().reset(now + PING_TIMEOUT);
            } else {
                timer.as_mut().reset(now + period);
            }
            last_read = read;
        }
    })
    .await;
    state.closing.store(true, Ordering::Release);
    state.settled.send_replace(true);
    match end {
        End::Closed => {}
        End::PingUnanswered => {
            *lock(&state.ended) = Some(format!("the target answered no keep-alive PING within {PING_TIMEOUT:?}"));
            counters.close_by_gateway();
            // Dropping the connection fails every stream still on it.
        }
        End::Idle => {
            // No stream is open, so closing the socket loses nothing (h2's client side has no GOAWAY to send).
            counters.close_by_gateway();
        }
    }
    drop(conn);
    if let Some(probe) = probe {
        probe.shutdown();
    }
}
