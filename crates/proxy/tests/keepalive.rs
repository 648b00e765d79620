//! The keep-alive race, avoided: liveness checks at checkout, one replay on a fresh connection for
//! idempotent requests, and learning the target's keep-alive. Non-idempotent requests are never replayed.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use waygate_faultlab::Fault;

/// A target that answers one request per connection and closes when the next one arrives: every reuse loses
/// the race. GETs and small PUTs are replayed on a fresh connection; the client never sees it.
#[tokio::test]
async fn idempotent_requests_survive_the_race_and_the_retry_is_logged() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let target = Fault::KeepAliveRace.spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[target.addr()], "retries = 0\n")).await;
    for i in 0..20 {
        let resp = within("GET", get(addr, "/")).await;
        assert_eq!(resp.status, 200, "GET #{i}: {}", resp.text());
    }
    let put = within("PUT", h1(addr, request("PUT", "/", "a", "small body"))).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let text = logs.text();
    let retries = text.lines().filter(|l| l.contains("WARN") && l.contains("cause=TargetKeepAliveRace")).count();
    assert!(retries >= 19, "each lost race is logged as a retried attempt ({retries}):\n{text}");
    assert!(text.contains("attempt=1/2"), "{text}");
    let post = within("POST", h1(addr, request("POST", "/", "a", "not idempotent"))).await;
    assert_eq!(post.status, 502, "a POST is never replayed");
}

/// A target that closes connections idle for 2 ms, far below the pool's idle timeout: 1,000 GETs from four
/// concurrent clients all succeed, whether the close was seen at checkout or raced the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_gets_against_a_short_keepalive_target_see_no_502() {
    let target = Fault::KeepAliveCloser(Duration::from_millis(2)).spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[target.addr()], "retries = 0\npool_idle_timeout = \"60s\"\n")).await;
    let workers = (0..4).map(|_| {
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..250 {
                let resp = get(addr, "/").await;
                if resp.status != 200 {
                    failures.push((resp.status, resp.header("proxy-status").to_owned()));
                }
            }
            failures
        })
    });
    for w in within("1000 requests", futures_util::future::join_all(workers)).await {
        let failures = w.unwrap();
        assert!(failures.is_empty(), "client-visible failures: {failures:?}");
    }
    assert!(target.stats().connections_closed() > 0, "the target did close idle connections");
    // Each connection found dead at checkout is counted, the same number in the metric and on the admin API.
    let metrics = gw.metrics().encode();
    let stale: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("waygate_target_stale_connections_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let view = gw.runtime().groups["app"].targets[0].upstream.keepalive.view();
    assert!(stale > 0.0, "stale connections were discarded and counted: {metrics}");
    assert_eq!(stale as u64, view.stale_discarded);
}

/// POSTs sent after the target closed the pooled connection go out on a live one: the liveness check at
/// checkout (or hyper's own close detection) keeps them off the dead socket.
#[tokio::test]
async fn posts_after_the_target_closed_are_not_sent_on_the_dead_connection() {
    let target = Fault::KeepAliveCloser(Duration::from_millis(20)).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[target.addr()], "retries = 0\n")).await;
    for i in 0..50u64 {
        let resp = within("POST", h1(addr, request("POST", "/", "a", Bytes::from_static(b"data")))).await;
        assert_eq!(resp.status, 200, "POST #{i}: {}", resp.header("proxy-status"));
        within("the target closed the idle connection", target.stats().wait_until(|s| s.connections_closed() > i))
            .await;
    }
}

/// A target that advertises `Keep-Alive: timeout=N` shorter than pool_idle_timeout is learned, and the
/// mis-tuning is reported once with the numbers.
#[tokio::test]
async fn advertised_keepalive_is_learned_and_mistuning_reported() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let backend = waygate_faultlab::Backend::new("ka").spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[backend.addr()], "pool_idle_timeout = \"60s\"\n")).await;
    assert_eq!(get(addr, "/keepalive/5").await.status, 200);
    let view = gw.runtime().groups["app"].targets[0].upstream.keepalive.view();
    assert_eq!(view.advertised, Some(Duration::from_secs(5)));
    assert_eq!(view.effective, Duration::from_millis(4500));
    assert_eq!(get(addr, "/keepalive/5").await.status, 200);
    let warnings: Vec<_> =
        logs.text().lines().filter(|l| l.contains("shorter than pool_idle_timeout")).map(str::to_owned).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("learned_ms=5000") && warnings[0].contains("pool_idle_timeout_ms=60000"),
        "{}",
        warnings[0]
    );
}

