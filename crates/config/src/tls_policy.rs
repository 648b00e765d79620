//! ALB's security policies (`[listener.tls] policy`): the one table of names, TLS versions and cipher suites
//! (OpenSSL names, as ALB lists them and its logs write them), and which of them waygate can serve.
//!
//! waygate's TLS is rustls with the ring provider: TLS 1.2 and 1.3, AEAD suites with ECDHE only (no CBC, no RSA
//! key exchange), no FIPS-validated module and no post-quantum key exchange. A policy is servable when every
//! version it allows is one rustls speaks and each version keeps at least one suite rustls has; the suites it
//! lists that rustls lacks (CBC, RSA key exchange) are then simply not offered (see docs/tls.md). Policies that
//! allow TLS 1.0 or 1.1, need a FIPS module or offer only hybrid post-quantum key exchange are not servable:
//! naming one is a config error that names the servable policy nearest to it.

/// A TLS protocol version a policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

/// One of ALB's security policies.
#[derive(Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    pub name: &'static str,
    /// The versions it allows, oldest first.
    pub versions: &'static [TlsVersion],
    /// Its cipher suites in ALB's order of preference (OpenSSL names; TLS 1.3 suites by their IANA names).
    pub ciphers: &'static [&'static str],
    /// `None`: servable. `Some((why, nearest))`: why waygate cannot serve it, and the servable policy nearest
    /// to it.
    pub unservable: Option<(&'static str, &'static str)>,
}

/// ALB's default for listeners created in the console, and waygate's when `policy` is not set.
pub const DEFAULT_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// The TLS 1.3 suites (all three: rustls has them all).
const TLS13: [&str; 3] = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

/// The TLS 1.2 ECDHE AEAD suites: the only TLS 1.2 suites of ALB's that rustls serves.
const ECDHE_GCM: [&str; 4] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
];

use TlsVersion::{Tls10, Tls11, Tls12, Tls13};

const V12_13: &[TlsVersion] = &[Tls12, Tls13];
const V10_13: &[TlsVersion] = &[Tls10, Tls11, Tls12, Tls13];
const V11_13: &[TlsVersion] = &[Tls11, Tls12, Tls13];
const V10_12: &[TlsVersion] = &[Tls10, Tls11, Tls12];
const V11_12: &[TlsVersion] = &[Tls11, Tls12];

/// ALB's default policy's ciphers (TLS 1.3, then ECDHE with GCM and with SHA-2 CBC).
const TLS13_1_2: &[&str] = &[
    TLS13[0],
    TLS13[1],
    TLS13[2],
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
];

/// `ELBSecurityPolicy-2016-08`'s ciphers, which the "Ext" policies keep at TLS 1.2.
const CLASSIC: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];

/// The TLS 1.3 policies' "Ext2" and 1.0/1.1 ciphers: TLS 1.3 then the classic list.
const TLS13_CLASSIC: &[&str] = &[
    TLS13[0],
    TLS13[1],
    TLS13[2],
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];

/// "Ext1": TLS 1.3, ECDHE (GCM and SHA-2 CBC), then RSA key exchange with SHA-2.
const TLS13_EXT1: &[&str] = &[
    TLS13[0],
    TLS13[1],
    TLS13[2],
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
];

const TLS13_RES: &[&str] = &[TLS13[0], TLS13[1], TLS13[2], ECDHE_GCM[0], ECDHE_GCM[1], ECDHE_GCM[2], ECDHE_GCM[3]];

/// `ELBSecurityPolicy-TLS-1-2-2017-01`: TLS 1.2, SHA-2 only.
const TLS12_2017: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
];

/// The forward-secrecy policies: ECDHE only.
const FS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
];

const FS_RES_2019: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
];

const OLD_TLS: &str = "it allows TLS 1.0 or 1.1, which waygate (rustls) does not speak";
const OLD_TLS11: &str = "it allows TLS 1.1, which waygate (rustls) does not speak";
const FIPS: &str = "it needs a FIPS 140-validated TLS module, which waygate's build does not have";
const PQ: &str = "it offers hybrid post-quantum key exchange (ML-KEM), which waygate's TLS provider does not have";

const fn servable(name: &'static str, versions: &'static [TlsVersion], ciphers: &'static [&'static str]) -> TlsPolicy {
    TlsPolicy { name, versions, ciphers, unservable: None }
}

const fn not(
    name: &'static str,
    versions: &'static [TlsVersion],
    ciphers: &'static [&'static str],
    why: &'static str,
    nearest: &'static str,
) -> TlsPolicy {
    TlsPolicy { name, versions, ciphers, unservable: Some((why, nearest)) }
}

