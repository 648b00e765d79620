//! Test helpers for the log writers' disks: a temporary directory, a small tmpfs to fill up (root only, the fault
//! lab's), and bounded polling.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        Self(std::env::temp_dir().join(format!("waygate-telemetry-{name}-{}-{nanos}", std::process::id())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `done` every 10 ms until it holds, failing after the common deadline.
pub fn poll(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10)); // polling interval, bounded by the deadline
    }
}

#[allow(
    unused_imports,
    reason = "used by the tests that fill a disk, not by every test that includes this module"
)]
pub use waygate_faultlab::Tmpfs;
