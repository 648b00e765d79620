//! The access-log writer: the request path hands each finished record to its thread's slot (a buffer under its
//! own, uncontended lock) and moves on; one dedicated thread collects the slots in batches, formats the records
//! and writes the lines with buffered `std::fs` I/O, rotating files on wall-clock boundaries ([`crate::rotate`]).
//! Logging never blocks: a slot holding `queue_capacity` lines or records drops the record and counts it in
//! `waygate_access_log_dropped_total`.
//!
//! Where a line is formatted: the gateway's records go whole ([`AccessLogHandle::keep`]) and the writer formats
//! them, a batch at a time; [`AccessLogHandle::log`] formats on the caller's thread, and the connection log's
//! lines come formatted ([`AccessLogHandle::log_line`]). Formatting an ALB line on the request's thread took
//! about 3,600 instructions of its 29,000 (callgrind, HTTP/1.1 small responses), and its code pushed the request
//! path's own out of the instruction cache: handed over whole, the worker's share fell to 25,100 instructions
//! and 1,595 instruction-cache misses from 1,761, and the writer's formatting, done in batches, took 12 misses
//! a line. The record is freed on the writer's thread, which jemalloc returns to its arena in batches. A slot
//! written both ways keeps each kind in order; its formatted lines go first.
//!
//! Shutdown drains: [`AccessLogHandle::close`] stops accepting (a `log` or `keep` checks under its slot's lock,
//! so every record accepted is in a slot when the writer collects them last), the thread writes everything
//! collected, finishes the file (gzip trailer, rename) and exits; [`AccessLogHandle::shutdown`] does the same and
//! waits for it. So N records logged before `close` are N lines on disk, or counted in `waygate_access_log_dropped_total`
//! (slot full, or lost to an I/O error).
//!
//! A full or read-only disk ([`crate::sink`], shared with the system log file): each I/O error counts once in
//! `waygate_access_log_write_errors_total` (not once per line) and is reported through `tracing` at most once
//! per 10 s with a count; the lines it lost count as dropped. The writer keeps its file (a plain file's unwritten
//! buffer is discarded, not the file) and retries after a back-off, 100 ms doubling to 5 s; lines collected
//! meanwhile are dropped and counted without touching the disk. The first write that succeeds again logs the
//! recovery with how many lines were lost.
//!
//! Out of descriptors (the data plane took them all): the writer holds one descriptor of its own
//! ([`crate::reserve`]) and gives it up to open the next file of a rotation, so rotating at EMFILE loses no line;
//! it takes one back as soon as the process has one to give.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, SystemTime};
use std::{fmt, io};

use crossbeam_utils::CachePadded;
use tokio::sync::watch;

use crate::metrics::AccessLogCounters;
use crate::reserve::Reserve;
use crate::rotate::{LogFile, NameParts, period_end};
use crate::sink::{DiskTrouble, ReportTo};
use crate::{Exchange, format_alb, format_json};

/// The line format (`[access_log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// ALB's space-separated line.
    #[default]
    Alb,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Appends `exchange`'s line, without its newline.
    fn write(self, exchange: &Exchange, out: &mut String) {
        match self {
            LogFormat::Alb => format_alb(exchange, out),
            LogFormat::Json => format_json(exchange, out),
        }
    }
}

/// What to write where.
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    /// Directory of the files; created if missing.
    pub dir: PathBuf,
    pub format: LogFormat,
    /// Compress each file (`.log.gz`).
    pub gzip: bool,
    pub naming: NameParts,
    /// Rotation period, aligned on the wall clock; 5 minutes like ALB. At least 1 ms.
    pub rotation: Duration,
    /// Lines each logging thread's slot holds before its records are dropped.
    pub queue_capacity: usize,
    /// The log's name in the system log's reports of disk trouble ("access log", "connection log").
    pub log_name: &'static str,
}

impl AccessLogConfig {
    /// Plain files rotated every 5 minutes, with a queue of 8192 records.
    pub fn new(dir: impl Into<PathBuf>, format: LogFormat, naming: NameParts) -> Self {
        let (rotation, queue_capacity) = (Duration::from_secs(300), 8192);
        Self { dir: dir.into(), format, gzip: false, naming, rotation, queue_capacity, log_name: "access log" }
    }
}

