//! The admin API's JSON body (`POST /api/v1/target-groups/{name}/targets`, `waygate_admin::parse_targets`) on
//! arbitrary bytes: never a panic, and what it accepts is a non-empty list of targets with a port and a weight
//! in the documented range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(targets) = waygate_admin::parse_targets(data) {
        assert!(!targets.is_empty());
        for t in &targets {
            assert!(t.port != 0 && t.weight <= 999 && !t.host.is_empty(), "{t:?}");
        }
    }
});
