//! The request path: route, pick a target, lease a connection, send the request streamed, await the head
//! under `response_timeout`, relay the response streamed. Connect-phase failures (nothing written) are retried
//! on another target; every failure becomes exactly one [`Cause`] through the catalogue and is answered by
//! `respond::error` and logged by `log::attempt_failed` with the connection's evidence.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use waygate_config::{Action, Errors, FixedResponse, MAX_RETRIES, ProtocolVersion, TargetProtocol};
use waygate_faults::{Cause, classify};
use waygate_telemetry::{Actions, RequestKind, Sampler, TraceContext};

use crate::body::{ProxyBody, RequestProgress, UpstreamRequestBody};
use crate::group::{Admitted, Group};
use crate::guard::{Action as GuardAction, Verdict};
use crate::headers::{CarriedFields, Forwarded, RequestFields, X_REQUEST_ID};
use crate::target::Target;

use crate::log;
use crate::record::{ConnFacts, Pending, Record, head_bytes};
use crate::relay;
use crate::request_id::new_request_id;
use crate::respond;
use crate::retry;
use crate::runtime::Runtime;
use crate::server::ClientBody;
use crate::upgrade::{self, Answer, Upgrade};
use crate::upstream::{self, AttemptFailure, h1, h2};

/// What a request needs to know about the client connection it came on.
#[derive(Debug)]
pub struct ClientConn {
    /// The client's address (`facts.client`) as X-Forwarded-For writes it.
    pub client_ip: HeaderValue,
    /// What every access-log record of this connection shares (listener, TLS, conn_trace_id).
    pub facts: ConnFacts,
}

