//! One HTTP/2 stream, from its request to the last frame of its response. While the request path works, a
//! RST_STREAM from the client ends the stream (dropping the exchange, which records why). The response head
//! goes out without hop-by-hop fields (RFC 9113 §8.2.2 forbids them) and with `Date` when it has none; its body
//! is relayed frame by frame, each DATA frame sent once the client's window has room, then the trailers or an
//! empty END_STREAM. A body that fails resets the stream with the HTTP/2 code found in the error, else
//! INTERNAL_ERROR, but only once the connection has written what the stream queued before: h2 drops a stream's
//! queued frames when it is reset, and a target whose truncated answer arrived whole would otherwise leave the
//! client a bare RST_STREAM, without the head (and status) its access-log line records.
//!
//! An extended CONNECT (RFC 8441) answered 2xx becomes a tunnel: the `200` goes out without END_STREAM and
//! both halves of the stream are handed over to whoever holds the request's [`ClientTunnel`].

use std::cell::Cell;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::Response;
use http::header::{self, HeaderValue};
use http_body::Body as _;
use tokio::sync::oneshot;

use super::watch::StreamBody;
use crate::body::ProxyBody;
use crate::lock;

thread_local! {
    /// How many times the connection being served has written its queued frames ([`super::serve`] sets it
    /// before it polls its streams): a stream whose count moved knows its earlier frames left.
    static FLUSHES: Cell<u64> = const { Cell::new(0) };
}

/// For the connection: its count of writes, before its streams are polled.
pub(super) fn set_flushes(n: u64) {
    FLUSHES.set(n);
}

/// Both halves of an HTTP/2 stream a tunnel runs on.
pub type TunnelHalves = (SendStream<Bytes>, RecvStream);

/// In an extended CONNECT's extensions: the stream, once the gateway answered it 2xx ([`ClientTunnel::open`]).
#[derive(Debug, Clone)]
pub struct ClientTunnel(Arc<Mutex<Option<oneshot::Receiver<TunnelHalves>>>>);

impl ClientTunnel {
    /// The stream's halves after its 2xx went out; `None` when it was answered otherwise or the client left.
    pub async fn open(self) -> Option<TunnelHalves> {
        let rx = lock(&self.0).take()?;
        rx.await.ok()
    }
}

/// The stream's side of a [`ClientTunnel`]: its receiving half, kept out of the request until the answer.
#[derive(Debug)]
pub(super) struct Opener {
    recv: RecvStream,
    tx: oneshot::Sender<TunnelHalves>,
}

/// A tunnel for an extended CONNECT's stream: what goes into the request, and what its stream keeps.
pub(super) fn tunnel(recv: RecvStream) -> (ClientTunnel, Opener) {
    let (tx, rx) = oneshot::channel();
    (ClientTunnel(Arc::new(Mutex::new(Some(rx)))), Opener { recv, tx })
}

