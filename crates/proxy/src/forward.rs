//! The request path: route, pick a target, lease a connection, send the request streamed, await the head
//! under `response_timeout`, relay the response streamed. Connect-phase failures (nothing written) are retried
//! on another target; every failure becomes exactly one [`Cause`] through the catalogue and is answered by
//! `respond::error` and logged by `log::attempt_failed` with the connection's evidence.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use waygate_config::{Action, FixedResponse};
use waygate_faults::{Cause, Phase};

use crate::body::{BodyObserver, ProxyBody, RelayBody, RequestProgress, UpstreamRequestBody};
use crate::group::{Group, InFlight};
use crate::headers::{self, Forwarded, X_REQUEST_ID};
use crate::log;
use crate::request_id::new_request_id;
use crate::respond;
use crate::runtime::{ListenerRuntime, Runtime};
use crate::upstream::{AttemptFailure, Lease};

/// What a request needs to know about the client connection it came on.
#[derive(Debug, Clone)]
pub struct ClientConn {
    pub listener: String,
    pub peer: SocketAddr,
    /// `http` or `https`, for X-Forwarded-Proto.
    pub proto: &'static str,
    /// The port the client connected to, for X-Forwarded-Port.
    pub port_header: HeaderValue,
}

/// Handles one client request on the given snapshot.
pub async fn handle(
    rt: Arc<Runtime>,
    client: Arc<ClientConn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let id = new_request_id();
    let profile = rt.config.errors;
    let Some(listener) = rt.listeners.get(&client.listener).cloned() else {
        // The listener left the configuration while this connection was open.
        return Ok(respond::error(Cause::NoRoute, profile, &id, None));
    };
    if headers::xff_count(req.headers()) > MAX_XFF_ADDRESSES {
        return Ok(respond::error(Cause::ClientXffTooMany, profile, &id, None));
    }
    let host = request_host(&req);
    let Some(route) = listener.router.route(host.as_deref().unwrap_or(""), req.uri().path()) else {
        return Ok(respond::error(Cause::NoRoute, profile, &id, None));
    };
    let group = match route.action {
        Action::FixedResponse(fixed) => return Ok(fixed_response(fixed, &id)),
        Action::Forward(name) => match rt.groups.get(name) {
            Some(g) => g.clone(),
            None => return Ok(respond::error(Cause::NoRoute, profile, &id, None)),
        },
    };
    let watch = ClientWatch { request_id: id.clone(), group: group.clone(), armed: true };
    let resp = forward(&rt, &listener, &client, &group, req, id, host).await;
    watch.disarm();
    Ok(resp)
}

/// ALB answers 463 when X-Forwarded-For holds more addresses than this.
const MAX_XFF_ADDRESSES: usize = 30;

/// Logs ClientClosedRequest (ALB's 460) when hyper drops the request future because the client went away
/// before a response head was ready. Dropping the future also drops the attempt, whose [`CancelOnDrop`]
/// closes the upstream connection: the target's work is cancelled, not left to finish into the void.
struct ClientWatch {
    request_id: HeaderValue,
    group: Arc<Group>,
    armed: bool,
}

impl ClientWatch {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        if self.armed {
            log::client_closed(&self.request_id, &self.group.config.name);
        }
    }
}

/// Aborts an upstream connection's I/O task if the attempt using it is dropped mid-exchange.
struct CancelOnDrop(Option<tokio::task::AbortHandle>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

fn request_host(req: &Request<Incoming>) -> Option<String> {
    if let Some(h) = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()) {
        return Some(h.to_owned());
    }
    req.uri().authority().map(|a| a.as_str().to_owned())
}

