//! One test per class of configuration error: each asserts the exact line:col and the message.

mod common;

use common::{LISTENER, errors, ok, one};

#[test]
fn toml_syntax() {
    // An unterminated string is reported where the closing quote is missing.
    one("[[listener]]\nbind = \"127.0.0.1:8080\nname = \"x\"\n", 2, 23, "TOML syntax: invalid basic string");
    one("[[listener]]\nbind = 127.0.0.1:8080\n", 2, 13, "TOML syntax: invalid float");
}

/// A value or key holding line breaks (a multi-line string, an escaped key) is quoted escaped: each error is one
/// `FILE:LINE:COL` line (found by the config fuzz target: the message went on over several lines).
#[test]
fn quoted_text_stays_on_one_line() {
    let found = errors(&format!("[errors]\nprofile = \"\"\"igee\"\nexpose = 1\n\"\"\"\n{LISTENER}"));
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(shown.iter().all(|e| !e.contains('\n')), "{shown:?}");
    assert!(shown.iter().any(|e| e.contains("unknown variant `igee\"\\nexpose = 1\\n`")), "{shown:?}");
    let found = errors(&format!("{LISTENER}\"bi\\nnd\" = 1\n"));
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(shown.iter().any(|e| e.contains("unknown key `bi\\nnd`")), "{shown:?}");
}

#[test]
fn duplicate_key_is_named() {
    one(&format!("{LISTENER}bind = \"127.0.0.1:8081\"\n"), 3, 1, "duplicate key \"bind\"");
}

#[test]
fn unknown_keys_point_at_the_key() {
    one(
        &format!("{LISTENER}bindd = \"x\"\n"),
        3,
        1,
        "listener \"listener-1\": unknown key `bindd`, expected one of `name`, `bind`",
    );
    one(&format!("{LISTENER}[adminn]\n"), 3, 2, "unknown key `adminn`, expected one of `admin`");
    one(&format!("[admin]\n  tokenfile = \"t\"\n{LISTENER}"), 2, 3, "[admin]: unknown key `tokenfile`");
    one(
        &format!("{LISTENER}protocol = \"https\"\ntls = {{ cert = \"c\", key = \"k\", chain = \"x\" }}\n"),
        4,
        32,
        "unknown key `chain`, expected one of `cert`, `key`, `certificates`, `policy`, `mutual_authentication`",
    );
    one(
        &format!("{LISTENER}[[listener.rule]]\npriority = 1\nhosts = \"a\"\nfixed_response = {{ status = 200 }}\n"),
        5,
        1,
        "listener \"listener-1\": rule priority 1: unknown key `hosts`",
    );
    one(
        &format!("{LISTENER}[[target_group]]\nname = \"g\"\ntargets = [{{ address = \"a:1\", wieght = 2 }}]\n"),
        5,
        31,
        "target_group \"g\": unknown key `wieght`",
    );
    one(
        &format!("{LISTENER}[[target_group]]\nname = \"g\"\n[target_group.health_check]\nintervall = \"5s\"\n"),
        6,
        1,
        "target_group \"g\": health_check: unknown key `intervall`",
    );
}

#[test]
fn wrong_types() {
    one(&format!("{LISTENER}[[target_group]]\nname = \"g\"\nretries = \"1\"\n"), 5, 11, "invalid type: string \"1\"");
    one(&format!("{LISTENER}idle_timeout = 60\n"), 3, 16, "expected a duration string with a unit");
    one(&format!("{LISTENER}protocol = \"htp\"\n"), 3, 12, "unknown variant `htp`, expected `http` or `https`");
    one(&format!("{LISTENER}[[target_group]]\nname = \"g\"\ntargets = [3000]\n"), 5, 12, "a target: \"host:port\"");
    one("[listener]\nbind = \"127.0.0.1:8080\"\n", 1, 1, "`listener` must be an array of tables");
}

#[test]
fn missing_required_keys() {
    one("[[listener]]\nname = \"a\"\n", 1, 1, "listener \"a\": missing key `bind`");
    one(&format!("{LISTENER}[[target_group]]\nprotocol = \"http\"\n"), 3, 1, "target_group #1: missing key `name`");
    one(&format!("{LISTENER}[[listener.rule]]\ntarget_group = \"g\"\n"), 3, 1, "rule #1: missing key `priority`");
    one(
        &format!("{LISTENER}[[listener.rule]]\npriority = 5\n"),
        3,
        1,
        "rule priority 5: needs an action: target_group or fixed_response",
    );
}

#[test]
fn no_listener() {
    one("", 1, 1, "at least one listener is required");
    one("[admin]\nbind = \"127.0.0.1:9000\"\n", 1, 1, "no [[listener]] is defined");
}

#[test]
fn bad_durations() {
    one(&format!("{LISTENER}idle_timeout = \"60\"\n"), 3, 16, "idle_timeout: duration \"60\" needs a unit");
    one(&format!("{LISTENER}client_keep_alive = \"1 h\"\n"), 3, 21, "client_keep_alive: invalid duration \"1 h\"");
    one(&format!("{LISTENER}[[target_group]]\nname = \"g\"\nconnect_timeout = \"5sec\"\n"), 5, 19, "unknown unit");
}

