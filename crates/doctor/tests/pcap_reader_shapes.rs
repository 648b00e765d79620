//! The capture reader on the shapes real captures take that the first version refused or misread:
//! gzipped files, link types with FCS bits, a corrupt block length in the middle of the file (named where it
//! is, reading resumed after it), pcap-parser's internals kept out of messages, MPLS inside VLAN tags, and
//! zstd files. Each capture is built by code (tests/capture), except one zstd file the zstd tool wrote
//! (tests/fixtures/three-refused.pcapng.zst: the three refused connections below, `zstd -19 --check`).

mod capture;

use std::io::Write;

use capture::*;
use waygate_doctor::pcap::{PcapReport, ProblemKind, analyze_bytes};
use waygate_faults::Cause;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// Three refused connections from three client ports: one frame pair each.
fn three_refused() -> Vec<(u64, Vec<u8>)> {
    [40_001u16, 40_002, 40_003]
        .iter()
        .enumerate()
        .flat_map(|(i, p)| refused_from(false, *p).into_iter().map(move |(t, f)| (t + i as u64 * 1_000, f)))
        .collect()
}

/// Four hundred refused connections: a capture long enough to span several compressed blocks.
fn four_hundred_refused() -> Frames {
    (0..400u16).flat_map(|i| wrap(1, refused_from(false, 20_000 + i))).collect()
}

