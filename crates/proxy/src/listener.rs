//! Client-facing listeners: accept, optional TLS ([`crate::tls_front`]; ALPN h2 means HTTP/2 only, http/1.1
//! HTTP/1 only), then HTTP/1.1 and HTTP/2 on the same port (h2c with prior knowledge on plain listeners, and
//! TLS without ALPN): the first bytes tell the HTTP/2 preface apart, then
//! waygate's own HTTP/1 server ([`crate::server`]) or hyper's HTTP/2 server takes the connection. Each connection is
//! watched for `idle_timeout` (no bytes either way and no request in flight) and `client_keep_alive` (age),
//! and drains gracefully on shutdown: a response in progress finishes, then the connection closes.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::BytesMut;
use futures_util::FutureExt as _;
use futures_util::future::{Either, OptionFuture};
use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::forward::{self, ClientConn};
use crate::record::{ConnFacts, ListenerFacts, Sink, TlsInfo};
use crate::runtime::{ListenerRuntime, Runtime};
use crate::server::{self, Protocol, Settings};
use crate::tls_front::{self, ConnIds};
use crate::upstream::{ConnCounters, meter::Metered};
use waygate_telemetry::{Side, new_conn_trace_id};

mod closers;

use closers::Closers;

/// What a connection takes of its listener: its facts (names, port, sink) and its [`Closers`].
type OfListener = (Arc<ListenerFacts>, Arc<Closers>);

/// Client TLS handshakes must finish within this time.
const CLIENT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection task shares.
#[derive(Clone)]
pub struct ConnShared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Flips to true when the gateway shuts down: connections finish what is in flight, then close.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every connection task; the gateway waits for all clones to drop when draining.
    pub tracker: mpsc::Sender<()>,
    pub sink: Arc<Sink>,
    /// Thread-per-core workers that serve the connections; `None`: this runtime does.
    pub workers: Option<Arc<crate::workers::Workers>>,
    /// The gateway's open tunnels (WebSockets), which shutdown closes once the rest has drained.
    pub tunnels: Arc<crate::tunnel::Tunnels>,
}

