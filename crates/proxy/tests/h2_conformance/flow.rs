//! The gateway's HTTP/2 flow control both ways, which h2spec leaves unchecked. Sending: response DATA never
//! exceeds the client's stream or connection window, stalls at it and resumes on the client's WINDOW_UPDATE,
//! and follows a SETTINGS_INITIAL_WINDOW_SIZE change on open streams (RFC 9113 §6.9.2). Receiving: request
//! DATA past the gateway's windows (256 KiB a stream, 1 MiB the connection; server/h2/mod.rs) is a stream, or
//! connection, FLOW_CONTROL_ERROR, and a body of several MiB sent within them, padded, completes. A stall is
//! checked without waiting out a time: a PING goes after it, and no DATA may come before its ACK.

use std::collections::HashMap;

use super::frames::*;

/// The gateway's receive windows (server/h2/mod.rs STREAM_WINDOW, CONNECTION_WINDOW), which the handshake's
/// SETTINGS and first WINDOW_UPDATE announce.
const STREAM_WINDOW: i64 = 256 * 1024;
const CONNECTION_WINDOW: i64 = 1024 * 1024;
/// The most frames one wait reads (each read has its own deadline).
const MAX_FRAMES: usize = 20_000;
/// The route whose target's SYNs vanish (limits.rs): nothing takes a request body sent there, so nothing of
/// the receive windows comes back.
pub const STALL: &str = "/stall";

/// What the client let the server send, and what came, checked frame by frame.
pub struct Flow {
    conn: i64,
    initial: i64,
    windows: HashMap<u32, i64>,
    got: HashMap<u32, usize>,
    body: HashMap<u32, Vec<u8>>,
    status: HashMap<u32, u16>,
    ended: Vec<u32>,
    ping_acks: usize,
    settings_acks: usize,
    /// A GOAWAY is expected (and kept) rather than a failure.
    pub expect_goaway: bool,
    pub goaway: Option<(u32, u32)>,
}

impl Flow {
    /// The windows after a handshake announcing `initial` as SETTINGS_INITIAL_WINDOW_SIZE.
    pub fn new(initial: u32) -> Self {
        Flow {
            conn: 65_535,
            initial: i64::from(initial),
            windows: HashMap::new(),
            got: HashMap::new(),
            body: HashMap::new(),
            status: HashMap::new(),
            ended: Vec::new(),
            ping_acks: 0,
            settings_acks: 0,
            expect_goaway: false,
            goaway: None,
        }
    }

    pub fn got(&self, id: u32) -> usize {
        self.got.get(&id).copied().unwrap_or(0)
    }

    pub fn ended(&self, id: u32) -> bool {
        self.ended.contains(&id)
    }

    fn apply(&mut self, f: &Frame) -> Result<(), String> {
        match f.ty {
            DATA => {
                let flow = f.payload.len() as i64;
                let (start, pad) = match f.payload.first() {
                    Some(&pad) if f.flags & PADDED != 0 => (1, usize::from(pad)),
                    _ => (0, 0),
                };
                let data = f.payload.get(start..f.payload.len().saturating_sub(pad)).unwrap_or_default();
                let window = self.windows.entry(f.stream).or_insert(self.initial);
                *window -= flow;
                self.conn -= flow;
                if *window < 0 || self.conn < 0 {
                    return Err(format!(
                        "DATA of {flow} octets on stream {} past the client's windows (now stream {}, connection {})",
                        f.stream, *window, self.conn
                    ));
                }
                *self.got.entry(f.stream).or_default() += data.len();
                self.body.entry(f.stream).or_default().extend_from_slice(data);
            }
            HEADERS if !self.status.contains_key(&f.stream) => {
                let status = status(&f.payload).ok_or_else(|| format!("no :status read in {f:?}"))?;
                self.status.insert(f.stream, status);
            }
            GOAWAY if self.expect_goaway => self.goaway = f.goaway(),
            RST_STREAM | GOAWAY => return Err(format!("unexpected {f:?}")),
            PING if f.flags & ACK != 0 => self.ping_acks += 1,
            SETTINGS if f.flags & ACK != 0 => self.settings_acks += 1,
            _ => {}
        }
        if (f.ty == DATA || f.ty == HEADERS) && f.flags & END_STREAM != 0 {
            self.ended.push(f.stream);
        }
        Ok(())
    }

    /// Reads frames until `done` holds (checked before each read).
    pub async fn until(&mut self, c: &mut Conn, what: &str, done: impl Fn(&Self) -> bool) -> Result<(), String> {
        for _ in 0..MAX_FRAMES {
            if done(self) {
                return Ok(());
            }
            match c.next().await {
                Event::Frame(f) => self.apply(&f).map_err(|e| format!("waiting for {what}: {e}"))?,
                other => return Err(format!("waiting for {what}: {other:?} (received {:?})", self.got)),
            }
        }
        Err(format!("waiting for {what}: {MAX_FRAMES} frames"))
    }

