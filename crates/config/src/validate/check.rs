//! The validation toolkit: a [`Checker`] that collects diagnostics while turning written values into typed
//! ones, with the range checks, path resolution and name rules every section shares. Each helper returns a
//! usable value even on error (the default), so validation always runs to the end and reports everything.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use crate::duration::{format_duration, parse_duration};
use crate::error::Diag;
use crate::file::DurationText;

/// A target group name used somewhere, checked once all groups are known.
pub(super) struct Reference {
    pub name: String,
    pub span: Range<usize>,
    /// Message prefix naming the user, e.g. `listener "public": rule priority 10: target_group`.
    pub what: String,
}

pub(super) struct Checker<'a> {
    pub diags: &'a mut Vec<Diag>,
    /// Directory relative paths are resolved against (the config file's).
    pub base: &'a Path,
    pub references: Vec<Reference>,
    /// Read the files TLS names (certificates, keys, trust stores) and report what is wrong with them.
    pub files: bool,
}

pub(super) const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Checker<'_> {
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diag::at(span, message));
    }

    /// A duration within one of `allowed` (inclusive ranges), or `default` when absent or invalid.
    pub fn duration(
        &mut self,
        ctx: &str,
        key: &str,
        value: Option<&Spanned<DurationText>>,
        default: Duration,
        allowed: &[RangeInclusive<Duration>],
    ) -> Duration {
        let Some(value) = value else { return default };
        let text = &value.get_ref().0;
        match parse_duration(text) {
            Err(e) => {
                self.error(value.span(), format!("{ctx}: {key}: {e}"));
                default
            }
            Ok(d) if allowed.iter().any(|r| r.contains(&d)) => d,
            Ok(_) => {
                let ranges: Vec<String> = allowed
                    .iter()
                    .map(|r| {
                        if r.start() == r.end() {
                            format_duration(*r.start())
                        } else {
                            format!("{} to {}", format_duration(*r.start()), format_duration(*r.end()))
                        }
                    })
                    .collect();
                self.error(value.span(), format!("{ctx}: {key} {text:?} out of range ({})", ranges.join(" or ")));
                default
            }
        }
    }

    /// An integer within `range`, or `default` when absent or out of range.
    pub fn int<T: TryFrom<i64> + Copy>(
        &mut self,
        ctx: &str,
        key: &str,
        value: Option<&Spanned<i64>>,
        default: T,
        range: RangeInclusive<i64>,
    ) -> T {
        let Some(value) = value else { return default };
        let n = *value.get_ref();
        match T::try_from(n) {
            Ok(v) if range.contains(&n) => v,
            _ => {
                let (lo, hi) = (range.start(), range.end());
                self.error(value.span(), format!("{ctx}: {key} {n} out of range ({lo} to {hi})"));
                default
            }
        }
    }

    /// A file path: not empty, relative ones resolved against the config file's directory.
    pub fn path(&mut self, ctx: &str, key: &str, value: &Spanned<String>) -> PathBuf {
        let written = value.get_ref();
        if written.trim().is_empty() {
            self.error(value.span(), format!("{ctx}: {key} must not be empty"));
        }
        let path = Path::new(written);
        if path.is_absolute() { path.to_path_buf() } else { self.base.join(path) }
    }

    /// A string that must not be empty (or only spaces).
    pub fn non_empty(&mut self, ctx: &str, key: &str, value: &Spanned<String>) -> String {
        if value.get_ref().trim().is_empty() {
            self.error(value.span(), format!("{ctx}: {key} must not be empty"));
        }
        value.get_ref().clone()
    }

    /// A listener or target group name: it appears in metrics labels and admin API paths, so it is limited
    /// to 1-64 letters, digits, `-`, `_` and `.`.
    pub fn name(&mut self, ctx: &str, value: &Spanned<String>) -> String {
        let name = value.get_ref();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            self.error(
                value.span(),
                format!("{ctx}: name {name:?} is invalid: use 1 to 64 letters, digits, '-', '_' or '.'"),
            );
        }
        name.clone()
    }

    /// Records a target group reference for the final cross-check.
    pub fn reference(&mut self, what: String, value: &Spanned<String>) -> String {
        self.references.push(Reference { name: value.get_ref().clone(), span: value.span(), what });
        value.get_ref().clone()
    }
}
