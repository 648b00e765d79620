//! The config loader (`waygate_config::parse`: TOML decode, then validation) on arbitrary text: never a panic,
//! and every error names the file it came from (`FILE:LINE:COL: message`, INTERFACE.md's check-config form).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// A directory that does not exist, so relative paths in the input (tls.cert, token_file...) resolve nowhere.
const ORIGIN: &str = "/nonexistent-waygate-fuzz/waygate.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = waygate_config::parse(text, Path::new(ORIGIN)) {
        for line in errors.to_string().lines().filter(|l| !l.starts_with(' ')) {
            assert!(line.starts_with(ORIGIN), "an error without its file: {line:?}");
        }
    }
});
