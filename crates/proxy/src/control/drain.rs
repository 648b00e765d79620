//! One draining target's countdown: it ends when nothing is in flight, or when `deregistration_delay`
//! elapses; then the target's upstream is retired, which closes its pooled connections and aborts the
//! exchanges still running on it (they answer 502 TargetDeregistered). A re-registration cancels it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registry::Registry;
use crate::lock;
use crate::target::Target;

pub(super) async fn run(registry: Arc<Registry>, group: String, target: Arc<Target>, delay: Duration) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + delay);
    let expired = loop {
        if !target.lifecycle.is_draining() {
            return;
        }
        if target.in_flight() == 0 {
            break false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break true,
            () = target.lifecycle.until_idle() => {}
        }
    };
    let aborted = {
        // Under the draining lock, so a re-registration either revived the target before this point or
        // finds it gone from the list and builds a new one.
        let mut draining = lock(&registry.draining);
        if !target.lifecycle.is_draining() {
            return;
        }
        draining.retain(|d| !Arc::ptr_eq(&d.target, &target));
        // Only an expired delay leaves requests in flight (otherwise the wait ended at zero).
        let aborted = if expired { target.in_flight() as u64 } else { 0 };
        target.upstream.retire();
        aborted
    };
    let actor = target.lifecycle.drain_info().map_or_else(|| "config".to_owned(), |i| i.actor);
    let details = if aborted > 0 {
        tracing::warn!(target: "waygate::lifecycle", target_group = %group, target_addr = %target.authority,
            aborted, deregistration_delay_ms = delay.as_millis() as u64,
            "deregistration_delay elapsed with requests in flight: they are aborted with 502 TargetDeregistered");
        format!(
            "deregistration_delay {} elapsed with {aborted} request(s) in flight, aborted with 502 TargetDeregistered; \
             raise deregistration_delay above the longest request to avoid this",
            humantime(delay)
        )
    } else {
        format!("drained: nothing in flight after {}", humantime(started.elapsed()))
    };
    registry.audit.record_drained(&actor, &group, &target.authority, aborted, details);
}

fn humantime(d: Duration) -> String {
    if d.as_secs() >= 1 { format!("{:.1}s", d.as_secs_f64()) } else { format!("{}ms", d.as_millis()) }
}
