//! The demo's directory, `<tmp>/waygate-demo-<pid>/` (`-1`, `-2`... when a stale one has that name): the CA certificate its TLS target groups trust, the
//! configuration it runs (so `waygate doctor probe GROUP --config` can use it) and the access log (so
//! `waygate doctor logs` has something to read). No private key is ever written: the fault lab's TLS targets
//! keep theirs in memory.
//!
//! Dropping it removes the certificate and the configuration (which names the certificate); the access log
//! stays for `waygate doctor logs` after the demo, and the demo says so. A demo that did not start removes
//! the whole directory: nothing in it is worth keeping.

use std::io;
use std::path::PathBuf;

pub struct DemoDir {
    path: PathBuf,
    started: bool,
}

impl DemoDir {
    /// Creates a directory of its own (never one left by an earlier process with the same pid, whose files
    /// would be mistaken for this demo's) and writes the CA certificate into it.
    pub fn create(ca_pem: &str) -> io::Result<Self> {
        Self::create_in(&std::env::temp_dir(), ca_pem)
    }

    fn create_in(parent: &std::path::Path, ca_pem: &str) -> io::Result<Self> {
        let base = format!("waygate-demo-{}", std::process::id());
        let mut n = 0;
        let path = loop {
            let name = if n == 0 { base.clone() } else { format!("{base}-{n}") };
            let path = parent.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(e),
            }
        };
        // From here on, Drop cleans up whatever got written, whichever step fails.
        let dir = Self { path, started: false };
        std::fs::write(dir.ca(), ca_pem)?;
        Ok(dir)
    }

    pub fn ca(&self) -> PathBuf {
        self.path.join("ca.pem")
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("waygate.toml")
    }

    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// The gateway is serving: from now on the access log is kept when the demo ends.
    pub fn started(&mut self) {
        self.started = true;
    }

    /// Whether the access log has anything in it (the demo says where it is only then).
    fn has_logs(&self) -> bool {
        std::fs::read_dir(self.logs()).is_ok_and(|mut entries| entries.next().is_some())
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        if self.started && self.has_logs() {
            let _ = std::fs::remove_file(self.ca());
            let _ = std::fs::remove_file(self.config());
            eprintln!(
                "waygate demo: removed the demo's certificate and configuration; its access log stays in {} \
                 (rm -r {} removes it)",
                self.logs().display(),
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory left by an earlier process with the same pid (an old demo's keys in it) is not reused.
    #[test]
    fn a_stale_directory_of_the_same_name_is_left_alone() {
        let parent = std::env::temp_dir().join(format!("waygate-demo-dir-test-{}", std::process::id()));
        let stale = parent.join(format!("waygate-demo-{}", std::process::id()));
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("valid.key"), "old").unwrap();
        let dir = DemoDir::create_in(&parent, "CA").unwrap();
        assert_ne!(dir.path, stale);
        assert_eq!(std::fs::read_dir(&dir.path).unwrap().count(), 1, "only ca.pem");
        drop(dir);
        assert!(stale.join("valid.key").exists(), "the stale directory is not this demo's to remove");
        let _ = std::fs::remove_dir_all(&parent);
    }
}
