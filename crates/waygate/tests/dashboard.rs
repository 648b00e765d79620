//! The dashboard in a real browser: Debian's headless Chromium loads `/dashboard` after a fault run, and the
//! rendered DOM must say what `/metrics` and the admin API say (gateway responses per cause, each target's
//! state, the firing alert), with no script error. A screenshot is kept at `target/dashboard.png` (under `CARGO_TARGET_DIR` when set).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use waygate_faultlab::{Backend, Fault};

/// Chromium, or why the test cannot run (a failure under WAYGATE_TEST_REQUIRE_ALL: CI installs it).
fn chromium() -> Option<&'static str> {
    let found = Command::new("sh").args(["-c", "command -v chromium"]).output().is_ok_and(|o| o.status.success());
    if found {
        return Some("chromium");
    }
    assert!(
        std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(),
        "dashboard test cannot run: chromium is not installed"
    );
    println!("SKIPPED dashboard_in_chromium: chromium is not installed (apt-get install chromium)");
    None
}

/// Runs headless Chromium on `url` with `args` (a fresh profile each time); returns (stdout, stderr).
fn run_chromium(bin: &str, url: &str, args: &[&str]) -> (String, String) {
    let profile = tempdir("chromium-profile");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            // Virtual time runs the page's first polls; fetches in flight hold it back until they finish.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50)); // polling the exit, with a deadline
    }
    let _ = std::fs::remove_dir_all(&profile);
    (reader.join().unwrap(), err_reader.join().unwrap())
}

/// The value of attribute `name` in the tag starting at `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// Every `<tag ...>` opening in `dom` with its following text up to the closing tag.
fn elements<'a>(dom: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag} ");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find(&open) {
        let end = rest[at..].find(&close).map_or(rest.len(), |e| at + e);
        out.push(&rest[at..end]);
        rest = &rest[end..];
    }
    out
}

