//! The classifier: plain [`Evidence`] in, one [`Cause`] out. The data plane converts its hyper, rustls and
//! io errors into `Evidence` and calls [`classify`]; no other code decides which cause a failure gets, so
//! the same failure is named the same way in the response, the access log, the metrics and the doctor.
//!
//! Precedence, highest first (each rule is pinned by `tests/classify.rs`):
//! 1. `client_closed`: the client went away, so whatever else failed, nothing can be sent (ClientClosedRequest).
//! 2. `deregistered` after select: the deregistration delay elapsed mid-request, so the gateway cut it
//!    (TargetDeregistered), even mid-body: the target did nothing wrong, and saying so spares a hunt.
//! 3. `response_started`: a status already went out, so only the status-less stream_body causes fit,
//!    whatever the phase says (TargetResponseStalled when the timer fired, else TargetResponseIncomplete).
//! 4. Local resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL) in any phase that reaches
//!    for a target: the gateway's own host ran out, so the gateway is named (GatewayResourceExhausted), never
//!    the target, and nothing counts against the target's health.
//! 5. Per phase, the phase's own timer first (the budget the operator tunes), then the specific evidence,
//!    then a documented fallback for evidence nothing matched.
//!    A timer that fired in tls_handshake, send_request or await_headers on a connection with path-MTU
//!    evidence (`path_mtu_exceeded`) is TargetPathMtuBlackhole: the timeout has a named cause.
//!
//! Causes that are decisions rather than observations (NoRoute, NoHealthyTargets, ClientXffTooMany,
//! ClientUnsupportedTransferEncoding, ClientMethodNotAllowed, ClientIdleTimeout (the client connection's own
//! deadline decides it), and normally NoRegisteredTargets and GatewayOverloaded) are named by the component
//! that decides them; they are still catalogue causes, so their
//! status comes from the table.

use std::io::ErrorKind;

use crate::errno;
use crate::{Cause, Phase};

/// What the data plane saw when an attempt failed. Plain data: no hyper or rustls types, so the doctor
/// and tests can build it too. Build it with `Evidence { field: .., ..Evidence::new(phase) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Where the failure happened.
    pub phase: Phase,
    /// This phase's timer fired (connect_timeout, tls_handshake_timeout, response_timeout, idle_timeout,
    /// the resolver's or the function invoke's timeout).
    pub timed_out: bool,
    /// The io error's kind, if the failure was an io error.
    pub io_kind: Option<ErrorKind>,
    /// The raw errno (`io::Error::raw_os_error`); read only on Linux, see [`crate::errno`].
    pub os_errno: Option<i32>,
    /// What the TLS layer reported, in the tls_handshake phase.
    pub tls: Option<TlsEvidence>,
    /// What the HTTP layer reported about the target's response.
    pub http: Option<HttpEvidence>,
    /// What the HTTP/2 layer said: a stream reset, a GOAWAY, a protocol error, or no `h2` from ALPN.
    pub h2: Option<H2Evidence>,
    /// What the function invoke reported, in the function_invoke phase.
    pub lambda: Option<LambdaEvidence>,
    /// The connection came from the pool (its use count was above zero before this request).
    pub reused: bool,
    /// Bytes read from the target in this attempt: handshake bytes in tls_handshake, response bytes after.
    /// Earlier requests on a reused connection do not count.
    pub bytes_read: u64,
    /// Bytes written to the target in this attempt: the ClientHello in tls_handshake, request bytes after.
    pub bytes_written: u64,
    /// A response head was already sent to the client.
    pub response_started: bool,
    /// The target's deregistration delay elapsed while this request was in flight.
    pub deregistered: bool,
    /// The client closed its connection (or reset its stream) before the response was sent.
    pub client_closed: bool,
    /// An ICMP fragmentation-needed / ICMPv6 packet-too-big error quoted this connection and packets larger
    /// than its next-hop MTU were sent after it (read from a capture by the doctor): a path-MTU black hole.
    pub path_mtu_exceeded: bool,
}

impl Evidence {
    /// Evidence of a failure in `phase` with nothing else known yet.
    pub const fn new(phase: Phase) -> Self {
        Self {
            phase,
            timed_out: false,
            io_kind: None,
            os_errno: None,
            tls: None,
            http: None,
            h2: None,
            lambda: None,
            reused: false,
            bytes_read: 0,
            bytes_written: 0,
            response_started: false,
            deregistered: false,
            client_closed: false,
            path_mtu_exceeded: false,
        }
    }
}

