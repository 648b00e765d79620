//! A host name's addresses are tried in turn (RFC 8305): the dual-stack `localhost` case where `::1` comes first
//! and refuses while the target listens on 127.0.0.1 only, and the failure that names every address when none
//! answers. Real sockets on loopback; the address lists are given explicitly so the tests do not depend on what
//! this host's resolver says `localhost` is (tests/waygate's netns test covers the resolver end to end).

use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

use waygate_connect::eyeballs::race;
use waygate_faults::Cause;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A port listening on 127.0.0.1 and, as far as this test can make sure, nothing on [::1]: refused there.
fn v4_only() -> (TcpListener, SocketAddr, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let v4 = listener.local_addr().unwrap();
    (listener, v4, SocketAddr::new(Ipv6Addr::LOCALHOST.into(), v4.port()))
}

#[tokio::test]
async fn a_refusing_first_address_falls_through_to_the_next() {
    let (_listener, v4, v6) = v4_only();
    let tcp = race(&[v6, v4], TIMEOUT).await.expect("the 127.0.0.1 address answers");
    assert_eq!(tcp.counters.remote, v4);
}

#[tokio::test]
async fn when_every_address_fails_each_is_named() {
    let (listener, v4, v6) = v4_only();
    drop(listener);
    let failure = race(&[v6, v4], TIMEOUT).await.expect_err("nothing listens on either address");
    let tried: Vec<SocketAddr> = failure.addresses.iter().map(|a| a.addr).collect();
    assert_eq!(tried.len(), 2, "{failure:?}");
    assert!(tried.contains(&v4) && tried.contains(&v6), "{tried:?}");
    let v4_failure = failure.addresses.iter().find(|a| a.addr == v4).unwrap();
    assert_eq!(v4_failure.cause, Cause::TargetConnectionRefused);
    assert!(v4_failure.error.contains("ECONNREFUSED"), "{v4_failure:?}");
    let words = failure.addresses_tried();
    assert!(words.contains(&v4.to_string()) && words.contains(&v6.to_string()), "{words}");
    // The request's own cause is one address's, here the last one tried; none of them is local.
    assert_ne!(failure.classify(), Cause::GatewayResourceExhausted);
}
