//! The TLS front door against real TLS peers (rustls clients and `openssl s_client`): certificates chosen by
//! SNI, ALB security policies, mutual TLS in `verify` and `passthrough`, the connection log (and the doctor
//! reading it), ALPN h2 meaning HTTP/2 only, the expiry metric, and reloads that keep open connections.

#[path = "../common/mod.rs"]
mod common;
mod connlog;
mod mtls;
mod pki;
mod reload;
mod session;
mod sni_policy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use waygate_faultlab::{Backend, Running};
use waygate_proxy::Gateway;

use common::{DEADLINE, gateway, loopback, tempdir};
use pki::{Id, Pki};

/// A gateway with one https listener `public` in front of a fault-lab backend.
pub struct Front {
    pub gw: Gateway,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub pki: Pki,
    pub backend: Running,
}

/// The config text: `tls` is the body of `[listener.tls]`, `top` goes before the listener.
pub fn config_text(target: SocketAddr, tls: &str, top: &str) -> String {
    format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n{top}\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         protocol = \"https\"\ndefault_target_group = \"app\"\n[listener.tls]\n{tls}\n\
         [[target_group]]\nname = \"app\"\ntargets = [\"{target}\"]\n[target_group.health_check]\nenabled = false\n"
    )
}

/// Starts a front whose `[listener.tls]` is `tls(pki)`; a connection log is written to `dir/conn`.
pub async fn start(tag: &str, tls: impl FnOnce(&Pki) -> String, top: &str) -> Front {
    let dir = tempdir(tag);
    let pki = Pki::new(&dir, "server");
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let top = format!("[connection_log]\ndir = \"{}\"\n{top}", dir.join("conn").display());
    let text = config_text(backend.addr(), &tls(&pki), &top);
    std::fs::write(dir.join("waygate.toml"), &text).unwrap();
    let (gw, addr) = gateway(&text).await;
    Front { gw, addr, dir, pki, backend }
}

/// `certificates = [...]` of these server identities.
pub fn certificates(ids: &[&Id]) -> String {
    let list: Vec<String> =
        ids.iter().map(|i| format!("{{ cert = \"{}\", key = \"{}\" }}", i.cert.display(), i.key.display())).collect();
    format!("certificates = [{}]\n", list.join(", "))
}

/// A rustls client trusting `roots`, speaking `versions`, offering `alpn`, presenting `cert` if given.
pub fn client(
    roots: Arc<rustls::RootCertStore>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    cert: Option<&Id>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(waygate_faultlab::crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key_der()).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A TLS connection to `addr` asking for `sni`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    common::within("a TLS handshake", tokio_rustls::TlsConnector::from(config).connect(name, tcp)).await
}

/// The common name of the certificate the server presented.
pub fn served_name(tls: &TlsStream<TcpStream>) -> String {
    let der = &tls.get_ref().1.peer_certificates().unwrap()[0];
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned()
}

/// `GET /echo` over an HTTP/1.1 connection (a TLS stream); the backend's JSON view of the request, or the
/// error that ended the exchange.
pub async fn echo_over(tls: TlsStream<TcpStream>, headers: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    echo_on(&mut send, headers).await
}

/// `GET /echo` on an open HTTP/1.1 client connection.
pub async fn echo_on(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    headers: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    let mut req = http::Request::builder().uri("/echo").header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = common::within("a response", send.send_request(req.body(Full::new(Bytes::new())).unwrap()))
        .await
        .map_err(|e| e.to_string())?;
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("{e}: {body:?}"))
}

/// The connection log's lines so far (every file in `dir/conn`).
pub fn conn_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir.join("conn")).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

/// Waits for a connection-log line that satisfies `wanted`.
pub async fn conn_line(dir: &Path, wanted: impl Fn(&str) -> bool) -> String {
    common::within("a connection-log line", async {
        loop {
            if let Some(l) = conn_lines(dir).into_iter().find(|l| wanted(l)) {
                return l;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Runs `openssl` with `args` (stdin closed); `None` when openssl is not installed (a skip, unless
/// `WAYGATE_TEST_REQUIRE_ALL` is set, which makes it a failure).
pub async fn openssl(args: Vec<String>) -> Option<(bool, String)> {
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl").args(&args).stdin(std::process::Stdio::null()).output()
    });
    match tokio::time::timeout(DEADLINE, run).await.expect("openssl finishes").unwrap() {
        Ok(out) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            Some((out.status.success(), text))
        }
        Err(e) => {
            assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "openssl is required: {e}");
            eprintln!("skipped: openssl cannot run ({e})");
            None
        }
    }
}

/// `openssl s_client` arguments to `addr`, trusting `ca`.
pub fn s_client(addr: SocketAddr, ca: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["s_client", "-connect", &addr.to_string(), "-CAfile", &ca.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}
