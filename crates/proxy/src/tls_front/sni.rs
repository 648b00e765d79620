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
    /// What the access log's `chosen_cert_arn` says when it is chosen: `file:` and its certificate file's path.
    pub id: Arc<str>,
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

    fn served(names: &[&str], ecdsa: bool, years_left: u64) -> Served {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.test".to_owned()]).unwrap().self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signing = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        Served {
            key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
            names: names.iter().map(|n| n.to_string()).collect(),
            ecdsa,
            not_after: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(years_left * 31_536_000),
            id: Arc::from(names.join(",")),
        }
    }

    /// Exact beats wildcard, ECDSA beats RSA for a client that offers it (and not for one that does not), the
    /// later expiry breaks ties, and a name nothing covers gets the default.
    #[test]
    fn selection_ranks_as_alb_does() {
        let certs = Certificates::new(vec![
            served(&["default.test"], false, 60),
            served(&["*.a.test"], true, 90),
            served(&["x.a.test"], false, 70),
            served(&["y.a.test"], false, 70),
            served(&["y.a.test"], true, 70),
            served(&["z.a.test"], false, 70),
            served(&["z.a.test"], false, 80),
        ]);
        let ecdsa = [SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::RSA_PSS_SHA256];
        let rsa = [SignatureScheme::RSA_PSS_SHA256];
        let pick = |name: Option<&str>, schemes: &[SignatureScheme]| {
            let chosen = certs.choose(name, schemes).unwrap();
            certs.served().iter().position(|s| std::ptr::eq(s, chosen)).unwrap()
        };
        assert_eq!(pick(Some("x.a.test"), &ecdsa), 2, "exact beats a wildcard, even an ECDSA one");
        assert_eq!(pick(Some("w.a.test"), &ecdsa), 1, "the wildcard");
        assert_eq!(pick(Some("y.a.test"), &ecdsa), 4, "ECDSA for a client that offers it");
        assert_eq!(pick(Some("y.a.test"), &rsa), 3, "RSA for one that does not");
        assert_eq!(pick(Some("z.a.test"), &rsa), 6, "the later expiry");
        assert_eq!(pick(Some("nothing.test"), &ecdsa), 0, "the default");
        assert_eq!(pick(None, &ecdsa), 0, "no SNI: the default");
    }
}
