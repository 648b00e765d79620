//! Every ranged value: the lowest and highest accepted, and one outside on each side with its location.

mod common;

use common::{LISTENER, ok, one};

fn listener(key_value: &str) -> String {
    format!("{LISTENER}{key_value}\n")
}

fn group(key_value: &str) -> String {
    format!("{LISTENER}[[target_group]]\nname = \"g\"\n{key_value}\n")
}

fn health(key_value: &str) -> String {
    format!("{LISTENER}[[target_group]]\nname = \"g\"\n[target_group.health_check]\n{key_value}\n")
}

#[test]
fn listener_timeouts() {
    one(
        &listener("idle_timeout = \"0s\""),
        3,
        16,
        r#"listener "listener-1": idle_timeout "0s" out of range (1s to 4000s)"#,
    );
    one(&listener("idle_timeout = \"4001s\""), 3, 16, "out of range (1s to 4000s)");
    ok(&listener("idle_timeout = \"1s\""));
    ok(&listener("idle_timeout = \"4000s\""));
    one(&listener("client_keep_alive = \"59s\""), 3, 21, "client_keep_alive \"59s\" out of range (60s to 604800s)");
    one(&listener("client_keep_alive = \"7d\""), 3, 21, "unknown unit \"d\"");
    ok(&listener("client_keep_alive = \"168h\""));
    one(&listener("request_header_timeout = \"500ms\""), 3, 26, "out of range (1s to 4000s)");
}

#[test]
fn rule_priority_and_status() {
    let rule = |p: &str, s: &str| {
        format!("{LISTENER}[[listener.rule]]\npriority = {p}\nfixed_response = {{ status = {s} }}\n")
    };
    one(&rule("0", "200"), 4, 12, "rule priority 0 out of range (1 to 50000)");
    one(&rule("50001", "200"), 4, 12, "out of range (1 to 50000)");
    one(&rule("-3", "200"), 4, 12, "out of range (1 to 50000)");
    one(&rule("1", "199"), 5, 29, "rule priority 1: fixed_response status 199 out of range (200 to 599)");
    one(&rule("1", "600"), 5, 29, "out of range (200 to 599)");
    ok(&rule("1", "200"));
    ok(&rule("50000", "599"));
    one(&listener("default_fixed_response = { status = 99999999999 }"), 3, 37, "default_fixed_response status");
}