/// Accepts connections until `stop` flips.
pub async fn accept_loop(listener: TcpListener, name: String, shared: ConnShared, mut stop: watch::Receiver<bool>) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    let names = Arc::new(ListenerFacts {
        elb: format!("app/waygate/{name}").into(),
        name: name.into(),
        port,
        port_header: HeaderValue::from(port),
        sink: shared.sink.clone(),
        tunnels: shared.tunnels.clone(),
    });
    let closers = Closers::watch(shared.shutdown.clone());
    let accept_errors = waygate_telemetry::Throttle::per_second();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let (shared, names) = (shared.clone(), (names.clone(), closers.clone()));
                match &shared.workers {
                    None => drop(tokio::spawn(serve_connection(tcp, peer, names, shared))),
                    Some(workers) => hand_over(workers.clone(), tcp, peer, names, shared),
                }
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning on the error, and say so once a
                // second with how many failures the line stands for (every one is counted as rejected).
                shared.sink.metrics.connection_rejected(&names.name);
                if let Some(count) = accept_errors.hit() {
                    tracing::warn!(target: "waygate::listener", listener = %names.name, error = %e, count, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Moves an accepted connection to a worker: out of this runtime's reactor, into the worker's.
fn hand_over(
    workers: Arc<crate::workers::Workers>,
    tcp: TcpStream,
    peer: SocketAddr,
    names: OfListener,
    shared: ConnShared,
) {
    let std = match tcp.into_std() {
        Ok(s) => s,
        Err(e) => {
            shared.sink.metrics.connection_rejected(&names.0.name);
            tracing::warn!(target: "waygate::listener", listener = %names.0.name, client = %peer, error = %e, "cannot hand the connection to a worker");
            return;
        }
    };
    // The socket joins the worker's reactor on the worker's thread, when the task is first polled there; what
    // serves it then replaces this first step in the task (`flatten`), rather than being awaited inside it.
    let registered = async move {
        match TcpStream::from_std(std) {
            Ok(tcp) => Some(serve_connection(tcp, peer, names, shared)),
            Err(e) => {
                shared.sink.metrics.connection_rejected(&names.0.name);
                tracing::warn!(target: "waygate::listener", listener = %names.0.name, client = %peer, error = %e, "a worker cannot take the connection");
                None
            }
        }
    };
    workers.spawn_connection(then_serve(registered));
}

/// A phase that may hand over to the next one: `phase`'s output, when there is one, is then run in the phase's
/// place (`flatten`), not awaited inside it, which would keep both phases' state for the connection's life.
fn then_serve<F>(phase: impl Future<Output = Option<F>>) -> impl Future<Output = ()>
where
    F: Future<Output = ()>,
{
    phase.map(OptionFuture::from).flatten().map(drop)
}

/// Serves one accepted connection, to its end. Built as phases, each replacing the last in the connection's
/// task (`then`, `flatten`) instead of nested `async fn`s awaiting each other: every level of those kept its
/// arguments for the connection's whole life, next to the copies it had moved on (about 1.2 KiB per
/// connection, idle keep-alive ones included).
fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    (names, closers): OfListener,
    shared: ConnShared,
) -> impl Future<Output = ()> + Send + 'static {
    let tracker = shared.tracker.clone();
    let open = shared.sink.metrics.connection_opened(Side::Client);
    let Some(listener) = shared.runtime.load().listeners.get(&*names.name).cloned() else {
        return Either::Left(std::future::ready(()));
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(peer);
    let counters = ConnCounters::new(peer, local);
    let io = Metered::new(tcp, counters.clone());
    let facts = names.clone();
    let client = move |tls: Option<Box<TlsInfo>>, conn_trace_id: Arc<str>| ClientConn {
        client_ip: crate::headers::client_ip_header(peer.ip()),
        facts: ConnFacts {
            listener: names,
            conn_trace_id,
            tls,
            client: peer,
            client_column: waygate_telemetry::client_column(peer),
        },
    };
    let serving = match listener.tls.clone() {
        None => {
            let client = client(None, new_conn_trace_id());
            Either::Left(serve_http(io, client, counters, closers, &listener, shared, Alpn::None))
        }
        // Boxed: the TLS session (kilobytes) would otherwise sit inline in every plain connection's task too. The
        // handshake is a phase of its own: with HTTP awaited inside it, the handshake's result, its stream and
        // its captures stayed beside HTTP for the connection's life, kilobytes more per TLS connection.
        Some(front) => Either::Right(Box::pin(then_serve(async move {
            let conn_trace_id = new_conn_trace_id();
            let ids = ConnIds {
                listener: &facts.name,
                client: peer,
                local,
                port: facts.port,
                elb: &facts.elb,
                conn_trace_id: &conn_trace_id,
            };
            let sink = &shared.sink;
            let accepted =
                tls_front::accept(&front, io, CLIENT_TLS_HANDSHAKE_TIMEOUT, ids, &sink.connection_log, &sink.metrics)
                    .await?;
            let conn = accepted.stream.get_ref().1;
            let alpn = match conn.alpn_protocol() {
                Some(b"h2") => Alpn::H2,
                Some(b"http/1.1") => Alpn::Http1,
                _ => Alpn::None,
            };
            let mut info = TlsInfo::of(conn);
            info.client_cert = accepted.client_cert;
            info.chosen_cert = accepted.chosen_cert;
            info.handshake = Some(accepted.handshake);
            let client = client(Some(Box::new(info)), conn_trace_id);
            Some(serve_http(accepted.stream, client, counters, closers, &listener, shared, alpn))
        }))),
    };
    // The drain tracker and the open-connections gauge are held until the connection ends.
    Either::Right(serving.map(move |()| drop((tracker, open))))
}

/// What ALPN chose on a TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alpn {
    /// No ALPN (or a plain connection): the first bytes decide.
    None,
    /// `h2`: HTTP/2 only; anything but the preface gets GOAWAY(PROTOCOL_ERROR).
    H2,
    /// `http/1.1`: HTTP/1 only.
    Http1,
}

