//! The HTTP/2 frame reader that follows a target's frames for its GOAWAY and SETTINGS
//! (`waygate_proxy::upstream::h2::frames`): any bytes, split anywhere, never panic, and the answer does not depend
//! on where the reads split them. The first byte sets the split size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waygate_proxy::upstream::h2::frames::follow;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = follow([input]);
    let pieces = follow(input.chunks(usize::from(split).max(1)));
    assert_eq!(whole, pieces, "the same bytes read in pieces of {split}");
    assert_eq!(whole, follow(input.chunks(1)), "one byte at a time");
});