/// What the TLS layer said during the handshake with the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvidence {
    /// The target sent a fatal alert; `description` is its name, e.g. `handshake_failure`.
    AlertReceived { description: String },
    /// Verification of the target's certificate failed; `reason` is for the operator only.
    CertificateInvalid { reason: String },
    /// The target answered with bytes that are not TLS records (e.g. a plain-HTTP server), or a corrupt message.
    NotTls,
    /// The target closed the connection (EOF) mid-handshake.
    PeerClosed,
}

/// What the HTTP layer said about the target's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEvidence {
    /// Invalid status line, header name or value, or framing in the response head.
    MalformedHead,
    /// The response head exceeded the 32 KiB limit.
    HeadTooLarge,
    /// The connection ended (EOF) before a complete response head ("incomplete message").
    ClosedBeforeHead,
    /// An HTTP/2 protocol violation by the target (bad frame, GOAWAY or RST_STREAM with PROTOCOL_ERROR).
    ProtocolError,
    /// The body ended early: EOF or RST mid-body, short of Content-Length, or bad chunked framing.
    BodyIncomplete,
    /// The target's answer to an upgrade the gateway relayed (a WebSocket) did not switch as asked.
    BadUpgrade(BadUpgrade),
}

/// How a target's answer to an upgrade request (RFC 9110 §7.8, RFC 6455 §4.2.2) was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUpgrade {
    /// The `101` has no `Upgrade` field.
    NoUpgrade,
    /// The `101`'s `Upgrade` names a protocol the request did not offer.
    UpgradeMismatch,
    /// The `101` to a WebSocket handshake has no `Sec-WebSocket-Accept`.
    NoAccept,
    /// Its `Sec-WebSocket-Accept` is not the one the request's `Sec-WebSocket-Key` calls for.
    WrongAccept,
    /// A 2xx without switching, to an HTTP/2 client's extended CONNECT: passed on, it would open a tunnel the
    /// target never did.
    NotSwitched,
    /// A WebSocket for an HTTP/2 target that did not enable extended CONNECT (RFC 8441 §3): nothing was sent.
    ExtendedConnectDisabled,
}

/// What the HTTP/2 layer said about a stream or its connection. Error codes are RFC 9113 §7's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Evidence {
    /// The target reset the stream (RST_STREAM) with this error code.
    StreamReset { code: u32 },
    /// The target sent GOAWAY with this error code. `unprocessed`: the stream was above the GOAWAY's
    /// last_stream_id, so the target did not act on it (RFC 9113 §6.8).
    GoAway { code: u32, unprocessed: bool },
    /// A connection-level HTTP/2 protocol violation: detected by the gateway, or named by the target with
    /// PROTOCOL_ERROR (or another connection error code, given here).
    ProtocolError { code: u32 },
    /// The target's TLS handshake did not select `h2` by ALPN.
    NotNegotiated,
}

/// RFC 9113's REFUSED_STREAM: the stream was not processed.
pub const H2_REFUSED_STREAM: u32 = 0x7;
/// RFC 9113's PROTOCOL_ERROR: a reset or GOAWAY with it names a protocol violation, not a choice.
const H2_PROTOCOL_ERROR: u32 = 0x1;

impl H2Evidence {
    /// The target said it did not process the stream (REFUSED_STREAM, or GOAWAY above last_stream_id): a
    /// retry is safe whatever the method (RFC 9113 §8.7).
    pub const fn unprocessed(self) -> bool {
        matches!(self, Self::StreamReset { code: H2_REFUSED_STREAM } | Self::GoAway { unprocessed: true, .. })
    }
}

/// What the function invoke (Lambda API) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaEvidence {
    /// The request body is over the 1 MB event limit (checked before invoking).
    RequestTooLarge,
    /// The function's response is over 1 MB.
    ResponseTooLarge,
    /// The function's response JSON is malformed or misses statusCode, headers or isBase64Encoded.
    InvalidResponse,
    /// The invoke answered with `X-Amz-Function-Error`: the function raised.
    FunctionError,
    /// The invoke API answered with this non-2xx status.
    InvokeStatus(u16),
}

