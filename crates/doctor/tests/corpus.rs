//! The regression corpus: real captures (tests/corpus/*.pcap), one per shape of issue 27, each with the
//! verdict `doctor pcap` must give it (tests/corpus/expected.toml). They were recorded by tcpdump between
//! network namespaces (see tests/recorder); `corpus_verdicts` runs on the committed files everywhere, and
//! `corpus_recorded_afresh` (root only) records every shape again and holds the new captures to the same
//! verdicts, so the corpus stays reproducible. `WAYGATE_RECORD_CORPUS=1` makes it replace the committed
//! files with the new ones:
//! `WAYGATE_RECORD_CORPUS=1 cargo test -p waygate-doctor --test corpus corpus_recorded_afresh` (alone: the
//! other tests of this file read the files it rewrites).

mod recorder;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The expected verdicts: one table per capture (`[name]` for `name.pcap`).
fn expected() -> toml::Table {
    let text = std::fs::read_to_string(corpus_dir().join("expected.toml")).expect("read expected.toml");
    text.parse().expect("expected.toml parses")
}

/// Checks every capture of `dir` against expected.toml: each holds exactly one connection, which
/// [`flow_failures`] checks. Returns the failures, one line each.
fn check_dir(dir: &Path) -> Vec<String> {
    let want = expected();
    let mut failures = Vec::new();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("read the capture directory")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".pcap").map(str::to_owned))
        .collect();
    let listed: BTreeSet<String> = want.keys().cloned().collect();
    if on_disk != listed {
        failures.push(format!("captures {on_disk:?} != expected.toml's {listed:?}"));
    }
    for name in want.keys() {
        let file = dir.join(format!("{name}.pcap"));
        let Ok(f) = std::fs::File::open(&file) else { continue };
        let report = waygate_doctor::pcap::analyze_reader(f, name, None).expect("a capture");
        let json = serde_json::to_value(&report).expect("json");
        if !report.problems.is_empty() || report.flows.len() != 1 {
            failures.push(format!("{name}: one flow and no problem expected: {json}"));
            continue;
        }
        failures.extend(flow_failures(name, &json["flows"][0]));
    }
    failures
}

/// How `flow` (its JSON) differs from capture `name`'s expectation: `outcome`, `cause` and any other key
/// given (`alert`, `path_mtu`, `confidence` ...) equal, and the evidence contains each `evidence` string.
fn flow_failures(name: &str, flow: &Value) -> Vec<String> {
    let want = expected();
    let Some(table) = want.get(name).and_then(toml::Value::as_table) else {
        return vec![format!("{name}: not in expected.toml")];
    };
    let mut failures = Vec::new();
    for (key, value) in table {
        let ok = match (key.as_str(), value) {
            ("why", _) => true,
            ("evidence", toml::Value::Array(parts)) => {
                let text = flow["evidence"].as_str().unwrap_or_default();
                parts.iter().all(|p| p.as_str().is_some_and(|p| text.contains(p)))
            }
            (_, toml::Value::String(s)) => flow[key].as_str() == Some(s.as_str()),
            (_, toml::Value::Integer(i)) => flow[key].as_i64() == Some(*i),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: {key} should be {value}: {flow}"));
        }
    }
    failures
}

/// Every committed capture gets its expected verdict.
#[test]
fn corpus_verdicts() {
    let failures = check_dir(&corpus_dir());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corpus is small: KiBs per capture.
#[test]
fn corpus_files_are_small() {
    for e in std::fs::read_dir(corpus_dir()).unwrap() {
        let e = e.unwrap();
        let len = e.metadata().unwrap().len();
        assert!(len < 32 << 10, "{}: {len} bytes", e.path().display());
    }
}

/// Records every shape again between network namespaces and checks the new captures' verdicts; with
/// `WAYGATE_RECORD_CORPUS` set, the new captures replace the committed ones.
#[test]
fn corpus_recorded_afresh() {
    if recorder::cannot_run("corpus_recorded_afresh") {
        return;
    }
    let out = std::env::temp_dir().join(format!("waygate-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let log = recorder::record(&out);
    let failures = check_dir(&out);
    assert!(failures.is_empty(), "{}\n--- recorder output:\n{log}", failures.join("\n"));
    if std::env::var_os("WAYGATE_RECORD_CORPUS").is_some() {
        for e in std::fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().ends_with(".pcap") {
                std::fs::copy(e.path(), corpus_dir().join(e.file_name())).unwrap();
            }
        }
        println!("corpus rewritten from {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// The servers' side of the recording: run by `corpus_recorded_afresh` inside the server namespace.
#[test]
#[ignore = "a role of corpus_recorded_afresh, run inside its server namespace"]
fn corpus_role_servers() {
    recorder::servers::role();
}

/// The clients' side of the recording: run by `corpus_recorded_afresh` inside the client namespace.
#[test]
#[ignore = "a role of corpus_recorded_afresh, run inside its client namespace"]
fn corpus_role_clients() {
    recorder::clients::role();
}
