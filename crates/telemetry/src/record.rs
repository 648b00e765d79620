//! The exchange record: one per request, filled by the data plane as the request moves through the gateway,
//! then handed (by reference) to the metrics and the access log, observers that never reach back.
//!
//! Every field documents the ALB access-log column it becomes (reference/ALB.md §1) and what `-` / `-1` mean
//! there. The record is plain data: cloning an `Arc<str>` for the listener, target group, connection id, client
//! column and each attempt's target is an atomic increment. The request id, the URL and user agent (up to 128
//! bytes) and the usual single attempt are stored inside the record rather than on the heap: every request builds
//! and drops one record, so each allocation it owns is paid per request.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::ops::BitOr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smallvec::SmallVec;
use waygate_connect::meter::ConnSnapshot;
use waygate_faults::{Cause, Phase};

use crate::InlineStr;

/// ALB's `type` column: how the client spoke to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestKind {
    /// HTTP/1.x, or HTTP/2 prior knowledge (h2c), over plain TCP. ALB has no h2c; its `h2` means TLS.
    #[default]
    Http,
    /// HTTP/1.x over TLS.
    Https,
    /// HTTP/2 over TLS (ALPN h2).
    H2,
    /// gRPC over TLS.
    Grpcs,
    /// gRPC over plain TCP (h2c): not an ALB type (ALB listeners with gRPC are TLS), named as `grpcs` is.
    Grpc,
    /// WebSocket over plain TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl RequestKind {
    /// The kind for an ordinary HTTP exchange: `h2` only for HTTP/2 over TLS, as ALB writes it.
    pub const fn from_connection(tls: bool, http2: bool) -> Self {
        match (tls, http2) {
            (true, true) => Self::H2,
            (true, false) => Self::Https,
            (false, _) => Self::Http,
        }
    }

    /// The word ALB writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::H2 => "h2",
            Self::Grpcs => "grpcs",
            Self::Grpc => "grpc",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }
}

/// ALB's `actions_executed` column: a set of actions, written comma-separated in ALB's order
/// (`waf,authenticate,redirect,fixed-response,forward`), or `-` when empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Self = Self(0);
    pub const WAF: Self = Self(1);
    pub const AUTHENTICATE: Self = Self(1 << 1);
    pub const REDIRECT: Self = Self(1 << 2);
    pub const FIXED_RESPONSE: Self = Self(1 << 3);
    pub const FORWARD: Self = Self(1 << 4);

    /// In the order ALB lists them.
    const NAMES: [(Self, &'static str); 5] = [
        (Self::WAF, "waf"),
        (Self::AUTHENTICATE, "authenticate"),
        (Self::REDIRECT, "redirect"),
        (Self::FIXED_RESPONSE, "fixed-response"),
        (Self::FORWARD, "forward"),
    ];

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// The action names present, in ALB's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(a, _)| self.contains(*a)).map(|(_, n)| n)
    }
}

impl BitOr for Actions {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A desync classification of a non-compliant request (reference/ALB.md §7); compliant requests have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    Acceptable,
    Ambiguous,
    Severe,
}

impl Classification {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Acceptable => "Acceptable",
            Self::Ambiguous => "Ambiguous",
            Self::Severe => "Severe",
        }
    }
}

/// Synthetic account and region used wherever ALB writes AWS coordinates (ARNs, file names).
pub const ACCOUNT: &str = "000000000000";
/// See [`ACCOUNT`].
pub const REGION: &str = "local";

/// A target group as the record names it: the config name (metrics label) and the ARN-like string the
/// access log writes. Build it once per target group (at config load), not per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetGroupRef {
    pub name: Arc<str>,
    /// Private, with [`Self::arn_is_token`] decided from it once: the access log writes a token-safe ARN as it
    /// is, where checking it on every line cost some 260 instructions (its 90-odd bytes, callgrind).
    arn: Arc<str>,
    arn_is_token: bool,
}

