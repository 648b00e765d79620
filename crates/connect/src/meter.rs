//! The metered socket: every upstream (and client) connection is wrapped in [`Metered`], which counts bytes
//! read and written and stamps the last I/O, so that any failure can be explained with the connection's own
//! evidence (FAULTS.md: bytes_written > 0 and bytes_read = 0 is a TLS blackhole, a reused connection closed
//! before any byte is a keep-alive race). The counters sit *below* TLS, so they count wire bytes.
//!
//! The last I/O is stamped from the kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`: the time of the
//! last timer tick, 1 to 4 ms apart), read in 11 ns where the precise clock took 30 (this machine, vDSO both),
//! and with no `Instant` arithmetic: a client request stamps its two sockets four times, a WebSocket echo as
//! often (callgrind: 25,008 to 24,807 instructions a request, 4,304 to 4,152 an echo). The stamp is the tick's
//! time plus one tick, so it is not earlier than the I/O it marks while the tick keeps time (a tick the
//! hypervisor delays delays the coarse clock too): an idle timeout measured from it ends up to two ticks late,
//! and `last_io_ago` in the evidence reads up to a tick short. Both clocks count the same time: the
//! connection's creation is read on both. rustix reads the clocks through the C library (`use-libc`): its own
//! vDSO lookup faults under valgrind, which the benchmark's instruction counts run the gateway in.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// `clock` (the monotonic clock, precise or coarse) in nanoseconds.
fn monotonic_ns(clock: ClockId) -> u64 {
    nanos(clock_gettime(clock))
}

/// The coarse clock's resolution (the kernel's tick), read once.
fn coarse_tick_ns() -> u64 {
    static TICK: OnceLock<u64> = OnceLock::new();
    *TICK.get_or_init(|| nanos(clock_getres(ClockId::MonotonicCoarse)))
}

/// The coarse monotonic clock in nanoseconds, rounded up a tick (not earlier than the precise clock's reading
/// while the tick keeps time): for stamps that tolerate a tick's error and are taken on every request, such as
/// the upstream pool's parking times.
pub fn coarse_now_ns() -> u64 {
    monotonic_ns(ClockId::MonotonicCoarse).saturating_add(coarse_tick_ns())
}

