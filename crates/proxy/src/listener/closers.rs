//! Shutdown's way into a listener's connections: one task per listener waits on the gateway's shutdown watch
//! and then wakes every connection's close signal registered here. A wait of its own on the watch (a
//! `changed()` future, 120 bytes) in each connection's task sized every idle keep-alive connection; a
//! registration is a map entry (about 40 bytes), made and removed once or twice per connection (while it waits
//! for its first bytes, then while it is served), never per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use tokio::sync::watch;

/// A listener's connections waiting for the gateway's shutdown.
pub(super) struct Closers {
    /// The gateway shuts down (or its shutdown watch is gone): every connection starts closing.
    fired: AtomicBool,
    /// By connection id (the connection's counters' id).
    waiting: Mutex<HashMap<u64, Waker>>,
}

impl Closers {
    /// Watches `shutdown` from a task on the calling runtime, which ends once it fired.
    pub(super) fn watch(mut shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let closers = Arc::new(Self { fired: AtomicBool::new(false), waiting: Mutex::new(HashMap::new()) });
        let firing = closers.clone();
        drop(tokio::spawn(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
            firing.fire();
        }));
        closers
    }

    /// Whether the gateway shuts down. Checked after registering, it cannot miss a shutdown: `fire` sets it
    /// before it takes the registrations.
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        let waiting = std::mem::take(&mut *crate::lock(&self.waiting));
        for waker in waiting.into_values() {
            waker.wake();
        }
    }

    /// How many wait: each connection's registration goes with it.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        crate::lock(&self.waiting).len()
    }

    /// Wakes `waker` when the gateway shuts down, until the registration is dropped.
    pub(super) fn register(self: &Arc<Self>, id: u64, waker: &Waker) -> Registered {
        crate::lock(&self.waiting).insert(id, waker.clone());
        Registered { closers: self.clone(), id }
    }
}

/// A connection's registration; dropped with the connection's task.
pub(super) struct Registered {
    closers: Arc<Closers>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        crate::lock(&self.closers.waiting).remove(&self.id);
    }
}
