//! Records the regression corpus with real connections: three network namespaces made here (client, router,
//! server, joined by veth pairs), the fault lab's targets and a few raw servers in the server namespace, and
//! the client code and one tcpdump per shape in the client namespace, capturing on its Ethernet interface as
//! a gateway host would. The router's route to the second server address has an MTU of 1280, so a larger
//! client packet to it draws ICMP fragmentation-needed; the client's firewall drops that ICMP after the
//! capture has seen it: a path-MTU black hole. Each role is this test binary run again inside its
//! namespace (`ip netns exec NS <test binary> --exact corpus_role_...`), so no helper program is needed.
//! Ports are fixed (7001...): each names its shape in the capture filters, and the namespaces are the
//! test's own, so nothing else listens there.
//! Root only; skipped with the reason printed otherwise (a failure under `WAYGATE_TEST_REQUIRE_ALL`).
#![allow(dead_code)]

pub mod clients;
pub mod servers;
mod tcpdump;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The client's address, the server's, and the server's address behind the 1280-byte route.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
pub const SERVER_SMALL_MTU: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 3);
/// The router's route MTU towards [`SERVER_SMALL_MTU`].
pub const PATH_MTU: u16 = 1280;

/// Bounds every wait of the recording.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One recorded shape: the capture's name (tests/corpus/NAME.pcap) and the server port it uses.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub port: u16,
}

impl Shape {
    pub fn server(&self) -> SocketAddr {
        let ip = if self.port == PMTU.port { SERVER_SMALL_MTU } else { SERVER };
        SocketAddr::from((ip, self.port))
    }
}

macro_rules! shapes {
    ($($id:ident = $name:literal, $port:literal;)*) => {
        $(pub const $id: Shape = Shape { name: $name, port: $port };)*
        /// Every shape, one capture each.
        pub const SHAPES: &[Shape] = &[$($id),*];
    };
}

shapes! {
    REFUSED = "refused", 7001;
    RESET = "reset-before-response", 7002;
    UNREACHABLE = "icmp-host-unreachable", 7003;
    PMTU = "path-mtu-blackhole", 7004;
    GAVE_UP = "client-gives-up-first", 7005;
    ONE_SIDED = "one-sided-capture", 7006;
    WARNING = "tls-warning-alert", 7007;
    AFTER_HELLO = "tls-ends-after-server-hello", 7008;
    RACE = "keep-alive-race", 7009;
    RACE_TLS = "keep-alive-race-in-tls", 7010;
    UPGRADE = "upgrade-tunnel", 7011;
    RESPONSE_TIMEOUT = "response-timeout", 7012;
    NOT_HTTP = "not-http-banner", 7013;
    CONNECT_TIMEOUT = "connect-timeout", 7014;
    HANDSHAKE_TIMEOUT = "tls-handshake-timeout", 7015;
    TLS_ALERT = "tls-fatal-alert", 7016;
    IDLE_CLOSE = "idle-close", 7017;
    ICMP_ONLY = "icmp-only-unreachable", 7018;
}

/// Whether the recording cannot run here (not root, or a tool missing): says why, or fails under
/// `WAYGATE_TEST_REQUIRE_ALL`.
pub fn cannot_run(test: &str) -> bool {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let missing = ["ip", "iptables", "tcpdump", "kill"].into_iter().find(|t| {
        !Command::new("sh").args(["-c", &format!("command -v {t}")]).output().is_ok_and(|o| o.status.success())
    });
    let reason = match (uid.as_deref(), missing) {
        (Some("0"), None) => return false,
        (Some("0"), Some(tool)) => format!("{tool} is not installed"),
        _ => "not root: network namespaces and tcpdump need it".to_owned(),
    };
    assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "{test} cannot run: {reason}");
    println!("SKIPPED {test}: {reason}");
    true
}

/// Runs `cmd args`; an error names the command and its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The three namespaces, deleted on drop.
struct Topology {
    client: String,
    router: String,
    server: String,
}

impl Topology {
    fn create() -> Result<Topology, String> {
        let id = std::process::id();
        let t = Topology { client: format!("wgc-{id}"), router: format!("wgr-{id}"), server: format!("wgs-{id}") };
        let (c, r, s) = (t.client.as_str(), t.router.as_str(), t.server.as_str());
        for ns in [c, r, s] {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        run("ip", &["link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "r0", "netns", r])?;
        run("ip", &["link", "add", "s0", "netns", s, "type", "veth", "peer", "name", "r1", "netns", r])?;
        let (client, server, small) =
            (format!("{CLIENT}/24"), format!("{SERVER}/24"), format!("{SERVER_SMALL_MTU}/24"));
        for (ns, addr, dev) in [
            (c, client.as_str(), "c0"),
            (r, "10.77.1.1/24", "r0"),
            (r, "10.77.2.1/24", "r1"),
            (s, server.as_str(), "s0"),
            (s, small.as_str(), "s0"),
        ] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", dev])?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
        }
        run("ip", &["-n", c, "route", "add", "default", "via", "10.77.1.1"])?;
        run("ip", &["-n", s, "route", "add", "default", "via", "10.77.2.1"])?;
        run("ip", &["netns", "exec", r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        let mtu = PATH_MTU.to_string();
        run("ip", &["-n", r, "route", "add", &format!("{SERVER_SMALL_MTU}/32"), "dev", "r1", "mtu", "lock", &mtu])?;
        let ipt =
            |ns: &str, rule: &[&str]| run("ip", &[&["netns", "exec", ns, "iptables", "-A", "INPUT"], rule].concat());
        // The client's host firewall drops fragmentation-needed: the path-MTU black hole.
        ipt(c, &["-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"])?;
        for port in [UNREACHABLE.port, ICMP_ONLY.port] {
            let port = port.to_string();
            ipt(s, &["-p", "tcp", "--dport", &port, "-j", "REJECT", "--reject-with", "icmp-host-unreachable"])?;
        }
        ipt(s, &["-p", "tcp", "--dport", &CONNECT_TIMEOUT.port.to_string(), "-j", "DROP"])?;
        Ok(t)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.client, &self.router, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// This test binary, run again as `role` inside namespace `ns`.
fn role(ns: &str, role: &str, out: &Path) -> Command {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", role, "--include-ignored", "--nocapture", "--test-threads", "1"])
        .env("WAYGATE_CORPUS_OUT", out);
    cmd
}

/// Reads `from` line by line (on a thread of its own) until a line contains `marker`; the lines before it
/// are the error when [`DEADLINE`] passes first.
pub fn wait_for_line(from: impl Read + Send + 'static, marker: &str) -> Result<(), Vec<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(marker) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => return Err(seen),
        }
    }
}

/// Records every shape into `out` (NAME.pcap each); returns the roles' output, for failure messages.
pub fn record(out: &Path) -> String {
    let topo = Topology::create().expect("create the namespaces");
    let mut server = role(&topo.server, "corpus_role_servers", out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server role");
    if let Err(seen) = wait_for_line(server.stdout.take().expect("stdout"), servers::READY) {
        let _ = server.kill();
        let _ = server.wait();
        panic!("the server role never got ready: {seen:?}");
    }
    let mut log = String::new();
    let clients = role(&topo.client, "corpus_role_clients", out).output().expect("run the client role");
    // Closing its stdin ends the server role.
    drop(server.stdin.take());
    let _ = server.kill();
    let _ = server.wait();
    log.push_str(&String::from_utf8_lossy(&clients.stdout));
    log.push_str(&String::from_utf8_lossy(&clients.stderr));
    assert!(clients.status.success(), "the client role failed:\n{log}");
    drop(topo);
    log
}
