//! Out of descriptors, the operator's endpoints still answer (issue 24, item 2): the gateway runs under
//! `prlimit --nofile`, a flood of idle client connections takes every descriptor the data plane can get (its
//! accept fails with EMFILE), and `/live` and `/metrics` on the admin listener answer anyway, more times than the
//! reserve holds descriptors (each connection's slot goes back to the reserve). Once the flood leaves, the data
//! plane serves again.

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
    let exhausted = |log: &str| log.lines().any(|l| l.contains("accept failed") && l.contains("os error 24"));
    let mut flood = Vec::new();
    while !exhausted(&gw.log()) && flood.len() < FLOOD_MAX {
        flood.push(TcpStream::connect(public).expect("connect to the listener"));
    }
    gw.wait_line(&["accept failed", "os error 24"]);

    // More admin connections than the reserve holds, one after the other: each slot is given back.
    for round in 0..6 {
        let live = http_get(admin, "/live");
        assert!(live.starts_with("HTTP/1.1 200"), "round {round}: /live while out of descriptors: {live:?}");
        let metrics = http_get(admin, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200"), "round {round}: /metrics: {metrics:?}");
        assert!(metrics.contains("waygate_requests_total"), "{metrics}");
    }
    // The admin listener did meet EMFILE (the flood was not short of the limit) and served from its reserve.
    gw.wait_line(&["admin accept out of descriptors", "serving from the admin listener's reserve"]);

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
