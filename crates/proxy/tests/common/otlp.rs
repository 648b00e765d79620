//! An OTLP/HTTP receiver on 127.0.0.1 (a small hyper server, over TLS when given a config) that decodes the
//! exporter's requests with opentelemetry-proto, the specification's own messages, and hands each one's spans
//! to the test; and helpers to read spans.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{loopback, within};

/// How the receiver answers.
#[derive(Clone, Copy)]
pub enum Answer {
    Accept,
    Status(u16),
    /// Reads the request and never answers.
    Never,
}

/// One export request as received: its path, content type and spans.
pub type Export = (String, String, Vec<Span>);

/// A receiver answering `answer`; every POST's spans, decoded, arrive on the channel.
pub async fn receiver(answer: Answer) -> (SocketAddr, mpsc::UnboundedReceiver<Export>) {
    receiver_over(answer, None).await
}

/// [`receiver`], over TLS with `tls` when given.
pub async fn receiver_over(
    answer: Answer,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Export>) {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, answer, tx.clone()));
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                    Some(config) => {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else { return };
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn handle(
    req: http::Request<hyper::body::Incoming>,
    answer: Answer,
    tx: mpsc::UnboundedSender<Export>,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let ct = req.headers().get("content-type").map_or("", |v| v.to_str().unwrap()).to_owned();
    let body = req.into_body().collect().await?.to_bytes();
    let decoded = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let spans: Vec<Span> =
        decoded.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect();
    let _ = tx.send((path, ct, spans));
    let status = match answer {
        Answer::Accept => 200,
        Answer::Status(s) => s,
        Answer::Never => std::future::pending().await,
    };
    let mut resp = http::Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// A `[tracing]` table exporting to `receiver` (plain http) at `ratio`, batches sent 20 ms after their first.
pub fn tracing_table(receiver: SocketAddr, ratio: f64, extra: &str) -> String {
    format!("[tracing]\notlp_endpoint = \"http://{receiver}\"\nsample_ratio = {ratio}\nbatch_delay = \"20ms\"\n{extra}")
}

/// A gateway with `tracing` (a `[tracing]` table) in front of `targets` (group `app`), plus `extra` TOML.
pub async fn traced(targets: &[SocketAddr], tracing: &str, extra: &str) -> (waygate_proxy::Gateway, SocketAddr) {
    super::gateway(&format!("{tracing}\n{}{extra}", super::simple_config(targets, ""))).await
}

/// The next export's spans.
pub async fn next_spans(rx: &mut mpsc::UnboundedReceiver<Export>) -> Vec<Span> {
    let (path, ct, spans) = within("an export", rx.recv()).await.expect("receiver running");
    assert_eq!((path.as_str(), ct.as_str()), ("/v1/traces", "application/x-protobuf"));
    spans
}

/// Spans until those of the exchange with this request id (its SERVER span and its children) have arrived.
pub async fn spans_of(rx: &mut mpsc::UnboundedReceiver<Export>, request_id: &str) -> Vec<Span> {
    let mut all = Vec::new();
    loop {
        all.extend(next_spans(rx).await);
        if let Some(server) = all.iter().find(|s| attr(s, "waygate.request_id") == Some(str_value(request_id))) {
            let (trace, id) = (server.trace_id.clone(), server.span_id.clone());
            return all
                .into_iter()
                .filter(|s| s.trace_id == trace && (s.span_id == id || s.parent_span_id == id))
                .collect();
        }
    }
}

pub fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

pub fn str_value(s: &str) -> Value {
    Value::StringValue(s.to_owned())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the faultlab's `/echo` target received in the request field `field`.
pub fn echoed(resp: &super::Resp, field: &str) -> Vec<String> {
    let json = resp.json();
    json["headers"][field].as_array().map_or(Vec::new(), |v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
}
