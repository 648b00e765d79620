//! Function targets end to end: the gateway invokes the fault lab's function host over the real Invoke API
//! (the host verifies every SigV4 signature with the lab's test credentials), and each of ALB's Lambda error
//! codes is checked in the response (status, Proxy-Status), the system log, the access log (read back with AWS's
//! Athena regex) and the metrics.
//!
//! The credential chain reads the process environment, which a test cannot change safely while other threads
//! run. So each test runs itself again as a child process with the environment it needs ([`parent`]): real
//! variables, real files, nothing injected.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::Value;
use waygate_faultlab::lambda::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use waygate_faultlab::{FunctionHost, TestPki};
use waygate_proxy::Drain;

const CHILD: &str = "WAYGATE_FUNCTION_TEST_CHILD";

/// In the parent: runs `test` again in a child process whose AWS environment is exactly `vars` (and `HOME` a
/// fresh directory), asserts it passed, and returns true. In that child: returns false, so the test runs.
fn parent(test: &str, vars: &[(&str, &str)]) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        return false;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD, test).env("HOME", tempdir("home"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().expect("run the test binary again");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child {test} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    true
}

const LAB_KEYS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID), ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)];

fn run(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f);
}

/// A gateway config: listener `public` (and `listeners`, more TOML), one rule per group routing `/{group}` and
/// `/{group}/*` to it; each group is `(name, keys of its function table, more keys of the group)`. `head` goes
/// first (an access log...).
fn config(head: &str, listeners: &str, groups: &[(&str, String, &str)]) -> String {
    let mut text = format!(
        "{head}[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"{}\"\n",
        groups[0].0
    );
    for (i, (group, _, _)) in groups.iter().enumerate() {
        for (k, path) in [format!("/{group}"), format!("/{group}/*")].iter().enumerate() {
            let priority = i * 2 + k + 1;
            text +=
                &format!("[[listener.rule]]\npriority = {priority}\npath = \"{path}\"\ntarget_group = \"{group}\"\n");
        }
    }
    text += listeners;
    for (group, function, extra) in groups {
        text += &format!(
            "[[target_group]]\nname = \"{group}\"\nprotocol = \"lambda\"\nfunction = {{ {function} }}\n{extra}\n"
        );
    }
    text
}

/// A function table's keys: `name` at `endpoint`, and `more`.
fn function(name: &str, endpoint: impl std::fmt::Display, more: &str) -> String {
    format!("name = \"{name}\", endpoint = \"http://{endpoint}\"{more}")
}

/// The access log's lines in `dir`, each parsed by AWS's Athena regex, by trace id.
fn access_log(dir: &Path) -> HashMap<String, HashMap<&'static str, String>> {
    let re = regex::Regex::new(&format!("^{} ?([^ ]*)$", waygate_telemetry::athena::ATHENA)).unwrap();
    let cols: Vec<&str> = waygate_telemetry::athena::COLUMNS.iter().copied().chain(["conn_trace_id"]).collect();
    let mut out = HashMap::new();
    for file in std::fs::read_dir(dir).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path()).unwrap().lines() {
            let caps = re.captures(line).unwrap_or_else(|| panic!("Athena regex rejects:\n{line}"));
            let fields: HashMap<&'static str, String> =
                cols.iter().enumerate().map(|(i, c)| (*c, caps[i + 1].to_owned())).collect();
            out.insert(fields["trace_id"].clone(), fields);
        }
    }
    out
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

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

/// Files a credentials test reads: the shared credentials file's `[default]` has a wrong secret, `[lab]` and
/// the config file's `[profile cfg]` the lab's keys, `[stranger]` a key the host does not know.
fn shared_files(tag: &str) -> (String, String) {
    let dir = tempdir(tag);
    let (credentials, config) = (dir.join("credentials"), dir.join("config"));
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = not-the-secret\n\n\
             [lab]\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = {TEST_SECRET_ACCESS_KEY}\n\n\
             [stranger]\naws_access_key_id = AKIDSTRANGER\naws_secret_access_key = x\n"
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!("[profile cfg]\nregion = us-east-1\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = {TEST_SECRET_ACCESS_KEY}\n"),
    )
    .unwrap();
    (credentials.display().to_string(), config.display().to_string())
}

/// Groups `/{name}` each with `profile` (none for `default`) and what their invoke gives.
const PROFILES: [(&str, &str, u16, &str); 5] = [
    ("lab", ", profile = \"lab\"", 200, ""),
    ("cfg", ", profile = \"cfg\"", 200, ""),
    ("default", "", 502, "InvalidSignatureException"),
    ("stranger", ", profile = \"stranger\"", 502, "UnrecognizedClientException"),
    ("nope", ", profile = \"nope\"", 502, "profile \"nope\" is in neither shared file"),
];

