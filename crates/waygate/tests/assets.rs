//! `waygate completions` and `waygate man` come from the same command line the binary parses: every
//! subcommand is in them.

mod common;

use std::process::Command;

use common::bin;

fn output(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().expect("run waygate");
    assert!(out.status.success(), "waygate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The subcommands `waygate --help` lists (so a new one is checked without editing this test), `help` aside.
fn subcommands() -> Vec<String> {
    let help = output(&["--help"]);
    let list = help.split_once("Commands:\n").expect("a Commands section").1;
    let names: Vec<String> = list
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 9 && names.iter().any(|n| n == "explain"), "{help}");
    names
}

/// Whether `word` stands in `text` as a whole word (not inside another, as `man` in `command`).
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).any(|w| w == word)
}

#[test]
fn completions_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let text = output(&["completions", shell]);
        for sub in subcommands() {
            assert!(has_word(&text, &sub), "{shell} completions lack {sub}");
        }
    }
    let bash = output(&["completions", "bash"]);
    assert!(bash.contains("complete -F _waygate") && bash.contains("--drain-timeout"), "{bash}");
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let man = output(&["man"]);
    assert!(man.contains(".TH waygate 1"), "{man}");
    let man = man.replace("\\-", "-");
    for sub in subcommands() {
        assert!(has_word(&man, &format!("waygate-{sub}")), "man page lacks waygate-{sub}(1)");
    }
}

/// stdout is a pipe whose reader is already gone (`waygate completions bash | head -1` once head has exited):
/// every write fails with EPIPE, deterministically.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    for args in [&["completions", "bash"][..], &["man"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(bin()).args(args).stdout(writer).output().expect("run waygate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
