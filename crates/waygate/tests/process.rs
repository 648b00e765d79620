//! The binary end to end: check-config, a missing config, streaming memory, SIGHUP reload, SIGTERM drain.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::Backend;

#[test]
fn check_config_reports_file_line_col_and_exits_1() {
    let dir = tempdir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:8080\"\nidle_timeout = \"ten seconds\"\nbindd = 1\n",
    )
    .unwrap();
    let out = Command::new(bin()).arg("check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = bad.display().to_string();
    assert!(stderr.contains(&format!("{prefix}:4:16:")), "bad duration located: {stderr}");
    assert!(stderr.contains(&format!("{prefix}:5:1:")), "unknown key located: {stderr}");
    let good = write_config(&dir, &["127.0.0.1:9".parse().unwrap()]);
    let out = Command::new(bin()).arg("check-config").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// check-config reads listener certificates: an expired one and a key that is not the certificate's are each
/// reported at their entry, with the file and the reason.
#[test]
fn check_config_reads_listener_certificates() {
    let dir = tempdir("check-tls");
    let pki = waygate_faultlab::TestPki::shared().write_files(&dir).unwrap();
    let config = dir.join("tls.toml");
    let entry = |c: &std::path::Path, k: &std::path::Path| {
        format!("{{ cert = \"{}\", key = \"{}\" }}", c.display(), k.display())
    };
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nbind = \"127.0.0.1:8443\"\nprotocol = \"https\"\n[listener.tls]\ncertificates = [\n  {},\n  {},\n  {},\n]\n",
            entry(&pki.valid.cert, &pki.valid.key),
            entry(&pki.expired.cert, &pki.expired.key),
            entry(&pki.valid.cert, &pki.wrong_name.key),
        ),
    )
    .unwrap();
    let out = Command::new(bin()).arg("check-config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = config.display().to_string();
    assert!(stderr.contains(&format!("{prefix}:7:3: ")) && stderr.contains("the certificate expired on"), "{stderr}");
    assert!(
        stderr.contains(&format!("{prefix}:8:3: ")) && stderr.contains("does not match the certificate"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn run_without_a_config_file_names_it_and_exits_1() {
    let dir = tempdir("missing");
    let out = Command::new(bin()).current_dir(&dir).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waygate.toml") && stderr.contains("not found"), "{stderr}");
}

/// 50 MB down and 50 MB up through the real binary: its peak RSS must stay far below the body size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_keeps_gateway_memory_far_below_body_size() {
    const SIZE: usize = 50 * 1024 * 1024;
    let backend = Backend::new("big").spawn(loopback()).await.unwrap();
    let dir = tempdir("rss");
    let gw = Proc::start(&write_config(&dir, &[backend.addr()]));
    let addr = gw.listener("public");
    // The process's own footprint (its code, threads and buffers at rest) grows with the binary; what the body
    // adds on top of it is what streaming keeps small.
    let at_rest = gw.peak_rss();
    let down = tokio::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(tcp, "GET /bytes/{SIZE} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match tcp.read(&mut buf).unwrap() {
                0 => break total,
                n => total += n,
            }
        }
    });
    let total = down.await.unwrap();
    assert!(total > SIZE, "whole body and head received: {total}");
    let up = tokio::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(tcp, "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: {SIZE}\r\n\r\n").unwrap();
        let chunk = vec![b'u'; 1024 * 1024];
        for _ in 0..50 {
            tcp.write_all(&chunk).unwrap();
        }
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        out
    });
    let resp = up.await.unwrap();
    assert!(resp.contains(&format!("\"body_bytes\":{SIZE}")), "{resp}");
    let peak = gw.peak_rss();
    let grown = peak.saturating_sub(at_rest);
    assert!(
        grown < (SIZE as u64) / 4,
        "gateway peak RSS grew by {grown} bytes (from {at_rest} to {peak}) for a {SIZE}-byte body: it buffered"
    );
    println!(
        "gateway peak RSS after 2 x 50 MB: {:.1} MiB, {:.1} MiB above rest",
        peak as f64 / 1048576.0,
        grown as f64 / 1048576.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_picks_up_a_new_target_and_rejects_a_broken_file() {
    let old = Backend::new("old").spawn(loopback()).await.unwrap();
    let new = Backend::new("new").spawn(loopback()).await.unwrap();
    let dir = tempdir("hup");
    let path = write_config(&dir, &[old.addr()]);
    let gw = Proc::start(&path);
    let addr = gw.listener("public");
    let first = tokio::task::spawn_blocking(move || http_get(addr, "/")).await.unwrap();
    assert!(first.contains("x-backend: old"), "{first}");
    let admin = gw.admin();
    let (live, ready) =
        tokio::task::spawn_blocking(move || (http_get(admin, "/live"), http_get(admin, "/ready"))).await.unwrap();
    assert!(live.starts_with("HTTP/1.1 200") && ready.starts_with("HTTP/1.1 200"), "{live}\n{ready}");

    write_config(&dir, &[new.addr()]);
    gw.signal("HUP");
    gw.wait_line(&["configuration reloaded"]);
    let after = tokio::task::spawn_blocking(move || http_get(addr, "/")).await.unwrap();
    assert!(after.contains("x-backend: new"), "reload swapped the target: {after}");

    std::fs::write(&path, "[[listener]]\nbind = \"not an address\"\n").unwrap();
    gw.signal("HUP");
    gw.wait_line(&["reload rejected"]);
    // The rejection names file:line:col (on the lines after it, which may arrive a moment later).
    gw.wait_line(&["waygate.toml:2:8"]);
    let still = tokio::task::spawn_blocking(move || http_get(addr, "/")).await.unwrap();
    assert!(still.contains("x-backend: new"), "the running config stays: {still}");
    // The refusal is audited as the signal's, with the located error, as the admin API's reload does.
    let audit = tokio::task::spawn_blocking(move || http_get(admin, "/api/v1/audit")).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(audit.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    let rejected = body["events"].as_array().unwrap().iter().find(|e| e["action"] == "reload_rejected").cloned();
    let rejected = rejected.unwrap_or_else(|| panic!("no reload_rejected event: {audit}"));
    assert_eq!(rejected["actor"], "signal", "{rejected}");
    assert!(rejected["details"].as_str().unwrap_or("").contains("waygate.toml:2:8"), "{rejected}");
}

/// A self-signed certificate for `name` that expires `days` from now, written over `cert` and `key`.
fn write_certificate(cert: &std::path::Path, key: &std::path::Path, name: &str, days: u64) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + (now + Duration::from_secs(days * 86_400));
    let pair = rcgen::KeyPair::generate().unwrap();
    let signed = params.self_signed(&pair).unwrap();
    // Beside, then renamed over: a reload never reads half a file.
    for (path, text) in [(cert, signed.pem()), (key, pair.serialize_pem())] {
        let beside = path.with_extension("new");
        std::fs::write(&beside, text).unwrap();
        std::fs::rename(&beside, path).unwrap();
    }
}

/// The certificate `openssl s_client` is served at `addr`.
fn served_subject(addr: std::net::SocketAddr) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs (CI installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find(|l| l.starts_with("subject=")).unwrap_or_else(|| panic!("no subject in:\n{text}")).to_owned()
}

/// SIGHUP reads the listener's certificate files again: new handshakes get the renewed certificate, and one
/// that expires within 30 days is warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_listener_certificates_and_warns_before_expiry() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "openssl is required");
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let dir = tempdir("hup-tls");
    let (cert, key) = (dir.join("site.pem"), dir.join("site.key"));
    write_certificate(&cert, &key, "first.test", 365);
    let path = dir.join("waygate.toml");
    std::fs::write(
        &path,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             default_target_group = \"app\"\ntls = {{ cert = \"site.pem\", key = \"site.key\" }}\n\
             [[target_group]]\nname = \"app\"\ntargets = [\"{}\"]\n",
            backend.addr()
        ),
    )
    .unwrap();
    let gw = Proc::start(&path);
    let addr = gw.listener("public");
    let before = tokio::task::spawn_blocking(move || served_subject(addr)).await.unwrap();
    assert!(before.contains("first.test"), "{before}");
    write_certificate(&cert, &key, "second.test", 10);
    gw.signal("HUP");
    gw.wait_line(&["configuration reloaded"]);
    let warning = gw.wait_line(&["listener certificate expires in"]);
    assert!(warning.contains("second.test") && warning.contains("listener=public"), "{warning}");
    let after = tokio::task::spawn_blocking(move || served_subject(addr)).await.unwrap();
    assert!(after.contains("second.test"), "{after}");
}

