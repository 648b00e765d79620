//! Active health checks against fault-lab targets: healthy → unhealthy by refusal, by timeout and by matcher
//! mismatch, and back; selection skips unhealthy targets; fail open and fail closed; the gauges. Intervals are
//! shortened on the validated model (the file's minimum is ALB's 5 s).

mod common;

use std::time::{Duration, Instant};

use common::*;
use waygate_config::HealthProtocol;
use waygate_faultlab::{Backend, Fault};
use waygate_proxy::Gateway;
use waygate_proxy::target::health::State;

async fn start(
    targets: &[std::net::SocketAddr],
    extra: &str,
    tune: impl FnOnce(&mut waygate_config::HealthCheck),
) -> (Gateway, std::net::SocketAddr) {
    let text = simple_config(targets, extra);
    let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    let hc = &mut config.target_groups[0].health_check;
    hc.enabled = true;
    hc.interval = Duration::from_millis(100);
    hc.timeout = Duration::from_millis(80);
    hc.healthy_threshold = 2;
    hc.unhealthy_threshold = 2;
    tune(hc);
    let gw = Gateway::start(config).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    (gw, addr)
}

/// Polls (bounded by the common deadline) until target `i` of group `app` is in `state`; returns its reason.
async fn until(gw: &Gateway, i: usize, state: State) -> Option<&'static str> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let rt = gw.runtime();
        let t = &rt.groups["app"].targets[i];
        if t.health.state() == state {
            return t.health.reason();
        }
        assert!(Instant::now() < deadline, "target {i} never became {state:?} (last check {:?})", t.health.last());
        tokio::time::sleep(Duration::from_millis(10)).await; // polling interval, with the deadline above
    }
}

#[tokio::test]
async fn refusal_makes_a_target_unhealthy_and_recovery_healthy_again() {
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let addr = backend.addr();
    let (gw, _) = start(&[addr], "", |_| {}).await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None);
    backend.shutdown().await;
    assert_eq!(until(&gw, 0, State::Unhealthy).await, Some("Target.FailedHealthChecks"));
    let last = format!("{:?}", gw.runtime().groups["app"].targets[0].health.last());
    assert!(last.contains("TargetConnectionRefused"), "the catalogue names the failure: {last}");
    let logs = LogCapture::default();
    let _guard = logs.install();
    let _again = Backend::new("b2").spawn(addr).await.unwrap();
    assert_eq!(until(&gw, 0, State::Healthy).await, None);
    assert_eq!(logs.text().matches("a target is healthy again").count(), 1, "{}", logs.text());
}

#[tokio::test]
async fn timeout_and_mismatch_have_their_reasons() {
    let slow = Fault::SlowHead(Duration::from_secs(20)).spawn(loopback()).await.unwrap();
    let (gw, _) = start(&[slow.addr()], "", |_| {}).await;
    assert_eq!(until(&gw, 0, State::Unhealthy).await, Some("Target.Timeout"));

    let own = Fault::ServerError.spawn(loopback()).await.unwrap();
    let (gw, _) = start(&[own.addr()], "", |_| {}).await;
    assert_eq!(until(&gw, 0, State::Unhealthy).await, Some("Target.ResponseCodeMismatch"));
    let (gw, _) = start(&[own.addr()], "", |hc| hc.matcher = vec![(200, 299), (503, 503)]).await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None, "503 is in this matcher");
}

#[tokio::test]
async fn tcp_checks_only_connect() {
    let own = Fault::ServerError.spawn(loopback()).await.unwrap();
    let (gw, _) = start(&[own.addr()], "", |hc| hc.protocol = HealthProtocol::Tcp).await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None, "a TCP check ignores the HTTP status");
}

#[tokio::test]
async fn requests_avoid_unhealthy_targets_and_gauges_count_them() {
    let good = Backend::new("good").spawn(loopback()).await.unwrap();
    let bad = Fault::ServerError.spawn(loopback()).await.unwrap();
    let (gw, addr) = start(&[good.addr(), bad.addr()], "", |_| {}).await;
    until(&gw, 1, State::Unhealthy).await;
    until(&gw, 0, State::Healthy).await;
    for _ in 0..20 {
        assert_eq!(get(addr, "/").await.header("x-backend"), "good");
    }
    let m = gw.metrics().encode();
    assert!(m.contains("waygate_healthy_hosts{target_group=\"app\"} 1"), "{m}");
    assert!(m.contains("waygate_unhealthy_hosts{target_group=\"app\"} 1"), "{m}");
}

#[tokio::test]
async fn all_unhealthy_fails_open_by_default_and_closed_on_request() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let (gw, addr) = start(&[refused.addr()], "retries = 0\n", |_| {}).await;
    until(&gw, 0, State::Unhealthy).await;
    let resp = get(addr, "/").await;
    assert_eq!(resp.status, 502, "fail open: the request still goes to the target");
    assert!(resp.header("proxy-status").contains("TargetConnectionRefused"));
    get(addr, "/").await;
    let said = |text: &str| logs.text().matches(text).count();
    assert_eq!(said("requests fail open to all of them"), 1, "logged once per transition, not per request");

    let (gw, addr) = start(&[refused.addr()], "retries = 0\nfail_open = false\n", |_| {}).await;
    until(&gw, 0, State::Unhealthy).await;
    let resp = get(addr, "/").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("proxy-status"), "waygate; error=destination_unavailable; details=\"NoHealthyTargets\"");
}

