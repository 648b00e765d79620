//! Faults after the request is sent: closes and resets, broken response heads, slow or broken bodies,
//! idle keep-alive closes, and the target's own error. All hand-written on raw sockets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::body::pattern;
use crate::raw::{self, Conn, KeepAlive};
use crate::running::{self, Running, Shared};

/// Body length the truncated and stalled responses promise.
pub const PROMISED_BODY: usize = 1000;
/// Body bytes they actually send (before closing, or before stalling).
pub const SENT_BODY: usize = 100;

/// Serves connections that each read one request head and then run `then`.
async fn after_head<F, Fut>(bind: SocketAddr, then: F) -> io::Result<Running>
where
    F: Fn(Conn, Arc<Shared>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = running::bind(bind).await?;
    running::serve(listener, move |stream, shared| async move {
        let mut conn = Conn::new(stream);
        if let Ok(Some(_)) = conn.read_head(&shared).await {
            shared.stats.add_request();
            then(conn, shared).await;
        }
    })
}

/// Writes `bytes` as the whole response, then closes cleanly.
async fn answer(mut conn: Conn, shared: Arc<Shared>, bytes: Vec<u8>) {
    let _ = conn.write(&bytes).await;
    conn.finish(&shared).await;
}

pub(super) async fn close_before_response(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |conn, shared| async move { conn.finish(&shared).await }).await
}

pub(super) async fn reset_before_response(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |conn, _| async move { conn.reset() }).await
}

pub(super) async fn malformed_status_line(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |conn, shared| {
        // Letter O instead of zero in the status code.
        let bytes = b"HTTP/1.1 2OO OK\r\nx-backend: malformed-status-line\r\ncontent-length: 3\r\n\r\nok\n".to_vec();
        answer(conn, shared, bytes)
    })
    .await
}

pub(super) async fn malformed_header(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |conn, shared| {
        let bytes =
            b"HTTP/1.1 200 OK\r\nx-backend: malformed-header\r\nx-bad header: 1\r\ncontent-length: 3\r\n\r\nok\n"
                .to_vec();
        answer(conn, shared, bytes)
    })
    .await
}

/// The response head [`crate::Fault::HugeHead`] sends: 64 headers of ~1 KiB each, about 64 KiB in all.
pub fn huge_head() -> Vec<u8> {
    let mut head = b"HTTP/1.1 200 OK\r\nx-backend: huge-head\r\n".to_vec();
    let filler = "a".repeat(1000);
    for i in 0..64 {
        head.extend_from_slice(format!("x-filler-{i:02}: {filler}\r\n").as_bytes());
    }
    head.extend_from_slice(b"content-length: 3\r\n\r\nok\n");
    head
}

pub(super) async fn huge_head_fault(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |conn, shared| answer(conn, shared, huge_head())).await
}

fn promise_head(name: &str) -> Vec<u8> {
    let mut bytes =
        format!("HTTP/1.1 200 OK\r\nx-backend: {name}\r\ncontent-length: {PROMISED_BODY}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(&pattern(SENT_BODY));
    bytes
}

pub(super) async fn truncated_body(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |mut conn, shared| async move {
        if conn.write(&promise_head("truncated-body")).await.is_ok() {
            shared.stats.add_sent(SENT_BODY);
        }
        conn.finish(&shared).await;
    })
    .await
}

/// Stalls after [`SENT_BODY`] bytes until `Running::release()` (then sends the rest and closes) or until
/// the peer gives up and closes.
pub(super) async fn stalled_body(bind: SocketAddr) -> io::Result<Running> {
    after_head(bind, |mut conn, shared| async move {
        let ticket = shared.release_ticket();
        if conn.write(&promise_head("stalled-body")).await.is_err() {
            return;
        }
        shared.stats.add_sent(SENT_BODY);
        let released = tokio::select! {
            () = shared.released(ticket) => true,
            () = conn.idle_until_peer_closes(&shared) => false,
        };
        if released && conn.write(&pattern(PROMISED_BODY)[SENT_BODY..]).await.is_ok() {
            shared.stats.add_sent(PROMISED_BODY - SENT_BODY);
            shared.stats.add_stream_completed();
            conn.finish(&shared).await;
        }
    })
    .await
}

async fn keep_alive(bind: SocketAddr, cfg: KeepAlive) -> io::Result<Running> {
    let listener = running::bind(bind).await?;
    let cfg = Arc::new(cfg);
    running::serve(listener, move |stream, shared| {
        let cfg = cfg.clone();
        async move { raw::keep_alive(Conn::new(stream), &shared, &cfg).await }
    })
}

pub(super) async fn slow_head(bind: SocketAddr, delay: Duration) -> io::Result<Running> {
    let body = format!("answered after {} ms\n", delay.as_millis());
    keep_alive(
        bind,
        KeepAlive {
            idle_close: None,
            delay: Some(delay),
            status: "200 OK",
            name: "slow-head",
            body,
            max_requests: None,
        },
    )
    .await
}

pub(super) async fn keep_alive_race(bind: SocketAddr) -> io::Result<Running> {
    let body = "hello from keepalive-race\n".to_owned();
    let cfg = KeepAlive {
        idle_close: None,
        delay: None,
        status: "200 OK",
        name: "keepalive-race",
        body,
        max_requests: Some(1),
    };
    keep_alive(bind, cfg).await
}

pub(super) async fn keep_alive_closer(bind: SocketAddr, idle: Duration) -> io::Result<Running> {
    let body = "hello from keepalive-closer\n".to_owned();
    let cfg = KeepAlive {
        idle_close: Some(idle),
        delay: None,
        status: "200 OK",
        name: "keepalive-closer",
        body,
        max_requests: None,
    };
    keep_alive(bind, cfg).await
}

pub(super) async fn server_error(bind: SocketAddr) -> io::Result<Running> {
    let body = "503 from the target itself: not a gateway error\n".to_owned();
    let cfg = KeepAlive {
        idle_close: None,
        delay: None,
        status: "503 Service Unavailable",
        name: "server-error",
        body,
        max_requests: None,
    };
    keep_alive(bind, cfg).await
}
