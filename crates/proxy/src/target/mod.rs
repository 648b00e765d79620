//! One registered target at run time: its upstream (connection pool), its in-flight count, and the state the
//! control plane and the request path share: its [`health`] and its [`lifecycle`] (registered or draining).
//! Targets are `Arc`s so a reload that keeps a target keeps its pool, counters and state.

pub mod health;
pub mod lifecycle;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use waygate_config::TargetSpec;

use crate::upstream::Upstream;
use health::Health;
use lifecycle::Lifecycle;

/// One registered target.
#[derive(Debug)]
pub struct Target {
    pub spec: TargetSpec,
    /// `host:port` as logs and the admin API write it. Shared: every access-log record names its target.
    pub authority: Arc<str>,
    pub upstream: Upstream,
    /// Active health (kept across reloads with the target).
    pub health: Health,
    /// Registered or draining (kept across reloads with the target).
    pub lifecycle: Lifecycle,
    in_flight: AtomicU32,
}

impl Target {
    pub fn new(spec: TargetSpec, upstream: Upstream) -> Self {
        Self {
            authority: spec.authority().into(),
            spec,
            upstream,
            health: Health::default(),
            lifecycle: Lifecycle::default(),
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts one request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }
}

/// One request in flight on a target.
#[derive(Debug)]
pub struct InFlight(Arc<Target>);

impl InFlight {
    pub fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.lifecycle.now_idle();
        }
    }
}
