//! Delivering alert events: one queue and one task per receiver (URL and trusted CA) on the alerts thread's runtime, so a
//! receiver that is down or slow delays only its own deliveries, and never a request (the request path does
//! not touch this at all: events come from the evaluator). Each queue is bounded; an event that finds it full
//! is dropped and counted, as is one that failed every attempt. Each attempt (connect, send, answer) has the
//! rule's timeout; a failed one is retried after a pause doubling from [`FIRST_PAUSE`].
//!
//! HTTP/1.1 on hyper's client connection, over TLS for `https://` (waygate-connect's client settings: the
//! system's roots or the rule's `webhook_ca`, SNI from the URL's host): one connection per attempt (alerts are
//! rare, a pool would only hold sockets open to receivers).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use tokio::sync::mpsc;
use waygate_config::Webhook;

use crate::AlertCounters;
use crate::alerts::AlertEvent;

/// Events waiting per receiver; more are dropped (and counted).
pub const QUEUE: usize = 64;
/// The pause after the first failed attempt; it doubles up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// How a receiver is reached: plain, or TLS with these settings.
type Tls = Option<std::sync::Arc<rustls::ClientConfig>>;

struct Delivery {
    alert: String,
    state: &'static str,
    body: Bytes,
    timeout: Duration,
    retries: u32,
}

/// The receivers' queues. Lives on the alerts thread; `send` must be called inside its runtime.
pub(crate) struct Webhooks {
    /// By receiver: URL and trusted CA (two rules may trust the same URL differently).
    queues: HashMap<(String, Option<std::path::PathBuf>), mpsc::Sender<Delivery>>,
    counters: AlertCounters,
}

impl Webhooks {
    pub fn new(counters: AlertCounters) -> Self {
        Self { queues: HashMap::new(), counters }
    }

    /// Queues `event` for `hook` without waiting.
    pub fn send(&mut self, hook: &Webhook, event: &AlertEvent) {
        let body = serde_json::to_vec(&event.body(hook.format)).unwrap_or_default();
        let delivery = Delivery {
            alert: event.alert.clone(),
            state: event.word(),
            body: Bytes::from(body),
            timeout: hook.timeout,
            retries: hook.retries,
        };
        let queue = self.queues.entry((hook.url.clone(), hook.ca.clone())).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(deliver_all(hook.clone(), rx, self.counters.clone()));
            tx
        });
        if queue.try_send(delivery).is_err() {
            self.counters.webhook_dropped.inc();
            tracing::warn!(target: "waygate::alert", alert = %event.alert, url = %hook.url,
                "alert webhook queue full ({QUEUE} waiting): event dropped");
        }
    }
}

async fn deliver_all(hook: Webhook, mut rx: mpsc::Receiver<Delivery>, counters: AlertCounters) {
    let url = hook.url;
    let tls: Result<Tls, String> = if url.starts_with("https://") {
        waygate_connect::tls::client_config(true, hook.ca.as_deref()).map(Some)
    } else {
        Ok(None)
    };
    while let Some(d) = rx.recv().await {
        let tls = match &tls {
            Ok(tls) => tls,
            Err(e) => {
                counters.webhook_dropped.inc();
                tracing::error!(target: "waygate::alert", alert = %d.alert, state = d.state, url = %url, error = %e,
                    "alert webhook TLS settings unusable: event dropped");
                continue;
            }
        };
        let mut pause = FIRST_PAUSE;
        let mut attempt = 0;
        loop {
            let outcome = match tokio::time::timeout(d.timeout, post(&url, tls, d.body.clone())).await {
                Ok(Ok(status)) if (200..300).contains(&status) => Ok(()),
                Ok(Ok(status)) => Err(format!("receiver answered {status}")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {:?}", d.timeout)),
            };
            match outcome {
                Ok(()) => {
                    counters.webhook_delivered.inc();
                    break;
                }
                Err(e) if attempt < d.retries => {
                    counters.webhook_retries.inc();
                    tracing::warn!(target: "waygate::alert", alert = %d.alert, state = d.state, url = %url,
                        attempt = attempt + 1, error = %e, "alert webhook failed; retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                    attempt += 1;
                }
                Err(e) => {
                    counters.webhook_dropped.inc();
                    tracing::error!(target: "waygate::alert", alert = %d.alert, state = d.state, url = %url,
                        attempts = attempt + 1, error = %e, "alert webhook failed on every attempt: event dropped");
                    break;
                }
            }
        }
    }
}

/// One POST of `body`; the receiver's status.
async fn post(url: &str, tls: &Tls, body: Bytes) -> Result<u16, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let authority = uri.authority().ok_or("URL without a host")?.clone();
    let default_port = if tls.is_some() { 443 } else { 80 };
    let port = authority.port_u16().unwrap_or(default_port);
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "waygate-alerts")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let mut send = crate::client::connect(host, port, tls.as_ref()).await?;
    let resp = send.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use waygate_config::WebhookFormat;

    use super::*;
    use crate::Metrics;
    use crate::alerts::AlertState;

    /// A receiver's queue holds [`QUEUE`] events; what finds it full is dropped and counted, without waiting.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts() {
        let metrics = Metrics::new();
        let counters = metrics.alert_counters();
        let mut hooks = Webhooks::new(counters.clone());
        // A receiver that accepts and never answers; the delivery task cannot run before this test yields.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = Webhook {
            url: format!("http://{}/hook", silent.local_addr().unwrap()),
            ca: None,
            format: WebhookFormat::Waygate,
            timeout: Duration::from_secs(60),
            retries: 0,
        };
        let event = AlertEvent {
            alert: "a".into(),
            state: AlertState::Firing,
            value: 1.0,
            threshold: 1.0,
            window: Duration::from_secs(60),
            at: SystemTime::UNIX_EPOCH,
            causes: Vec::new(),
            request_ids: Vec::new(),
            remediation: None,
            runbook: None,
            note: None,
        };
        for _ in 0..QUEUE + 5 {
            hooks.send(&hook, &event);
        }
        assert_eq!(counters.webhook_dropped.get(), 5);
        assert_eq!(counters.webhook_delivered.get(), 0);
    }
}
