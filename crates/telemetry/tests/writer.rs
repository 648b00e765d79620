//! The access-log writer: N records in, N lines out across rotations (gzip on), drops and I/O errors counted,
//! ALB file names, plain files readable before rotation.

mod common;
mod disk;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use disk::{TempDir, Tmpfs, poll};
use flate2::read::MultiGzDecoder;
use regex::Regex;
use waygate_telemetry::{
    AccessLog, AccessLogConfig, AccessLogCounters, LogFormat, Metrics, NameParts, new_conn_trace_id,
};

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

/// Records handed over whole are formatted by the writer thread: the same lines `alb_line` makes, in the order
/// they were kept, after the lines formatted by their callers; a full slot or a closed log drops and counts them.
#[test]
fn kept_records_are_formatted_by_the_writer_in_order() {
    let dir = TempDir::new("kept");
    let mut config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    config.queue_capacity = 1_000;
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();
    let records: Vec<_> = (0..100).map(record).collect();
    assert!(log.log(&records[0]), "formatted by the caller");
    for (i, ex) in records.iter().enumerate().skip(1) {
        assert!(log.keep(Box::new(ex.clone())), "record {i} kept");
    }
    log.close();
    assert!(!log.keep(Box::new(record(100))), "the log is closed");
    assert_eq!(join.join().unwrap().lines, 100);
    assert_eq!(counters.dropped.get(), 1);
    let want: Vec<String> = records.iter().map(waygate_telemetry::alb_line).collect();
    assert_eq!(read_lines(&dir.0), want);

    let dir = TempDir::new("kept-full");
    let mut config = AccessLogConfig::new(&dir.0, LogFormat::Json, NameParts::new("waygate", "node-1"));
    config.queue_capacity = 2;
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();
    // One thread, one slot: whatever the writer has collected meanwhile, 50 records are written or counted.
    let kept = (0..50).filter(|&i| log.keep(Box::new(record(i)))).count();
    log.close();
    assert_eq!(join.join().unwrap().lines, kept as u64);
    assert_eq!(kept as u64 + counters.dropped.get(), 50, "written + dropped = kept");
    for line in read_lines(&dir.0) {
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
    // Lost lines are dropped lines; the errors count once each (one or more batches, never one per line more).
    assert_eq!((summary.lost, counters.dropped.get(), summary.lines), (3, 3, 0));
    assert!((1..=3).contains(&summary.write_errors), "{summary:?}");
    assert_eq!(counters.write_errors.get(), summary.write_errors);
}

/// A full disk (a 256 KiB tmpfs filled up): the writer keeps its one file, counts the lost lines as dropped and
/// each error once (far fewer than the lines), and writes again by itself when space returns.
#[test]
fn a_full_disk_keeps_the_file_counts_the_loss_and_recovers() {
    let dir = TempDir::new("full-disk");
    fs::create_dir_all(&dir.0).unwrap();
    let Some(_mount) = Tmpfs::mount(&dir.0, "256k", "a_full_disk_keeps_the_file_counts_the_loss_and_recovers") else {
        return;
    };
    let logs = dir.0.join("logs");
    let config = AccessLogConfig::new(&logs, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();
    assert!(log.log(&record(0)));
    poll(|| log.lines_written() == 1 && read_lines(&logs).len() == 1, "the first line on disk");
    // Fill what is left of the tmpfs.
    let filler = dir.0.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);

    const N: usize = 5_000;
    let started = Instant::now();
    for i in 1..=N {
        assert!(log.log(&record(i)));
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(20)); // spread the lines over many batches
        }
    }
    poll(|| counters.dropped.get() == N as u64, "every line of the full disk counted as dropped");
    let errors = counters.write_errors.get();
    let elapsed = started.elapsed().as_secs_f64();
    // Back-off from 100 ms doubling: a handful of tries, whatever the number of lines or batches.
    assert!(errors >= 1 && (errors as f64) <= 2.0 + elapsed * 10.0, "{errors} errors in {elapsed} s for {N} lines");
    assert_eq!(fs::read_dir(&logs).unwrap().count(), 1, "no new file per failed batch");

    // Space again: the next lines reach the same file, without anyone's help.
    fs::remove_file(&filler).unwrap();
    poll(
        || {
            log.log(&record(N + 1));
            read_lines(&logs).iter().any(|l| l.contains(&format!("{:024x}", N + 1)))
        },
        "lines written again after space returned",
    );
    assert_eq!(fs::read_dir(&logs).unwrap().count(), 1);
    log.close();
    let summary = join.join().unwrap();
    assert_eq!(summary.write_errors, counters.write_errors.get());
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
