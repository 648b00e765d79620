//! Admin authentication: bearer tokens read from `[admin] token_file`. When set, every admin endpoint but
//! `/live` and `/ready` (which orchestrator probes call without credentials) needs `Authorization: Bearer
//! <token>`; the comparison takes the same time wherever the first difference is, so a token cannot be
//! guessed byte by byte. Config validation already refuses a non-loopback admin bind without a token file.
//!
//! A browser cannot send a bearer token, so the dashboard (and the API calls it makes) also accepts the token as
//! the password of HTTP Basic authentication (`Authorization: Basic base64(any-user:TOKEN)`): the browser asks
//! for it once and sends it with every request to the admin origin. Same tokens, same comparison.
//!
//! The file's format is [`TokenFile`]'s: one token per line, `TOKEN` alone (named "admin") or `NAME TOKEN`.
//! The name is the actor the audit log records for that token's changes.

use std::path::Path;

use waygate_config::TokenFile;

/// The configured tokens.
#[derive(Clone)]
pub struct Token(TokenFile);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?}, <redacted>)", self.0.names().collect::<Vec<_>>())
    }
}

impl Token {
    /// Reads the token file ([`TokenFile`]: the same reading as the CLI's and the doctor's); an unreadable
    /// file, one without a token or a malformed line is an error naming the file (and line).
    pub fn load(path: &Path) -> Result<Self, String> {
        TokenFile::load(path).map(Self)
    }

    #[cfg(test)]
    fn parse(text: &str) -> Result<Self, String> {
        TokenFile::parse(text).map(Self)
    }

    /// The name of the token an `Authorization` header value carries, if it carries one of them. Every
    /// token is compared, so the time taken does not say which one came close.
    pub fn identify(&self, header: Option<&[u8]>) -> Option<&str> {
        let header = header?;
        let basic;
        let presented = match (header.strip_prefix(b"Bearer "), header.strip_prefix(b"Basic ")) {
            (Some(token), _) => token.trim_ascii(),
            (None, Some(encoded)) => {
                basic = base64_decode(encoded.trim_ascii())?;
                let colon = basic.iter().position(|b| *b == b':')?;
                &basic[colon + 1..]
            }
            (None, None) => return None,
        };
        let mut found = None;
        for (name, token) in self.0.entries() {
            if constant_time_eq(presented, token.as_bytes()) {
                found = Some(name);
            }
        }
        found
    }
}

/// Standard base64 (RFC 4648, padded or not); `None` for anything else.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let text = text.strip_suffix(b"==").or_else(|| text.strip_suffix(b"=")).unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
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
    fn basic_auth_carries_the_token_as_its_password() {
        let t = Token::parse("alice aaaa\n").unwrap();
        // base64("ops:aaaa"), base64(":aaaa"), base64("ops:aaab")
        assert_eq!(t.identify(Some(b"Basic b3BzOmFhYWE=")), Some("alice"));
        assert_eq!(t.identify(Some(b"Basic OmFhYWE=")), Some("alice"));
        assert_eq!(t.identify(Some(b"Basic b3BzOmFhYWI=")), None);
        assert_eq!(t.identify(Some(b"Basic YWFhYQ==")), None, "no colon: no password");
        assert_eq!(t.identify(Some(b"Basic !!!")), None);
        assert_eq!(base64_decode(b"aGVsbG8").as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn named_tokens_identify_their_holder() {
        let t = Token::parse("# operators\nalice aaaa\n\nci-deploy bbbb\n").unwrap();
        assert_eq!(t.identify(Some(b"Bearer aaaa")), Some("alice"));
        assert_eq!(t.identify(Some(b"Bearer bbbb")), Some("ci-deploy"));
        assert_eq!(t.identify(Some(b"Bearer cccc")), None);
    }
}
