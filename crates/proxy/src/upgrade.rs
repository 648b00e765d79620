//! Upgrades relayed to targets: WebSockets, and any other `Upgrade` token. The forwarded request keeps its
//! `Upgrade` and `Connection: upgrade` fields (hop-by-hop, so otherwise stripped); an HTTP/2 client's extended
//! CONNECT (RFC 8441) becomes the HTTP/1.1 handshake it stands for, with a `Sec-WebSocket-Key` of the gateway's
//! own. The target's answer is checked before the client hears of it: a `101` must name a protocol the request
//! offered (RFC 9110 §7.8) and, for a WebSocket, carry the `Sec-WebSocket-Accept` its key calls for (RFC 6455
//! §4.2.2); anything else it says is passed through as a response. After a good `101` the client gets its
//! answer (`101` on HTTP/1.1, `200` on an HTTP/2 stream) and both connections become a [`crate::tunnel`].
//!
//! Toward an http2 group a WebSocket is an extended CONNECT instead (RFC 8441 §4-5, opened by
//! [`crate::upstream::h2::connect`]): `:protocol = websocket`, without the HTTP/1.1 handshake's key,
//! `Connection` and `Upgrade`. A 2xx is the switch; an HTTP/1.1 client then gets the `101` its handshake asked
//! for, with the `Sec-WebSocket-Accept` of its own key. Other upgrade tokens from HTTP/1.1 clients are not
//! translated: the request goes as a plain one (RFC 9110 §7.8 lets a server ignore `Upgrade`).

use std::sync::Arc;

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version, request};
use sha1::{Digest as _, Sha1};
use waygate_faults::BadUpgrade;
use waygate_telemetry::RequestKind;

use crate::body::ProxyBody;
use crate::headers::{X_REQUEST_ID, is_hop_by_hop, lists_token};
use crate::record::head_bytes;
use crate::relay::Done;
use crate::server::Handover;
use crate::server::h2::ClientTunnel;
use crate::tunnel::{self, Tunnels};
use crate::upstream::h1::{self, ResponseHead};
use crate::upstream::{self, AttemptFailure, Lease, Session};

static SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
static SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
static SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
/// RFC 6455 §1.3: appended to the key before hashing.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An upgrade the request asks for, and how its client is answered once the target switched.
#[derive(Debug)]
pub struct Upgrade {
    /// The protocols offered: the request's `Upgrade` field, or the extended CONNECT's `:protocol`.
    offered: HeaderValue,
    /// The `Sec-WebSocket-Accept` the target must answer with, when the request is a WebSocket handshake.
    accept: Option<String>,
    client: Client,
    /// Where its tunnel counts itself in (the listener's, the gateway's one registry).
    tunnels: Arc<Tunnels>,
    /// The target speaks HTTP/2: the upgrade is an extended CONNECT, a 2xx its switch.
    toward_h2: bool,
}

#[derive(Debug)]
enum Client {
    /// HTTP/1.1: the connection is handed over once the `101` is written.
    H1,
    /// HTTP/2 extended CONNECT: the stream is answered `200`, then becomes the tunnel.
    H2 { on_upgrade: ClientTunnel, key: HeaderValue },
}

/// What the target's answer means for the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A `101` as asked: tunnel.
    Switched,
    /// Not a switch (a refusal, a redirect, an error): relayed as a response.
    Refused,
}

