//! The example configuration of docs/INTERFACE.md parses to the expected model: once verbatim (where its
//! rule names a target group the example does not define), and once with every commented key in use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use waygate_config::*;

/// INTERFACE.md's example, verbatim.
const VERBATIM: &str = r#"[admin]
bind = "127.0.0.1:9901"          # admin API, /metrics, /live, /ready, dashboard
# token_file = "admin.token"     # bearer token; required when bind is not a loopback address

[access_log]
dir = "logs"                     # ALB-named files, rotated every 5 minutes; no dir = no access log
format = "alb"                   # alb | json

[errors]
profile = "alb"                  # alb | apigee | problem
expose_details = false

[[listener]]
name = "public"
bind = "127.0.0.1:8080"
protocol = "http"                # http | https (ALPN h2 and http/1.1); h2c prior knowledge on http
idle_timeout = "60s"
client_keep_alive = "3600s"
desync_mitigation = "defensive"  # monitor | defensive | strictest
default_target_group = "app"     # or: default_fixed_response = { status = 404, body = "..." }
# tls = { cert = "cert.pem", key = "key.pem" }

[[listener.rule]]
priority = 10
host = "api.example.com"         # optional; * wildcards
path = "/v1/*"                   # optional; * and ? wildcards like ALB
target_group = "api"

[[target_group]]
name = "app"
protocol = "http"                # http | https | lambda
algorithm = "round_robin"        # round_robin | least_outstanding_requests | weighted_random
targets = ["127.0.0.1:3000", { address = "127.0.0.1:3001", weight = 2 }]
connect_timeout = "10s"
tls_handshake_timeout = "10s"
response_timeout = "60s"         # request sent -> response head received
pool_idle_timeout = "60s"        # how long an idle upstream connection is kept
deregistration_delay = "300s"
retries = 1                      # extra attempts, only where FAULTS.md calls it safe
fail_open = true
# tls = { verify = true, ca = "ca.pem", sni = "backend.internal" }
# function = { name = "my-fn", endpoint = "http://127.0.0.1:9001", region = "us-east-1" }   # protocol = "lambda"

[target_group.health_check]
enabled = true
protocol = "http"                # http | https | tcp
path = "/"
interval = "30s"
timeout = "5s"
healthy_threshold = 5
unhealthy_threshold = 2
matcher = "200"                  # e.g. "200-299,302"
"#;

/// The example with every commented key in use. The commented `tls` and `function` keys only make sense
/// with protocols `https` and `lambda`, so they go to a second listener and to the groups the rules name.
const FULL: &str = r#"[admin]
bind = "127.0.0.1:9901"
token_file = "admin.token"

[access_log]
dir = "logs"
format = "json"
gzip = true

[errors]
profile = "problem"
expose_details = true

[[listener]]
name = "public"
bind = "127.0.0.1:8080"
protocol = "http"
idle_timeout = "60s"
client_keep_alive = "3600s"
request_header_timeout = "10s"
desync_mitigation = "defensive"
default_target_group = "app"

[[listener.rule]]
priority = 20
path = "/fn/*"
target_group = "fn"

[[listener.rule]]
priority = 10
host = "api.example.com"
path = "/v1/*"
target_group = "api"

[[listener]]
name = "secure"
bind = "[::1]:8443"
protocol = "https"
desync_mitigation = "strictest"
default_fixed_response = { status = 404, body = "nothing here", content_type = "text/html" }
tls = { cert = "cert.pem", key = "/etc/waygate/key.pem" }

[[listener.rule]]
priority = 1
host = "*.example.com"
fixed_response = { status = 503 }

[[target_group]]
name = "app"
protocol = "http"
algorithm = "round_robin"
targets = ["127.0.0.1:3000", { address = "127.0.0.1:3001", weight = 2 }]
connect_timeout = "10s"
tls_handshake_timeout = "10s"
response_timeout = "60s"
pool_idle_timeout = "60s"
deregistration_delay = "300s"
retries = 1
fail_open = true

[target_group.health_check]
enabled = true
protocol = "http"
path = "/"
interval = "30s"
timeout = "5s"
healthy_threshold = 5
unhealthy_threshold = 2
matcher = "200"

