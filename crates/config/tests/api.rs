//! The public API around validation: defaults, relative paths, collecting many errors, `load`, and
//! robustness against garbage.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{LISTENER, errors, ok};
use waygate_config::*;

#[test]
fn defaults_follow_alb() {
    let config = ok(&format!("{LISTENER}[[target_group]]\nname = \"g\"\n"));
    assert_eq!(
        config.admin,
        Admin { bind: "127.0.0.1:9901".parse().unwrap(), token_file: None, flight_recorder: 1000 }
    );
    assert_eq!(config.access_log, None);
    assert_eq!(config.errors, Errors { profile: ErrorProfile::Alb, expose_details: false });
    let l = &config.listeners[0];
    assert_eq!(l.name, "listener-1");
    assert_eq!(l.protocol, ListenerProtocol::Http);
    assert_eq!(l.tls, None);
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
    assert_eq!(l.client_keep_alive, Duration::from_secs(3600));
    assert_eq!(l.request_header_timeout, Duration::from_secs(60));
    assert_eq!(l.desync_mitigation, DesyncMode::Defensive);
    assert_eq!((l.rules.len(), &l.default_action), (0, &None));
    let g = &config.target_groups[0];
    assert_eq!((g.protocol, g.algorithm), (TargetProtocol::Http, Algorithm::RoundRobin));
    assert!(g.targets.is_empty());
    assert_eq!(g.connect_timeout, Duration::from_secs(10));
    assert_eq!(g.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(g.response_timeout, Duration::from_secs(60));
    assert_eq!(g.pool_idle_timeout, Duration::from_secs(60));
    assert_eq!(g.deregistration_delay, Duration::from_secs(300));
    assert_eq!((g.retries, g.fail_open, g.slow_start), (1, true, Duration::ZERO));
    assert_eq!(g.tls, TargetTls { verify: true, ca: None, sni: None });
    assert_eq!(g.function, None);
    let h = &g.health_check;
    assert!(h.enabled);
    assert_eq!((h.protocol, h.path.as_str(), h.port), (HealthProtocol::Http, "/", None));
    assert_eq!((h.interval, h.timeout), (Duration::from_secs(30), Duration::from_secs(5)));
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (5, 2));
    assert_eq!(h.matcher, vec![(200, 200)]);
}

#[test]
fn health_check_protocol_defaults_to_the_group_protocol() {
    let config = ok(&format!("{LISTENER}[[target_group]]\nname = \"g\"\nprotocol = \"https\"\n"));
    assert_eq!(config.target_groups[0].health_check.protocol, HealthProtocol::Https);
}

#[test]
fn access_log_without_dir_is_off() {
    assert_eq!(ok(&format!("[access_log]\nformat = \"json\"\n{LISTENER}")).access_log, None);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = format!(
        "[admin]\ntoken_file = \"secrets/admin.token\"\n[access_log]\ndir = \"/var/log/waygate\"\n{LISTENER}\
         protocol = \"https\"\ntls = {{ cert = \"c.pem\", key = \"../k.pem\" }}\n"
    );
    let config = parse(&text, Path::new("/srv/gw/waygate.toml")).unwrap();
    assert_eq!(config.admin.token_file, Some(PathBuf::from("/srv/gw/secrets/admin.token")));
    assert_eq!(config.access_log.unwrap().dir, PathBuf::from("/var/log/waygate"));
    let tls = config.listeners[0].tls.clone().unwrap();
    let first = &tls.certificates[0];
    assert_eq!((&first.cert, &first.key), (&"/srv/gw/c.pem".into(), &"/srv/gw/../k.pem".into()));
    // A bare file name: paths stay relative to the working directory, like the file itself.
    let config = parse(&text, Path::new("waygate.toml")).unwrap();
    assert_eq!(config.admin.token_file, Some(PathBuf::from("secrets/admin.token")));
}

#[test]
fn rules_are_sorted_by_priority() {
    let rule = |p: u32| format!("[[listener.rule]]\npriority = {p}\nfixed_response = {{ status = 200 }}\n");
    let config = ok(&format!("{LISTENER}{}{}{}", rule(300), rule(2), rule(40)));
    let priorities: Vec<u32> = config.listeners[0].rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, [2, 40, 300]);
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = r#"[admin]
bind = "nope"

[[listener]]
name = "a"
bind = "127.0.0.1:80"
idle_timeout = "0s"
colour = "blue"

