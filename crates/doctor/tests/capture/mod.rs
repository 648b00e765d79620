//! Hand-built captures for the `doctor pcap` tests: IPv4/IPv6 + TCP segments, link-layer headers, and
//! the pcap and pcapng file structures around them, written byte by byte (no fixture files).
#![allow(dead_code)]

use waygate_doctor::pcap::PcapReport;

pub const C4: [u8; 4] = [10, 0, 1, 4];
pub const S4: [u8; 4] = [10, 0, 0, 7];

/// A TCP segment description.
#[derive(Clone, Copy, Default)]
pub struct Seg {
    pub from_client: bool,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub ackno: u32,
    /// The client's port when not [`CPORT`]: a second connection between the same hosts.
    pub client_port: Option<u16>,
}

pub fn c(seq: u32) -> Seg {
    Seg { from_client: true, ack: true, seq, ..Seg::default() }
}
pub fn s(seq: u32) -> Seg {
    Seg { from_client: false, ack: true, seq, ..Seg::default() }
}

pub const CPORT: u16 = 51234;
pub const SPORT: u16 = 443;
pub const CISN: u32 = 1000;
pub const SISN: u32 = 5000;

/// IPv4 (or IPv6) + TCP bytes.
pub fn ip_tcp(v6: bool, seg: Seg, payload: &[u8]) -> Vec<u8> {
    let cport = seg.client_port.unwrap_or(CPORT);
    let (sp, dp) = if seg.from_client { (cport, SPORT) } else { (SPORT, cport) };
    let mut b = if v6 {
        let (src, dst) = if seg.from_client { (v6addr(1), v6addr(2)) } else { (v6addr(2), v6addr(1)) };
        etherparse::PacketBuilder::ipv6(src, dst, 64)
    } else {
        let (src, dst) = if seg.from_client { (C4, S4) } else { (S4, C4) };
        etherparse::PacketBuilder::ipv4(src, dst, 64)
    }
    .tcp(sp, dp, seg.seq, 65535);
    if seg.syn {
        b = b.syn();
    }
    if seg.ack {
        b = b.ack(seg.ackno);
    }
    if seg.fin {
        b = b.fin();
    }
    if seg.rst {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

pub fn v6addr(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = last;
    a
}

/// Wraps IP bytes in a link-layer header.
pub fn link(lt: i32, ip: &[u8]) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    let mut out = Vec::new();
    match lt {
        1 => {
            out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            out.extend_from_slice(&ethertype.to_be_bytes());
        }
        113 => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            out.extend_from_slice(&ethertype.to_be_bytes());
        }
        276 => {
            out.extend_from_slice(&ethertype.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        0 => out.extend_from_slice(&(if v6 { 30u32 } else { 2u32 }).to_le_bytes()),
        _ => {}
    }
    out.extend_from_slice(ip);
    out
}

/// Frames: (time in µs, link-layer bytes).
pub type Frames = Vec<(u64, Vec<u8>)>;

pub fn pcap(lt: i32, frames: &Frames) -> Vec<u8> {
    pcap_as(lt, frames, false, false)
}

/// A legacy pcap file: nanosecond timestamps with `nanos` (magic a1b23c4d), written big-endian with `big`.
pub fn pcap_as(lt: i32, frames: &Frames, nanos: bool, big: bool) -> Vec<u8> {
    legacy(lt, frames, nanos, big, usize::MAX)
}

/// A legacy pcap file captured with `tcpdump -s SNAPLEN`: each record holds at most `snaplen` bytes of its
/// frame, and the frame's length on the wire.
pub fn pcap_cut(lt: i32, frames: &Frames, snaplen: usize) -> Vec<u8> {
    legacy(lt, frames, false, false, snaplen)
}

fn legacy(lt: i32, frames: &Frames, nanos: bool, big: bool, snaplen: usize) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, big, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, 4);
    put(&mut out, big, 2, 2);
    put(&mut out, big, 4, 2);
    out.extend_from_slice(&[0; 8]);
    put(&mut out, big, 262_144, 4);
    put(&mut out, big, lt as u64, 4);
    for (us, data) in frames {
        let kept = &data[..data.len().min(snaplen)];
        put(&mut out, big, us / 1_000_000 + 1_700_000_000, 4);
        put(&mut out, big, us % 1_000_000 * if nanos { 1_000 } else { 1 }, 4);
        put(&mut out, big, kept.len() as u64, 4);
        put(&mut out, big, data.len() as u64, 4);
        out.extend_from_slice(kept);
    }
    out
}

/// Appends the low `width` bytes of `v`, big-endian with `big`.
fn put(out: &mut Vec<u8>, big: bool, v: u64, width: usize) {
    let le = v.to_le_bytes();
    if big {
        out.extend(le[..width].iter().rev());
    } else {
        out.extend_from_slice(&le[..width]);
    }
}

/// A pcapng block (little-endian): type, length, body padded to 32 bits, length again.
pub fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    block_as(false, kind, body)
}

fn block_as(big: bool, kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u64;
    let mut out = Vec::new();
    put(&mut out, big, kind.into(), 4);
    put(&mut out, big, len, 4);
    out.extend_from_slice(body);
    out.extend_from_slice(&vec![0; pad]);
    put(&mut out, big, len, 4);
    out
}

/// A single-section, single-interface pcapng file.
pub fn pcapng(lt: i32, frames: &Frames) -> Vec<u8> {
    let packets = frames.iter().map(|(us, data)| (0, *us, data.clone())).collect();
    pcapng_sections(&[Section { big: false, interfaces: vec![(lt, 6)], packets }])
}

