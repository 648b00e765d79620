//! The capture reader and everything after it (link-layer decode, flow tracking, classification, the
//! terminal and JSON reports) on arbitrary bytes: an error for non-captures, a report otherwise, never a
//! panic; frames named by a flow never exceed the frames read, and an uncompressed capture's bytes read never
//! exceed its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waygate_doctor::pcap::{analyze_bytes, term};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = analyze_bytes(data, None) {
        for f in &r.flows {
            assert!(f.frames.iter().all(|n| *n >= 1 && *n <= r.frames));
        }
        // A compressed capture (gzip, zstd) counts the bytes of the capture it holds, which may exceed its own.
        let compressed = data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        assert!(compressed || r.bytes <= data.len() as u64);
        let _ = term::render(&r);
        let _ = serde_json::to_string(&r);
    }
});