impl TargetGroupRef {
    /// The synthetic ARN `arn:aws:elasticloadbalancing:local:000000000000:targetgroup/<name>/<id>`, where
    /// `<id>` is 16 hex digits of the FNV-1a hash of the name: stable across restarts and instances, distinct
    /// per name, like ALB's own ids. Whitespace, quotes, commas and control characters in the name become `-`
    /// so the column stays one token.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        let name = name.into();
        let clean: String = name.chars().map(|c| if crate::alb::splits(c) { '-' } else { c }).collect();
        let arn = format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{clean}/{:016x}", fnv1a(&name));
        Self::with_arn(name, arn)
    }

    /// A target group with an ARN of the operator's choosing (e.g. mirroring a real ALB's).
    pub fn with_arn(name: impl Into<Arc<str>>, arn: impl Into<Arc<str>>) -> Self {
        let arn = arn.into();
        let arn_is_token = crate::alb::is_token(&arn);
        Self { name: name.into(), arn, arn_is_token }
    }

    pub fn arn(&self) -> &Arc<str> {
        &self.arn
    }

    /// The ARN is one access-log token as it is: not empty, and ASCII with nothing [`crate::alb`] would replace.
    pub fn arn_is_token(&self) -> bool {
        self.arn_is_token
    }
}

/// 64-bit FNV-1a: a tiny, fixed (unseeded) hash for ids that must be stable across processes.
pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A new connection trace id, `TID_` and 32 lowercase hex digits, for one client connection: every request on
/// that connection carries a clone of the same `Arc`.
pub fn new_conn_trace_id() -> Arc<str> {
    let bits: u128 = rand::random();
    format!("TID_{bits:032x}").into()
}

/// One try of the request against one target (or the single invoke of a function target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The address actually tried, `ip:port` (`[v6]:port` is accepted and written without brackets, as ALB
    /// writes IPv6). For a DNS failure, `host:port`.
    pub target: Arc<str>,
    /// The target's response status, when it sent a parseable response head.
    pub status: Option<u16>,
    /// Why this attempt failed, if it did (the cause of a retried attempt, or the final cause).
    pub cause: Option<Cause>,
    /// CloudWatch TargetResponseTime for this attempt: request head written to the target until its
    /// response head arrived. `None` when no head arrived.
    pub response_time: Option<Duration>,
    /// What the system log said about a failed attempt (the flight recorder and `waygate explain` read it).
    /// Boxed: only failed attempts have one, so a request that succeeds carries a null pointer.
    pub detail: Option<Box<AttemptDetail>>,
}

/// A failed attempt's story as its system-log line tells it: the phase, when it failed, the words, the timer,
/// and the connection's snapshot. The data plane fills it where it writes that line (`log::attempt_failed`),
/// from the same facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptDetail {
    /// Where the attempt failed.
    pub phase: Phase,
    /// When it failed, since the request was received.
    pub failed_after: Duration,
    /// The phase's timer fired after this long (connect_timeout, response_timeout ...).
    pub timed_out: Option<Duration>,
    /// What happened, in the system log's words.
    pub message: String,
    /// The errno's name, when an OS error was seen (`ECONNREFUSED`).
    pub errno: Option<&'static str>,
    /// The connection as it was when the attempt failed (absent before TCP connected).
    pub conn: Option<ConnSnapshot>,
    /// Which attempt this was (1-based) ...
    pub attempt: u8,
    /// ... of how many the retry policy allowed: the last one is logged at ERROR, the others at WARN.
    pub max_attempts: u8,
}

impl Attempt {
    /// An attempt that got a response head.
    pub fn responded(target: impl Into<Arc<str>>, status: u16, response_time: Duration) -> Self {
        Self {
            target: target.into(),
            status: Some(status),
            cause: None,
            response_time: Some(response_time),
            detail: None,
        }
    }

    /// An attempt that failed before a response head.
    pub fn failed(target: impl Into<Arc<str>>, cause: Cause) -> Self {
        Self { target: target.into(), status: None, cause: Some(cause), response_time: None, detail: None }
    }

    /// [`Attempt::failed`] with what the system log said about it.
    pub fn failed_with(target: impl Into<Arc<str>>, cause: Cause, detail: AttemptDetail) -> Self {
        Self { detail: Some(Box::new(detail)), ..Self::failed(target, cause) }
    }
}

/// A record's attempts: the usual one is stored inline, more (retries) spill to the heap. Build one with
/// `push`, or from a `Vec` with `.into()`.
pub type Attempts = SmallVec<[Attempt; 1]>;