    /// Nothing more may come now: no DATA before the ACK of a PING sent after the stall.
    pub async fn stalled(&mut self, c: &mut Conn) -> Result<(), String> {
        c.send_frame(PING, 0, 0, b"stalled?").await;
        let acks = self.ping_acks + 1;
        self.until(c, "a PING's ACK while stalled", |f| f.ping_acks >= acks).await
    }

    /// A WINDOW_UPDATE of `increment` for `stream` (0: the connection).
    pub async fn grant(&mut self, c: &mut Conn, stream: u32, increment: u32) {
        c.send_frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes()).await;
        match stream {
            0 => self.conn += i64::from(increment),
            id => *self.windows.entry(id).or_insert(self.initial) += i64::from(increment),
        }
    }

    /// A new SETTINGS_INITIAL_WINDOW_SIZE, which moves every stream's window by the difference; waits for the ACK.
    async fn set_initial(&mut self, c: &mut Conn, size: u32) -> Result<(), String> {
        c.send_frame(SETTINGS, 0, 0, &settings(&[(INITIAL_WINDOW_SIZE, size)])).await;
        let delta = i64::from(size) - self.initial;
        self.initial = i64::from(size);
        self.windows.values_mut().for_each(|w| *w += delta);
        let acks = self.settings_acks + 1;
        self.until(c, "the SETTINGS ACK", |f| f.settings_acks >= acks).await
    }

    /// Stream `id` ended with `status` and `len` body octets.
    pub fn done(&self, id: u32, status: u16, len: usize) -> Result<(), String> {
        let seen = (self.status.get(&id).copied(), self.got(id), self.ended(id));
        if seen != (Some(status), len, true) {
            return Err(format!(
                "stream {id}: (status, octets, END_STREAM) {seen:?}, expected ({status}, {len}, true)"
            ));
        }
        Ok(())
    }

    pub fn body(&self, id: u32) -> &[u8] {
        self.body.get(&id).map_or(&[], Vec::as_slice)
    }
}

pub async fn get(c: &mut Conn, id: u32, path: &str) {
    let b = request_block(c.scheme, "GET", path);
    c.send_frame(HEADERS, END_HEADERS | END_STREAM, id, &b).await;
}

/// Opens stream `id` with a POST to `path` whose body is still to come.
pub async fn post(c: &mut Conn, id: u32, path: &str) {
    let b = request_block(c.scheme, "POST", path);
    c.send_frame(HEADERS, END_HEADERS, id, &b).await;
}

/// A 300-octet response in a 16-octet stream window: stalls at the window six times, resumes on each
/// 50-octet WINDOW_UPDATE.
pub async fn send_stream_window(c: &mut Conn) -> Result<(), String> {
    c.handshake_with(&[(INITIAL_WINDOW_SIZE, 16)]).await?;
    let mut flow = Flow::new(16);
    get(c, 1, "/bytes/300").await;
    let mut stalls = 0;
    for granted in (0..20).map(|n| 16 + 50 * n) {
        flow.until(c, "DATA up to the stream window", |f| f.got(1) >= granted || f.ended(1)).await?;
        if flow.ended(1) {
            break;
        }
        flow.stalled(c).await?;
        stalls += 1;
        flow.grant(c, 1, 50).await;
    }
    flow.done(1, 200, 300)?;
    if stalls != 6 {
        return Err(format!("{stalls} stalls at the stream window, expected 6"));
    }
    Ok(())
}

/// The connection window (65,535 octets, never raised): a 65,000-octet response takes most of it, the next
/// response stalls after the remaining 535 octets and goes on as connection WINDOW_UPDATEs come.
pub async fn send_connection_window(c: &mut Conn) -> Result<(), String> {
    c.handshake_with(&[(INITIAL_WINDOW_SIZE, 1 << 20)]).await?;
    let mut flow = Flow::new(1 << 20);
    get(c, 1, "/bytes/65000").await;
    flow.until(c, "the first response", |f| f.ended(1)).await?;
    flow.done(1, 200, 65_000)?;
    get(c, 3, "/bytes/2000").await;
    flow.until(c, "DATA up to the connection window", |f| f.got(3) >= 535).await?;
    flow.stalled(c).await?;
    flow.grant(c, 0, 100).await;
    flow.until(c, "DATA up to the connection window", |f| f.got(3) >= 635).await?;
    flow.stalled(c).await?;
    flow.grant(c, 0, 10_000).await;
    flow.until(c, "the second response", |f| f.ended(3)).await?;
    flow.done(3, 200, 2000)
}

/// SETTINGS_INITIAL_WINDOW_SIZE lowered from 100 to 40 on a stream that used its 100 octets: its window is
/// -60, and a WINDOW_UPDATE of 50 leaves it at -10 (nothing may come); raised to 300 it is 250.
pub async fn initial_window_change(c: &mut Conn) -> Result<(), String> {
    c.handshake_with(&[(INITIAL_WINDOW_SIZE, 100)]).await?;
    let mut flow = Flow::new(100);
    get(c, 1, "/bytes/1000").await;
    flow.until(c, "DATA up to the stream window", |f| f.got(1) >= 100).await?;
    flow.stalled(c).await?;
    flow.set_initial(c, 40).await?;
    flow.grant(c, 1, 50).await;
    flow.stalled(c).await?;
    flow.set_initial(c, 300).await?;
    flow.until(c, "DATA up to the raised window", |f| f.got(1) >= 350).await?;
    flow.stalled(c).await?;
    flow.grant(c, 1, 1000).await;
    flow.until(c, "the response's end", |f| f.ended(1)).await?;
    flow.done(1, 200, 1000)
}

