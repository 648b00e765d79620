//! Delivering alert events: one queue and one task per receiver URL on the alerts thread's runtime, so a
//! receiver that is down or slow delays only its own deliveries, and never a request (the request path does
//! not touch this at all: events come from the evaluator). Each queue is bounded; an event that finds it full
//! is dropped and counted, as is one that failed every attempt. Each attempt (connect, send, answer) has the
//! rule's timeout; a failed one is retried after a pause doubling from [`FIRST_PAUSE`].
//!
//! Plain HTTP/1.1 on hyper's client connection: one connection per attempt (alerts are rare, a pool would only
//! hold sockets open to receivers).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use waygate_config::Webhook;

use crate::AlertCounters;
use crate::alerts::AlertEvent;

/// Events waiting per receiver; more are dropped (and counted).
pub const QUEUE: usize = 64;
/// The pause after the first failed attempt; it doubles up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(8);

struct Delivery {
    alert: String,
    state: &'static str,
    body: Bytes,
    timeout: Duration,
    retries: u32,
}

/// The receivers' queues. Lives on the alerts thread; `send` must be called inside its runtime.
pub(crate) struct Webhooks {
    queues: HashMap<String, mpsc::Sender<Delivery>>,
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
        let queue = self.queues.entry(hook.url.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(deliver_all(hook.url.clone(), rx, self.counters.clone()));
            tx
        });
        if queue.try_send(delivery).is_err() {
            self.counters.webhook_dropped.inc();
            tracing::warn!(target: "waygate::alert", alert = %event.alert, url = %hook.url,
                "alert webhook queue full ({QUEUE} waiting): event dropped");
        }
    }
}

async fn deliver_all(url: String, mut rx: mpsc::Receiver<Delivery>, counters: AlertCounters) {
    while let Some(d) = rx.recv().await {
        let mut pause = FIRST_PAUSE;
        let mut attempt = 0;
        loop {
            let outcome = match tokio::time::timeout(d.timeout, post(&url, d.body.clone())).await {
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
async fn post(url: &str, body: Bytes) -> Result<u16, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let authority = uri.authority().ok_or("URL without a host")?.clone();
    let addr = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.as_str()),
    };
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "waygate-alerts")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let resp = send.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
    Ok(resp.status().as_u16())
}
