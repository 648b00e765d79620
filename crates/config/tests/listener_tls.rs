//! `[listener.tls]`: certificates (one, or a list chosen by SNI), ALB security policies, mutual TLS, and the
//! files read by `check-config` (`load_checked`), each problem at the config entry with the reason.

mod common;

use std::path::{Path, PathBuf};

use common::{LISTENER, errors, ok, one};
use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use waygate_config::{MutualAuthentication, load_checked, parse_checked};

const HTTPS: &str = "[[listener]]\nbind = \"127.0.0.1:8443\"\nprotocol = \"https\"\n";

#[test]
fn one_certificate_or_a_list_the_first_being_the_default() {
    let single = ok(&format!("{HTTPS}tls = {{ cert = \"a.pem\", key = \"a.key\" }}\n"));
    let tls = single.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(tls.policy.name, "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert_eq!(tls.mutual_authentication, MutualAuthentication::Off);
    let list = ok(&format!(
        "{HTTPS}[listener.tls]\ncertificates = [{{ cert = \"a.pem\", key = \"a.key\" }}, {{ cert = \"b.pem\", key = \"b.key\" }}]\n\
         policy = \"ELBSecurityPolicy-TLS13-1-3-2021-06\"\n\
         mutual_authentication = {{ mode = \"verify\", trust_store = \"ca.pem\", ignore_client_certificate_expiry = true }}\n"
    ));
    let tls = list.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certificates[1].cert, PathBuf::from("b.pem"));
    assert_eq!(tls.policy.name, "ELBSecurityPolicy-TLS13-1-3-2021-06");
    assert_eq!(
        tls.mutual_authentication,
        MutualAuthentication::Verify { trust_store: "ca.pem".into(), ignore_client_certificate_expiry: true }
    );
    let pass = ok(&format!(
        "{HTTPS}tls = {{ cert = \"a\", key = \"b\", mutual_authentication = {{ mode = \"passthrough\" }} }}\n"
    ));
    assert_eq!(pass.listeners[0].tls.as_ref().unwrap().mutual_authentication, MutualAuthentication::Passthrough);
}

#[test]
fn certificate_settings_that_do_not_fit_are_errors_where_written() {
    one(&format!("{HTTPS}tls = {{ cert = \"a\" }}\n"), 4, 16, "tls.cert is set without tls.key");
    one(
        &format!("{HTTPS}tls = {{ cert = \"a\", key = \"b\", certificates = [{{ cert = \"c\", key = \"d\" }}] }}\n"),
        4,
        47,
        "not both",
    );
    one(&format!("{HTTPS}tls = {{ certificates = [] }}\n"), 4, 24, "at least one");
    one(
        &format!("{HTTPS}tls = {{ policy = \"ELBSecurityPolicy-TLS13-1-3-2021-06\" }}\n"),
        4,
        7,
        "tls needs cert and key, or certificates",
    );
    let many: Vec<String> = (0..27).map(|i| format!("{{ cert = \"{i}\", key = \"{i}\" }}")).collect();
    one(&format!("{HTTPS}tls = {{ certificates = [{}] }}\n", many.join(", ")), 4, 24, "at most 26");
    one(
        &format!("{HTTPS}tls = {{ cert = \"a\", key = \"b\", client_ca = \"x\" }}\n"),
        4,
        32,
        "unknown key `client_ca`",
    );
}

#[test]
fn policies_are_alb_names_and_unservable_ones_name_the_nearest_servable() {
    let tls = |policy: &str| format!("{HTTPS}tls = {{ cert = \"a\", key = \"b\", policy = \"{policy}\" }}\n");
    one(
        &tls("ELBSecurityPolicy-2016-08"),
        4,
        41,
        "cannot be served: it allows TLS 1.0 or 1.1, which waygate (rustls) does not speak; the nearest servable policy is \"ELBSecurityPolicy-TLS-1-2-Ext-2018-06\"",
    );
    one(
        &tls("ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04"),
        4,
        41,
        "nearest servable policy is \"ELBSecurityPolicy-TLS13-1-2-Res-2021-06\"",
    );
    one(
        &tls("ELBSecurityPolicy-TLS13-1-3-2021-6"),
        4,
        41,
        "the nearest servable one is \"ELBSecurityPolicy-TLS13-1-3-2021-06\"",
    );
    for servable in ["ELBSecurityPolicy-FS-1-2-Res-2020-10", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"] {
        assert_eq!(ok(&tls(servable)).listeners[0].tls.as_ref().unwrap().policy.name, servable);
    }
}

