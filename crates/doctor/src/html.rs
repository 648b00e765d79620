//! `--html FILE`: one self-contained page (inline CSS and SVG, no scripts, no external assets) with the
//! summary, two stacked bar charts (per minute by cause, 5xx per minute by target) and the report's tables.
//! Long spans are bucketed (2, 5, 10 ... minutes) so a chart never has more than [`MAX_BARS`] bars.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{CONNECTION_HEADER, Report, Timeline};
use crate::time::{MINUTE, Micros, format_short};

/// The most bars a chart draws.
pub const MAX_BARS: usize = 240;
/// The most series a chart draws; the rest are summed as "other".
const MAX_SERIES: usize = 8;
const COLORS: [&str; 10] =
    ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

/// Escapes text for HTML (element content and attribute values).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

struct Series<'a> {
    name: String,
    points: &'a [(Micros, u64)],
}

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 2), so axis ticks are round.
fn nice_ceiling(n: u64) -> u64 {
    let n = n.max(2);
    let mut p = 1u64;
    while let Some(next) = p.checked_mul(10) {
        if let Some(v) = [p, 2 * p, 5 * p].into_iter().find(|v| *v >= n) {
            return v;
        }
        p = next;
    }
    n
}

/// A stacked bar chart of series over time, as an SVG element with an HTML legend.
fn chart(title: &str, series: &[Series<'_>]) -> String {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold((Micros::MAX, Micros::MIN), |(a, b), t| (a.min(t), b.max(t)));
    if lo > hi {
        return format!("<h2>{}</h2><p class=muted>Nothing to chart.</p>", escape(title));
    }
    let minutes = ((hi - lo) / MINUTE + 1) as usize;
    let bucket = [1usize, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440, 10_080]
        .into_iter()
        .find(|b| minutes.div_ceil(*b) <= MAX_BARS)
        .unwrap_or(minutes.div_ceil(MAX_BARS).max(1));
    let bars = minutes.div_ceil(bucket);
    // grid[bar][series]
    let mut grid = vec![vec![0u64; series.len()]; bars];
    for (i, s) in series.iter().enumerate() {
        for (t, n) in s.points {
            let b = (((t - lo) / MINUTE) as usize / bucket).min(bars - 1);
            grid[b][i] += n;
        }
    }
    let max = nice_ceiling(grid.iter().map(|column| column.iter().sum::<u64>()).max().unwrap_or(0));
    let (w, h, left, bottom, top) = (960.0f64, 240.0f64, 48.0f64, 22.0f64, 8.0f64);
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let bw = plot_w / bars as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}">"#,
        escape(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let v = (max as f64 * frac) as u64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="ax">{v}</text>"##,
            w - 8.0,
            left - 4.0,
            y + 4.0
        );
    }
    for (b, column) in grid.iter().enumerate() {
        let mut y = top + plot_h;
        let x = left + b as f64 * bw;
        let when = format_short(lo + (b * bucket) as Micros * MINUTE);
        for ((i, s), &n) in series.iter().enumerate().zip(column) {
            if n == 0 {
                continue;
            }
            let bh = plot_h * n as f64 / max as f64;
            y -= bh;
            let _ = write!(
                svg,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{bh:.2}" fill="{}"><title>{} {}: {n}</title></rect>"#,
                (bw - 0.5).max(0.5),
                COLORS[i % COLORS.len()],
                escape(&when),
                escape(&s.name)
            );
        }
    }
    let ticks = 6.min(bars);
    for k in 0..ticks {
        let b = if ticks == 1 { 0 } else { k * (bars - 1) / (ticks - 1) };
        let x = left + (b as f64 + 0.5) * bw;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="ax">{}</text>"#,
            h - 6.0,
            escape(&format_short(lo + (b * bucket) as Micros * MINUTE))
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=legend>");
    for (i, s) in series.iter().enumerate() {
        let total: u64 = s.points.iter().map(|p| p.1).sum();
        let _ = write!(
            legend,
            r#"<li><span class=sw style="background:{}"></span>{} ({total})</li>"#,
            COLORS[i % COLORS.len()],
            escape(&s.name)
        );
    }
    legend.push_str("</ul>");
    let per = if bucket == 1 { "minute".to_owned() } else { format!("{bucket} minutes") };
    format!("<h2>{} <small>(per {per})</small></h2>{svg}{legend}", escape(title))
}

