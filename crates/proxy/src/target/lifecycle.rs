//! A target's registration state (ALB §6), which the request path reads lock-free: registered, or draining
//! since a deregistration (by whom, until when). The control plane's registry starts and cancels drains;
//! the request path wakes the drain when a draining target's last request ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

use crate::lock;

/// A target's registration state, read by the request path (lock-free) and the admin API.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    /// Woken when the last in-flight request of a draining target ends.
    idle: Notify,
    drain: Mutex<Option<DrainInfo>>,
}

/// Why and since when a target is draining.
#[derive(Debug, Clone)]
pub struct DrainInfo {
    pub since: SystemTime,
    pub started: Instant,
    pub deadline: Instant,
    pub actor: String,
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The last deregistration of this target (kept after the drain ends, for the 502's log line).
    pub fn drain_info(&self) -> Option<DrainInfo> {
        lock(&self.drain).clone()
    }

    pub(crate) fn begin(&self, info: DrainInfo) {
        *lock(&self.drain) = Some(info);
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Re-registered while draining: back in service.
    pub(crate) fn cancel(&self) {
        self.draining.store(false, Ordering::SeqCst);
        *lock(&self.drain) = None;
        self.idle.notify_one();
    }

    /// Resolves at the next [`Lifecycle::now_idle`] of a draining target (or a cancelled drain).
    pub(crate) fn until_idle(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }

    /// Called when a request on the target ends with nothing else in flight.
    pub(crate) fn now_idle(&self) {
        if self.is_draining() {
            self.idle.notify_one();
        }
    }
}
