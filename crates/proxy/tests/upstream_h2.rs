//! HTTP/2 to targets (`protocol_version = "http2"`): requests multiplexed on shared connections up to the
//! target's stream limit, h2c on plain targets and ALPN h2 over TLS, and each HTTP/2 failure with its own cause
//! in the response, the access log and the system log, against the fault lab's real HTTP/2 servers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::future::join_all;
use waygate_faultlab::{Backend, H2Behaviour, H2Target, PARTIAL_BODY, TestPki};

fn h2_config(targets: &[std::net::SocketAddr], extra: &str) -> String {
    simple_config(targets, &format!("protocol_version = \"http2\"\n{extra}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_share_one_h2c_connection() {
    let b = Backend::new("h2c").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[b.addr()], "")).await;
    let responses = join_all((0..20).map(|i| {
        let req = request("POST", &format!("/echo?i={i}"), "app.example", format!("body {i}"));
        within("request", h1(addr, req))
    }))
    .await;
    for (i, resp) in responses.iter().enumerate() {
        assert_eq!(resp.status, 200, "{}", resp.text());
        let echoed = resp.json();
        assert_eq!(echoed["version"], "HTTP/2.0", "the target was spoken to over HTTP/2");
        assert_eq!(echoed["body"], format!("body {i}"));
        assert_eq!(echoed["headers"]["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
        assert!(echoed["headers"].get("host").is_none(), "Host became :authority: {echoed}");
    }
    assert_eq!(b.stats().connections_accepted(), 1, "20 requests, one multiplexed connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_stream_target_gets_a_connection_per_concurrent_request() {
    let t = H2Target::new(H2Behaviour::OneStream).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[t.addr()], "")).await;
    let requests = tokio::spawn(join_all(
        (0..3).map(move |i| within("request", h1(addr, request("GET", &format!("/{i}"), "a", Bytes::new())))),
    ));
    within("three held streams", t.stats().wait_until(|s| s.requests_served() == 3)).await;
    assert_eq!(t.stats().connections_accepted(), 3, "MAX_CONCURRENT_STREAMS = 1: a connection each");
    t.release();
    for resp in requests.await.unwrap() {
        assert_eq!(resp.status, 200);
    }
}

#[tokio::test]
async fn h2_over_tls_by_alpn_and_a_target_without_h2_is_named() {
    let pki = TestPki::new();
    let dir = tempdir("h2-tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let tls = format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", ca.display());
    let h2 = Backend::new("tls").tls(pki.valid()).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[h2.addr()], &tls)).await;
    let resp = within("request", get(addr, "/echo")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["version"], "HTTP/2.0");

    let mut http1_only = (*pki.valid().server_config()).clone();
    http1_only.alpn_protocols = vec![b"http/1.1".to_vec()];
    let h1 = Backend::new("h1").tls_config(http1_only.into()).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[h1.addr()], &tls)).await;
    let resp = within("request", get(addr, "/echo")).await;
    assert_eq!(resp.status, 502);
    assert!(resp.header("proxy-status").contains("TargetHttp2NotNegotiated"), "{:?}", resp.headers);
}

/// Each HTTP/2 failure, caused by a real server doing it, with its cause in the response and the system log.
#[tokio::test]
async fn stream_resets_goaways_and_protocol_errors_have_their_causes() {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let cases = [
        (
            H2Target::new(H2Behaviour::Reset(0x2)).spawn(loopback()).await.unwrap(),
            "TargetStreamReset",
            "INTERNAL_ERROR",
        ),
        (H2Target::new(H2Behaviour::GoAwayMidFlight).spawn(loopback()).await.unwrap(), "TargetGoAway", "NO_ERROR"),
    ];
    for (target, cause, code) in &cases {
        let dir = tempdir("h2-causes");
        let config = h2_config(&[target.addr()], "retries = 0\n").replacen(
            "[[listener]]",
            &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
            1,
        );
        let (gw, addr) = gateway(&config).await;
        let resp = within("request", h1(addr, request("POST", "/", "a", "x"))).await;
        assert_eq!(resp.status, 502, "{cause}");
        assert!(resp.header("proxy-status").contains(cause), "{cause}: {:?}", resp.headers);
        let id = resp.header("x-request-id").to_owned();
        let line = capture.line(&id, cause);
        assert!(line.contains(code), "{cause}: the log names the HTTP/2 error code: {line}");
        let metrics = gw.metrics().encode();
        assert_eq!(metric(&metrics, "waygate_elb_responses_total", &[("code", "502"), ("cause", cause)]), 1.0);
        assert_eq!(gw.shutdown(std::time::Duration::from_secs(30)).await, waygate_proxy::Drain::Complete);
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let logged: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(file).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!((&logged["trace_id"], &logged["error_reason"]), (&serde_json::json!(id), &serde_json::json!(cause)));
    }
    // An HTTP/1-only target behind h2c prior knowledge.
    let h1_only = waygate_faultlab::Fault::ServerError.spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[h1_only.addr()], "retries = 0\n")).await;
    let resp = within("request", get(addr, "/")).await;
    assert_eq!(resp.status, 502);
    assert!(resp.header("proxy-status").contains("TargetHttp2ProtocolError"), "{:?}", resp.headers);
}

