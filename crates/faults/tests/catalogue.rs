//! Pins every row of the catalogue against FAULTS.md: a change to a status, type or code must change
//! this file too, on purpose.

use std::collections::HashSet;
use std::str::FromStr;

use waygate_faults::{Cause, Phase, Profile, Source};

const FLOW: &str = "messaging.adaptors.http.flow.";

/// (cause, name, phase, alb, apigee, RFC 9209 type, Apigee errorcode without the common prefix, reason)
type Pin =
    (Cause, &'static str, Phase, Option<u16>, Option<u16>, Option<&'static str>, &'static str, Option<&'static str>);

#[rustfmt::skip]
const PINS: &[Pin] = &[
    (Cause::NoRoute, "NoRoute", Phase::Route, Some(404), Some(404), Some("destination_not_found"), "flow.ApplicationNotFound", None),
    (Cause::NoRegisteredTargets, "NoRegisteredTargets", Phase::Select, Some(503), Some(503), Some("destination_unavailable"), "flow.NoActiveTargets", None),
    (Cause::NoHealthyTargets, "NoHealthyTargets", Phase::Select, Some(503), Some(503), Some("destination_unavailable"), "flow.NoActiveTargets", None),
    (Cause::GatewayOverloaded, "GatewayOverloaded", Phase::Select, Some(503), Some(503), Some("connection_limit_reached"), "flow.ServiceUnavailable", None),
    (Cause::GatewayResourceExhausted, "GatewayResourceExhausted", Phase::Connect, Some(503), Some(503), Some("proxy_internal_error"), "flow.ServiceUnavailable", None),
    (Cause::TargetDnsFailure, "TargetDnsFailure", Phase::Dns, Some(502), Some(503), Some("dns_error"), "protocol.http.NoResolvedHost", Some("TARGET_CONNECT_HOST_NOT_REACHABLE")),
    (Cause::TargetConnectionRefused, "TargetConnectionRefused", Phase::Connect, Some(502), Some(503), Some("connection_refused"), "flow.ServiceUnavailable", None),
    (Cause::TargetHostUnreachable, "TargetHostUnreachable", Phase::Connect, Some(502), Some(503), Some("destination_ip_unroutable"), "flow.ServiceUnavailable", None),
    (Cause::TargetConnectTimeout, "TargetConnectTimeout", Phase::Connect, Some(504), Some(503), Some("connection_timeout"), "flow.ServiceUnavailable", Some("TARGET_CONNECT_TIMEOUT")),
    (Cause::TargetTlsHandshakeTimeout, "TargetTlsHandshakeTimeout", Phase::TlsHandshake, Some(504), Some(502), Some("connection_timeout"), "flow.BadGateway", None),
    (Cause::TargetPathMtuBlackhole, "TargetPathMtuBlackhole", Phase::TlsHandshake, Some(504), Some(502), Some("connection_timeout"), "flow.BadGateway", None),
    (Cause::TargetTlsAlert, "TargetTlsAlert", Phase::TlsHandshake, Some(502), Some(503), Some("tls_alert_received"), "flow.ServiceUnavailable", None),
    (Cause::TargetTlsCertificateInvalid, "TargetTlsCertificateInvalid", Phase::TlsHandshake, Some(502), Some(503), Some("tls_certificate_error"), "flow.ServiceUnavailable", None),
    (Cause::TargetTlsProtocolError, "TargetTlsProtocolError", Phase::TlsHandshake, Some(502), Some(502), Some("tls_protocol_error"), "flow.UnexpectedEOFAtTarget", Some("TARGET_READ_UNEXPECTED_EOF")),
    (Cause::TargetKeepAliveRace, "TargetKeepAliveRace", Phase::AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), "flow.UnexpectedEOFAtTarget", Some("TARGET_READ_UNEXPECTED_EOF")),
    (Cause::TargetClosedConnection, "TargetClosedConnection", Phase::AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), "flow.UnexpectedEOFAtTarget", Some("TARGET_READ_UNEXPECTED_EOF")),
    (Cause::TargetResetConnection, "TargetResetConnection", Phase::AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), "flow.UnexpectedEOFAtTarget", Some("TARGET_READ_UNEXPECTED_EOF")),
    (Cause::TargetMalformedResponse, "TargetMalformedResponse", Phase::AwaitHeaders, Some(502), Some(502), Some("http_protocol_error"), "flow.BadGateway", None),
    (Cause::TargetResponseHeadersTooLarge, "TargetResponseHeadersTooLarge", Phase::AwaitHeaders, Some(502), Some(502), Some("http_response_header_section_size"), "flow.BadGateway", None),
    (Cause::TargetResponseTimeout, "TargetResponseTimeout", Phase::AwaitHeaders, Some(504), Some(504), Some("http_response_timeout"), "flow.GatewayTimeout", Some("TARGET_READ_TIMEOUT")),
    (Cause::TargetDeregistered, "TargetDeregistered", Phase::AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), "flow.BadGateway", None),
    (Cause::TargetResponseIncomplete, "TargetResponseIncomplete", Phase::StreamBody, None, None, Some("http_response_incomplete"), "flow.UnexpectedEOFAtTarget", Some("TARGET_READ_UNEXPECTED_EOF")),
    (Cause::TargetResponseStalled, "TargetResponseStalled", Phase::StreamBody, None, None, Some("http_response_timeout"), "flow.GatewayTimeout", Some("TARGET_READ_TIMEOUT")),
    (Cause::TargetStreamReset, "TargetStreamReset", Phase::AwaitHeaders, Some(502), Some(502), Some("http_response_incomplete"), "flow.BadGateway", None),
    (Cause::TargetGoAway, "TargetGoAway", Phase::AwaitHeaders, Some(502), Some(502), Some("connection_terminated"), "flow.BadGateway", None),
    (Cause::TargetHttp2ProtocolError, "TargetHttp2ProtocolError", Phase::AwaitHeaders, Some(502), Some(502), Some("http_protocol_error"), "flow.BadGateway", None),
    (Cause::TargetHttp2NotNegotiated, "TargetHttp2NotNegotiated", Phase::TlsHandshake, Some(502), Some(502), Some("tls_protocol_error"), "flow.BadGateway", None),
    (Cause::ClientRequestMalformed, "ClientRequestMalformed", Phase::Route, Some(400), Some(400), Some("http_request_error"), "flow.BadRequest", None),
    (Cause::ClientRequestTimeout, "ClientRequestTimeout", Phase::Route, Some(408), Some(408), Some("http_request_error"), "flow.RequestTimeout", None),
    (Cause::ClientClosedRequest, "ClientClosedRequest", Phase::AwaitHeaders, Some(460), Some(499), None, "flow.ClientClosedConnection", None),
    (Cause::ClientIdleTimeout, "ClientIdleTimeout", Phase::StreamBody, None, None, None, "flow.RequestTimeout", None),
    (Cause::ClientXffTooMany, "ClientXffTooMany", Phase::Route, Some(463), Some(400), Some("http_request_error"), "flow.BadRequest", None),
    (Cause::ClientUnsupportedTransferEncoding, "ClientUnsupportedTransferEncoding", Phase::Route, Some(501), Some(501), Some("http_request_error"), "protocol.http.UnsupportedEncoding", None),
    (Cause::ClientMethodNotAllowed, "ClientMethodNotAllowed", Phase::Route, Some(405), Some(405), Some("http_request_error"), "protocol.http.MethodNotAllowed", None),
    (Cause::ClientProtocolMismatch, "ClientProtocolMismatch", Phase::Route, Some(464), Some(400), Some("http_request_error"), "flow.BadRequest", None),
    (Cause::LambdaRequestTooLarge, "LambdaRequestTooLarge", Phase::FunctionInvoke, Some(413), Some(413), Some("http_request_error"), "protocol.http.TooBigBody", None),
    (Cause::LambdaInvalidResponse, "LambdaInvalidResponse", Phase::FunctionInvoke, Some(502), Some(502), Some("http_protocol_error"), "flow.BadGateway", None),
    (Cause::LambdaResponseTooLarge, "LambdaResponseTooLarge", Phase::FunctionInvoke, Some(502), Some(502), Some("http_response_body_size"), "flow.BadGateway", None),
    (Cause::LambdaUnhandled, "LambdaUnhandled", Phase::FunctionInvoke, Some(502), Some(502), Some("proxy_internal_response"), "flow.BadGateway", None),
    (Cause::LambdaThrottling, "LambdaThrottling", Phase::FunctionInvoke, Some(502), Some(503), Some("connection_limit_reached"), "flow.ServiceUnavailable", None),
    (Cause::LambdaResourceNotFound, "LambdaResourceNotFound", Phase::FunctionInvoke, Some(502), Some(502), Some("destination_not_found"), "flow.BadGateway", None),
    (Cause::LambdaAccessDenied, "LambdaAccessDenied", Phase::FunctionInvoke, Some(502), Some(502), Some("proxy_configuration_error"), "flow.BadGateway", None),
    (Cause::LambdaConnectionError, "LambdaConnectionError", Phase::FunctionInvoke, Some(502), Some(503), Some("connection_refused"), "flow.ServiceUnavailable", None),
    (Cause::LambdaConnectionTimeout, "LambdaConnectionTimeout", Phase::FunctionInvoke, Some(504), Some(504), Some("connection_timeout"), "flow.GatewayTimeout", None),
    (Cause::LambdaServiceException, "LambdaServiceException", Phase::FunctionInvoke, Some(502), Some(502), Some("proxy_internal_response"), "flow.BadGateway", None),
    (Cause::ClientCertMissing, "ClientCertMissing", Phase::TlsHandshake, None, None, None, "flow.SslHandshakeFailed", None),
    (Cause::ClientCertUntrusted, "ClientCertUntrusted", Phase::TlsHandshake, None, None, None, "flow.SslHandshakeFailed", None),
    (Cause::ClientCertExpired, "ClientCertExpired", Phase::TlsHandshake, None, None, None, "flow.SslHandshakeFailed", None),
    (Cause::ClientCertCrlHit, "ClientCertCrlHit", Phase::TlsHandshake, None, None, None, "flow.SslHandshakeFailed", None),
    (Cause::LambdaBadRequest, "LambdaBadRequest", Phase::FunctionInvoke, Some(400), Some(400), Some("http_request_error"), "flow.BadRequest", None),
    (Cause::LambdaWebsocketNotSupported, "LambdaWebsocketNotSupported", Phase::FunctionInvoke, Some(400), Some(400), Some("http_request_error"), "flow.BadRequest", None),
    (Cause::TargetExtendedConnectDisabled, "TargetExtendedConnectDisabled", Phase::SendRequest, Some(502), Some(502), Some("http_upgrade_failed"), "flow.BadGateway", None),
];

