//! `waygate targets ...` and the admin API's control endpoints against the real binary: register and
//! deregister (with `--wait` following the drain), the refusals and their exit codes, the audit log naming the
//! token's holder, and `POST /api/v1/reload` rejecting a broken file with FILE:LINE:COL.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use waygate_faultlab::Backend;

/// Runs `waygate targets ARGS... --admin ADDR --token-file FILE`; returns (exit code, stdout, stderr).
fn targets(admin: SocketAddr, token: &Path, args: &[&str]) -> (i32, String, String) {
    admin_cli("targets", admin, token, args)
}

/// The common config for `targets`, with `group` lines added to target group "app" and an admin token file
/// holding `tokens`; returns (config path, token file path).
fn config_with_tokens(dir: &Path, targets: &[SocketAddr], group: &str, tokens: &str) -> (PathBuf, PathBuf) {
    let config = write_config(dir, targets);
    let token = dir.join("admin.token");
    std::fs::write(&token, tokens).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[admin]\nbind = \"127.0.0.1:0\"\n", "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n")
        .replace("name = \"app\"\n", &format!("name = \"app\"\n{group}"));
    std::fs::write(&config, text).unwrap();
    (config, token)
}

/// One admin request with a bearer token; returns (status, body).
fn admin_call(admin: SocketAddr, method: &str, path: &str, token: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(admin).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(tcp, "{method} {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get_backend(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(tcp, "GET /echo HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    out.lines().find_map(|l| l.strip_prefix("x-backend: ")).unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_cli_registers_deregisters_and_the_audit_names_the_operator() {
    let old = Backend::new("old").spawn(loopback()).await.unwrap();
    let new = Backend::new("new").spawn(loopback()).await.unwrap();
    let dir = tempdir("targets");
    let (config, token) = config_with_tokens(&dir, &[old.addr()], "", "# operators\nalice tok-alice\nbob tok-bob\n");
    let gw = Proc::start(&config);
    let (admin, public) = (gw.admin(), gw.listener("public"));
    gw.wait_line(&["ready"]);
    let (old_a, new_a) = (old.addr().to_string(), new.addr().to_string());
    let (token2, config2) = (token.clone(), config.clone());
    let results = tokio::task::spawn_blocking(move || {
        let token = token2.as_path();
        let list = targets(admin, token, &["list"]);
        assert_eq!(list.0, 0, "{list:?}");
        assert!(list.1.starts_with("GROUP") && list.1.contains(&old_a), "{}", list.1);

        let reg = targets(admin, token, &["register", "app", &new_a]);
        assert_eq!(reg.0, 0, "{reg:?}");
        assert_eq!(reg.1.trim(), format!("registered {new_a} in app"));

        let dereg = targets(admin, token, &["deregister", "app", &old_a, "--wait"]);
        assert_eq!(dereg.0, 0, "{dereg:?}");
        assert!(
            dereg.1.contains("draining for up to 300.0s") && dereg.1.contains("drained: nothing in flight"),
            "{}",
            dereg.1
        );
        assert_eq!(get_backend(public), "new");
        let (status, body) = admin_call(admin, "GET", &format!("/api/v1/target-groups/app/targets/{old_a}"), "tok-bob");
        assert_eq!(status, 200);
        assert!(body.contains("\"unused\"") && body.contains("Target.NotRegistered"), "{body}");
        let (_, body) = admin_call(admin, "GET", &format!("/api/v1/target-groups/app/targets/{new_a}"), "tok-bob");
        assert!(body.contains(&format!("\"address\": \"{new_a}\"")) && body.contains("\"keepalive\""), "{body}");

        let missing = targets(admin, token, &["deregister", "app", &old_a]);
        assert_eq!(missing.0, 1, "{missing:?}");
        assert!(
            missing.2.contains(&format!("target {old_a} is not registered in target group \"app\"")),
            "{}",
            missing.2
        );
        let unknown = targets(admin, token, &["register", "nope", &old_a]);
        assert_eq!(unknown.0, 1);
        assert!(unknown.2.contains("no target group named \"nope\" (404 Not Found)"), "{}", unknown.2);
        let bad = targets(admin, token, &["register", "app", "no-port"]);
        assert_eq!(bad.0, 1);
        assert!(bad.2.contains("targets[0]"), "{}", bad.2);

        // A wrong token is refused; an unreachable admin API is exit code 2.
        let wrong = dir.join("wrong.token");
        std::fs::write(&wrong, "nope\n").unwrap();
        let refused = targets(admin, &wrong, &["list"]);
        assert_eq!(refused.0, 1);
        assert!(refused.2.contains("admin token required"), "{}", refused.2);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(targets(closed, token, &["list"]).0, 2);

        // Reload through the API: a broken file is refused with its location, the running config stays.
        let good = std::fs::read_to_string(&config2).unwrap();
        std::fs::write(&config2, good.replace("name = \"app\"", "name = \"app\"\nretries = \"many\"")).unwrap();
        let (status, body) = admin_call(admin, "POST", "/api/v1/reload", "tok-bob");
        assert_eq!(status, 422, "{body}");
        let error = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].as_str().unwrap().to_owned();
        let at = error.lines().nth(1).unwrap_or("");
        let located = at.split(':').nth(1).is_some_and(|l| l.parse::<u32>().is_ok());
        assert!(at.contains("waygate.toml:") && located && at.contains("\"many\""), "{error}");
        std::fs::write(&config2, good).unwrap();
        let (status, body) = admin_call(admin, "POST", "/api/v1/reload", "tok-bob");
        assert_eq!(status, 200, "{body}");
        admin_call(admin, "GET", "/api/v1/audit", "tok-alice").1
    })
    .await
    .unwrap();
    let audit: serde_json::Value = serde_json::from_str(&results).unwrap();
    let events: Vec<(String, String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (s("action"), s("actor"), s("target"))
        })
        .collect();
    let (old_a, new_a) = (old.addr().to_string(), new.addr().to_string());
    for expected in [
        ("register".to_owned(), "alice".to_owned(), new_a.clone()),
        ("deregister".to_owned(), "alice".to_owned(), old_a.clone()),
        ("drained".to_owned(), "alice".to_owned(), old_a.clone()),
        ("reload_rejected".to_owned(), "bob".to_owned(), "-".to_owned()),
        ("reload".to_owned(), "bob".to_owned(), "-".to_owned()),
    ] {
        assert!(events.contains(&expected), "{expected:?} missing from {events:?}");
    }
    // Nothing was in flight when the old target drained: its event says so with aborted 0 (--wait exited 0 by it).
    let drained = audit["events"].as_array().unwrap().iter().find(|e| e["action"] == "drained");
    assert_eq!(drained.map(|e| e["aborted"].clone()), Some(serde_json::json!(0)), "{audit}");
    // The same events reach the system log, in order: the deregistration, then the drain's end.
    let line = |action: &str| gw.wait_line(&["waygate::audit", "actor=alice", &format!("action={action} ")]);
    let (deregistered, drained) = (line("deregister"), line("drained"));
    let log = gw.log();
    assert!(log.find(&deregistered) < log.find(&drained), "{log}");
    // The reload kept the API's registration: the file still lists only the old target.
    assert_eq!(get_backend(public), "new");
}