/// The target's keep-alive just below and just above the pool's idle timeout (200 ms, set on the validated model;
/// the file's minimum is 1 s): 1,000 GETs from 50 concurrent clients, whose gaps between requests straddle both
/// timers, all succeed. The gaps shape the workload (idle times around the timers); nothing waits on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_just_below_and_above_the_pool_timeout_sees_no_502() {
    for target_idle_ms in [150u64, 250] {
        let target = Fault::KeepAliveCloser(Duration::from_millis(target_idle_ms)).spawn(loopback()).await.unwrap();
        let text = simple_config(&[target.addr()], "retries = 0\n");
        let mut config = waygate_config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        config.target_groups[0].pool_idle_timeout = Duration::from_millis(200);
        let gw = waygate_proxy::Gateway::start(config).await.unwrap();
        let addr = gw.local_addr("public").await.unwrap();
        const GAPS_MS: [u64; 8] = [0, 140, 160, 190, 210, 240, 260, 5];
        let workers = (0..50u64).map(|w| {
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for i in 0..20u64 {
                    let gap = GAPS_MS[((w + i) % GAPS_MS.len() as u64) as usize];
                    tokio::time::sleep(Duration::from_millis(gap)).await;
                    let resp = get(addr, "/").await;
                    if resp.status != 200 {
                        failures.push(resp.header("proxy-status").to_owned());
                    }
                }
                failures
            })
        });
        for w in within("1000 paced requests", futures_util::future::join_all(workers)).await {
            let failures = w.unwrap();
            assert!(failures.is_empty(), "target keep-alive {target_idle_ms} ms: {failures:?}");
        }
        if target_idle_ms < 200 {
            assert!(target.stats().connections_closed() > 0, "the target closed idle connections");
        }
    }
}

/// Polls `f` (every 10 ms, under the test deadline) until it gives a value.
async fn until<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    within(what, async {
        loop {
            if let Some(v) = f() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A target that closes connections idle for 300 ms: the pool's watcher sees each close while the connection is
/// parked, with no further request on it, and lets the connection go. One close is only a candidate (a restart
/// closes idle connections too); the second, at another moment and the same idle age, teaches the target's
/// keep-alive. No request meets a closed connection on the way.
#[tokio::test]
async fn an_idle_close_is_learned_without_another_request() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let target = Fault::KeepAliveCloser(Duration::from_millis(300)).spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[target.addr()], "pool_idle_timeout = \"60s\"\n")).await;
    let upstream = &gw.runtime().groups["app"].targets[0].upstream;
    let started = std::time::Instant::now();
    assert_eq!(get(addr, "/").await.status, 200);
    let candidate =
        until("the first idle close to be judged", || upstream.keepalive.view().observed_close_candidate).await;
    assert!(candidate <= started.elapsed(), "an idle age, measured while parked: {candidate:?}");
    assert_eq!(upstream.idle_connections(), 0, "the closed connection left the pool");
    assert_eq!(upstream.keepalive.view().observed_close, None, "one close teaches nothing");
    assert_eq!(upstream.keepalive.effective(), Duration::from_secs(60));

    assert_eq!(get(addr, "/").await.status, 200);
    let learned =
        until("the second idle close to corroborate the first", || upstream.keepalive.view().observed_close).await;
    assert!(learned <= candidate, "the shorter of the pair: {learned:?}, {candidate:?}");
    assert!(learned >= Duration::from_millis(200), "the target's 300 ms, seen from the gateway: {learned:?}");
    assert!(upstream.keepalive.effective() < Duration::from_secs(60));
    assert_eq!(upstream.keepalive.view().observed_close_candidate, None, "used up");
    within("the second closed connection to leave the pool", async {
        while upstream.idle_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(upstream.keepalive.view().stale_discarded, 2);
    assert_eq!(target.stats().connections_accepted(), 2, "each request on a connection of its own");
    let text = logs.text();
    let warnings: Vec<_> = text.lines().filter(|l| l.contains("shorter than pool_idle_timeout")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains(&format!("learned_ms={}", learned.as_millis())), "{}", warnings[0]);
    assert!(!text.contains("cause=TargetKeepAliveRace"), "no request met a closed connection: {text}");
}

/// A target restarted under pooled connections of different idle ages closes them all at one moment. That is no
/// keep-alive timeout: nothing is learned and no WARN line blames the target's keep-alive (the bench's nginx,
/// restarted, once taught 52.6 s from a single such close and warned about it).
#[tokio::test]
async fn a_restart_closing_idle_connections_of_different_ages_teaches_nothing() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let backend = waygate_faultlab::Backend::new("restarted").spawn(loopback()).await.unwrap();
    let (gw, addr) = gateway(&simple_config(&[backend.addr()], "pool_idle_timeout = \"60s\"\n")).await;
    let upstream = &gw.runtime().groups["app"].targets[0].upstream;
    // Three requests at once, so three upstream connections, answered 0, 500 and 1,000 ms later: parked at
    // different moments, their idle ages differ by more than a tenth when the target goes (unless that takes
    // over 9 s). The delays shape the ages; nothing waits on them.
    let paths = [0u64, 500, 1000].map(|ms| format!("/delay/{ms}"));
    let gets = paths.iter().map(|path| get(addr, path));
    for resp in within("three delayed GETs", futures_util::future::join_all(gets)).await {
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(upstream.idle_connections(), 3);
    backend.shutdown().await;
    let restart = until("the closes to be judged", || {
        logs.text().lines().find(|l| l.contains("nothing learned")).map(str::to_owned)
    })
    .await;
    assert!(restart.contains("closes=3") && restart.contains("INFO"), "{restart}");
    assert_eq!(upstream.idle_connections(), 0);
    let view = upstream.keepalive.view();
    assert_eq!((view.observed_close, view.observed_close_candidate), (None, None));
    assert_eq!(view.effective, Duration::from_secs(60));
    assert_eq!(upstream.keepalive.warning(), None);
    let text = logs.text();
    assert!(!text.contains("WARN"), "no warning: {text}");
}
