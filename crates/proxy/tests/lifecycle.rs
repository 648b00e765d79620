//! Target lifecycle: registration through the gateway's control API, deregistration with draining (a slow
//! request finishes when the delay is long enough, and is cut with 502 TargetDeregistered when it is not),
//! new requests never reaching a draining target, early drain end, re-registration while draining, reloads
//! that add, keep and remove targets, the audit log, and a whole fleet replaced under load without one error.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use waygate_config::TargetSpec;
use waygate_faultlab::Backend;
use waygate_proxy::Gateway;
use waygate_proxy::audit::{Action, Event};
use waygate_proxy::control::ControlError;

fn spec(addr: SocketAddr) -> TargetSpec {
    TargetSpec { host: addr.ip().to_string(), port: addr.port(), weight: 1 }
}

fn config(targets: &[SocketAddr], delay: &str) -> waygate_config::Config {
    config_speaking(targets, delay, "http1")
}

fn config_speaking(targets: &[SocketAddr], delay: &str, version: &str) -> waygate_config::Config {
    let text =
        simple_config(targets, &format!("deregistration_delay = \"{delay}\"\nprotocol_version = \"{version}\"\n"));
    waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap()
}

/// Polls the audit log (bounded by the common deadline) until an event matches; returns it.
async fn audit_until(gw: &Gateway, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(e) = gw.audit().since(0).into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(Instant::now() < deadline, "no audit event {what}: {:#?}", gw.audit().since(0));
        tokio::time::sleep(Duration::from_millis(10)).await; // polling interval, with the deadline above
    }
}

async fn until_in_flight(gw: &Gateway, addr: SocketAddr, n: u32) {
    let deadline = Instant::now() + DEADLINE;
    let authority = addr.to_string();
    loop {
        let rt = gw.runtime();
        let live = rt.groups["app"].targets.iter().find(|t| *t.authority == *authority).map(|t| t.in_flight());
        let draining =
            gw.draining().into_iter().find(|d| *d.target.authority == *authority).map(|d| d.target.in_flight());
        if live.or(draining) == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "{authority} never had {n} request(s) in flight");
        tokio::time::sleep(Duration::from_millis(5)).await; // polling interval, with the deadline above
    }
}

fn backend_of(r: &Resp) -> String {
    r.header("x-backend").to_owned()
}

#[tokio::test]
async fn a_slow_request_finishes_when_the_delay_is_long_enough() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let b = Backend::new("b").spawn(loopback()).await.unwrap();
    let gw = Gateway::start(config(&[a.addr()], "300s")).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    gw.register("app", vec![spec(b.addr())], "ops").await.unwrap();
    // A response whose body a holds until released: in flight on a.
    let slow = tokio::spawn(async move { h1(addr, request("GET", "/bytes/100000?hold=1", "h", "")).await });
    until_in_flight(&gw, a.addr(), 1).await;
    let d = gw.deregister("app", &a.addr().to_string(), "ops").await.unwrap();
    assert_eq!((d.delay, d.in_flight), (Duration::from_secs(300), 1));
    // New requests never reach the draining target.
    for _ in 0..20 {
        assert_eq!(backend_of(&within("request", get(addr, "/echo")).await), "b");
    }
    assert_eq!(gw.draining().len(), 1);
    a.release();
    let r = within("the slow request", slow).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 100_000), "finished whole on the draining target");
    // Nothing left in flight: the drain ends long before its 300 s.
    let drained = audit_until(&gw, "drained", |e| e.action == Action::Drained).await;
    assert_eq!((drained.actor.as_str(), drained.target.as_deref()), ("ops", Some(&*a.addr().to_string())));
    assert!(drained.details.starts_with("drained: nothing in flight"), "{}", drained.details);
    assert!(gw.draining().is_empty());
}

#[tokio::test]
async fn a_request_outliving_the_delay_is_cut_with_target_deregistered() {
    outliving_the_delay("http1").await;
}

/// The same over HTTP/2: the draining target's shared connection is closed, with the stream on it.
#[tokio::test]
async fn an_http2_stream_outliving_the_delay_is_cut_with_target_deregistered() {
    outliving_the_delay("http2").await;
}

