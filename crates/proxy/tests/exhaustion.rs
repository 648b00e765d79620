//! The gateway's own host out of descriptors (EMFILE) is the gateway's cause, never the target's: requests get
//! 503 GatewayResourceExhausted (Proxy-Status `proxy_internal_error`), the healthy target stays healthy through
//! health checks that cannot open a socket, nothing counts as a target connection error, the log says it once
//! a second with a count, and everything works again once descriptors are free.
//!
//! The exhaustion is real: this test binary (one test, so nothing else shares its descriptor table) lowers its
//! own RLIMIT_NOFILE with prlimit(1) and opens /dev/null until the kernel answers EMFILE. Its client
//! connection is opened and served first, so only the gateway's next socket, towards the target, fails.

mod common;

use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use waygate_faultlab::Backend;
use waygate_proxy::target::health::State;

const PROXY_STATUS: &str = "waygate; error=proxy_internal_error; details=\"GatewayResourceExhausted\"";

#[tokio::test]
async fn out_of_descriptors_is_the_gateways_cause_and_blames_no_target() {
    let Some(restore) = lower_fd_limit(256) else { return };
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let text = simple_config(
        &[backend.addr()],
        "[[listener.rule]]\npriority = 1\npath = \"/fixed\"\n\
         fixed_response = { status = 200, body = \"fixed\", content_type = \"text/plain\" }\n",
    );
    let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    let hc = &mut config.target_groups[0].health_check;
    (hc.enabled, hc.interval, hc.timeout) = (true, Duration::from_millis(50), Duration::from_millis(500));
    (hc.healthy_threshold, hc.unhealthy_threshold) = (2, 2);
    let gw = waygate_proxy::Gateway::start(config).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    let rt = gw.runtime();
    let target = &rt.groups["app"].targets[0];
    within("the target healthy", async {
        while target.health.state() != State::Healthy {
            tokio::time::sleep(Duration::from_millis(10)).await; // polling, bounded by `within`
        }
    })
    .await;

    // One client connection, accepted and served (a fixed response: no target connection is pooled yet).
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(send(&mut client, "/fixed").await.status, 200);

    let logs = LogCapture::default();
    let _guard = logs.install();
    let filler = exhaust_descriptors();
    let skipped_before = target.health.skipped_checks();
    let started = Instant::now();
    const REQUESTS: usize = 20;
    for _ in 0..REQUESTS {
        let resp = send(&mut client, "/").await;
        assert_eq!(resp.status, 503, "{resp:?}");
        assert_eq!(resp.header("proxy-status"), PROXY_STATUS);
    }
    // Health checks keep running and cannot open a socket either: skipped, no verdict.
    within("health checks skipped for lack of descriptors", async {
        while target.health.skipped_checks() < skipped_before + 4 {
            tokio::time::sleep(Duration::from_millis(10)).await; // polling, bounded by `within`
        }
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(target.health.state(), State::Healthy, "last check: {:?}", target.health.last());
    drop(filler);

    let metrics = gw.metrics().encode();
    assert_eq!(metric(&metrics, "waygate_target_connection_errors_total", &[]), 0.0, "{metrics}");
    let exhausted = [("cause", "GatewayResourceExhausted"), ("code", "503")];
    assert_eq!(metric(&metrics, "waygate_elb_responses_total", &exhausted), REQUESTS as f64, "{metrics}");
    // Rate-limited: one line a second at most (and at least one), naming the errno and how many it stands for.
    let log = logs.text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("cause=GatewayResourceExhausted")).collect();
    assert!(
        !lines.is_empty() && lines.len() as u64 <= elapsed.as_secs() + 1,
        "{} lines in {elapsed:?}:\n{log}",
        lines.len()
    );
    assert!(lines[0].contains("errno=EMFILE") && lines[0].contains("count=1"), "{}", lines[0]);
    let skip_lines = log.lines().filter(|l| l.contains("health check skipped")).count() as u64;
    assert!(skip_lines >= 1 && skip_lines <= elapsed.as_secs() + 1, "{log}");

    // Descriptors back: the same target serves at once, it was never out.
    assert_eq!(send(&mut client, "/").await.status, 200);
    assert_eq!(target.health.state(), State::Healthy);
    drop(restore);
}

async fn send(client: &mut SendRequest<http_body_util::Full<Bytes>>, path: &str) -> Resp {
    within("a response", async {
        client.ready().await.expect("client connection open");
        let resp = client.send_request(request("GET", path, "app.example", Bytes::new())).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = http_body_util::BodyExt::collect(body).await.expect("body").to_bytes();
        Resp { status: parts.status, version: parts.version, headers: parts.headers, body, trailers: None }
    })
    .await
}

/// Opens /dev/null until the kernel says EMFILE; the files are the descriptors held.
fn exhaust_descriptors() -> Vec<File> {
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(24) => return held,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(held.len() < 100_000, "no EMFILE after 100,000 descriptors: the limit was not lowered");
    }
}

/// Puts the soft RLIMIT_NOFILE of this process back on drop.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = prlimit(&format!("--nofile={}", self.0));
    }
}

fn prlimit(arg: &str) -> std::io::Result<std::process::Output> {
    Command::new("prlimit").args(["--pid", &std::process::id().to_string(), arg]).output()
}

/// Lowers this process's soft descriptor limit (no privilege needed to lower it) so that exhausting it takes a
/// few hundred files, not the million a CI host may allow. Skips, saying why, when prlimit(1) is missing.
fn lower_fd_limit(limit: u32) -> Option<Restore> {
    let current = match prlimit("--nofile") {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            let reason = format!("prlimit(1) from util-linux is needed: {other:?}");
            assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "cannot run: {reason}");
            println!("SKIPPED out_of_descriptors: {reason}");
            return None;
        }
    };
    // "RESOURCE DESCRIPTION SOFT HARD UNITS": the soft limit is the second-to-last column of the NOFILE row.
    let soft = current.lines().find(|l| l.starts_with("NOFILE")).and_then(|l| l.split_whitespace().rev().nth(2));
    let soft = soft.unwrap_or_else(|| panic!("prlimit output: {current}")).to_owned();
    let out = prlimit(&format!("--nofile={limit}:")).expect("prlimit");
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    Some(Restore(format!("{soft}:")))
}
