//! `waygate completions SHELL` and `waygate man`: shell completions and the man page, generated from the clap
//! definition the binary parses its arguments with, so neither can drift from it. The Debian package installs
//! both (see packaging/build-deb).

use std::io::Write;

use clap::CommandFactory;

use crate::Cli;

pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "waygate", &mut out);
    emit("completions", &out)
}

pub fn man() -> u8 {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        eprintln!("waygate man: {e}");
        return 2;
    }
    emit("man", &out)
}

/// Writes the whole text to stdout; a closed pipe (`| head`) is an error message, not a panic.
fn emit(command: &str, text: &[u8]) -> u8 {
    match std::io::stdout().write_all(text).and_then(|()| std::io::stdout().flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("waygate {command}: {e}");
            2
        }
    }
}
