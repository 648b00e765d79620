//! Listener rules, ALB style: rules in ascending priority, each with optional host and path patterns using
//! `*` (any run of characters) and `?` (exactly one); the first match wins, else the default action.
//! Host patterns are case-insensitive and compared without the port; path patterns are case-sensitive and
//! compared against the path without the query.

use waygate_config::{Action, Listener};

/// The compiled rules of one listener.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<(u32, Option<String>, Option<String>, Action)>,
    default: Option<Action>,
}

/// Where a request goes, and which rule sent it there (ALB's matched_rule_priority: 0 for the default).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub priority: u32,
    pub action: &'a Action,
}

impl Router {
    pub fn new(listener: &Listener) -> Self {
        let rules = listener
            .rules
            .iter()
            .map(|r| (r.priority, r.host.as_ref().map(|h| h.to_ascii_lowercase()), r.path.clone(), r.action.clone()))
            .collect();
        Self { rules, default: listener.default_action.clone() }
    }

    /// The first rule matching `host` and `path`, else the default action. `host` comes without its port
    /// ([`strip_port`]: the request path strips it once, for the record too). A fully qualified name's
    /// trailing dot is dropped (`example.com.` routes as `example.com`).
    pub fn route(&self, host: &str, path: &str) -> Option<Route<'_>> {
        let host = host.strip_suffix('.').unwrap_or(host);
        for (priority, host_pat, path_pat, action) in &self.rules {
            let host_ok = host_pat.as_deref().is_none_or(|p| wildcard_match_ci(p.as_bytes(), host.as_bytes()));
            let path_ok = path_pat.as_deref().is_none_or(|p| wildcard_match(p.as_bytes(), path.as_bytes()));
            if host_ok && path_ok {
                return Some(Route { priority: *priority, action });
            }
        }
        self.default.as_ref().map(|action| Route { priority: 0, action })
    }
}

/// The host without its port (`[::1]:80` → `[::1]`).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    // The digits at the end, then the colon before them: one pass from the end (`rfind` and a check of what
    // follows took two, through the generic string searcher, on every request's Host).
    let digits = host.bytes().rev().take_while(u8::is_ascii_digit).count();
    match (host.len() - digits).checked_sub(1) {
        Some(colon) if host.as_bytes()[colon] == b':' => &host[..colon],
        _ => host,
    }
}

fn wildcard_match_ci(pattern: &[u8], text: &[u8]) -> bool {
    matches(pattern, text, |p, t| p == t.to_ascii_lowercase())
}

/// `*` and `?` matching in linear space with single-star backtracking (no recursion, no allocation).
pub fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    matches(pattern, text, |p, t| p == t)
}

fn matches(pattern: &[u8], text: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || (pattern[p] != b'*' && eq(pattern[p], text[t]))) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_alb() {
        assert!(wildcard_match(b"/v1/*", b"/v1/users"));
        assert!(wildcard_match(b"/v1/*", b"/v1/"));
        assert!(!wildcard_match(b"/v1/*", b"/v2/users"));
        assert!(wildcard_match(b"/img/*.png", b"/img/a/b.png"));
        assert!(!wildcard_match(b"/img/*.png", b"/img/a/b.jpg"));
        assert!(wildcard_match(b"/a?c", b"/abc"));
        assert!(!wildcard_match(b"/a?c", b"/ac"));
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"/exact", b"/exact"));
        assert!(!wildcard_match(b"/exact", b"/exact/more"));
        assert!(!wildcard_match(b"/Path", b"/path"));
        assert!(wildcard_match(b"*a*b*c", b"xxaxxbxxbxc"));
    }

    #[test]
    fn hosts_ignore_case_and_port() {
        assert!(wildcard_match_ci(b"*.example.com", strip_port("API.Example.com:8080").as_bytes()));
        assert!(!wildcard_match_ci(b"*.example.com", b"example.com"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("host"), "host");
        // Only digits after the last colon are a port; an empty port goes too (as `rfind` and a check did).
        for (host, bare) in
            [("a.b:8080", "a.b"), ("a.b:", "a.b"), ("a.b:80x", "a.b:80x"), ("8080", "8080"), (":80", "")]
        {
            assert_eq!(strip_port(host), bare, "{host}");
        }
        assert_eq!(strip_port("é:1"), "é");
    }
}
