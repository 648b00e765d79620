//! `waygate run --log-file FILE`: the system log goes to the file (not stderr), its counters are in /metrics,
//! the last line before exit ("drained, exiting") is in the file when the process has exited, and a file that
//! cannot be opened is a startup error naming it.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Waits (bounded) until the file holds a line with every fragment; returns that line.
fn file_line(path: &std::path::Path, fragments: &[&str]) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| fragments.iter().all(|f| l.contains(f))) {
            return l.to_owned();
        }
        assert!(Instant::now() < deadline, "no line with {fragments:?} in {}:\n{text}", path.display());
        std::thread::sleep(Duration::from_millis(20)); // polling the file, with the deadline above
    }
}

#[test]
fn the_system_log_goes_to_the_file_and_its_last_line_is_written_before_exit() {
    let dir = tempdir("log-file");
    let config = write_config(&dir, &["127.0.0.1:9".parse().unwrap()]);
    let log = dir.join("waygate.log");
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .arg("--log-file")
        .arg(&log)
        .env("WAYGATE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = file_line(&log, &["admin listening"]);
    let admin = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("addr=")?.parse().ok())
        .unwrap_or_else(|| panic!("no addr= in {line}"));
    let metrics = http_get(admin, "/metrics");
    assert!(metrics.contains("waygate_system_log_dropped_total 0"), "{metrics}");
    assert!(metrics.contains("waygate_system_log_write_errors_total 0"), "{metrics}");

    let status = Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + DEADLINE;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "waygate did not exit");
        std::thread::sleep(Duration::from_millis(20)); // polling the exit status, with the deadline above
    };
    assert_eq!(code, Some(0));
    // Written before the process ended, not by a thread that outlived it.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().last().is_some_and(|l| l.contains("drained, exiting")), "{text}");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains("listening"), "the system log went to stderr too: {stderr}");
}

#[test]
fn a_log_file_that_cannot_be_opened_is_a_startup_error() {
    let dir = tempdir("log-file-bad");
    let config = write_config(&dir, &["127.0.0.1:9".parse().unwrap()]);
    let bad = dir.join("no-such-dir").join("waygate.log");
    let out = Command::new(bin()).args(["run", "--config"]).arg(&config).arg("--log-file").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the log file") && stderr.contains("no-such-dir"), "{stderr}");
}
