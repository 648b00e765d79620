//! The lab's function host: the Lambda Invoke API contract, as the Runtime Interface Emulator and the service
//! implement it, over real HTTP on loopback. `POST /2015-03-31/functions/{name}/invocations[?Qualifier=q]`,
//! the SigV4 signature verified against the lab's test credentials ([`verify`]), answered by the lab's
//! functions:
//!
//! | function | what the Invoke API answers |
//! |---|---|
//! | `echo` | 200, an ALB response whose body is the event received (JSON), `x-lab-qualifier` when one was asked |
//! | `binary` | 200, bytes 0-255 base64 (`isBase64Encoded`), two `set-cookie` in `multiValueHeaders` |
//! | `raise` | 200 with `X-Amz-Function-Error: Unhandled`, `{"errorType":"LabError","errorMessage":...}` |
//! | `timeout` | 200 with `X-Amz-Function-Error: Unhandled`, `Sandbox.Timedout` (how a function timeout is reported) |
//! | `malformed` | 200, a payload ALB refuses (`statusCode` a string, no `isBase64Encoded`) |
//! | `huge` | 200, a valid response over 1 MB |
//! | `slow` | nothing until the host is released or stopped (the endpoint does not answer) |
//! | `throttled` | 429 `TooManyRequestsException` |
//! | `denied` | 403 `AccessDeniedException` (the caller may not invoke it) |
//! | `broken` | 500 `ServiceException` |
//! | any other name | 404 `ResourceNotFoundException` |
//!
//! `POST /` is STS's `AssumeRoleWithWebIdentity` (point `AWS_ENDPOINT_URL_STS` here): a token equal to
//! [`TEST_WEB_IDENTITY_TOKEN`] gets the lab's keys as temporary credentials valid for an hour, any other token
//! STS's 400 `InvalidIdentityToken`.
//!
//! A bad or missing signature is 403 with `InvalidSignatureException` (or `UnrecognizedClientException` for an
//! unknown key). Every answer carries `x-amzn-RequestId`; errors carry `x-amzn-ErrorType` and a JSON body with
//! `Type` and `message`, as the service's do.

mod sts;
pub mod verify;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::body::RespBody;
use crate::pki::Identity;
use crate::running::{self, Running, Shared};
pub use sts::TEST_WEB_IDENTITY_TOKEN;
pub use verify::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

/// The lab's functions, by name.
pub const FUNCTIONS: [&str; 10] =
    ["echo", "binary", "raise", "timeout", "malformed", "huge", "slow", "throttled", "denied", "broken"];

/// Builder for the function host.
#[derive(Debug, Default, Clone)]
pub struct FunctionHost {
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The one key pair whose signatures are accepted; default the lab's test credentials.
    keys: Option<Arc<(String, String)>>,
}

impl FunctionHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve HTTPS with `identity` (as the service's regional endpoints do).
    pub fn tls(mut self, identity: &Identity) -> Self {
        self.tls = Some(identity.server_config());
        self
    }

    /// Accept signatures of this key pair instead of the lab's (`waygate demo`: the keys its gateway signs with).
    pub fn credentials(mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        self.keys = Some(Arc::new((access_key_id.into(), secret_access_key.into())));
        self
    }

    /// Binds `bind` (usually `127.0.0.1:0`) and serves the Invoke API on the current runtime.
    pub async fn spawn(self, bind: SocketAddr) -> io::Result<Running> {
        let listener = running::bind(bind).await?;
        let ids = Arc::new(AtomicU64::new(0));
        let acceptor = self.tls.map(TlsAcceptor::from);
        let keys = self.keys.unwrap_or_else(|| Arc::new((TEST_ACCESS_KEY_ID.into(), TEST_SECRET_ACCESS_KEY.into())));
        running::serve(listener, move |stream, shared| {
            serve_conn(stream, shared, ids.clone(), acceptor.clone(), keys.clone())
        })
    }
}

async fn serve_conn(
    stream: TcpStream,
    shared: Arc<Shared>,
    ids: Arc<AtomicU64>,
    tls: Option<TlsAcceptor>,
    keys: Arc<(String, String)>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| invoke(req, shared.clone(), ids.fetch_add(1, Ordering::SeqCst), keys.clone()));
    let builder = auto::Builder::new(TokioExecutor::new());
    // A handshake the client abandons (an untrusted certificate) is the client's business.
    let _ = match tls {
        None => builder.serve_connection(TokioIo::new(stream), service).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
            Err(_) => return,
        },
    };
}

