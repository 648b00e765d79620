//! Filling the exchange record (ARCHITECTURE.md: one request, one record). A [`Record`] is started when the
//! request head is read, collects each attempt and the timings as the request moves, and is emitted once to the
//! [`Sink`] (its observers: metrics, alert rules, the access log, ...) when the response is finished.
//! [`Pending`] holds it through the request: if the server drops the request because the client left, the
//! record is emitted as ALB's 460
//! (ClientClosedRequest) with whatever attempts it had, so no request goes unrecorded.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::{HeaderValue, Request, Version};
use waygate_faults::{Cause, Profile};
use waygate_telemetry::{
    AccessLogHandle, Actions, Alerts, Attempt, Classification, Exchange, InlineStr, Metrics, Observer, RequestKind,
    TargetGroupRef, Timings,
};

use crate::body::RequestProgress;
use crate::headers::RequestFields;
use crate::upstream::AttemptFailure;

/// Where finished records go: a list of observers ([`Observer`]): metrics, the alert rules, the access log when
/// one is configured, and whatever else attaches itself (trace sessions). Outlives config reloads; the
/// list is swapped whole, so a request emits to one consistent list.
#[derive(Debug)]
pub struct Sink {
    pub metrics: Arc<Metrics>,
    observers: ArcSwap<Vec<Named>>,
    /// The alert rules, attached as an observer; reconfigured on every reload.
    pub alerts: Arc<Alerts>,
    /// The access log in the list, kept typed so a replaced one can be drained.
    access_log: ArcSwapOption<AccessLogHandle>,
    /// `[connection_log]`: a line per client TLS connection (not a record's observer: no request needed).
    pub connection_log: crate::tls_front::ConnectionLog,
    /// Debug (trace) sessions: the request path asks it for a tracer; attached as an observer by the gateway.
    pub debug: Arc<waygate_telemetry::debug::Sessions>,
}

/// An observer and the name it is attached under.
#[derive(Debug, Clone)]
struct Named {
    name: &'static str,
    observer: Arc<dyn Observer>,
}

const METRICS: &str = "metrics";
const ALERTS: &str = "alerts";
const ACCESS_LOG: &str = "access_log";

impl Sink {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let alerts = Arc::new(Alerts::new(metrics.alert_counters()));
        let list =
            vec![Named { name: METRICS, observer: metrics.clone() }, Named { name: ALERTS, observer: alerts.clone() }];
        Self {
            metrics,
            alerts,
            observers: ArcSwap::from_pointee(list),
            access_log: ArcSwapOption::empty(),
            connection_log: crate::tls_front::ConnectionLog::default(),
            debug: Arc::default(),
        }
    }

    /// Hands the record to every observer, in the order they were attached; the last one is given the record
    /// itself ([`Observer::keep`]).
    pub fn emit(&self, ex: Box<Exchange>) {
        let list = self.observers.load();
        if let Some((last, rest)) = list.split_last() {
            for named in rest {
                named.observer.observe(&ex);
            }
            last.observer.keep(ex);
        }
    }

    /// Attaches `observer` under `name`, replacing the one attached under it (`None`: detaches it). Returns the
    /// one it replaced. The access log stays last, whatever attaches after it: it takes the record by value
    /// ([`emit`](Self::emit)), so that the request's thread only queues it.
    pub fn set_observer(&self, name: &'static str, observer: Option<Arc<dyn Observer>>) -> Option<Arc<dyn Observer>> {
        let mut replaced = None;
        self.observers.rcu(|list| {
            let mut next: Vec<Named> = list.iter().filter(|n| n.name != name).cloned().collect();
            replaced = list.iter().find(|n| n.name == name).map(|n| n.observer.clone());
            if let Some(observer) = &observer {
                let log = next.iter().position(|n| n.name == ACCESS_LOG);
                next.insert(log.unwrap_or(next.len()), Named { name, observer: observer.clone() });
            }
            next
        });
        replaced
    }

    /// The names attached, in order.
    pub fn observer_names(&self) -> Vec<&'static str> {
        self.observers.load().iter().map(|n| n.name).collect()
    }

    /// Swaps the access log; returns the previous one so the caller can drain it.
    pub fn set_access_log(&self, handle: Option<AccessLogHandle>) -> Option<Arc<AccessLogHandle>> {
        let handle = handle.map(Arc::new);
        self.set_observer(ACCESS_LOG, handle.clone().map(|h| h as Arc<dyn Observer>));
        self.access_log.swap(handle)
    }
}

