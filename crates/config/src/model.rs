//! The validated runtime model: what the data plane reads. Every value here has passed validation, every
//! default is filled in, every relative path is resolved against the config file's directory, and every
//! name a rule or listener uses refers to a target group that exists.
//!
//! The file model (serde types with spans) lives in `file.rs`; `validate.rs` turns one into the other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use waygate_faults::Profile as ErrorProfile;

/// A target group's `connect_timeout` when the file does not set it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A target group's `tls_handshake_timeout` when the file does not set it.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A target group's `response_timeout` when the file does not set it.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// A target group's `pool_idle_timeout` when the file does not set it.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most `retries` a target group may set.
pub const MAX_RETRIES: u32 = 5;

/// One immutable configuration snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub admin: Admin,
    /// `None` when `[access_log]` is absent or has no `dir`: no access log.
    pub access_log: Option<AccessLog>,
    pub errors: Errors,
    /// In file order; at least one.
    pub listeners: Vec<Listener>,
    /// In file order; names are unique.
    pub target_groups: Vec<TargetGroup>,
    /// `[[alert]]` rules in file order; names are unique.
    pub alerts: Vec<Alert>,
    /// `None` when `[connection_log]` is absent or has no `dir`: no connection log.
    pub connection_log: Option<ConnectionLog>,
    /// `None` when `[tracing]` is absent: no spans exported, no `traceparent` added to requests.
    pub tracing: Option<Tracing>,
}

