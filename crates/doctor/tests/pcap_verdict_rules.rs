//! The evidence each verdict needs (src/pcap/rules.rs, docs/doctor.md), on the shapes of real captures that
//! the first version named wrongly: banner protocols and clients that close first (SSH, SMTP QUIT, LDAP
//! unbind), a client that gives up in microseconds, two copies of one SYN, one-sided captures, a reuse after
//! half a millisecond, a WebSocket upgrade, TLS warning alerts, a flow that ends after its ServerHello, SSLv3
//! and SSLv2-format ClientHellos, ICMP fragmentation-needed and ICMP-only flows, and the keep-alive race
//! inside TLS. Every capture is built by code; each case names the verdict the first version gave.

mod capture;

use capture::*;
use waygate_doctor::pcap::{FlowReport, Outcome, PcapReport, analyze_bytes, rules};
use waygate_faults::Cause;

/// A TCP conversation between the test client and server, with consistent sequence and ack numbers.
struct Conv {
    cseq: u32,
    sseq: u32,
    frames: Frames,
}

impl Conv {
    /// SYN, SYN-ACK, ACK at 0, 10, 20 µs.
    fn open() -> Conv {
        let mut c = Conv::bare();
        c.syn(0);
        c.frames
            .push((10, ip_tcp(false, Seg { syn: true, ack: true, seq: SISN, ackno: CISN + 1, ..Seg::default() }, &[])));
        c.frames.push((20, ip_tcp(false, Seg { ackno: SISN + 1, ..c_at(CISN + 1) }, &[])));
        c
    }

    fn bare() -> Conv {
        Conv { cseq: CISN + 1, sseq: SISN + 1, frames: Vec::new() }
    }

    fn syn(&mut self, t: u64) -> &mut Self {
        self.frames.push((t, ip_tcp(false, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[])));
        self
    }

    fn c(&mut self, t: u64, data: &[u8]) -> &mut Self {
        self.frames.push((t, ip_tcp(false, Seg { ackno: self.sseq, ..c_at(self.cseq) }, data)));
        self.cseq += data.len() as u32;
        self
    }

    fn s(&mut self, t: u64, data: &[u8]) -> &mut Self {
        self.frames.push((t, ip_tcp(false, Seg { ackno: self.cseq, ..s(self.sseq) }, data)));
        self.sseq += data.len() as u32;
        self
    }

    fn c_close(&mut self, t: u64, rst: bool) -> &mut Self {
        let seg = Seg { fin: !rst, rst, ackno: self.sseq, ..c_at(self.cseq) };
        self.frames.push((t, ip_tcp(false, seg, &[])));
        self
    }

    fn s_close(&mut self, t: u64, rst: bool) -> &mut Self {
        let seg = Seg { fin: !rst, rst, ackno: self.cseq, ..s(self.sseq) };
        self.frames.push((t, ip_tcp(false, seg, &[])));
        self
    }

    fn report(&self) -> PcapReport {
        analyze_bytes(&pcap(101, &self.frames), None).unwrap()
    }
}

fn c_at(seq: u32) -> Seg {
    c(seq)
}

fn verdict(r: &PcapReport) -> (Outcome, Option<Cause>, String) {
    let f: &FlowReport = only(r);
    (f.outcome, f.cause, f.evidence.clone())
}

const REQ: &[u8] = b"GET /orders HTTP/1.1\r\nhost: a\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const MS: u64 = 1_000;

