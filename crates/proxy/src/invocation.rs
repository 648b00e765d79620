//! Requests answered by invoking a function ([`crate::function`]). One request to a function, from the client's request to the client's response: admitted under the group's
//! in-flight limit, the body read whole within ALB's 1 MB, the event built and invoked, and the answer
//! validated. Every way out emits the record once, with the target `-` as ALB writes it for Lambda, and every
//! failure is one catalogue cause, logged with what the operator needs (the function's error type and message,
//! or the endpoint connection's snapshot) and never sent to the client. What cannot become an event is refused
//! before any invoke, with ALB's codes: an upgrade (LambdaWebsocketNotSupported), a header or text body that is
//! not UTF-8 (LambdaBadRequest), a body over 1 MB (LambdaRequestTooLarge).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use waygate_config::Errors;
use waygate_faults::{Cause, LambdaEvidence, Phase};

use crate::body::{ProxyBody, RequestProgress, UpstreamRequestBody};
use crate::forward::ClientConn;
use crate::function::call::{CallError, Reply, call};
use crate::function::{Function, MAX_REQUEST_BODY, MAX_RESPONSE_PAYLOAD, event, invoke, invoke_cause, response};
use crate::group::Group;
use crate::headers::{CarriedFields, Forwarded, X_REQUEST_ID, lists_token};
use crate::log::{self, AttemptCtx};
use crate::record::{Pending, head_bytes};
use crate::respond;
use crate::server::ClientBody;
use crate::upstream::AttemptFailure;

/// ALB's target column for a Lambda target.
static DASH: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("-"));

/// What every step of the exchange refers to.
struct Ctx {
    errors: Errors,
    id: HeaderValue,
    group: Arc<Group>,
    function: Arc<Function>,
}

