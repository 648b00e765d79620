//! A listener's `tls` -> [`model::ListenerTls`]: one certificate (`cert`, `key`) or a list of them
//! (`certificates`, at most ALB's 26), ALB's security policy by name, mutual TLS in ALB's modes. When the
//! caller asked for files to be read ([`Checker::files`]), each certificate and key and the trust store are
//! read as the data plane will read them, and a reason (unreadable, not PEM, key mismatch, expired) is an
//! error at the entry that names the file.

use std::time::SystemTime;

use serde_spanned::Spanned;

use super::check::Checker;
use crate::file;
use crate::model::{CertificateFiles, ListenerTls, MutualAuthentication};
use crate::tls_files;
use crate::tls_policy::{self, Lookup};

/// ALB's limit: the default certificate and 25 more.
pub const MAX_CERTIFICATES: usize = 26;

pub(super) fn listener_tls(c: &mut Checker<'_>, ctx: &str, written: &Spanned<file::ListenerTls>) -> ListenerTls {
    let t = written.get_ref();
    let certificates = certificates(c, ctx, written);
    let policy = match &t.policy {
        None => tls_policy::POLICIES
            .iter()
            .find(|p| p.name == tls_policy::DEFAULT_POLICY)
            .unwrap_or(&tls_policy::POLICIES[0]),
        Some(name) => match tls_policy::lookup(name.get_ref()) {
            Lookup::Servable(p) => p,
            Lookup::Unservable(p, why, nearest) => {
                let msg = format!(
                    "{ctx}: tls.policy {:?} cannot be served: {why}; the nearest servable policy is {:?}",
                    p.name, nearest.name
                );
                c.error(name.span(), msg);
                nearest
            }
            Lookup::Unknown(nearest) => {
                let msg = format!(
                    "{ctx}: tls.policy {:?} is not an ALB security policy waygate knows; the nearest servable one is {:?}",
                    name.get_ref(),
                    nearest.name
                );
                c.error(name.span(), msg);
                nearest
            }
        },
    };
    let mutual_authentication = match &t.mutual_authentication {
        None => MutualAuthentication::Off,
        Some(m) => mutual(c, ctx, m),
    };
    ListenerTls { certificates, policy, mutual_authentication }
}

fn certificates(c: &mut Checker<'_>, ctx: &str, written: &Spanned<file::ListenerTls>) -> Vec<CertificateFiles> {
    let t = written.get_ref();
    let entries: Vec<(std::ops::Range<usize>, &Spanned<String>, &Spanned<String>)> = match (
        &t.cert,
        &t.key,
        &t.certificates,
    ) {
        (Some(cert), Some(key), None) => vec![(cert.span(), cert, key)],
        (None, None, Some(list)) => {
            if list.get_ref().is_empty() {
                c.error(list.span(), format!("{ctx}: tls.certificates must list at least one {{ cert, key }}"));
            } else if list.get_ref().len() > MAX_CERTIFICATES {
                let n = list.get_ref().len();
                c.error(list.span(), format!("{ctx}: tls.certificates lists {n}; ALB allows at most {MAX_CERTIFICATES} (the default and 25 more)"));
            }
            list.get_ref().iter().map(|e| (e.span(), &e.get_ref().cert, &e.get_ref().key)).collect()
        }
        (None, None, None) => {
            c.error(written.span(), format!("{ctx}: tls needs cert and key, or certificates = [{{ cert, key }}, ...]"));
            Vec::new()
        }
        (_, _, Some(list)) => {
            c.error(list.span(), format!("{ctx}: set tls.cert and tls.key, or tls.certificates, not both"));
            Vec::new()
        }
        (Some(cert), None, None) => {
            c.error(cert.span(), format!("{ctx}: tls.cert is set without tls.key"));
            Vec::new()
        }
        (None, Some(key), None) => {
            c.error(key.span(), format!("{ctx}: tls.key is set without tls.cert"));
            Vec::new()
        }
    };
    let now = SystemTime::now();
    let mut out = Vec::with_capacity(entries.len());
    for (i, (span, cert, key)) in entries.into_iter().enumerate() {
        let files = CertificateFiles { cert: c.path(ctx, "tls.cert", cert), key: c.path(ctx, "tls.key", key) };
        if c.files {
            let problem = match tls_files::read_identity(&files.cert, &files.key) {
                Err(reason) => Some(reason),
                Ok(identity) => identity.invalid_at(now).map(|r| format!("{}: {r}", files.cert.display())),
            };
            if let Some(reason) = problem {
                c.error(span, format!("{ctx}: tls certificate #{}: {reason}", i + 1));
            }
        }
        out.push(files);
    }
    out
}

fn mutual(c: &mut Checker<'_>, ctx: &str, written: &Spanned<file::MutualAuthentication>) -> MutualAuthentication {
    let m = written.get_ref();
    let ignore = m.ignore_client_certificate_expiry.as_ref();
    let mode = *m.mode.get_ref();
    if mode != file::MtlsMode::Verify {
        if let Some(store) = &m.trust_store {
            c.error(
                store.span(),
                format!("{ctx}: mutual_authentication.trust_store is used only with mode = \"verify\""),
            );
        }
        if let Some(ignore) = ignore {
            c.error(
                ignore.span(),
                format!(
                    "{ctx}: mutual_authentication.ignore_client_certificate_expiry is used only with mode = \"verify\""
                ),
            );
        }
    }
    match mode {
        file::MtlsMode::Off => MutualAuthentication::Off,
        file::MtlsMode::Passthrough => MutualAuthentication::Passthrough,
        file::MtlsMode::Verify => {
            let Some(store) = &m.trust_store else {
                c.error(
                    m.mode.span(),
                    format!("{ctx}: mutual_authentication mode \"verify\" needs trust_store = \"ca.pem\""),
                );
                return MutualAuthentication::Off;
            };
            let trust_store = c.path(ctx, "mutual_authentication.trust_store", store);
            if c.files
                && let Err(reason) = tls_files::read_trust_store(&trust_store)
            {
                c.error(store.span(), format!("{ctx}: mutual_authentication.trust_store: {reason}"));
            }
            let ignore_client_certificate_expiry = ignore.is_some_and(|i| *i.get_ref());
            MutualAuthentication::Verify { trust_store, ignore_client_certificate_expiry }
        }
    }
}
