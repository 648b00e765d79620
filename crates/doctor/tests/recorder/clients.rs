//! The client namespace's side: for each shape, a tcpdump on `c0` filtered to the shape's server port (and
//! the ICMP errors quoting it), then the shape's client, then the capture is stopped once its verdict shows
//! (or the deadline passes: the recorder's check then says what the capture holds). Every shape runs on its
//! own thread, so the whole recording takes about as long as the slowest shape (the connect timeout).
//! Where a client sleeps, the idle time is the shape under test (a keep-alive reuse after 1.1 s idle, a
//! client that gives up after 200 ms), not a synchronisation.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::servers::{record, server_hello};
use super::tcpdump::Tcpdump;
use super::*;

const GET: &[u8] = b"GET /orders HTTP/1.1\r\nhost: corpus.test\r\n\r\n";

/// A ClientHello-shaped TLS record of `len` bytes in all.
fn client_hello(len: usize) -> Vec<u8> {
    let body = len - 5;
    let mut h = vec![22, 3, 1, (body >> 8) as u8, body as u8, 1, 0, ((body - 4) >> 8) as u8, (body - 4) as u8, 3, 3];
    h.resize(len, 0x5a);
    h
}

/// The role: every shape, each on its thread.
pub fn role() {
    let Some(out) = std::env::var_os("WAYGATE_CORPUS_OUT").map(PathBuf::from) else {
        println!("corpus_role_clients runs inside corpus_recorded_afresh only");
        return;
    };
    let threads: Vec<_> = SHAPES
        .iter()
        .map(|shape| {
            let out = out.clone();
            std::thread::spawn(move || record_shape(*shape, &out))
        })
        .collect();
    for t in threads {
        t.join().expect("a shape's client panicked");
    }
}

fn record_shape(shape: Shape, out: &Path) {
    let port = shape.port;
    let filter = if shape.name == ONE_SIDED.name {
        format!("src host {CLIENT} and tcp port {port}")
    } else if shape.name == ICMP_ONLY.name {
        format!("icmp and icmp[30:2] = {port}")
    } else {
        format!("tcp port {port} or (icmp and icmp[30:2] = {port})")
    };
    // Frames cut at 200 bytes keep the large ones small on disk; their lengths come from the IP header.
    let snaplen = if shape.name == PMTU.name { 200 } else { 0 };
    let dump = Tcpdump::start(&out.join(format!("{}.pcap", shape.name)), &filter, snaplen);
    client(shape, out);
    let name = shape.name;
    let seen = dump.stop_when(|flow| crate::flow_failures(name, &serde_json::to_value(flow).unwrap()).is_empty());
    println!("{name}: {}", if seen { "recorded" } else { "expected verdict not seen before the deadline" });
}

fn connect(shape: Shape) -> TcpStream {
    let s = TcpStream::connect_timeout(&shape.server(), Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Reads until the end of the server's data (FIN or RST).
fn read_to_end(s: &mut TcpStream) {
    let _ = s.read_to_end(&mut Vec::new());
}

/// Reads until `done` holds for what was read, or the stream ends.
fn read_until(s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

/// A whole response: its head and a Content-Length body.
fn response_done(b: &[u8]) -> bool {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&b[..end]).to_ascii_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok())).unwrap_or(0);
    b.len() >= end + 4 + len
}

/// Waits for a reply that never comes, for `wait`, then closes.
fn give_up_after(mut s: TcpStream, wait: Duration) {
    s.set_read_timeout(Some(wait)).unwrap();
    assert!(s.read(&mut [0u8; 64]).is_err(), "no reply expected");
}

