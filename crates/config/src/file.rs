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
    #[serde(default)]
    pub alert: Vec<Spanned<Alert>>,
    pub connection_log: Option<ConnectionLog>,
    pub tracing: Option<Tracing>,
}

/// `[admin]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [admin] table")]
pub struct Admin {
    pub bind: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub flight_recorder: Option<Spanned<i64>>,
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

/// `tls = { cert, key }` or `[listener.tls]` with `certificates`, `policy` and `mutual_authentication`.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { cert = \"cert.pem\", key = \"key.pem\" } or { certificates = [{ cert = \"a.pem\", key = \"a.key\" }] }"
)]
pub struct ListenerTls {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub certificates: Option<Spanned<Vec<Spanned<CertificateFiles>>>>,
    pub policy: Option<Spanned<String>>,
    pub mutual_authentication: Option<Spanned<MutualAuthentication>>,
}

/// An entry of `certificates`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { cert = \"a.pem\", key = \"a.key\" }")]
pub struct CertificateFiles {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// `mutual_authentication = { mode, trust_store, ignore_client_certificate_expiry }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { mode = \"verify\", trust_store = \"clients-ca.pem\" }")]
pub struct MutualAuthentication {
    pub mode: Spanned<MtlsMode>,
    pub trust_store: Option<Spanned<String>>,
    pub ignore_client_certificate_expiry: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtlsMode {
    Off,
    Verify,
    Passthrough,
}

/// `[connection_log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [connection_log] table")]
pub struct ConnectionLog {
    pub dir: Option<Spanned<String>>,
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
    pub protocol_version: Option<Spanned<ProtocolVersion>>,
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
pub enum ProtocolVersion {
    Http1,
    Http2,
    Grpc,
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

/// `function = { name, endpoint, region, qualifier, multi_value_headers, profile }` on a lambda target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { name = \"my-fn\", region = \"us-east-1\" }")]
pub struct Function {
    pub name: Spanned<String>,
    pub endpoint: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub qualifier: Option<Spanned<String>>,
    pub multi_value_headers: Option<bool>,
    pub profile: Option<Spanned<String>>,
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

/// `[[alert]]`: a rule over finished exchanges (INTERFACE.md, "Alerts").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[alert]] table")]
pub struct Alert {
    pub name: Option<Spanned<String>>,
    /// A built-in rule to start from (`gateway-5xx-ratio`, `target-cause-spike`); keys written beside it win.
    pub preset: Option<Spanned<String>>,
    pub when: Option<Spanned<AlertWhen>>,
    pub threshold: Option<Spanned<i64>>,
    pub ratio: Option<Spanned<f64>>,
    pub min_requests: Option<Spanned<i64>>,
    pub resolve_below: Option<Spanned<f64>>,
    pub window: Option<Spanned<DurationText>>,
    pub webhook: Option<Spanned<String>>,
    pub webhook_format: Option<Spanned<WebhookFormat>>,
    pub webhook_timeout: Option<Spanned<DurationText>>,
    pub webhook_retries: Option<Spanned<i64>>,
    pub webhook_ca: Option<Spanned<String>>,
    pub runbook: Option<Spanned<String>>,
}

/// `when = { cause, status, source, target_group, listener, elb_only, target_only }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { cause = [\"TargetConnectionRefused\"], target_group = \"api\" } or { status = \"5xx\", elb_only = true }"
)]
pub struct AlertWhen {
    pub cause: Option<Spanned<Names>>,
    pub status: Option<Spanned<StatusText>>,
    pub source: Option<Spanned<CauseSource>>,
    pub target_group: Option<Spanned<String>>,
    pub listener: Option<Spanned<String>>,
    pub elb_only: Option<bool>,
    pub target_only: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseSource {
    Client,
    Gateway,
    Target,
    Function,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    Waygate,
    Slack,
}

/// One name or a list of names (`cause = "X"` or `cause = ["X", "Y"]`); each keeps its span when listed.
#[derive(Debug, Clone, Default)]
pub struct Names(pub Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;

        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cause name or a list of cause names")
            }

            // A lone string has no span of its own here: validation uses the key's.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names(vec![Spanned::new(0..0, v.to_owned())]))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(n) = seq.next_element::<Spanned<String>>()? {
                    names.push(n);
                }
                Ok(Names(names))
            }
        }

        deserializer.deserialize_any(NamesVisitor)
    }
}

/// A status match as written: `"5xx"`, `"502"` or `502`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText(pub String);

impl<'de> Deserialize<'de> for StatusText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;

        impl Visitor<'_> for StatusVisitor {
            type Value = StatusText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status class like \"5xx\" or a status code like \"502\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusText, E> {
                Ok(StatusText(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusText, E> {
                Ok(StatusText(v.to_string()))
            }
        }

        deserializer.deserialize_any(StatusVisitor)
    }
}

/// `[tracing]`: OpenTelemetry export (INTERFACE.md, "Trace sessions, flight recorder, explain").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [tracing] table")]
pub struct Tracing {
    pub otlp_endpoint: Spanned<String>,
    pub sample_ratio: Option<Spanned<f64>>,
    pub service_name: Option<Spanned<String>>,
    /// Header name -> value, sent with every export request (a collector's API key).
    pub headers: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    pub ca: Option<Spanned<String>>,
    pub max_queue: Option<Spanned<i64>>,
    pub max_batch: Option<Spanned<i64>>,
    pub batch_delay: Option<Spanned<DurationText>>,
    pub export_timeout: Option<Spanned<DurationText>>,
}
