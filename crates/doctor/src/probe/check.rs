//! Probing one address the way the gateway reaches it, with the gateway's own code (`waygate-connect`): TCP
//! connect under connect_timeout, the TLS handshake under tls_handshake_timeout with the gateway's client
//! config, then optionally one HTTP/1.1 request ([`super::http`]) and a wait on the idle connection to see when
//! the target closes it ([`super::keepalive`]). Every failure goes through `AttemptFailure` and the
//! catalogue's classifier, so the probe names causes exactly as the gateway's logs do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use waygate_config::format_duration;
use waygate_connect::connector::{self, TlsTarget};
use waygate_connect::tls::PresentedChain;
use waygate_connect::transport::Transport;
use waygate_connect::{AttemptFailure, ConnCounters};

use super::cert;
use super::report::{AddressReport, Failure, Tcp, Tls};
use super::target::ProbeTarget;

/// Certificates expiring sooner than this are a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// A target's TLS client, built once per target with the gateway's builder.
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub seen: Arc<PresentedChain>,
    pub server_name: ServerName<'static>,
    pub sni: String,
    pub verify: bool,
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// A catalogue verdict from the gateway's failure type.
pub fn failure(f: &AttemptFailure, message: String) -> Failure {
    let cause = f.classify();
    Failure {
        cause: cause.name().to_owned(),
        phase: f.phase.to_string(),
        message,
        timed_out: f.timed_out.is_some(),
        errno: f.io.as_ref().and_then(std::io::Error::raw_os_error),
        remediation: cause.remediation().to_owned(),
    }
}

pub fn describe(f: &AttemptFailure) -> String {
    if let Some(t) = f.timed_out {
        return format!("no answer within {}", format_duration(t));
    }
    if let Some(tls) = &f.tls {
        return tls.to_string();
    }
    if let Some(h) = &f.hyper {
        return h.to_string();
    }
    f.io.as_ref().map_or_else(|| "failed".to_owned(), ToString::to_string)
}

/// Probes one resolved address of `t`.
pub async fn probe_address(t: &ProbeTarget, tls: Option<&TlsClient>, addr: SocketAddr) -> AddressReport {
    let mut report = AddressReport {
        address: addr.to_string(),
        family: if addr.is_ipv4() { "ipv4" } else { "ipv6" },
        healthy: false,
        failure: None,
        warnings: Vec::new(),
        tcp: Tcp { connected: false, ms: 0.0, local: None },
        tls: None,
        http: None,
        keepalive: None,
        bytes_written: 0,
        bytes_read: 0,
    };
    let started = Instant::now();
    let tcp = connector::open_tcp(addr, t.timers.connect_timeout).await;
    report.tcp.ms = ms(started.elapsed());
    let tcp = match tcp {
        Ok(tcp) => tcp,
        Err(f) => {
            report.failure = Some(failure(&f, describe(&f)));
            return report;
        }
    };
    report.tcp.connected = true;
    report.tcp.local = Some(tcp.counters.local.to_string());
    let counters = tcp.counters.clone();
    let transport = match tls {
        None => Transport::Plain(tcp.stream),
        Some(client) => match handshake(t, client, tcp.stream, &mut report).await {
            Some(stream) => stream,
            None => return finish(report, &counters),
        },
    };
    if let Some(path) = &t.http_path {
        super::http::exchange(t, path, transport, &counters, &mut report).await;
    }
    finish(report, &counters)
}

fn finish(mut report: AddressReport, counters: &ConnCounters) -> AddressReport {
    report.bytes_written = counters.bytes_written();
    report.bytes_read = counters.bytes_read();
    report.healthy = report.failure.is_none() && report.warnings.is_empty();
    report
}

async fn handshake(
    t: &ProbeTarget,
    client: &TlsClient,
    stream: waygate_connect::meter::Metered<tokio::net::TcpStream>,
    report: &mut AddressReport,
) -> Option<Transport> {
    let counters = stream.counters().clone();
    let target = TlsTarget { config: client.config.clone(), server_name: client.server_name.clone() };
    client.seen.take();
    let started = Instant::now();
    let result = connector::handshake(stream, &target, t.timers.tls_handshake_timeout).await;
    let elapsed = started.elapsed();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let chain = client.seen.take();
    let mut tls = Tls {
        completed: false,
        ms: ms(elapsed),
        sni: client.sni.clone(),
        verify: client.verify,
        version: None,
        cipher: None,
        alpn: None,
        name_matches: chain.first().map(|leaf| cert::name_matches(leaf, &client.server_name)),
        certificates: cert::describe(&chain, now),
        bytes_written: counters.bytes_written(),
        bytes_read: counters.bytes_read(),
    };
    let stream = match result {
        Ok(stream) => stream,
        Err(f) => {
            if let Some(conn) = &f.conn {
                (tls.bytes_written, tls.bytes_read) = (conn.bytes_written, conn.bytes_read);
            }
            let mut message = describe(&f);
            if f.timed_out.is_some() && tls.bytes_read == 0 && tls.bytes_written > 0 {
                message = format!(
                    "TCP connected, ClientHello sent ({} bytes), nothing read in {}",
                    tls.bytes_written,
                    format_duration(t.timers.tls_handshake_timeout)
                );
            }
            report.failure = Some(failure(&f, message));
            report.tls = Some(tls);
            return None;
        }
    };
    let session = stream.get_ref().1;
    tls.completed = true;
    tls.version = session.protocol_version().map(|v| version_name(&format!("{v:?}")));
    tls.cipher = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
    tls.alpn = session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
    if let Some(leaf) = tls.certificates.first()
        && leaf.days_to_expiry < EXPIRY_WARNING_DAYS
    {
        report
            .warnings
            .push(format!("the certificate expires in {} days ({}): renew it", leaf.days_to_expiry, leaf.not_after));
    }
    report.tls = Some(tls);
    Some(Transport::Tls(Box::new(stream)))
}

/// `TLSv1_3` → `TLSv1.3`.
fn version_name(debug: &str) -> String {
    debug.replace('_', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_durations() {
        assert_eq!(version_name("TLSv1_3"), "TLSv1.3");
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(ms(Duration::from_micros(1234)), 1.2);
    }
}
