//! A full disk on demand: a small tmpfs mounted on a test's directory (root only), for the tests of the log
//! writers (access log, connection log, system log file) on a disk that fills up.

use std::path::{Path, PathBuf};

/// A tmpfs of a given size mounted on a directory, unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`"256k"`) on `dir`. Without root, prints why test `test` is skipped and returns
    /// `None`; under `WAYGATE_TEST_REQUIRE_ALL` (which `.ci/run` sets as root) that is a failure instead.
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

    /// Fills what is left of the tmpfs with a file at `path` (removing it gives the space back).
    pub fn fill(&self, path: &Path) {
        let Ok(mut f) = std::fs::File::create(path) else { return };
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
