//! HTTP/2 targets that misbehave at the HTTP/2 layer, and a gRPC target with a configurable answer, built on
//! the `h2` crate directly (hyper's server hides the stream resets and GOAWAYs these need). Each speaks h2c
//! with prior knowledge, or h2 over TLS when given a TLS config. Every request is counted in
//! [`Stats::requests_served`](crate::Stats) when its head is read.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::server::{self, SendResponse};
use h2::{Reason, RecvStream};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::running::{self, Running, Shared};

/// What an [`H2Target`] does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Behaviour {
    /// Answers 200 with the request body echoed (HTTP/2 done right, for contrast).
    Echo,
    /// Resets every stream with this RFC 9113 error code before any response head (TargetStreamReset).
    Reset(u32),
    /// Refuses every stream (REFUSED_STREAM): not processed, so the gateway may retry any method.
    Refuse,
    /// Answers 200 with [`PARTIAL_BODY`], then resets the stream with this code before the body ends
    /// (TargetResponseIncomplete: the response had begun).
    ResetMidBody(u32),
    /// Sends GOAWAY(NO_ERROR) with last_stream_id = the request's stream, then closes the connection without
    /// answering it (TargetGoAway: the stream was accepted, then lost).
    GoAwayMidFlight,
    /// Advertises SETTINGS_MAX_CONCURRENT_STREAMS = 1 and holds each response until [`Running::release`]: a
    /// client must open a connection per concurrent request.
    OneStream,
    /// Reads the first request's head, then goes silent with the connection left open: nothing is read or
    /// answered any more, keep-alive PINGs included (a frozen host, or a path that drops everything). Only a
    /// client's PING timeout, or its response timeout, ends the wait.
    Mute,
}

/// A gRPC answer: `grpc-status` `status` after `delay`; status 0 echoes the request message first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcAnswer {
    pub status: u8,
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Fault(H2Behaviour),
    Grpc(GrpcAnswer),
}

/// Builder of an HTTP/2 fault target or gRPC target.
#[derive(Debug, Clone)]
pub struct H2Target {
    kind: Kind,
    tls: Option<Arc<ServerConfig>>,
}

impl H2Target {
    pub fn new(behaviour: H2Behaviour) -> Self {
        Self { kind: Kind::Fault(behaviour), tls: None }
    }

    /// A gRPC server answering every call (and `grpc.health.v1.Health/Check`) with `answer`.
    pub fn grpc(answer: GrpcAnswer) -> Self {
        Self { kind: Kind::Grpc(answer), tls: None }
    }

    /// Serve h2 over TLS (the config's ALPN should offer `h2`).
    pub fn tls_config(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        let acceptor = self.tls.map(TlsAcceptor::from);
        let kind = self.kind;
        running::serve(listener, move |stream, shared| serve_conn(stream, shared, kind, acceptor.clone()))
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>, kind: Kind, tls: Option<TlsAcceptor>) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_h2(stream, shared, kind).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_h2(tls, shared, kind).await;
            }
        }
    }
}