/// RFC 9113 §8.7: a refused stream was not processed, so even a POST goes to the next target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_retried_whatever_the_method() {
    let refusing = H2Target::new(H2Behaviour::Refuse).spawn(loopback()).await.unwrap();
    let good = H2Target::new(H2Behaviour::Echo).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[refusing.addr(), good.addr()], "retries = 1\n")).await;
    for _ in 0..2 {
        let resp = within("request", h1(addr, request("POST", "/", "a", "payload"))).await;
        assert_eq!(resp.status, 200, "{:?}", resp.headers);
        assert_eq!(resp.body, "payload");
    }
    assert!(refusing.stats().requests_served() >= 1, "the refusing target was tried");
    assert_eq!(good.stats().requests_served(), 2, "and every POST went on to the next one");
    let accepted = H2Target::new(H2Behaviour::GoAwayMidFlight).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[accepted.addr(), good.addr()], "retries = 1\n")).await;
    let resp = within("request", h1(addr, request("POST", "/", "a", "payload"))).await;
    assert_eq!(resp.status, 502, "a stream at or below last_stream_id may have been processed: not retried");
    assert!(resp.header("proxy-status").contains("TargetGoAway"));
}

/// A connection that carries no stream for `pool_idle_timeout` is closed by the gateway: the target sees it end
/// (the socket is shut down, not only dropped: the liveness probe's duplicate descriptor would keep it open).
#[tokio::test]
async fn a_connection_without_streams_closes_after_the_pool_idle_timeout() {
    let b = Backend::new("h2c").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[b.addr()], "pool_idle_timeout = \"1s\"\n")).await;
    assert_eq!(within("request", get(addr, "/echo")).await.status, 200);
    within("the idle connection closed", b.stats().wait_until(|s| s.connections_closed() == 1)).await;
    assert_eq!(b.stats().connections_accepted(), 1);
    assert_eq!(within("request", get(addr, "/echo")).await.status, 200, "a new connection serves the next one");
    assert_eq!(b.stats().connections_accepted(), 2);
}

/// A target that goes silent after the first request (a frozen host, a path that drops everything) answers no
/// keep-alive PING: the gateway ends the connection at the PING timeout, with that as the evidence, instead of
/// leaving the stream to its much longer response timeout.
#[tokio::test]
async fn a_target_that_answers_no_ping_is_cut_off_at_the_ping_timeout() {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let mute = H2Target::new(H2Behaviour::Mute).spawn(loopback()).await.unwrap();
    // A quiet `pool_idle_timeout` shorter than the 30 s PING interval sends the PING sooner; the PONG then has
    // 20 s. The response timeout is far beyond both.
    let extra = "retries = 0\npool_idle_timeout = \"1s\"\nresponse_timeout = \"600s\"\n";
    let (gw, addr) = gateway(&h2_config(&[mute.addr()], extra)).await;
    let started = std::time::Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(300), h1(addr, request("GET", "/", "a", "")))
        .await
        .expect("the PING timeout ended the stream long before the response timeout");
    // The target stopped answering: a response timeout, as a kernel ETIMEDOUT would be, not a keep-alive race
    // (the broken pipe under the stream is the gateway's own close).
    assert_eq!(resp.status, 504, "{:?}", resp.headers);
    assert!(resp.header("proxy-status").contains("TargetResponseTimeout"), "{:?}", resp.headers);
    assert!(started.elapsed() >= Duration::from_secs(20), "not before the PING had its 20 s");
    let status = resp.header("proxy-status").to_owned();
    let id = resp.header("x-request-id");
    let line = capture.text().lines().find(|l| l.contains(id)).map(str::to_owned).unwrap_or_default();
    assert!(line.contains("no keep-alive PING within 20s"), "{status}: {line}");
    assert_eq!(field(&line, "cause"), "TargetResponseTimeout");
    assert_eq!(mute.stats().requests_served(), 1);
    let metrics = gw.metrics().encode();
    let labels = [("code", "504"), ("cause", "TargetResponseTimeout")];
    assert_eq!(metric(&metrics, "waygate_elb_responses_total", &labels), 1.0);
}

/// A target that resets its stream after its response began: an HTTP/2 client gets the head and the bytes that
/// came, then its own stream reset with the target's code (passed on, not INTERNAL_ERROR).
#[tokio::test]
async fn a_reset_mid_body_reaches_an_http2_client_with_the_targets_code() {
    let target = H2Target::new(H2Behaviour::ResetMidBody(0x8)).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&h2_config(&[target.addr()], "retries = 0\n")).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = within("h2 ready", client.ready()).await.unwrap();
    let req = http::Request::get(format!("http://{addr}/")).body(()).unwrap();
    let (resp, _send) = client.send_request(req, true).unwrap();
    let resp = within("the head", resp).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = Vec::new();
    let err = loop {
        match within("the body", body.data()).await {
            Some(Ok(data)) => got.extend_from_slice(&data),
            Some(Err(e)) => break e,
            None => panic!("the body ended as if complete"),
        }
    };
    assert_eq!(got, PARTIAL_BODY);
    assert_eq!(err.reason(), Some(h2::Reason::CANCEL), "{err}");
}
