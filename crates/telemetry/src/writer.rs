//! The access-log writer: records go from the request path into a bounded queue with `try_send` (never
//! blocking; a full queue drops the record and counts it in `waygate_access_log_dropped_total`), and one
//! dedicated thread formats them and writes them with buffered `std::fs` I/O, rotating files on wall-clock
//! boundaries ([`crate::rotate`]).
//!
//! Shutdown drains: [`AccessLogHandle::close`] stops accepting, the thread waits for any `log` call already
//! past the check, writes everything queued, finishes the file (gzip trailer, rename) and exits;
//! [`AccessLogHandle::shutdown`] does the same and waits for it. So N records logged before `close` are N
//! lines on disk, or counted: dropped (queue full), or `waygate_access_log_write_errors_total` (I/O error,
//! also reported through `tracing`, at most once per 10 s with a count of what was suppressed).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use std::{fmt, io};

use tokio::sync::watch;

use crate::metrics::AccessLogCounters;
use crate::rotate::{LogFile, NameParts, period_end};
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
    /// Records the queue holds before dropping.
    pub queue_capacity: usize,
}

impl AccessLogConfig {
    /// Plain files rotated every 5 minutes, with a queue of 8192 records.
    pub fn new(dir: impl Into<PathBuf>, format: LogFormat, naming: NameParts) -> Self {
        Self { dir: dir.into(), format, gzip: false, naming, rotation: Duration::from_secs(300), queue_capacity: 8192 }
    }
}

/// What the writer thread did, returned when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterSummary {
    /// Lines written into files.
    pub lines: u64,
    /// Records lost to I/O errors.
    pub write_errors: u64,
    /// Files completed, in order.
    pub files: Vec<PathBuf>,
}

/// How long the writer lets records accumulate between drains while traffic flows (bounded latency to disk).
const BATCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Records travel boxed, as the request path built them (an exchange is over half a kilobyte; it was copied at
/// every move): the bounded queue's `queue_capacity` slots hold pointers.
enum Msg {
    Record(Box<Exchange>),
    Wake,
}

struct Shared {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    lines: AtomicU64,
    counters: AccessLogCounters,
}

/// The request path's end of the access log. Cloning is cheap; the writer ends when it is closed or when
/// every clone is dropped.
#[derive(Clone)]
pub struct AccessLogHandle {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    done: watch::Receiver<bool>,
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
        let (tx, rx) = sync_channel(config.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            lines: AtomicU64::new(0),
            counters,
        });
        let (done_tx, done) = watch::channel(false);
        let thread_shared = shared.clone();
        let join = std::thread::Builder::new().name("waygate-access-log".into()).spawn(move || {
            let summary = Writer::new(config, thread_shared).run(&rx);
            done_tx.send_replace(true);
            summary
        })?;
        Ok((AccessLogHandle { tx, shared, done }, join))
    }
}

impl AccessLogHandle {
    /// Queue a record; never blocks. Returns false (and counts it as dropped) when the queue is full or the
    /// log is closed.
    pub fn log(&self, exchange: impl Into<Box<Exchange>>) -> bool {
        let s = &self.shared;
        s.in_flight.fetch_add(1, SeqCst);
        let queued = !s.closed.load(SeqCst) && self.tx.try_send(Msg::Record(exchange.into())).is_ok();
        s.in_flight.fetch_sub(1, SeqCst);
        if !queued {
            s.counters.dropped.inc();
        }
        queued
    }

