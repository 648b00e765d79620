//! `doctor pcap`'s input and output as docs/doctor.md describes them, on hand-built captures: pcapng with
//! several sections and interfaces, the link types it names (VLAN-tagged Ethernet, BSD loopback NULL and
//! LOOP, raw IPv4/IPv6), frames cut by a short snaplen, the reader's buffer growing for large blocks up to its
//! 64 MiB cap, and every key of the `--json` schema.

mod capture;

use std::io::Read;

use capture::*;
use serde_json::Value;
use waygate_doctor::pcap::{Outcome, PcapArgs, PcapReport, ProblemKind, analyze_bytes, analyze_reader, run_pcap_to};
use waygate_faults::Cause;

fn refused_cause(r: &PcapReport, what: &str) {
    assert!(r.problems.is_empty(), "{what}: {:?}", r.problems);
    assert_eq!((r.undecodable_frames, r.other_frames), (0, 0), "{what}");
    let f = only(r);
    assert_eq!(f.cause, Some(Cause::TargetConnectionRefused), "{what}: {f:?}");
    assert_eq!(f.frames, [1, 2], "{what}");
}

/// Two sections, the first with two interfaces of different link types and timestamp resolutions, the
/// second big-endian with one interface: every packet is decoded with its own interface's link type and
/// clock, and a section's interfaces do not carry over into the next.
#[test]
fn pcapng_with_several_sections_and_interfaces() {
    let (eth, raw) = (wrap(1, refused(false)), refused(true));
    let sll2 = wrap(276, refused_from(false, 40_000));
    let first = Section {
        big: false,
        interfaces: vec![(1, 6), (101, 9)], // Ethernet in µs, raw IP in ns
        packets: vec![
            (0, 0, eth[0].1.clone()),
            (1, 100, raw[0].1.clone()),
            (0, 140, eth[1].1.clone()),
            (1, 350, raw[1].1.clone()),
        ],
    };
    let second = Section {
        big: true,
        interfaces: vec![(276, 6)],
        packets: vec![
            (0, 1_000, sll2[0].1.clone()),
            (0, 1_030, sll2[1].1.clone()),
            // Interface 1 was the first section's; this section declares only interface 0.
            (1, 1_100, raw[0].1.clone()),
        ],
    };
    let r = analyze_bytes(&pcapng_sections(&[first, second]), None).unwrap();
    assert_eq!(r.format, Some("pcapng"));
    assert_eq!(r.frames, 7);
    assert_eq!(r.link_types, ["EN10MB (Ethernet)", "RAW (IP)", "LINUX_SLL2 (Linux cooked v2)"]);
    let flows: Vec<_> = r
        .flows
        .iter()
        .map(|f| (f.client.as_str(), f.cause, f.frames.clone(), f.start.as_str(), f.duration_ms))
        .collect();
    let refused = Some(Cause::TargetConnectionRefused);
    assert_eq!(
        flows,
        [
            ("10.0.1.4:51234", refused, vec![1, 3], "2023-11-14T22:13:20.000000Z", 0.14),
            ("[fd00::1]:51234", refused, vec![2, 4], "2023-11-14T22:13:20.000100Z", 0.25),
            ("10.0.1.4:40000", refused, vec![5, 6], "2023-11-14T22:13:20.001000Z", 0.03),
        ]
    );
    assert_eq!(r.undecodable_frames, 0);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!((p.kind, p.after_frame), (ProblemKind::UnknownInterface, 6));
    assert!(p.message.contains("frame 7 names interface 1 but the section declares 1"), "{}", p.message);
}

/// Ethernet with an 802.1Q tag, and with 802.1ad QinQ (a service tag, then the customer tag).
#[test]
fn vlan_tagged_ethernet() {
    for v6 in [false, true] {
        let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
        for tags in [&[0x8100u16][..], &[0x88a8, 0x8100]] {
            let frames: Frames = refused(v6)
                .into_iter()
                .map(|(t, ip)| {
                    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
                    for (vid, tpid) in (100u16..).zip(tags) {
                        f.extend(tpid.to_be_bytes());
                        f.extend(vid.to_be_bytes());
                    }
                    f.extend(ethertype);
                    f.extend(ip);
                    (t, f)
                })
                .collect();
            for ng in [false, true] {
                let bytes = if ng { pcapng(1, &frames) } else { pcap(1, &frames) };
                refused_cause(&analyze_bytes(&bytes, None).unwrap(), &format!("v6 {v6} tags {tags:x?} ng {ng}"));
            }
        }
    }
}