/// What the client's TLS session looked like, for the access log.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub cipher: Cow<'static, str>,
    pub protocol: Cow<'static, str>,
    pub sni: Option<String>,
    /// On a listener with mutual TLS, the `X-Amzn-Mtls-Clientcert*` headers its requests carry to targets
    /// ([`crate::tls_front::Accepted::client_cert`]); `None`: mutual TLS is off.
    pub client_cert: Option<Arc<[(http::HeaderName, HeaderValue)]>>,
    /// The listener certificate the client's hello chose: the access log's `chosen_cert_arn`
    /// ([`crate::tls_front::Accepted::chosen_cert`]).
    pub chosen_cert: Option<Arc<str>>,
    /// When the handshake began and how long it took (for debug sessions' `client_tls` phase).
    pub handshake: Option<(Instant, std::time::Duration)>,
}

impl TlsInfo {
    /// From a finished rustls server handshake, with OpenSSL-style names as ALB logs them.
    pub fn of(conn: &rustls::ServerConnection) -> Self {
        let protocol = crate::tls_front::policy::protocol_name(conn.protocol_version());
        let cipher = conn
            .negotiated_cipher_suite()
            .map_or(Cow::Borrowed("-"), |s| crate::tls_front::policy::openssl_name(s.suite()));
        Self {
            cipher,
            protocol: Cow::Borrowed(protocol),
            sni: conn.server_name().map(str::to_owned),
            client_cert: None,
            chosen_cert: None,
            handshake: None,
        }
    }
}

/// What every connection of one listener shares, made once per listener when it starts accepting and held
/// by each of its connections as one `Arc` (each connection held its own copies: a hundred bytes more per
/// connection, idle keep-alive ones included).
#[derive(Debug)]
pub struct ListenerFacts {
    pub name: Arc<str>,
    /// `app/waygate/<listener>`: the access log's `elb` column.
    pub elb: Arc<str>,
    /// The port clients connect to (the listener's own)...
    pub port: u16,
    /// ... as X-Forwarded-Port writes it.
    pub port_header: HeaderValue,
    /// Where the records of its requests go.
    pub sink: Arc<Sink>,
    /// Where its tunnels (WebSockets) count themselves in, for shutdown to close them.
    pub tunnels: Arc<crate::tunnel::Tunnels>,
}

/// The client connection's facts every record of it shares.
#[derive(Debug, Clone)]
pub struct ConnFacts {
    pub listener: Arc<ListenerFacts>,
    pub conn_trace_id: Arc<str>,
    /// Boxed: most connections are plain, and every connection keeps its facts for its life.
    pub tls: Option<Box<TlsInfo>>,
    /// The client's address...
    pub client: std::net::SocketAddr,
    /// ... and its access-log `client:port` column ([`waygate_telemetry::client_column`]), made once.
    pub client_column: Arc<str>,
}

impl ConnFacts {
    /// `http` or `https`: the scheme the client spoke (X-Forwarded-Proto, the record's URL).
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// One request's record in the making.
#[derive(Debug)]
pub struct Record {
    /// Boxed: the record is moved along the request path, which for the whole exchange (over half a kilobyte)
    /// was a copy each time.
    pub ex: Box<Exchange>,
    pub timings: Timings,
    head_bytes: u64,
    body: Option<Arc<RequestProgress>>,
    /// The phase recorder, when a debug session may want this exchange (`crate::trace`).
    pub debug: Option<Box<waygate_telemetry::debug::Tracer>>,
}

pub use crate::wire::{head_bytes, header_bytes};

impl Record {
    /// Starts the record when the request head has been read. `host` is the request's host without its port
    /// (`None`: it has none). `head_len` is the head's size on the wire when the desync guard saw it (HTTP/1);
    /// otherwise it is reckoned from the parsed head.
    pub fn begin<B>(
        conn: &ConnFacts,
        req: &Request<B>,
        fields: &RequestFields<'_>,
        host: Option<&str>,
        id: &HeaderValue,
        head_len: Option<u64>,
        received: SystemTime,
    ) -> Self {
        // Allocated first and built in place: `Box::new(...)` built it on the stack and copied it over.
        let mut ex = Box::write(
            Box::new_uninit(),
            Exchange::received_at(conn.listener.name.clone(), conn.listener.elb.clone(), conn.client, received),
        );
        let http2 = req.version() == Version::HTTP_2;
        ex.kind = RequestKind::from_connection(conn.tls.is_some(), http2);
        ex.method = method_name(req.method());
        ex.http_version = Cow::Borrowed(match req.version() {
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        });
        let scheme = conn.scheme();
        let host = host.unwrap_or("-");
        let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        // Joined piece by piece (`format!` cost a thousand instructions per request here), inside the record.
        ex.url = InlineStr::concat(&[scheme, "://", host, ":", itoa::Buffer::new().format(conn.listener.port), path]);
        ex.user_agent = fields.user_agent.map(user_agent);
        ex.trace_id = id.to_str().unwrap_or("-").into();
        ex.conn_trace_id = Some(conn.conn_trace_id.clone());
        ex.client_column = Some(conn.client_column.clone());
        if let Some(tls) = &conn.tls {
            ex.ssl_cipher = Some(tls.cipher.clone());
            ex.ssl_protocol = Some(tls.protocol.clone());
            ex.sni = tls.sni.clone();
            ex.chosen_cert_arn = tls.chosen_cert.clone();
        }
        let head_bytes = head_len.unwrap_or_else(|| {
            let line = req.method().as_str().len() + path.len() + 12;
            line as u64 + header_bytes(req.headers())
        });
        // One wall-clock read for both: the record's creation time is the moment timing starts.
        let timings = Timings::starting_at(ex.request_creation_time, std::time::Instant::now());
        Self { ex, timings, head_bytes, body: None, debug: None }
    }

