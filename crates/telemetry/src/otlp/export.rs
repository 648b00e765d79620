//! The export thread: waits for a first queued exchange, gathers more until `max_batch` or `batch_delay`,
//! turns them into spans, and POSTs one `ExportTraceServiceRequest` (OTLP/HTTP, `application/x-protobuf`)
//! within `export_timeout`. One HTTP/1.1 connection is kept and reused while it lasts (over TLS for https,
//! waygate-connect's client settings: the system's roots or `ca`).
//!
//! A batch that fails (no connection, no answer in time, a non-2xx status) is dropped and counted, not retried:
//! an outage must not build a backlog that delays the spans after it, and the queue in front bounds what waits.
//! A collector's partial success counts its rejected spans as dropped. Failures are logged once a second at most.
//! On shutdown the queue is closed, what it holds is exported, and the thread says it stopped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use tokio::sync::{mpsc, watch};
use waygate_config::Tracing;

use super::TracingCounters;
use super::spans::{self, str_kv};
use crate::{Exchange, Throttle};

/// The most of a collector's answer read (its status is what matters; a partial success is a few bytes).
const MAX_ANSWER: usize = 64 * 1024;
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where and how batches go.
struct Collector {
    endpoint: String,
    host: String,
    port: u16,
    /// `Host` as written in the URL.
    authority: HeaderValue,
    path: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    /// The connection kept between batches.
    conn: Option<SendRequest<Full<Bytes>>>,
}

pub(super) fn spawn(
    config: &Tracing,
    rx: mpsc::Receiver<Box<Exchange>>,
    stop: watch::Receiver<bool>,
    stopped: watch::Sender<bool>,
    counters: TracingCounters,
) -> Result<(), String> {
    let collector = Collector::new(config)?;
    let batch = Batching { max: config.max_batch, delay: config.batch_delay };
    let resource = resource(&config.service_name);
    std::thread::Builder::new()
        .name("waygate-otlp".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(target: "waygate::tracing", error = %e, "OTLP exporter failed to start: no spans");
                    let _ = stopped.send(true);
                    return;
                }
            };
            rt.block_on(async move {
                let mut run = Run { collector, resource, counters, errors: Throttle::per_second() };
                run.all(rx, stop, batch).await;
                let _ = stopped.send(true);
            });
        })
        .map_err(|e| format!("cannot start its thread: {e}"))?;
    Ok(())
}

struct Batching {
    max: usize,
    delay: Duration,
}

struct Run {
    collector: Collector,
    resource: Resource,
    counters: TracingCounters,
    errors: Throttle,
}

impl Run {
    async fn all(&mut self, mut rx: mpsc::Receiver<Box<Exchange>>, mut stop: watch::Receiver<bool>, b: Batching) {
        let mut batch: Vec<Box<Exchange>> = Vec::with_capacity(b.max.min(1024));
        'run: while !*stop.borrow_and_update() {
            tokio::select! {
                _ = stop.changed() => break 'run,
                first = rx.recv() => match first {
                    Some(ex) => batch.push(ex),
                    None => break 'run,
                },
            }
            let deadline = tokio::time::Instant::now() + b.delay;
            while batch.len() < b.max {
                tokio::select! {
                    _ = stop.changed() => break,
                    () = tokio::time::sleep_until(deadline) => break,
                    next = rx.recv() => match next {
                        Some(ex) => batch.push(ex),
                        None => break,
                    },
                }
            }
            self.export(&mut batch).await;
        }
        // Shutdown: nothing more is taken; what the queue holds goes out.
        rx.close();
        while let Some(ex) = rx.recv().await {
            batch.push(ex);
            if batch.len() >= b.max {
                self.export(&mut batch).await;
            }
        }
        self.export(&mut batch).await;
    }

    /// Exports `batch` (emptied), counting the outcome.
    #[expect(clippy::vec_box, reason = "the records as the queue carried them: a pointer each, never copied")]
    async fn export(&mut self, batch: &mut Vec<Box<Exchange>>) {
        if batch.is_empty() {
            return;
        }
        let spans: Vec<_> = batch.drain(..).flat_map(|ex| spans::spans(&ex)).collect();
        let total = spans.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "waygate".to_owned(),
                        version: VERSION.to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let collector = &mut self.collector;
        let body = Bytes::from(request.encode_to_vec());
        let outcome = match tokio::time::timeout(collector.timeout, collector.post(body)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                collector.conn = None;
                Err(format!("no answer within {:?}", collector.timeout))
            }
        };
        match outcome {
            Ok(rejected) => {
                let rejected = rejected.map_or(0, |(n, _)| n.min(total));
                self.counters.spans_exported.inc_by(total - rejected);
                self.counters.spans_dropped.inc_by(rejected);
                if rejected > 0 {
                    self.log_failure(&format!("the collector rejected {rejected} of {total} spans"));
                }
            }
            Err(e) => {
                // The spans first: whoever reads the error in the metrics also reads what it cost.
                self.counters.spans_dropped.inc_by(total);
                self.counters.export_errors.inc();
                self.log_failure(&format!("{e}: {total} spans dropped"));
            }
        }
    }

    fn log_failure(&self, what: &str) {
        if let Some(n) = self.errors.hit() {
            tracing::warn!(target: "waygate::tracing", failures = n, endpoint = %self.collector.endpoint,
                "OTLP export failed: {what}");
        }
    }
}