fn client(shape: Shape, out: &Path) {
    match shape.port {
        p if p == REFUSED.port || p == UNREACHABLE.port || p == ICMP_ONLY.port => {
            assert!(TcpStream::connect_timeout(&shape.server(), Duration::from_secs(5)).is_err());
        }
        p if p == CONNECT_TIMEOUT.port => {
            // Linux retransmits an unanswered SYN after 1 s: 2.5 s shows two SYNs.
            assert!(TcpStream::connect_timeout(&shape.server(), Duration::from_millis(2500)).is_err());
        }
        p if p == RESET.port || p == TLS_ALERT.port => {
            let mut s = connect(shape);
            let hello = client_hello(517);
            s.write_all(if p == RESET.port { GET } else { &hello }).unwrap();
            read_to_end(&mut s);
        }
        p if p == PMTU.port => {
            // Larger than the path's MTU: the router answers fragmentation-needed, the client's firewall drops
            // it, and the ClientHello is retransmitted at the same size until the client gives up.
            let mut s = connect(shape);
            s.write_all(&client_hello(1400)).unwrap();
            give_up_after(s, Duration::from_secs(2));
        }
        p if p == GAVE_UP.port || p == RESPONSE_TIMEOUT.port => {
            let mut s = connect(shape);
            s.write_all(GET).unwrap();
            let wait = if p == GAVE_UP.port { 200 } else { 1200 };
            give_up_after(s, Duration::from_millis(wait));
        }
        p if p == HANDSHAKE_TIMEOUT.port => {
            let mut s = connect(shape);
            s.write_all(&client_hello(517)).unwrap();
            give_up_after(s, Duration::from_millis(1200));
        }
        p if p == ONE_SIDED.port || p == IDLE_CLOSE.port => {
            let mut s = connect(shape);
            s.write_all(GET).unwrap();
            read_until(&mut s, response_done);
            if p == IDLE_CLOSE.port {
                read_to_end(&mut s);
            }
        }
        p if p == WARNING.port => {
            let mut s = connect(shape);
            s.write_all(&client_hello(517)).unwrap();
            let want = record(21, &[1, 112]).len() + server_hello().len();
            read_until(&mut s, |b| b.len() >= want);
            s.shutdown(Shutdown::Write).unwrap();
            read_to_end(&mut s);
        }
        p if p == AFTER_HELLO.port => {
            let mut s = connect(shape);
            s.write_all(&client_hello(517)).unwrap();
            read_until(&mut s, |b| b.len() >= server_hello().len());
            let mut flight = record(20, &[1]);
            flight.extend(record(22, &[0x20; 40]));
            s.write_all(&flight).unwrap();
            read_to_end(&mut s);
        }
        p if p == RACE.port => {
            let mut s = connect(shape);
            s.write_all(GET).unwrap();
            read_until(&mut s, response_done);
            std::thread::sleep(Duration::from_millis(1100));
            s.write_all(GET).unwrap();
            read_to_end(&mut s);
        }
        p if p == UPGRADE.port => {
            let mut s = connect(shape);
            s.write_all(
                b"GET /chat HTTP/1.1\r\nhost: corpus.test\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
                  sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
            )
            .unwrap();
            read_until(&mut s, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
            // Idle past the keep-alive threshold: were the tunnel read as keep-alive, this would be a race.
            std::thread::sleep(Duration::from_millis(1100));
            s.write_all(&[0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2, b'l' ^ 3, b'l' ^ 4, b'o' ^ 1]).unwrap();
            read_to_end(&mut s);
        }
        p if p == NOT_HTTP.port => {
            let mut s = connect(shape);
            read_until(&mut s, |b| b.ends_with(b"\n"));
            s.write_all(b"SSH-2.0-Go\r\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            read_to_end(&mut s);
        }
        p if p == RACE_TLS.port => tls_race(shape, out),
        p => panic!("no client for port {p}"),
    }
}

/// A real TLS client (rustls) that sends a request, reads the response, waits 1.1 s idle and reuses the
/// connection: the server closes it without a reply.
fn tls_race(shape: Shape, out: &Path) {
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_file(out.join("ca.pem")).expect("the server role's CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(waygate_faultlab::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(shape.server()).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(GET).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !response_done(&got) {
            let n = tls.read(&mut buf).await.expect("the response");
            assert!(n > 0, "EOF inside the response");
            got.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        tls.write_all(GET).await.unwrap();
        tls.flush().await.unwrap();
        let _ = tls.read(&mut buf).await;
    });
}
