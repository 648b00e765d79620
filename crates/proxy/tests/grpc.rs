//! gRPC through the gateway with real peers on both sides (a tonic client, a tonic server): the four call
//! shapes over plain and TLS listeners and targets, the target's statuses relayed and counted, and every
//! failure of the gateway's own answered in gRPC (trailers-only, grpc-status from the catalogue, Proxy-Status).

mod common;
mod grpc_peer;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use grpc_peer::{BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY, client, codec, msg, path};
use tokio_stream::StreamExt;
use waygate_faultlab::{GrpcAnswer, H2Target, TestPki};
use waygate_proxy::Drain;

async fn tonic_server(tls: Option<(&str, &str)>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    grpc_peer::serve(listener, tls);
    addr
}

fn grpc_config(targets: &[std::net::SocketAddr], dir: &std::path::Path, extra: &str) -> String {
    simple_config(targets, &format!("protocol_version = \"grpc\"\nretries = 0\n{extra}")).replacen(
        "[[listener]]",
        &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n\n[[listener]]", dir.display()),
        1,
    )
}

fn json_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path()).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// Unary, server streaming, client streaming and bidi calls; a status the service chose passes through.
async fn every_call_shape(mut grpc: tonic::client::Grpc<tonic::transport::Channel>) {
    grpc.ready().await.unwrap();
    let resp = grpc.unary(tonic::Request::new(msg("hello", 0)), path(UNARY), codec()).await.unwrap();
    assert_eq!(resp.into_inner().text, "hello");
    grpc.ready().await.unwrap();
    let resp = grpc.server_streaming(tonic::Request::new(msg("tick", 5)), path(SERVER_STREAM), codec()).await.unwrap();
    let got: Vec<_> = resp.into_inner().map(|m| m.unwrap().text).collect().await;
    assert_eq!(got, ["tick 0", "tick 1", "tick 2", "tick 3", "tick 4"]);
    grpc.ready().await.unwrap();
    let up = tokio_stream::iter(["a", "b", "c"].map(|t| msg(t, 0)));
    let resp = grpc.client_streaming(tonic::Request::new(up), path(CLIENT_STREAM), codec()).await.unwrap();
    assert_eq!(resp.into_inner(), msg("a,b,c", 3));
    grpc.ready().await.unwrap();
    let up = tokio_stream::iter(["x", "y", "z"].map(|t| msg(t, 0)));
    let resp = grpc.streaming(tonic::Request::new(up), path(BIDI), codec()).await.unwrap();
    let got: Vec<_> = resp.into_inner().map(|m| m.unwrap().text).collect().await;
    assert_eq!(got, ["echo x", "echo y", "echo z"]);
    grpc.ready().await.unwrap();
    let err = grpc.unary(tonic::Request::new(msg("fail:5", 0)), path(UNARY), codec()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "the target's own status passes through: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_call_shapes_pass_and_are_logged_and_counted() {
    let target = tonic_server(None).await;
    let dir = tempdir("grpc-log");
    let (gw, addr) = gateway(&grpc_config(&[target], &dir, "")).await;
    within("calls", every_call_shape(client(addr, None).await)).await;
    let metrics = gw.metrics().encode();
    assert_eq!(metric(&metrics, "waygate_target_grpc_responses_total", &[("grpc_status", "0")]), 4.0, "{metrics}");
    assert_eq!(metric(&metrics, "waygate_target_grpc_responses_total", &[("grpc_status", "5")]), 1.0);
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let lines = json_lines(&dir);
    assert_eq!(lines.len(), 5);
    for l in &lines {
        assert_eq!(l["type"], "grpc", "{l}");
        assert_eq!(l["elb_status_code"], 200);
    }
    let statuses: Vec<_> = lines.iter().map(|l| l["grpc_status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 5).count(), 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_pass_over_tls_listeners_and_tls_targets() {
    let pki = TestPki::shared();
    let files = pki.write_files(&tempdir("grpc-tls")).unwrap();
    let target = tonic_server(Some((pki.valid().cert_pem(), pki.valid().key_pem()))).await;
    let dir = tempdir("grpc-tls-log");
    let tls_target =
        format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", files.ca.display());
    let listener = format!(
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\ndefault_target_group = \"app\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n",
        files.valid.cert.display(),
        files.valid.key.display()
    );
    let text = grpc_config(&[target], &dir, &tls_target).replacen(
        "[[target_group]]",
        &format!("{listener}[[target_group]]"),
        1,
    );
    let (gw, _) = gateway(&text).await;
    let addr = gw.local_addr("tls").await.unwrap();
    within("calls", every_call_shape(client(addr, Some(pki.ca_pem())).await)).await;
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    assert!(json_lines(&dir).iter().all(|l| l["type"] == "grpcs"), "ALB's type on TLS listeners");
}

/// The gateway's own failures reach a gRPC client as gRPC statuses: a refused target is UNAVAILABLE, a
/// deadline the target misses is DEADLINE_EXCEEDED; both name their cause in grpc-message and Proxy-Status, and
/// the access log keeps the cause's status so 5xx alerts count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_failures_are_grpc_answers() {
    let refused = waygate_faultlab::Fault::Refuse.spawn(loopback()).await.unwrap();
    let dir = tempdir("grpc-fail");
    let (gw, addr) = gateway(&grpc_config(&[refused.addr()], &dir, "")).await;
    let mut grpc = client(addr, None).await;
    grpc.ready().await.unwrap();
    let err = within("call", grpc.unary(tonic::Request::new(msg("hi", 0)), path(UNARY), codec())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().starts_with("TargetConnectionRefused: "), "{}", err.message());
    let proxy_status = err.metadata().get("proxy-status").unwrap().to_str().unwrap();
    assert!(proxy_status.contains("connection_refused"), "{proxy_status}");
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let line = &json_lines(&dir)[0];
    assert_eq!((line["elb_status_code"].as_u64(), line["grpc_status"].as_u64()), (Some(502), Some(14)), "{line}");
    assert_eq!(line["error_reason"], "TargetConnectionRefused");

    let slow =
        H2Target::grpc(GrpcAnswer { status: 0, delay: Duration::from_secs(20) }).spawn(loopback()).await.unwrap();
    let (_gw, addr) =
        gateway(&grpc_config(&[slow.addr()], &tempdir("grpc-slow"), "response_timeout = \"300ms\"\n")).await;
    let mut grpc = client(addr, None).await;
    grpc.ready().await.unwrap();
    let err = within("call", grpc.unary(tonic::Request::new(msg("hi", 0)), path(UNARY), codec())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().starts_with("TargetResponseTimeout: "), "{}", err.message());

    // The call's own deadline (grpc-timeout; tonic would cancel the call itself at it, so a plain HTTP/2 client
    // sends it) bounds the wait below the group's response_timeout.
    let (_gw, addr) = gateway(&grpc_config(&[slow.addr()], &tempdir("grpc-deadline"), "")).await;
    let req = http::Request::post(format!("http://{addr}{UNARY}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "300m")
        .body(http_body_util::Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap();
    // Without the deadline the gateway would wait the group's 60 s and `within` would give up first.
    let resp = within("call", h2_over(tokio::net::TcpStream::connect(addr).await.unwrap(), req)).await;
    assert_eq!((resp.status.as_u16(), resp.header("grpc-status")), (200, "4"), "{:?}", resp.headers);
    assert!(resp.header("grpc-message").starts_with("TargetResponseTimeout"), "{:?}", resp.headers);
}

/// ALB's 464: a request a gRPC group cannot take (HTTP/1.1, or not gRPC).
#[tokio::test]
async fn http1_requests_to_a_grpc_group_get_464() {
    let target = tonic_server(None).await;
    let dir = tempdir("grpc-464");
    let (gw, addr) = gateway(&grpc_config(&[target], &dir, "")).await;
    let resp = within("request", h1(addr, request("POST", UNARY, "a", Bytes::from_static(b"\0\0\0\0\0")))).await;
    assert_eq!(resp.status.as_u16(), 464);
    assert!(resp.header("proxy-status").contains("ClientProtocolMismatch"), "{:?}", resp.headers);
    let metrics = gw.metrics().encode();
    let labels = [("code", "464"), ("cause", "ClientProtocolMismatch")];
    assert_eq!(metric(&metrics, "waygate_elb_responses_total", &labels), 1.0, "{metrics}");
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let line = &json_lines(&dir)[0];
    assert_eq!(
        (line["elb_status_code"].as_u64(), &line["error_reason"]),
        (Some(464), &serde_json::json!("ClientProtocolMismatch"))
    );
}