/// Every policy waygate knows, servable first.
pub static POLICIES: &[TlsPolicy] = &[
    servable("ELBSecurityPolicy-TLS13-1-2-2021-06", V12_13, TLS13_1_2),
    servable("ELBSecurityPolicy-TLS13-1-2-Res-2021-06", V12_13, TLS13_RES),
    servable("ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", V12_13, TLS13_EXT1),
    servable("ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", V12_13, TLS13_CLASSIC),
    servable("ELBSecurityPolicy-TLS13-1-3-2021-06", &[Tls13], &TLS13),
    servable("ELBSecurityPolicy-TLS-1-2-2017-01", &[Tls12], TLS12_2017),
    servable("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", &[Tls12], CLASSIC),
    servable("ELBSecurityPolicy-FS-1-2-2019-08", &[Tls12], FS),
    servable("ELBSecurityPolicy-FS-1-2-Res-2019-08", &[Tls12], FS_RES_2019),
    servable("ELBSecurityPolicy-FS-1-2-Res-2020-10", &[Tls12], &ECDHE_GCM),
    not(
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        V11_13,
        TLS13_CLASSIC,
        OLD_TLS11,
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    ),
    not(
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        V10_13,
        TLS13_CLASSIC,
        OLD_TLS,
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    ),
    not("ELBSecurityPolicy-2016-08", V10_12, CLASSIC, OLD_TLS, "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"),
    not("ELBSecurityPolicy-2015-05", V10_12, CLASSIC, OLD_TLS, "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"),
    not("ELBSecurityPolicy-TLS-1-0-2015-04", V10_12, CLASSIC, OLD_TLS, "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"),
    not("ELBSecurityPolicy-TLS-1-1-2017-01", V11_12, CLASSIC, OLD_TLS11, "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"),
    not("ELBSecurityPolicy-FS-2018-06", V10_12, FS, OLD_TLS, "ELBSecurityPolicy-FS-1-2-2019-08"),
    not("ELBSecurityPolicy-FS-1-1-2019-08", V11_12, FS, OLD_TLS11, "ELBSecurityPolicy-FS-1-2-2019-08"),
    not("ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", &[Tls13], &TLS13, FIPS, "ELBSecurityPolicy-TLS13-1-3-2021-06"),
    not("ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04", V12_13, TLS13_1_2, FIPS, "ELBSecurityPolicy-TLS13-1-2-2021-06"),
    not(
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        V12_13,
        TLS13_RES,
        FIPS,
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    ),
    not("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", V12_13, TLS13_RES, PQ, "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"),
    not("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09", &[Tls13], &TLS13, PQ, "ELBSecurityPolicy-TLS13-1-3-2021-06"),
];

/// What naming a policy gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Servable(&'static TlsPolicy),
    /// Known, not servable: why, and the nearest servable policy.
    Unservable(&'static TlsPolicy, &'static str, &'static TlsPolicy),
    /// Not a policy waygate knows: the servable one whose name is nearest.
    Unknown(&'static TlsPolicy),
}

/// The policy named `name` (exactly, as ALB's API takes it).
pub fn lookup(name: &str) -> Lookup {
    match POLICIES.iter().find(|p| p.name == name) {
        Some(p) => match p.unservable {
            None => Lookup::Servable(p),
            Some((why, nearest)) => Lookup::Unservable(p, why, servable_named(nearest)),
        },
        None => Lookup::Unknown(nearest_by_name(name)),
    }
}

/// The servable policy called `name`; the table names only servable policies as nearest (a test holds it).
fn servable_named(name: &str) -> &'static TlsPolicy {
    POLICIES.iter().find(|p| p.name == name && p.unservable.is_none()).unwrap_or(&POLICIES[0])
}

/// The servable policy whose name is fewest edits from `name` (case-insensitively), the default on a tie.
fn nearest_by_name(name: &str) -> &'static TlsPolicy {
    let lower = name.to_ascii_lowercase();
    POLICIES
        .iter()
        .filter(|p| p.unservable.is_none())
        .min_by_key(|p| edits(&lower, &p.name.to_ascii_lowercase()))
        .unwrap_or(&POLICIES[0])
}

/// Levenshtein distance over bytes.
fn edits(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_default_is_servable() {
        for (i, p) in POLICIES.iter().enumerate() {
            assert!(POLICIES[..i].iter().all(|q| q.name != p.name), "{} twice", p.name);
        }
        assert!(matches!(lookup(DEFAULT_POLICY), Lookup::Servable(p) if p.name == DEFAULT_POLICY));
    }

    #[test]
    fn every_unservable_policy_points_at_a_servable_one() {
        for p in POLICIES.iter().filter(|p| p.unservable.is_some()) {
            let (_, nearest) = p.unservable.unwrap();
            assert!(
                POLICIES.iter().any(|q| q.name == nearest && q.unservable.is_none()),
                "{} points at {nearest}",
                p.name
            );
        }
    }

    #[test]
    fn unknown_names_get_the_nearest_servable_name() {
        let Lookup::Unknown(p) = lookup("ELBSecurityPolicy-TLS13-1-3-2021-07") else { panic!() };
        assert_eq!(p.name, "ELBSecurityPolicy-TLS13-1-3-2021-06");
        let Lookup::Unknown(p) = lookup("elbsecuritypolicy-fs-1-2-res-2020-10") else { panic!() };
        assert_eq!(p.name, "ELBSecurityPolicy-FS-1-2-Res-2020-10");
        assert_eq!(edits("kitten", "sitting"), 3);
    }

    #[test]
    fn policies_with_old_versions_are_not_servable() {
        for p in POLICIES {
            let old = p.versions.iter().any(|v| *v < Tls12);
            assert!(!old || p.unservable.is_some(), "{} allows TLS < 1.2", p.name);
        }
    }
}