fn nanos(t: Timespec) -> u64 {
    let (secs, nanos) = (u64::try_from(t.tv_sec).unwrap_or(0), u64::try_from(t.tv_nsec).unwrap_or(0));
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Shared counters of one connection. Written by the socket wrapper, read by whoever explains a failure.
#[derive(Debug)]
pub struct ConnCounters {
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub created: Instant,
    /// The same moment on the monotonic clock, in nanoseconds: the origin of the coarse stamps.
    created_ns: u64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Nanoseconds after `created` of the last successful read or write (a coarse stamp, rounded up).
    last_io_ns: AtomicU64,
    use_count: AtomicU32,
    /// Byte counters when the current use began, so evidence counts this attempt's bytes only.
    use_base_read: AtomicU64,
    use_base_written: AtomicU64,
    open: AtomicBool,
    /// The gateway itself chose to close it (expired, evicted, aborted): an idle close that teaches nothing
    /// about the target's keep-alive.
    closed_by_gateway: AtomicBool,
    /// Requests in flight on a client connection (its listener's idle watch: one in flight is not idle). Here,
    /// not in an allocation of its own: the counters' allocation had the room (see the size test), and an idle
    /// keep-alive connection holds one allocation and one pointer fewer.
    requests_in_flight: AtomicUsize,
}

impl ConnCounters {
    pub fn new(remote: SocketAddr, local: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            remote,
            local,
            created: Instant::now(),
            created_ns: monotonic_ns(ClockId::Monotonic),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            last_io_ns: AtomicU64::new(0),
            use_count: AtomicU32::new(0),
            use_base_read: AtomicU64::new(0),
            use_base_written: AtomicU64::new(0),
            open: AtomicBool::new(true),
            closed_by_gateway: AtomicBool::new(false),
            requests_in_flight: AtomicUsize::new(0),
        })
    }

    fn since_created(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.created).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Stamps the last I/O with the coarse clock, rounded up to the next tick.
    fn touch(&self) {
        self.last_io_ns.store(coarse_now_ns().saturating_sub(self.created_ns), Ordering::Relaxed);
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Bytes written since the current use began.
    pub fn attempt_bytes_written(&self) -> u64 {
        self.bytes_written().saturating_sub(self.use_base_written.load(Ordering::Relaxed))
    }

    pub fn use_count(&self) -> u32 {
        self.use_count.load(Ordering::Relaxed)
    }

    /// Marks the start of one request on this connection; returns the new use count.
    pub fn begin_use(&self) -> u32 {
        self.use_base_read.store(self.bytes_read(), Ordering::Relaxed);
        self.use_base_written.store(self.bytes_written(), Ordering::Relaxed);
        self.use_count.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn mark_closed(&self) {
        self.open.store(false, Ordering::Relaxed);
    }

    pub fn close_by_gateway(&self) {
        self.closed_by_gateway.store(true, Ordering::Relaxed);
    }

    pub fn closed_by_gateway(&self) -> bool {
        self.closed_by_gateway.load(Ordering::Relaxed)
    }

    /// A request began on the connection (see [`Self::request_ended`]).
    pub fn request_started(&self) {
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request on the connection ended (its response done, or the request dropped).
    pub fn request_ended(&self) {
        self.requests_in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn requests_in_flight(&self) -> usize {
        self.requests_in_flight.load(Ordering::Relaxed)
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Time since the last byte moved in either direction.
    pub fn last_io_ago(&self, now: Instant) -> Duration {
        Duration::from_nanos(self.since_created(now).saturating_sub(self.last_io_ns.load(Ordering::Relaxed)))
    }

    /// A point-in-time copy for logs and error evidence.
    pub fn snapshot(&self, reused: bool, idle_before_use: Option<Duration>) -> ConnSnapshot {
        let now = Instant::now();
        ConnSnapshot {
            id: self.id,
            remote: self.remote,
            local: self.local,
            reused,
            use_count: self.use_count(),
            bytes_read: self.bytes_read(),
            bytes_written: self.bytes_written(),
            attempt_bytes_read: self.bytes_read().saturating_sub(self.use_base_read.load(Ordering::Relaxed)),
            attempt_bytes_written: self.bytes_written().saturating_sub(self.use_base_written.load(Ordering::Relaxed)),
            age: now.saturating_duration_since(self.created),
            last_io_ago: self.last_io_ago(now),
            idle_before_use,
            open: self.is_open(),
        }
    }
}

/// The connection evidence carried into every error log line (FAULTS.md's example line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSnapshot {
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub reused: bool,
    pub use_count: u32,
    /// Totals over the connection's life.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Bytes of the current use only (the handshake for a fresh connection is part of its first use).
    pub attempt_bytes_read: u64,
    pub attempt_bytes_written: u64,
    pub age: Duration,
    pub last_io_ago: Duration,
    /// How long the connection sat idle in the pool before this request took it.
    pub idle_before_use: Option<Duration>,
    pub open: bool,
}

pin_project_lite::pin_project! {
    /// A socket that counts what crosses it into shared [`ConnCounters`].
    #[derive(Debug)]
    pub struct Metered<S> {
        #[pin]
        inner: S,
        counters: Arc<ConnCounters>,
    }

    impl<S> PinnedDrop for Metered<S> {
        fn drop(this: Pin<&mut Self>) {
            this.project().counters.mark_closed();
        }
    }
}

impl<S> Metered<S> {
    pub fn new(inner: S, counters: Arc<ConnCounters>) -> Self {
        Self { inner, counters }
    }

    pub fn counters(&self) -> &Arc<ConnCounters> {
        &self.counters
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead> AsyncRead for Metered<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let n = buf.filled().len() - before;
            if n > 0 {
                this.counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                this.counters.touch();
            }
        }
        res
    }
}

impl<S: AsyncWrite> AsyncWrite for Metered<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.counters.count_written(n);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            this.counters.count_written(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        this.counters.mark_closed();
        this.inner.poll_shutdown(cx)
    }
}

impl ConnCounters {
    fn count_written(&self, n: usize) {
        if n > 0 {
            self.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
            self.touch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The coarse stamp and the precise `now` it is compared with count the same time: just after a write the
    /// connection is not idle, and once 200 ms have passed on the precise clock it has been idle for most of them.
    #[tokio::test]
    async fn the_coarse_stamp_measures_idleness_on_the_precise_clock() {
        let (a, _b) = tokio::io::duplex(64);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let counters = ConnCounters::new(addr, addr);
        // Not a fresh connection: the stamp is counted from its creation, on both clocks.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut m = Metered::new(a, counters.clone());
        m.write_all(b"x").await.unwrap();
        let written = Instant::now();
        assert!(counters.last_io_ago(written) < Duration::from_millis(100), "{:?}", counters.last_io_ago(written));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let later = Instant::now();
        let ago = counters.last_io_ago(later);
        assert!(ago >= Duration::from_millis(150) && ago <= later - written + Duration::from_millis(100), "{ago:?}");
    }

    #[tokio::test]
    async fn counts_both_directions_and_use() {
        let (a, mut b) = tokio::io::duplex(64);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let counters = ConnCounters::new(addr, addr);
        let mut m = Metered::new(a, counters.clone());
        m.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        m.read_exact(&mut got).await.unwrap();
        assert_eq!((counters.bytes_written(), counters.bytes_read()), (5, 3));
        assert_eq!(counters.begin_use(), 1);
        assert_eq!(counters.begin_use(), 2);
        let snap = counters.snapshot(true, None);
        assert!(snap.open && snap.reused && snap.use_count == 2);
        drop(m);
        assert!(!counters.is_open());
    }

    /// Every connection, idle keep-alive client ones included, holds its counters for its life: 152 bytes, with
    /// the Arc's two counts 168, in jemalloc's 192-byte size class (the gateway's allocator).
    #[test]
    fn the_counters_fit_jemallocs_192_byte_class() {
        let size = std::mem::size_of::<ConnCounters>();
        assert!(size + 16 <= 192, "ConnCounters is {size} bytes");
    }

    #[test]
    fn counts_requests_in_flight() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let counters = ConnCounters::new(addr, addr);
        counters.request_started();
        counters.request_started();
        counters.request_ended();
        assert_eq!(counters.requests_in_flight(), 1);
    }
}
