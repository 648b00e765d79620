//! Escaping for the error bodies. Request ids and exposed details can come from clients or targets, so
//! everything interpolated into HTML or JSON goes through here; nothing can break out of its context.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal (RFC 8259 §7), quotes included. `<`, `>` and `&` are escaped too,
/// so a body a browser sniffs as HTML still cannot run markup from a request id.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || matches!(c, '\u{7f}' | '<' | '>' | '&') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `s` as HTML text or attribute content. The page stays pure ASCII: other characters become
/// numeric references, and control characters (which have no business in a page) become `?`.
pub(crate) fn html_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            ' '..='~' => out.push(c),
            c if c.is_control() => out.push('?'),
            c => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
        }
    }
}