/// HTTP on an accepted (and, on TLS listeners, decrypted) connection: waits for the first bytes to tell
/// HTTP/2's preface from HTTP/1 (unless ALPN chose), then serves HTTP/1 with waygate's own server, HTTP/2
/// with hyper's.
fn serve_http<I>(
    io: I,
    client: ClientConn,
    counters: Arc<ConnCounters>,
    closers: Arc<Closers>,
    listener: &ListenerRuntime,
    shared: ConnShared,
    alpn: Alpn,
) -> impl Future<Output = ()> + Send + 'static + use<I>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &listener.config;
    if *shared.shutdown.borrow() {
        return Either::Left(std::future::ready(()));
    }
    let watch =
        Watch { closers, counters, idle_timeout: millis(cfg.idle_timeout), keep_alive: millis(cfg.client_keep_alive) };
    let settings = Settings {
        mode: cfg.desync_mitigation,
        header_timeout: cfg.request_header_timeout,
        idle: server::Idle { timeout: cfg.idle_timeout, activity: watch.counters.clone() },
    };
    let runtime = shared.runtime;
    let serve = move |first: Option<(Protocol, BytesMut, I, Watch)>| {
        first.map(|(proto, read, io, watch)| serve_protocol(proto, read, io, watch, settings, client, runtime))
    };
    let header_timeout = cfg.request_header_timeout;
    // Boxed, with what it hands to the next phase: this phase is short, and inline its state (the stream, the
    // watch, the select, and the client's facts and settings waiting in `serve`) would size the connection's
    // task for the rest of its life, idle keep-alive included (over half a kilobyte more).
    Either::Right(then_serve(Box::pin(first_bytes(io, watch, header_timeout, alpn).map(serve))))
}

/// Until the first bytes arrive nothing of a server exists: no buffers, no connection state. `None`: the
/// connection ended, failed or went idle first.
async fn first_bytes<I>(
    mut io: I,
    watch: Watch,
    header_timeout: Duration,
    alpn: Alpn,
) -> Option<(Protocol, BytesMut, I, Watch)>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut read = BytesMut::new();
    // Once the first bytes came, the rest of a preface is due within the header timeout like any head: past
    // it, the HTTP/1 server takes the bytes and answers 408.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let sniff = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = server::poll_sniff(&mut io, &mut read, cx) {
            return Poll::Ready(r);
        }
        if read.is_empty() {
            return Poll::Pending;
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(header_timeout)));
        timer.as_mut().poll(cx).map(|()| Ok(Some(Protocol::Http1)))
    });
    let proto = tokio::select! {
        r = sniff => r.ok()??,
        () = watch.close_signal() => return None,
    };
    let proto = match (alpn, proto) {
        (Alpn::H2, Protocol::Http1) => {
            refuse_h2(&mut io).await;
            return None;
        }
        (Alpn::Http1, _) => Protocol::Http1,
        (_, proto) => proto,
    };
    Some((proto, read, io, watch))
}

/// A connection that negotiated h2 and did not send HTTP/2's preface: the server's preface (an empty
/// SETTINGS) and GOAWAY(PROTOCOL_ERROR) with last stream 0 (RFC 9113 §3.4), then the connection closes.
async fn refuse_h2<I: AsyncWrite + Unpin>(io: &mut I) {
    use tokio::io::AsyncWriteExt as _;
    const SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    const GOAWAY_PROTOCOL_ERROR: [u8; 17] = [0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1];
    let mut frames = [0u8; 26];
    frames[..9].copy_from_slice(&SETTINGS);
    frames[9..].copy_from_slice(&GOAWAY_PROTOCOL_ERROR);
    // The client may be gone already: nothing to do about a failed write.
    if io.write_all(&frames).await.is_ok() {
        let _ = io.shutdown().await;
    }
}

/// The connection's server (ours, on httparse for HTTP/1 and on h2 for HTTP/2), under its [`Watch`].
fn serve_protocol<I>(
    proto: Protocol,
    read: BytesMut,
    io: I,
    watch: Watch,
    settings: Settings,
    client: ClientConn,
    runtime: Arc<ArcSwap<Runtime>>,
) -> impl Future<Output = ()> + Send + 'static
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let counters = watch.counters.clone();
    if proto == Protocol::Http1 {
        let service = move |req, verdict| {
            // Borrowed for routing only (what the request keeps is cloned from it): a full load would bump the
            // snapshot's reference count, which every worker thread shares, twice per request.
            let rt = runtime.load();
            forward::handle(&rt, &client, req, Some(verdict), InFlight::enter(&counters))
        };
        // Boxed, in its own allocation of its exact size: inline, it would be moved into this future and the
        // slot it was moved from kept as well.
        let mut conn = Box::pin(server::Conn::new(io, read, settings, service));
        return Either::Left(async move { watch.drive(conn.as_mut(), |c| c.get_mut().graceful_shutdown()).await });
    }
    let service = move |req| {
        let rt = runtime.load();
        forward::handle(&rt, &client, req, None, InFlight::enter(&counters))
    };
    // Each stream's future lives in its own allocation inside the connection's (server::h2::Server).
    let mut conn = Box::pin(server::h2::Server::new(io, read, settings.idle.timeout, service));
    Either::Right(async move { watch.drive(conn.as_mut(), |c| c.get_mut().graceful_shutdown()).await })
}