/// The CLI reads the token file as the gateway does: a line the gateway would refuse is refused here, naming
/// the file and line, instead of sending a token the gateway cannot accept. Nothing is contacted: the admin
/// address is a loopback port where nothing listens.
#[test]
fn targets_cli_refuses_a_token_file_the_gateway_would_refuse() {
    let dir = tempdir("badtoken");
    let token = dir.join("admin.token");
    std::fs::write(&token, "# operators\nalice tok extra\n").unwrap();
    let nobody: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (code, _, err) = targets(nobody, &token, &["list"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{}: line 2: expected `TOKEN` or `NAME TOKEN`", token.display())), "{err}");
    assert!(!err.contains("unreachable"), "refused before connecting: {err}");
}

/// `deregister --wait` exits 3 when the drain's end cut requests: a request still waiting on a slow target when
/// `deregistration_delay` elapses is aborted (the client gets 502 TargetDeregistered), and the audit event's
/// `aborted` count, not its wording, decides the exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_cli_wait_exits_3_when_the_drain_aborts_requests() {
    let slow = Backend::new("slow").spawn(loopback()).await.unwrap();
    let dir = tempdir("aborted");
    let group = "deregistration_delay = \"300ms\"\nresponse_timeout = \"120s\"\n";
    let (config, token) = config_with_tokens(&dir, &[slow.addr()], group, "ops tok-ops\n");
    let gw = Proc::start(&config);
    let (admin, public) = (gw.admin(), gw.listener("public"));
    gw.wait_line(&["ready"]);
    let target = slow.addr().to_string();
    let result = tokio::task::spawn_blocking(move || {
        // The handler sleeps 60 s: far past the 300 ms drain, so only the drain's end can finish this request.
        let client = std::thread::spawn(move || http_get(public, "/delay/60000"));
        let path = format!("/api/v1/target-groups/app/targets/{target}");
        let deadline = std::time::Instant::now() + DEADLINE;
        while !admin_call(admin, "GET", &path, "tok-ops").1.contains("\"in_flight\": 1") {
            assert!(std::time::Instant::now() < deadline, "the slow request never reached the target");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let dereg = targets(admin, &token, &["deregister", "app", &target, "--wait"]);
        let answer = client.join().unwrap();
        let audit = admin_call(admin, "GET", "/api/v1/audit", "tok-ops").1;
        (dereg, answer, audit)
    })
    .await
    .unwrap();
    let ((code, out, err), answer, audit) = result;
    assert_eq!(code, 3, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("elapsed with 1 request(s) in flight"), "{out}");
    assert!(answer.starts_with("HTTP/1.1 502") && answer.contains("TargetDeregistered"), "{answer}");
    let events: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let drained = events["events"].as_array().unwrap().iter().find(|e| e["action"] == "drained").cloned();
    assert_eq!(drained.map(|e| e["aborted"].clone()), Some(serde_json::json!(1)), "{audit}");
}

fn read_all(mut pipe: impl Read) -> String {
    let mut s = String::new();
    pipe.read_to_string(&mut s).expect("read the command's output");
    s
}

/// A stand-in for the admin API on loopback, for the one answer a real gateway never gives: a drain whose end
/// is not reported. It answers the deregistration as the gateway does (202 with `target`, `in_flight`,
/// `deregistration_delay_ms` 0 and `audit_seq`) and every audit poll with events that are not this drain's end
/// (another target's, another group's); it records each request line.
fn silent_drain_admin() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
            let (status, body) = if line.starts_with("DELETE /api/v1/target-groups/app/targets/") {
                let body = r#"{"target": "127.0.0.1:9", "in_flight": 1, "deregistration_delay_ms": 0, "audit_seq": 7}"#;
                ("202 Accepted", body)
            } else if line.starts_with("GET /api/v1/audit?since=") {
                let body = r#"{"events": [
                    {"seq": 8, "action": "drained", "target_group": "app", "target": "127.0.0.1:10", "aborted": 0},
                    {"seq": 9, "action": "drained", "target_group": "other", "target": "127.0.0.1:9", "aborted": 0}]}"#;
                ("200 OK", body)
            } else {
                ("404 Not Found", r#"{"error": "not here"}"#)
            };
            let _ = seen.send(line);
            let _ = write!(
                tcp,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, requests)
}

