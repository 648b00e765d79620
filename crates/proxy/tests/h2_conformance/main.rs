//! HTTP/2 conformance of the gateway's front end, in CI: h2spec's cases (see `cases.rs` for which, each under its
//! h2spec id) run by a frame-level client of our own (`frames.rs`) against an https listener (ALPN h2) and a
//! plain one (h2c with prior knowledge), in front of a fault-lab backend. h2spec itself runs in `h2spec.rs`
//! where it is installed; no package registry this project reaches has it, so these cases keep the suite's
//! server obligations tested everywhere. Each case gets a new connection; every failure is reported at once.
//! What h2spec does not check, the server's own limits and its flow control, is in `limits.rs` and `flow.rs`.

mod cases;
#[path = "../common/mod.rs"]
mod common;
mod flow;
mod frames;
mod limits;

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use common::{DEADLINE, tls_and_plain_gateway, tls_client};
use frames::Conn;

/// A new connection to `addr`: TLS with ALPN h2 when `tls`, else plain TCP.
async fn open(addr: SocketAddr, tls: bool) -> Conn {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    if !tls {
        return Conn::new(Box::new(tcp), "http");
    }
    let connector = tokio_rustls::TlsConnector::from(tls_client(&[b"h2"]));
    let name = ServerName::try_from("localhost").expect("a server name");
    let stream = common::within("a TLS handshake", connector.connect(name, tcp)).await.expect("TLS");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN chose h2");
    Conn::new(Box::new(stream), "https")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2spec_cases_pass_on_the_tls_and_the_plain_listener() {
    let (_backend, gw, tls_addr, plain_addr) = tls_and_plain_gateway("h2c-pki").await;
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut deviations = Vec::new();
    for (listener, addr, tls) in [("TLS", tls_addr, true), ("plain", plain_addr, false)] {
        for (id, what) in cases::CASES {
            // The plain listener serves HTTP/1.1 and h2c on one port and tells them apart by the first bytes:
            // bytes that are not the preface are an HTTP/1 request there, so the invalid-preface case is for
            // TLS, where ALPN chose h2 (h2spec.rs leaves it out on plain for the same reason).
            if !tls && *id == "http2/3.5/2" {
                continue;
            }
            let mut conn = open(addr, tls).await;
            let result = async {
                if !cases::BEFORE_HANDSHAKE.contains(id) {
                    conn.handshake().await?;
                }
                cases::run(id, &mut conn).await
            };
            ran += 1;
            if let Err(e) = common::within(id, result).await {
                failures.push(format!("{listener} {id} ({what}): {e}"));
            }
            deviations.extend(conn.deviations.iter().map(|d| format!("{listener} {id} ({what}): {d}")));
        }
    }
    gw.shutdown(DEADLINE).await;
    assert!(failures.is_empty(), "{} of {ran} cases failed:\n{}", failures.len(), failures.join("\n"));
    // h2spec passes a connection error with another code than the RFC's (a GOAWAY and a close is all it checks);
    // the gateway's own server gives the RFC's code every time.
    assert!(
        deviations.is_empty(),
        "{} error codes differ from the RFC's:\n{}",
        deviations.len(),
        deviations.join("\n")
    );
    assert_eq!(ran, cases::CASES.len() * 2 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_limits_and_flow_control_hold() {
    let lab = limits::Lab::start().await;
    let mut failures = Vec::new();
    for (listener, addr, tls) in [("TLS", lab.tls, true), ("plain", lab.plain, false)] {
        for (id, what) in limits::CASES {
            let mut conn = open(addr, tls).await;
            // Every wait inside a case has its own deadline; this one bounds the whole case.
            match tokio::time::timeout(2 * DEADLINE, limits::run(id, &mut conn)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{listener} {id} ({what}): {e}")),
                Err(_) => failures.push(format!("{listener} {id} ({what}): timed out")),
            }
        }
    }
    // Last: it shuts the gateway down.
    let mut conn = open(lab.plain, false).await;
    match tokio::time::timeout(2 * DEADLINE, limits::graceful_shutdown(&lab, &mut conn)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push(format!("plain limits/graceful-shutdown: {e}")),
        Err(_) => failures.push("plain limits/graceful-shutdown: timed out".into()),
    }
    let total = limits::CASES.len() * 2 + 1;
    assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
}