/// Handles one client request on the given snapshot. Every way out emits exactly one record. `verdict` is the
/// desync guard's on an HTTP/1 head (`None` on HTTP/2, which it does not judge); a refusing one is answered
/// with its cause.
///
/// What needs no waiting is done here, as the server hands the request over: the record, the verdict,
/// routing, admission, and the request head the target will get, encoded once. Only the exchange with the
/// target becomes a future, and it no longer holds the client's request head. Nested async fns each kept their
/// own copy of the request and of their callee's state, so the future per request was over 3 KiB and was copied
/// whole at each level.
///
/// `held` is kept by the request's future until it is dropped: the connection's count of requests in flight.
/// (Held in a wrapper of its own, the future was moved into that too.)
pub fn handle<H: Send + 'static>(
    rt: &Runtime,
    client: &ClientConn,
    req: Request<ClientBody>,
    verdict: Option<Verdict>,
    held: H,
) -> impl Future<Output = Response<ProxyBody>> + Send + use<H> {
    // One wall-clock read per request: the id's epoch seconds and the record's creation time.
    let received = SystemTime::now();
    let id = new_request_id(received);
    let fields = RequestFields::of(req.headers());
    // The Host (else `:authority`) without its port: read once, for the record and for routing.
    let host = request_host(&req, &fields).map(crate::router::strip_port);
    let head_len = verdict.and_then(|v| v.head_len);
    let mut record = Record::begin(&client.facts, &req, &fields, host, &id, head_len, received);
    if let Some(v) = &verdict {
        record.classify(v.classification, v.reason);
    }
    record.trace_begin(&client.facts, &req, verdict.as_ref());
    // `[tracing]`: the client's trace continued or a new one started; targets get its traceparent.
    if let Some(tracing) = &rt.config.tracing {
        let sampler = Sampler::new(tracing.sample_ratio);
        record.ex.trace = Some(TraceContext::of_request(req.headers(), record.ex.trace_id.as_str(), sampler));
    }
    // A gRPC call (over HTTP/2, as gRPC is): logged as ALB logs it, and answered in gRPC when the gateway fails it.
    let grpc = req.version() == http::Version::HTTP_2 && is_grpc(req.headers());
    if grpc {
        record.ex.kind = if client.facts.tls.is_some() { RequestKind::Grpcs } else { RequestKind::Grpc };
    }
    let errors = rt.config.errors;
    let mut pending = Pending::new(record, client.facts.listener.sink.clone(), errors.profile);
    pending.grpc = grpc;
    let action = verdict.map_or(GuardAction::Allow, |v| v.action);
    if let GuardAction::Reject(cause) = action {
        let mut resp = error(&mut pending, errors, cause, &id, None);
        if cause == Cause::ClientMethodNotAllowed {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        return Handled::answered(resp, true, held);
    }
    // Defensive mode, Ambiguous request: served, then the client connection ends (the target's too).
    let close = action == GuardAction::AllowThenClose;
    let (idle_timeout, group) = match route(rt, client, &req, host, &fields, &id, &mut pending) {
        Routed::Answered(resp) => return Handled::answered(resp, close, held),
        Routed::Forward(idle_timeout, group) => (idle_timeout, group),
    };
    if let Some(function) = group.function.clone() {
        let carried = fields.carried();
        let invoke =
            crate::invocation::forward(errors, idle_timeout, group, function, req, carried, client, id, pending);
        // Boxed: a function request's future is not made part of every proxied request's.
        return Handled::Invoke { fut: Box::pin(invoke), close, _held: held };
    }
    if group.config.protocol_version == ProtocolVersion::Grpc && !grpc {
        let resp = error(&mut pending, errors, Cause::ClientProtocolMismatch, &id, None);
        return Handled::answered(resp, close, held);
    }
    // A gRPC deadline bounds the wait for the response, within the group's own response_timeout.
    let response_timeout = match grpc.then(|| grpc_timeout(req.headers())).flatten() {
        Some(deadline) => deadline.min(group.config.response_timeout),
        None => group.config.response_timeout,
    };
    let admitted = match admit(&group) {
        Ok(admitted) => admitted,
        Err(cause) => return Handled::answered(error(&mut pending, errors, cause, &id, None), close, held),
    };
    let carried = fields.carried();
    let outgoing = Outgoing::new(req, carried, client, &id, &group, &mut pending, admitted);
    let timeouts = Timeouts { idle: idle_timeout, response: response_timeout };
    Handled::Forward { fut: forward(errors, timeouts, group, outgoing, id, pending, close), close, _held: held }
}

pin_project_lite::pin_project! {
    /// One request's future, as [`handle`] made it. It is polled where it lies to its end: the forwarding future
    /// (over a kilobyte) is never moved once made. `close`: the client connection ends after the response.
    /// (futures_util's `Map` and `Either`, which this replaced, moved their whole future out when it completed,
    /// and each layer moved the response through it again.)
    #[project = HandledProj]
    enum Handled<F, I, H> {
        /// Answered by the gateway itself (routing, admission, the guard); `None` once taken.
        Answered { resp: Option<Response<ProxyBody>>, _held: H },
        /// Forwarded to a target group's targets.
        Forward { #[pin] fut: F, close: bool, _held: H },
        /// Invoked as a function target. Boxed: a function request's future is not made part of every proxied
        /// request's.
        Invoke { fut: std::pin::Pin<Box<I>>, close: bool, _held: H },
    }
}

impl<F, I, H> Handled<F, I, H> {
    fn answered(mut resp: Response<ProxyBody>, close: bool, held: H) -> Self {
        if close {
            mark_close(&mut resp);
        }
        Self::Answered { resp: Some(resp), _held: held }
    }
}

impl<F, I, H> Future for Handled<F, I, H>
where
    F: Future<Output = Response<ProxyBody>>,
    I: Future<Output = Response<ProxyBody>>,
{
    type Output = Response<ProxyBody>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        // The answer is marked where it lies and returned as it came: taken out and put back, it was copied twice.
        let (mut polled, close) = match self.project() {
            HandledProj::Answered { resp, .. } => {
                return Poll::Ready(resp.take().expect("a request's future polled after its answer"));
            }
            HandledProj::Forward { fut, close, .. } => (fut.poll(cx), *close),
            HandledProj::Invoke { fut, close, .. } => (fut.as_mut().poll(cx), *close),
        };
        if close && let Poll::Ready(resp) = &mut polled {
            mark_close(resp);
        }
        polled
    }
}

/// Whether the group can take the request now: it has targets, a healthy one (unless it fails open), and room
/// under its in-flight limit.
fn admit(group: &Group) -> Result<Admitted, Cause> {
    if group.targets.is_empty() {
        return Err(Cause::NoRegisteredTargets);
    }
    if !group.config.fail_open && group.all_unhealthy() {
        return Err(Cause::NoHealthyTargets);
    }
    group.admit().ok_or(Cause::GatewayOverloaded)
}

/// The client connection ends after this response.
fn mark_close(resp: &mut Response<ProxyBody>) {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Where routing sent a request.
#[expect(clippy::large_enum_variant, reason = "returned once and taken apart at once; boxing would cost an allocation")]
enum Routed {
    /// To a target group, under the listener's idle_timeout.
    Forward(Duration, Arc<Group>),
    /// Nowhere further: a fixed response, or an error (both recorded).
    Answered(Response<ProxyBody>),
}

fn route(
    rt: &Runtime,
    client: &ClientConn,
    req: &Request<ClientBody>,
    host: Option<&str>,
    fields: &RequestFields<'_>,
    id: &HeaderValue,
    pending: &mut Pending,
) -> Routed {
    let errors = rt.config.errors;
    let Some(listener) = rt.listeners.get(&*client.facts.listener.name) else {
        // The listener left the configuration while this connection was open.
        return Routed::Answered(error(pending, errors, Cause::NoRoute, id, None));
    };
    if fields.xff_addresses > MAX_XFF_ADDRESSES {
        return Routed::Answered(error(pending, errors, Cause::ClientXffTooMany, id, None));
    }
    let Some(route) = listener.router.route(host.unwrap_or(""), req.uri().path()) else {
        return Routed::Answered(error(pending, errors, Cause::NoRoute, id, None));
    };
    let group = match route.action {
        Action::FixedResponse(fixed) => {
            if let Some(r) = pending.get() {
                r.route(route.priority, Actions::FIXED_RESPONSE);
            }
            return Routed::Answered(generated(pending, fixed_response(fixed, id), None));
        }
        Action::Forward(name) => match rt.groups.get(name) {
            Some(g) => g.clone(),
            None => return Routed::Answered(error(pending, errors, Cause::NoRoute, id, None)),
        },
    };
    if let Some(r) = pending.get() {
        r.route(route.priority, Actions::FORWARD);
        r.group(&group.tg_ref);
    }
    Routed::Forward(listener.config.idle_timeout, group)
}

/// Records a response the gateway generated and returns it.
fn generated(pending: &mut Pending, resp: Response<ProxyBody>, cause: Option<Cause>) -> Response<ProxyBody> {
    pending.generated(resp.status().as_u16(), cause, response_bytes(&resp));
    resp
}

/// An error response for `cause`, recorded. A gRPC call gets a gRPC answer (HTTP 200, trailers-only); its
/// record keeps the cause's status, so that the access log, the 5xx metrics and alerts count it as the
/// failure it is.
fn error(
    pending: &mut Pending,
    errors: Errors,
    cause: Cause,
    id: &HeaderValue,
    failure: Option<(&str, &AttemptFailure)>,
) -> Response<ProxyBody> {
    if pending.grpc {
        let resp = respond::grpc_error(cause, errors, id, failure);
        if let Some(r) = pending.get() {
            r.ex.grpc_status = Some(cause.grpc_code().code());
        }
        pending.generated(cause.status(errors.profile).unwrap_or(502), Some(cause), response_bytes(&resp));
        return resp;
    }
    generated(pending, respond::error(cause, errors, id, failure), Some(cause))
}

/// A gRPC request: content-type `application/grpc` or `application/grpc+proto` and the like.
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|ct| {
        let ct = ct.as_bytes();
        ct.len() >= 16
            && ct[..16].eq_ignore_ascii_case(b"application/grpc")
            && matches!(ct.get(16), None | Some(b'+' | b';'))
    })
}

