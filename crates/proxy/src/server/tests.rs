//! The differential test: every request of a corpus goes through this server and through hyper's HTTP/1
//! server (the oracle), and both must read the same requests (method, target, version, fields, body bytes),
//! unless this server refuses one where ALB's desync modes or RFC 9112 say to refuse and hyper is lax.
//! Also what both servers' tests share: [`Probe`], which sees when a request's future is dropped.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, Response, Version};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waygate_config::DesyncMode;
use waygate_faults::Cause;

use super::{ClientBody, Conn, Settings};
use crate::body::ProxyBody;
use crate::guard::Action;

/// The request futures a test's service made, and how many are still alive: a server must drop each as soon as
/// its answer is taken, since the gateway's holds the connection's count of requests in flight
/// (`forward::handle`).
#[derive(Clone, Default)]
pub(crate) struct Probe {
    made: Arc<AtomicUsize>,
    alive: Arc<AtomicUsize>,
}

impl Probe {
    /// A request future that answers `answer` at once and counts as alive until it is dropped.
    pub(crate) fn answer(&self, answer: Response<ProxyBody>) -> Holding {
        self.made.fetch_add(1, Ordering::SeqCst);
        self.alive.fetch_add(1, Ordering::SeqCst);
        Holding { probe: self.clone(), answer: Some(answer) }
    }

    /// A future was made, and every one made is gone.
    pub(crate) fn released(&self) -> bool {
        self.made.load(Ordering::SeqCst) > 0 && self.alive.load(Ordering::SeqCst) == 0
    }
}

/// A request future made by [`Probe::answer`].
pub(crate) struct Holding {
    probe: Probe,
    answer: Option<Response<ProxyBody>>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.probe.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Future for Holding {
    type Output = Response<ProxyBody>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Response<ProxyBody>> {
        Poll::Ready(self.answer.take().expect("polled after its answer"))
    }
}

/// What a server understood of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Request { method: String, target: String, version: Version, fields: Vec<(String, Vec<u8>)>, body: Vec<u8> },
    Refused(Cause),
}

fn fields(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    // Content-Length is framing (compared through the body bytes); a chunked request loses it on our side.
    headers
        .iter()
        .filter(|(n, _)| *n != http::header::CONTENT_LENGTH)
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

async fn seen_of<B>(req: Request<B>) -> Seen
where
    B: http_body::Body<Data = Bytes>,
{
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => b"<body error>".to_vec(),
    };
    Seen::Request {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        version: parts.version,
        fields: fields(&parts.headers),
        body,
    }
}

fn settings(mode: DesyncMode) -> Settings {
    Settings {
        mode,
        header_timeout: std::time::Duration::from_secs(5),
        idle: crate::server::Idle {
            timeout: std::time::Duration::from_secs(60),
            activity: crate::upstream::ConnCounters::new(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:80".parse::<SocketAddr>().unwrap(),
            ),
        },
    }
}

/// A request path that notes what it was given (the verdict's refusal, or the request read whole) in `log`.
fn recorder(
    log: &Arc<Mutex<Vec<Seen>>>,
) -> impl FnMut(
    Request<ClientBody>,
    crate::guard::Verdict,
) -> std::pin::Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>
+ Unpin
+ use<> {
    let log = log.clone();
    move |req, verdict| {
        let log = log.clone();
        Box::pin(async move {
            let seen = match verdict.action {
                Action::Reject(cause) => Seen::Refused(cause),
                _ => seen_of(req).await,
            };
            crate::lock(&log).push(seen);
            Response::new(ProxyBody::full("ok"))
        })
    }
}

/// Runs `input` through our server, the client's side closing after it; returns what the server saw.
async fn ours(input: &[u8], mode: DesyncMode) -> Vec<Seen> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let conn = tokio::spawn(Conn::new(server, BytesMut::new(), settings(mode), recorder(&seen)));
    client.write_all(input).await.unwrap();
    client.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = client.read_to_end(&mut sink).await;
    conn.await.unwrap();
    crate::lock(&seen).clone()
}

/// The same through hyper's HTTP/1 server.
async fn hypers(input: &[u8]) -> Vec<Seen> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let log = log.clone();
        async move {
            let s = seen_of(req).await;
            crate::lock(&log).push(s);
            Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let conn = tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(server), service),
    );
    client.write_all(input).await.unwrap();
    client.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = client.read_to_end(&mut sink).await;
    let _ = conn.await.unwrap();
    crate::lock(&seen).clone()
}

/// What the corpus expects of a case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Both servers read the same requests.
    Same,
    /// Ours refuses the request at this position with this cause (hyper is lax there); before it, both agree.
    Refuse(usize, Cause),
}
use Expect::*;

const MALFORMED: Cause = Cause::ClientRequestMalformed;