/// Keeps the largest series and sums the rest as "other".
fn top_series<'a>(mut all: Vec<(String, &'a Timeline)>, other: &'a mut Vec<(Micros, u64)>) -> Vec<Series<'a>> {
    all.sort_by(|a, b| {
        let sa: u64 = a.1.0.iter().map(|p| p.1).sum();
        let sb: u64 = b.1.0.iter().map(|p| p.1).sum();
        sb.cmp(&sa).then(a.0.cmp(&b.0))
    });
    let rest = if all.len() > MAX_SERIES { all.split_off(MAX_SERIES) } else { Vec::new() };
    let mut sum: BTreeMap<Micros, u64> = BTreeMap::new();
    for (_, t) in &rest {
        for (m, n) in &t.0 {
            *sum.entry(*m).or_insert(0) += n;
        }
    }
    *other = sum.into_iter().collect();
    let mut out: Vec<Series<'a>> = all.into_iter().map(|(name, t)| Series { name, points: &t.0 }).collect();
    if !other.is_empty() {
        out.push(Series { name: format!("other ({})", rest.len()), points: other });
    }
    out
}

fn row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        let _ = write!(s, "<td>{}</td>", escape(c));
    }
    s.push_str("</tr>");
    s
}

fn head(cells: &[&str]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s.push_str("</tr>");
    s
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}small,.muted{color:#777;font-weight:normal}\
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border-bottom:1px solid #e4e4e4;padding:4px 6px;\
text-align:left;vertical-align:top}th{background:#f6f6f6}td.n{text-align:right}.ax{font-size:10px;fill:#666}\
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.3em 0}\
.sw{display:inline-block;width:10px;height:10px;margin-right:5px}.pat{border-left:4px solid #d62728;\
padding:.2em .8em;margin:.8em 0;background:#fff6f6}code{font-size:12px}";

/// Renders the report as one HTML page.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    o.push_str("<!doctype html><html lang=en><head><meta charset=utf-8><title>waygate doctor logs</title>");
    let _ = write!(o, "<style>{STYLE}</style></head><body><h1>waygate doctor logs</h1>");
    let elb: u64 = r.elb_5xx.values().sum();
    let tgt: u64 = r.target_5xx.values().sum();
    let _ = write!(
        o,
        "<p>{} requests in {} file(s), {} to {}: <b>{elb}</b> 5xx generated by the load balancer, <b>{tgt}</b> by \
        targets; {} malformed line(s), {} filtered out.</p>",
        r.requests,
        r.files,
        escape(r.first_seen.as_deref().unwrap_or("-")),
        escape(r.last_seen.as_deref().unwrap_or("-")),
        r.malformed.count,
        r.filtered_out
    );
    for p in &r.patterns {
        let exact = if p.exact { " (exact)" } else { "" };
        let _ = write!(
            o,
            "<div class=pat><b>{}{exact}</b>: {}<br><i>{}</i></div>",
            escape(p.kind),
            escape(&p.summary),
            escape(&p.remediation)
        );
    }
    let mut other = Vec::new();
    let causes = top_series(r.causes.iter().map(|c| (c.cause.clone(), &c.timeline)).collect(), &mut other);
    o.push_str(&chart("Errors per minute by cause", &causes));
    let mut other_t = Vec::new();
    let mut targets: Vec<(String, &Timeline)> =
        r.targets.iter().filter(|t| !t.timeline.0.is_empty()).map(|t| (t.target.clone(), &t.timeline)).collect();
    if !r.untargeted_timeline.0.is_empty() {
        targets.push(("(no target)".to_owned(), &r.untargeted_timeline));
    }
    let targets = top_series(targets, &mut other_t);
    o.push_str(&chart("5xx per minute by target", &targets));

    o.push_str("<h2>5xx by status and source</h2><table>");
    o.push_str(&head(&["status", "load balancer", "target"]));
    let mut statuses: Vec<&String> = r.elb_5xx.keys().chain(r.target_5xx.keys()).collect();
    statuses.sort();
    statuses.dedup();
    for s in statuses {
        let n = |m: &BTreeMap<String, u64>| m.get(s).copied().unwrap_or(0).to_string();
        o.push_str(&row(&[s.clone(), n(&r.elb_5xx), n(&r.target_5xx)]));
    }
    o.push_str("</table><h2>Causes</h2><table>");
    o.push_str(&head(&["cause", "count", "source", "targets", "first / last seen", "what to do"]));
    for c in &r.causes {
        let mut t: Vec<(&String, &u64)> = c.targets.iter().collect();
        t.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut targets: Vec<String> = t.iter().take(5).map(|(a, n)| format!("{a} {n}")).collect();
        if t.len() > 5 {
            targets.push(format!("+{} more", t.len() - 5));
        }
        let name = match c.inferred_from {
            Some(e) => format!("{} (inferred: {e})", c.cause),
            None => c.cause.clone(),
        };
        o.push_str(&row(&[
            name,
            c.count.to_string(),
            c.source.to_owned(),
            targets.join(", "),
            format!("{} / {}", c.first_seen, c.last_seen),
            c.remediation.clone(),
        ]));
    }
    o.push_str("</table>");
    if r.causes.iter().any(|c| !c.examples.is_empty()) {
        o.push_str("<h2>Example requests</h2><table>");
        o.push_str(&head(&["cause", "request, its connection and the connection's requests"]));
        for c in &r.causes {
            for e in &c.examples {
                o.push_str(&row(&[c.cause.clone(), e.lines().join(" | ")]));
            }
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Targets</h2><table>");
    o.push_str(&head(&["target", "requests", "LB 5xx", "target 5xx", "first seen", "last seen", "longest request"]));
    for t in r.targets.iter().take(100) {
        o.push_str(&row(&[
            t.target.clone(),
            t.requests.to_string(),
            t.elb_5xx.to_string(),
            t.target_5xx.to_string(),
            t.first_seen.clone(),
            t.last_seen.clone(),
            t.max_request_seconds.map_or_else(|| "-".to_owned(), |d| format!("{d:.3} s")),
        ]));
    }
    o.push_str("</table>");
    if let Some(c) = &r.classic {
        let _ = write!(o, "<p>{}</p>", escape(&c.sentence()));
    }
    if !r.connection_logs.is_empty() {
        o.push_str("<h2>Connection logs</h2><table>");
        o.push_str(&head(&CONNECTION_HEADER));
        for cells in r.connection_rows() {
            o.push_str(&row(&cells));
        }
        o.push_str("</table><table>");
        o.push_str(&head(&["failure", "what to do", "examples"]));
        for c in &r.connection_logs {
            for reason in &c.reasons {
                let what = format!("{} {} [{}]", c.kind, reason.reason, reason.count);
                let examples: Vec<String> = reason.examples.iter().map(|e| e.line()).collect();
                o.push_str(&row(&[what, reason.advice.to_owned(), examples.join(" | ")]));
            }
        }
        o.push_str("</table>");
    }
    if r.malformed.count > 0 {
        let _ = write!(o, "<h2>Malformed lines ({})</h2><table>", r.malformed.count);
        o.push_str(&head(&["file:line", "reason", "text"]));
        for e in &r.malformed.examples {
            o.push_str(&row(&[format!("{}:{}", e.file, e.line), e.reason.clone(), e.text.clone()]));
        }
        o.push_str("</table>");
    }
    if !r.file_errors.is_empty() {
        o.push_str("<h2>Files not fully read</h2><table>");
        o.push_str(&head(&["file", "line", "error"]));
        for e in &r.file_errors {
            o.push_str(&row(&[e.file.clone(), e.line.map_or_else(String::new, |l| l.to_string()), e.error.clone()]));
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn round_axis_maximum() {
        assert_eq!([0, 1, 2, 3, 7, 10, 11, 901, 2001].map(nice_ceiling), [2, 2, 2, 5, 10, 10, 20, 1000, 5000]);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }
}
