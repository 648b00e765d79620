//! The pipeline: discover files, read them into chunks on reader threads, parse and count the chunks on a
//! rayon pool (`par_bridge` over a bounded channel), merge the per-task accumulators, build the report. When
//! the input holds ALB connection logs, a second pass over the same files joins the examples' requests and
//! connections by `conn_trace_id` ([`crate::links`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

use crate::accum::{Acc, Filter};
use crate::audit::Deregistration;
use crate::connlog::ConnKind;
use crate::fx::FxHashSet;
use crate::input::{BufPool, Chunk, InputFile, PathError, ReadEnd, discover, read_file};
use crate::links::{Joined, Joiner};
use crate::report::{Report, build};

/// Inputs this large (bytes on disk) get a progress bar when stderr is a terminal.
pub const PROGRESS_MIN_BYTES: u64 = 32 << 20;

/// How to analyse.
#[derive(Debug, Clone)]
pub struct Options {
    pub filter: Filter,
    /// Worker threads; `None` for one per core.
    pub threads: Option<usize>,
    /// How many malformed lines to show.
    pub max_examples: usize,
    /// Deregistrations from waygate's audit log.
    pub audit: Vec<Deregistration>,
    /// Draw a progress bar on stderr (only if it is a terminal and the input is large).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { filter: Filter::default(), threads: None, max_examples: 10, audit: Vec::new(), progress: false }
    }
}

/// Why an analysis could not run at all.
#[derive(Debug)]
pub enum AnalyzeError {
    /// A path given does not exist or cannot be read (a user error).
    Path(PathError),
    /// The thread pool could not start (an internal error).
    Internal(String),
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}: {}", p.path.display(), p.error),
            Self::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for AnalyzeError {}

fn progress_bar(total: u64, enabled: bool) -> Option<indicatif::ProgressBar> {
    if !enabled || total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Analyses files and directories.
pub fn analyze(paths: &[PathBuf], opts: &Options) -> Result<Report, AnalyzeError> {
    let (files, problems) = discover(paths).map_err(AnalyzeError::Path)?;
    let threads = opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("doctor-{i}"))
        .build()
        .map_err(|e| AnalyzeError::Internal(e.to_string()))?;
    let bar = progress_bar(files.iter().map(|f| f.size).sum(), opts.progress);
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let n = opts.max_examples;
    let filter = &opts.filter;
    let (mut acc, read_errors) = scan(
        &files,
        threads,
        &pool,
        &progress,
        || Acc::new(n),
        |acc: &mut Acc, c: &Chunk| acc.process_chunk(filter, c.file, c.index, &c.buf[..c.len]),
        Acc::merge,
    );
    if let Some(wanted) = join_wanted(&acc) {
        let none = |_| {};
        let (joined, _) = scan(
            &files,
            threads,
            &pool,
            &none,
            || Joiner { wanted: &wanted, joined: Joined::default() },
            |j: &mut Joiner<'_>, c: &Chunk| j.process_chunk(c.file, c.index, &c.buf[..c.len]),
            |a, b| Joiner { wanted: a.wanted, joined: a.joined.merge(b.joined) },
        );
        acc.joined = Some(joined.joined);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(build(&acc, &files, problems, read_errors, &opts.audit))
}

/// The `conn_trace_id`s the second pass looks for (the examples'), when the input holds ALB connection logs
/// and an example carries one.
fn join_wanted(acc: &Acc) -> Option<FxHashSet<Box<[u8]>>> {
    if acc.conns[ConnKind::AlbConnection as usize].connections == 0 {
        return None;
    }
    let requests = acc.causes.iter().flat_map(|c| &c.examples).filter_map(|e| e.trace_id.clone());
    let conns =
        acc.conns[ConnKind::AlbConnection as usize].examples.values().flatten().filter_map(|d| d.trace_id.clone());
    let wanted: FxHashSet<Box<[u8]>> = requests.chain(conns).collect();
    (!wanted.is_empty()).then_some(wanted)
}

/// Reads every file into chunks and folds them on the pool: `init` makes a task's state, `fold` takes a
/// chunk, `merge` joins two states.
fn scan<T: Send>(
    files: &[InputFile],
    threads: usize,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(u64) + Sync),
    init: impl Fn() -> T + Sync + Send,
    fold: impl Fn(&mut T, &Chunk) + Sync + Send,
    merge: impl Fn(T, T) -> T + Sync + Send,
) -> (T, Vec<(u32, String)>) {
    let (tx, rx) = sync_channel::<Chunk>(threads * 2);
    let bufs = BufPool::default();
    let next = AtomicUsize::new(0);
    let read_errors = Mutex::new(Vec::new());
    let readers = files.len().min(threads).max(1);
    let acc = std::thread::scope(|s| {
        for _ in 0..readers {
            let tx = tx.clone();
            let (next, bufs, read_errors) = (&next, &bufs, &read_errors);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    if let ReadEnd::Failed(e) = read_file(i as u32, &f.path, &tx, bufs, progress)
                        && let Ok(mut errs) = read_errors.lock()
                    {
                        errs.push((i as u32, e));
                    }
                }
            });
        }
        drop(tx);
        pool.install(|| {
            rx.into_iter()
                .par_bridge()
                .fold(&init, |mut state, c| {
                    fold(&mut state, &c);
                    bufs.give(c.buf);
                    state
                })
                .reduce(&init, &merge)
        })
    });
    (acc, read_errors.into_inner().unwrap_or_default())
}

/// Analyses log text already in memory (one pseudo-file named `<input>`), single-threaded. For tests,
/// the fuzzer and embedding.
pub fn analyze_bytes(data: &[u8], opts: &Options) -> Report {
    let mut acc = Acc::new(opts.max_examples);
    acc.process_chunk(&opts.filter, 0, 0, data);
    if let Some(wanted) = join_wanted(&acc) {
        let mut j = Joiner { wanted: &wanted, joined: Joined::default() };
        j.process_chunk(0, 0, data);
        acc.joined = Some(j.joined);
    }
    let files = [InputFile { path: PathBuf::from("<input>"), size: data.len() as u64 }];
    build(&acc, &files, Vec::new(), Vec::new(), &opts.audit)
}
