//! TLS client settings per target group: trusted roots (system or a configured CA bundle), optional
//! verification off (ALB does not verify targets; waygate does by default), ALPN http/1.1, SNI. The doctor's
//! probe builds the very same config with [`client_config_recording`], which also keeps the certificate chain
//! the target presented, so a failed verification can still show what was presented.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The crypto provider used everywhere in waygate (ring: builds with a C compiler only, no cmake).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client config of a target group. Errors name the file that could not be used.
pub fn client_config(verify: bool, ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    build(verify, ca, None)
}

/// The certificates a target presented in its last handshake, leaf first (see [`client_config_recording`]).
#[derive(Debug, Default)]
pub struct PresentedChain(Mutex<Vec<CertificateDer<'static>>>);

impl PresentedChain {
    /// The chain recorded by the last handshake that got as far as the server's certificate (empty if none).
    pub fn take(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// [`client_config`], recording the chain each handshake is presented before verifying it (for the probe).
pub fn client_config_recording(
    verify: bool,
    ca: Option<&Path>,
) -> Result<(Arc<ClientConfig>, Arc<PresentedChain>), String> {
    let seen = Arc::new(PresentedChain::default());
    Ok((build(verify, ca, Some(seen.clone()))?, seen))
}

fn build(verify: bool, ca: Option<&Path>, record: Option<Arc<PresentedChain>>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client setup: {e}"))?;
    let mut config = match (verify, record) {
        (true, None) => builder.with_root_certificates(roots(ca)?).with_no_client_auth(),
        (false, None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
        (verify, Some(seen)) => {
            let inner: Arc<dyn ServerCertVerifier> = if verify {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| format!("TLS client setup: {e}"))?
            } else {
                Arc::new(NoVerification(provider()))
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Recording { inner, seen }))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: cannot read CA bundle: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
                store.add(cert).map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!("{}: no certificates in CA bundle", path.display()));
            }
        }
        None => {
            // Missing or unreadable system roots are not fatal: targets then fail verification with a clear
            // TargetTlsCertificateInvalid, and operators can point `tls.ca` at a bundle.
            let native = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(native.certs);
        }
    }
    Ok(store)
}

/// The server name to send and verify: the configured SNI, else the target's host (an IP is fine for rustls).
pub fn server_name(sni: Option<&str>, host: &str) -> Result<ServerName<'static>, String> {
    let name = sni.unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| format!("invalid TLS server name {name:?}"))
}

/// `verify = false`: accept any certificate, but still check handshake signatures so the session is real TLS.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Records the presented chain, then lets `inner` (the gateway's own verifier) decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Arc<PresentedChain>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        *self.seen.0.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
