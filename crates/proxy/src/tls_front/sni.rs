//! Certificate selection by SNI, as ALB's "smart certificate selection" does: the first certificate of the
//! listener is the default, used when the client sends no server name or no certificate covers it; among
//! those that cover the name, an exact name beats a wildcard, an ECDSA key beats RSA when the client offers
//! ECDSA signatures, and then the certificate that expires last wins. Wildcards match as in certificates (RFC
//! 6125): `*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::SignatureScheme;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// One certificate a listener serves.
#[derive(Debug)]
pub struct Served {
    pub key: Arc<CertifiedKey>,
    /// Its DNS names, lowercase.
    pub names: Vec<String>,
    pub ecdsa: bool,
    pub not_after: SystemTime,
}

/// A listener's certificates; the first is the default.
#[derive(Debug)]
pub struct Certificates {
    served: Vec<Served>,
}

/// How well a certificate's name covers the requested one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cover {
    Wildcard,
    Exact,
}

fn cover(pattern: &str, name: &str) -> Option<Cover> {
    if pattern.eq_ignore_ascii_case(name) {
        return Some(Cover::Exact);
    }
    let suffix = pattern.strip_prefix("*.")?;
    let (first, rest) = name.split_once('.')?;
    (!first.is_empty() && rest.eq_ignore_ascii_case(suffix) && suffix.contains('.')).then_some(Cover::Wildcard)
}

impl Certificates {
    /// `served` must not be empty (configuration validation guarantees one certificate at least).
    pub fn new(served: Vec<Served>) -> Self {
        Self { served }
    }

    pub fn served(&self) -> &[Served] {
        &self.served
    }

    /// The certificate for a client asking for `name` (none: the default), offering `schemes`.
    pub fn choose(&self, name: Option<&str>, schemes: &[SignatureScheme]) -> Option<&Served> {
        let default = self.served.first();
        let Some(name) = name else { return default };
        let ecdsa_ok = schemes.iter().any(|s| {
            matches!(
                s,
                SignatureScheme::ECDSA_NISTP256_SHA256
                    | SignatureScheme::ECDSA_NISTP384_SHA384
                    | SignatureScheme::ECDSA_NISTP521_SHA512
                    | SignatureScheme::ED25519
            )
        });
        let rank = |s: &Served| {
            let best = s.names.iter().filter_map(|p| cover(p, name)).max()?;
            Some((best, s.ecdsa == ecdsa_ok, s.not_after))
        };
        let mut chosen: Option<(&Served, _)> = None;
        for s in &self.served {
            if let Some(r) = rank(s)
                && chosen.as_ref().is_none_or(|(_, best)| r > *best)
            {
                chosen = Some((s, r));
            }
        }
        chosen.map(|(s, _)| s).or(default)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name(), hello.signature_schemes()).map(|s| s.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert_eq!(cover("*.example.com", "a.example.com"), Some(Cover::Wildcard));
        assert_eq!(cover("*.example.com", "A.Example.COM"), Some(Cover::Wildcard));
        assert_eq!(cover("*.example.com", "example.com"), None);
        assert_eq!(cover("*.example.com", "a.b.example.com"), None);
        assert_eq!(cover("*.com", "example.com"), None, "a wildcard needs two labels after it");
        assert_eq!(cover("a.example.com", "A.EXAMPLE.com"), Some(Cover::Exact));
        assert_eq!(cover("b.example.com", "a.example.com"), None);
    }
}
