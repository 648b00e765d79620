//! The system log: `tracing` events written to stderr as logfmt-style `key=value` lines (default) or JSON
//! objects, filtered by `WAYGATE_LOG` (env-filter syntax, default `info`).

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// `time LEVEL target: message key=value ...`
    Logfmt,
    /// One JSON object per line.
    Json,
}

pub fn init(format: Format) {
    let filter = EnvFilter::try_from_env("WAYGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true);
    let _ = match format {
        Format::Logfmt => builder.with_ansi(false).try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
}
