//! The classifier, case by case: at least one evidence per cause it can produce, then the precedence
//! rules between timers, errnos, kinds and the overriding flags.

use std::io::ErrorKind;

use waygate_faults::errno::{
    EADDRNOTAVAIL, ECONNABORTED, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EMFILE, ENETUNREACH, ENFILE, ENOBUFS, ENOMEM,
    EPIPE, ETIMEDOUT,
};
use waygate_faults::{Cause, Evidence, HttpEvidence, LambdaEvidence, Phase, TlsEvidence, classify};

fn ev(phase: Phase) -> Evidence {
    Evidence::new(phase)
}

fn errno(phase: Phase, n: i32) -> Evidence {
    Evidence { os_errno: Some(n), ..ev(phase) }
}

fn kind(phase: Phase, k: ErrorKind) -> Evidence {
    Evidence { io_kind: Some(k), ..ev(phase) }
}

fn timer(phase: Phase) -> Evidence {
    Evidence { timed_out: true, ..ev(phase) }
}

fn tls(t: TlsEvidence) -> Evidence {
    Evidence { tls: Some(t), bytes_written: 517, ..ev(Phase::TlsHandshake) }
}

fn http(phase: Phase, h: HttpEvidence) -> Evidence {
    Evidence { http: Some(h), bytes_written: 100, ..ev(phase) }
}

fn lambda(l: LambdaEvidence) -> Evidence {
    Evidence { lambda: Some(l), ..ev(Phase::FunctionInvoke) }
}

#[test]
fn route_and_select() {
    assert_eq!(classify(&timer(Phase::Route)), Cause::ClientRequestTimeout);
    assert_eq!(classify(&ev(Phase::Route)), Cause::ClientRequestMalformed);
    assert_eq!(classify(&http(Phase::Route, HttpEvidence::HeadTooLarge)), Cause::ClientRequestMalformed);
    assert_eq!(classify(&timer(Phase::Select)), Cause::GatewayOverloaded);
    assert_eq!(classify(&ev(Phase::Select)), Cause::NoRegisteredTargets);
}

#[test]
fn dns_failure_with_and_without_timer() {
    assert_eq!(classify(&ev(Phase::Dns)), Cause::TargetDnsFailure);
    assert_eq!(classify(&timer(Phase::Dns)), Cause::TargetDnsFailure);
}

#[test]
fn connect_refused() {
    assert_eq!(classify(&errno(Phase::Connect, ECONNREFUSED)), Cause::TargetConnectionRefused);
    assert_eq!(classify(&kind(Phase::Connect, ErrorKind::ConnectionRefused)), Cause::TargetConnectionRefused);
    assert_eq!(classify(&errno(Phase::Connect, ECONNRESET)), Cause::TargetConnectionRefused, "RST on connect");
}

#[test]
fn connect_unreachable() {
    assert_eq!(classify(&errno(Phase::Connect, EHOSTUNREACH)), Cause::TargetHostUnreachable);
    assert_eq!(classify(&errno(Phase::Connect, ENETUNREACH)), Cause::TargetHostUnreachable);
    assert_eq!(classify(&kind(Phase::Connect, ErrorKind::HostUnreachable)), Cause::TargetHostUnreachable);
    assert_eq!(classify(&kind(Phase::Connect, ErrorKind::NetworkUnreachable)), Cause::TargetHostUnreachable);
}

#[test]
fn connect_timeout() {
    assert_eq!(classify(&timer(Phase::Connect)), Cause::TargetConnectTimeout);
    assert_eq!(classify(&errno(Phase::Connect, ETIMEDOUT)), Cause::TargetConnectTimeout);
    assert_eq!(classify(&kind(Phase::Connect, ErrorKind::TimedOut)), Cause::TargetConnectTimeout);
}

#[test]
fn connect_fallback_is_unreachable() {
    assert_eq!(classify(&ev(Phase::Connect)), Cause::TargetHostUnreachable);
    assert_eq!(classify(&errno(Phase::Connect, ENETDOWN)), Cause::TargetHostUnreachable, "ENETDOWN");
    assert_eq!(classify(&kind(Phase::Connect, ErrorKind::AddrNotAvailable)), Cause::TargetHostUnreachable);
}

/// Linux's ENETDOWN: an unknown connect errno, so the fallback.
const ENETDOWN: i32 = 100;

