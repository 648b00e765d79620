//! One client HTTP/2 connection as a single future: the handshake, then a loop that polls the streams that
//! were woken and then the connection (which reads new frames, and writes what the streams produced, in one
//! go). A request becomes a stream future inside this one ([`super::stream`], under its [`Watched`] deadline),
//! not a task of its own: nothing is spawned, scheduled or moved per request, and a response that is ready
//! when its stream is polled leaves with the same write as its neighbours'.
//!
//! The connection ends when the client closes it, when it fails (h2 has already sent GOAWAY with the error),
//! or after [`Server::graceful_shutdown`] once its last stream is done (h2 holds it open while any stream's
//! handle lives, a tunnel's included).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http::{Method, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};

use super::recv::RequestBody;
use super::stream::{Stream, tunnel};
use super::watch::Watched;
use crate::body::ProxyBody;
use crate::server::ClientBody;

enum State<I> {
    Handshaking(h2::server::Handshake<I, Bytes>),
    Serving(h2::server::Connection<I, Bytes>),
    Done,
}

/// A client's HTTP/2 connection, served by `service` (the request path).
pub struct Server<I, S, F> {
    state: State<I>,
    service: S,
    /// Each stream's deadline while it waits on the client (the listener's idle_timeout).
    idle: Duration,
    streams: FuturesUnordered<Watched<Stream<F>>>,
    /// Shut down before the handshake was done: GOAWAY as soon as it is.
    close_pending: bool,
    /// How many times the connection was polled to write what the streams queued ([`super::stream`]).
    flushes: u64,
}

impl<I, S, F> Server<I, S, F>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: FnMut(Request<ClientBody>) -> F,
    F: Future<Output = Response<ProxyBody>>,
{
    /// Serves `io`, whose first bytes are the client's connection preface.
    pub fn new(io: I, idle: Duration, service: S) -> Self {
        let handshake = super::builder().handshake(io);
        Self {
            state: State::Handshaking(handshake),
            service,
            idle,
            streams: FuturesUnordered::new(),
            close_pending: false,
            flushes: 0,
        }
    }

    /// Sends GOAWAY: no new streams; those in progress finish, then the connection closes.
    pub fn graceful_shutdown(&mut self) {
        match &mut self.state {
            State::Handshaking(_) => self.close_pending = true,
            State::Serving(conn) => conn.graceful_shutdown(),
            State::Done => {}
        }
    }

    /// A new stream: its request goes to the request path, its future into the connection's.
    fn accept(&mut self, req: Request<h2::RecvStream>, respond: h2::server::SendResponse<Bytes>) {
        let (mut parts, recv) = req.into_parts();
        let extended_connect = parts.method == Method::CONNECT && parts.extensions.get::<h2::ext::Protocol>().is_some();
        let (body, opener) = if extended_connect {
            // The stream itself is what a tunnel carries: the request has no body of its own.
            let (client_tunnel, opener) = tunnel(recv);
            parts.extensions.insert(client_tunnel);
            (ClientBody::Empty, Some(opener))
        } else {
            (ClientBody::H2(RequestBody::new(recv, &parts.headers)), None)
        };
        let fut = (self.service)(Request::from_parts(parts, body));
        self.streams.push(Watched::new(Stream::new(fut, respond, opener), self.idle));
    }
}

impl<I, S, F> Future for Server<I, S, F>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: FnMut(Request<ClientBody>) -> F + Unpin,
    F: Future<Output = Response<ProxyBody>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(()),
                State::Handshaking(handshake) => match Pin::new(handshake).poll(cx) {
                    Poll::Ready(Ok(mut conn)) => {
                        if this.close_pending {
                            conn.graceful_shutdown();
                        }
                        this.state = State::Serving(conn);
                    }
                    // A bad preface or SETTINGS: h2 has answered it (GOAWAY), or the client left.
                    Poll::Ready(Err(_)) => this.state = State::Done,
                    Poll::Pending => return Poll::Pending,
                },
                State::Serving(_) => {
                    // The streams first: what they send is written by the connection's poll below.
                    super::stream::set_flushes(this.flushes);
                    while let Poll::Ready(Some(())) = this.streams.poll_next_unpin(cx) {}
                    let State::Serving(conn) = &mut this.state else { continue };
                    let accepted = conn.poll_accept(cx);
                    this.flushes += 1;
                    match accepted {
                        Poll::Ready(Some(Ok((req, respond)))) => this.accept(req, respond),
                        // Closed, or failed: no stream can go on without the connection.
                        Poll::Ready(Some(Err(_)) | None) => {
                            this.streams.clear();
                            this.state = State::Done;
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
    }
}
