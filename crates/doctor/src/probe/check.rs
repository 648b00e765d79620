//! Probing one address the way the gateway reaches it, with the gateway's own code (`waygate-connect`): TCP
//! connect under connect_timeout, the TLS handshake under tls_handshake_timeout with the gateway's client
//! config, then optionally one HTTP/1.1 request (hyper's client, the gateway's 32 KiB head limit) and a wait on
//! the idle connection to see when the target closes it. Every failure goes through `AttemptFailure` and the
//! catalogue's classifier, so the probe names causes exactly as the gateway's logs do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use waygate_connect::connector::{self, TlsTarget};
use waygate_connect::tls::PresentedChain;
use waygate_connect::transport::Transport;
use waygate_connect::{AttemptFailure, ConnCounters};
use waygate_faults::Phase;

use super::cert;
use super::report::{AddressReport, Failure, Http, KeepAlive, Tcp, Tls};
use super::target::ProbeTarget;

/// The gateway's response head limit (ALB's).
const MAX_RESPONSE_HEAD: usize = 32 * 1024;
/// Response bodies are read (and counted) up to this size; the rest is not needed to judge the target.
const MAX_BODY: u64 = 4 * 1024 * 1024;
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

fn describe(f: &AttemptFailure) -> String {
    if let Some(t) = f.timed_out {
        return format!("no answer within {}", humantime(t));
    }
    if let Some(tls) = &f.tls {
        return tls.to_string();
    }
    if let Some(h) = &f.hyper {
        return h.to_string();
    }
    f.io.as_ref().map_or_else(|| "failed".to_owned(), ToString::to_string)
}

