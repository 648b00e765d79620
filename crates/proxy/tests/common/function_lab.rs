//! The function tests' harness: a gateway config of lambda groups, the access log read back with AWS's Athena
//! regex, and [`parent`], which runs a test again in a child process with the AWS environment it needs. The
//! credential chain reads the process environment, which a test cannot change safely while other threads run:
//! a child gets real variables and real files, nothing injected.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use waygate_faultlab::lambda::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

use super::tempdir;

pub const CHILD: &str = "WAYGATE_FUNCTION_TEST_CHILD";

/// In the parent: runs `test` again in a child process whose AWS environment is exactly `vars` (and `HOME` a
/// fresh directory), asserts it passed, and returns true. In that child: returns false, so the test runs.
pub fn parent(test: &str, vars: &[(&str, &str)]) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        return false;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD, test).env("HOME", tempdir("home"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().expect("run the test binary again");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child {test} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    true
}

pub const LAB_KEYS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID), ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)];

pub fn run(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f);
}

/// A gateway config: listener `public` (and `listeners`, more TOML), one rule per group routing `/{group}` and
/// `/{group}/*` to it; each group is `(name, keys of its function table, more keys of the group)`. `head` goes
/// first (an access log...).
pub fn config(head: &str, listeners: &str, groups: &[(&str, String, &str)]) -> String {
    let mut text = format!(
        "{head}[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"{}\"\n",
        groups[0].0
    );
    for (i, (group, _, _)) in groups.iter().enumerate() {
        for (k, path) in [format!("/{group}"), format!("/{group}/*")].iter().enumerate() {
            let priority = i * 2 + k + 1;
            text +=
                &format!("[[listener.rule]]\npriority = {priority}\npath = \"{path}\"\ntarget_group = \"{group}\"\n");
        }
    }
    text += listeners;
    for (group, function, extra) in groups {
        text += &format!(
            "[[target_group]]\nname = \"{group}\"\nprotocol = \"lambda\"\nfunction = {{ {function} }}\n{extra}\n"
        );
    }
    text
}

/// A function table's keys: `name` at `endpoint`, and `more`.
pub fn function(name: &str, endpoint: impl std::fmt::Display, more: &str) -> String {
    format!("name = \"{name}\", endpoint = \"http://{endpoint}\"{more}")
}

/// The access log's lines in `dir`, each parsed by AWS's Athena regex, by trace id.
pub fn access_log(dir: &Path) -> HashMap<String, HashMap<&'static str, String>> {
    let re = regex::Regex::new(&format!("^{} ?([^ ]*)$", waygate_telemetry::athena::ATHENA)).unwrap();
    let cols: Vec<&str> = waygate_telemetry::athena::COLUMNS.iter().copied().chain(["conn_trace_id"]).collect();
    let mut out = HashMap::new();
    for file in std::fs::read_dir(dir).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path()).unwrap().lines() {
            let caps = re.captures(line).unwrap_or_else(|| panic!("Athena regex rejects:\n{line}"));
            let fields: HashMap<&'static str, String> =
                cols.iter().enumerate().map(|(i, c)| (*c, caps[i + 1].to_owned())).collect();
            out.insert(fields["trace_id"].clone(), fields);
        }
    }
    out
}

/// A port nothing listens on.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