#[test]
fn credentials_from_the_shared_files_and_their_profiles() {
    let (credentials, config_file) = shared_files("fn-profiles");
    let vars = [("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()), ("AWS_CONFIG_FILE", config_file.as_str())];
    if parent("credentials_from_the_shared_files_and_their_profiles", &vars) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let groups: Vec<(&str, String, &str)> =
            PROFILES.iter().map(|p| (p.0, function("echo", host.addr(), p.1), "")).collect();
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &groups)).await;
        for (name, _, status, says) in PROFILES {
            let resp = within(name, get(addr, &format!("/{name}"))).await;
            assert_eq!(resp.status.as_u16(), status, "{name}: {}", resp.text());
            if status != 200 {
                assert!(resp.header("proxy-status").contains("details=\"LambdaAccessDenied\""), "{name}");
                let line = log.line(resp.header("x-request-id"), "LambdaAccessDenied");
                assert!(line.contains(says), "{name}: {line}");
            }
        }
        // The bad profile never reached the host: 4 invokes for 5 requests.
        assert_eq!(host.stats().requests_served(), 4);
    });
}

#[test]
fn credentials_from_the_environment_come_first() {
    let (credentials, _) = shared_files("fn-env");
    let vars = [
        LAB_KEYS[0],
        LAB_KEYS[1],
        ("AWS_SESSION_TOKEN", "lab-session-token"),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
    ];
    if parent("credentials_from_the_environment_come_first", &vars) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let (_gw, addr) = gateway(&config("", "", &[("env", function("echo", host.addr(), ""), "")])).await;
        let e = within("env", get(addr, "/env")).await;
        assert_eq!(e.status, 200, "the environment's keys, not [default]'s wrong secret: {}", e.text());
    });
}

#[test]
fn no_credentials_is_access_denied_without_an_invoke() {
    if parent("no_credentials_is_access_denied_without_an_invoke", &[]) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &[("none", function("echo", host.addr(), ""), "")])).await;
        let resp = within("none", get(addr, "/none")).await;
        assert_eq!(resp.status, 502);
        assert!(log.line(resp.header("x-request-id"), "LambdaAccessDenied").contains("no AWS credentials"));
        assert_eq!(host.stats().requests_served(), 0);
    });
}

/// A web-identity token file exchanged at the lab's STS (`AWS_ENDPOINT_URL_STS`) for temporary credentials;
/// a token STS refuses is LambdaAccessDenied with STS's error in the log.
#[test]
fn credentials_from_a_web_identity_token_file() {
    let dir = tempdir("fn-web");
    let (good, bad) = (dir.join("token"), dir.join("bad-token"));
    std::fs::write(&good, waygate_faultlab::lambda::TEST_WEB_IDENTITY_TOKEN).unwrap();
    std::fs::write(&bad, "not-the-token").unwrap();
    // The lab's STS is the function host itself, and its address must be in the child's environment: the
    // parent runs it, on a runtime of its own, while the child runs.
    let child = std::env::var(CHILD).is_ok();
    let parent_rt = tokio::runtime::Runtime::new().unwrap();
    let host = (!child).then(|| parent_rt.block_on(FunctionHost::new().spawn(loopback())).unwrap());
    let at = match &host {
        Some(h) => h.addr().to_string(),
        None => std::env::var("WAYGATE_TEST_FUNCTION_HOST").unwrap(),
    };
    let sts = format!("http://{at}");
    let config_file = dir.join("config");
    std::fs::write(
        &config_file,
        format!(
            "[profile bad]\nrole_arn = arn:aws:iam::000000000000:role/r\nweb_identity_token_file = {}\n",
            bad.display()
        ),
    )
    .unwrap();
    let vars = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", good.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/fn-invoker"),
        ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ("AWS_CONFIG_FILE", config_file.to_str().unwrap()),
        ("WAYGATE_TEST_FUNCTION_HOST", at.as_str()),
    ];
    if parent("credentials_from_a_web_identity_token_file", &vars) {
        // One STS exchange and two invokes for `/web` (the temporary credentials are kept until near their
        // expiry), one refused exchange for `/bad`.
        assert_eq!(host.map(|h| h.stats().requests_served()), Some(4));
        return;
    }
    run(async {
        let groups =
            [("web", function("echo", &at, ""), ""), ("bad", function("echo", &at, ", profile = \"bad\""), "")];
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &groups)).await;
        for _ in 0..2 {
            let resp = within("web", get(addr, "/web")).await;
            assert_eq!(resp.status, 200, "{}", resp.text());
        }
        assert!(log.text().contains("via STS AssumeRoleWithWebIdentity"), "{}", log.text());
        let resp = within("bad", get(addr, "/bad")).await;
        assert_eq!(resp.status, 502);
        assert!(log.line(resp.header("x-request-id"), "LambdaAccessDenied").contains("InvalidIdentityToken"));
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
