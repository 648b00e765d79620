//! The three example lines of AWS's documentation (reference/ALB.md §1) parse field by field.

use waygate_doctor::alb::{ALB_FIELD_NAMES, split_alb};
use waygate_doctor::attribution::{CauseRef, Inferred, Source, attribute};
use waygate_doctor::parse_line;
use waygate_doctor::time::{SECOND, parse_timestamp};

const HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
const HTTPS: &str = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
const LAMBDA: &str = r#"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-""#;

const TG: &str = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067";

fn fields(line: &str) -> Vec<String> {
    let f = split_alb(line.as_bytes()).unwrap();
    (0..f.len()).map(|i| String::from_utf8(f.get(i).unwrap().to_vec()).unwrap()).collect()
}

#[test]
fn http_example_field_by_field() {
    let expected = [
        "http",
        "2018-07-02T22:23:00.186641Z",
        "app/my-loadbalancer/50dc6c495c0c9188",
        "192.168.131.39:2817",
        "10.0.0.1:80",
        "0.000",
        "0.001",
        "0.000",
        "200",
        "200",
        "34",
        "366",
        "GET http://www.example.com:80/ HTTP/1.1",
        "curl/7.46.0",
        "-",
        "-",
        TG,
        "Root=1-58337262-36d228ad5d99923122bbe354",
        "-",
        "-",
        "0",
        "2018-07-02T22:22:48.364000Z",
        "forward",
        "-",
        "-",
        "10.0.0.1:80",
        "200",
        "-",
        "-",
    ];
    assert_eq!(fields(HTTP), expected);
    let f = split_alb(HTTP.as_bytes()).unwrap();
    assert_eq!(f.by_name("conn_trace_id"), None, "this older example has 29 fields");
    assert_eq!(f.by_name("user_agent"), Some(&b"curl/7.46.0"[..]));
    assert_eq!(ALB_FIELD_NAMES[24], "error_reason");

    let r = parse_line(HTTP.as_bytes()).unwrap();
    assert_eq!(r.time, parse_timestamp(b"2018-07-02T22:23:00.186641Z").unwrap());
    assert_eq!(r.elb_status, 200);
    assert_eq!(r.target_status, Some(200));
    assert_eq!(&*r.target, b"10.0.0.1:80");
    assert_eq!(r.processing, [Some(0), Some(1000), Some(0)]);
    assert_eq!(&*r.target_group, TG.as_bytes());
    assert_eq!(r.request_creation_time, parse_timestamp(b"2018-07-02T22:22:48.364000Z"));
    assert_eq!(r.duration(), Some(11_822_641));
    assert!(r.error_reason.is_empty());
    assert_eq!(attribute(&r), None, "a 200 without error_reason has no cause");
}

#[test]
fn https_example_field_by_field() {
    let expected = [
        "https",
        "2018-07-02T22:23:00.186641Z",
        "app/my-loadbalancer/50dc6c495c0c9188",
        "192.168.131.39:2817",
        "10.0.0.1:80",
        "0.086",
        "0.048",
        "0.037",
        "200",
        "200",
        "0",
        "57",
        "GET https://www.example.com:443/ HTTP/1.1",
        "curl/7.46.0",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLSv1.2",
        TG,
        "Root=1-58337281-1d84f3d73c47ec4e58577259",
        "www.example.com",
        "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012",
        "1",
        "2018-07-02T22:22:48.364000Z",
        "authenticate,forward",
        "-",
        "-",
        "10.0.0.1:80",
        "200",
        "-",
        "-",
    ];
    assert_eq!(fields(HTTPS), expected);
    let r = parse_line(HTTPS.as_bytes()).unwrap();
    assert_eq!(r.processing, [Some(86_000), Some(48_000), Some(37_000)]);
    assert_eq!((r.elb_status, r.target_status), (200, Some(200)));
}

#[test]
fn lambda_example_field_by_field() {
    let f = fields(LAMBDA);
    assert_eq!(f.len(), 29);
    assert_eq!(f[4], "-");
    assert_eq!(f[8], "502");
    assert_eq!(f[9], "-");
    assert_eq!(f[12], "GET http://www.example.com:80/ HTTP/1.1");
    assert_eq!(f[17], "Root=1-58337364-23a8c76965a2ef7629b185e3");
    assert_eq!(f[24], "LambdaInvalidResponse");
    assert_eq!(&f[25..], ["-", "-", "-", "-"]);
    let r = parse_line(LAMBDA.as_bytes()).unwrap();
    assert!(r.target.is_empty());
    assert_eq!((r.elb_status, r.target_status), (502, None));
    assert_eq!(&*r.error_reason, b"LambdaInvalidResponse");
    let o = attribute(&r).unwrap();
    assert_eq!(o.source, Source::LoadBalancer);
    assert_eq!(o.cause, CauseRef::Reason(b"LambdaInvalidResponse"));
}

#[test]
fn more_and_fewer_trailing_fields() {
    // AWS appends fields; parsers must ignore the unknown ones.
    let longer = format!("{LAMBDA} TID_0123 \"some-future-field\" 42");
    let f = split_alb(longer.as_bytes()).unwrap();
    assert_eq!(f.len(), 30);
    assert!(f.has_extra);
    assert_eq!(parse_line(longer.as_bytes()).unwrap(), parse_line(LAMBDA.as_bytes()).unwrap());
    // An old line (up to sent_bytes) still gives a record; missing fields read as `-`.
    let old = "http 2016-08-10T22:08:42.945958Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 -1 -1 -1 502 - 34 366";
    let r = parse_line(old.as_bytes()).unwrap();
    assert!(r.all_processing_failed());
    assert!(r.error_reason.is_empty() && r.target_group.is_empty() && r.request_creation_time.is_none());
    assert_eq!(attribute(&r).unwrap().cause, CauseRef::Inferred(Inferred::TargetConnectionFailed));
    // The playbook's own (mis-quoted) example line parses too.
    let seed = r#"http 2022-04-15T16:52:50.757968Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 -1 -1 -1 502 - 86 155 "GET http://example.com:80/ HTTP/1.1" "curl/7.51.0" - - arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-targets/73e2d6bc24d8a067" Root=1-58337262-36d228ad5d99923122bbe354""#;
    let r = parse_line(seed.as_bytes()).unwrap();
    assert_eq!(r.processing, [Some(-SECOND); 3]);
    assert_eq!(attribute(&r).unwrap().cause, CauseRef::Inferred(Inferred::TargetConnectionFailed));
}