/// One request, one record (ARCHITECTURE.md). Field comments name the ALB column each becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// Listener name: the `listener` metrics label (not an ALB column).
    pub listener: Arc<str>,
    /// `type`.
    pub kind: RequestKind,
    /// `time`: when the gateway finished the response (last byte written, or the exchange ended).
    pub time: SystemTime,
    /// `request_creation_time`: when the gateway received the request (its head was read).
    pub request_creation_time: SystemTime,
    /// `elb`: `app/<name>/<id>`; the data plane passes e.g. `app/waygate/<listener>`.
    pub elb: Arc<str>,
    /// `client:port`.
    pub client: SocketAddr,
    /// The `client:port` column already written out ([`client_column`](crate::client_column) of `client`), made
    /// once per connection by the data plane; `None` writes it from `client` on every line.
    pub client_column: Option<Arc<str>>,
    /// `request_processing_time`: received the request → sent it to a target. `None` is written `-1`: the
    /// request was not dispatched, or the target sent no response head (see [`crate::Timings`]).
    pub request_processing_time: Option<Duration>,
    /// `target_processing_time`: sent to the target → target's response head began. `None` → `-1`, same cases.
    pub target_processing_time: Option<Duration>,
    /// `response_processing_time`: target's response head received → gateway began sending the response to
    /// the client. `None` → `-1`, same cases.
    pub response_processing_time: Option<Duration>,
    /// `elb_status_code`: the status the client got (or, for 460, would have got).
    pub elb_status: u16,
    /// `target_status_code`: the status the target sent; `None` → `-` (no connection, or no response).
    pub target_status: Option<u16>,
    /// `received_bytes`: bytes read from the client for this request, headers included.
    pub received_bytes: u64,
    /// `sent_bytes`: bytes written to the client for this response, headers included.
    pub sent_bytes: u64,
    /// `request` verb. Empty when the request could not be parsed: the request column is then `"- - - "`.
    pub method: Cow<'static, str>,
    /// `request` URL, as ALB writes it: `scheme://host:port/path?query` (the port always present). Kept inside
    /// the record up to 128 bytes.
    pub url: InlineStr<128>,
    /// `request` protocol: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`.
    pub http_version: Cow<'static, str>,
    /// `user_agent`; `None` → `-`. Truncated to 8 KB when written, like ALB. Kept inside the record up to 128
    /// bytes (a browser's is about 110).
    pub user_agent: Option<InlineStr<128>>,
    /// `ssl_cipher`, OpenSSL-style name (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`); `None` → `-`.
    pub ssl_cipher: Option<Cow<'static, str>>,
    /// `ssl_protocol`: `TLSv1.2`, `TLSv1.3`; `None` → `-`.
    pub ssl_protocol: Option<Cow<'static, str>>,
    /// `target_group_arn` (and the `target_group` metrics label); `None` → `-`.
    pub target_group: Option<TargetGroupRef>,
    /// `trace_id`: the request id (`Root=1-{8 hex}-{24 hex}`), also sent as `x-request-id`. Empty → `-`.
    pub trace_id: InlineStr,
    /// `domain_name`: the SNI name the client sent; `None` → `-`.
    pub sni: Option<String>,
    /// `chosen_cert_arn`: the listener certificate's identifier; `None` → `-` (always on plain listeners).
    pub chosen_cert_arn: Option<Arc<str>>,
    /// `matched_rule_priority`: the rule's priority, 0 for the default action; `None` → `-` (no rule matched
    /// and no default action). ALB's `-1` (error during rule evaluation) cannot happen in waygate.
    pub matched_rule_priority: Option<u32>,
    /// `actions_executed`.
    pub actions: Actions,
    /// `redirect_url`: the Location of a redirect action; `None` → `-`.
    pub redirect_url: Option<String>,
    /// `error_reason`: the cause name (FAULTS.md); `None` → `-`.
    pub cause: Option<Cause>,
    /// A gRPC call's `grpc-status` (not an ALB column; the JSON log's `grpc_status`): the target's, from its
    /// trailers or a trailers-only head, or the gateway's when it failed the call. `None` for other requests.
    pub grpc_status: Option<u8>,
    /// Every attempt in order: `target:port_list` and `target_status_code_list`; the last one is `target:port`.
    /// Empty for requests never sent to an HTTP target (fixed responses, redirects, routing or selection
    /// failures, function targets): those columns are then `-`.
    pub attempts: Attempts,
    /// `classification`: desync classification of a non-compliant request; `None` → `-`.
    pub classification: Option<Classification>,
    /// `classification_reason`, e.g. `AmbiguousUri`; `None` → `-`.
    pub classification_reason: Option<Cow<'static, str>>,
    /// `conn_trace_id` of the client connection ([`new_conn_trace_id`]). `None` omits the column, giving the
    /// pre-2023 line (used to reproduce AWS's documented examples).
    pub conn_trace_id: Option<Arc<str>>,
    /// A debug session's capture of this exchange (phases, masked headers, connections, bodies): `None` unless
    /// a session was capturing and its filter may match (not an ALB column; see [`crate::debug`]).
    pub debug: Option<Box<crate::debug::Capture>>,
    /// The exchange's W3C trace context (not an ALB column), set on the request path when `[tracing]` is on:
    /// the OpenTelemetry exporter's span ids and sampling decision. `None` without `[tracing]`.
    pub trace: Option<crate::TraceContext>,
}