/// What the writer thread did, returned when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterSummary {
    /// Lines written into files.
    pub lines: u64,
    /// I/O errors (each counted once, whatever it cost).
    pub write_errors: u64,
    /// Lines lost to I/O errors, or dropped while backing off after one.
    pub lost: u64,
    /// Files completed, in order.
    pub files: Vec<PathBuf>,
}

/// How long the writer lets records accumulate between collections while traffic flows (bounded latency to
/// disk).
const BATCH_TICK: Duration = Duration::from_millis(10);

/// One thread's lines and records, waiting for the writer.
#[derive(Default)]
struct Slot {
    /// Lines formatted by the thread that logged them ([`AccessLogHandle::log`], [`AccessLogHandle::log_line`]).
    lines: String,
    /// Records queued whole ([`AccessLogHandle::keep`]): the writer formats them after the slot's `lines`.
    #[expect(clippy::vec_box, reason = "the record comes boxed: queueing moves a pointer, not the record")]
    records: Vec<Box<Exchange>>,
    /// Lines and records together.
    count: u64,
}

struct Shared {
    closed: AtomicBool,
    lines: AtomicU64,
    counters: AccessLogCounters,
    format: LogFormat,
    /// Threads log into `slots[their index % len]`.
    /// Each on cache lines of its own: every worker locks its slot on every request, and two slots sharing a
    /// line made each lock pull the line from the other worker's core.
    slots: Box<[CachePadded<Mutex<Slot>>]>,
    /// Lines one slot may hold before records are dropped (`queue_capacity`: the request path's threads each
    /// have a slot; a share of the total would drop the records of a thread that logs far more than others).
    slot_capacity: u64,
    /// Some slot has lines the writer has not collected; set by the `log` that found its slot empty, which then
    /// wakes the writer (once per batch, not per record).
    pending: AtomicBool,
    writer: OnceLock<Thread>,
}

impl Shared {
    fn slot(&self, index: usize) -> MutexGuard<'_, Slot> {
        // Poisoning is ignored: the formatters do not panic, and were one to, the worst left behind is one
        // malformed line, not a reason to stop logging.
        self.slots[index % self.slots.len()].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }

    /// Stops accepting lines and wakes the writer for its last collection.
    fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake_writer();
    }
}

/// This thread's slot index, handed out in turn as threads first log (the request path's worker threads, one
/// slot each while there are enough).
fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, SeqCst);
    }
    INDEX.with(|i| *i)
}

/// The request path's end of the access log. Cloning is cheap; the writer ends when it is closed or when
/// every clone is dropped.
#[derive(Clone)]
pub struct AccessLogHandle {
    shared: Arc<Shared>,
    /// Shared by the clones only (the writer holds `shared`): closes the log when the last clone goes.
    _last: Arc<CloseOnDrop>,
    done: watch::Receiver<bool>,
}

struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl fmt::Debug for AccessLogHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLogHandle").field("closed", &self.shared.closed.load(SeqCst)).finish_non_exhaustive()
    }
}

/// The access log.
#[derive(Debug)]
pub struct AccessLog;

impl AccessLog {
    /// Create the directory and start the writer thread. `counters` are usually
    /// [`crate::Metrics::access_log_counters`].
    pub fn start(
        config: AccessLogConfig,
        counters: AccessLogCounters,
    ) -> io::Result<(AccessLogHandle, JoinHandle<WriterSummary>)> {
        std::fs::create_dir_all(&config.dir)?;
        let slots = std::thread::available_parallelism().map_or(4, |n| n.get()).max(4);
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            lines: AtomicU64::new(0),
            counters,
            format: config.format,
            slots: (0..slots).map(|_| CachePadded::default()).collect(),
            slot_capacity: config.queue_capacity.max(1) as u64,
            pending: AtomicBool::new(false),
            writer: OnceLock::new(),
        });
        let (done_tx, done) = watch::channel(false);
        // Made here, not on the writer's thread: its descriptor reserve is taken before `start` returns, so the
        // data plane cannot have taken every descriptor before the writer, when scheduled late, asks for one.
        let writer = Writer::new(config, shared.clone());
        let join = std::thread::Builder::new().name("waygate-access-log".into()).spawn(move || {
            let summary = writer.run();
            done_tx.send_replace(true);
            summary
        })?;
        let _ = shared.writer.set(join.thread().clone());
        Ok((AccessLogHandle { _last: Arc::new(CloseOnDrop(shared.clone())), shared, done }, join))
    }
}

