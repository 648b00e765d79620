//! The admin API's debug-session body (`POST /api/v1/debug-sessions`, `waygate_admin::parse_debug_session`) on
//! arbitrary bytes: never a panic, and what it accepts is within the documented limits and reads back as the
//! same session from the JSON the admin API shows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = waygate_admin::parse_debug_session(data) {
        assert!((1..=100).contains(&spec.max_exchanges), "{spec:?}");
        assert!(spec.timeout >= std::time::Duration::from_secs(1) && spec.timeout <= std::time::Duration::from_secs(3600));
        let shown = spec.to_json().to_string();
        assert_eq!(waygate_admin::parse_debug_session(shown.as_bytes()).as_ref(), Ok(&spec), "{shown}");
    }
});