impl Exchange {
    /// A record for a request just received: times are now, every optional column is `-`/`-1`, status 0
    /// until the data plane sets it.
    pub fn new(listener: Arc<str>, elb: Arc<str>, client: SocketAddr) -> Self {
        Self::received_at(listener, elb, client, SystemTime::now())
    }

    /// [`Exchange::new`] for a request received at `now` (the data plane reads the clock once per request,
    /// for this and the request id).
    pub fn received_at(listener: Arc<str>, elb: Arc<str>, client: SocketAddr, now: SystemTime) -> Self {
        Self {
            listener,
            kind: RequestKind::Http,
            time: now,
            request_creation_time: now,
            elb,
            client,
            client_column: None,
            request_processing_time: None,
            target_processing_time: None,
            response_processing_time: None,
            elb_status: 0,
            target_status: None,
            received_bytes: 0,
            sent_bytes: 0,
            method: Cow::Borrowed(""),
            url: InlineStr::new(),
            http_version: Cow::Borrowed("HTTP/1.1"),
            user_agent: None,
            ssl_cipher: None,
            ssl_protocol: None,
            target_group: None,
            trace_id: InlineStr::new(),
            sni: None,
            chosen_cert_arn: None,
            matched_rule_priority: None,
            actions: Actions::NONE,
            redirect_url: None,
            cause: None,
            grpc_status: None,
            attempts: Attempts::new(),
            classification: None,
            classification_reason: None,
            conn_trace_id: None,
            debug: None,
            trace: None,
        }
    }

    /// ALB's `target:port`: the last attempt's target, if any.
    pub fn target(&self) -> Option<&str> {
        self.attempts.last().map(|a| &*a.target)
    }

    /// The status the client got was the target's own: `target_status == elb_status` (ALB's rule: "502 with
    /// 502 means the target did"). Such a response counts as a target response, even a 503, and a cause on it
    /// (a body cut short, TargetResponseIncomplete) does not make it a gateway error.
    pub fn is_target_response(&self) -> bool {
        self.target_status == Some(self.elb_status)
    }

    /// The gateway generated the status itself (an error, a fixed response or a redirect): counted in
    /// `waygate_elb_responses_total`, never in `waygate_target_responses_total`.
    pub fn is_gateway_generated(&self) -> bool {
        !self.is_target_response()
    }

    /// The gateway generated this status because something failed: it has a cause and it is not the target's
    /// status. Every such record explains itself through [`Exchange::cause`].
    pub fn is_gateway_error(&self) -> bool {
        self.cause.is_some() && self.is_gateway_generated()
    }

    /// A failure the flight recorder keeps: the record has a cause from the catalogue (every gateway-generated
    /// 4xx/5xx, and a target's response cut short), or the target answered 5xx. A few comparisons: this is all
    /// a successful request pays the recorder.
    pub fn is_failure(&self) -> bool {
        self.cause.is_some() || self.elb_status >= 500 || self.target_status.is_some_and(|s| s >= 500)
    }
}
