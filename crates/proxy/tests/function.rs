//! Function targets end to end: the gateway invokes the fault lab's function host over the real Invoke API
//! (the host verifies every SigV4 signature with the lab's test credentials), and each of ALB's Lambda error
//! codes is checked in the response (status, Proxy-Status), the system log, the access log (read back with AWS's
//! Athena regex) and the metrics.
//!
//! Each test runs itself again as a child process with the AWS environment it needs
//! (`common::function_lab::parent`). The credential sources have their own tests in `function_credentials.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::function_lab::*;
use common::*;
use serde_json::Value;
use waygate_faultlab::{FunctionHost, TestPki};
use waygate_proxy::Drain;

/// (group, function, extra, status, cause, counted as LambdaInternalError, what the system log line says)
const ERRORS: [(&str, &str, &str, u16, &str, bool, &str); 9] = [
    ("raise", "raise", "", 502, "LambdaUnhandled", false, "error_type=LabError"),
    ("timeout", "timeout", "", 502, "LambdaUnhandled", false, "error_type=Sandbox.Timedout"),
    ("malformed", "malformed", "", 502, "LambdaInvalidResponse", false, "statusCode is a string"),
    ("huge", "huge", "", 502, "LambdaResponseTooLarge", false, "over 1048576 bytes"),
    ("throttled", "throttled", "", 502, "LambdaThrottling", false, "error_type=TooManyRequestsException"),
    ("missing", "no-such-function", "", 502, "LambdaResourceNotFound", false, "ResourceNotFoundException"),
    ("denied", "denied", "", 502, "LambdaAccessDenied", false, "error_type=AccessDeniedException"),
    ("broken", "broken", "", 502, "LambdaServiceException", true, "error_type=ServiceException"),
    ("slow", "slow", "response_timeout = \"300ms\"", 504, "LambdaConnectionTimeout", true, "no response head"),
];

#[test]
fn every_error_code_end_to_end() {
    if parent("every_error_code_end_to_end", &LAB_KEYS) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let dir = tempdir("fn-alog");
        let mut groups: Vec<(&str, String, &str)> =
            ERRORS.iter().map(|e| (e.0, function(e.1, host.addr(), ""), e.2)).collect();
        groups.push(("echo", function("echo", host.addr(), ""), ""));
        groups.push(("refused", function("echo", closed_port(), ""), ""));
        let text = config(&format!("[access_log]\ndir = \"{}\"\n", dir.display()), "", &groups);
        let log = LogCapture::default();
        let _guard = log.install();
        let (gw, addr) = gateway(&text).await;
        let mut cases: Vec<(String, u16, &str, bool)> = Vec::new();
        for (group, _, _, status, cause, internal, says) in ERRORS {
            let resp = within(group, get(addr, &format!("/{group}"))).await;
            assert_eq!(resp.status.as_u16(), status, "{group}: {}", resp.text());
            let ps = resp.header("proxy-status");
            assert!(ps.starts_with("waygate; error=") && ps.contains(&format!("details=\"{cause}\"")), "{group}: {ps}");
            let id = resp.header("x-request-id").to_owned();
            let line = log.line(&id, cause);
            assert!(line.contains(says), "{group}: the log line says {says:?}: {line}");
            assert!(
                !resp.text().contains("the lab function raised") && !resp.text().contains("Sandbox"),
                "{group}: leaked"
            );
            cases.push((id, status, cause, internal));
        }
        host.release();
        let resp = within("refused", get(addr, "/refused")).await;
        assert_eq!(resp.status.as_u16(), 502);
        assert!(resp.header("proxy-status").contains("details=\"LambdaConnectionError\""));
        let id = resp.header("x-request-id").to_owned();
        assert!(log.line(&id, "LambdaConnectionError").contains("phase=connect"), "the endpoint's connection evidence");
        cases.push((id, 502, "LambdaConnectionError", true));
        // ALB's 1 MB request limit: 413 before anything is invoked.
        let served = host.stats().requests_served();
        let big = request("POST", "/echo", "app.example", vec![b'x'; 1024 * 1024 + 1]);
        let resp = within("too large", h1(addr, big)).await;
        assert_eq!(resp.status.as_u16(), 413);
        assert_eq!(resp.header("connection"), "close", "the unread body ends the connection");
        assert!(resp.header("proxy-status").contains("details=\"LambdaRequestTooLarge\""));
        assert_eq!(host.stats().requests_served(), served, "nothing was invoked");
        cases.push((resp.header("x-request-id").to_owned(), 413, "LambdaRequestTooLarge", false));
        let ok = within("echo", get(addr, "/echo")).await;
        assert_eq!(ok.status, 200);
        let ok_id = ok.header("x-request-id").to_owned();
        let metrics = gw.metrics().encode();
        for (_, status, cause, internal) in &cases {
            let (family, other) = if *internal {
                ("waygate_lambda_internal_errors_total", "waygate_lambda_user_errors_total")
            } else {
                ("waygate_lambda_user_errors_total", "waygate_lambda_internal_errors_total")
            };
            let expected = cases.iter().filter(|c| c.2 == *cause).count() as f64;
            assert_eq!(metric(&metrics, family, &[("cause", cause)]), expected, "{family} {cause}");
            assert_eq!(metric(&metrics, other, &[("cause", cause)]), 0.0, "{other} {cause}");
            let code = status.to_string();
            assert!(metric(&metrics, "waygate_elb_responses_total", &[("code", &code), ("cause", cause)]) >= 1.0);
        }
        assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
        let lines = access_log(&dir);
        let l = &lines[&ok_id];
        assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("200", "200"));
        assert_eq!((l["target_ip"].as_str(), l["lambda_error_reason"].as_str()), ("", "-"), "target `-`, no error");
        for (id, status, cause, _) in &cases {
            let l = &lines[id];
            assert_eq!(l["lambda_error_reason"], *cause);
            assert_eq!(l["elb_status_code"], status.to_string());
            assert_eq!(l["target_status_code"], "-", "{cause}");
            // The Invoke API answered (processing times), or never did (-1, ALB's rule).
            let answered =
                !matches!(*cause, "LambdaConnectionError" | "LambdaConnectionTimeout" | "LambdaRequestTooLarge");
            let t = l["target_processing_time"].parse::<f64>().unwrap();
            assert_eq!(t >= 0.0, answered, "{cause}: target_processing_time {t}");
            assert_eq!((l["target_ip"].as_str(), l["target_port"].as_str()), ("", ""), "target `-` for {cause}");
            assert_eq!((l["target_port_list"].as_str(), l["target_status_code_list"].as_str()), ("-", "-"));
        }
    });
}

