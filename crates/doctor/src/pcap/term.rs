//! The terminal report: one summary line, each failing flow's story (frame by frame, as the playbooks
//! read a trace), then the findings with the catalogue's remediation, observed idle closes, the other
//! flows in one line, and the capture's problems last.

use std::fmt::Write as _;

use super::classify::Outcome;
use super::report::PcapReport;
use waygate_faults::Cause;

/// Failing flows told in full; the rest are counted.
const STORIES: usize = 50;

/// Renders the report for a terminal.
pub fn render(r: &PcapReport) -> String {
    let mut out = String::new();
    let count = |o: Outcome| r.flows.iter().filter(|f| f.outcome == o).count();
    let failed = count(Outcome::Failed);
    let _ = writeln!(
        out,
        "{}: {} {} frame(s), {} TCP flow(s): {failed} failing, {} ok, {} idle keep-alive close(s), {} incomplete, {} other \
         traffic{}.",
        r.file,
        r.format.unwrap_or("capture"),
        r.frames,
        r.flows.len(),
        count(Outcome::Ok),
        count(Outcome::IdleClose),
        count(Outcome::Incomplete),
        count(Outcome::Other),
        if r.filtered_out > 0 {
            format!("; {} flow(s) filtered out by --target", r.filtered_out)
        } else {
            String::new()
        },
    );
    if !r.link_types.is_empty() {
        let _ = writeln!(out, "Link type: {}.", r.link_types.join(", "));
    }
    if failed > 0 {
        let _ = writeln!(out, "\nFailing flows:");
    }
    for f in r.failing().take(STORIES) {
        let _ = writeln!(out, "\n  {} → {}  {}", f.client, f.server, f.cause.map_or("?", Cause::name));
        for step in &f.steps {
            let _ = writeln!(out, "    {step}");
        }
    }
    if failed > STORIES {
        let _ = writeln!(out, "\n  ... and {} more failing flow(s) (--json lists them all)", failed - STORIES);
    }
    let incomplete: Vec<_> = r.flows.iter().filter(|f| f.outcome == Outcome::Incomplete).collect();
    if !incomplete.is_empty() {
        let _ = writeln!(out, "\nIncomplete flows (no verdict):");
        for f in incomplete.iter().take(STORIES) {
            let last = f.steps.last().map_or("", String::as_str);
            let _ = writeln!(out, "  {} → {}: {last}", f.client, f.server);
        }
        if incomplete.len() > STORIES {
            let _ = writeln!(out, "  ... and {} more", incomplete.len() - STORIES);
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &r.findings {
            let servers: Vec<String> = f.servers.iter().map(|(s, n)| format!("{s} ({n})")).collect();
            let alerts = if f.alerts.is_empty() {
                String::new()
            } else {
                let a: Vec<String> = f.alerts.iter().map(|(s, n)| format!("{s} ({n})")).collect();
                format!("; alerts: {}", a.join(", "))
            };
            let _ = writeln!(out, "\n  {}: {} flow(s) to {}{alerts}", f.cause.name(), f.count, servers.join(", "));
            let _ = writeln!(out, "    What to do: {}", f.remediation);
        }
    }
    if !r.idle_closes.is_empty() {
        let _ = writeln!(out, "\nIdle keep-alive closes by the target (not errors):");
        for i in &r.idle_closes {
            let _ = writeln!(
                out,
                "  {}: {} connection(s) closed after {:.1}-{:.1} ms idle",
                i.server, i.count, i.min_idle_ms, i.max_idle_ms
            );
        }
        if let Some(i) = r.idle_closes.first() {
            let _ = writeln!(out, "    {}", i.remediation);
        }
    }
    if failed == 0 && !r.flows.is_empty() {
        let _ = writeln!(out, "\nNo failing flow.");
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out, "\nCapture problems (the analysis covers the frames read before them):");
        for p in &r.problems {
            let _ = writeln!(out, "  {}", p.message);
        }
    }
    out
}