/// `deregister --wait` exits 2 when the drain's end is not reported within `deregistration_delay` + 30 s
/// (docs/target-lifecycle.md). A real gateway always ends a drain by then (it aborts what is still in flight at
/// `deregistration_delay`: the exit-3 test above), so the admin API here is a stand-in that never reports it.
/// The command must wait the whole 30 s (it may not give up early) and then say why it stopped.
#[test]
fn targets_cli_wait_exits_2_when_the_drain_end_is_not_reported_in_time() {
    let (admin, requests) = silent_drain_admin();
    let dir = tempdir("unreported");
    let token = dir.join("admin.token");
    std::fs::write(&token, "ops tok-ops\n").unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(bin())
        .args(["targets", "deregister", "app", "127.0.0.1:9", "--wait", "--admin", &admin.to_string()])
        .arg("--token-file")
        .arg(&token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run waygate targets");
    // The command gives up after 30 s; four times that is its deadline here.
    let deadline = started + 4 * std::time::Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("deregister --wait still running after {:?}", started.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // polling the exit status, with a deadline
    };
    let waited = started.elapsed();
    let out = child.stdout.take().map(read_all).unwrap_or_default();
    let err = child.stderr.take().map(read_all).unwrap_or_default();
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("deregistered 127.0.0.1:9 from app: draining for up to 0.0s (1 request(s) in flight)"),
        "{out}"
    );
    assert!(
        err.contains("waygate targets: the drain of 127.0.0.1:9 did not end within deregistration_delay + 30s"),
        "{err}"
    );
    assert!(waited >= std::time::Duration::from_secs(30), "gave up after {waited:?}");
    let seen: Vec<String> = requests.try_iter().collect();
    assert!(seen[0].starts_with("DELETE /api/v1/target-groups/app/targets/127.0.0.1:9 "), "{seen:?}");
    // Followed from the deregistration's own event (audit_seq 7), then from the last event seen.
    assert!(seen[1].starts_with("GET /api/v1/audit?since=7 "), "{seen:?}");
    assert!(seen[2..].iter().all(|l| l.starts_with("GET /api/v1/audit?since=9 ")), "{seen:?}");
    assert!(seen.len() > 2, "the audit log was polled until the end: {seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
