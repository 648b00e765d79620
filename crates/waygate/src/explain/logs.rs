//! `waygate explain REQUEST_ID --logs DIR`: the story rebuilt from the files when the flight recorder cannot
//! tell it (the gateway is down, or the record has left the ring). Every file under DIR (plain or gzip) is
//! searched for the id: its access-log line (ALB format, split by the doctor's parser) gives the exchange's
//! columns, and the system-log lines of its failed attempts (logfmt or JSON, as `waygate run --log-format`
//! writes them) give each attempt's phase, words and connection snapshot, placed on the timeline by their
//! timestamps. The result is the same [`ExchangeView`] the admin API serves, so it is drawn the same way.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use waygate_doctor::alb::{AlbFields, split_alb};
use waygate_doctor::time::{Micros, parse_timestamp};
use waygate_faults::Cause;
use waygate_telemetry::ExchangeView;
use waygate_telemetry::flight::{AttemptView, CauseView, ConnView};

/// Lines read at most (a request id appears on a handful).
const MAX_LINES: usize = 1000;

/// The access-log line and the system-log lines of `request_id` under `dir`, as a record; `Err` says why none.
pub fn rebuild(dir: &Path, request_id: &str) -> Result<ExchangeView, String> {
    let (files, _) = waygate_doctor::input::discover(&[dir.to_path_buf()])
        .map_err(|e| format!("--logs {}: {}", e.path.display(), e.error))?;
    let paths: Vec<_> = files.into_iter().map(|f| f.path).collect();
    let (found, _) = waygate_doctor::bundle::logs::access_lines(&paths, Some(request_id), paths.len(), MAX_LINES);
    let lines: Vec<&str> = found.iter().flat_map(|(_, text)| text.lines()).collect();
    let system: Vec<SystemLine<'_>> = lines.iter().filter_map(|l| SystemLine::parse(l, request_id)).collect();
    let access = lines.iter().find(|l| !system.iter().any(|s| s.raw == **l) && split_alb(l.as_bytes()).is_ok());
    let Some(access) = access else {
        return Err(format!("no access-log line with request id {request_id} under {}", dir.display()));
    };
    from_lines(access, &system).ok_or_else(|| format!("the access-log line of {request_id} is not in ALB format"))
}

/// One system-log line of the request: its time, the text after the time, its message and fields.
#[derive(Debug)]
struct SystemLine<'a> {
    raw: &'a str,
    time: Option<Micros>,
    after_time: String,
    message: String,
    fields: HashMap<String, String>,
}

