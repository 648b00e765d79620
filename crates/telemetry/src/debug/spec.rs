//! What a debug session asks for: the body of `POST /api/v1/debug-sessions` (INTERFACE.md, "Trace sessions"),
//! `{"filter": {...}, "max_exchanges": 20, "timeout": "10m", "capture_body": false}`, and the filter's
//! matching. Parsed by hand from JSON rather than derived, so that every refusal names its field
//! (`filter.status: ...`) the way the config's errors name their key, and unknown keys are errors, not ignored.
//!
//! The filter is judged in three steps, each as soon as its facts exist: the request's own (path prefix,
//! method, header, client address) when its head is read, the target group once it is routed, and the status
//! and cause when the exchange ends. A request that fails the first two is never traced at all.

use std::net::IpAddr;
use std::time::Duration;

use http::HeaderName;
use serde_json::{Map, Value, json};
use waygate_faults::Cause;

use crate::Exchange;

/// Apigee's default: a session captures 20 exchanges ...
pub const DEFAULT_MAX_EXCHANGES: usize = 20;
/// ... and at most this many.
pub const MAX_EXCHANGES: usize = 100;
/// Apigee's default: a session captures for 10 minutes ...
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// ... within these bounds.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The keys a session body may have, for the error naming an unknown one.
const SESSION_KEYS: &str = "filter, max_exchanges, timeout, capture_body";
const FILTER_KEYS: &str = "path_prefix, method, header, target_group, status, cause, client_ip";

/// One session's request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    pub filter: Filter,
    pub max_exchanges: usize,
    pub timeout: Duration,
    /// Capture the first [`super::BODY_CAPTURE_BYTES`] of each request and response body.
    pub capture_body: bool,
}

/// Which exchanges a session captures: every key given must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub path_prefix: Option<String>,
    /// Upper case, as methods are compared.
    pub method: Option<String>,
    /// A request header and its exact value.
    pub header: Option<(HeaderName, String)>,
    pub target_group: Option<String>,
    pub status: Option<StatusFilter>,
    pub cause: Option<Cause>,
    pub client_ip: Option<IpAddr>,
}

/// `"5xx"` (a class) or `"502"` (one status) of the response the client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Class(u16),
    Exact(u16),
}

/// What the request itself says, read when its head is: the facts the first step of the filter needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
    pub client: IpAddr,
}

impl StatusFilter {
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Class(c) => status / 100 == c,
            Self::Exact(s) => status == s,
        }
    }

    fn parse(v: &Value) -> Result<Self, String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err("expected a status like \"5xx\" or \"502\"".into()),
        };
        let lower = text.to_ascii_lowercase();
        if let Some(class) = lower.strip_suffix("xx")
            && let Ok(c @ 1..=5) = class.parse::<u16>()
        {
            return Ok(Self::Class(c));
        }
        match lower.parse::<u16>() {
            Ok(s @ 100..=599) => Ok(Self::Exact(s)),
            _ => Err(format!("{text:?} is not a status: expected a class 1xx-5xx or a code 100-599")),
        }
    }

    fn text(self) -> String {
        match self {
            Self::Class(c) => format!("{c}xx"),
            Self::Exact(s) => s.to_string(),
        }
    }
}

impl Filter {
    /// The first step: the request's own facts.
    pub fn request_matches(&self, req: &RequestInfo<'_>) -> bool {
        self.path_prefix.as_deref().is_none_or(|p| req.path.starts_with(p))
            && self.method.as_deref().is_none_or(|m| req.method.eq_ignore_ascii_case(m))
            && self
                .header
                .as_ref()
                .is_none_or(|(name, value)| req.headers.get_all(name).iter().any(|v| v.as_bytes() == value.as_bytes()))
            && self.client_ip.is_none_or(|ip| ip.to_canonical() == req.client.to_canonical())
    }

    /// The second step: the target group the request was routed to.
    pub fn group_matches(&self, group: &str) -> bool {
        self.target_group.as_deref().is_none_or(|g| g == group)
    }

    /// The last step, on the finished record: its group (a request never routed matches no group filter), the
    /// status the client got, and the cause.
    pub fn end_matches(&self, ex: &Exchange) -> bool {
        let group = ex.target_group.as_ref().map(|g| &*g.name);
        self.target_group.as_deref().is_none_or(|g| group == Some(g))
            && self.status.is_none_or(|s| s.matches(ex.elb_status))
            && self.cause.is_none_or(|c| ex.cause == Some(c))
    }

