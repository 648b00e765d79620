//! The handle every faultlab server returns, and the counters tests read from it.
//!
//! A server is one accept loop on the current tokio runtime plus one task per connection, all owned by
//! the loop's `JoinSet`. Dropping [`Running`] (or calling [`Running::shutdown`]) flips a stop flag: the
//! loop closes its listener and aborts every connection. [`Stats`] are atomics with a change signal, so
//! tests wait for a count instead of sleeping.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Counters of one server. Every update wakes [`Stats::wait_until`] waiters.
#[derive(Debug)]
pub struct Stats {
    connections_accepted: AtomicU64,
    connections_closed: AtomicU64,
    requests_served: AtomicU64,
    body_bytes_sent: AtomicU64,
    body_bytes_received: AtomicU64,
    streams_completed: AtomicU64,
    bytes_read: AtomicU64,
    changed: watch::Sender<()>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            connections_accepted: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            requests_served: AtomicU64::new(0),
            body_bytes_sent: AtomicU64::new(0),
            body_bytes_received: AtomicU64::new(0),
            streams_completed: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            changed: watch::Sender::new(()),
        }
    }
}

impl Stats {
    /// TCP connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::SeqCst)
    }
    /// Connections whose handler finished (closed by either side, or by the server itself).
    pub fn connections_closed(&self) -> u64 {
        self.connections_closed.load(Ordering::SeqCst)
    }
    /// Requests answered (or, for misbehaving targets, request heads read).
    pub fn requests_served(&self) -> u64 {
        self.requests_served.load(Ordering::SeqCst)
    }
    /// Response body bytes handed to the connection, counted chunk by chunk as they are written.
    pub fn body_bytes_sent(&self) -> u64 {
        self.body_bytes_sent.load(Ordering::SeqCst)
    }
    /// Request body bytes consumed by `/echo` and `/upload` (and raw targets that drain a body).
    pub fn body_bytes_received(&self) -> u64 {
        self.body_bytes_received.load(Ordering::SeqCst)
    }
    /// Streamed response bodies (`/bytes/..`, `/trailers`) delivered to the end.
    pub fn streams_completed(&self) -> u64 {
        self.streams_completed.load(Ordering::SeqCst)
    }
    /// Raw bytes read by hand-written targets (e.g. the ClientHello a TLS black hole swallowed).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::SeqCst)
    }

    /// Resolves once `pred` holds. Wrap it in `tokio::time::timeout` with a generous deadline.
    pub async fn wait_until(&self, pred: impl Fn(&Stats) -> bool) {
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if pred(self) {
                return;
            }
            // The sender lives in `self`, so `changed` cannot fail while we borrow it.
            let _ = rx.changed().await;
        }
    }

    fn bump(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::SeqCst);
        self.changed.send_replace(());
    }
    pub(crate) fn add_accepted(&self) {
        self.bump(&self.connections_accepted, 1);
    }
    pub(crate) fn add_closed(&self) {
        self.bump(&self.connections_closed, 1);
    }
    pub(crate) fn add_request(&self) {
        self.bump(&self.requests_served, 1);
    }
    pub(crate) fn add_sent(&self, n: usize) {
        self.bump(&self.body_bytes_sent, n as u64);
    }
    pub(crate) fn add_received(&self, n: usize) {
        self.bump(&self.body_bytes_received, n as u64);
    }
    pub(crate) fn add_stream_completed(&self) {
        self.bump(&self.streams_completed, 1);
    }
    pub(crate) fn add_read(&self, n: usize) {
        self.bump(&self.bytes_read, n as u64);
    }
}

/// State shared by a server's tasks: counters, the release signal and the stop flag.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stats: Stats,
    /// Incremented by [`Running::release`]; a holder waits for it to pass the value it saw.
    release: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

impl Shared {
    /// A ticket taken before holding: [`Shared::released`] resolves after the next `release()`.
    pub(crate) fn release_ticket(&self) -> u64 {
        *self.release.borrow()
    }

    /// Waits until `release()` was called after `ticket` was taken, or the server stops.
    pub(crate) async fn released(&self, ticket: u64) {
        let mut release = self.release.subscribe();
        tokio::select! {
            _ = release.wait_for(|generation| *generation > ticket) => {}
            () = self.stopped() => {}
        }
    }

    /// Resolves when the server is asked to stop.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// A running server. Dropping it stops the server (listener closed, connections aborted).
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub(crate) fn new(addr: SocketAddr, shared: Arc<Shared>, task: JoinHandle<()>) -> Self {
        Self { addr, shared, task: Some(task) }
    }

    /// The address to point the gateway at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This server's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Lets every response currently held (`/bytes/{n}?hold=1`, a stalled body) continue.
    /// Holds that start after this call wait for the next `release()`.
    pub fn release(&self) {
        self.shared.release.send_modify(|generation| *generation += 1);
    }

    /// Stops the server and waits until its listener and connections are closed.
    pub async fn shutdown(mut self) {
        self.shared.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

/// Binds a tokio listener (SO_REUSEADDR as tokio sets it) on `bind`.
pub(crate) async fn bind(bind: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(bind).await
}

/// Runs `handler` for every accepted connection until the server stops.
pub(crate) fn serve<F, Fut>(listener: TcpListener, handler: F) -> io::Result<Running>
where
    F: Fn(TcpStream, Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::default());
    let task = tokio::spawn(accept_loop(listener, shared.clone(), handler));
    Ok(Running::new(addr, shared, task))
}

async fn accept_loop<F, Fut>(listener: TcpListener, shared: Arc<Shared>, handler: F)
where
    F: Fn(TcpStream, Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = shared.stopped() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.stats.add_accepted();
                    let conn = handler(stream, shared.clone());
                    let shared = shared.clone();
                    conns.spawn(async move {
                        conn.await;
                        shared.stats.add_closed();
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// A server with no accept loop (the refused port, the SYN black hole): `hold` keeps its sockets
/// alive until the server stops.
pub(crate) fn park<T: Send + 'static>(addr: SocketAddr, hold: T) -> Running {
    let shared = Arc::new(Shared::default());
    let stop = shared.clone();
    let task = tokio::spawn(async move {
        stop.stopped().await;
        drop(hold);
    });
    Running::new(addr, shared, task)
}