/// The gateway's own host running out is never a target's fault, in whichever phase it shows.
#[cfg(target_os = "linux")]
#[test]
fn local_exhaustion_names_the_gateway() {
    for n in [EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL] {
        for phase in [Phase::Dns, Phase::Connect, Phase::TlsHandshake, Phase::SendRequest, Phase::FunctionInvoke] {
            assert_eq!(classify(&errno(phase, n)), Cause::GatewayResourceExhausted, "{phase} errno {n}");
        }
        let e = Evidence { io_kind: Some(ErrorKind::ConnectionRefused), ..errno(Phase::Connect, n) };
        assert_eq!(classify(&e), Cause::GatewayResourceExhausted, "the errno beats the kind");
        assert!(!classify(&e).is_target_connection_error());
        // A status already sent, or a client gone, still wins: nothing more can be said to anyone.
        let started = Evidence { response_started: true, ..errno(Phase::StreamBody, n) };
        assert_eq!(classify(&started), Cause::TargetResponseIncomplete);
        let gone = Evidence { client_closed: true, ..errno(Phase::Connect, n) };
        assert_eq!(classify(&gone), Cause::ClientClosedRequest);
    }
    assert_eq!(waygate_faults::errno::name(EMFILE), Some("EMFILE"));
    assert_eq!(waygate_faults::errno::name(EADDRNOTAVAIL), Some("EADDRNOTAVAIL"));
    assert_eq!(waygate_faults::errno::name(12345), None);
}

#[cfg(target_os = "linux")]
#[test]
fn errno_beats_kind_on_linux() {
    let e = Evidence { os_errno: Some(ECONNREFUSED), io_kind: Some(ErrorKind::HostUnreachable), ..ev(Phase::Connect) };
    assert_eq!(classify(&e), Cause::TargetConnectionRefused);
    // An errno we do not know defers to the kind.
    let e = Evidence { os_errno: Some(12345), io_kind: Some(ErrorKind::ConnectionRefused), ..ev(Phase::Connect) };
    assert_eq!(classify(&e), Cause::TargetConnectionRefused);
}

#[test]
fn tls_phase() {
    assert_eq!(classify(&timer(Phase::TlsHandshake)), Cause::TargetTlsHandshakeTimeout);
    assert_eq!(classify(&errno(Phase::TlsHandshake, ETIMEDOUT)), Cause::TargetTlsHandshakeTimeout);
    let alert = TlsEvidence::AlertReceived { description: "handshake_failure".into() };
    assert_eq!(classify(&tls(alert)), Cause::TargetTlsAlert);
    let cert = TlsEvidence::CertificateInvalid { reason: "expired".into() };
    assert_eq!(classify(&tls(cert)), Cause::TargetTlsCertificateInvalid);
    assert_eq!(classify(&tls(TlsEvidence::NotTls)), Cause::TargetTlsProtocolError);
    assert_eq!(classify(&tls(TlsEvidence::PeerClosed)), Cause::TargetTlsProtocolError);
    assert_eq!(classify(&errno(Phase::TlsHandshake, ECONNRESET)), Cause::TargetTlsProtocolError);
    assert_eq!(classify(&kind(Phase::TlsHandshake, ErrorKind::UnexpectedEof)), Cause::TargetTlsProtocolError);
    assert_eq!(classify(&ev(Phase::TlsHandshake)), Cause::TargetTlsProtocolError, "fallback");
}

/// A timeout on a connection whose packets outgrew the path after an ICMP fragmentation-needed is named
/// for that (TargetPathMtuBlackhole), in the handshake and while sending or awaiting; without the timer the
/// flag changes nothing.
#[test]
fn path_mtu_evidence_names_the_timeout() {
    for (phase, plain) in [
        (Phase::TlsHandshake, Cause::TargetTlsHandshakeTimeout),
        (Phase::SendRequest, Cause::TargetResponseTimeout),
        (Phase::AwaitHeaders, Cause::TargetResponseTimeout),
    ] {
        assert_eq!(classify(&timer(phase)), plain, "{phase}");
        let e = Evidence { path_mtu_exceeded: true, ..timer(phase) };
        assert_eq!(classify(&e), Cause::TargetPathMtuBlackhole, "{phase}");
    }
    let closed = Evidence { path_mtu_exceeded: true, ..tls(TlsEvidence::PeerClosed) };
    assert_eq!(classify(&closed), Cause::TargetTlsProtocolError);
}

#[test]
fn tls_timer_beats_alert() {
    let e = Evidence { timed_out: true, ..tls(TlsEvidence::AlertReceived { description: "x".into() }) };
    assert_eq!(classify(&e), Cause::TargetTlsHandshakeTimeout);
}

