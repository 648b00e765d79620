//! The fault catalogue (docs/FAULTS.md) as data: every response the gateway generates itself has exactly
//! one [`Cause`], and this crate is the only place that maps a cause to a status code, an RFC 9209
//! `Proxy-Status` error type, an Apigee error code and a remediation.
//!
//! Nothing runtime lives here, so the doctor and the data plane share the vocabulary without sharing code paths.
//! The flow is: the data plane turns what it saw into plain [`Evidence`], [`classify`] names the [`Cause`],
//! [`retry_safety`] says whether another attempt is allowed, and [`render`] builds the client response.
//!
//! - `catalogue`: the one table (statuses, RFC 9209 types, Apigee codes) and the per-cause accessors.
//! - `text`: client-facing titles and operator remediation.
//! - `classify` / `retry`: evidence to cause, and whether a retry is safe.
//! - `proxy_status` / `sf`: the `Proxy-Status` header and the RFC 8941 syntax it needs.
//! - `response` / `body` / `escape`: error responses in each profile.
//!
//! ```
//! use std::io::ErrorKind;
//! use waygate_faults::{Evidence, Phase, Profile, classify, render};
//!
//! let evidence = Evidence { io_kind: Some(ErrorKind::ConnectionRefused), ..Evidence::new(Phase::Connect) };
//! let cause = classify(&evidence);
//! assert_eq!(cause.name(), "TargetConnectionRefused");
//! let response = render(cause, Profile::Alb, "req-1", None);
//! assert_eq!(response.status, 502);
//! assert_eq!(response.proxy_status, r#"waygate; error=connection_refused; details="TargetConnectionRefused""#);
//! ```

mod body;
mod catalogue;
mod classify;
pub mod errno;
mod escape;
mod grpc;
mod names;
mod proxy_status;
mod response;
mod retry;
pub mod sf;
mod text;
mod tls_alert;

pub use catalogue::{ParseCauseError, Source};
pub use classify::{BadUpgrade, Evidence, H2Evidence, HttpEvidence, LambdaEvidence, TlsEvidence, classify};
pub use grpc::{GrpcCode, grpc_code_name};
pub use names::{ParsePhaseError, ParseProfileError};
pub use proxy_status::{PROXY_NAME, ProxyStatus, ProxyStatusDetails, parse_proxy_status_cause, proxy_status};
pub use response::{ErrorResponse, PROBLEM_TYPE_PREFIX, ResponseDetails, reason_phrase, render, render_with};
pub use retry::{RetrySafety, retry_safety};
pub use tls_alert::{tls_alert_id, tls_alert_name};

/// Where in the request's life a failure happened, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Route,
    Select,
    Dns,
    Connect,
    TlsHandshake,
    SendRequest,
    AwaitHeaders,
    StreamBody,
    FunctionInvoke,
}

/// Which error-response dialect the gateway speaks (`[errors] profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// ALB's statuses and HTML error pages (the default).
    #[default]
    Alb,
    /// Apigee's statuses and `{"fault":...}` JSON bodies.
    Apigee,
    /// ALB's statuses with RFC 9457 `application/problem+json` bodies.
    Problem,
}

/// One failure cause: a row of FAULTS.md. Names are CamelCase like ALB's own error_reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    NoRoute,
    NoRegisteredTargets,
    NoHealthyTargets,
    GatewayOverloaded,
    GatewayResourceExhausted,
    TargetDnsFailure,
    TargetConnectionRefused,
    TargetHostUnreachable,
    TargetConnectTimeout,
    TargetTlsHandshakeTimeout,
    TargetPathMtuBlackhole,
    TargetTlsAlert,
    TargetTlsCertificateInvalid,
    TargetTlsProtocolError,
    TargetKeepAliveRace,
    TargetClosedConnection,
    TargetResetConnection,
    TargetMalformedResponse,
    TargetResponseHeadersTooLarge,
    TargetResponseTimeout,
    TargetDeregistered,
    TargetResponseIncomplete,
    TargetResponseStalled,
    TargetStreamReset,
    TargetGoAway,
    TargetHttp2ProtocolError,
    TargetHttp2NotNegotiated,
    ClientRequestMalformed,
    ClientRequestTimeout,
    ClientClosedRequest,
    ClientIdleTimeout,
    ClientXffTooMany,
    ClientUnsupportedTransferEncoding,
    ClientMethodNotAllowed,
    ClientProtocolMismatch,
    LambdaRequestTooLarge,
    LambdaInvalidResponse,
    LambdaResponseTooLarge,
    LambdaUnhandled,
    LambdaThrottling,
    LambdaResourceNotFound,
    LambdaAccessDenied,
    LambdaConnectionError,
    LambdaConnectionTimeout,
    LambdaServiceException,
    ClientCertMissing,
    ClientCertUntrusted,
    ClientCertExpired,
    ClientCertCrlHit,
    LambdaBadRequest,
    LambdaWebsocketNotSupported,
    TargetExtendedConnectDisabled,
}
