//! TOML text -> [`File`], collecting every error instead of stopping at the first. The text is parsed once into
//! toml's spanned document tree; then each section, each `[[listener]]`, each `[[listener.rule]]`, each
//! `[[target_group]]` and each `health_check` is deserialized on its own, so a typo in one of them does not
//! hide the typos in the others. Errors keep toml's spans (an unknown key points at the key).

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::Diag;
use crate::file::{Alert, File, Listener, Rule, TargetGroup};

/// What decoding produced besides the errors.
pub(crate) struct Decoded {
    pub file: File,
    /// How many `[[listener]]` tables were written, decodable or not: a bad one must not also
    /// produce "no listener defined".
    pub listeners_written: usize,
    /// Names of target groups whose table did not decode: references to them are not reported as undefined,
    /// since the real error is already reported.
    pub undecoded_groups: Vec<String>,
}

const TOP_KEYS: &[&str] =
    &["admin", "access_log", "errors", "listener", "target_group", "alert", "connection_log", "tracing"];

/// Decodes a whole document. `Err` means TOML syntax errors: nothing further is checked then.
pub(crate) fn decode(text: &str, diags: &mut Vec<Diag>) -> Result<Decoded, ()> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        diags.extend(syntax.into_iter().map(|e| syntax_diag(text, &e)));
        return Err(());
    }
    let mut out = Decoded { file: File::default(), listeners_written: 0, undecoded_groups: Vec::new() };
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "admin" => out.file.admin = value_as(value, "[admin]", diags),
            "access_log" => out.file.access_log = value_as(value, "[access_log]", diags),
            "errors" => out.file.errors = value_as(value, "[errors]", diags),
            "connection_log" => out.file.connection_log = value_as(value, "[connection_log]", diags),
            "tracing" => out.file.tracing = value_as(value, "[tracing]", diags),
            "listener" => {
                let items = array_of_tables(value, "`listener`", "[[listener]]", diags);
                out.listeners_written = items.as_ref().map_or(1, Vec::len);
                for (i, item) in items.into_iter().flatten().enumerate() {
                    if let Some(l) = listener(item, i, diags) {
                        out.file.listener.push(l);
                    }
                }
            }
            "target_group" => {
                for (i, item) in array_of_tables(value, "`target_group`", "[[target_group]]", diags)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    match target_group(item, i, diags) {
                        Ok(g) => out.file.target_group.push(g),
                        Err(Some(name)) => out.undecoded_groups.push(name),
                        Err(None) => {}
                    }
                }
            }
            "alert" => {
                for (i, (span, table)) in
                    array_of_tables(value, "`alert`", "[[alert]]", diags).into_iter().flatten().enumerate()
                {
                    let context = label("alert", &table, i);
                    if let Some(a) =
                        value_as::<Alert>(Spanned::new(span.clone(), DeValue::Table(table)), &context, diags)
                    {
                        out.file.alert.push(Spanned::new(span, a));
                    }
                }
            }
            other => diags.push(Diag::at(key.span(), unknown_key(other, TOP_KEYS))),
        }
    }
    Ok(out)
}

fn syntax_diag(text: &str, e: &toml::de::Error) -> Diag {
    let span = e.span().unwrap_or(0..0);
    let message = match e.message() {
        // toml says only "duplicate key"; name it.
        "duplicate key" => match text.get(span.clone()) {
            Some(key) if !key.is_empty() => format!("duplicate key {key:?}"),
            _ => "duplicate key".to_owned(),
        },
        m => m.to_owned(),
    };
    Diag::at(span, format!("TOML syntax: {}", one_line(&message)))
}

fn unknown_key(key: &str, expected: &[&str]) -> String {
    let list: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
    format!("unknown key `{}`, expected one of {}", one_line(key), list.join(", "))
}

/// A message that quotes the file's own text (a value, a quoted key), with its line breaks and other control
/// characters escaped: each error stays one `FILE:LINE:COL: message` line, whatever a string held.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Deserializes one value, prefixing errors with `context`; errors without a span point at the value. An
/// unknown key of a table is reported and dropped and the rest decoded again, so a typo does not hide the
/// other mistakes in the same table (dropping it changes nothing else: nothing reads it).
fn value_as<T: DeserializeOwned>(value: Spanned<DeValue<'_>>, context: &str, diags: &mut Vec<Diag>) -> Option<T> {
    let span = value.span();
    let mut value = value.into_inner();
    loop {
        let error = match T::deserialize(ValueDeserializer::from(Spanned::new(span.clone(), value.clone()))) {
            Ok(decoded) => return Some(decoded),
            Err(e) => e,
        };
        diags.push(serde_diag(&error, span.clone(), context));
        let DeValue::Table(table) = &mut value else {
            return None;
        };
        let unknown = error.message().starts_with("unknown field");
        let key = table.keys().find(|k| Some(k.span()) == error.span()).map(|k| k.get_ref().to_string());
        match key {
            Some(key) if unknown => {
                table.remove(key.as_str());
            }
            _ => return None,
        }
    }
}