#[test]
fn response_timeout() {
    assert_eq!(classify(&timer(Phase::AwaitHeaders)), Cause::TargetResponseTimeout);
    assert_eq!(classify(&timer(Phase::SendRequest)), Cause::TargetResponseTimeout);
    assert_eq!(classify(&errno(Phase::AwaitHeaders, ETIMEDOUT)), Cause::TargetResponseTimeout);
    let reused = Evidence { reused: true, ..timer(Phase::AwaitHeaders) };
    assert_eq!(classify(&reused), Cause::TargetResponseTimeout, "a timer is not a race");
}

#[test]
fn malformed_and_too_large() {
    assert_eq!(classify(&http(Phase::AwaitHeaders, HttpEvidence::MalformedHead)), Cause::TargetMalformedResponse);
    assert_eq!(classify(&http(Phase::AwaitHeaders, HttpEvidence::ProtocolError)), Cause::TargetMalformedResponse);
    assert_eq!(classify(&http(Phase::AwaitHeaders, HttpEvidence::HeadTooLarge)), Cause::TargetResponseHeadersTooLarge);
    let reused = Evidence { reused: true, ..http(Phase::AwaitHeaders, HttpEvidence::MalformedHead) };
    assert_eq!(classify(&reused), Cause::TargetMalformedResponse, "the target answered: no race");
}

#[test]
fn keep_alive_race_needs_reuse_and_no_response_byte() {
    for e in [
        Evidence { reused: true, ..http(Phase::AwaitHeaders, HttpEvidence::ClosedBeforeHead) },
        Evidence { reused: true, os_errno: Some(ECONNRESET), ..ev(Phase::AwaitHeaders) },
        Evidence { reused: true, os_errno: Some(EPIPE), ..ev(Phase::SendRequest) },
        Evidence { reused: true, ..ev(Phase::SendRequest) },
    ] {
        assert_eq!(classify(&e), Cause::TargetKeepAliveRace, "{e:?}");
    }
    let partial =
        Evidence { reused: true, bytes_read: 10, ..http(Phase::AwaitHeaders, HttpEvidence::ClosedBeforeHead) };
    assert_eq!(classify(&partial), Cause::TargetClosedConnection);
}

#[test]
fn fresh_connection_fin_vs_rst() {
    assert_eq!(classify(&http(Phase::AwaitHeaders, HttpEvidence::ClosedBeforeHead)), Cause::TargetClosedConnection);
    assert_eq!(classify(&kind(Phase::AwaitHeaders, ErrorKind::UnexpectedEof)), Cause::TargetClosedConnection);
    assert_eq!(classify(&ev(Phase::AwaitHeaders)), Cause::TargetClosedConnection, "fallback");
    for e in [
        errno(Phase::AwaitHeaders, ECONNRESET),
        errno(Phase::SendRequest, EPIPE),
        errno(Phase::AwaitHeaders, ECONNABORTED),
        kind(Phase::AwaitHeaders, ErrorKind::ConnectionReset),
        kind(Phase::SendRequest, ErrorKind::BrokenPipe),
        kind(Phase::AwaitHeaders, ErrorKind::ConnectionAborted),
    ] {
        assert_eq!(classify(&e), Cause::TargetResetConnection, "{e:?}");
    }
}

#[test]
fn stream_body() {
    assert_eq!(classify(&timer(Phase::StreamBody)), Cause::TargetResponseStalled);
    assert_eq!(classify(&http(Phase::StreamBody, HttpEvidence::BodyIncomplete)), Cause::TargetResponseIncomplete);
    assert_eq!(classify(&errno(Phase::StreamBody, ECONNRESET)), Cause::TargetResponseIncomplete);
}

#[test]
fn response_started_forces_a_status_less_cause() {
    for phase in Phase::ALL.iter().copied() {
        let e = Evidence { response_started: true, ..http(phase, HttpEvidence::MalformedHead) };
        assert_eq!(classify(&e), Cause::TargetResponseIncomplete, "{phase}");
        assert_eq!(classify(&Evidence { timed_out: true, ..e.clone() }), Cause::TargetResponseStalled, "{phase}");
        // Cut by the deregistration deadline: the gateway's doing, named as such even mid-body.
        let cut = Evidence { deregistered: true, ..e };
        let expected = if phase > Phase::Select { Cause::TargetDeregistered } else { Cause::TargetResponseIncomplete };
        assert_eq!(classify(&cut), expected, "{phase}");
    }
}