pub fn humantime(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
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
        exchange(t, path, transport, &counters, &mut report).await;
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
                    humantime(t.timers.tls_handshake_timeout)
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

async fn exchange(
    t: &ProbeTarget,
    path: &str,
    transport: Transport,
    counters: &Arc<ConnCounters>,
    report: &mut AddressReport,
) {
    let mut http = Http {
        path: path.to_owned(),
        completed: false,
        ms: 0.0,
        status: None,
        version: None,
        body_bytes: 0,
        keep_alive_header: None,
        connection_close: false,
    };
    let started = Instant::now();
    counters.begin_use();
    let io = TokioIo::new(transport);
    let (mut sender, conn) = match http1::Builder::new().max_header_size(MAX_RESPONSE_HEAD).handshake(io).await {
        Ok(parts) => parts,
        Err(e) => {
            let f = AttemptFailure::from_hyper(Phase::SendRequest, e).with_conn(counters.snapshot(false, None));
            report.failure = Some(failure(&f, describe(&f)));
            report.http = Some(http);
            return;
        }
    };
    let conn_task = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, &t.authority)
        .header(http::header::USER_AGENT, concat!("waygate-doctor-probe/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            report.warnings.push(format!("cannot build a request for path {path:?}: {e}"));
            report.http = Some(http);
            return;
        }
    };
    let timeout = t.timers.response_timeout;
    let response = tokio::time::timeout(timeout, sender.send_request(request)).await;
    let response = match response {
        Err(_) => Err(AttemptFailure::timeout(Phase::AwaitHeaders, timeout)),
        Ok(Err(e)) => Err(AttemptFailure::from_hyper(Phase::AwaitHeaders, e)),
        Ok(Ok(r)) => Ok(r),
    };
    let response = match response {
        Ok(r) => r,
        Err(f) => {
            let f = f.with_conn(counters.snapshot(false, None));
            http.ms = ms(started.elapsed());
            report.failure = Some(failure(&f, describe(&f)));
            report.http = Some(http);
            conn_task.abort();
            return;
        }
    };
    http.status = Some(response.status().as_u16());
    http.version = Some(format!("{:?}", response.version()));
    http.keep_alive_header = response.headers().get("keep-alive").and_then(|v| v.to_str().ok()).map(str::to_owned);
    http.connection_close = response
        .headers()
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    let mut body = response.into_body();
    let deadline = tokio::time::Instant::now() + timeout;
    let body_result = loop {
        if http.body_bytes >= MAX_BODY {
            break Ok(false);
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break Err(AttemptFailure::timeout(Phase::StreamBody, timeout)),
            Ok(None) => break Ok(true),
            Ok(Some(Err(e))) => break Err(AttemptFailure::from_hyper(Phase::StreamBody, e)),
            Ok(Some(Ok(frame))) => {
                http.body_bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
        }
    };
    drop(body);
    http.ms = ms(started.elapsed());
    let whole = match body_result {
        Ok(whole) => whole,
        Err(f) => {
            let mut f = f.with_conn(counters.snapshot(false, None));
            f.response_started = true;
            report.failure = Some(failure(&f, describe(&f)));
            http.completed = false;
            report.http = Some(http);
            conn_task.abort();
            return;
        }
    };
    http.completed = true;
    if http.status.is_some_and(|s| s >= 500) {
        report.warnings.push(format!(
            "the target answered {} itself: the gateway would relay it (not a gateway error); see the target's logs",
            http.status.unwrap_or_default()
        ));
    }
    let closes = http.connection_close;
    report.http = Some(http);
    if t.keepalive {
        report.keepalive = Some(if !whole {
            unknown_keepalive(t, "the response body was too large to wait for the idle connection")
        } else if closes {
            unknown_keepalive(t, "the target closes the connection after each response (Connection: close)")
        } else {
            watch_idle(t, counters, conn_task, sender).await
        });
        if let Some(k) = &report.keepalive
            && k.shorter == "target"
        {
            report.warnings.push(k.advice.clone());
        }
    } else {
        conn_task.abort();
    }
}

fn unknown_keepalive(t: &ProbeTarget, why: &str) -> KeepAlive {
    KeepAlive {
        closed_after_ms: None,
        max_wait_ms: 0,
        pool_idle_timeout_ms: t.timers.pool_idle_timeout.as_millis() as u64,
        shorter: "unknown",
        advice: format!("keep-alive not measured: {why}"),
    }
}

/// Waits, bounded by `--keepalive-max`, for the target to close the idle connection. The sender is held so
/// hyper does not close it from our side.
async fn watch_idle<B>(
    t: &ProbeTarget,
    counters: &ConnCounters,
    conn_task: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    sender: http1::SendRequest<B>,
) -> KeepAlive {
    let max = t.keepalive_max;
    let pool = t.timers.pool_idle_timeout;
    let pool_s = humantime(pool);
    let closed = tokio::time::timeout(max, conn_task).await.is_ok();
    drop(sender);
    let idle = counters.last_io_ago(Instant::now());
    let (closed_after, shorter, advice) = if closed {
        if idle < pool {
            let lower = idle.saturating_sub(idle / 10).max(Duration::from_secs(1));
            (
                Some(idle),
                "target",
                format!(
                    "the target closes idle connections after {:.1}s, before the gateway's pool_idle_timeout \
                     ({pool_s}): keep-alive race risk (TargetKeepAliveRace). Set the target's keep-alive timeout \
                     above {pool_s}, or set pool_idle_timeout below it (e.g. \"{}\")",
                    idle.as_secs_f64(),
                    humantime(Duration::from_secs(lower.as_secs().max(1)))
                ),
            )
        } else {
            (
                Some(idle),
                "gateway",
                format!(
                    "the target keeps idle connections {:.1}s, longer than pool_idle_timeout ({pool_s}): the \
                     gateway closes first, as it should",
                    idle.as_secs_f64()
                ),
            )
        }
    } else if max >= pool {
        (
            None,
            "gateway",
            format!(
                "the target kept the idle connection open for {} (--keepalive-max), at least pool_idle_timeout \
                 ({pool_s}): the gateway closes first, as it should",
                humantime(max)
            ),
        )
    } else {
        (
            None,
            "unknown",
            format!(
                "still open after {}, shorter than pool_idle_timeout ({pool_s}): raise --keepalive-max above \
                 {pool_s} to know which side closes first",
                humantime(max)
            ),
        )
    };
    KeepAlive {
        closed_after_ms: closed_after.map(|d| d.as_millis() as u64),
        max_wait_ms: max.as_millis() as u64,
        pool_idle_timeout_ms: pool.as_millis() as u64,
        shorter,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_durations() {
        assert_eq!(version_name("TLSv1_3"), "TLSv1.3");
        assert_eq!(humantime(Duration::from_secs(60)), "60s");
        assert_eq!(humantime(Duration::from_millis(1500)), "1500ms");
        assert_eq!(ms(Duration::from_micros(1234)), 1.2);
    }
}