impl Config {
    /// The target group with this name.
    pub fn target_group(&self, name: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|g| g.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Default `127.0.0.1:9901`.
    pub bind: SocketAddr,
    pub token_file: Option<PathBuf>,
    /// Default 1,000 (0-100,000; 0: off): how many failed exchanges the flight recorder keeps for
    /// `GET /api/v1/exchanges/{request_id}` and `waygate explain`. Read at start; a reload does not resize it.
    pub flight_recorder: usize,
}

impl Admin {
    /// The flight recorder's default size.
    pub const FLIGHT_RECORDER: usize = 1000;
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    pub dir: PathBuf,
    /// Default `alb`.
    pub format: LogFormat,
    /// gzip rotated files (default false).
    pub gzip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Alb,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errors {
    /// Default `alb`.
    pub profile: ErrorProfile,
    /// Default false: no target address or TLS detail reaches clients.
    pub expose_details: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1 and h2c with prior knowledge.
    Http,
    /// TLS with ALPN h2 and http/1.1.
    Https,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesyncMode {
    Monitor,
    Defensive,
    Strictest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTls {
    /// At least one, at most 26 (ALB's default certificate and 25 more); chosen by SNI, the first is the
    /// default.
    pub certificates: Vec<CertificateFiles>,
    /// ALB's security policy (default [`crate::tls_policy::DEFAULT_POLICY`]); always a servable one.
    pub policy: &'static crate::tls_policy::TlsPolicy,
    pub mutual_authentication: MutualAuthentication,
}

/// A certificate chain (PEM, leaf first) and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// ALB's mutual TLS modes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MutualAuthentication {
    /// No client certificate is asked for (the default).
    #[default]
    Off,
    /// Clients must present a certificate that chains to `trust_store` (PEM CA certificates, and CRLs if any).
    Verify { trust_store: PathBuf, ignore_client_certificate_expiry: bool },
    /// Any client certificate (or none) is accepted and its chain passed to targets.
    Passthrough,
}

/// `[connection_log]`: one line per client TLS connection, in ALB's connection-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLog {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Unique among listeners.
    pub name: String,
    /// Unique among listeners and different from the admin bind.
    pub bind: SocketAddr,
    pub protocol: ListenerProtocol,
    /// Present exactly when `protocol` is `Https`.
    pub tls: Option<ListenerTls>,
    /// Default 60 s (ALB range 1-4000 s).
    pub idle_timeout: Duration,
    /// Default 3600 s (ALB range 60-604800 s).
    pub client_keep_alive: Duration,
    /// Time allowed to receive a complete request head (default 60 s, like idle_timeout).
    pub request_header_timeout: Duration,
    /// Default `defensive`.
    pub desync_mitigation: DesyncMode,
    /// Rules sorted by ascending priority (priorities are unique per listener, 1-50000).
    pub rules: Vec<Rule>,
    /// What happens when no rule matches. `None` means 404 NoRoute.
    pub default_action: Option<Action>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub priority: u32,
    /// ALB host-header pattern (`*` and `?` wildcards, case-insensitive), if any.
    pub host: Option<String>,
    /// ALB path pattern (`*` and `?` wildcards, case-sensitive), if any.
    pub path: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Forward to the named target group (validated to exist).
    Forward(String),
    FixedResponse(FixedResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    /// 200-599.
    pub status: u16,
    /// Default empty.
    pub body: String,
    /// Default `text/plain; charset=utf-8`.
    pub content_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProtocol {
    Http,
    Https,
    Lambda,
}

/// What the gateway speaks to a group's targets (ALB's target group protocol version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// HTTP/1.1; WebSocket upgrades are relayed.
    #[default]
    Http1,
    /// HTTP/2: ALPN `h2` on https targets, prior knowledge (h2c) on http ones.
    Http2,
    /// gRPC over HTTP/2: only gRPC requests over HTTP/2 are forwarded (others get 464), health checks are gRPC
    /// calls matched on grpc-status.
    Grpc,
}

impl ProtocolVersion {
    /// Requests go to the targets over HTTP/2.
    pub fn is_h2(self) -> bool {
        self != Self::Http1
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1 => "http1",
            Self::Http2 => "http2",
            Self::Grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
    WeightedRandom,
}

/// One target as written: a host (IP literal or DNS name) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    /// IP literal (IPv6 without brackets) or DNS name.
    pub host: String,
    pub port: u16,
    /// Default 1 (range 0-999; 0 takes the target out of weighted selection).
    pub weight: u32,
}

impl TargetSpec {
    /// The socket address when `host` is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host.parse().ok().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// `host:port`, bracketing IPv6 literals, as written in logs and the admin API.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetTls {
    /// Default true.
    pub verify: bool,
    /// PEM bundle of trusted roots; `None` means the system roots.
    pub ca: Option<PathBuf>,
    /// Server name sent and verified; `None` means the target's host.
    pub sni: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    /// The Invoke API's base URL, without a trailing `/` (default `https://lambda.{region}.amazonaws.com`).
    pub endpoint: String,
    /// Default `us-east-1`.
    pub region: String,
    /// A version or alias to invoke (the Invoke API's `Qualifier`); default: `$LATEST`.
    pub qualifier: Option<String>,
    /// ALB's multi-value headers attribute: the event carries multiValueHeaders and
    /// multiValueQueryStringParameters instead of headers and queryStringParameters. Default false.
    pub multi_value_headers: bool,
    /// The shared credentials/config files' profile; default `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Default true (false for lambda groups, as ALB).
    pub enabled: bool,
    /// Default: the target group's protocol (`http` for lambda groups).
    pub protocol: HealthProtocol,
    /// Default `/`.
    pub path: String,
    /// Default: the target's own port.
    pub port: Option<u16>,
    /// Default 30 s (ALB range 5-300 s).
    pub interval: Duration,
    /// Default 5 s (ALB range 2-120 s), and less than `interval`.
    pub timeout: Duration,
    /// Default 5 (range 2-10).
    pub healthy_threshold: u32,
    /// Default 2 (range 2-10).
    pub unhealthy_threshold: u32,
    /// Default "200"; ranges inclusive, each within 200-499. In a gRPC group: gRPC status codes 0-99, default
    /// "12" (ALB's: UNIMPLEMENTED means the server answers but has no health service).
    pub matcher: Vec<(u16, u16)>,
    /// A gRPC health check (the group's protocol version is gRPC): a unary call to `path`, matched on
    /// grpc-status.
    pub grpc: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// Unique among target groups.
    pub name: String,
    pub protocol: TargetProtocol,
    /// Default `http1`; not for lambda groups.
    pub protocol_version: ProtocolVersion,
    /// Default `round_robin`.
    pub algorithm: Algorithm,
    /// May be empty (every request then gets 503 NoRegisteredTargets).
    pub targets: Vec<TargetSpec>,
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// Default 60 s: request sent to response head received.
    pub response_timeout: Duration,
    /// Default 60 s.
    pub pool_idle_timeout: Duration,
    /// Default 300 s (range 0-3600 s).
    pub deregistration_delay: Duration,
    /// Default 1 (range 0-[`MAX_RETRIES`]): extra attempts, only where FAULTS.md calls it safe.
    pub retries: u32,
    /// Default 65536 (range 0-1 MiB): request bodies up to this size (with a Content-Length) are buffered so
    /// an idempotent request can be replayed after a keep-alive race; larger bodies stream and are not replayed.
    pub retry_body_limit: u64,
    /// Default 0 (no limit; range 0-1,000,000): requests in flight to the group at once; beyond it the gateway
    /// answers 503 GatewayOverloaded instead of queueing unboundedly.
    pub max_in_flight_requests: u32,
    /// Default true.
    pub fail_open: bool,
    /// Default zero (off); otherwise 30-900 s.
    pub slow_start: Duration,
    /// For `https` groups; defaults (verify on, system roots, SNI from host) otherwise.
    pub tls: TargetTls,
    /// Present exactly when `protocol` is `Lambda`.
    pub function: Option<Function>,
    pub health_check: HealthCheck,
}

/// One `[[alert]]` rule: which finished exchanges it counts, and when it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique; the `alert` label of `waygate_alert_firing`.
    pub name: String,
    pub when: AlertMatch,
    pub trigger: AlertTrigger,
    /// The sliding window the value is computed over (1s to 1h, whole seconds).
    pub window: Duration,
    /// A firing alert resolves only once its value is below this (hysteresis): by default half the threshold,
    /// so a value hovering at the threshold does not flap.
    pub resolve_below: f64,
    pub webhook: Option<Webhook>,
    /// The operator's runbook; `None`: the webhook and API carry the cause's own remediation.
    pub runbook: Option<String>,
}

/// What an exchange must be for an alert to count it. Empty or `None` fields match everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertMatch {
    /// Any of these causes.
    pub causes: Vec<waygate_faults::Cause>,
    /// The status the client got.
    pub status: Option<StatusMatch>,
    /// The side the cause is blamed on (FAULTS.md's source column).
    pub source: Option<waygate_faults::Source>,
    /// The scope: exchanges routed to this target group ...
    pub target_group: Option<String>,
    /// ... and received on this listener. A ratio alert divides by the exchanges in this scope.
    pub listener: Option<String>,
    /// Only statuses the gateway generated (ALB's HTTPCode_ELB_*), or only the targets' own (HTTPCode_Target_*).
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// `"5xx"`: the hundreds digit.
    Class(u16),
    Code(u16),
}

/// Who produced the status: `elb_only` / `target_only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Any,
    Gateway,
    Target,
}