async fn outliving_the_delay(version: &str) {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let b = Backend::new("b").spawn(loopback()).await.unwrap();
    let gw = Gateway::start(config_speaking(&[a.addr(), b.addr()], "1s", version)).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    // Round robin: the first request goes to a, and a takes a minute to answer.
    let slow = tokio::spawn(async move { h1(addr, request("GET", "/delay/60000", "h", "")).await });
    until_in_flight(&gw, a.addr(), 1).await;
    gw.deregister("app", &a.addr().to_string(), "alice").await.unwrap();
    let r = within("the aborted request", slow).await.unwrap();
    assert_eq!(r.status.as_u16(), 502);
    let ps = r.header("proxy-status");
    assert!(ps.contains("details=\"TargetDeregistered\""), "{ps}");
    let drained = audit_until(&gw, "drained", |e| e.action == Action::Drained).await;
    assert!(
        drained.details.contains("1 request(s) in flight, aborted with 502 TargetDeregistered"),
        "{}",
        drained.details
    );
    assert_eq!(drained.actor, "alice");
    // The retired target's connections are gone; the other target still serves.
    assert_eq!(backend_of(&within("request", get(addr, "/echo")).await), "b");
}

#[tokio::test]
async fn a_body_cut_by_the_deadline_is_recorded_as_target_deregistered() {
    let dir = std::env::temp_dir().join(format!("waygate-lifecycle-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let text = simple_config(&[a.addr()], "deregistration_delay = \"1s\"\n")
        + &format!("[access_log]\ndir = \"{}\"\nformat = \"json\"\n", dir.display());
    let gw = Gateway::start(waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap()).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let resp = within("head", send.send_request(request("GET", "/bytes/100000?hold=1", "h", ""))).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    gw.deregister("app", &a.addr().to_string(), "ops").await.unwrap();
    use http_body_util::BodyExt as _;
    assert!(within("cut body", resp.into_body().collect()).await.is_err(), "the body is cut, not completed");
    gw.shutdown(DEADLINE).await;
    let text = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["error_reason"], "TargetDeregistered", "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn registration_errors_name_what_is_wrong() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let gw = Gateway::start(config(&[a.addr()], "1s")).await.unwrap();
    let e = gw.register("nope", vec![spec(a.addr())], "ops").await.unwrap_err();
    assert_eq!(e, ControlError::UnknownGroup("nope".into()));
    let e = gw.deregister("app", "127.0.0.1:1", "ops").await.unwrap_err();
    assert!(matches!(e, ControlError::NotRegistered { .. }), "{e:?}");
    assert_eq!(e.to_string(), "target 127.0.0.1:1 is not registered in target group \"app\"");
    assert!(matches!(gw.deregister("app", "no-port", "ops").await.unwrap_err(), ControlError::Invalid(_)));
    // Registering what is registered changes nothing and records nothing.
    assert!(gw.register("app", vec![spec(a.addr())], "ops").await.unwrap().is_empty());
    assert!(gw.audit().since(0).iter().all(|e| e.action != Action::Register || e.actor == "config"));
}

#[tokio::test]
async fn registering_again_while_draining_puts_the_target_back() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let b = Backend::new("b").spawn(loopback()).await.unwrap();
    let gw = Gateway::start(config(&[a.addr(), b.addr()], "300s")).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    let slow = tokio::spawn(async move { h1(addr, request("GET", "/bytes/100000?hold=1", "h", "")).await });
    until_in_flight(&gw, a.addr(), 1).await;
    gw.deregister("app", &a.addr().to_string(), "ops").await.unwrap();
    let target = gw.draining()[0].target.clone();
    gw.register("app", vec![spec(a.addr())], "ops").await.unwrap();
    assert!(gw.draining().is_empty());
    let back =
        gw.runtime().groups["app"].targets.iter().find(|t| *t.authority == a.addr().to_string()).unwrap().clone();
    assert!(Arc::ptr_eq(&back, &target), "the same target, with its pool and in-flight count");
    assert_eq!(back.in_flight(), 1);
    a.release();
    assert_eq!(within("slow", slow).await.unwrap().status.as_u16(), 200);
    let mut backends = std::collections::HashSet::new();
    for _ in 0..10 {
        backends.insert(backend_of(&within("request", get(addr, "/echo")).await));
    }
    assert_eq!(backends.len(), 2, "a serves again: {backends:?}");
    assert!(gw.audit().since(0).iter().all(|e| e.action != Action::Drained));
}