/// Handles a request routed to `group`, whose function is `function`. A plain fn returning an async block, so
/// the borrowed client connection is read now and not held by the future.
#[expect(clippy::too_many_arguments, reason = "the request path's pieces, each taken once")]
pub(crate) fn forward(
    errors: Errors,
    idle_timeout: Duration,
    group: Arc<Group>,
    function: Arc<Function>,
    req: Request<ClientBody>,
    carried: CarriedFields,
    client: &ClientConn,
    id: HeaderValue,
    mut pending: Pending,
) -> impl Future<Output = Response<ProxyBody>> + Send + use<> {
    let (mut parts, body) = req.into_parts();
    // Read before the hop-by-hop fields (Connection, Upgrade) are stripped.
    let upgrade = asks_upgrade(&parts);
    // HTTP/2 has no Host header: the event's `host` is its `:authority`, as a target's Host would be.
    if !carried.host
        && let Some(host) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    let prior_xff = carried.strip_and_prior_xff(&mut parts.headers);
    let forwarded = Forwarded {
        prior_xff,
        client_ip: &client.client_ip,
        proto: client.facts.scheme(),
        port: &client.facts.listener.port_header,
        request_id: &id,
        trailers: false,
        traceparent: pending.get().and_then(|r| r.ex.trace.as_ref()).map(waygate_telemetry::TraceContext::traceparent),
    };
    let mut added: Vec<(HeaderName, String)> = Vec::with_capacity(5);
    forwarded.each(|name, value| {
        added.push((name.clone(), value.iter().map(|p| String::from_utf8_lossy(p)).collect()));
    });
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| crate::wire::parse_length(v.as_bytes()));
    let progress = Arc::new(RequestProgress::default());
    if let Some(r) = pending.get() {
        r.body(&progress);
    }
    let body = UpstreamRequestBody::new(body, progress);
    let cx = Ctx { errors, id, group, function };
    async move {
        if upgrade {
            refused(&cx, Cause::LambdaWebsocketNotSupported, "the request asks for an upgrade (WebSocket)");
            return generated(&mut pending, &cx, Cause::LambdaWebsocketNotSupported, None);
        }
        let admitted = cx.group.admit();
        if admitted.is_none() {
            return generated(&mut pending, &cx, Cause::GatewayOverloaded, None);
        }
        // Failing open is ALB's default: an unhealthy function is still invoked unless fail_open = false.
        if !cx.group.config.fail_open && !cx.function.health.routable() {
            return generated(&mut pending, &cx, Cause::NoHealthyTargets, None);
        }
        if declared.or(body.size_hint().exact()).is_some_and(|n| n > MAX_REQUEST_BODY) {
            too_large_request(&cx, declared.unwrap_or(MAX_REQUEST_BODY + 1));
            return closing(generated(&mut pending, &cx, Cause::LambdaRequestTooLarge, None));
        }
        let bytes = match read_body(body, idle_timeout).await {
            Ok(bytes) => bytes,
            Err(Cause::LambdaRequestTooLarge) => {
                too_large_request(&cx, MAX_REQUEST_BODY + 1);
                return closing(generated(&mut pending, &cx, Cause::LambdaRequestTooLarge, None));
            }
            Err(cause) => return closing(generated(&mut pending, &cx, cause, None)),
        };
        let path = parts.uri.path().to_owned();
        let f = &cx.function;
        let event = event::build(&event::Request {
            method: parts.method.as_str(),
            path: &path,
            query: parts.uri.query(),
            headers: &parts.headers,
            added: &added,
            body: &bytes,
            target_group_arn: cx.group.tg_ref.arn(),
            multi_value: f.config.multi_value_headers,
        });
        drop(bytes);
        let payload = match event {
            Ok(event) => Bytes::from(event),
            Err(not_utf8) => {
                refused(&cx, Cause::LambdaBadRequest, &format!("{not_utf8}: a function's event cannot carry it"));
                return generated(&mut pending, &cx, Cause::LambdaBadRequest, None);
            }
        };
        let request = match f.signed(&payload).await {
            Ok(request) => request,
            Err(e) => {
                // A decision, not an observation: without credentials the gateway may not invoke.
                let cause = Cause::LambdaAccessDenied;
                tracing::error!(target: "waygate::function", request_id = %id_str(&cx.id), cause = %cause.name(),
                    phase = %Phase::FunctionInvoke.as_str(), target_group = %cx.group.config.name,
                    function = %f.config.name, "cannot sign the invoke: {e}");
                return generated(&mut pending, &cx, cause, None);
            }
        };
        if let Some(r) = pending.get() {
            r.request_sent();
        }
        let timeout = cx.group.config.response_timeout;
        let mut result = call(&f.upstream, &request, payload.clone(), timeout, MAX_RESPONSE_PAYLOAD, false).await;
        let mut attempt = 1;
        if let Err(e) = &result
            && e.keep_alive_race()
            && (parts.method.is_idempotent() || matches!(e, CallError::Failed { unsent: true, .. }))
        {
            if let CallError::Failed { failure, .. } = e {
                let cause = invoke_cause(failure, None);
                attempt_failed(&mut pending, &cx, cause, failure, log::describe(failure), 1, 2);
            }
            result = call(&f.upstream, &request, payload, timeout, MAX_RESPONSE_PAYLOAD, true).await;
            attempt = 2;
        }
        let reply = match result {
            Ok(reply) => reply,
            Err(CallError::Failed { failure, .. }) => {
                let cause = invoke_cause(&failure, None);
                attempt_failed(&mut pending, &cx, cause, &failure, log::describe(&failure), attempt, attempt);
                return generated(&mut pending, &cx, cause, Some(&failure));
            }
            Err(CallError::TooLarge { status, headers }) => {
                let raised = headers.contains_key(&invoke::X_AMZ_FUNCTION_ERROR);
                let evidence = if raised || !status.is_success() {
                    invoke::answer(status, &headers, b"").evidence()
                } else {
                    Some(LambdaEvidence::ResponseTooLarge)
                };
                let message = format!("the invoke answered {status} with a payload over {MAX_RESPONSE_PAYLOAD} bytes");
                return function_failed(&mut pending, &cx, evidence, "", &message);
            }
        };
        drop(admitted);
        answered(&mut pending, &cx, reply)
    }
}

