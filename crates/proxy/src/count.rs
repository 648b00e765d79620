//! A shared count of things in progress (requests in a target group, connections on a worker): each thing holds
//! one unit, released when its guard drops, however it ends. (A client connection counts its requests on its
//! own counters, `listener::InFlight`, so that an idle one holds no count of its own.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One unit of a shared count, given back on drop.
#[derive(Debug)]
pub struct Held(Arc<AtomicUsize>);

impl Held {
    /// Counts one more; returns the guard and the count before it.
    pub fn enter(count: &Arc<AtomicUsize>) -> (Self, usize) {
        let before = count.fetch_add(1, Ordering::Relaxed);
        (Self(count.clone()), before)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
