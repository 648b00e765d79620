//! docs/config.md against the configuration model: for every table, the keys the page lists are exactly the keys
//! the model accepts. The model is asked, not copied: an unknown key in a table is refused with the list of keys
//! it expects, so a key added to the model and not to the page (or the reverse) fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const UNKNOWN: &str = "zz_not_a_key";

/// Each table of the page (its heading) and a document that puts the unknown key in that table.
fn tables() -> Vec<(&'static str, String)> {
    let listener = "[[listener]]\nbind = \"127.0.0.1:0\"\n";
    let group = "[[target_group]]\nname = \"g\"\n";
    vec![
        ("Top level", format!("{UNKNOWN} = 1\n{listener}")),
        ("`[admin]`", format!("[admin]\n{UNKNOWN} = 1\n{listener}")),
        ("`[access_log]`", format!("[access_log]\n{UNKNOWN} = 1\n{listener}")),
        ("`[errors]`", format!("[errors]\n{UNKNOWN} = 1\n{listener}")),
        ("`[[listener]]`", format!("{listener}{UNKNOWN} = 1\n")),
        ("`tls` of a listener", format!("{listener}tls = {{ cert = \"a\", key = \"b\", {UNKNOWN} = 1 }}\n")),
        (
            "An entry of `certificates`",
            format!("{listener}tls = {{ certificates = [{{ cert = \"a\", key = \"b\", {UNKNOWN} = 1 }}] }}\n"),
        ),
        (
            "`mutual_authentication`",
            format!(
                "{listener}tls = {{ cert = \"a\", key = \"b\", mutual_authentication = {{ mode = \"off\", {UNKNOWN} = 1 }} }}\n"
            ),
        ),
        ("`[connection_log]`", format!("[connection_log]\n{UNKNOWN} = 1\n{listener}")),
        ("`[tracing]`", format!("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\n{UNKNOWN} = 1\n{listener}")),
        (
            "`default_fixed_response` and `fixed_response`",
            format!("{listener}default_fixed_response = {{ status = 404, {UNKNOWN} = 1 }}\n"),
        ),
        ("`[[listener.rule]]`", format!("{listener}[[listener.rule]]\npriority = 1\n{UNKNOWN} = 1\n")),
        ("`[[target_group]]`", format!("{listener}{group}{UNKNOWN} = 1\n")),
        (
            "An entry of `targets`",
            format!("{listener}{group}targets = [{{ address = \"127.0.0.1:1\", {UNKNOWN} = 1 }}]\n"),
        ),
        ("`tls` of a target group", format!("{listener}{group}tls = {{ {UNKNOWN} = 1 }}\n")),
        ("`function`", format!("{listener}{group}function = {{ name = \"f\", {UNKNOWN} = 1 }}\n")),
        ("`[target_group.health_check]`", format!("{listener}{group}[target_group.health_check]\n{UNKNOWN} = 1\n")),
        ("`[[alert]]`", format!("{listener}[[alert]]\nname = \"a\"\nthreshold = 1\n{UNKNOWN} = 1\n")),
        (
            "`when` of an alert",
            format!("{listener}[[alert]]\nname = \"a\"\nthreshold = 1\nwhen = {{ {UNKNOWN} = 1 }}\n"),
        ),
    ]
}

/// The keys the model expects where `doc` puts the unknown key, from its refusal.
fn model_keys(heading: &str, doc: &str) -> BTreeSet<String> {
    let err = waygate_config::parse(doc, Path::new("reference.toml")).expect_err(heading).to_string();
    let line = err
        .lines()
        .find(|l| l.contains(&format!("unknown key `{UNKNOWN}`")))
        .unwrap_or_else(|| panic!("{heading}: the unknown key was not refused by name:\n{err}"));
    let expected = line.split_once("expected").unwrap_or_else(|| panic!("{heading}: no key list in {line}")).1;
    let keys: BTreeSet<String> = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    assert!(!keys.is_empty(), "{heading}: no keys in {line}");
    keys
}

/// The keys the page lists under each heading: first-column cells of its tables, in backticks.
fn documented_keys(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut heading = None;
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ").or_else(|| line.strip_prefix("### ")) {
            heading = Some(h.trim().to_owned());
            out.entry(h.trim().to_owned()).or_default();
        } else if let (Some(h), Some(cell)) = (&heading, line.strip_prefix("| `")) {
            let key = cell.split_once('`').expect("a key cell").0;
            assert!(out.get_mut(h).unwrap().insert(key.to_owned()), "{key} listed twice under {h}");
        }
    }
    out
}

#[test]
fn config_reference_lists_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join("docs").join("config.md");
    let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documented = documented_keys(&page);
    let tables = tables();
    for (heading, doc) in &tables {
        let model = model_keys(heading, doc);
        let listed = documented.get(*heading).unwrap_or_else(|| panic!("docs/config.md has no heading {heading:?}"));
        let missing: Vec<_> = model.difference(listed).collect();
        let extra: Vec<_> = listed.difference(&model).collect();
        assert!(
            missing.is_empty(),
            "docs/config.md, {heading}: keys the model accepts but the page omits: {missing:?}"
        );
        assert!(extra.is_empty(), "docs/config.md, {heading}: keys the page lists but the model rejects: {extra:?}");
    }
    // Every table of keys on the page is checked: a new section with keys needs a line in `tables` (sections of
    // prose only, such as what a timeout bounds, list no keys).
    let checked: BTreeSet<&str> = tables.iter().map(|(h, _)| *h).collect();
    let unchecked: Vec<_> = documented
        .iter()
        .filter(|(h, keys)| !keys.is_empty() && !checked.contains(h.as_str()))
        .map(|(h, _)| h)
        .collect();
    assert!(unchecked.is_empty(), "docs/config.md sections the test does not check: {unchecked:?}");
}
