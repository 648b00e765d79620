//! The presented certificate chain, for people: subject, issuer, validity and days to expiry (x509-parser),
//! and whether the leaf covers the server name (rustls-webpki, the check rustls itself makes).

use rustls::pki_types::{CertificateDer, ServerName};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::report::Certificate;
use crate::time::format_timestamp;

const MICROS_PER_SEC: i64 = 1_000_000;

/// Describes each certificate; ones that do not parse are shown as such rather than dropped.
pub fn describe(chain: &[CertificateDer<'_>], now_unix: i64) -> Vec<Certificate> {
    chain.iter().map(|der| describe_one(der, now_unix)).collect()
}

fn describe_one(der: &CertificateDer<'_>, now_unix: i64) -> Certificate {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let not_after = cert.validity().not_after.timestamp();
            let subject = cert.subject().to_string();
            let issuer = cert.issuer().to_string();
            Certificate {
                self_signed: subject == issuer,
                subject,
                issuer,
                not_before: format_timestamp(cert.validity().not_before.timestamp() * MICROS_PER_SEC),
                not_after: format_timestamp(not_after * MICROS_PER_SEC),
                days_to_expiry: (not_after - now_unix).div_euclid(86_400),
            }
        }
        Err(e) => Certificate {
            subject: format!("(unparseable certificate: {e})"),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            days_to_expiry: 0,
            self_signed: false,
        },
    }
}

/// Whether the leaf certificate is valid for `name` (DNS name or IP address).
pub fn name_matches(leaf: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    webpki::EndEntityCert::try_from(leaf).is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_described_not_dropped() {
        let der = CertificateDer::from(vec![1u8, 2, 3]);
        let d = describe(std::slice::from_ref(&der), 0);
        assert_eq!(d.len(), 1);
        assert!(d[0].subject.contains("unparseable"));
        assert!(!name_matches(&der, &ServerName::try_from("a.example").unwrap()));
    }
}
