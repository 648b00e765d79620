//! Thread-per-core workers for client connections: N single-threaded tokio runtimes, each on its own thread.
//! A client connection, its requests and the upstream connections they lease stay on one thread (the upstream
//! pool keeps one slot per worker), so the request path takes no cross-thread wake-up and its data stays in
//! one core's cache. The listener accepts on the gateway's runtime and hands each connection to the worker
//! with the fewest open connections, so long-lived keep-alive connections spread evenly.
//!
//! Without workers ([`crate::Gateway::start`]), connections run on the runtime the gateway started on.
//!
//! Each worker also keeps a pacing timer armed ([`TIMER_PACE`]): tokio's timer wakes its own I/O driver (an
//! eventfd write, and a wasted turn of `epoll_wait`) whenever a new timer is due sooner than every timer the
//! driver last parked with, even when the insert comes from the worker's own running thread (tokio issue
//! 5207). A worker whose last park saw only keep-alive timers (minutes away) paid that for each request that
//! armed its response timeout (the test below counts those writes). With a timer always due within a second, a
//! timeout of a second or more comes first only in the instant after the pacing timer fired and before it is
//! armed again (once a second).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::FutureExt as _;
use tokio::runtime::Handle;

use crate::count::Held;
use tokio::sync::oneshot;

/// The period of each worker's pacing timer: timers of at least this duration do not wake the worker's driver
/// when armed (see the module doc). A wake-up per second per worker is what an idle gateway pays for it.
pub const TIMER_PACE: std::time::Duration = std::time::Duration::from_secs(1);

thread_local! {
    /// This thread's worker index; 0 on every thread that is not a worker.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The worker index of the calling thread (0 outside workers): which per-worker slot to use.
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// A set of worker threads. Dropping it stops them; their connections end with them, so drop it only after
/// the gateway has drained.
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    /// Client connections open on this worker.
    open: Arc<AtomicUsize>,
    /// Dropped with the worker: its thread's runtime returns and shuts down.
    _stop: oneshot::Sender<()>,
}

impl Workers {
    /// Starts `n` worker threads (at least one), named `waygate-worker-N`.
    pub fn start(n: usize) -> io::Result<Arc<Self>> {
        let mut workers = Vec::with_capacity(n.max(1));
        for index in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new().name(format!("waygate-worker-{index}")).spawn(move || {
                CURRENT.with(|c| c.set(index));
                // Returns when the sender is dropped; dropping the runtime then cancels what still runs on it.
                runtime.block_on(async {
                    tokio::select! {
                        _ = stopped => {}
                        () = pace() => {}
                    }
                });
            })?;
            workers.push(Worker { handle, open: Arc::new(AtomicUsize::new(0)), _stop: stop });
        }
        Ok(Arc::new(Self { workers }))
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Open client connections per worker, in worker order.
    pub fn open_connections(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.open.load(Ordering::Relaxed)).collect()
    }

    /// Runs `connection` on the worker with the fewest open connections (the first of equals). It is first
    /// polled on that worker's thread, so the sockets it registers belong to the worker's reactor.
    pub fn spawn_connection(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let Some(worker) = self.workers.iter().min_by_key(|w| w.open.load(Ordering::Relaxed)) else { return };
        let (open, _) = Held::enter(&worker.open);
        worker.handle.spawn(counted(open, connection));
    }
}

/// Keeps a timer due within [`TIMER_PACE`] armed on the calling runtime, for ever (see the module doc).
async fn pace() {
    loop {
        tokio::time::sleep(TIMER_PACE).await;
    }
}