#[test]
fn deregistered_overrides_after_select_only() {
    for &phase in Phase::ALL {
        let e = Evidence { deregistered: true, ..timer(phase) };
        let cause = classify(&e);
        if phase > Phase::Select {
            assert_eq!(cause, Cause::TargetDeregistered, "{phase}");
        } else {
            assert_ne!(cause, Cause::TargetDeregistered, "{phase}");
        }
    }
    let refused = Evidence { deregistered: true, ..errno(Phase::Connect, ECONNREFUSED) };
    assert_eq!(classify(&refused), Cause::TargetDeregistered);
}

#[test]
fn client_closed_beats_everything() {
    for &phase in Phase::ALL {
        let e = Evidence { client_closed: true, deregistered: true, response_started: true, ..timer(phase) };
        assert_eq!(classify(&e), Cause::ClientClosedRequest, "{phase}");
    }
}

#[test]
fn function_invoke() {
    assert_eq!(classify(&lambda(LambdaEvidence::RequestTooLarge)), Cause::LambdaRequestTooLarge);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(413))), Cause::LambdaRequestTooLarge);
    assert_eq!(classify(&lambda(LambdaEvidence::ResponseTooLarge)), Cause::LambdaResponseTooLarge);
    assert_eq!(classify(&lambda(LambdaEvidence::InvalidResponse)), Cause::LambdaInvalidResponse);
    assert_eq!(classify(&lambda(LambdaEvidence::FunctionError)), Cause::LambdaUnhandled);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(429))), Cause::LambdaThrottling);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(403))), Cause::LambdaAccessDenied);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(404))), Cause::LambdaResourceNotFound);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(500))), Cause::LambdaServiceException);
    assert_eq!(classify(&lambda(LambdaEvidence::InvokeStatus(400))), Cause::LambdaServiceException);
    assert_eq!(classify(&timer(Phase::FunctionInvoke)), Cause::LambdaConnectionTimeout);
    assert_eq!(classify(&errno(Phase::FunctionInvoke, ECONNREFUSED)), Cause::LambdaConnectionError);
    assert_eq!(classify(&kind(Phase::FunctionInvoke, ErrorKind::Other)), Cause::LambdaConnectionError);
    assert_eq!(classify(&ev(Phase::FunctionInvoke)), Cause::LambdaServiceException, "fallback");
    let tls = Evidence { tls: Some(TlsEvidence::NotTls), ..ev(Phase::FunctionInvoke) };
    assert_eq!(classify(&tls), Cause::LambdaConnectionError, "the endpoint's TLS failed");
    let closed = Evidence { http: Some(HttpEvidence::ClosedBeforeHead), ..ev(Phase::FunctionInvoke) };
    assert_eq!(classify(&closed), Cause::LambdaConnectionError, "closed before a head");
    let malformed = Evidence { http: Some(HttpEvidence::MalformedHead), ..ev(Phase::FunctionInvoke) };
    assert_eq!(classify(&malformed), Cause::LambdaServiceException, "the service's head is malformed");
}

