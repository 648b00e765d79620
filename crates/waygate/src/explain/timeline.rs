//! The terminal timeline of one exchange: its phases as segments on one time axis (request received = 0, the
//! exchange's end = its duration), each drawn to scale as a bar, the failing one drawn apart and marked.
//! Built from the flight recorder's record alone: the failed attempts' failure times and connection ages, and
//! the access log's three processing times when a response head arrived.

use super::fmt_ms;
use std::fmt::Write as _;

use waygate_telemetry::ExchangeView;

/// Bar width in columns.
pub(crate) const WIDTH: usize = 40;

/// One phase on the axis, in milliseconds since the request was received.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub label: String,
    pub start_ms: f64,
    pub end_ms: f64,
    /// The exchange failed here.
    pub failed: bool,
    pub note: String,
}

pub(crate) fn seg(
    label: impl Into<String>,
    start_ms: f64,
    end_ms: f64,
    failed: bool,
    note: impl Into<String>,
) -> Segment {
    Segment { label: label.into(), start_ms, end_ms: end_ms.max(start_ms), failed, note: note.into() }
}

/// The phases of `ex`, in order, covering 0 to its duration.
pub fn segments(ex: &ExchangeView) -> Vec<Segment> {
    let last_failure = ex.attempts.iter().filter_map(|a| a.failed_after_ms).fold(0.0, f64::max);
    let total = ex.duration_ms.max(last_failure);
    let cause = ex.cause.as_ref().map_or("", |c| c.name.as_str());
    let mut out = Vec::new();
    let mut t = 0.0;
    for (i, a) in ex.attempts.iter().enumerate() {
        let n = i + 1;
        let before = if i == 0 { "route, select, " } else { "" };
        if let Some(end) = a.failed_after_ms {
            let phase = a.phase.as_deref().unwrap_or("?");
            let what = a.cause.as_deref().unwrap_or("failed");
            // A connection opened for this attempt: connecting until it was established, then the failing phase.
            if let Some(c) = a.conn.as_ref().filter(|c| !c.reused && end - c.age_ms > t) {
                let established = end - c.age_ms;
                out.push(seg(format!("{before}connect (attempt {n})"), t, established, false, ""));
                t = established;
                out.push(seg(format!("{phase} (attempt {n})"), t, end, true, format!("{what} from {}", a.target)));
            } else {
                let label = match &a.conn {
                    Some(c) if c.reused => format!("{before}pooled connection, {phase} (attempt {n})"),
                    _ => format!("{before}{phase} (attempt {n})"),
                };
                out.push(seg(label, t, end, true, format!("{what} from {}", a.target)));
            }
            t = end;
        } else if let (Some(status), Some(rpt), Some(tpt)) =
            (a.status, ex.request_processing_time_ms, ex.target_processing_time_ms)
        {
            let (sent, head) = (rpt.max(t), rpt.max(t) + tpt);
            out.push(seg(format!("{before}connect, send request (attempt {n})"), t, sent, false, ""));
            let target_failed = status >= 500 && cause.is_empty();
            let note = format!("{status} from {}", a.target);
            out.push(seg(format!("target response head (attempt {n})"), sent, head, target_failed, note));
            let started = head + ex.response_processing_time_ms.unwrap_or(0.0);
            if started > head {
                out.push(seg("response head relayed", head, started, false, ""));
            }
            let body_failed = !cause.is_empty();
            out.push(seg("response body", started, total, body_failed, if body_failed { cause } else { "" }));
            t = total;
        }
    }
    if t < total || out.is_empty() {
        if ex.attempts.is_empty() {
            // Failed before any target was tried: routing, selection, or the client's request itself.
            let label = ex.cause.as_ref().map_or("request", |c| c.phase.as_str());
            out.push(seg(label, t, total, ex.cause.is_some(), cause));
        } else {
            out.push(seg(format!("error response {}", ex.elb_status), t, total, false, ""));
        }
    }
    out
}

