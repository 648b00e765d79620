//! `doctor pcap` on small hand-built captures: every supported link type, pcap and pcapng, each
//! classification the playbooks describe, and truncated, corrupt and foreign input (never a panic).

mod capture;

use std::net::{IpAddr, SocketAddr};

use capture::*;
use waygate_doctor::pcap::{Outcome, PcapArgs, PcapReport, ProblemKind, TargetFilter, analyze_bytes, run_pcap_to};
use waygate_faults::Cause;

#[test]
fn every_link_type_and_both_formats() {
    for lt in [1, 113, 276, 0, 101] {
        for v6 in [false, true] {
            for ng in [false, true] {
                let frames = wrap(lt, refused(v6));
                let bytes = if ng { pcapng(lt, &frames) } else { pcap(lt, &frames) };
                let r = analyze_bytes(&bytes, None).unwrap();
                let f = only(&r);
                assert_eq!(f.cause, Some(Cause::TargetConnectionRefused), "lt {lt} v6 {v6} ng {ng}: {f:?}");
                assert_eq!(f.frames, vec![1, 2]);
                assert_eq!(r.format, Some(if ng { "pcapng" } else { "pcap" }));
                assert!(r.problems.is_empty(), "{:?}", r.problems);
                let server = if v6 { "[fd00::2]:443" } else { "10.0.0.7:443" };
                assert_eq!(f.server, server);
            }
        }
    }
}

#[test]
fn the_playbooks_tls_handshake_timeout() {
    for v6 in [false, true] {
        let r = analyze_bytes(&pcap(276, &wrap(276, handshake_timeout(v6))), None).unwrap();
        let f = only(&r);
        assert_eq!(f.cause, Some(Cause::TargetTlsHandshakeTimeout));
        assert_eq!(f.frames, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(f.evidence.contains("frame 4 ClientHello (517 bytes)"), "{}", f.evidence);
        assert!(f.evidence.contains("frames 5,6,7 ClientHello retransmitted"), "{}", f.evidence);
        assert!(f.evidence.contains("no ServerHello"), "{}", f.evidence);
        assert!(f.evidence.contains("frame 8 client FIN after 10.0 s"), "{}", f.evidence);
        assert_eq!(r.findings[0].cause, Cause::TargetTlsHandshakeTimeout);
        assert!(r.findings[0].remediation.contains("firewall"), "{}", r.findings[0].remediation);
    }
}

#[test]
fn syn_timeout_unreachable_and_alert() {
    let syn = |t| (t, ip_tcp(false, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[]));
    let r = analyze_bytes(&pcap(101, &vec![syn(0), syn(1_000_000), syn(3_000_000)]), None).unwrap();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetConnectTimeout));
    assert!(f.evidence.contains("frames 2,3 SYN retransmitted"), "{}", f.evidence);

    // ICMP host unreachable from a router, quoting the SYN.
    let quoted = ip_tcp(false, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[]);
    let icmp = etherparse::PacketBuilder::ipv4([10, 0, 1, 1], C4, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Host));
    let mut unreach = Vec::new();
    icmp.write(&mut unreach, &quoted[..28]).unwrap();
    let r = analyze_bytes(&pcap(101, &vec![syn(0), (3000, unreach)]), None).unwrap();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetHostUnreachable));
    assert!(f.evidence.contains("frame 2 ICMP host unreachable from 10.0.1.1"), "{}", f.evidence);

    // A fatal unknown_ca alert answering the ClientHello.
    let mut frames = handshake_timeout(false);
    frames.truncate(4);
    frames.push((900, ip_tcp(false, s(SISN + 1), &[21, 3, 3, 0, 2, 2, 48])));
    frames.push((950, ip_tcp(false, Seg { fin: true, ..s(SISN + 8) }, &[])));
    let r = analyze_bytes(&pcap(101, &frames), None).unwrap();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetTlsAlert));
    assert_eq!(f.alert.as_deref(), Some("unknown_ca"));
    assert!(f.evidence.contains("frame 5 TLS alert fatal unknown_ca (48)"), "{}", f.evidence);
    assert_eq!(r.findings[0].alerts.get("unknown_ca"), Some(&1));

    // The capture dropped the alert (tcpdump's "dropped by kernel"), but the client's FIN acknowledges it:
    // no verdict rather than a wrong one.
    frames.truncate(4);
    frames.push((960, ip_tcp(false, Seg { fin: true, ackno: SISN + 1 + 8, ..c(CISN + 518) }, &[])));
    let r = analyze_bytes(&pcap(101, &frames), None).unwrap();
    let f = only(&r);
    assert_eq!(f.outcome, Outcome::Incomplete, "{}", f.evidence);
    assert!(f.evidence.contains("acknowledged 8 byte(s) from the server"), "{}", f.evidence);

    // Plain HTTP answering the ClientHello.
    frames.truncate(4);
    frames.push((900, ip_tcp(false, s(SISN + 1), b"HTTP/1.1 400 Bad Request\r\n\r\n")));
    let r = analyze_bytes(&pcap(101, &frames), None).unwrap();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetTlsProtocolError));
    assert!(f.evidence.contains("\"HTTP/1.1 400 Bad Request\""), "{}", f.evidence);
}