/// A request in flight when SIGTERM arrives completes; new connections are refused; the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish() {
    let backend = Backend::new("slow").spawn(loopback()).await.unwrap();
    let dir = tempdir("term");
    let config = write_config(&dir, &[backend.addr()]);
    let logs = dir.join("logs");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("[access_log]\ndir = \"{}\"\n\n{text}", logs.display())).unwrap();
    let mut gw = Proc::start(&config);
    let addr = gw.listener("public");
    let admin = gw.admin();
    gw.wait_line(&["ready"]);
    let metrics = tokio::task::spawn_blocking(move || http_get(admin, "/metrics")).await.unwrap();
    assert!(metrics.contains("waygate_active_connections"), "{metrics}");
    let size = 4 * 1024 * 1024;
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(tcp, "GET /bytes/{size}?hold=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut head = [0u8; 16];
    tcp.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"));

    gw.signal("TERM");
    gw.wait_line(&["shutting down"]);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        assert!(Instant::now() < deadline, "listener still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20)); // polling the listener's state, with a deadline
    }
    backend.release();
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    let text_len = head.len() + rest.len();
    assert!(text_len > size, "the in-flight response completed ({text_len} bytes)");
    assert_eq!(gw.wait_exit(), 0, "log:\n{}", gw.log());
    assert!(gw.log().contains("drained"), "{}", gw.log());
    let written: String =
        std::fs::read_dir(&logs).unwrap().map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect();
    assert_eq!(written.lines().count(), 1, "the in-flight request's line was written before exit: {written}");
    assert!(written.contains(&format!("\"GET http://a:{}/bytes/{size}?hold=1 HTTP/1.1\"", addr.port())), "{written}");
}

