//! Test helpers for the log writers' disks: a temporary directory, a small tmpfs to fill up (root only), and
//! bounded polling.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
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

/// A tmpfs of `size` mounted on `dir` (root only), unmounted on drop. Without root, says why and returns None
/// (a failure under WAYGATE_TEST_REQUIRE_ALL, which `.ci/run` sets as root).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str, test: &str) -> Option<Self> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match status {
            Ok(out) if out.status.success() => Some(Self(dir.to_owned())),
            other => {
                let reason = format!("mounting a tmpfs needs root: {other:?}");
                assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "cannot run: {reason}");
                println!("SKIPPED {test}: {reason}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