/// Names the cause of a failed attempt. Total: every evidence gets a cause, never a panic.
pub fn classify(e: &Evidence) -> Cause {
    if e.client_closed {
        return Cause::ClientClosedRequest;
    }
    // The deregistration's deadline cut the exchange, wherever it was (a body cut short included).
    if e.deregistered && e.phase > Phase::Select {
        return Cause::TargetDeregistered;
    }
    if e.response_started {
        return body(e);
    }
    if e.phase > Phase::Select && local_exhaustion(e) {
        return Cause::GatewayResourceExhausted;
    }
    match e.phase {
        // Route-phase failures are the client's request: a timer means the head never completed
        // (ALB 408); anything else the gateway could not accept is a malformed request (ALB 400).
        Phase::Route if e.timed_out => Cause::ClientRequestTimeout,
        Phase::Route => Cause::ClientRequestMalformed,
        // Select-phase decisions are normally named directly; from evidence, a timer means the wait for
        // a connection or pending-request slot expired, and anything else means there was no target.
        Phase::Select if e.timed_out => Cause::GatewayOverloaded,
        Phase::Select => Cause::NoRegisteredTargets,
        // Rcode and resolver timeout share a cause; the timer only changes the RFC 9209 type.
        Phase::Dns => Cause::TargetDnsFailure,
        Phase::Connect => connect(e),
        Phase::TlsHandshake => tls(e),
        Phase::SendRequest | Phase::AwaitHeaders => exchange(e),
        Phase::StreamBody => body(e),
        Phase::FunctionInvoke => function(e),
    }
}

/// The family of an io error, from the errno when it is a Linux one we know, else from the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Io {
    Refused,
    Unreachable,
    Reset,
    TimedOut,
    Other,
}

fn io_family(e: &Evidence) -> Option<Io> {
    let from_errno = e.os_errno.filter(|_| cfg!(target_os = "linux")).and_then(|n| match n {
        errno::ECONNREFUSED => Some(Io::Refused),
        errno::EHOSTUNREACH | errno::ENETUNREACH => Some(Io::Unreachable),
        errno::ECONNRESET | errno::EPIPE | errno::ECONNABORTED => Some(Io::Reset),
        errno::ETIMEDOUT => Some(Io::TimedOut),
        _ => None,
    });
    from_errno.or_else(|| {
        e.io_kind.map(|kind| match kind {
            ErrorKind::ConnectionRefused => Io::Refused,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Io::Unreachable,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => Io::Reset,
            ErrorKind::TimedOut => Io::TimedOut,
            _ => Io::Other,
        })
    })
}

/// The errno says the gateway's host ran out of descriptors, memory, buffers or ephemeral ports. Only the
/// errno tells: io::ErrorKind folds EMFILE into `Other`/`Uncategorized` with a dozen unrelated errors.
fn local_exhaustion(e: &Evidence) -> bool {
    cfg!(target_os = "linux") && e.os_errno.is_some_and(|n| errno::LOCAL_EXHAUSTION.contains(&n))
}

fn timer_or_etimedout(e: &Evidence) -> bool {
    e.timed_out || io_family(e) == Some(Io::TimedOut)
}

/// A RST during connect is a refusal. Unknown connect errors (ENETDOWN, EPERM from a local firewall...) fall back to TargetHostUnreachable: the target could not be reached, and nothing says
/// a listener refused.
fn connect(e: &Evidence) -> Cause {
    if timer_or_etimedout(e) {
        return Cause::TargetConnectTimeout;
    }
    match io_family(e) {
        Some(Io::Refused | Io::Reset) => Cause::TargetConnectionRefused,
        _ => Cause::TargetHostUnreachable,
    }
}

/// Anything in the handshake that is neither a timer, an alert nor a certificate verdict (EOF, RST,
/// garbage, an unknown TLS error) is a TLS protocol error: the target did not complete TLS.
fn tls(e: &Evidence) -> Cause {
    if timer_or_etimedout(e) {
        return if e.path_mtu_exceeded { Cause::TargetPathMtuBlackhole } else { Cause::TargetTlsHandshakeTimeout };
    }
    if e.h2 == Some(H2Evidence::NotNegotiated) {
        return Cause::TargetHttp2NotNegotiated;
    }
    match e.tls {
        Some(TlsEvidence::AlertReceived { .. }) => Cause::TargetTlsAlert,
        Some(TlsEvidence::CertificateInvalid { .. }) => Cause::TargetTlsCertificateInvalid,
        Some(TlsEvidence::NotTls | TlsEvidence::PeerClosed) | None => Cause::TargetTlsProtocolError,
    }
}