/// The doctor reads waygate's own access log: a refused target's 502s come back as TargetConnectionRefused from
/// the load balancer, a target's own 503s as the target's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_explains_the_gateways_own_access_log() {
    let refused = waygate_faultlab::Fault::Refuse.spawn(loopback()).await.unwrap();
    let own = waygate_faultlab::Fault::ServerError.spawn(loopback()).await.unwrap();
    let dir = tempdir("doctor");
    let logs = dir.join("logs");
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[access_log]\ndir = \"{}\"\n[[listener]]\nname = \"public\"\n\
             bind = \"127.0.0.1:0\"\ndefault_target_group = \"own\"\n[[listener.rule]]\npriority = 1\npath = \"/r\"\n\
             target_group = \"refused\"\n[[target_group]]\nname = \"refused\"\nretries = 0\ntargets = [\"{}\"]\n\
             [[target_group]]\nname = \"own\"\ntargets = [\"{}\"]\n",
            logs.display(),
            refused.addr(),
            own.addr()
        ),
    )
    .unwrap();
    let mut gw = Proc::start(&config);
    let addr = gw.listener("public");
    tokio::task::spawn_blocking(move || {
        for path in ["/r", "/r", "/r", "/", "/"] {
            http_get(addr, path);
        }
    })
    .await
    .unwrap();
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
    let out = Command::new(bin()).args(["doctor", "logs", "--json", "--no-progress"]).arg(&logs).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 5, "{report}");
    assert_eq!(report["elb_5xx"]["502"], 3, "{report}");
    assert_eq!(report["target_5xx"]["503"], 2, "{report}");
    let causes = report["causes"].as_array().unwrap();
    let refused_row = causes.iter().find(|c| c["cause"] == "TargetConnectionRefused").expect("cause listed");
    assert_eq!(refused_row["count"], 3);
    assert_eq!(refused_row["source"], "load_balancer");
    assert!(refused_row["remediation"].as_str().unwrap().len() > 20);
}

/// The admin API shows each target's learned keep-alive and the mis-tuning warning with its numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_shows_learned_keepalive_and_the_warning() {
    let backend = Backend::new("ka").spawn(loopback()).await.unwrap();
    let dir = tempdir("ka-admin");
    let gw = Proc::start(&write_config(&dir, &[backend.addr()]));
    let addr = gw.listener("public");
    let admin = gw.admin();
    gw.wait_line(&["ready"]);
    let resp = tokio::task::spawn_blocking(move || {
        http_get(addr, "/keepalive/5");
        http_get(admin, "/api/v1/target-groups")
    })
    .await
    .unwrap();
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
    let target = &v["target_groups"][0]["targets"][0];
    assert_eq!(target["address"], backend.addr().to_string());
    assert_eq!(target["keepalive"]["advertised_ms"], 5000);
    assert_eq!(target["keepalive"]["pool_idle_timeout_ms"], 60000);
    assert_eq!(target["keepalive"]["effective_ms"], 4500);
    let warning = target["keepalive"]["warning"].as_str().expect("a warning");
    assert!(warning.contains("5s") && warning.contains("60s"), "{warning}");
    assert!(gw.log().contains("shorter than pool_idle_timeout"), "also in the system log");
}

/// With `token_file`, the admin API and metrics need the bearer token; the probes do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_is_enforced() {
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let dir = tempdir("token");
    let config = write_config(&dir, &[backend.addr()]);
    std::fs::write(dir.join("admin.token"), "s3cret-token\n").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[admin]\nbind = \"127.0.0.1:0\"\n",
        "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let gw = Proc::start(&config);
    let admin = gw.admin();
    gw.wait_line(&["ready"]);
    let request = move |path: &str, auth: Option<&str>| {
        let mut tcp = TcpStream::connect(admin).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(tcp, "GET {path} HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        out[9..12].to_owned()
    };
    let results = tokio::task::spawn_blocking(move || {
        [
            request("/api/v1/target-groups", None),
            request("/api/v1/target-groups", Some("wrong")),
            request("/api/v1/target-groups", Some("s3cret-token")),
            request("/metrics", None),
            request("/metrics", Some("s3cret-token")),
            request("/live", None),
            request("/ready", None),
        ]
    })
    .await
    .unwrap();
    assert_eq!(results, ["401", "401", "200", "401", "200", "200", "200"]);
}
