//! HTTP/2 conformance: h2spec, the standard suite of RFC 7540/9113 and RFC 7541 (HPACK) cases, run against a
//! gateway's https listener (ALPN h2) and its plain listener (h2c with prior knowledge), in front of a fault-lab
//! backend. Every case must pass (on the plain listener all but one, which does not apply to it: see
//! [`PLAIN_SPECS`]).
//!
//! h2spec is a Go program, and neither it nor its Go module can be installed from the package registries this
//! project's machines and CI reach (Debian's, crates.io, PyPI, npm): built from its source with Debian's Go
//! packages (`golang-go`, `golang-golang-x-net-dev`, `golang-github-spf13-cobra-dev`,
//! `golang-github-fatih-color-dev`), it runs here when `H2SPEC` names it or it is on `PATH`. Elsewhere this test
//! is skipped with that reason, even under `WAYGATE_TEST_REQUIRE_ALL`, and `h2_conformance.rs` runs h2spec's
//! cases that CI must never lose, with a frame-level client of its own.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{DEADLINE, tls_and_plain_gateway};

/// h2spec's run of the whole suite takes a few seconds; a case that fails waits its own timeout (`-o`), so a bound
/// that still ends a hung run.
const RUN_BOUND: Duration = Duration::from_secs(300);

/// The sections h2spec runs on the plain listener: all but http2/3.5/2 (see below).
const PLAIN_SPECS: &[&str] =
    &["generic", "hpack", "http2/3.5/1", "http2/4", "http2/5", "http2/6", "http2/7", "http2/8"];

/// Where h2spec is: `H2SPEC` when set, else on `PATH`, else where `go install` puts it (`$GOPATH/bin`,
/// `$HOME/go/bin`). `None`: not installed.
fn h2spec() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("H2SPEC") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(gopath) = std::env::var_os("GOPATH") {
        dirs.extend(std::env::split_paths(&gopath).map(|p| p.join("bin")));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    dirs.push(PathBuf::from("/root/go/bin"));
    dirs.into_iter().map(|d| d.join("h2spec")).find(|p| p.is_file())
}

/// Runs h2spec with `args`, bounded by [`RUN_BOUND`]; its exit status and output.
async fn run(bin: PathBuf, args: Vec<String>) -> (bool, String) {
    let run = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(bin);
        command.args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().expect("h2spec starts");
        let id = child.id();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // Ends an overrunning h2spec (by its own pid), so that the test fails with its output instead of hanging.
        let watchdog = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(RUN_BOUND) {
                let _ = Command::new("kill").args(["-KILL", &id.to_string()]).status();
            }
        });
        let out = child.wait_with_output().expect("h2spec runs");
        drop(done_tx);
        let _ = watchdog.join();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    });
    run.await.expect("the h2spec runner")
}

/// The summary line h2spec ends with (`146 tests, 146 passed, 0 skipped, 0 failed`), as numbers.
fn summary(out: &str) -> Option<(u32, u32, u32, u32)> {
    let line = out.lines().rev().find(|l| l.contains(" tests, ") && l.contains(" failed"))?;
    let n: Vec<u32> = line.split(", ").filter_map(|part| part.trim().split(' ').next()?.parse().ok()).collect();
    match n[..] {
        [tests, passed, skipped, failed] => Some((tests, passed, skipped, failed)),
        _ => None,
    }
}

/// The failed cases, as h2spec lists them after its run (the section that starts with `Failures:`).
fn failures(out: &str) -> String {
    out.split_once("Failures:").map_or_else(|| out.to_owned(), |(_, rest)| rest.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2spec_passes_on_the_tls_and_the_plain_listener() {
    let Some(bin) = h2spec() else {
        eprintln!(
            "skipped: h2spec is not installed (no H2SPEC, not on PATH, nor in $GOPATH/bin or ~/go/bin); no registry \
             this project reaches has it, so h2_conformance.rs covers its cases in CI"
        );
        return;
    };
    let (_backend, gw, tls_addr, plain_addr) = tls_and_plain_gateway("h2spec-pki").await;
    for (what, addr, tls) in [("TLS (ALPN h2)", tls_addr, true), ("plain (h2c prior knowledge)", plain_addr, false)] {
        let mut args: Vec<String> =
            ["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-o", "5"].iter().map(|s| s.to_string()).collect();
        if tls {
            args.extend(["-t".to_owned(), "-k".to_owned()]);
        } else {
            // Every case but http2/3.5/2 ("Sends invalid connection preface"): a plain listener serves HTTP/1.1 and
            // h2c with prior knowledge on one port, and tells them apart by the first bytes, so bytes that are not
            // the preface are an HTTP/1 request, answered as one (400 for h2spec's junk). On the TLS listener,
            // where ALPN chose h2, the case runs and the preface is required (GOAWAY PROTOCOL_ERROR).
            args.extend(PLAIN_SPECS.iter().map(|s| s.to_string()));
        }
        let (ok, out) = run(bin.clone(), args).await;
        let counts = summary(&out);
        eprintln!("h2spec on the {what} listener: {counts:?}");
        let (tests, passed, _, failed) = counts.unwrap_or_else(|| panic!("{what}: no h2spec summary in:\n{out}"));
        assert!(ok && failed == 0, "{what}: h2spec failed {failed} of {tests} cases:\n{}", failures(&out));
        assert!(passed >= 145, "{what}: only {passed} of {tests} cases ran and passed:\n{out}");
    }
    gw.shutdown(DEADLINE).await;
}
