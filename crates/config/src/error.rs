//! Errors as users see them: `FILE:LINE:COL: message`. Internally every problem is a [`Diag`] carrying a byte
//! span into the config text; [`Locator`] turns spans into 1-based line and character columns once, at the end,
//! so the decoding and validation code never counts lines itself.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (the `origin` given to [`crate::parse`]).
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem has no location (such as an unreadable file).
    pub line: usize,
    /// 1-based column counted in characters, or 0 when the problem has no location.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A problem at a byte span of the config text (`None`: the whole file, reported at 1:1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diag {
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Diag {
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Self { span: Some(span), message: message.into() }
    }

    pub fn file(message: impl Into<String>) -> Self {
        Self { span: None, message: message.into() }
    }
}

/// Maps byte offsets of one text to 1-based (line, column-in-characters).
pub(crate) struct Locator<'t> {
    text: &'t str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl<'t> Locator<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    /// Line and column of a byte offset; offsets past the end or inside a character are clamped.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// Turns diagnostics into user-facing errors sorted by position (whole-file ones first).
    pub fn finish(&self, file: &std::path::Path, mut diags: Vec<Diag>) -> ConfigErrors {
        diags.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        diags.dedup();
        ConfigErrors(
            diags
                .into_iter()
                .map(|d| {
                    let (line, col) = d.span.map_or((1, 1), |s| self.locate(s.start));
                    ConfigError { file: file.to_path_buf(), line, col, message: d.message }
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let loc = Locator::new("ab\néé = 1\r\nx");
        assert_eq!(loc.locate(0), (1, 1));
        assert_eq!(loc.locate(2), (1, 3));
        assert_eq!(loc.locate(3), (2, 1));
        assert_eq!(loc.locate(7), (2, 3)); // after two 2-byte characters
        assert_eq!(loc.locate(4), (2, 1)); // inside 'é': clamped back
        assert_eq!(loc.locate(13), (3, 1));
        assert_eq!(loc.locate(999), (3, 2));
    }

    #[test]
    fn display_omits_missing_location() {
        let errs = ConfigErrors(vec![
            ConfigError { file: "a.toml".into(), line: 0, col: 0, message: "cannot read".into() },
            ConfigError { file: "a.toml".into(), line: 3, col: 7, message: "bad".into() },
        ]);
        assert_eq!(errs.to_string(), "a.toml: cannot read\na.toml:3:7: bad");
    }
}