fn serde_diag(e: &toml::de::Error, fallback: Range<usize>, context: &str) -> Diag {
    // Users write keys, not fields.
    let message = e.message();
    let message = message
        .strip_prefix("unknown field")
        .map(|rest| format!("unknown key{rest}"))
        .or_else(|| message.strip_prefix("missing field").map(|rest| format!("missing key{rest}")))
        .unwrap_or_else(|| message.to_owned());
    Diag::at(e.span().unwrap_or(fallback), format!("{context}: {}", one_line(&message)))
}

/// An element of an array of tables: its span (the `[[...]]` header) and its keys.
type Item<'i> = (Range<usize>, DeTable<'i>);

/// The elements of an array of tables (`[[...]]`); anything else is one error (naming `what`) and `None`.
fn array_of_tables<'i>(
    value: Spanned<DeValue<'i>>,
    what: &str,
    header: &str,
    diags: &mut Vec<Diag>,
) -> Option<Vec<Item<'i>>> {
    let span = value.span();
    let tables: Option<Vec<Item<'i>>> = match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .map(|item| {
                let item_span = item.span();
                match item.into_inner() {
                    DeValue::Table(t) => Some((item_span, t)),
                    _ => None,
                }
            })
            .collect(),
        _ => None,
    };
    if tables.is_none() {
        diags.push(Diag::at(span, format!("{what} must be an array of tables: write each one as {header}")));
    }
    tables
}

/// Reads `key` from a raw table without judging it, to name the thing an error is about.
fn peek<T: DeserializeOwned>(table: &DeTable<'_>, key: &str) -> Option<T> {
    table.get(key).and_then(|v| T::deserialize(ValueDeserializer::from(v.clone())).ok())
}

/// `listener "public"` or, when the name is unreadable, `listener "listener-2"` (the default name) or
/// `target_group #2`.
fn label(kind: &str, table: &DeTable<'_>, index: usize) -> String {
    match peek::<String>(table, "name") {
        Some(name) => format!("{kind} {name:?}"),
        None if kind == "listener" => format!("listener \"listener-{}\"", index + 1),
        None => format!("{kind} #{}", index + 1),
    }
}

fn listener((span, mut table): Item<'_>, index: usize, diags: &mut Vec<Diag>) -> Option<Spanned<Listener>> {
    let rules = table.remove("rule");
    let context = label("listener", &table, index);
    let decoded: Option<Listener> = value_as(Spanned::new(span.clone(), DeValue::Table(table)), &context, diags);
    let mut decoded_rules = Vec::new();
    if let Some(rules) = rules {
        let items = array_of_tables(rules, &format!("{context}: `rule`"), "[[listener.rule]]", diags);
        for (i, (rule_span, rule)) in items.into_iter().flatten().enumerate() {
            let rule_context = match peek::<i64>(&rule, "priority") {
                Some(p) => format!("{context}: rule priority {p}"),
                None => format!("{context}: rule #{}", i + 1),
            };
            let value = Spanned::new(rule_span.clone(), DeValue::Table(rule));
            if let Some(rule) = value_as::<Rule>(value, &rule_context, diags) {
                decoded_rules.push(Spanned::new(rule_span, rule));
            }
        }
    }
    decoded.map(|mut l| {
        l.rule = decoded_rules;
        Spanned::new(span, l)
    })
}

/// `Err(name)`: the group did not decode; its name if readable.
fn target_group(
    (span, mut table): Item<'_>,
    index: usize,
    diags: &mut Vec<Diag>,
) -> Result<Spanned<TargetGroup>, Option<String>> {
    let health = table.remove("health_check");
    let context = label("target_group", &table, index);
    let name = peek::<String>(&table, "name");
    let decoded: Option<TargetGroup> = value_as(Spanned::new(span.clone(), DeValue::Table(table)), &context, diags);
    let health = health.map(|h| {
        let span = h.span();
        value_as(h, &format!("{context}: health_check"), diags).map(|hc| Spanned::new(span, hc))
    });
    match (decoded, health) {
        (Some(mut g), None) => {
            g.health_check = None;
            Ok(Spanned::new(span, g))
        }
        (Some(mut g), Some(Some(hc))) => {
            g.health_check = Some(hc);
            Ok(Spanned::new(span, g))
        }
        _ => Err(name),
    }
}
