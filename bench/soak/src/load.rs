//! The load: clients of five kinds, each a bounded loop (a deadline and a request budget), each request numbered
//! (`?soak=N` in its URL, so the access log's line for it is found by number) and tallied by the client: its
//! status and request id, or what went wrong.
//!
//! - `h1-keepalive`: HTTP/1.1, sequential requests on one connection, reconnecting when the gateway closes it.
//! - `h1-close`: HTTP/1.1 with `Connection: close`, a new connection per request.
//! - `h2`: HTTP/2 (h2c prior knowledge), eight streams at once on a connection that lives for 1 to 200 requests.
//! - `slow`: reads a 512 KiB body 32 KiB at a time, 100 ms apart (slow, but never idle for idle_timeout).
//! - `nonread`: asks for 16 MiB with a 16 KiB receive buffer, reads the head and nothing more; the gateway must
//!   cut it off after idle_timeout (ClientIdleTimeout).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway::IDLE_TIMEOUT;

/// What the client saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A response head: its status and `x-request-id`; `body_ok` false when the body ended in an error.
    Answered { status: u16, id: String, body_ok: bool },
    /// No response head: the transport failed (this is a lost request unless the access log explains it).
    Lost(String),
}

/// Every request of the run, by number.
#[derive(Default)]
pub struct Tally {
    next: AtomicU64,
    seen: Mutex<BTreeMap<u64, (&'static str, Seen)>>,
    /// Non-reading clients the gateway cut off before the whole body came, and those it did not.
    pub nonread_cut: AtomicU64,
    pub nonread_not_cut: AtomicU64,
}

impl Tally {
    fn number(&self) -> u64 {
        self.next.fetch_add(1, Relaxed)
    }

    fn record(&self, n: u64, kind: &'static str, seen: Seen) {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(n, (kind, seen));
    }

    /// Everything seen, by request number.
    pub fn take(&self) -> BTreeMap<u64, (&'static str, Seen)> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Where the load goes and until when.
#[derive(Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub until: Instant,
}

/// Requests one worker may send at most, whatever the deadline (every loop is bounded twice).
const BUDGET: u64 = 5_000_000;

/// One request's shape: host, method, path, body.
struct Shape {
    host: &'static str,
    method: &'static str,
    path: String,
    body: Bytes,
}

/// The mix: mostly small transfers to the well-behaved group, some to the group with faulty targets, a fixed
/// response, a target's own 503 and a few delays.
fn shape(n: u64) -> Shape {
    let mut rng = rand::rng();
    let host = if rng.random_ratio(15, 100) { "flaky.example" } else { "app.example" };
    let (method, path, body) = match rng.random_range(0..100) {
        0..50 => ("GET", format!("/bytes/{}", rng.random_range(1..65_536)), Bytes::new()),
        50..60 => ("GET", "/status/200".to_owned(), Bytes::new()),
        60..75 => ("GET", format!("/delay/{}", rng.random_range(0..50)), Bytes::new()),
        75..90 => ("POST", "/echo".to_owned(), Bytes::from(vec![b's'; rng.random_range(1..16_384)])),
        90..95 => ("GET", "/soak-fixed".to_owned(), Bytes::new()),
        _ => ("GET", "/status/503".to_owned(), Bytes::new()),
    };
    Shape { host, method, path: format!("{path}?soak={n}"), body }
}

fn request(shape: &Shape, kind: &'static str, absolute: bool, close: bool) -> http::Request<Full<Bytes>> {
    let uri = if absolute { format!("http://{}{}", shape.host, shape.path) } else { shape.path.clone() };
    let mut b = http::Request::builder()
        .method(shape.method)
        .uri(uri)
        .header(http::header::HOST, shape.host)
        .header(http::header::USER_AGENT, kind);
    if close {
        b = b.header(http::header::CONNECTION, "close");
    }
    b.body(Full::new(shape.body.clone())).unwrap_or_default()
}

/// Records a response: its head, then whether its body arrived whole.
async fn settle(
    tally: &Tally,
    n: u64,
    kind: &'static str,
    result: Result<http::Response<hyper::body::Incoming>, hyper::Error>,
) -> bool {
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body_ok = resp.into_body().collect().await.is_ok();
            tally.record(n, kind, Seen::Answered { status, id, body_ok });
            true
        }
        Err(e) => {
            tally.record(n, kind, Seen::Lost(e.to_string()));
            false
        }
    }
}

/// HTTP/1.1 on one connection at a time; `close` asks for a new connection per request.
pub async fn h1(target: Target, tally: &Tally, close: bool) {
    let kind = if close { "h1-close" } else { "h1-keepalive" };
    let mut sent = 0;
    'connections: while Instant::now() < target.until && sent < BUDGET {
        let Ok(tcp) = tokio::net::TcpStream::connect(target.addr).await else {
            let n = tally.number();
            tally.record(n, kind, Seen::Lost("connect failed".into()));
            sent += 1;
            continue;
        };
        let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await else { continue };
        tokio::spawn(conn);
        while Instant::now() < target.until && sent < BUDGET {
            if send.ready().await.is_err() {
                continue 'connections;
            }
            let n = tally.number();
            sent += 1;
            let shape = shape(n);
            let result = send.send_request(request(&shape, kind, false, close)).await;
            if !settle(tally, n, kind, result).await || close {
                continue 'connections;
            }
        }
    }
}