    /// As the session's body wrote it (absent keys left out).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("path_prefix", self.path_prefix.clone().map(Value::String));
        put("method", self.method.clone().map(Value::String));
        put("header", self.header.as_ref().map(|(n, v)| json!({"name": n.as_str(), "value": v})));
        put("target_group", self.target_group.clone().map(Value::String));
        put("status", self.status.map(|s| Value::String(s.text())));
        put("cause", self.cause.map(|c| Value::String(c.name().to_owned())));
        put("client_ip", self.client_ip.map(|ip| Value::String(ip.to_string())));
        Value::Object(m)
    }
}

impl SessionSpec {
    /// Parses a session's JSON body; the error names the field at fault.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
        };
        let Value::Object(top) = value else { return Err("the body must be a JSON object".into()) };
        let mut spec = Self {
            filter: Filter::default(),
            max_exchanges: DEFAULT_MAX_EXCHANGES,
            timeout: DEFAULT_TIMEOUT,
            capture_body: false,
        };
        for (key, v) in &top {
            match key.as_str() {
                "filter" => spec.filter = parse_filter(v)?,
                "max_exchanges" => {
                    spec.max_exchanges = match v.as_u64() {
                        Some(n @ 1..) if n as usize <= MAX_EXCHANGES => n as usize,
                        _ => return Err(format!("max_exchanges: expected a whole number 1-{MAX_EXCHANGES}, got {v}")),
                    }
                }
                "timeout" => spec.timeout = parse_timeout(v)?,
                "capture_body" => {
                    spec.capture_body =
                        v.as_bool().ok_or_else(|| format!("capture_body: expected true or false, got {v}"))?
                }
                other => return Err(format!("unknown field {other:?} (expected one of {SESSION_KEYS})")),
            }
        }
        Ok(spec)
    }

    /// As `GET` shows it: the filter, the limits, the timeout in the config's duration syntax.
    pub fn to_json(&self) -> Value {
        json!({
            "filter": self.filter.to_json(),
            "max_exchanges": self.max_exchanges,
            "timeout": waygate_config::format_duration(self.timeout),
            "capture_body": self.capture_body,
        })
    }
}

fn parse_timeout(v: &Value) -> Result<Duration, String> {
    let Some(text) = v.as_str() else { return Err(format!("timeout: expected a duration like \"10m\", got {v}")) };
    let d = waygate_config::parse_duration(text).map_err(|e| format!("timeout: {e}"))?;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) {
        return Err(format!("timeout: {text:?} is out of range: 1s to 1h"));
    }
    Ok(d)
}

fn parse_filter(v: &Value) -> Result<Filter, String> {
    let Value::Object(map) = v else { return Err(format!("filter: expected an object, got {v}")) };
    let mut f = Filter::default();
    let text = |key: &str, v: &Value| match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("filter.{key}: expected a non-empty string, got {v}")),
    };
    for (key, v) in map {
        match key.as_str() {
            "path_prefix" => {
                let p = text(key, v)?;
                if !p.starts_with('/') {
                    return Err(format!("filter.path_prefix: {p:?} must start with /"));
                }
                f.path_prefix = Some(p);
            }
            "method" => {
                let m = text(key, v)?;
                if http::Method::from_bytes(m.as_bytes()).is_err() {
                    return Err(format!("filter.method: {m:?} is not a method"));
                }
                f.method = Some(m.to_ascii_uppercase());
            }
            "header" => f.header = Some(parse_header(v)?),
            "target_group" => f.target_group = Some(text(key, v)?),
            "status" => f.status = Some(StatusFilter::parse(v).map_err(|e| format!("filter.status: {e}"))?),
            "cause" => {
                let c = text(key, v)?;
                f.cause =
                    Some(c.parse().map_err(|_| {
                        format!("filter.cause: {c:?} is not a cause of the catalogue (docs/FAULTS.md)")
                    })?);
            }
            "client_ip" => {
                let ip = text(key, v)?;
                f.client_ip = Some(ip.parse().map_err(|_| format!("filter.client_ip: {ip:?} is not an IP address"))?);
            }
            other => return Err(format!("filter: unknown field {other:?} (expected one of {FILTER_KEYS})")),
        }
    }
    Ok(f)
}

fn parse_header(v: &Value) -> Result<(HeaderName, String), String> {
    let Value::Object(map) = v else {
        return Err(format!("filter.header: expected {{\"name\": ..., \"value\": ...}}, got {v}"));
    };
    if let Some(other) = map.keys().find(|k| !matches!(k.as_str(), "name" | "value")) {
        return Err(format!("filter.header: unknown field {other:?} (expected name, value)"));
    }
    let name = match map.get("name").and_then(Value::as_str) {
        Some(n) => HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("filter.header.name: {n:?} is not a header name"))?,
        None => return Err("filter.header.name: missing (a header name)".into()),
    };
    let value = match map.get("value") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("filter.header.value: missing (the header's exact value, a string)".into()),
    };
    Ok((name, value))
}