/// SSH (server banner first), SMTP ending in QUIT, an LDAP bind and unbind, finger: the client closes a
/// few microseconds after its last bytes. Not HTTP or TLS: other traffic (was TargetResponseTimeout "no
/// response in 0.05 ms"). A server RST before a byte of its own is still a TCP-level failure.
#[test]
fn banner_and_binary_protocols_are_other_traffic() {
    let mut ssh = Conv::open();
    ssh.s(100, b"SSH-2.0-OpenSSH_9.6\r\n")
        .c(200, b"SSH-2.0-OpenSSH_9.6\r\n")
        .c(250, &[0, 0, 5, 0xdc, 6, 20])
        .c_close(300, false);
    let mut smtp = Conv::open();
    smtp.s(100, b"220 mail ESMTP\r\n")
        .c(200, b"EHLO a\r\n")
        .s(300, b"250 ok\r\n")
        .c(400, b"QUIT\r\n")
        .c_close(450, false);
    let mut ldap = Conv::open();
    ldap.c(100, &[0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07]).s(200, &[0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07]);
    ldap.c(300, &[0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00]).c_close(350, false);
    let mut finger = Conv::open();
    finger.c(100, b"root\r\n").c_close(150, false);
    for (what, conv) in [("ssh", ssh), ("smtp", smtp), ("ldap", ldap), ("finger", finger)] {
        let (outcome, cause, evidence) = verdict(&conv.report());
        assert_eq!((outcome, cause), (Outcome::Other, None), "{what}: {evidence}");
        assert!(evidence.contains("other traffic"), "{what}: {evidence}");
    }
    let mut reset = Conv::open();
    reset.c(100, &[0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07]).s_close(200, true);
    let (outcome, cause, evidence) = verdict(&reset.report());
    assert_eq!((outcome, cause), (Outcome::Failed, Some(Cause::TargetResetConnection)), "{evidence}");
}

/// A client that closes before any timeout could have fired gave up on its own: ClientClosedRequest, a
/// client-side cause, at each phase (was TargetResponseTimeout, TargetTlsHandshakeTimeout and
/// TargetConnectTimeout). At the threshold, the target's timeout it is.
#[test]
fn a_client_that_leaves_first_is_named_as_such() {
    let client_gone = (Outcome::Failed, Some(Cause::ClientClosedRequest));
    // HTTP: request, FIN 50 µs later.
    let mut http = Conv::open();
    http.c(100, REQ).c_close(150, false);
    let (outcome, cause, evidence) = verdict(&http.report());
    assert_eq!((outcome, cause), client_gone, "{evidence}");
    assert!(evidence.contains("no response in 0.05 ms: sooner than any TargetResponseTimeout (1.0 s)"), "{evidence}");
    let mut slow = Conv::open();
    slow.c(100, REQ).c_close(100 + rules::RESPONSE_TIMEOUT.min_ns as u64 / 1_000, false);
    assert_eq!(verdict(&slow.report()).1, Some(Cause::TargetResponseTimeout));

    // TLS: a ClientHello, then the client's FIN 80 µs later (a scanner, a cancelled request).
    let mut tls = Conv::open();
    tls.c(100, &client_hello()).c_close(180, false);
    let (outcome, cause, evidence) = verdict(&tls.report());
    assert_eq!((outcome, cause), client_gone, "{evidence}");

    // Connect: the client's RST 300 ms after its SYN (happy eyeballs cancelling the slower family).
    let mut connect = Conv::bare();
    connect.syn(0).c_close(300 * MS, true);
    let (outcome, cause, evidence) = verdict(&connect.report());
    assert_eq!((outcome, cause), client_gone, "{evidence}");
    assert!(evidence.contains("frame 2 client RST after 300.0 ms without a SYN-ACK"), "{evidence}");
}

/// A capture that ends 0.1 ms after two SYNs (one SYN seen twice, `-i any`) has not seen a timeout: it is
/// incomplete (was TargetConnectTimeout "no SYN-ACK in 0.11 ms"). A one-sided capture, where the client
/// acknowledges a SYN-ACK the capture does not hold and then talks and closes, is incomplete too (was
/// TargetConnectTimeout "client gave up").
#[test]
fn short_and_one_sided_captures_are_incomplete() {
    let mut twice = Conv::bare();
    twice.syn(0).syn(110);
    let (outcome, cause, evidence) = verdict(&twice.report());
    assert_eq!((outcome, cause), (Outcome::Incomplete, None), "{evidence}");
    assert!(evidence.contains("too soon for a connect timeout"), "{evidence}");

    let mut one_sided = Conv::bare();
    one_sided.syn(0);
    one_sided.frames.push((20, ip_tcp(false, Seg { ackno: SISN + 1, ..c(CISN + 1) }, &[])));
    one_sided.c(30, REQ).c(5_000 * MS, b"GET /next HTTP/1.1\r\n\r\n").c_close(9_000 * MS, false);
    let (outcome, cause, evidence) = verdict(&one_sided.report());
    assert_eq!((outcome, cause), (Outcome::Incomplete, None), "{evidence}");
    assert!(evidence.contains("the capture sees one direction only"), "{evidence}");
}

