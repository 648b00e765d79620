//! Input: finding the files (recursively, in a stable order), and turning each into chunks of whole lines
//! for the parsers. Reader threads (one per file at a time) read plain files straight into recycled
//! chunk buffers, or decompress gzip (detected by its magic bytes, whatever the file is called) with
//! `MultiGzDecoder`, which also reads the concatenated members ALB's files may hold. Each chunk ends at a
//! newline; the partial line left over starts the next chunk. A chunk is sent to the rayon workers over a
//! bounded channel, so memory stays at a few chunks per thread however large the input.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::SyncSender;

use flate2::read::MultiGzDecoder;
use memchr::memrchr;

/// Bytes per chunk: large enough that per-chunk costs vanish, small enough to spread a file over workers.
pub(crate) const CHUNK: usize = 4 << 20;
/// A line longer than this is cut (and most likely reported malformed) rather than buffered whole.
const MAX_LINE: usize = 64 << 20;

/// One input file.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    /// Size on disk (compressed size for gzip).
    pub size: u64,
}

/// A problem with one file that did not stop the analysis: unreadable, or gzip corrupt part-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub file: PathBuf,
    /// Counted from the file's start: the line at which reading stopped (lines before it were analysed).
    pub line: Option<u64>,
    pub error: String,
}

/// A path on the command line that does not exist or cannot be read: a user error.
#[derive(Debug)]
pub struct PathError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Expands the paths into files: directories recursively (hidden entries skipped, symlinked
/// directories not followed), in sorted order. Files named explicitly are always included.
pub fn discover(paths: &[PathBuf]) -> Result<(Vec<InputFile>, Vec<FileProblem>), PathError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|error| PathError { path: path.clone(), error })?;
        if meta.is_dir() {
            walk(path, &mut files, &mut problems);
        } else {
            files.push(InputFile { path: path.clone(), size: meta.len() });
        }
    }
    Ok((files, problems))
}

fn walk(dir: &Path, files: &mut Vec<InputFile>, problems: &mut Vec<FileProblem>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(FileProblem { file: dir.to_owned(), line: None, error: e.to_string() });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, files, problems),
            Ok(m) if m.file_type().is_symlink() => match fs::metadata(&p) {
                Ok(t) if t.is_file() => files.push(InputFile { path: p, size: t.len() }),
                _ => {}
            },
            Ok(m) if m.is_file() => files.push(InputFile { path: p, size: m.len() }),
            Ok(_) => {}
            Err(e) => problems.push(FileProblem { file: p, line: None, error: e.to_string() }),
        }
    }
}

/// A run of whole lines from one file.
pub(crate) struct Chunk {
    pub file: u32,
    pub index: u32,
    pub buf: Vec<u8>,
    pub len: usize,
}

/// Recycled chunk buffers (allocating and faulting in 4 MiB per chunk would cost more than parsing it).
#[derive(Default)]
pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    fn take(&self, min: usize) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        match reused {
            Some(b) if b.len() >= min => b,
            _ => vec![0; min.max(CHUNK)],
        }
    }

    /// Returns a buffer for reuse (oversized ones, grown for long lines, are dropped).
    pub fn give(&self, buf: Vec<u8>) {
        if buf.len() == CHUNK
            && let Ok(mut f) = self.free.lock()
            && f.len() < 64
        {
            f.push(buf);
        }
    }
}

/// Counts bytes read from disk, for the progress bar.
struct Counting<'a, R> {
    inner: R,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// How a file ended: read to the end, or stopped by an I/O or gzip error (the message).
pub(crate) enum ReadEnd {
    Done,
    Failed(String),
}

/// Reads one file into chunks sent on `tx`. Returns `Failed` for an I/O or gzip error part-way: the
/// complete lines before it have been sent, the partial line is dropped.
pub(crate) fn read_file(
    file: u32,
    path: &Path,
    tx: &SyncSender<Chunk>,
    pool: &BufPool,
    progress: &(dyn Fn(u64) + Sync),
) -> ReadEnd {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return ReadEnd::Failed(e.to_string()),
    };
    let mut counting = Counting { inner: f, progress };
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match counting.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return ReadEnd::Failed(e.to_string()),
        }
    }
    let head = &head[..got];
    if head == [0x1f, 0x8b] {
        let mut gz = MultiGzDecoder::new(io::BufReader::with_capacity(256 << 10, head.chain(counting)));
        pump(file, &mut gz, &[], tx, pool, GZIP_HOLD)
    } else {
        pump(file, &mut counting, head, tx, pool, 0)
    }
}