/// The invoke's answer, read whole: the function's response, or its failure.
fn answered(pending: &mut Pending, cx: &Ctx, reply: Reply) -> Response<ProxyBody> {
    match invoke::answer(reply.status, &reply.headers, &reply.body) {
        invoke::Answer::Payload => {}
        invoke::Answer::FunctionError { kind, error_type, message } => {
            let message = format!("the function raised ({kind}): {message}");
            return function_failed(pending, cx, Some(LambdaEvidence::FunctionError), &error_type, &message);
        }
        invoke::Answer::Refused { status, error_type, message } => {
            let message = format!("the Invoke API answered {status}: {message}");
            return function_failed(pending, cx, Some(LambdaEvidence::InvokeStatus(status)), &error_type, &message);
        }
    }
    let valid = match response::parse(&reply.body, cx.function.config.multi_value_headers) {
        Ok(valid) => valid,
        Err(reason) => {
            let message = format!("the function's response is not one ALB accepts: {reason}");
            return function_failed(pending, cx, Some(LambdaEvidence::InvalidResponse), "", &message);
        }
    };
    let response::Response { status, mut headers, body } = valid;
    headers.insert(&X_REQUEST_ID, cx.id.clone());
    let sent = head_bytes(&headers) + body.len() as u64;
    if let Some(mut record) = pending.record.take() {
        record.responded(&DASH, status.as_u16());
        pending.sink().emit(record.finish(status.as_u16(), Some(status.as_u16()), None, sent));
    }
    let mut resp = Response::new(ProxyBody::full(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// A failure the Invoke API or the function reported: its own log line (error type and message), the record's
/// attempt, and the client's response, which says neither.
fn function_failed(
    pending: &mut Pending,
    cx: &Ctx,
    evidence: Option<LambdaEvidence>,
    error_type: &str,
    message: &str,
) -> Response<ProxyBody> {
    let failure = AttemptFailure::new(Phase::FunctionInvoke);
    let cause = invoke_cause(&failure, evidence);
    let f = &cx.function;
    tracing::error!(target: "waygate::function", request_id = %id_str(&cx.id), cause = %cause.name(),
        phase = %Phase::FunctionInvoke.as_str(), target_group = %cx.group.config.name, function = %f.config.name,
        endpoint = %f.authority, error_type = %if error_type.is_empty() { "-" } else { error_type }, "{message}");
    if let Some(r) = pending.get() {
        // The Invoke API answered: the access log's processing times are numbers, as in ALB's Lambda lines.
        let now = std::time::Instant::now();
        r.timings.response_head = Some(now);
        let ctx =
            AttemptCtx { request_id: &cx.id, group: &cx.group.config.name, target: &DASH, attempt: 1, max_attempts: 1 };
        r.attempt_failed(&ctx, cause, &failure, message.to_owned());
    }
    generated(pending, cx, cause, None)
}

/// A failed call to the endpoint: logged with the endpoint and the connection's snapshot (the shared attempt
/// line), recorded as an attempt on `-`.
fn attempt_failed(
    pending: &mut Pending,
    cx: &Ctx,
    cause: Cause,
    failure: &AttemptFailure,
    message: String,
    attempt: usize,
    max_attempts: usize,
) {
    let group = &cx.group.config.name;
    let logged = AttemptCtx { request_id: &cx.id, group, target: &cx.function.authority, attempt, max_attempts };
    log::attempt_failed(&logged, cause, failure, &message);
    if let Some(r) = pending.get() {
        let ctx = AttemptCtx { request_id: &cx.id, group, target: &DASH, attempt, max_attempts };
        r.attempt_failed(&ctx, cause, failure, message);
    }
}

/// The client's body, whole, within ALB's limit and the listener's idle timeout.
async fn read_body(mut body: UpstreamRequestBody, idle_timeout: Duration) -> Result<Bytes, Cause> {
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.0)?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > MAX_REQUEST_BODY {
                    return Err(Cause::LambdaRequestTooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(idle_timeout, read).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(cause)) => Err(cause),
        Err(_) => Err(Cause::ClientRequestTimeout),
    }
}

/// Whether the request asks for an upgrade, which ALB rejects for Lambda targets ("WebSockets are not
/// supported. Upgrade requests are rejected with an HTTP 400 code"): an `Upgrade` field offered with
/// `Connection: upgrade` (HTTP/1.1), or an extended CONNECT (HTTP/2, RFC 8441).
fn asks_upgrade(parts: &http::request::Parts) -> bool {
    if parts.version == Version::HTTP_2 {
        return parts.method == Method::CONNECT && parts.extensions.get::<crate::server::h2::Protocol>().is_some();
    }
    parts.headers.contains_key(header::UPGRADE)
        && parts.headers.get_all(header::CONNECTION).iter().any(|v| lists_token(v.as_bytes(), b"upgrade"))
}

/// The log line of a request refused before any invoke: the client's request is at fault, and the line says how.
fn refused(cx: &Ctx, cause: Cause, why: &str) {
    tracing::warn!(target: "waygate::function", request_id = %id_str(&cx.id), cause = %cause.name(),
        target_group = %cx.group.config.name, function = %cx.function.config.name, "{why}");
}

fn too_large_request(cx: &Ctx, bytes: u64) {
    tracing::warn!(target: "waygate::function", request_id = %id_str(&cx.id),
        cause = %Cause::LambdaRequestTooLarge.name(), target_group = %cx.group.config.name,
        function = %cx.function.config.name,
        "the request body ({bytes} bytes or more) exceeds the {MAX_REQUEST_BODY} bytes a function may receive");
}

/// The gateway's own response for `cause`, recorded. `failure`'s facts reach the client only with
/// `expose_details`.
fn generated(pending: &mut Pending, cx: &Ctx, cause: Cause, failure: Option<&AttemptFailure>) -> Response<ProxyBody> {
    let resp = respond::error(cause, cx.errors, &cx.id, failure.map(|f| (&*cx.function.authority, f)));
    let sent = head_bytes(resp.headers()) + resp.body().size_hint().exact().unwrap_or(0);
    pending.generated(resp.status().as_u16(), Some(cause), sent);
    resp
}

/// The rest of the client's body was not read (too large, or its client failed): the connection cannot carry
/// another request.
fn closing(mut resp: Response<ProxyBody>) -> Response<ProxyBody> {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn id_str(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("-")
}