fn full_code(short: &str) -> String {
    match short.strip_prefix("flow.") {
        Some(rest) => format!("{FLOW}{rest}"),
        None => short.to_owned(),
    }
}

#[test]
fn every_row_is_pinned_in_order() {
    assert_eq!(PINS.len(), Cause::ALL.len());
    for (pin, cause) in PINS.iter().zip(Cause::ALL) {
        assert_eq!(pin.0, *cause, "ALL is in FAULTS.md order");
    }
}

#[test]
fn all_is_complete() {
    // Declaration order: the discriminants are 0..N, so ALL lists each variant exactly once.
    for (i, cause) in Cause::ALL.iter().enumerate() {
        assert_eq!(*cause as usize, i);
    }
    assert_eq!(Cause::ALL.len(), Cause::TargetExtendedConnectDisabled as usize + 1);
}

#[test]
fn rows_match_faults_md() {
    for &(cause, name, phase, alb, apigee, rfc, code, reason) in PINS {
        assert_eq!(cause.name(), name);
        assert_eq!(cause.phase(), phase, "{name} phase");
        assert_eq!(cause.status(Profile::Alb), alb, "{name} alb");
        assert_eq!(cause.status(Profile::Apigee), apigee, "{name} apigee");
        assert_eq!(cause.status(Profile::Problem), alb, "{name} problem uses alb statuses");
        assert_eq!(cause.proxy_status_error(), rfc, "{name} rfc9209");
        assert_eq!(cause.apigee_errorcode(), full_code(code), "{name} errorcode");
        assert_eq!(cause.apigee_reason(), reason, "{name} reason");
    }
}

