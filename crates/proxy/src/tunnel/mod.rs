//! A tunnel: after a protocol switch ([`crate::upgrade`]), the client's connection (or HTTP/2 stream) and the
//! target's connection (or HTTP/2 stream, [`crate::h2conn::StreamIo`]) are joined and bytes are copied both ways, through a bounded buffer each way
//! ([`BUFFER`]), so a side that does not read holds up the other instead of growing memory. Half-close is
//! honoured: an end of stream from one side is passed to the other as a shutdown of writing, and the other
//! direction goes on until it ends too.
//!
//! A tunnel ends when both directions have ended, when one side fails, when nothing has moved either way for
//! the listener's `idle_timeout`, when the target's deregistration_delay elapses (its connection is cut, the
//! record says TargetDeregistered), or when the gateway shuts down ([`Tunnels`]). Its access-log record is
//! written then, with the bytes the tunnel carried counted in `received_bytes` and `sent_bytes`, and type
//! `ws` or `wss`.

mod io;
mod registry;
mod turns;

use std::time::Duration;

use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tracing::{Level, event};
use waygate_faults::{Cause, HttpEvidence, Phase};
use waygate_telemetry::RequestKind;

use crate::relay::Done;
use crate::server::Rewind;
use crate::upstream::{AttemptFailure, Lease, Session};
pub use io::{Counted, End, Meter};
pub use registry::{Open, Tunnels};

/// Bytes buffered each way at most: what one side has sent and the other has not taken yet.
pub const BUFFER: usize = 16 * 1024;
/// How long a tunnel closed by the gateway (idle, shutdown) waits for each side to take its end of stream.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the tunnel's record needs from the switch.
#[derive(Debug)]
pub(crate) struct Ends {
    pub request_id: HeaderValue,
    /// The status the client got: 101, or 200 on an HTTP/2 stream.
    pub status: u16,
    /// The size of that response's head.
    pub head: u64,
    pub kind: RequestKind,
    /// The target's status: 101, or the 2xx to an extended CONNECT.
    pub target_status: u16,
}

/// What a tunnel's target end can be: an HTTP/1 connection after its 101, or an HTTP/2 stream.
trait TargetIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> TargetIo for T {}

/// Why a tunnel ended.
enum Ending {
    /// Both directions ended, or one side failed.
    Copied,
    /// Nothing moved for idle_timeout.
    Idle,
    /// The gateway shut down.
    Shutdown,
}

/// Runs the tunnel between `client` (`None`: the client left before the switch reached it) and the target's
/// connection in `lease`, to its end; then writes the record and lets the target's connection go.
pub(crate) async fn run<C>(client: Option<C>, mut lease: Lease, done: Done, ends: Ends, idle: Duration, mut open: Open)
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
{
    let meter = Meter::default();
    let Some(client) = client else {
        lease.abort();
        return finish(done, &ends, Some(Cause::ClientClosedRequest), &meter);
    };
    let target = done.in_flight.target().clone();
    let target_io: Box<dyn TargetIo + '_> = match &mut lease.conn.session {
        Session::H1(conn) => {
            let (transport, ahead) = conn.upgraded();
            Box::new(Rewind::new(ahead, transport))
        }
        Session::H2(stream) => match stream.tunnel() {
            Some(io) => Box::new(io),
            // Not an open stream (the gateway's bug): dropped with the lease, the stream is reset.
            None => return finish(done, &ends, None, &meter),
        },
    };
    let mut target_end = Counted::target(target_io, &meter, &target.upstream);
    let mut client_end = Counted::client(client, &meter);
    let ending = {
        let copy = tokio::io::copy_bidirectional_with_sizes(&mut client_end, &mut target_end, BUFFER, BUFFER);
        let watch = async {
            tokio::select! {
                () = idle_for(&meter, idle) => Ending::Idle,
                () = open.closing() => Ending::Shutdown,
            }
        };
        turns::copy_watched(&meter, copy, watch).await.map_or_else(|ending| ending, |_| Ending::Copied)
    };
    if !matches!(ending, Ending::Copied) {
        // The gateway ends it: each side is told (FIN, or TLS close_notify) if it takes it promptly.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = client_end.shutdown().await;
            let _ = target_end.shutdown().await;
        })
        .await;
    }
    drop((client_end, target_end));
    // What the target said when it ended its stream (a reset, a GOAWAY), for the record.
    let said = match &lease.conn.session {
        Session::H2(stream) => stream.said(),
        Session::H1(_) => None,
    };
    let snapshot = lease.snapshot();
    lease.abort();
    let id = &ends.request_id;
    let (from_client, to_client) = (meter.from_client(), meter.to_client());
    let cause = match ending {
        Ending::Copied => match meter.failed() {
            Some((End::Target, e)) => {
                let mut failure = AttemptFailure::new(Phase::StreamBody);
                failure.io = Some(crate::upstream::failure::copy_io(e));
                failure.http = Some(HttpEvidence::BodyIncomplete);
                failure.h2 = said;
                failure.response_started = true;
                failure.deregistered = target.upstream.is_retired();
                failure.conn = Some(snapshot);
                let cause = failure.classify();
                // The target's own words when it ended its stream; else the io error.
                let words = said.map_or_else(|| e.to_string(), crate::upstream::h2::describe);
                event!(target: "waygate::upstream", Level::WARN, request_id = %id.to_str().unwrap_or("-"),
                    cause = %cause.name(), phase = %Phase::StreamBody.as_str(), target = %target.authority,
                    from_client, to_client, "tunnel cut on the target's side: {words}");
                if cause == Cause::TargetDeregistered {
                    crate::log::deregistered(id, &target);
                }
                Some(cause)
            }
            // The client's own end (a reset, a broken pipe) is how many clients leave a tunnel.
            Some((End::Client, _)) | None => None,
        },
        Ending::Idle => {
            // Bytes waiting on a client that takes none: the client's deadline, as on any response.
            let cause = meter.client_blocked().then_some(Cause::ClientIdleTimeout);
            event!(target: "waygate::upstream", Level::INFO, request_id = %id.to_str().unwrap_or("-"),
                target = %target.authority, idle_timeout_ms = idle.as_millis() as u64, from_client, to_client,
                client_blocked = cause.is_some(), "tunnel closed: nothing moved either way for idle_timeout");
            cause
        }
        Ending::Shutdown => {
            event!(target: "waygate::upstream", Level::INFO, request_id = %id.to_str().unwrap_or("-"),
                target = %target.authority, from_client, to_client, "tunnel closed: the gateway shut down");
            None
        }
    };
    finish(done, &ends, cause, &meter);
}

/// Resolves once nothing has moved either way for `idle`: one timer, re-armed only when it fires early.
async fn idle_for(meter: &Meter, idle: Duration) {
    loop {
        let deadline = meter.idle_deadline(idle);
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Writes the tunnel's record: the switch's status, the target's 101, the tunnel's bytes added to both counts.
fn finish(done: Done, ends: &Ends, cause: Option<Cause>, meter: &Meter) {
    if let Some(record) = done.record {
        let mut ex = record.finish(ends.status, Some(ends.target_status), cause, ends.head + meter.to_client());
        ex.received_bytes += meter.from_client();
        ex.kind = ends.kind;
        done.sink.emit(ex);
    }
    // The rest of `done` goes now: the target's in-flight count and the group's slot, held for the tunnel's life.
}
