//! Mutual TLS in ALB's modes. `verify`: the client must present a certificate that chains to the trust store
//! (checked against its CRLs when it has any; expiry optionally ignored); `passthrough`: any certificate, or
//! none, is taken (its signature over the handshake still checked) and its chain goes to targets. Each
//! connection's verifier records the leaf it was shown ([`Seen`]), so a rejected certificate's subject still
//! reaches the connection log.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use waygate_config::MutualAuthentication;
use waygate_config::tls_files;

/// A listener's client authentication.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Off,
    Verify(Arc<dyn ClientCertVerifier>),
    Passthrough(Arc<AcceptAny>),
}

impl ClientAuth {
    /// Reads the trust store (CA certificates and CRLs) for `verify`.
    pub fn new(config: &MutualAuthentication, provider: &Arc<CryptoProvider>) -> Result<Self, String> {
        match config {
            MutualAuthentication::Off => Ok(Self::Off),
            MutualAuthentication::Passthrough => Ok(Self::Passthrough(Arc::new(AcceptAny(provider.clone())))),
            MutualAuthentication::Verify { trust_store, ignore_client_certificate_expiry } => {
                let store = tls_files::read_trust_store(trust_store)?;
                let mut roots = RootCertStore::empty();
                for root in store.roots {
                    roots
                        .add(root)
                        .map_err(|e| format!("{}: a CA certificate cannot be used: {e}", trust_store.display()))?;
                }
                let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                if !store.crls.is_empty() {
                    // The leaf is checked, as ALB checks it; a CRL that does not cover its issuer is not a failure.
                    builder = builder
                        .with_crls(store.crls)
                        .only_check_end_entity_revocation()
                        .allow_unknown_revocation_status();
                }
                let verifier = builder.build().map_err(|e| format!("{}: {e}", trust_store.display()))?;
                let verifier = match ignore_client_certificate_expiry {
                    true => Arc::new(IgnoreExpiry(verifier)) as Arc<dyn ClientCertVerifier>,
                    false => verifier,
                };
                Ok(Self::Verify(verifier))
            }
        }
    }

    /// The verifier one connection uses, recording into `seen`; `None` when client certificates are off.
    pub fn for_connection(&self, seen: &Arc<Seen>) -> Option<Arc<dyn ClientCertVerifier>> {
        let inner: Arc<dyn ClientCertVerifier> = match self {
            Self::Off => return None,
            Self::Verify(v) => v.clone(),
            Self::Passthrough(v) => v.clone(),
        };
        Some(Arc::new(Recording { inner, seen: seen.clone() }))
    }

    pub fn is_passthrough(&self) -> bool {
        matches!(self, Self::Passthrough(_))
    }
}

/// The leaf certificate a connection's client presented, as its verifier saw it (kept even when rejected).
#[derive(Debug, Default)]
pub struct Seen(Mutex<Option<CertificateDer<'static>>>);

impl Seen {
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ClientCertVerifier>,
    seen: Arc<Seen>,
}

impl ClientCertVerifier for Recording {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        *self.seen.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(end_entity.clone().into_owned());
        self.inner.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `ignore_client_certificate_expiry`: a chain refused only because its leaf expired is verified again as of
/// the leaf's last valid second (every other check, the chain and the CRLs included, still applies).
#[derive(Debug)]
struct IgnoreExpiry(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for IgnoreExpiry {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self.0.verify_client_cert(end_entity, intermediates, now) {
            Err(Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. })) => {
                let not_after = x509_parser::parse_x509_certificate(end_entity)
                    .map(|(_, c)| c.validity().not_after.timestamp())
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                let then = UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after.max(0).unsigned_abs()));
                self.0.verify_client_cert(end_entity, intermediates, then)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `passthrough`: a certificate is asked for, not required, and not judged; the client still proves it holds
/// the key (its handshake signature is checked).
#[derive(Debug)]
pub struct AcceptAny(Arc<CryptoProvider>);

impl ClientCertVerifier for AcceptAny {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
