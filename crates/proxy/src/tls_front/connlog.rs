//! The connection log (`[connection_log] dir`): one line per client TLS connection, failed handshakes
//! included, in ALB's connection-log format, written by the access log's writer (its slots, files and
//! wall-clock rotation) under ALB's names (`conn_log.{account}_elasticloadbalancing_...log`):
//!
//! `time client_ip client_port listener_port tls_protocol tls_cipher tls_handshake_latency
//! "leaf_client_cert_subject" leaf_client_cert_validity leaf_client_cert_serial_number tls_verify_status
//! conn_trace_id tls_keyexchange elb ip_address`
//!
//! `time` is when the handshake ended (ISO 8601, microseconds); the latency is in seconds with three decimals,
//! `-` when the handshake failed (as ALB writes it), as are the protocol, cipher and key exchange of a failed
//! one; the certificate fields are `-` when the client sent none (a rejected certificate's are written);
//! `tls_verify_status` is `Success` or `Failed:<code>` ([`super::outcome`]); `conn_trace_id` is the one every
//! access-log line of the connection ends with; `elb` the access log's `app/waygate/<listener>`; `ip_address`
//! the address the client connected to.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex;
use waygate_telemetry::{AccessLog, AccessLogConfig, AccessLogCounters, AccessLogHandle, LogFormat, NameParts};

use super::leaf::Leaf;

/// One connection's line.
#[derive(Debug)]
pub struct Line<'a> {
    pub time: SystemTime,
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub listener_port: u16,
    /// Protocol, cipher, key exchange and latency of a completed handshake; `None`: it failed.
    pub session: Option<(&'a str, &'a str, &'a str, Duration)>,
    pub leaf: Option<&'a Leaf>,
    /// `Err(code)`: the handshake failed.
    pub status: Result<(), &'static str>,
    pub conn_trace_id: &'a str,
    pub elb: &'a str,
}

/// Writes `line` (without its newline).
pub fn format(line: &Line<'_>, out: &mut String) {
    waygate_telemetry::write_iso8601(out, line.time);
    let _ = write!(out, " {} {} {} ", line.client.ip(), line.client.port(), line.listener_port);
    match &line.session {
        Some((protocol, cipher, _, latency)) => {
            let _ = write!(out, "{protocol} {cipher} {}.{:03} ", latency.as_secs(), latency.subsec_millis());
        }
        None => out.push_str("- - - "),
    }
    match line.leaf {
        Some(leaf) => {
            out.push('"');
            quoted_into(&leaf.subject, out);
            let _ = write!(out, "\" {} {} ", leaf.validity, leaf.serial);
        }
        None => out.push_str("- - - "),
    }
    match line.status {
        Ok(()) => out.push_str("Success"),
        Err(code) => {
            out.push_str("Failed:");
            out.push_str(code);
        }
    }
    let kx = line.session.as_ref().map_or("-", |s| s.2);
    let _ = write!(out, " {} {kx} {} {}", line.conn_trace_id, line.elb, line.local.ip());
}

/// A quoted field's text: a `"` or a control character would end or break the line, so they are written
/// percent-encoded.
fn quoted_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if c == '"' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// The connection log in force: swapped when `[connection_log]` changes, drained when replaced.
#[derive(Debug, Default)]
pub struct ConnectionLog {
    handle: ArcSwapOption<AccessLogHandle>,
    /// The directory written now (`None`: off).
    current: Mutex<Option<PathBuf>>,
}

impl ConnectionLog {
    /// Writes one line, if the log is on.
    pub fn log(&self, line: &Line<'_>) {
        if let Some(handle) = self.handle.load().as_deref() {
            let mut text = String::with_capacity(256);
            format(line, &mut text);
            handle.log_line(&text);
        }
    }

    /// Whether lines are written now.
    pub fn is_on(&self) -> bool {
        self.handle.load().is_some()
    }

    /// Starts, moves or stops the log to match `wanted`; the previous writer is drained first. `node` names this
    /// instance in file names, as the access log's do.
    pub async fn sync(&self, wanted: Option<PathBuf>, node: &str, counters: AccessLogCounters) -> Result<(), String> {
        let mut current = self.current.lock().await;
        if *current == wanted {
            return Ok(());
        }
        let handle = match &wanted {
            None => None,
            Some(dir) => {
                let naming = NameParts { prefix: "conn_log.", ..NameParts::new("waygate", node) };
                let config =
                    AccessLogConfig { log_name: "connection log", ..AccessLogConfig::new(dir, LogFormat::Alb, naming) };
                let (handle, _writer) = AccessLog::start(config, counters)
                    .map_err(|e| format!("connection log: cannot write to {}: {e}", dir.display()))?;
                tracing::info!(target: "waygate::connection_log", dir = %dir.display(), "connection log on");
                Some(Arc::new(handle))
            }
        };
        if let Some(old) = self.handle.swap(handle) {
            old.shutdown().await;
        }
        *current = wanted;
        Ok(())
    }

    /// Stops the log, every queued line written.
    pub async fn shutdown(&self) {
        if let Some(old) = self.handle.swap(None) {
            old.shutdown().await;
        }
        *self.current.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (a client certificate verified on port 443), written from its own values: the
    /// same twelve fields, then the ones ALB appended since (key exchange, elb, node address).
    #[test]
    fn aws_documented_example_is_written_field_for_field() {
        const AWS: &str = "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 \
            4.036 \"CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US\" \
            NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success \
            TID_3180a73013c8ca4bac2f731159d4b0fe";
        let leaf = Leaf {
            subject: "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US".into(),
            issuer: "-".into(),
            serial: "FEF257372D5C14D4".into(),
            validity: "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z".into(),
        };
        let line = Line {
            time: SystemTime::UNIX_EPOCH + Duration::new(1_696_439_115, 514_108_000),
            client: "203.0.113.1:36280".parse().unwrap(),
            local: "10.0.0.5:443".parse().unwrap(),
            listener_port: 443,
            session: Some(("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "X25519", Duration::from_millis(4036))),
            leaf: Some(&leaf),
            status: Ok(()),
            conn_trace_id: "TID_3180a73013c8ca4bac2f731159d4b0fe",
            elb: "app/waygate/public",
        };
        let mut out = String::new();
        format(&line, &mut out);
        assert_eq!(out, format!("{AWS} X25519 app/waygate/public 10.0.0.5"));
    }

    #[test]
    fn a_failed_handshake_has_dashes_and_its_code() {
        let leaf = Leaf {
            subject: "CN=a \"quoted\" name,O=Example".into(),
            issuer: "CN=ca".into(),
            serial: "02".into(),
            validity: "NotBefore=2024-01-02T19:17:20Z;NotAfter=2024-04-02T19:17:20Z".into(),
        };
        let line = Line {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_712_341_889),
            client: "203.0.113.1:36280".parse().unwrap(),
            local: "10.0.0.5:443".parse().unwrap(),
            listener_port: 443,
            session: None,
            leaf: Some(&leaf),
            status: Err("ClientCertExpired"),
            conn_trace_id: "TID_1",
            elb: "app/waygate/public",
        };
        let mut out = String::new();
        format(&line, &mut out);
        assert_eq!(
            out,
            "2024-04-05T18:31:29.000000Z 203.0.113.1 36280 443 - - - \"CN=a %22quoted%22 name,O=Example\" \
             NotBefore=2024-01-02T19:17:20Z;NotAfter=2024-04-02T19:17:20Z 02 Failed:ClientCertExpired TID_1 - \
             app/waygate/public 10.0.0.5"
        );
    }
}