    /// The desync guard's classification of a non-compliant request.
    pub fn classify(&mut self, classification: Option<Classification>, reason: Option<&'static str>) {
        self.ex.classification = classification;
        self.ex.classification_reason = reason.map(Cow::Borrowed);
    }

    pub fn route(&mut self, priority: u32, actions: Actions) {
        self.ex.matched_rule_priority = Some(priority);
        self.ex.actions = actions;
        self.trace_route(priority, actions);
    }

    pub fn group(&mut self, group: &TargetGroupRef) {
        self.ex.target_group = Some(group.clone());
        self.trace_group(&group.name);
    }

    /// Counts the request body's bytes into `received_bytes`.
    pub fn body(&mut self, progress: &Arc<RequestProgress>) {
        self.body = Some(progress.clone());
    }

    pub fn request_sent(&mut self) {
        self.timings.request_sent = Some(Instant::now());
        self.trace_sent();
    }

    /// A failed attempt, with what its system-log line says (the flight recorder keeps it).
    pub fn attempt_failed(
        &mut self,
        ctx: &crate::log::AttemptCtx<'_>,
        cause: Cause,
        failure: &AttemptFailure,
        message: String,
    ) {
        self.trace_failed(cause, failure, &message);
        let detail = crate::log::detail(ctx, failure, message, self.timings.received.elapsed());
        self.ex.attempts.push(Attempt::failed_with(ctx.target, cause, detail));
    }

    /// The target's response head arrived: the attempt and TargetResponseTime. The target is shared, not
    /// copied: a copy was an allocation per request.
    pub fn responded(&mut self, target: &Arc<str>, status: u16) {
        let now = Instant::now();
        self.timings.response_head = Some(now);
        let rt = self.timings.request_sent.map_or(Default::default(), |sent| now.saturating_duration_since(sent));
        self.ex.attempts.push(Attempt::responded(target.clone(), status, rt));
    }

    /// Completes the record: the status the client got, the target's status if that was it, the cause, and
    /// the bytes sent (head and body).
    pub fn finish(
        mut self,
        elb_status: u16,
        target_status: Option<u16>,
        cause: Option<Cause>,
        sent: u64,
    ) -> Box<Exchange> {
        self.timings.fill(Instant::now(), &mut self.ex);
        self.ex.elb_status = elb_status;
        self.ex.target_status = target_status;
        self.ex.cause = cause;
        self.ex.received_bytes = self.head_bytes + self.body.as_ref().map_or(0, |p| p.bytes());
        self.ex.sent_bytes = sent;
        self.trace_finish();
        self.ex
    }
}

/// Standard methods as static strings (no allocation per request); others are copied.
fn method_name(m: &http::Method) -> Cow<'static, str> {
    use http::Method as M;
    Cow::Borrowed(match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => return Cow::Owned(m.as_str().to_owned()),
    })
}

/// Holds a request's record until it is finished; emits it as ClientClosedRequest if dropped unfinished.
pub struct Pending {
    pub record: Option<Record>,
    sink: Arc<Sink>,
    profile: Profile,
    /// The request is a gRPC call: the gateway's failures are answered in gRPC.
    pub grpc: bool,
}

impl Pending {
    pub fn new(record: Record, sink: Arc<Sink>, profile: Profile) -> Self {
        Self { record: Some(record), sink, profile, grpc: false }
    }

    pub fn get(&mut self) -> Option<&mut Record> {
        self.record.as_mut()
    }

    /// Finishes with a response the gateway generated (an error or a fixed response).
    pub fn generated(&mut self, status: u16, cause: Option<Cause>, sent: u64) {
        if let Some(record) = self.record.take() {
            self.sink.emit(record.finish(status, None, cause, sent));
        }
    }

