//! What went wrong in one upstream attempt, as raw evidence: the phase, which timer fired, the io error
//! (kind and errno), the TLS error, the hyper error, and the connection snapshot. `classify` turns it into a
//! [`Cause`] through the fault catalogue's single classifier; nothing here decides a status code.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use waygate_faults::{Cause, Evidence, H2Evidence, HttpEvidence, Phase, TlsEvidence, classify, errno};

use super::meter::ConnSnapshot;

/// The failure of one attempt, before classification.
#[derive(Debug)]
pub struct AttemptFailure {
    pub phase: Phase,
    /// The timer of `phase` fired (connect_timeout, tls_handshake_timeout, response_timeout ...).
    pub timed_out: Option<Duration>,
    pub io: Option<io::Error>,
    pub tls: Option<rustls::Error>,
    pub hyper: Option<hyper::Error>,
    /// What was wrong at the HTTP level, when the gateway's own HTTP/1 exchange saw it (no hyper error then).
    pub http: Option<HttpEvidence>,
    /// What the HTTP/2 session said (a stream reset, a GOAWAY, a protocol error, no `h2` from ALPN).
    pub h2: Option<H2Evidence>,
    /// The connection as it was when the attempt failed (absent before TCP connected).
    pub conn: Option<ConnSnapshot>,
    /// A response head had already been relayed to the client.
    pub response_started: bool,
    /// The target's deregistration_delay elapsed while this attempt was in flight.
    pub deregistered: bool,
    /// Each address of a host-name target that was tried and failed, in the order tried (empty for a single
    /// address: the failure itself is that address's).
    pub addresses: Vec<AddressFailure>,
}

/// One resolved address that failed in the connect race, as the evidence names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFailure {
    pub addr: SocketAddr,
    /// What the catalogue calls that address's failure on its own.
    pub cause: Cause,
    /// The error in a few words (`connection refused (ECONNREFUSED)`, `timed out after 10s`).
    pub error: String,
}

impl AttemptFailure {
    pub fn new(phase: Phase) -> Self {
        Self {
            phase,
            timed_out: None,
            io: None,
            tls: None,
            hyper: None,
            http: None,
            h2: None,
            conn: None,
            response_started: false,
            deregistered: false,
            addresses: Vec::new(),
        }
    }

    pub fn timeout(phase: Phase, after: Duration) -> Self {
        Self { timed_out: Some(after), ..Self::new(phase) }
    }

    /// From an io error, pulling out a rustls error when TLS wrapped one inside it.
    pub fn from_io(phase: Phase, err: io::Error) -> Self {
        let tls = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).cloned();
        Self { io: Some(err), tls, ..Self::new(phase) }
    }

    /// From a hyper client error, digging the io error out of its source chain.
    pub fn from_hyper(phase: Phase, err: hyper::Error) -> Self {
        let io = find_io_error(&err).map(copy_io);
        let tls = find_source::<rustls::Error>(&err).cloned();
        Self { io, tls, hyper: Some(err), ..Self::new(phase) }
    }

    pub fn with_conn(mut self, conn: ConnSnapshot) -> Self {
        self.conn = Some(conn);
        self
    }
}

/// An owned copy of an io error seen by reference (`io::Error` is not `Clone`): its errno, else its kind and
/// message, which is all the evidence uses.
pub fn copy_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

fn find_source<'a, T: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(ioe) = e.downcast_ref::<io::Error>()
            && let Some(inner) = ioe.get_ref()
            && let Some(t) = inner.downcast_ref::<T>()
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    find_source::<io::Error>(err)
}

