//! Log excerpts for a bundle: the last lines of the system log, and access-log lines from the config's
//! access-log directory (the most recent files, or only the lines of one request id across all files).
//! Gzip'd access logs (`.log.gz`) are read too. Everything is bounded: files, lines and bytes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flate2::read::MultiGzDecoder;

/// At most this many bytes are read from one access-log file.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The last `n` lines of a text file (read whole: system logs handed to the bundle are operator-chosen).
pub fn tail(path: &Path, n: usize) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    Ok(lines[start..].iter().flat_map(|l| [*l, "\n"]).collect())
}

/// Access-log files in `dir`, newest first (by modification time, then name).
pub fn access_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            p.is_file() && (name.ends_with(".log") || name.ends_with(".log.gz"))
        })
        .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH), p))
        .collect();
    files.sort_by(|a, b| b.cmp(a));
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

fn read_text(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    let limited = file.take(MAX_FILE_BYTES);
    let result = if path.extension().is_some_and(|e| e == "gz") {
        MultiGzDecoder::new(limited).take(MAX_FILE_BYTES).read_to_end(&mut bytes)
    } else {
        { limited }.read_to_end(&mut bytes)
    };
    result.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Selected access-log lines per file (file name, lines), newest file first: with `request_id`, every line
/// containing it in any file; otherwise the last `max_lines` lines over the newest `max_files` files.
pub fn access_lines(
    files: &[PathBuf],
    request_id: Option<&str>,
    max_files: usize,
    max_lines: usize,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut budget = max_lines;
    let chosen: &[PathBuf] = if request_id.is_some() { files } else { &files[..files.len().min(max_files)] };
    for path in chosen {
        if budget == 0 {
            break;
        }
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let lines: Vec<&str> = match request_id {
            Some(id) => text.lines().filter(|l| l.contains(id)).collect(),
            None => text.lines().collect(),
        };
        let start = lines.len().saturating_sub(budget);
        let kept = &lines[start..];
        if kept.is_empty() {
            continue;
        }
        budget -= kept.len();
        let name = path.file_name().map(|n| n.to_string_lossy().trim_end_matches(".gz").to_owned()).unwrap_or_default();
        out.push((name, kept.iter().flat_map(|l| [*l, "\n"]).collect()));
    }
    (out, errors)
}
