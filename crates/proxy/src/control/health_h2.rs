//! Health checks of targets whose group speaks HTTP/2: a `GET path` on a stream of a connection opened for
//! the check (`protocol_version = "http2"`), or ALB's gRPC check (`"grpc"`): a unary call of the method at
//! `path` with an empty message, judged by its `grpc-status` (in the trailers, or in the head of a
//! trailers-only answer). Either way the connection, stream and evidence are the data plane's own
//! ([`crate::upstream::h2`]), so a check fails with the cause a request would.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use waygate_faults::{HttpEvidence, Phase};

use crate::body::{UpstreamRequestBody, grpc_code, grpc_status};
use crate::upstream::connector::Connected;
use crate::upstream::h1::BodyState;
use crate::upstream::{AttemptFailure, h2};

/// An empty gRPC message: uncompressed, length 0 (gRPC over HTTP/2, "Length-Prefixed-Message").
const EMPTY_MESSAGE: [u8; 5] = [0; 5];

/// The check's answer: the HTTP status, or for a gRPC check the grpc-status code.
pub async fn check(
    connected: Connected,
    scheme: &str,
    authority: &str,
    path: &str,
    grpc: bool,
    user_agent: &'static str,
    timeout: Duration,
) -> Result<u16, AttemptFailure> {
    let shared = h2::Shared::handshake(connected.transport, connected.counters, None, None, timeout, timeout).await?;
    let mut stream = h2::Shared::stream(&shared).ok_or_else(|| AttemptFailure::new(Phase::SendRequest))?;
    let uri: Uri =
        format!("{scheme}://{authority}{path}").parse().map_err(|_| AttemptFailure::new(Phase::SendRequest))?;
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(header::USER_AGENT, HeaderValue::from_static(user_agent));
    let (method, mut body) = if grpc {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        (Method::POST, UpstreamRequestBody::buffered(Bytes::from_static(&EMPTY_MESSAGE), Arc::default()))
    } else {
        (Method::GET, UpstreamRequestBody::empty(Arc::default()))
    };
    let request = h2::Request { method, uri, headers, head_len: 0 };
    let response = stream.send(&request, &mut body, timeout).await.map_err(|e| *e.failure)?;
    let status = response.head.status.as_u16();
    if !grpc || status != 200 {
        return Ok(status);
    }
    if let Some(code) = response.head.fields.get("grpc-status").and_then(grpc_code) {
        return Ok(u16::from(code));
    }
    let mut state = BodyState::new(response.head.framing);
    loop {
        match poll_fn(|cx| stream.poll_body(cx, &mut state)).await {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    return Ok(u16::from(code));
                }
            }
            Some(Err(e)) => {
                let mut f = AttemptFailure::new(Phase::StreamBody);
                f.io = e.io;
                f.http = Some(e.http);
                return Err(f);
            }
            // A gRPC answer without grpc-status is not one.
            None => {
                return Err(AttemptFailure {
                    http: Some(HttpEvidence::MalformedHead),
                    ..AttemptFailure::new(Phase::AwaitHeaders)
                });
            }
        }
    }
}
