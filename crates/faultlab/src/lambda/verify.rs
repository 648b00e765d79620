//! SigV4 verification as the Lambda service does it: the `Authorization` header's credential scope and signed
//! headers are read, the signature is computed again with `aws-sigv4` from the lab's secret, and a request
//! that does not match is refused with Lambda's 403 error shape. The signer is the crate the gateway signs
//! with, but the verifier rebuilds the canonical request from what arrived on the wire, so a request the
//! gateway altered after signing (a header, the path, one byte of the body) fails here.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::HeaderMap;

/// The lab's test credentials: the only key the function host accepts.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDWAYGATELAB000001";
pub const TEST_SECRET_ACCESS_KEY: &str = "waygate/lab/secret/do-not-use-anywhere-else";
/// AWS refuses a signature dated more than this far from its clock.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// Why a request's signature was refused: Lambda's error type and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error_type: &'static str,
    pub message: String,
}

fn refuse(error_type: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { error_type, message: message.into() }
}

/// Verifies the request's SigV4 signature for service `lambda`; `url` is `http://{host}{path_and_query}` as
/// received.
pub fn verify(method: &str, url: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    verify_with(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, method, url, headers, body)
}

/// [`verify`] against the one key pair `key_id` / `secret`.
pub fn verify_with(
    key_id: &str,
    secret: &str,
    method: &str,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = text("authorization") else {
        return Err(refuse("MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| refuse("IncompleteSignatureException", "Authorization header requires AWS4-HMAC-SHA256"))?;
    let field = |name: &str| {
        fields.split(',').map(str::trim).find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (Some(credential), Some(signed), Some(signature)) =
        (field("Credential"), field("SignedHeaders"), field("Signature"))
    else {
        return Err(refuse(
            "IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders and Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err(refuse("IncompleteSignatureException", format!("malformed credential scope {credential:?}")));
    };
    if key != key_id {
        return Err(refuse("UnrecognizedClientException", "The security token included in the request is invalid."));
    }
    if service != "lambda" {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'lambda', not {service:?}"),
        ));
    }
    let time = text("x-amz-date")
        .and_then(parse_amz_date)
        .ok_or_else(|| refuse("IncompleteSignatureException", "x-amz-date is missing or malformed"))?;
    let now = SystemTime::now();
    let skew = now.duration_since(time).or_else(|_| time.duration_since(now)).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(refuse("InvalidSignatureException", "Signature expired"));
    }
    let token = text("x-amz-security-token").map(str::to_owned);
    let identity = Credentials::new(key_id, secret, token, None, "lab").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| refuse("IncompleteSignatureException", e.to_string()))?
        .into();
    // The headers the client says it signed, less those the signer adds itself from the parameters.
    let mut signed_headers = Vec::new();
    for name in signed.split(';').filter(|n| !matches!(*n, "x-amz-date" | "x-amz-security-token")) {
        let value = text(name)
            .ok_or_else(|| refuse("IncompleteSignatureException", format!("signed header {name} is missing")))?;
        signed_headers.push((name, value));
    }
    let signable = SignableRequest::new(method, url, signed_headers.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| refuse("InvalidSignatureException", e.to_string()))?;
    let (_, expected) =
        sign(signable, &params).map_err(|e| refuse("InvalidSignatureException", e.to_string()))?.into_parts();
    if expected != signature {
        return Err(refuse(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

/// `20231114T221320Z` (SigV4's basic ISO 8601) as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let extended = format!(
        "{}-{}-{}T{}:{}:{}Z",
        date.get(0..4)?,
        date.get(4..6)?,
        date.get(6..8)?,
        time.get(0..2)?,
        time.get(2..4)?,
        time.get(4..6)?
    );
    let t = aws_smithy_types::DateTime::from_str(&extended, aws_smithy_types::date_time::Format::DateTime).ok()?;
    SystemTime::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9001/2015-03-31/functions/echo/invocations";

    /// Headers of a request signed by `aws-sigv4` at `time` with `secret`.
    fn signed(secret: &str, key: &str, body: &[u8], time: SystemTime) -> HeaderMap {
        let identity = Credentials::new(key, secret, Some("token".into()), None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("lambda")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let fields = [("host", "127.0.0.1:9001"), ("content-type", "application/json")];
        let signable = SignableRequest::new("POST", URL, fields.into_iter(), SignableBody::Bytes(body)).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut headers: HeaderMap = fields.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect();
        for (k, v) in instructions.headers() {
            headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_signature_is_checked_against_what_arrived() {
        let now = SystemTime::now();
        let good = signed(TEST_SECRET_ACCESS_KEY, TEST_ACCESS_KEY_ID, b"{}", now);
        assert_eq!(verify("POST", URL, &good, b"{}"), Ok(()));
        let kind = |r: Result<(), Refusal>| r.unwrap_err().error_type;
        assert_eq!(kind(verify("POST", URL, &good, b"{ }")), "InvalidSignatureException", "one byte of the body");
        assert_eq!(kind(verify("POST", &URL.replace("echo", "raise"), &good, b"{}")), "InvalidSignatureException");
        let mut altered = good.clone();
        altered.insert("content-type", "text/plain".parse().unwrap());
        assert_eq!(kind(verify("POST", URL, &altered, b"{}")), "InvalidSignatureException", "a signed header");
        let wrong_secret = signed("not-the-secret", TEST_ACCESS_KEY_ID, b"{}", now);
        assert_eq!(kind(verify("POST", URL, &wrong_secret, b"{}")), "InvalidSignatureException");
        let stranger = signed(TEST_SECRET_ACCESS_KEY, "AKIDSTRANGER", b"{}", now);
        assert_eq!(kind(verify("POST", URL, &stranger, b"{}")), "UnrecognizedClientException");
        let old = signed(TEST_SECRET_ACCESS_KEY, TEST_ACCESS_KEY_ID, b"{}", now - Duration::from_secs(600));
        let refusal = verify("POST", URL, &old, b"{}").unwrap_err();
        assert_eq!((refusal.error_type, refusal.message.as_str()), ("InvalidSignatureException", "Signature expired"));
        let mut unsigned = good.clone();
        unsigned.remove("authorization");
        assert_eq!(kind(verify("POST", URL, &unsigned, b"{}")), "MissingAuthenticationTokenException");
    }

    #[test]
    fn amz_dates() {
        assert_eq!(
            parse_amz_date("20231114T221320Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(parse_amz_date("20231314T221320Z"), None);
        assert_eq!(parse_amz_date("2023-11-14T22:13"), None);
    }
}
