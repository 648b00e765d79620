//! Readers of finished exchange records (ARCHITECTURE.md: one request, one record, many readers). The data
//! plane hands each record to a list of observers and never hears back: the metrics registry and the access
//! log today, trace sessions, the flight recorder and alert rules as they come. An observer runs on the
//! request's own thread as the record is emitted, so it must not block: count, or queue and drop. The last
//! observer in the list is handed the record itself ([`Observer::keep`]): the access log, which queues it for
//! its writer thread to format.

use crate::record::Exchange;
use crate::{AccessLogHandle, Alerts, Metrics};

/// A reader of every finished exchange record.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Sees one finished record. Must not block or allocate per byte.
    fn observe(&self, exchange: &Exchange);

    /// Sees one finished record and may keep it: the last observer in the list gets it this way, after every
    /// other has seen it. By default, [`observe`](Self::observe) and drop it.
    fn keep(&self, exchange: Box<Exchange>) {
        self.observe(&exchange);
    }
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

    /// Queued whole for the writer thread to format (writer.rs says why); a full slot drops it the same way.
    fn keep(&self, exchange: Box<Exchange>) {
        AccessLogHandle::keep(self, exchange);
    }
}

impl Observer for Alerts {
    /// Counts into the calling thread's shard: no lock, no allocation, no clock read.
    fn observe(&self, exchange: &Exchange) {
        Alerts::observe(self, exchange);
    }
}
