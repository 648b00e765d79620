//! The event a function receives for a request, as ALB builds it (reference/ALB.md §5):
//! `requestContext.elb.targetGroupArn`, `httpMethod`, `path`, the query, the headers (names lower-cased), `body`
//! and `isBase64Encoded`.
//!
//! - Single-value (the default): `queryStringParameters` and `headers` are objects of strings; a repeated
//!   parameter or header gives its last value, as ALB's does.
//! - Multi-value (`multi_value_headers = true`): `multiValueQueryStringParameters` and `multiValueHeaders`
//!   hold every value, in order, as arrays.
//! - Query names and values are passed as the client wrote them, not URL-decoded (ALB's rule); `a` and `a=`
//!   both give `""`, and empty pieces (`a=1&&b=2`) are skipped.
//! - The body is base64 when a `Content-Encoding` is present or the media type is not `text/*`,
//!   `application/json`, `application/javascript` or `application/xml` (ALB's rule). An empty body is `""` and
//!   not base64.
//! - What a JSON string cannot carry makes no event ([`NotUtf8`]): a header value that is not UTF-8 (obs-text),
//!   or a body sent as text that is not UTF-8. ALB answers both LambdaBadRequest, and so does the gateway.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName};
use serde_json::{Map, Value, json};

/// The request as the event needs it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as the client sent it (still percent-encoded).
    pub path: &'a str,
    /// The query as the client sent it, without the `?`.
    pub query: Option<&'a str>,
    /// The client's headers, hop-by-hop ones removed.
    pub headers: &'a HeaderMap,
    /// The fields the gateway adds (X-Forwarded-*, the trace id), which replace the client's own copies.
    pub added: &'a [(HeaderName, String)],
    pub body: &'a [u8],
    pub target_group_arn: &'a str,
    pub multi_value: bool,
}

/// What makes a request impossible to pass as an event (ALB's LambdaBadRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotUtf8 {
    /// The value of this header is not UTF-8.
    Header(HeaderName),
    /// The body is sent as text (by its media type) and is not UTF-8.
    Body,
}

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "the value of the request header {name} is not UTF-8"),
            Self::Body => f.write_str("the request body is sent as text (by its Content-Type) and is not UTF-8"),
        }
    }
}

/// The event, serialised; the error says what of the request a JSON event cannot carry.
pub fn build(req: &Request<'_>) -> Result<Vec<u8>, NotUtf8> {
    let mut event = Map::new();
    event.insert("requestContext".into(), json!({ "elb": { "targetGroupArn": req.target_group_arn } }));
    event.insert("httpMethod".into(), Value::from(req.method));
    event.insert("path".into(), Value::from(req.path));
    let query = query_pairs(req.query.unwrap_or(""));
    let headers = header_pairs(req.headers, req.added)?;
    if req.multi_value {
        event.insert("multiValueQueryStringParameters".into(), multi(query));
        event.insert("multiValueHeaders".into(), multi(headers));
    } else {
        event.insert("queryStringParameters".into(), single(query));
        event.insert("headers".into(), single(headers));
    }
    let (body, base64) = body(req.headers, req.body)?;
    event.insert("body".into(), Value::from(body));
    event.insert("isBase64Encoded".into(), Value::from(base64));
    // A map of strings cannot fail to serialise.
    Ok(serde_json::to_vec(&Value::Object(event)).unwrap_or_default())
}

/// `name=value` pairs of a raw query, in order, not decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (piece.to_owned(), String::new()),
        })
        .collect()
}

fn header_pairs(headers: &HeaderMap, added: &[(HeaderName, String)]) -> Result<Vec<(String, String)>, NotUtf8> {
    let replaced = |name: &HeaderName| added.iter().any(|(n, _)| n == name);
    let mut pairs = Vec::with_capacity(headers.len() + added.len());
    for (name, value) in headers.iter().filter(|(name, _)| !replaced(name)) {
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| NotUtf8::Header(name.clone()))?;
        pairs.push((name.as_str().to_owned(), value.to_owned()));
    }
    pairs.extend(added.iter().map(|(n, v)| (n.as_str().to_owned(), v.clone())));
    Ok(pairs)
}

/// Last value wins.
fn single(pairs: Vec<(String, String)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k, Value::from(v));
    }
    Value::Object(map)
}

/// Every value, in order.
fn multi(pairs: Vec<(String, String)>) -> Value {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in pairs {
        grouped.entry(k).or_default().push(Value::from(v));
    }
    Value::Object(grouped.into_iter().map(|(k, values)| (k, Value::Array(values))).collect())
}

/// The body as the event carries it, and whether it is base64.
fn body(headers: &HeaderMap, bytes: &[u8]) -> Result<(String, bool), NotUtf8> {
    if bytes.is_empty() {
        return Ok((String::new(), false));
    }
    if is_base64(headers) {
        return Ok((base64::engine::general_purpose::STANDARD.encode(bytes), true));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| NotUtf8::Body)?;
    Ok((text.to_owned(), false))
}

/// ALB's rule: base64 when a content coding is present or the media type is not a text type it names.
pub fn is_base64(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::CONTENT_ENCODING) {
        return true;
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return true };
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let text = media.starts_with("text/")
        || matches!(media.as_str(), "application/json" | "application/javascript" | "application/xml");
    !text
}

#[cfg(test)]
mod tests;
