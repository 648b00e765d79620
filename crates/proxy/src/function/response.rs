//! The function's answer, validated as ALB validates it (reference/ALB.md §5): a JSON object with
//! `statusCode` (an integer, 100-599), `isBase64Encoded` (a boolean) and `headers` (an object of strings) or
//! `multiValueHeaders` (an object of arrays of strings); `body` (a string, base64 when `isBase64Encoded`) and
//! `statusDescription` (a string) are optional. Anything else is LambdaInvalidResponse, and the reason goes to
//! the system log (never to the client).
//!
//! With `multi_value_headers` on, `multiValueHeaders` is read when present, else `headers`; with it off,
//! `headers` is read when present, else `multiValueHeaders`. Hop-by-hop fields and `Content-Length` are dropped:
//! the gateway frames the body it sends itself.

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::headers::is_hop_by_hop;

/// A valid function response, ready to send.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Parses and validates the function's payload; the error says what is wrong with it.
pub fn parse(payload: &[u8], multi_value: bool) -> Result<Response, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err(format!("the payload is a JSON {}, not an object", kind(&value)));
    };
    let status = match obj.get("statusCode") {
        None => return Err("statusCode is missing".into()),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
            .and_then(|n| StatusCode::from_u16(n).ok())
            .ok_or_else(|| format!("statusCode {n} is not a status code (100-599)"))?,
        Some(other) => return Err(format!("statusCode is a {}, not an integer", kind(other))),
    };
    let base64 = match obj.get("isBase64Encoded") {
        None => return Err("isBase64Encoded is missing".into()),
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("isBase64Encoded is a {}, not a boolean", kind(other))),
    };
    if let Some(d) = obj.get("statusDescription").filter(|d| !d.is_string() && !d.is_null()) {
        return Err(format!("statusDescription is a {}, not a string", kind(d)));
    }
    let headers = headers(&obj, multi_value)?;
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| format!("body is not valid base64 although isBase64Encoded is true: {e}"))?,
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => return Err(format!("body is a {}, not a string", kind(other))),
    };
    Ok(Response { status, headers, body })
}

fn headers(obj: &Map<String, Value>, multi_value: bool) -> Result<HeaderMap, String> {
    let (single, multi) = (obj.get("headers"), obj.get("multiValueHeaders"));
    let mut out = HeaderMap::new();
    match (single, multi) {
        (None, None) => return Err("neither headers nor multiValueHeaders is present".into()),
        (Some(h), m) if !multi_value || m.is_none() => {
            let Value::Object(h) = h else { return Err(format!("headers is a {}, not an object", kind(h))) };
            for (name, value) in h {
                let Value::String(v) = value else {
                    return Err(format!("header {name:?} is a {}, not a string", kind(value)));
                };
                insert(&mut out, name, v)?;
            }
        }
        (_, Some(m)) => {
            let Value::Object(m) = m else {
                return Err(format!("multiValueHeaders is a {}, not an object", kind(m)));
            };
            for (name, values) in m {
                let Value::Array(values) = values else {
                    return Err(format!("multiValueHeaders {name:?} is a {}, not an array", kind(values)));
                };
                for value in values {
                    let Value::String(v) = value else {
                        return Err(format!(
                            "a value of multiValueHeaders {name:?} is a {}, not a string",
                            kind(value)
                        ));
                    };
                    insert(&mut out, name, v)?;
                }
            }
        }
        // `(Some, None)` is taken by the first arm whatever `multi_value` says.
        (Some(_), None) => {}
    }
    Ok(out)
}

fn insert(out: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name {name:?} is not valid"))?;
    let v = HeaderValue::from_str(value).map_err(|_| format!("the value of header {name:?} is not valid"))?;
    if !is_hop_by_hop(&n) && n != header::CONTENT_LENGTH {
        out.append(n, v);
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
