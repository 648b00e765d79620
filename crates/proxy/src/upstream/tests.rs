//! Checkout's liveness check on real loopback sockets, where the runtime has not yet seen what the target did:
//! past [`PROBE_AFTER_IDLE`] the socket itself is asked.

use std::time::{Duration, Instant};

use super::{ConnectSpec, PROBE_AFTER_IDLE, Upstream};

fn upstream_to(port: u16) -> Upstream {
    let spec = ConnectSpec {
        host: "127.0.0.1".into(),
        port,
        connect_timeout: Duration::from_secs(10),
        tls_handshake_timeout: Duration::from_secs(10),
        tls: None,
    };
    Upstream::new(spec, format!("127.0.0.1:{port}").into(), Duration::from_secs(60), Default::default(), "g".into(), 1)
}

/// The target closes a pooled connection and the runtime's driver does not turn before the next checkout (the
/// test never yields in between), so neither the pool's watcher nor the socket's readiness knows. A connection
/// idle past the threshold is peeked at anyway: the close is found and a new connection is opened instead.
#[tokio::test(flavor = "current_thread")]
async fn a_close_the_runtime_has_not_seen_is_found_once_idle_past_the_threshold() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = upstream_to(listener.local_addr().unwrap().port());
    let first = upstream.lease().await.expect("connected");
    assert!(!first.reused);
    // Connected, so it is in the backlog: this accept does not block.
    let (target, _) = listener.accept().unwrap();
    upstream.release(first);
    let parked = Instant::now();
    assert_eq!(upstream.idle_connections(), 1);
    // On loopback the FIN is in the gateway socket's queue when `close` returns.
    drop(target);
    // Blocks the runtime's only thread on purpose until the connection has been idle past the threshold:
    // a wait for the idle age itself, with no other party to synchronise with.
    std::thread::sleep(
        (parked + PROBE_AFTER_IDLE + Duration::from_millis(20)).saturating_duration_since(Instant::now()),
    );
    let next = upstream.lease().await.expect("a new connection");
    assert!(!next.reused, "the closed pooled connection was handed out");
    assert_eq!(upstream.idle_connections(), 0);
}