async fn serve_h2<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: T, shared: Arc<Shared>, kind: Kind) {
    let mut builder = server::Builder::new();
    if let Kind::Fault(H2Behaviour::OneStream) = kind {
        builder.max_concurrent_streams(1);
    }
    let Ok(mut conn) = builder.handshake::<_, Bytes>(io).await else { return };
    let mut streams = tokio::task::JoinSet::new();
    // A PING answered proves that the frames queued before it reached the client (one stream per connection).
    let mut pinger = if let Kind::Fault(H2Behaviour::ResetMidBody(_)) = kind { conn.ping_pong() } else { None };
    while let Some(accepted) = conn.accept().await {
        let Ok((req, respond)) = accepted else { break };
        // Taken before the request is counted: a test that saw the count and released must release this hold.
        let ticket = shared.release_ticket();
        shared.stats.add_request();
        let (_, body) = req.into_parts();
        match kind {
            Kind::Fault(H2Behaviour::GoAwayMidFlight) => {
                // GOAWAY naming this stream as the last one processed, then the connection ends unanswered.
                drop((body, respond));
                conn.abrupt_shutdown(Reason::NO_ERROR);
                let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
                return;
            }
            Kind::Fault(H2Behaviour::Reset(code)) => {
                let mut respond = respond;
                respond.send_reset(Reason::from(code));
            }
            Kind::Fault(H2Behaviour::Refuse) => {
                let mut respond = respond;
                respond.send_reset(Reason::REFUSED_STREAM);
            }
            Kind::Fault(H2Behaviour::ResetMidBody(code)) => {
                streams.spawn(reset_mid_body(body, respond, Reason::from(code), pinger.take()));
            }
            Kind::Fault(H2Behaviour::Echo) => {
                streams.spawn(echo(body, respond, shared.clone(), None));
            }
            Kind::Fault(H2Behaviour::Mute) => {
                // The connection is no longer polled: its socket stays open and unread until the client gives up
                // (the read side then sees its FIN or reset only when polled, so the task ends with the target).
                let _held = (conn, body, respond);
                std::future::pending::<()>().await;
                return;
            }
            Kind::Fault(H2Behaviour::OneStream) => {
                let held = shared.clone();
                streams.spawn(echo(
                    body,
                    respond,
                    shared.clone(),
                    Some(Box::pin(async move { held.released(ticket).await })),
                ));
            }
            Kind::Grpc(answer) => {
                streams.spawn(grpc(body, respond, answer));
            }
        }
    }
    streams.shutdown().await;
}

type Hold = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Reads the request body whole (releasing its flow-control capacity).
async fn read_body(mut body: RecvStream) -> Option<Bytes> {
    let mut all = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
        all.extend_from_slice(&chunk);
    }
    Some(all.freeze())
}

async fn echo(body: RecvStream, mut respond: SendResponse<Bytes>, shared: Arc<Shared>, hold: Option<Hold>) {
    let Some(data) = read_body(body).await else { return };
    shared.stats.add_received(data.len());
    if let Some(hold) = hold {
        hold.await;
    }
    let resp = Response::builder().status(StatusCode::OK).body(()).unwrap_or_default();
    let Ok(mut send) = respond.send_response(resp, data.is_empty()) else { return };
    if !data.is_empty() {
        shared.stats.add_sent(data.len());
        let _ = send.send_data(data, true);
    }
}

/// The start of a body that [`H2Behaviour::ResetMidBody`] never finishes.
pub const PARTIAL_BODY: &[u8] = b"the start of a body";

async fn reset_mid_body(
    body: RecvStream,
    mut respond: SendResponse<Bytes>,
    code: Reason,
    pinger: Option<h2::PingPong>,
) {
    if read_body(body).await.is_none() {
        return;
    }
    let resp = Response::builder().status(StatusCode::OK).body(()).unwrap_or_default();
    let Ok(mut send) = respond.send_response(resp, false) else { return };
    let _ = send.send_data(Bytes::from_static(PARTIAL_BODY), false);
    // h2 drops a stream's queued frames when it is reset: the head and DATA go out first, which the PONG proves.
    if let Some(mut pinger) = pinger {
        let _ = pinger.ping(h2::Ping::opaque()).await;
    }
    send.send_reset(code);
}

async fn grpc(body: RecvStream, mut respond: SendResponse<Bytes>, answer: GrpcAnswer) {
    let Some(message) = read_body(body).await else { return };
    tokio::time::sleep(answer.delay).await;
    let mut head = Response::builder().status(StatusCode::OK).body(()).unwrap_or_default();
    head.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(u16::from(answer.status)));
    if answer.status != 0 {
        trailers.insert("grpc-message", HeaderValue::from_static("faultlab%20grpc%20target"));
        // Trailers-only: the status in the head, which ends the stream.
        head.headers_mut().extend(trailers);
        let _ = respond.send_response(head, true);
        return;
    }
    let Ok(mut send) = respond.send_response(head, false) else { return };
    // An echo of the request's message (a health check's empty one gets SERVING: field 1 = 1).
    let reply = if message.len() == 5 { Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]) } else { message };
    let _ = send.send_data(reply, false);
    let _ = send.send_trailers(trailers);
}
