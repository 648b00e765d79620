//! The config file exactly as written: serde types mirroring the TOML keys of docs/INTERFACE.md. Nothing
//! here is checked beyond TOML types and key names (`deny_unknown_fields` everywhere); values that validation
//! must point at keep their byte span (`Spanned`). `validate` turns a [`File`] into the runtime model.
//!
//! [`File`] deserializes from a whole document with `toml::from_str`; `decode` builds it section by section
//! instead, so that one bad section does not hide the errors in the next.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_spanned::Spanned;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a TOML document")]
pub struct File {
    pub admin: Option<Admin>,
    pub access_log: Option<AccessLog>,
    pub errors: Option<Errors>,
    #[serde(default)]
    pub listener: Vec<Spanned<Listener>>,
    #[serde(default)]
    pub target_group: Vec<Spanned<TargetGroup>>,
}

/// `[admin]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [admin] table")]
pub struct Admin {
    pub bind: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
}

/// `[access_log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [access_log] table")]
pub struct AccessLog {
    pub dir: Option<Spanned<String>>,
    pub format: Option<LogFormat>,
    pub gzip: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Alb,
    Json,
}

/// `[errors]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [errors] table")]
pub struct Errors {
    pub profile: Option<Profile>,
    pub expose_details: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Alb,
    Apigee,
    Problem,
}

/// `[[listener]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[listener]] table")]
pub struct Listener {
    pub name: Option<Spanned<String>>,
    pub bind: Spanned<String>,
    pub protocol: Option<Spanned<ListenerProtocol>>,
    pub idle_timeout: Option<Spanned<DurationText>>,
    pub client_keep_alive: Option<Spanned<DurationText>>,
    pub request_header_timeout: Option<Spanned<DurationText>>,
    pub desync_mitigation: Option<DesyncMode>,
    pub default_target_group: Option<Spanned<String>>,
    pub default_fixed_response: Option<Spanned<FixedResponse>>,
    pub tls: Option<Spanned<ListenerTls>>,
    #[serde(default)]
    pub rule: Vec<Spanned<Rule>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Http,
    Https,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesyncMode {
    Monitor,
    Defensive,
    Strictest,
}

/// `tls = { cert, key }` on a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { cert = \"cert.pem\", key = \"key.pem\" }")]
pub struct ListenerTls {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// `default_fixed_response` / `fixed_response = { status, body, content_type }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { status = 404, body = \"...\" }")]
pub struct FixedResponse {
    pub status: Spanned<i64>,
    pub body: Option<String>,
    pub content_type: Option<Spanned<String>>,
}

/// `[[listener.rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[listener.rule]] table")]
pub struct Rule {
    pub priority: Spanned<i64>,
    pub host: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub target_group: Option<Spanned<String>>,
    pub fixed_response: Option<Spanned<FixedResponse>>,
}

/// `[[target_group]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[target_group]] table")]
pub struct TargetGroup {
    pub name: Spanned<String>,
    pub protocol: Option<Spanned<TargetProtocol>>,
    pub algorithm: Option<Spanned<Algorithm>>,
    #[serde(default)]
    pub targets: Vec<Spanned<Target>>,
    pub connect_timeout: Option<Spanned<DurationText>>,
    pub tls_handshake_timeout: Option<Spanned<DurationText>>,
    pub response_timeout: Option<Spanned<DurationText>>,
    pub pool_idle_timeout: Option<Spanned<DurationText>>,
    pub deregistration_delay: Option<Spanned<DurationText>>,
    pub retries: Option<Spanned<i64>>,
    pub retry_body_limit: Option<Spanned<i64>>,
    pub max_in_flight_requests: Option<Spanned<i64>>,
    pub fail_open: Option<bool>,
    pub slow_start: Option<Spanned<DurationText>>,
    pub tls: Option<Spanned<TargetTls>>,
    pub function: Option<Spanned<Function>>,
    pub health_check: Option<Spanned<HealthCheck>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetProtocol {
    Http,
    Https,
    Lambda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
    WeightedRandom,
}

/// One entry of `targets`: `"host:port"` or `{ address = "host:port", weight = N }`.
#[derive(Debug, Clone)]
pub enum Target {
    /// The address; its span is the entry's.
    Address(String),
    Weighted(WeightedTarget),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { address = \"host:port\", weight = 1 }")]
pub struct WeightedTarget {
    pub address: Spanned<String>,
    pub weight: Option<Spanned<i64>>,
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;

        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = Target;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target: \"host:port\" or { address = \"host:port\", weight = N }")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Target, E> {
                Ok(Target::Address(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Target, A::Error> {
                WeightedTarget::deserialize(de::value::MapAccessDeserializer::new(map)).map(Target::Weighted)
            }
        }

        deserializer.deserialize_any(TargetVisitor)
    }
}

/// `tls = { verify, ca, sni }` on a target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { verify = true, ca = \"ca.pem\", sni = \"name\" }")]
pub struct TargetTls {
    pub verify: Option<bool>,
    pub ca: Option<Spanned<String>>,
    pub sni: Option<Spanned<String>>,
}

/// `function = { name, endpoint, region }` on a lambda target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { name = \"my-fn\", region = \"us-east-1\" }")]
pub struct Function {
    pub name: Spanned<String>,
    pub endpoint: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
}

/// `[target_group.health_check]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [target_group.health_check] table")]
pub struct HealthCheck {
    pub enabled: Option<bool>,
    pub protocol: Option<Spanned<HealthProtocol>>,
    pub path: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub interval: Option<Spanned<DurationText>>,
    pub timeout: Option<Spanned<DurationText>>,
    pub healthy_threshold: Option<Spanned<i64>>,
    pub unhealthy_threshold: Option<Spanned<i64>>,
    pub matcher: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
}

/// A duration as written (`"10s"`); parsed during validation so every bad one is reported. Its own type
/// only so that a number where a duration belongs gets a message showing the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"10s\" or \"500ms\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_owned()))
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}
