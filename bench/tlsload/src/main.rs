//! tlsload: the TLS handshake workloads of `bench/proxy/run`: new TLS connections per second through a proxy's
//! TLS listener, each carrying one small request, with or without session resumption.
//!
//! `tlsload --addr 127.0.0.1:P --ca CA.pem [--sni localhost] [--connections 16] [--duration 10] [--resume]`:
//! `--connections` clients each open a connection (TCP, then a TLS handshake offering `http/1.1`), send
//! `GET / HTTP/1.1` with `Connection: close`, read the answer to its end, and start again, until the duration
//! ends. Without `--resume` every handshake is a full one (the client keeps no session); with it each client
//! keeps its own session store, so from its second connection on it offers the ticket the proxy sent. Prints
//! one line, `connections N seconds S rps R p50_ms X p99_ms Y errors E resumed K`: connections completed (a
//! `200` read to its end), the window, connections per second, the handshake latency percentiles (TCP connect
//! to handshake done), connections that failed, and how many handshakes resumed a session.
//!
//! h2load and wrk keep their connections open, and `openssl s_time` runs one connection at a time and cannot
//! say whether a TLS 1.3 session resumed, so this is the benchmark's own, written with rustls (the gateway's TLS
//! library, here as a client) and run unchanged against every proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What one client measured.
#[derive(Default)]
struct Client {
    /// Handshake latencies of the completed connections, microseconds.
    handshakes: Vec<u32>,
    resumed: u64,
    errors: u64,
}

/// What a run is given.
struct Run {
    addr: SocketAddr,
    roots: Arc<RootCertStore>,
    sni: ServerName<'static>,
    resume: bool,
    deadline: Instant,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut ca, mut sni) = (None, None, "localhost".to_owned());
    let (mut connections, mut seconds, mut resume) = (16u64, 10u64, false);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let whole = |text: String| text.parse::<u64>().unwrap_or_else(|_| fail(&format!("not a whole number: {text}")));
        match flag.as_str() {
            "--addr" => addr = Some(value().parse::<SocketAddr>().unwrap_or_else(|_| fail(USAGE))),
            "--ca" => ca = Some(value()),
            "--sni" => sni = value(),
            "--connections" => connections = whole(value()),
            "--duration" => seconds = whole(value()),
            "--resume" => resume = true,
            _ => fail(USAGE),
        }
    }
    let (Some(addr), Some(ca)) = (addr, ca) else { fail(USAGE) };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&ca).unwrap_or_else(|e| fail(&format!("cannot read {ca}: {e}")));
    for cert in certs {
        let cert = cert.unwrap_or_else(|e| fail(&format!("{ca}: {e}")));
        roots.add(cert).unwrap_or_else(|e| fail(&format!("{ca}: {e}")));
    }
    let sni = ServerName::try_from(sni).unwrap_or_else(|_| fail("--sni is not a server name"));
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let started = Instant::now();
    let run = Arc::new(Run { addr, roots: Arc::new(roots), sni, resume, deadline: started + duration });
    let clients = runtime.block_on(async {
        let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(client(run.clone()))).collect();
        let mut done = Vec::with_capacity(tasks.len());
        for task in tasks {
            done.push(task.await.unwrap_or_else(|_| Client { errors: 1, ..Client::default() }));
        }
        done
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = clients.iter().flat_map(|c| c.handshakes.iter().copied()).collect();
    let errors: u64 = clients.iter().map(|c| c.errors).sum();
    let resumed: u64 = clients.iter().map(|c| c.resumed).sum();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |v: Option<&u32>| v.map_or(0.0, |us| f64::from(*us) / 1000.0);
    println!(
        "connections {} seconds {seconds:.3} rps {:.1} p50_ms {:.3} p99_ms {:.3} errors {errors} resumed {resumed}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        ms(pct(0.50)),
        ms(pct(0.99)),
    );
}

const USAGE: &str =
    "usage: tlsload --addr IP:PORT --ca CA.pem [--sni NAME] [--connections N] [--duration S] [--resume]";

fn fail(message: &str) -> ! {
    eprintln!("tlsload: {message}");
    std::process::exit(2);
}

/// One client's loop of new connections until the deadline; a connection cut by the deadline is not counted.
async fn client(run: Arc<Run>) -> Client {
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(&format!("TLS versions: {e}")));
    let mut config = builder.with_root_certificates(run.roots.clone()).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !run.resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    let connector = TlsConnector::from(Arc::new(config));
    let request = format!("GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", run.sni.to_str());
    let mut out = Client::default();
    while Instant::now() < run.deadline {
        match tokio::time::timeout_at(run.deadline.into(), one(&run, &connector, request.as_bytes())).await {
            Err(_) => break,
            Ok(Ok((latency, kind))) => {
                out.handshakes.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                out.resumed += u64::from(kind == Some(HandshakeKind::Resumed));
            }
            Ok(Err(e)) => {
                if out.errors == 0 {
                    eprintln!("tlsload: a connection failed: {e}");
                }
                out.errors += 1;
            }
        }
    }
    out
}

/// One connection: the handshake's latency and kind, once its request was answered `200` to the end.
async fn one(
    run: &Run,
    connector: &TlsConnector,
    request: &[u8],
) -> std::io::Result<(Duration, Option<HandshakeKind>)> {
    let start = Instant::now();
    let tcp = TcpStream::connect(run.addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(run.sni.clone(), tcp).await?;
    let latency = start.elapsed();
    let kind = tls.get_ref().1.handshake_kind();
    tls.write_all(request).await?;
    // Read to the end: the connection is closed by the proxy after its answer (and the session tickets it sent
    // after the handshake are read on the way).
    let mut answer = Vec::with_capacity(1024);
    match tls.read_to_end(&mut answer).await {
        Ok(_) => {}
        // A proxy that closes without a close_notify after its whole answer: the answer still counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    if !answer.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
        return Err(std::io::Error::other(format!("the answer is not 200: {head:?}")));
    }
    Ok((latency, kind))
}
