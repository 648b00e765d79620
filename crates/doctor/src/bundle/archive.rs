//! The bundle's contents in memory, then the `.tar.gz` (tar + flate2). Every file goes through
//! [`Contents::add`], which refuses any file containing `PRIVATE KEY`: a bundle is sent to other people, and
//! no redaction bug may ship a key. Refused files are listed in the README instead.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The marker no bundle file may contain.
const FORBIDDEN: &[u8] = b"PRIVATE KEY";

/// Files collected so far, and what could not be collected.
#[derive(Debug, Default)]
pub struct Contents {
    /// Path inside the archive, contents, one-line description for the README.
    pub files: Vec<(String, Vec<u8>, String)>,
    /// What is missing and why, for the README.
    pub unavailable: Vec<String>,
}

impl Contents {
    /// Adds a file unless it holds private-key material; returns whether it was added.
    pub fn add(&mut self, name: &str, bytes: Vec<u8>, what: impl Into<String>) -> bool {
        if contains_private_key(&bytes) {
            // Worded without the marker itself, or the README would be refused in turn.
            self.unavailable
                .push(format!("{name}: left out, it contains a PEM private key (bundles never carry keys)"));
            return false;
        }
        self.files.push((name.to_owned(), bytes, what.into()));
        true
    }

    pub fn missing(&mut self, what: impl Into<String>) {
        self.unavailable.push(what.into());
    }
}

pub fn contains_private_key(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, FORBIDDEN).is_some()
}

/// Writes `files` as a gzip'd tar under `dir_name/` at `out` (through a `.partial` file renamed at the end,
/// so a failed run leaves no half bundle under the final name). Checks every file again before writing.
pub fn write_tar_gz(out: &Path, dir_name: &str, files: &[(String, Vec<u8>, String)]) -> Result<(), String> {
    let partial = out.with_extension("partial");
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&partial)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
        let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for (name, bytes, _) in files {
            if contains_private_key(bytes) {
                return Err(std::io::Error::other(format!("refusing to write {name}: it contains PRIVATE KEY")));
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_cksum();
            tar.append_data(&mut header, format!("{dir_name}/{name}"), bytes.as_slice())?;
        }
        let mut gz = tar.into_inner()?;
        gz.flush()?;
        gz.finish()?.sync_all()
    })();
    match result {
        Ok(()) => std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(format!("{}: {e}", out.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_refused() {
        let mut c = Contents::default();
        assert!(!c.add("a.txt", b"x\n-----BEGIN RSA PRIVATE KEY-----\n".to_vec(), "a"));
        assert!(c.add("b.txt", b"fine".to_vec(), "b"));
        assert_eq!(c.files.len(), 1);
        assert!(c.unavailable[0].contains("a.txt"));
        let dir = std::env::temp_dir().join(format!("waygate-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = vec![("k".to_owned(), b"PRIVATE KEY".to_vec(), String::new())];
        let out = dir.join("x.tar.gz");
        assert!(write_tar_gz(&out, "b", &bad).unwrap_err().contains("PRIVATE KEY"));
        assert!(!out.exists() && !out.with_extension("partial").exists());
    }
}
