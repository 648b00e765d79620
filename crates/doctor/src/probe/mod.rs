//! `waygate doctor probe TARGET`: checks a target from this host the way the gateway reaches it, replacing
//! the playbooks' `telnet host 443` and guesswork. Every resolved address (IPv4 and IPv6) is probed on its
//! own with the gateway's connection code (`waygate-connect`): TCP connect, TLS handshake (version, cipher,
//! ALPN, certificate chain, name match), optionally an HTTP/1.1 request and the target's idle keep-alive.
//! Failures are named by the fault catalogue, with their evidence (a TLS blackhole: ClientHello bytes
//! written, nothing read).
//!
//! Flow: [`target`] (TARGET → targets with timers) → resolve → [`check::probe_address`] per address →
//! [`report::ProbeReport`] → a table per address or `--json`.
//!
//! Exit codes: 0 every address healthy; 1 user error (bad TARGET, config, flag); 2 internal error;
//! 3 at least one address (or a resolution) failed; 4 all reachable but with warnings (keep-alive shorter
//! than pool_idle_timeout, a certificate expiring within 30 days, a 5xx from the target).

pub mod cert;
pub mod check;
pub mod http;
pub mod keepalive;
pub mod report;
pub mod target;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use waygate_connect::connector;
use waygate_connect::tls;

use check::{TlsClient, failure, ms};
use report::{ProbeReport, Resolve, TargetReport, Timeouts};
pub use target::ProbeTarget;

/// Check a target the way the gateway would reach it.
///
/// Examples: waygate doctor probe https://api.internal/health --ca ca.pem;
/// waygate doctor probe 10.0.0.7:443; waygate doctor probe api --config waygate.toml --keepalive
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// `host:port` (TLS when --tls or port 443), `http(s)://host[:port]/path` (sends GET path), or a target
    /// group name of --config (every target of the group, with the group's settings).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// The gateway's configuration: target group names, timeouts, TLS settings and pool_idle_timeout.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP connect timeout (default: the target group's connect_timeout, else 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// TLS handshake timeout (default: the target group's tls_handshake_timeout, else 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub tls_handshake_timeout: Option<Duration>,
    /// Time allowed for the response head, and again for the body (default: response_timeout, else 60s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub response_timeout: Option<Duration>,
    /// Speak TLS to a `host:port` target (implied for port 443 and https:// URLs).
    #[arg(long)]
    pub tls: bool,
    /// Trust this PEM CA bundle instead of the system roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the target's certificate (still shown).
    #[arg(long)]
    pub insecure: bool,
    /// Server name to send and verify (default: the target's host, or the group's tls.sni).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Send one HTTP/1.1 GET and check the response head (default for URL targets).
    #[arg(long)]
    pub http: bool,
    /// Path of the GET (default `/`, or the group's health check path).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Measure how long the target keeps an idle connection open, against pool_idle_timeout (implies --http).
    #[arg(long)]
    pub keepalive: bool,
    /// How long --keepalive waits at most.
    #[arg(long, value_name = "DURATION", default_value = "75s", value_parser = parse_duration)]
    pub keepalive_max: Duration,
    /// The gateway's pool_idle_timeout to compare with (default: the group's, else 60s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub pool_idle_timeout: Option<Duration>,
    /// Print JSON (schema `waygate.doctor.probe/1`, see docs/doctor.md) instead of tables.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    waygate_config::parse_duration(s)
}

impl ProbeArgs {
    /// Arguments for probing `target` with every option at its default.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            config: None,
            connect_timeout: None,
            tls_handshake_timeout: None,
            response_timeout: None,
            tls: false,
            ca: None,
            insecure: false,
            sni: None,
            http: false,
            path: None,
            keepalive: false,
            keepalive_max: Duration::from_secs(75),
            pool_idle_timeout: None,
            json: false,
        }
    }
}

/// Runs `waygate doctor probe`, printing to stdout; returns the exit code.
pub async fn run_probe(args: &ProbeArgs) -> u8 {
    let targets = match target::targets(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("waygate doctor probe: {e}");
            return 1;
        }
    };
    let report = match probe(&args.target, &targets).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("waygate doctor probe: {e}");
            return 1;
        }
    };
    match crate::cli::write_report("probe", &report, args.json, report::render, &mut std::io::stdout().lock()) {
        Ok(()) => report.exit_code(),
        Err(code) => code,
    }
}

/// Probes every address of every target. Errors are the user's (an unreadable CA bundle, a bad SNI).
pub async fn probe(input: &str, targets: &[ProbeTarget]) -> Result<ProbeReport, String> {
    let progress = std::io::stderr().is_terminal();
    let mut reports = Vec::with_capacity(targets.len());
    for t in targets {
        let client = match &t.tls {
            None => None,
            Some(s) => {
                let (config, seen) = tls::client_config_recording(s.verify, s.ca.as_deref())?;
                let server_name = tls::server_name(s.sni.as_deref(), &t.host)?;
                let sni = s.sni.clone().unwrap_or_else(|| t.host.clone());
                Some(TlsClient { config, seen, server_name, sni, verify: s.verify })
            }
        };
        if progress {
            eprintln!("probing {} ...", t.authority);
        }
        let started = Instant::now();
        let resolved = connector::resolve_all(&t.host, t.port, t.timers.connect_timeout).await;
        let mut resolve = Resolve { ms: ms(started.elapsed()), addresses: Vec::new(), failure: None };
        let mut addresses = Vec::new();
        match resolved {
            Err(f) => resolve.failure = Some(failure(&f, f.io.as_ref().map_or("timed out".into(), |e| e.to_string()))),
            Ok(addrs) => {
                resolve.addresses = addrs.iter().map(ToString::to_string).collect();
                for addr in addrs {
                    addresses.push(check::probe_address(t, client.as_ref(), addr).await);
                }
            }
        }
        reports.push(TargetReport {
            target: t.authority.clone(),
            target_group: t.target_group.clone(),
            tls: t.tls.is_some(),
            timeouts_ms: Timeouts {
                connect: t.timers.connect_timeout.as_millis() as u64,
                tls_handshake: t.timers.tls_handshake_timeout.as_millis() as u64,
                response: t.timers.response_timeout.as_millis() as u64,
                pool_idle: t.timers.pool_idle_timeout.as_millis() as u64,
            },
            resolve,
            addresses,
        });
    }
    let mut report = ProbeReport { schema: report::SCHEMA, input: input.to_owned(), healthy: false, targets: reports };
    report.healthy = report.exit_code() == 0;
    Ok(report)
}
