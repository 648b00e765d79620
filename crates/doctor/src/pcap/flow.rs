//! TCP flows by 4-tuple, the client being the SYN sender: per direction, what the classifier needs and
//! nothing more (first data, retransmissions, FIN/RST, a 64-byte head, a TLS record walker), so memory
//! per flow is constant however long the flow. Retransmissions are segments whose bytes were all seen
//! already (sequence space at or below the highest end seen). ICMP unreachables join the flow they quote,
//! or make one when the capture holds no packet of it (a capture filtered to ICMP, a SYN rejected before
//! the capture point); fragmentation-needed errors are kept apart as path-MTU evidence.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::decode::{Segment, Unreachable};
use super::tls::Walker;

/// A frame number and its time (ns since the epoch).
pub type At = (u64, i64);

/// Frames listed per event kind at most (retransmissions of one segment, SYNs).
const MAX_LISTED: usize = 16;
/// Stream head kept per direction.
const HEAD: usize = 64;

/// One direction of a flow.
#[derive(Debug, Clone, Default)]
pub struct Dir {
    /// Sequence number of the first payload byte (ISN + 1), once known.
    base: Option<u32>,
    /// Highest sequence number end seen.
    high: Option<u32>,
    pub bytes: u64,
    pub retransmissions: u64,
    /// First payload segment: frame, time, length.
    pub first_data: Option<(u64, i64, u32)>,
    first_seq: u32,
    /// Frames retransmitting the first payload segment.
    pub first_retrans: Vec<u64>,
    pub last_data: Option<At>,
    pub fin: Option<At>,
    pub rst: Option<At>,
    /// The stream's first bytes, in order, up to the first byte the capture does not hold.
    pub head: Vec<u8>,
    pub tls: Walker,
    /// Highest acknowledgment number this side sent (about the other side's bytes).
    acked: Option<u32>,
    /// Segments this side sent, of any kind.
    pub packets: u64,
}

impl Dir {
    /// Sequence space of this side that the peer acknowledged but the capture does not hold (bytes lost
    /// by the capture, not the network), given the peer's direction state.
    fn unseen_by_capture(&self, peer: &Dir) -> u32 {
        let (Some(base), Some(acked)) = (self.base, peer.acked) else { return 0 };
        let seen = self.high.unwrap_or(base).wrapping_add(u32::from(self.fin.is_some()));
        let missed = acked.wrapping_sub(seen);
        if (missed as i32) > 0 { missed } else { 0 }
    }

    pub fn closed(&self) -> Option<At> {
        match (self.fin, self.rst) {
            (Some(f), Some(r)) => Some(if f.0 <= r.0 { f } else { r }),
            (f, r) => f.or(r),
        }
    }
}

/// The state of the exchange when the first FIN or RST of the flow was seen.
#[derive(Debug, Clone, Copy)]
pub struct FirstClose {
    pub by_server: bool,
    pub rst: bool,
    pub at: At,
    /// The client data that started the current unanswered burst, if any.
    pub awaiting: Option<At>,
    /// Client bursts (requests) so far, counting the unanswered one.
    pub requests: u32,
    /// Idle time before the latest request (since the previous server data), ns.
    pub idle_before_request: Option<i64>,
    /// The last data in either direction before the close.
    pub last_data: Option<At>,
    /// The TLS record header (content type, length) that opened the unanswered burst, when it had one.
    pub awaiting_record: Option<(u8, u16)>,
}

impl FirstClose {
    /// `FIN` or `RST`, as the story tells it.
    pub fn how(&self) -> &'static str {
        if self.rst { "RST" } else { "FIN" }
    }

    /// `server` or `client`.
    pub fn who(&self) -> &'static str {
        if self.by_server { "server" } else { "client" }
    }
}

/// One TCP connection.
#[derive(Debug, Clone)]
pub struct Flow {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// No SYN seen: the capture began mid-connection (client guessed: the higher port).
    pub mid_stream: bool,
    pub first: At,
    pub last: At,
    syn_seq: Option<u32>,
    pub syns: Vec<At>,
    pub syn_count: u32,
    pub synack: Option<At>,
    pub handshake_ack: Option<At>,
    pub unreachable: Option<(u64, i64, Unreachable)>,
    /// An ICMP fragmentation-needed / packet-too-big error quoting this flow: path-MTU evidence.
    pub frag_needed: Option<(u64, i64, Unreachable)>,
    /// The first client segment sent after `frag_needed` that was still larger than its next-hop MTU
    /// (frame, IP packet length at least): the error did not take effect, a path-MTU black hole.
    pub oversize_after_icmp: Option<(u64, u32)>,
    /// Made from an ICMP error's quoted header: the capture holds no TCP packet of the connection.
    pub icmp_only: bool,
    /// The client sent an ACK without the capture holding a SYN-ACK: the capture sees one side only.
    pub acked_unseen_synack: Option<At>,
    /// The frame of a `101 Switching Protocols`: from there the connection is a tunnel, not keep-alive.
    pub upgraded: Option<u64>,
    pub c: Dir,
    pub s: Dir,
    pub requests: u32,
    awaiting: Option<At>,
    idle_before_request: Option<i64>,
    last_server_data: Option<i64>,
    awaiting_record: Option<(u8, u16)>,
    pub first_close: Option<FirstClose>,
}