/// A request in flight on a client connection, counted on the connection's counters until dropped. The request's
/// future holds it ([`forward::handle`]): both servers drop that as soon as the response's head is out of it, and
/// a connection that ends early drops it too.
struct InFlight(Arc<ConnCounters>);

impl InFlight {
    fn enter(counters: &Arc<ConnCounters>) -> Self {
        counters.request_started();
        Self(counters.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// Watches a connection for shutdown, `idle_timeout` (no bytes either way and no request in flight) and
/// `client_keep_alive` (age).
struct Watch {
    /// The listener's connections waiting for the gateway's shutdown.
    closers: Arc<Closers>,
    /// The connection's socket counters: its last I/O, its age, its requests in flight.
    counters: Arc<ConnCounters>,
    /// `idle_timeout` and `client_keep_alive` in milliseconds: what every connection holds for its life is kept
    /// small (ALB's largest values, 4,000 s and 7 days, fit in a u32 many times over).
    idle_timeout: u32,
    keep_alive: u32,
}

/// A listener's timeout in whole milliseconds, at most `u32::MAX` (49 days).
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Watch {
    /// `idle_timeout` and `client_keep_alive`.
    fn limits(&self) -> (Duration, Duration) {
        (Duration::from_millis(self.idle_timeout.into()), Duration::from_millis(self.keep_alive.into()))
    }

    /// Resolves when the connection should start closing: the gateway shuts down, it went idle, or it expired.
    /// Shutdown wakes it through the listener's [`Closers`], where its first poll registers its waker.
    async fn close_signal(&self) {
        let mut registered = None;
        loop {
            let now = Instant::now();
            let (idle_timeout, keep_alive) = self.limits();
            let idle_left = match idle_timeout.saturating_sub(self.counters.last_io_ago(now)) {
                // Idle with a request in flight: its own deadlines bound it (the connection's while it waits on
                // the client, the target's otherwise). Its response resets the idle clock, so one idle_timeout
                // from now is early enough to look again: a timer, not a tick.
                Duration::ZERO => idle_timeout,
                left => left,
            };
            let age_left = keep_alive.saturating_sub(now.saturating_duration_since(self.counters.created));
            let mut timer = std::pin::pin!(tokio::time::sleep(idle_left.min(age_left)));
            let shutdown = std::future::poll_fn(|cx| {
                // Registered before `fired` is read: a shutdown that came before is seen here, a later one wakes.
                registered.get_or_insert_with(|| self.closers.register(self.counters.id, cx.waker()));
                match self.closers.fired() {
                    true => Poll::Ready(true),
                    false => timer.as_mut().poll(cx).map(|()| false),
                }
            });
            if shutdown.await {
                return;
            }
            let now = Instant::now();
            let (idle_timeout, keep_alive) = self.limits();
            let idle = self.counters.requests_in_flight() == 0 && self.counters.last_io_ago(now) >= idle_timeout;
            if idle || now.saturating_duration_since(self.counters.created) >= keep_alive {
                return;
            }
        }
    }

    /// Runs `conn` to its end, starting its graceful shutdown on the first close signal. Idle: it closes at once.
    /// Expired or shutting down: the request in progress finishes with `Connection: close` (HTTP/1) or a GOAWAY
    /// (HTTP/2), as ALB does after client_keep_alive.
    ///
    /// The close signal is polled only when its own timer or the shutdown watch woke the task ([`crate::wake::Noted`]),
    /// not on each of the connection's wake-ups (two per request, some 600 instructions a request).
    ///
    /// `graceful` is a closure, not a function pointer: every connection's task holds this future, and a closure
    /// that captures nothing takes no room in it; for the same reason the signal's waker is made when the signal
    /// is polled (rarely), not kept.
    async fn drive<F: Future>(&self, mut conn: Pin<&mut F>, graceful: impl Fn(Pin<&mut F>)) {
        let wake = crate::wake::Noted::new();
        // Closing, a connection whose client takes nothing is dropped after idle_timeout (`Idle::poll_stuck`).
        let mut stuck_timer = None;
        let mut signal = std::pin::pin!(self.close_signal());
        let mut closing = false;
        // `move`: the closure owns what it uses, rather than the future holding each twice (value and reference).
        std::future::poll_fn(move |cx| {
            loop {
                if conn.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if closing {
                    // Made on each poll while closing (rare), rather than kept in every connection's task.
                    let stuck = server::Idle { timeout: self.limits().0, activity: self.counters.clone() };
                    return stuck.poll_stuck(&mut stuck_timer, cx);
                }
                if !wake.take(cx.waker()) {
                    return Poll::Pending;
                }
                let waker = Waker::from(wake.clone());
                if signal.as_mut().poll(&mut Context::from_waker(&waker)).is_pending() {
                    return Poll::Pending;
                }
                closing = true;
                graceful(conn.as_mut());
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, C, D, R>(_: impl FnOnce(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every client connection, idle keep-alive ones included, holds this future for its whole life. Nested
    /// `async fn`s made it over 3 KiB; phases that replace one another brought it near one; with the short
    /// first-bytes phase boxed (with what it hands over: the client's facts, the settings), the serving phase
    /// alone sizes it: 536 bytes; with the watch's limits in milliseconds, its age from the connection's own
    /// counters, no fn pointer and no kept waker, 464 with the closing deadline (the task's allocation went from
    /// 768 to 640 bytes: tokio aligns it to 128). Shutdown reaching connections through the listener's
    /// [`Closers`] instead of a `changed()` future on the watch in each (120 bytes), and the requests in flight
    /// counted on the connection's counters: 336, and a 512-byte task (`bench/proxy/run --idle-only`, 10,000
    /// idle connections: 1.92 KiB RSS each became 1.80, medians of 3 fresh processes).
    #[test]
    fn a_connection_future_stays_near_a_third_of_a_kilobyte() {
        let size = returned_size(serve_connection);
        assert!(size <= 352, "serve_connection's future is {size} bytes");
    }

    /// Shutdown reaches a close signal that waits (nothing else would wake it for an hour), and one first polled
    /// after it; the registrations go with the signals.
    #[tokio::test]
    async fn shutdown_wakes_waiting_close_signals_through_the_closers() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let (shutdown, rx) = watch::channel(false);
        let closers = Closers::watch(rx);
        let watch = || Watch {
            closers: closers.clone(),
            counters: ConnCounters::new(addr, addr),
            idle_timeout: 3_600_000,
            keep_alive: 3_600_000,
        };
        let (waiting, late) = (watch(), watch());
        let mut signal = std::pin::pin!(waiting.close_signal());
        assert!(std::future::poll_fn(|cx| Poll::Ready(signal.as_mut().poll(cx).is_pending())).await);
        assert_eq!(closers.waiting(), 1);
        shutdown.send(true).unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(30), signal).await;
        assert!(woken.is_ok(), "the waiting close signal was not woken by the shutdown");
        let late = tokio::time::timeout(Duration::from_secs(30), late.close_signal()).await;
        assert!(late.is_ok(), "a close signal polled after the shutdown did not resolve");
        assert_eq!(closers.waiting(), 0);
    }

    /// Idle with a request in flight (a slow target), the watch looks again once per idle_timeout: it used to
    /// wake every 10 ms from the moment idle_timeout passed (1,000 such connections took a quarter of a core).
    #[tokio::test]
    async fn a_quiet_connection_with_a_request_in_flight_is_not_ticked() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let (_shutdown, rx) = watch::channel(false);
        let counters = ConnCounters::new(addr, addr);
        counters.request_started();
        let watch = Watch { closers: Closers::watch(rx), counters, idle_timeout: 100, keep_alive: 3_600_000 };
        let mut signal = std::pin::pin!(watch.close_signal());
        let mut polls = 0u32;
        let counted = std::future::poll_fn(|cx| {
            polls += 1;
            signal.as_mut().poll(cx)
        });
        // The span measured, not a synchronisation: the signal must not fire while the request is in flight.
        assert!(tokio::time::timeout(Duration::from_millis(700), counted).await.is_err());
        // One poll per idle_timeout (7 or 8); ticking every 10 ms past the first 100 ms made it about 60.
        assert!(polls <= 15, "{polls} polls in 700 ms");
    }
}