/// BSD loopback: NULL holds the address family in the byte order of the host that captured (either order is
/// read), LOOP in network order; AF_INET is 2, AF_INET6 24, 28 or 30 depending on the BSD. LINKTYPE_IPV4 and
/// LINKTYPE_IPV6 are bare IP, like RAW.
#[test]
fn bsd_loopback_null_and_loop_and_raw_ipv4_ipv6() {
    for v6 in [false, true] {
        let families: &[u32] = if v6 { &[24, 28, 30] } else { &[2] };
        for &af in families {
            for (lt, header, name) in [
                (0, af.to_le_bytes(), "NULL (BSD loopback)"),
                (0, af.to_be_bytes(), "NULL (BSD loopback)"),
                (108, af.to_be_bytes(), "LOOP (OpenBSD loopback)"),
            ] {
                let frames: Frames = refused(v6).into_iter().map(|(t, ip)| (t, [&header[..], &ip].concat())).collect();
                for ng in [false, true] {
                    let bytes = if ng { pcapng(lt, &frames) } else { pcap(lt, &frames) };
                    let r = analyze_bytes(&bytes, None).unwrap();
                    refused_cause(&r, &format!("lt {lt} header {header:?} ng {ng}"));
                    assert_eq!(r.link_types, [name]);
                }
            }
        }
        let (lt, name) = if v6 { (229, "IPV6") } else { (228, "IPV4") };
        let r = analyze_bytes(&pcap(lt, &refused(v6)), None).unwrap();
        refused_cause(&r, name);
        assert_eq!(r.link_types, [name]);
    }
}

/// `tcpdump -s 54` keeps 20 bytes of IPv4 header, 20 of TCP and 14 of payload (74 with an IPv6 header): the
/// flow's byte counts, retransmissions and duration still come from the IP header's lengths. (What the cut
/// stream starts with, and so the verdict: `a_stream_cut_by_a_short_snaplen_reads_as_the_whole_one`.)
#[test]
fn frames_cut_by_a_short_snaplen_keep_their_lengths() {
    for v6 in [false, true] {
        let frames = handshake_timeout(v6);
        let snaplen = if v6 { 74 } else { 54 };
        assert!(frames[3].1.len() > snaplen + 500, "the ClientHello is cut");
        let whole = analyze_bytes(&pcap(101, &frames), None).unwrap();
        let cut = analyze_bytes(&pcap_cut(101, &frames, snaplen), None).unwrap();
        assert!(cut.problems.is_empty() && cut.undecodable_frames == 0, "{:?}", cut.problems);
        let (w, c) = (only(&whole), only(&cut));
        assert_eq!((c.bytes_sent, c.bytes_received, c.retransmissions), (517, 0, 3), "v6 {v6}: {c:?}");
        assert_eq!((c.bytes_sent, c.retransmissions, c.duration_ms), (w.bytes_sent, w.retransmissions, w.duration_ms));
        assert!(c.evidence.contains("frame 4 ") && c.evidence.contains("(517 bytes)"), "v6 {v6}: {}", c.evidence);
        assert!(c.evidence.contains("frames 5,6,7 "), "v6 {v6}: {}", c.evidence);
    }
}