#[test]
fn names_round_trip_and_are_unique() {
    let mut seen = HashSet::new();
    for &cause in Cause::ALL {
        assert!(seen.insert(cause.name()), "duplicate name {cause}");
        assert_eq!(Cause::from_str(cause.name()), Ok(cause));
        assert_eq!(cause.to_string(), cause.name());
        assert_eq!(cause.to_string().parse::<Cause>(), Ok(cause));
    }
    assert!("targetconnectionrefused".parse::<Cause>().is_err(), "names are case-sensitive");
    assert!(" NoRoute".parse::<Cause>().is_err());
    assert!("".parse::<Cause>().is_err());
    let err = "Nope".parse::<Cause>().unwrap_err();
    assert_eq!(err.to_string(), "unknown fault cause `Nope`");
}

#[test]
fn names_are_camel_case_words() {
    for &cause in Cause::ALL {
        let name = cause.name();
        assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
    }
}

#[test]
fn dns_timeout_changes_only_the_dns_type() {
    assert_eq!(Cause::TargetDnsFailure.proxy_status_error_for(true), Some("dns_timeout"));
    assert_eq!(Cause::TargetDnsFailure.proxy_status_error_for(false), Some("dns_error"));
    for &cause in Cause::ALL.iter().filter(|c| **c != Cause::TargetDnsFailure) {
        assert_eq!(cause.proxy_status_error_for(true), cause.proxy_status_error());
    }
}

