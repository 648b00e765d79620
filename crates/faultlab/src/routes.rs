//! The test backend's routes: what a well-behaved target answers, so the gateway's relaying can be checked.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use crate::body::RespBody;
use crate::running::Shared;

/// `/echo` keeps at most this much of the request body (the rest is only counted).
pub const ECHO_PREFIX: usize = 64 * 1024;

pub(crate) async fn handle<B>(
    req: Request<B>,
    shared: Arc<Shared>,
    name: Arc<str>,
) -> Result<Response<RespBody>, Infallible>
where
    B: Body<Data = Bytes> + Unpin,
{
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let route = (segments.next().unwrap_or(""), segments.next());
    let reply = Reply { shared: &shared, name: &name };
    let response = match route {
        ("echo", None) => echo(req, &reply).await,
        ("upload", None) => upload(req, &reply).await,
        ("bytes", Some(n)) => match n.parse::<u64>() {
            Ok(n) => bytes(n, &query, &reply),
            Err(_) => reply.text(StatusCode::BAD_REQUEST, "bad byte count\n"),
        },
        ("status", Some(code)) => match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
            Some(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                reply.text(status, format!("status {code}\n"))
            }
            None => reply.text(StatusCode::BAD_REQUEST, "bad status code\n"),
        },
        ("delay", Some(ms)) => match ms.parse::<u64>() {
            Ok(ms) => {
                // A behaviour of this target (a slow handler), not test synchronisation.
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply.text(StatusCode::OK, format!("delayed {ms} ms\n"))
            }
            Err(_) => reply.text(StatusCode::BAD_REQUEST, "bad delay\n"),
        },
        ("trailers", None) => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-trailer", HeaderValue::from_static("done"));
            let mut resp = reply.with_body(StatusCode::OK, RespBody::trailers(&shared, "ok\n", trailers));
            // hyper's HTTP/1 encoder only writes trailer fields the head announced, and only when the
            // request carried `TE: trailers` (HTTP/2 always gets them).
            resp.headers_mut().insert(http::header::TRAILER, HeaderValue::from_static("x-trailer"));
            resp
        }
        ("keepalive", Some(secs)) => match secs.parse::<u64>() {
            Ok(secs) => {
                let mut resp = reply.hello();
                if let Ok(v) = HeaderValue::from_str(&format!("timeout={secs}")) {
                    resp.headers_mut().insert(HeaderName::from_static("keep-alive"), v);
                }
                resp
            }
            Err(_) => reply.text(StatusCode::BAD_REQUEST, "bad keep-alive seconds\n"),
        },
        _ => reply.hello(),
    };
    shared.stats.add_request();
    Ok(response)
}

struct Reply<'a> {
    shared: &'a Arc<Shared>,
    name: &'a str,
}

impl Reply<'_> {
    fn with_body(&self, status: StatusCode, body: RespBody) -> Response<RespBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(self.name) {
            resp.headers_mut().insert("x-backend", v);
        }
        resp
    }

    fn text(&self, status: StatusCode, text: impl Into<Bytes>) -> Response<RespBody> {
        let mut resp = self.with_body(status, RespBody::full(self.shared, text));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        resp
    }

    fn json(&self, value: &Value) -> Response<RespBody> {
        let mut resp = self.with_body(StatusCode::OK, RespBody::full(self.shared, value.to_string()));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }

    fn hello(&self) -> Response<RespBody> {
        self.text(StatusCode::OK, format!("hello from {}\n", self.name))
    }
}

/// Reads the whole request body frame by frame: counts every byte, keeps a prefix, collects trailers.
async fn drain<B>(body: &mut B, shared: &Shared, keep: usize) -> Result<(u64, Vec<u8>, Option<HeaderMap>), ()>
where
    B: Body<Data = Bytes> + Unpin,
{
    let (mut total, mut prefix, mut trailers) = (0u64, Vec::new(), None);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        match frame.into_data() {
            Ok(data) => {
                total += data.len() as u64;
                shared.stats.add_received(data.len());
                let room = keep.saturating_sub(prefix.len());
                prefix.extend_from_slice(&data[..data.len().min(room)]);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok((total, prefix, trailers))
}

fn header_map_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let entry = map.entry(name.as_str()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()));
        }
    }
    Value::Object(map)
}

async fn echo<B>(req: Request<B>, reply: &Reply<'_>) -> Response<RespBody>
where
    B: Body<Data = Bytes> + Unpin,
{
    let (parts, mut body) = req.into_parts();
    let Ok((total, prefix, trailers)) = drain(&mut body, reply.shared, ECHO_PREFIX).await else {
        return reply.text(StatusCode::BAD_REQUEST, "request body read failed\n");
    };
    let uri = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.to_string());
    reply.json(&json!({
        "backend": reply.name,
        "method": parts.method.as_str(),
        "uri": uri,
        "version": format!("{:?}", parts.version),
        "headers": header_map_json(&parts.headers),
        "body": String::from_utf8_lossy(&prefix),
        "body_bytes": total,
        "trailers": trailers.as_ref().map_or_else(|| Value::Object(Map::new()), header_map_json),
    }))
}

async fn upload<B>(req: Request<B>, reply: &Reply<'_>) -> Response<RespBody>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut body = req.into_body();
    match drain(&mut body, reply.shared, 0).await {
        Ok((total, ..)) => reply.json(&json!({ "body_bytes": total })),
        Err(()) => reply.text(StatusCode::BAD_REQUEST, "request body read failed\n"),
    }
}

fn bytes(n: u64, query: &str, reply: &Reply<'_>) -> Response<RespBody> {
    let flag = |name: &str| query.split('&').any(|kv| kv == format!("{name}=1"));
    let chunked = flag("chunked");
    let hold = flag("hold").then(|| {
        // The ticket is taken now, so a release() issued after the first chunk arrives always counts.
        let shared = reply.shared.clone();
        let ticket = shared.release_ticket();
        Box::pin(async move { shared.released(ticket).await }) as _
    });
    let mut resp = reply.with_body(StatusCode::OK, RespBody::pattern(reply.shared, n, !chunked, hold));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if !chunked {
        resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    resp
}
