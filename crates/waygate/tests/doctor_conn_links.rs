//! `waygate doctor logs` on a live gateway's own logs (issue 23 item 6): an https listener writing its
//! connection log and its access log, curl as the client. One TLS connection carries two requests to a
//! target that closes before answering (two 502s), and one client sends plain HTTP to the TLS port (a failed
//! handshake). The doctor shows the 502s' connection (TLS version, cipher, verify status) and that connection's
//! two requests, and the failed handshake with no request on it. Skipped, with the reason printed, when curl
//! is missing (`.ci/run` installs it and makes a skip a failure).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::{Fault, TestPki};

/// Lines in the files of `dir` (the gateway writes its logs a moment after each request or connection).
fn lines_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| {
            std::fs::read_to_string(e.path()).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// Waits (bounded) until `dir` holds at least `n` lines.
fn wait_lines(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines = lines_in(dir);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_links_a_live_gateways_connections_and_requests() {
    let curl_ok = Command::new("sh").args(["-c", "command -v curl"]).output().is_ok_and(|o| o.status.success());
    if !curl_ok {
        assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "curl is not installed");
        println!("SKIPPED doctor_links_a_live_gateways_connections_and_requests: curl is not installed");
        return;
    }
    let closer = Fault::CloseBeforeResponse.spawn(loopback()).await.unwrap();
    let dir = tempdir("conn-links");
    let pki = TestPki::shared().write_files(&dir.join("pki")).unwrap();
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[access_log]\ndir = \"access\"\n[connection_log]\ndir = \"conn\"\n\
             [[listener]]\nname = \"secure\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             default_target_group = \"app\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\
             [[target_group]]\nname = \"app\"\nretries = 0\ntargets = [\"{}\"]\n",
            pki.valid.cert.display(),
            pki.valid.key.display(),
            closer.addr()
        ),
    )
    .unwrap();
    let gw = Proc::start(&config);
    gw.wait_line(&["ready"]);
    let port = gw.listener("secure").port();
    let (access, conn) = (dir.join("access"), dir.join("conn"));
    let doctor = tokio::task::spawn_blocking(move || {
        // Two URLs in one curl: one TLS connection, reused for the second request.
        let https = |path: &str| format!("https://localhost:{port}{path}");
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\\n"])
            .args(["--cacert"])
            .arg(&pki.ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), &https("/first"), &https("/second")])
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(text, "502 1\n502 0\n", "two 502s on one connection: {text}");
        // Plain HTTP to the TLS port: a failed handshake.
        let _ = Command::new("curl").args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/plain")]).output();
        let access_lines = wait_lines(&access, 2);
        let conn_lines = wait_lines(&conn, 2);
        assert_eq!((access_lines.len(), conn_lines.len()), (2, 2), "{access_lines:#?} {conn_lines:#?}");
        let json = Command::new(bin()).args(["doctor", "logs", "--json"]).arg(&access).arg(&conn).output().unwrap();
        let text = Command::new(bin()).args(["doctor", "logs"]).arg(&access).arg(&conn).output().unwrap();
        (json, text)
    });
    let (json, text) = doctor.await.unwrap();
    drop(gw);
    assert_eq!(json.status.code(), Some(0), "{}", String::from_utf8_lossy(&json.stderr));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let cause = &v["causes"][0];
    assert_eq!(cause["cause"], "TargetClosedConnection", "{v}");
    let e = &cause["examples"][0];
    let id = e["conn_trace_id"].as_str().expect("a conn_trace_id");
    assert!(id.starts_with("TID_"), "{e}");
    let c = &e["connection"];
    assert_eq!(c["conn_trace_id"], id, "{e}");
    assert_eq!(c["tls_protocol"], "TLSv1.3", "{e}");
    assert_eq!(c["tls_verify_status"], "Success", "{e}");
    assert_eq!(c["listener_port"], port.to_string(), "{e}");
    assert_eq!(e["connection_requests"]["count"], 2, "{e}");
    assert_eq!(e["connection_requests"]["elb_5xx"], 2, "{e}");
    let failed = &v["connection_logs"][0]["reasons"][0];
    assert_eq!(failed["reason"], "NotTls", "{v}");
    assert_eq!(failed["examples"][0]["requests"], 0, "{failed}");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("on connection {id}: 127.0.0.1:")), "{text}");
    assert!(text.contains("2 request(s) on that connection, 2 5xx:"), "{text}");
    assert!(text.contains("Failed:NotTls") && text.contains("no request on it"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
