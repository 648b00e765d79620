//! Throw-away certificates for TLS tests: one CA and the four server identities the TLS faults need.
//!
//! Everything is generated in memory with rcgen (ring). [`TestPki::shared`] is one process-wide PKI, which
//! the TLS faults use when spawned without an explicit one, so a test can trust its CA and still see the
//! *specific* verification failure (expired, wrong name) rather than "unknown issuer".

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names every valid leaf certificate covers.
pub const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The only name the wrong-name certificate covers.
pub const WRONG_NAME: &str = "wrong.example";

/// The ring crypto provider, named explicitly so the process default (and aws-lc) never matter.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server certificate (chain) and its private key.
#[derive(Clone, Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Identity {
    /// The certificate chain, leaf first, as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    /// The PKCS#8 private key as PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
    /// The certificate chain, leaf first, as DER.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
    /// The private key as DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server config presenting this identity, ALPN `h2` and `http/1.1`.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key_der())
            .expect("rcgen produced a matching certificate and key");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Paths written by [`TestPki::write_files`].
#[derive(Clone, Debug)]
pub struct PkiFiles {
    /// `ca.pem`: the CA certificate to trust.
    pub ca: PathBuf,
    /// `valid.crt` / `valid.key`.
    pub valid: CertFiles,
    /// `self-signed.crt` / `self-signed.key`.
    pub self_signed: CertFiles,
    /// `expired.crt` / `expired.key`.
    pub expired: CertFiles,
    /// `wrong-name.crt` / `wrong-name.key`.
    pub wrong_name: CertFiles,
}

/// A certificate file and its key file.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM PKCS#8 key.
    pub key: PathBuf,
}

/// A test CA and the identities issued from it (generated once, in [`TestPki::new`]).
#[derive(Clone, Debug)]
pub struct TestPki {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    valid: Identity,
    self_signed: Identity,
    expired: Identity,
    wrong_name: Identity,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// Generates a CA (named `waygate faultlab test CA` plus a unique id) and the four identities.
    ///
    /// # Panics
    /// Only if rcgen fails to generate or sign with an ECDSA P-256 key, which it does not do with valid
    /// parameters.
    pub fn new() -> Self {
        Self::generate().expect("rcgen generates test certificates")
    }

    /// One PKI shared by the whole process (used by TLS faults spawned without an explicit PKI).
    pub fn shared() -> &'static TestPki {
        static SHARED: OnceLock<TestPki> = OnceLock::new();
        SHARED.get_or_init(TestPki::new)
    }

    fn generate() -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        // A unique name per CA: with two CAs of the same name, a verifier trusting the other one finds
        // it as the issuer and reports BadSignature instead of UnknownIssuer.
        ca_params.distinguished_name.push(DnType::CommonName, unique_ca_name());
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf = |names: &[&str]| -> Result<CertificateParams, rcgen::Error> {
            let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, names[0]);
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            params.use_authority_key_identifier_extension = true;
            Ok(params)
        };
        let issue = |params: CertificateParams| -> Result<Identity, rcgen::Error> {
            let key = KeyPair::generate()?;
            Ok(identity(&params.signed_by(&key, &ca)?, &key))
        };

        let valid = issue(leaf(&LEAF_NAMES)?)?;
        let wrong_name = issue(leaf(&[WRONG_NAME])?)?;
        let mut expired_params = leaf(&LEAF_NAMES)?;
        expired_params.not_before = date_time_ymd(2020, 1, 1);
        expired_params.not_after = date_time_ymd(2021, 1, 1);
        let expired = issue(expired_params)?;
        let self_signed = {
            let key = KeyPair::generate()?;
            let mut params = leaf(&LEAF_NAMES)?;
            params.use_authority_key_identifier_extension = false;
            identity(&params.self_signed(&key)?, &key)
        };

        Ok(Self { ca_der: ca.der().clone(), ca_pem: ca.pem(), valid, self_signed, expired, wrong_name })
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    /// The CA certificate as DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }
    /// Leaf for `localhost`, `127.0.0.1` and `::1`, issued by the CA, valid now.
    pub fn valid(&self) -> &Identity {
        &self.valid
    }
    /// Leaf for the same names, self-signed (not from the CA).
    pub fn self_signed(&self) -> &Identity {
        &self.self_signed
    }
    /// Leaf for the same names from the CA, valid 2020-01-01 to 2021-01-01.
    pub fn expired(&self) -> &Identity {
        &self.expired
    }
    /// Leaf from the CA for [`WRONG_NAME`] only.
    pub fn wrong_name(&self) -> &Identity {
        &self.wrong_name
    }

    /// Roots containing only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the CA certificate parses");
        roots
    }

    /// A rustls client config trusting only this CA (ALPN `http/1.1`), for tests that poke servers.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Writes `ca.pem` and `<name>.crt` / `<name>.key` for each identity into `dir` (created if missing).
    pub fn write_files(&self, dir: &Path) -> io::Result<PkiFiles> {
        std::fs::create_dir_all(dir)?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &self.ca_pem)?;
        let write = |name: &str, id: &Identity| -> io::Result<CertFiles> {
            let files = CertFiles { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
            std::fs::write(&files.cert, id.cert_pem())?;
            std::fs::write(&files.key, id.key_pem())?;
            Ok(files)
        };
        Ok(PkiFiles {
            ca,
            valid: write("valid", &self.valid)?,
            self_signed: write("self-signed", &self.self_signed)?,
            expired: write("expired", &self.expired)?,
            wrong_name: write("wrong-name", &self.wrong_name)?,
        })
    }
}

fn identity(cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        chain: vec![cert.der().clone()],
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}

fn unique_ca_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("waygate faultlab test CA {}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