async fn invoke(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    n: u64,
    keys: Arc<(String, String)>,
) -> Result<Response<RespBody>, Infallible> {
    shared.stats.add_request();
    let request_id = format!("00000000-0000-4000-8000-{n:012x}");
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    shared.stats.add_received(body.len());
    let answer = Answer { shared: &shared, request_id: &request_id };
    if parts.uri.path() == "/" && parts.method == http::Method::POST {
        return Ok(sts::assume_role_with_web_identity(&body, &answer));
    }
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Err(r) = verify::verify_with(
        &keys.0,
        &keys.1,
        parts.method.as_str(),
        &format!("http://{host}{path_and_query}"),
        &parts.headers,
        &body,
    ) {
        return Ok(answer.error(StatusCode::FORBIDDEN, r.error_type, "User", &r.message));
    }
    let path = parts.uri.path();
    let name = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .filter(|n| !n.is_empty() && !n.contains('/'));
    let Some(name) = name.filter(|_| parts.method == http::Method::POST) else {
        return Ok(answer.error(StatusCode::NOT_FOUND, "UnknownOperationException", "User", "Unknown operation"));
    };
    let qualifier = parts.uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("Qualifier=")));
    Ok(run(name, qualifier, &body, &answer).await)
}

/// Runs the lab function `name` on the event `payload`.
async fn run(name: &str, qualifier: Option<&str>, payload: &Bytes, answer: &Answer<'_>) -> Response<RespBody> {
    let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{name}");
    match name {
        "echo" => {
            let event = String::from_utf8_lossy(payload).into_owned();
            let mut headers = json!({ "content-type": "application/json", "x-lab-function": "echo" });
            if let Some(q) = qualifier {
                headers["x-lab-qualifier"] = Value::from(q);
            }
            answer.payload(&json!({
                "statusCode": 200, "statusDescription": "200 OK", "isBase64Encoded": false,
                "headers": headers, "body": event,
            }))
        }
        "binary" => answer.payload(&json!({
            "statusCode": 200, "isBase64Encoded": true,
            "multiValueHeaders": {
                "content-type": ["application/octet-stream"],
                "set-cookie": ["a=1; Path=/", "b=2; Path=/"],
            },
            "body": base64::engine::general_purpose::STANDARD.encode((0..=255u8).collect::<Vec<_>>()),
        })),
        "raise" => answer.function_error("LabError", "the lab function raised on purpose"),
        "timeout" => answer.function_error(
            "Sandbox.Timedout",
            &format!("{} Task timed out after 3.00 seconds", answer.request_id),
        ),
        "malformed" => answer.payload(&json!({ "statusCode": "two hundred", "body": "oops" })),
        "huge" => answer.payload(&json!({
            "statusCode": 200, "isBase64Encoded": false, "headers": {}, "body": "x".repeat(1_100_000),
        })),
        "slow" => {
            // A behaviour of this function (it never answers until released), not test synchronisation.
            let ticket = answer.shared.release_ticket();
            answer.shared.released(ticket).await;
            answer.payload(&json!({ "statusCode": 200, "isBase64Encoded": false, "headers": {}, "body": "late" }))
        }
        "throttled" => answer.refused(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            &json!({
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded.",
            }),
        ),
        "denied" => answer.error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "User",
            &format!("User: arn:aws:iam::000000000000:user/waygate is not authorized to perform: lambda:InvokeFunction on resource: {arn}"),
        ),
        "broken" => answer.error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "Service", "The lab service failed."),
        _ => answer.error(StatusCode::NOT_FOUND, "ResourceNotFoundException", "User", &format!("Function not found: {arn}")),
    }
}

/// How the Invoke API answers.
pub(crate) struct Answer<'a> {
    shared: &'a Arc<Shared>,
    request_id: &'a str,
}

impl Answer<'_> {
    fn respond(&self, status: StatusCode, body: String) -> Response<RespBody> {
        self.document(status, "application/json", body)
    }

    fn document(&self, status: StatusCode, content_type: &'static str, body: String) -> Response<RespBody> {
        self.shared.stats.add_sent(body.len());
        let mut resp = Response::new(RespBody::full(self.shared, body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        if let Ok(id) = http::HeaderValue::from_str(self.request_id) {
            h.insert("x-amzn-requestid", id);
        }
        h.insert("x-amz-executed-version", http::HeaderValue::from_static("$LATEST"));
        resp
    }

    /// The function returned `value`.
    fn payload(&self, value: &Value) -> Response<RespBody> {
        self.respond(StatusCode::OK, value.to_string())
    }

    /// The function raised: 200, `X-Amz-Function-Error: Unhandled`, the runtime's error document.
    fn function_error(&self, error_type: &str, message: &str) -> Response<RespBody> {
        let body = json!({ "errorType": error_type, "errorMessage": message, "stackTrace": [] });
        let mut resp = self.respond(StatusCode::OK, body.to_string());
        resp.headers_mut().insert("x-amz-function-error", http::HeaderValue::from_static("Unhandled"));
        resp
    }

    /// The service refused the invoke.
    fn error(&self, status: StatusCode, error_type: &'static str, kind: &str, message: &str) -> Response<RespBody> {
        self.refused(status, error_type, &json!({ "Type": kind, "message": message }))
    }

    fn refused(&self, status: StatusCode, error_type: &'static str, body: &Value) -> Response<RespBody> {
        let mut resp = self.respond(status, body.to_string());
        resp.headers_mut().insert("x-amzn-errortype", http::HeaderValue::from_static(error_type));
        resp
    }
}