#[test]
fn every_non_decision_cause_is_reachable() {
    // Causes named directly by the deciding component rather than from evidence.
    const DECIDED: &[Cause] = &[
        Cause::NoRoute,
        Cause::NoHealthyTargets,
        Cause::ClientXffTooMany,
        Cause::ClientUnsupportedTransferEncoding,
        Cause::ClientMethodNotAllowed,
        Cause::ClientIdleTimeout,
        Cause::ClientProtocolMismatch,
        // The listener's TLS handshake names these from rustls's verdict (proxy's tls_front::outcome).
        Cause::ClientCertMissing,
        Cause::ClientCertUntrusted,
        Cause::ClientCertExpired,
        Cause::ClientCertCrlHit,
        // The function request path names these from the request (proxy's invocation).
        Cause::LambdaBadRequest,
        Cause::LambdaWebsocketNotSupported,
    ];
    let mut seen = std::collections::HashSet::new();
    let kinds =
        [None, Some(ErrorKind::ConnectionRefused), Some(ErrorKind::ConnectionReset), Some(ErrorKind::HostUnreachable)];
    let https = [
        None,
        Some(HttpEvidence::MalformedHead),
        Some(HttpEvidence::HeadTooLarge),
        Some(HttpEvidence::BadUpgrade(waygate_faults::BadUpgrade::ExtendedConnectDisabled)),
    ];
    let tlss = [
        None,
        Some(TlsEvidence::NotTls),
        Some(TlsEvidence::AlertReceived { description: String::new() }),
        Some(TlsEvidence::CertificateInvalid { reason: String::new() }),
    ];
    let lambdas = [
        None,
        Some(LambdaEvidence::RequestTooLarge),
        Some(LambdaEvidence::ResponseTooLarge),
        Some(LambdaEvidence::InvalidResponse),
        Some(LambdaEvidence::FunctionError),
        Some(LambdaEvidence::InvokeStatus(429)),
        Some(LambdaEvidence::InvokeStatus(403)),
        Some(LambdaEvidence::InvokeStatus(404)),
    ];
    let h2s = [
        None,
        Some(waygate_faults::H2Evidence::StreamReset { code: 8 }),
        Some(waygate_faults::H2Evidence::GoAway { code: 0, unprocessed: false }),
        Some(waygate_faults::H2Evidence::ProtocolError { code: 1 }),
        Some(waygate_faults::H2Evidence::NotNegotiated),
    ];
    for &phase in Phase::ALL {
        for flags in 0..64u8 {
            for k in kinds {
                for h in https {
                    for t in &tlss {
                        for (l, os_errno) in lambdas.into_iter().flat_map(|l| [(l, None), (l, Some(EMFILE))]) {
                            for h2 in h2s {
                                let e = Evidence {
                                    h2,
                                    timed_out: flags & 1 != 0,
                                    reused: flags & 2 != 0,
                                    deregistered: flags & 4 != 0,
                                    response_started: flags & 8 != 0,
                                    client_closed: flags & 16 != 0,
                                    path_mtu_exceeded: flags & 32 != 0,
                                    io_kind: k,
                                    http: h,
                                    tls: t.clone(),
                                    lambda: l,
                                    os_errno,
                                    ..ev(phase)
                                };
                                seen.insert(classify(&e));
                            }
                        }
                    }
                }
            }
        }
    }
    for &cause in Cause::ALL {
        assert_eq!(seen.contains(&cause), !DECIDED.contains(&cause), "{cause}");
    }
}

#[test]
fn http2_evidence_names_its_own_causes() {
    use waygate_faults::H2Evidence;
    let h2 = |h2, phase| classify(&Evidence { h2: Some(h2), bytes_written: 90, ..Evidence::new(phase) });
    assert_eq!(h2(H2Evidence::StreamReset { code: 0x8 }, Phase::AwaitHeaders), Cause::TargetStreamReset);
    assert_eq!(h2(H2Evidence::StreamReset { code: 0x7 }, Phase::SendRequest), Cause::TargetStreamReset);
    assert_eq!(h2(H2Evidence::StreamReset { code: 0x1 }, Phase::AwaitHeaders), Cause::TargetHttp2ProtocolError);
    assert_eq!(h2(H2Evidence::GoAway { code: 0, unprocessed: false }, Phase::AwaitHeaders), Cause::TargetGoAway);
    assert_eq!(
        h2(H2Evidence::GoAway { code: 1, unprocessed: true }, Phase::AwaitHeaders),
        Cause::TargetHttp2ProtocolError
    );
    assert_eq!(h2(H2Evidence::ProtocolError { code: 1 }, Phase::AwaitHeaders), Cause::TargetHttp2ProtocolError);
    assert_eq!(h2(H2Evidence::NotNegotiated, Phase::TlsHandshake), Cause::TargetHttp2NotNegotiated);
    // A WebSocket for a target whose SETTINGS did not enable RFC 8441: nothing went out on a stream.
    let no_connect = HttpEvidence::BadUpgrade(waygate_faults::BadUpgrade::ExtendedConnectDisabled);
    let no_connect = Evidence { http: Some(no_connect), ..Evidence::new(Phase::SendRequest) };
    assert_eq!(classify(&no_connect), Cause::TargetExtendedConnectDisabled);
    // The timer still comes first, and a begun response is a body failure whatever ended the stream.
    let late = Evidence {
        timed_out: true,
        h2: Some(H2Evidence::StreamReset { code: 8 }),
        ..Evidence::new(Phase::AwaitHeaders)
    };
    assert_eq!(classify(&late), Cause::TargetResponseTimeout);
    let begun = Evidence {
        response_started: true,
        h2: Some(H2Evidence::StreamReset { code: 8 }),
        ..Evidence::new(Phase::StreamBody)
    };
    assert_eq!(classify(&begun), Cause::TargetResponseIncomplete);
}