#[rustfmt::skip]
const CORPUS: &[(&str, &[u8], Expect)] = &[
    ("get", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Same),
    ("query and fields in order", b"GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-b: two words\r\nX-A: 3\r\n\r\n", Same),
    ("absolute form", b"GET http://a.example/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n", Same),
    ("asterisk form", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Same),
    ("bare LF", b"GET / HTTP/1.1\nHost: a\n\n", Same),
    ("content-length body", b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", Same),
    ("empty content-length", b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Same),
    ("chunked", b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Same),
    ("chunked with extensions", b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;x\r\nhello\r\n0;end\r\n\r\n", Same),
    ("chunked with trailers", b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", Same),
    ("upper-case chunk size", b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", Same),
    ("pipeline of three", b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\nHost: a\r\n\r\n", Same),
    ("pipelined chunked then get", b"POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", Same),
    ("rfc 9112 example", b"GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n", Same),
    ("http/1.0 keep-alive pipeline", b"GET /1 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\nHost: a\r\n\r\n", Same),
    ("connection close ends the pipeline", b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", Same),
    ("obs-text value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n", Same),
    ("empty value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", Same),
    // Where hyper is lax and RFC 9110/9112 or ALB's modes say refuse:
    ("no host on 1.1", b"GET / HTTP/1.1\r\nX: 1\r\n\r\n", Refuse(0, MALFORMED)),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Refuse(0, MALFORMED)),
    ("connect", b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", Refuse(0, Cause::ClientMethodNotAllowed)),
    ("conflicting content-length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", Refuse(0, MALFORMED)),
    ("unknown coding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Refuse(0, Cause::ClientUnsupportedTransferEncoding)),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n", Refuse(0, MALFORMED)),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\n\r\n", Refuse(0, MALFORMED)),
    ("smuggled after a refused head", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", Refuse(0, MALFORMED)),
    ("origin form without slash", b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", Refuse(0, MALFORMED)),
    ("second request refused in a pipeline", b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Refuse(1, MALFORMED)),
];

#[tokio::test]
async fn this_server_reads_requests_as_hyper_does_or_refuses_with_a_cause() {
    for &(name, input, expect) in CORPUS {
        let mine = ours(input, DesyncMode::Monitor).await;
        let oracle = hypers(input).await;
        match expect {
            Same => assert_eq!(mine, oracle, "{name}"),
            Refuse(at, cause) => {
                assert_eq!(mine.len(), at + 1, "{name}: nothing is read after a refusal: {mine:?}");
                assert_eq!(mine[at], Seen::Refused(cause), "{name}");
                let agreed = oracle.len().min(at);
                assert_eq!(mine[..agreed], oracle[..agreed], "{name}: the requests before the refusal");
            }
        }
    }
}

/// The same corpus, split into reads of every size from one byte: where reads end must not change what is read.
#[tokio::test]
async fn read_boundaries_do_not_change_what_is_read() {
    for &(name, input, _) in CORPUS {
        let whole = ours(input, DesyncMode::Monitor).await;
        for step in [1, 2, 7] {
            let (client, server) = tokio::io::duplex(step);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let conn = tokio::spawn(Conn::new(server, BytesMut::new(), settings(DesyncMode::Monitor), recorder(&seen)));
            let reader = tokio::spawn(async move {
                let mut sink = Vec::new();
                let (mut r, mut w) = tokio::io::split(client);
                let write = async {
                    for piece in input.chunks(step) {
                        if w.write_all(piece).await.is_err() {
                            break;
                        }
                    }
                    let _ = w.shutdown().await;
                };
                let read = r.read_to_end(&mut sink);
                let _ = tokio::join!(write, read);
            });
            conn.await.unwrap();
            reader.await.unwrap();
            assert_eq!(*crate::lock(&seen), whole, "{name}, reads of {step}");
        }
    }
}

/// Severe requests are refused in defensive mode, Ambiguous ones only in strictest (ALB's modes).
#[tokio::test]
async fn desync_modes_decide_refusals() {
    let ambiguous = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(matches!(ours(ambiguous, DesyncMode::Defensive).await[..], [Seen::Request { .. }]));
    assert_eq!(ours(ambiguous, DesyncMode::Strictest).await, [Seen::Refused(MALFORMED)]);
}

/// A chunk size that is not hex fails the body with ClientRequestMalformed (the request path answers 400).
#[tokio::test]
async fn a_malformed_chunk_fails_the_body_as_malformed() {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let log = errors.clone();
    let settings = settings(DesyncMode::Defensive);
    let service = move |req: Request<ClientBody>, _| {
        let log = log.clone();
        async move {
            let err = req.into_body().collect().await.err();
            crate::lock(&log).push(err.map(|e| e.0));
            Response::new(ProxyBody::empty())
        }
    };
    let conn = tokio::spawn(Conn::new(server, BytesMut::new(), settings, service));
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    client.read_to_end(&mut resp).await.unwrap();
    conn.await.unwrap();
    assert_eq!(*crate::lock(&errors), [Some(MALFORMED)]);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.contains("connection: close"), "the connection cannot go on after a broken body: {resp}");
}

/// After a `101`, the raw connection goes to the request path whole: bytes the client sent right behind its
/// request come first, then the live stream both ways.
#[tokio::test]
async fn a_101_hands_the_connection_over_with_what_was_read_ahead() {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
    let mut taken_tx = Some(taken_tx);
    let service = move |_req: Request<ClientBody>, _| {
        let (handover, upgraded) = super::Handover::new();
        if let Some(tx) = taken_tx.take() {
            let _ = tx.send(upgraded);
        }
        async move {
            let mut resp = Response::new(ProxyBody::empty());
            *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            resp.headers_mut().insert(http::header::UPGRADE, http::HeaderValue::from_static("echo"));
            resp.extensions_mut().insert(handover);
            resp
        }
    };
    let conn = tokio::spawn(Conn::new(server, BytesMut::new(), settings(DesyncMode::Defensive), service));
    client
        .write_all(b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nearly")
        .await
        .unwrap();
    let upgraded = taken_rx.await.unwrap();
    let mut io = upgraded.await.expect("the connection is handed over");
    conn.await.unwrap();
    let mut head = vec![0u8; 256];
    let n = client.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n") && head.contains("upgrade: echo"), "{head}");
    let mut early = [0u8; 5];
    io.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"early");
    client.write_all(b"live").await.unwrap();
    let mut live = [0u8; 4];
    io.read_exact(&mut live).await.unwrap();
    io.write_all(b"back").await.unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!((&live, &back), (b"live", b"back"));
}
