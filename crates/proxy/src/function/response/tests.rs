//! ALB's validation of a function's response, field by field.

use super::*;

fn ok(payload: &str, multi: bool) -> Response {
    parse(payload.as_bytes(), multi).unwrap_or_else(|e| panic!("{payload}: {e}"))
}

fn invalid(payload: &str, multi: bool, reason: &str) {
    let e = parse(payload.as_bytes(), multi).expect_err(payload);
    assert!(e.contains(reason), "{payload}: {e:?} does not say {reason:?}");
}

#[test]
fn a_complete_response() {
    let r = ok(
        r#"{"statusCode":201,"statusDescription":"201 Created","isBase64Encoded":false,
            "headers":{"Content-Type":"text/plain","Connection":"close","Content-Length":"99"},"body":"made"}"#,
        false,
    );
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.headers.get("content-type").unwrap(), "text/plain");
    assert!(r.headers.get("connection").is_none() && r.headers.get("content-length").is_none(), "the gateway frames");
    assert_eq!(&r.body[..], b"made");
}

#[test]
fn body_is_optional_and_base64_decoded() {
    assert!(ok(r#"{"statusCode":204,"isBase64Encoded":false,"headers":{}}"#, false).body.is_empty());
    let r = ok(r#"{"statusCode":200,"isBase64Encoded":true,"headers":{},"body":"AAEC/w=="}"#, false);
    assert_eq!(&r.body[..], &[0, 1, 2, 255]);
    invalid(r#"{"statusCode":200,"isBase64Encoded":true,"headers":{},"body":"!!"}"#, false, "not valid base64");
}

#[test]
fn required_fields() {
    invalid(r#"{"isBase64Encoded":false,"headers":{}}"#, false, "statusCode is missing");
    invalid(r#"{"statusCode":200,"headers":{}}"#, false, "isBase64Encoded is missing");
    invalid(r#"{"statusCode":200,"isBase64Encoded":false}"#, false, "neither headers nor multiValueHeaders");
    invalid(r#"{"statusCode":"200","isBase64Encoded":false,"headers":{}}"#, false, "statusCode is a string");
    invalid(r#"{"statusCode":99,"isBase64Encoded":false,"headers":{}}"#, false, "not a status code");
    invalid(r#"{"statusCode":200.5,"isBase64Encoded":false,"headers":{}}"#, false, "not a status code");
    invalid(r#"{"statusCode":200,"isBase64Encoded":"no","headers":{}}"#, false, "isBase64Encoded is a string");
    invalid(r#"{"statusCode":200,"isBase64Encoded":false,"headers":{},"body":{}}"#, false, "body is a object");
    invalid(
        r#"{"statusCode":200,"isBase64Encoded":false,"headers":{},"statusDescription":1}"#,
        false,
        "statusDescription",
    );
}

#[test]
fn not_an_object() {
    invalid("hello", false, "not JSON");
    invalid("[1]", false, "a JSON array, not an object");
    invalid("null", false, "a JSON null");
    invalid(r#"{"statusCode":200"#, false, "not JSON");
}

#[test]
fn header_shapes() {
    invalid(r#"{"statusCode":200,"isBase64Encoded":false,"headers":{"a":1}}"#, false, "header \"a\" is a number");
    invalid(r#"{"statusCode":200,"isBase64Encoded":false,"headers":{"bad name":"v"}}"#, false, "not valid");
    invalid(r#"{"statusCode":200,"isBase64Encoded":false,"headers":{"a":"x\ny"}}"#, false, "not valid");
    invalid(r#"{"statusCode":200,"isBase64Encoded":false,"headers":[]}"#, false, "headers is a array");
    let multi = r#"{"statusCode":200,"isBase64Encoded":false,"headers":{"x":"single"},
        "multiValueHeaders":{"set-cookie":["a=1","b=2"],"x":["m"]}}"#;
    let r = ok(multi, true);
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"], "multi-value on: multiValueHeaders");
    assert_eq!(r.headers.get("x").unwrap(), "m");
    let r = ok(multi, false);
    assert_eq!(r.headers.get("x").unwrap(), "single", "multi-value off: headers");
    assert!(r.headers.get("set-cookie").is_none());
    let only_multi = r#"{"statusCode":200,"isBase64Encoded":false,"multiValueHeaders":{"x":["1","2"]}}"#;
    assert_eq!(ok(only_multi, false).headers.get_all("x").iter().count(), 2);
    invalid(
        r#"{"statusCode":200,"isBase64Encoded":false,"multiValueHeaders":{"x":"1"}}"#,
        true,
        "multiValueHeaders \"x\" is a string, not an array",
    );
    invalid(
        r#"{"statusCode":200,"isBase64Encoded":false,"multiValueHeaders":{"x":[1]}}"#,
        true,
        "a value of multiValueHeaders \"x\" is a number",
    );
}
