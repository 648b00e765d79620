//! Rules (host and path wildcards, priorities, fixed responses, default action) and target selection.

mod common;

use std::collections::HashMap;

use common::*;
use waygate_faultlab::{Backend, Fault, Running};

async fn backends(names: &[&str]) -> Vec<Running> {
    let mut out = Vec::new();
    for name in names {
        out.push(Backend::new(*name).spawn(loopback()).await.unwrap());
    }
    out
}

#[tokio::test]
async fn rules_match_host_and_path_in_priority_order() {
    let b = backends(&["api", "static", "app"]).await;
    let text = format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
default_target_group = "app"

[[listener.rule]]
priority = 30
host = "*.wild.test"
path = "/te?pot"
fixed_response = {{ status = 418, body = "short and stout", content_type = "text/plain" }}

[[listener.rule]]
priority = 10
host = "api.example.com"
target_group = "api"

[[listener.rule]]
priority = 20
path = "/static/*"
target_group = "static"

[[target_group]]
name = "api"
targets = ["{}"]

[[target_group]]
name = "static"
targets = ["{}"]

[[target_group]]
name = "app"
targets = ["{}"]
"#,
        b[0].addr(),
        b[1].addr(),
        b[2].addr()
    );
    let (_gw, addr) = gateway(&text).await;
    let via = |host: &'static str, path: &'static str| async move {
        h1(addr, request("GET", path, host, bytes::Bytes::new())).await
    };
    assert_eq!(via("api.example.com", "/static/x.css").await.header("x-backend"), "api", "priority 10 wins over 20");
    assert_eq!(via("API.EXAMPLE.COM:8080", "/").await.header("x-backend"), "api", "host: case and port ignored");
    assert_eq!(via("other.test", "/static/x.css").await.header("x-backend"), "static");
    assert_eq!(via("other.test", "/Static/x.css").await.header("x-backend"), "app", "paths are case-sensitive");
    let tea = via("a.wild.test", "/teapot").await;
    assert_eq!((tea.status.as_u16(), tea.text().as_str()), (418, "short and stout"));
    assert!(tea.header("x-request-id").starts_with("Root=1-"));
    assert_eq!(via("a.wild.test", "/teaapot").await.header("x-backend"), "app", "? is exactly one character");
    assert_eq!(via("wild.test", "/teapot").await.header("x-backend"), "app");
}

#[tokio::test]
async fn no_matching_rule_and_no_default_is_404_no_route() {
    let b = backends(&["api"]).await;
    let text = format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n[[listener.rule]]\npriority = 1\npath = \"/api/*\"\n\
         target_group = \"api\"\n[[target_group]]\nname = \"api\"\ntargets = [\"{}\"]\n",
        b[0].addr()
    );
    let (_gw, addr) = gateway(&text).await;
    let resp = get(addr, "/elsewhere").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("proxy-status"), "waygate; error=destination_not_found; details=\"NoRoute\"");
    assert_eq!(get(addr, "/api/x").await.status, 200);
}

#[tokio::test]
async fn empty_target_group_is_503_no_registered_targets() {
    let (_gw, addr) = gateway(&simple_config(&[], "")).await;
    let resp = get(addr, "/").await;
    assert_eq!(resp.status, 503);
    assert!(resp.header("proxy-status").contains("details=\"NoRegisteredTargets\""));
}

async fn tally(addr: std::net::SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let resp = get(addr, "/").await;
        assert_eq!(resp.status, 200);
        *counts.entry(resp.header("x-backend").to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn round_robin_uses_every_target_evenly() {
    let b = backends(&["r1", "r2", "r3"]).await;
    let addrs: Vec<_> = b.iter().map(Running::addr).collect();
    let (_gw, addr) = gateway(&simple_config(&addrs, "")).await;
    let counts = tally(addr, 30).await;
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&c| c == 10), "sequential round robin is exact: {counts:?}");
}

