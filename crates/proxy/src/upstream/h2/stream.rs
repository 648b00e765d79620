//! One request's HTTP/2 stream to a target: the request head and body sent under the target's flow control
//! (an early response is seen at once), the response head awaited under `response_timeout`, the body and
//! trailers read with flow-control window given back as the client takes them. Every failure becomes
//! evidence: the phase, the stream's own bytes (not the shared connection's), and what the HTTP/2 layer said
//! (a reset and its code, a GOAWAY and whether it spared this stream, a protocol error).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};
use http_body::{Body as _, Frame};
use waygate_faults::{Cause, H2Evidence, HttpEvidence, Phase};
use waygate_h2wire::frame::ErrorCode;

use super::{Ended, Shared, State};
use crate::body::UpstreamRequestBody;
use crate::h2conn::{self, Key, StreamGone, StreamIo};
use crate::upstream::AttemptFailure;
use crate::upstream::h1::{BodyError, BodyState, Framing, Response, ResponseHead, SendError};
use crate::wire::fields::Fields;

/// A request as every attempt sends it over HTTP/2: pseudo-headers and fields, built once.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The head's size as HTTP/1 would write it: what the access log and the stream's evidence count as sent
    /// (HPACK makes the real frames smaller, and they are the connection's to count).
    pub head_len: u64,
}

/// One stream on a shared connection, held by the request it carries; its slot goes back when it drops, and
/// a stream not ended both ways is reset.
#[derive(Debug)]
pub struct Stream {
    shared: Arc<Shared>,
    /// The stream in the connection's table, once its head was queued.
    key: Option<Key>,
    /// This stream's own bytes: the request sent, the response read.
    written: u64,
    read: u64,
    /// The connection carried streams before this one (as the evidence's `reused`).
    reused: bool,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.shared.conn.lock().drop_handle(key);
        }
        self.shared.give_back();
    }
}