impl Flow {
    fn new(client: SocketAddr, server: SocketAddr, at: At) -> Flow {
        Flow {
            client,
            server,
            mid_stream: false,
            first: at,
            last: at,
            syn_seq: None,
            syns: Vec::new(),
            syn_count: 0,
            synack: None,
            handshake_ack: None,
            unreachable: None,
            frag_needed: None,
            oversize_after_icmp: None,
            icmp_only: false,
            acked_unseen_synack: None,
            upgraded: None,
            c: Dir::default(),
            s: Dir::default(),
            requests: 0,
            awaiting: None,
            idle_before_request: None,
            last_server_data: None,
            awaiting_record: None,
            first_close: None,
        }
    }

    /// Server bytes the client acknowledged that the capture does not hold.
    pub fn server_bytes_missed(&self) -> u32 {
        self.s.unseen_by_capture(&self.c)
    }

    fn finished(&self) -> bool {
        self.c.rst.is_some() || self.s.rst.is_some() || (self.c.fin.is_some() && self.s.fin.is_some())
    }

    fn segment(&mut self, seg: &Segment<'_>, at: At) {
        self.last = at;
        self.icmp_only = false;
        let from_client = seg.src == self.client;
        if from_client {
            self.c.packets += 1;
        } else {
            self.s.packets += 1;
        }
        if from_client && !self.mid_stream && self.synack.is_none() && seg.ack && !seg.syn && !seg.rst {
            self.acked_unseen_synack.get_or_insert(at);
        }
        if seg.syn && !seg.ack && from_client {
            if self.syns.len() < MAX_LISTED {
                self.syns.push(at);
            }
            self.syn_count += 1;
            self.syn_seq.get_or_insert(seg.seq);
            self.c.base.get_or_insert(seg.seq.wrapping_add(1));
            return;
        }
        if seg.syn && seg.ack && !from_client {
            self.synack.get_or_insert(at);
            self.s.base.get_or_insert(seg.seq.wrapping_add(1));
            return;
        }
        if from_client
            && self.synack.is_some()
            && self.handshake_ack.is_none()
            && seg.ack
            && !seg.rst
            && seg.len == 0
            && !seg.fin
        {
            self.handshake_ack = Some(at);
        }
        if seg.ack && !seg.syn {
            let dir = if from_client { &mut self.c } else { &mut self.s };
            if dir.acked.is_none_or(|a| seq_le(a, seg.ackno)) {
                dir.acked = Some(seg.ackno);
            }
        }
        if seg.len > 0 {
            self.data(from_client, seg, at);
        }
        if seg.fin || seg.rst {
            if self.first_close.is_none() {
                self.first_close = Some(FirstClose {
                    by_server: !from_client,
                    rst: seg.rst,
                    at,
                    awaiting: self.awaiting,
                    requests: self.requests,
                    idle_before_request: self.idle_before_request,
                    last_data: latest(self.c.last_data, self.s.last_data),
                    awaiting_record: self.awaiting_record,
                });
            }
            let dir = if from_client { &mut self.c } else { &mut self.s };
            if seg.rst {
                dir.rst.get_or_insert(at);
            } else {
                dir.fin.get_or_insert(at);
            }
        }
    }

