//! `waygate doctor pcap` on real captures: tcpdump records loopback traffic to the fault lab's targets
//! (and, in a network namespace this test creates, iptables dropping the ClientHello or rejecting with ICMP
//! host-unreachable), then every flow's classification is checked. Traffic goes only to 127.0.0.1, inside
//! this process or a namespace made here. Skipped, with the reason printed, when not root or when tcpdump
//! (or ip/iptables/curl for the namespace test) is missing; `.ci/run` installs them and makes a skip a failure.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::{Backend, Fault};

const CAPTURE: &str = "tcpdump needs CAP_NET_RAW";

/// A running tcpdump, ready (it said "listening on") before `start` returns.
struct Tcpdump {
    child: Child,
    file: PathBuf,
}

impl Tcpdump {
    fn start(prefix: &[&str], file: &Path, filter: &str) -> Tcpdump {
        let mut cmd = Command::new(prefix.first().copied().unwrap_or("tcpdump"));
        let rest = if prefix.is_empty() { &[][..] } else { &prefix[1..] };
        cmd.args(rest);
        if !prefix.is_empty() {
            cmd.arg("tcpdump");
        }
        let mut child = cmd
            .args(["-i", "lo", "--immediate-mode", "-B", "8192", "-U", "-s", "0", "-n", "-Z", "root", "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("tcpdump not ready: {seen:?}");
                }
            }
        }
        Tcpdump { child, file: file.to_owned() }
    }

    /// Waits (bounded) until the capture file holds a finished flow to `port`: the last traffic of a test
    /// goes there, so every packet before it has been written too.
    fn wait_for_flow_to(&self, port: u16) {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            let bytes = std::fs::read(&self.file).unwrap_or_default();
            if let Ok(r) = waygate_doctor::pcap::analyze_bytes(&bytes, None)
                && r.flows.iter().any(|f| {
                    f.server.ends_with(&format!(":{port}")) && f.outcome != waygate_doctor::pcap::Outcome::Incomplete
                })
            {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        panic!("tcpdump never wrote the marker flow to port {port}");
    }

    /// SIGINT, then wait (bounded) for tcpdump to flush and exit.
    fn stop(mut self) -> PathBuf {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.file.clone();
            }
            // Polling a child's exit has no blocking-with-timeout form in std; this bounds the wait.
            std::thread::park_timeout(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("tcpdump did not exit after SIGINT");
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `waygate doctor pcap FILE --json`, flows keyed by server port.
fn doctor(file: &Path) -> (serde_json::Value, BTreeMap<u16, Vec<serde_json::Value>>) {
    let out = Command::new(bin()).args(["doctor", "pcap", "--json"]).arg(file).output().expect("run doctor");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut by_port: BTreeMap<u16, Vec<serde_json::Value>> = BTreeMap::new();
    for f in v["flows"].as_array().expect("flows") {
        let server: SocketAddr = f["server"].as_str().unwrap().parse().unwrap();
        by_port.entry(server.port()).or_default().push(f.clone());
    }
    (v, by_port)
}

fn client_hello() -> Vec<u8> {
    // A TLS 1.2 record holding a ClientHello-shaped handshake message, 517 bytes in all.
    let body = 512usize;
    let mut h = vec![22, 3, 1, (body >> 8) as u8, body as u8, 1, 0, ((body - 4) >> 8) as u8, (body - 4) as u8, 3, 3];
    h.resize(5 + body, 0x5a);
    h
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: pcap.test\r\n\r\n";

/// Reads one response (head and a Content-Length body).
fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return buf;
            }
        }
        let n = s.read(&mut chunk).expect("read response");
        assert!(n > 0, "EOF inside a response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until EOF or error; returns whether it was a reset.
fn read_to_end(s: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    matches!(s.read_to_end(&mut sink), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

#[test]
fn loopback_fault_lab_flows_are_classified() {
    if cannot_run("loopback_fault_lab_flows_are_classified", CAPTURE, &["tcpdump", "kill"]) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let idle = Duration::from_millis(300);
    let faults = [
        Fault::Refuse,
        Fault::SynBlackhole,
        Fault::TlsBlackhole,
        Fault::TlsAlert,
        Fault::PlainHttpOnTls,
        Fault::CloseBeforeResponse,
        Fault::ResetBeforeResponse,
        Fault::KeepAliveCloser(idle),
        Fault::KeepAliveRace,
    ];
    let mut running = Vec::new();
    for f in faults {
        running.push((f, rt.block_on(f.spawn(any)).expect("spawn fault")));
    }
    let healthy = rt.block_on(Backend::new("healthy").spawn(any)).expect("spawn backend");
    let marker = rt.block_on(Fault::Refuse.spawn(any)).expect("spawn marker");
    let addr = |f: Fault| running.iter().find(|(x, _)| *x == f).map(|(_, r)| r.addr()).unwrap();
    let mut ports: Vec<u16> = running.iter().map(|(_, r)| r.addr().port()).collect();
    ports.push(healthy.addr().port());
    ports.push(marker.addr().port());
    let filter = ports.iter().map(|p| format!("tcp port {p}")).collect::<Vec<_>>().join(" or ");
    let dir = tempdir("lo");
    let dump = Tcpdump::start(&[], &dir.join("lo.pcap"), &filter);

    assert!(TcpStream::connect(addr(Fault::Refuse)).is_err());
    // Linux retransmits an unanswered SYN after 1 s: a 2.5 s connect timeout shows two SYNs.
    assert!(TcpStream::connect_timeout(&addr(Fault::SynBlackhole), Duration::from_millis(2500)).is_err());
    {
        let mut s = connect(addr(Fault::TlsBlackhole));
        s.write_all(&client_hello()).unwrap();
        // Past the doctor's 1 s TLS-handshake threshold (a client leaving sooner gave up on its own).
        s.set_read_timeout(Some(Duration::from_millis(1_200))).unwrap();
        let mut b = [0u8; 16];
        // The handshake timeout under test: the read must time out, no byte comes back.
        assert!(s.read(&mut b).is_err());
    }
    for f in [Fault::TlsAlert, Fault::PlainHttpOnTls] {
        let mut s = connect(addr(f));
        s.write_all(&client_hello()).unwrap();
        read_to_end(&mut s);
    }
    {
        let mut s = connect(addr(Fault::CloseBeforeResponse));
        s.write_all(REQUEST).unwrap();
        assert!(!read_to_end(&mut s));
    }
    {
        let mut s = connect(addr(Fault::ResetBeforeResponse));
        s.write_all(REQUEST).unwrap();
        read_to_end(&mut s);
    }
    {
        let mut s = connect(addr(Fault::KeepAliveCloser(idle)));
        s.write_all(REQUEST).unwrap();
        read_response(&mut s);
        // The target closes after `idle`: this read returns at its FIN.
        read_to_end(&mut s);
    }
    {
        let mut s = connect(addr(Fault::KeepAliveRace));
        s.write_all(REQUEST).unwrap();
        read_response(&mut s);
        // The idle time is what is under test, not a synchronisation: a reuse after less than the doctor's
        // 1 s keep-alive threshold is a plain close, not a race.
        std::thread::sleep(Duration::from_millis(1_100));
        s.write_all(REQUEST).unwrap();
        read_to_end(&mut s);
    }
    {
        let mut s = connect(healthy.addr());
        s.write_all(REQUEST).unwrap();
        read_response(&mut s);
        s.shutdown(std::net::Shutdown::Write).unwrap();
        read_to_end(&mut s);
    }
    assert!(TcpStream::connect(marker.addr()).is_err());
    dump.wait_for_flow_to(marker.addr().port());
    let file = dump.stop();
    let (report, flows) = doctor(&file);
    let expect = [
        (Fault::Refuse, "TargetConnectionRefused"),
        (Fault::SynBlackhole, "TargetConnectTimeout"),
        (Fault::TlsBlackhole, "TargetTlsHandshakeTimeout"),
        (Fault::TlsAlert, "TargetTlsAlert"),
        (Fault::PlainHttpOnTls, "TargetTlsProtocolError"),
        (Fault::CloseBeforeResponse, "TargetClosedConnection"),
        (Fault::ResetBeforeResponse, "TargetResetConnection"),
        (Fault::KeepAliveRace, "TargetKeepAliveRace"),
    ];
    let text = serde_json::to_string_pretty(&report).unwrap();
    for (fault, cause) in expect {
        let fl = &flows[&addr(fault).port()];
        assert_eq!(fl.len(), 1, "{fault}: {text}");
        assert_eq!(fl[0]["cause"], cause, "{fault}: {}", fl[0]);
        assert_eq!(fl[0]["outcome"], "failed", "{fault}: {}", fl[0]);
    }
    let alert = &flows[&addr(Fault::TlsAlert).port()][0];
    assert_eq!(alert["alert"], "handshake_failure", "{alert}");
    let plain = &flows[&addr(Fault::PlainHttpOnTls).port()][0];
    assert!(plain["evidence"].as_str().unwrap().contains("HTTP/1.1 400 Bad Request"), "{plain}");
    let closer = &flows[&addr(Fault::KeepAliveCloser(idle)).port()][0];
    assert_eq!(closer["outcome"], "idle_close", "{closer}");
    let idle_ms = closer["idle_ms"].as_f64().unwrap();
    assert!((250.0..5000.0).contains(&idle_ms), "{closer}");
    let ok = &flows[&healthy.addr().port()][0];
    assert_eq!(ok["outcome"], "ok", "{ok}");
    assert!(ok["cause"].is_null(), "{ok}");
    // Findings carry the catalogue's remediation.
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), expect.len(), "{text}"); // the marker's refusal joins TargetConnectionRefused
    assert!(findings.iter().all(|f| !f["remediation"].as_str().unwrap().is_empty()));

    // --target narrows to one server; the terminal report tells its story.
    let target = addr(Fault::TlsBlackhole).to_string();
    let out = Command::new(bin()).args(["doctor", "pcap", "--target", &target]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ClientHello (517 bytes)") && text.contains("→ TargetTlsHandshakeTimeout"), "{text}");
    assert!(!text.contains("TargetConnectionRefused"), "{text}");
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `waygate faultlab NAME` process inside the namespace, killed (and reaped) on drop.
struct Lab(Child);

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `waygate faultlab NAME` inside the namespace; returns it and the target's address.
fn faultlab_in(ns: &Netns, name: &str) -> (Lab, SocketAddr) {
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0, bin(), "faultlab", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultlab");
    let mut lab = Lab(child);
    let stdout = lab.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("faultlab address");
        if let Some(addr) = line.split_whitespace().find_map(|w| w.parse::<SocketAddr>().ok()) {
            return (lab, addr);
        }
    }
}

#[test]
fn netns_dropped_client_hello_and_icmp_unreachable() {
    if cannot_run(
        "netns_dropped_client_hello_and_icmp_unreachable",
        CAPTURE,
        &["tcpdump", "kill", "ip", "iptables", "curl"],
    ) {
        return;
    }
    let ns = Netns::create("pcap").expect("create network namespace");
    let (lab, tls) = faultlab_in(&ns, "tls-blackhole");
    let tls_port = tls.port().to_string();
    // A middlebox that lets the TCP handshake through and drops every segment with a payload to the TLS
    // port (the playbook's ClientHello that is retransmitted and never answered).
    let append = |rule: &[&str]| {
        let out = ns.exec(&[&["iptables", "-A", "INPUT", "-p", "tcp", "--dport"], rule].concat());
        assert!(out.status.success(), "iptables {rule:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    append(&[&tls_port, "-m", "length", "--length", "100:65535", "-j", "DROP"]);
    // Port 9 answers a SYN with ICMP host unreachable.
    append(&["9", "--tcp-flags", "SYN,ACK", "SYN", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"]);
    let dir = tempdir("netns");
    let filter = format!("tcp port {tls_port} or tcp port 9 or icmp");
    let dump = Tcpdump::start(&["ip", "netns", "exec", &ns.0], &dir.join("ns.pcap"), &filter);
    // The same traffic captured with `icmp` as the filter: no TCP packet at all.
    let icmp_dump = Tcpdump::start(&["ip", "netns", "exec", &ns.0], &dir.join("icmp.pcap"), "icmp");
    let url = format!("https://127.0.0.1:{tls_port}/");
    // curl gives up after 3 s: its ClientHello is retransmitted meanwhile (RTO 200 ms, doubling).
    let out = ns.exec(&["curl", "-sk", "-m", "3", &url]);
    assert!(!out.status.success());
    let out = ns.exec(&["curl", "-s", "-m", "5", "http://127.0.0.1:9/"]);
    assert!(!out.status.success());
    // The client's FIN waits behind the dropped ClientHello: retransmissions are the evidence.
    dump.wait_for_flow_to(tls.port());
    dump.wait_for_flow_to(9);
    icmp_dump.wait_for_flow_to(9);
    let file = dump.stop();
    let icmp_file = icmp_dump.stop();
    drop(lab);
    let (report, flows) = doctor(&file);
    let text = serde_json::to_string_pretty(&report).unwrap();
    let hs = &flows[&tls.port()];
    assert_eq!(hs.len(), 1, "{text}");
    assert_eq!(hs[0]["cause"], "TargetTlsHandshakeTimeout", "{}", hs[0]);
    let evidence = hs[0]["evidence"].as_str().unwrap();
    assert!(evidence.contains("ClientHello retransmitted") && evidence.contains("no ServerHello"), "{evidence}");
    let un = &flows[&9];
    assert!(!un.is_empty(), "{text}");
    assert!(un.iter().all(|f| f["cause"] == "TargetHostUnreachable"), "{text}");
    assert!(un[0]["evidence"].as_str().unwrap().contains("ICMP host unreachable"), "{}", un[0]);
    // ICMP only: the flow comes from the error's quoted header, with the same verdict.
    let (report, flows) = doctor(&icmp_file);
    let text = serde_json::to_string_pretty(&report).unwrap();
    let un = &flows[&9];
    assert!(!un.is_empty() && un.iter().all(|f| f["cause"] == "TargetHostUnreachable"), "{text}");
    let evidence = un[0]["evidence"].as_str().unwrap();
    assert!(evidence.contains("no TCP packet of this connection"), "{evidence}");
    let _ = std::fs::remove_dir_all(&dir);
}