#[test]
fn rfc9209_types_are_registered() {
    const REGISTERED: &[&str] = &[
        "dns_timeout",
        "dns_error",
        "destination_not_found",
        "destination_unavailable",
        "destination_ip_prohibited",
        "destination_ip_unroutable",
        "connection_refused",
        "connection_terminated",
        "connection_timeout",
        "connection_read_timeout",
        "connection_write_timeout",
        "connection_limit_reached",
        "tls_protocol_error",
        "tls_certificate_error",
        "tls_alert_received",
        "http_request_error",
        "http_request_denied",
        "http_response_incomplete",
        "http_response_header_section_size",
        "http_response_header_size",
        "http_response_body_size",
        "http_response_trailer_section_size",
        "http_response_trailer_size",
        "http_response_transfer_coding",
        "http_response_content_coding",
        "http_response_timeout",
        "http_upgrade_failed",
        "http_protocol_error",
        "proxy_internal_response",
        "proxy_internal_error",
        "proxy_configuration_error",
        "proxy_loop_detected",
    ];
    for &cause in Cause::ALL {
        if let Some(t) = cause.proxy_status_error() {
            assert!(REGISTERED.contains(&t), "{cause}: {t}");
        }
    }
}

#[test]
fn apigee_faultstrings_follow_the_errorcode() {
    for &cause in Cause::ALL {
        let expected = match cause.apigee_errorcode().rsplit('.').next() {
            Some("BadGateway") => "Bad Gateway",
            Some("ServiceUnavailable" | "NoActiveTargets") => "The Service is temporarily unavailable",
            Some("UnexpectedEOFAtTarget") => "Unexpected EOF at target",
            Some("GatewayTimeout") => "Gateway Timeout",
            Some("NoResolvedHost") => "Unable to resolve host",
            _ => continue,
        };
        assert_eq!(cause.apigee_faultstring(), expected, "{cause}");
    }
    assert_eq!(Cause::LambdaRequestTooLarge.apigee_faultstring(), "Body buffer overflow");
}

#[test]
fn texts_exist_and_titles_hold_no_internals() {
    for &cause in Cause::ALL {
        let title = cause.title();
        assert!(!title.is_empty() && title.len() < 80, "{cause}");
        assert!(!title.contains(cause.name()), "{cause}: the title explains, the name identifies");
        assert!(!title.chars().any(|c| c.is_ascii_digit()), "{cause}: no addresses or numbers in titles");
        assert!(cause.remediation().len() > 60, "{cause}");
        assert!(!cause.apigee_faultstring().is_empty());
    }
    assert!(Cause::TargetTlsHandshakeTimeout.remediation().contains("waygate doctor probe"));
    assert!(Cause::TargetTlsHandshakeTimeout.remediation().contains("waygate doctor pcap"));
    let mtu = Cause::TargetPathMtuBlackhole.remediation();
    assert!(mtu.contains("ICMP type 3 code 4") && mtu.contains("clamp-mss-to-pmtu"), "{mtu}");
    assert!(Cause::TargetConnectTimeout.remediation().contains("1024-65535"));
    assert!(Cause::TargetKeepAliveRace.remediation().contains("pool_idle_timeout"));
    assert!(Cause::TargetDeregistered.remediation().contains("deregistration_delay"));
}

#[test]
fn classes() {
    let connection: Vec<_> = Cause::ALL.iter().copied().filter(|c| c.is_target_connection_error()).collect();
    assert_eq!(connection, [Cause::TargetConnectionRefused, Cause::TargetHostUnreachable, Cause::TargetConnectTimeout]);
    let tls: Vec<_> = Cause::ALL.iter().copied().filter(|c| c.is_target_tls_error()).collect();
    assert_eq!(
        tls,
        [
            Cause::TargetTlsHandshakeTimeout,
            Cause::TargetPathMtuBlackhole,
            Cause::TargetTlsAlert,
            Cause::TargetTlsCertificateInvalid,
            Cause::TargetTlsProtocolError,
            Cause::TargetHttp2NotNegotiated
        ]
    );
    for &cause in Cause::ALL {
        assert_eq!(cause.is_lambda(), cause.name().starts_with("Lambda"), "{cause}");
        assert_eq!(cause.is_lambda(), cause.is_lambda_user_error() || cause.is_lambda_internal_error());
        assert!(!(cause.is_lambda_user_error() && cause.is_lambda_internal_error()));
        let expected = match cause.name() {
            n if n.starts_with("Lambda") => Source::Function,
            n if n.starts_with("Target") => Source::Target,
            n if n.starts_with("Client") => Source::Client,
            _ => Source::Gateway,
        };
        assert_eq!(cause.source(), expected, "{cause}");
    }
    let client_certs: Vec<_> = Cause::ALL.iter().copied().filter(|c| c.is_client_certificate_error()).collect();
    assert_eq!(
        client_certs,
        [Cause::ClientCertMissing, Cause::ClientCertUntrusted, Cause::ClientCertExpired, Cause::ClientCertCrlHit]
    );
    assert!(Cause::LambdaServiceException.is_lambda_internal_error());
    assert!(Cause::LambdaThrottling.is_lambda_user_error());
    assert!(
        Cause::LambdaBadRequest.is_lambda_user_error() && Cause::LambdaWebsocketNotSupported.is_lambda_user_error()
    );
}