#[test]
fn events_and_responses_as_alb_maps_them() {
    if parent("events_and_responses_as_alb_maps_them", &LAB_KEYS) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let files = TestPki::shared().write_files(&tempdir("fn-tls")).unwrap();
        let tls_listener = format!(
            "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"single\"\n\
             tls = {{ cert = \"{}\", key = \"{}\" }}\n",
            files.valid.cert.display(),
            files.valid.key.display()
        );
        let at = host.addr();
        let groups = [
            ("single", function("echo", at, ""), ""),
            ("multi", function("echo", at, ", multi_value_headers = true"), ""),
            ("binary", function("binary", at, ""), ""),
            ("live", function("echo", at, ", qualifier = \"live\""), ""),
        ];
        let text = config("", &tls_listener, &groups);
        let (gw, addr) = gateway(&text).await;
        // Single-value: last value wins, nothing decoded, names lower-cased.
        let req = http::Request::builder()
            .method("POST")
            .uri("/single/a%20b?x=1&x=2&y=%2F+z&flag")
            .header("host", "app.example")
            .header("X-Multi", "one")
            .header("x-multi", "two")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from_static(br#"{"k":1}"#)))
            .unwrap();
        let resp = within("single", h1(addr, req)).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("x-lab-function"), "echo");
        assert!(resp.header("x-request-id").starts_with("Root=1-"));
        let e: Value = serde_json::from_slice(&resp.body).unwrap();
        assert!(e["requestContext"]["elb"]["targetGroupArn"].as_str().unwrap().contains(":targetgroup/single/"));
        assert_eq!((e["httpMethod"].as_str(), e["path"].as_str()), (Some("POST"), Some("/single/a%20b")));
        assert_eq!(e["queryStringParameters"], serde_json::json!({"x": "2", "y": "%2F+z", "flag": ""}));
        assert_eq!(e["headers"]["x-multi"], "two");
        assert_eq!(e["headers"]["host"], "app.example");
        assert_eq!(e["headers"]["x-forwarded-proto"], "http");
        assert_eq!(e["headers"]["x-amzn-trace-id"], resp.header("x-request-id"));
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some(r#"{"k":1}"#), Some(false)));
        // Multi-value: every value, in order; a binary body is base64.
        let req = http::Request::builder()
            .method("PUT")
            .uri("/multi?x=1&x=2")
            .header("host", "app.example")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("content-type", "application/octet-stream")
            .body(http_body_util::Full::new(Bytes::from_static(&[0, 159, 146, 150])))
            .unwrap();
        let e: Value = within("multi", h1(addr, req)).await.json();
        assert_eq!(e["multiValueQueryStringParameters"], serde_json::json!({"x": ["1", "2"]}));
        assert_eq!(e["multiValueHeaders"]["x-multi"], serde_json::json!(["one", "two"]));
        assert!(e.get("headers").is_none());
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("AJ+Slg=="), Some(true)));
        // A base64 response is decoded; multi-value response headers are each sent.
        let resp = within("binary", get(addr, "/binary")).await;
        assert_eq!(&resp.body[..], &(0..=255u8).collect::<Vec<_>>()[..]);
        let cookies: Vec<_> = resp.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
        // HTTP/2 (h2c): the event's host is the request's :authority.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let resp = within("h2c", h2_over(tcp, h2_request("http", "h2.example", "/single?via=h2"))).await;
        let e: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(
            (e["headers"]["host"].as_str(), e["queryStringParameters"]["via"].as_str()),
            (Some("h2.example"), Some("h2"))
        );
        // A qualifier reaches the Invoke API.
        assert_eq!(within("qualifier", get(addr, "/live")).await.header("x-lab-qualifier"), "live");
        // Behind an https listener: the event says so.
        let tls_addr = gw.local_addr("tls").await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(tls_client(&[b"http/1.1"]));
        let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
        let tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let resp = send.send_request(request("GET", "/single", "localhost", Bytes::new())).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["headers"]["x-forwarded-proto"], "https");
        // The endpoint's connections are pooled: more invokes of a group open no new connection.
        let opened = host.stats().connections_accepted();
        for _ in 0..3 {
            assert_eq!(within("pooled", get(addr, "/single")).await.status, 200);
        }
        assert_eq!(host.stats().connections_accepted(), opened, "the group's pooled connection was reused");
    });
}