#[test]
fn target_group_values() {
    one(&group("deregistration_delay = \"3601s\""), 5, 24, "deregistration_delay \"3601s\" out of range (0s to 3600s)");
    ok(&group("deregistration_delay = \"0s\""));
    one(&group("retries = 6"), 5, 11, r#"target_group "g": retries 6 out of range (0 to 5)"#);
    one(&group("retries = -1"), 5, 11, "out of range (0 to 5)");
    one(
        &group("targets = [{ address = \"a:1\", weight = 1000 }]"),
        5,
        40,
        "target weight 1000 out of range (0 to 999)",
    );
    ok(&group("targets = [{ address = \"a:1\", weight = 0 }, { address = \"b:1\", weight = 999 }]"));
    one(&group("slow_start = \"29s\""), 5, 14, "slow_start \"29s\" out of range (0s or 30s to 900s)");
    one(&group("slow_start = \"901s\""), 5, 14, "out of range (0s or 30s to 900s)");
    ok(&group("slow_start = \"0s\""));
    one(&group("connect_timeout = \"0ms\""), 5, 19, "connect_timeout \"0ms\" out of range (1ms to 4000s)");
    one(&group("tls_handshake_timeout = \"4001s\""), 5, 25, "out of range (1ms to 4000s)");
    one(&group("response_timeout = \"2h\""), 5, 20, "out of range (1ms to 4000s)");
    ok(&group("connect_timeout = \"1ms\"\nresponse_timeout = \"4000s\""));
    one(&group("pool_idle_timeout = \"999ms\""), 5, 21, "pool_idle_timeout \"999ms\" out of range (1s to 4000s)");
}

#[test]
fn health_check_values() {
    one(
        &health("interval = \"4s\""),
        6,
        12,
        r#"target_group "g": health_check: interval "4s" out of range (5s to 300s)"#,
    );
    one(&health("interval = \"301s\""), 6, 12, "out of range (5s to 300s)");
    one(&health("timeout = \"1s\""), 6, 11, "timeout \"1s\" out of range (2s to 120s)");
    one(&health("timeout = \"121s\"\ninterval = \"300s\""), 6, 11, "out of range (2s to 120s)");
    one(&health("interval = \"10s\"\ntimeout = \"10s\""), 7, 11, "timeout (10s) must be less than interval (10s)");
    one(&health("interval = \"5s\""), 6, 12, "timeout (5s) must be less than interval (5s)");
    one(&health("healthy_threshold = 1"), 6, 21, "healthy_threshold 1 out of range (2 to 10)");
    one(&health("unhealthy_threshold = 11"), 6, 23, "unhealthy_threshold 11 out of range (2 to 10)");
    one(&health("port = 0"), 6, 8, "port 0 out of range (1 to 65535)");
    one(&health("path = \"health\""), 6, 8, "path \"health\" must start with '/'");
    one(
        &health("matcher = \"300-299\""),
        6,
        11,
        "matcher \"300-299\": range 300-299 has its low end above its high end",
    );
    one(&health("matcher = \"200,500\""), 6, 11, "code 500 is outside 200-499");
    one(&health("matcher = \"ok\""), 6, 11, "\"ok\" is not a status code");
    let config = ok(&health(
        "interval = \"300s\"\ntimeout = \"120s\"\nhealthy_threshold = 10\nunhealthy_threshold = 2\nmatcher = \"200-499\"",
    ));
    assert_eq!(config.target_groups[0].health_check.matcher, vec![(200, 499)]);
}

#[test]
fn flight_recorder_size() {
    let admin = |v: &str| format!("[admin]\nflight_recorder = {v}\n{LISTENER}");
    one(&admin("-1"), 2, 19, "[admin]: flight_recorder -1 out of range (0 to 100000)");
    one(&admin("100001"), 2, 19, "[admin]: flight_recorder 100001 out of range (0 to 100000)");
    ok(&admin("0"));
    ok(&admin("100000"));
    let c = waygate_config::parse(&admin("5"), std::path::Path::new("w.toml")).unwrap();
    assert_eq!(c.admin.flight_recorder, 5);
}

#[test]
fn protocol_versions_and_grpc_health_checks() {
    let grpc_health = |key_value: &str| {
        format!(
            "{LISTENER}[[target_group]]\nname = \"g\"\nprotocol_version = \"grpc\"\n\
             [target_group.health_check]\n{key_value}\n"
        )
    };
    let config = ok(&group("protocol_version = \"grpc\""));
    let g = &config.target_groups[0];
    assert_eq!(g.protocol_version, waygate_config::ProtocolVersion::Grpc);
    assert_eq!((g.health_check.path.as_str(), &g.health_check.matcher[..]), ("/AWS.ALB/healthcheck", &[(12, 12)][..]));
    assert!(g.health_check.grpc);
    assert!(!ok(&group("protocol_version = \"http2\"")).target_groups[0].health_check.grpc);
    ok(&grpc_health("matcher = \"0-99\""));
    one(&grpc_health("matcher = \"200\""), 7, 11, "matcher \"200\": code 200 is outside 0-99");
    one(&health("matcher = \"12\""), 6, 11, "matcher \"12\": code 12 is outside 200-499");
    one(&group("protocol_version = \"http3\""), 5, 20, "unknown variant `http3`");
    one(
        &group("protocol = \"lambda\"\nprotocol_version = \"http2\"\nfunction = { name = \"f\" }"),
        6,
        20,
        "protocol_version is for http and https groups, not \"lambda\"",
    );
}