/// `n` DATA frames of 16,384 octets on `id`, without END_STREAM.
async fn fill(c: &mut Conn, id: u32, n: usize) {
    let data = vec![b'x'; 16_384];
    for _ in 0..n {
        c.send_frame(DATA, 0, id, &data).await;
    }
}

/// A body to a target that takes none of it: its stream's 256 KiB are accepted, one octet more is RST_STREAM
/// FLOW_CONTROL_ERROR, and the connection goes on.
pub async fn recv_stream_window(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    let mut flow = Flow::new(65_535);
    post(c, 1, STALL).await;
    fill(c, 1, (STREAM_WINDOW / 16_384) as usize).await;
    flow.stalled(c).await.map_err(|e| format!("the stream's whole window: {e}"))?;
    c.send_frame(DATA, 0, 1, b"!").await;
    for _ in 0..MAX_FRAMES {
        match c.next().await {
            Event::Frame(f) if f.ty == RST_STREAM && f.stream == 1 && f.error_code() == Some(FLOW_CONTROL_ERROR) => {
                return c.alive().await;
            }
            Event::Frame(f) if f.ty == RST_STREAM || f.ty == GOAWAY => return Err(format!("{f:?}")),
            Event::Frame(_) => {}
            other => return Err(format!("expected RST_STREAM FLOW_CONTROL_ERROR on stream 1: {other:?}")),
        }
    }
    Err("too many frames".into())
}

/// Four streams fill the connection's 1 MiB window (each its own 256 KiB), and 16 octets on a fifth are the
/// connection's FLOW_CONTROL_ERROR.
pub async fn recv_connection_window(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    let mut flow = Flow::new(65_535);
    for id in [1, 3, 5, 7, 9] {
        post(c, id, STALL).await;
    }
    for id in [1, 3, 5, 7] {
        fill(c, id, (STREAM_WINDOW / 16_384) as usize).await;
    }
    flow.stalled(c).await.map_err(|e| format!("the connection's whole window: {e}"))?;
    c.send_frame(DATA, 0, 9, &[b'x'; 16]).await;
    match c.goaway().await? {
        (_, FLOW_CONTROL_ERROR) => Ok(()),
        other => Err(format!("GOAWAY (last stream, code) {other:?}, expected FLOW_CONTROL_ERROR")),
    }
}

/// A 4 MiB POST body in padded DATA frames (2,048 octets and 255 of padding each), sent only within the
/// windows the gateway gives back: it completes, which it cannot unless the padding comes back too (512 KiB
/// of it, more than the stream's window).
pub async fn upload_padded(c: &mut Conn) -> Result<(), String> {
    const BODY: usize = 4 << 20;
    const CHUNK: usize = 2048;
    c.handshake().await?;
    post(c, 1, "/upload").await;
    let (mut stream, mut conn, mut sent) = (STREAM_WINDOW, CONNECTION_WINDOW, 0);
    let mut frame = vec![255u8];
    frame.extend([b'x'; CHUNK]);
    frame.extend([0u8; 255]);
    for _ in 0..MAX_FRAMES {
        while sent < BODY && stream.min(conn) >= frame.len() as i64 {
            c.send_frame(DATA, PADDED, 1, &frame).await;
            (stream, conn, sent) = (stream - frame.len() as i64, conn - frame.len() as i64, sent + CHUNK);
        }
        if sent == BODY {
            break;
        }
        match c.next().await {
            Event::Frame(f) if f.ty == WINDOW_UPDATE && f.payload.len() == 4 => {
                let inc = i64::from(u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]));
                match f.stream {
                    0 => conn += inc,
                    _ => stream += inc,
                }
            }
            Event::Frame(f) if matches!(f.ty, RST_STREAM | GOAWAY | HEADERS) => {
                return Err(format!("after {sent} of {BODY} octets: {f:?}"));
            }
            Event::Frame(_) => {}
            other => return Err(format!("after {sent} of {BODY} octets (windows {stream}, {conn}): {other:?}")),
        }
    }
    c.send_frame(DATA, END_STREAM, 1, &[]).await;
    let mut flow = Flow::new(65_535);
    flow.until(c, "the upload's answer", |f| f.ended(1)).await?;
    let json: serde_json::Value = serde_json::from_slice(flow.body(1)).map_err(|e| format!("{e}"))?;
    match json["body_bytes"].as_u64() {
        Some(n) if n == BODY as u64 => Ok(()),
        _ => Err(format!("the target saw {json}, expected body_bytes {BODY}")),
    }
}