#[test]
fn bad_binds() {
    one("[[listener]]\nbind = \"localhost:8080\"\n", 2, 8, "bind \"localhost:8080\" is not a valid bind address");
    one(&format!("[admin]\nbind = \"127.0.0.1\"\n{LISTENER}"), 2, 8, "[admin]: bind \"127.0.0.1\" is not a valid");
    one(
        &format!("[admin]\nbind = \"0.0.0.0:9901\"\n{LISTENER}"),
        2,
        8,
        "[admin]: bind 0.0.0.0:9901 is not a loopback address, so token_file is required",
    );
    ok(&format!("[admin]\nbind = \"0.0.0.0:9901\"\ntoken_file = \"t\"\n{LISTENER}"));
}

#[test]
fn bad_target_addresses() {
    let group = |targets: &str| format!("{LISTENER}[[target_group]]\nname = \"g\"\ntargets = {targets}\n");
    one(&group("[\"127.0.0.1:0\"]"), 5, 12, "target \"127.0.0.1:0\" is invalid: port \"0\" is not 1 to 65535");
    one(&group("[\"ok:1\", \"::1:80\"]"), 5, 20, "write IPv6 addresses in brackets");
    one(&group("[{ address = \"a b:80\" }]"), 5, 24, "\"a b\" is not a valid host name");
    one(&group("[\"a:1\", \"A:1\"]"), 5, 19, "target \"A:1\" is listed twice");
}

#[test]
fn ipv6_and_named_targets() {
    let config = ok(&format!(
        "{LISTENER}[[target_group]]\nname = \"g\"\ntargets = [\"[::1]:80\", \"[2001:db8::7]:8080\", \"db.internal:5432\"]\n"
    ));
    let targets = &config.target_groups[0].targets;
    assert_eq!(targets[0].host, "::1");
    assert_eq!(targets[0].socket_addr(), Some("[::1]:80".parse().unwrap()));
    assert_eq!(targets[1].authority(), "[2001:db8::7]:8080");
    assert_eq!(targets[2].socket_addr(), None);
    assert_eq!(targets[2].authority(), "db.internal:5432");
}

#[test]
fn duplicate_listeners() {
    one(
        "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:2\"\n",
        5,
        8,
        "listener \"a\": another listener has this name",
    );
    one(
        "[[listener]]\nname = \"a\"\nbind = \"0.0.0.0:80\"\n[[listener]]\nname = \"b\"\nbind = \"127.0.0.1:80\"\n",
        6,
        8,
        "listener \"b\": bind 127.0.0.1:80 conflicts with 0.0.0.0:80 of listener \"a\"",
    );
    one("[[listener]]\nbind = \"127.0.0.1:9901\"\n", 2, 8, "conflicts with 127.0.0.1:9901 of [admin]");
    // Port 0 asks for any free port: never a conflict.
    ok("[[listener]]\nbind = \"127.0.0.1:0\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n");
}

#[test]
fn duplicate_target_groups() {
    one(
        &format!("{LISTENER}[[target_group]]\nname = \"g\"\n[[target_group]]\nname = \"g\"\n"),
        6,
        8,
        "target_group \"g\": another target group has this name",
    );
}

#[test]
fn duplicate_rule_priority() {
    one(
        &format!(
            "{LISTENER}[[listener.rule]]\npriority = 7\nfixed_response = {{ status = 200 }}\n\
             [[listener.rule]]\npriority = 7\nfixed_response = {{ status = 201 }}\n"
        ),
        7,
        12,
        "listener \"listener-1\": rule priority 7 is used by another rule of this listener",
    );
}

#[test]
fn undefined_target_groups() {
    one(&format!("{LISTENER}default_target_group = \"nope\"\n"), 3, 24, "default_target_group \"nope\" is not defined");
    one(
        &format!("{LISTENER}[[listener.rule]]\npriority = 10\ntarget_group = \"api\"\n"),
        5,
        16,
        "rule priority 10: target_group \"api\" is not defined",
    );
}

#[test]
fn a_group_with_its_own_error_is_not_also_undefined() {
    one(
        &format!("{LISTENER}default_target_group = \"g\"\n[[target_group]]\nname = \"g\"\nretries = true\n"),
        6,
        11,
        "invalid type: boolean `true`",
    );
}

#[test]
fn conflicting_actions() {
    one(
        &format!("{LISTENER}default_target_group = \"g\"\ndefault_fixed_response = {{ status = 404 }}\n"),
        4,
        26,
        "set default_target_group or default_fixed_response, not both",
    );
    one(
        &format!(
            "{LISTENER}[[listener.rule]]\npriority = 1\ntarget_group = \"g\"\nfixed_response = {{ status = 200 }}\n[[target_group]]\nname = \"g\"\n"
        ),
        6,
        18,
        "rule priority 1: set target_group or fixed_response, not both",
    );
    let config = ok(LISTENER);
    assert_eq!(config.listeners[0].default_action, None);
}