    fn data(&mut self, from_client: bool, seg: &Segment<'_>, at: At) {
        if from_client
            && self.oversize_after_icmp.is_none()
            && let Some((_, _, Unreachable { mtu: Some(mtu), .. })) = &self.frag_needed
        {
            // The smallest IP and TCP headers: the packet was at least this long.
            let headers = if seg.src.is_ipv4() { 40 } else { 60 };
            let size = seg.len.saturating_add(headers);
            if size > *mtu {
                self.oversize_after_icmp = Some((at.0, size));
            }
        }
        let dir = if from_client { &mut self.c } else { &mut self.s };
        let end = seg.seq.wrapping_add(seg.len);
        let base = *dir.base.get_or_insert(seg.seq);
        if let Some(high) = dir.high
            && seq_le(end, high)
        {
            dir.retransmissions += 1;
            if dir.first_data.is_some() && seg.seq == dir.first_seq && dir.first_retrans.len() < MAX_LISTED {
                dir.first_retrans.push(at.0);
            }
            return;
        }
        let offset = seg.seq.wrapping_sub(base) as usize;
        // In order (or overlapping what we have): extend the head and walk TLS records. A segment cut by the
        // snaplen gives its captured prefix, the stream's next bytes, to both: the head (what the stream is)
        // and the walker (record headers, an alert). Past the cut nothing is read: the head stops growing (it
        // is then shorter than the sequence space seen), and the walker goes on only if the missing bytes
        // are the rest of a record body whose length it has.
        let have = dir.high.map_or(0, |h| h.wrapping_sub(base) as usize);
        if offset <= have && (dir.high.is_some() || offset == 0) {
            let skip = have - offset;
            let fresh = seg.payload.get(skip..).unwrap_or(&[]);
            if dir.head.len() == have && dir.head.len() < HEAD {
                let room = HEAD - dir.head.len();
                dir.head.extend_from_slice(&fresh[..fresh.len().min(room)]);
            }
            dir.tls.feed(fresh, at.0);
            let past_cut = (seg.len as usize).saturating_sub(skip).saturating_sub(fresh.len());
            if past_cut > 0 {
                dir.tls.skip(past_cut as u32);
            }
        } else {
            dir.tls.done = true; // a gap: record boundaries are lost
        }
        dir.high = Some(match dir.high {
            Some(h) if seq_le(end, h) => h,
            _ => end,
        });
        dir.bytes += u64::from(seg.len);
        if dir.first_data.is_none() {
            dir.first_data = Some((at.0, at.1, seg.len));
            dir.first_seq = seg.seq;
        }
        dir.last_data = Some(at);
        if from_client {
            // In a tunnel the client's bytes are not requests: nothing awaits an answer.
            if self.awaiting.is_none() && self.upgraded.is_none() {
                self.requests += 1;
                self.awaiting = Some(at);
                self.idle_before_request = self.last_server_data.map(|t| at.1 - t);
                self.awaiting_record = seg
                    .payload
                    .get(..5)
                    .filter(|h| super::tls::is_record_header(h))
                    .map(|h| (h[0], u16::from_be_bytes([h[3], h[4]])));
            }
        } else {
            if self.upgraded.is_none() && is_switching_protocols(seg.payload) {
                self.upgraded = Some(at.0);
            }
            self.awaiting = None;
            self.last_server_data = Some(at.1);
        }
    }
}

/// An HTTP/1.x `101 Switching Protocols` status line (WebSocket, h2c upgrade).
fn is_switching_protocols(payload: &[u8]) -> bool {
    payload.starts_with(b"HTTP/1.") && payload.get(8..13) == Some(b" 101 ".as_slice())
}

fn latest(a: Option<At>, b: Option<At>) -> Option<At> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if x.0 >= y.0 { x } else { y }),
        (x, y) => x.or(y),
    }
}

/// `a <= b` in 32-bit sequence space.
fn seq_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// All flows of a capture, in order of first appearance.
#[derive(Debug, Default)]
pub struct Tracker {
    pub flows: Vec<Flow>,
    index: HashMap<(SocketAddr, SocketAddr), usize>,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Tracker {
    pub fn segment(&mut self, seg: &Segment<'_>, at: At) {
        let k = key(seg.src, seg.dst);
        let is_syn = seg.syn && !seg.ack;
        let idx = match self.index.get(&k) {
            // A new SYN with another ISN on a finished flow: the port pair was reused.
            Some(&i) if is_syn && self.flows[i].finished() && self.flows[i].syn_seq != Some(seg.seq) => None,
            Some(&i) => Some(i),
            None => None,
        };
        let idx = match idx {
            Some(i) => i,
            None => {
                let flow = if is_syn {
                    Flow::new(seg.src, seg.dst, at)
                } else if seg.syn {
                    Flow::new(seg.dst, seg.src, at) // SYN-ACK first: its destination is the client
                } else {
                    let (client, server) =
                        if seg.src.port() >= seg.dst.port() { (seg.src, seg.dst) } else { (seg.dst, seg.src) };
                    let mut f = Flow::new(client, server, at);
                    f.mid_stream = true;
                    f
                };
                self.flows.push(flow);
                let i = self.flows.len() - 1;
                self.index.insert(k, i);
                i
            }
        };
        self.flows[idx].segment(seg, at);
    }

    /// An ICMP error quoting a TCP packet from `quoted_src`: joins its flow, or starts one from the quote
    /// (the quoted packet's sender is the client: ICMP errors answer what a client sent, a SYN above all).
    pub fn unreachable(&mut self, u: Unreachable, at: At) {
        let k = key(u.quoted_src, u.quoted_dst);
        let i = match self.index.get(&k) {
            Some(&i) => i,
            None => {
                let mut flow = Flow::new(u.quoted_src, u.quoted_dst, at);
                flow.icmp_only = true;
                self.flows.push(flow);
                self.index.insert(k, self.flows.len() - 1);
                self.flows.len() - 1
            }
        };
        let flow = &mut self.flows[i];
        if u.quoted_src != flow.client {
            return;
        }
        let slot = if u.mtu.is_some() { &mut flow.frag_needed } else { &mut flow.unreachable };
        if slot.is_none() {
            *slot = Some((at.0, at.1, u));
            flow.last = at;
        }
    }
}
