//! Out of descriptors, the operator's endpoints still answer (issue 24, item 2): the gateway runs under
//! `prlimit --nofile`, a flood of idle client connections takes every descriptor the data plane can get (its
//! accept fails with EMFILE), and `/live` and `/metrics` on the admin listener answer anyway, more times than the
//! reserve holds descriptors (each connection's slot goes back to the reserve). Once the flood leaves, the data
//! plane serves again.
//!
//! Other parts of the gateway free a descriptor now and then (a health check's connection closing), and an admin
//! connection that finds such a slot free does not need the reserve. So each admin round starts just after the
//! data plane logged a failed accept (every slot taken at that moment), and rounds go on until the admin log
//! lines account for more reserve-served connections than the reserve holds, each line written with only its
//! own connection's slot out of the reserve.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::Backend;

/// The gateway's descriptor limit: enough to start (runtimes, listeners, the access log off), few enough that a
/// test floods it with a hundred connections.
const NOFILE: &str = "--nofile=64:64";
/// Client connections the flood may open before the gateway must have run out (the limit plus margin, and
/// within the listener's backlog of 128 so that no connect waits for a SYN retry).
const FLOOD_MAX: usize = 120;
/// Connections opened after the gateway ran out, left pending in the backlog: whenever a descriptor comes free
/// the data plane accepts one of them, and with some always pending its accept keeps failing (and logging).
const FLOOD_PENDING: usize = 24;
/// The admin listener's reserve of descriptors (`RESERVED_DESCRIPTORS` in the admin crate).
const RESERVE: u64 = 8;
/// The data plane's accept failures (the admin's own are "admin accept ...").
const DATA_PLANE_EMFILE: &[&str] = &["waygate::listener: accept failed", "os error 24"];
const ADMIN_EMFILE: &str = "admin accept out of descriptors";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_metrics_answer_while_the_data_plane_is_out_of_descriptors() {
    let test = "admin_and_metrics_answer_while_the_data_plane_is_out_of_descriptors";
    if cannot_run(test, "the descriptor limit is lowered with prlimit on the gateway it starts", &["prlimit"]) {
        return;
    }
    let backend = Backend::new("fd").spawn(loopback()).await.unwrap();
    let dir = tempdir("emfile");
    let config = write_config(&dir, &[backend.addr()]);
    let gw = Proc::start_wrapped(&["prlimit", NOFILE, "--"], &config);
    let (public, admin) = (gw.listener("public"), gw.admin());
    assert!(http_get(public, "/").starts_with("HTTP/1.1 200"), "the data plane serves before the flood");

    // Idle client connections until the gateway's accept fails for lack of descriptors.
    let mut flood = Vec::new();
    while gw.count_lines(DATA_PLANE_EMFILE) == 0 && flood.len() < FLOOD_MAX {
        flood.push(TcpStream::connect(public).expect("connect to the listener"));
    }
    gw.wait_line(DATA_PLANE_EMFILE);
    for _ in 0..FLOOD_PENDING {
        flood.push(TcpStream::connect(public).expect("connect to the listener"));
    }

    // More admin connections served from the reserve than it holds, one after the other: each slot is given
    // back. A round starts on a fresh data-plane failure (lines come at most once a second), so that its
    // connections find every slot taken; the admin's line for a second's failures is written at the next one.
    let deadline = Instant::now() + 3 * DEADLINE;
    let mut round = 0;
    while served_from_reserve(&gw.log()) <= RESERVE {
        assert!(Instant::now() < deadline, "{round} admin rounds, the reserve not used enough:\n{}", gw.log());
        gw.wait_nth_line(DATA_PLANE_EMFILE, gw.count_lines(DATA_PLANE_EMFILE) + 1);
        let live = http_get(admin, "/live");
        assert!(live.starts_with("HTTP/1.1 200"), "round {round}: /live while out of descriptors: {live:?}");
        let metrics = http_get(admin, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200"), "round {round}: /metrics: {metrics:?}");
        assert!(metrics.contains("waygate_requests_total"), "{metrics}");
        round += 1;
    }

    // Each connection's slot came back: every line was written with only its own connection's slot out, give
    // or take one slot lost to a data-plane accept in the microseconds a slot is free (a slot lost per
    // connection, to a spurious release or to a close the reserve did not take back, shows here).
    for line in gw.log().lines().filter(|l| l.contains(ADMIN_EMFILE)) {
        let left = field(line, "reserve_left").unwrap_or_else(|| panic!("no reserve_left in {line}"));
        assert!(left + 2 >= RESERVE, "reserve slots were lost: {line}\n{}", gw.log());
    }
    drop(flood);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let resp = http_get(public, "/");
        if resp.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the data plane never served again: {resp:?}\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await; // polling, with the deadline above
    }
}

/// Admin connections accepted into a reserve slot, as the admin's rate-limited lines count them.
fn served_from_reserve(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(ADMIN_EMFILE) && l.contains("serving from the admin listener's reserve"))
        .filter_map(|l| field(l, "count"))
        .sum()
}

/// A numeric field (`name=N`) of a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    line.split(&format!(" {name}=")).nth(1)?.split(' ').next()?.parse().ok()
}