#[test]
fn keep_alive_race_idle_close_closed_and_reset() {
    let fin = Seg { fin: true, ..s(0) };
    let rst = Seg { rst: true, ..s(0) };
    let r = analyze_bytes(&pcap(1, &wrap(1, http_flow(false, fin, 4_000_000))), None).unwrap();
    let f = only(&r);
    assert_eq!(f.outcome, Outcome::IdleClose);
    assert_eq!(f.cause, None);
    assert_eq!(f.idle_ms, Some(4000.0));
    assert_eq!(r.idle_closes[0].min_idle_ms, 4000.0);
    assert!(r.findings.is_empty());

    // A FIN right after the response is `Connection: close`, not an idle timeout: under 100 ms after the last
    // data it is the former, from 100 ms on the latter (docs/doctor.md).
    for (idle_us, outcome) in [(0, Outcome::Ok), (99_000, Outcome::Ok), (100_000, Outcome::IdleClose)] {
        let r = analyze_bytes(&pcap(1, &wrap(1, http_flow(false, fin, idle_us))), None).unwrap();
        assert_eq!(only(&r).outcome, outcome, "{idle_us} µs: {}", only(&r).evidence);
        assert_eq!(r.idle_closes.is_empty(), outcome == Outcome::Ok);
    }

    let r = analyze_bytes(&pcap(1, &wrap(1, http_flow(true, fin, 4_000_000))), None).unwrap();
    let f = only(&r);
    assert_eq!(f.cause, Some(Cause::TargetKeepAliveRace), "{}", f.evidence);
    assert_eq!(f.idle_ms, Some(4000.0));

    let mut frames = http_flow(false, fin, 0);
    frames.remove(4); // no response
    let r = analyze_bytes(&pcap(101, &frames), None).unwrap();
    assert_eq!(only(&r).cause, Some(Cause::TargetClosedConnection), "{}", only(&r).evidence);
    let mut frames = http_flow(false, rst, 0);
    frames.remove(4);
    let r = analyze_bytes(&pcap(101, &frames), None).unwrap();
    assert_eq!(only(&r).cause, Some(Cause::TargetResetConnection));
}

#[test]
fn target_filter() {
    let mut frames = refused(false);
    frames.extend(refused(true));
    let bytes = pcap(101, &frames);
    let ip: IpAddr = "10.0.0.7".parse().unwrap();
    for (t, n) in [("10.0.0.7", 1), ("10.0.0.7:443", 1), ("10.0.0.7:80", 0), ("[fd00::2]:443", 1), ("fd00::2", 1)] {
        let filter = TargetFilter::parse(t).unwrap();
        let r = analyze_bytes(&bytes, Some(filter)).unwrap();
        assert_eq!(r.flows.len(), n, "{t}");
        assert_eq!(r.filtered_out, 2 - n as u64, "{t}");
    }
    assert!(TargetFilter::Ip(ip).matches(SocketAddr::new(ip, 1)));
    assert!(TargetFilter::parse("not-an-ip").is_none());
}

