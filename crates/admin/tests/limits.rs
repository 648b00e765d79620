//! The admin listener stays reachable under abuse: a client that never finishes its request head is closed
//! after the header timeout, a flood of idle connections beyond the cap is closed at once (long before the header
//! timeout), and `/live` answers afterwards. Real sockets on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use waygate_admin::{AdminState, Limits, spawn_with};

/// Generous for a 300 ms timeout on a slow machine, and short of hyper's own 30 s default, which a missing
/// setting would fall back to.
const DEADLINE: Duration = Duration::from_secs(20);
const LIMITS: Limits = Limits { header_timeout: Duration::from_millis(300), max_connections: 4 };

fn admin() -> waygate_admin::AdminHandle {
    spawn_with("127.0.0.1:0".parse().unwrap(), Arc::new(AdminState::default()), LIMITS).expect("admin starts")
}

/// Reads until the server closes the connection (bounded by [`DEADLINE`]); returns what it sent.
fn until_closed(tcp: &mut TcpStream) -> String {
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut out = Vec::new();
    match tcp.read_to_end(&mut out) {
        Ok(_) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => panic!("the admin listener kept the connection open past {DEADLINE:?}: {e}"),
    }
}

fn live(addr: std::net::SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET /live HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").unwrap();
    until_closed(&mut tcp)
}

#[test]
fn a_slow_header_is_closed_after_the_header_timeout() {
    let admin = admin();
    let mut tcp = TcpStream::connect(admin.addr).unwrap();
    let started = Instant::now();
    tcp.write_all(b"GET /live HTTP/1.1\r\nHost: adm").unwrap();
    let answer = until_closed(&mut tcp);
    assert!(started.elapsed() >= LIMITS.header_timeout, "closed before the timeout: {answer:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(live(admin.addr).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_flood_of_idle_connections_is_shed_and_live_still_answers() {
    // A header timeout far beyond the wait below: a connection the server closes within the wait was shed by the
    // cap, not timed out.
    let limits = Limits { header_timeout: Duration::from_secs(600), max_connections: 4 };
    let admin = spawn_with("127.0.0.1:0".parse().unwrap(), Arc::new(AdminState::default()), limits).unwrap();
    let flood: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(admin.addr).unwrap()).collect();
    let wait = Duration::from_secs(10);
    let closed: Vec<bool> = std::thread::scope(|s| {
        let readers: Vec<_> = flood
            .iter()
            .map(|tcp| {
                s.spawn(move || {
                    let mut tcp = tcp;
                    tcp.set_read_timeout(Some(wait)).unwrap();
                    let mut out = Vec::new();
                    match tcp.read_to_end(&mut out) {
                        Ok(_) => true,
                        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                    }
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let shed = closed.iter().filter(|c| **c).count();
    assert_eq!(
        shed,
        64 - limits.max_connections,
        "beyond the cap of {} every connection is closed at once",
        limits.max_connections
    );
    drop(flood);
    // The held ones gone, their slots free again.
    let deadline = Instant::now() + DEADLINE;
    while !live(admin.addr).starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "/live never answered after the flood");
        std::thread::sleep(Duration::from_millis(20)); // polling, with the deadline above
    }
}