/// One pcapng section: its byte order, its interfaces (link type, and `if_tsresol` as a power of ten: 6 is
/// microseconds, the default, 9 nanoseconds), and its packets (interface id, time in µs, frame bytes).
pub struct Section {
    pub big: bool,
    pub interfaces: Vec<(i32, u8)>,
    pub packets: Vec<(u32, u64, Vec<u8>)>,
}

/// A pcapng file of the sections in order, each with its Section Header, Interface Description and Enhanced
/// Packet blocks; timestamps are written in the resolution of the packet's interface.
pub fn pcapng_sections(sections: &[Section]) -> Vec<u8> {
    let mut out = Vec::new();
    for sec in sections {
        let big = sec.big;
        let mut shb = Vec::new();
        put(&mut shb, big, 0x1a2b_3c4d, 4);
        put(&mut shb, big, 1, 2);
        put(&mut shb, big, 0, 2);
        put(&mut shb, big, u64::MAX, 8); // section length: unknown
        out.extend(block_as(big, 0x0a0d_0d0a, &shb));
        for &(lt, tsresol) in &sec.interfaces {
            let mut idb = Vec::new();
            put(&mut idb, big, lt as u64, 2);
            put(&mut idb, big, 0, 2);
            put(&mut idb, big, 0, 4);
            if tsresol != 6 {
                put(&mut idb, big, 9, 2); // if_tsresol
                put(&mut idb, big, 1, 2);
                idb.extend_from_slice(&[tsresol, 0, 0, 0]);
                put(&mut idb, big, 0, 4); // opt_endofopt
            }
            out.extend(block_as(big, 1, &idb));
        }
        for (iface, us, data) in &sec.packets {
            let tsresol = sec.interfaces.get(*iface as usize).map_or(6, |i| i.1);
            let ts = (us + 1_700_000_000_000_000) * 10u64.pow(u32::from(tsresol) - 6);
            let mut epb = Vec::new();
            put(&mut epb, big, (*iface).into(), 4);
            put(&mut epb, big, ts >> 32, 4);
            put(&mut epb, big, ts & 0xffff_ffff, 4);
            put(&mut epb, big, data.len() as u64, 4);
            put(&mut epb, big, data.len() as u64, 4);
            epb.extend_from_slice(data);
            out.extend(block_as(big, 6, &epb));
        }
    }
    out
}

pub fn client_hello() -> Vec<u8> {
    let mut h = vec![22, 3, 1, 0x02, 0x00, 1, 0, 0x01, 0xfc, 3, 3];
    h.resize(517, 0xab);
    h
}

/// The playbook's trace: handshake, ClientHello, three retransmissions, client FIN after 10 s.
pub fn handshake_timeout(v6: bool) -> Vec<(u64, Vec<u8>)> {
    let hello = client_hello();
    let n = hello.len() as u32;
    vec![
        (0, ip_tcp(v6, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[])),
        (100, ip_tcp(v6, Seg { syn: true, ack: true, seq: SISN, ..Seg::default() }, &[])),
        (150, ip_tcp(v6, c(CISN + 1), &[])),
        (300, ip_tcp(v6, c(CISN + 1), &hello)),
        (500_000, ip_tcp(v6, c(CISN + 1), &hello)),
        (1_500_000, ip_tcp(v6, c(CISN + 1), &hello)),
        (3_500_000, ip_tcp(v6, c(CISN + 1), &hello)),
        (10_000_300, ip_tcp(v6, Seg { fin: true, ..c(CISN + 1 + n) }, &[])),
    ]
}

pub fn refused(v6: bool) -> Vec<(u64, Vec<u8>)> {
    refused_from(v6, CPORT)
}

/// A SYN from `client_port` answered by RST.
pub fn refused_from(v6: bool, client_port: u16) -> Vec<(u64, Vec<u8>)> {
    let client_port = Some(client_port);
    vec![
        (0, ip_tcp(v6, Seg { from_client: true, syn: true, seq: CISN, client_port, ..Seg::default() }, &[])),
        (40, ip_tcp(v6, Seg { rst: true, ack: true, seq: 0, client_port, ..Seg::default() }, &[])),
    ]
}

pub fn wrap(lt: i32, ip: Vec<(u64, Vec<u8>)>) -> Frames {
    ip.into_iter().map(|(t, p)| (t, link(lt, &p))).collect()
}

pub fn only(r: &PcapReport) -> &waygate_doctor::pcap::FlowReport {
    assert_eq!(r.flows.len(), 1, "{:#?}", r.flows);
    &r.flows[0]
}

pub fn http_flow(second_request: bool, server_close: Seg, idle_us: u64) -> Frames {
    let req = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let (rq, rs) = (req.len() as u32, resp.len() as u32);
    let mut v = vec![
        (0, ip_tcp(false, Seg { from_client: true, syn: true, seq: CISN, ..Seg::default() }, &[])),
        (10, ip_tcp(false, Seg { syn: true, ack: true, seq: SISN, ..Seg::default() }, &[])),
        (20, ip_tcp(false, c(CISN + 1), &[])),
        (30, ip_tcp(false, c(CISN + 1), req)),
        (500, ip_tcp(false, s(SISN + 1), resp)),
    ];
    if second_request {
        v.push((500 + idle_us, ip_tcp(false, c(CISN + 1 + rq), req)));
    }
    let close_at = 500 + idle_us + if second_request { 100 } else { 0 };
    v.push((close_at, ip_tcp(false, Seg { seq: SISN + 1 + rs, ..server_close }, &[])));
    v
}
