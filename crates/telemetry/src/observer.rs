//! Readers of finished exchange records (ARCHITECTURE.md: one request, one record, many readers). The data
//! plane hands each record to a list of observers and never hears back: the metrics registry and the access
//! log today, trace sessions, the flight recorder and alert rules as they come. An observer runs on the
//! request's own thread as the record is emitted, so it must not block: count, or queue and drop.

use crate::record::Exchange;
use crate::{AccessLogHandle, Alerts, Metrics};

/// A reader of every finished exchange record.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Sees one finished record. Must not block or allocate per byte.
    fn observe(&self, exchange: &Exchange);
}

impl Observer for Metrics {
    fn observe(&self, exchange: &Exchange) {
        Metrics::observe(self, exchange);
    }
}

impl Observer for AccessLogHandle {
    /// A full slot drops the line and counts it (`waygate_access_log_dropped_total`).
    fn observe(&self, exchange: &Exchange) {
        self.log(exchange);
    }
}

impl Observer for Alerts {
    /// Counts into the calling thread's shard: no lock, no allocation, no clock read.
    fn observe(&self, exchange: &Exchange) {
        Alerts::observe(self, exchange);
    }
}
