//! Redacting a config file for a support bundle. The TOML is parsed and re-serialised (comments are lost,
//! structure and every non-secret value stay): values of keys named like a secret (`*token*`, `*secret*`,
//! `*password*`, `*key*`) are replaced, except paths (`*_file`, `*_path`, and `key`/`cert`/`ca` values that
//! look like a file name: the path helps support, the file itself is never read); any string holding PEM
//! private-key material is replaced wherever it appears. Text that is not TOML is not included at all.

use toml::{Table, Value};

/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";
/// What replaces inline PEM key material (worded so the bundle's "PRIVATE KEY" scan never trips on it).
pub const REDACTED_PEM: &str = "<redacted: inline PEM key material>";

/// The config text with secrets replaced, and how many values were replaced.
pub fn redact_config(text: &str) -> Result<(String, usize), String> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let mut count = 0;
    redact_table(&mut table, &mut count);
    let out = toml::to_string(&table).map_err(|e| format!("cannot re-serialise the config: {e}"))?;
    Ok((out, count))
}

fn redact_table(table: &mut Table, count: &mut usize) {
    for (key, value) in table.iter_mut() {
        redact_value(Some(key), value, count);
    }
}

fn redact_value(key: Option<&str>, value: &mut Value, count: &mut usize) {
    match value {
        Value::String(s) => {
            if is_pem_key(s) {
                *s = REDACTED_PEM.to_owned();
                *count += 1;
            } else if key.is_some_and(|k| secret_name(k) && !looks_like_path(k, s)) {
                *s = REDACTED.to_owned();
                *count += 1;
            }
        }
        Value::Table(t) => redact_table(t, count),
        Value::Array(items) => {
            for item in items {
                redact_value(key, item, count);
            }
        }
        // Numbers, booleans and dates under a secret name are still secrets (a numeric PIN, say).
        other => {
            if key.is_some_and(secret_name) {
                *other = Value::String(REDACTED.to_owned());
                *count += 1;
            }
        }
    }
}

fn is_pem_key(s: &str) -> bool {
    s.contains("PRIVATE KEY") || (s.contains("-----BEGIN") && s.to_ascii_uppercase().contains("KEY"))
}

fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "passwd", "key", "credential"].iter().any(|w| k.contains(w))
}

/// Paths to secrets are kept: `token_file = "admin.token"`, `tls.key = "key.pem"`.
fn looks_like_path(key: &str, value: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let path_key = k.ends_with("_file") || k.ends_with("_path") || k == "key" || k == "key_file";
    path_key && !value.contains('\n') && !value.contains("-----") && value.len() < 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_paths_stay() {
        let text = r#"
[admin]
bind = "127.0.0.1:9901"
token_file = "admin.token"
token = "s3cret"

[[listener]]
name = "public"
tls = { cert = "cert.pem", key = "key.pem" }

[[target_group]]
name = "api"
function = { name = "fn", endpoint = "http://x", region = "r" }
api_key = "abc123"
password = 1234
inline = """
-----BEGIN PRIVATE KEY-----
MIIB
-----END PRIVATE KEY-----
"""
"#;
        let (out, n) = redact_config(text).unwrap();
        assert!(out.contains("admin.token") && out.contains("key.pem") && out.contains("cert.pem"), "{out}");
        assert!(!out.contains("s3cret") && !out.contains("abc123") && !out.contains("1234"), "{out}");
        assert!(!out.contains("PRIVATE KEY") && !out.contains("MIIB"), "{out}");
        assert_eq!(n, 4, "{out}");
    }

    #[test]
    fn inline_pem_under_a_path_key_is_replaced() {
        let (out, _) =
            redact_config("key = \"-----BEGIN EC PRIVATE KEY-----\\nAAAA\\n-----END EC PRIVATE KEY-----\"\n").unwrap();
        assert!(!out.contains("AAAA"), "{out}");
    }

    #[test]
    fn non_toml_is_refused() {
        assert!(redact_config("[[[").is_err());
    }
}
