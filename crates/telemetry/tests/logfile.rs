//! The system log's file (`--log-file`): every line written reaches the file by close; on a full disk the file
//! is kept, lost lines are counted as dropped and each error once, no torn line is left, and writing resumes by
//! itself when space returns (the access log's behaviour, `sink`).

mod disk;

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use disk::{TempDir, Tmpfs, poll};
use waygate_telemetry::{LogCounters, SystemLogFile};

fn line(i: usize) -> String {
    format!("2026-01-01T00:00:00Z  WARN waygate::test: line {i:06} cause=TargetConnectionRefused\n")
}

#[test]
fn every_line_reaches_the_file_by_close() {
    let dir = TempDir::new("log-file");
    fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("waygate.log");
    let counters = LogCounters::default();
    let log = SystemLogFile::open(&path, counters.clone()).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let mut log = log.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    log.write_all(line(t * 1000 + i).as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert!(log.close(Duration::from_secs(30)), "the writer finished");
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count() as u64 + counters.dropped.get(), 2000, "written or counted");
    assert_eq!(counters.dropped.get(), 0, "1 MiB of buffer holds 2,000 short lines");
    assert!(text.lines().all(|l| l.ends_with("cause=TargetConnectionRefused")), "whole lines only");
    // After close: dropped and counted, never written.
    log.clone().write_all(line(9).as_bytes()).unwrap();
    assert_eq!(counters.dropped.get(), 1);
}

#[test]
fn opening_a_file_that_cannot_be_created_fails_at_once() {
    let err = SystemLogFile::open(std::path::Path::new("/nonexistent-waygate/dir/waygate.log"), LogCounters::default());
    assert!(err.is_err());
}

/// A full disk (a 256 KiB tmpfs filled up): one file throughout, the lost lines counted as dropped and the
/// errors far fewer than the lines, the file holding whole lines only, and the next lines written once space
/// returns.
#[test]
fn a_full_disk_keeps_the_file_counts_the_loss_and_recovers() {
    let dir = TempDir::new("log-file-full");
    fs::create_dir_all(&dir.0).unwrap();
    let Some(_mount) =
        Tmpfs::mount(&dir.0, "256k", "log file: a_full_disk_keeps_the_file_counts_the_loss_and_recovers")
    else {
        return;
    };
    let path = dir.0.join("waygate.log");
    let counters = LogCounters::default();
    let mut log = SystemLogFile::open(&path, counters.clone()).unwrap();
    log.write_all(line(0).as_bytes()).unwrap();
    poll(|| fs::read_to_string(&path).is_ok_and(|t| t.lines().count() == 1), "the first line on disk");
    let filler = dir.0.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);

    const N: usize = 5_000;
    let started = Instant::now();
    for i in 1..=N {
        log.write_all(line(i).as_bytes()).unwrap();
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(20)); // spread the lines over many batches
        }
    }
    // Every line of the full disk is lost and counted: the filler left no room for even one (a tmpfs fills by
    // pages, and the page the first line is in may have room: then a few lines fit before the error).
    poll(
        || {
            let written = fs::read_to_string(&path).map_or(0, |t| t.lines().count() as u64);
            written - 1 + counters.dropped.get() == N as u64
        },
        "every line written or counted as dropped",
    );
    let errors = counters.write_errors.get();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(counters.dropped.get() > (N as u64) / 2, "the disk was full: {} dropped", counters.dropped.get());
    // Back-off from 100 ms doubling: a handful of tries, whatever the number of lines or batches.
    assert!(errors >= 1 && (errors as f64) <= 2.0 + elapsed * 10.0, "{errors} errors in {elapsed} s for {N} lines");
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 2, "the log file and the filler, nothing else");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n') && text.lines().all(|l| l.starts_with("2026-")), "no torn line: {text:?}");

    // Space again: the next lines reach the same file, without anyone's help.
    fs::remove_file(&filler).unwrap();
    let marker = line(N + 1);
    poll(
        || {
            log.write_all(marker.as_bytes()).unwrap();
            fs::read_to_string(&path).is_ok_and(|t| t.contains(marker.trim_end()))
        },
        "lines written again after space returned",
    );
    assert!(log.close(Duration::from_secs(30)));
}
