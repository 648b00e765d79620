//! The Lambda Invoke API on the wire: where the endpoint is, the signed request
//! (`POST {base}/2015-03-31/functions/{name}/invocations[?Qualifier=q]`, SigV4 by `aws-sigv4` for service
//! `lambda`), and what its answer means: a payload, a function error (`X-Amz-Function-Error`), or the
//! service's refusal (a non-2xx status with `x-amzn-ErrorType` and a JSON `message`).

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use waygate_faults::LambdaEvidence;

use super::credentials::Credentials;

pub static X_AMZ_FUNCTION_ERROR: HeaderName = HeaderName::from_static("x-amz-function-error");
pub static X_AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
pub static X_AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// Where invokes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// `host[:port]` as the Host header (and the signature) carry it: the port only when not the scheme's.
    pub host_header: String,
    /// The invocation's path and query, below any base path of the endpoint URL.
    pub path_and_query: String,
}

impl Endpoint {
    /// `endpoint` is an `http://` or `https://` URL, optionally with a base path (config validation checked the
    /// scheme); `name` a function name, name with alias, or ARN; `qualifier` a version or alias.
    pub fn new(endpoint: &str, name: &str, qualifier: Option<&str>) -> Result<Self, String> {
        let uri: Uri = endpoint.parse().map_err(|e| format!("function.endpoint {endpoint:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("function.endpoint {endpoint:?} is not an http:// or https:// URL")),
        };
        let authority = uri.authority().ok_or_else(|| format!("function.endpoint {endpoint:?} has no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_header = match authority.port_u16() {
            Some(p) if p != (if https { 443 } else { 80 }) => format!("{}:{p}", authority.host()),
            _ => authority.host().to_owned(),
        };
        let base = uri.path().trim_end_matches('/');
        let mut path_and_query = format!("{base}/2015-03-31/functions/{}/invocations", encode(name));
        if let Some(q) = qualifier {
            path_and_query.push_str("?Qualifier=");
            path_and_query.push_str(&encode(q));
        }
        Ok(Self { https, host, port, host_header, path_and_query })
    }

    /// `host:port` as logs name the endpoint.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Percent-encodes a path segment or query value as SigV4 canonicalises it (RFC 3986 unreserved kept), so the
/// request's bytes and the signed canonical request agree (an ARN's `:` becomes `%3A`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The invoke's request headers, signed: Host, Content-Type, Content-Length, the invocation type, and what
/// SigV4 adds (`x-amz-date`, `x-amz-security-token` with temporary credentials, `authorization`).
pub fn signed_headers(
    endpoint: &Endpoint,
    region: &str,
    creds: &Credentials,
    payload: &[u8],
    now: SystemTime,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).map_err(|_| format!("{v:?} is not a valid header value"));
    headers.insert(http::header::HOST, value(&endpoint.host_header)?);
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(payload.len()));
    headers.insert("x-amz-invocation-type", HeaderValue::from_static("RequestResponse"));
    headers.insert("x-amz-log-type", HeaderValue::from_static("None"));
    let scheme = if endpoint.https { "https" } else { "http" };
    let url = format!("{scheme}://{}{}", endpoint.host_header, endpoint.path_and_query);
    let identity = AwsCredentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        creds.expiry,
        "waygate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("SigV4 parameters: {e}"))?
        .into();
    let signed_over = headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new("POST", &url, signed_over, SignableBody::Bytes(payload))
        .map_err(|e| format!("SigV4: {e}"))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| format!("SigV4: {e}"))?.into_parts();
    for (name, v) in instructions.headers() {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("SigV4 header {name:?}"))?;
        headers.insert(name, value(v)?);
    }
    Ok(headers)
}

/// What an invoke's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The function returned this payload (still to be validated as ALB's response).
    Payload,
    /// The function raised (`X-Amz-Function-Error: Unhandled`, or `Handled`): LambdaUnhandled.
    FunctionError { kind: String, error_type: String, message: String },
    /// The service refused the invoke: its status, error type (`x-amzn-ErrorType`) and message.
    Refused { status: u16, error_type: String, message: String },
}

impl Answer {
    /// The catalogue's evidence for a failed invoke; `None` for a payload.
    pub fn evidence(&self) -> Option<LambdaEvidence> {
        match self {
            Self::Payload => None,
            Self::FunctionError { .. } => Some(LambdaEvidence::FunctionError),
            Self::Refused { status, .. } => Some(LambdaEvidence::InvokeStatus(*status)),
        }
    }
}

/// Reads the invoke's status, headers and (for errors) body.
pub fn answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Answer {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |keys: &[&str]| {
        keys.iter().find_map(|k| json.as_ref()?.get(*k)?.as_str().map(str::to_owned)).unwrap_or_default()
    };
    if status.is_success() {
        return match text(&X_AMZ_FUNCTION_ERROR) {
            Some(kind) => {
                let error_type = field(&["errorType"]);
                let mut message = field(&["errorMessage"]);
                if json.is_none() {
                    message = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
                }
                Answer::FunctionError { kind, error_type, message }
            }
            None => Answer::Payload,
        };
    }
    // `x-amzn-ErrorType: ResourceNotFoundException:http://internal.amazon.com/...`: the name before the colon.
    let error_type = text(&X_AMZN_ERROR_TYPE)
        .map(|t| t.split(':').next().unwrap_or("").to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| field(&["__type", "Type"]));
    Answer::Refused { status: status.as_u16(), error_type, message: field(&["message", "Message", "errorMessage"]) }
}

#[cfg(test)]
mod tests;
