//! Opening a fresh upstream connection, one timed phase at a time: `dns` (host names only), `connect`
//! (bounded by connect_timeout), `tls_handshake` (bounded by tls_handshake_timeout, separately). A failure
//! leaves the phase, the timer and the raw error in an [`AttemptFailure`], with the connection snapshot once
//! TCP is up, so a TLS blackhole shows bytes_written > 0 and bytes_read = 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use waygate_faults::Phase;

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

/// Resolves the target's host to one address (IP literals skip DNS).
pub async fn resolve(spec: &ConnectSpec) -> Result<SocketAddr, AttemptFailure> {
    if let Ok(ip) = spec.host.parse() {
        return Ok(SocketAddr::new(ip, spec.port));
    }
    let lookup = tokio::net::lookup_host((spec.host.as_str(), spec.port));
    match tokio::time::timeout(spec.connect_timeout, lookup).await {
        Err(_) => Err(AttemptFailure::timeout(Phase::Dns, spec.connect_timeout)),
        Ok(Err(e)) => Err(AttemptFailure::from_io(Phase::Dns, e)),
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| {
            AttemptFailure::from_io(
                Phase::Dns,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses for host"),
            )
        }),
    }
}

/// Opens a new connection: TCP, then TLS when the target group speaks https.
pub async fn connect(spec: &ConnectSpec) -> Result<Connected, AttemptFailure> {
    let addr = resolve(spec).await?;
    let tcp = match tokio::time::timeout(spec.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(AttemptFailure::timeout(Phase::Connect, spec.connect_timeout)),
        Ok(Err(e)) => return Err(AttemptFailure::from_io(Phase::Connect, e)),
        Ok(Ok(tcp)) => tcp,
    };
    // Small request heads must not wait for Nagle; failure to set it is harmless.
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(addr);
    let probe = Probe::new(&tcp);
    let counters = ConnCounters::new(addr, local);
    let metered = Metered::new(tcp, counters.clone());
    let Some(tls) = &spec.tls else {
        return Ok(Connected { transport: Transport::Plain(metered), counters, probe });
    };
    let handshake = TlsConnector::from(tls.config.clone()).connect(tls.server_name.clone(), metered);
    match tokio::time::timeout(spec.tls_handshake_timeout, handshake).await {
        Err(_) => {
            // The handshake future (and with it the socket) is dropped here; snapshot the evidence first.
            let mut snap = counters.snapshot(false, None);
            snap.open = true; // it was open when the timer fired; dropping the handshake closed it.
            Err(AttemptFailure::timeout(Phase::TlsHandshake, spec.tls_handshake_timeout).with_conn(snap))
        }
        Ok(Err(e)) => {
            let snap = counters.snapshot(false, None);
            Err(AttemptFailure::from_io(Phase::TlsHandshake, e).with_conn(snap))
        }
        Ok(Ok(stream)) => Ok(Connected { transport: Transport::Tls(Box::new(stream)), counters, probe }),
    }
}
