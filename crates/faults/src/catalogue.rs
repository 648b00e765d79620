//! The catalogue table: one row per [`Cause`], holding everything FAULTS.md's table says about it (phase,
//! statuses per profile, RFC 9209 error type, Apigee errorcode, reason and faultstring). Every accessor
//! below reads this one table, so nothing else in the gateway can decide a status code.
//!
//! Decisions where FAULTS.md is silent (pinned by `tests/catalogue.rs`):
//! - Primary phase: "send_request / await_headers" and TargetDeregistered ("any after select") use
//!   `AwaitHeaders`, where those failures are observed; ClientClosedRequest ("any") uses `AwaitHeaders`
//!   too, because a client giving up while the target thinks is the common case (Apigee's 499 playbook).
//! - Apigee rows marked `-` get a code of the same shape as Apigee's own: 400 `...flow.BadRequest`,
//!   408 `...flow.RequestTimeout`, 499 `...flow.ClientClosedConnection`, 501 `protocol.http.UnsupportedEncoding`
//!   and 413 `protocol.http.TooBigBody` (Apigee's real code for an over-limit body, "Body buffer overflow").
//! - The two stream_body causes never send a status, but still carry the Apigee code and reason the same
//!   failure gets before the head is sent (UnexpectedEOFAtTarget, GatewayTimeout), so logs stay uniform.
//! - ClientClosedRequest has no RFC 9209 type (nothing is sent), so its error type is `None`.
//! - ClientIdleTimeout (not in FAULTS.md's first table; issue 24) is the client that stopped taking its
//!   response: nothing moved on an HTTP/1 connection for idle_timeout while the gateway had bytes to write, or
//!   an HTTP/2 stream's flow-control window stayed shut that long. The target's status already went out (as
//!   for the stream_body causes) and the connection is closed or the stream reset, so nothing reaches the
//!   client: no status and no RFC 9209 type, like ClientClosedRequest. Its phase is `stream_body`, where it is
//!   observed; its Apigee code is the client-timeout one (`...flow.RequestTimeout`).
//! - GatewayResourceExhausted (not in FAULTS.md's first table; issue 24) is the gateway's own host running out
//!   of descriptors, memory, buffers or ephemeral ports. 503 like the other gateway-capacity causes, because
//!   the client may retry and nothing is wrong with the target. Its RFC 9209 type is `proxy_internal_error`
//!   ("an internal error unrelated to the origin"): `connection_limit_reached` names a configured limit on
//!   connections to the next hop, and no limit was configured here; the host simply ran out. Its phase is
//!   `connect`, where a socket (and its descriptor and port) is first needed.
//! - The HTTP/2 causes (issue 22) are 502 in both profiles with Apigee's BadGateway, as TargetMalformedResponse:
//!   TargetStreamReset (RST_STREAM before the response head; RFC 9209 `http_response_incomplete`, the response
//!   never completed), TargetGoAway (GOAWAY ended the connection under a stream it had accepted;
//!   `connection_terminated`), TargetHttp2ProtocolError (a connection-level HTTP/2 violation, ours or named
//!   by the target's PROTOCOL_ERROR; `http_protocol_error`), TargetHttp2NotNegotiated (an http2 or grpc
//!   group's https target did not select `h2` by ALPN; phase `tls_handshake`, `tls_protocol_error`).
//! - ClientProtocolMismatch is ALB's 464: the request's protocol cannot go to the group's protocol version
//!   (an HTTP/1.x request, or one that is not gRPC, to a grpc group). Apigee has no such status: 400.
//! - ClientCertMissing, ClientCertUntrusted, ClientCertExpired and ClientCertCrlHit (issue 23) are a client's
//!   mutual TLS certificate refused during the listener's handshake, named with ALB's `tls_verify_status`
//!   codes verbatim (ALB documents none for a missing certificate; `ClientCertMissing` is of their shape).
//!   The handshake fails, so no HTTP status, RFC 9209 type or response exists: the client gets a TLS alert.
//!   Their phase is `tls_handshake`, their source the client (so they never count as target TLS errors);
//!   Apigee's code for a failed handshake, `...flow.SslHandshakeFailed`, keeps logs uniform.
//! - TargetPathMtuBlackhole (issue 27) is a timeout whose cause the packets name: an ICMP fragmentation-needed
//!   (or ICMPv6 packet-too-big) error quoted the connection, and the sender went on sending packets larger
//!   than the next-hop MTU it named (the error never took effect: a host firewall dropping ICMP, or a
//!   middlebox rewriting it). Its row is TargetTlsHandshakeTimeout's (504 / 502 BadGateway,
//!   `connection_timeout`, phase `tls_handshake`), because that is the timer that fires: a ClientHello too
//!   large for the path (post-quantum key shares make one over 1,400 bytes) or the server's certificate
//!   flight never arrives. A large request body stalls the same way; the phase is where it is most seen.
//! - LambdaBadRequest and LambdaWebsocketNotSupported (issue 26) are ALB's codes for a request that cannot
//!   become a function's event: a header value, or a body sent as text, that is not UTF-8 (ALB: "the client
//!   request headers or body did not contain only UTF-8 characters"), and an upgrade (a WebSocket handshake,
//!   an HTTP/2 extended CONNECT), which ALB's Lambda documentation says "are rejected with an HTTP 400 code".
//!   ALB documents no status for LambdaBadRequest; it is the client's request that cannot be converted, so it
//!   gets the upgrade's 400 (Apigee's BadRequest) rather than a 502 that would blame the function. Both are
//!   counted as user errors (ALB's LambdaUserError); their phase is function_invoke, as every Lambda code's,
//!   though they are decided before anything is invoked.
//! - TargetExtendedConnectDisabled (issue 22) is a WebSocket for an http2 group whose target did not enable
//!   RFC 8441's extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL): nothing is sent on a stream, so its phase
//!   is `send_request`. 502 in both profiles with Apigee's BadGateway, as the other HTTP/2 causes; its RFC 9209
//!   type is `http_upgrade_failed` ("the HTTP Upgrade between the intermediary and the next hop failed").

