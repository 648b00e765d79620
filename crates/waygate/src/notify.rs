//! systemd's readiness protocol (sd_notify): under a `Type=notify` unit, systemd passes a datagram socket in
//! `NOTIFY_SOCKET` and counts the service as started only when it says `READY=1`, so units ordered after
//! waygate start once its listeners are bound, not merely once the process exists. A reload is bracketed by
//! `RELOADING=1` and `READY=1`, a drain announced with `STOPPING=1`. Without `NOTIFY_SOCKET` (not under
//! systemd) nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to systemd when `NOTIFY_SOCKET` is set; a failure is logged, not fatal:
/// the gateway serves either way.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let socket = socket.to_string_lossy().into_owned();
    if let Err(e) = send(&socket, state) {
        tracing::warn!(target: "waygate", socket, state, error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

fn send(socket: &str, state: &str) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    match socket.strip_prefix('@') {
        // A name in Linux's abstract namespace (systemd uses these too).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sender.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            sender.send_to(state.as_bytes(), socket)?;
        }
    }
    Ok(())
}