#[test]
fn mutual_authentication_modes_take_their_own_keys() {
    let mtls = |m: &str| format!("{HTTPS}tls = {{ cert = \"a\", key = \"b\", mutual_authentication = {{ {m} }} }}\n");
    one(&mtls("mode = \"verify\""), 4, 65, "mode \"verify\" needs trust_store");
    one(
        &mtls("mode = \"passthrough\", trust_store = \"ca.pem\""),
        4,
        94,
        "trust_store is used only with mode = \"verify\"",
    );
    one(&mtls("mode = \"off\", ignore_client_certificate_expiry = true"), 4, 107, "used only with mode = \"verify\"");
    let e = errors(&mtls("mode = \"strict\""));
    assert!(e[0].message.contains("unknown variant `strict`"), "{}", e[0]);
}

#[test]
fn connection_log_takes_a_directory() {
    let config = ok(&format!("[connection_log]\ndir = \"/var/log/waygate/conn\"\n{LISTENER}"));
    assert_eq!(config.connection_log.unwrap().dir, PathBuf::from("/var/log/waygate/conn"));
    assert_eq!(ok(LISTENER).connection_log, None);
    one(&format!("[connection_log]\ngzip = true\n{LISTENER}"), 2, 1, "unknown key `gzip`");
}

/// A self-signed certificate for `name` valid in `years`, written as `file.crt` and `file.key`.
fn write_cert(dir: &Path, file: &str, name: &str, years: (i32, i32)) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.not_before = date_time_ymd(years.0, 1, 1);
    params.not_after = date_time_ymd(years.1, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("waygate-config-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// check-config reads every certificate and key: each unusable pair is an error at its entry (line and
/// column of the `{ cert, key }`), naming the file and the reason.
#[test]
fn check_config_reads_the_files_and_says_what_is_wrong_with_each() {
    let dir = tempdir("tlsfiles");
    write_cert(&dir, "good", "a.test", (2020, 2090));
    write_cert(&dir, "old", "b.test", (2010, 2011));
    write_cert(&dir, "other", "c.test", (2020, 2090));
    std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
    let entry = |c: &str, k: &str| format!("{{ cert = \"{c}\", key = \"{k}\" }}");
    let text = format!(
        "{HTTPS}[listener.tls]\ncertificates = [\n  {},\n  {},\n  {},\n  {},\n  {},\n]\n\
         mutual_authentication = {{ mode = \"verify\", trust_store = \"garbage.pem\" }}\n",
        entry("good.crt", "good.key"),
        entry("missing.crt", "good.key"),
        entry("garbage.pem", "good.key"),
        entry("good.crt", "other.key"),
        entry("old.crt", "old.key"),
    );
    let config_file = dir.join("waygate.toml");
    std::fs::write(&config_file, &text).unwrap();
    let e = load_checked(&config_file).expect_err("bad files").0;
    let found: Vec<(usize, usize, &str)> = e.iter().map(|e| (e.line, e.col, e.message.as_str())).collect();
    assert_eq!(found.len(), 5, "{found:#?}");
    let expect = [
        (7, 3, "tls certificate #2: "),
        (8, 3, "tls certificate #3: "),
        (9, 3, "tls certificate #4: "),
        (10, 3, "tls certificate #5: "),
        (12, 58, "mutual_authentication.trust_store: "),
    ];
    let reasons = [
        "missing.crt: cannot read the certificate file",
        "garbage.pem: not PEM: no CERTIFICATE block",
        "other.key: the private key does not match the certificate",
        "old.crt: the certificate expired on Jan  1 00:00:00 2011",
        "garbage.pem: not PEM: no CERTIFICATE block (the trust store holds CA certificates)",
    ];
    for ((line, col, prefix), reason) in expect.iter().zip(reasons) {
        let hit = found
            .iter()
            .find(|(l, c, _)| (l, c) == (line, col))
            .unwrap_or_else(|| panic!("{line}:{col} in {found:#?}"));
        assert!(hit.2.contains(prefix) && hit.2.contains(reason), "{line}:{col}: {}", hit.2);
    }
    // The same file without the bad entries passes, and parse (no files read) never looks at them.
    assert!(waygate_config::parse(&text, &config_file).is_ok());
    let fine = format!("{HTTPS}tls = {{ cert = \"good.crt\", key = \"good.key\" }}\n");
    assert!(parse_checked(&fine, &config_file).is_ok());
}

/// The client certificate causes refuse handshakes, not requests: an alert rule, which counts exchanges, could
/// never see them, so naming one is an error that points at the metric.
#[test]
fn alerts_cannot_name_handshake_causes() {
    let text =
        format!("{LISTENER}[[alert]]\nname = \"a\"\nthreshold = 1\nwhen = {{ cause = [\"ClientCertUntrusted\"] }}\n");
    one(&text, 6, 19, "alert on waygate_client_tls_negotiation_errors_total{cause=\"ClientCertUntrusted\"}");
}
