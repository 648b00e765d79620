//! Frame bytes to the little the flow tracker needs: a TCP segment (addresses, flags, sequence numbers,
//! payload) or an ICMP/ICMPv6 error (destination unreachable, fragmentation needed / packet too big) with
//! the flow it quotes. Link layers: Ethernet (with any stack of VLAN tags and MPLS labels, with or without a
//! trailing FCS), Linux cooked SLL v1 and SLL2 (`tcpdump -i any`), BSD loopback (NULL, LOOP) and raw
//! IPv4/IPv6. IP and TCP are decoded with `etherparse` in lax mode, so frames cut by a short
//! snaplen still yield their headers; the payload length then comes from the IP header, not the capture.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// LINKTYPE_ numbers (tcpdump.org/linktypes.html).
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_BSD: i32 = 12;
    pub const RAW_BSD14: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;

    /// The name tcpdump uses, for reports.
    pub fn name(lt: i32) -> String {
        match lt {
            NULL => "NULL (BSD loopback)".into(),
            ETHERNET => "EN10MB (Ethernet)".into(),
            RAW_BSD | RAW_BSD14 | RAW => "RAW (IP)".into(),
            LOOP => "LOOP (OpenBSD loopback)".into(),
            LINUX_SLL => "LINUX_SLL (Linux cooked v1)".into(),
            IPV4 => "IPV4".into(),
            IPV6 => "IPV6".into(),
            LINUX_SLL2 => "LINUX_SLL2 (Linux cooked v2)".into(),
            other => format!("link type {other}"),
        }
    }

    /// The link type proper of a pcap header's or interface's `network` field: the upper bits say whether
    /// frames carry an FCS and how long it is (pcap-savefile(5)); tcpdump reads those as the plain type,
    /// the FCS being trailing bytes after the IP packet's declared length, which decoding ignores.
    pub fn proper(network: i32) -> i32 {
        network & 0x0000_ffff
    }

    /// Whether [`super::decode`] understands the link type.
    pub fn supported(lt: i32) -> bool {
        matches!(lt, NULL | ETHERNET | RAW_BSD | RAW_BSD14 | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2)
    }
}

/// A TCP segment as the flow tracker sees it.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    /// Acknowledgment number (meaningful when `ack`).
    pub ackno: u32,
    /// Payload length on the wire (from the IP header), even when the capture cut the payload short.
    pub len: u32,
    /// The captured part of the payload.
    pub payload: &'a [u8],
}

/// An ICMP or ICMPv6 error about a TCP packet from `quoted_src` to `quoted_dst`: destination unreachable,
/// or (with `mtu`) fragmentation needed / packet too big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub from: IpAddr,
    pub quoted_src: SocketAddr,
    pub quoted_dst: SocketAddr,
    /// e.g. `host unreachable`, `administratively prohibited`, `fragmentation needed`.
    pub what: &'static str,
    /// The next-hop MTU of a fragmentation-needed (ICMP 3/4) or packet-too-big (ICMPv6 2) error: the
    /// packet was dropped for its size, the signature of a path-MTU black hole when it never arrives.
    pub mtu: Option<u32>,
}

/// What a frame holds, as far as the doctor cares.
#[derive(Debug, Clone)]
pub enum Packet<'a> {
    Tcp(Segment<'a>),
    Unreachable(Unreachable),
    /// Anything else (UDP, ARP, other ICMP, IP fragments after the first ...): counted, not analysed.
    Other,
    /// Too short or malformed at the link or IP layer.
    Undecodable,
}

/// Decodes one frame of the given link type.
pub fn decode(lt: i32, data: &[u8]) -> Packet<'_> {
    let sliced = match lt {
        linktype::ETHERNET => ethernet(data),
        linktype::LINUX_SLL => ether(data, 14, 16),
        linktype::LINUX_SLL2 => ether(data, 0, 20),
        linktype::NULL | linktype::LOOP => null_family(lt, data).and_then(|(ip, body)| ip.then_some(body)).and_then(ip),
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_BSD14 | linktype::IPV4 | linktype::IPV6 => ip(data),
        _ => None,
    };
    match sliced {
        Some(p) => from_sliced(&p),
        None => Packet::Undecodable,
    }
}

/// Ethernet II: any stack of 802.1Q / 802.1ad / QinQ tags, then IP directly or under a stack of MPLS
/// labels (pseudowires and Ethernet-over-MPLS are not followed: the payload after the bottom label must
/// be IP). Walked by hand because etherparse stops at MPLS.
fn ethernet(data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    let mut at = 12;
    loop {
        let kind = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
        match kind {
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => at += 4,
            0x8847 | 0x8848 => {
                at += 2;
                // Labels of 4 bytes; the bottom of the stack has the S bit (byte 2, bit 0).
                for _ in 0..16 {
                    let bottom = data.get(at + 2)? & 1 == 1;
                    at += 4;
                    if bottom {
                        return ip(data.get(at..)?);
                    }
                }
                return None;
            }
            _ => return Some(LaxSlicedPacket::from_ether_type(EtherType(kind), data.get(at + 2..)?)),
        }
    }
}