impl Collector {
    fn new(config: &Tracing) -> Result<Self, String> {
        let uri: http::Uri = config.otlp_endpoint.parse().map_err(|e| format!("otlp_endpoint: {e}"))?;
        let authority = uri.authority().ok_or("otlp_endpoint without a host")?.clone();
        let https = uri.scheme_str() == Some("https");
        let tls = match https {
            true => {
                Some(waygate_connect::tls::client_config(true, config.ca.as_deref()).map_err(|e| format!("ca: {e}"))?)
            }
            false => None,
        };
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut headers = Vec::with_capacity(config.headers.len());
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
            let mut value = HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        Ok(Self {
            endpoint: config.otlp_endpoint.clone(),
            host,
            port,
            authority: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
            path: uri.path_and_query().map_or("/v1/traces", |p| p.as_str()).to_owned(),
            tls,
            headers,
            timeout: config.export_timeout,
            conn: None,
        })
    }

    /// One POST on the kept connection (or a new one). `Ok` with the collector's partial success, if any.
    async fn post(&mut self, body: Bytes) -> Result<Option<(u64, String)>, String> {
        let mut send = match self.conn.take() {
            Some(send) if !send.is_closed() => send,
            _ => self.connect().await?,
        };
        send.ready().await.map_err(|e| format!("HTTP: {e}"))?;
        let mut req = Request::post(self.path.as_str())
            .header(header::HOST, self.authority.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::USER_AGENT, concat!("waygate/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        for (name, value) in &self.headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let resp = send.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
        let status = resp.status();
        let answer = Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map(|b| b.to_bytes());
        let answer = answer.map_err(|e| format!("reading the collector's answer: {e}"))?;
        self.conn = Some(send);
        if !status.is_success() {
            let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
            return Err(format!("the collector answered {status} {}", text.trim()));
        }
        // An empty or undecodable answer to a 2xx is a full success.
        let partial = ExportTraceServiceResponse::decode(answer).ok().and_then(|r| r.partial_success);
        Ok(partial.filter(|p| p.rejected_spans > 0).map(|p| (p.rejected_spans as u64, p.error_message)))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        crate::client::connect(&self.host, self.port, self.tls.as_ref()).await
    }
}

/// The resource every span belongs to: this gateway instance.
fn resource(service_name: &str) -> Resource {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned());
    let mut attributes = vec![str_kv("service.name", service_name), str_kv("service.version", VERSION)];
    attributes.extend(host.filter(|h| !h.is_empty()).map(|h| str_kv("host.name", &h)));
    Resource { attributes, ..Resource::default() }
}