/// Reads a damaged compressed capture: exactly one problem, `corrupt`, naming the `codec` stream; returns
/// the report and the problem's message.
fn one_corrupt_stream(what: &str, file: &[u8], codec: &str) -> (PcapReport, String) {
    let r = analyze_bytes(file, None).unwrap();
    assert_eq!(r.problems.len(), 1, "{what}: {:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(p.kind, ProblemKind::Corrupt, "{what}: {p:?}");
    assert!(p.message.contains(&format!("the {codec} stream is corrupt")), "{what}: {}", p.message);
    let message = p.message.clone();
    (r, message)
}

fn refused_ports(r: &PcapReport) -> Vec<String> {
    r.flows.iter().filter(|f| f.cause == Some(Cause::TargetConnectionRefused)).map(|f| f.client.clone()).collect()
}

/// `tcpdump -w - | gzip` and `.pcap.gz` downloads: read through the decompressor, both formats, with the
/// same verdicts; a gzip stream corrupt mid-way is named for what it is and the frames before it count.
#[test]
fn gzipped_captures_are_read() {
    for ng in [false, true] {
        let frames = wrap(1, three_refused());
        let plain = if ng { pcapng(1, &frames) } else { pcap(1, &frames) };
        let r = analyze_bytes(&gzip(&plain), None).unwrap();
        assert!(r.problems.is_empty(), "ng {ng}: {:?}", r.problems);
        assert_eq!((r.frames, refused_ports(&r).len()), (6, 3), "ng {ng}");
        assert_eq!(r.bytes, plain.len() as u64, "offsets are the decompressed capture's");
    }
    // A gzip member whose checksum does not match (a corrupt download): every frame decompressed is read,
    // and the problem says the gzip stream is corrupt; a gzip cut short says so too.
    let z = gzip(&pcap(1, &four_hundred_refused()));
    let mut bad_crc = z.clone();
    let crc = bad_crc.len() - 8;
    bad_crc[crc] ^= 0xff;
    for (what, file) in [("checksum", bad_crc), ("cut", z[..z.len() - 4].to_vec())] {
        let (r, _) = one_corrupt_stream(what, &file, "gzip");
        assert_eq!((r.frames, refused_ports(&r).len()), (800, 400), "{what}");
    }
    // Garbage in the middle of the deflate stream: never a panic, some frames, at least one problem.
    let mut garbled = z.clone();
    let mid = garbled.len() / 2;
    garbled[mid..mid + 64].fill(0xff);
    let r = analyze_bytes(&garbled, None).unwrap();
    assert!(r.frames > 0 && !r.problems.is_empty(), "{:?}", r.problems);
    let e = analyze_bytes(&gzip(b"GET / HTTP/1.1\r\n\r\n"), None).unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng capture inside the gzip stream"), "{e}");
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// `tcpdump -w - | zstd` and `.pcap.zst` downloads: read through the decompressor like gzip (was refused
/// as "a zstd-compressed file"): a file the zstd tool wrote (`zstd -19 --check`, committed), a stream of
/// several frames with a skippable frame between them (as `cat a.zst b.zst` makes), and corrupt ones: a
/// checksum that does not match and a file cut short are named as a corrupt zstd stream, the frames before
/// the damage counted.
#[test]
fn zstd_captures_are_read() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/three-refused.pcapng.zst");
    let file = std::fs::read(&fixture).unwrap();
    let r = analyze_bytes(&file, None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.frames, refused_ports(&r).len()), (6, 3));

    let plain = pcap(1, &wrap(1, three_refused()));
    let (a, b) = plain.split_at(plain.len() / 2 + 7);
    let mut multi = zstd(a);
    multi.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]); // a skippable frame of 3 bytes
    multi.extend(zstd(b));
    let r = analyze_bytes(&multi, None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.frames, refused_ports(&r).len(), r.bytes), (6, 3, plain.len() as u64));

    let whole = pcap(1, &four_hundred_refused());
    let (head, tail) = whole.split_at(whole.len() / 2);
    let mut two = zstd(head);
    two.extend(zstd(tail));
    let mut bad_sum = two.clone();
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 0xff;
    for (what, file) in [("checksum", bad_sum), ("cut", two[..two.len() - 40].to_vec())] {
        let (r, message) = one_corrupt_stream(what, &file, "zstd");
        assert!(r.frames > 100, "{what}: the frames before the damage count ({})", r.frames);
        assert_eq!(message.contains("frame checksum mismatch"), what == "checksum", "{message}");
    }
    // Garbage anywhere in the compressed stream: never a panic; the first frame's capture still counts.
    for at in (two.len() / 2..two.len() - 64).step_by(97) {
        let mut garbled = two.clone();
        garbled[at..at + 64].fill(0xff);
        let r = analyze_bytes(&garbled, None).unwrap();
        assert!(r.frames > 0 && !r.problems.is_empty(), "{at}: {:?}", r.problems);
    }
    let e = analyze_bytes(&zstd(b"GET / HTTP/1.1\r\n\r\n"), None).unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng capture inside the zstd stream"), "{e}");
    let e = analyze_bytes(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0], None).unwrap_err();
    assert!(e.to_string().contains("zstd stream is corrupt"), "{e}");
}

/// A legacy header whose link type field carries the FCS bits (F set, 2 sixteen-bit words: 0x5000_0001),
/// its frames ending in 4 FCS bytes: tcpdump reads them as Ethernet, and so does the doctor.
#[test]
fn link_types_with_fcs_bits_read_as_the_plain_type() {
    let frames: Frames =
        wrap(1, refused(false)).into_iter().map(|(t, f)| (t, [f, vec![0xde, 0xad, 0xbe, 0xef]].concat())).collect();
    let mut file = pcap(1, &frames);
    file[20..24].copy_from_slice(&0x5000_0001u32.to_le_bytes());
    let r = analyze_bytes(&file, None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.link_types, ["EN10MB (Ethernet)"]);
    assert_eq!(only(&r).cause, Some(Cause::TargetConnectionRefused));
    assert_eq!(r.undecodable_frames, 0);
}

