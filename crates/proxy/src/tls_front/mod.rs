//! The TLS front door of an https listener, as ALB's: certificates chosen by SNI ([`sni`]), an ALB security
//! policy's versions and ciphers ([`policy`]), mutual TLS in ALB's modes ([`mtls`], the client certificate's
//! fields for targets in [`leaf`]), and a connection log line per handshake, failed ones included
//! ([`connlog`], with the failure's code from [`outcome`]). [`TlsFront`] is built with each configuration
//! snapshot, so a reload (SIGHUP, `POST /api/v1/reload`) reads the certificate files again while open
//! connections keep the settings they were accepted with; [`accept`] runs one handshake.

pub mod accept;
pub mod connlog;
pub mod leaf;
pub mod mtls;
pub mod outcome;
pub mod policy;
pub mod sni;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{ServerConfig, SupportedProtocolVersion};
use waygate_config::ListenerTls;
use waygate_config::tls_files;

pub use accept::{Accepted, ConnIds, accept};
pub use connlog::ConnectionLog;

/// The log warns this long before a certificate expires.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// ALPN: h2 first, then http/1.1.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// One listener's compiled TLS settings.
#[derive(Debug)]
pub struct TlsFront {
    parts: Parts,
    /// What every connection uses when client certificates are off.
    config: Arc<ServerConfig>,
    client_auth: mtls::ClientAuth,
    /// Each certificate's name (its first DNS name, else its file) and expiry, in configuration order.
    expiries: Vec<(String, SystemTime)>,
}

/// What every connection's server config is made of.
#[derive(Debug)]
struct Parts {
    provider: Arc<CryptoProvider>,
    versions: Vec<&'static SupportedProtocolVersion>,
    certificates: Arc<sni::Certificates>,
    tickets: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl Parts {
    /// A server config with `verifier` for client certificates (`None`: none asked for).
    fn server_config(&self, verifier: Option<Arc<dyn ClientCertVerifier>>) -> Result<Arc<ServerConfig>, String> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| format!("TLS server setup: {e}"))?;
        let builder = match verifier {
            Some(v) => builder.with_client_cert_verifier(v),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.certificates.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        // ALB picks the first suite of its policy's list that the client offers.
        config.ignore_client_order = true;
        config.ticketer = self.tickets.clone();
        config.session_storage = self.sessions.clone();
        Ok(Arc::new(config))
    }
}

/// A certificate's `chosen_cert_arn`. ALB writes the ACM certificate's ARN, which names the certificate as
/// configured and stays the same when ACM renews it; waygate's certificates are configured as files, so the
/// certificate file's path (as the configuration resolved it) names it the same way: stable across a reload
/// that reads a renewed file, and different for each entry of `certificates`.
pub fn cert_id(cert: &std::path::Path) -> Arc<str> {
    Arc::from(format!("file:{}", cert.display()))
}

impl TlsFront {
    /// Reads the certificates, keys and trust store `tls` names and builds the listener's TLS. Errors name the
    /// file and why.
    pub fn build(tls: &ListenerTls) -> Result<Self, String> {
        let (provider, versions) = policy::served(tls.policy)?;
        let mut served = Vec::with_capacity(tls.certificates.len());
        let mut expiries = Vec::with_capacity(tls.certificates.len());
        for files in &tls.certificates {
            let identity = tls_files::read_identity(&files.cert, &files.key)?;
            let file = files.cert.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
            expiries.push((identity.display_name(&file).to_owned(), identity.not_after));
            served.push(sni::Served {
                key: identity.certified,
                names: identity.names,
                ecdsa: identity.ecdsa,
                not_after: identity.not_after,
                id: cert_id(&files.cert),
            });
        }
        if served.is_empty() {
            return Err("no certificate is configured".to_owned());
        }
        let parts = Parts {
            certificates: Arc::new(sni::Certificates::new(served)),
            tickets: rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?,
            sessions: rustls::server::ServerSessionMemoryCache::new(4096),
            provider,
            versions,
        };
        let client_auth = mtls::ClientAuth::new(&tls.mutual_authentication, &parts.provider)?;
        // Built once with a verifier now: every connection's own config is then known to build.
        if let Some(v) = client_auth.for_connection(&Arc::default()) {
            parts.server_config(Some(v))?;
        }
        let config = parts.server_config(None)?;
        Ok(Self { parts, config, client_auth, expiries })
    }

    /// The config one connection is accepted with, and where its verifier records the client's certificate
    /// (mutual TLS only: the verifier is the connection's own, so the config is too). `None`: it cannot be
    /// built (it was when the listener's TLS was: not expected).
    fn for_connection(&self) -> Option<(Arc<ServerConfig>, Option<Arc<mtls::Seen>>)> {
        if !self.mutual() {
            return Some((self.config.clone(), None));
        }
        let seen = Arc::new(mtls::Seen::default());
        let verifier = self.client_auth.for_connection(&seen)?;
        self.parts.server_config(Some(verifier)).ok().map(|c| (c, Some(seen)))
    }

    /// Whether client certificates are asked for (`verify` or `passthrough`).
    pub fn mutual(&self) -> bool {
        !matches!(self.client_auth, mtls::ClientAuth::Off)
    }

    /// Each certificate's name and expiry, for `waygate_listener_certificate_expiry_seconds`.
    pub fn expiries(&self) -> &[(String, SystemTime)] {
        &self.expiries
    }
}
