//! The report: what `--json` prints (schema in the crate docs and docs/doctor.md, pinned by a test), and
//! what the terminal and HTML renderers draw. Built once from the merged accumulator; every map is a
//! `BTreeMap` and every list has a defined order, so the same input always gives the same bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::accum::{Acc, ConnAcc, NO_TARGET};
use crate::audit::Deregistration;
use crate::connlog::ConnKind;
use crate::examples::{ConnectionExample, RequestExampleReport, connection_examples, request_examples};
use crate::fx::FxHashMap;
use crate::input::{FileProblem, InputFile};
use crate::links::Joined;
use crate::remedy::{connection_advice, remediation};
use crate::time::{MINUTE, Micros, SECOND, format_minute, format_timestamp};

/// The `schema` value of the JSON report. Bumped only on a breaking change; keys are only ever added.
pub const SCHEMA: &str = "waygate.doctor.logs/1";

/// Counts per minute, sorted; serialised as `{"2024-05-01T10:00Z": n, ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline(pub Vec<(Micros, u64)>);

impl Timeline {
    fn from_minutes(m: impl IntoIterator<Item = (i64, u64)>) -> Self {
        let mut v: Vec<(Micros, u64)> = m.into_iter().map(|(min, n)| (min * MINUTE, n)).collect();
        v.sort_unstable();
        Self(v)
    }
}

impl Serialize for Timeline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (t, n) in &self.0 {
            map.serialize_entry(&format_minute(*t), n)?;
        }
        map.end()
    }
}

/// The whole analysis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Files read.
    pub files: usize,
    /// Bytes on disk (compressed size for gzip).
    pub bytes: u64,
    /// Non-blank lines read.
    pub lines: u64,
    /// Records that parsed and passed the filters.
    pub requests: u64,
    /// Records that parsed but were filtered out.
    pub filtered_out: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Load-balancer-generated 5xx: `{status: count}`.
    pub elb_5xx: BTreeMap<String, u64>,
    /// Target-generated 5xx (target_status_code): `{status: count}`.
    pub target_5xx: BTreeMap<String, u64>,
    /// One entry per (cause, source), largest first.
    pub causes: Vec<CauseFinding>,
    pub patterns: Vec<Pattern>,
    /// Every target seen, most 5xx first.
    pub targets: Vec<TargetSummary>,
    pub malformed: MalformedSummary,
    pub file_errors: Vec<FileError>,
    /// One per connection-log kind seen (ALB connection logs, NLB, Classic TCP/SSL), in that order.
    pub connection_logs: Vec<ConnectionSummary>,
    /// Classic ELB HTTP lines, when there were any: whose their 5xx were.
    pub classic: Option<ClassicSummary>,
    /// 5xx per minute on lines without a target (`-`), for the charts.
    #[serde(skip)]
    pub untargeted_timeline: Timeline,
}

/// One cause.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CauseFinding {
    /// `error_reason` verbatim, or an inferred name (see [`crate::attribution`]).
    pub cause: String,
    /// `load_balancer` or `target`.
    pub source: &'static str,
    /// True when the log had no `error_reason` and the doctor named the cause.
    pub inferred: bool,
    /// For inferred causes, which fields the inference read.
    pub inferred_from: Option<&'static str>,
    pub count: u64,
    /// elb_status_code: count.
    pub statuses: BTreeMap<String, u64>,
    /// `target:port` (or `-`): count.
    pub targets: BTreeMap<String, u64>,
    pub first_seen: String,
    pub last_seen: String,
    pub remediation: String,
    pub timeline: Timeline,
    /// The earliest requests of this cause, with their connection when the input holds connection logs.
    pub examples: Vec<RequestExampleReport>,
}

/// A pattern finding (see [`crate::patterns`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pattern {
    /// `keep_alive_mismatch`, `target_concentration` or `deregistered_mid_request`.
    pub kind: &'static str,
    pub summary: String,
    pub count: u64,
    pub targets: BTreeMap<String, u64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// True when established from an audit log rather than inferred from the access log.
    pub exact: bool,
    pub remediation: String,
}

/// One target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub requests: u64,
    /// 5xx the load balancer generated for requests to this target.
    pub elb_5xx: u64,
    /// 5xx this target returned.
    pub target_5xx: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// Longest `time - request_creation_time` seen.
    pub max_request_seconds: Option<f64>,
    /// 5xx per minute.
    pub timeline: Timeline,
}

/// Lines that are not log records.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MalformedSummary {
    pub count: u64,
    pub by_file: BTreeMap<String, u64>,
    /// The first ones, in file and line order.
    pub examples: Vec<MalformedLine>,
}