/// HTTP/2 with prior knowledge: eight streams at once, the connection renewed after 1 to 200 requests.
pub async fn h2(target: Target, tally: &Tally) {
    let kind = "h2";
    let mut sent = 0;
    while Instant::now() < target.until && sent < BUDGET {
        let Ok(tcp) = tokio::net::TcpStream::connect(target.addr).await else {
            let n = tally.number();
            tally.record(n, kind, Seen::Lost("connect failed".into()));
            sent += 1;
            continue;
        };
        let Ok((send, conn)) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await
        else {
            continue;
        };
        let conn = tokio::spawn(conn);
        let lifetime: u64 = rand::rng().random_range(1..=200);
        let used = AtomicU64::new(0);
        let streams = (0..8).map(|_| {
            let mut send = send.clone();
            let used = &used;
            async move {
                while Instant::now() < target.until && used.fetch_add(1, Relaxed) < lifetime {
                    if send.ready().await.is_err() {
                        return;
                    }
                    let n = tally.number();
                    let result = send.send_request(request(&shape(n), kind, true, false)).await;
                    if !settle(tally, n, kind, result).await {
                        return;
                    }
                }
            }
        });
        join_all(streams).await;
        sent += used.load(Relaxed).min(lifetime);
        drop(send);
        conn.abort();
    }
}

/// Runs futures to completion together (a handful of them: no crate needed for it).
async fn join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<Option<std::pin::Pin<Box<F>>>> = futures.map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in set.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await
}

/// A raw HTTP/1.1 GET on a socket with a small receive buffer; returns the stream, the status and the request id
/// read from the head (the head is read a few bytes at a time so little of the body is taken with it).
async fn raw_get(
    addr: SocketAddr,
    path: &str,
    kind: &str,
    recv_buffer: u32,
) -> Result<(tokio::net::TcpStream, u16, String, usize), String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.set_recv_buffer_size(recv_buffer).map_err(|e| e.to_string())?;
    let mut tcp = socket.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nUser-Agent: {kind}\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let end = loop {
        let read = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) => return Err("closed before the response head".into()),
            Ok(Ok(k)) => got.extend_from_slice(&buf[..k]),
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => return Err("no response head in 30 s".into()),
        }
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if got.len() > 64 * 1024 {
            return Err("response head over 64 KiB".into());
        }
    };
    let text = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let id =
        text.lines().find_map(|l| l.strip_prefix("x-request-id: ")).map(|v| v.trim().to_owned()).unwrap_or_default();
    Ok((tcp, status, id, got.len() - end))
}

/// A client that reads slowly: 512 KiB, 32 KiB every 100 ms.
pub async fn slow(target: Target, tally: &Tally) {
    const SIZE: usize = 512 * 1024;
    let mut sent = 0;
    while Instant::now() < target.until && sent < BUDGET {
        sent += 1;
        let n = tally.number();
        let path = format!("/bytes/{SIZE}?soak={n}");
        let seen = match raw_get(target.addr, &path, "slow", 64 * 1024).await {
            Err(e) => Seen::Lost(e),
            Ok((mut tcp, status, id, mut body)) => {
                let mut chunk = vec![0u8; 32 * 1024];
                let mut ended = false;
                while !ended && body < SIZE {
                    // The client's own pace (the behaviour under test), not synchronisation.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut chunk)).await {
                        Ok(Ok(k)) if k > 0 => body += k,
                        _ => ended = true,
                    }
                }
                Seen::Answered { status, id, body_ok: body >= SIZE }
            }
        };
        tally.record(n, "slow", seen);
    }
}

/// A client that asks for 16 MiB and reads nothing after the head; it counts whether the gateway cut it off.
pub async fn nonread(target: Target, tally: &Tally) {
    const SIZE: usize = 16 << 20;
    let mut sent = 0;
    while Instant::now() < target.until && sent < BUDGET {
        sent += 1;
        let n = tally.number();
        let path = format!("/bytes/{SIZE}?soak={n}");
        let seen = match raw_get(target.addr, &path, "nonread", 16 * 1024).await {
            Err(e) => Seen::Lost(e),
            Ok((mut tcp, status, id, body)) => {
                // Reads nothing for twice the idle timeout (the behaviour under test), then drains what the
                // kernel kept: a gateway that cut the client off ends the stream well short of 16 MiB.
                tokio::time::sleep(IDLE_TIMEOUT * 2).await;
                let mut total = body;
                let mut sink = vec![0u8; 64 * 1024];
                let drained = tokio::time::timeout(Duration::from_secs(60), async {
                    loop {
                        match tcp.read(&mut sink).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => total += k,
                        }
                    }
                })
                .await;
                let cut = drained.is_ok() && total < SIZE;
                let counter = if cut { &tally.nonread_cut } else { &tally.nonread_not_cut };
                counter.fetch_add(1, Relaxed);
                Seen::Answered { status, id, body_ok: false }
            }
        };
        tally.record(n, "nonread", seen);
    }
}