use std::fmt;
use std::str::FromStr;

use crate::{Cause, Phase, Profile};

/// Which side a cause is blamed on, like Apigee's fault source (target / proxy / policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The client's request or behaviour.
    Client,
    /// The gateway's own routing, selection or capacity.
    Gateway,
    /// An HTTP target (DNS, TCP, TLS, HTTP).
    Target,
    /// A function (Lambda) target.
    Function,
}

/// The columns of FAULTS.md's table, in order: name, phase, alb status, apigee status, RFC 9209 type,
/// Apigee errorcode, Apigee X reason, Apigee faultstring, source.
pub(crate) struct Row(
    &'static str,
    Phase,
    Option<u16>,
    Option<u16>,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    &'static str,
    Source,
);

const BAD_GATEWAY: &str = "messaging.adaptors.http.flow.BadGateway";
const UNAVAILABLE: &str = "messaging.adaptors.http.flow.ServiceUnavailable";
const NO_TARGETS: &str = "messaging.adaptors.http.flow.NoActiveTargets";
const EOF: &str = "messaging.adaptors.http.flow.UnexpectedEOFAtTarget";
const GW_TIMEOUT: &str = "messaging.adaptors.http.flow.GatewayTimeout";
const BAD_REQUEST: &str = "messaging.adaptors.http.flow.BadRequest";
const S_BAD_GATEWAY: &str = "Bad Gateway";
const S_UNAVAILABLE: &str = "The Service is temporarily unavailable";
const S_EOF: &str = "Unexpected EOF at target";
const S_GW_TIMEOUT: &str = "Gateway Timeout";
const EOF_REASON: Option<&str> = Some("TARGET_READ_UNEXPECTED_EOF");
const READ_TIMEOUT: Option<&str> = Some("TARGET_READ_TIMEOUT");
const SSL_FAILED: &str = "messaging.adaptors.http.flow.SslHandshakeFailed";
const S_SSL_FAILED: &str = "SSL Handshake failed";