/// The timeline as text: a header with the scale, then one line per phase.
pub fn render(ex: &ExchangeView) -> String {
    let segs = segments(ex);
    let total = segs.last().map_or(0.0, |s| s.end_ms);
    let mut out = String::new();
    let per_col = total / WIDTH as f64;
    let _ = writeln!(
        out,
        "Timeline: {} ms from request received to response end; one column = {} ms",
        fmt_ms(total),
        fmt_ms(per_col)
    );
    draw(&mut out, &segs, 0.0, total);
    out
}

/// Draws `segs` on one axis from `origin` to `end` (milliseconds), one line each: the label, the bar to scale
/// (a failed segment in its own shade, marked), the span, the note. Shared with `waygate trace show`.
pub(crate) fn draw(out: &mut String, segs: &[Segment], origin: f64, end: f64) {
    let span = end - origin;
    let label_width = segs.iter().map(|s| s.label.chars().count()).max().unwrap_or(0);
    for s in segs {
        let col = |v: f64| if span > 0.0 { (((v - origin) / span) * WIDTH as f64).round() as usize } else { 0 };
        let from = col(s.start_ms).min(WIDTH - 1);
        let to = col(s.end_ms).clamp(from + 1, WIDTH);
        let fill = if s.failed { '▓' } else { '█' };
        let bar: String = (0..WIDTH).map(|i| if (from..to).contains(&i) { fill } else { '·' }).collect();
        let mark = if s.failed { "  ✗ FAILED HERE" } else { "" };
        let note = if s.note.is_empty() { String::new() } else { format!("  {}", s.note) };
        let _ = writeln!(
            out,
            "  {:<label_width$}  |{bar}| {:>9} → {:>9} ms{mark}{note}",
            s.label,
            fmt_ms(s.start_ms),
            fmt_ms(s.end_ms)
        );
    }
}

#[cfg(test)]
mod tests {
    use waygate_telemetry::ExchangeView;
    use waygate_telemetry::flight::{AttemptView, CauseView, ConnView};

    use super::{render, segments};

    fn view() -> ExchangeView {
        let mut v: ExchangeView = serde_json::from_value(serde_json::json!({
            "request_id": "Root=1-1", "listener": "l", "elb": "app/waygate/l", "type": "http",
            "request_creation_time": "t0", "time": "t1", "duration_ms": 40.0, "client": "127.0.0.1:1",
            "method": "GET", "url": "http://h:80/", "http_version": "HTTP/1.1", "user_agent": null,
            "ssl_cipher": null, "ssl_protocol": null, "sni": null, "target_group": "web",
            "target_group_arn": "arn", "matched_rule_priority": 0, "actions": ["forward"], "redirect_url": null,
            "elb_status": 502, "target_status": null, "cause": null, "request_processing_time_ms": null,
            "target_processing_time_ms": null, "response_processing_time_ms": null, "received_bytes": 10,
            "sent_bytes": 20, "classification": null, "classification_reason": null, "conn_trace_id": null,
            "attempts": [], "access_log_line": "line", "system_log_lines": []
        }))
        .unwrap();
        v.cause = Some(CauseView::of(waygate_faults::Cause::TargetConnectionRefused));
        v
    }

    fn failed(target: &str, at: f64, phase: &str, conn: Option<ConnView>) -> AttemptView {
        AttemptView {
            target: target.into(),
            status: None,
            cause: Some("TargetConnectionRefused".into()),
            response_time_ms: None,
            phase: Some(phase.into()),
            failed_after_ms: Some(at),
            timed_out_after_ms: None,
            message: Some("Connection refused".into()),
            errno: Some("ECONNREFUSED".into()),
            attempt: Some("1/2".into()),
            conn,
        }
    }