impl Upgrade {
    /// The upgrade `parts` asks for, if any: an HTTP/1.1 request with `Connection: upgrade`, an `Upgrade`
    /// field and no body (`body_empty`), or an HTTP/2 CONNECT with a `:protocol`. `hop_by_hop`: the request's
    /// fields may include hop-by-hop ones (as the one pass over them found); without, an HTTP/1.1 request costs
    /// no lookup here. `toward_h2`: the target speaks HTTP/2, where an HTTP/1.1 client's upgrade is relayed
    /// only if it is a WebSocket.
    ///
    /// An HTTP/1.0 request's `Upgrade` is ignored (RFC 9110 §7.8: it cannot switch), and so is one with a body:
    /// the body would have to reach the target before the switch, and a WebSocket handshake has none. Both go
    /// as plain requests, their `Upgrade` stripped with the other hop-by-hop fields.
    pub fn of(
        parts: &mut request::Parts,
        hop_by_hop: bool,
        body_empty: bool,
        tunnels: &Arc<Tunnels>,
        toward_h2: bool,
    ) -> Option<Box<Self>> {
        if parts.version == Version::HTTP_2 {
            if parts.method != Method::CONNECT {
                return None;
            }
            let tunnels = tunnels.clone();
            let protocol = parts.extensions.remove::<crate::server::h2::Protocol>()?;
            let offered = HeaderValue::from_bytes(protocol.as_bytes()).ok()?;
            // The server put the stream's tunnel beside the protocol; without it there is nothing to tunnel.
            let on_upgrade = parts.extensions.remove::<ClientTunnel>()?;
            let key = HeaderValue::from_str(&new_key()).ok()?;
            let accept = websocket(offered.as_bytes()).then(|| accept_for(key.as_bytes()));
            let client = Client::H2 { on_upgrade, key };
            return Some(Box::new(Self { offered, accept, client, tunnels, toward_h2 }));
        }
        if !hop_by_hop || !body_empty || parts.version != Version::HTTP_11 {
            return None;
        }
        let tunnels = tunnels.clone();
        let connection =
            parts.headers.get_all(header::CONNECTION).iter().any(|v| lists_token(v.as_bytes(), b"upgrade"));
        let offered = parts.headers.get(header::UPGRADE).filter(|_| connection)?.clone();
        if toward_h2 && !websocket(offered.as_bytes()) {
            return None;
        }
        let accept = parts
            .headers
            .get(&SEC_WEBSOCKET_KEY)
            .filter(|_| websocket(offered.as_bytes()))
            .map(|key| accept_for(key.as_bytes()));
        Some(Box::new(Self { offered, accept, client: Client::H1, tunnels, toward_h2 }))
    }

    /// The `:protocol` of the extended CONNECT the upgrade becomes toward an HTTP/2 target; `None` toward an
    /// HTTP/1.1 one.
    pub fn h2_protocol(&self) -> Option<&str> {
        if !self.toward_h2 {
            return None;
        }
        match self.client {
            Client::H1 => Some("websocket"),
            Client::H2 { .. } => self.offered.to_str().ok(),
        }
    }

