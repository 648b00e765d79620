//! One HTTP/2 stream, from its request to the last frame of its response. While the request path works, a
//! RST_STREAM from the client ends the stream (dropping the exchange, which records why). The response head
//! goes out without hop-by-hop fields (RFC 9113 §8.2.2 forbids them) and with `Date` when it has none; its body
//! is relayed frame by frame as the client's windows let it out, then the trailers or an empty END_STREAM. A
//! body that fails resets the stream with the HTTP/2 code found in the error, else INTERNAL_ERROR; what the
//! stream queued before (the head, DATA) still goes out first, so the client sees the status its access-log
//! line records.
//!
//! An extended CONNECT (RFC 8441) answered 2xx becomes a tunnel: the `200` goes out without END_STREAM and
//! the stream is handed over to whoever holds the request's [`ClientTunnel`](super::tunnel::ClientTunnel).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::Body as _;
use waygate_h2wire::frame::ErrorCode;

use super::tunnel::Opener;
use super::watch::StreamBody;
use crate::body::ProxyBody;
use crate::h2conn::{Key, Shared, StreamGone};

/// The response side of a stream: what the stream future sends through.
#[derive(Debug)]
pub(super) struct Sender {
    shared: Arc<Shared>,
    key: Key,
}

impl Sender {
    pub fn new(shared: Arc<Shared>, key: Key) -> Self {
        Self { shared, key }
    }

    fn send_head(&self, status: StatusCode, headers: &HeaderMap, end_stream: bool) -> Result<(), StreamGone> {
        self.shared.lock().send_head(self.key, status, headers, end_stream)
    }

    fn poll_data(&self, cx: &Context<'_>, data: &mut Bytes, end_stream: bool) -> Poll<Result<(), StreamGone>> {
        self.shared.lock().poll_send_data(self.key, cx, data, end_stream)
    }

    fn send_trailers(&self, trailers: &HeaderMap) -> Result<(), StreamGone> {
        self.shared.lock().send_trailers(self.key, trailers)
    }

    fn reset(&self, code: ErrorCode) {
        self.shared.lock().reset(self.key, code);
    }

    fn poll_reset(&self, cx: &Context<'_>) -> Poll<ErrorCode> {
        self.shared.lock().poll_reset(self.key, cx)
    }

    /// The stream for a tunnel: the tunnel's handle is added before this one goes.
    fn hand_over(self, opener: Opener) {
        self.shared.lock().add_handle(self.key);
        opener.open(self.shared.clone(), self.key);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.lock().drop_handle(self.key);
    }
}

pin_project_lite::pin_project! {
    /// One stream's future: the request path's, then the response's relay.
    pub(super) struct Stream<F> {
        #[pin]
        state: State<F>,
        sender: Option<Sender>,
        tunnel: Option<Opener>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The request path works on the request.
        Service { #[pin] fut: F },
        /// The response body goes out; `pending`: data waiting for the client's windows, and whether it ends
        /// the stream.
        Body { body: StreamBody, pending: Option<(Bytes, bool)> },
    }
}

impl<F> Stream<F> {
    pub(super) fn new(fut: F, sender: Sender, tunnel: Option<Opener>) -> Self {
        Self { state: State::Service { fut }, sender: Some(sender), tunnel }
    }
}

impl<F: Future<Output = Response<ProxyBody>>> Future for Stream<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(sender) = this.sender.as_ref() else { return Poll::Ready(()) };
        let body = match this.state.as_mut().project() {
            StateProj::Body { body, pending } => return relay(cx, body, sender, pending),
            StateProj::Service { fut } => {
                let resp = match fut.poll(cx) {
                    Poll::Ready(resp) => resp,
                    // The client reset the stream: the exchange is dropped, and records it.
                    Poll::Pending if sender.poll_reset(cx).is_ready() => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                };
                let (mut parts, mut body) = resp.into_parts();
                // An HTTP/1 target's fields came with the body, unmerged (`RelayBody::with_target_fields`).
                body.merge_target_fields(&mut parts.headers);
                crate::headers::strip_hop_by_hop(&mut parts.headers);
                if !parts.headers.contains_key(header::DATE) {
                    crate::server::write::with_date(|d| {
                        if let Ok(date) = HeaderValue::from_bytes(d) {
                            parts.headers.insert(header::DATE, date);
                        }
                    });
                }
                if let Some(opener) = this.tunnel.take()
                    && parts.status.is_success()
                {
                    parts.headers.remove(header::CONTENT_LENGTH);
                    if sender.send_head(parts.status, &parts.headers, false).is_ok()
                        && let Some(sender) = this.sender.take()
                    {
                        sender.hand_over(opener);
                    }
                    return Poll::Ready(());
                }
                if body.is_end_stream() {
                    // Nothing to relay (HEAD, 204, 304, an empty answer); a client gone already is no error.
                    let _ = sender.send_head(parts.status, &parts.headers, true);
                    return Poll::Ready(());
                }
                if let Some(len) = body.size_hint().exact()
                    && !parts.headers.contains_key(header::CONTENT_LENGTH)
                {
                    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                }
                if sender.send_head(parts.status, &parts.headers, false).is_err() {
                    return Poll::Ready(());
                }
                body
            }
        };
        this.state.set(State::Body { body: StreamBody::new(body), pending: None });
        let StateProj::Body { body, pending } = this.state.project() else { return Poll::Ready(()) };
        relay(cx, body, sender, pending)
    }
}

/// Relays the response body: its data as the client's windows let it out, then the trailers or an empty
/// END_STREAM. Ready when the stream is done.
fn relay(
    cx: &mut Context<'_>,
    body: &mut StreamBody,
    sender: &Sender,
    pending: &mut Option<(Bytes, bool)>,
) -> Poll<()> {
    loop {
        if let Some((data, eos)) = pending {
            match sender.poll_data(cx, data, *eos) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !*eos => *pending = None,
                // Done, or the stream is no longer open (reset, or the connection ended).
                Poll::Ready(_) => return Poll::Ready(()),
            }
        }
        // The client reset the stream: the body is dropped with it.
        if sender.poll_reset(cx).is_ready() {
            return Poll::Ready(());
        }
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => *pending = Some((data, body.is_end_stream())),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = sender.send_trailers(&trailers);
                        return Poll::Ready(());
                    }
                }
            },
            Poll::Ready(Some(Err(e))) => {
                sender.reset(reason_of(&*e));
                return Poll::Ready(());
            }
            Poll::Ready(None) => {
                *pending = Some((Bytes::new(), true));
            }
        }
    }
}

/// The HTTP/2 code a failed body resets the client's stream with: the target's, when the target reset its own
/// stream (passed on), else INTERNAL_ERROR.
fn reason_of(e: &(dyn std::error::Error + 'static)) -> ErrorCode {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(code) = err.downcast_ref::<crate::upstream::h1::BodyError>().and_then(|b| b.reset_code()) {
            return ErrorCode(code);
        }
        cause = err.source();
    }
    ErrorCode::INTERNAL_ERROR
}