    pub fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let status = Cause::ClientClosedRequest.status(self.profile).unwrap_or(460);
            crate::log::client_closed(&record.ex.trace_id, record.ex.target_group.as_ref().map_or("-", |g| &g.name));
            self.sink.emit(record.finish(status, None, Some(Cause::ClientClosedRequest), 0));
        }
    }
}

/// The User-Agent as text, bytes that are not UTF-8 (obs-text) replaced. `str::from_utf8` first:
/// `from_utf8_lossy` checks chunk by chunk, three times slower on the usual ASCII.
fn user_agent(value: &HeaderValue) -> InlineStr<128> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => InlineStr::from(text),
        Err(_) => InlineStr::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderValue;
    use waygate_telemetry::{Exchange, Metrics, Observer};

    use super::Sink;

    #[derive(Debug, Default)]
    struct Count(AtomicUsize);

    impl Observer for Count {
        fn observe(&self, _: &Exchange) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record() -> Box<Exchange> {
        let client = "127.0.0.1:1".parse().unwrap();
        Box::new(Exchange::received_at("l".into(), "app/waygate/l".into(), client, std::time::SystemTime::now()))
    }

    /// Every record reaches every observer attached when it is emitted, metrics first; a detached or replaced
    /// observer sees no more.
    #[test]
    fn records_reach_the_observers_in_the_list() {
        let metrics = Arc::new(Metrics::default());
        let sink = Sink::new(metrics.clone());
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert!(sink.set_observer("a", Some(a.clone())).is_none());
        sink.set_observer("b", Some(b.clone()));
        assert_eq!(sink.observer_names(), ["metrics", "alerts", "a", "b"]);
        sink.emit(record());
        let replacement = Arc::new(Count::default());
        assert!(sink.set_observer("a", Some(replacement.clone())).is_some());
        sink.set_observer("b", None);
        sink.emit(record());
        assert_eq!(
            [a.0.load(Ordering::Relaxed), b.0.load(Ordering::Relaxed), replacement.0.load(Ordering::Relaxed)],
            [1, 1, 1]
        );
        assert!(metrics.encode().contains("waygate_requests_total{"), "metrics observed the records");
    }

    /// An observer that tells a record it saw from one it was handed.
    #[derive(Debug, Default)]
    struct Keeper {
        seen: AtomicUsize,
        kept: AtomicUsize,
    }

    impl Observer for Keeper {
        fn observe(&self, _: &Exchange) {
            self.seen.fetch_add(1, Ordering::Relaxed);
        }

        fn keep(&self, _: Box<Exchange>) {
            self.kept.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Keeper {
        fn counts(&self) -> [usize; 2] {
            [self.seen.load(Ordering::Relaxed), self.kept.load(Ordering::Relaxed)]
        }
    }

    /// The access log stays last whatever attaches after it, and is handed the record itself; the others see
    /// it first. Without it, whichever observer is last is handed the record.
    #[test]
    fn the_access_log_stays_last_and_is_handed_the_record() {
        let sink = Sink::new(Arc::new(Metrics::default()));
        let (log, tracing) = (Arc::new(Keeper::default()), Arc::new(Keeper::default()));
        sink.set_observer(super::ACCESS_LOG, Some(log.clone()));
        sink.set_observer("tracing", Some(tracing.clone()));
        assert_eq!(sink.observer_names(), ["metrics", "alerts", "tracing", "access_log"]);
        sink.emit(record());
        assert_eq!([log.counts(), tracing.counts()], [[0, 1], [1, 0]]);

        let replacement = Arc::new(Keeper::default());
        sink.set_observer(super::ACCESS_LOG, Some(replacement.clone()));
        assert_eq!(sink.observer_names(), ["metrics", "alerts", "tracing", "access_log"]);
        sink.emit(record());
        assert_eq!([log.counts(), replacement.counts(), tracing.counts()], [[0, 1], [0, 1], [2, 0]]);

        sink.set_observer(super::ACCESS_LOG, None);
        sink.emit(record());
        assert_eq!(tracing.counts(), [2, 1]);
    }

    #[test]
    fn user_agents_are_text_with_bad_bytes_replaced() {
        assert_eq!(super::user_agent(&HeaderValue::from_static("curl/8.5.0")), "curl/8.5.0");
        let utf8 = HeaderValue::from_bytes("agent é".as_bytes()).unwrap();
        assert_eq!(super::user_agent(&utf8), "agent é");
        let latin1 = HeaderValue::from_bytes(b"agent \xe9 x").unwrap();
        assert_eq!(super::user_agent(&latin1), "agent \u{fffd} x");
    }
}
