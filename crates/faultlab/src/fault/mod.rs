//! The misbehaving targets: one [`Fault`] per cause in `docs/FAULTS.md` that a target can provoke.
//!
//! Each variant is a server on an ephemeral loopback port that fails in exactly one way. Tests spawn
//! them directly; `waygate faultlab` lists them ([`Fault::ALL`]) and runs them by name
//! ([`Fault::from_name`]).

mod connect;
mod http;
mod tls;

/// What some faults put on the wire, for assertions.
pub mod wire {
    pub use super::http::{PROMISED_BODY, SENT_BODY, huge_head};
    pub use super::tls::HANDSHAKE_FAILURE_ALERT;
}

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::pki::TestPki;
use crate::running::Running;

/// [`Fault::SlowHead`] in [`Fault::ALL`]: longer than the default 60 s `response_timeout`.
pub const DEFAULT_SLOW_HEAD: Duration = Duration::from_secs(75);
/// [`Fault::KeepAliveCloser`] in [`Fault::ALL`]: shorter than the default 60 s `pool_idle_timeout`.
pub const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(5);

/// A target that fails in one specific way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Nothing listens: connects are refused.
    Refuse,
    /// SYNs are dropped: connects time out.
    SynBlackhole,
    /// TCP accepts, the ClientHello is swallowed, no reply.
    TlsBlackhole,
    /// The ClientHello is answered with a fatal handshake_failure alert.
    TlsAlert,
    /// TLS with a self-signed certificate.
    TlsSelfSigned,
    /// TLS with an expired certificate (from the test CA).
    TlsExpired,
    /// TLS with a certificate for `wrong.example` (from the test CA).
    TlsWrongName,
    /// Plain HTTP where the gateway expects TLS.
    PlainHttpOnTls,
    /// Reads the request head, then closes with FIN.
    CloseBeforeResponse,
    /// Reads the request head, then closes with RST.
    ResetBeforeResponse,
    /// Answers with an invalid status line.
    MalformedStatusLine,
    /// Answers with an invalid header name.
    MalformedHeader,
    /// Answers with a response head of about 64 KiB.
    HugeHead,
    /// Answers correctly, but only after the given delay.
    SlowHead(Duration),
    /// Promises 1000 body bytes, sends 100, closes.
    TruncatedBody,
    /// Promises 1000 body bytes, sends 100, then goes silent with the connection open.
    StalledBody,
    /// Correct keep-alive server that silently closes connections idle for the given time.
    KeepAliveCloser(Duration),
    /// Answers one request per connection, then closes (FIN, no response) when the next request arrives:
    /// the keep-alive race made deterministic.
    KeepAliveRace,
    /// The target's own 503 (not a gateway error: must be passed through).
    ServerError,
}