/// A server that closes a connection reused after 0.5 ms idle was not timing it out: TargetClosedConnection
/// (was TargetKeepAliveRace). After the threshold it is the race.
#[test]
fn a_keep_alive_race_needs_idle_time() {
    let race = |idle_us: u64| {
        let mut conv = Conv::open();
        conv.c(100, REQ).s(200, RESP).c(200 + idle_us, REQ).s_close(300 + idle_us, false);
        verdict(&conv.report())
    };
    let (_, cause, evidence) = race(500);
    assert_eq!(cause, Some(Cause::TargetClosedConnection), "{evidence}");
    assert!(evidence.contains("after 0.50 ms idle: idle less than any keep-alive timeout (1.0 s)"), "{evidence}");
    let (_, cause, evidence) = race(rules::KEEPALIVE_IDLE.min_ns as u64 / 1_000);
    assert_eq!(cause, Some(Cause::TargetKeepAliveRace), "{evidence}");
}

/// A WebSocket upgrade: after `101 Switching Protocols` the client's frames are not requests, and the server
/// closing the tunnel after a client frame is not a keep-alive race (it was).
#[test]
fn an_upgraded_connection_is_a_tunnel() {
    let mut ws = Conv::open();
    ws.c(100, b"GET /chat HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    ws.s(200, b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    ws.c(2_000 * MS, &[0x81, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9]).s(2_001 * MS, &[0x81, 0x02, b'h', b'i']);
    ws.c(5_000 * MS, &[0x81, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9]).s_close(5_001 * MS, false);
    let (outcome, cause, evidence) = verdict(&ws.report());
    assert_eq!((outcome, cause), (Outcome::Ok, None), "{evidence}");
    assert!(evidence.contains("101 Switching Protocols: a tunnel"), "{evidence}");
}

fn server_hello() -> Vec<u8> {
    let mut h = vec![22, 3, 3, 0, 0x4a, 2, 0, 0, 0x46, 3, 3];
    h.resize(5 + 0x4a, 0x11);
    h
}

/// A TLS record of `kind` with `len` bytes of body.
fn record(kind: u8, len: u16) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend(len.to_be_bytes());
    r.resize(5 + usize::from(len), 0x22);
    r
}

/// A warning alert (`unrecognized_name` before the ServerHello, as some servers send it) is not a failure
/// (was TargetTlsAlert); a fatal one still is.
#[test]
fn tls_warning_alerts_are_not_failures() {
    let mut warn = Conv::open();
    warn.c(100, &client_hello()).s(200, &[&[21, 3, 3, 0, 2, 1, 112][..], &server_hello()].concat());
    warn.c(300, &record(20, 1)).s(400, &record(23, 200)).c(500, &record(23, 100)).s(600, &record(23, 300));
    warn.c_close(700, false);
    let (outcome, cause, evidence) = verdict(&warn.report());
    assert_eq!((outcome, cause), (Outcome::Ok, None), "{evidence}");
    assert!(evidence.contains("TLS alert warning unrecognized_name (112) from the server: a warning"), "{evidence}");
    let mut fatal = Conv::open();
    fatal.c(100, &client_hello()).s(200, &[21, 3, 3, 0, 2, 2, 112]).s_close(250, false);
    assert_eq!(verdict(&fatal.report()).1, Some(Cause::TargetTlsAlert));
}

/// A flow that ends after its ServerHello (the server closes on the client's second flight) is `ok` as
/// docs/doctor.md says: inside TLS only an alert names a failure (was TargetClosedConnection).
#[test]
fn a_tls_flow_ending_after_server_hello_is_ok() {
    let mut conv = Conv::open();
    conv.c(100, &client_hello()).s(200, &server_hello()).c(300, &record(22, 70)).s_close(400, false);
    let (outcome, cause, evidence) = verdict(&conv.report());
    assert_eq!((outcome, cause), (Outcome::Ok, None), "{evidence}");
}

