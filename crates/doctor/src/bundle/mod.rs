//! `waygate doctor bundle`: everything support needs in one `.tar.gz`, replacing the playbooks' "collect the
//! following diagnostic information" lists: the config (secrets redacted, [`redact`]), the version, the
//! admin API's metrics, target groups and audit log ([`admin`]), system and access log excerpts ([`logs`]),
//! probe results for every target of every target group ([`crate::probe`]), and a README.txt saying what
//! each file is and what could not be collected, and why. Whatever fails, the bundle is still written with
//! what could be collected; no file containing `PRIVATE KEY` is ever written ([`archive`]).
//!
//! Exit codes: 0 bundle written (possibly partial: see its README); 1 user error (unreadable --config, bad
//! flag); 2 the bundle could not be written.

pub mod admin;
pub mod archive;
pub mod logs;
pub mod readme;
pub mod redact;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use waygate_config::Config;

use crate::probe::{ProbeArgs, ProbeTarget, probe, target::group_targets};
use crate::time::format_timestamp;
use admin::AdminApi;
use archive::Contents;

/// Collect a support bundle (.tar.gz).
///
/// Example: waygate doctor bundle --config /etc/waygate/waygate.toml --request-id Root=1-... -o support.tar.gz
#[derive(Debug, Clone, clap::Args)]
pub struct BundleArgs {
    /// The gateway's configuration file (included with secrets redacted).
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The admin API (default: http:// and the config's [admin] bind).
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// Only access-log lines of this request (x-request-id / trace id), searched in every access-log file.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// The gateway's system log (its stderr, as captured by journald or a file): the last --lines lines.
    #[arg(long, value_name = "FILE")]
    pub system_log: Option<PathBuf>,
    /// How many system-log lines to include.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub lines: usize,
    /// Without --request-id: how many of the newest access-log files to take lines from.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub access_log_files: usize,
    /// At most this many access-log lines in all.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub access_log_lines: usize,
    /// Do not probe the targets.
    #[arg(long)]
    pub no_probe: bool,
    /// Cap on each probe's connect, TLS handshake and response timeouts (default: the groups' own).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub probe_timeout: Option<Duration>,
    /// Where to write the bundle (default: waygate-bundle-<UTC time>.tar.gz in the current directory).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    waygate_config::parse_duration(s)
}

/// Runs `waygate doctor bundle`; returns the exit code.
pub async fn run_bundle(args: &BundleArgs) -> u8 {
    let now = now_micros();
    let stamp: String = format_timestamp(now).chars().take(19).filter(|c| c.is_ascii_alphanumeric()).collect();
    let dir_name = format!("waygate-bundle-{stamp}Z");
    let out = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{dir_name}.tar.gz")));
    let contents = match collect(args, now).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("waygate doctor bundle: {e}");
            return 1;
        }
    };
    if let Err(e) = archive::write_tar_gz(&out, &dir_name, &contents.files) {
        eprintln!("waygate doctor bundle: cannot write the bundle: {e}");
        return 2;
    }
    println!(
        "bundle written to {} ({} files; {} items unavailable, listed in README.txt)",
        out.display(),
        contents.files.len(),
        contents.unavailable.len()
    );
    0
}

