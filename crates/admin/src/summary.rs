//! `GET /api/v1/summary`: what the dashboard shows, in one JSON answer: totals and gateway responses by cause
//! (read back from the same exposition `/metrics` serves, so the two can never disagree), target response time
//! percentiles (estimated from the histogram's buckets the way PromQL's `histogram_quantile` does), target
//! groups, alerts, and the newest failures of the flight recorder (each with its cause, its `waygate explain`
//! command and the record's URL), plus the last ten minutes of requests and gateway 5xx by cause ([`History`],
//! sampled on the admin thread), so the chart has a past the moment the page opens.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use waygate_faults::Cause;
use waygate_proxy::Gateway;

/// One sample of the text exposition: name, labels, value.
#[derive(Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of an OpenMetrics / Prometheus text exposition (comments skipped).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).filter_map(sample).collect()
}

fn sample(line: &str) -> Option<Sample> {
    let mut labels = BTreeMap::new();
    let (name, rest) = match line.find('{') {
        Some(open) => {
            let past = parse_labels(&line[open + 1..], &mut labels)?;
            (&line[..open], &line[open + 1 + past..])
        }
        None => line.split_once(' ')?,
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// Parses `k="v",k2="v2"}` into `labels`; returns the offset just past the `}`.
fn parse_labels(s: &str, labels: &mut BTreeMap<String, String>) -> Option<usize> {
    let mut pos = 0;
    loop {
        let eq = s[pos..].find("=\"")? + pos;
        let key = s[pos..eq].trim_start_matches(',').to_owned();
        let mut value = String::new();
        let mut it = s[eq + 2..].char_indices();
        let close = loop {
            let (i, c) = it.next()?;
            match c {
                '\\' => match it.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break eq + 2 + i,
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        match s[close + 1..].chars().next()? {
            '}' => return Some(close + 2),
            ',' => pos = close + 2,
            _ => return None,
        }
    }
}

/// The `q` quantile of a cumulative histogram `(upper bound, count)` sorted by bound, interpolated linearly
/// inside the bucket (as `histogram_quantile`); `None` without observations. A quantile in the `+Inf` bucket is
/// the largest finite bound.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let inside = count - prev.1;
            let frac = if inside > 0.0 { (rank - prev.1) / inside } else { 1.0 };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Some(prev.0)
}

fn sum(samples: &[Sample], name: &str) -> f64 {
    samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
}

/// `waygate_elb_responses_total` summed by (cause, code).
fn elb_by_cause(samples: &[Sample]) -> BTreeMap<(String, String), f64> {
    let mut by_cause: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "waygate_elb_responses_total") {
        let key =
            (s.labels.get("cause").cloned().unwrap_or_default(), s.labels.get("code").cloned().unwrap_or_default());
        *by_cause.entry(key).or_default() += s.value;
    }
    by_cause
}

/// How often [`History`] samples, and how many samples it keeps (ten minutes).
pub const HISTORY_EVERY: Duration = Duration::from_secs(5);
const HISTORY_LEN: usize = 120;

/// Cumulative requests and gateway 5xx by cause, every [`HISTORY_EVERY`]: the page turns them into rates.
#[derive(Debug, Default)]
pub struct History(Mutex<VecDeque<Value>>);

impl History {
    pub fn sample(&self, gw: &Gateway) {
        let samples = samples(&gw.metrics().encode());
        let mut by_cause: BTreeMap<String, u64> = BTreeMap::new();
        for ((cause, code), n) in elb_by_cause(&samples) {
            if code.starts_with('5') {
                *by_cause.entry(cause).or_default() += n as u64;
            }
        }
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let point =
            json!({ "t": t, "requests": sum(&samples, "waygate_requests_total") as u64, "gateway_5xx": by_cause });
        let mut ring = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.len() == HISTORY_LEN {
            ring.pop_front();
        }
        ring.push_back(point);
    }

    fn list(&self) -> Vec<Value> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

pub fn summary(gw: &Gateway, history: &History) -> Value {
    let text = gw.metrics().encode();
    let samples = samples(&text);
    let by_cause = elb_by_cause(&samples);
    let gateway: Vec<Value> = by_cause
        .iter()
        .map(|((cause, code), n)| {
            let known = cause.parse::<Cause>().ok();
            json!({
                "cause": cause,
                "code": code.parse::<u16>().ok(),
                "count": *n as u64,
                "title": known.map(Cause::title),
                "remediation": known.map(Cause::remediation),
            })
        })
        .collect();
    let gateway_5xx: f64 = by_cause.iter().filter(|((_, code), _)| code.starts_with('5')).map(|(_, n)| n).sum();
    let mut classes: BTreeMap<String, f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "waygate_target_responses_total") {
        *classes.entry(s.labels.get("class").cloned().unwrap_or_default()).or_default() += s.value;
    }
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "waygate_target_response_time_seconds_bucket") {
        let Some(le) = s.labels.get("le").and_then(|v| if v == "+Inf" { Some(f64::INFINITY) } else { v.parse().ok() })
        else {
            continue;
        };
        buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
    }
    let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let latency = json!({
        "count": buckets.last().map_or(0.0, |b| b.1) as u64,
        "p50": quantile(0.5, &buckets),
        "p90": quantile(0.9, &buckets),
        "p99": quantile(0.99, &buckets),
    });
    let alerts = crate::alerts::alerts(gw);
    let recent = recent_failures(gw, &alerts);
    json!({
        "time": waygate_telemetry::iso8601(std::time::SystemTime::now()),
        "requests": sum(&samples, "waygate_requests_total") as u64,
        "gateway_5xx": gateway_5xx as u64,
        "gateway_responses": gateway,
        "target_responses": classes.into_iter().map(|(c, n)| (c, json!(n as u64))).collect::<serde_json::Map<_, _>>(),
        "latency_seconds": latency,
        "target_groups": crate::groups::target_groups(gw, None)["target_groups"],
        "alerts": alerts["alerts"],
        "recent_failures": recent,
        "history": history.list(),
    })
}

/// The newest failures the flight recorder keeps (every gateway-generated 4xx/5xx and target 5xx, whether or not
/// a rule counted it), at most [`RECENT`]; each with its cause, status, the rule that counted it if any, its
/// `waygate explain` command and the record's URL. With the recorder off, the ids the alert rules hold.
fn recent_failures(gw: &Gateway, alerts: &Value) -> Vec<Value> {
    let counted_by = |id: &str| {
        alerts["alerts"].as_array().into_iter().flatten().find_map(|rule| {
            let ids = rule["request_ids"].as_array()?;
            ids.iter().any(|v| v.as_str() == Some(id)).then(|| rule["name"].clone())
        })
    };
    let entry = |id: &str, cause: Value, status: Value| {
        json!({
            "request_id": id,
            "cause": cause,
            "status": status,
            "alert": counted_by(id),
            "explain": format!("waygate explain {id}"),
            "href": format!("/api/v1/exchanges/{id}"),
        })
    };
    let recorder = gw.flight_recorder();
    if recorder.capacity() > 0 {
        return recorder
            .request_ids()
            .into_iter()
            .take(RECENT)
            .filter_map(|id| {
                let ex = recorder.get(&id)?;
                let cause = ex.cause.map_or(Value::Null, |c| json!(c.to_string()));
                Some(entry(&id, cause, json!(ex.elb_status)))
            })
            .collect();
    }
    let mut recent: Vec<Value> = Vec::new();
    for rule in alerts["alerts"].as_array().into_iter().flatten() {
        for id in rule["request_ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if recent.len() < RECENT && !recent.iter().any(|r| r["request_id"] == id) {
                recent.push(entry(id, Value::Null, Value::Null));
            }
        }
    }
    recent
}

/// Failures listed on the dashboard.
const RECENT: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let text = "# HELP x y\nwaygate_requests_total{listener=\"public\",target_group=\"a\\\"b\"} 3\n\
                    waygate_alert_webhook_dropped_total 0\nh_bucket{le=\"+Inf\"} 4\n# EOF\n";
        let s = samples(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["target_group"], "a\"b");
        assert_eq!(s[0].value, 3.0);
        assert_eq!((s[1].name.as_str(), s[1].labels.len()), ("waygate_alert_webhook_dropped_total", 0));
        assert_eq!(s[2].labels["le"], "+Inf");
    }

    #[test]
    fn quantiles_interpolate_like_promql() {
        let b = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(0.5, &b), Some(0.1));
        assert!((quantile(0.7, &b).unwrap() - 0.3).abs() < 1e-9);
        assert!((quantile(0.95, &b).unwrap() - 0.75).abs() < 1e-9);
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
        assert_eq!(quantile(0.99, &[(0.5, 1.0), (f64::INFINITY, 10.0)]), Some(0.5));
    }
}