/// Cooked captures: a 16-bit EtherType at `at`, the network layer at `header`.
fn ether(data: &[u8], at: usize, header: usize) -> Option<LaxSlicedPacket<'_>> {
    let proto = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
    let body = data.get(header..)?;
    Some(LaxSlicedPacket::from_ether_type(EtherType(proto), body))
}

/// BSD loopback: a 4-byte address family (host byte order for NULL, network order for LOOP). Returns
/// whether it is IP, and the rest.
fn null_family(lt: i32, data: &[u8]) -> Option<(bool, &[u8])> {
    let head: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let le = u32::from_le_bytes(head);
    let be = u32::from_be_bytes(head);
    let family = if lt == linktype::LOOP || le > 0xffff { be } else { le };
    // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
    Some((matches!(family, 2 | 24 | 28 | 30), &data[4..]))
}

fn ip(data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    LaxSlicedPacket::from_ip(data).ok()
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>) -> Packet<'a> {
    let Some(net) = &p.net else { return Packet::Other };
    let (src, dst, declared) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let declared = usize::from(h.total_len()).saturating_sub(usize::from(h.ihl()) * 4);
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), declared)
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let ext = v6.extensions().slice().len();
            let declared = usize::from(h.payload_length()).saturating_sub(ext);
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), declared)
        }
        _ => return Packet::Other,
    };
    let Some(payload) = net.ip_payload_ref() else { return Packet::Other };
    if payload.fragmented {
        return Packet::Other;
    }
    match payload.ip_number.0 {
        6 => match &p.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let header = usize::from(tcp.data_offset()) * 4;
                let len = if payload.incomplete { declared.saturating_sub(header) } else { tcp.payload().len() };
                Packet::Tcp(Segment {
                    src: SocketAddr::new(src, tcp.source_port()),
                    dst: SocketAddr::new(dst, tcp.destination_port()),
                    syn: tcp.syn(),
                    ack: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    seq: tcp.sequence_number(),
                    ackno: tcp.acknowledgment_number(),
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    payload: tcp.payload(),
                })
            }
            _ => Packet::Undecodable,
        },
        1 => icmp(src, payload.payload, false),
        58 => icmp(src, payload.payload, true),
        _ => Packet::Other,
    }
}

/// ICMP type 3 / ICMPv6 types 1 and 2 carry the offending packet's IP header and at least 8 bytes after it:
/// enough for the TCP ports. Parsed by hand because the quote is deliberately incomplete.
fn icmp(from: IpAddr, icmp: &[u8], v6: bool) -> Packet<'static> {
    let (Some(&kind), Some(&code)) = (icmp.first(), icmp.get(1)) else { return Packet::Undecodable };
    let mtu_field = || icmp.get(4..8).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mtu = match (v6, kind, code) {
        (false, 3, 4) => mtu_field().map(|m| m & 0xffff), // the low 16 bits; RFC 1191
        (true, 2, _) => mtu_field(),
        _ => None,
    };
    let what = match (v6, kind, code) {
        (false, 3, 4) => "fragmentation needed",
        (true, 2, _) => "packet too big",
        (false, 3, 0) => "net unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 2) => "protocol unreachable",
        (false, 3, 3) => "port unreachable",
        (false, 3, 6 | 7) => "destination unknown",
        (false, 3, 9 | 10 | 13) => "administratively prohibited",
        (false, 3, _) => "destination unreachable",
        (true, 1, 0) => "no route to destination",
        (true, 1, 1) => "administratively prohibited",
        (true, 1, 3) => "address unreachable",
        (true, 1, 4) => "port unreachable",
        (true, 1, _) => "destination unreachable",
        _ => return Packet::Other,
    };
    match icmp.get(8..).and_then(quoted_tcp) {
        Some((quoted_src, quoted_dst)) => Packet::Unreachable(Unreachable { from, quoted_src, quoted_dst, what, mtu }),
        None => Packet::Other,
    }
}

/// The TCP endpoints of a quoted IPv4 or IPv6 packet (no IPv6 extension headers).
pub fn quoted_tcp(q: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let version = q.first()? >> 4;
    let (src, dst, l4) = match version {
        4 => {
            let ihl = usize::from(q[0] & 0x0f) * 4;
            if *q.get(9)? != 6 || ihl < 20 {
                return None;
            }
            let s: [u8; 4] = q.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = q.get(16..20)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)), ihl)
        }
        6 => {
            if *q.get(6)? != 6 {
                return None;
            }
            let s: [u8; 16] = q.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = q.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)), 40)
        }
        _ => return None,
    };
    let ports = q.get(l4..l4 + 4)?;
    let sp = u16::from_be_bytes([ports[0], ports[1]]);
    let dp = u16::from_be_bytes([ports[2], ports[3]]);
    Some((SocketAddr::new(src, sp), SocketAddr::new(dst, dp)))
}