pin_project_lite::pin_project! {
    /// One stream's future: the request path's, then the response's relay.
    pub(super) struct Stream<F> {
        #[pin]
        state: State<F>,
        respond: Option<SendResponse<Bytes>>,
        tunnel: Option<Opener>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The request path works on the request.
        Service { #[pin] fut: F },
        /// The response body goes out; `pending`: a DATA frame waiting for the client's window, and whether it
        /// ends the stream; `failed`: the body failed, the reset to send once the connection wrote after this
        /// count of its writes.
        Body { body: StreamBody, send: SendStream<Bytes>, pending: Option<(Bytes, bool)>, failed: Option<(Reason, u64)> },
    }
}

impl<F> Stream<F> {
    pub(super) fn new(fut: F, respond: SendResponse<Bytes>, tunnel: Option<Opener>) -> Self {
        Self { state: State::Service { fut }, respond: Some(respond), tunnel }
    }
}

impl<F: Future<Output = Response<ProxyBody>>> Future for Stream<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            let (body, send) = match this.state.as_mut().project() {
                StateProj::Body { body, send, pending, failed } => return relay(cx, body, send, pending, failed),
                StateProj::Service { fut } => {
                    let Some(respond) = this.respond.as_mut() else { return Poll::Ready(()) };
                    let resp = match fut.poll(cx) {
                        Poll::Ready(resp) => resp,
                        // The client reset the stream: the exchange is dropped, and records it.
                        Poll::Pending if respond.poll_reset(cx).is_ready() => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    };
                    let (mut parts, body) = resp.into_parts();
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
                        if let Ok(send) = respond.send_response(Response::from_parts(parts, ()), false) {
                            let _ = opener.tx.send((send, opener.recv));
                        }
                        return Poll::Ready(());
                    }
                    if body.is_end_stream() {
                        // Nothing to relay (HEAD, 204, 304, an empty answer); a client gone already is no error.
                        let _ = respond.send_response(Response::from_parts(parts, ()), true);
                        return Poll::Ready(());
                    }
                    if let Some(len) = body.size_hint().exact()
                        && !parts.headers.contains_key(header::CONTENT_LENGTH)
                    {
                        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                    }
                    match respond.send_response(Response::from_parts(parts, ()), false) {
                        Ok(send) => (StreamBody::new(body), send),
                        Err(_) => {
                            respond.send_reset(Reason::INTERNAL_ERROR);
                            return Poll::Ready(());
                        }
                    }
                }
            };
            this.state.set(State::Body { body, send, pending: None, failed: None });
        }
    }
}

/// Relays the response body: each DATA frame once the client's window has room (claiming one byte of it
/// first, not the frame's size: a claim pins connection window that other streams may need, and h2 raises it
/// to the frame as it sends), then the trailers or an empty END_STREAM. Ready when the stream is done.
fn relay(
    cx: &mut Context<'_>,
    body: &mut StreamBody,
    send: &mut SendStream<Bytes>,
    pending: &mut Option<(Bytes, bool)>,
    failed: &mut Option<(Reason, u64)>,
) -> Poll<()> {
    loop {
        if let Some((reason, at)) = *failed {
            if FLUSHES.get() == at {
                // Polled again after the connection's next write.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            send.send_reset(reason);
            return Poll::Ready(());
        }
        // The client reset the stream: the body is dropped with it.
        if send.poll_reset(cx).is_ready() {
            return Poll::Ready(());
        }
        if pending.is_some() {
            while send.capacity() == 0 {
                match send.poll_capacity(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(0))) => {}
                    Poll::Ready(Some(Ok(_))) => break,
                    // The stream is no longer open (reset, or the connection ended).
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                }
            }
            let Some((data, eos)) = pending.take() else { continue };
            if send.send_data(data, eos).is_err() || eos {
                return Poll::Ready(());
            }
            continue;
        }
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let eos = body.is_end_stream();
                    if data.is_empty() {
                        // An empty frame needs no window: an END_STREAM marker goes straight out.
                        if send.send_data(data, eos).is_err() || eos {
                            return Poll::Ready(());
                        }
                    } else {
                        send.reserve_capacity(1);
                        *pending = Some((data, eos));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        send.reserve_capacity(0);
                        let _ = send.send_trailers(trailers);
                        return Poll::Ready(());
                    }
                }
            },
            Poll::Ready(Some(Err(e))) => *failed = Some((reason_of(&*e), FLUSHES.get())),
            Poll::Ready(None) => {
                let _ = send.send_data(Bytes::new(), true);
                return Poll::Ready(());
            }
        }
    }
}

/// The HTTP/2 code a failed body resets the client's stream with: the one an h2 error in its chain carries (a
/// target's reset passed on), else INTERNAL_ERROR.
fn reason_of(e: &(dyn std::error::Error + 'static)) -> Reason {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason().unwrap_or(Reason::INTERNAL_ERROR);
        }
        cause = err.source();
    }
    Reason::INTERNAL_ERROR
}