/// The captured prefix of a cut segment still says what the stream is: a ClientHello (record header and
/// handshake type: 6 bytes), a ServerHello, an HTTP request line; and a TLS record's header gives its length,
/// so the walk over records goes on past a cut inside its body and finds an alert in the next segment. The
/// playbook's TLS handshake timeout, alerts after a cut ServerHello or ClientHello, and a request left
/// unanswered read the same, verdict and story, as from the uncut capture: at `tcpdump -s 96` on Ethernet (42
/// bytes of payload over IPv4, 22 over IPv6) and, for the handshake timeout, on raw IP at the shortest snaplen
/// that keeps 6 bytes. Nothing past the cut is guessed: a record header the snaplen dropped ends the walk, and
/// an alert after it is not reported.
#[test]
fn a_stream_cut_by_a_short_snaplen_reads_as_the_whole_one() {
    let hello_len = client_hello().len() as u32;
    for v6 in [false, true] {
        let mut hello = handshake_timeout(v6);
        hello.truncate(4); // SYN, SYN-ACK, ACK, ClientHello
        let then = |more: Vec<(u64, Vec<u8>)>| hello.iter().cloned().chain(more).collect::<Frames>();
        let mut server_hello = vec![22, 3, 3, 0x04, 0xab, 2, 0, 0x04, 0xa7, 3, 3]; // one 1200-byte record
        server_hello.resize(1200, 0xcd);
        let n = server_hello.len() as u32;
        let server_alert = then(vec![
            (900, ip_tcp(v6, s(SISN + 1), &server_hello)),
            (950, ip_tcp(v6, s(SISN + 1 + n), &[21, 3, 3, 0, 2, 2, 80])),
            (960, ip_tcp(v6, Seg { fin: true, ..s(SISN + 1 + n + 7) }, &[])),
        ]);
        let client_alert = then(vec![
            (900, ip_tcp(v6, s(SISN + 1), &server_hello)),
            (950, ip_tcp(v6, c(CISN + 1 + hello_len), &[21, 3, 3, 0, 2, 2, 42])),
            (960, ip_tcp(v6, Seg { fin: true, ..c(CISN + 1 + hello_len + 7) }, &[])),
        ]);
        let request =
            [b"GET /orders HTTP/1.1\r\nhost: a\r\nuser-agent: ".as_slice(), &[b'x'; 200], b"\r\n\r\n"].concat();
        let unanswered = vec![
            hello[0].clone(),
            hello[1].clone(),
            hello[2].clone(),
            (30, ip_tcp(v6, c(CISN + 1), &request)),
            (60_000_030, ip_tcp(v6, Seg { fin: true, ..c(CISN + 1 + request.len() as u32) }, &[])),
        ];

        let ip = if v6 { 60 } else { 40 };
        let cases = [
            ("handshake timeout", handshake_timeout(v6), Cause::TargetTlsHandshakeTimeout, "frame 4 ClientHello", true),
            ("server alert", server_alert, Cause::TargetTlsAlert, "frame 5 ServerHello", false),
            ("client alert", client_alert, Cause::TargetTlsCertificateInvalid, "frame 6 client TLS alert", false),
            ("unanswered request", unanswered, Cause::TargetResponseTimeout, "request \"GET /orders HTTP/1.1\"", false),
        ];
        for (what, frames, cause, told, tightest) in cases {
            let snaplens: &[(i32, usize)] = if tightest { &[(1, 96), (101, ip + 6)] } else { &[(1, 96)] };
            for &(lt, snaplen) in snaplens {
                let frames = wrap(lt, frames.clone());
                let whole = analyze_bytes(&pcap(lt, &frames), None).unwrap();
                let cut = analyze_bytes(&pcap_cut(lt, &frames, snaplen), None).unwrap();
                let (w, c) = (only(&whole), only(&cut));
                let case = format!("{what}, v6 {v6}, -s {snaplen}");
                assert_eq!(w.cause, Some(cause), "{case}: {}", w.evidence);
                assert!(w.evidence.contains(told), "{case}: {}", w.evidence);
                assert_eq!((c.cause, &c.alert, &c.evidence), (w.cause, &w.alert, &w.evidence), "{case}");
                assert_eq!((c.bytes_sent, c.bytes_received), (w.bytes_sent, w.bytes_received), "{case}");
            }
        }

        // The server's flight is two records in one segment, the second's header past the cut: the alert after
        // it is in the uncut capture only.
        let mut flight = server_hello.clone();
        flight[3..5].copy_from_slice(&95u16.to_be_bytes()); // a 100-byte ServerHello record ...
        flight[100..105].copy_from_slice(&[22, 3, 3, 0x04, 0x47]); // ... then a 1100-byte one
        let frames = wrap(
            1,
            then(vec![
                (900, ip_tcp(v6, s(SISN + 1), &flight)),
                (950, ip_tcp(v6, s(SISN + 1 + n), &[21, 3, 3, 0, 2, 2, 80])),
                (960, ip_tcp(v6, Seg { fin: true, ..s(SISN + 1 + n + 7) }, &[])),
            ]),
        );
        let whole = analyze_bytes(&pcap(1, &frames), None).unwrap();
        let cut = analyze_bytes(&pcap_cut(1, &frames, 96), None).unwrap();
        assert_eq!(only(&whole).cause, Some(Cause::TargetTlsAlert), "v6 {v6}: {}", only(&whole).evidence);
        let c = only(&cut);
        assert_eq!((c.outcome, c.cause, &c.alert), (Outcome::Ok, None, &None), "v6 {v6}: {}", c.evidence);
        assert!(c.evidence.contains("frame 5 ServerHello"), "v6 {v6}: {}", c.evidence);
    }
}