#[tokio::test]
async fn least_outstanding_requests_uses_every_idle_target() {
    let b = backends(&["l1", "l2"]).await;
    let addrs: Vec<_> = b.iter().map(Running::addr).collect();
    let (_gw, addr) = gateway(&simple_config(&addrs, "algorithm = \"least_outstanding_requests\"\n")).await;
    let counts = tally(addr, 20).await;
    assert_eq!(counts.len(), 2, "ties rotate: {counts:?}");
}

#[tokio::test]
async fn weighted_random_honours_weights() {
    let b = backends(&["w1", "w3", "w0"]).await;
    let text = format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"app\"\n\
         [[target_group]]\nname = \"app\"\nalgorithm = \"weighted_random\"\n\
         targets = [{{ address = \"{}\", weight = 1 }}, {{ address = \"{}\", weight = 3 }}, {{ address = \"{}\", weight = 0 }}]\n",
        b[0].addr(),
        b[1].addr(),
        b[2].addr()
    );
    let (_gw, addr) = gateway(&text).await;
    let n = 2000;
    let counts = tally(addr, n).await;
    // Binomial(2000, 1/4): mean 500, sd 19.4. The band is over 5 sd each side: a false failure is ~1e-7.
    let w1 = counts.get("w1").copied().unwrap_or(0);
    assert!((400..=600).contains(&w1), "{counts:?}");
    assert_eq!(counts.get("w0"), None, "weight 0 is never chosen: {counts:?}");
    assert_eq!(w1 + counts["w3"], n);
}

#[tokio::test]
async fn refused_connect_is_retried_on_another_target() {
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let good = Backend::new("good").spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway(&simple_config(&[refused.addr(), good.addr()], "retries = 1\n")).await;
    for _ in 0..10 {
        let resp = get(addr, "/").await;
        assert_eq!(resp.status, 200, "connect failures are retried: nothing reached the target");
        assert_eq!(resp.header("x-backend"), "good");
    }
    let (_gw0, addr0) = gateway(&simple_config(&[refused.addr(), good.addr()], "retries = 0\n")).await;
    let statuses: Vec<u16> = futures_util::future::join_all((0..4).map(|_| get(addr0, "/")))
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert!(statuses.contains(&502), "without retries the refusal reaches the client: {statuses:?}");
}

/// HTTPS targets: verified against a configured CA with SNI, and `verify = false` for a self-signed one.
#[tokio::test]
async fn https_targets_verified_and_unverified() {
    let pki = waygate_faultlab::TestPki::shared();
    let files = pki.write_files(&tempdir("https-targets")).unwrap();
    let valid = Backend::new("tls-ok").tls(pki.valid()).spawn(loopback()).await.unwrap();
    let selfsigned = Backend::new("tls-self").tls(pki.self_signed()).spawn(loopback()).await.unwrap();
    let text = format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"verified\"\n\
         [[listener.rule]]\npriority = 1\npath = \"/self\"\ntarget_group = \"unverified\"\n\
         [[target_group]]\nname = \"verified\"\nprotocol = \"https\"\ntargets = [\"{}\"]\n\
         tls = {{ ca = \"{}\", sni = \"localhost\" }}\n[target_group.health_check]\nenabled = false\n\
         [[target_group]]\nname = \"unverified\"\nprotocol = \"https\"\ntargets = [\"{}\"]\ntls = {{ verify = false }}\n[target_group.health_check]\nenabled = false\n",
        valid.addr(),
        files.ca.display(),
        selfsigned.addr()
    );
    let (_gw, addr) = gateway(&text).await;
    let ok = get(addr, "/").await;
    assert_eq!((ok.status.as_u16(), ok.header("x-backend")), (200, "tls-ok"), "{}", ok.text());
    let selfie = get(addr, "/self").await;
    assert_eq!((selfie.status.as_u16(), selfie.header("x-backend")), (200, "tls-self"), "{}", selfie.text());
    // Reused over the pool: a second request on the verified group takes the pooled TLS connection.
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(valid.stats().connections_accepted(), 1, "the TLS connection was pooled and reused");
}