[[target_group]]
name = "api"
protocol = "https"
algorithm = "least_outstanding_requests"
targets = ["[::1]:8443", "backend.internal:443"]
connect_timeout = "500ms"
response_timeout = "1m30s"
deregistration_delay = "0s"
retries = 0
fail_open = false
tls = { verify = true, ca = "ca.pem", sni = "backend.internal" }

[target_group.health_check]
protocol = "tcp"
port = 9000
interval = "10s"
timeout = "2s"
healthy_threshold = 3
unhealthy_threshold = 10
matcher = "200-299,302"

[[target_group]]
name = "fn"
protocol = "lambda"
function = { name = "my-fn", endpoint = "http://127.0.0.1:9001", region = "us-east-1" }
"#;

fn origin() -> PathBuf {
    PathBuf::from("/etc/waygate/waygate.toml")
}

#[test]
fn verbatim_example_only_misses_the_api_group() {
    let errors = parse(VERBATIM, &origin()).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let e = &errors.0[0];
    assert_eq!((e.line, e.col), (27, 16));
    assert_eq!(e.message, r#"listener "public": rule priority 10: target_group "api" is not defined"#);
    assert_eq!(
        errors.to_string(),
        r#"/etc/waygate/waygate.toml:27:16: listener "public": rule priority 10: target_group "api" is not defined"#
    );
}

#[test]
fn verbatim_example_with_the_api_group_parses() {
    let text = format!("{VERBATIM}\n[[target_group]]\nname = \"api\"\n");
    let config = parse(&text, &origin()).unwrap();
    assert_eq!(config.listeners[0].rules[0].action, Action::Forward("api".into()));
    assert_eq!(config.target_groups.len(), 2);
}

fn health(protocol: HealthProtocol) -> HealthCheck {
    HealthCheck {
        enabled: true,
        protocol,
        path: "/".into(),
        port: None,
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        healthy_threshold: 5,
        unhealthy_threshold: 2,
        matcher: vec![(200, 200)],
        grpc: false,
    }
}

fn target(host: &str, port: u16, weight: u32) -> TargetSpec {
    TargetSpec { host: host.into(), port, weight }
}

#[test]
fn full_example_parses_to_the_expected_model() {
    let config = parse(FULL, &origin()).unwrap_or_else(|e| panic!("{e}"));
    let secs = Duration::from_secs;
    let dir = Path::new("/etc/waygate");
    let expected = Config {
        admin: Admin {
            bind: "127.0.0.1:9901".parse().unwrap(),
            token_file: Some(dir.join("admin.token")),
            flight_recorder: 1000,
        },
        access_log: Some(AccessLog { dir: dir.join("logs"), format: LogFormat::Json, gzip: true }),
        errors: Errors { profile: ErrorProfile::Problem, expose_details: true },
        listeners: vec![
            Listener {
                name: "public".into(),
                bind: "127.0.0.1:8080".parse().unwrap(),
                protocol: ListenerProtocol::Http,
                tls: None,
                idle_timeout: secs(60),
                client_keep_alive: secs(3600),
                request_header_timeout: secs(10),
                desync_mitigation: DesyncMode::Defensive,
                rules: vec![
                    Rule {
                        priority: 10,
                        host: Some("api.example.com".into()),
                        path: Some("/v1/*".into()),
                        action: Action::Forward("api".into()),
                    },
                    Rule { priority: 20, host: None, path: Some("/fn/*".into()), action: Action::Forward("fn".into()) },
                ],
                default_action: Some(Action::Forward("app".into())),
            },
            Listener {
                name: "secure".into(),
                bind: "[::1]:8443".parse().unwrap(),
                protocol: ListenerProtocol::Https,
                tls: Some(ListenerTls {
                    certificates: vec![CertificateFiles {
                        cert: dir.join("cert.pem"),
                        key: "/etc/waygate/key.pem".into(),
                    }],
                    policy: &tls_policy::POLICIES[0],
                    mutual_authentication: MutualAuthentication::Off,
                }),
                idle_timeout: secs(60),
                client_keep_alive: secs(3600),
                request_header_timeout: secs(60),
                desync_mitigation: DesyncMode::Strictest,
                rules: vec![Rule {
                    priority: 1,
                    host: Some("*.example.com".into()),
                    path: None,
                    action: Action::FixedResponse(FixedResponse {
                        status: 503,
                        body: String::new(),
                        content_type: "text/plain; charset=utf-8".into(),
                    }),
                }],
                default_action: Some(Action::FixedResponse(FixedResponse {
                    status: 404,
                    body: "nothing here".into(),
                    content_type: "text/html".into(),
                })),
            },
        ],
        target_groups: vec![
            TargetGroup {
                name: "app".into(),
                protocol: TargetProtocol::Http,
                protocol_version: ProtocolVersion::Http1,
                algorithm: Algorithm::RoundRobin,
                targets: vec![target("127.0.0.1", 3000, 1), target("127.0.0.1", 3001, 2)],
                connect_timeout: secs(10),
                tls_handshake_timeout: secs(10),
                response_timeout: secs(60),
                pool_idle_timeout: secs(60),
                deregistration_delay: secs(300),
                retries: 1,
                retry_body_limit: 65536,
                max_in_flight_requests: 0,
                fail_open: true,
                slow_start: Duration::ZERO,
                tls: TargetTls { verify: true, ca: None, sni: None },
                function: None,
                health_check: health(HealthProtocol::Http),
            },
            TargetGroup {
                name: "api".into(),
                protocol: TargetProtocol::Https,
                protocol_version: ProtocolVersion::Http1,
                algorithm: Algorithm::LeastOutstandingRequests,
                targets: vec![target("::1", 8443, 1), target("backend.internal", 443, 1)],
                connect_timeout: Duration::from_millis(500),
                tls_handshake_timeout: secs(10),
                response_timeout: secs(90),
                pool_idle_timeout: secs(60),
                deregistration_delay: Duration::ZERO,
                retries: 0,
                retry_body_limit: 65536,
                max_in_flight_requests: 0,
                fail_open: false,
                slow_start: Duration::ZERO,
                tls: TargetTls { verify: true, ca: Some(dir.join("ca.pem")), sni: Some("backend.internal".into()) },
                function: None,
                health_check: HealthCheck {
                    port: Some(9000),
                    interval: secs(10),
                    timeout: secs(2),
                    healthy_threshold: 3,
                    unhealthy_threshold: 10,
                    matcher: vec![(200, 299), (302, 302)],
                    ..health(HealthProtocol::Tcp)
                },
            },
            TargetGroup {
                name: "fn".into(),
                protocol: TargetProtocol::Lambda,
                protocol_version: ProtocolVersion::Http1,
                algorithm: Algorithm::RoundRobin,
                targets: vec![],
                connect_timeout: secs(10),
                tls_handshake_timeout: secs(10),
                response_timeout: secs(60),
                pool_idle_timeout: secs(60),
                deregistration_delay: secs(300),
                retries: 1,
                retry_body_limit: 65536,
                max_in_flight_requests: 0,
                fail_open: true,
                slow_start: Duration::ZERO,
                tls: TargetTls { verify: true, ca: None, sni: None },
                function: Some(Function {
                    name: "my-fn".into(),
                    endpoint: "http://127.0.0.1:9001".into(),
                    region: "us-east-1".into(),
                    qualifier: None,
                    multi_value_headers: false,
                    profile: None,
                }),
                health_check: HealthCheck { enabled: false, ..health(HealthProtocol::Http) },
            },
        ],
        alerts: vec![],
        connection_log: None,
        tracing: None,
    };
    assert_eq!(config, expected);
    assert_eq!(config.target_group("api").map(|g| g.targets[0].authority()), Some("[::1]:8443".into()));
}

#[test]
fn the_file_model_also_reads_a_whole_document() {
    let file: waygate_config::file::File = toml::from_str(FULL).unwrap();
    assert_eq!(file.listener.len(), 2);
    assert_eq!(file.listener[0].get_ref().rule.len(), 2);
    assert!(file.target_group[1].get_ref().health_check.is_some());
}