/// SSLv3-era clients: a ClientHello in an SSL 3.0 record, and the SSLv2-format ClientHello offering SSL 3.0
/// (2-byte length with the top bit set, type 1, version 3.0), unanswered for 10 s: a TLS handshake timeout
/// (the SSLv2 format was "data", then TargetResponseTimeout).
#[test]
fn sslv3_client_hellos_are_recognised() {
    let mut v3 = client_hello();
    v3[2] = 0;
    let mut v2 = vec![0x80, 0x2e, 1, 3, 0, 0, 0x15, 0, 0, 0, 0x10];
    v2.resize(0x30, 0x33);
    for (what, hello) in [("SSL 3.0 record", v3), ("SSLv2 format", v2)] {
        let mut conv = Conv::open();
        conv.c(100, &hello).c_close(10_000 * MS, false);
        let (_, cause, evidence) = verdict(&conv.report());
        assert_eq!(cause, Some(Cause::TargetTlsHandshakeTimeout), "{what}: {evidence}");
        assert!(evidence.contains("frame 4 ClientHello"), "{what}: {evidence}");
    }
}

/// An ICMP error built by hand: `kind`/`code`, 4 bytes of rest-of-header, then the quoted packet.
fn icmp4(kind: u8, code: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let mut body = vec![kind, code, 0, 0];
    body.extend(rest);
    body.extend(&quoted[..quoted.len().min(48)]);
    let sum = checksum(&body);
    body[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ip = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 0, 1, 1], C4, 64).write(&mut ip, etherparse::IpNumber::ICMP, &body).unwrap();
    ip
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMP fragmentation needed (MTU 1400) quoting the large ClientHello of a handshake that then times out:
/// the path-MTU evidence is in the story and in `path_mtu` (it was ignored).
#[test]
fn fragmentation_needed_is_path_mtu_evidence() {
    let mut conv = Conv::open();
    let mut big_hello = client_hello();
    big_hello[3..5].copy_from_slice(&1795u16.to_be_bytes());
    big_hello.resize(1800, 0xab);
    conv.c(100, &big_hello);
    let quoted = conv.frames.last().unwrap().1.clone();
    conv.frames.push((150, icmp4(3, 4, [0, 0, 0x05, 0x78], &quoted)));
    conv.c_close(10_000 * MS, false);
    let r = conv.report();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetTlsHandshakeTimeout), "{}", f.evidence);
    assert_eq!(f.path_mtu, Some(1400));
    assert!(
        f.evidence.contains("frame 5 ICMP fragmentation needed from 10.0.1.1 (next-hop MTU 1400)"),
        "{}",
        f.evidence
    );
}

/// The black hole itself: after the ICMP fragmentation needed (MTU 1400), the client retransmits its
/// 1,800-byte ClientHello at the same size (the error never took effect) and gives up 10 s later:
/// TargetPathMtuBlackhole, with the oversized frame named. A retransmission that fits the MTU (the stack
/// lowered its segment size; the handshake still timed out for another reason) keeps TargetTlsHandshakeTimeout.
#[test]
fn oversized_packets_after_frag_needed_are_a_path_mtu_black_hole() {
    let flow = |retransmitted: usize| {
        let mut conv = Conv::open();
        let mut big_hello = client_hello();
        big_hello[3..5].copy_from_slice(&1795u16.to_be_bytes());
        big_hello.resize(1800, 0xab);
        let seq = conv.cseq;
        conv.c(100, &big_hello);
        let quoted = conv.frames.last().unwrap().1.clone();
        conv.frames.push((150, icmp4(3, 4, [0, 0, 0x05, 0x78], &quoted)));
        let again = ip_tcp(false, Seg { ackno: conv.sseq, ..c_at(seq) }, &big_hello[..retransmitted]);
        conv.frames.push((1_100 * MS, again));
        conv.c_close(10_000 * MS, false);
        conv.report()
    };
    let r = flow(1800);
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetPathMtuBlackhole), "{}", f.evidence);
    assert_eq!(f.path_mtu, Some(1400));
    assert!(f.evidence.contains("frame 6 the client still sent a packet of at least 1840 bytes"), "{}", f.evidence);
    assert!(f.frames.contains(&6), "{:?}", f.frames);
    let remedy = &r.findings[0].remediation;
    assert!(remedy.contains("ICMP type 3 code 4"), "{remedy}");
    let r = flow(1300);
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetTlsHandshakeTimeout), "{}", f.evidence);
    assert_eq!(f.path_mtu, Some(1400));
}

