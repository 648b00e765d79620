//! gRPC status codes for the gateway's own failures: a gRPC client gets a trailers-only answer whose
//! `grpc-status` says what happened in its own protocol (INTERFACE.md, "Target groups: protocols to targets").
//!
//! The table is one `match` over every cause, so a new cause cannot compile without its code. The choices:
//! - 14 UNAVAILABLE for everything that kept the request from a target, or ended the connection under it
//!   (DNS, connect, TLS, closes, resets, GOAWAY, no targets, deregistration): the call did not happen or may be
//!   retried, which is what gRPC clients' retry policies key on. A connect or TLS handshake timeout is one of
//!   these, not DEADLINE_EXCEEDED: nothing reached the target.
//! - 4 DEADLINE_EXCEEDED for the timers that fire while the target holds the call (response timeout, a
//!   stalled body) or the client does (a stalled request, a client that stopped reading).
//! - 8 RESOURCE_EXHAUSTED for the gateway's capacity and the function service's throttling.
//! - 12 UNIMPLEMENTED where nothing serves the method: no route, a method the gateway does not forward, a
//!   protocol the group does not take.
//! - 13 INTERNAL for responses the gateway could not read (malformed, too large, protocol errors), as gRPC's own
//!   HTTP mapping gives 400 and protocol failures.
//! - 3 INVALID_ARGUMENT for requests the gateway refuses as malformed; 1 CANCELLED for a client that left.
//! - 16 UNAUTHENTICATED for a client certificate refused by mutual TLS (never sent: the handshake fails first).

use crate::Cause;

/// gRPC status codes (as the gRPC project numbers them) the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    Cancelled = 1,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl GrpcCode {
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The code's name as gRPC spells it (`UNAVAILABLE`).
    pub const fn name(self) -> &'static str {
        match grpc_code_name(self as u8) {
            Some(name) => name,
            None => "UNKNOWN",
        }
    }
}

/// The name of any gRPC status code 0-16 (`14` → `UNAVAILABLE`), for logs of targets' own statuses.
pub const fn grpc_code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

impl Cause {
    /// The `grpc-status` a gRPC client gets when the gateway fails its call with this cause.
    pub const fn grpc_code(self) -> GrpcCode {
        use GrpcCode::*;
        match self {
            Self::NoRoute
            | Self::ClientMethodNotAllowed
            | Self::ClientProtocolMismatch
            | Self::TargetExtendedConnectDisabled => Unimplemented,
            Self::NoRegisteredTargets | Self::NoHealthyTargets => Unavailable,
            Self::GatewayOverloaded | Self::GatewayResourceExhausted | Self::LambdaThrottling => ResourceExhausted,
            Self::TargetDnsFailure
            | Self::TargetConnectionRefused
            | Self::TargetHostUnreachable
            | Self::TargetConnectTimeout
            | Self::TargetTlsHandshakeTimeout
            | Self::TargetPathMtuBlackhole
            | Self::TargetTlsAlert
            | Self::TargetTlsCertificateInvalid
            | Self::TargetTlsProtocolError
            | Self::TargetKeepAliveRace
            | Self::TargetClosedConnection
            | Self::TargetResetConnection
            | Self::TargetDeregistered
            | Self::TargetResponseIncomplete
            | Self::TargetStreamReset
            | Self::TargetGoAway
            | Self::TargetHttp2NotNegotiated
            | Self::LambdaConnectionError
            | Self::LambdaServiceException => Unavailable,
            Self::TargetMalformedResponse
            | Self::TargetResponseHeadersTooLarge
            | Self::TargetHttp2ProtocolError
            | Self::LambdaInvalidResponse
            | Self::LambdaResponseTooLarge
            | Self::LambdaUnhandled => Internal,
            Self::TargetResponseTimeout
            | Self::TargetResponseStalled
            | Self::ClientRequestTimeout
            | Self::ClientIdleTimeout
            | Self::LambdaConnectionTimeout => DeadlineExceeded,
            Self::ClientRequestMalformed
            | Self::ClientXffTooMany
            | Self::ClientUnsupportedTransferEncoding
            | Self::LambdaBadRequest
            | Self::LambdaWebsocketNotSupported => InvalidArgument,
            Self::LambdaRequestTooLarge => ResourceExhausted,
            Self::ClientClosedRequest => Cancelled,
            Self::LambdaResourceNotFound => NotFound,
            Self::LambdaAccessDenied => PermissionDenied,
            Self::ClientCertMissing | Self::ClientCertUntrusted | Self::ClientCertExpired | Self::ClientCertCrlHit => {
                Unauthenticated
            }
        }
    }
}
