//! What every log writer does when its disk fails (full, read-only, gone): shared by the access log
//! ([`crate::writer`]) and the system log file ([`crate::logfile`]), and meant for any other file log (the
//! connection log) so that all of them behave alike:
//!
//! - each I/O error counts once in the log's `write_errors` counter, however many lines it cost, and the lines
//!   it lost count in its `dropped` counter;
//! - the error is reported at most once per 10 s, with how many were not reported in between;
//! - the writer keeps its file and does not touch the disk again before a back-off, 100 ms doubling to 5 s;
//!   lines that come meanwhile are dropped and counted without an I/O;
//! - the first write that succeeds again reports the recovery once, with how many lines were lost.
//!
//! Where the report goes is the log's choice: the access log reports through `tracing` (the system log); the
//! system log file cannot report its own failure into itself, so it writes to stderr.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::metrics::LogCounters;

/// The first wait after an I/O error before the disk is tried again, doubled on each further error.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait: a disk that gets space back is written again within this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most one error report per this period.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Where a log's trouble is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTo {
    /// The system log (`tracing`, target `waygate::{log}` with spaces as underscores).
    Tracing,
    /// Standard error, for the system log's own file.
    Stderr,
}

/// One log's disk-failure state: counters, back-off and reports.
#[derive(Debug)]
pub struct DiskTrouble {
    /// The log's name in reports ("access log", "system log").
    log: &'static str,
    to: ReportTo,
    counters: LogCounters,
    last_report: Option<Instant>,
    suppressed: u64,
    /// After an I/O error: no write is tried before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Lines lost since the last successful write (for the recovery report).
    lost_since_ok: u64,
    /// Totals over the writer's life.
    pub errors: u64,
    pub lost: u64,
}

impl DiskTrouble {
    pub fn new(log: &'static str, to: ReportTo, counters: LogCounters) -> Self {
        Self {
            log,
            to,
            counters,
            last_report: None,
            suppressed: 0,
            retry_at: None,
            backoff: MIN_BACKOFF,
            lost_since_ok: 0,
            errors: 0,
            lost: 0,
        }
    }

    /// True while backing off after an error: the caller drops its lines (through [`lost`](Self::lost)) without
    /// touching the disk.
    pub fn backing_off(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// One I/O error that cost `lost` lines: counted once, reported (rate-limited), and the next try put off.
    pub fn failed(&mut self, what: &str, path: &Path, lost: u64, err: &io::Error) {
        self.errors += 1;
        self.counters.write_errors.inc();
        self.lost(lost);
        let now = Instant::now();
        if self.last_report.is_some_and(|l| now.duration_since(l) < REPORT_EVERY) {
            self.suppressed += 1;
        } else {
            let (log, suppressed) = (self.log, self.suppressed);
            match self.to {
                ReportTo::Tracing => tracing::error!(target: "waygate::log_file", log, path = %path.display(), lost,
                    suppressed, "{log} {what} failed: {err}"),
                ReportTo::Stderr => eprintln!(
                    "waygate: {log} {what} failed: {err} (path={} lost={lost} suppressed={suppressed})",
                    path.display()
                ),
            }
            self.last_report = Some(now);
            self.suppressed = 0;
        }
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// A write went through: if it follows errors, report it once, with what was lost meanwhile.
    pub fn recovered(&mut self) {
        if self.retry_at.take().is_some() {
            let (log, lost) = (self.log, self.lost_since_ok);
            match self.to {
                ReportTo::Tracing => tracing::info!(target: "waygate::log_file", log, lost,
                    "{log} writing again; {lost} line(s) lost while it could not"),
                ReportTo::Stderr => eprintln!("waygate: {log} writing again; {lost} line(s) lost while it could not"),
            }
        }
        self.backoff = MIN_BACKOFF;
        self.lost_since_ok = 0;
    }

    /// Lines that will never reach the disk: the log's `dropped` counter.
    pub fn lost(&mut self, n: u64) {
        self.lost += n;
        self.lost_since_ok += n;
        self.counters.dropped.inc_by(n);
    }
}
