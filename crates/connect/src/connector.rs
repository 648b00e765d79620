//! Opening a fresh upstream connection, one timed phase at a time: `dns` (host names only), `connect`
//! (bounded by connect_timeout, over every resolved address in turn), `tls_handshake` (bounded by tls_handshake_timeout, separately). A failure
//! leaves the phase, the timer and the raw error in an [`AttemptFailure`], with the connection snapshot once
//! TCP is up, so a TLS blackhole shows bytes_written > 0 and bytes_read = 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use waygate_faults::Phase;

use super::eyeballs;
use super::failure::AttemptFailure;
use super::liveness::Probe;
use super::meter::{ConnCounters, Metered};
use super::transport::Transport;

/// TLS settings for one target.
#[derive(Clone, Debug)]
pub struct TlsTarget {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// How to reach one target.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub tls: Option<TlsTarget>,
}

/// A freshly opened connection.
#[derive(Debug)]
pub struct Connected {
    pub transport: Transport,
    pub counters: Arc<ConnCounters>,
    /// Peek-only handle for liveness checks at checkout.
    pub probe: Option<Probe>,
}

/// Every address of `host` (IPv4 and IPv6, in the resolver's order; IP literals skip DNS), bounded by
/// `timeout`. An empty answer is a dns-phase failure, like a resolver error.
pub async fn resolve_all(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, AttemptFailure> {
    if let Ok(ip) = host.parse() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(AttemptFailure::timeout(Phase::Dns, timeout)),
        Ok(Err(e)) => Err(AttemptFailure::from_io(Phase::Dns, e)),
        Ok(Ok(addrs)) => {
            let mut all: Vec<SocketAddr> = Vec::new();
            for addr in addrs {
                if !all.contains(&addr) {
                    all.push(addr);
                }
            }
            if all.is_empty() { Err(no_addresses()) } else { Ok(all) }
        }
    }
}

fn no_addresses() -> AttemptFailure {
    AttemptFailure::from_io(Phase::Dns, std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses for host"))
}

/// A TCP connection to one address, metered from its first byte.
#[derive(Debug)]
pub struct Tcp {
    pub stream: Metered<TcpStream>,
    pub counters: Arc<ConnCounters>,
    /// Peek-only handle for liveness checks at checkout.
    pub probe: Option<Probe>,
}

/// The `connect` phase alone: TCP to `addr`, bounded by `timeout`.
pub async fn open_tcp(addr: SocketAddr, timeout: Duration) -> Result<Tcp, AttemptFailure> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(AttemptFailure::timeout(Phase::Connect, timeout)),
        Ok(Err(e)) => return Err(AttemptFailure::from_io(Phase::Connect, e)),
        Ok(Ok(tcp)) => tcp,
    };
    // Small request heads must not wait for Nagle; failure to set it is harmless.
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(addr);
    let probe = Probe::new(&tcp);
    let counters = ConnCounters::new(addr, local);
    Ok(Tcp { stream: Metered::new(tcp, counters.clone()), counters, probe })
}

/// The `tls_handshake` phase alone, over a metered stream, bounded by `timeout`. A failure carries the
/// connection snapshot (a blackhole: bytes_written > 0, bytes_read = 0).
pub async fn handshake(
    stream: Metered<TcpStream>,
    tls: &TlsTarget,
    timeout: Duration,
) -> Result<TlsStream<Metered<TcpStream>>, AttemptFailure> {
    let counters = stream.counters().clone();
    let handshake = TlsConnector::from(tls.config.clone()).connect(tls.server_name.clone(), stream);
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => {
            // The handshake future (and with it the socket) is dropped here; snapshot the evidence first.
            let mut snap = counters.snapshot(false, None);
            snap.open = true; // it was open when the timer fired; dropping the handshake closed it.
            Err(AttemptFailure::timeout(Phase::TlsHandshake, timeout).with_conn(snap))
        }
        Ok(Err(e)) => {
            let snap = counters.snapshot(false, None);
            Err(AttemptFailure::from_io(Phase::TlsHandshake, e).with_conn(snap))
        }
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// Opens a new connection: TCP to the first of the host's addresses that answers (RFC 8305, see
/// [`eyeballs`](super::eyeballs)), then TLS when the target group speaks https.
pub async fn connect(spec: &ConnectSpec) -> Result<Connected, AttemptFailure> {
    let addrs = resolve_all(&spec.host, spec.port, spec.connect_timeout).await?;
    let tcp = eyeballs::race(&addrs, spec.connect_timeout).await?;
    secure(spec, tcp).await
}

/// [`connect`] to an address already resolved.
pub async fn connect_to(spec: &ConnectSpec, addr: SocketAddr) -> Result<Connected, AttemptFailure> {
    secure(spec, open_tcp(addr, spec.connect_timeout).await?).await
}

/// The TLS handshake over a fresh TCP connection, when the target group speaks https.
async fn secure(spec: &ConnectSpec, tcp: Tcp) -> Result<Connected, AttemptFailure> {
    let Tcp { stream, counters, probe } = tcp;
    let Some(tls) = &spec.tls else {
        return Ok(Connected { transport: Transport::Plain(stream), counters, probe });
    };
    let stream = handshake(stream, tls, spec.tls_handshake_timeout).await?;
    Ok(Connected { transport: Transport::Tls(Box::new(stream)), counters, probe })
}
