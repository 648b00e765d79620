//! Helpers shared by the integration tests: parse a snippet and assert where its errors are.

#![allow(dead_code)]

use std::path::Path;

use waygate_config::{Config, ConfigError, parse};

/// A listener that is valid on its own, taking lines 1-2.
pub const LISTENER: &str = "[[listener]]\nbind = \"127.0.0.1:8080\"\n";

pub fn ok(text: &str) -> Config {
    parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

pub fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, Path::new("test.toml")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// Asserts `text` has exactly one error, at `line:col`, whose message contains `message`.
#[track_caller]
pub fn one(text: &str, line: usize, col: usize, message: &str) {
    let errors = errors(text);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "expected one error, got:\n{}", shown.join("\n"));
    let e = &errors[0];
    assert_eq!((e.line, e.col), (line, col), "wrong location: {e}");
    assert!(e.message.contains(message), "message {:?} lacks {message:?}", e.message);
}
