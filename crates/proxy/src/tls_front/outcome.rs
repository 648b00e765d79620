//! Why a client TLS handshake failed, as one code: the connection log's `tls_verify_status` (`Failed:<code>`)
//! and the `cause` of `waygate_client_tls_negotiation_errors_total`. Client-certificate failures use ALB's own
//! codes (`ClientCertUntrusted`, `ClientCertExpired`, `ClientCertCrlHit` ...); the four that mutual TLS
//! most often meets (missing, untrusted, expired, revoked) are causes of the fault catalogue by the same names. For the failures ALB lumps into
//! `UnmappedConnectionError` waygate says what happened instead: no shared protocol version or cipher, not
//! TLS at all, the client's own alert, the client leaving, the handshake timing out.

use std::io;

use rustls::{AlertDescription, CertificateError, Error, InvalidMessage, PeerIncompatible};
use waygate_faults::Cause;

/// Every code, for documentation and tests.
pub const CODES: &[&str] = &[
    CERT_MISSING,
    UNTRUSTED,
    EXPIRED,
    "ClientCertNotYetValid",
    REVOKED,
    "ClientCertCrlProcessingError",
    "ClientCertPurposeInvalid",
    "ClientCertTypeUnsupported",
    "ClientCertInvalid",
    "NoSharedProtocolVersion",
    "NoSharedCipher",
    "NoSharedParameters",
    "NotTls",
    "ServerCertRejected",
    "ClientAlert",
    "ClientClosed",
    TIMEOUT,
    PROTOCOL_ERROR,
];

/// No certificate from the client where `verify` requires one (ALB's documentation names no code for it).
/// This and the next three are the catalogue's client certificate causes.
pub const CERT_MISSING: &str = Cause::ClientCertMissing.name();
const UNTRUSTED: &str = Cause::ClientCertUntrusted.name();
const EXPIRED: &str = Cause::ClientCertExpired.name();
const REVOKED: &str = Cause::ClientCertCrlHit.name();
/// The handshake broke the protocol in a way none of the above names.
pub const PROTOCOL_ERROR: &str = "ProtocolError";
/// The handshake did not finish within the client TLS handshake timeout.
pub const TIMEOUT: &str = "HandshakeTimeout";

/// The code of a failed `accept`.
pub fn failure(e: &io::Error) -> &'static str {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(tls) => tls_failure(tls),
        None => match e.kind() {
            io::ErrorKind::TimedOut => TIMEOUT,
            _ => "ClientClosed",
        },
    }
}

fn tls_failure(e: &Error) -> &'static str {
    match e {
        Error::NoCertificatesPresented => CERT_MISSING,
        Error::InvalidCertificate(c) => certificate(c),
        Error::PeerIncompatible(p) => match p {
            PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::ServerDoesNotSupportTls12Or13 => "NoSharedProtocolVersion",
            PeerIncompatible::NoCipherSuitesInCommon => "NoSharedCipher",
            _ => "NoSharedParameters",
        },
        Error::InvalidMessage(InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion) => "NotTls",
        Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::UnsupportedCertificate,
        ) => "ServerCertRejected",
        Error::AlertReceived(AlertDescription::ProtocolVersion) => "NoSharedProtocolVersion",
        Error::AlertReceived(AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity) => {
            "NoSharedCipher"
        }
        Error::AlertReceived(_) => "ClientAlert",
        Error::InvalidCertRevocationList(_) => "ClientCertCrlProcessingError",
        _ => PROTOCOL_ERROR,
    }
}

fn certificate(c: &CertificateError) -> &'static str {
    match c {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => UNTRUSTED,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => EXPIRED,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "ClientCertNotYetValid",
        CertificateError::Revoked => REVOKED,
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => "ClientCertCrlProcessingError",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => "ClientCertPurposeInvalid",
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => "ClientCertTypeUnsupported",
        _ => "ClientCertInvalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn failures_get_their_codes() {
        let expired = wrapped(Error::InvalidCertificate(CertificateError::Expired));
        assert_eq!(failure(&expired), "ClientCertExpired");
        assert_eq!(failure(&wrapped(Error::NoCertificatesPresented)), CERT_MISSING);
        let version = wrapped(Error::PeerIncompatible(PeerIncompatible::SupportedVersionsExtensionRequired));
        assert_eq!(failure(&version), "NoSharedProtocolVersion");
        assert_eq!(failure(&io::Error::from(io::ErrorKind::UnexpectedEof)), "ClientClosed");
        assert_eq!(failure(&wrapped(Error::InvalidCertificate(CertificateError::Revoked))), "ClientCertCrlHit");
        for cause in Cause::ALL.iter().filter(|c| c.is_client_certificate_error()) {
            assert!(CODES.contains(&cause.name()), "{cause} is a code");
        }
        for code in [
            failure(&expired),
            certificate(&CertificateError::UnknownIssuer),
            tls_failure(&Error::AlertReceived(AlertDescription::DecodeError)),
        ] {
            assert!(CODES.contains(&code), "{code} is not listed");
        }
    }
}