/// `waygate_elb_responses_total` summed by (cause, code).
fn metric_counts(metrics: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("waygate_elb_responses_total{")) {
        let labels = &line[line.find('{').unwrap()..line.rfind('}').unwrap()];
        let get = |k: &str| attr(&labels.replace(['{', ','], " "), k).unwrap_or("").to_owned();
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *out.entry((get("cause"), get("code"))).or_default() += value as u64;
    }
    out
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn dashboard_in_chromium() {
    let Some(bin) = chromium() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("dashboard");
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
             default_target_group = \"ok\"\n[[listener.rule]]\npriority = 1\npath = \"/broken*\"\ntarget_group = \"broken\"\n\
             [[listener.rule]]\npriority = 2\npath = \"/gone\"\nfixed_response = {{ status = 404 }}\n\
             [[target_group]]\nname = \"broken\"\nretries = 0\ntargets = [\"{}\"]\n\
             [target_group.health_check]\nenabled = false\n\
             [[target_group]]\nname = \"ok\"\ntargets = [\"{}\"]\n\
             [target_group.health_check]\ninterval = \"5s\"\ntimeout = \"2s\"\nhealthy_threshold = 2\n\
             [[alert]]\nname = \"refused\"\nwhen = {{ cause = \"TargetConnectionRefused\" }}\nthreshold = 3\nwindow = \"5m\"\n\
             [[alert]]\npreset = \"gateway-5xx-ratio\"\n",
            refused.addr(),
            ok.addr()
        ),
    )
    .unwrap();
    let gw = Proc::start(&config);
    let (addr, admin): (SocketAddr, SocketAddr) = (gw.listener("public"), gw.admin());
    for _ in 0..4 {
        assert!(http_get(addr, "/broken").starts_with("HTTP/1.1 502"));
    }
    for _ in 0..3 {
        assert!(http_get(addr, "/").starts_with("HTTP/1.1 200"));
    }
    assert!(http_get(addr, "/gone").starts_with("HTTP/1.1 404"));
    // The page is judged once the rule fired and the healthy target passed its checks.
    let deadline = Instant::now() + DEADLINE;
    while !(http_get(admin, "/metrics").contains("waygate_alert_firing{alert=\"refused\"} 1")
        && http_get(admin, "/api/v1/target-groups").contains("\"healthy\""))
    {
        assert!(Instant::now() < deadline, "the alert did not fire or the target never became healthy");
        std::thread::sleep(Duration::from_millis(50)); // polling the API, with a deadline
    }

    let url = format!("http://{admin}/dashboard");
    let (dom, stderr) = run_chromium(bin, &url, &["--dump-dom"]);
    assert!(dom.contains("<header id=\"banner\" class=\"firing\">FIRING: refused"), "banner:\n{dom}");
    let polls = dom.split("data-polls=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("0");
    assert!(polls.parse::<u32>().unwrap_or(0) >= 1, "the page rendered the API's answer:\n{dom}");
    assert!(dom.contains("<pre id=\"errors\"></pre>"), "script errors on the page:\n{dom}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect();
    assert!(console.is_empty(), "console output:\n{}", console.join("\n"));

    // Counts per cause: what /metrics says.
    let want = metric_counts(body(&http_get(admin, "/metrics")));
    assert_eq!(want.get(&("TargetConnectionRefused".into(), "502".into())), Some(&4));
    let mut shown = BTreeMap::new();
    for row in elements(&dom, "tr").into_iter().filter(|r| r.contains("data-cause=")) {
        let count = row.split("<td class=\"count\">").nth(1).and_then(|r| r.split('<').next()).unwrap();
        shown.insert(
            (attr(row, "data-cause").unwrap().to_owned(), attr(row, "data-code").unwrap().to_owned()),
            count.parse::<u64>().unwrap(),
        );
    }
    assert_eq!(shown, want, "gateway responses per cause on the page vs /metrics");

    // Target states: what the API says.
    let api: serde_json::Value = serde_json::from_str(body(&http_get(admin, "/api/v1/target-groups"))).unwrap();
    let mut want_states = BTreeMap::new();
    for g in api["target_groups"].as_array().unwrap() {
        for t in g["targets"].as_array().unwrap() {
            let key = (g["name"].as_str().unwrap().to_owned(), t["address"].as_str().unwrap().to_owned());
            want_states.insert(key, t["state"].as_str().unwrap().to_owned());
        }
    }
    let mut shown_states = BTreeMap::new();
    for row in elements(&dom, "tr").into_iter().filter(|r| r.contains("data-target=")) {
        let key = (attr(row, "data-group").unwrap().to_owned(), attr(row, "data-target").unwrap().to_owned());
        shown_states.insert(key, attr(row, "data-state").unwrap().to_owned());
        // The state is in words, not only in colour.
        assert!(row.contains(&format!(">{}</span>", attr(row, "data-state").unwrap())), "{row}");
    }
    assert_eq!(shown_states, want_states);
    assert_eq!(want_states.values().filter(|s| *s == "healthy").count(), 1);

    // The firing alert names where to look.
    let alert = elements(&dom, "li").into_iter().find(|l| attr(l, "data-alert") == Some("refused")).expect("alert row");
    assert_eq!(attr(alert, "data-state"), Some("firing"));
    assert!(alert.contains("FIRING") && alert.contains("waygate explain Root=1-"), "{alert}");
    // Recent failures come from the flight recorder, each with its status and cause in words.
    let failure = elements(&dom, "li")
        .into_iter()
        .find(|l| attr(l, "data-request-id").is_some_and(|id| id.starts_with("Root=1-")))
        .expect("a recent failure");
    assert!(
        failure.contains("502 TargetConnectionRefused") && failure.contains("waygate explain Root=1-"),
        "{failure}"
    );
    // The chart draws requests and the refused target's 5xx.
    assert!(
        dom.contains("data-series=\"requests\"") && dom.contains("data-series=\"TargetConnectionRefused\""),
        "chart:\n{dom}"
    );
    let summary: serde_json::Value = serde_json::from_str(body(&http_get(admin, "/api/v1/summary"))).unwrap();
    assert!(!summary["history"].as_array().unwrap().is_empty(), "the admin thread samples the history: {summary}");

    // A screenshot for CI's artifacts.
    // Under the target directory in use (CARGO_TARGET_DIR may point elsewhere, and then ./target need not exist).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    std::fs::create_dir_all(&target).expect("the target directory");
    let shot = target.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(bin, &url, &[&format!("--screenshot={}", shot.display()), "--window-size=1280,1400"]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG at {}", shot.display());
    drop(rt);
}

/// With a token file the page has the API's auth; a browser, which cannot send a bearer token, gets a Basic
/// challenge and may send the token as the password.
#[test]
fn the_dashboard_has_the_apis_auth() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("dashboard-auth");
    std::fs::write(dir.join("admin.token"), "ops s3cret\n").unwrap();
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n[[listener]]\nname = \"public\"\n\
             bind = \"127.0.0.1:0\"\ndefault_target_group = \"ok\"\n[[target_group]]\nname = \"ok\"\ntargets = [\"{}\"]\n",
            ok.addr()
        ),
    )
    .unwrap();
    let gw = Proc::start(&config);
    let admin = gw.admin();
    let get = |path: &str, auth: Option<&str>| {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(admin).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(tcp, "GET {path} HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        out
    };
    let refused = get("/dashboard", None);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("www-authenticate: Bearer"), "{refused}");
    assert!(refused.contains("www-authenticate: Basic realm=\"waygate admin\""), "{refused}");
    // base64("ops:s3cret") and a wrong password.
    let page = get("/dashboard", Some("Basic b3BzOnMzY3JldA=="));
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<title>waygate dashboard</title>"), "{page}");
    assert!(get("/dashboard", Some("Basic b3BzOnMzY3JldQ==")).starts_with("HTTP/1.1 401"));
    // The API answers from the gateway once it is attached to the admin listener, a moment after that listener
    // is up: poll, with the deadline, before judging the answer.
    let deadline = std::time::Instant::now() + DEADLINE;
    let summary = loop {
        let summary = get("/api/v1/summary", Some("Basic b3BzOnMzY3JldA=="));
        if summary.starts_with("HTTP/1.1 200") || std::time::Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(std::time::Duration::from_millis(50)); // polling the API, with a deadline
    };
    assert!(summary.starts_with("HTTP/1.1 200"), "{summary}");
    assert!(get("/api/v1/alerts", Some("Bearer s3cret")).starts_with("HTTP/1.1 200"));
    drop(rt);
}