impl AccessLogHandle {
    /// Formats a record into this thread's slot; never blocks on the writer. Returns false (and counts it as
    /// dropped) when the slot is full or the log is closed.
    pub fn log(&self, exchange: &Exchange) -> bool {
        let format = self.shared.format;
        self.push_line(|lines| format.write(exchange, lines))
    }

    /// Queues the record itself, for the writer thread to format ([`Observer::keep`](crate::Observer::keep)):
    /// the request path's thread only moves a pointer. Returns false (and counts it as dropped) when the slot is
    /// full or the log is closed.
    pub fn keep(&self, exchange: Box<Exchange>) -> bool {
        self.push(|slot| slot.records.push(exchange))
    }

    /// Queues one line already formatted (without its newline), as [`log`](Self::log) queues a record: the
    /// connection log's lines go through the same slots, files and rotation.
    pub fn log_line(&self, line: &str) -> bool {
        self.push_line(|lines| lines.push_str(line))
    }

    /// Appends one line (`write` writes it, without its newline) to this thread's slot.
    fn push_line(&self, write: impl FnOnce(&mut String)) -> bool {
        self.push(|slot| {
            write(&mut slot.lines);
            slot.lines.push('\n');
        })
    }

    /// Adds one line or record (`add` puts it in) to this thread's slot.
    fn push(&self, add: impl FnOnce(&mut Slot)) -> bool {
        let s = &*self.shared;
        let mut slot = s.slot(slot_index());
        // Checked under the slot's lock: the writer's last collection, after `close`, sees every line accepted.
        if s.closed.load(SeqCst) || slot.count >= s.slot_capacity {
            drop(slot);
            s.counters.dropped.inc();
            return false;
        }
        add(&mut slot);
        slot.count += 1;
        let first = slot.count == 1;
        drop(slot);
        if first && !s.pending.swap(true, SeqCst) {
            s.wake_writer();
        }
        true
    }

    /// Stop accepting records; the writer collects what the slots hold, finishes its file and exits.
    pub fn close(&self) {
        self.shared.close();
    }

    /// [`close`](Self::close), then wait until every queued record is written and the file is finished.
    pub async fn shutdown(&self) {
        self.close();
        let mut done = self.done.clone();
        // An error means the writer is gone, which is also done.
        let _ = done.wait_for(|d| *d).await;
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.get()
    }

    /// Lines written so far.
    pub fn lines_written(&self) -> u64 {
        self.shared.lines.load(SeqCst)
    }
}

struct Writer {
    config: AccessLogConfig,
    shared: Arc<Shared>,
    file: Option<LogFile>,
    /// The buffer a slot's lines are swapped into, and its records formatted into, to be written; it goes back
    /// to a slot at the next swap.
    spare: String,
    /// The vector a slot's records are swapped into; emptied as they are formatted, it goes back the same way.
    #[expect(clippy::vec_box, reason = "the slots' vectors, swapped")]
    spare_records: Vec<Box<Exchange>>,
    /// Lines written to the current file but not yet known to be on disk.
    unflushed: u64,
    summary: WriterSummary,
    trouble: DiskTrouble,
    /// A descriptor for the next file when the process has none left.
    reserve: Reserve,
}

impl Writer {
    fn new(config: AccessLogConfig, shared: Arc<Shared>) -> Self {
        let trouble = DiskTrouble::new(config.log_name, ReportTo::Tracing, shared.counters.clone());
        Self {
            config,
            shared,
            file: None,
            spare: String::new(),
            spare_records: Vec::new(),
            unflushed: 0,
            summary: WriterSummary::default(),
            trouble,
            reserve: Reserve::new(1),
        }
    }

    fn run(mut self) -> WriterSummary {
        loop {
            if !self.shared.closed.load(SeqCst) && !self.shared.pending.load(SeqCst) {
                // Nothing to collect: sleep until a record comes (its `log` wakes us), the file's period ends,
                // or the log is closed.
                match &self.file {
                    Some(f) => std::thread::park_timeout(f.end.duration_since(SystemTime::now()).unwrap_or_default()),
                    None => std::thread::park(),
                }
            }
            if self.collect() > 0 {
                self.batch();
                self.flush_idle();
            }
            self.rotate_if_due();
            if self.shared.closed.load(SeqCst) {
                // Every `log` that saw the log open appended under its slot's lock: this collects them all.
                self.collect();
                break;
            }
        }
        self.finish_file();
        (self.summary.write_errors, self.summary.lost) = (self.trouble.errors, self.trouble.lost);
        self.summary
    }