#[test]
fn truncated_capture_is_reported_with_what_was_read() {
    let frames = handshake_timeout(false);
    let full = pcap(101, &frames);
    // Cut in the middle of the last frame, whose 16-byte record header starts at `last`.
    let last = full.len() - 16 - frames[frames.len() - 1].1.len();
    let cut = &full[..full.len() - 10];
    let r = analyze_bytes(cut, None).unwrap();
    assert_eq!(r.frames, 7);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(p.kind, ProblemKind::Truncated);
    assert_eq!(p.after_frame, 7);
    assert_eq!(p.offset, last as u64);
    assert!(p.message.contains(&format!("capture truncated at byte {} after frame 7", p.offset)), "{}", p.message);
    // The frames read still tell the story: a retransmitted, unanswered ClientHello.
    assert_eq!(only(&r).cause, Some(Cause::TargetTlsHandshakeTimeout));
    assert!(only(&r).evidence.contains("never acknowledged"), "{}", only(&r).evidence);
    let mut five = handshake_timeout(false);
    five.truncate(5);
    let five = pcap(101, &five);
    let r = analyze_bytes(&five[..five.len() - 10], None).unwrap(); // only the first ClientHello
    assert_eq!(only(&r).outcome, Outcome::Incomplete, "{}", only(&r).evidence);

    // Prefixes of both formats (every 7th length, and every length of the header and the last frame):
    // never a panic, frames never more than in the whole file.
    for whole in [full.clone(), pcapng(1, &wrap(1, handshake_timeout(true)))] {
        let ends = (0..whole.len()).filter(|n| n % 7 == 0 || *n < 64 || *n + 128 > whole.len());
        for n in ends {
            if let Ok(r) = analyze_bytes(&whole[..n], None) {
                assert!(r.frames <= 8);
            }
        }
    }
}

