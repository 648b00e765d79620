//! The request path: route, pick a target, lease a connection, send the request streamed, await the head
//! under `response_timeout`, relay the response streamed. Connect-phase failures (nothing written) are retried
//! on another target; every failure becomes exactly one [`Cause`] through the catalogue and is answered by
//! `respond::error` and logged by `log::attempt_failed` with the connection's evidence.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use waygate_config::{Action, FixedResponse};
use waygate_faults::{Cause, Phase, classify, retry_safety};

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
) -> Request<Incoming> {
    let (mut parts, body) = req.into_parts();
    let trailers = headers::accepts_trailers(parts.version, &parts.headers);
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    parts.version = Version::HTTP_11;
    let fwd = Forwarded {
        client_ip: client.peer.ip(),
        proto: client.proto,
        port: &client.port_header,
        request_id: id,
        trailers,
    };
    headers::to_upstream(&mut parts.headers, &fwd);
    if !parts.headers.contains_key(header::HOST)
        && let Some(v) = host.and_then(|h| HeaderValue::from_str(&h).ok())
    {
        parts.headers.insert(header::HOST, v);
    }
    Request::from_parts(parts, body)
}

/// Methods RFC 9110 §9.2.2 calls idempotent: safe to send twice.
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// Prepares the body: an idempotent request with no body, or a small one with a Content-Length, is read whole
/// so it can be replayed after a keep-alive race; anything else streams. Returns the request and, when it can
/// be replayed, its body.
async fn prepare_body(
    req: Request<Incoming>,
    limit: u64,
    read_timeout: std::time::Duration,
    progress: &Arc<RequestProgress>,
) -> Result<(Request<UpstreamRequestBody>, Option<Bytes>), Cause> {
    let (parts, body) = req.into_parts();
    let small = body.size_hint().exact().is_some_and(|n| n <= limit);
    if !idempotent(&parts.method) {
        return Ok((Request::from_parts(parts, UpstreamRequestBody::new(body, progress.clone())), None));
    }
    if body.is_end_stream() {
        return Ok((Request::from_parts(parts, UpstreamRequestBody::empty(progress.clone())), Some(Bytes::new())));
    }
    if !small {
        return Ok((Request::from_parts(parts, UpstreamRequestBody::new(body, progress.clone())), None));
    }
    let bytes = match tokio::time::timeout(read_timeout, body.collect()).await {
        Err(_) => return Err(Cause::ClientRequestTimeout),
        Ok(Err(_)) => return Err(Cause::ClientClosedRequest),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok((Request::from_parts(parts, UpstreamRequestBody::buffered(bytes.clone(), progress.clone())), Some(bytes)))
}

/// What is needed to send a request again: its head and its (buffered) body.
struct Replay {
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Replay {
    fn of(req: &Request<UpstreamRequestBody>, body: Bytes) -> Self {
        Self { method: req.method().clone(), uri: req.uri().clone(), headers: req.headers().clone(), body }
    }

    fn build(self, progress: &Arc<RequestProgress>) -> Request<UpstreamRequestBody> {
        let mut req = Request::new(UpstreamRequestBody::buffered(self.body, progress.clone()));
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.headers_mut() = self.headers;
        req
    }
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
    let req = upstream_request(req, client, &id, host);
    let is_idempotent = idempotent(req.method());
    let (req, replay_body) =
        match prepare_body(req, group.config.retry_body_limit, listener.config.idle_timeout, &progress).await {
            Ok(prepared) => prepared,
            Err(cause) => return respond::error(cause, profile, &id, None),
        };
    let mut pending = Some(req);
    let mut max_attempts = 1 + group.config.retries as usize;
    let mut tried: Vec<usize> = Vec::new();
    let mut attempt = 0;
    // A keep-alive race on a reused connection gets one retry on a fresh connection to the same target, on
    // top of `retries` (like nginx, a dead cached connection does not count as a try).
    let mut fresh_retry: Option<usize> = None;
    let mut race_retried = false;
    loop {
        attempt += 1;
        let fresh = fresh_retry.take();
        let index = match fresh {
            Some(index) => index,
            None => {
                let Some(index) = group.pick(&tried).or_else(|| group.pick(&[])) else {
                    return respond::error(Cause::NoRegisteredTargets, profile, &id, None);
                };
                tried.push(index);
                index
            }
        };
        let in_flight = group.targets[index].begin();
        let target = in_flight.target().clone();
        let ctx = log::AttemptCtx {
            request_id: &id,
            group: &group.config.name,
            target: &target.authority,
            attempt,
            max_attempts,
        };
        let leased = if fresh.is_some() { target.upstream.connect().await } else { target.upstream.lease().await };
        let mut lease = match leased {
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
        // Only a reused connection can lose the keep-alive race, so only then is the head worth keeping.
        let replay = match (&replay_body, lease.reused && !race_retried) {
            (Some(body), true) => Some(Replay::of(&req, body.clone())),
            _ => None,
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
        let err = match result {
            Ok(resp) => return relay(resp, lease, in_flight, &id, listener),
            Err(err) => err,
        };
        let (error, unsent) = err_into_parts(err, &mut pending);
        let phase = if unsent { Phase::SendRequest } else { Phase::AwaitHeaders };
        let failure = AttemptFailure::from_hyper(phase, error).with_conn(lease.snapshot());
        lease.abort();
        if progress.client_failed() {
            log::client_gone(&ctx, &failure);
            return respond::error(Cause::ClientClosedRequest, profile, &id, None);
        }
        let evidence = failure.evidence();
        let safety = retry_safety(&evidence, is_idempotent, unsent || replay.is_some());
        if lease.reused && !race_retried && (unsent || replay.is_some()) && safety.is_safe() {
            race_retried = true;
            max_attempts += 1;
            let ctx = log::AttemptCtx { max_attempts, ..ctx };
            log::attempt_failed(&ctx, classify(&evidence), &failure);
            if pending.is_none() {
                pending = replay.map(|r| r.build(&progress));
            }
            fresh_retry = Some(index);
            continue;
        }
        // The request came back unsent: retrying it elsewhere cannot duplicate anything.
        if unsent && attempt < max_attempts {
            log::attempt_failed(&ctx, classify(&evidence), &failure);
            continue;
        }
        return fail(rt, &ctx, &target.authority, failure, &id);
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
    if let Some(ka) = parts.headers.get(&headers::KEEP_ALIVE) {
        let target = in_flight.target();
        target.upstream.keepalive.advertised(ka.as_bytes(), &target.authority);
    }
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
