//! Whole-input analysis (lines, accumulation, patterns, report, terminal, HTML and JSON rendering) on
//! arbitrary bytes: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waygate_doctor::{Options, analyze_bytes};

fuzz_target!(|data: &[u8]| {
    let r = analyze_bytes(data, &Options::default());
    let _ = waygate_doctor::term::render(&r);
    let _ = waygate_doctor::html::render(&r);
    let _ = serde_json::to_string(&r);
});
