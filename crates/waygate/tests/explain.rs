//! `waygate explain` and `GET /api/v1/exchanges/{request_id}` against the real binary on loopback: a refused
//! target's request explained end to end (timeline, cause, evidence, remediation, and the very access-log and
//! system-log lines the gateway wrote), `--json`, the 404 of a request that succeeded or is unknown (exit 1),
//! the ring pushing out the oldest failure beyond `[admin] flight_recorder`, an unreachable admin API
//! (exit 2), and `--logs DIR` rebuilding a record from the access and system logs once the ring or the gateway
//! no longer has it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::{Backend, Fault};
use waygate_faults::Cause;

/// `waygate explain ARGS... --admin ADDR --token-file FILE`: (exit code, stdout, stderr).
fn explain(admin: SocketAddr, token: &Path, args: &[&str]) -> (i32, String, String) {
    admin_cli("explain", admin, token, args)
}

/// Listener `public` sends `/broken*` to the refused target (no retry, no health check) and the rest to `ok`;
/// an admin token, an access log in `dir/logs`, and a flight recorder of 3.
fn config(dir: &Path, refused: SocketAddr, ok: SocketAddr) -> (PathBuf, PathBuf) {
    let token = dir.join("admin.token");
    std::fs::write(&token, "ops tok-ops\n").unwrap();
    let path = dir.join("waygate.toml");
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nflight_recorder = 3\n\
         [access_log]\ndir = \"logs\"\n\
         [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"ok\"\n\
         [[listener.rule]]\npriority = 1\npath = \"/broken*\"\ntarget_group = \"broken\"\n\
         [[target_group]]\nname = \"broken\"\nretries = 0\ntargets = [\"{refused}\"]\n\
         [target_group.health_check]\nenabled = false\n\
         [[target_group]]\nname = \"ok\"\ntargets = [\"{ok}\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    (path, token)
}

/// The access-log line holding `id`, polled (the writer thread flushes on its own time) with a deadline.
fn access_log_line(dir: &Path, id: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
        for file in files {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(id)) {
                return line.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no access-log line with {id} in {}", dir.display());
        std::thread::sleep(Duration::from_millis(50)); // polling the files, with a deadline
    }
}

#[test]
fn a_refused_targets_request_is_explained_end_to_end() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("explain");
    let (config, token) = config(&dir, refused.addr(), ok.addr());
    let gw = Proc::start(&config);
    let (public, admin) = (gw.listener("public"), gw.admin());
    gw.wait_line(&["ready"]);

    let resp = http_get(public, "/broken/x");
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    let id = request_id(&resp);
    let (code, out, err) = explain(admin, &token, &[&id]);
    assert_eq!(code, 0, "{err}");
    let cause = Cause::TargetConnectionRefused;
    for want in [
        format!("Request {id}: GET "),
        "Timeline: ".to_owned(),
        "connect (attempt 1)".to_owned(),
        "✗ FAILED HERE".to_owned(),
        format!("Cause: {} ({})", cause.name(), cause.title()),
        format!("attempt 1/1 → {}: TargetConnectionRefused in connect", refused.addr()),
        "errno ECONNREFUSED".to_owned(),
    ] {
        assert!(out.contains(&want), "no {want:?} in:\n{out}");
    }
    let first_words: String = cause.remediation().split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    assert!(out.contains(&first_words), "no remediation in:\n{out}");

    // The very lines the gateway wrote: the access log's, and the system log's after its timestamp.
    let logged = access_log_line(&dir.join("logs"), &id);
    assert!(out.contains(&format!("\n  {logged}\n")), "access-log line {logged:?} not in:\n{out}");
    let system = gw.wait_line(&[&id, "cause=TargetConnectionRefused"]);
    let after_time = system.split_once(' ').map(|(_, rest)| rest.trim_start()).unwrap();
    assert!(out.contains(&format!("\n  {after_time}\n")), "system-log line {after_time:?} not in:\n{out}");

    // --json: the admin API's record.
    let (code, json, _) = explain(admin, &token, &[&id, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["request_id"].as_str(), v["elb_status"].as_u64()), (Some(id.as_str()), Some(502)));
    assert_eq!(v["cause"]["name"], "TargetConnectionRefused");
    assert_eq!(v["attempts"][0]["phase"], "connect");

    // A request that succeeded is not recorded; nor is an id never seen: 404, exit 1, saying why.
    let good = http_get(public, "/");
    assert!(good.starts_with("HTTP/1.1 200"), "{good}");
    for unknown in [request_id(&good), "Root=1-00000000-000000000000000000000000".to_owned()] {
        let (code, _, err) = explain(admin, &token, &[&unknown]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("no failed exchange with request id") && err.contains("404"), "{err}");
    }

    // Three more failures push the first out of a ring of three.
    let later: Vec<String> = (0..3).map(|_| request_id(&http_get(public, "/broken/y"))).collect();
    assert_eq!(explain(admin, &token, &[&id]).0, 1, "the oldest left the ring");
    for kept in &later {
        assert_eq!(explain(admin, &token, &[kept]).0, 0, "{kept} is kept");
    }

    // The admin API needs its token here like everywhere; an unreachable one is exit 2.
    let wrong = dir.join("wrong.token");
    std::fs::write(&wrong, "nope\n").unwrap();
    assert_eq!(explain(admin, &wrong, &[&later[0]]).0, 1);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert_eq!(explain(closed, &token, &[&later[0]]).0, 2);

    // --logs: a record that left the ring, then one whose gateway is down, rebuilt from the files under DIR
    // (the access log, and the system log saved as a file).
    access_log_line(&dir.join("logs"), &later[0]);
    gw.wait_line(&[&later[0], "cause=TargetConnectionRefused"]);
    std::fs::write(dir.join("waygate.log"), gw.log()).unwrap();
    let logs = dir.to_str().unwrap();
    let (code, out, err) = explain(admin, &token, &[&id, "--logs", logs]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no failed exchange") && err.contains("rebuilding the story from the logs"), "{err}");
    for want in ["✗ FAILED HERE", &format!("\n  {logged}\n"), &format!("\n  {after_time}\n"), &first_words] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    drop(gw);
    let (code, out, err) = explain(admin, &token, &[&later[0], "--logs", logs]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Request {}: GET ", later[0])) && out.contains("connect (attempt 1)"), "{out}");
    let (code, _, err) = explain(admin, &token, &["Root=1-00000000-000000000000000000000009", "--logs", logs]);
    assert_eq!(code, 1);
    assert!(err.contains("no access-log line with request id"), "{err}");
}
