//! Liveness at checkout: before a pooled connection that sat idle carries a request, peek at its socket without
//! blocking (the data plane peeks at connections idle 100 ms or more; hotter ones get the runtime's readiness).
//! A FIN, an RST or unexpected bytes mean the target has given up on it; writing a request into it would be
//! the keep-alive race (FAULTS.md TargetKeepAliveRace), so it is discarded instead. Like pingora's
//! `test_reusable_stream`, this catches closes the pool's idle watcher has not been scheduled to see yet.
//!
//! The probe holds a duplicate of the socket's file descriptor: same socket, same (non-blocking) file status,
//! so `peek` (recv with MSG_PEEK) returns at once and consumes nothing.

use std::io;
use std::os::fd::AsFd;

use tokio::net::TcpStream;

/// A peek-only handle on an upstream socket.
#[derive(Debug)]
pub struct Probe(std::net::TcpStream);

/// What a peek at an idle connection found.
#[derive(Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Nothing to read: the connection is open and quiet, as an idle keep-alive connection should be.
    Alive,
    /// The target closed it (FIN).
    Closed,
    /// The target reset it, or the socket failed.
    Reset,
    /// The target sent bytes nobody asked for (a late response, an alert, garbage): not safe to reuse.
    Unexpected,
}

impl Probe {
    /// A probe on `tcp`, or `None` if the descriptor cannot be duplicated (then only hyper's own view is used).
    pub fn new(tcp: &TcpStream) -> Option<Self> {
        tcp.as_fd().try_clone_to_owned().ok().map(|fd| Self(std::net::TcpStream::from(fd)))
    }

    pub fn check(&self) -> Liveness {
        let mut byte = [0u8; 1];
        match self.0.peek(&mut byte) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Liveness::Alive,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Liveness::Alive,
            Ok(0) => Liveness::Closed,
            Ok(_) => Liveness::Unexpected,
            Err(_) => Liveness::Reset,
        }
    }

    /// Shuts the socket down both ways: a read or write blocked on it (by whoever owns the connection) ends at
    /// once. The duplicate keeps the socket itself alive, so this never reaches a reused descriptor.
    pub fn shutdown(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// Waits (bounded) until the probe's answer differs from `Alive`: the peer's FIN or bytes travel
    /// asynchronously even on loopback.
    async fn settle(probe: &Probe) -> Liveness {
        for _ in 0..10_000 {
            let state = probe.check();
            if state != Liveness::Alive {
                return state;
            }
            tokio::task::yield_now().await;
        }
        probe.check()
    }

    #[tokio::test]
    async fn sees_quiet_fin_and_bytes() {
        let (client, server) = pair().await;
        let probe = Probe::new(&client).unwrap();
        assert_eq!(probe.check(), Liveness::Alive);
        drop(server);
        assert_eq!(settle(&probe).await, Liveness::Closed);

        let (client, mut server) = pair().await;
        let probe = Probe::new(&client).unwrap();
        server.write_all(b"x").await.unwrap();
        assert_eq!(settle(&probe).await, Liveness::Unexpected);
        assert_eq!(probe.check(), Liveness::Unexpected, "peek consumes nothing");
    }
}
