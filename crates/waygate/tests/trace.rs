//! Debug (trace) sessions against the real binary on loopback (`/api/v1/debug-sessions`, `waygate trace`):
//! each filter key, a refused target's exchange with its connect phase marked failed, a relayed exchange's
//! phases with its headers masked and its bodies cut at 4 KiB, max_exchanges, expiry, the cap of eight
//! capturing sessions, validation errors naming their field, the token, and the CLI end to end.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use waygate_faultlab::{Backend, Fault};

const TOKEN: &str = "tok-ops";

/// Listener `public`: `/broken*` to the refused target (no retry, no health check), `/flaky*` to it and `ok`
/// (one retry), the rest to `ok`; an admin token.
fn config(dir: &Path, refused: SocketAddr, ok: SocketAddr) -> (PathBuf, PathBuf) {
    let token = dir.join("admin.token");
    std::fs::write(&token, format!("ops {TOKEN}\n")).unwrap();
    let path = dir.join("waygate.toml");
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n\
         [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"ok\"\n\
         [[listener.rule]]\npriority = 1\npath = \"/broken*\"\ntarget_group = \"broken\"\n\
         [[listener.rule]]\npriority = 2\npath = \"/flaky*\"\ntarget_group = \"flaky\"\n\
         [[target_group]]\nname = \"broken\"\nretries = 0\ntargets = [\"{refused}\"]\n\
         [target_group.health_check]\nenabled = false\n\
         [[target_group]]\nname = \"flaky\"\nretries = 1\ntargets = [\"{refused}\", \"{ok}\"]\n\
         [target_group.health_check]\nenabled = false\n\
         [[target_group]]\nname = \"ok\"\ntargets = [\"{ok}\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    (path, token)
}

/// One HTTP/1.1 exchange on a fresh connection: `head` (request line and fields, without the blank line),
/// then `body`; the whole response as text.
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let length = if body.is_empty() { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    write!(tcp, "{head}\r\nHost: app.example\r\nConnection: close\r\n{length}\r\n").unwrap();
    tcp.write_all(body).unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).expect("read response");
    String::from_utf8_lossy(&out).into_owned()
}

/// An admin API call with the token (or `None`): the status and the JSON body (`null` when not JSON).
fn admin(addr: SocketAddr, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.map_or(String::new(), Value::to_string);
    let resp = send(addr, format!("{method} {path} HTTP/1.1\r\n{auth}").trim_end(), body.as_bytes());
    let status = resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {resp}"));
    let json = resp.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, json)
}

fn start(addr: SocketAddr, body: Value) -> String {
    let (status, v) = admin(addr, Some(TOKEN), "POST", "/api/v1/debug-sessions", Some(&body));
    assert_eq!(status, 201, "{body}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The session once it holds `n` exchanges (records reach the sessions as the exchange ends), polled with
/// a deadline.
fn captured(addr: SocketAddr, id: &str, n: usize) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, v) = admin(addr, Some(TOKEN), "GET", &format!("/api/v1/debug-sessions/{id}"), None);
        assert_eq!(status, 200, "{v}");
        if v["captured"].as_u64() == Some(n as u64) {
            return v;
        }
        assert!(Instant::now() < deadline, "session {id} never held {n} exchanges: {v}");
        std::thread::sleep(Duration::from_millis(20)); // polling the admin API, with a deadline
    }
}

fn phase_names(exchange: &Value) -> Vec<String> {
    exchange["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

fn phase<'a>(exchange: &'a Value, name: &str) -> &'a Value {
    let phases = exchange["phases"].as_array().unwrap();
    phases.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no phase {name}: {exchange}"))
}

fn header<'a>(list: &'a Value, name: &str) -> Option<&'a str> {
    list.as_array().unwrap().iter().find(|h| h[0] == name).and_then(|h| h[1].as_str())
}

