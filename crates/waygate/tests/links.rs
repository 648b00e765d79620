//! No link leaves the repository: every markdown link and every `*.md` a comment or document names resolves to a
//! file inside it, and nothing points at the design folder the project was started from, which a clone does not
//! have. A bare name like `FAULTS.md` or `reference/ALB.md` resolves against the naming file's folder, the
//! repository's root or `docs/`, in that order.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Text files of the repository: sources, docs, manifests and scripts (build output and VCS data excluded).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skip = name == "target" || name == "corpus" || (name.starts_with('.') && name != ".ci");
            if !skip {
                files(&path, out);
            }
            continue;
        }
        let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        let script = ext.is_empty() && std::fs::read(&path).is_ok_and(|b| b.starts_with(b"#!"));
        if script || ["md", "rs", "toml", "py", "sh", "html", "txt", "yml", "yaml"].contains(&ext.as_str()) {
            out.push(path);
        }
    }
}

/// Normalises `path` without touching the file system (`a/b/../c` -> `a/c`).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether `target`, relative to one of `bases`, is a file or folder inside `root`.
fn resolves(root: &Path, bases: &[PathBuf], target: &str) -> bool {
    bases.iter().any(|base| {
        let path = normalise(&base.join(target));
        path.starts_with(root) && path.exists()
    })
}

/// The `*.md` names in `text`: runs of path characters ending in `.md` (not `.mdx`), outside URLs.
fn md_names(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let path_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-');
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(".md").map(|i| i + from) {
        from = i + 3;
        if bytes.get(i + 3).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let mut start = i;
        while start > 0 && path_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut name = &text[start..i + 3];
        let before = start.checked_sub(1).map(|s| bytes[s]);
        if name.starts_with("//") || before == Some(b':') {
            continue; // a URL
        }
        if matches!(before, Some(b'$' | b'}')) {
            // `$ROOT/docs/x.md`: the variable is the repository's root.
            name = name.split_once('/').map_or(name, |(_, rest)| rest);
        }
        let file = name.rsplit('/').next().unwrap_or(name);
        let first = name.split('/').next().unwrap_or("");
        if file == ".md"
            || file.starts_with('*')
            || (name.contains('/') && first.contains('.') && first != "." && first != "..")
        {
            continue; // a pattern, or a host name (a URL without its scheme)
        }
        out.push(name.to_owned());
    }
    out
}

/// The targets of markdown links `[text](target)` in `text`, without anchors; external ones left out.
fn md_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        let target = target.split('#').next().unwrap_or("");
        let external = ["http://", "https://", "mailto:"].iter().any(|p| target.starts_with(p));
        let path_like = target.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'));
        if !target.is_empty() && !external && path_like {
            out.push(target.to_owned());
        }
    }
    out
}

#[test]
fn no_link_leaves_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 50, "found only {} files under {}", all.len(), root.display());
    // Spelled in pieces so that this file does not name them itself.
    let outside = [concat!("..", "/shared"), concat!("shared", "/design"), concat!("shared", "/reference")];
    let mut problems = Vec::new();
    // This file names broken references on purpose, to test the checks.
    let this_file = root.join(file!());
    for path in all.iter().filter(|p| **p != this_file) {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let shown = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        let dir = path.parent().unwrap().to_path_buf();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{shown}:{}", n + 1);
            for o in outside.iter().filter(|o| line.contains(*o)) {
                problems.push(format!("{at}: points outside the repository ({o})"));
            }
            for name in md_names(line) {
                if !resolves(&root, &[dir.clone(), root.clone(), root.join("docs")], &name) {
                    problems.push(format!("{at}: {name} is not a file of the repository"));
                }
            }
            if shown.ends_with(".md") {
                for target in md_links(line) {
                    if !resolves(&root, std::slice::from_ref(&dir), &target) {
                        problems.push(format!("{at}: link ({target}) does not resolve inside the repository"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} reference(s) leave the repository or miss:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checks_catch_what_they_are_for() {
    assert_eq!(md_names("see design/FAULTS.md and `docs/doctor.md`."), ["design/FAULTS.md", "docs/doctor.md"]);
    assert_eq!(md_names("https://example.com/a/b.md and github.com/x/y.md, x.mdx, *.md"), Vec::<String>::new());
    assert_eq!(md_names("\"$ROOT/docs/benchmarks.md\""), ["docs/benchmarks.md"]);
    assert_eq!(md_links("[a](../x/y.md#z) [b](https://e.com) [c](#top)"), ["../x/y.md"]);
    let root = root();
    let docs = [root.clone(), root.join("docs")];
    assert!(resolves(&root, &docs, "FAULTS.md") && resolves(&root, &docs, "reference/ALB.md"));
    assert!(!resolves(&root, &docs, "design/FAULTS.md"), "the design folder is not in the repository");
    assert!(!resolves(&root, &docs, "../../README.md"), "outside the root, even if it exists");
}