/// An ICMP host unreachable whose quoted header names a connection the capture holds no packet of (a capture
/// filtered to ICMP, a SYN rejected before the capture point): the flow is built from the quote and keeps its
/// verdict (it produced no flow at all).
#[test]
fn icmp_only_flows_come_from_the_quoted_header() {
    let syn = ip_tcp(false, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[]);
    let r = analyze_bytes(&pcap(101, &vec![(0, icmp4(3, 1, [0; 4], &syn))]), None).unwrap();
    let f = only(&r);
    assert_eq!((f.client.as_str(), f.server.as_str()), ("10.0.1.4:51234", "10.0.0.7:443"));
    assert_eq!(f.cause, Some(Cause::TargetHostUnreachable), "{}", f.evidence);
    assert!(f.evidence.contains("no TCP packet of this connection in the capture"), "{}", f.evidence);
}

/// The keep-alive race inside TLS, read from record sizes and timing: after a complete exchange and 2 s
/// idle, the client sends an application-data record longer than an encrypted close_notify and the server
/// closes before a byte in reply: TargetKeepAliveRace, `probable`. A reuse after 0.5 s, or a 19-byte record
/// (TLS 1.3's close_notify), is not one.
#[test]
fn keep_alive_race_inside_tls() {
    let flow = |idle_us: u64, last_record: u16| {
        let mut conv = Conv::open();
        conv.c(100, &client_hello()).s(200, &server_hello()).c(300, &record(20, 1)).s(400, &record(23, 200));
        conv.c(500, &record(23, 120)).s(600, &record(23, 400));
        conv.c(600 + idle_us, &record(23, last_record)).s_close(700 + idle_us, false);
        conv.report()
    };
    let r = flow(2_000 * MS, 120);
    let f = only(&r);
    assert_eq!((f.cause, f.confidence), (Some(Cause::TargetKeepAliveRace), Some("probable")), "{}", f.evidence);
    assert_eq!(f.idle_ms, Some(2000.0));
    assert!(f.evidence.contains("client application-data record (120 bytes) after 2.0 s idle"), "{}", f.evidence);
    for (idle, len) in [(500 * MS, 120), (2_000 * MS, 19)] {
        let r = flow(idle, len);
        let f = only(&r);
        assert_eq!((f.outcome, f.cause, f.confidence), (Outcome::Ok, None, None), "{idle} {len}: {}", f.evidence);
    }
}

/// docs/doctor.md states every threshold: its verdict, its value and its reason.
#[test]
fn the_docs_state_every_threshold() {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join("docs").join("doctor.md");
    let doc = std::fs::read_to_string(doc).unwrap();
    for t in rules::ALL {
        let row = format!("| `{}` | {} | {} | {} |", t.verdict, t.measures, t.min(), t.why);
        assert!(doc.contains(&row), "docs/doctor.md lacks the row:\n{row}");
    }
}

/// docs/doctor.md gives the least evidence of every verdict the capture classifier names.
#[test]
fn the_docs_give_every_verdicts_evidence() {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join("docs").join("doctor.md");
    let doc = std::fs::read_to_string(doc).unwrap();
    let verdicts = [
        Cause::TargetHostUnreachable,
        Cause::TargetConnectionRefused,
        Cause::TargetConnectTimeout,
        Cause::TargetTlsHandshakeTimeout,
        Cause::TargetPathMtuBlackhole,
        Cause::TargetTlsAlert,
        Cause::TargetTlsCertificateInvalid,
        Cause::TargetTlsProtocolError,
        Cause::TargetClosedConnection,
        Cause::TargetKeepAliveRace,
        Cause::TargetResponseTimeout,
        Cause::ClientClosedRequest,
    ];
    let table = doc.split("Every verdict and the least evidence").nth(1).expect("the evidence table");
    let firsts: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split(" | ").next())
        .collect();
    for v in verdicts.iter().map(|c| c.name()).chain(["idle_close", "incomplete", "other"]) {
        let cell = format!("`{v}`");
        assert!(firsts.iter().any(|f| f.contains(&cell)), "docs/doctor.md gives no evidence row for {v}");
    }
}
