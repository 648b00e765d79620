//! Test helpers: AWS's Athena regex for ALB logs (reference/ALB.md §1, verbatim) and record builders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use waygate_telemetry::{Actions, Attempt, Exchange, RequestKind, TargetGroupRef};

pub use waygate_telemetry::athena::{ATHENA, COLUMNS};

/// The Athena regex matching a whole line (RegexSerDe matches whole lines), allowing the fields ALB appends
/// after the 2022 table (conn_trace_id), captured as `trailing`.
pub fn athena() -> Regex {
    Regex::new(&format!("^{ATHENA}(?: (?P<trailing>.*))?$")).expect("Athena regex compiles")
}

/// The columns Athena would read from `line`, or `None` when the row would be unreadable.
pub fn columns(re: &Regex, line: &str) -> Option<BTreeMap<&'static str, String>> {
    let caps = re.captures(line)?;
    let mut m = BTreeMap::new();
    for (i, name) in COLUMNS.iter().enumerate() {
        m.insert(*name, caps.get(i + 1).map_or(String::new(), |c| c.as_str().to_owned()));
    }
    m.insert("trailing", caps.name("trailing").map_or(String::new(), |c| c.as_str().to_owned()));
    Some(m)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC time.
pub fn utc(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64, micros: u32) -> SystemTime {
    let days = u64::try_from(days_from_civil(y, mo, d)).unwrap();
    UNIX_EPOCH + Duration::new(days * 86_400 + h * 3_600 + mi * 60 + s, micros * 1_000)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub const EXAMPLE_TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067";

/// A successful forwarded request, the shape of ALB's first documented example line.
pub fn success() -> Exchange {
    let mut ex = Exchange::new(
        Arc::from("public"),
        Arc::from("app/my-loadbalancer/50dc6c495c0c9188"),
        "192.168.131.39:2817".parse().unwrap(),
    );
    ex.kind = RequestKind::Http;
    ex.time = utc(2018, 7, 2, 22, 23, 0, 186_641);
    ex.request_creation_time = utc(2018, 7, 2, 22, 22, 48, 364_000);
    ex.request_processing_time = Some(ms(0));
    ex.target_processing_time = Some(ms(1));
    ex.response_processing_time = Some(ms(0));
    ex.elb_status = 200;
    ex.target_status = Some(200);
    ex.received_bytes = 34;
    ex.sent_bytes = 366;
    ex.method = "GET".into();
    ex.url = "http://www.example.com:80/".into();
    ex.http_version = "HTTP/1.1".into();
    ex.user_agent = Some("curl/7.46.0".into());
    ex.target_group = Some(TargetGroupRef::with_arn("my-targets", EXAMPLE_TG_ARN));
    ex.trace_id = "Root=1-58337262-36d228ad5d99923122bbe354".into();
    ex.matched_rule_priority = Some(0);
    ex.actions = Actions::FORWARD;
    ex.attempts = vec![Attempt::responded("10.0.0.1:80", 200, ms(1))].into();
    ex
}

/// Set the three processing times to -1.
pub fn undispatched(ex: &mut Exchange) {
    ex.request_processing_time = None;
    ex.target_processing_time = None;
    ex.response_processing_time = None;
}
