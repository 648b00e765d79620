//! One request's HTTP/2 stream to a target: the request head and body sent under the target's flow control
//! (an early response is seen at once), the response head awaited under `response_timeout`, the body and
//! trailers read with flow-control capacity released as the client takes them. Every failure becomes
//! evidence: the phase, the stream's own bytes (not the shared connection's), and what the HTTP/2 layer said
//! (a reset and its code, a GOAWAY and whether it spared this stream, a protocol error).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};
use http_body::{Body as _, Frame};
use waygate_faults::{Cause, H2Evidence, HttpEvidence, Phase};

use super::frames::Seen;
use super::{Shared, io_of};
use crate::body::UpstreamRequestBody;
use crate::upstream::AttemptFailure;
use crate::upstream::h1::{BodyError, BodyState, Framing, Response, ResponseHead, SendError};

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

impl Request {
    fn to_http(&self) -> http::Request<()> {
        let mut req = http::Request::new(());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// One stream on a shared connection, held by the request it carries; its slot goes back when it drops.
#[derive(Debug)]
pub struct Stream {
    shared: Arc<Shared>,
    id: u32,
    /// The request's side, kept until the exchange ends: dropping both halves resets an unfinished stream.
    send: Option<h2::SendStream<Bytes>>,
    recv: Option<h2::RecvStream>,
    /// This stream's own bytes: the request sent, the response read.
    written: u64,
    read: u64,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.give_back();
    }
}

impl Stream {
    /// A stream on `shared`, whose slot the caller took.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared, id: 0, send: None, recv: None, written: 0, read: 0 }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This stream's bytes so far: (read, written).
    pub fn bytes(&self) -> (u64, u64) {
        (self.read, self.written)
    }

    /// Sends `req` with `body`, then awaits the response head for at most `response_timeout` after the
    /// request was sent whole (as HTTP/1's).
    pub async fn send(
        &mut self,
        req: &Request,
        body: &mut UpstreamRequestBody,
        response_timeout: Duration,
    ) -> Result<Response, SendError> {
        let goaway = self.shared.state.seen.clone();
        let unsent = |e: &h2::Error| SendError {
            unsent: true,
            ..SendError::from(failure(Phase::SendRequest, e, None, &goaway))
        };
        let sender = self.shared.send.clone();
        let mut sender = sender.ready().await.map_err(|e| unsent(&e))?;
        let end = body.is_end_stream();
        let (mut response, send) = sender.send_request(req.to_http(), end).map_err(|e| unsent(&e))?;
        self.id = u32::from(response.stream_id());
        self.written = req.head_len;
        let send = self.send.insert(send);
        let mut request_complete = end;
        if !end {
            let mut pending: Option<Bytes> = None;
            let early = poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut response).poll(cx) {
                    return Poll::Ready(Some(r.map_err(BodyOut::H2)));
                }
                match poll_body_out(cx, send, body, &mut pending, &mut self.written) {
                    Poll::Ready(Ok(())) => Poll::Ready(None),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match early {
                None => request_complete = true,
                Some(Ok(resp)) => {
                    // HTTP/2 is full duplex: a target that answers before the request ends (a gRPC streaming call)
                    // still gets the rest of it, sent by a task of its own while the response is relayed.
                    if let Some(stream) = self.send.take() {
                        tokio::spawn(pump(stream, body.take(), pending));
                    }
                    return Ok(self.head(resp, false));
                }
                Some(Err(BodyOut::Client(cause))) => {
                    return Err(SendError { client_failed: Some(cause), ..self.fail(Phase::SendRequest, None).into() });
                }
                Some(Err(BodyOut::H2(e))) => return Err(self.fail(Phase::SendRequest, Some(&e)).into()),
            }
        }
        match tokio::time::timeout(response_timeout, response).await {
            Ok(Ok(resp)) => Ok(self.head(resp, request_complete)),
            Ok(Err(e)) => Err(self.fail(Phase::AwaitHeaders, Some(&e)).into()),
            Err(_) => {
                let mut f = AttemptFailure::timeout(Phase::AwaitHeaders, response_timeout);
                f.conn = Some(self.snapshot());
                Err(f.into())
            }
        }
    }

