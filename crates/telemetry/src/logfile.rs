//! The system log's file (`waygate --log-file PATH`): lines appended to one file by a thread of their own, so
//! that a slow or failing disk never blocks the thread that logs. A [`SystemLogFile`] is an `io::Write` (what
//! `tracing_subscriber` writes each formatted event into): a write appends whole lines to a bounded buffer and
//! returns at once; the writer thread empties the buffer into the file.
//!
//! A full buffer (1 MiB waiting) drops the lines and counts them in `waygate_system_log_dropped_total`. A full
//! or read-only disk is handled as the access log handles it ([`crate::sink`]): the file is kept, each I/O error
//! counts once in `waygate_system_log_write_errors_total`, its lines count as dropped, the disk is left alone
//! during a back-off, and writing resumes by itself when space returns. A write that failed half-way is cut back
//! to the last whole line, so the file holds no torn line. Its trouble is reported on stderr (the system log
//! cannot report its own failure into itself).
//!
//! The file is opened for appending: logrotate's `copytruncate` works with it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crate::metrics::LogCounters;
use crate::sink::{DiskTrouble, ReportTo};

/// Bytes of lines waiting for the writer before new ones are dropped.
const CAPACITY: usize = 1 << 20;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

struct Shared {
    pending: Mutex<Pending>,
    closed: AtomicBool,
    /// Set by the writer thread when it has written everything and ended.
    done: Mutex<bool>,
    done_changed: Condvar,
    writer: OnceLock<Thread>,
    counters: LogCounters,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A poisoned buffer still holds whole lines: keep logging.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}

/// The system log's file; cloning is cheap (every clone writes into the same buffer).
#[derive(Clone)]
pub struct SystemLogFile {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SystemLogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemLogFile").field("closed", &self.shared.closed.load(SeqCst)).finish_non_exhaustive()
    }
}

impl SystemLogFile {
    /// Opens `path` for appending (created if missing; an error here is a startup error) and starts the writer
    /// thread. `counters` are usually [`crate::system_log_counters`].
    pub fn open(path: &Path, counters: LogCounters) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            closed: AtomicBool::new(false),
            done: Mutex::new(false),
            done_changed: Condvar::new(),
            writer: OnceLock::new(),
            counters: counters.clone(),
        });
        let writer = Writer {
            file,
            path: path.to_owned(),
            shared: shared.clone(),
            trouble: DiskTrouble::new("system log", ReportTo::Stderr, counters),
        };
        let join = std::thread::Builder::new().name("waygate-log-file".into()).spawn(move || writer.run())?;
        let _ = shared.writer.set(join.thread().clone());
        Ok(Self { shared })
    }

    /// Stops accepting lines and waits (at most `within`) until every accepted line is written or counted as
    /// lost; true when the writer finished in time.
    pub fn close(&self, within: Duration) -> bool {
        self.shared.closed.store(true, SeqCst);
        self.shared.wake_writer();
        let done = self.shared.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (done, _) = self
            .shared
            .done_changed
            .wait_timeout_while(done, within, |d| !*d)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *done
    }
}

impl Write for SystemLogFile {
    /// Takes the lines whole or drops them whole (counted); never blocks on the disk and never fails the caller.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let lines = (buf.iter().filter(|b| **b == b'\n').count() as u64).max(1);
        let s = &*self.shared;
        let mut pending = s.pending();
        if s.closed.load(SeqCst) || pending.bytes.len() + buf.len() > CAPACITY {
            drop(pending);
            s.counters.dropped.inc_by(lines);
            return Ok(buf.len());
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(buf);
        pending.lines += lines;
        drop(pending);
        if first {
            s.wake_writer();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Writer {
    file: File,
    path: PathBuf,
    shared: Arc<Shared>,
    trouble: DiskTrouble,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::new();
        loop {
            let lines = {
                let mut pending = self.shared.pending();
                std::mem::swap(&mut pending.bytes, &mut batch);
                std::mem::take(&mut pending.lines)
            };
            if lines > 0 {
                self.write(&batch, lines);
                batch.clear();
            } else if self.shared.closed.load(SeqCst) {
                break;
            } else {
                // Woken by the first line of the next batch, or by close.
                std::thread::park();
            }
        }
        *self.shared.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.shared.done_changed.notify_all();
    }

    fn write(&mut self, batch: &[u8], lines: u64) {
        if self.trouble.backing_off() {
            self.trouble.lost(lines);
            return;
        }
        // Where the file ended before this batch, to cut a half-written batch back to whole lines.
        let before = self.file.metadata().map(|m| m.len());
        match self.file.write_all(batch) {
            Ok(()) => self.trouble.recovered(),
            Err(e) => {
                if let Ok(len) = before {
                    let _ = self.file.set_len(len);
                }
                self.trouble.failed("write", &self.path, lines, &e);
            }
        }
    }
}
