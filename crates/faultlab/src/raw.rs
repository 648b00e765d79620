//! Hand-written HTTP/1.1 on a raw `TcpStream`, for targets that must break the protocol on purpose.
//!
//! Closing a socket with unread input makes the kernel send RST instead of FIN, so every deliberate
//! close here first drains what the peer sent ([`finish`]); only [`reset`] wants the RST.

use std::io;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::running::Shared;

/// Largest request head a raw target reads before giving up.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// How long [`finish`] keeps reading for the peer's close after sending FIN.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// A connection with a read-ahead buffer (bytes after the current request head).
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

/// The parts of a request head a raw target cares about.
pub(crate) struct Head {
    pub(crate) content_length: u64,
    pub(crate) chunked: bool,
    pub(crate) close: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self { stream, buf: Vec::new() }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    async fn fill(&mut self, shared: &Shared) -> io::Result<usize> {
        self.buf.reserve(16 * 1024);
        let n = self.stream.read_buf(&mut self.buf).await?;
        shared.stats.add_read(n);
        Ok(n)
    }

    /// Ensures at least `n` bytes are buffered (`UnexpectedEof` if the peer closes first).
    pub(crate) async fn read_exact_buffered(&mut self, n: usize, shared: &Shared) -> io::Result<()> {
        while self.buf.len() < n {
            if self.fill(shared).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// The first byte the peer sent, without consuming it; `Ok(None)` if it closed without sending.
    pub(crate) async fn peek_byte(&mut self, shared: &Shared) -> io::Result<Option<u8>> {
        match self.read_exact_buffered(1, shared).await {
            Ok(()) => Ok(Some(self.buf[0])),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bytes read but not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` buffered bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Reads one request head through `\r\n\r\n`. `Ok(None)` if the peer closed before sending a byte.
    pub(crate) async fn read_head(&mut self, shared: &Shared) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(Some(parse_head(&head)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
            }
            if self.fill(shared).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
            }
        }
    }

    /// Reads and discards a Content-Length request body, counting it as received.
    pub(crate) async fn skip_body(&mut self, shared: &Shared, mut len: u64) -> io::Result<()> {
        loop {
            let take = len.min(self.buf.len() as u64) as usize;
            self.buf.drain(..take);
            shared.stats.add_received(take);
            len -= take as u64;
            if len == 0 {
                return Ok(());
            }
            if self.fill(shared).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Writes raw bytes.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Sends FIN, then reads until the peer closes (bounded), so the close stays a FIN and not an RST.
    pub(crate) async fn finish(mut self, shared: &Shared) {
        let _ = self.stream.shutdown().await;
        let drain = async {
            while let Ok(n) = self.fill(shared).await {
                self.buf.clear();
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_LIMIT, drain).await;
    }

    /// Keeps the connection open, writing nothing, until the peer closes it (or the server stops).
    pub(crate) async fn idle_until_peer_closes(&mut self, shared: &Shared) {
        while let Ok(n) = self.fill(shared).await {
            self.buf.clear();
            if n == 0 {
                break;
            }
        }
    }

    /// Closes with SO_LINGER 0, which makes the kernel send RST instead of FIN.
    pub(crate) fn reset(self) {
        let _ = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> Head {
    let text = String::from_utf8_lossy(head);
    let mut parsed = Head { content_length: 0, chunked: false, close: false };
    let first = text.lines().next().unwrap_or("");
    if first.ends_with("HTTP/1.0") {
        parsed.close = true;
    }
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
        match name.as_str() {
            "content-length" => parsed.content_length = value.parse().unwrap_or(0),
            "transfer-encoding" => parsed.chunked = value.contains("chunked"),
            "connection" if value.contains("close") => parsed.close = true,
            "connection" if value.contains("keep-alive") => parsed.close = false,
            _ => {}
        }
    }
    parsed
}

/// A complete, valid response with a Content-Length body and `x-backend: {name}`.
pub(crate) fn response(status: &str, name: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nx-backend: {name}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Behaviour of a raw keep-alive server (see [`keep_alive`]).
#[derive(Clone, Debug)]
pub(crate) struct KeepAlive {
    /// Silently close (FIN) a connection idle this long between requests.
    pub(crate) idle_close: Option<Duration>,
    /// Wait this long after reading a request before answering.
    pub(crate) delay: Option<Duration>,
    pub(crate) status: &'static str,
    pub(crate) name: &'static str,
    pub(crate) body: String,
    /// Answer this many requests per connection; close (FIN, no response) when the next one arrives.
    pub(crate) max_requests: Option<u32>,
}

/// A correct HTTP/1.1 keep-alive server answering every request with one canned response.
/// Chunked request bodies are not supported (answered with 411 and closed).
pub(crate) async fn keep_alive(mut conn: Conn, shared: &Shared, cfg: &KeepAlive) {
    let mut answered = 0u32;
    loop {
        let head = match cfg.idle_close.filter(|_| answered > 0) {
            // Timing out here is the behaviour under test: a connection idle between requests is dropped with
            // FIN. Like real keep-alive timers, it starts after the first response, not at accept.
            Some(idle) => match tokio::time::timeout(idle, conn.read_head(shared)).await {
                Ok(head) => head,
                Err(_) => return,
            },
            None => conn.read_head(shared).await,
        };
        let Ok(Some(head)) = head else { return };
        if cfg.max_requests.is_some_and(|max| answered >= max) {
            // The request crossed our decision to close: FIN with nothing written, as when a keep-alive
            // timer fires just as the client reuses the connection.
            return conn.finish(shared).await;
        }
        answered += 1;
        if head.chunked {
            let _ = conn.write(&response("411 Length Required", cfg.name, "chunked requests unsupported\n")).await;
            return conn.finish(shared).await;
        }
        if conn.skip_body(shared, head.content_length).await.is_err() {
            return;
        }
        shared.stats.add_request();
        if let Some(delay) = cfg.delay {
            tokio::time::sleep(delay).await;
        }
        if conn.write(&response(cfg.status, cfg.name, &cfg.body)).await.is_err() {
            return;
        }
        shared.stats.add_sent(cfg.body.len());
        if head.close {
            return conn.finish(shared).await;
        }
    }
}