    /// Stop accepting records; the writer drains what is queued, finishes its file and exits.
    pub fn close(&self) {
        self.shared.closed.store(true, SeqCst);
        // If the queue is full the writer is busy and sees the flag once it has drained it.
        let _ = self.tx.try_send(Msg::Wake);
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

/// Rate-limited error reporting: the first error, then at most one line per 10 s with a count.
struct ErrorReport {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorReport {
    fn report(&mut self, what: &str, path: &std::path::Path, lost: u64, err: &io::Error) {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < Duration::from_secs(10)) {
            self.suppressed += 1;
            return;
        }
        tracing::error!(target: "waygate::access_log", path = %path.display(), lost, suppressed = self.suppressed,
            "access log {what} failed: {err}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

struct Writer {
    config: AccessLogConfig,
    shared: Arc<Shared>,
    file: Option<LogFile>,
    line: String,
    /// Lines written to the current file but not yet known to be on disk.
    unflushed: u64,
    summary: WriterSummary,
    errors: ErrorReport,
}

impl Writer {
    fn new(config: AccessLogConfig, shared: Arc<Shared>) -> Self {
        Self {
            config,
            shared,
            file: None,
            line: String::with_capacity(1024),
            unflushed: 0,
            summary: WriterSummary::default(),
            errors: ErrorReport { last: None, suppressed: 0 },
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) -> WriterSummary {
        loop {
            let msg = match &self.file {
                Some(f) => rx.recv_timeout(f.end.duration_since(SystemTime::now()).unwrap_or_default()),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(msg) => {
                    self.handle(msg);
                    self.drain(rx);
                    self.batch(rx);
                    self.flush_idle();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.rotate_if_due();
            if self.shared.closed.load(SeqCst) {
                // Every `log` that saw the log open has finished its `try_send` once this reaches zero.
                while self.shared.in_flight.load(SeqCst) != 0 {
                    std::thread::yield_now();
                }
                self.drain(rx);
                break;
            }
        }
        self.finish_file();
        self.summary
    }

    /// Returns how many messages it handled.
    fn drain(&mut self, rx: &Receiver<Msg>) -> usize {
        let mut n = 0;
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    self.handle(msg);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return n,
            }
        }
    }

    /// While records keep coming, collect them on a short tick instead of blocking in `recv`: a receiver
    /// blocked in `recv` must be woken (a futex syscall and a context switch) by every `try_send`, which on a busy
    /// gateway cost a fifth of its throughput. The tick goes back to blocking once a tick finds nothing.
    fn batch(&mut self, rx: &Receiver<Msg>) {
        loop {
            std::thread::sleep(BATCH_TICK);
            let handled = self.drain(rx);
            self.rotate_if_due();
            if handled == 0 || self.shared.closed.load(SeqCst) {
                return;
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        if let Msg::Record(ex) = msg {
            self.write(&ex);
        }
    }

    fn rotate_if_due(&mut self) {
        if self.file.as_ref().is_some_and(|f| f.end <= SystemTime::now()) {
            self.finish_file();
        }
    }

    fn write(&mut self, ex: &Exchange) {
        self.rotate_if_due();
        if self.file.is_none() {
            let end = period_end(SystemTime::now(), self.config.rotation);
            match LogFile::create(&self.config.dir, &self.config.naming, end, self.config.gzip) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    self.lost(1);
                    self.errors.report("create", &self.config.dir, 1, &e);
                    return;
                }
            }
        }
        self.line.clear();
        match self.config.format {
            LogFormat::Alb => format_alb(ex, &mut self.line),
            LogFormat::Json => format_json(ex, &mut self.line),
        }
        self.line.push('\n');
        let Some(file) = self.file.as_mut() else { return };
        match file.write_line(self.line.as_bytes()) {
            Ok(()) => {
                self.unflushed += 1;
                self.summary.lines += 1;
                self.shared.lines.fetch_add(1, SeqCst);
            }
            Err(e) => {
                // What is buffered may or may not have reached the file: count it all as lost, and start a
                // new file with the next record.
                let lost = self.unflushed + 1;
                let path = file.path().to_owned();
                self.lost(lost);
                self.errors.report("write", &path, lost, &e);
                self.file = None;
                self.unflushed = 0;
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
                self.lost(lost);
                self.errors.report("flush", &path, lost, &e);
                self.file = None;
                self.unflushed = 0;
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
                self.lost(lost);
                self.errors.report("finish", &path, lost, &e);
            }
        }
        self.unflushed = 0;
    }

    fn lost(&mut self, n: u64) {
        self.summary.write_errors += n;
        self.shared.counters.write_errors.inc_by(n);
    }
}