#[test]
fn responds_only_when_a_status_can_be_sent() {
    for &cause in Cause::ALL {
        let expected = !matches!(
            cause,
            Cause::TargetResponseIncomplete
                | Cause::TargetResponseStalled
                | Cause::ClientClosedRequest
                | Cause::ClientIdleTimeout
                | Cause::ClientCertMissing
                | Cause::ClientCertUntrusted
                | Cause::ClientCertExpired
                | Cause::ClientCertCrlHit
        );
        assert_eq!(cause.responds(), expected, "{cause}");
    }
}

#[test]
fn phase_and_profile_names_round_trip() {
    for &phase in Phase::ALL {
        assert_eq!(phase.as_str().parse::<Phase>(), Ok(phase));
        assert_eq!(phase.to_string(), phase.as_str());
    }
    assert_eq!(Phase::TlsHandshake.as_str(), "tls_handshake");
    for &profile in Profile::ALL {
        assert_eq!(profile.as_str().parse::<Profile>(), Ok(profile));
    }
    assert_eq!(Profile::default(), Profile::Alb);
    assert!("ALB".parse::<Profile>().is_err());
    assert!("tls-handshake".parse::<Phase>().is_err());
}

/// The gRPC status each cause gives a gRPC client (INTERFACE.md: 14 for connect, TLS and closed causes, 4 for
/// timeouts, 8 for overload, 12 for no route), pinned for every cause.
#[test]
fn grpc_codes_follow_the_interface() {
    use waygate_faults::GrpcCode::*;
    let expected = |cause: Cause| match cause {
        Cause::NoRoute
        | Cause::ClientMethodNotAllowed
        | Cause::ClientProtocolMismatch
        | Cause::TargetExtendedConnectDisabled => Unimplemented,
        Cause::GatewayOverloaded
        | Cause::GatewayResourceExhausted
        | Cause::LambdaThrottling
        | Cause::LambdaRequestTooLarge => ResourceExhausted,
        Cause::TargetResponseTimeout
        | Cause::TargetResponseStalled
        | Cause::ClientRequestTimeout
        | Cause::ClientIdleTimeout
        | Cause::LambdaConnectionTimeout => DeadlineExceeded,
        Cause::TargetMalformedResponse
        | Cause::TargetResponseHeadersTooLarge
        | Cause::TargetHttp2ProtocolError
        | Cause::LambdaInvalidResponse
        | Cause::LambdaResponseTooLarge
        | Cause::LambdaUnhandled => Internal,
        Cause::ClientRequestMalformed
        | Cause::ClientXffTooMany
        | Cause::ClientUnsupportedTransferEncoding
        | Cause::LambdaBadRequest
        | Cause::LambdaWebsocketNotSupported => InvalidArgument,
        Cause::ClientClosedRequest => Cancelled,
        Cause::LambdaResourceNotFound => NotFound,
        Cause::LambdaAccessDenied => PermissionDenied,
        Cause::ClientCertMissing | Cause::ClientCertUntrusted | Cause::ClientCertExpired | Cause::ClientCertCrlHit => {
            Unauthenticated
        }
        _ => Unavailable,
    };
    for &cause in Cause::ALL {
        assert_eq!(cause.grpc_code(), expected(cause), "{cause}");
    }
    let unavailable = Cause::ALL.iter().filter(|c| c.grpc_code() == Unavailable).count();
    assert_eq!(unavailable, 21, "every connect, TLS, close and no-target cause");
    assert_eq!((Unavailable.code(), Unavailable.name()), (14, "UNAVAILABLE"));
    assert_eq!((Unauthenticated.code(), Unauthenticated.name()), (16, "UNAUTHENTICATED"));
    assert_eq!(waygate_faults::grpc_code_name(16), Some("UNAUTHENTICATED"));
    assert_eq!(waygate_faults::grpc_code_name(17), None);
}