/// Everything that goes into the bundle, README last. Errors only for what makes a bundle pointless.
pub async fn collect(args: &BundleArgs, now: i64) -> Result<Contents, String> {
    let progress = |step: &str| {
        if std::io::stderr().is_terminal() {
            eprintln!("bundle: {step} ...");
        }
    };
    let path = &args.config;
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    let mut c = Contents::default();
    let config_name = path.file_name().map_or("waygate.toml".into(), |n| n.to_string_lossy().into_owned());
    match redact::redact_config(&text) {
        Ok((redacted, n)) => {
            c.add(
                &format!("config/{config_name}"),
                redacted.into_bytes(),
                format!("{} with {n} secret values redacted (re-serialised: comments dropped)", path.display()),
            );
        }
        Err(e) => c.missing(format!("config/{config_name}: not included, {e}")),
    }
    let version = format!(
        "waygate {}\ncreated {}\nhost {}\n",
        env!("CARGO_PKG_VERSION"),
        format_timestamp(now),
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim()
    );
    c.add("version.txt", version.into_bytes(), "waygate version, bundle creation time (UTC) and host name");
    let config = match waygate_config::load(path) {
        Ok(config) => Some(config),
        Err(e) => {
            c.add("config/errors.txt", e.to_string().into_bytes(), "why the config did not validate");
            c.missing(
                "the config did not validate (config/errors.txt): its access logs, admin token and targets are unknown",
            );
            None
        }
    };
    let (send, tokens) = admin_tokens(config.as_ref(), &mut c);
    progress("admin API");
    admin_files(args, config.as_ref(), send, &mut c).await;
    progress("logs");
    system_log(args, &mut c);
    access_logs(args, config.as_ref(), &mut c);
    if args.no_probe {
        c.missing("probe/probe.json: --no-probe");
    } else if let Some(config) = &config {
        progress("probing every target");
        probes(args, config, &mut c).await;
    }
    for token in tokens.iter().filter(|t| t.len() >= 4) {
        scrub(&mut c, token);
    }
    let readme = readme::render(&c, args);
    c.add("README.txt", readme.into_bytes(), "this file");
    Ok(c)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The token to send and the secrets to scrub, from `[admin] token_file` read as the gateway reads it
/// ([`waygate_config::TokenFile`]): its first token is sent and all are scrubbed from the bundle, never added to
/// it. A file the gateway would refuse sends nothing, and every word of its non-comment lines is scrubbed, since
/// which of them are secrets cannot be told.
fn admin_tokens(config: Option<&Config>, c: &mut Contents) -> (Option<String>, Vec<String>) {
    let Some(file) = config.and_then(|c| c.admin.token_file.as_ref()) else { return (None, Vec::new()) };
    match waygate_config::TokenFile::load(file) {
        Ok(tokens) => (Some(tokens.first().to_owned()), tokens.entries().map(|(_, t)| t.to_owned()).collect()),
        Err(e) => {
            c.missing(format!("admin token {e} (admin requests sent without it)"));
            let text = std::fs::read_to_string(file).unwrap_or_default();
            (None, waygate_config::TokenFile::words(&text).map(str::to_owned).collect())
        }
    }
}

/// A token echoed by some endpoint must not leak through the bundle either.
fn scrub(c: &mut Contents, token: &str) {
    for (_, bytes, _) in &mut c.files {
        if memchr::memmem::find(bytes, token.as_bytes()).is_some() {
            *bytes = String::from_utf8_lossy(bytes).replace(token, redact::REDACTED).into_bytes();
        }
    }
}

fn admin_api(args: &BundleArgs, config: Option<&Config>, token: Option<String>) -> Result<AdminApi, String> {
    let authority = match (&args.admin, config) {
        (Some(url), _) => admin::parse_admin_url(url)?,
        (None, Some(config)) => {
            let bind = config.admin.bind;
            let ip = match bind.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            SocketAddr::new(ip, bind.port()).to_string()
        }
        (None, None) => return Err("no --admin URL and no valid config to find the admin listener".to_owned()),
    };
    Ok(AdminApi { authority, token })
}

async fn admin_files(args: &BundleArgs, config: Option<&Config>, token: Option<String>, c: &mut Contents) {
    const FILES: [(&str, &str, &str); 3] = [
        ("/metrics", "admin/metrics.txt", "GET /metrics: the Prometheus metrics snapshot"),
        ("/api/v1/target-groups", "admin/target-groups.json", "GET /api/v1/target-groups: targets, health, keep-alive"),
        ("/api/v1/audit", "admin/audit.json", "GET /api/v1/audit: control-plane events (register, deregister, reload)"),
    ];
    let api = match admin_api(args, config, token) {
        Ok(api) => api,
        Err(e) => {
            c.missing(format!("admin/*: {e}"));
            return;
        }
    };
    for (path, name, what) in FILES {
        match api.get(path).await {
            Ok((200, body)) => {
                c.add(name, body, what);
            }
            Ok((404, _)) => c.missing(format!("{name}: GET {path} answered 404 (this gateway has no such endpoint)")),
            Ok((401, _)) => c.missing(format!("{name}: GET {path} answered 401 (admin token missing or rejected)")),
            Ok((status, _)) => c.missing(format!("{name}: GET {path} answered {status}")),
            Err(e) => {
                c.missing(format!("admin/*: the admin API at http://{} is unreachable: {e}", api.authority));
                return;
            }
        }
    }
}

fn system_log(args: &BundleArgs, c: &mut Contents) {
    let Some(path) = &args.system_log else {
        c.missing("logs/system.log: no --system-log FILE given");
        return;
    };
    match logs::tail(path, args.lines) {
        Ok(text) => {
            c.add("logs/system.log", text.into_bytes(), format!("the last {} lines of {}", args.lines, path.display()));
        }
        Err(e) => c.missing(format!("logs/system.log: {e}")),
    }
}

fn access_logs(args: &BundleArgs, config: Option<&Config>, c: &mut Contents) {
    let Some(config) = config else { return };
    let Some(log) = &config.access_log else {
        c.missing("logs/access/: the config has no [access_log] dir");
        return;
    };
    let files = match logs::access_files(&log.dir) {
        Ok(f) => f,
        Err(e) => {
            c.missing(format!("logs/access/: {e}"));
            return;
        }
    };
    let id = args.request_id.as_deref();
    let (picked, errors) = logs::access_lines(&files, id, args.access_log_files, args.access_log_lines);
    for e in errors {
        c.missing(format!("logs/access/: {e}"));
    }
    if picked.is_empty() {
        c.missing(match id {
            Some(id) => format!(
                "logs/access/: no line with request id {id:?} in {} files of {}",
                files.len(),
                log.dir.display()
            ),
            None => format!("logs/access/: no access-log lines in {}", log.dir.display()),
        });
    }
    let what = match id {
        Some(id) => format!("access-log lines of request {id}"),
        None => "the most recent access-log lines".to_owned(),
    };
    for (name, text) in picked {
        c.add(&format!("logs/access/{name}"), text.into_bytes(), what.clone());
    }
}

async fn probes(args: &BundleArgs, config: &Config, c: &mut Contents) {
    let mut targets: Vec<ProbeTarget> = Vec::new();
    for group in &config.target_groups {
        let mut pa = ProbeArgs::new(group.name.clone());
        pa.http = true;
        if let Some(cap) = args.probe_timeout {
            pa.connect_timeout = Some(group.connect_timeout.min(cap));
            pa.tls_handshake_timeout = Some(group.tls_handshake_timeout.min(cap));
            pa.response_timeout = Some(group.response_timeout.min(cap));
        }
        match group_targets(&pa, group) {
            Ok(t) => targets.extend(t),
            Err(e) => c.missing(format!("probe: {e}")),
        }
    }
    // Every target at once: a blackholed one costs its own timeout, not everyone's.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        tasks.spawn(async move { (i, probe("bundle", std::slice::from_ref(&t)).await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(report))) => results.push((i, report)),
            Ok((_, Err(e))) => c.missing(format!("probe: {e}")),
            Err(e) => c.missing(format!("probe: a probe task failed: {e}")),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let mut all = crate::probe::report::ProbeReport {
        schema: crate::probe::report::SCHEMA,
        input: "every target of every target group".to_owned(),
        healthy: false,
        targets: results.into_iter().flat_map(|(_, r)| r.targets).collect(),
    };
    all.healthy = all.exit_code() == 0;
    match serde_json::to_vec_pretty(&all) {
        Ok(json) => {
            c.add("probe/probe.json", json, "waygate doctor probe --json for every target of every target group");
        }
        Err(e) => c.missing(format!("probe/probe.json: {e}")),
    }
}
