//! The admin token file (`[admin] token_file`), read the same way by the gateway that checks tokens, the CLI
//! that sends one (`waygate targets ...`) and `waygate doctor bundle`, so a file the gateway refuses is refused
//! everywhere with the same words, and the token a client sends is the one the gateway would accept.
//!
//! One token per line: `TOKEN` alone (named "admin") or `NAME TOKEN`; blank lines and `#` comments are
//! skipped. The name is the actor the audit log records for that token's changes. Errors name the line.

use std::path::Path;

/// The tokens of one file, in file order, each with its holder's name.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenFile(Vec<(String, String)>);

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenFile({:?}, <redacted>)", self.names().collect::<Vec<_>>())
    }
}

impl TokenFile {
    /// Reads the file; an unreadable file, one without a token or a malformed line is an error naming the
    /// file (and line).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read admin token: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens: Vec<(String, String)> = Vec::new();
        for (n, line) in lines(text) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, token) = match fields[..] {
                [token] => ("admin", token),
                [name, token] => (name, token),
                _ => return Err(format!("line {}: expected `TOKEN` or `NAME TOKEN`", n + 1)),
            };
            if tokens.iter().any(|(existing, _)| existing == name) {
                return Err(format!("line {}: token name {name:?} is used twice", n + 1));
            }
            tokens.push((name.to_owned(), token.to_owned()));
        }
        if tokens.is_empty() {
            return Err("admin token file holds no token".to_owned());
        }
        Ok(Self(tokens))
    }

    /// The first token: the one clients send.
    pub fn first(&self) -> &str {
        self.0.first().map_or("", |(_, t)| t.as_str())
    }

    /// `(name, token)` pairs in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Every word of a token file's token lines, for scrubbing when the file could not be parsed: which of
    /// them are secrets cannot be told then.
    pub fn words(text: &str) -> impl Iterator<Item = &str> {
        lines(text).flat_map(|(_, line)| line.split_whitespace())
    }
}

/// The lines that hold tokens, trimmed, with their 0-based numbers: blank lines and `#` comments skipped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order_are_kept() {
        let t = TokenFile::parse("# operators\nalice aaaa\n\n  bbbb  \n").unwrap();
        assert_eq!(t.entries().collect::<Vec<_>>(), [("alice", "aaaa"), ("admin", "bbbb")]);
        assert_eq!(t.first(), "aaaa");
        assert_eq!(format!("{t:?}"), "TokenFile([\"alice\", \"admin\"], <redacted>)");
        let words: Vec<&str> = TokenFile::words("# a b\nx y z\n\n w ").collect();
        assert_eq!(words, ["x", "y", "z", "w"]);
    }

    #[test]
    fn bad_token_files_say_where() {
        assert_eq!(TokenFile::parse("\n# nothing\n").unwrap_err(), "admin token file holds no token");
        assert_eq!(TokenFile::parse("a b c\n").unwrap_err(), "line 1: expected `TOKEN` or `NAME TOKEN`");
        assert_eq!(TokenFile::parse("x 1\nx 2\n").unwrap_err(), "line 2: token name \"x\" is used twice");
        let missing = TokenFile::load(Path::new("/nonexistent/waygate-token")).unwrap_err();
        assert!(missing.starts_with("/nonexistent/waygate-token: cannot read admin token: "), "{missing}");
    }
}