impl Cause {
    /// The catalogue row. A `match` rather than an indexed array so a new variant cannot compile without one.
    #[rustfmt::skip]
    const fn row(self) -> &'static Row {
        use Phase::*;
        use Source::*;
        match self {
            Self::NoRoute => &Row("NoRoute", Route, Some(404), Some(404), Some("destination_not_found"), "messaging.adaptors.http.flow.ApplicationNotFound", None, "Unable to identify proxy for host and url", Gateway),
            Self::NoRegisteredTargets => &Row("NoRegisteredTargets", Select, Some(503), Some(503), Some("destination_unavailable"), NO_TARGETS, None, S_UNAVAILABLE, Gateway),
            Self::NoHealthyTargets => &Row("NoHealthyTargets", Select, Some(503), Some(503), Some("destination_unavailable"), NO_TARGETS, None, S_UNAVAILABLE, Gateway),
            Self::GatewayOverloaded => &Row("GatewayOverloaded", Select, Some(503), Some(503), Some("connection_limit_reached"), UNAVAILABLE, None, S_UNAVAILABLE, Gateway),
            Self::GatewayResourceExhausted => &Row("GatewayResourceExhausted", Connect, Some(503), Some(503), Some("proxy_internal_error"), UNAVAILABLE, None, S_UNAVAILABLE, Gateway),
            Self::TargetDnsFailure => &Row("TargetDnsFailure", Dns, Some(502), Some(503), Some("dns_error"), "protocol.http.NoResolvedHost", Some("TARGET_CONNECT_HOST_NOT_REACHABLE"), "Unable to resolve host", Target),
            Self::TargetConnectionRefused => &Row("TargetConnectionRefused", Connect, Some(502), Some(503), Some("connection_refused"), UNAVAILABLE, None, S_UNAVAILABLE, Target),
            Self::TargetHostUnreachable => &Row("TargetHostUnreachable", Connect, Some(502), Some(503), Some("destination_ip_unroutable"), UNAVAILABLE, None, S_UNAVAILABLE, Target),
            Self::TargetConnectTimeout => &Row("TargetConnectTimeout", Connect, Some(504), Some(503), Some("connection_timeout"), UNAVAILABLE, Some("TARGET_CONNECT_TIMEOUT"), S_UNAVAILABLE, Target),
            Self::TargetTlsHandshakeTimeout => &Row("TargetTlsHandshakeTimeout", TlsHandshake, Some(504), Some(502), Some("connection_timeout"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetPathMtuBlackhole => &Row("TargetPathMtuBlackhole", TlsHandshake, Some(504), Some(502), Some("connection_timeout"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetTlsAlert => &Row("TargetTlsAlert", TlsHandshake, Some(502), Some(503), Some("tls_alert_received"), UNAVAILABLE, None, S_UNAVAILABLE, Target),
            Self::TargetTlsCertificateInvalid => &Row("TargetTlsCertificateInvalid", TlsHandshake, Some(502), Some(503), Some("tls_certificate_error"), UNAVAILABLE, None, S_UNAVAILABLE, Target),
            Self::TargetTlsProtocolError => &Row("TargetTlsProtocolError", TlsHandshake, Some(502), Some(502), Some("tls_protocol_error"), EOF, EOF_REASON, S_EOF, Target),
            Self::TargetKeepAliveRace => &Row("TargetKeepAliveRace", AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), EOF, EOF_REASON, S_EOF, Target),
            Self::TargetClosedConnection => &Row("TargetClosedConnection", AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), EOF, EOF_REASON, S_EOF, Target),
            Self::TargetResetConnection => &Row("TargetResetConnection", AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), EOF, EOF_REASON, S_EOF, Target),
            Self::TargetMalformedResponse => &Row("TargetMalformedResponse", AwaitHeaders, Some(502), Some(502), Some("http_protocol_error"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetResponseHeadersTooLarge => &Row("TargetResponseHeadersTooLarge", AwaitHeaders, Some(502), Some(502), Some("http_response_header_section_size"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetResponseTimeout => &Row("TargetResponseTimeout", AwaitHeaders, Some(504), Some(504), Some("http_response_timeout"), GW_TIMEOUT, READ_TIMEOUT, S_GW_TIMEOUT, Target),
            Self::TargetDeregistered => &Row("TargetDeregistered", AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetResponseIncomplete => &Row("TargetResponseIncomplete", StreamBody, None, None, Some("http_response_incomplete"), EOF, EOF_REASON, S_EOF, Target),
            Self::TargetResponseStalled => &Row("TargetResponseStalled", StreamBody, None, None, Some("http_response_timeout"), GW_TIMEOUT, READ_TIMEOUT, S_GW_TIMEOUT, Target),
            Self::TargetStreamReset => &Row("TargetStreamReset", AwaitHeaders, Some(502), Some(502), Some("http_response_incomplete"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetGoAway => &Row("TargetGoAway", AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetHttp2ProtocolError => &Row("TargetHttp2ProtocolError", AwaitHeaders, Some(502), Some(502), Some("http_protocol_error"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::TargetHttp2NotNegotiated => &Row("TargetHttp2NotNegotiated", TlsHandshake, Some(502), Some(502), Some("tls_protocol_error"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::ClientRequestMalformed => &Row("ClientRequestMalformed", Route, Some(400), Some(400), Some("http_request_error"), BAD_REQUEST, None, "Bad Request", Client),
            Self::ClientRequestTimeout => &Row("ClientRequestTimeout", Route, Some(408), Some(408), Some("http_request_error"), "messaging.adaptors.http.flow.RequestTimeout", None, "Request Timeout", Client),
            Self::ClientClosedRequest => &Row("ClientClosedRequest", AwaitHeaders, Some(460), Some(499), None, "messaging.adaptors.http.flow.ClientClosedConnection", None, "Client closed connection", Client),
            Self::ClientIdleTimeout => &Row("ClientIdleTimeout", StreamBody, None, None, None, "messaging.adaptors.http.flow.RequestTimeout", None, "Client idle timeout", Client),
            Self::ClientXffTooMany => &Row("ClientXffTooMany", Route, Some(463), Some(400), Some("http_request_error"), BAD_REQUEST, None, "Bad Request", Client),
            Self::ClientUnsupportedTransferEncoding => &Row("ClientUnsupportedTransferEncoding", Route, Some(501), Some(501), Some("http_request_error"), "protocol.http.UnsupportedEncoding", None, "Unsupported Encoding", Client),
            Self::ClientMethodNotAllowed => &Row("ClientMethodNotAllowed", Route, Some(405), Some(405), Some("http_request_error"), "protocol.http.MethodNotAllowed", None, "Method Not Allowed", Client),
            Self::ClientProtocolMismatch => &Row("ClientProtocolMismatch", Route, Some(464), Some(400), Some("http_request_error"), BAD_REQUEST, None, "Bad Request", Client),
            Self::LambdaRequestTooLarge => &Row("LambdaRequestTooLarge", FunctionInvoke, Some(413), Some(413), Some("http_request_error"), "protocol.http.TooBigBody", None, "Body buffer overflow", Function),
            Self::LambdaInvalidResponse => &Row("LambdaInvalidResponse", FunctionInvoke, Some(502), Some(502), Some("http_protocol_error"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::LambdaResponseTooLarge => &Row("LambdaResponseTooLarge", FunctionInvoke, Some(502), Some(502), Some("http_response_body_size"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::LambdaUnhandled => &Row("LambdaUnhandled", FunctionInvoke, Some(502), Some(502), Some("proxy_internal_response"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::LambdaThrottling => &Row("LambdaThrottling", FunctionInvoke, Some(502), Some(503), Some("connection_limit_reached"), UNAVAILABLE, None, S_UNAVAILABLE, Function),
            Self::LambdaResourceNotFound => &Row("LambdaResourceNotFound", FunctionInvoke, Some(502), Some(502), Some("destination_not_found"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::LambdaAccessDenied => &Row("LambdaAccessDenied", FunctionInvoke, Some(502), Some(502), Some("proxy_configuration_error"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::LambdaConnectionError => &Row("LambdaConnectionError", FunctionInvoke, Some(502), Some(503), Some("connection_refused"), UNAVAILABLE, None, S_UNAVAILABLE, Function),
            Self::LambdaConnectionTimeout => &Row("LambdaConnectionTimeout", FunctionInvoke, Some(504), Some(504), Some("connection_timeout"), GW_TIMEOUT, None, S_GW_TIMEOUT, Function),
            Self::LambdaBadRequest => &Row("LambdaBadRequest", FunctionInvoke, Some(400), Some(400), Some("http_request_error"), BAD_REQUEST, None, "Bad Request", Function),
            Self::LambdaWebsocketNotSupported => &Row("LambdaWebsocketNotSupported", FunctionInvoke, Some(400), Some(400), Some("http_request_error"), BAD_REQUEST, None, "Bad Request", Function),
            Self::TargetExtendedConnectDisabled => &Row("TargetExtendedConnectDisabled", SendRequest, Some(502), Some(502), Some("http_upgrade_failed"), BAD_GATEWAY, None, S_BAD_GATEWAY, Target),
            Self::LambdaServiceException => &Row("LambdaServiceException", FunctionInvoke, Some(502), Some(502), Some("proxy_internal_response"), BAD_GATEWAY, None, S_BAD_GATEWAY, Function),
            Self::ClientCertMissing => &Row("ClientCertMissing", TlsHandshake, None, None, None, SSL_FAILED, None, S_SSL_FAILED, Client),
            Self::ClientCertUntrusted => &Row("ClientCertUntrusted", TlsHandshake, None, None, None, SSL_FAILED, None, S_SSL_FAILED, Client),
            Self::ClientCertExpired => &Row("ClientCertExpired", TlsHandshake, None, None, None, SSL_FAILED, None, S_SSL_FAILED, Client),
            Self::ClientCertCrlHit => &Row("ClientCertCrlHit", TlsHandshake, None, None, None, SSL_FAILED, None, S_SSL_FAILED, Client),
        }
    }

    /// Every cause, in declaration order (the order of FAULTS.md's table).
    pub const ALL: &'static [Cause] = &[
        Self::NoRoute,
        Self::NoRegisteredTargets,
        Self::NoHealthyTargets,
        Self::GatewayOverloaded,
        Self::GatewayResourceExhausted,
        Self::TargetDnsFailure,
        Self::TargetConnectionRefused,
        Self::TargetHostUnreachable,
        Self::TargetConnectTimeout,
        Self::TargetTlsHandshakeTimeout,
        Self::TargetPathMtuBlackhole,
        Self::TargetTlsAlert,
        Self::TargetTlsCertificateInvalid,
        Self::TargetTlsProtocolError,
        Self::TargetKeepAliveRace,
        Self::TargetClosedConnection,
        Self::TargetResetConnection,
        Self::TargetMalformedResponse,
        Self::TargetResponseHeadersTooLarge,
        Self::TargetResponseTimeout,
        Self::TargetDeregistered,
        Self::TargetResponseIncomplete,
        Self::TargetResponseStalled,
        Self::TargetStreamReset,
        Self::TargetGoAway,
        Self::TargetHttp2ProtocolError,
        Self::TargetHttp2NotNegotiated,
        Self::ClientRequestMalformed,
        Self::ClientRequestTimeout,
        Self::ClientClosedRequest,
        Self::ClientIdleTimeout,
        Self::ClientXffTooMany,
        Self::ClientUnsupportedTransferEncoding,
        Self::ClientMethodNotAllowed,
        Self::ClientProtocolMismatch,
        Self::LambdaRequestTooLarge,
        Self::LambdaInvalidResponse,
        Self::LambdaResponseTooLarge,
        Self::LambdaUnhandled,
        Self::LambdaThrottling,
        Self::LambdaResourceNotFound,
        Self::LambdaAccessDenied,
        Self::LambdaConnectionError,
        Self::LambdaConnectionTimeout,
        Self::LambdaServiceException,
        Self::ClientCertMissing,
        Self::ClientCertUntrusted,
        Self::ClientCertExpired,
        Self::ClientCertCrlHit,
        Self::LambdaBadRequest,
        Self::LambdaWebsocketNotSupported,
        Self::TargetExtendedConnectDisabled,
    ];

    /// The CamelCase name used unchanged in `Proxy-Status`, `error_reason`, metrics labels and logs.
    pub const fn name(self) -> &'static str {
        self.row().0
    }

    /// The phase FAULTS.md lists for this cause (the one it is normally observed in).
    pub const fn phase(self) -> Phase {
        self.row().1
    }

    /// The status sent in `profile`, or `None` for the stream_body causes whose status was already sent.
    /// The problem profile uses ALB's statuses.
    pub const fn status(self, profile: Profile) -> Option<u16> {
        match profile {
            Profile::Alb | Profile::Problem => self.row().2,
            Profile::Apigee => self.row().3,
        }
    }

    /// The RFC 9209 Proxy Error Type; `None` only for ClientClosedRequest, ClientIdleTimeout and the client
    /// certificate causes, which never reach a client.
    /// TargetDnsFailure says `dns_error`; see [`Cause::proxy_status_error_for`] for `dns_timeout`.
    pub const fn proxy_status_error(self) -> Option<&'static str> {
        self.row().4
    }

    /// The RFC 9209 type given whether the failing phase's timer fired: the only cause whose type depends
    /// on it is TargetDnsFailure (`dns_timeout` vs `dns_error`), because RFC 9209 splits only DNS that way.
    pub const fn proxy_status_error_for(self, timed_out: bool) -> Option<&'static str> {
        match self {
            Self::TargetDnsFailure if timed_out => Some("dns_timeout"),
            _ => self.proxy_status_error(),
        }
    }

    /// Apigee's `detail.errorcode` (the profile's nearest general code where FAULTS.md says `-`).
    pub const fn apigee_errorcode(self) -> &'static str {
        self.row().5
    }

    /// Apigee X's `detail.reason`, e.g. `TARGET_CONNECT_TIMEOUT`, where Apigee has one.
    pub const fn apigee_reason(self) -> Option<&'static str> {
        self.row().6
    }

    /// Apigee's `faultstring`, which clients in the wild match on (e.g. "Unexpected EOF at target").
    /// Apigee appends the host or path to some of these; waygate never does, to keep targets private.
    pub const fn apigee_faultstring(self) -> &'static str {
        self.row().7
    }

    /// Which side the failure is blamed on.
    pub const fn source(self) -> Source {
        self.row().8
    }

    /// A function (Lambda) target cause; the names are ALB's error_reason codes verbatim.
    pub const fn is_lambda(self) -> bool {
        matches!(self.source(), Source::Function)
    }

    /// Counted in `waygate_lambda_user_errors_total` (ALB's LambdaUserError): the function or its
    /// configuration is at fault.
    pub const fn is_lambda_user_error(self) -> bool {
        self.is_lambda() && !self.is_lambda_internal_error()
    }

    /// Counted in `waygate_lambda_internal_errors_total` (ALB's LambdaInternalError): the invoke service failed.
    pub const fn is_lambda_internal_error(self) -> bool {
        matches!(self, Self::LambdaConnectionError | Self::LambdaConnectionTimeout | Self::LambdaServiceException)
    }

    /// Counted in `waygate_target_connection_errors_total` (CloudWatch TargetConnectionErrorCount: a
    /// connection to a target was attempted and not established). DNS failures are excluded: no
    /// connection was attempted and no target address exists to label the metric with.
    pub const fn is_target_connection_error(self) -> bool {
        matches!(self, Self::TargetConnectionRefused | Self::TargetHostUnreachable | Self::TargetConnectTimeout)
    }

    /// Counted in `waygate_target_tls_negotiation_errors_total` (TargetTLSNegotiationErrorCount): TCP
    /// connected but the TLS session to the target was not established.
    pub const fn is_target_tls_error(self) -> bool {
        matches!(self.phase(), Phase::TlsHandshake) && matches!(self.source(), Source::Target)
    }

    /// A client's mutual TLS certificate refused in the handshake (ALB's `tls_verify_status` codes, verbatim):
    /// counted in `waygate_client_tls_negotiation_errors_total`, written to the connection log; no request
    /// exists, so no response or access-log line either.
    pub const fn is_client_certificate_error(self) -> bool {
        matches!(self.phase(), Phase::TlsHandshake) && matches!(self.source(), Source::Client)
    }

    /// Whether the client receives a response rendered for this cause. False for the stream_body causes
    /// (the target's status already went out; the connection is aborted), for ClientIdleTimeout (likewise)
    /// and for ClientClosedRequest (nobody is listening; 460/499 is only logged).
    pub const fn responds(self) -> bool {
        self.row().2.is_some() && !matches!(self, Self::ClientClosedRequest)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that is not exactly one cause name (names are case-sensitive, as in logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCauseError(pub String);

impl fmt::Display for ParseCauseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault cause `{}`", self.0)
    }
}

impl std::error::Error for ParseCauseError {}

impl FromStr for Cause {
    type Err = ParseCauseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| ParseCauseError(s.to_owned()))
    }
}