/// One malformed line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MalformedLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
    /// The line's first 200 bytes.
    pub text: String,
}

/// One connection-log kind (see [`crate::connlog`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionSummary {
    /// `alb_connection`, `nlb_tls` or `classic_tcp`.
    pub kind: &'static str,
    pub connections: u64,
    /// Connections that failed: client TLS failures (ALB, NLB), connections with no backend (Classic).
    pub failures: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Failures by reason, most first (ties by name).
    pub reasons: Vec<ConnectionReason>,
    /// Incoming TLS alerts by name (NLB), failed connections or not.
    pub alerts: BTreeMap<String, u64>,
    /// By listener: ALB the listener port, NLB the listener id, Classic the load balancer's name.
    pub listeners: BTreeMap<String, ListenerCount>,
}

/// One failure reason of a connection log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionReason {
    /// ALB's `tls_verify_status` code (`ClientCertUntrusted`), NLB's alert (`handshake_failure`, `no alert`),
    /// Classic's `no backend`.
    pub reason: String,
    pub count: u64,
    pub advice: &'static str,
    /// The earliest connections that failed so (ALB connection logs).
    pub examples: Vec<ConnectionExample>,
}

/// Connections and failures on one listener.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ListenerCount {
    pub connections: u64,
    pub failures: u64,
}

/// Classic ELB HTTP lines: the ELB's own 5xx against the backends'.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassicSummary {
    pub requests: u64,
    /// 5xx the ELB generated (`elb_status_code`, no matching `backend_status_code`).
    pub elb_5xx: BTreeMap<String, u64>,
    /// 5xx the backend instances returned (`backend_status_code`).
    pub backend_5xx: BTreeMap<String, u64>,
}

/// The header of the connection-log table both renderers draw.
pub const CONNECTION_HEADER: [&str; 5] = ["log", "connections", "failures", "reason", "count"];

impl Report {
    /// The connection-log table: one row per failure reason (a kind with none gets one row of its totals).
    pub fn connection_rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for c in &self.connection_logs {
            let totals = [c.kind.to_owned(), c.connections.to_string(), c.failures.to_string()];
            if c.reasons.is_empty() {
                rows.push(totals.iter().cloned().chain(["-".into(), "-".into()]).collect());
            }
            for r in &c.reasons {
                rows.push(totals.iter().cloned().chain([r.reason.clone(), r.count.to_string()]).collect());
            }
        }
        rows
    }
}