    /// Puts the handshake back into the forwarded request's fields after hop-by-hop ones were stripped; an
    /// extended CONNECT becomes a `GET` with the WebSocket handshake fields.
    pub fn restore(&self, parts: &mut request::Parts) {
        if self.toward_h2 {
            // RFC 8441 §5: the HTTP/1.1 handshake's key (and its hop-by-hop fields, already stripped) stay
            // behind; the version, subprotocols and extensions go as they are. Opened by h2::connect.
            parts.method = Method::CONNECT;
            parts.headers.remove(&SEC_WEBSOCKET_KEY);
            return;
        }
        let headers = &mut parts.headers;
        headers.insert(header::UPGRADE, self.offered.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Client::H2 { key, .. } = &self.client {
            parts.method = Method::GET;
            if self.accept.is_some() {
                headers.insert(&SEC_WEBSOCKET_KEY, key.clone());
                headers.entry(&SEC_WEBSOCKET_VERSION).or_insert(HeaderValue::from_static("13"));
            }
        }
    }

    /// Judges the target's answer to the handshake.
    pub fn answer(&self, head: &ResponseHead) -> Result<Answer, BadUpgrade> {
        if self.toward_h2 {
            // RFC 8441 §5: a 2xx to the extended CONNECT opens the stream both ways; anything else refuses.
            return Ok(if head.status.is_success() { Answer::Switched } else { Answer::Refused });
        }
        if head.status != StatusCode::SWITCHING_PROTOCOLS {
            // An HTTP/2 client takes any 2xx to its CONNECT as the tunnel being open.
            if matches!(self.client, Client::H2 { .. }) && head.status.is_success() {
                return Err(BadUpgrade::NotSwitched);
            }
            return Ok(Answer::Refused);
        }
        let switched = head.fields.get(header::UPGRADE.as_str()).ok_or(BadUpgrade::NoUpgrade)?;
        let offered = tokens(self.offered.as_bytes());
        let mut protocols = tokens(switched).peekable();
        if protocols.peek().is_none() {
            return Err(BadUpgrade::NoUpgrade);
        }
        if !protocols.all(|p| offered.clone().any(|o| o.eq_ignore_ascii_case(p))) {
            return Err(BadUpgrade::UpgradeMismatch);
        }
        if let Some(expected) = self.accept.as_deref().filter(|_| websocket(switched)) {
            let got = head.fields.get(SEC_WEBSOCKET_ACCEPT.as_str()).ok_or(BadUpgrade::NoAccept)?;
            if got.trim_ascii() != expected.as_bytes() {
                return Err(BadUpgrade::WrongAccept);
            }
        }
        Ok(Answer::Switched)
    }

    /// The client's answer to a switch the target made, and the tunnel started behind it: on HTTP/1.1 the
    /// target's `101` (its fields as they are), on HTTP/2 a `200` without the HTTP/1.1 handshake fields.
    pub fn switched(
        self,
        head: ResponseHead,
        lease: Lease,
        done: Done,
        id: &HeaderValue,
        idle_timeout: std::time::Duration,
    ) -> Response<ProxyBody> {
        let mut headers = head.fields.into_map();
        // The 101 kept its hop-by-hop fields for the check; the client gets `Upgrade` only (and the server adds
        // `Connection: upgrade`).
        let hops: Vec<HeaderName> =
            headers.keys().filter(|n| is_hop_by_hop(n) && *n != header::UPGRADE).cloned().collect();
        for hop in hops {
            headers.remove(hop);
        }
        headers.insert(&X_REQUEST_ID, id.clone());
        // RFC 9110 §8.6: no Content-Length in a 1xx, nor in a 2xx to a CONNECT.
        headers.remove(header::CONTENT_LENGTH);
        if self.toward_h2 && matches!(self.client, Client::H1) {
            // The HTTP/1.1 handshake the client asked for, answered for the target: its key's accept.
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            if let Some(accept) = self.accept.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
                headers.insert(&SEC_WEBSOCKET_ACCEPT, accept);
            }
        }
        let mut resp = Response::new(ProxyBody::empty());
        let request_id = id.clone();
        let target_status = head.status.as_u16();
        let ends = |status: StatusCode, headers: &HeaderMap, kind| tunnel::Ends {
            request_id,
            status: status.as_u16(),
            head: head_bytes(headers),
            kind,
            target_status,
        };
        let secure = done.record.as_ref().is_some_and(|r| r.ex.ssl_protocol.is_some());
        let kind = if secure { RequestKind::Wss } else { RequestKind::Ws };
        // An HTTP/2 tunnel keeps its client connection open: shutdown needs to know which connections only
        // tunnels hold (`Tunnels`).
        let carrier = match self.client {
            Client::H1 => None,
            Client::H2 { .. } => done.record.as_ref().and_then(|r| r.ex.conn_trace_id.clone()),
        };
        let guard = self.tunnels.open(carrier);
        match self.client {
            Client::H1 => {
                // The client's connection leaves its server (and that server's place in the active-connections
                // gauge) at the switch: the tunnel keeps it counted.
                let carried = done.sink.metrics.connection_carried(waygate_telemetry::Side::Client);
                let (handover, taken) = Handover::new();
                let ends = ends(StatusCode::SWITCHING_PROTOCOLS, &headers, kind);
                resp.extensions_mut().insert(handover);
                *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                tokio::spawn(async move {
                    let client = taken.await.ok();
                    tunnel::run(client, lease, done, ends, idle_timeout, guard).await;
                    drop(carried);
                });
            }
            Client::H2 { on_upgrade, .. } => {
                for hop in [header::UPGRADE, SEC_WEBSOCKET_ACCEPT.clone()] {
                    headers.remove(hop);
                }
                let ends = ends(StatusCode::OK, &headers, kind);
                tokio::spawn(async move {
                    // The stream, once its 200 was queued; the client's own resets are not evidence.
                    let client = on_upgrade.open().await;
                    tunnel::run(client, lease, done, ends, idle_timeout, guard).await;
                });
            }
        }
        *resp.headers_mut() = headers;
        resp
    }
}

/// Opens the upgrade toward an HTTP/2 target as an extended CONNECT for `protocol` ([`crate::upstream::h2::connect`]).
pub async fn connect(
    lease: &mut Lease,
    req: &upstream::Request,
    protocol: &str,
    response_timeout: std::time::Duration,
) -> Result<h1::Response, h1::SendError> {
    match (&mut lease.conn.session, req) {
        (Session::H2(stream), upstream::Request::H2(req)) => {
            upstream::h2::connect::send(stream, req, protocol, response_timeout).await
        }
        // The group's protocol decides both; a mismatch is the gateway's bug, failed before any byte is written.
        _ => Err(h1::SendError { unsent: true, ..AttemptFailure::new(waygate_faults::Phase::SendRequest).into() }),
    }
}

/// The protocol names of an `Upgrade` field (`websocket`, `h2c`, `foo/2`), trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &str> + Clone {
    std::str::from_utf8(value).unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn websocket(value: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case("websocket"))
}

/// RFC 6455 §4.2.2: base64 of the SHA-1 of the key and the GUID.
pub fn accept_for(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim_ascii());
    sha.update(WEBSOCKET_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1).
fn new_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests;
