//! Test support: an in-process gateway on an ephemeral port, configured from TOML text, and small HTTP/1.1
//! and HTTP/2 clients over real loopback sockets.
#![allow(dead_code)]

pub mod function_lab;
pub mod otlp;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use waygate_proxy::Gateway;

/// Generous deadline for anything a test waits on: a slow machine must not fail a correct gateway.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts a gateway whose config is `text` (listener `public` should bind `127.0.0.1:0`).
pub async fn gateway(text: &str) -> (Gateway, SocketAddr) {
    let config = waygate_config::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("test config:\n{e}"));
    let gw = Gateway::start(config).await.expect("gateway starts");
    let addr = gw.local_addr("public").await.expect("listener public");
    (gw, addr)
}

/// A listener `public` on an ephemeral port forwarding to group `app` with these targets, plus `extra` TOML.
/// Health checks are off: these tests count the targets' requests exactly (tests/health.rs turns them on).
pub fn simple_config(targets: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = targets.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"app\"\n[[target_group]]\nname = \"app\"\ntargets = [{}]\n{extra}\
         [target_group.health_check]\nenabled = false\n",
        list.join(", ")
    )
}

/// A whole response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn collect(resp: http::Response<hyper::body::Incoming>) -> Resp {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.expect("response body");
    let trailers = collected.trailers().cloned();
    Resp { status: parts.status, version: parts.version, headers: parts.headers, body: collected.to_bytes(), trailers }
}

/// One request over a new HTTP/1.1 connection.
pub async fn h1(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    let tcp = TcpStream::connect(addr).await.expect("connect to gateway");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("h1 handshake");
    tokio::spawn(conn);
    collect(send.send_request(req).await.expect("h1 response")).await
}

/// `GET path` with a Host header, over HTTP/1.1.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    h1(addr, request("GET", path, "app.example", Bytes::new())).await
}

pub fn request(method: &str, path: &str, host: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Full::new(body.into()))
        .expect("valid request")
}

/// An HTTP/2 request with an absolute URI (h2 sends `:authority`, no Host header).
pub fn h2_request(scheme: &str, authority: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(format!("{scheme}://{authority}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

/// One request over a new HTTP/2 connection on any stream (plain TCP for h2c, or TLS).
pub async fn h2_over<S>(io: S, req: Request<Full<Bytes>>) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.expect("h2 handshake");
    tokio::spawn(conn);
    collect(send.send_request(req).await.expect("h2 response")).await
}

/// Bounds a future by [`DEADLINE`].
pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The sum of the samples of metric `name` (in the Prometheus text `text`) whose labels include `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Shared TLS client config trusting the fault lab's test CA, with the given ALPN protocols.
pub fn tls_client(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let pki = waygate_faultlab::TestPki::shared();
    let mut config = rustls::ClientConfig::builder_with_provider(waygate_faultlab::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(pki.root_store())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A fresh directory under the system temp dir for files a test writes (certificates, configs).
pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("waygate-test-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Captures the system log lines emitted on this thread (use with `#[tokio::test]`'s current-thread runtime,
/// where the gateway's tasks run on the test thread too).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the capture for the current thread until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The log line of this request id with this cause.
    pub fn line(&self, request_id: &str, cause: &str) -> String {
        let text = self.text();
        text.lines()
            .find(|l| l.contains(request_id) && l.contains(&format!("cause={cause}")))
            .unwrap_or_else(|| panic!("no log line for {request_id} with cause={cause}; log:\n{text}"))
            .to_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The integer value of `key=` in a logfmt line.
pub fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .trim_matches('"')
        .to_owned()
}

/// A gateway with an https listener (`public`, the fault lab's valid certificate) and a plain one (`plain`, HTTP/1.1
/// and h2c) in front of one backend, health checks off: what the HTTP/2 conformance tests speak to. Returns the
/// backend (keep it alive), the gateway and the two listeners' addresses (TLS, plain).
pub async fn tls_and_plain_gateway(pki_dir: &str) -> (waygate_faultlab::Running, Gateway, SocketAddr, SocketAddr) {
    let backend = waygate_faultlab::Backend::new("b1").spawn(loopback()).await.unwrap();
    let files = waygate_faultlab::TestPki::shared().write_files(&tempdir(pki_dir)).unwrap();
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"app\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n\
         [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"app\"\n\
         [[target_group]]\nname = \"app\"\ntargets = [\"{}\"]\n[target_group.health_check]\nenabled = false\n",
        files.valid.cert.display(),
        files.valid.key.display(),
        backend.addr()
    );
    let (gw, tls_addr) = gateway(&text).await;
    let plain_addr = gw.local_addr("plain").await.expect("listener plain");
    (backend, gw, tls_addr, plain_addr)
}

/// The JSON access log's lines in `dir`, once the gateway has shut down (which flushes it).
pub fn json_log_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for file in std::fs::read_dir(dir).expect("the access log's directory") {
        for line in std::fs::read_to_string(file.expect("a log file").path()).expect("a log file").lines() {
            out.push(serde_json::from_str(line).expect("a JSON line"));
        }
    }
    out
}

/// An extended CONNECT for a WebSocket on `path`, on a new HTTP/2 connection to `addr`: the answer.
pub async fn h2_connect(addr: SocketAddr, path: &str) -> http::Response<hyper::body::Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.expect("h2 handshake");
    tokio::spawn(conn);
    // A first request: the gateway's SETTINGS (with ENABLE_CONNECT_PROTOCOL) have arrived once it is answered
    // (whatever its status: a grpc group answers it 464).
    let first = send.send_request(http::Request::get("http://app.example/").body(Empty::<Bytes>::new()).unwrap());
    within("a first request", first).await.unwrap();
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://app.example{path}"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    within("the CONNECT's answer", send.send_request(req)).await.unwrap()
}