#[test]
fn sessions_capture_what_their_filters_match() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("trace");
    let (config, _) = config(&dir, refused.addr(), ok.addr());
    let gw = Proc::start(&config);
    let (public, api) = (gw.listener("public"), gw.admin());
    gw.wait_line(&["ready"]);

    // The token is needed here as everywhere; validation errors name their field.
    assert_eq!(admin(api, None, "GET", "/api/v1/debug-sessions", None).0, 401);
    for (body, field) in [
        (json!({"filter": {"status": "6xx"}}), "filter.status"),
        (json!({"filter": {"cause": "Nope"}}), "filter.cause"),
        (json!({"max_exchanges": 0}), "max_exchanges"),
        (json!({"timeout": "2h"}), "timeout"),
        (json!({"filter": {"color": "red"}}), "color"),
    ] {
        let (status, v) = admin(api, Some(TOKEN), "POST", "/api/v1/debug-sessions", Some(&body));
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{body}: {v}");
    }
    assert_eq!(admin(api, Some(TOKEN), "GET", "/api/v1/debug-sessions/nope", None).0, 404);

    let failures = start(
        api,
        json!({"filter": {"path_prefix": "/broken", "method": "GET", "status": "5xx",
                          "cause": "TargetConnectionRefused", "target_group": "broken"}}),
    );
    let tagged = start(
        api,
        json!({"filter": {"header": {"name": "x-trace", "value": "on"}, "client_ip": "127.0.0.1",
                          "target_group": "ok"}, "max_exchanges": 3, "capture_body": true}),
    );
    let (status, v) = admin(api, Some(TOKEN), "GET", "/api/v1/debug-sessions", None);
    assert_eq!(status, 200);
    assert_eq!(v["debug_sessions"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        (v["debug_sessions"][0]["state"].as_str(), v["limits"]["max_sessions"].as_u64()),
        (Some("capturing"), Some(8))
    );

    // Neither matches: a POST to /broken (method), a request elsewhere (path) with the tag's wrong value.
    assert!(send(public, "POST /broken/x HTTP/1.1", b"x").starts_with("HTTP/1.1 502"));
    assert!(send(public, "GET / HTTP/1.1\r\nx-trace: off", b"").starts_with("HTTP/1.1 200"));
    let refused_resp = send(public, "GET /broken/x HTTP/1.1\r\nAuthorization: Bearer hunter2", b"");
    assert!(refused_resp.starts_with("HTTP/1.1 502"), "{refused_resp}");
    let refused_id = request_id(&refused_resp);

    // The refused exchange: routed, selected, and failed in connect, with nothing after but the answer.
    let v = captured(api, &failures, 1);
    let ex = &v["exchanges"][0];
    assert_eq!(
        (ex["exchange"]["request_id"].as_str(), ex["exchange"]["elb_status"].as_u64()),
        (Some(&*refused_id), Some(502))
    );
    let names = ["request_head", "desync_verdict", "route", "select", "connect", "respond", "end"];
    assert_eq!(phase_names(ex), names, "{ex}");
    assert!(phase(ex, "request_head")["start_ms"].as_f64().unwrap() <= 0.0, "read before the record began");
    assert!(phase(ex, "desync_verdict")["detail"].as_str().unwrap().starts_with("compliant"));
    let connect = phase(ex, "connect");
    assert_eq!((connect["failed"].as_bool(), connect["attempt"].as_u64()), (Some(true), Some(1)), "{connect}");
    assert!(connect["detail"].as_str().unwrap().starts_with("TargetConnectionRefused: "), "{connect}");
    assert!(phase(ex, "select")["detail"].as_str().unwrap().contains(&refused.addr().to_string()));
    assert!(phase(ex, "route")["detail"].as_str().unwrap().contains("rule priority 1"));
    assert_eq!(header(&ex["request_headers"], "authorization"), Some("<masked>"));
    assert!(ex["exchange"]["cause"]["name"] == "TargetConnectionRefused" && ex["retries"] == 0);

    // The tagged session: a small request, then one with bodies beyond the 4 KiB kept.
    let head = "GET /hello HTTP/1.1\r\nx-trace: on\r\nCookie: sid=secret\r\nX-Api-Key: k\r\nProxy-Authorization: p";
    assert!(send(public, head, b"").starts_with("HTTP/1.1 200"));
    let upload = vec![b'u'; 6000];
    let resp = send(public, "POST /upload HTTP/1.1\r\nx-trace: on", &upload);
    assert!(resp.starts_with("HTTP/1.1 200") && resp.contains("\"body_bytes\":6000"), "{resp}");
    assert!(send(public, "GET /bytes/5000 HTTP/1.1\r\nx-trace: on", b"").starts_with("HTTP/1.1 200"));
    assert!(send(public, "GET /bytes/10 HTTP/1.1\r\nx-trace: on", b"").starts_with("HTTP/1.1 200"));
    let v = captured(api, &tagged, 3);
    assert_eq!(v["state"], "full", "max_exchanges reached: {v}");
    let (small, big, download) = (&v["exchanges"][0], &v["exchanges"][1], &v["exchanges"][2]);
    for name in ["cookie", "x-api-key", "proxy-authorization"] {
        assert_eq!(header(&small["request_headers"], name), Some("<masked>"), "{name}");
    }
    assert_eq!(header(&small["request_headers"], "x-trace"), Some("on"));
    assert_eq!(header(&small["response_headers"], "x-backend"), Some("ok"));
    let names = phase_names(small);
    for want in ["route", "select", "request_sent", "response_head", "body", "end"] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert!(names.iter().any(|n| n == "connect" || n == "pool_checkout"), "{names:?}");
    assert!(small["phases"].as_array().unwrap().iter().all(|p| p["failed"] == false), "{small}");
    assert_eq!(small["connections"][0]["attempt"], 1);
    assert_eq!(small["connections"][0]["conn"]["remote"], ok.addr().to_string());
    let req_body = &big["request_body"];
    assert_eq!((req_body["total_bytes"].as_u64(), req_body["captured_bytes"].as_u64()), (Some(6000), Some(4096)));
    assert_eq!((req_body["truncated"].as_bool(), req_body["text"].as_str().map(str::len)), (Some(true), Some(4096)));
    assert_eq!(big["response_body"]["text"], "{\"body_bytes\":6000}", "{big}");
    assert_eq!(small["response_body"]["truncated"], false);
    let resp_body = &download["response_body"];
    assert_eq!((resp_body["total_bytes"].as_u64(), resp_body["captured_bytes"].as_u64()), (Some(5000), Some(4096)));
    assert_eq!(resp_body["truncated"], true);

    // Retries: of two requests to a group of the refused target and `ok`, one tries the refused one first
    // (round robin), fails in connect, and goes on to `ok`: both attempts' phases, in order.
    let flaky = start(api, json!({"filter": {"target_group": "flaky"}, "max_exchanges": 2}));
    for _ in 0..2 {
        assert!(send(public, "GET /flaky HTTP/1.1", b"").starts_with("HTTP/1.1 200"));
    }
    let v = captured(api, &flaky, 2);
    let retried =
        v["exchanges"].as_array().unwrap().iter().find(|e| e["retries"] == 1).unwrap_or_else(|| panic!("{v}"));
    let steps: Vec<(String, Option<u64>, bool)> = retried["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["attempt"].as_u64(), p["failed"].as_bool().unwrap()))
        .filter(|(n, _, _)| !matches!(n.as_str(), "request_head" | "desync_verdict" | "route"))
        .collect();
    let at = |n: &str, a: Option<u64>, f: bool| (n.to_owned(), a, f);
    assert_eq!(
        steps[..3],
        [at("select", Some(1), false), at("connect", Some(1), true), at("select", Some(2), false)],
        "{steps:?}"
    );
    assert_eq!(steps[steps.len() - 2..], [at("body", Some(2), false), at("end", None, false)], "{steps:?}");
    assert!(steps.contains(&at("response_head", Some(2), false)), "{steps:?}");
    assert_eq!(retried["exchange"]["elb_status"], 200);

    // A session that does not capture bodies has none.
    assert_eq!(small["request_body"]["total_bytes"], 0);
    assert!(retried["request_body"].is_null() && retried["response_body"].is_null(), "{retried}");

    // Expiry: a one-second session ends by itself.
    let short = start(api, json!({"timeout": "1s", "filter": {"path_prefix": "/never"}}));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, v) = admin(api, Some(TOKEN), "GET", &format!("/api/v1/debug-sessions/{short}"), None);
        if v["state"] == "expired" {
            assert!(v["ended"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {v}");
        std::thread::sleep(Duration::from_millis(50)); // polling the admin API, with a deadline
    }

    // Eight capturing at most: `failures` and seven more fill the list (the finished sessions make room), the
    // ninth is refused until one stops.
    let more: Vec<String> = (0..7).map(|_| start(api, json!({}))).collect();
    let (status, v) = admin(api, Some(TOKEN), "POST", "/api/v1/debug-sessions", Some(&json!({})));
    assert_eq!(status, 429, "{v}");
    assert!(v["error"].as_str().unwrap().contains("8 debug sessions"), "{v}");
    let (status, v) = admin(api, Some(TOKEN), "DELETE", &format!("/api/v1/debug-sessions/{}", more[0]), None);
    assert_eq!((status, v["id"].as_str()), (200, Some(more[0].as_str())));
    assert_eq!(admin(api, Some(TOKEN), "GET", &format!("/api/v1/debug-sessions/{}", more[0]), None).0, 404);
    start(api, json!({}));
}

#[test]
fn the_trace_cli_starts_shows_and_stops() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let refused = rt.block_on(Fault::Refuse.spawn(loopback())).unwrap();
    let ok = rt.block_on(Backend::new("ok").spawn(loopback())).unwrap();
    let dir = tempdir("trace-cli");
    let (config, token) = config(&dir, refused.addr(), ok.addr());
    let gw = Proc::start(&config);
    let (public, api) = (gw.listener("public"), gw.admin());
    gw.wait_line(&["ready"]);
    let trace = |args: &[&str]| admin_cli("trace", api, &token, args);

    let (code, _, err) = trace(&["start", "--status", "6xx"]);
    assert_eq!(code, 1);
    assert!(err.contains("filter.status"), "{err}");
    let (code, out, err) = trace(&["start", "--path", "/broken", "--status", "502", "--max", "1", "--timeout", "5m"]);
    assert_eq!(code, 0, "{err}");
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(out.contains("path_prefix=/broken status=502") && out.contains("waygate trace show"), "{out}");

    let (code, out, _) = trace(&["show", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("capturing, 0/1") && out.contains("Nothing captured yet"), "{out}");
    let resp = http_get(public, "/broken/cli");
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    let rid = request_id(&resp);
    captured(api, &id, 1);
    let (code, out, err) = trace(&["show", &id]);
    assert_eq!(code, 0, "{err}");
    for want in [
        format!("Debug session {id}: full, 1/1"),
        format!("Exchange 1/1: {rid} GET "),
        "status 502 (generated by the gateway), TargetConnectionRefused".to_owned(),
        "Timeline: 0 = request head read".to_owned(),
        "connect (attempt 1)".to_owned(),
        "✗ FAILED HERE  TargetConnectionRefused: ".to_owned(),
    ] {
        assert!(out.contains(&want), "no {want:?} in:\n{out}");
    }
    let (code, json_out, _) = trace(&["show", &id, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["exchanges"][0]["exchange"]["request_id"], rid);

    let (code, out, _) = trace(&["list"]);
    assert_eq!(code, 0);
    let line = out.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("full") && line.contains("1/1") && line.contains("path_prefix=/broken"), "{line}");

    let (code, out, err) = trace(&["stop", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("debug session {id} stopped (full, 1 exchange(s) captured)")), "{out}");
    let (code, _, err) = trace(&["show", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("no debug session") && err.contains("404"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert_eq!(admin_cli("trace", closed, &token, &["list"]).0, 2);
}

/// A slow upload is not the target's wait: the request body that streams on after the head was sent gets a
/// `request_body` phase up to its last byte, and `response_head` starts there. The target is a raw socket of the
/// test's, which lets the client send the body's second half only after the target has read the head, so the
/// phase's lower bound holds whatever the machine's speed.
#[test]
fn an_upload_is_a_phase_of_its_own() {
    use std::io::{BufRead, BufReader};
    const PAUSE: Duration = Duration::from_millis(300);
    let target = std::net::TcpListener::bind(loopback()).unwrap();
    let target_addr = target.local_addr().unwrap();
    let (head_read, on_head_read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (tcp, _) = target.accept().unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        head_read.send(()).unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut tcp = tcp;
        write!(tcp, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").unwrap();
    });
    let dir = tempdir("trace-upload");
    let token = dir.join("admin.token");
    std::fs::write(&token, format!("ops {TOKEN}\n")).unwrap();
    let config = dir.join("waygate.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n\
             [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"raw\"\n\
             [[target_group]]\nname = \"raw\"\nretries = 0\ntargets = [\"{target_addr}\"]\n\
             [target_group.health_check]\nenabled = false\n"
        ),
    )
    .unwrap();
    let gw = Proc::start(&config);
    let (public, api) = (gw.listener("public"), gw.admin());
    gw.wait_line(&["ready"]);
    let session = start(api, json!({"filter": {"path_prefix": "/upload"}}));

    // POST (not replayable, so it streams): the head and half the body, the rest once the target read the head.
    let mut tcp = TcpStream::connect(public).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(tcp, "POST /upload HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    on_head_read.recv_timeout(DEADLINE).expect("the target read the request head");
    std::thread::sleep(PAUSE); // the upload's pause, whose length the phase must cover (not a synchronisation)
    tcp.write_all(b"67890").unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200") && resp.ends_with("ok"), "{resp}");

    let v = captured(api, &session, 1);
    let ex = &v["exchanges"][0];
    let names = phase_names(ex);
    let at = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("no {n} in {names:?}"));
    assert_eq!(
        (at("request_body"), at("response_head")),
        (at("request_sent") + 1, at("request_sent") + 2),
        "{names:?}"
    );
    let body = phase(ex, "request_body");
    assert!(body["detail"].as_str().unwrap().starts_with("10 bytes"), "{body}");
    let ms = body["duration_ms"].as_f64().unwrap_or_else(|| panic!("no duration_ms: {body}"));
    assert!(ms >= PAUSE.as_millis() as f64, "the upload's pause is in request_body: {ex}");
    let (sent, head) = (phase(ex, "request_sent"), phase(ex, "response_head"));
    let end = |p: &Value| p["start_ms"].as_f64().unwrap() + p["duration_ms"].as_f64().unwrap();
    assert!((body["start_ms"].as_f64().unwrap() - end(sent)).abs() < 0.01, "end to end: {ex}");
    assert!((head["start_ms"].as_f64().unwrap() - end(body)).abs() < 0.01, "end to end: {ex}");
}
