//! OpenTelemetry export (`[tracing]`): the spans of finished exchanges ([`spans`]), batched and POSTed over
//! OTLP/HTTP in protobuf to a collector (Jaeger, Tempo, Honeycomb, any OpenTelemetry collector).
//!
//! [`OtlpExporter`] is an [`Observer`]: on the request's thread it only decides and enqueues. The decision is
//! taken at the end of the exchange: the head sampling decision the request path made (`Exchange::trace`, see
//! `trace_context`, which sent it to targets in `traceparent`), or a failure ([`Exchange::is_failure`]), which
//! is exported whatever the ratio. An exchange to export is copied into a bounded queue (`max_queue`); one that
//! finds it full is dropped and its spans counted in `waygate_tracing_spans_dropped_total`, with a system-log
//! line a second at most. A thread of its own (`export`) batches (`max_batch`, `batch_delay`), builds the
//! spans, encodes and POSTs them: a slow or absent collector fills the queue, and never delays a request.
//!
//! Crates: `opentelemetry-proto` (the OTLP messages, generated from the specification's protobuf files) with
//! `prost` to encode them, and hyper's HTTP/1 client, which waygate already has (the alert webhooks use it,
//! with waygate-connect's TLS settings for https). Not the opentelemetry SDK and its OTLP exporter: their
//! span API records live spans through the request (a span object per phase, attributes set one call at a
//! time), where waygate already has the whole story in one finished record and needs only to translate it off
//! the request path; and the SDK's batch processor, HTTP client (reqwest) and runtime glue would be a second
//! copy of what this module does in a few hundred lines, with less control over what the request path pays.
//! `opentelemetry-proto` does depend on the `opentelemetry` API crates (its type conversions), which are
//! compiled but not used.

mod export;
pub mod spans;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use waygate_config::Tracing;

use crate::trace_context::{Sampler, TraceContext};
use crate::{Exchange, Observer, Throttle};

/// `waygate_tracing_spans_exported_total`, `waygate_tracing_spans_dropped_total` and
/// `waygate_tracing_export_errors_total`, shared with the registry.
#[derive(Debug, Clone, Default)]
pub struct TracingCounters {
    /// Spans the collector accepted.
    pub spans_exported: Counter,
    /// Spans never exported: their exchange found the queue full, their batch failed, or the collector rejected
    /// them (a partial success).
    pub spans_dropped: Counter,
    /// Export requests that failed (no connection, no answer within `export_timeout`, a non-2xx status), each
    /// once.
    pub export_errors: Counter,
}

impl TracingCounters {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register("waygate_tracing_spans_exported", "Spans the OTLP collector accepted", self.spans_exported.clone());
        r.register(
            "waygate_tracing_spans_dropped",
            "Spans never exported (export queue full, export failed, or rejected by the collector)",
            self.spans_dropped.clone(),
        );
        r.register(
            "waygate_tracing_export_errors",
            "OTLP export requests that failed (connection, timeout, or a non-2xx answer)",
            self.export_errors.clone(),
        );
    }
}

/// The `[tracing]` exporter: an observer of finished exchanges and the thread that exports them.
pub struct OtlpExporter {
    sampler: Sampler,
    max_queue: usize,
    queue: mpsc::Sender<Box<Exchange>>,
    counters: TracingCounters,
    /// The system-log line for a full queue, once a second at most.
    full: Throttle,
    /// Set by [`OtlpExporter::shutdown`]: export what is queued and stop.
    stop: watch::Sender<bool>,
    /// Set by the export thread when it has stopped.
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter").field("max_queue", &self.max_queue).finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Starts the export thread for `config`. Fails when its TLS settings are unusable (`ca` unreadable or not
    /// PEM) or the thread cannot be spawned; an unreachable collector shows in the export errors and the system
    /// log instead.
    pub fn start(config: &Tracing, counters: TracingCounters) -> Result<Arc<Self>, String> {
        let (queue, rx) = mpsc::channel(config.max_queue);
        let (stop, stop_rx) = watch::channel(false);
        let (stopped_tx, stopped) = watch::channel(false);
        export::spawn(config, rx, stop_rx, stopped_tx, counters.clone())?;
        Ok(Arc::new(Self {
            sampler: Sampler::new(config.sample_ratio),
            max_queue: config.max_queue,
            queue,
            counters,
            full: Throttle::per_second(),
            stop,
            stopped,
        }))
    }

    /// Exports what is queued and stops the thread; waits for it at most `deadline`. Exchanges observed after
    /// this are dropped and counted. Returns whether the thread finished in time.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        let _ = self.stop.send(true);
        let mut stopped = self.stopped.clone();
        tokio::time::timeout(deadline, stopped.wait_for(|s| *s)).await.is_ok_and(|r| r.is_ok())
    }
}

impl Observer for OtlpExporter {
    /// A record neither sampled nor failed costs these comparisons; one to export, a copy and a queue slot.
    fn observe(&self, ex: &Exchange) {
        // A record the request path gave no context (a request head that did not parse) starts a trace here.
        let root = ex.trace.is_none().then(|| TraceContext::root(ex.trace_id.as_str(), self.sampler));
        let sampled = ex.trace.as_ref().or(root.as_ref()).is_some_and(|t| t.sampled);
        if !sampled && !ex.is_failure() {
            return;
        }
        let mut copy = Box::new(ex.clone());
        if root.is_some() {
            copy.trace = root;
        }
        if self.queue.try_send(copy).is_err() {
            self.counters.spans_dropped.inc_by(spans::count(ex));
            if let Some(n) = self.full.hit() {
                tracing::warn!(target: "waygate::tracing", exchanges = n, max_queue = self.max_queue,
                    "tracing export queue full (or exporter stopped): exchanges dropped, their spans counted in \
                     waygate_tracing_spans_dropped_total");
            }
        }
    }
}