#[test]
fn listener_tls_matches_protocol() {
    one(&format!("{LISTENER}protocol = \"https\"\n"), 3, 12, "protocol \"https\" needs tls");
    one(&format!("{LISTENER}tls = {{ cert = \"c\", key = \"k\" }}\n"), 3, 7, "tls is set but protocol is \"http\"");
}

#[test]
fn target_group_protocol_consistency() {
    let group = |body: &str| format!("{LISTENER}[[target_group]]\nname = \"g\"\n{body}\n");
    one(&group("protocol = \"lambda\""), 5, 12, "protocol \"lambda\" needs function");
    one(&group("function = { name = \"f\" }"), 5, 12, "function is set but protocol is not \"lambda\"");
    one(&group("tls = { verify = false }"), 5, 7, "tls is set but protocol is not \"https\"");
    one(
        &group("protocol = \"lambda\"\nfunction = { name = \"f\" }\ntargets = [\"a:1\"]"),
        7,
        12,
        "a \"lambda\" group takes no targets",
    );
    let config = ok(&group("protocol = \"lambda\"\nfunction = { name = \"f\", region = \"eu-west-1\" }"));
    let function = config.target_groups[0].function.as_ref().unwrap();
    assert_eq!(function.endpoint, "https://lambda.eu-west-1.amazonaws.com");
    one(&group("protocol = \"lambda\"\nfunction = { name = \"f\", endpoint = \"ftp://x\" }"), 6, 37, "not an http://");
}

#[test]
fn function_options_and_lambda_health_checks() {
    let group = |body: &str| format!("{LISTENER}[[target_group]]\nname = \"g\"\nprotocol = \"lambda\"\n{body}\n");
    let config =
        ok(&group("function = { name = \"f\", qualifier = \"live\", multi_value_headers = true, profile = \"dev\" }"));
    let g = &config.target_groups[0];
    let function = g.function.as_ref().unwrap();
    assert_eq!(function.qualifier.as_deref(), Some("live"));
    assert!(function.multi_value_headers);
    assert_eq!(function.profile.as_deref(), Some("dev"));
    assert!(!g.health_check.enabled, "ALB: a lambda group's health checks are off by default");
    assert!(ok(&group("function = { name = \"f\", qualifier = \"$LATEST\" }")).target_groups[0].function.is_some());
    one(&group("function = { name = \"f\", qualifier = \"a/b\" }"), 6, 38, "function.qualifier \"a/b\" is not");
    one(&group("function = { name = \"f\", profile = \"\" }"), 6, 36, "function.profile must not be empty");
    let on = ok(&group("function = { name = \"f\" }\n[target_group.health_check]\nenabled = true\npath = \"/hc\""));
    assert!(on.target_groups[0].health_check.enabled);
    one(
        &group("function = { name = \"f\" }\n[target_group.health_check]\nenabled = true\nport = 80"),
        9,
        8,
        "health_check.port does not apply to a \"lambda\" group",
    );
    let tls = "tls = { ca = \"ca.pem\", sni = \"localhost\" }";
    assert!(
        ok(&group(&format!("function = {{ name = \"f\", endpoint = \"https://h:1\" }}\n{tls}"))).target_groups[0]
            .tls
            .ca
            .is_some()
    );
    one(&group(&format!("function = {{ name = \"f\", endpoint = \"http://h:1\" }}\n{tls}")), 7, 7, "is not https://");
    let off = ok(&group("function = { name = \"f\" }\n[target_group.health_check]\nenabled = false"));
    assert!(!off.target_groups[0].health_check.enabled);
}

#[test]
fn slow_start_only_with_round_robin() {
    let group = |body: &str| format!("{LISTENER}[[target_group]]\nname = \"g\"\n{body}\n");
    one(&group("algorithm = \"weighted_random\"\nslow_start = \"60s\""), 6, 14, "slow_start works only with");
    assert_eq!(ok(&group("slow_start = \"60s\"")).target_groups[0].slow_start.as_secs(), 60);
}

#[test]
fn names_are_label_safe() {
    one("[[listener]]\nname = \"my listener\"\nbind = \"127.0.0.1:1\"\n", 2, 8, "name \"my listener\" is invalid");
}

#[test]
fn bad_rule_conditions() {
    let rule = |cond: &str| {
        format!("{LISTENER}[[listener.rule]]\npriority = 3\n{cond}\nfixed_response = {{ status = 200 }}\n")
    };
    one(&rule("path = \"v1/*\""), 5, 8, "path \"v1/*\" is invalid");
    one(&rule("host = \"example.com:8080\""), 5, 8, "host \"example.com:8080\" is invalid");
    let config = ok(&rule("host = \"*.Example.com\"\npath = \"/a?c/*\""));
    assert_eq!(config.listeners[0].rules[0].host.as_deref(), Some("*.Example.com"));
}