/// One record's length field garbled in the middle of the file: the problem is `corrupt` at the offset
/// where the reader found the bad header, and reading resumes at the next valid record, so the flows after
/// it are still classified (the first version called this "truncated at the end" and stopped).
#[test]
fn a_corrupt_block_mid_file_is_named_and_skipped() {
    let ip = three_refused();
    let record = |i: usize| 24 + ip[..i].iter().map(|(_, f)| 16 + f.len()).sum::<usize>();
    // Legacy: frame 3's captured length made 100 bytes longer than it is (and than its wire length).
    let mut legacy = pcap(101, &ip);
    let third = record(2);
    let caplen = u32::from_le_bytes(legacy[third + 8..third + 12].try_into().unwrap());
    legacy[third + 8..third + 12].copy_from_slice(&(caplen + 100).to_le_bytes());
    // Legacy: frame 3's length made huge, past the end of the file.
    let mut past_end = pcap(101, &ip);
    past_end[third + 8..third + 12].copy_from_slice(&0x00f0_0000u32.to_le_bytes());
    past_end[third + 12..third + 16].copy_from_slice(&0x00f0_0000u32.to_le_bytes());
    for (what, file) in [("caplen over origlen", legacy), ("length past the end", past_end)] {
        let r = analyze_bytes(&file, None).unwrap();
        assert_eq!(r.problems.len(), 1, "{what}: {:?}", r.problems);
        let p = &r.problems[0];
        assert_eq!((p.kind, p.offset, p.after_frame), (ProblemKind::Corrupt, third as u64, 2), "{what}: {p:?}");
        let resumed = record(3);
        assert!(
            p.message.contains(&format!("reading resumed at byte {resumed}")),
            "{what}: {} (expected {resumed})",
            p.message
        );
        assert!(!p.message.contains("truncated"), "{what}: {}", p.message);
        // Frames 1, 2, 4, 5, 6: the first and the last connection are whole again.
        assert_eq!(refused_ports(&r), ["10.0.1.4:40001", "10.0.1.4:40003"], "{what}");
    }

    // pcapng: the second Enhanced Packet Block's length is off by 8 (its trailing length disagrees).
    let ng = pcapng(101, &ip);
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < ng.len() {
        blocks.push(at);
        at += u32::from_le_bytes(ng[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    let (epb2, epb3) = (blocks[3], blocks[4]); // SHB, IDB, EPB 1, EPB 2, EPB 3 ...
    let mut bad = ng.clone();
    let len = u32::from_le_bytes(bad[epb2 + 4..epb2 + 8].try_into().unwrap());
    bad[epb2 + 4..epb2 + 8].copy_from_slice(&(len + 8).to_le_bytes());
    let r = analyze_bytes(&bad, None).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!((p.kind, p.offset, p.after_frame), (ProblemKind::Corrupt, epb2 as u64, 1), "{p:?}");
    assert!(p.message.contains(&format!("reading resumed at byte {epb3}")), "{}", p.message);
    // Parser internals stay out of the message.
    for internal in ["Internal parser error", "Verify", "Nom", "input"] {
        assert!(!p.message.contains(internal), "{}", p.message);
    }
    assert_eq!(r.frames, 5);
    assert_eq!(refused_ports(&r), ["10.0.1.4:40002", "10.0.1.4:40003"]);
}

/// Provider and data-centre captures: an 802.1Q tag, then an MPLS label stack (two labels, the bottom one
/// with the S bit), then IPv4; and MPLS straight on Ethernet.
#[test]
fn mpls_inside_vlan_is_decoded() {
    for tagged in [true, false] {
        let frames: Frames = refused(false)
            .into_iter()
            .map(|(t, ip)| {
                let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
                if tagged {
                    f.extend([0x81, 0x00, 0x00, 0x64]);
                }
                f.extend([0x88, 0x47]);
                f.extend([0x00, 0x01, 0x00, 0x40]); // label 16, not bottom
                f.extend([0x00, 0x02, 0x01, 0x40]); // label 32, bottom of stack
                f.extend(ip);
                (t, f)
            })
            .collect();
        let r = analyze_bytes(&pcap(1, &frames), None).unwrap();
        assert_eq!((r.undecodable_frames, r.other_frames), (0, 0), "tagged {tagged}");
        assert_eq!(only(&r).cause, Some(Cause::TargetConnectionRefused), "tagged {tagged}");
    }
}
