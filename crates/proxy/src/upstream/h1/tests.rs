//! The connection's idle checks on real loopback sockets: what a checkout learns from the runtime's readiness
//! alone, and that it consumes nothing.

use std::future::poll_fn;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use waygate_connect::meter::{ConnCounters, Metered};

use super::Conn;
use crate::upstream::liveness::Liveness;
use crate::upstream::transport::Transport;

/// A gateway-side connection and the target's end of it.
async fn pair() -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (target, _) = listener.accept().await.unwrap();
    let counters = ConnCounters::new(tcp.peer_addr().unwrap(), tcp.local_addr().unwrap());
    (Conn::new(Transport::Plain(Metered::new(tcp, counters))), target)
}

/// Waits (bounded by the test's own deadline) until the runtime has seen an event on the connection's socket,
/// as the pool's watcher would be woken for it.
async fn until_seen(conn: &Conn) {
    let wait = poll_fn(|cx| conn.poll_idle_event(cx).map(|_| ()));
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.expect("the event within 10 s");
}

#[tokio::test]
async fn a_quiet_connection_is_alive_without_waiting() {
    let (conn, _target) = pair().await;
    assert_eq!(conn.idle_event_seen(), Liveness::Alive);
}

#[tokio::test]
async fn a_close_the_runtime_has_seen_is_reported_at_checkout() {
    let (conn, target) = pair().await;
    drop(target);
    until_seen(&conn).await;
    assert_eq!(conn.idle_event_seen(), Liveness::Closed);
}

#[tokio::test]
async fn late_bytes_are_reported_and_left_unread() {
    let (conn, mut target) = pair().await;
    target.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
    until_seen(&conn).await;
    assert_eq!(conn.idle_event_seen(), Liveness::Unexpected);
    assert_eq!(conn.idle_event_seen(), Liveness::Unexpected, "a peek consumes nothing");
}
