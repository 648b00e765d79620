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
//!   `application/json`, `application/javascript` or `application/xml` (ALB's rule). A body that is not UTF-8
//!   is base64 whatever its type: a JSON string cannot carry it (where ALB answers LambdaBadRequest, the
//!   function gets the bytes intact). An empty body is `""` and not base64.
//! - Header values that are not UTF-8 (obs-text) are passed with those bytes replaced (U+FFFD).

use std::collections::BTreeMap;

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

/// The event, serialised.
pub fn build(req: &Request<'_>) -> Vec<u8> {
    let mut event = Map::new();
    event.insert("requestContext".into(), json!({ "elb": { "targetGroupArn": req.target_group_arn } }));
    event.insert("httpMethod".into(), Value::from(req.method));
    event.insert("path".into(), Value::from(req.path));
    let query = query_pairs(req.query.unwrap_or(""));
    let headers = header_pairs(req.headers, req.added);
    if req.multi_value {
        event.insert("multiValueQueryStringParameters".into(), multi(query));
        event.insert("multiValueHeaders".into(), multi(headers));
    } else {
        event.insert("queryStringParameters".into(), single(query));
        event.insert("headers".into(), single(headers));
    }
    let (body, base64) = body(req.headers, req.body);
    event.insert("body".into(), Value::from(body));
    event.insert("isBase64Encoded".into(), Value::from(base64));
    // A map of strings cannot fail to serialise.
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
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

fn header_pairs(headers: &HeaderMap, added: &[(HeaderName, String)]) -> Vec<(String, String)> {
    let replaced = |name: &HeaderName| added.iter().any(|(n, _)| n == name);
    let own = headers
        .iter()
        .filter(|(name, _)| !replaced(name))
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
    own.chain(added.iter().map(|(n, v)| (n.as_str().to_owned(), v.clone()))).collect()
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
fn body(headers: &HeaderMap, bytes: &[u8]) -> (String, bool) {
    if bytes.is_empty() {
        return (String::new(), false);
    }
    if !is_base64(headers)
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return (text.to_owned(), false);
    }
    (base64::engine::general_purpose::STANDARD.encode(bytes), true)
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