    fn head(&mut self, resp: http::Response<h2::RecvStream>, request_complete: bool) -> Response {
        let (parts, recv) = resp.into_parts();
        let framing = if recv.is_end_stream() { Framing::Empty } else { Framing::Close };
        self.read = crate::wire::head_bytes(&parts.headers);
        self.recv = Some(recv);
        let head = ResponseHead {
            status: parts.status,
            version: Version::HTTP_2,
            headers: parts.headers,
            framing,
            keep_alive: true,
            keep_alive_field: None,
        };
        Response { head, request_complete }
    }

    /// The failure of this stream in `phase`, with the connection's snapshot carrying the stream's own bytes.
    pub fn fail(&self, phase: Phase, err: Option<&h2::Error>) -> AttemptFailure {
        let mut f = match err {
            Some(e) => failure(phase, e, Some(self.id), &self.shared.state.seen),
            None => AttemptFailure::new(phase),
        };
        // The gateway ended the connection (a PING unanswered): that is why the stream failed, whatever io error
        // the end left under it (a broken pipe is the drop's doing, not the target's).
        if f.h2.is_none()
            && let Some(ended) = crate::lock(&self.shared.state.ended).clone()
        {
            f.io = Some(std::io::Error::new(std::io::ErrorKind::TimedOut, ended));
        }
        f.conn = Some(self.snapshot());
        f
    }