fn fixed_response(fixed: &FixedResponse, id: &HeaderValue) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(fixed.body.clone()));
    *resp.status_mut() = http::StatusCode::from_u16(fixed.status).unwrap_or(http::StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(&fixed.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp.headers_mut().insert(&X_REQUEST_ID, id.clone());
    resp
}

/// The request as the target will see it: origin-form URI, HTTP/1.1, rewritten headers, counted body.
fn upstream_request(
    req: Request<Incoming>,
    client: &ClientConn,
    id: &HeaderValue,
    host: Option<String>,
    progress: &Arc<RequestProgress>,
) -> Request<UpstreamRequestBody> {
    let (mut parts, body) = req.into_parts();
    let trailers = headers::accepts_trailers(parts.version, &parts.headers);
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    parts.version = Version::HTTP_11;
    headers::to_upstream(
        &mut parts.headers,
        &Forwarded {
            client_ip: client.peer.ip(),
            proto: client.proto,
            port: &client.port_header,
            request_id: id,
            trailers,
        },
    );
    if !parts.headers.contains_key(header::HOST)
        && let Some(v) = host.and_then(|h| HeaderValue::from_str(&h).ok())
    {
        parts.headers.insert(header::HOST, v);
    }
    Request::from_parts(parts, UpstreamRequestBody::new(body, progress.clone()))
}

async fn forward(
    rt: &Runtime,
    listener: &ListenerRuntime,
    client: &ClientConn,
    group: &Arc<Group>,
    req: Request<Incoming>,
    id: HeaderValue,
    host: Option<String>,
) -> Response<ProxyBody> {
    let profile = rt.config.errors;
    if group.targets.is_empty() {
        return respond::error(Cause::NoRegisteredTargets, profile, &id, None);
    }
    let progress = Arc::new(RequestProgress::default());
    let mut pending = Some(upstream_request(req, client, &id, host, &progress));
    let max_attempts = 1 + group.config.retries as usize;
    let mut tried: Vec<usize> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(index) = group.pick(&tried).or_else(|| group.pick(&[])) else {
            return respond::error(Cause::NoRegisteredTargets, profile, &id, None);
        };
        tried.push(index);
        let in_flight = group.targets[index].begin();
        let target = in_flight.target().clone();
        let ctx = log::AttemptCtx {
            request_id: &id,
            group: &group.config.name,
            target: &target.authority,
            attempt,
            max_attempts,
        };
        let mut lease = match target.upstream.lease().await {
            Ok(lease) => lease,
            Err(failure) => {
                let cause = failure.classify();
                log::attempt_failed(&ctx, cause, &failure);
                // Nothing reached the target: always safe to try another (FAULTS.md).
                if attempt < max_attempts {
                    continue;
                }
                return respond::error(cause, profile, &id, Some((&target.authority, &failure)));
            }
        };
        let Some(req) = pending.take() else {
            return respond::error(Cause::NoRegisteredTargets, profile, &id, None);
        };
        let cancel = CancelOnDrop(Some(lease.conn_task.clone()));
        let sent = lease.sender.try_send_request(req);
        let timeout = group.config.response_timeout;
        let response_timer = async {
            progress.sent().await;
            tokio::time::sleep(timeout).await;
        };
        let result = tokio::select! {
            biased;
            r = sent => r,
            () = response_timer => {
                let failure = AttemptFailure::timeout(Phase::AwaitHeaders, timeout).with_conn(lease.snapshot());
                lease.abort();
                return fail(rt, &ctx, &target.authority, failure, &id);
            }
        };
        cancel.disarm();
        match result {
            Ok(resp) => return relay(resp, lease, in_flight, &id, listener),
            Err(err) => {
                let unsent = err_into_parts(err, &mut pending);
                let phase = if unsent.1 { Phase::SendRequest } else { Phase::AwaitHeaders };
                let failure = AttemptFailure::from_hyper(phase, unsent.0).with_conn(lease.snapshot());
                lease.abort();
                if progress.client_failed() {
                    log::client_gone(&ctx, &failure);
                    return respond::error(Cause::ClientClosedRequest, profile, &id, None);
                }
                // The request came back unsent (the pooled connection was dead before a byte was written):
                // retrying it elsewhere cannot duplicate anything.
                if unsent.1 && attempt < max_attempts {
                    log::attempt_failed(&ctx, failure.classify(), &failure);
                    continue;
                }
                return fail(rt, &ctx, &target.authority, failure, &id);
            }
        }
    }
}

/// Splits hyper's error, keeping the request when hyper hands it back unsent. Returns (error, was_unsent).
fn err_into_parts(
    mut err: TrySendError<Request<UpstreamRequestBody>>,
    pending: &mut Option<Request<UpstreamRequestBody>>,
) -> (hyper::Error, bool) {
    let unsent = err.take_message();
    let was_unsent = unsent.is_some();
    *pending = unsent;
    (err.into_error(), was_unsent)
}

fn fail(
    rt: &Runtime,
    ctx: &log::AttemptCtx<'_>,
    target: &str,
    failure: AttemptFailure,
    id: &HeaderValue,
) -> Response<ProxyBody> {
    let cause = failure.classify();
    log::attempt_failed(ctx, cause, &failure);
    respond::error(cause, rt.config.errors, id, Some((target, &failure)))
}

fn relay(
    resp: Response<Incoming>,
    lease: Lease,
    in_flight: InFlight,
    id: &HeaderValue,
    listener: &ListenerRuntime,
) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(&X_REQUEST_ID, id.clone());
    let observer = Box::new(Completion { lease: Some(lease), in_flight, request_id: id.clone() });
    let body = RelayBody::new(body, observer, listener.config.idle_timeout);
    Response::from_parts(parts, ProxyBody::Relay(body))
}

/// Ends a relayed exchange: the connection returns to the pool only when its response was read whole.
struct Completion {
    lease: Option<Lease>,
    in_flight: InFlight,
    request_id: HeaderValue,
}

impl BodyObserver for Completion {
    fn complete(mut self: Box<Self>, _bytes: u64) {
        if let Some(lease) = self.lease.take() {
            self.in_flight.target().upstream.release(lease);
        }
    }

    fn failed(mut self: Box<Self>, bytes: u64, stalled: Option<std::time::Duration>, error: Option<&hyper::Error>) {
        if let Some(lease) = self.lease.take() {
            let snapshot = lease.snapshot();
            lease.abort();
            log::body_failed(&self.request_id, &self.in_flight, &snapshot, bytes, stalled, error);
        }
    }

    fn abandoned(mut self: Box<Self>, _bytes: u64) {
        // The client left mid-body: the rest of the response will never be read, so the connection cannot be
        // reused.
        if let Some(lease) = self.lease.take() {
            lease.abort();
        }
    }
}