impl Stream {
    /// A stream on `shared`, whose slot the caller took; `reused`: not the connection's first.
    pub fn new(shared: Arc<Shared>, reused: bool) -> Self {
        Self { shared, key: None, written: 0, read: 0, reused }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This stream's bytes so far: (read, written).
    pub fn bytes(&self) -> (u64, u64) {
        (self.read, self.written)
    }

    /// Queues the request's head: the stream opens. `protocol`: an extended CONNECT's. Fails unsent when the
    /// connection takes no new stream (the target sent GOAWAY, or the connection ended).
    pub(super) fn open(&mut self, req: &Request, protocol: Option<&str>, end_stream: bool) -> Result<Key, SendError> {
        let unsent = |s: &Self| SendError {
            unsent: true,
            ..SendError::from(s.fail(Phase::SendRequest, Some(StreamGone::ConnectionClosed)))
        };
        if self.shared.state.closing.load(std::sync::atomic::Ordering::Acquire) {
            return Err(unsent(self));
        }
        let mut inner = self.shared.conn.lock();
        let Some(key) = inner.open_local(req.method == Method::HEAD) else {
            drop(inner);
            return Err(unsent(self));
        };
        let sent = inner.send_request(key, &req.method, &req.uri, protocol, &req.headers, end_stream);
        drop(inner);
        self.key = Some(key);
        self.written = req.head_len;
        match sent {
            Ok(()) => Ok(key),
            Err(gone) => Err(SendError { unsent: true, ..self.fail(Phase::SendRequest, Some(gone)).into() }),
        }
    }

    /// Sends `req` with `body`, then awaits the response head for at most `response_timeout` after the
    /// request was sent whole (as HTTP/1's).
    pub async fn send(
        &mut self,
        req: &Request,
        body: &mut UpstreamRequestBody,
        response_timeout: Duration,
    ) -> Result<Response, SendError> {
        let end = body.is_end_stream();
        let key = self.open(req, None, end)?;
        let conn = self.shared.conn.clone();
        let mut request_complete = end;
        if !end {
            let mut pending: Option<Bytes> = None;
            let mut written = 0;
            let early = poll_fn(|cx| {
                if let Poll::Ready(head) = conn.lock().poll_head(key, cx) {
                    return Poll::Ready(Some(head.map_err(BodyOut::Stream)));
                }
                match poll_body_out(cx, &conn, key, body, &mut pending, &mut written) {
                    Poll::Ready(Ok(())) => Poll::Ready(None),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            self.written += written;
            match early {
                None => request_complete = true,
                Some(Ok(head)) => {
                    // HTTP/2 is full duplex: a target that answers before the request ends (a gRPC streaming call)
                    // still gets the rest of it, sent by a task of its own while the response is relayed.
                    conn.lock().add_handle(key);
                    tokio::spawn(pump(conn, key, body.take(), pending));
                    return Ok(self.head(head, false));
                }
                Some(Err(BodyOut::Client(cause))) => {
                    return Err(SendError { client_failed: Some(cause), ..self.fail(Phase::SendRequest, None).into() });
                }
                Some(Err(BodyOut::Stream(gone))) => return Err(self.fail(Phase::SendRequest, Some(gone)).into()),
            }
        }
        self.await_head(key, response_timeout, request_complete).await
    }

    /// Awaits the response head for at most `response_timeout`.
    pub(super) async fn await_head(
        &mut self,
        key: Key,
        response_timeout: Duration,
        request_complete: bool,
    ) -> Result<Response, SendError> {
        let conn = self.shared.conn.clone();
        match tokio::time::timeout(response_timeout, poll_fn(|cx| conn.lock().poll_head(key, cx))).await {
            Ok(Ok(head)) => Ok(self.head(head, request_complete)),
            Ok(Err(gone)) => Err(self.fail(Phase::AwaitHeaders, Some(gone)).into()),
            Err(_) => {
                let mut f = AttemptFailure::timeout(Phase::AwaitHeaders, response_timeout);
                f.conn = Some(self.snapshot());
                Err(f.into())
            }
        }
    }

    fn head(&mut self, head: h2conn::shared::ResponseHead, request_complete: bool) -> Response {
        let h2conn::shared::ResponseHead { status, headers, whole } = head;
        let framing = if whole { Framing::Empty } else { Framing::Close };
        self.read = crate::wire::head_bytes(&headers);
        let head = ResponseHead {
            status,
            version: Version::HTTP_2,
            fields: Fields::Map(headers),
            framing,
            keep_alive: true,
            keep_alive_field: None,
        };
        Response { head, request_complete }
    }

    /// The failure of this stream in `phase` (`gone`: how the stream ended, when it did), with the connection's
    /// snapshot carrying the stream's own bytes.
    pub fn fail(&self, phase: Phase, gone: Option<StreamGone>) -> AttemptFailure {
        let gone = gone.or_else(|| self.key.and_then(|key| self.shared.conn.lock().gone(key)));
        let mut f = match gone {
            Some(gone) => failure(phase, gone, self.key.map(|k| k.id), &self.shared.state),
            None => AttemptFailure::new(phase),
        };
        f.conn = Some(self.snapshot());
        f
    }

    /// The connection's snapshot, with this stream's bytes as the attempt's.
    pub fn snapshot(&self) -> crate::upstream::ConnSnapshot {
        let mut snap = self.shared.counters.snapshot(self.reused, None);
        snap.attempt_bytes_read = self.read;
        snap.attempt_bytes_written = self.written;
        snap
    }

    /// The next frame of the response body, then its trailers; `None` at its end.
    pub fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        state: &mut BodyState,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Some(key) = self.key else { return Poll::Ready(None) };
        if state.is_done() {
            return Poll::Ready(None);
        }
        let mut inner = self.shared.conn.lock();
        match ready!(inner.poll_data(key, cx)) {
            Some(Ok(data)) => {
                // The client takes what it is given: the target may send as much again.
                inner.release(key, data.len());
                self.read += data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Some(Err(gone)) => {
                drop(inner);
                let f = failure(Phase::StreamBody, gone, Some(key.id), &self.shared.state);
                let io = match (f.io, f.h2) {
                    (Some(io), _) => io,
                    (None, Some(H2Evidence::StreamReset { code })) => std::io::Error::other(TargetReset(code)),
                    (None, h2) => std::io::Error::other(h2.map_or_else(|| gone.to_string(), describe)),
                };
                Poll::Ready(Some(Err(BodyError { io: Some(io), http: HttpEvidence::BodyIncomplete })))
            }
            None => {
                *state = BodyState::Done;
                Poll::Ready(inner.take_trailers(key).map(|mut trailers| {
                    crate::wire::strip_forbidden_trailers(&mut trailers);
                    Ok(Frame::trailers(trailers))
                }))
            }
        }
    }

    /// Both directions of the stream as a byte stream, for a tunnel after a 2xx to an extended CONNECT.
    pub fn tunnel(&mut self) -> Option<StreamIo> {
        let key = self.key?;
        self.shared.conn.lock().add_handle(key);
        Some(StreamIo::new(self.shared.conn.clone(), key))
    }

    /// What the target said when it ended a tunnel's stream: its reset, or its GOAWAY.
    pub fn said(&self) -> Option<H2Evidence> {
        let key = self.key?;
        let gone = self.shared.conn.lock().gone(key)?;
        failure(Phase::StreamBody, gone, Some(key.id), &self.shared.state)
            .h2
            .map(|h2| match h2 {
                H2Evidence::GoAway { code, .. } => H2Evidence::GoAway { code, unprocessed: false },
                other => other,
            })
            .filter(|h2| matches!(h2, H2Evidence::StreamReset { .. } | H2Evidence::GoAway { .. }))
    }

    /// Ends the request side with an empty DATA frame (an extended CONNECT refused: no tunnel follows).
    pub(super) fn end_request(&self, key: Key) {
        let mut none: &[u8] = &[];
        let waker = std::task::Waker::noop();
        let _ = self.shared.conn.lock().poll_send_data(key, &Context::from_waker(waker), &mut none, true);
    }
}

/// A target's RST_STREAM under a response being relayed, as the body's error: the client's own HTTP/2 stream is
/// reset with the same code ([`BodyError::reset_code`]).
#[derive(Debug)]
pub struct TargetReset(pub u32);

impl std::fmt::Display for TargetReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(H2Evidence::StreamReset { code: self.0 }))
    }
}

impl std::error::Error for TargetReset {}

/// Why sending the request body stopped.
enum BodyOut {
    /// The client's body failed (it went away, or broke its framing).
    Client(Cause),
    Stream(StreamGone),
}

/// The rest of a request body whose response already began, sent to its end (or until either side fails); the
/// stream handle it holds goes when it ends.
async fn pump(conn: Arc<h2conn::Shared>, key: Key, mut body: UpstreamRequestBody, mut pending: Option<Bytes>) {
    let mut written = 0;
    let _ = poll_fn(|cx| poll_body_out(cx, &conn, key, &mut body, &mut pending, &mut written)).await;
    conn.lock().drop_handle(key);
}

/// Sends the request body under the stream's flow control; ready when it was sent whole.
fn poll_body_out(
    cx: &mut Context<'_>,
    conn: &h2conn::Shared,
    key: Key,
    body: &mut UpstreamRequestBody,
    pending: &mut Option<Bytes>,
    written: &mut u64,
) -> Poll<Result<(), BodyOut>> {
    loop {
        if let Some(data) = pending.as_mut() {
            let before = data.len();
            let eos = body.is_end_stream();
            let sent = conn.lock().poll_send_data(key, cx, data, eos);
            *written += (before - data.len()) as u64;
            ready!(sent).map_err(BodyOut::Stream)?;
            *pending = None;
            if eos {
                return Poll::Ready(Ok(()));
            }
            continue;
        }
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => *pending = Some(data),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        conn.lock().send_trailers(key, &trailers).map_err(BodyOut::Stream)?;
                        return Poll::Ready(Ok(()));
                    }
                }
            },
            Some(Err(e)) => return Poll::Ready(Err(BodyOut::Client(e.0))),
            None => {
                let mut none: &[u8] = &[];
                ready!(conn.lock().poll_send_data(key, cx, &mut none, true)).map_err(BodyOut::Stream)?;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// The evidence of a stream (`id`; `None` before it opened) that ended as `gone`.
fn failure(phase: Phase, gone: StreamGone, id: Option<u32>, state: &State) -> AttemptFailure {
    let mut f = AttemptFailure::new(phase);
    let goaway = state.goaway();
    f.h2 = match gone {
        StreamGone::Reset(code) => Some(H2Evidence::StreamReset { code: code.0 }),
        // Above a GOAWAY's last_stream_id (or never opened after it): the target did not process it.
        _ if let Some((last, code)) = goaway
            && id.is_none_or(|id| id > last) =>
        {
            Some(H2Evidence::GoAway { code, unprocessed: true })
        }
        StreamGone::Local(code) => Some(H2Evidence::ProtocolError { code: code.0 }),
        StreamGone::HeadTooLarge => {
            f.http = Some(HttpEvidence::HeadTooLarge);
            None
        }
        StreamGone::ConnectionClosed => match &*crate::lock(&state.ended) {
            Some(Ended::Protocol(code)) => Some(H2Evidence::ProtocolError { code: code.0 }),
            _ if let Some((_, code)) = goaway => Some(H2Evidence::GoAway { code, unprocessed: false }),
            // The gateway ended the connection (a PING unanswered): that is why the stream failed.
            Some(Ended::Gateway(words)) => {
                f.io = Some(std::io::Error::new(std::io::ErrorKind::TimedOut, words.clone()));
                None
            }
            Some(Ended::Io(e)) => {
                f.io = Some(crate::upstream::failure::copy_io(e));
                None
            }
            None => None,
        },
    };
    if f.io.is_none() && f.h2.is_none() && f.http.is_none() {
        f.io = Some(std::io::Error::other(gone.to_string()));
    }
    f
}

/// What the HTTP/2 layer said, in words for the system log and `expose_details`.
pub fn describe(h2: H2Evidence) -> String {
    match h2 {
        H2Evidence::StreamReset { code } => format!("the target reset the stream (RST_STREAM {})", reason_name(code)),
        H2Evidence::GoAway { code, unprocessed: true } => {
            format!("the target sent GOAWAY {} below this stream: it was not processed", reason_name(code))
        }
        H2Evidence::GoAway { code, unprocessed: false } => {
            format!("the target sent GOAWAY {} and closed with this stream accepted and unanswered", reason_name(code))
        }
        H2Evidence::ProtocolError { code } => format!("HTTP/2 protocol error {}", reason_name(code)),
        H2Evidence::NotNegotiated => "the target's TLS handshake did not select h2 by ALPN".to_owned(),
    }
}

/// RFC 9113 §7's name of an error code (`CANCEL`).
pub fn reason_name(code: u32) -> String {
    ErrorCode(code).to_string()
}