impl Fault {
    /// Every fault, with [`DEFAULT_SLOW_HEAD`] and [`DEFAULT_KEEPALIVE_IDLE`] for the timed ones.
    pub const ALL: &'static [Fault] = &[
        Fault::Refuse,
        Fault::SynBlackhole,
        Fault::TlsBlackhole,
        Fault::TlsAlert,
        Fault::TlsSelfSigned,
        Fault::TlsExpired,
        Fault::TlsWrongName,
        Fault::PlainHttpOnTls,
        Fault::CloseBeforeResponse,
        Fault::ResetBeforeResponse,
        Fault::MalformedStatusLine,
        Fault::MalformedHeader,
        Fault::HugeHead,
        Fault::SlowHead(DEFAULT_SLOW_HEAD),
        Fault::TruncatedBody,
        Fault::StalledBody,
        Fault::KeepAliveCloser(DEFAULT_KEEPALIVE_IDLE),
        Fault::KeepAliveRace,
        Fault::ServerError,
    ];

    /// Kebab-case name, e.g. `syn-blackhole` (durations are not part of the name).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::SynBlackhole => "syn-blackhole",
            Fault::TlsBlackhole => "tls-blackhole",
            Fault::TlsAlert => "tls-alert",
            Fault::TlsSelfSigned => "tls-self-signed",
            Fault::TlsExpired => "tls-expired",
            Fault::TlsWrongName => "tls-wrong-name",
            Fault::PlainHttpOnTls => "plain-http-on-tls",
            Fault::CloseBeforeResponse => "close-before-response",
            Fault::ResetBeforeResponse => "reset-before-response",
            Fault::MalformedStatusLine => "malformed-status-line",
            Fault::MalformedHeader => "malformed-header",
            Fault::HugeHead => "huge-head",
            Fault::SlowHead(_) => "slow-head",
            Fault::TruncatedBody => "truncated-body",
            Fault::StalledBody => "stalled-body",
            Fault::KeepAliveCloser(_) => "keepalive-closer",
            Fault::KeepAliveRace => "keepalive-race",
            Fault::ServerError => "server-error",
        }
    }

    /// Parses a name as printed by [`Fault::name`], case-insensitive, `-`/`_` optional (so `SynBlackhole`
    /// works too). Timed faults take an optional duration suffix: `slow-head:2s`, `keepalive-closer:500ms`.
    pub fn from_name(name: &str) -> Option<Fault> {
        let (name, duration) = match name.split_once([':', '=']) {
            Some((name, d)) => (name, Some(parse_duration(d)?)),
            None => (name, None),
        };
        let norm = |s: &str| s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
        let wanted = norm(name);
        let fault = *Fault::ALL.iter().find(|f| norm(f.name()) == wanted)?;
        match (fault, duration) {
            (f, None) => Some(f),
            (Fault::SlowHead(_), Some(d)) => Some(Fault::SlowHead(d)),
            (Fault::KeepAliveCloser(_), Some(d)) => Some(Fault::KeepAliveCloser(d)),
            (_, Some(_)) => None,
        }
    }

    /// One line saying what the target does.
    pub fn description(&self) -> &'static str {
        match self {
            Fault::Refuse => "port bound but not listening: every connect is refused (RST)",
            Fault::SynBlackhole => "listener with a full accept queue: SYNs are dropped, connects time out",
            Fault::TlsBlackhole => "accepts TCP, swallows the ClientHello, never answers",
            Fault::TlsAlert => "answers the ClientHello with a fatal handshake_failure alert, then closes",
            Fault::TlsSelfSigned => "HTTPS with a self-signed certificate",
            Fault::TlsExpired => "HTTPS with a certificate that expired in 2021",
            Fault::TlsWrongName => "HTTPS with a certificate for wrong.example only",
            Fault::PlainHttpOnTls => "plain HTTP/1.1: a TLS ClientHello gets `HTTP/1.1 400 Bad Request` back",
            Fault::CloseBeforeResponse => "reads the request head, then closes (FIN) without a byte",
            Fault::ResetBeforeResponse => "reads the request head, then resets (RST, SO_LINGER 0)",
            Fault::MalformedStatusLine => "answers `HTTP/1.1 2OO OK` (letter O, not zero)",
            Fault::MalformedHeader => "answers with a header name containing a space",
            Fault::HugeHead => "answers with ~64 KiB of response headers",
            Fault::SlowHead(_) => "reads the request, waits, then answers 200",
            Fault::TruncatedBody => "Content-Length: 1000, sends 100 body bytes, closes",
            Fault::StalledBody => "Content-Length: 1000, sends 100 body bytes, then silence (connection open)",
            Fault::KeepAliveCloser(_) => "keep-alive server that silently closes (FIN) idle connections",
            Fault::KeepAliveRace => "answers one request per connection, closes (FIN) when the next one arrives",
            Fault::ServerError => "the target's own 503 with a body (to be passed through, not a gateway error)",
        }
    }

    /// The FAULTS.md cause the gateway should report for a request to this target, or `""` for
    /// [`Fault::ServerError`] (a target response: no cause, passed through).
    ///
    /// [`Fault::KeepAliveCloser`] yields `TargetKeepAliveRace` only when the gateway reuses a pooled
    /// connection just as the target closes it and cannot retry; otherwise the gateway retries or
    /// detects the close at checkout and the request succeeds.
    pub fn expected_cause(&self) -> &'static str {
        match self {
            Fault::Refuse => "TargetConnectionRefused",
            Fault::SynBlackhole => "TargetConnectTimeout",
            Fault::TlsBlackhole => "TargetTlsHandshakeTimeout",
            Fault::TlsAlert => "TargetTlsAlert",
            Fault::TlsSelfSigned | Fault::TlsExpired | Fault::TlsWrongName => "TargetTlsCertificateInvalid",
            Fault::PlainHttpOnTls => "TargetTlsProtocolError",
            Fault::CloseBeforeResponse => "TargetClosedConnection",
            Fault::ResetBeforeResponse => "TargetResetConnection",
            Fault::MalformedStatusLine | Fault::MalformedHeader => "TargetMalformedResponse",
            Fault::HugeHead => "TargetResponseHeadersTooLarge",
            Fault::SlowHead(_) => "TargetResponseTimeout",
            Fault::TruncatedBody => "TargetResponseIncomplete",
            Fault::StalledBody => "TargetResponseStalled",
            Fault::KeepAliveCloser(_) => "TargetKeepAliveRace",
            Fault::KeepAliveRace => "TargetKeepAliveRace",
            Fault::ServerError => "",
        }
    }

    /// Whether the gateway must speak TLS to this target for the fault to show.
    pub fn tls(&self) -> bool {
        matches!(
            self,
            Fault::TlsBlackhole
                | Fault::TlsAlert
                | Fault::TlsSelfSigned
                | Fault::TlsExpired
                | Fault::TlsWrongName
                | Fault::PlainHttpOnTls
        )
    }

    /// Starts the target on `bind` (usually `127.0.0.1:0`); certificates come from [`TestPki::shared`].
    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        self.spawn_with_pki(bind, TestPki::shared()).await
    }

    /// Like [`Fault::spawn`], with certificates from `pki` (only the `Tls*` certificate faults use it).
    pub async fn spawn_with_pki(self, bind: SocketAddr, pki: &TestPki) -> io::Result<Running> {
        match self {
            Fault::Refuse => connect::refuse(bind),
            Fault::SynBlackhole => connect::syn_blackhole(bind).await,
            Fault::TlsBlackhole => tls::blackhole(bind).await,
            Fault::TlsAlert => tls::alert(bind).await,
            Fault::TlsSelfSigned => tls::backend(bind, "tls-self-signed", pki.self_signed()).await,
            Fault::TlsExpired => tls::backend(bind, "tls-expired", pki.expired()).await,
            Fault::TlsWrongName => tls::backend(bind, "tls-wrong-name", pki.wrong_name()).await,
            Fault::PlainHttpOnTls => tls::plain_http(bind).await,
            Fault::CloseBeforeResponse => http::close_before_response(bind).await,
            Fault::ResetBeforeResponse => http::reset_before_response(bind).await,
            Fault::MalformedStatusLine => http::malformed_status_line(bind).await,
            Fault::MalformedHeader => http::malformed_header(bind).await,
            Fault::HugeHead => http::huge_head_fault(bind).await,
            Fault::SlowHead(delay) => http::slow_head(bind, delay).await,
            Fault::TruncatedBody => http::truncated_body(bind).await,
            Fault::StalledBody => http::stalled_body(bind).await,
            Fault::KeepAliveCloser(idle) => http::keep_alive_closer(bind, idle).await,
            Fault::KeepAliveRace => http::keep_alive_race(bind).await,
            Fault::ServerError => http::server_error(bind).await,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::SlowHead(d) | Fault::KeepAliveCloser(d) => write!(f, "{}:{}ms", self.name(), d.as_millis()),
            _ => f.write_str(self.name()),
        }
    }
}

/// `500ms`, `2s`, or a bare number of seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    let secs = s.strip_suffix('s').unwrap_or(s).trim();
    secs.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(Duration::from_secs_f64)
}