    /// Writes the lines every slot holds; returns how many.
    fn collect(&mut self) -> u64 {
        // Cleared first: a record logged into a slot emptied below sets it again and wakes us.
        self.shared.pending.store(false, SeqCst);
        let mut total = 0;
        for i in 0..self.shared.slots.len() {
            let count = {
                let mut slot = self.shared.slot(i);
                if slot.count == 0 {
                    continue;
                }
                std::mem::swap(&mut slot.lines, &mut self.spare);
                std::mem::swap(&mut slot.records, &mut self.spare_records);
                std::mem::take(&mut slot.count)
            };
            // Formatted here, in one batch, and freed here.
            for ex in self.spare_records.drain(..) {
                self.shared.format.write(&ex, &mut self.spare);
                self.spare.push('\n');
            }
            self.write(count);
            self.spare.clear();
            total += count;
        }
        total
    }

    /// While records keep coming, collect them on a short tick instead of sleeping until woken: waking this
    /// thread for every record (a futex syscall and a context switch) cost a busy gateway a fifth of its
    /// throughput. The tick ends once it finds nothing.
    fn batch(&mut self) {
        loop {
            std::thread::sleep(BATCH_TICK);
            let collected = self.collect();
            self.rotate_if_due();
            if collected == 0 || self.shared.closed.load(SeqCst) {
                return;
            }
        }
    }

    fn rotate_if_due(&mut self) {
        if self.file.as_ref().is_some_and(|f| f.end <= SystemTime::now()) {
            self.finish_file();
        }
    }

    /// Writes the `count` lines in `spare` to the current file (opening one if needed); while backing off after
    /// an I/O error, drops them (counted) without touching the disk.
    fn write(&mut self, count: u64) {
        if self.trouble.backing_off() {
            self.trouble.lost(count);
            return;
        }
        self.rotate_if_due();
        if self.file.is_none() {
            // Whole again if descriptors came back since it gave one up (a lock and a length when it is whole).
            self.reserve.refill();
            let end = period_end(SystemTime::now(), self.config.rotation);
            let (dir, naming, gzip) = (&self.config.dir, &self.config.naming, self.config.gzip);
            match self.reserve.retry(|| LogFile::create(dir, naming, end, gzip)) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    let dir = self.config.dir.clone();
                    return self.failed("create", &dir, count, &e);
                }
            }
        }
        let Some(file) = self.file.as_mut() else { return };
        match file.write_lines(self.spare.as_bytes()) {
            Ok(()) => {
                self.unflushed += count;
                self.summary.lines += count;
                self.shared.lines.fetch_add(count, SeqCst);
                self.trouble.recovered();
            }
            Err(e) => {
                // What is buffered may or may not have reached the file: count it all as lost.
                let lost = self.unflushed + count;
                let path = file.path().to_owned();
                self.failed("write", &path, lost, &e);
            }
        }
    }

    fn flush_idle(&mut self) {
        let Some(file) = self.file.as_mut() else { return };
        match file.flush_idle() {
            Ok(()) if !self.config.gzip => self.unflushed = 0,
            Ok(()) => {}
            Err(e) => {
                let (lost, path) = (self.unflushed, file.path().to_owned());
                self.failed("flush", &path, lost, &e);
            }
        }
    }

    fn finish_file(&mut self) {
        let Some(file) = self.file.take() else { return };
        let path = file.path().to_owned();
        match file.finish() {
            Ok(done) => self.summary.files.push(done),
            Err(e) => {
                let lost = self.unflushed;
                self.failed("finish", &path, lost, &e);
            }
        }
        self.unflushed = 0;
    }

    /// One I/O error: counted once, `lost` lines dropped, the file kept when it can be, and the next try put
    /// off by the back-off.
    fn failed(&mut self, what: &str, path: &std::path::Path, lost: u64, err: &io::Error) {
        self.trouble.failed(what, path, lost, err);
        if let Some(file) = self.file.as_mut()
            && !file.discard_buffered()
        {
            self.file = None;
        }
        self.unflushed = 0;
    }
}