    /// The connection's snapshot, with this stream's bytes as the attempt's.
    pub fn snapshot(&self) -> crate::upstream::ConnSnapshot {
        let mut snap = self.shared.counters.snapshot(true, None);
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
        let Some(recv) = self.recv.as_mut() else { return Poll::Ready(None) };
        if state.is_done() {
            return Poll::Ready(None);
        }
        let body_error = |e: &h2::Error, goaway: &Seen, id: u32| {
            let f = failure(Phase::StreamBody, e, Some(id), goaway);
            let io = f.io.unwrap_or_else(|| std::io::Error::other(describe_h2(f.h2, e)));
            BodyError { io: Some(io), http: HttpEvidence::BodyIncomplete }
        };
        match ready!(recv.poll_data(cx)) {
            Some(Ok(data)) => {
                // The client takes what it is given: the target may send as much again.
                let _ = recv.flow_control().release_capacity(data.len());
                self.read += data.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Some(Err(e)) => return Poll::Ready(Some(Err(body_error(&e, &self.shared.state.seen, self.id)))),
            None => {}
        }
        match ready!(recv.poll_trailers(cx)) {
            Ok(Some(mut trailers)) => {
                crate::wire::strip_forbidden_trailers(&mut trailers);
                *state = BodyState::Done;
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Ok(None) => {
                *state = BodyState::Done;
                Poll::Ready(None)
            }
            Err(e) => Poll::Ready(Some(Err(body_error(&e, &self.shared.state.seen, self.id)))),
        }
    }
}

/// A stream opened by an extended CONNECT ([`super::connect`]), whose request side stays open for a tunnel.
impl Stream {
    /// Notes the stream's id and its request head's size, as [`Stream::send`] does.
    pub(super) fn opened(&mut self, id: u32, head_len: u64) {
        self.id = id;
        self.written = head_len;
    }

    /// The answer's head; its body is read by [`Stream::poll_body`], or the stream carries a tunnel.
    pub(super) fn answered(&mut self, resp: http::Response<h2::RecvStream>, send: h2::SendStream<Bytes>) -> Response {
        self.send = Some(send);
        self.head(resp, true)
    }

    /// Both directions of the stream, for a tunnel after a 2xx to an extended CONNECT.
    pub fn tunnel(&mut self) -> Option<(&mut h2::SendStream<Bytes>, &mut h2::RecvStream)> {
        Some((self.send.as_mut()?, self.recv.as_mut()?))
    }
}

/// Why sending the request body stopped.
enum BodyOut {
    /// The client's body failed (it went away, or broke its framing).
    Client(Cause),
    H2(h2::Error),
}

/// The rest of a request body whose response already began, sent to its end (or until either side fails).
async fn pump(mut send: h2::SendStream<Bytes>, mut body: UpstreamRequestBody, mut pending: Option<Bytes>) {
    let mut written = 0;
    let _ = poll_fn(|cx| poll_body_out(cx, &mut send, &mut body, &mut pending, &mut written)).await;
}

/// Sends the request body under the stream's flow control; ready when it was sent whole.
fn poll_body_out(
    cx: &mut Context<'_>,
    send: &mut h2::SendStream<Bytes>,
    body: &mut UpstreamRequestBody,
    pending: &mut Option<Bytes>,
    written: &mut u64,
) -> Poll<Result<(), BodyOut>> {
    loop {
        if let Some(data) = pending.as_mut() {
            send.reserve_capacity(data.len());
            let granted = match ready!(send.poll_capacity(cx)) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Poll::Ready(Err(BodyOut::H2(e))),
                // The stream ended (the target reset it): its reason is what the response future reports.
                None => return Poll::Ready(Ok(())),
            };
            if granted == 0 {
                continue;
            }
            let chunk = data.split_to(granted.min(data.len()));
            let last = data.is_empty();
            if last {
                *pending = None;
            }
            *written += chunk.len() as u64;
            let eos = last && body.is_end_stream();
            send.send_data(chunk, eos).map_err(BodyOut::H2)?;
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
                        send.send_trailers(trailers).map_err(BodyOut::H2)?;
                        return Poll::Ready(Ok(()));
                    }
                }
            },
            Some(Err(e)) => return Poll::Ready(Err(BodyOut::Client(e.0))),
            None => {
                send.send_data(Bytes::new(), true).map_err(BodyOut::H2)?;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// The evidence of an `h2` error on stream `id` (`None`: before the stream had one).
pub fn failure(phase: Phase, e: &h2::Error, id: Option<u32>, goaway: &Seen) -> AttemptFailure {
    let mut f = AttemptFailure::new(phase);
    f.io = io_of(e);
    let code = e.reason().map(u32::from);
    f.h2 = if e.is_go_away() && e.is_remote() || (e.is_io() || e.reason().is_none()) && goaway.get().is_some() {
        // The connection ended after a GOAWAY: the frame says whether this stream was spared.
        let (last, goaway_code) = goaway.get().unwrap_or((u32::MAX, code.unwrap_or(0)));
        Some(H2Evidence::GoAway { code: goaway_code, unprocessed: id.is_none_or(|id| id > last) })
    } else if e.is_reset() && e.is_remote() {
        Some(H2Evidence::StreamReset { code: code.unwrap_or(0) })
    } else if e.is_io() {
        None
    } else {
        // A connection error: the target's (GOAWAY with an error), or one h2 found in what the target sent.
        Some(H2Evidence::ProtocolError { code: code.unwrap_or(1) })
    };
    if f.io.is_none() && f.h2.is_none() {
        f.io = Some(std::io::Error::other(e.to_string()));
    }
    f
}

/// A few words for an HTTP/2 failure with no io error under it.
fn describe_h2(h2: Option<H2Evidence>, e: &h2::Error) -> String {
    match h2 {
        Some(h2 @ (H2Evidence::StreamReset { .. } | H2Evidence::GoAway { .. })) => describe(h2),
        _ => e.to_string(),
    }
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
        H2Evidence::ProtocolError { code } => format!("HTTP/2 connection error {}", reason_name(code)),
        H2Evidence::NotNegotiated => "the target's TLS handshake did not select h2 by ALPN".to_owned(),
    }
}

/// RFC 9113 §7's name of an error code (`CANCEL`).
pub fn reason_name(code: u32) -> String {
    format!("{:?}", h2::Reason::from(code))
}
