//! A frame-level HTTP/2 client, as h2spec is one: frames written byte by byte (so that they can break every rule),
//! header blocks as HPACK literals (no Huffman, no indexing: only what a case wants is in them), and the server's
//! frames read back one by one, within a deadline, for the checks h2spec makes (a connection error, a stream
//! error, a PING acknowledged, a response).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Frame types (RFC 9113 §6), and 0x16, which no RFC defines.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const UNKNOWN: u8 = 0x16;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Settings identifiers.
pub const ENABLE_PUSH: u16 = 0x2;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long the server has to react to a case: generous, since only a failing case waits it out.
const REACTION: Duration = Duration::from_secs(10);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's last stream id and error code.
    pub fn goaway(&self) -> Option<(u32, u32)> {
        let b = self.payload.get(..4)?;
        let last = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
        Some((last, self.error_code()?))
    }

    /// The error code of a GOAWAY (after the last stream id) or an RST_STREAM.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.ty {
            GOAWAY => 4,
            RST_STREAM => 0,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// What the server did next.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    /// The connection ended (or was reset).
    Closed,
    /// Nothing within the deadline.
    Silent,
}

/// One frame's bytes.
pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame payload under 16 MiB");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([ty, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    pairs.iter().flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes())).collect()
}

/// A header block of literal fields without indexing, names and values as plain strings (RFC 7541 §6.2.2).
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        string(&mut out, name.as_bytes());
        string(&mut out, value.as_bytes());
    }
    out
}

/// A request's header block: `method` on `path` at `localhost`.
pub fn request_block(scheme: &str, method: &str, path: &str) -> Vec<u8> {
    block(&[(":method", method), (":scheme", scheme), (":path", path), (":authority", "localhost")])
}

