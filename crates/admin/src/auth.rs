//! Admin authentication: a bearer token read from `[admin] token_file`. When set, every admin endpoint but
//! `/live` and `/ready` (which orchestrator probes call without credentials) needs `Authorization: Bearer
//! <token>`; the comparison takes the same time wherever the first difference is, so the token cannot be
//! guessed byte by byte. Config validation already refuses a non-loopback admin bind without a token file.

use std::path::Path;

/// The configured token.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token file (surrounding whitespace trimmed); an empty or unreadable file is an error naming it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read admin token: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{}: admin token file is empty", path.display()));
        }
        Ok(Self(token.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else { return false };
        constant_time_eq(presented.trim_ascii(), &self.0)
    }
}

/// Equal-length inputs are compared in time independent of their contents (the length itself is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked_exactly() {
        let t = Token(b"s3cret".to_vec());
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(!t.accepts(Some(b"Bearer s3creT")));
        assert!(!t.accepts(Some(b"Bearer s3cre")));
        assert!(!t.accepts(Some(b"s3cret")));
        assert!(!t.accepts(None));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
