//! Failures that need a network of their own: a network namespace (root only) whose loopback rejects a port
//! with ICMP host-unreachable, so the gateway's connect fails with EHOSTUNREACH. Skipped, with the reason
//! printed, when not root or when `ip`/`iptables`/`curl` are missing (`.ci/run` installs them).

mod common;

use std::process::Command;

use common::*;

struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Option<Netns> {
        let name = format!("wg-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        ok(&["netns", "add", &name])
            .then(|| Netns(name.clone()))
            .filter(|_| ok(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]))
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(args).output().expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref() != Some("0") {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    for tool in ["ip", "iptables", "curl"] {
        if !Command::new("sh").args(["-c", &format!("command -v {tool}")]).status().is_ok_and(|s| s.success()) {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

#[test]
fn icmp_host_unreachable_is_target_host_unreachable() {
    if let Some(reason) = skip_reason() {
        println!("SKIPPED icmp_host_unreachable_is_target_host_unreachable: {reason}");
        return;
    }
    let ns = Netns::create("unreach").expect("create network namespace");
    let rule = ns.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "tcp",
        "--dport",
        "9",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-host-unreachable",
    ]);
    assert!(rule.status.success(), "iptables: {}", String::from_utf8_lossy(&rule.stderr));
    let dir = tempdir("unreach");
    let config = write_config(&dir, &["127.0.0.1:9".parse().unwrap()]);
    let gw = Proc::start_in_netns(&ns.0, &config);
    let addr = gw.listener("public");
    let out = ns.exec(&["curl", "-s", "-D", "-", "-o", "/dev/null", "-m", "20", &format!("http://{addr}/")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(
        head.contains("proxy-status: waygate; error=destination_ip_unroutable; details=\"TargetHostUnreachable\""),
        "{head}"
    );
    let line = gw.wait_line(&["cause=TargetHostUnreachable"]);
    assert!(line.contains("phase=connect"), "{line}");
}
