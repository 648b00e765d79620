//! The files a listener's TLS names, read once for both users: `check-config` (and every reload), which turns
//! a reason into an error at the config entry, and the data plane, which serves what was read. A reason says
//! which file and why: unreadable, not PEM, the key does not match the certificate, expired.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate chain and its key, checked to belong together.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub certified: Arc<CertifiedKey>,
    /// The leaf's DNS names (subject alternative names; its common name when it has none), lowercase.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// `not_before` and `not_after` as the certificate writes them, for messages.
    validity_text: (String, String),
    /// The key is ECDSA (or EdDSA), not RSA: preferred for clients that offer it, as ALB does.
    pub ecdsa: bool,
}

impl Identity {
    /// The name the leaf is known by: its first DNS name, else `fallback` (the file, say).
    pub fn display_name<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.names.first().map_or(fallback, String::as_str)
    }

    /// `Some(reason)` when the leaf is no longer (or not yet) valid at `now`.
    pub fn invalid_at(&self, now: SystemTime) -> Option<String> {
        if now > self.not_after {
            Some(format!("the certificate expired on {}", self.validity_text.1))
        } else if now < self.not_before {
            Some(format!("the certificate is not valid before {}", self.validity_text.0))
        } else {
            None
        }
    }
}

/// Reads `cert` (PEM, leaf first) and `key` (PEM) and checks that the key is the certificate's.
pub fn read_identity(cert: &Path, key: &Path) -> Result<Identity, String> {
    let chain = read_certificates(cert)?;
    let key_der = read_key(key)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key_der).map_err(|e| {
        format!("{}: the private key cannot be used for TLS (RSA, ECDSA P-256/P-384 or Ed25519): {e}", key.display())
    })?;
    let ecdsa = !matches!(signing.algorithm(), rustls::SignatureAlgorithm::RSA);
    let certified = CertifiedKey::new(chain, signing);
    if certified.keys_match().is_err() {
        return Err(format!("{}: the private key does not match the certificate {}", key.display(), cert.display()));
    }
    let leaf = &certified.cert[0];
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("{}: the first certificate is not valid X.509: {e}", cert.display()))?;
    let validity = parsed.validity();
    let names = dns_names(&parsed);
    Ok(Identity {
        names,
        not_before: unix(validity.not_before.timestamp()),
        not_after: unix(validity.not_after.timestamp()),
        validity_text: (validity.not_before.to_string(), validity.not_after.to_string()),
        ecdsa,
        certified: Arc::new(certified),
    })
}

/// The certificates of a PEM file, in order; at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, "certificate")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM: {}", path.display(), pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(format!("{}: not PEM: no CERTIFICATE block", path.display()));
    }
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = x509_parser::parse_x509_certificate(c) {
            return Err(format!("{}: certificate #{} is not valid X.509: {e}", path.display(), i + 1));
        }
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => format!("{}: not PEM: no PRIVATE KEY block", path.display()),
        e => format!("{}: not PEM: {}", path.display(), pem_reason(&e)),
    })
}

/// A trust store for mutual TLS: the CA certificates of a PEM file and the CRLs (`X509 CRL` blocks) beside
/// them, if any.
#[derive(Debug)]
pub struct TrustStore {
    pub roots: Vec<CertificateDer<'static>>,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

/// Reads a trust store; at least one CA certificate.
pub fn read_trust_store(path: &Path) -> Result<TrustStore, String> {
    let bytes = read(path, "trust store")?;
    let mut roots = Vec::new();
    let mut crls = Vec::new();
    for section in <(pem::SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(&bytes) {
        match section.map_err(|e| format!("{}: not PEM: {}", path.display(), pem_reason(&e)))? {
            (pem::SectionKind::Certificate, der) => roots.push(CertificateDer::from(der)),
            (pem::SectionKind::Crl, der) => crls.push(CertificateRevocationListDer::from(der)),
            _ => {}
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "{}: not PEM: no CERTIFICATE block (the trust store holds CA certificates)",
            path.display()
        ));
    }
    Ok(TrustStore { roots, crls })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read the {what} file: {e}", path.display()))
}

fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM block".to_owned(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".to_owned(),
        other => other.to_string(),
    }
}

fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    names
}

fn unix(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}
