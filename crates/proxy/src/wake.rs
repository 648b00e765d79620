//! A waker for what a task watches beside its main work: a shutdown signal, an idle deadline. A task that
//! polled its watchers on every wake-up paid for them on every request or message, though they almost never
//! fire; with [`Noted`] as their waker, the task polls them only when one of them woke it
//! (`listener::Watch::drive`, the tunnel's `turns`). A tunnel's ends read under one each, so a direction
//! is read only when its own source woke the task (`tunnel::io`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use futures_util::task::AtomicWaker;

/// Notes that a watcher woke the task, and wakes it.
#[derive(Debug)]
pub(crate) struct Noted {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Noted {
    /// Noted as woken, so the watchers are polled the first time.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { woken: AtomicBool::new(true), task: AtomicWaker::new() })
    }

    /// Whether a watcher woke the task since it was last asked (at first: yes); keeps the task's waker current.
    pub(crate) fn take(&self, task: &Waker) -> bool {
        self.task.register(task);
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Notes it as woken without waking the task: what it watches may have more at once (a read that found
    /// bytes), so the next [`Noted::take`] says yes.
    pub(crate) fn note(&self) {
        self.woken.store(true, Ordering::Release);
    }
}

impl Wake for Noted {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}
