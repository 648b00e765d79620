//! An ALB security policy ([`waygate_config::tls_policy`], the one table of them) as rustls serves it: the
//! ring provider's cipher suites that the policy lists, in the policy's order of preference (ALB picks the
//! first of its own list the client offers), and the policy's protocol versions.

use std::borrow::Cow;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use waygate_config::tls_policy::{TlsPolicy, TlsVersion};

use crate::upstream::tls;

/// What rustls serves of `policy`: a provider holding only the policy's suites, and its versions.
pub fn served(policy: &TlsPolicy) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), String> {
    let base = tls::provider();
    let mut suites: Vec<SupportedCipherSuite> = Vec::new();
    for name in policy.ciphers {
        if let Some(s) = base.cipher_suites.iter().find(|s| openssl_name(s.suite()) == *name) {
            suites.push(*s);
        }
    }
    let mut versions = Vec::new();
    for v in policy.versions {
        let version = match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
            TlsVersion::Tls10 | TlsVersion::Tls11 => {
                return Err(format!("policy {} allows TLS 1.0 or 1.1, which rustls does not speak", policy.name));
            }
        };
        if !suites.iter().any(|s| s.version() == version) {
            return Err(format!("policy {} leaves no cipher suite rustls has for {:?}", policy.name, version.version));
        }
        versions.push(version);
    }
    let provider = CryptoProvider { cipher_suites: suites, ..(*base).clone() };
    Ok((Arc::new(provider), versions))
}

/// OpenSSL's name of a protocol version, as ALB's logs write it (`-`: none negotiated).
pub fn protocol_name(version: Option<rustls::ProtocolVersion>) -> &'static str {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "-",
    }
}

/// OpenSSL's names for the suites rustls negotiates (TLS 1.3 suites keep their IANA names, as OpenSSL does).
pub fn openssl_name(suite: rustls::CipherSuite) -> Cow<'static, str> {
    use rustls::CipherSuite as C;
    Cow::Borrowed(match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return Cow::Owned(format!("{other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use waygate_config::tls_policy::POLICIES;

    /// Every servable policy of the table is served: each of its versions keeps a suite, and nothing outside its
    /// list is offered; every unservable one is refused.
    #[test]
    fn the_table_is_served_as_it_says() {
        for p in POLICIES {
            match (p.unservable, served(p)) {
                (None, Ok((provider, versions))) => {
                    assert_eq!(versions.len(), p.versions.len(), "{}", p.name);
                    for s in &provider.cipher_suites {
                        let name = openssl_name(s.suite());
                        assert!(p.ciphers.contains(&&*name), "{}: {name} is not in the policy", p.name);
                    }
                }
                (None, Err(e)) => panic!("{}: {e}", p.name),
                (Some(_), Ok(_)) if p.versions.iter().any(|v| *v < TlsVersion::Tls12) => {
                    panic!("{} is served with TLS < 1.2", p.name)
                }
                (Some(_), _) => {}
            }
        }
    }

    #[test]
    fn tls13_only_serves_no_tls12() {
        let p = POLICIES.iter().find(|p| p.name == "ELBSecurityPolicy-TLS13-1-3-2021-06").unwrap();
        let (provider, versions) = served(p).unwrap();
        assert_eq!(versions.len(), 1);
        assert!(provider.cipher_suites.iter().all(|s| s.version() == &rustls::version::TLS13));
        let fs = POLICIES.iter().find(|p| p.name == "ELBSecurityPolicy-FS-1-2-Res-2020-10").unwrap();
        let (provider, _) = served(fs).unwrap();
        assert_eq!(provider.cipher_suites.len(), 4, "the four ECDHE GCM suites");
    }
}