/// Sending the request and waiting for the head. A kernel ETIMEDOUT (retransmissions unanswered) counts
/// as the response timeout: no head arrived in time. A connection that ends without a usable head is a
/// keep-alive race only when it was reused and no response byte arrived; otherwise RST or FIN decides,
/// and an unknown error counts as a close (FIN). HTTP/2 evidence comes right after the timer: a reset or a
/// GOAWAY names what ended the stream more precisely than the io error under it.
fn exchange(e: &Evidence) -> Cause {
    if timer_or_etimedout(e) {
        return if e.path_mtu_exceeded { Cause::TargetPathMtuBlackhole } else { Cause::TargetResponseTimeout };
    }
    match e.h2 {
        Some(H2Evidence::StreamReset { code }) if code != H2_PROTOCOL_ERROR => return Cause::TargetStreamReset,
        Some(H2Evidence::GoAway { code, .. }) if code != H2_PROTOCOL_ERROR => return Cause::TargetGoAway,
        Some(H2Evidence::StreamReset { .. } | H2Evidence::GoAway { .. } | H2Evidence::ProtocolError { .. }) => {
            return Cause::TargetHttp2ProtocolError;
        }
        Some(H2Evidence::NotNegotiated) => return Cause::TargetHttp2NotNegotiated,
        None => {}
    }
    match e.http {
        Some(HttpEvidence::BadUpgrade(BadUpgrade::ExtendedConnectDisabled)) => {
            return Cause::TargetExtendedConnectDisabled;
        }
        Some(HttpEvidence::MalformedHead | HttpEvidence::ProtocolError | HttpEvidence::BadUpgrade(_)) => {
            return Cause::TargetMalformedResponse;
        }
        Some(HttpEvidence::HeadTooLarge) => return Cause::TargetResponseHeadersTooLarge,
        Some(HttpEvidence::ClosedBeforeHead | HttpEvidence::BodyIncomplete) | None => {}
    }
    if e.reused && e.bytes_read == 0 {
        Cause::TargetKeepAliveRace
    } else if io_family(e) == Some(Io::Reset) {
        Cause::TargetResetConnection
    } else {
        Cause::TargetClosedConnection
    }
}

fn body(e: &Evidence) -> Cause {
    if e.timed_out { Cause::TargetResponseStalled } else { Cause::TargetResponseIncomplete }
}

/// Function invokes: the invoke API's verdict first; without one, an io error, a failed TLS handshake or a
/// close before any response head means the endpoint could not be reached, and anything else (a malformed
/// head, no evidence at all) is blamed on the invoke service. Unknown invoke statuses
/// (other 4xx, 5xx) are service exceptions: the function itself never answered.
fn function(e: &Evidence) -> Cause {
    if timer_or_etimedout(e) {
        return Cause::LambdaConnectionTimeout;
    }
    match e.lambda {
        Some(LambdaEvidence::RequestTooLarge | LambdaEvidence::InvokeStatus(413)) => Cause::LambdaRequestTooLarge,
        Some(LambdaEvidence::ResponseTooLarge) => Cause::LambdaResponseTooLarge,
        Some(LambdaEvidence::InvalidResponse) => Cause::LambdaInvalidResponse,
        Some(LambdaEvidence::FunctionError) => Cause::LambdaUnhandled,
        Some(LambdaEvidence::InvokeStatus(429)) => Cause::LambdaThrottling,
        Some(LambdaEvidence::InvokeStatus(403)) => Cause::LambdaAccessDenied,
        Some(LambdaEvidence::InvokeStatus(404)) => Cause::LambdaResourceNotFound,
        Some(LambdaEvidence::InvokeStatus(_)) => Cause::LambdaServiceException,
        // A TLS handshake that failed, or a connection that closed before a response head, never reached
        // the service either: the endpoint is as unreachable as one that refused the connection.
        None if io_family(e).is_some() || e.tls.is_some() || e.http == Some(HttpEvidence::ClosedBeforeHead) => {
            Cause::LambdaConnectionError
        }
        None => Cause::LambdaServiceException,
    }
}