[[listener]]
name = "b"
bind = "127.0.0.1:81"
idle_timeout = "0s"
default_target_group = "missing"

[[listener.rule]]
priority = 1
target_group = "missing-too"

[[listener.rule]]
priority = 99999
fixed_response = { status = 700 }

[[target_group]]
name = "g"
retries = 9
health_check = { interval = "1s" }

[[target_group]]
name = "h"
targets = ["x"]
"#;
    let found: Vec<(usize, usize)> = errors(text).iter().map(|e| (e.line, e.col)).collect();
    assert_eq!(
        found,
        [(2, 8), (7, 16), (8, 1), (13, 16), (14, 24), (18, 16), (21, 12), (22, 29), (26, 11), (27, 29), (31, 12)],
        "{}",
        parse(text, Path::new("t.toml")).unwrap_err()
    );
}

#[test]
fn every_unknown_key_of_a_table_is_reported_and_the_rest_still_checked() {
    let text = format!("{LISTENER}nmae = \"x\"\nidle_timeout = \"0s\"\nprotocl = \"http\"\n");
    let found: Vec<(usize, usize)> = errors(&text).iter().map(|e| (e.line, e.col)).collect();
    assert_eq!(found, [(3, 1), (4, 16), (5, 1)]);
}

#[test]
fn display_is_one_line_per_error() {
    let e = parse("[[listener]]\nbind = \"x\"\nidle_timeout = \"1\"\n", Path::new("conf/w.toml")).unwrap_err();
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("conf/w.toml:2:8: listener \"listener-1\": bind \"x\""), "{}", lines[0]);
    assert!(lines[1].starts_with("conf/w.toml:3:16: "), "{}", lines[1]);
    let _: &dyn std::error::Error = &e;
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let dir = std::env::temp_dir().join(format!("waygate-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("waygate.toml");
    std::fs::write(&path, format!("[access_log]\ndir = \"logs\"\n{LISTENER}")).unwrap();
    assert_eq!(load(&path).unwrap().access_log.unwrap().dir, dir.join("logs"));

    let missing = dir.join("missing.toml");
    let e = load(&missing).unwrap_err();
    assert_eq!((e.0.len(), e.0[0].line, e.0[0].col), (1, 0, 0));
    assert_eq!(e.0[0].file, missing);
    assert!(e.to_string().starts_with(&format!("{}: cannot read config file", missing.display())), "{e}");

    std::fs::write(&path, b"[[listener]]\nbind = \"\xff\"\n").unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (2, 9));
    assert!(e.0[0].message.contains("not valid UTF-8"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "",
        "\0",
        "=",
        "[[",
        "[[]]",
        "[[listener]]\n[[listener.rule]]\n[[listener.rule]]",
        "listener = 1",
        "listener = [1, 2]",
        "target_group = [[]]",
        "[[target_group]]\nhealth_check = 3",
        "[admin]\nbind = []",
        "[[listener]]\nbind = \"[::1]:99999\"",
        "[[listener]]\nrule = \"x\"",
        "\u{feff}[[listener]]\nbind=\"1.1.1.1:1\"",
        "a.b.c.d = { e = [ { f = 1 } ] }",
        "[[listener]]\nbind = \"1.1.1.1:1\"\nidle_timeout = \"99999999999999999999h\"",
        "[[target_group]]\nname = \"é\"\ntargets = [\"[::1\", \"]:1\", \"[\", \":\", \"@:1\"]",
        "\r\n\r\n[[listener]]\r\nbind = 5\r\n",
        "[[target_group]]\nname=\"g\"\n[target_group.health_check]\nmatcher=\"-,-\"",
    ];
    for text in samples {
        let _ = parse(text, Path::new("g.toml"));
    }
    // Every prefix of a realistic config: half-written files are the common garbage.
    let full = format!(
        "{LISTENER}default_target_group = \"g\"\n[[listener.rule]]\npriority = 1\nhost = \"a\"\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\ntargets = [\"a:1\", {{ address = \"[::1]:2\", weight = 3 }}]\n\
         [target_group.health_check]\nmatcher = \"200-299,302\"\ninterval = \"10s\"\n"
    );
    for end in (0..=full.len()).filter(|&i| full.is_char_boundary(i)) {
        let _ = parse(&full[..end], Path::new("g.toml"));
    }
    ok(&full);
}
