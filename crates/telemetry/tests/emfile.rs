//! The access log when the process is out of descriptors (the data plane took them all): the writer opens its
//! file with the descriptor it holds in reserve, so no line is lost. One test in its own binary, because it
//! exhausts the descriptor table of the whole process: it lowers its own soft RLIMIT_NOFILE with prlimit(1)
//! (no privilege needed) and opens /dev/null until the kernel answers EMFILE.

mod disk;

use std::fs::File;
use std::process::Command;
use std::time::Duration;

use disk::TempDir;
use waygate_telemetry::{AccessLog, AccessLogConfig, AccessLogCounters, Exchange, LogFormat, NameParts};

fn prlimit(arg: &str) -> std::io::Result<std::process::Output> {
    Command::new("prlimit").args(["--pid", &std::process::id().to_string(), arg]).output()
}

#[test]
fn out_of_descriptors_the_access_log_still_opens_its_file_and_loses_nothing() {
    match prlimit("--nofile") {
        Ok(out) if out.status.success() => {}
        other => {
            let reason = format!("prlimit(1) from util-linux is needed: {other:?}");
            assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "cannot run: {reason}");
            println!("SKIPPED out_of_descriptors_the_access_log_still_opens_its_file: {reason}");
            return;
        }
    }
    let dir = TempDir::new("emfile");
    let mut config = AccessLogConfig::new(&dir.0, LogFormat::Alb, NameParts::new("waygate", "node-1"));
    config.rotation = Duration::from_millis(50);
    let counters = AccessLogCounters::default();
    let (log, join) = AccessLog::start(config, counters.clone()).unwrap();

    // A few hundred descriptors above what is open now, then every one of them taken.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let out = prlimit(&format!("--nofile={}:", open + 200)).unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(24) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(held.len() < 10_000, "no EMFILE: the limit was not lowered");
    }

    const N: usize = 300;
    for i in 0..N {
        let mut ex = Exchange::new("public".into(), "app/waygate/public".into(), "127.0.0.1:1".parse().unwrap());
        ex.trace_id = format!("Root=1-00000000-{i:024x}").into();
        assert!(log.log(&ex));
        if i % 30 == 0 {
            std::thread::sleep(Duration::from_millis(20)); // spread the lines over several rotations
        }
    }
    log.close();
    let summary = join.join().unwrap();
    drop(held);
    assert_eq!((summary.lines, summary.lost, counters.dropped.get()), (N as u64, 0, 0), "{summary:?}");
    assert!(summary.files.len() >= 2, "rotated at EMFILE too: {summary:?}");
}
