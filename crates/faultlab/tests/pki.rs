//! Test PKI: identities and files.

use waygate_faultlab::TestPki;

#[test]
fn write_files_writes_pem_files() {
    let pki = TestPki::new();
    let dir = std::env::temp_dir().join(format!("faultlab-pki-{}", std::process::id()));
    let files = pki.write_files(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(&files.ca).unwrap(), pki.ca_pem());
    assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    for (cf, id) in [
        (&files.valid, pki.valid()),
        (&files.self_signed, pki.self_signed()),
        (&files.expired, pki.expired()),
        (&files.wrong_name, pki.wrong_name()),
    ] {
        assert_eq!(std::fs::read_to_string(&cf.cert).unwrap(), id.cert_pem());
        let key = std::fs::read_to_string(&cf.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        // The config can be built from the identity (matching key and certificate).
        let _ = id.server_config();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shared_pki_is_one_instance() {
    assert_eq!(TestPki::shared().ca_pem(), TestPki::shared().ca_pem());
    assert_ne!(TestPki::shared().ca_pem(), TestPki::new().ca_pem());
}
