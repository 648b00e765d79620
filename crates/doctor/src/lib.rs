//! The doctor. `waygate doctor probe` ([`probe`]) checks a target with the gateway's own connection code
//! (`waygate-connect`, the one part of the data plane the doctor uses); `waygate doctor bundle` ([`bundle`])
//! collects a support bundle. The rest of this page is about the log analyser.
//!
//! `waygate doctor logs`: explains every 5xx in AWS ALB access logs and in waygate's own (ALB and JSON
//! formats), automating AWS's "find the source of the 502" playbook. It depends only on the fault
//! catalogue (`waygate-faults`), never on the data plane.
//!
//! Data flow: [`input`] finds files and cuts them into chunks of whole lines (gzip by magic bytes) →
//! [`record::parse_entry`] ([`alb`], [`json`], [`classic`], or a connection log: [`connlog`]) → [`attribution`]
//! names source and cause (connection-log lines are counted per kind instead) → `accum` counts
//! per rayon task → merged → [`patterns`] → [`report::Report`] → [`term`], JSON, or [`html`].
//!
//! The binary wires it in two lines:
//!
//! ```ignore
//! Command::Doctor { command: DoctorCommand::Logs(args) } => waygate_doctor::run_logs(&args),
//! ```
//!
//! Dependencies and why: memchr (field splitting; the hot path allocates nothing and uses no regex), flate2
//! (gzip, pure Rust backend), ruzstd (zstd captures, pure Rust), rayon (chunks in parallel), serde/serde_json
//! (JSON logs in, JSON report out), comfy-table (terminal tables), indicatif (progress on large inputs, only on
//! a terminal), clap (arguments).
//!
//! # JSON report schema (`--json`), `waygate.doctor.logs/1`
//!
//! Stable: keys are only ever added; a removal or change of meaning bumps `schema`. A test pins the keys.
//! Timestamps are RFC 3339 UTC with microseconds; timeline keys are minutes (`2024-05-01T10:00Z`).
//!
//! ```text
//! {
//!   "schema": "waygate.doctor.logs/1",
//!   "files": 3, "bytes": 123456,          // files read; bytes on disk (compressed size for gzip)
//!   "lines": 1000, "requests": 990,       // non-blank lines; records parsed and kept by the filters
//!   "filtered_out": 0,                    // records dropped by --since/--until/--target-group/--target
//!   "first_seen": "...", "last_seen": "...",   // null when no record
//!   "elb_5xx": {"502": 10},               // load-balancer-generated 5xx by elb_status_code
//!   "target_5xx": {"500": 3},             // target-generated 5xx by target_status_code
//!   "causes": [{                          // one per (cause, source), largest count first
//!     "cause": "TargetConnectionFailed",  // error_reason verbatim, or an inferred name
//!     "source": "load_balancer",          // or "target"
//!     "inferred": true, "inferred_from": "502, target_status_code -, processing times -1 -1 -1",
//!     "count": 10, "statuses": {"502": 10},
//!     "targets": {"10.0.0.1:80": 7, "-": 3},   // "-": lines without a target
//!     "first_seen": "...", "last_seen": "...",
//!     "remediation": "...",
//!     "timeline": {"2024-05-01T10:00Z": 4}
//!   }],
//!   "patterns": [{"kind": "keep_alive_mismatch" | "target_concentration" | "deregistered_mid_request",
//!                 "summary": "...", "count": 12, "targets": {"10.0.0.1:80": 12},
//!                 "first_seen": "...", "last_seen": "...", "exact": false, "remediation": "..."}],
//!   "targets": [{"target": "10.0.0.1:80", "requests": 500, "elb_5xx": 7, "target_5xx": 0,
//!                "first_seen": "...", "last_seen": "...", "max_request_seconds": 1.25,
//!                "timeline": {"2024-05-01T10:00Z": 2}}],
//!   "malformed": {"count": 1, "by_file": {"a.log": 1},
//!                 "examples": [{"file": "a.log", "line": 17, "reason": "...", "text": "..."}]},
//!   "file_errors": [{"file": "b.log.gz", "line": 1201, "error": "corrupt deflate stream"}],
//!   "connection_logs": [{"kind": "alb_connection" | "nlb_tls" | "classic_tcp",
//!                        "connections": 40, "failures": 3, "first_seen": "...", "last_seen": "...",
//!                        "reasons": [{"reason": "ClientCertUntrusted", "count": 2, "advice": "..."}],
//!                        "alerts": {"handshake_failure": 1},       // NLB incoming TLS alerts
//!                        "listeners": {"443": {"connections": 40, "failures": 3}}}],
//!   "classic": {"requests": 12, "elb_5xx": {"503": 1}, "backend_5xx": {"500": 2}}   // null: no Classic lines
//! }
//! ```
//!
//! Cause naming (see [`attribution`]): `error_reason` when present; otherwise `TargetConnectionFailed`,
//! `TargetConnectTimeout`, `TargetResponseTimeout` as issue 7 defines them, `TargetResponded5xx` for the
//! targets' own 5xx, and `Unexplained<status>` for other load-balancer 5xx.
//!
//! Exit codes of [`run_logs`]: 0 analysed (even with malformed lines or corrupt files, which are reported),
//! 1 user error (missing path, bad time, unwritable --html), 2 internal error.

pub mod alb;
pub mod analyze;
pub mod attribution;
pub mod audit;
pub mod bundle;
pub mod classic;
pub mod connlog;
pub mod html;
pub mod input;
pub mod json;
pub mod patterns;
pub mod pcap;
pub mod probe;
pub mod record;
pub mod remedy;
pub mod report;
pub mod term;
pub mod time;

mod accum;
mod cli;
pub mod examples;
mod fx;
mod links;

pub use accum::Filter;
pub use analyze::{AnalyzeError, Options, analyze, analyze_bytes};
pub use bundle::{BundleArgs, run_bundle};
pub use cli::{LogsArgs, run_logs, run_logs_to};
pub use pcap::{PcapArgs, run_pcap, run_pcap_to};
pub use probe::{ProbeArgs, run_probe};
pub use record::{Entry, Malformed, Record, parse_entry, parse_line};
pub use report::{Report, SCHEMA};
