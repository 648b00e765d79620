//! The two ends of a tunnel as the copy sees them: each wrapped to count what it carries, note when bytes last
//! moved (the idle deadline's clock), note whether the client holds up bytes it does not take, and keep the
//! first error with the end it came from, so that the tunnel's end names a side.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::upstream::Upstream;
use crate::wake::Noted;

/// Which end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Client,
    Target,
}

/// What moved through a tunnel, shared by both ends' wrappers.
#[derive(Debug)]
pub struct Meter {
    start: Instant,
    /// Milliseconds after `start` when bytes last moved either way: stamped by [`Meter::stamp`], once per
    /// wake-up of the tunnel rather than once per read or write (each a clock read).
    last: AtomicU64,
    /// A read or write moved bytes since the last stamp.
    unstamped: AtomicBool,
    from_client: AtomicU64,
    to_client: AtomicU64,
    /// The client's socket was full at the last write: bytes wait on it.
    client_blocked: AtomicBool,
    failed: OnceLock<(End, io::Error)>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            unstamped: AtomicBool::new(false),
            from_client: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            client_blocked: AtomicBool::new(false),
            failed: OnceLock::new(),
        }
    }
}

impl Meter {
    pub fn from_client(&self) -> u64 {
        self.from_client.load(Ordering::Relaxed)
    }

    pub fn to_client(&self) -> u64 {
        self.to_client.load(Ordering::Relaxed)
    }

    /// When nothing has moved for `idle`: the deadline as it stands.
    pub fn idle_deadline(&self, idle: std::time::Duration) -> Instant {
        self.start + std::time::Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }

    pub fn client_blocked(&self) -> bool {
        self.client_blocked.load(Ordering::Relaxed)
    }

    /// The first error, and the end it came from.
    pub fn failed(&self) -> Option<&(End, io::Error)> {
        self.failed.get()
    }

    fn moved(&self) {
        self.unstamped.store(true, Ordering::Relaxed);
    }

    /// Notes now as when bytes last moved, if any moved since the last stamp. The tunnel calls it after each
    /// turn of the copy, before the idle deadline is looked at.
    pub fn stamp(&self) {
        if self.unstamped.load(Ordering::Relaxed) {
            self.unstamped.store(false, Ordering::Relaxed);
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Ordering::Relaxed);
        }
    }

    fn fail<T>(&self, end: End, e: io::Error) -> Poll<io::Result<T>> {
        let copy = crate::upstream::failure::copy_io(&e);
        let _ = self.failed.set((end, copy));
        Poll::Ready(Err(e))
    }
}

/// One end of a tunnel, metered. The target's end knows its upstream: an end of stream there after the
/// target was retired is the deregistration cutting the tunnel, not the target closing it.
///
/// Each end reads under a waker of its own ([`Noted`]): once a read found nothing, the end is not read again
/// until its own source woke it. The copy polls both directions on every wake-up of the task, and a message
/// one way woke the task for nothing the other way: its read (a readiness check and a waker registration
/// through four wrappers) was some 200 of the 4,150 instructions a WebSocket echo took, twice an echo. Writes
/// take the task's waker as they come: the copy writes only what it holds.
pub struct Counted<'a, T> {
    pub io: T,
    end: End,
    meter: &'a Meter,
    retired: Option<&'a Upstream>,
    /// Whether a read may find something: at first, after a read that did, and once `read_waker` fired.
    readable: Arc<Noted>,
    read_waker: Waker,
}

impl<'a, T> Counted<'a, T> {
    pub fn client(io: T, meter: &'a Meter) -> Self {
        Self::new(io, End::Client, meter, None)
    }

    pub fn target(io: T, meter: &'a Meter, upstream: &'a Upstream) -> Self {
        Self::new(io, End::Target, meter, Some(upstream))
    }

    fn new(io: T, end: End, meter: &'a Meter, retired: Option<&'a Upstream>) -> Self {
        let readable = Noted::new();
        let read_waker = Waker::from(readable.clone());
        Self { io, end, meter, retired, readable, read_waker }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<'_, T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Cleared before the read, so a wake-up during it is not lost.
        if !this.readable.take(cx.waker()) {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(&mut Context::from_waker(&this.read_waker), buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(read) => {
                // It read (or failed, or ended): the next read goes to the source.
                this.readable.note();
                this.counted(read, before, buf)
            }
        }
    }
}

impl<T> Counted<'_, T> {
    /// Counts what a read that returned added to `buf` (from `before` on), and keeps its error.
    fn counted(&self, read: io::Result<()>, before: usize, buf: &ReadBuf<'_>) -> Poll<io::Result<()>> {
        match read {
            Ok(()) => {
                let n = (buf.filled().len() - before) as u64;
                if n > 0 {
                    self.meter.moved();
                    if self.end == End::Client {
                        self.meter.from_client.fetch_add(n, Ordering::Relaxed);
                    }
                } else if self.retired.is_some_and(Upstream::is_retired) {
                    let cut = io::Error::new(io::ErrorKind::ConnectionAborted, "the target's deregistration ended");
                    return self.meter.fail(self.end, cut);
                }
                Poll::Ready(Ok(()))
            }
            Err(e) => self.meter.fail(self.end, e),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<'_, T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let client = this.end == End::Client;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.meter.moved();
                if client {
                    this.meter.to_client.fetch_add(n as u64, Ordering::Relaxed);
                    this.meter.client_blocked.store(false, Ordering::Relaxed);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => this.meter.fail(this.end, e),
            Poll::Pending => {
                if client {
                    this.meter.client_blocked.store(true, Ordering::Relaxed);
                }
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Err(e)) => this.meter.fail(this.end, e),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Ready(Err(e)) => this.meter.fail(this.end, e),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A source that has nothing until woken: counts its reads and keeps the waker of the last.
    #[derive(Default)]
    struct Source {
        reads: usize,
        has: Option<&'static [u8]>,
        waker: Option<Waker>,
    }

    impl AsyncRead for Source {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            self.reads += 1;
            match self.has.take() {
                Some(bytes) => {
                    buf.put_slice(bytes);
                    Poll::Ready(Ok(()))
                }
                None => {
                    self.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    /// Counts the task's wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An end that found nothing is not read again until its source wakes it, which wakes the task; one that
    /// read is read again at once.
    #[test]
    fn an_end_is_read_again_only_after_its_source_woke_it() {
        let meter = Meter::default();
        let mut end = Counted::client(Source { has: Some(b"hi"), ..Source::default() }, &meter);
        let task = Arc::new(Task::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut bytes = [0u8; 8];
        let mut read = |end: &mut Counted<'_, Source>| {
            let mut buf = ReadBuf::new(&mut bytes);
            Pin::new(end).poll_read(&mut cx, &mut buf).map(|r| r.map(|()| buf.filled().len()))
        };
        assert!(matches!(read(&mut end), Poll::Ready(Ok(2))));
        assert!(read(&mut end).is_pending(), "read again after bytes: nothing more");
        assert_eq!(end.io.reads, 2);
        for _ in 0..3 {
            assert!(read(&mut end).is_pending());
        }
        assert_eq!(end.io.reads, 2, "not read while its source has not woken it");
        end.io.has = Some(b"more");
        end.io.waker.take().expect("the source kept the end's waker").wake();
        assert_eq!(task.0.load(Ordering::Relaxed), 1, "the source's wake-up reached the task");
        assert!(matches!(read(&mut end), Poll::Ready(Ok(4))));
        assert_eq!((end.io.reads, meter.from_client()), (3, 6));
    }
}
