//! Failures that need a network of their own: a network namespace (root only) whose loopback rejects a port
//! with ICMP host-unreachable, so the gateway's connect fails with EHOSTUNREACH. Skipped, with the reason
//! printed, when not root or when `ip`/`iptables`/`curl` are missing (`.ci/run` installs them and makes a skip a
//! failure).
//! DNS: `ip netns exec` mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf, so the namespace's resolver
//! is 127.0.0.1, where nothing answers: no query ever leaves the namespace (which has only loopback anyway).

mod common;

use std::process::Command;

use common::*;

const NETNS: &str = "network namespaces need CAP_SYS_ADMIN";

#[test]
fn icmp_host_unreachable_is_target_host_unreachable() {
    if cannot_run("icmp_host_unreachable_is_target_host_unreachable", NETNS, &["ip", "iptables", "curl"]) {
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

#[test]
fn unresolvable_target_is_target_dns_failure() {
    if cannot_run("unresolvable_target_is_target_dns_failure", NETNS, &["ip", "iptables", "curl"]) {
        return;
    }
    let name = format!("wg-dns-{}", std::process::id());
    std::fs::create_dir_all(format!("/etc/netns/{name}")).unwrap();
    std::fs::write(format!("/etc/netns/{name}/resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        .unwrap();
    let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
    assert!(ok(&["netns", "add", &name]), "ip netns add");
    let ns = Netns(name);
    assert!(ok(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]));
    let dir = tempdir("dns");
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"app\"\n[[target_group]]\nname = \"app\"\nretries = 0\n\
         targets = [\"no-such-host.invalid:80\"]\n",
    )
    .unwrap();
    let gw = Proc::start_in_netns(&ns.0, &config);
    let addr = gw.listener("public");
    let out = ns.exec(&["curl", "-s", "-D", "-", "-o", "/dev/null", "-m", "20", &format!("http://{addr}/")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(head.contains("details=\"TargetDnsFailure\""), "{head}");
    let line = gw.wait_line(&["cause=TargetDnsFailure"]);
    assert!(line.contains("phase=dns") && line.contains("no-such-host.invalid"), "{line}");
}

/// A target named `localhost:PORT` where localhost resolves to `::1` first (the namespace's /etc/hosts, which
/// `ip netns exec` mounts over the host's) and the target listens on 127.0.0.1 only: `::1` refuses, the next
/// address answers (RFC 8305). With nothing listening at all, the log line names both addresses tried.
#[test]
fn a_host_name_target_tries_every_address() {
    if cannot_run("a_host_name_target_tries_every_address", NETNS, &["ip", "curl"]) {
        return;
    }
    let ns = Netns::create("eyeballs").expect("create network namespace");
    std::fs::create_dir_all(format!("/etc/netns/{}", ns.0)).unwrap();
    std::fs::write(format!("/etc/netns/{}/hosts", ns.0), "::1 localhost\n127.0.0.1 localhost\n").unwrap();
    let resolved = ns.exec(&["getent", "ahosts", "localhost"]);
    let resolved = String::from_utf8_lossy(&resolved.stdout);
    assert!(resolved.starts_with("::1"), "localhost must resolve to ::1 first in the namespace:\n{resolved}");

    // The target: another gateway answering a fixed response, on 127.0.0.1 only.
    let dir = tempdir("eyeballs");
    let target_config = dir.join("target.toml");
    std::fs::write(
        &target_config,
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_fixed_response = { status = 200, body = \"from 127.0.0.1\", content_type = \"text/plain\" }\n",
    )
    .unwrap();
    let target = Proc::start_in_netns(&ns.0, &target_config);
    let port = target.listener("public").port();
    // A port where nothing listens on either family.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
             default_target_group = \"app\"\n[[listener.rule]]\npriority = 1\npath = \"/closed\"\n\
             target_group = \"closed\"\n[[target_group]]\nname = \"app\"\nretries = 0\n\
             targets = [\"localhost:{port}\"]\n[[target_group]]\nname = \"closed\"\nretries = 0\n\
             targets = [\"localhost:{closed}\"]\n"
        ),
    )
    .unwrap();
    let gw = Proc::start_in_netns(&ns.0, &config);
    let addr = gw.listener("public");
    let out = ns.exec(&["curl", "-s", "-i", "-m", "20", &format!("http://{addr}/")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("from 127.0.0.1"), "{text}\n{}", gw.log());

    let out = ns.exec(&["curl", "-s", "-D", "-", "-o", "/dev/null", "-m", "20", &format!("http://{addr}/closed")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 502") && head.contains("details=\"TargetConnectionRefused\""), "{head}");
    let line = gw.wait_line(&["cause=TargetConnectionRefused", "addresses tried"]);
    for tried in [format!("[::1]:{closed}"), format!("127.0.0.1:{closed}")] {
        assert!(line.contains(&tried), "{tried} not named in: {line}");
    }
}