/// Legacy pcap: the capture of a refused connection, then a record header claiming `len` bytes.
fn legacy_then_record(len: u32) -> Vec<u8> {
    let mut head = pcap(101, &refused(false));
    head.extend(1_700_000_001u32.to_le_bytes());
    head.extend(0u32.to_le_bytes());
    head.extend(len.to_le_bytes());
    head.extend(len.to_le_bytes());
    head
}

/// pcapng: the capture of a refused connection, then an Enhanced Packet Block header claiming `len` bytes.
fn pcapng_then_block(len: u32) -> Vec<u8> {
    let mut head = pcapng(101, &refused(false));
    let total = 32 + len;
    for v in [6, total, 0, 0, 0, len, len] {
        head.extend(v.to_le_bytes());
    }
    head
}

/// The reader's buffer starts at 128 KiB and grows for a larger block, up to 64 MiB: a 1 MiB frame (both
/// formats) and a 60 MiB one are read; a block over 64 MiB ends the reading with a `corrupt` problem, after
/// the frames before it (which are still analysed). The bytes after a header are streamed zeros, so the test
/// holds no more than the reader does.
#[test]
fn blocks_grow_the_buffer_up_to_64_mib() {
    const MIB: usize = 1 << 20;
    let big: Frames =
        vec![(0, vec![0u8; MIB]), (1_000, link(1, &refused(false)[0].1)), (1_040, link(1, &refused(false)[1].1))];
    for ng in [false, true] {
        let bytes = if ng { pcapng(1, &big) } else { pcap(1, &big) };
        let r = analyze_bytes(&bytes, None).unwrap();
        assert!(r.problems.is_empty(), "ng {ng}: {:?}", r.problems);
        assert_eq!((r.frames, r.bytes), (3, bytes.len() as u64), "ng {ng}");
        assert_eq!(only(&r).cause, Some(Cause::TargetConnectionRefused));
    }

    let head = legacy_then_record((60 * MIB) as u32);
    let input = head.as_slice().chain(std::io::repeat(0).take(60 * MIB as u64));
    let r = analyze_reader(input, "60 MiB frame", None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.frames, r.undecodable_frames), (3, 1));
    assert_eq!(r.bytes, (head.len() + 60 * MIB) as u64);

    for (ng, head) in [(false, legacy_then_record((65 * MIB) as u32)), (true, pcapng_then_block((65 * MIB) as u32))] {
        let record = head.len() - if ng { 28 } else { 16 };
        let input = head.as_slice().chain(std::io::repeat(0).take(66 * MIB as u64));
        let r = analyze_reader(input, "65 MiB block", None).unwrap();
        assert_eq!(r.problems.len(), 1, "ng {ng}: {:?}", r.problems);
        let p = &r.problems[0];
        assert_eq!((p.kind, p.offset, p.after_frame), (ProblemKind::Corrupt, record as u64, 2), "ng {ng}: {p:?}");
        assert!(p.message.contains("a block larger than 64 MiB"), "{}", p.message);
        assert_eq!((r.frames, only(&r).cause), (2, Some(Cause::TargetConnectionRefused)), "ng {ng}");
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn sorted<const N: usize>(mut v: [&str; N]) -> Vec<&str> {
    v.sort_unstable();
    v.to_vec()
}

/// The `--json` schema `waygate.doctor.pcap/1` is a contract (docs/doctor.md): every key at every level,
/// including the optional ones (`alert`, `idle_ms`, `alerts`), from one capture that has them all: a TLS
/// alert, an idle keep-alive close, and a frame of a link type the decoder does not know.
#[test]
fn pcap_json_keys_are_pinned() {
    let mut alert = handshake_timeout(true);
    alert.truncate(4);
    alert.push((900, ip_tcp(true, s(SISN + 1), &[21, 3, 3, 0, 2, 2, 40])));
    alert.push((950, ip_tcp(true, Seg { fin: true, ..s(SISN + 8) }, &[])));
    let fin = Seg { fin: true, ..s(0) };
    let mut packets: Vec<(u32, u64, Vec<u8>)> = wrap(1, alert).into_iter().map(|(t, d)| (0, t, d)).collect();
    packets.extend(wrap(1, http_flow(false, fin, 4_000_000)).into_iter().map(|(t, d)| (0, t + 10_000, d)));
    packets.push((1, 5_000_000, vec![0; 20]));
    let bytes = pcapng_sections(&[Section { big: false, interfaces: vec![(1, 6), (147, 6)], packets }]);
    let dir = std::env::temp_dir().join(format!("wg-pcap-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cap.pcapng");
    std::fs::write(&file, bytes).unwrap();
    let mut out = Vec::new();
    assert_eq!(run_pcap_to(&PcapArgs { file: file.clone(), json: true, target: None }, &mut out), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let v: Value = serde_json::from_slice(&out).unwrap();

    assert_eq!(
        keys(&v),
        sorted([
            "schema",
            "file",
            "format",
            "link_types",
            "frames",
            "bytes",
            "other_frames",
            "undecodable_frames",
            "filtered_out",
            "flows",
            "findings",
            "idle_closes",
            "problems",
        ])
    );
    assert_eq!(v["schema"], "waygate.doctor.pcap/1");
    assert_eq!(v["file"], file.display().to_string());
    assert_eq!(v["format"], "pcapng");
    assert_eq!(v["link_types"], serde_json::json!(["EN10MB (Ethernet)", "link type 147"]));
    assert_eq!((v["frames"].as_u64(), v["other_frames"].as_u64()), (Some(13), Some(1)));

    let flow = [
        "client",
        "server",
        "outcome",
        "cause",
        "evidence",
        "frames",
        "start",
        "duration_ms",
        "bytes_sent",
        "bytes_received",
        "retransmissions",
    ];
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2, "{v:#}");
    let (tls, idle) = (&flows[0], &flows[1]);
    let mut with_alert = flow.to_vec();
    with_alert.push("alert");
    with_alert.sort_unstable();
    assert_eq!(keys(tls), with_alert);
    assert_eq!((tls["outcome"].as_str(), tls["cause"].as_str()), (Some("failed"), Some("TargetTlsAlert")));
    assert_eq!(tls["alert"], "handshake_failure");
    assert_eq!(tls["start"], "2023-11-14T22:13:20.000000Z");
    let mut with_idle = flow.to_vec();
    with_idle.push("idle_ms");
    with_idle.sort_unstable();
    assert_eq!(keys(idle), with_idle);
    assert_eq!((idle["outcome"].as_str(), idle["cause"].clone()), (Some("idle_close"), Value::Null));
    assert_eq!(idle["idle_ms"], 4000.0);

    let finding = &v["findings"][0];
    assert_eq!(keys(finding), sorted(["cause", "count", "servers", "alerts", "remediation"]));
    assert_eq!(finding["alerts"], serde_json::json!({"handshake_failure": 1}));
    assert_eq!(finding["servers"], serde_json::json!({"[fd00::2]:443": 1}));
    assert_eq!(keys(&v["idle_closes"][0]), sorted(["server", "count", "min_idle_ms", "max_idle_ms", "remediation"]));
    let problem = &v["problems"][0];
    assert_eq!(keys(problem), sorted(["kind", "offset", "after_frame", "message"]));
    assert_eq!(problem["kind"], "unsupported_link_type");
}
