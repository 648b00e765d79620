//! Admin authentication: bearer tokens read from `[admin] token_file`. When set, every admin endpoint but
//! `/live` and `/ready` (which orchestrator probes call without credentials) needs `Authorization: Bearer
//! <token>`; the comparison takes the same time wherever the first difference is, so a token cannot be
//! guessed byte by byte. Config validation already refuses a non-loopback admin bind without a token file.
//!
//! The file holds one token per line: `TOKEN` alone (named "admin") or `NAME TOKEN`; blank lines and `#`
//! comments are skipped. The name is the actor the audit log records for that token's changes.

use std::path::Path;

/// The configured tokens.
#[derive(Clone)]
pub struct Token(Vec<(String, Vec<u8>)>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Token({names:?}, <redacted>)")
    }
}

impl Token {
    /// Reads the token file; an unreadable file, one without a token or a malformed line is an error naming
    /// the file (and line).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read admin token: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, token) = match fields[..] {
                [token] => ("admin", token),
                [name, token] => (name, token),
                _ => return Err(format!("line {}: expected `TOKEN` or `NAME TOKEN`", n + 1)),
            };
            if tokens.iter().any(|(existing, _)| existing == name) {
                return Err(format!("line {}: token name {name:?} is used twice", n + 1));
            }
            tokens.push((name.to_owned(), token.as_bytes().to_vec()));
        }
        if tokens.is_empty() {
            return Err("admin token file holds no token".to_owned());
        }
        Ok(Self(tokens))
    }

    /// The name of the token an `Authorization` header value carries, if it carries one of them. Every
    /// token is compared, so the time taken does not say which one came close.
    pub fn identify(&self, header: Option<&[u8]>) -> Option<&str> {
        let presented = header.and_then(|h| h.strip_prefix(b"Bearer "))?.trim_ascii();
        let mut found = None;
        for (name, token) in &self.0 {
            if constant_time_eq(presented, token) {
                found = Some(name.as_str());
            }
        }
        found
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
        let t = Token::parse("s3cret\n").unwrap();
        assert!(t.identify(Some(b"Bearer s3cret")).is_some());
        assert!(t.identify(Some(b"Bearer s3creT")).is_none());
        assert!(t.identify(Some(b"Bearer s3cre")).is_none());
        assert!(t.identify(Some(b"s3cret")).is_none());
        assert!(t.identify(None).is_none());
        assert_eq!(t.identify(Some(b"Bearer s3cret")), Some("admin"));
        assert_eq!(format!("{t:?}"), "Token([\"admin\"], <redacted>)");
    }

    #[test]
    fn named_tokens_identify_their_holder() {
        let t = Token::parse("# operators\nalice aaaa\n\nci-deploy bbbb\n").unwrap();
        assert_eq!(t.identify(Some(b"Bearer aaaa")), Some("alice"));
        assert_eq!(t.identify(Some(b"Bearer bbbb")), Some("ci-deploy"));
        assert_eq!(t.identify(Some(b"Bearer cccc")), None);
    }

    #[test]
    fn bad_token_files_say_where() {
        assert_eq!(Token::parse("\n# nothing\n").unwrap_err(), "admin token file holds no token");
        assert_eq!(Token::parse("a b c\n").unwrap_err(), "line 1: expected `TOKEN` or `NAME TOKEN`");
        assert_eq!(Token::parse("x 1\nx 2\n").unwrap_err(), "line 2: token name \"x\" is used twice");
    }
}
