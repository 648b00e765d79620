//! The checks after the run: every request the client numbered has one access-log line with the status and
//! request id the client saw, the metrics count the same responses by class, nothing was lost, and no
//! well-behaved target was blamed (access log, metrics, system log, health).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::load::Seen;

/// One access-log line, as far as the checks need it.
#[derive(Debug)]
pub struct Line {
    pub status: u16,
    pub cause: Option<String>,
    pub target: Option<String>,
    pub trace_id: String,
}

/// Every access-log line of `dir` with a `soak=N` in its URL, by N; lines without one, and duplicates, counted.
pub fn access_log(dir: &Path) -> Result<(HashMap<u64, Line>, u64, u64), String> {
    let (mut lines, mut strays, mut duplicates) = (HashMap::new(), 0, 0);
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for raw in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| format!("{}: not JSON ({e}): {raw}", path.display()))?;
            let url = v["request_url"].as_str().unwrap_or("");
            let Some(n) = url.split(['?', '&']).find_map(|kv| kv.strip_prefix("soak=")?.parse::<u64>().ok()) else {
                strays += 1;
                continue;
            };
            let target = match (v["target_ip"].as_str(), v["target_port"].as_u64()) {
                (Some(ip), Some(port)) => Some(format!("{ip}:{port}")),
                _ => None,
            };
            let line = Line {
                status: v["elb_status_code"].as_u64().unwrap_or(0) as u16,
                cause: v["error_reason"].as_str().map(str::to_owned),
                target,
                trace_id: v["trace_id"].as_str().unwrap_or("").to_owned(),
            };
            if lines.insert(n, line).is_some() {
                duplicates += 1;
            }
        }
    }
    Ok((lines, strays, duplicates))
}

/// One Prometheus sample: name, labels, value.
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = match line.rsplit_once(' ') {
            Some((s, v)) => (s, v.parse().unwrap_or(f64::NAN)),
            None => continue,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter_map(|kv| {
                let (k, v) = kv.split_once("=\"")?;
                Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
            })
            .collect();
        out.push(Sample { name: name.to_owned(), labels, value });
    }
    out
}

/// The sum of `name`'s samples whose labels pass `keep`.
pub fn sum(samples: &[Sample], name: &str, keep: impl Fn(&BTreeMap<String, String>) -> bool) -> f64 {
    samples.iter().filter(|s| s.name == name && keep(&s.labels)).map(|s| s.value).sum()
}

/// `2xx`... for a status.
pub fn class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// What the checks found: each failed check with its evidence (empty: all held).
#[derive(Debug, Default)]
pub struct Findings {
    pub failures: Vec<String>,
}

impl Findings {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }
}

/// The client against the access log: one line per request, same status, same request id.
pub fn client_vs_log(
    seen: &BTreeMap<u64, (&'static str, Seen)>,
    log: &HashMap<u64, Line>,
    findings: &mut Findings,
) -> u64 {
    let (mut missing, mut differ, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (kind, s)) in seen {
        match (s, log.get(n)) {
            (Seen::Lost(why), line) => lost.push(format!("#{n} {kind}: {why}; access log: {line:?}")),
            (Seen::Answered { .. }, None) => missing.push(format!("#{n} {kind}")),
            (Seen::Answered { status, id, .. }, Some(l)) if *status != l.status || *id != l.trace_id => {
                differ.push(format!("#{n} {kind}: client {status} {id}, log {} {}", l.status, l.trace_id));
            }
            _ => {}
        }
    }
    let phantom = log.keys().filter(|n| !seen.contains_key(n)).count();
    let head = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    findings.check(lost.is_empty(), || format!("{} request(s) lost: {}", lost.len(), head(&lost)));
    findings.check(missing.is_empty(), || {
        format!("{} answered request(s) not in the access log: {}", missing.len(), head(&missing))
    });
    findings.check(differ.is_empty(), || {
        format!("{} access-log line(s) disagree with the client: {}", differ.len(), head(&differ))
    });
    findings.check(phantom == 0, || format!("{phantom} access-log line(s) for requests the client never sent"));
    lost.len() as u64
}

/// Whether a system-log line blames a target for a local resource failure.
pub fn local_fault_blamed_on_target(line: &str) -> bool {
    const LOCAL: [&str; 5] = ["errno=EMFILE", "errno=ENFILE", "errno=ENOBUFS", "errno=ENOMEM", "errno=EADDRNOTAVAIL"];
    line.contains("cause=Target") && LOCAL.iter().any(|e| line.contains(e))
}
