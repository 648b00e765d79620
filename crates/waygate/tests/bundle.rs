//! `waygate doctor bundle` and `waygate doctor probe` through the binary, against a running gateway with an
//! admin token, an HTTPS listener (so the config names a private key file) and an access log.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::*;
use waygate_faultlab::{Backend, Fault, TestPki};

const TOKEN: &str = "bundle-test-token-5f2c9a";

/// The archive's files: path inside the bundle directory → contents.
fn unpack(path: &Path) -> Vec<(String, String)> {
    let file = std::fs::File::open(path).expect("bundle written");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("entry");
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let (dir, rest) = name.split_once('/').expect("files under one directory");
        assert!(dir.starts_with("waygate-bundle-"), "{name}");
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("text file");
        out.push((rest.to_owned(), text));
    }
    out
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("{name} not in bundle: {:?}", files.iter().map(|(n, _)| n).collect::<Vec<_>>()))
}

/// Starts a gateway whose config has an admin token, an https listener with a key file, an access log, and
/// groups `app` (healthy backend) and `dead` (refused).
fn gateway(dir: &Path, backend: SocketAddr, refused: SocketAddr) -> (Proc, std::path::PathBuf) {
    let pki = TestPki::shared().write_files(&dir.join("pki")).unwrap();
    std::fs::write(dir.join("admin.token"), format!("# operators\nops {TOKEN}\n")).unwrap();
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n[access_log]\ndir = \"logs\"\n\
             [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"app\"\n\
             [[listener]]\nname = \"secure\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             default_target_group = \"app\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\
             [[target_group]]\nname = \"app\"\ntargets = [\"{backend}\"]\n\
             [[target_group]]\nname = \"dead\"\nretries = 0\ntargets = [\"{refused}\"]\n",
            pki.valid.cert.display(),
            pki.valid.key.display()
        ),
    )
    .unwrap();
    (Proc::start(&config), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_of_a_running_gateway() {
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let dir = tempdir("bundle");
    let (gw, config) = gateway(&dir, backend.addr(), refused.addr());
    let addr = gw.listener("public");
    let admin = gw.admin();
    gw.wait_line(&["ready"]);
    let (first, second) =
        tokio::task::spawn_blocking(move || (http_get(addr, "/one"), http_get(addr, "/two"))).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200") && second.starts_with("HTTP/1.1 200"));
    let id = first.lines().find_map(|l| l.strip_prefix("x-request-id: ")).expect("x-request-id").trim().to_owned();
    // The access log is written asynchronously: wait (bounded) until the first request's line is there.
    let logs = dir.join("logs");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let all: String = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(Result::ok).filter_map(|f| std::fs::read_to_string(f.path()).ok()).collect())
            .unwrap_or_default();
        if all.contains(&id) && all.contains("/two") {
            break;
        }
        assert!(Instant::now() < deadline, "access log lines never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20)); // polling a file, with a deadline
    }
    let system_log = dir.join("system.log");
    std::fs::write(&system_log, format!("{}\nlast line\n", gw.log())).unwrap();
    let out = dir.join("support.tar.gz");
    let run = Command::new(bin())
        .args(["doctor", "bundle", "--config"])
        .arg(&config)
        .args(["--admin", &format!("http://{admin}"), "--request-id", &id, "--probe-timeout", "2s", "--system-log"])
        .arg(&system_log)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let files = unpack(&out);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();

    let key_body = TestPki::shared().valid().key_pem().lines().nth(1).expect("a PEM body line").to_owned();
    for (name, text) in &files {
        assert!(!text.contains(TOKEN), "the admin token leaked into {name}");
        assert!(!text.contains("PRIVATE KEY") && !text.contains(&key_body), "key material in {name}");
    }
    let cfg = file(&files, "config/waygate.toml");
    assert!(cfg.contains("valid.key") && cfg.contains("admin.token"), "paths kept: {cfg}");
    assert!(file(&files, "version.txt").starts_with("waygate 0."), "{names:?}");
    assert!(file(&files, "admin/metrics.txt").contains("waygate_requests_total"));
    assert!(file(&files, "admin/target-groups.json").contains("\"dead\""));
    assert!(file(&files, "logs/system.log").ends_with("last line\n"));
    let access: Vec<&(String, String)> = files.iter().filter(|(n, _)| n.starts_with("logs/access/")).collect();
    assert_eq!(access.len(), 1, "{names:?}");
    assert!(access[0].1.contains(&id) && !access[0].1.contains("/two"), "only the request's line: {}", access[0].1);

    let probe: serde_json::Value = serde_json::from_str(file(&files, "probe/probe.json")).unwrap();
    assert_eq!(probe["schema"], "waygate.doctor.probe/1");
    let targets = probe["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{probe}");
    assert_eq!(targets[0]["addresses"][0]["healthy"], true, "{probe}");
    assert_eq!(targets[1]["addresses"][0]["failure"]["cause"], "TargetConnectionRefused", "{probe}");

    let readme = file(&files, "README.txt");
    for name in &names {
        assert!(readme.contains(name), "README lists {name}:\n{readme}");
    }
    // The gateway under test serves the audit log: the bundle must carry it, with the startup registrations.
    let audit: serde_json::Value = serde_json::from_str(file(&files, "admin/audit.json")).expect("audit JSON");
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["action"] == "register" && e["actor"] == "config"), "{audit}");
    println!("bundle files: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_without_admin_and_with_a_key_in_the_log_is_still_written() {
    let dir = tempdir("bundle-partial");
    let pki = TestPki::shared();
    let config = dir.join("waygate.toml");
    // A port held bound but not listening: refused for as long as the test runs, whatever else runs on this host
    // (a fixed "unused" port such as 1 may be anyone's).
    let no_admin = Fault::Refuse.spawn(loopback()).await.unwrap();
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"{}\"\n[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
             default_target_group = \"app\"\n[[target_group]]\nname = \"app\"\ntargets = []\n",
            no_admin.addr()
        ),
    )
    .unwrap();
    let system_log = dir.join("system.log");
    std::fs::write(&system_log, format!("someone pasted a key:\n{}", pki.valid().key_pem())).unwrap();
    let out = dir.join("partial.tar.gz");
    let run = Command::new(bin())
        .args(["doctor", "bundle", "--config"])
        .arg(&config)
        .arg("--system-log")
        .arg(&system_log)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let files = unpack(&out);
    assert!(files.iter().all(|(n, t)| n != "logs/system.log" && !t.contains("PRIVATE KEY\n")));
    let readme = file(&files, "README.txt");
    assert!(readme.contains("unreachable"), "{readme}");
    assert!(readme.contains("logs/system.log: left out, it contains a PEM private key"), "{readme}");
    assert!(readme.contains("no [access_log] dir"), "{readme}");
}

#[test]
fn probe_command_exit_codes_and_json() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let backend = rt.block_on(Backend::new("p").spawn(loopback())).unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = Command::new(bin())
        .args(["doctor", "probe", "--json", &format!("http://{}/", backend.addr())])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["targets"][0]["addresses"][0]["http"]["status"], 200);
    let bad = Command::new(bin()).args(["doctor", "probe", &refused.addr().to_string()]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3));
    let table = String::from_utf8_lossy(&bad.stdout);
    assert!(table.contains("TargetConnectionRefused"), "{table}");
    let user = Command::new(bin()).args(["doctor", "probe", "no-such-group"]).output().unwrap();
    assert_eq!(user.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&user.stderr).contains("--config"));
}