#[test]
fn corrupt_and_foreign_input() {
    // A legacy frame claiming 4 GiB, the last of the file: corrupt where it is (not "truncated at the end").
    let mut bad = pcap(101, &refused(false));
    let second = 24 + 16 + refused(false)[0].1.len();
    bad[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let r = analyze_bytes(&bad, None).unwrap();
    assert_eq!(r.frames, 1);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert!(p.message.contains("after frame 1: a block larger than 64 MiB"), "{}", p.message);
    assert!(p.message.ends_with("reading stopped"), "{}", p.message);
    assert_eq!((p.kind, p.offset), (ProblemKind::Corrupt, second as u64));

    // A pcapng block whose trailing length disagrees.
    let mut ng = pcapng(1, &wrap(1, refused(false)));
    let last = ng.len() - 4;
    ng[last] ^= 0x40;
    let r = analyze_bytes(&ng, None).unwrap();
    assert_eq!(r.frames, 1);
    assert_eq!(r.problems[0].kind, ProblemKind::Corrupt, "{:?}", r.problems);

    // Garbage frames inside a valid file: counted as undecodable, nothing else.
    let junk: Frames = vec![(0, vec![0x45, 0, 0]), (1, vec![]), (2, vec![0x60; 7])];
    let r = analyze_bytes(&pcap(101, &junk), None).unwrap();
    assert_eq!(r.frames, 3);
    assert_eq!(r.undecodable_frames, 3);
    assert!(r.flows.is_empty());

    assert!(analyze_bytes(b"", None).unwrap_err().to_string().contains("empty"));
    let e = analyze_bytes(b"GET / HTTP/1.1\r\n\r\nnot a capture at all", None).unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
    assert!(analyze_bytes(&[0xd4, 0xc3, 0xb2], None).is_err());
}

#[test]
fn cli_json_and_exit_codes() {
    let dir = std::env::temp_dir().join(format!("wg-pcap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cap.pcap");
    std::fs::write(&file, pcap(276, &wrap(276, handshake_timeout(false)))).unwrap();
    let args = |json, target: Option<&str>| PcapArgs { file: file.clone(), json, target: target.map(str::to_owned) };
    let mut out = Vec::new();
    assert_eq!(run_pcap_to(&args(true, None), &mut out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["schema"], "waygate.doctor.pcap/1");
    let flow = &v["flows"][0];
    for key in ["client", "server", "cause", "evidence", "frames", "outcome"] {
        assert!(!flow[key].is_null(), "{key}: {flow}");
    }
    let finding = &v["findings"][0];
    for key in ["cause", "count", "servers", "remediation"] {
        assert!(!finding[key].is_null(), "{key}: {finding}");
    }
    let mut out = Vec::new();
    assert_eq!(run_pcap_to(&args(false, None), &mut out), 0);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("frame 3 ACK: TCP handshake complete in 0.15 ms"), "{text}");
    assert!(text.contains("→ TargetTlsHandshakeTimeout"), "{text}");
    assert!(text.contains("What to do:"), "{text}");
    assert_eq!(run_pcap_to(&args(false, Some("nonsense")), &mut Vec::new()), 1);
    std::fs::write(&file, b"hello").unwrap();
    assert_eq!(run_pcap_to(&args(false, None), &mut Vec::new()), 1);
    let missing = PcapArgs { file: dir.join("missing.pcap"), json: false, target: None };
    assert_eq!(run_pcap_to(&missing, &mut Vec::new()), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes this file's captures as the `pcap` fuzz target's seed corpus into the directory
/// `WAYGATE_WRITE_PCAP_CORPUS` names (see fuzz/README.md). A tool, not a test: run it with `--ignored`.
#[test]
#[ignore = "writes the fuzz corpus; see fuzz/README.md"]
fn write_fuzz_corpus() {
    let dir =
        std::env::var_os("WAYGATE_WRITE_PCAP_CORPUS").expect("WAYGATE_WRITE_PCAP_CORPUS names the corpus directory");
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fin = Seg { fin: true, ..s(0) };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("refused_eth_pcap", pcap(1, &wrap(1, refused(false)))),
        ("refused_v6_sll_pcapng", pcapng(113, &wrap(113, refused(true)))),
        ("handshake_timeout_sll2", pcap(276, &wrap(276, handshake_timeout(false)))),
        ("handshake_timeout_null_v6", pcapng(0, &wrap(0, handshake_timeout(true)))),
        ("keepalive_race_raw", pcap(101, &http_flow(true, fin, 4_000_000))),
        ("idle_close_eth", pcapng(1, &wrap(1, http_flow(false, fin, 4_000_000)))),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A pipe or FIFO hands the capture over in short reads: every refill that brings bytes is progress, so the
/// whole capture is read (no false truncation), in both formats.
#[test]
fn short_reads_are_not_truncation() {
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for whole in [pcap(101, &handshake_timeout(false)), pcapng(1, &wrap(1, handshake_timeout(true)))] {
        let all = analyze_bytes(&whole, None).unwrap();
        let r = waygate_doctor::pcap::analyze_reader(Trickle(&whole), "(pipe)", None).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!((r.frames, r.flows.len()), (all.frames, all.flows.len()));
    }
}

/// The legacy format's variants docs/doctor.md lists read the same: nanosecond timestamps and big-endian files
/// give the flows, causes, times and frame numbers of the microsecond little-endian file.
#[test]
fn nanosecond_and_big_endian_pcap_read_the_same() {
    let frames = wrap(1, handshake_timeout(false));
    let want = analyze_bytes(&pcap(1, &frames), None).unwrap();
    let key = |r: &PcapReport| -> Vec<_> {
        r.flows
            .iter()
            .map(|f| (f.cause, f.start.clone(), f.duration_ms, f.frames.clone(), f.evidence.clone()))
            .collect()
    };
    assert!(!want.flows.is_empty());
    for (nanos, big) in [(true, false), (false, true), (true, true)] {
        let r = analyze_bytes(&pcap_as(1, &frames, nanos, big), None).unwrap();
        assert!(r.problems.is_empty(), "ns {nanos} be {big}: {:?}", r.problems);
        assert_eq!((r.frames, key(&r)), (want.frames, key(&want)), "ns {nanos} be {big}");
    }
}

/// The rows of docs/doctor.md's classification table that the tests above (and the root-only captures of
/// `crates/waygate/tests/doctor_pcap.rs`) leave out, and how a flow without its SYN picks its client.
#[test]
fn the_rest_of_the_classification_table() {
    let syn = Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() };
    let verdict = |frames: &Frames| {
        let r = analyze_bytes(&pcap(101, frames), None).unwrap();
        let f = only(&r);
        (f.cause, f.alert.clone(), f.evidence.clone())
    };

    // One SYN, abandoned by the client (its RST) before any answer: a connect timeout.
    let (cause, _, evidence) =
        verdict(&vec![(0, ip_tcp(false, syn, &[])), (2_000_000, ip_tcp(false, Seg { rst: true, ..c(CISN + 1) }, &[]))]);
    assert_eq!(cause, Some(Cause::TargetConnectTimeout), "{evidence}");
    assert!(evidence.contains("frame 2 client gave up after 2.0 s without a SYN-ACK"), "{evidence}");

    // ICMPv6 address unreachable quoting the SYN.
    let quoted = ip_tcp(true, syn, &[]);
    let router = {
        let mut a = v6addr(9);
        a[1] = 1;
        a
    };
    let icmp = etherparse::PacketBuilder::ipv6(router, v6addr(1), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Address));
    let mut unreach = Vec::new();
    icmp.write(&mut unreach, &quoted[..48]).unwrap();
    let (cause, _, evidence) = verdict(&vec![(0, quoted.clone()), (3_000, unreach)]);
    assert_eq!(cause, Some(Cause::TargetHostUnreachable), "{evidence}");
    assert!(evidence.contains("frame 2 ICMP address unreachable from fd01::9"), "{evidence}");

    let mut hello = handshake_timeout(false);
    hello.truncate(4); // SYN, SYN-ACK, ACK, ClientHello
    let with = |more: Vec<(u64, Vec<u8>)>| hello.iter().cloned().chain(more).collect::<Frames>();
    let server_hello = [22, 3, 3, 0, 4, 2, 0, 0, 0];

    // The server closes without a byte after the ClientHello.
    let (cause, _, evidence) = verdict(&with(vec![(900, ip_tcp(false, Seg { fin: true, ..s(SISN + 1) }, &[]))]));
    assert_eq!(cause, Some(Cause::TargetTlsProtocolError), "{evidence}");
    assert!(evidence.contains("frame 5 server FIN after 0.60 ms without a byte of TLS"), "{evidence}");

    // A plaintext alert later in the server's handshake, after its ServerHello.
    let (cause, alert, evidence) = verdict(&with(vec![
        (900, ip_tcp(false, s(SISN + 1), &server_hello)),
        (950, ip_tcp(false, s(SISN + 10), &[21, 3, 3, 0, 2, 2, 80])),
        (960, ip_tcp(false, Seg { fin: true, ..s(SISN + 17) }, &[])),
    ]));
    assert_eq!((cause, alert.as_deref()), (Some(Cause::TargetTlsAlert), Some("internal_error")), "{evidence}");
    assert!(evidence.contains("frame 5 ServerHello") && evidence.contains("frame 6 TLS alert fatal"), "{evidence}");

    // The client rejects the server's certificate with a plaintext alert.
    let (cause, alert, evidence) = verdict(&with(vec![
        (900, ip_tcp(false, s(SISN + 1), &server_hello)),
        (950, ip_tcp(false, c(CISN + 518), &[21, 3, 3, 0, 2, 2, 42])),
        (960, ip_tcp(false, Seg { fin: true, ..c(CISN + 525) }, &[])),
    ]));
    assert_eq!((cause, alert.as_deref()), (Some(Cause::TargetTlsCertificateInvalid), Some("bad_certificate")));
    assert!(evidence.contains("frame 6 client TLS alert fatal bad_certificate (42)"), "{evidence}");

    // A plain request the server never answers; the client gives up.
    let request = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    let (cause, _, evidence) = verdict(&vec![
        (0, ip_tcp(false, syn, &[])),
        (10, ip_tcp(false, Seg { syn: true, ack: true, seq: SISN, ..Seg::default() }, &[])),
        (20, ip_tcp(false, c(CISN + 1), &[])),
        (30, ip_tcp(false, c(CISN + 1), request)),
        (60_000_030, ip_tcp(false, Seg { fin: true, ..c(CISN + 1 + request.len() as u32) }, &[])),
    ]);
    assert_eq!(cause, Some(Cause::TargetResponseTimeout), "{evidence}");
    assert!(evidence.contains("frame 5 client FIN: no response in 60.0 s"), "{evidence}");

    // Without the SYN: the SYN-ACK's destination is the client, whatever its port; without a SYN-ACK either,
    // the higher port is.
    let low = Some(80);
    let synack = Seg { syn: true, ack: true, seq: SISN, client_port: low, ..Seg::default() };
    let r = analyze_bytes(&pcap(101, &vec![(0, ip_tcp(false, synack, &[]))]), None).unwrap();
    assert_eq!((only(&r).client.as_str(), only(&r).server.as_str()), ("10.0.1.4:80", "10.0.0.7:443"));
    for client_port in [None, low] {
        let data = ip_tcp(false, Seg { client_port, ..s(SISN + 1) }, b"HTTP/1.1 200 OK\r\n\r\n");
        let r = analyze_bytes(&pcap(101, &vec![(0, data)]), None).unwrap();
        let f = only(&r);
        let want =
            if client_port.is_some() { ("10.0.0.7:443", "10.0.1.4:80") } else { ("10.0.1.4:51234", "10.0.0.7:443") };
        assert_eq!((f.client.as_str(), f.server.as_str()), want);
        assert!(f.evidence.contains("frame 1 first packet mid-connection"), "{}", f.evidence);
    }
}
