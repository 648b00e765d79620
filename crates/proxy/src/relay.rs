//! Relaying the target's response: hop-by-hop headers out, `x-request-id` in, the body streamed through a
//! [`RelayBody`] whose end decides the connection's fate (back to the pool only when read whole) and completes
//! the exchange record with the bytes actually sent and, if the body broke, its cause. An HTTP/1 target's
//! fields ride with the body unmerged to an HTTP/1 client ([`RelayBody::with_target_fields`]); an HTTP/2
//! client gets them in one map built here.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response};
use waygate_faults::{Cause, Phase};

use crate::body::{BodyObserver, ProxyBody, RelayBody};
use crate::group::Admitted;
use crate::headers::X_REQUEST_ID;
use crate::log;
use crate::record::{Record, Sink, head_bytes};
use crate::target::InFlight;
use crate::upstream::h1::{self, BodyError, BodyState};
use crate::upstream::{AttemptFailure, Lease, failure};
use crate::wire::fields::{Fields, WireFields};
use waygate_telemetry::RequestKind;

/// Everything needed to end a relayed exchange.
pub struct Done {
    pub in_flight: InFlight,
    pub record: Option<Record>,
    pub sink: std::sync::Arc<Sink>,
    /// The upstream connection may go back to the pool (not after an Ambiguous request).
    pub reuse: bool,
    /// Counts against the group's in-flight limit until the body ends.
    #[expect(dead_code, reason = "held for its Drop, which releases the group's in-flight slot")]
    pub admitted: Admitted,
}

/// The client's response: the target's head, rewritten, and its body streamed from `lease`'s connection.
/// `client_h2`: the client speaks HTTP/2, whose response head is a map whatever the target spoke.
pub fn relay(
    resp: h1::Response,
    lease: Lease,
    done: Done,
    id: &HeaderValue,
    stall: Duration,
    client_h2: bool,
) -> Response<ProxyBody> {
    let h1::Response { head, request_complete } = resp;
    if let Some(ka) = &head.keep_alive_field {
        let target = done.in_flight.target();
        target.upstream.keepalive.advertised(ka, &target.authority);
    }
    // Hop-by-hop fields were dropped as the head was read. An HTTP/1 target's fields stay as it sent them and
    // travel with the body (the client's writer copies them); the response's own map holds the gateway's.
    let (mut headers, wire) = match head.fields {
        // Built once, sized for the gateway's field too (merging later rebuilt it).
        Fields::Wire(wire) if client_h2 => {
            let mut map = HeaderMap::with_capacity(wire.len() + 1);
            wire.append_to(&mut map);
            (map, None)
        }
        Fields::Wire(mut wire) => {
            wire.remove(X_REQUEST_ID.as_str());
            (HeaderMap::with_capacity(1), Some(wire))
        }
        Fields::Map(map) => (map, None),
    };
    headers.insert(&X_REQUEST_ID, id.clone());
    let status = head.status.as_u16();
    let mut done = done;
    // A trailers-only gRPC answer carries its status in the head.
    if let Some(r) = done.record.as_mut().filter(|r| is_grpc_kind(r.ex.kind)) {
        r.ex.grpc_status = match &wire {
            Some(wire) => wire.get("grpc-status").and_then(crate::body::grpc_code),
            None => crate::body::grpc_status(&headers),
        };
    }
    // The body is counted as it streams.
    let head_len = head_bytes(&headers) + wire.as_ref().map_or(0, WireFields::wire_len);
    let reusable = head.keep_alive && request_complete && done.reuse;
    let tap = done.record.as_ref().and_then(Record::response_tap);
    let observer = Box::new(Completion { done: Some(done), request_id: id.clone(), status, head: head_len });
    let body = RelayBody::new(lease, BodyState::new(head.framing), reusable, observer, stall)
        .with_tap(tap)
        .with_target_fields(wire);
    let mut resp = Response::new(ProxyBody::Relay(body));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = headers;
    resp
}

fn is_grpc_kind(kind: RequestKind) -> bool {
    matches!(kind, RequestKind::Grpc | RequestKind::Grpcs)
}

/// Ends a relayed exchange: the connection returns to the pool only when its response was read whole; the
/// record is completed with what the client actually received.
struct Completion {
    done: Option<Done>,
    request_id: HeaderValue,
    status: u16,
    head: u64,
}

impl Completion {
    fn emit(record: Option<Record>, sink: &Sink, status: u16, cause: Option<Cause>, sent: u64) {
        if let Some(record) = record {
            sink.emit(record.finish(status, Some(status), cause, sent));
        }
    }
}

impl BodyObserver for Completion {
    fn complete(mut self: Box<Self>, bytes: u64, lease: Lease, reusable: bool, grpc_status: Option<u8>) {
        if let Some(mut done) = self.done.take() {
            if let Some(r) = done.record.as_mut().filter(|r| is_grpc_kind(r.ex.kind)) {
                r.ex.grpc_status = grpc_status.or(r.ex.grpc_status);
            }
            if reusable {
                done.in_flight.target().upstream.release(lease);
            } else {
                lease.abort();
            }
            Self::emit(done.record, &done.sink, self.status, None, self.head + bytes);
        }
    }

    fn failed(mut self: Box<Self>, bytes: u64, stalled: Option<Duration>, error: Option<&BodyError>, lease: Lease) {
        if let Some(done) = self.done.take() {
            let mut failure = match stalled {
                Some(after) => AttemptFailure::timeout(Phase::StreamBody, after),
                None => AttemptFailure::new(Phase::StreamBody),
            };
            if let Some(e) = error {
                failure.http = Some(e.http);
                failure.io = e.io.as_ref().map(failure::copy_io);
            }
            failure.response_started = true;
            failure.conn = Some(lease.snapshot());
            failure.deregistered = done.in_flight.target().upstream.is_retired();
            lease.abort();
            let cause = failure.classify();
            log::body_failed(&self.request_id, &done.in_flight, cause, &failure, bytes, error);
            if cause == Cause::TargetDeregistered {
                log::deregistered(&self.request_id, done.in_flight.target());
            }
            Self::emit(done.record, &done.sink, self.status, Some(cause), self.head + bytes);
        }
    }

    fn abandoned(mut self: Box<Self>, bytes: u64, lease: Lease, cause: Cause) {
        // The client left or stopped reading mid-body: the rest of the response will never be read, so the
        // connection cannot be reused.
        if let Some(done) = self.done.take() {
            lease.abort();
            if cause == Cause::ClientIdleTimeout {
                log::client_idle(&self.request_id, &done.in_flight, self.head + bytes);
            }
            Self::emit(done.record, &done.sink, self.status, Some(cause), self.head + bytes);
        }
    }
}