/// When an alert fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlertTrigger {
    /// `threshold`: at least this many matching exchanges within the window.
    Count(u64),
    /// `ratio`: matching exchanges over those in scope at least this (0 to 1], once at least `min_requests`
    /// were in scope within the window (so one failure of one request is not 100%).
    Ratio { ratio: f64, min_requests: u64 },
}

impl AlertTrigger {
    /// The value at or above which the alert fires.
    pub fn threshold(&self) -> f64 {
        match *self {
            Self::Count(n) => n as f64,
            Self::Ratio { ratio, .. } => ratio,
        }
    }
}

/// Where firing and resolving are POSTed.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// `http://host[:port]/path` or `https://...`.
    pub url: String,
    /// For https: a PEM bundle trusted instead of the system's roots (a private CA).
    pub ca: Option<PathBuf>,
    pub format: WebhookFormat,
    /// Per attempt: connect, send and the receiver's answer (default 5s).
    pub timeout: Duration,
    /// Extra attempts after a failed one (default 3), with a doubling pause from 1s.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// INTERFACE.md's body.
    #[default]
    Waygate,
    /// `{"text": ...}`, which Slack incoming webhooks (and Mattermost, Rocket.Chat) accept.
    Slack,
}

/// `[tracing]`: spans per exchange exported over OTLP/HTTP (protobuf), W3C trace context to targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Where spans are POSTed: `http(s)://host[:port]/path`, `/v1/traces` appended when the written URL had no
    /// path (as OTLP/HTTP's base endpoint is).
    pub otlp_endpoint: String,
    /// Fraction of exchanges without a sampled parent that are exported (default [`Tracing::SAMPLE_RATIO`]);
    /// failed exchanges are exported whatever it is.
    pub sample_ratio: f64,
    /// The resource's `service.name` (default `waygate`).
    pub service_name: String,
    /// Sent with every export request (names lowercase).
    pub headers: Vec<(String, String)>,
    /// For an https endpoint: a PEM bundle trusted instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// Exchanges waiting for export; more are dropped and counted (default 2048).
    pub max_queue: usize,
    /// Exchanges per export request at most (default 512).
    pub max_batch: usize,
    /// The longest an exchange waits for its batch to fill before the batch is sent anyway (default 5s).
    pub batch_delay: Duration,
    /// One export request's bound: connect, send and the collector's answer (default 10s).
    pub export_timeout: Duration,
}

impl Tracing {
    /// `sample_ratio` when the file does not set it.
    pub const SAMPLE_RATIO: f64 = 0.01;
}
