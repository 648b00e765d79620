//! WebSocket targets: a well-behaved echo ([`WsTarget::Echo`], tokio-tungstenite on the upgraded socket) and
//! targets that accept a WebSocket handshake and then misbehave, each in one way the gateway must name. Every one
//! answers a plain request (a health check) with `200`, so the gateway sends it traffic, and only the upgrade
//! goes wrong.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::raw::{self, find};
use crate::running::{self, Running, Shared};

/// A WebSocket target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WsTarget {
    /// Accepts the handshake and echoes every message (text, binary) back; answers a close with a close.
    Echo,
    /// Answers the handshake `101` with a `Sec-WebSocket-Accept` that does not match the key.
    BadAccept,
    /// Answers the handshake `101` without an `Upgrade` field.
    NoUpgrade,
    /// Accepts the handshake, reads the first bytes the client sends, then resets the connection (RST).
    ResetMidStream,
    /// Accepts the handshake, then reads and never writes (silence with the connection open).
    Silent,
}

impl WsTarget {
    pub const ALL: &'static [WsTarget] =
        &[WsTarget::Echo, WsTarget::BadAccept, WsTarget::NoUpgrade, WsTarget::ResetMidStream, WsTarget::Silent];

    /// Kebab-case name, e.g. `ws-bad-accept`.
    pub fn name(&self) -> &'static str {
        match self {
            WsTarget::Echo => "ws-echo",
            WsTarget::BadAccept => "ws-bad-accept",
            WsTarget::NoUpgrade => "ws-no-upgrade",
            WsTarget::ResetMidStream => "ws-reset-mid-stream",
            WsTarget::Silent => "ws-silent",
        }
    }

    /// One line saying what the target does.
    pub fn description(&self) -> &'static str {
        match self {
            WsTarget::Echo => "WebSocket echo: every message comes back",
            WsTarget::BadAccept => "answers the handshake 101 with a Sec-WebSocket-Accept that does not match the key",
            WsTarget::NoUpgrade => "answers the handshake 101 without an Upgrade field",
            WsTarget::ResetMidStream => "accepts the WebSocket, then resets the connection (RST) at the first bytes",
            WsTarget::Silent => "accepts the WebSocket, then never sends a byte (the connection stays open)",
        }
    }

    /// The cause the gateway reports: in the response for a bad handshake, in the access log for a tunnel cut
    /// by the target; `""` when nothing fails (the echo; the silent one, closed by idle_timeout).
    pub fn expected_cause(&self) -> &'static str {
        match self {
            WsTarget::BadAccept | WsTarget::NoUpgrade => "TargetMalformedResponse",
            WsTarget::ResetMidStream => "TargetResponseIncomplete",
            WsTarget::Echo | WsTarget::Silent => "",
        }
    }

    /// Starts the target on `bind` (usually `127.0.0.1:0`).
    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        running::serve(listener, move |stream, shared| serve(self, stream, shared))
    }
}

/// A request head: its `Sec-WebSocket-Key` when it asks for a WebSocket, and what followed it.
struct Handshake {
    key: Option<String>,
    after: Vec<u8>,
}

async fn serve(target: WsTarget, mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    loop {
        let Some(Handshake { key, after }) = read_head(&mut stream, &shared).await else { return };
        shared.stats.add_request();
        let Some(key) = key else {
            // A plain request (a health check): answered, and the connection goes on.
            if stream.write_all(&raw::response("200 OK", target.name(), "websocket target\n")).await.is_err() {
                return;
            }
            continue;
        };
        let accept = match target {
            WsTarget::BadAccept => derive_accept_key(b"not the key the request sent"),
            _ => derive_accept_key(key.as_bytes()),
        };
        let upgrade = if target == WsTarget::NoUpgrade { "" } else { "Upgrade: websocket\r\n" };
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        return match target {
            WsTarget::Echo => echo(stream, after, &shared).await,
            WsTarget::ResetMidStream => {
                let mut conn = raw::Conn::new(stream);
                if after.is_empty() {
                    let _ = conn.peek_byte(&shared).await;
                }
                conn.reset();
            }
            WsTarget::Silent | WsTarget::BadAccept | WsTarget::NoUpgrade => {
                raw::Conn::new(stream).idle_until_peer_closes(&shared).await;
            }
        };
    }
}

/// Reads one request head; `None` when the peer closed or sent something that is not one.
async fn read_head(stream: &mut TcpStream, shared: &Shared) -> Option<Handshake> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        let n = if buf.len() > raw::MAX_HEAD { 0 } else { stream.read_buf(&mut buf).await.ok()? };
        if n == 0 {
            return None;
        }
        shared.stats.add_read(n);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let field = |wanted: &str| {
        text.split("\r\n").skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case(wanted).then(|| value.trim().to_owned())
        })
    };
    let websocket = field("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let key = field("sec-websocket-key").filter(|_| websocket);
    Some(Handshake { key, after: buf[end..].to_vec() })
}

/// Echoes messages until the client closes.
async fn echo(stream: TcpStream, after: Vec<u8>, shared: &Shared) {
    let mut ws = WebSocketStream::from_partially_read(stream, after, Role::Server, None).await;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if msg.is_text() || msg.is_binary() {
            shared.stats.add_received(msg.len());
            let len = msg.len();
            if ws.send(msg).await.is_err() {
                return;
            }
            shared.stats.add_sent(len);
        }
    }
    let _ = ws.close(None).await;
}
