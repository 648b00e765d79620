//! What a client certificate tells targets and the connection log, in ALB's forms: the subject and issuer as
//! RFC 4514 names (`CN=client,O=Example,C=US`, most specific first), the serial number in upper-case hex,
//! the validity as `NotBefore=...;NotAfter=...`, and certificates as URL-encoded PEM (ALB keeps `+`, `=` and
//! `/` as they are). In `verify` mode targets get the leaf's fields (`X-Amzn-Mtls-Clientcert-Serial-Number`,
//! `-Issuer`, `-Subject`, `-Validity`, `-Leaf`), in `passthrough` the whole chain (`X-Amzn-Mtls-Clientcert`).

use std::time::{Duration, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{X509Certificate, X509Name};

pub static CLIENTCERT: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert");
pub static SERIAL_NUMBER: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-serial-number");
pub static ISSUER: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-issuer");
pub static SUBJECT: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-subject");
pub static VALIDITY: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-validity");
pub static LEAF: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-leaf");

/// The fields of a client's leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// Upper-case hex, no separators.
    pub serial: String,
    /// `NotBefore=2024-01-02T19:17:20Z;NotAfter=2024-04-02T19:17:20Z`
    pub validity: String,
}

impl Leaf {
    /// `None` when the certificate is not X.509 a parser can read (rustls then refuses it anyway).
    pub fn of(der: &CertificateDer<'_>) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Self::from_parsed(&cert))
    }

    fn from_parsed(cert: &X509Certificate<'_>) -> Self {
        let raw = cert.raw_serial();
        let significant = raw.iter().position(|b| *b != 0).map_or(&raw[raw.len().saturating_sub(1)..], |i| &raw[i..]);
        let serial = significant.iter().map(|b| format!("{b:02X}")).collect();
        let v = cert.validity();
        let validity = format!("NotBefore={};NotAfter={}", utc(v.not_before.timestamp()), utc(v.not_after.timestamp()));
        Self { subject: rfc4514(cert.subject()), issuer: rfc4514(cert.issuer()), serial, validity }
    }
}

/// `2024-04-02T19:17:20Z`.
fn utc(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs());
    // ISO 8601 with microseconds, less them: ALB writes validity to the second.
    let mut s = waygate_telemetry::iso8601(t);
    s.truncate(19);
    s.push('Z');
    s
}

/// A distinguished name as RFC 4514 writes it: the last RDN first, attributes by their short names.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter().collect();
    for rdn in rdns.into_iter().rev() {
        for (i, attr) in rdn.iter().enumerate() {
            if !out.is_empty() {
                out.push(if i == 0 { ',' } else { '+' });
            }
            let oid = attr.attr_type();
            let short = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry()).ok();
            match short {
                Some(s) => out.push_str(s),
                None => out.push_str(&oid.to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(value) => escape_into(value, &mut out),
                Err(_) => {
                    out.push('#');
                    attr.attr_value().data.iter().for_each(|b| out.push_str(&format!("{b:02x}")));
                }
            }
        }
    }
    out
}

fn escape_into(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Certificates as PEM, URL-encoded as ALB sends them (unreserved characters and `+`, `=`, `/` kept).
pub fn url_encoded_pem(chain: &[CertificateDer<'_>]) -> String {
    let mut out = String::new();
    for cert in chain {
        let pem = pem_of(cert);
        for b in pem.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b'/') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn pem_of(cert: &CertificateDer<'_>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", cert.as_ref()), config)
}

/// The headers a connection's requests carry to targets: the leaf's fields (`verify`) or the chain
/// (`passthrough`). A value that is not a valid header value (a name with control characters) is left out.
pub fn headers(chain: &[CertificateDer<'_>], passthrough: bool) -> Vec<(HeaderName, HeaderValue)> {
    let Some(first) = chain.first() else { return Vec::new() };
    let mut out = Vec::new();
    let mut push = |name: &HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((name.clone(), v));
        }
    };
    if passthrough {
        push(&CLIENTCERT, url_encoded_pem(chain));
        return out;
    }
    if let Some(leaf) = Leaf::of(first) {
        push(&SERIAL_NUMBER, leaf.serial);
        push(&ISSUER, leaf.issuer);
        push(&SUBJECT, leaf.subject);
        push(&VALIDITY, leaf.validity);
    }
    push(&LEAF, url_encoded_pem(std::slice::from_ref(first)));
    out
}

/// On a listener with mutual TLS, the request toward a target carries the connection's certificate headers,
/// never the client's own copies of them (which would let a client claim any certificate).
pub fn forward(headers: &mut http::HeaderMap, connection: &[(HeaderName, HeaderValue)]) {
    let forged: Vec<HeaderName> =
        headers.keys().filter(|n| n.as_str().starts_with("x-amzn-mtls-clientcert")).cloned().collect();
    for name in forged {
        headers.remove(name);
    }
    for (name, value) in connection {
        headers.append(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_is_url_encoded_as_alb_sends_it() {
        let enc = url_encoded_pem(&[CertificateDer::from(b"foobar".to_vec())]);
        assert_eq!(enc, "-----BEGIN%20CERTIFICATE-----%0AZm9vYmFy%0A-----END%20CERTIFICATE-----%0A");
    }

    #[test]
    fn escaping_follows_rfc4514() {
        let mut s = String::new();
        escape_into("Company, LLC", &mut s);
        assert_eq!(s, "Company\\, LLC");
        s.clear();
        escape_into(" #x ", &mut s);
        assert_eq!(s, "\\ #x\\ ");
    }
}
