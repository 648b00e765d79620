//! systemd's readiness protocol, as a `Type=notify` unit sees it: a datagram socket in `NOTIFY_SOCKET` receives
//! `READY=1` once the listeners are bound, `RELOADING=1` then `READY=1` around a SIGHUP reload, and `STOPPING=1`
//! when SIGTERM starts the drain.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

/// The next datagram, bounded by the socket's read timeout.
fn next(socket: &UnixDatagram, gw: &Proc) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no notification ({e}); log:\n{}", gw.log()));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let dir = tempdir("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let config = write_config(&dir, &["127.0.0.1:9".parse().unwrap()]);
    let mut gw = Proc::start_env(&config, &[("NOTIFY_SOCKET", &path)]);
    assert_eq!(next(&socket, &gw), "READY=1");
    // Ready means bound: the listener answers now.
    let addr = gw.listener("public");
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    gw.signal("HUP");
    assert_eq!(next(&socket, &gw), "RELOADING=1");
    assert_eq!(next(&socket, &gw), "READY=1");
    gw.wait_line(&["configuration reloaded"]);
    gw.signal("TERM");
    assert_eq!(next(&socket, &gw), "STOPPING=1");
    assert_eq!(gw.wait_exit(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
