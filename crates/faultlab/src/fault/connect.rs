//! Faults at the connect phase: a refused port and a port whose SYNs vanish.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::running::{self, Running};

fn tcp_socket(bind: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(bind), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Binds a socket to an ephemeral port and never listens on it: a SYN to a bound-but-not-listening
/// port gets RST from the kernel, so connects fail with ECONNREFUSED.
///
/// Keeping the socket bound (without SO_REUSEADDR) while [`Running`] lives stops anything else from
/// binding the port in the meantime. After the handle is dropped the port is free again, and another
/// process could bind it: a small reuse risk for code that keeps the address longer than the handle.
pub(super) fn refuse(bind: SocketAddr) -> io::Result<Running> {
    let socket = tcp_socket(bind)?;
    socket.bind(&SockAddr::from(bind))?;
    let addr = local_addr(&socket)?;
    Ok(running::park(addr, socket))
}

/// A listener with backlog 0 whose accept queue is filled by one connection of our own that is never
/// accepted. Linux drops a SYN while the accept queue is full (`ListenOverflows`, regardless of
/// syncookies), so the client retransmits SYNs until its connect timeout fires.
pub(super) async fn syn_blackhole(bind: SocketAddr) -> io::Result<Running> {
    let socket = tcp_socket(bind)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(bind))?;
    // Linux: the queue is full once it holds more than `backlog` entries, so backlog 0 holds one.
    socket.listen(0)?;
    let addr = local_addr(&socket)?;
    let filler = TcpStream::connect(addr).await?;
    // The filler's connect returns on SYN-ACK; the listener turns readable once the final ACK has put
    // the filler in the accept queue, which is the moment the queue is full.
    let listener = tokio::task::spawn_blocking(move || wait_readable(socket, QUEUE_FILL_LIMIT))
        .await
        .map_err(io::Error::other)??;
    Ok(running::park(addr, (listener, filler)))
}

/// Generous bound for the loopback handshake to land in the accept queue (it takes microseconds).
const QUEUE_FILL_LIMIT: Duration = Duration::from_secs(10);

/// Blocks until `socket` (a listener) is readable, i.e. its accept queue is not empty, without accepting.
fn wait_readable(socket: Socket, limit: Duration) -> io::Result<mio::net::TcpListener> {
    let mut listener = mio::net::TcpListener::from_std(socket.into());
    let mut poll = mio::Poll::new()?;
    poll.registry().register(&mut listener, mio::Token(0), mio::Interest::READABLE)?;
    let mut events = mio::Events::with_capacity(1);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "accept queue did not fill"));
        }
        match poll.poll(&mut events, Some(left)) {
            Ok(()) if events.iter().any(|e| e.is_readable()) => break,
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    poll.registry().deregister(&mut listener)?;
    Ok(listener)
}

fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket.local_addr()?.as_socket().ok_or_else(|| io::Error::other("socket has no IP address"))
}