/// The `:status` a response's header block starts with, as the gateway's HPACK encoder writes it: indexed from
/// the static table (RFC 7541 Appendix A, indices 8 to 14), or a literal without indexing whose name is static
/// index 8 and whose value is three plain digits. `None` for anything else.
pub fn status(block: &[u8]) -> Option<u16> {
    const INDEXED: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    match block {
        [b, ..] if b & 0x80 != 0 => INDEXED.get(usize::from(b & 0x7f).checked_sub(8)?).copied(),
        [0x08, 3, digits @ ..] => std::str::from_utf8(digits.get(..3)?).ok()?.parse().ok(),
        _ => None,
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    // Length with a 7-bit prefix (RFC 7541 §5.1), Huffman bit clear.
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend(s);
}

/// A connection to the gateway, at the frame level.
pub struct Conn {
    io: Box<dyn Io>,
    /// `https` or `http`, for requests' `:scheme`.
    pub scheme: &'static str,
    /// Error codes that differed from the RFC's where h2spec's check still passes (a GOAWAY or RST_STREAM
    /// with another code, then the close): reported by the test, not failed.
    pub deviations: Vec<String>,
    queued: Vec<u8>,
}

impl Conn {
    pub fn new(io: Box<dyn Io>, scheme: &'static str) -> Self {
        Self { io, scheme, deviations: Vec::new(), queued: Vec::new() }
    }

    /// Queues `bytes`: what a case sends goes out in one write when it starts reading, so that the server reads
    /// the case's frames together (a POST's body-less stream is not answered before the frame that breaks it).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.queued.extend_from_slice(bytes);
    }

    async fn flush(&mut self) {
        let queued = std::mem::take(&mut self.queued);
        // A server that closed already is seen by the next read; the case decides what that means.
        let _ = self.io.write_all(&queued).await;
        let _ = self.io.flush().await;
    }

    pub async fn send_frame(&mut self, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.send(&frame(ty, flags, stream, payload)).await;
    }

    /// The preface and an empty SETTINGS; then the server's SETTINGS (acknowledged) and its ACK of ours.
    pub async fn handshake(&mut self) -> Result<(), String> {
        self.handshake_with(&[]).await
    }

    /// [`Conn::handshake`] with these settings in the client's SETTINGS.
    pub async fn handshake_with(&mut self, pairs: &[(u16, u32)]) -> Result<(), String> {
        self.send(&[PREFACE, &frame(SETTINGS, 0, 0, &settings(pairs))].concat()).await;
        let (mut theirs, mut acked) = (false, false);
        while !(theirs && acked) {
            match self.next().await {
                Event::Frame(f) if f.ty == SETTINGS && f.flags & ACK != 0 => acked = true,
                Event::Frame(f) if f.ty == SETTINGS => {
                    theirs = true;
                    self.send_frame(SETTINGS, ACK, 0, &[]).await;
                }
                Event::Frame(_) => {}
                other => return Err(format!("handshake: {other:?}")),
            }
        }
        Ok(())
    }

    /// The server's next frame.
    pub async fn next(&mut self) -> Event {
        if !self.queued.is_empty() {
            self.flush().await;
        }
        let read = async {
            let mut head = [0u8; 9];
            self.io.read_exact(&mut head).await?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0; len];
            self.io.read_exact(&mut payload).await?;
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            Ok::<_, std::io::Error>(Frame { ty: head[3], flags: head[4], stream, payload })
        };
        match tokio::time::timeout(REACTION, read).await {
            Ok(Ok(f)) => Event::Frame(f),
            Ok(Err(_)) => Event::Closed,
            Err(_) => Event::Silent,
        }
    }

    /// A connection error, as h2spec checks it: GOAWAY with one of `codes`, or the connection closed. A GOAWAY
    /// with another code before the close passes too (h2spec reads on to the close), and is noted in
    /// [`Conn::deviations`].
    pub async fn connection_error(&mut self, codes: &[u32]) -> Result<(), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == GOAWAY => {
                    if self.matches(&f, codes) {
                        return Ok(());
                    }
                }
                Event::Frame(_) => {}
                Event::Closed => return Ok(()),
                Event::Silent => return Err(format!("expected GOAWAY {codes:?} or a close: nothing")),
            }
        }
    }

    /// A stream error, as h2spec checks it: RST_STREAM or GOAWAY with one of `codes`, or the connection closed
    /// (another code is noted, and reading goes on, as for [`Conn::connection_error`]).
    pub async fn stream_error(&mut self, stream: u32, codes: &[u32]) -> Result<(), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == GOAWAY || f.ty == RST_STREAM => {
                    if self.matches(&f, codes) {
                        return Ok(());
                    }
                }
                Event::Frame(_) => {}
                Event::Closed => return Ok(()),
                Event::Silent => return Err(format!("expected RST_STREAM {codes:?} on stream {stream}: nothing")),
            }
        }
    }

    /// Whether `f`'s error code is one of `codes`; when it is not, the difference is noted.
    fn matches(&mut self, f: &Frame, codes: &[u32]) -> bool {
        let code = f.error_code();
        let ok = code.is_some_and(|c| codes.contains(&c));
        if !ok {
            let name = if f.ty == GOAWAY { "GOAWAY" } else { "RST_STREAM" };
            self.deviations.push(format!("{name} code {code:?} where RFC 9113 names {codes:?}"));
        }
        ok
    }

    /// The connection still works: a PING is acknowledged with its data.
    pub async fn alive(&mut self) -> Result<(), String> {
        let data = *b"h2spec!!";
        self.send_frame(PING, 0, 0, &data).await;
        self.ping_ack(&data).await
    }

    /// The next PING the server sends is an ACK of `data`.
    pub async fn ping_ack(&mut self, data: &[u8]) -> Result<(), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == PING && f.flags & ACK != 0 && f.payload == data => return Ok(()),
                Event::Frame(f) if f.ty == PING || f.ty == GOAWAY => return Err(format!("expected PING ACK: {f:?}")),
                Event::Frame(_) => {}
                other => return Err(format!("expected PING ACK: {other:?}")),
            }
        }
    }

    /// A response head on `stream`.
    pub async fn response(&mut self, stream: u32) -> Result<(), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == HEADERS && f.stream == stream => return Ok(()),
                Event::Frame(f) if f.ty == GOAWAY || (f.ty == RST_STREAM && f.stream == stream) => {
                    return Err(format!("expected a response on stream {stream}: {f:?}"));
                }
                Event::Frame(_) => {}
                other => return Err(format!("expected a response on stream {stream}: {other:?}")),
            }
        }
    }

    /// The next GOAWAY: its last stream id and error code (frames before it are skipped).
    pub async fn goaway(&mut self) -> Result<(u32, u32), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == GOAWAY => return f.goaway().ok_or(format!("a short GOAWAY: {f:?}")),
                Event::Frame(_) => {}
                other => return Err(format!("expected GOAWAY: {other:?}")),
            }
        }
    }

    /// A SETTINGS ACK.
    pub async fn settings_ack(&mut self) -> Result<(), String> {
        loop {
            match self.next().await {
                Event::Frame(f) if f.ty == SETTINGS && f.flags & ACK != 0 => return Ok(()),
                Event::Frame(f) if f.ty == GOAWAY => return Err(format!("expected SETTINGS ACK: {f:?}")),
                Event::Frame(_) => {}
                other => return Err(format!("expected SETTINGS ACK: {other:?}")),
            }
        }
    }
}
