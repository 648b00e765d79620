//! Connect-phase faults: refused ports and dropped SYNs.

mod common;

use std::io;
use std::time::Duration;

use common::*;
use tokio::net::TcpStream;
use waygate_faultlab::Fault;

#[tokio::test]
async fn refuse_gives_connection_refused() {
    let target = Fault::Refuse.spawn(local()).await.unwrap();
    for _ in 0..3 {
        let err = within(TcpStream::connect(target.addr())).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
    assert_eq!(target.stats().connections_accepted(), 0);
}

#[tokio::test]
async fn refuse_works_on_ipv6_loopback_when_available() {
    let Ok(target) = Fault::Refuse.spawn("[::1]:0".parse().unwrap()).await else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let err = within(TcpStream::connect(target.addr())).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn refuse_keeps_the_port_from_being_bound_by_others() {
    let target = Fault::Refuse.spawn(local()).await.unwrap();
    let err = tokio::net::TcpListener::bind(target.addr()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn syn_blackhole_connects_time_out() {
    let target = Fault::SynBlackhole.spawn(local()).await.unwrap();
    // The timeout is the behaviour under test: no SYN-ACK ever comes back.
    for _ in 0..2 {
        let attempt = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(target.addr())).await;
        assert!(attempt.is_err(), "connect should hang, got {attempt:?}");
    }
}

#[tokio::test]
async fn syn_blackhole_stops_on_drop() {
    let target = Fault::SynBlackhole.spawn(local()).await.unwrap();
    let addr = target.addr();
    target.shutdown().await;
    let err = within(TcpStream::connect(addr)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}
