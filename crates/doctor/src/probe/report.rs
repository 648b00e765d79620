//! The probe's findings as data (serialised as `--json`, schema `waygate.doctor.probe/1`, documented in
//! docs/doctor.md), rendered as one table per address, and the exit code they imply.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// JSON schema name; keys are only ever added.
pub const SCHEMA: &str = "waygate.doctor.probe/1";

/// Exit code: at least one address failed (a catalogue cause).
pub const EXIT_UNHEALTHY: u8 = 3;
/// Exit code: every address connected, but with warnings (keep-alive, certificate expiry, a 5xx).
pub const EXIT_WARNINGS: u8 = 4;

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub schema: &'static str,
    /// TARGET as given.
    pub input: String,
    pub healthy: bool,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub target_group: Option<String>,
    pub tls: bool,
    pub timeouts_ms: Timeouts,
    pub resolve: Resolve,
    pub addresses: Vec<AddressReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeouts {
    pub connect: u64,
    pub tls_handshake: u64,
    pub response: u64,
    pub pool_idle: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolve {
    pub ms: f64,
    pub addresses: Vec<String>,
    /// `TargetDnsFailure` and the resolver's message, when resolution failed.
    pub failure: Option<Failure>,
}

/// A catalogue cause with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub cause: String,
    pub phase: String,
    pub message: String,
    pub timed_out: bool,
    pub errno: Option<i32>,
    pub remediation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    pub address: String,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// No failure and no warning.
    pub healthy: bool,
    pub failure: Option<Failure>,
    pub warnings: Vec<String>,
    pub tcp: Tcp,
    pub tls: Option<Tls>,
    pub http: Option<Http>,
    pub keepalive: Option<KeepAlive>,
    /// Wire bytes (below TLS) over the whole probe of this address.
    pub bytes_written: u64,
    pub bytes_read: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tcp {
    pub connected: bool,
    pub ms: f64,
    pub local: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub completed: bool,
    pub ms: f64,
    pub sni: String,
    pub verify: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    /// The leaf certificate covers the server name (null when no certificate was presented).
    pub name_matches: Option<bool>,
    /// As presented, leaf first (also when verification failed).
    pub certificates: Vec<Certificate>,
    /// Bytes of the handshake: the blackhole shows bytes_written > 0 and bytes_read = 0.
    pub bytes_written: u64,
    pub bytes_read: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// Whole days until not_after; negative once expired.
    pub days_to_expiry: i64,
    pub self_signed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Http {
    pub path: String,
    pub completed: bool,
    pub ms: f64,
    pub status: Option<u16>,
    pub version: Option<String>,
    pub body_bytes: u64,
    /// The `Keep-Alive` header the target advertised, verbatim.
    pub keep_alive_header: Option<String>,
    /// The target asked to close the connection after the response (`Connection: close`).
    pub connection_close: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeepAlive {
    /// How long the idle connection stayed open before the target closed it; null if it was still open.
    pub closed_after_ms: Option<u64>,
    /// How long the probe waited at most (`--keepalive-max`).
    pub max_wait_ms: u64,
    pub pool_idle_timeout_ms: u64,
    /// `target` (the target closes idle connections first: keep-alive race risk), `gateway`, or `unknown`.
    pub shorter: &'static str,
    pub advice: String,
}

impl ProbeReport {
    pub fn exit_code(&self) -> u8 {
        let addrs = || self.targets.iter().flat_map(|t| &t.addresses);
        let failed = self.targets.iter().any(|t| t.resolve.failure.is_some() || t.addresses.is_empty())
            || addrs().any(|a| a.failure.is_some());
        if failed {
            EXIT_UNHEALTHY
        } else if addrs().any(|a| !a.warnings.is_empty()) {
            EXIT_WARNINGS
        } else {
            0
        }
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// One table per address, plus a line per target for resolution.
pub fn render(r: &ProbeReport) -> String {
    let mut out = String::new();
    for t in &r.targets {
        let group = t.target_group.as_ref().map(|g| format!(" (target group {g})")).unwrap_or_default();
        out += &format!("{}{group}\n", t.target);
        match &t.resolve.failure {
            Some(f) => {
                out +=
                    &format!("  resolve: {} in {}: {}\n  {}\n\n", f.cause, ms(t.resolve.ms), f.message, f.remediation)
            }
            None => out += &format!("  resolved to {} in {}\n\n", t.resolve.addresses.join(", "), ms(t.resolve.ms)),
        }
        for a in &t.addresses {
            out += &address_table(a).to_string();
            out += "\n";
            if let Some(f) = &a.failure {
                out += &format!("  {}: {}\n", f.cause, f.remediation);
            }
            for w in &a.warnings {
                out += &format!("  warning: {w}\n");
            }
            if let Some(k) = a.keepalive.as_ref().filter(|k| k.shorter != "target") {
                out += &format!("  keep-alive: {}\n", k.advice);
            }
            out += "\n";
        }
    }
    out += match r.exit_code() {
        0 => "every address is healthy\n",
        EXIT_WARNINGS => "every address is reachable, with warnings: see above\n",
        _ => "NOT HEALTHY: see above\n",
    };
    out
}

fn address_table(a: &AddressReport) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if table.width().is_none() {
        // Not a terminal (a pipe, a file, a ticket): wrap at a readable width anyway.
        table.set_width(110);
    }
    let verdict = match &a.failure {
        Some(f) => Cell::new(format!("{} ({})", f.cause, f.phase)).fg(Color::Red),
        None if !a.warnings.is_empty() => Cell::new("reachable, with warnings").fg(Color::Yellow),
        None => Cell::new("healthy").fg(Color::Green),
    };
    table.set_header(vec![Cell::new(&a.address), verdict]);
    let tcp = if a.tcp.connected {
        format!("connected in {} from {}", ms(a.tcp.ms), a.tcp.local.as_deref().unwrap_or("-"))
    } else {
        format!("failed after {}", ms(a.tcp.ms))
    };
    table.add_row(vec!["tcp".to_owned(), tcp]);
    if let Some(tls) = &a.tls {
        table.add_row(vec!["tls".to_owned(), tls_line(tls)]);
        for (i, c) in tls.certificates.iter().enumerate() {
            let ss = if c.self_signed { ", self-signed" } else { "" };
            table.add_row(vec![
                format!("cert {i}"),
                format!(
                    "{}\nissuer {}\nnot after {} ({} days{ss})",
                    c.subject, c.issuer, c.not_after, c.days_to_expiry
                ),
            ]);
        }
    }
    if let Some(h) = &a.http {
        let line = match h.status {
            Some(s) => format!(
                "GET {} → {} {} in {}, {} body bytes{}",
                h.path,
                h.version.as_deref().unwrap_or("-"),
                s,
                ms(h.ms),
                h.body_bytes,
                h.keep_alive_header.as_ref().map(|k| format!(", Keep-Alive: {k}")).unwrap_or_default()
            ),
            None => format!("GET {} failed after {}", h.path, ms(h.ms)),
        };
        table.add_row(vec!["http".to_owned(), line]);
    }
    if let Some(k) = &a.keepalive {
        let seen = match k.closed_after_ms {
            Some(v) => format!("target closed the idle connection after {:.1} s", v as f64 / 1000.0),
            None => format!("still open after {:.1} s", k.max_wait_ms as f64 / 1000.0),
        };
        table.add_row(vec![
            "keep-alive".to_owned(),
            format!(
                "{seen}; pool_idle_timeout {:.1} s: {}",
                k.pool_idle_timeout_ms as f64 / 1000.0,
                match k.shorter {
                    "target" => "the target closes first (keep-alive race risk)",
                    "gateway" => "the gateway closes first (good)",
                    _ => "inconclusive",
                }
            ),
        ]);
    }
    table.add_row(vec!["bytes".to_owned(), format!("written {}, read {}", a.bytes_written, a.bytes_read)]);
    table
}

fn tls_line(tls: &Tls) -> String {
    let head = if tls.completed {
        format!(
            "{} {} ALPN {} in {}",
            tls.version.as_deref().unwrap_or("-"),
            tls.cipher.as_deref().unwrap_or("-"),
            tls.alpn.as_deref().unwrap_or("none"),
            ms(tls.ms)
        )
    } else {
        format!("handshake failed after {}", ms(tls.ms))
    };
    let name = match tls.name_matches {
        Some(true) => "matches",
        Some(false) => "does NOT match",
        None => "not checked",
    };
    format!(
        "{head}\nSNI {} ({name}), verify {}\nhandshake bytes written {}, read {}",
        tls.sni,
        if tls.verify { "on" } else { "off" },
        tls.bytes_written,
        tls.bytes_read
    )
}
