//! Every event-mapping rule of ALB's, one by one.

use http::HeaderValue;
use serde_json::{Value, json};

use super::*;

fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(*name, HeaderValue::from_bytes(value).unwrap());
    }
    h
}

fn event(query: Option<&str>, h: &HeaderMap, body: &[u8], multi_value: bool) -> Value {
    let added = [(HeaderName::from_static("x-forwarded-for"), "127.0.0.1".to_owned())];
    let req = Request {
        method: "POST",
        path: "/a%20b/c",
        query,
        headers: h,
        added: &added,
        body,
        target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/fn/0",
        multi_value,
    };
    serde_json::from_slice(&build(&req).unwrap()).unwrap()
}

#[test]
fn single_value_event() {
    let h = headers(&[
        ("Content-Type", b"application/json"),
        ("X-Multi", b"one"),
        ("x-multi", b"two"),
        ("x-forwarded-for", b"10.9.9.9"),
    ]);
    let e = event(Some("a=1&b=%20x+y&a=2&flag&empty=&&=v"), &h, br#"{"k":1}"#, false);
    assert_eq!(
        e["requestContext"]["elb"]["targetGroupArn"],
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/fn/0"
    );
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["path"], "/a%20b/c", "the path is not decoded");
    assert_eq!(
        e["queryStringParameters"],
        json!({"a": "2", "b": "%20x+y", "flag": "", "empty": "", "": "v"}),
        "last value wins, nothing decoded, empty pieces skipped"
    );
    assert_eq!(e["headers"]["x-multi"], "two", "last value wins, names lower-cased");
    assert_eq!(e["headers"]["x-forwarded-for"], "127.0.0.1", "the gateway's field replaces the client's");
    assert_eq!(e["body"], r#"{"k":1}"#);
    assert_eq!(e["isBase64Encoded"], false);
    assert!(e.get("multiValueHeaders").is_none() && e.get("multiValueQueryStringParameters").is_none());
}

#[test]
fn multi_value_event() {
    let h = headers(&[("x-multi", b"one"), ("x-multi", b"two"), ("content-type", b"text/plain")]);
    let e = event(Some("a=1&a=2&b=3"), &h, b"hi", true);
    assert_eq!(e["multiValueQueryStringParameters"], json!({"a": ["1", "2"], "b": ["3"]}));
    assert_eq!(e["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    assert_eq!(e["multiValueHeaders"]["x-forwarded-for"], json!(["127.0.0.1"]));
    assert!(e.get("headers").is_none() && e.get("queryStringParameters").is_none());
    assert_eq!(e["body"], "hi");
}

#[test]
fn no_query_is_an_empty_object() {
    let e = event(None, &HeaderMap::new(), b"", false);
    assert_eq!(e["queryStringParameters"], json!({}));
    assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some(""), Some(false)));
    assert_eq!(event(None, &HeaderMap::new(), b"", true)["multiValueQueryStringParameters"], json!({}));
}

#[test]
fn base64_by_content_type_and_encoding() {
    let b64 = |ct: &[(&'static str, &[u8])], body: &[u8]| {
        let e = event(None, &headers(ct), body, false);
        (e["isBase64Encoded"].as_bool().unwrap(), e["body"].as_str().unwrap().to_owned())
    };
    for text in
        ["text/plain", "text/html; charset=utf-8", "Application/JSON", "application/javascript", "application/xml"]
    {
        assert_eq!(b64(&[("content-type", text.as_bytes())], b"abc"), (false, "abc".into()), "{text}");
    }
    for binary in ["application/octet-stream", "image/png", "application/x-www-form-urlencoded", "multipart/form-data"]
    {
        assert_eq!(b64(&[("content-type", binary.as_bytes())], b"abc"), (true, "YWJj".into()), "{binary}");
    }
    assert_eq!(b64(&[], b"abc"), (true, "YWJj".into()), "no content type");
    assert_eq!(
        b64(&[("content-type", b"application/json"), ("content-encoding", b"gzip")], b"abc"),
        (true, "YWJj".into()),
        "any content coding"
    );
    assert_eq!(b64(&[("content-type", b"image/png")], &[0xff, 0xfe]), (true, "//4=".into()), "binary");
}

fn refused(h: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, NotUtf8> {
    let req = Request {
        method: "POST",
        path: "/",
        query: None,
        headers: h,
        added: &[],
        body,
        target_group_arn: "arn",
        multi_value: false,
    };
    build(&req)
}

/// ALB's LambdaBadRequest: "the client request headers or body did not contain only UTF-8 characters". A body
/// sent base64 (by its type or coding) may hold any bytes; one sent as text may not. UTF-8 beyond ASCII is fine.
#[test]
fn what_is_not_utf8_makes_no_event() {
    let err = refused(&headers(&[("x-raw", b"caf\xe9")]), b"").unwrap_err();
    assert_eq!(err, NotUtf8::Header(HeaderName::from_static("x-raw")));
    assert_eq!(err.to_string(), "the value of the request header x-raw is not UTF-8");
    assert_eq!(refused(&headers(&[("content-type", b"text/plain")]), &[0xff, 0xfe]), Err(NotUtf8::Body));
    assert_eq!(refused(&headers(&[("content-type", b"application/json")]), b"{\"a\":\"\xc3\"}"), Err(NotUtf8::Body));
    let gzip = headers(&[("content-type", b"text/plain"), ("content-encoding", b"gzip")]);
    assert!(refused(&gzip, &[0x1f, 0x8b, 0xff]).is_ok(), "a coded body is base64, any bytes");
    assert!(refused(&headers(&[]), &[0xff]).is_ok(), "no type: base64");
    let e = event(
        None,
        &headers(&[("x-name", "café".as_bytes()), ("content-type", b"text/plain")]),
        "naïve".as_bytes(),
        false,
    );
    assert_eq!((e["headers"]["x-name"].as_str(), e["body"].as_str()), (Some("café"), Some("naïve")));
}
