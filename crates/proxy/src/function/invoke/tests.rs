//! Endpoints, the invocation path, the signed head, and the meaning of the Invoke API's answers.

use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn endpoints_and_paths() {
    let e = Endpoint::new("http://127.0.0.1:9001", "my-fn", None).unwrap();
    assert_eq!((e.https, e.host.as_str(), e.port), (false, "127.0.0.1", 9001));
    assert_eq!(e.host_header, "127.0.0.1:9001");
    assert_eq!(e.path_and_query, "/2015-03-31/functions/my-fn/invocations");
    let e =
        Endpoint::new("https://lambda.eu-west-1.amazonaws.com", "arn:aws:lambda:eu-west-1:1:function:f", Some("live"))
            .unwrap();
    assert_eq!((e.https, e.port, e.host_header.as_str()), (true, 443, "lambda.eu-west-1.amazonaws.com"));
    assert_eq!(
        e.path_and_query,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Af/invocations?Qualifier=live"
    );
    let e = Endpoint::new("http://[::1]:4566/base/", "f", Some("$LATEST")).unwrap();
    assert_eq!((e.host.as_str(), e.authority()), ("::1", "[::1]:4566".to_owned()));
    assert_eq!(e.path_and_query, "/base/2015-03-31/functions/f/invocations?Qualifier=%24LATEST");
    assert_eq!(Endpoint::new("http://h:80", "f", None).unwrap().host_header, "h", "the scheme's port is not written");
    assert!(Endpoint::new("ftp://h", "f", None).is_err());
}

#[test]
fn the_head_is_signed() {
    let e = Endpoint::new("http://127.0.0.1:9001", "f", None).unwrap();
    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("token".into()),
        expiry: None,
        source: "test".into(),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let h = signed_headers(&e, "us-east-1", &creds, b"{}", now).unwrap();
    let auth = h.get("authorization").unwrap().to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/lambda/aws4_request"),
        "{auth}"
    );
    assert!(auth.contains("SignedHeaders=") && auth.contains("host") && auth.contains("Signature="), "{auth}");
    assert_eq!(h.get("x-amz-date").unwrap(), "20231114T221320Z");
    assert_eq!(h.get("x-amz-security-token").unwrap(), "token");
    assert_eq!(h.get("host").unwrap(), "127.0.0.1:9001");
    assert_eq!(h.get("content-length").unwrap(), "2");
    // The same request signed twice at the same time gives the same signature; another body another one.
    assert_eq!(
        signed_headers(&e, "us-east-1", &creds, b"{}", now).unwrap().get("authorization"),
        h.get("authorization")
    );
    assert_ne!(
        signed_headers(&e, "us-east-1", &creds, b"[]", now).unwrap().get("authorization"),
        h.get("authorization")
    );
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
}

#[test]
fn answers() {
    assert_eq!(answer(StatusCode::OK, &HeaderMap::new(), b"{}"), Answer::Payload);
    let raised = answer(
        StatusCode::OK,
        &headers(&[("x-amz-function-error", "Unhandled")]),
        br#"{"errorType":"ValueError","errorMessage":"boom","stackTrace":[]}"#,
    );
    assert_eq!(
        raised,
        Answer::FunctionError { kind: "Unhandled".into(), error_type: "ValueError".into(), message: "boom".into() }
    );
    assert_eq!(raised.evidence(), Some(LambdaEvidence::FunctionError));
    let throttled = answer(
        StatusCode::TOO_MANY_REQUESTS,
        &headers(&[("x-amzn-errortype", "TooManyRequestsException:http://internal.amazon.com/coral/")]),
        br#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#,
    );
    assert_eq!(
        throttled,
        Answer::Refused {
            status: 429,
            error_type: "TooManyRequestsException".into(),
            message: "Rate Exceeded.".into()
        }
    );
    assert_eq!(throttled.evidence(), Some(LambdaEvidence::InvokeStatus(429)));
    let bare = answer(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>");
    assert_eq!(bare, Answer::Refused { status: 502, error_type: String::new(), message: String::new() });
}