    /// Two refused attempts and the error response: three segments end to end, both attempts marked, drawn
    /// to scale (10 ms of 40 is a quarter of the bar).
    #[test]
    fn failed_attempts_are_marked_and_drawn_to_scale() {
        let mut v = view();
        v.attempts = vec![failed("a:1", 10.0, "connect", None), failed("b:1", 30.0, "connect", None)];
        let s = segments(&v);
        let spans: Vec<(f64, f64, bool)> = s.iter().map(|s| (s.start_ms, s.end_ms, s.failed)).collect();
        assert_eq!(spans, [(0.0, 10.0, true), (10.0, 30.0, true), (30.0, 40.0, false)]);
        assert_eq!(s[0].label, "route, select, connect (attempt 1)");
        let text = render(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("40.000 ms") && lines[0].contains("one column = 1.000 ms"), "{text}");
        assert!(lines[1].contains(&format!("|{}{}|", "▓".repeat(10), "·".repeat(30))), "{text}");
        assert!(lines[2].contains(&format!("|{}{}{}|", "·".repeat(10), "▓".repeat(20), "·".repeat(10))), "{text}");
        assert!(lines[1].ends_with("✗ FAILED HERE  TargetConnectionRefused from a:1"), "{text}");
        assert!(lines[3].contains("error response 502") && !lines[3].contains("FAILED"), "{text}");
    }

    /// A fresh connection splits its attempt: connecting until it was established (its age back from the
    /// failure), then the failing phase.
    #[test]
    fn a_fresh_connection_splits_connect_from_the_failing_phase() {
        let mut v = view();
        let conn = ConnView {
            id: 1,
            remote: "a:1".into(),
            local: "b:2".into(),
            reused: false,
            use_count: 1,
            bytes_read: 0,
            bytes_written: 80,
            attempt_bytes_read: 0,
            attempt_bytes_written: 80,
            age_ms: 30.0,
            last_io_ago_ms: 30.0,
            idle_before_use_ms: None,
            open: true,
        };
        v.attempts = vec![failed("a:1", 35.0, "await_headers", Some(conn))];
        let s = segments(&v);
        let spans: Vec<(&str, f64, f64, bool)> =
            s.iter().map(|s| (s.label.as_str(), s.start_ms, s.end_ms, s.failed)).collect();
        assert_eq!(
            spans,
            [
                ("route, select, connect (attempt 1)", 0.0, 5.0, false),
                ("await_headers (attempt 1)", 5.0, 35.0, true),
                ("error response 502", 35.0, 40.0, false)
            ]
        );
    }

    /// No attempt: the whole exchange is the cause's phase, marked.
    #[test]
    fn a_failure_before_any_attempt_is_one_marked_phase() {
        let mut v = view();
        v.cause = Some(CauseView::of(waygate_faults::Cause::NoHealthyTargets));
        let s = segments(&v);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].label.as_str(), s[0].failed, s[0].end_ms), ("select", true, 40.0));
    }

    /// A target's own 5xx: the processing times place the target's wait, which is marked.
    #[test]
    fn a_target_5xx_marks_the_target_wait() {
        let mut v = view();
        v.cause = None;
        v.target_status = Some(503);
        v.elb_status = 503;
        (v.request_processing_time_ms, v.target_processing_time_ms, v.response_processing_time_ms) =
            (Some(2.0), Some(30.0), Some(0.0));
        v.attempts = vec![AttemptView {
            status: Some(503),
            cause: None,
            phase: None,
            failed_after_ms: None,
            response_time_ms: Some(30.0),
            ..failed("a:1", 0.0, "", None)
        }];
        let failed: Vec<(String, bool)> = segments(&v).into_iter().map(|s| (s.label, s.failed)).collect();
        assert_eq!(
            failed,
            [
                ("route, select, connect, send request (attempt 1)".to_owned(), false),
                ("target response head (attempt 1)".to_owned(), true),
                ("response body".to_owned(), false)
            ]
        );
    }
}