#[tokio::test]
async fn reload_adds_keeps_and_removes_targets_and_keeps_api_registrations() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let b = Backend::new("b").spawn(loopback()).await.unwrap();
    let c = Backend::new("c").spawn(loopback()).await.unwrap();
    let api = Backend::new("api").spawn(loopback()).await.unwrap();
    let gw = Gateway::start(config(&[a.addr(), b.addr()], "300s")).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    gw.register("app", vec![spec(api.addr())], "ops").await.unwrap();
    let kept_b = gw.runtime().groups["app"].targets[1].clone();
    // a has a request in flight when the file drops it.
    let slow = tokio::spawn(async move { h1(addr, request("GET", "/bytes/100000?hold=1", "h", "")).await });
    until_in_flight(&gw, a.addr(), 1).await;
    gw.reload_by(config(&[b.addr(), c.addr()], "300s"), "signal").await.unwrap();
    let rt = gw.runtime();
    let now: Vec<&str> = rt.groups["app"].targets.iter().map(|t| &*t.authority).collect();
    assert_eq!(
        now,
        [b.addr().to_string(), api.addr().to_string(), c.addr().to_string()],
        "file changes on top of the API's"
    );
    assert!(Arc::ptr_eq(&rt.groups["app"].targets[0], &kept_b), "b kept with its pool and health");
    assert_eq!(gw.draining().len(), 1, "a drains");
    a.release();
    assert_eq!(within("slow", slow).await.unwrap().status.as_u16(), 200, "a's request finished");
    let events = gw.audit().since(0);
    let described: Vec<(Action, &str, Option<&str>)> =
        events.iter().map(|e| (e.action, e.actor.as_str(), e.target.as_deref())).collect();
    let (sa, sc, sapi) = (a.addr().to_string(), c.addr().to_string(), api.addr().to_string());
    let sb = b.addr().to_string();
    for expected in [
        (Action::Register, "config", Some(sb.as_str())),
        (Action::Register, "ops", Some(sapi.as_str())),
        (Action::Deregister, "signal", Some(sa.as_str())),
        (Action::Register, "signal", Some(sc.as_str())),
        (Action::Reload, "signal", None),
    ] {
        assert!(described.contains(&expected), "{expected:?} missing from {described:?}");
    }
    audit_until(&gw, "a drained", |e| e.action == Action::Drained && e.target.as_deref() == Some(&sa)).await;
}

#[tokio::test]
async fn health_transitions_are_audited() {
    let a = Backend::new("a").spawn(loopback()).await.unwrap();
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"app\"\n[[target_group]]\nname = \"app\"\ntargets = [\"{}\"]\n",
        a.addr()
    );
    let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    config.target_groups[0].health_check.interval = Duration::from_millis(50);
    config.target_groups[0].health_check.healthy_threshold = 2;
    let gw = Gateway::start(config).await.unwrap();
    let e = audit_until(&gw, "health", |e| e.action == Action::Health).await;
    assert_eq!(e.actor, "health-check");
    assert!(e.details.starts_with("initial -> healthy"), "{}", e.details);
}

/// The "done when": a fleet replaced one target at a time under load, zero client-visible errors.
#[tokio::test]
async fn a_fleet_is_replaced_under_load_without_an_error() {
    let old: Vec<_> = futures_util::future::join_all((0..3).map(|i| Backend::new(format!("old{i}")).spawn(loopback())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let new: Vec<_> = futures_util::future::join_all((0..3).map(|i| Backend::new(format!("new{i}")).spawn(loopback())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let addrs: Vec<SocketAddr> = old.iter().map(|b| b.addr()).collect();
    let gw = Gateway::start(config(&addrs, "30s")).await.unwrap();
    let addr = gw.local_addr("public").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            // Bounded: at most 5,000 requests per client, and the test's deadline.
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Slow-ish requests (20 ms at the target) so some are always in flight during a deregistration.
                let r = get(addr, "/delay/20").await;
                if r.status.is_success() { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let progress = |ok: Arc<AtomicU32>| async move {
        // Bounded by the deadline: at least 50 more successful requests before the next step.
        let (start, deadline) = (ok.load(Ordering::Relaxed), Instant::now() + DEADLINE);
        while ok.load(Ordering::Relaxed) < start + 50 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await; // polling interval, with the deadline above
        }
        assert!(ok.load(Ordering::Relaxed) >= start + 50, "requests kept succeeding between the steps");
    };
    for (o, n) in old.iter().zip(&new) {
        progress(ok.clone()).await;
        gw.register("app", vec![spec(n.addr())], "deploy").await.unwrap();
        gw.deregister("app", &o.addr().to_string(), "deploy").await.unwrap();
        let sa = o.addr().to_string();
        audit_until(&gw, "drained", |e| e.action == Action::Drained && e.target.as_deref() == Some(&sa)).await;
    }
    progress(ok.clone()).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        within("client", c).await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no client saw an error");
    assert!(ok.load(Ordering::Relaxed) >= 200, "the load was real: {}", ok.load(Ordering::Relaxed));
    let served_new: u64 = new.iter().map(|b| b.stats().requests_served()).sum();
    assert!(served_new > 0);
    let rt = gw.runtime();
    let now: Vec<String> = rt.groups["app"].targets.iter().map(|t| t.authority.to_string()).collect();
    assert_eq!(now, new.iter().map(|b| b.addr().to_string()).collect::<Vec<_>>());
}