impl ClassicSummary {
    /// One sentence: the Classic lines and whose their 5xx were.
    pub fn sentence(&self) -> String {
        let list = |m: &BTreeMap<String, u64>| {
            let v: Vec<String> = m.iter().map(|(s, n)| format!("{s} x{n}")).collect();
            if v.is_empty() { "none".to_owned() } else { v.join(", ") }
        };
        format!(
            "Classic ELB: {} request(s); 5xx generated by the ELB: {}; returned by backend instances: {}.",
            self.requests,
            list(&self.elb_5xx),
            list(&self.backend_5xx)
        )
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn connection_summary(kind: ConnKind, c: &ConnAcc, joined: Option<&Joined>) -> ConnectionSummary {
    let mut reasons: Vec<ConnectionReason> = c
        .reasons
        .iter()
        .map(|(r, n)| {
            let reason = text(r);
            let examples = connection_examples(c.examples.get(r).map_or(&[][..], Vec::as_slice), joined);
            ConnectionReason { advice: connection_advice(kind, &reason), reason, count: *n, examples }
        })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    ConnectionSummary {
        kind: kind.as_str(),
        connections: c.connections,
        failures: c.failures,
        first_seen: ts(c.first),
        last_seen: ts(c.last),
        reasons,
        alerts: c.alerts.iter().map(|(a, n)| (text(a), *n)).collect(),
        listeners: c
            .listeners
            .iter()
            .map(|(l, (n, f))| (text(l), ListenerCount { connections: *n, failures: *f }))
            .collect(),
    }
}

/// A file that could not be read to the end (unreadable, corrupt gzip).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    pub file: String,
    /// The line at which reading stopped (the lines before it were analysed).
    pub line: Option<u64>,
    pub error: String,
}

fn display(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn ts(t: Micros) -> Option<String> {
    (t != Micros::MAX && t != Micros::MIN).then(|| format_timestamp(t))
}

fn status_map(counts: &[u64; 100]) -> BTreeMap<String, u64> {
    counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| ((500 + i).to_string(), *n)).collect()
}

/// Builds the report from the merged accumulator. `read_errors` are (file index, message) for files
/// that stopped part-way; their line is the first one not read.
pub(crate) fn build(
    acc: &Acc,
    files: &[InputFile],
    mut problems: Vec<FileProblem>,
    read_errors: Vec<(u32, String)>,
    audit: &[Deregistration],
) -> Report {
    // Chunk-local line numbers to file line numbers.
    let mut chunks = acc.chunk_lines.clone();
    chunks.sort_unstable();
    let mut chunk_start: FxHashMap<(u32, u32), u64> = FxHashMap::default();
    let mut file_lines: FxHashMap<u32, u64> = FxHashMap::default();
    for (file, chunk, lines) in chunks {
        let total = file_lines.entry(file).or_insert(0);
        chunk_start.insert((file, chunk), *total);
        *total += lines;
    }
    let path = |f: u32| files.get(f as usize).map_or_else(|| "?".to_owned(), |f| display(&f.path));
    let examples = acc
        .examples
        .iter()
        .map(|e| MalformedLine {
            file: path(e.file),
            line: chunk_start.get(&(e.file, e.chunk)).copied().unwrap_or(0) + e.local_line,
            reason: e.reason.to_string(),
            text: e.text.clone(),
        })
        .collect();
    for (file, error) in read_errors {
        let line = file_lines.get(&file).copied().unwrap_or(0) + 1;
        let p = files.get(file as usize).map_or_else(PathBuf::new, |f| f.path.clone());
        problems.push(FileProblem { file: p, line: Some(line), error });
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let causes = acc
        .sorted_causes()
        .into_iter()
        .map(|c| CauseFinding {
            cause: c.name.to_string(),
            source: c.source.as_str(),
            inferred: c.inferred.is_some(),
            inferred_from: c.inferred.map(|k| k.evidence()),
            count: c.count,
            statuses: c.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            targets: c.targets.iter().map(|(t, n)| (acc.target_name(*t), *n)).collect(),
            first_seen: ts(c.first).unwrap_or_default(),
            last_seen: ts(c.last).unwrap_or_default(),
            remediation: remediation(&c.name, c.inferred),
            timeline: Timeline::from_minutes(c.minutes.iter().map(|(m, n)| (*m, *n))),
            examples: request_examples(&c.examples, acc.joined.as_ref()),
        })
        .collect();

    let mut per_target: FxHashMap<u32, Vec<(i64, u64)>> = FxHashMap::default();
    for ((m, t), n) in &acc.minute_target {
        per_target.entry(*t).or_default().push((*m, *n));
    }
    let mut targets: Vec<TargetSummary> = acc
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| TargetSummary {
            target: String::from_utf8_lossy(&t.name).into_owned(),
            requests: t.requests,
            elb_5xx: t.elb_5xx,
            target_5xx: t.target_5xx,
            first_seen: ts(t.first).unwrap_or_default(),
            last_seen: ts(t.last).unwrap_or_default(),
            max_request_seconds: t.max_duration.map(|d| d as f64 / SECOND as f64),
            timeline: Timeline::from_minutes(per_target.remove(&(i as u32)).unwrap_or_default()),
        })
        .collect();
    targets.sort_by(|a, b| {
        (b.elb_5xx + b.target_5xx, b.requests)
            .cmp(&(a.elb_5xx + a.target_5xx, a.requests))
            .then(a.target.cmp(&b.target))
    });

    Report {
        schema: SCHEMA,
        files: files.len(),
        bytes: files.iter().map(|f| f.size).sum(),
        lines: acc.lines,
        requests: acc.requests,
        filtered_out: acc.filtered_out,
        first_seen: ts(acc.first),
        last_seen: ts(acc.last),
        elb_5xx: status_map(&acc.elb_5xx),
        target_5xx: status_map(&acc.target_5xx),
        causes,
        patterns: crate::patterns::find(acc, audit),
        targets,
        malformed: MalformedSummary {
            count: acc.malformed,
            by_file: acc.malformed_by_file.iter().map(|(f, n)| (path(*f), *n)).collect(),
            examples,
        },
        file_errors: problems
            .into_iter()
            .map(|p| FileError { file: display(&p.file), line: p.line, error: p.error })
            .collect(),
        connection_logs: ConnKind::ALL
            .iter()
            .zip(&acc.conns)
            .filter(|(_, c)| c.connections > 0)
            .map(|(k, c)| connection_summary(*k, c, acc.joined.as_ref()))
            .collect(),
        classic: (acc.classic.requests > 0).then(|| ClassicSummary {
            requests: acc.classic.requests,
            elb_5xx: status_map(&acc.classic.elb_5xx),
            backend_5xx: status_map(&acc.classic.backend_5xx),
        }),
        untargeted_timeline: Timeline::from_minutes(per_target.remove(&NO_TARGET).unwrap_or_default()),
    }
}