impl AttemptFailure {
    /// The catalogue's evidence for this failure.
    pub fn evidence(&self) -> Evidence {
        let mut e = Evidence::new(self.phase);
        e.timed_out = self.timed_out.is_some();
        if let Some(io) = &self.io {
            e.io_kind = Some(io.kind());
            e.os_errno = io.raw_os_error();
        }
        e.tls = self.tls.as_ref().and_then(tls_evidence).or_else(|| {
            let eof = self.io.as_ref().is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof);
            (self.phase == Phase::TlsHandshake && eof).then_some(TlsEvidence::PeerClosed)
        });
        e.h2 = self.h2;
        e.http = self.http.or_else(|| self.hyper.as_ref().and_then(|h| http_evidence(h, self.phase)));
        if let Some(conn) = &self.conn {
            e.reused = conn.reused;
            e.bytes_read = conn.attempt_bytes_read;
            e.bytes_written = conn.attempt_bytes_written;
        }
        e.response_started = self.response_started;
        e.deregistered = self.deregistered;
        e
    }

    /// The one cause of this failure, named by the catalogue's classifier.
    pub fn classify(&self) -> Cause {
        classify(&self.evidence())
    }

    /// The error in a few words, with the errno's name when it has one (`Too many open files (EMFILE)`).
    pub fn brief(&self) -> String {
        if let Some(after) = self.timed_out {
            return format!("timed out after {after:?}");
        }
        match &self.io {
            Some(io) => match io.raw_os_error() {
                Some(n) => {
                    let text = io::Error::from(io.kind()).to_string();
                    match errno::name(n) {
                        Some(name) => format!("{text} ({name})"),
                        None => format!("{text} (os error {n})"),
                    }
                }
                None => io.to_string(),
            },
            None => "failed".to_owned(),
        }
    }

    /// Every address tried, for a log line: `[::1]:8080 TargetConnectionRefused (connection refused
    /// (ECONNREFUSED)), 127.0.0.1:8080 ...`; empty when only one address was tried.
    pub fn addresses_tried(&self) -> String {
        let each = self.addresses.iter().map(|a| format!("{} {} ({})", a.addr, a.cause, a.error));
        each.collect::<Vec<_>>().join(", ")
    }
}

fn tls_evidence(err: &rustls::Error) -> Option<TlsEvidence> {
    use rustls::Error as E;
    Some(match err {
        E::AlertReceived(alert) => TlsEvidence::AlertReceived { description: snake_case(&format!("{alert:?}")) },
        E::InvalidCertificate(reason) => TlsEvidence::CertificateInvalid { reason: format!("{reason:?}") },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            TlsEvidence::NotTls
        }
        _ => return None,
    })
}

fn http_evidence(err: &hyper::Error, phase: Phase) -> Option<HttpEvidence> {
    Some(if err.is_parse_too_large() {
        HttpEvidence::HeadTooLarge
    } else if err.is_parse() || err.is_parse_status() {
        HttpEvidence::MalformedHead
    } else if phase == Phase::StreamBody {
        HttpEvidence::BodyIncomplete
    } else if err.is_incomplete_message() {
        HttpEvidence::ClosedBeforeHead
    } else {
        return None;
    })
}

/// `HandshakeFailure` → `handshake_failure`, the TLS registry's spelling of alert names.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_use_registry_spelling() {
        assert_eq!(snake_case("HandshakeFailure"), "handshake_failure");
        assert_eq!(snake_case("BadCertificate"), "bad_certificate");
    }

    #[test]
    fn refused_connect_is_classified_from_errno() {
        let f = AttemptFailure::from_io(Phase::Connect, io::Error::from_raw_os_error(111));
        assert_eq!(f.classify(), Cause::TargetConnectionRefused);
        let t = AttemptFailure::timeout(Phase::Connect, Duration::from_secs(1));
        assert_eq!(t.classify(), Cause::TargetConnectTimeout);
    }

    #[test]
    fn rustls_errors_become_tls_evidence() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let f = AttemptFailure::from_io(Phase::TlsHandshake, io::Error::new(io::ErrorKind::InvalidData, alert));
        assert_eq!(f.evidence().tls, Some(TlsEvidence::AlertReceived { description: "handshake_failure".into() }));
        assert_eq!(f.classify(), Cause::TargetTlsAlert);
    }
}
