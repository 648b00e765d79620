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

const SUBCOMMANDS: [&str; 8] = ["run", "demo", "check-config", "doctor", "targets", "faultlab", "completions", "man"];

#[test]
fn completions_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let text = output(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let bash = output(&["completions", "bash"]);
    assert!(bash.contains("complete -F _waygate") && bash.contains("--drain-timeout"), "{bash}");
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let man = output(&["man"]);
    assert!(man.contains(".TH waygate 1"), "{man}");
    for sub in SUBCOMMANDS {
        assert!(man.replace("\\-", "-").contains(sub), "man page lacks {sub}");
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
