//! HTTP/1.1 connections to the receivers telemetry sends to (alert webhooks, the OTLP collector): TCP, TLS
//! when the URL is https (waygate-connect's client settings, SNI from the host), then hyper's client
//! handshake. Hand-written over hyper's connection API rather than a pooled client crate: each caller decides
//! how long a connection lives (a webhook's one attempt, the exporter's kept connection).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// A connection to `host:port` ready for requests; its driver runs as a task of the calling runtime.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => handshake(tcp).await,
        Some(config) => {
            let name = waygate_connect::tls::server_name(None, host)?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
            handshake(stream).await
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}
