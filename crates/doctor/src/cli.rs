//! `waygate doctor logs`: the arguments (a `clap::Args` the binary flattens in) and the command, which
//! returns the process exit code (0 done, 1 user error such as a missing path or a bad time, 2 internal).
//! Malformed lines and corrupt files are reported, not errors.

use std::io::{IsTerminal, Write};

use std::path::PathBuf;

use crate::accum::Filter;
use crate::analyze::{AnalyzeError, Options, analyze};
use crate::audit::parse_audit;
use crate::time::parse_time_arg;

/// Analyse access logs and explain every 5xx.
///
/// Example: waygate doctor logs AWSLogs/ --since 2024-05-01T10:00 --html report.html
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Log files or directories (read recursively); plain or gzip (detected by content); AWS ALB format or
    /// waygate's ALB and JSON formats, mixed freely.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Only requests at or after this time (ISO 8601 UTC: 2024-05-01, 2024-05-01T10:30, 2024-05-01T10:30:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only requests before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this target group: its ARN or its name.
    #[arg(long, value_name = "NAME|ARN")]
    pub target_group: Option<String>,
    /// Only this target: ip:port, or ip for any port.
    #[arg(long, value_name = "IP[:PORT]")]
    pub target: Option<String>,
    /// Print the report as JSON (schema `waygate.doctor.logs/1`, see docs/doctor.md) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// waygate's audit log (JSON from GET /api/v1/audit): makes the deregistration finding exact.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// How many malformed lines to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub examples: usize,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Says what the user got wrong, as `waygate doctor COMMAND: MSG`; returns exit code 1.
pub(crate) fn user_error(command: &str, msg: &str) -> u8 {
    eprintln!("waygate doctor {command}: {msg}");
    1
}

/// Writes a `waygate doctor COMMAND` report to `out`: pretty JSON with `json`, else what `render` makes of it.
/// A closed pipe (`| head`) is not an error worth a message. `Err(2)`, the exit code, when the JSON could not be
/// made (said on stderr).
pub(crate) fn write_report<R: serde::Serialize>(
    command: &str,
    report: &R,
    json: bool,
    render: impl FnOnce(&R) -> String,
    out: &mut dyn Write,
) -> Result<(), u8> {
    let text = if json {
        match serde_json::to_string_pretty(report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("waygate doctor {command}: internal error: {e}");
                return Err(2);
            }
        }
    } else {
        render(report)
    };
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

fn options(args: &LogsArgs) -> Result<Options, String> {
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|s| parse_time_arg(s).ok_or_else(|| format!("{flag} {s:?} is not a time (e.g. 2024-05-01T10:30:00Z)")))
            .transpose()
    };
    let filter = Filter {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
        target_group: args.target_group.clone(),
        target: args.target.as_deref().map(crate::record::normalise_target_filter),
    };
    let audit = match &args.audit {
        Some(p) => parse_audit(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Vec::new(),
    };
    if args.threads == Some(0) {
        return Err("--threads must be at least 1".to_owned());
    }
    Ok(Options { filter, threads: args.threads, max_examples: args.examples, audit, progress: !args.no_progress })
}

/// Runs `waygate doctor logs`, printing the report on stdout; returns the exit code.
pub fn run_logs(args: &LogsArgs) -> u8 {
    run_logs_to(args, &mut std::io::stdout().lock())
}

/// [`run_logs`] writing the report (tables or JSON) to `out`; messages still go to stderr.
pub fn run_logs_to(args: &LogsArgs, out: &mut dyn Write) -> u8 {
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => return user_error("logs", &e),
    };
    let result = std::panic::catch_unwind(|| analyze(&args.paths, &opts));
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e @ AnalyzeError::Path(_))) => return user_error("logs", &e.to_string()),
        Ok(Err(e)) => {
            eprintln!("waygate doctor logs: {e}");
            return 2;
        }
        Err(_) => {
            eprintln!("waygate doctor logs: internal error (a worker panicked); please report it with the input");
            return 2;
        }
    };
    if let Some(path) = &args.html
        && let Err(e) = std::fs::write(path, crate::html::render(&report))
    {
        return user_error("logs", &format!("cannot write {}: {e}", path.display()));
    }
    if let Err(code) = write_report("logs", &report, args.json, crate::term::render, out) {
        return code;
    }
    if !args.json && args.html.is_some() && std::io::stderr().is_terminal() {
        eprintln!("HTML report written to {}", args.html.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
    }
    0
}