/// The `grpc-timeout` field (gRPC over HTTP/2: up to 8 digits and a unit, `H M S m u n`).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The waits a forwarded request is bounded by.
#[derive(Clone, Copy)]
struct Timeouts {
    /// The listener's idle_timeout: a body that stalls either way.
    idle: Duration,
    /// Request sent to response head: the group's response_timeout, or a shorter gRPC deadline.
    response: Duration,
}

/// Bytes of a generated response on the wire: its head and its (known-length) body.
fn response_bytes<B: http_body::Body>(resp: &Response<B>) -> u64 {
    head_bytes(resp.headers()) + resp.body().size_hint().exact().unwrap_or(0)
}

/// The Host header, else HTTP/2's `:authority`.
fn request_host<'a>(req: &'a Request<ClientBody>, fields: &RequestFields<'a>) -> Option<&'a str> {
    match fields.host {
        Some(h) => h.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
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

/// A forwarded request as every attempt sends it: its head encoded for the target, its body, and what the
/// attempts need to know about both.
struct Outgoing {
    request: upstream::Request,
    body: BodyPlan,
    idempotent: bool,
    progress: Arc<RequestProgress>,
    /// Counts against the group's in-flight limit; handed to the response body, which releases it at its end.
    admitted: Admitted,
    /// The protocol switch the request asks for (a WebSocket): its answer may become a tunnel (upgrade.rs).
    upgrade: Option<Box<Upgrade>>,
    /// The client speaks HTTP/2: the response's fields go to it as one map (relay.rs).
    client_h2: bool,
}

/// The request body as the attempts will send it.
enum BodyPlan {
    /// Streamed or empty, with its bytes when they can be replayed (an empty body).
    Ready(UpstreamRequestBody, Option<Bytes>),
    /// Idempotent, of known length within `retry_body_limit`: read whole first, so that a keep-alive race can
    /// send it again.
    Collect(ClientBody),
}

impl Outgoing {
    /// The request head as the target will see it: the client's headers less hop-by-hop ones, and the
    /// forwarding headers the gateway adds, written in HTTP/1.1 origin form with the body's framing.
    fn new(
        req: Request<ClientBody>,
        fields: CarriedFields,
        client: &ClientConn,
        id: &HeaderValue,
        group: &Group,
        pending: &mut Pending,
        admitted: Admitted,
    ) -> Self {
        let progress = Arc::new(RequestProgress::tapped(pending.get().and_then(|r| r.request_tap())));
        if let Some(r) = pending.get() {
            r.body(&progress);
        }
        let (mut parts, body) = req.into_parts();
        let client_h2 = parts.version == http::Version::HTTP_2;
        let trailers = client_h2 || fields.te_trailers;
        // HTTP/2 has no Host header: its `:authority` becomes one (the client's Host, when sent, is kept).
        let authority = (!fields.host)
            .then(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
            .flatten();
        // An upgrade (a WebSocket): an HTTP/1.1 switch toward an http1 group, an extended CONNECT toward an http2
        // one (upgrade.rs); a grpc group answered 464 already.
        let version = group.config.protocol_version;
        let upgrade = (version != ProtocolVersion::Grpc)
            .then(|| {
                let tunnels = &client.facts.listener.tunnels;
                Upgrade::of(&mut parts, fields.hop_by_hop(), body.is_end_stream(), tunnels, version.is_h2())
            })
            .flatten();
        let declared_length = fields.content_length;
        let prior_xff = fields.strip_and_prior_xff(&mut parts.headers);
        if let Some(cert) = client.facts.tls.as_ref().and_then(|t| t.client_cert.as_deref()) {
            crate::tls_front::leaf::forward(&mut parts.headers, cert);
        }
        if let Some(upgrade) = &upgrade {
            upgrade.restore(&mut parts);
        }
        let forwarded = Forwarded {
            prior_xff,
            client_ip: &client.client_ip,
            proto: client.facts.scheme(),
            port: &client.facts.listener.port_header,
            request_id: id,
            trailers,
            traceparent: pending.get().and_then(|r| r.ex.trace.as_ref()).map(TraceContext::traceparent),
        };
        if let Some(host) = authority {
            parts.headers.insert(header::HOST, host);
        }
        let idempotent = idempotent(&parts.method);
        let request = if group.config.protocol_version.is_h2() {
            let scheme = if group.config.protocol == TargetProtocol::Https { "https" } else { "http" };
            upstream::Request::H2(h2_request(parts, &forwarded, scheme))
        } else {
            // The framing a collected body gets is the one its known length gives now.
            let framing = h1::head::request_framing(
                &parts.method,
                &mut parts.headers,
                declared_length,
                body.size_hint().exact(),
                body.is_end_stream(),
            );
            let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let request = h1::Request::new(&parts.method, target, &parts.headers, &forwarded, framing);
            upstream::Request::H1(if upgrade.is_some() { request.upgrading() } else { request })
        };
        // Over HTTP/2 a small body is kept whatever the method: a stream the target refuses unprocessed may go
        // to another target (RFC 9113 §8.7).
        let keep = idempotent || group.config.protocol_version.is_h2();
        let body = BodyPlan::new(keep, body, group.config.retry_body_limit, &progress);
        Self { request, body, idempotent, progress, admitted, upgrade, client_h2 }
    }
}

/// The request as an HTTP/2 target gets it: the Host field becomes `:authority` (RFC 9113 §8.3.1), the
/// forwarding fields go into the map, and the body's framing is the stream's own.
fn h2_request(mut parts: http::request::Parts, forwarded: &Forwarded<'_>, scheme: &str) -> h2::Request {
    let host = parts.headers.remove(header::HOST);
    let authority = host.as_ref().and_then(|h| h.to_str().ok()).unwrap_or("");
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    forwarded.apply(&mut parts.headers);
    let uri = http::Uri::builder().scheme(scheme).authority(authority).path_and_query(path).build();
    // A Host that is no valid authority (the client's HTTP/1 Host is checked, so only an empty one) gets none.
    let uri = uri.unwrap_or_else(|_| http::Uri::builder().path_and_query(path).build().unwrap_or_default());
    let head_len = (parts.method.as_str().len() + path.len() + 12) as u64 + crate::record::header_bytes(&parts.headers);
    h2::Request { method: parts.method, uri, headers: parts.headers, head_len }
}

/// Methods RFC 9110 §9.2.2 calls idempotent: safe to send twice.
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

impl BodyPlan {
    /// An idempotent request with no body, or a small one with a Content-Length, can be replayed after a
    /// keep-alive race (the small one once read whole); anything else streams.
    fn new(replayable: bool, body: ClientBody, limit: u64, progress: &Arc<RequestProgress>) -> Self {
        if !replayable {
            return Self::Ready(UpstreamRequestBody::new(body, progress.clone()), None);
        }
        if body.is_end_stream() {
            return Self::Ready(UpstreamRequestBody::empty(progress.clone()), Some(Bytes::new()));
        }
        if body.size_hint().exact().is_none_or(|n| n > limit) {
            return Self::Ready(UpstreamRequestBody::new(body, progress.clone()), None);
        }
        Self::Collect(body)
    }
}

/// Reads a small body whole, within `read_timeout`; returns it and its bytes for a replay.
async fn collect(
    body: ClientBody,
    read_timeout: Duration,
    progress: Arc<RequestProgress>,
) -> Result<(UpstreamRequestBody, Option<Bytes>), Cause> {
    let bytes = match tokio::time::timeout(read_timeout, body.collect()).await {
        Err(_) => return Err(Cause::ClientRequestTimeout),
        Ok(Err(e)) => return Err(e.0),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok((UpstreamRequestBody::buffered(bytes.clone(), progress), Some(bytes)))
}

/// Sends the request to the group's targets (retrying as FAULTS.md allows) and relays the response. Owns what
/// it uses, so that it is the one future of a forwarded request. A plain fn returning an async block, not an
/// async fn: an async fn moves each argument into a second slot of its future.
#[expect(clippy::manual_async_fn, reason = "an async fn would hold each argument twice")]
fn forward(
    errors: Errors,
    timeouts: Timeouts,
    group: Arc<Group>,
    mut outgoing: Outgoing,
    id: HeaderValue,
    mut pending: Pending,
    close_upstream: bool,
) -> impl Future<Output = Response<ProxyBody>> + Send {
    async move {
        let (group, pending, id) = (&group, &mut pending, &id);
        let idle_timeout = timeouts.idle;
        // Used in place: taking `outgoing` apart would give each part a second slot in this future.
        let (mut body, replay_body) = match outgoing.body {
            BodyPlan::Ready(body, replay) => (body, replay),
            // Boxed: rare, and its state would otherwise be part of every request's future.
            BodyPlan::Collect(body) => match Box::pin(collect(body, idle_timeout, outgoing.progress.clone())).await {
                Ok(collected) => {
                    if let Some(r) = pending.get() {
                        r.trace_body_read(collected.1.as_ref().map_or(0, |b| b.len() as u64));
                    }
                    collected
                }
                Err(cause) => return error(pending, errors, cause, id, None),
            },
        };
        let mut budget = retry::Budget::new(group.config.retries);
        let mut tried = Tried::default();
        // The target of a keep-alive race, to try again on a fresh connection ([`retry::decide`]).
        let mut fresh_retry: Option<usize> = None;
        // The body was handed to a connection that failed: it must be rebuilt before another attempt.
        let mut body_spent = false;
        // The target after one this request must not try again ([`retry::Next::OtherTargetOnly`]), picked at
        // its failure so that with none left that failure is the answer.
        let mut picked: Option<usize> = None;
        loop {
            budget.begin();
            let (attempt, max_attempts) = (budget.attempt, budget.max_attempts);
            let fresh = fresh_retry.take();
            let index = match fresh {
                Some(index) => index,
                None => {
                    let Some(index) = picked.take().or_else(|| tried.pick(group)) else {
                        return error(pending, errors, Cause::NoRegisteredTargets, id, None);
                    };
                    tried.push(index);
                    index
                }
            };
            if let Some(r) = pending.get() {
                r.trace_selected(group, index, attempt, max_attempts);
            }
            let in_flight = group.targets[index].begin();
            let target = in_flight.target().clone();
            // Made where needed (failures), not kept through the exchange in the request's future.
            let ctx = |max_attempts| log::AttemptCtx {
                request_id: id,
                group: &group.config.name,
                target: &target.authority,
                attempt,
                max_attempts,
            };
            // Matched where it is awaited: a `leased` binding would keep its storage (a Result of over 250 bytes)
            // in the request's future through the exchange below.
            let mut lease =
                match if fresh.is_some() { target.upstream.connect().await } else { target.upstream.lease().await } {
                    Ok(lease) => lease,
                    Err(failure) => {
                        let cause = failure.classify();
                        attempt_failed(pending, &ctx(max_attempts), cause, &failure);
                        group.observe_failure(&target, cause);
                        // Nothing reached the target, and the body was not touched.
                        let outcome = retry::Outcome { reused: false, replayable: true, deregistered: false };
                        match retry::decide(&failure.evidence(), outcome, outgoing.idempotent, &mut budget) {
                            // A fresh connection is the answer to a reused one's race; a failed connect is neither.
                            retry::Next::OtherTarget | retry::Next::FreshConnection => continue,
                            // The target's own answer at connect (an https target that offers no h2 by ALPN).
                            retry::Next::OtherTargetOnly => {
                                picked = tried.shun_last_and_pick(group);
                                if picked.is_some() {
                                    continue;
                                }
                                return error(pending, errors, cause, id, Some((&*target.authority, &failure)));
                            }
                            retry::Next::Answer => {
                                return error(pending, errors, cause, id, Some((&*target.authority, &failure)));
                            }
                        }
                    }
                };
            if let Some(r) = pending.get() {
                r.trace_checkout(&lease, group.config.protocol == TargetProtocol::Https);
            }
            if body_spent {
                match &replay_body {
                    Some(bytes) => body = UpstreamRequestBody::buffered(bytes.clone(), outgoing.progress.clone()),
                    None => return error(pending, errors, Cause::NoRegisteredTargets, id, None),
                }
            }
            if let Some(r) = pending.get() {
                r.request_sent();
            }
            let sent = match outgoing.upgrade.as_deref().and_then(Upgrade::h2_protocol) {
                // Boxed: rare, and its state would otherwise be part of every request's future.
                Some(protocol) => {
                    Box::pin(upgrade::connect(&mut lease, &outgoing.request, protocol, timeouts.response)).await
                }
                None => lease.send(&outgoing.request, &mut body, timeouts.response).await,
            };
            let err = match sent {
                Ok(resp) => {
                    // --- An upgrade's answer (upgrade.rs): a 101 as asked becomes a tunnel, a bad one fails. ---
                    let switched = match outgoing.upgrade.take().map(|u| (u.answer(&resp.head), u)) {
                        Some((Err(bad), _)) => {
                            let mut failure = AttemptFailure::new(waygate_faults::Phase::AwaitHeaders);
                            failure.http = Some(waygate_faults::HttpEvidence::BadUpgrade(bad));
                            failure.conn = Some(lease.snapshot());
                            lease.abort();
                            return fail(pending, errors, &ctx(max_attempts), &target, failure, id);
                        }
                        Some((Ok(Answer::Switched), upgrade)) => Some(upgrade),
                        Some((Ok(Answer::Refused), _)) | None => None,
                    };
                    // --- end of the upgrade's branch ---
                    target.health.passive_success();
                    let mut record = pending.record.take();
                    if let Some(r) = record.as_mut() {
                        r.responded(&target.authority, resp.head.status.as_u16());
                        r.trace_response(resp.head.status.as_u16(), &resp.head.fields, &lease);
                    }
                    let done = relay::Done {
                        in_flight,
                        record,
                        sink: pending.sink().clone(),
                        reuse: !close_upstream,
                        admitted: outgoing.admitted,
                    };
                    if let Some(upgrade) = switched {
                        return upgrade.switched(resp.head, lease, done, id, idle_timeout);
                    }
                    return relay::relay(resp, lease, done, id, idle_timeout, outgoing.client_h2);
                }
                Err(err) => err,
            };
            let h1::SendError { failure, unsent, client_failed } = err;
            let mut failure = (*failure).with_conn(lease.snapshot());
            failure.deregistered = target.upstream.is_retired();
            let reused = lease.reused;
            lease.abort();
            if let Some(cause) = client_failed {
                match cause {
                    Cause::ClientClosedRequest => log::client_gone(&ctx(max_attempts), &failure),
                    Cause::ClientRequestTimeout => log::client_body_stalled(&ctx(max_attempts), &failure),
                    _ => {}
                }
                let mut resp = error(pending, errors, cause, id, None);
                mark_close(&mut resp);
                return resp;
            }
            // An unsent streamed body is still whole; anything else needs its buffered copy to go again.
            body_spent = !unsent || replay_body.is_some();
            let outcome = retry::Outcome {
                reused,
                replayable: unsent || replay_body.is_some(),
                deregistered: failure.deregistered,
            };
            let evidence = failure.evidence();
            match retry::decide(&evidence, outcome, outgoing.idempotent, &mut budget) {
                retry::Next::FreshConnection => {
                    attempt_failed(pending, &ctx(budget.max_attempts), classify(&evidence), &failure);
                    fresh_retry = Some(index);
                }
                retry::Next::OtherTarget => {
                    attempt_failed(pending, &ctx(max_attempts), classify(&evidence), &failure);
                }
                retry::Next::Answer => return fail(pending, errors, &ctx(max_attempts), &target, failure, id),
                retry::Next::OtherTargetOnly => {
                    picked = tried.shun_last_and_pick(group);
                    if picked.is_none() {
                        return fail(pending, errors, &ctx(max_attempts), &target, failure, id);
                    }
                    attempt_failed(pending, &ctx(max_attempts), classify(&evidence), &failure);
                }
            }
        }
    }
}

fn fail(
    pending: &mut Pending,
    errors: Errors,
    ctx: &log::AttemptCtx<'_>,
    target: &Target,
    failure: AttemptFailure,
    id: &HeaderValue,
) -> Response<ProxyBody> {
    let cause = failure.classify();
    attempt_failed(pending, ctx, cause, &failure);
    if cause == Cause::TargetDeregistered {
        log::deregistered(id, target);
    }
    error(pending, errors, cause, id, Some((ctx.target, &failure)))
}

/// A failed attempt, in the system log with its evidence and in the record's attempt lists.
fn attempt_failed(pending: &mut Pending, ctx: &log::AttemptCtx<'_>, cause: Cause, failure: &AttemptFailure) {
    // Described once, for the log line and the record's copy of it.
    let message = log::describe(failure);
    log::attempt_failed(ctx, cause, failure, &message);
    if let Some(r) = pending.get() {
        r.attempt_failed(ctx, cause, failure, message);
    }
}

/// The targets a request has tried, by index, in order: at most one per attempt, `1 + retries` (the keep-alive
/// race's extra attempt goes to the same target). On the stack: a `Vec` was an allocation per request.
#[derive(Default)]
struct Tried {
    at: [usize; TRIES],
    len: u8,
    /// Bit `k`: `at[k]` must not be tried again ([`retry::Next::OtherTargetOnly`]).
    shunned: u8,
}

const TRIES: usize = 1 + MAX_RETRIES as usize;
const _: () = assert!(TRIES <= u8::BITS as usize, "Tried::shunned has a bit per attempt");

impl Tried {
    fn as_slice(&self) -> &[usize] {
        &self.at[..usize::from(self.len)]
    }

    /// Config validation keeps `retries` within [`MAX_RETRIES`], so there is always room.
    fn push(&mut self, index: usize) {
        if let Some(slot) = self.at.get_mut(usize::from(self.len)) {
            *slot = index;
            self.len += 1;
        }
    }

    /// The target tried last must not be tried again: the next one instead, if any is left.
    fn shun_last_and_pick(&mut self, group: &Group) -> Option<usize> {
        if let Some(last) = self.len.checked_sub(1) {
            self.shunned |= 1 << last;
        }
        self.pick(group)
    }

    /// The next target: one not tried yet, else (a retry of a target already tried) any but the shunned.
    fn pick(&self, group: &Group) -> Option<usize> {
        group.pick(self.as_slice()).or_else(|| {
            let mut shunned = [0; TRIES];
            let mut n = 0;
            for (k, &index) in self.as_slice().iter().enumerate() {
                if self.shunned & (1 << k) != 0 {
                    shunned[n] = index;
                    n += 1;
                }
            }
            group.pick(&shunned[..n])
        })
    }
}

/// What a 405 offers instead of CONNECT: every method the gateway forwards.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE";

/// ALB answers 463 when X-Forwarded-For holds more addresses than this.
const MAX_XFF_ADDRESSES: usize = 30;
