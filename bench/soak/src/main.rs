//! `waygate-soak`: bench/soak's driver (`bench/soak/run [DURATION]` builds and runs it). It starts fault lab
//! targets and the `waygate` binary, runs mixed HTTP/1.1 and HTTP/2 load with slow and non-reading clients
//! ([`load`]) while targets fail at random, the config is hot-reloaded and targets come and go ([`chaos`]),
//! tightens the gateway's descriptor limit to just above what the load needs once it has warmed up, samples its
//! memory, and at the end checks the accounting and the blame ([`verify`]) and writes the summary ([`report`]).
//!
//! Usage: `waygate-soak --waygate PATH [--duration 10m] [--report docs/reliability.md] [--dir DIR]`.
//! Exit 0 when every check holds, 1 when one fails, 2 when the soak could not run.

mod chaos;
mod gateway;
mod load;
mod report;
mod run;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

/// The command line.
pub struct Args {
    pub waygate: PathBuf,
    pub duration: Duration,
    pub report: Option<PathBuf>,
    pub dir: PathBuf,
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

fn args() -> Result<Args, String> {
    let (mut waygate, mut duration, mut report, mut dir) = (None, Duration::from_secs(600), None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--waygate" => waygate = Some(PathBuf::from(value()?)),
            "--duration" => {
                let v = value()?;
                duration =
                    parse_duration(&v).ok_or(format!("--duration {v:?}: a number of seconds or minutes (60s, 10m)"))?;
            }
            "--report" => report = Some(PathBuf::from(value()?)),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if duration < Duration::from_secs(20) {
        return Err("--duration: at least 20s (the warm-up alone takes 5 s)".into());
    }
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("waygate-soak-{}", std::process::id())));
    Ok(Args { waygate: waygate.ok_or("--waygate PATH is required")?, duration, report, dir })
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "waygate-soak: {e}\nusage: waygate-soak --waygate PATH [--duration 10m] [--report FILE] [--dir DIR]"
            );
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("waygate-soak: no runtime: {e}");
            std::process::exit(2);
        }
    };
    let outcome = match rt.block_on(run::soak(&args)) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("waygate-soak: could not run: {e}");
            std::process::exit(2);
        }
    };
    let text = report::markdown(&args, &outcome);
    println!("{text}");
    if let Some(path) = &args.report
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("waygate-soak: cannot write {}: {e}", path.display());
        std::process::exit(2);
    }
    if !outcome.findings.failures.is_empty() {
        eprintln!(
            "waygate-soak: {} check(s) failed; the gateway's files are in {}",
            outcome.findings.failures.len(),
            args.dir.display()
        );
        std::process::exit(1);
    }
    let _ = std::fs::remove_dir_all(&args.dir);
}