/// An https endpoint is verified like any https target: trusted through the group's `tls.ca`, and an
/// untrusted certificate is LambdaConnectionError with the handshake's evidence in the log.
#[test]
fn an_https_endpoint_is_verified() {
    if parent("an_https_endpoint_is_verified", &LAB_KEYS) {
        return;
    }
    run(async {
        let pki = TestPki::shared();
        let files = pki.write_files(&tempdir("fn-https")).unwrap();
        let trusted = FunctionHost::new().tls(pki.valid()).spawn(loopback()).await.unwrap();
        let untrusted = FunctionHost::new().tls(pki.self_signed()).spawn(loopback()).await.unwrap();
        let tls = format!("tls = {{ ca = \"{}\", sni = \"localhost\" }}\n", files.ca.display());
        let https = |at: SocketAddr| format!("name = \"echo\", endpoint = \"https://{at}\"");
        let groups =
            [("trusted", https(trusted.addr()), tls.as_str()), ("untrusted", https(untrusted.addr()), tls.as_str())];
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &groups)).await;
        let resp = within("trusted", get(addr, "/trusted")).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json()["path"], "/trusted");
        let resp = within("untrusted", get(addr, "/untrusted")).await;
        assert_eq!(resp.status, 502);
        assert!(resp.header("proxy-status").contains("details=\"LambdaConnectionError\""));
        let line = log.line(resp.header("x-request-id"), "LambdaConnectionError");
        assert!(line.contains("phase=tls_handshake") && line.contains("target=127.0.0.1:"), "{line}");
        assert_eq!(untrusted.stats().requests_served(), 0);
    });
}
/// Health checks of lambda groups invoke the function with ALB's health-check event: a function that answers
/// turns healthy, one that raises unhealthy, and with `fail_open = false` its requests then get 503
/// NoHealthyTargets without an invoke.
#[test]
fn health_checks_invoke_the_function() {
    if parent("health_checks_invoke_the_function", &LAB_KEYS) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let hc = "[target_group.health_check]\nenabled = true\ninterval = \"5s\"\ntimeout = \"2s\"\n\
                  healthy_threshold = 2\nunhealthy_threshold = 2\n";
        let failing = format!("fail_open = false\n{hc}");
        let groups = [
            ("healthy", function("echo", host.addr(), ""), hc),
            ("failing", function("raise", host.addr(), ""), failing.as_str()),
        ];
        let (gw, addr) = gateway(&config("", "", &groups)).await;
        within("two checks of each group", async {
            loop {
                let m = gw.metrics().encode();
                let healthy = metric(&m, "waygate_healthy_hosts", &[("target_group", "healthy")]);
                let unhealthy = metric(&m, "waygate_unhealthy_hosts", &[("target_group", "failing")]);
                if healthy == 1.0 && unhealthy == 1.0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let invoked = host.stats().requests_served();
        let resp = within("failing", get(addr, "/failing")).await;
        assert_eq!(resp.status, 503);
        assert!(resp.header("proxy-status").contains("details=\"NoHealthyTargets\""));
        assert_eq!(within("healthy", get(addr, "/healthy")).await.status, 200);
        // Only the healthy group's request was an invoke (a check may have run meanwhile: at most two more).
        let more = host.stats().requests_served() - invoked;
        assert!((1..=3).contains(&more), "{more} invokes");
        let audit = format!("{:?}", gw.audit().since(0));
        assert!(audit.contains("unhealthy"), "the transition is audited: {audit}");
    });
}