/// `connection`, holding `open` until it ends (or is dropped unpolled). `map`, not an `async` block around
/// `connection.await`: such a block keeps the connection future twice (as its capture and as the future being
/// awaited), which made every client connection's task 6 KiB instead of 3.
fn counted(open: Held, connection: impl Future<Output = ()>) -> impl Future<Output = ()> {
    connection.map(move |()| drop(open))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_a_connection_does_not_copy_its_future() {
        let open = Arc::new(AtomicUsize::new(0));
        let big = [0u8; 4096];
        let connection = async move {
            tokio::task::yield_now().await;
            std::hint::black_box(&big);
        };
        let size = std::mem::size_of_val(&connection);
        let (held, _) = Held::enter(&open);
        let task = counted(held, connection);
        assert!(
            std::mem::size_of_val(&task) <= size + 16,
            "{} for a {size}-byte connection",
            std::mem::size_of_val(&task)
        );
        assert_eq!(open.load(Ordering::Relaxed), 1);
        drop(task);
        assert_eq!(open.load(Ordering::Relaxed), 0, "dropped unpolled, the connection is no longer counted");
    }

    /// Write syscalls made by the calling thread so far (`syscw` in `/proc/thread-self/io`); None where the
    /// kernel does not account them.
    fn thread_write_syscalls() -> Option<u64> {
        let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
        io.lines().find_map(|l| l.strip_prefix("syscw:")).and_then(|v| v.trim().parse().ok())
    }

    /// The failure this pacing prevents: a worker parks with no short timer armed, a task on it arms a
    /// response-timeout-like timer, and tokio writes the worker's own eventfd. Without the pacer, each of the
    /// rounds below costs one such write on the worker's thread.
    #[tokio::test]
    async fn arming_a_timeout_on_a_worker_does_not_wake_its_own_driver() {
        if thread_write_syscalls().is_none() {
            // As the integration tests do: `.ci/run` sets WAYGATE_TEST_REQUIRE_ALL, where a skip would pass untested.
            let reason = "this kernel does not account write syscalls per thread (/proc/thread-self/io)";
            assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "cannot run: {reason}");
            println!("SKIPPED arming_a_timeout_on_a_worker_does_not_wake_its_own_driver: {reason}");
            return;
        }
        const ROUNDS: u64 = 200;
        let workers = Workers::start(1).expect("workers");
        // The answering side is a plain thread: waking it is a futex, not a write that would count here.
        let (to_test, asks) = std::sync::mpsc::channel::<oneshot::Sender<()>>();
        let answerer = std::thread::spawn(move || {
            let mut answered = 0;
            for tx in asks {
                let _ = tx.send(());
                answered += 1;
            }
            answered
        });
        let (done_tx, done) = oneshot::channel();
        workers.spawn_connection(async move {
            // Let the pacer arm once before counting.
            tokio::task::yield_now().await;
            let before = thread_write_syscalls().expect("accounted");
            let ask = || {
                let (tx, rx) = oneshot::channel();
                to_test.send(tx).expect("answerer listening");
                rx
            };
            for _ in 0..ROUNDS {
                // As a connection waiting on its client: the worker parks with no timeout armed...
                let _ = ask().await;
                // ...then, as it forwards the request, arms the response timeout on the worker's thread.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(60), ask()).await;
            }
            let _ = done_tx.send(thread_write_syscalls().expect("accounted") - before);
        });
        let writes = done.await.expect("the worker reported");
        assert_eq!(answerer.join().expect("answerer"), 2 * ROUNDS as usize);
        // The pacer itself re-arms (and may write) once a second; 200 rounds on loopback take milliseconds.
        assert!(writes < ROUNDS / 4, "{writes} write syscalls on the worker for {ROUNDS} timeouts armed");
    }

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_worker_and_run_on_its_thread() {
        let workers = Workers::start(2).expect("workers");
        assert_eq!(workers.len(), 2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (release, held) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut held = held.clone();
            workers.spawn_connection(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send((current(), name));
                let _ = held.wait_for(|r| *r).await;
            });
        }
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(rx.recv().await.expect("a connection ran"));
        }
        seen.sort();
        let expected: Vec<_> = [0, 0, 1, 1].into_iter().map(|i| (i, Some(format!("waygate-worker-{i}")))).collect();
        assert_eq!(seen, expected, "two each, on the worker's own thread");
        assert_eq!(workers.open_connections(), vec![2, 2]);
        release.send_replace(true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while workers.open_connections() != vec![0, 0] {
            assert!(std::time::Instant::now() < deadline, "open counts never fell: {:?}", workers.open_connections());
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