/// Decompressed bytes of a gzip file held back until the stream's checksum is verified: a corrupt member
/// yields garbage before its error (statuses like 577, targets like `0.000`), and none of it may be
/// counted. An ALB log file (five minutes of one node) is one member well under this; past it, chunks are
/// released as read and only the lines after the error are left out.
const GZIP_HOLD: usize = 64 << 20;

/// Chunks a file into `tx`; with `hold` > 0, up to `hold` bytes of chunks wait for the end of the input
/// and are dropped (never counted) if it ends in an error.
fn pump(
    file: u32,
    reader: &mut dyn Read,
    initial: &[u8],
    tx: &SyncSender<Chunk>,
    pool: &BufPool,
    hold: usize,
) -> ReadEnd {
    let mut held: Vec<Chunk> = Vec::new();
    let mut held_bytes = 0usize;
    let (end, cut_short) = pump_held(file, reader, initial, pool, &mut |chunk| {
        if hold == 0 {
            return tx.send(chunk).is_ok();
        }
        held_bytes += chunk.len;
        held.push(chunk);
        if held_bytes > hold {
            held_bytes = 0;
            return held.drain(..).all(|c| tx.send(c).is_ok());
        }
        true
    });
    match end {
        // A stream cut short (a truncated download) is valid up to the cut: its lines count.
        ReadEnd::Done => send_all(held, tx),
        ReadEnd::Failed(_) if cut_short => send_all(held, tx),
        ReadEnd::Failed(e) if hold > 0 => {
            let dropped = held.len();
            held.into_iter().for_each(|c| pool.give(c.buf));
            if dropped > 0 {
                return ReadEnd::Failed(format!(
                    "{e}: the gzip data is corrupt, and the lines decompressed before the error (up to {} MiB) are \
                     not counted: they may be garbage",
                    hold >> 20
                ));
            }
            return ReadEnd::Failed(format!("{e}: the gzip data is corrupt"));
        }
        ReadEnd::Failed(_) => {}
    }
    end
}

/// Sends chunks in order until the receiver is gone.
fn send_all(chunks: Vec<Chunk>, tx: &SyncSender<Chunk>) {
    for c in chunks {
        if tx.send(c).is_err() {
            return;
        }
    }
}

fn pump_held(
    file: u32,
    reader: &mut dyn Read,
    initial: &[u8],
    pool: &BufPool,
    send: &mut dyn FnMut(Chunk) -> bool,
) -> (ReadEnd, bool) {
    let mut carry: Vec<u8> = initial.to_vec();
    let mut index = 0u32;
    loop {
        let mut buf = pool.take(carry.len() * 2);
        buf[..carry.len()].copy_from_slice(&carry);
        let mut filled = carry.len();
        carry.clear();
        let mut eof = false;
        let mut error = None;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let cut = if eof {
            filled
        } else {
            // Lines end in LF or CRLF; a file of old Mac line ends has only CR.
            match memrchr(b'\n', &buf[..filled]).or_else(|| memrchr(b'\r', &buf[..filled])) {
                Some(p) => p + 1,
                // No newline in the whole buffer: keep growing it up to MAX_LINE, then cut the line.
                None if error.is_none() && filled < MAX_LINE => 0,
                None if error.is_none() => filled,
                None => 0,
            }
        };
        if error.is_none() {
            carry.extend_from_slice(&buf[cut..filled]);
        }
        if cut > 0 {
            if !send(Chunk { file, index, buf, len: cut }) {
                return (ReadEnd::Done, false);
            }
            index += 1;
        } else {
            pool.give(buf);
        }
        if let Some(e) = error {
            return (ReadEnd::Failed(e.to_string()), e.kind() == io::ErrorKind::UnexpectedEof);
        }
        if eof {
            return (ReadEnd::Done, false);
        }
    }
}
