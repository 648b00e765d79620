//! The access-log writer: N records in, N lines out across rotations (gzip on), drops and I/O errors counted,
//! ALB file names, plain files readable before rotation.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use flate2::read::MultiGzDecoder;
use regex::Regex;
use waygate_telemetry::{
    AccessLog, AccessLogConfig, AccessLogCounters, LogFormat, Metrics, NameParts, new_conn_trace_id,
};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        Self(std::env::temp_dir().join(format!("waygate-telemetry-{name}-{}-{nanos}", std::process::id())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mut text = String::new();
        let file = fs::File::open(&path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            MultiGzDecoder::new(file).read_to_string(&mut text).unwrap();
        } else {
            std::io::BufReader::new(file).read_to_string(&mut text).unwrap();
        }
        out.extend(text.lines().map(str::to_owned));
    }
    out
}

fn record(i: usize) -> waygate_telemetry::Exchange {
    let mut ex = success();
    ex.trace_id = format!("Root=1-00000000-{i:024x}").into();
    ex.conn_trace_id = Some(new_conn_trace_id());
    ex.user_agent = Some(format!("load \"test\" {i}").into());
    ex
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_rotating_every_50ms_gzipped() {
    const N: usize = 10_000;
    let dir = TempDir::new("rotation");
    let metrics = Metrics::new();
    let mut config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "127.0.0.1"));
    config.gzip = true;
    config.rotation = Duration::from_millis(50);
    config.queue_capacity = N;
    let (log, join) = AccessLog::start(config, metrics.access_log_counters()).unwrap();

    // Spread the records over several rotation periods (pacing, not synchronisation).
    for batch in 0..20 {
        for i in batch * (N / 20)..(batch + 1) * (N / 20) {
            assert!(log.log(&record(i)), "record {i} queued");
        }
        tokio::time::sleep(Duration::from_millis(12)).await;
    }
    log.shutdown().await;
    let summary = tokio::task::spawn_blocking(move || join.join().unwrap()).await.unwrap();

    assert_eq!(summary.lines, N as u64);
    assert_eq!(summary.write_errors, 0);
    assert_eq!(log.dropped(), 0);
    assert!(summary.files.len() >= 3, "rotated into several files: {:?}", summary.files);

    let names = Regex::new(
        r"^000000000000_elasticloadbalancing_local_app\.waygate\.[0-9a-f]{16}_[0-9]{8}T[0-9]{4}Z_127\.0\.0\.1_[a-z0-9]{8}\.log\.gz$",
    )
    .unwrap();
    let on_disk: Vec<String> =
        fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(on_disk.len(), summary.files.len(), "no partial files left: {on_disk:?}");
    for name in &on_disk {
        assert!(names.is_match(name), "ALB file name: {name}");
    }

    let lines = read_lines(&dir.0);
    assert_eq!(lines.len(), N);
    // Every line matches the Athena regex; the columns are captured for a sample (capturing is slow in debug
    // builds, and tests/alb.rs checks columns case by case).
    let re = athena();
    let mut ids = BTreeSet::new();
    for (n, line) in lines.iter().enumerate() {
        assert!(re.is_match(line), "Athena cannot read {line}");
        if n % 250 == 0 {
            let cols = columns(&re, line).unwrap();
            assert!(cols["trailing"].starts_with("TID_"), "{line}");
            assert!(cols["user_agent"].starts_with("load \\x22test\\x22 "), "{line}");
        }
        let id = line.split_once("\"Root=1-").map(|(_, rest)| &rest[..33]);
        ids.insert(id.unwrap_or_else(|| panic!("trace id in {line}")).to_owned());
    }
    assert_eq!(ids.len(), N, "every record exactly once");
    assert!(metrics.encode().contains("waygate_access_log_dropped_total 0"));
}

#[test]
fn a_full_queue_drops_and_counts_never_blocks() {
    let dir = TempDir::new("drops");
    let mut config = AccessLogConfig::new(&dir.0, LogFormat::Json, NameParts::new("waygate", "node-1"));
    config.queue_capacity = 4;
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || (0..500).filter(|i| log.log(&record(t * 500 + i))).count())
        })
        .collect();
    let queued: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    log.close();
    let summary = join.join().unwrap();
    assert_eq!(summary.lines, queued as u64);
    assert_eq!(summary.lines + counters.dropped.get(), 2_000, "written + dropped = logged");
    let lines = read_lines(&dir.0);
    assert_eq!(lines.len(), queued);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["elb_status_code"], 200);
    }
}

#[test]
fn records_after_close_are_counted_as_dropped() {
    let dir = TempDir::new("closed");
    let config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    let (log, join) = AccessLog::start(config, AccessLogCounters::default()).unwrap();
    assert!(log.log(&record(1)));
    log.close();
    assert!(!log.log(&record(2)));
    assert_eq!(log.dropped(), 1);
    let summary = join.join().unwrap();
    assert_eq!(summary.lines, 1);
    assert_eq!(read_lines(&dir.0).len(), 1);
}

#[test]
fn plain_files_are_readable_before_rotation() {
    let dir = TempDir::new("idle-flush");
    let config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    let (log, join) = AccessLog::start(config, AccessLogCounters::default()).unwrap();
    assert!(log.log(&record(7)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_lines(&dir.0).len() != 1 {
        assert!(Instant::now() < deadline, "the line reached the file while the log is open");
        std::thread::sleep(Duration::from_millis(5));
    }
    log.close();
    assert_eq!(join.join().unwrap().files.len(), 1);
}

#[test]
fn io_errors_are_counted_not_silent() {
    let dir = TempDir::new("io-error");
    let config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();
    fs::remove_dir_all(&dir.0).unwrap();
    for i in 0..3 {
        assert!(log.log(&record(i)));
    }
    log.close();
    let summary = join.join().unwrap();
    assert_eq!(summary.write_errors, 3);
    assert_eq!(counters.write_errors.get(), 3);
    assert_eq!(summary.lines, 0);
}

#[test]
fn dropping_every_handle_closes_the_log() {
    let dir = TempDir::new("dropped-handles");
    let config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    let (log, join) = AccessLog::start(config, AccessLogCounters::default()).unwrap();
    let clone = log.clone();
    assert!(clone.log(&record(1)));
    drop(log);
    assert!(clone.log(&record(2)), "open while a clone remains");
    drop(clone);
    // Joined on another thread, so that a writer that never ends fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(join.join().unwrap()));
    let summary = rx.recv_timeout(Duration::from_secs(30)).expect("the writer ends once every handle is dropped");
    assert_eq!(summary.lines, 2);
    assert_eq!(read_lines(&dir.0).len(), 2);
}
