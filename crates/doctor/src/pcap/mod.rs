//! `waygate doctor pcap FILE`: reads a packet capture and explains every TCP connection in the fault
//! catalogue's words, automating the playbooks' "open the capture in Wireshark" step.
//!
//! Data flow: [`reader`] streams frames out of pcap/pcapng → [`decode`] (link layer, IP, TCP, ICMP via
//! etherparse) → [`flow::Tracker`] keeps constant-size state per connection → [`classify`] turns each
//! flow into a verdict and its frame-by-frame story → [`report`] groups findings with the catalogue's
//! remediation → [`term`] or JSON. Memory is one reader buffer plus a few hundred bytes per flow.

pub mod classify;
pub mod cli;
pub mod decode;
pub mod flow;
pub mod reader;
pub mod report;
pub mod resync;
pub mod rules;
pub mod term;
pub mod tls;
mod zst;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

pub use classify::{Outcome, Verdict};
pub use cli::{PcapArgs, run_pcap, run_pcap_to};
pub use reader::{Format, Frame, NotACapture, Problem, ProblemKind};
pub use report::{FlowReport, PCAP_SCHEMA, PcapReport};

use decode::{Packet, linktype};
use flow::Tracker;

/// Which flows to report: those whose server matches (an IP, or an IP and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFilter {
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl TargetFilter {
    /// `10.0.0.7`, `10.0.0.7:443`, `::1`, `[::1]:443`.
    pub fn parse(s: &str) -> Option<TargetFilter> {
        let s = s.trim();
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Some(TargetFilter::Addr(a));
        }
        let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
        bare.parse::<IpAddr>().ok().map(TargetFilter::Ip)
    }

    pub fn matches(&self, server: SocketAddr) -> bool {
        match self {
            TargetFilter::Ip(ip) => server.ip() == *ip,
            TargetFilter::Addr(a) => server == *a,
        }
    }
}

/// Analyses a capture from any reader; `name` is what the report calls it.
pub fn analyze_reader<R: Read + Send>(
    input: R,
    name: &str,
    target: Option<TargetFilter>,
) -> Result<PcapReport, NotACapture> {
    let mut tracker = Tracker::default();
    let mut link_types: Vec<i32> = Vec::new();
    let (mut other, mut undecodable) = (0u64, 0u64);
    let summary = reader::read_frames(input, |frame| {
        if !link_types.contains(&frame.linktype) {
            link_types.push(frame.linktype);
        }
        if !linktype::supported(frame.linktype) {
            other += 1;
            return;
        }
        let at = (frame.number, frame.ts);
        match decode::decode(frame.linktype, frame.data) {
            Packet::Tcp(seg) => tracker.segment(&seg, at),
            Packet::Unreachable(u) => tracker.unreachable(u, at),
            Packet::Other => other += 1,
            Packet::Undecodable => undecodable += 1,
        }
    })?;
    let mut filtered_out = 0;
    let mut flows = Vec::new();
    for f in &tracker.flows {
        if target.is_some_and(|t| !t.matches(f.server)) {
            filtered_out += 1;
            continue;
        }
        flows.push(report::flow_report(f, classify::classify(f)));
    }
    let (findings, idle_closes) = report::summarise(&flows);
    let mut problems = summary.problems;
    let unsupported: Vec<i32> = link_types.iter().copied().filter(|l| !linktype::supported(*l)).collect();
    for lt in unsupported {
        problems.push(Problem {
            kind: ProblemKind::UnsupportedLinkType,
            offset: 0,
            after_frame: 0,
            message: format!(
                "frames of {} are not decoded (supported: Ethernet, Linux SLL/SLL2, NULL, raw IP)",
                linktype::name(lt)
            ),
        });
    }
    Ok(PcapReport {
        schema: PCAP_SCHEMA,
        file: name.to_owned(),
        format: summary.format.map(Format::as_str),
        link_types: link_types.into_iter().map(linktype::name).collect(),
        frames: summary.frames,
        bytes: summary.bytes,
        other_frames: other,
        undecodable_frames: undecodable,
        filtered_out,
        flows,
        findings,
        idle_closes,
        problems,
    })
}

/// Analyses bytes in memory (tests, the fuzz target).
pub fn analyze_bytes(data: &[u8], target: Option<TargetFilter>) -> Result<PcapReport, NotACapture> {
    analyze_reader(data, "(memory)", target)
}