impl<'a> SystemLine<'a> {
    fn parse(raw: &'a str, request_id: &str) -> Option<Self> {
        if raw.starts_with('{') {
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
            let text = |k: &str| v.get(k).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned));
            let fields: HashMap<String, String> = v.keys().filter_map(|k| Some((k.clone(), text(k)?))).collect();
            (fields.get("request_id")? == request_id).then_some(())?;
            let time = fields.get("timestamp").and_then(|t| parse_timestamp(t.as_bytes()));
            let message = fields.get("message").cloned().unwrap_or_default();
            return Some(Self { raw, time, after_time: raw.to_owned(), message, fields });
        }
        // `TIME LEVEL target: message key=value ...`
        let (time, rest) = raw.split_once(' ')?;
        let after_time = rest.trim_start();
        let (_, body) = after_time.split_once(": ")?;
        let at = body.find(" request_id=")?;
        let message = body[..at].to_owned();
        let fields: HashMap<String, String> = body[at..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        (fields.get("request_id")? == request_id).then_some(())?;
        let time = parse_timestamp(time.as_bytes());
        Some(Self { raw, time, after_time: after_time.to_owned(), message, fields })
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

fn text(f: &AlbFields<'_>, name: &str) -> Option<String> {
    let v = String::from_utf8_lossy(f.by_name(name)?).into_owned();
    (v != "-" && !v.is_empty()).then_some(v)
}

fn number<T: FromStr>(f: &AlbFields<'_>, name: &str) -> Option<T> {
    text(f, name)?.parse().ok()
}

fn seconds_ms(v: Option<String>) -> Option<f64> {
    v?.parse::<f64>().ok().filter(|s| *s >= 0.0).map(|s| s * 1000.0)
}

fn from_lines(access: &str, system: &[SystemLine<'_>]) -> Option<ExchangeView> {
    let f = split_alb(access.as_bytes()).ok()?;
    let stamp = |name| text(&f, name).and_then(|t| parse_timestamp(t.as_bytes()));
    let (time, created) = (stamp("time")?, stamp("request_creation_time"));
    let started = created.unwrap_or(time);
    let request = text(&f, "request").unwrap_or_default();
    let mut parts = request.splitn(3, ' ');
    let (method, url, version) = (parts.next(), parts.next(), parts.next());
    let elb = text(&f, "elb").unwrap_or_default();
    let arn = text(&f, "target_group_arn");
    let cause = text(&f, "error_reason").and_then(|c| Cause::from_str(&c).ok());
    let mut attempts: Vec<AttemptView> = system
        .iter()
        .filter(|s| s.get("phase").is_some())
        .map(|s| AttemptView {
            target: s.get("target").unwrap_or("-").to_owned(),
            status: None,
            cause: s.get("cause").map(str::to_owned),
            response_time_ms: None,
            phase: s.get("phase").map(str::to_owned),
            failed_after_ms: s.time.map(|t| (t - started).max(0) as f64 / 1000.0),
            timed_out_after_ms: None,
            message: Some(s.message.clone()),
            errno: None,
            attempt: s.get("attempt").map(str::to_owned),
            conn: conn(s),
        })
        .collect();
    let target_status: Option<u16> = number(&f, "target_status_code");
    if let (Some(status), Some(target)) = (target_status, text(&f, "target:port")) {
        attempts.push(AttemptView {
            target,
            status: Some(status),
            cause: None,
            response_time_ms: seconds_ms(text(&f, "target_processing_time")),
            phase: None,
            failed_after_ms: None,
            timed_out_after_ms: None,
            message: None,
            errno: None,
            attempt: None,
            conn: None,
        });
    }
    Some(ExchangeView {
        request_id: text(&f, "trace_id").unwrap_or_default(),
        listener: elb.rsplit('/').next().unwrap_or("-").to_owned(),
        elb,
        kind: text(&f, "type").unwrap_or_default(),
        request_creation_time: text(&f, "request_creation_time").unwrap_or_default(),
        time: text(&f, "time").unwrap_or_default(),
        duration_ms: (time - started).max(0) as f64 / 1000.0,
        client: text(&f, "client:port").unwrap_or_default(),
        method: method.unwrap_or("-").to_owned(),
        url: url.unwrap_or("-").to_owned(),
        http_version: version.unwrap_or("-").to_owned(),
        user_agent: text(&f, "user_agent"),
        ssl_cipher: text(&f, "ssl_cipher"),
        ssl_protocol: text(&f, "ssl_protocol"),
        sni: text(&f, "domain_name"),
        target_group: arn.as_deref().and_then(|a| a.split('/').nth(1)).map(str::to_owned),
        target_group_arn: arn,
        matched_rule_priority: number(&f, "matched_rule_priority"),
        actions: text(&f, "actions_executed").map_or(Vec::new(), |a| a.split(',').map(str::to_owned).collect()),
        redirect_url: text(&f, "redirect_url"),
        elb_status: number(&f, "elb_status_code")?,
        target_status,
        cause: cause.map(CauseView::of),
        request_processing_time_ms: seconds_ms(text(&f, "request_processing_time")),
        target_processing_time_ms: seconds_ms(text(&f, "target_processing_time")),
        response_processing_time_ms: seconds_ms(text(&f, "response_processing_time")),
        received_bytes: number(&f, "received_bytes").unwrap_or(0),
        sent_bytes: number(&f, "sent_bytes").unwrap_or(0),
        classification: text(&f, "classification"),
        classification_reason: text(&f, "classification_reason"),
        conn_trace_id: text(&f, "conn_trace_id"),
        attempts,
        access_log_line: access.to_owned(),
        system_log_lines: system.iter().map(|s| s.after_time.clone()).collect(),
    })
}

/// The connection snapshot a system-log line carries (this attempt's bytes only: the line has no totals).
fn conn(s: &SystemLine<'_>) -> Option<ConnView> {
    let n = |k: &str| s.get(k).and_then(|v| v.parse::<u64>().ok());
    let ms = |k: &str| s.get(k).and_then(|v| v.parse::<f64>().ok());
    let (read, written) = (n("bytes_read").unwrap_or(0), n("bytes_written").unwrap_or(0));
    Some(ConnView {
        id: n("conn")?,
        remote: s.get("remote").unwrap_or("-").to_owned(),
        local: s.get("local").unwrap_or("-").to_owned(),
        reused: s.get("reused") == Some("true"),
        use_count: n("use_count").and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
        bytes_read: read,
        bytes_written: written,
        attempt_bytes_read: read,
        attempt_bytes_written: written,
        age_ms: ms("age_ms").unwrap_or(0.0),
        last_io_ago_ms: ms("last_io_ms").unwrap_or(0.0),
        idle_before_use_ms: ms("idle_before_ms").filter(|v| *v >= 0.0),
        open: s.get("open") == Some("true"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = r#"http 2026-12-06T04:10:03.683111Z app/waygate/public 127.0.0.1:59706 127.0.0.1:36513 -1 -1 -1 502 - 64 440 "GET http://app.example:45647/broken/x HTTP/1.1" "-" - - arn:aws:elasticloadbalancing:local:000000000000:targetgroup/broken/b164662ad16fa660 "Root=1-6b14e01b-ec64ff67fec4b4e478f8913a" "-" "-" 1 2026-12-06T04:10:03.682857Z "forward" "-" "TargetConnectionRefused" "127.0.0.1:36513" "-" "-" "-" TID_9c4c06009604d01c33d5afacbb1492d0"#;
    const SYSTEM: &str = "2026-12-06T04:10:03.683079Z ERROR waygate::upstream: Connection refused (os error 111) request_id=Root=1-6b14e01b-ec64ff67fec4b4e478f8913a cause=TargetConnectionRefused phase=connect target_group=broken target=127.0.0.1:36513 attempt=1/1";

    #[test]
    fn the_record_is_rebuilt_from_the_two_lines() {
        let id = "Root=1-6b14e01b-ec64ff67fec4b4e478f8913a";
        let system = SystemLine::parse(SYSTEM, id).unwrap();
        assert!(SystemLine::parse(SYSTEM, "Root=1-other").is_none());
        let v = from_lines(ACCESS, &[system]).unwrap();
        assert_eq!((v.request_id.as_str(), v.elb_status, v.listener.as_str()), (id, 502, "public"));
        assert_eq!(v.target_group.as_deref(), Some("broken"));
        assert_eq!(v.cause.as_ref().unwrap().name, "TargetConnectionRefused");
        assert_eq!(v.duration_ms, 0.254);
        let a = &v.attempts[0];
        assert_eq!(
            (a.phase.as_deref(), a.failed_after_ms, a.attempt.as_deref()),
            (Some("connect"), Some(0.222), Some("1/1"))
        );
        assert_eq!(v.system_log_lines, [SYSTEM.split_once(' ').unwrap().1]);
        assert_eq!(v.request_processing_time_ms, None);
    }

    #[test]
    fn json_system_lines_are_read_too() {
        let id = "Root=1-a";
        let line = r#"{"timestamp":"2026-12-06T04:10:03.683079Z","level":"ERROR","message":"refused","request_id":"Root=1-a","cause":"TargetConnectionRefused","phase":"connect","target":"127.0.0.1:9","conn":7,"reused":false,"remote":"127.0.0.1:9","local":"127.0.0.1:5"}"#;
        let s = SystemLine::parse(line, id).unwrap();
        assert_eq!((s.message.as_str(), s.get("phase"), s.time.is_some()), ("refused", Some("connect"), true));
        assert_eq!(conn(&s).unwrap().id, 7);
    }
}
