//! The admin listener's accept loop and connection limits: the endpoints an operator needs during an incident
//! must survive the incident. A client that opens connections and sends nothing (or a head one byte at a
//! time) is closed after [`Limits::header_timeout`]; at most [`Limits::max_connections`] are served at once,
//! and a connection beyond them is closed at once rather than queued; an accept error backs off instead of
//! spinning a core, and is logged once a second per errno with a count, never once per failure.
//!
//! The admin listener shares the process's descriptor table with the data plane, so a data plane that took
//! every descriptor (EMFILE, or the system's ENFILE) would leave `/metrics` and `/live` unreachable exactly when
//! they are needed. A [`Reserve`] holds a few descriptors (`/dev/null`) for the admin listener alone: on EMFILE or
//! ENFILE it closes one and accepts into the slot it freed, and when that connection ends its descriptor goes
//! back into the reserve before the data plane can take it. Serving `/live` or `/metrics` needs no other
//! descriptor (the response is built in memory). The slot freed for an accept is taken by that accept alone
//! unless a data-plane thread opens a socket within the same few microseconds; a reserve that lost a slot so
//! fills it again as soon as descriptors come back.
//!
//! Linux's `accept` takes a descriptor number before it looks at the queue, so with the table full it fails with
//! EMFILE even when no client is waiting (after every accepted connection, for one). A slot released then would
//! sit free until the data plane took it, and each admin connection would cost the reserve one descriptor. So
//! the slot is released for one non-waiting accept only, and taken back at once when nobody was queued.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use waygate_telemetry::Throttle;
use waygate_telemetry::reserve::{Reserve, out_of_descriptors};

use crate::AdminState;
use crate::reply::Reply;

/// How much the admin listener takes from its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head must arrive whole within this (ALB's and nginx's client header timeouts are 60 s; an
    /// admin request is tiny, so 10 s is generous for any real client).
    pub header_timeout: Duration,
    /// Connections served at once; dashboards, scrapers and a CLI need a handful.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), max_connections: 64 }
    }
}

/// The first back-off after an accept error, doubled on each further error up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Descriptors held for the admin listener: connections it can serve while the process is out of them.
const RESERVED_DESCRIPTORS: usize = 8;

/// Serves `listener` until `stop` flips.
pub async fn serve<H, F>(
    listener: TcpListener,
    state: Arc<AdminState>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Arc<AdminState>, SocketAddr, http::Request<hyper::body::Incoming>) -> F + Copy + Send + 'static,
    F: Future<Output = Result<Reply, Infallible>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Reserve::new(RESERVED_DESCRIPTORS));
    let over_cap = Throttle::per_second();
    let mut errors: HashMap<Option<i32>, Throttle> = HashMap::new();
    let mut backoff = MIN_BACKOFF;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => {
                backoff = MIN_BACKOFF;
                reserve.refill();
                conn
            }
            // Out of descriptors: free one of the reserve's slots and accept into it.
            Err(e) if out_of_descriptors(&e) && !reserve.is_empty() => match accept_into_reserve(&listener, &reserve) {
                // Nobody was waiting (the slot is back in the reserve, and the listener waits for readiness).
                None => continue,
                Some(Ok(conn)) => {
                    if let Some(count) = errors.entry(e.raw_os_error()).or_insert_with(Throttle::per_second).hit() {
                        tracing::warn!(target: "waygate::admin", error = %e, count, reserve_left = reserve.len(),
                            "admin accept out of descriptors; serving from the admin listener's reserve");
                    }
                    conn
                }
                Some(Err(e)) => {
                    if !back_off(&e, &mut errors, &mut backoff, &mut stop).await {
                        return;
                    }
                    continue;
                }
            },
            Err(e) => {
                if !back_off(&e, &mut errors, &mut backoff, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if let Some(count) = over_cap.hit() {
                tracing::warn!(target: "waygate::admin", peer = %peer, count, max = limits.max_connections,
                    "admin connection limit reached; closing new connections");
            }
            drop(tcp);
            continue;
        };
        let (state, reserve) = (state.clone(), reserve.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), peer, req));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
            drop(permit);
            // The connection's descriptor is closed (it moved into hyper's connection): take its slot back
            // into the reserve before the data plane does.
            reserve.refill();
        });
    }
}

/// Releases one reserved descriptor and accepts once, without waiting: the connection, the accept's error, or
/// `None` when no client was queued, in which case the slot goes straight back into the reserve. The single poll
/// runs `accept` (a queued connection takes the freed slot); a would-block clears the listener's readiness, so
/// the loop's next accept waits for a client instead of failing again at once.
fn accept_into_reserve(listener: &TcpListener, reserve: &Reserve) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
    reserve.release_one();
    match listener.poll_accept(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(accepted) => Some(accepted),
        Poll::Pending => {
            reserve.refill();
            None
        }
    }
}

/// After an accept error: one line a second per error class (errno) with how many it stands for, then a pause
/// that doubles on each further error. False when the listener is stopping.
async fn back_off(
    e: &std::io::Error,
    errors: &mut HashMap<Option<i32>, Throttle>,
    backoff: &mut Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if let Some(count) = errors.entry(e.raw_os_error()).or_insert_with(Throttle::per_second).hit() {
        tracing::warn!(target: "waygate::admin", error = %e, count, backoff_ms = backoff.as_millis() as u64,
            "admin accept failed; backing off");
    }
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => return false,
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    true
}
