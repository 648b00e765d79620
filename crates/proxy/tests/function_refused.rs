//! Requests a function target cannot take, refused as ALB refuses them and before anything is invoked: an
//! upgrade (an HTTP/1.1 WebSocket handshake, an HTTP/2 extended CONNECT) is 400 LambdaWebsocketNotSupported,
//! and a header value or a text body that is not UTF-8 is 400 LambdaBadRequest. Each is checked in the response
//! (status, Proxy-Status), the system log, the access log (read back with AWS's Athena regex) and the metrics.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::function_lab::*;
use common::*;
use http::HeaderValue;
use http_body_util::{Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use waygate_faultlab::FunctionHost;
use waygate_proxy::Drain;

/// A request to the `echo` group with these headers and body.
fn to_echo(method: &str, headers: &[(&'static str, HeaderValue)], body: &'static [u8]) -> http::Request<Full<Bytes>> {
    let mut req = request(method, "/echo", "app.example", Bytes::from_static(body));
    for (name, value) in headers {
        req.headers_mut().append(*name, value.clone());
    }
    req
}

/// An extended CONNECT (RFC 8441) for a WebSocket on `/echo`, on a new h2c connection: the answer's status and
/// request id.
async fn h2_websocket(addr: std::net::SocketAddr) -> (u16, String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.expect("h2 handshake");
    tokio::spawn(conn);
    // A first request: the gateway's SETTINGS (with ENABLE_CONNECT_PROTOCOL) have arrived once it is answered.
    let first = send.send_request(http::Request::get("http://app.example/echo").body(Empty::<Bytes>::new()).unwrap());
    assert_eq!(within("a first request", first).await.unwrap().status(), 200);
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri("http://app.example/echo")
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    let resp = within("the CONNECT's answer", send.send_request(req)).await.unwrap();
    let header = |name: &str| resp.headers().get(name).map_or("", |v| v.to_str().unwrap_or("")).to_owned();
    (resp.status().as_u16(), header("x-request-id"), header("proxy-status"))
}

#[test]
fn upgrades_and_what_is_not_utf8_are_refused_with_albs_codes() {
    if parent("upgrades_and_what_is_not_utf8_are_refused_with_albs_codes", &LAB_KEYS) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let dir = tempdir("fn-refused");
        let groups = [("echo", function("echo", host.addr(), ""), "")];
        let text = config(&format!("[access_log]\ndir = \"{}\"\n", dir.display()), "", &groups);
        let log = LogCapture::default();
        let _guard = log.install();
        let (gw, addr) = gateway(&text).await;
        let text_plain = ("content-type", HeaderValue::from_static("text/plain"));
        // (what, request, cause, what the log line names)
        let cases = [
            (
                "a WebSocket handshake",
                to_echo(
                    "GET",
                    &[
                        ("connection", HeaderValue::from_static("Upgrade")),
                        ("upgrade", HeaderValue::from_static("websocket")),
                        ("sec-websocket-key", HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==")),
                        ("sec-websocket-version", HeaderValue::from_static("13")),
                    ],
                    b"",
                ),
                "LambdaWebsocketNotSupported",
                "asks for an upgrade",
            ),
            (
                "a header value that is not UTF-8",
                to_echo("GET", &[("x-name", HeaderValue::from_bytes(b"caf\xe9").unwrap())], b""),
                "LambdaBadRequest",
                "header x-name is not UTF-8",
            ),
            (
                "a text body that is not UTF-8",
                to_echo("POST", std::slice::from_ref(&text_plain), b"caf\xe9"),
                "LambdaBadRequest",
                "the request body is sent as text",
            ),
        ];
        let mut refused = Vec::new();
        for (what, req, cause, says) in cases {
            let resp = within(what, h1(addr, req)).await;
            assert_eq!(resp.status, 400, "{what}: {}", resp.text());
            let ps = resp.header("proxy-status");
            assert!(ps.contains("error=http_request_error") && ps.contains(&format!("details=\"{cause}\"")), "{ps}");
            let id = resp.header("x-request-id").to_owned();
            let line = log.line(&id, cause);
            assert!(line.contains(says) && line.contains("function=echo"), "{what}: {line}");
            refused.push((id, cause));
        }
        let (status, id, ps) = h2_websocket(addr).await;
        assert_eq!(status, 400, "an HTTP/2 extended CONNECT");
        assert!(ps.contains("details=\"LambdaWebsocketNotSupported\""), "{ps}");
        refused.push((id, "LambdaWebsocketNotSupported"));
        // Nothing refused was invoked: the host served the h2 connection's first request, and nothing else.
        assert_eq!(host.stats().requests_served(), 1);
        // Non-ASCII UTF-8 goes through; bytes of any kind go through in a binary body (base64 in the event).
        let utf8 =
            to_echo("POST", &[("x-name", HeaderValue::from_str("café").unwrap()), text_plain], "naïve".as_bytes());
        let e = within("UTF-8", h1(addr, utf8)).await.json();
        assert_eq!((e["headers"]["x-name"].as_str(), e["body"].as_str()), (Some("café"), Some("naïve")));
        let binary = ("content-type", HeaderValue::from_static("application/octet-stream"));
        let e = within("binary", h1(addr, to_echo("POST", &[binary], b"caf\xe9"))).await.json();
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("Y2Fm6Q=="), Some(true)));

        let metrics = gw.metrics().encode();
        for cause in ["LambdaWebsocketNotSupported", "LambdaBadRequest"] {
            let n = refused.iter().filter(|r| r.1 == cause).count() as f64;
            assert_eq!(metric(&metrics, "waygate_lambda_user_errors_total", &[("cause", cause)]), n, "{cause}");
            assert_eq!(metric(&metrics, "waygate_lambda_internal_errors_total", &[("cause", cause)]), 0.0);
            assert_eq!(metric(&metrics, "waygate_elb_responses_total", &[("code", "400"), ("cause", cause)]), n);
        }
        assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
        let lines = access_log(&dir);
        for (id, cause) in &refused {
            let l = lines.get(id).unwrap_or_else(|| panic!("no access-log line for {id}"));
            assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("400", "-"), "{cause}");
            assert_eq!(l["lambda_error_reason"], *cause);
            assert_eq!(l["target_ip"], "", "target `-` for {cause}");
            let t = l["target_processing_time"].parse::<f64>().unwrap();
            assert!(t < 0.0, "{cause}: nothing was invoked, target_processing_time {t}");
        }
    });
}
