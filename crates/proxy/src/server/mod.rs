//! waygate's own client-side HTTP/1 server (ARCHITECTURE.md: "HTTP/1 server, ours"), as pingora has one:
//! one parse per request head with the desync verdict from the same bytes ([`head`]), the body decoded from
//! the connection's buffer as the target takes it ([`body`]), responses framed for the client ([`write`]),
//! and the connection's state machine ([`conn`]) that owns the socket, so that buffers exist only while
//! something is read or written, and hands it over whole after a `101`. hyper's HTTP/1 server stays in the tests as the oracle this one is compared
//! with. HTTP/2, once [`poll_sniff`] tells its preface apart, is served by the gateway's own HTTP/2 server
//! ([`h2`]).

pub mod body;
pub mod conn;
pub mod h2;
pub mod head;
pub mod idle;
mod rewind;
pub mod write;

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

pub use body::{ClientBody, ClientBodyError};
pub use conn::{Conn, Handover, HeadStarted, Settings, Upgraded};
pub use idle::Idle;
pub use rewind::Rewind;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection's first bytes announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c): the whole preface arrived.
    Http2,
}

/// Reads until the first bytes tell HTTP/2's preface from an HTTP/1 request (as hyper-util's auto server
/// decides), keeping every byte read in `buf`. `None`: the client closed first. Nothing is allocated until
/// the client sends, and the read's stack buffer lives only within a poll (an async fn would keep its 4 KiB
/// in every connection's future).
pub fn poll_sniff<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<Protocol>>> {
    loop {
        if !buf.is_empty() {
            let n = buf.len().min(H2_PREFACE.len());
            if buf[..n] != H2_PREFACE[..n] {
                return Poll::Ready(Ok(Some(Protocol::Http1)));
            }
            if n == H2_PREFACE.len() {
                return Poll::Ready(Ok(Some(Protocol::Http2)));
            }
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); 4096];
        let mut rb = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
        if rb.filled().is_empty() {
            return Poll::Ready(Ok(if buf.is_empty() { None } else { Some(Protocol::Http1) }));
        }
        buf.extend_from_slice(rb.filled());
    }
}

#[cfg(test)]
mod tests;
