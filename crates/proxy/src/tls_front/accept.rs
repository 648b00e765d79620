//! One client TLS handshake, timed: its outcome is counted (`waygate_client_tls_negotiation_errors_total` by
//! code), written to the connection log, and on failure logged at debug level with the reason (the client
//! itself gets only the TLS alert rustls sends: nothing of the gateway's internals).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use waygate_telemetry::Metrics;

use super::connlog::{ConnectionLog, Line};
use super::leaf::{self, Leaf};
use super::{TlsFront, outcome};

/// Who the connection is, for its log line.
#[derive(Debug)]
pub struct ConnIds<'a> {
    pub listener: &'a Arc<str>,
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub port: u16,
    pub elb: &'a str,
    pub conn_trace_id: &'a str,
}

/// A completed handshake.
#[derive(Debug)]
pub struct Accepted<IO> {
    pub stream: TlsStream<IO>,
    /// On a listener with mutual TLS: the `X-Amzn-Mtls-Clientcert*` headers its requests carry to targets
    /// (none when the client sent no certificate in `passthrough`). `None`: mutual TLS is off.
    pub client_cert: Option<Arc<[(HeaderName, HeaderValue)]>>,
    /// The identifier of the listener certificate its ClientHello chose (the access log's `chosen_cert_arn`).
    pub chosen_cert: Option<Arc<str>>,
}

/// Runs the handshake within `timeout`; `None` when it failed (counted, logged, written to the connection log).
pub async fn accept<IO>(
    front: &TlsFront,
    io: IO,
    timeout: Duration,
    ids: ConnIds<'_>,
    log: &ConnectionLog,
    metrics: &Metrics,
) -> Option<Accepted<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let result = match front.for_connection() {
        None => Err((outcome::PROTOCOL_ERROR, None)),
        Some((config, seen)) => match tokio::time::timeout(timeout, handshake(front, config, io)).await {
            Ok(Ok((stream, chosen))) => Ok((stream, seen, chosen)),
            Ok(Err(e)) => {
                let code = outcome::failure(&e);
                tracing::debug!(target: "waygate::listener", listener = %ids.listener, client = %ids.client, code, error = %e, "client TLS handshake failed");
                Err((code, seen))
            }
            Err(_) => {
                tracing::debug!(target: "waygate::listener", listener = %ids.listener, client = %ids.client, "client TLS handshake timed out");
                Err((outcome::TIMEOUT, seen))
            }
        },
    };
    let latency = started.elapsed();
    let time = SystemTime::now();
    match result {
        Err((code, seen)) => {
            metrics.client_tls_error(ids.listener, code);
            if log.is_on() {
                let leaf = seen.and_then(|s| s.leaf()).and_then(|der| Leaf::of(&der));
                log.log(&line_of(&ids, time, None, leaf.as_ref(), Err(code)));
            }
            None
        }
        Ok((stream, _, chosen_cert)) => {
            let conn = stream.get_ref().1;
            let chain = conn.peer_certificates().unwrap_or_default();
            let client_cert = front
                .mutual()
                .then(|| Arc::from(leaf::headers(chain, front.client_auth.is_passthrough()).into_boxed_slice()));
            if log.is_on() {
                let protocol = super::policy::protocol_name(conn.protocol_version());
                let cipher = conn.negotiated_cipher_suite().map(|s| super::policy::openssl_name(s.suite()));
                let kx = conn.negotiated_key_exchange_group().map(|g| key_exchange_name(g.name()));
                let leaf = chain.first().and_then(Leaf::of);
                let session = (protocol, cipher.as_deref().unwrap_or("-"), kx.unwrap_or("-"), latency);
                log.log(&line_of(&ids, time, Some(session), leaf.as_ref(), Ok(())));
            }
            Some(Accepted { stream, client_cert, chosen_cert })
        }
    }
}

/// The handshake, in two steps: the ClientHello is read first, so that the certificate it chooses (by SNI and
/// the signature schemes offered, as the listener's resolver will choose it) is known for the access log;
/// rustls's connection does not say afterwards which certificate it sent, nor does a resumed session send one.
async fn handshake<IO>(
    front: &TlsFront,
    config: Arc<rustls::ServerConfig>,
    io: IO,
) -> std::io::Result<(TlsStream<IO>, Option<Arc<str>>)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
    let hello = start.client_hello();
    let chosen = front.parts.certificates.choose(hello.server_name(), hello.signature_schemes()).map(|s| s.id.clone());
    let stream = start.into_stream(config).await?;
    Ok((stream, chosen))
}

fn line_of<'a>(
    ids: &'a ConnIds<'_>,
    time: SystemTime,
    session: Option<(&'a str, &'a str, &'a str, Duration)>,
    leaf: Option<&'a Leaf>,
    status: Result<(), &'static str>,
) -> Line<'a> {
    Line {
        time,
        client: ids.client,
        local: ids.local,
        listener_port: ids.port,
        session,
        leaf,
        status,
        conn_trace_id: ids.conn_trace_id,
        elb: ids.elb,
    }
}

/// OpenSSL's names for the groups rustls offers.
fn key_exchange_name(group: rustls::NamedGroup) -> &'static str {
    match group {
        rustls::NamedGroup::X25519 => "X25519",
        rustls::NamedGroup::secp256r1 => "prime256v1",
        rustls::NamedGroup::secp384r1 => "secp384r1",
        rustls::NamedGroup::secp521r1 => "secp521r1",
        _ => "-",
    }
}
