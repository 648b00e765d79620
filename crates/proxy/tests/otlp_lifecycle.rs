//! `[tracing]` over its life: export to an https collector trusted through `ca` (and refused without it), and
//! reloads that turn tracing off (targets get the client's own `traceparent` again) and on towards another
//! collector.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::otlp::*;
use common::*;
use waygate_faultlab::{Backend, TestPki};

/// An https collector whose certificate chains to the `ca` file: spans arrive. Without `ca` the system's roots
/// do not trust it: every export fails and is counted, and requests are served all the same.
#[tokio::test]
async fn https_collectors_are_verified_against_ca() {
    let pki = TestPki::shared();
    let files = pki.write_files(&tempdir("otlp-tls")).unwrap();
    let (otlp, mut rx) = receiver_over(Answer::Accept, Some(pki.valid().server_config())).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let table = |ca: &str| {
        format!(
            "[tracing]\notlp_endpoint = \"https://127.0.0.1:{}\"\nsample_ratio = 1.0\nbatch_delay = \"20ms\"\n{ca}",
            otlp.port()
        )
    };
    let trusted = table(&format!("ca = \"{}\"\n", files.ca.display()));
    let (_gw, addr) = traced(&[backend.addr()], &trusted, "").await;
    let resp = within("request", get(addr, "/")).await;
    let spans = spans_of(&mut rx, resp.header("x-request-id")).await;
    assert_eq!(spans.len(), 4, "the exchange, request processing, the attempt, the response");

    let (gw, addr) = traced(&[backend.addr()], &table(""), "").await;
    assert_eq!(within("request", get(addr, "/")).await.status, 200);
    within("the TLS failure counted", async {
        while metric(&gw.metrics().encode(), "waygate_tracing_export_errors_total", &[]) < 1.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(rx.try_recv().is_err(), "nothing reached the collector over an untrusted handshake");

    // A ca that is no PEM bundle stops the start, saying so.
    let not_pem = files.ca.with_file_name("not-a-ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let config =
        format!("{}\n{}", table(&format!("ca = \"{}\"\n", not_pem.display())), simple_config(&[backend.addr()], ""));
    let config = waygate_config::parse(&config, Path::new("test.toml")).unwrap();
    let err = waygate_proxy::Gateway::start(config).await.expect_err("an unusable ca");
    assert!(err.0.starts_with("[tracing]: cannot start the OTLP exporter: ca: "), "{}", err.0);
}

/// Reloads start, stop and move the exporter; without `[tracing]` the client's traceparent reaches targets
/// untouched.
#[tokio::test]
async fn reloads_turn_tracing_off_and_on() {
    let (first, mut first_rx) = receiver(Answer::Accept).await;
    let (second, mut second_rx) = receiver(Answer::Accept).await;
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let plain = simple_config(&[backend.addr()], "");
    let parse = |text: &str| waygate_config::parse(text, Path::new("test.toml")).unwrap();
    let (gw, addr) = gateway(&format!("{}\n{plain}", tracing_table(first, 1.0, ""))).await;
    let resp = within("request", get(addr, "/echo")).await;
    spans_of(&mut first_rx, resp.header("x-request-id")).await;

    gw.reload(parse(&plain)).await.unwrap();
    let client_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut req = request("GET", "/echo", "app.example", Bytes::new());
    req.headers_mut().insert("traceparent", client_tp.parse().unwrap());
    let resp = within("request", h1(addr, req)).await;
    assert_eq!(echoed(&resp, "traceparent"), [client_tp], "tracing off: the client's, untouched");

    gw.reload(parse(&format!("{}\n{plain}", tracing_table(second, 1.0, "")))).await.unwrap();
    let resp = within("request", get(addr, "/echo")).await;
    let spans = spans_of(&mut second_rx, resp.header("x-request-id")).await;
    let want = format!("00-{}-{}-01", hex(&spans[0].trace_id), hex(&spans[0].span_id));
    assert_eq!(echoed(&resp, "traceparent"), [want]);
}
