//! The system log: `tracing` events written to stderr, or with `--log-file PATH` appended to that file (through
//! waygate-telemetry's `SystemLogFile`: a full or read-only disk drops and counts lines instead of blocking the
//! gateway), as logfmt-style `key=value` lines (default) or JSON objects, filtered by `WAYGATE_LOG` (env-filter
//! syntax, default `info`).

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use waygate_telemetry::{SystemLogFile, system_log_counters};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// `time LEVEL target: message key=value ...`
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Installs the system log; with `file`, returns the file's handle, to be closed (flushed) before exit.
pub fn init(format: Format, file: Option<&Path>) -> Result<Option<SystemLogFile>, String> {
    let filter = EnvFilter::try_from_env("WAYGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, handle) = match file {
        None => (BoxMakeWriter::new(std::io::stderr), None),
        Some(path) => {
            let log = SystemLogFile::open(path, system_log_counters().clone())
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            let w = log.clone();
            (BoxMakeWriter::new(move || w.clone()), Some(log))
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(true);
    let _ = match format {
        Format::Logfmt => builder.with_ansi(false).try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(handle)
}
