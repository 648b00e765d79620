//! The `waygate` binary: command-line parsing and dispatch. Each command lives in its own module; exit codes
//! follow INTERFACE.md: 0 success, 1 user error (bad config, bad input), 2 internal failure.

mod admin_client;
mod allocator;
mod assets;
mod check;
mod demo;
mod explain;
mod faultlab_cmd;
mod logging;
mod notify;
mod run;
mod targets_cmd;
mod trace_cmd;
mod trace_show;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "waygate", version, about = "An HTTP load balancer and API gateway whose every 5xx explains itself.")]
struct Cli {
    /// System log format.
    #[arg(long, global = true, value_enum, default_value_t = logging::Format::Logfmt)]
    log_format: logging::Format,
    /// Append the system log to this file instead of standard error. A full or read-only disk never blocks the
    /// gateway: lines are dropped and counted (waygate_system_log_dropped_total) and writing resumes by itself.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    ///
    /// Example: waygate run --config /etc/waygate/waygate.toml
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = "waygate.toml")]
        config: PathBuf,
        /// How long SIGTERM waits for in-flight requests before exiting anyway.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        drain_timeout: std::time::Duration,
        /// Threads serving client connections, each a single-threaded event loop that keeps a connection and
        /// its upstream connections on one core (default: one per CPU).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,
    },
    /// Run the gateway on an embedded configuration with demo targets on loopback, one healthy and one per
    /// common failure, and print the URLs to try; one alert rule, with the command that fires it and where it
    /// shows.
    ///
    /// Example: waygate demo --port 8080
    Demo {
        /// Gateway port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Admin port on 127.0.0.1.
        #[arg(long, default_value_t = 9901)]
        admin_port: u16,
        /// Threads serving client connections (default: one per CPU).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,
    },
    /// Validate a configuration file; errors are printed as FILE:LINE:COL: message.
    ///
    /// Example: waygate check-config waygate.toml
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Diagnose failures: from access logs, by probing targets, in packet captures, and in support bundles.
    Doctor {
        #[command(subcommand)]
        command: DoctorCommand,
    },
    /// Register, deregister and list targets through the admin API.
    ///
    /// Example: waygate targets deregister web 10.0.0.7:8080 --wait --config waygate.toml
    Targets {
        #[command(flatten)]
        admin: admin_client::AdminArgs,
        #[command(subcommand)]
        command: targets_cmd::TargetsCommand,
    },
    /// Explain one failed exchange from the flight recorder: a timeline of its phases to scale with the
    /// failing one marked, the cause, the evidence, the remediation, and its access-log and system-log lines.
    ///
    /// Example: waygate explain Root=1-6740a1b2-9f8e7d6c5b4a39281706f5e4 --config waygate.toml
    Explain {
        #[command(flatten)]
        admin: admin_client::AdminArgs,
        #[command(flatten)]
        args: explain::ExplainArgs,
    },
    /// Debug (trace) sessions: capture the next matching exchanges whole (phases drawn to scale, masked
    /// headers, connections), then show them.
    ///
    /// Example: waygate trace start --path /api --status 5xx --config waygate.toml
    Trace {
        #[command(flatten)]
        admin: admin_client::AdminArgs,
        #[command(subcommand)]
        command: trace_cmd::TraceCommand,
    },
    /// Run the fault lab's misbehaving targets by hand (all of them, or the ones named).
    ///
    /// Example: waygate faultlab refuse tls-blackhole
    Faultlab {
        /// Fault names; none means all. `--list` shows them.
        names: Vec<String>,
        /// List the faults and exit.
        #[arg(long)]
        list: bool,
    },
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    ///
    /// Example: waygate completions bash > /etc/bash_completion.d/waygate
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), generated from this command line.
    ///
    /// Example: waygate man > waygate.1 && man ./waygate.1
    Man,
}

#[derive(Subcommand)]
enum DoctorCommand {
    /// Explain every 5xx in access logs (AWS ALB, waygate ALB/JSON; files or directories, plain or gzip).
    ///
    /// Example: waygate doctor logs AWSLogs/ --since 2024-05-01T10:00 --html report.html
    Logs(waygate_doctor::LogsArgs),
    /// Check a target from this host the way the gateway reaches it: every resolved address, TCP, TLS
    /// (version, cipher, ALPN, certificates), optionally HTTP and the target's idle keep-alive.
    ///
    /// Example: waygate doctor probe https://10.0.0.7:443/health --ca ca.pem --keepalive
    Probe(waygate_doctor::ProbeArgs),
    /// Collect a support bundle (.tar.gz): redacted config, version, metrics, target groups, audit log, log
    /// excerpts, probe results, and a README saying what is in it and what could not be collected.
    ///
    /// Example: waygate doctor bundle --config waygate.toml --system-log waygate.log -o support.tar.gz
    Bundle(waygate_doctor::BundleArgs),
    /// Explain every TCP connection in a packet capture (pcap/pcapng) in the fault catalogue's words.
    ///
    /// Example: waygate doctor pcap cap.pcap --target 10.0.0.7:443
    Pcap(waygate_doctor::PcapArgs),
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    waygate_config::parse_duration(s)
}

/// Client connections run on worker threads of their own, so the gateway's commands need only a
/// single-threaded runtime for the control plane; every other command gets a multi-threaded one.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    match command {
        Command::Run { .. } | Command::Demo { .. } => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
}

/// `--workers`, or one per CPU.
fn worker_count(flag: Option<u16>) -> usize {
    flag.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_file = match logging::init(cli.log_format, cli.log_file.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("waygate: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match runtime_for(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("waygate: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Run { config, drain_timeout, workers } => {
            runtime.block_on(run::run(&config, drain_timeout, worker_count(workers)))
        }
        Command::Demo { port, admin_port, workers } => {
            runtime.block_on(demo::demo(port, admin_port, worker_count(workers)))
        }
        Command::CheckConfig { file } => check::check(&file),
        Command::Doctor { command: DoctorCommand::Logs(args) } => waygate_doctor::run_logs(&args),
        Command::Doctor { command: DoctorCommand::Probe(args) } => runtime.block_on(waygate_doctor::run_probe(&args)),
        Command::Doctor { command: DoctorCommand::Bundle(args) } => runtime.block_on(waygate_doctor::run_bundle(&args)),
        Command::Doctor { command: DoctorCommand::Pcap(args) } => waygate_doctor::run_pcap(&args),
        Command::Targets { admin, command } => runtime.block_on(targets_cmd::targets(&admin, &command)),
        Command::Explain { admin, args } => runtime.block_on(explain::explain(&admin, &args)),
        Command::Trace { admin, command } => runtime.block_on(trace_cmd::trace(&admin, &command)),
        Command::Faultlab { names, list } => runtime.block_on(faultlab_cmd::faultlab(&names, list)),
        Command::Completions { shell } => assets::completions(shell),
        Command::Man => assets::man(),
    };
    if let Some(file) = log_file
        && !file.close(std::time::Duration::from_secs(5))
    {
        eprintln!("waygate: the log file's last lines were not written within 5 s");
    }
    ExitCode::from(code)
}
