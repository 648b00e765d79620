//! TLS alert names and numbers (RFC 8446 §6 and the IANA TLS Alerts registry), so `Proxy-Status` can carry
//! RFC 9209's `alert-id` (the number) and `alert-message` (the canonical name) whatever spelling the TLS
//! library used: `handshake_failure`, `HandshakeFailure` and `handshake-failure` are the same alert.

const ALERTS: &[(u8, &str)] = &[
    (0, "close_notify"),
    (10, "unexpected_message"),
    (20, "bad_record_mac"),
    (21, "decryption_failed"),
    (22, "record_overflow"),
    (30, "decompression_failure"),
    (40, "handshake_failure"),
    (41, "no_certificate"),
    (42, "bad_certificate"),
    (43, "unsupported_certificate"),
    (44, "certificate_revoked"),
    (45, "certificate_expired"),
    (46, "certificate_unknown"),
    (47, "illegal_parameter"),
    (48, "unknown_ca"),
    (49, "access_denied"),
    (50, "decode_error"),
    (51, "decrypt_error"),
    (60, "export_restriction"),
    (70, "protocol_version"),
    (71, "insufficient_security"),
    (80, "internal_error"),
    (86, "inappropriate_fallback"),
    (90, "user_canceled"),
    (100, "no_renegotiation"),
    (109, "missing_extension"),
    (110, "unsupported_extension"),
    (111, "certificate_unobtainable"),
    (112, "unrecognized_name"),
    (113, "bad_certificate_status_response"),
    (114, "bad_certificate_hash_value"),
    (115, "unknown_psk_identity"),
    (116, "certificate_required"),
    (120, "no_application_protocol"),
    (121, "ech_required"),
];

/// The alert number for an alert name in any of the usual spellings (case and `_`/`-` ignored).
pub fn tls_alert_id(name: &str) -> Option<u8> {
    let wanted = normalize(name);
    ALERTS.iter().find(|(_, n)| normalize(n) == wanted).map(|(id, _)| *id)
}

/// The canonical (RFC 8446) name of an alert number.
pub fn tls_alert_name(id: u8) -> Option<&'static str> {
    ALERTS.iter().find(|(n, _)| *n == id).map(|(_, name)| *name)
}

fn normalize(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect()
}
