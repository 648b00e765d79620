//! The data plane's module layers, checked from the source: each top-level module of `waygate-proxy` may use
//! modules of its own layer or of a lower one, never of a higher one. In particular nothing on the request
//! path uses the control plane (`control`: the gateway controller, reload, registrations, draining, active
//! health checks), and the target state both sides share (`target`, `group`, `runtime`) uses neither.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first. Within a layer, modules may use each other.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "wire and connections",
        &[
            "lib",
            "count",
            "wake",
            "request_id",
            "router",
            "retry",
            "audit",
            "headers",
            "wire",
            "h2conn",
            "guard",
            "server",
            "body",
            "upstream",
            "workers",
            "tls_front",
        ],
    ),
    ("targets", &["target", "group", "runtime", "function"]),
    (
        "exchange",
        &["record", "log", "respond", "relay", "tunnel", "upgrade", "forward", "listener", "invocation", "trace"],
    ),
    ("control plane", &["control"]),
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of tests/architecture.rs: add it where it belongs"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/control/health.rs` → `control`).
fn owner(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::name` a file mentions (paths in `use` lines and inline), outside comments.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

#[test]
fn modules_only_use_their_own_layer_or_lower_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 40, "the sources were found: {}", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        let module = owner(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&text) {
            // `crate::lock` and other items of lib.rs itself.
            let used_module = if files.iter().any(|f| owner(&src, f) == used) { used.as_str() } else { "lib" };
            if layer_of(used_module) > layer_of(&module) {
                wrong.push(format!(
                    "{} ({}) uses crate::{used} ({})",
                    file.strip_prefix(&src).unwrap().display(),
                    LAYERS[layer_of(&module)].0,
                    LAYERS[layer_of(used_module)].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows must point down the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_wrong_arrow() {
    assert_eq!(used_modules("use crate::control::Gateway; // crate::forward"), BTreeSet::from(["control".into()]));
    assert!(layer_of("control") > layer_of("group"));
}
