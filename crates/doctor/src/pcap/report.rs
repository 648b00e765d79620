//! The pcap report: every flow with its verdict, findings per cause with the catalogue's remediation, the
//! target's observed keep-alive idle closes, and the capture's problems. Serialised as-is for `--json`
//! (schema `waygate.doctor.pcap/1`, documented in docs/doctor.md; keys are only ever added).

use std::collections::BTreeMap;

use serde::Serialize;
use waygate_faults::Cause;

use super::classify::{Outcome, Verdict};
use super::flow::Flow;
use super::reader::Problem;

pub const PCAP_SCHEMA: &str = "waygate.doctor.pcap/1";

/// One TCP connection and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub client: String,
    pub server: String,
    pub outcome: Outcome,
    /// The catalogue cause (written by name); null unless `outcome` is `failed`.
    #[serde(serialize_with = "cause_name")]
    pub cause: Option<Cause>,
    /// The story in one line.
    pub evidence: String,
    /// The story's steps.
    #[serde(skip)]
    pub steps: Vec<String>,
    /// Frames the story names (1-based, as Wireshark numbers them).
    pub frames: Vec<u64>,
    /// First frame time, RFC 3339 UTC.
    pub start: String,
    pub duration_ms: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retransmissions: u64,
    /// TLS alert description (TargetTlsAlert, TargetTlsCertificateInvalid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Idle time before the server's FIN (idle_close) or before the reused request (TargetKeepAliveRace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<f64>,
    /// `probable` when the verdict is read from TLS record sizes and timing rather than proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<&'static str>,
    /// Next-hop MTU of an ICMP fragmentation-needed / packet-too-big error quoting the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_mtu: Option<u32>,
}

/// One cause across flows.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "cause_name")]
    pub cause: Cause,
    pub count: u64,
    /// Server address → failing flows.
    pub servers: BTreeMap<String, u64>,
    /// Alert name → flows (TLS alert causes only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, u64>,
    pub remediation: &'static str,
}

/// A server that closed idle keep-alive connections, and after how long.
#[derive(Debug, Clone, Serialize)]
pub struct IdleCloses {
    pub server: String,
    pub count: u64,
    pub min_idle_ms: f64,
    pub max_idle_ms: f64,
    pub remediation: &'static str,
}

/// The whole analysis.
#[derive(Debug, Clone, Serialize)]
pub struct PcapReport {
    pub schema: &'static str,
    pub file: String,
    /// `pcap` or `pcapng`; null when nothing could be read.
    pub format: Option<&'static str>,
    pub link_types: Vec<String>,
    pub frames: u64,
    pub bytes: u64,
    /// Frames that were not TCP or an ICMP unreachable (UDP, ARP ...), or whose link type is unsupported.
    pub other_frames: u64,
    /// Frames too short or malformed to decode.
    pub undecodable_frames: u64,
    /// Flows left out by --target.
    pub filtered_out: u64,
    pub flows: Vec<FlowReport>,
    pub findings: Vec<Finding>,
    pub idle_closes: Vec<IdleCloses>,
    /// Truncation, corruption: what and where. Analysis covers the frames before it.
    pub problems: Vec<Problem>,
}

impl PcapReport {
    /// Flows whose outcome is `failed`.
    pub fn failing(&self) -> impl Iterator<Item = &FlowReport> {
        self.flows.iter().filter(|f| f.outcome == Outcome::Failed)
    }
}

const IDLE_REMEDIATION: &str = "Not an error by itself: the target closes idle keep-alive connections after this \
long. Keep the gateway's pool_idle_timeout below the shortest time shown (or raise the target's keep-alive \
timeout), or a request sent on a connection as it closes fails with TargetKeepAliveRace.";

pub(crate) fn flow_report(f: &Flow, v: Verdict) -> FlowReport {
    FlowReport {
        client: f.client.to_string(),
        server: f.server.to_string(),
        outcome: v.outcome,
        cause: v.cause,
        evidence: v.evidence(),
        steps: v.steps,
        frames: v.frames,
        start: rfc3339(f.first.1),
        duration_ms: (f.last.1 - f.first.1).max(0) as f64 / 1e6,
        bytes_sent: f.c.bytes,
        bytes_received: f.s.bytes,
        retransmissions: f.c.retransmissions + f.s.retransmissions,
        alert: v.alert,
        idle_ms: v.idle_ms,
        confidence: v.confidence,
        path_mtu: v.path_mtu,
    }
}

/// Findings by cause (most flows first) and idle closes by server.
pub(crate) fn summarise(flows: &[FlowReport]) -> (Vec<Finding>, Vec<IdleCloses>) {
    let mut by_cause: BTreeMap<Cause, Finding> = BTreeMap::new();
    let mut idle: BTreeMap<&str, IdleCloses> = BTreeMap::new();
    for f in flows {
        if let Some(cause) = f.cause {
            let e = by_cause.entry(cause).or_insert_with(|| Finding {
                cause,
                count: 0,
                servers: BTreeMap::new(),
                alerts: BTreeMap::new(),
                remediation: cause.remediation(),
            });
            e.count += 1;
            *e.servers.entry(f.server.clone()).or_default() += 1;
            if let Some(a) = &f.alert {
                *e.alerts.entry(a.clone()).or_default() += 1;
            }
        }
        if f.outcome == Outcome::IdleClose
            && let Some(ms) = f.idle_ms
        {
            let e = idle.entry(&f.server).or_insert_with(|| IdleCloses {
                server: f.server.clone(),
                count: 0,
                min_idle_ms: ms,
                max_idle_ms: ms,
                remediation: IDLE_REMEDIATION,
            });
            e.count += 1;
            e.min_idle_ms = e.min_idle_ms.min(ms);
            e.max_idle_ms = e.max_idle_ms.max(ms);
        }
    }
    let mut findings: Vec<Finding> = by_cause.into_values().collect();
    findings.sort_by(|a, b| b.count.cmp(&a.count).then(a.cause.name().cmp(b.cause.name())));
    (findings, idle.into_values().collect())
}

/// A cause as JSON writes it: its catalogue name (`Option` and bare alike).
fn cause_name<S: serde::Serializer, C: Into<Option<Cause>> + Copy>(cause: &C, s: S) -> Result<S::Ok, S::Error> {
    (*cause).into().map(Cause::name).serialize(s)
}

fn rfc3339(ns: i64) -> String {
    crate::time::format_timestamp(ns.div_euclid(1000))
}