/// Passive health: three refused requests in a row take the target out at once (the next active check is
/// minutes away); no request reaches it afterwards.
#[tokio::test]
async fn consecutive_refusals_eject_a_target_before_the_next_active_check() {
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let good = Backend::new("good").spawn(loopback()).await.unwrap();
    let (gw, addr) = start(&[refused.addr(), good.addr()], "retries = 1\n", |hc| {
        hc.interval = Duration::from_secs(300);
        hc.unhealthy_threshold = 3;
    })
    .await;
    for _ in 0..10 {
        assert_eq!(get(addr, "/").await.status, 200, "the refused attempts are retried on the good target");
    }
    let rt = gw.runtime();
    assert_eq!(rt.groups["app"].targets[0].health.state(), State::Unhealthy, "ejected by requests, not by a check");
    let m = gw.metrics().encode();
    let refusals: f64 = m
        .lines()
        .filter(|l| l.starts_with("waygate_target_connection_errors_total{") && l.contains(&refused.addr().to_string()))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(refusals, 3.0, "exactly the three that ejected it: {m}");
}

/// A reload keeps the targets that stay, with their health (and pools); an added target starts `initial`.
#[tokio::test]
async fn reload_keeps_the_health_of_targets_that_stay() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let b = Backend::new("b").spawn(loopback()).await.unwrap();
    let (gw, addr) = start(&[a.addr()], "", |_| {}).await;
    until(&gw, 0, State::Healthy).await;
    let kept = gw.runtime().groups["app"].targets[0].clone();
    let text = simple_config(&[a.addr(), b.addr()], "");
    let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    let hc = &mut config.target_groups[0].health_check;
    (hc.enabled, hc.interval, hc.timeout, hc.healthy_threshold) =
        (true, Duration::from_secs(300), Duration::from_millis(80), 2);
    gw.reload(config).await.unwrap();
    let rt = gw.runtime();
    let targets = &rt.groups["app"].targets;
    assert!(std::sync::Arc::ptr_eq(&targets[0], &kept), "the same target object, with its pool");
    assert_eq!(targets[0].health.state(), State::Healthy, "health survives the reload");
    assert_eq!(targets[1].health.state(), State::Initial);
    assert_eq!(get(addr, "/").await.status, 200);
}

/// A check is a request on the data plane's own upstream session: for each way a target can answer badly, the
/// check fails with the cause a request to the same target gets in its Proxy-Status (a check on another HTTP
/// client would disagree where the two parsers differ, e.g. on the largest head allowed).
#[tokio::test]
async fn a_failed_check_names_the_cause_a_request_gets() {
    // Captured on this thread like the other tests' (a callsite first reached on a thread without a subscriber
    // can be cached as uninteresting for the tests that capture).
    let logs = LogCapture::default();
    let _guard = logs.install();
    for fault in [Fault::MalformedStatusLine, Fault::MalformedHeader, Fault::HugeHead, Fault::CloseBeforeResponse] {
        let bad = fault.spawn(loopback()).await.unwrap();
        // Passive health off, so only the active checks judge the target; the request below fails open.
        let (gw, addr) = start(&[bad.addr()], "", |_| {}).await;
        assert_eq!(until(&gw, 0, State::Unhealthy).await, Some("Target.FailedHealthChecks"), "{fault:?}");
        let last = gw.runtime().groups["app"].targets[0].health.last();
        let Some(waygate_proxy::target::health::Outcome::Failed(check_cause)) = last else {
            panic!("{fault:?}: the check failed with a cause: {last:?}")
        };
        let resp = within("request to the bad target", get(addr, "/")).await;
        let ps = resp.header("proxy-status");
        assert_eq!(waygate_faults::parse_proxy_status_cause(ps), Some(check_cause), "{fault:?}: {ps}");
        let said = format!("health check failed: {check_cause}");
        assert!(logs.text().contains(&said), "{fault:?}: the transition's log line names the cause: {}", logs.text());
    }
}

/// An http2 group's checks speak HTTP/2 (an HTTP/1 check of an h2-only target would fail); a grpc group's are
/// ALB's gRPC checks, matched on grpc-status: 12 UNIMPLEMENTED passes by default, 14 UNAVAILABLE does not.
#[tokio::test]
async fn http2_and_grpc_groups_check_in_their_protocol() {
    use waygate_faultlab::{GrpcAnswer, H2Behaviour, H2Target};
    let h2_only = H2Target::new(H2Behaviour::Echo).spawn(loopback()).await.unwrap();
    let (gw, _) = start(&[h2_only.addr()], "protocol_version = \"http2\"\n", |_| {}).await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None);
    drop(gw);
    let answer = |status| GrpcAnswer { status, delay: Duration::ZERO };
    let unimplemented = H2Target::grpc(answer(12)).spawn(loopback()).await.unwrap();
    let unavailable = H2Target::grpc(answer(14)).spawn(loopback()).await.unwrap();
    let grpc = "protocol_version = \"grpc\"\n";
    let (gw, _) = start(&[unimplemented.addr(), unavailable.addr()], grpc, |hc| {
        assert_eq!((hc.path.as_str(), hc.grpc, &hc.matcher[..]), ("/AWS.ALB/healthcheck", true, &[(12, 12)][..]));
    })
    .await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None);
    assert_eq!(until(&gw, 1, State::Unhealthy).await, Some("Target.ResponseCodeMismatch"));
    drop(gw);
    let serving = H2Target::grpc(answer(0)).spawn(loopback()).await.unwrap();
    let (gw, _) = start(&[serving.addr()], grpc, |hc| hc.matcher = vec![(0, 0)]).await;
    assert_eq!(until(&gw, 0, State::Healthy).await, None);
}
