//! The access log and metrics as operators read them: every line the gateway writes parses with AWS's Athena
//! regex for ALB logs, its fields match what happened, N requests give N lines, and the metrics move the way
//! CloudWatch's ALB metrics would.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use waygate_faultlab::{Backend, Fault, Running, TestPki};
use waygate_proxy::Drain;

/// AWS's Athena table regex (reference/ALB.md §1), anchored, with the newer conn_trace_id column appended.
fn athena() -> regex::Regex {
    regex::Regex::new(&format!("^{} ?([^ ]*)$", waygate_telemetry::athena::ATHENA)).unwrap()
}

fn columns() -> Vec<&'static str> {
    waygate_telemetry::athena::COLUMNS.iter().copied().chain(["conn_trace_id"]).collect()
}

type Line = HashMap<&'static str, String>;

/// Every line in every file of `dir`, each parsed by the Athena regex (a line that does not parse fails the test).
fn read_lines(dir: &Path) -> Vec<Line> {
    let re = athena();
    let cols = columns();
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.contains("_elasticloadbalancing_") && name.ends_with(".log"), "ALB-style name: {name}");
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let caps = re.captures(line).unwrap_or_else(|| panic!("Athena regex rejects:\n{line}"));
            out.push(cols.iter().enumerate().map(|(i, c)| (*c, caps[i + 1].to_owned())).collect());
        }
    }
    out
}

fn log_config(dir: &Path, targets: &[std::net::SocketAddr], extra: &str, format: &str) -> String {
    simple_config(targets, extra).replacen(
        "[[listener]]",
        &format!("[access_log]\ndir = \"{}\"\nformat = \"{format}\"\n\n[[listener]]", dir.display()),
        1,
    )
}

/// Runs `requests` against a gateway logging to a fresh dir, shuts it down (flushing the log), returns lines
/// keyed by trace id.
async fn logged(targets: &[std::net::SocketAddr], extra: &str, paths: &[&str]) -> (Vec<String>, HashMap<String, Line>) {
    let dir = tempdir("alog");
    let (gw, addr) = gateway(&log_config(&dir, targets, extra, "alb")).await;
    let mut ids = Vec::new();
    for path in paths {
        let resp = within("request", h1(addr, request("GET", path, "app.example", Bytes::new()))).await;
        ids.push(resp.header("x-request-id").to_owned());
    }
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let lines = read_lines(&dir);
    assert_eq!(lines.len(), paths.len(), "one line per request");
    (ids, lines.into_iter().map(|l| (l["trace_id"].clone(), l)).collect())
}

#[tokio::test]
async fn a_relayed_request_is_one_complete_line() {
    let b = Backend::new("ok").spawn(loopback()).await.unwrap();
    let (ids, lines) = logged(&[b.addr()], "", &["/echo?q=1"]).await;
    let l = &lines[&ids[0]];
    assert_eq!(l["type"], "http");
    assert_eq!(l["elb"], "app/waygate/public");
    assert_eq!(l["client_ip"], "127.0.0.1");
    assert!(l["client_port"].parse::<u16>().is_ok_and(|p| p > 0), "client_port={}", l["client_port"]);
    assert_eq!(format!("{}:{}", l["target_ip"], l["target_port"]), b.addr().to_string());
    for t in ["request_processing_time", "target_processing_time", "response_processing_time"] {
        assert!(l[t].parse::<f64>().unwrap() >= 0.0, "{t}={}", l[t]);
    }
    assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("200", "200"));
    assert!(l["received_bytes"].parse::<u64>().unwrap() > 30 && l["sent_bytes"].parse::<u64>().unwrap() > 100);
    assert_eq!(l["request_verb"], "GET");
    assert!(l["request_url"].starts_with("http://app.example:") && l["request_url"].ends_with("/echo?q=1"));
    assert_eq!(l["request_proto"], "HTTP/1.1");
    assert!(
        l["target_group_arn"].starts_with("arn:aws:elasticloadbalancing:")
            && l["target_group_arn"].contains("targetgroup/app/")
    );
    assert_eq!(l["matched_rule_priority"], "0", "default action");
    assert_eq!(l["actions_executed"], "forward");
    assert_eq!(l["lambda_error_reason"], "-");
    assert_eq!(l["target_port_list"], b.addr().to_string());
    assert_eq!(l["target_status_code_list"], "200");
    assert!(l["conn_trace_id"].starts_with("TID_"));
    // The trace id's epoch seconds are the request's creation time (one clock reading for both).
    let hex = l["trace_id"].strip_prefix("Root=1-").and_then(|r| r.get(..8)).expect("Root=1-<8 hex>");
    let epoch = std::time::UNIX_EPOCH + Duration::from_secs(u64::from_str_radix(hex, 16).expect("hex"));
    assert_eq!(
        waygate_telemetry::iso8601(epoch)[..19],
        l["request_creation_time"][..19],
        "{} against {}",
        l["trace_id"],
        l["request_creation_time"]
    );
}

#[tokio::test]
async fn gateway_errors_show_cause_and_minus_ones() {
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let (ids, lines) = logged(&[refused.addr()], "retries = 0\n", &["/"]).await;
    let l = &lines[&ids[0]];
    assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("502", "-"));
    for t in ["request_processing_time", "target_processing_time", "response_processing_time"] {
        assert_eq!(l[t], "-1", "{t}: the request could not be sent");
    }
    assert_eq!(l["lambda_error_reason"], "TargetConnectionRefused");
    assert_eq!(l["target_status_code_list"], "-");

    let slow = Fault::SlowHead(Duration::from_secs(20)).spawn(loopback()).await.unwrap();
    let (ids, lines) = logged(&[slow.addr()], "retries = 0\nresponse_timeout = \"300ms\"\n", &["/"]).await;
    let l = &lines[&ids[0]];
    assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("504", "-"));
    assert_eq!(l["target_processing_time"], "-1");
    assert_eq!(l["lambda_error_reason"], "TargetResponseTimeout");
}

#[tokio::test]
async fn retries_list_every_attempt() {
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let good = Backend::new("good").spawn(loopback()).await.unwrap();
    let (ids, lines) = logged(&[refused.addr(), good.addr()], "retries = 1\n", &["/"]).await;
    let l = &lines[&ids[0]];
    assert_eq!(l["elb_status_code"], "200");
    assert_eq!(l["target_port_list"], format!("{},{}", refused.addr(), good.addr()));
    assert_eq!(l["target_status_code_list"], "-,200");
    assert_eq!(format!("{}:{}", l["target_ip"], l["target_port"]), good.addr().to_string(), "the last attempt");
    assert_eq!(l["lambda_error_reason"], "-", "the request succeeded");
}

#[tokio::test]
async fn targets_own_503_is_the_targets_in_both_columns() {
    let t = Fault::ServerError.spawn(loopback()).await.unwrap();
    let (ids, lines) = logged(&[t.addr()], "", &["/"]).await;
    let l = &lines[&ids[0]];
    assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("503", "503"));
    assert_eq!(l["lambda_error_reason"], "-");
}

#[tokio::test]
async fn every_lab_fault_writes_a_parseable_line_with_its_cause() {
    let dir = tempdir("alog-faults");
    let ca = TestPki::shared().write_files(&tempdir("alog-ca")).unwrap().ca;
    let mut running: Vec<(Fault, Running)> = Vec::new();
    let mut text = format!(
        "[access_log]\ndir = \"{}\"\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\nidle_timeout = \"1s\"\n",
        dir.display()
    );
    let mut groups = String::new();
    let faults = [
        Fault::Refuse,
        Fault::SynBlackhole,
        Fault::TlsBlackhole,
        Fault::TlsAlert,
        Fault::TlsSelfSigned,
        Fault::PlainHttpOnTls,
        Fault::CloseBeforeResponse,
        Fault::ResetBeforeResponse,
        Fault::MalformedHeader,
        Fault::HugeHead,
        Fault::SlowHead(Duration::from_secs(20)),
        Fault::TruncatedBody,
        Fault::StalledBody,
    ];
    for (i, f) in faults.into_iter().enumerate() {
        let r = f.spawn(loopback()).await.unwrap();
        text.push_str(&format!("[[listener.rule]]\npriority = {}\npath = \"/{i}\"\ntarget_group = \"g{i}\"\n", i + 1));
        let tls = if f.tls() {
            format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", ca.display())
        } else {
            String::new()
        };
        groups.push_str(&format!(
            "[[target_group]]\nname = \"g{i}\"\ntargets = [\"{}\"]\nretries = 0\nconnect_timeout = \"300ms\"\n\
             tls_handshake_timeout = \"300ms\"\nresponse_timeout = \"300ms\"\n{tls}",
            r.addr()
        ));
        running.push((f, r));
    }
    text.push_str(&groups);
    let (gw, addr) = gateway(&text).await;
    let mut expected = HashMap::new();
    for (i, (f, _)) in running.iter().enumerate() {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let resp =
            within("response", send.send_request(request("GET", &format!("/{i}"), "a", Bytes::new()))).await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let _ = within("body", http_body_util::BodyExt::collect(resp.into_body())).await;
        expected.insert(id, f.expected_cause());
    }
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let lines = read_lines(&dir);
    assert_eq!(lines.len(), expected.len());
    for l in &lines {
        assert_eq!(l["lambda_error_reason"], expected[&l["trace_id"]], "{l:?}");
    }
}

#[tokio::test]
async fn json_format_has_the_same_fields() {
    let b = Backend::new("ok").spawn(loopback()).await.unwrap();
    let dir = tempdir("jlog");
    let (gw, addr) = gateway(&log_config(&dir, &[b.addr()], "", "json")).await;
    let id = get(addr, "/").await.header("x-request-id").to_owned();
    gw.shutdown(Duration::from_secs(30)).await;
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(file).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["trace_id"], id);
    assert_eq!(v["elb_status_code"], 200);
    assert!(v["error_reason"].is_null(), "no error: {v}");
    for key in [
        "type",
        "time",
        "client_ip",
        "target_ip",
        "request_processing_time",
        "target_status_code_list",
        "conn_trace_id",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
}

/// N requests, including ones still in flight when shutdown starts, give exactly N lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_requests_give_n_lines_through_shutdown() {
    let b = Backend::new("ok").spawn(loopback()).await.unwrap();
    let dir = tempdir("nlog");
    let (gw, addr) = gateway(&log_config(&dir, &[b.addr()], "", "alb")).await;
    let n = 500;
    let requests = (0..n).map(|i| get(addr, if i % 10 == 0 { "/delay/50" } else { "/" }));
    let responses = within("load", futures_util::future::join_all(requests)).await;
    assert!(responses.iter().all(|r| r.status == 200));
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    assert_eq!(read_lines(&dir).len(), n);
}

/// CloudWatch semantics: a gateway 502 counts as an ELB response with its cause, never as a target response;
/// a target's own 503 only as a target 5xx; connect and TLS failures in their own counters.
#[tokio::test]
async fn metrics_separate_the_gateways_5xx_from_the_targets() {
    let refused = Fault::Refuse.spawn(loopback()).await.unwrap();
    let own = Fault::ServerError.spawn(loopback()).await.unwrap();
    let tls = Fault::TlsSelfSigned.spawn(loopback()).await.unwrap();
    let ca = TestPki::shared().write_files(&tempdir("m-ca")).unwrap().ca;
    let text = format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         [[listener.rule]]\npriority = 1\npath = \"/refused\"\ntarget_group = \"refused\"\n\
         [[listener.rule]]\npriority = 2\npath = \"/own\"\ntarget_group = \"own\"\n\
         [[listener.rule]]\npriority = 3\npath = \"/tls\"\ntarget_group = \"tls\"\n\
         [[target_group]]\nname = \"refused\"\nretries = 0\ntargets = [\"{}\"]\n\
         [[target_group]]\nname = \"own\"\ntargets = [\"{}\"]\n\
         [[target_group]]\nname = \"tls\"\nretries = 0\nprotocol = \"https\"\ntargets = [\"{}\"]\ntls = {{ ca = \"{}\" }}\n",
        refused.addr(),
        own.addr(),
        tls.addr(),
        ca.display()
    );
    let (gw, addr) = gateway(&text).await;
    for path in ["/refused", "/refused", "/own", "/tls", "/nowhere"] {
        get(addr, path).await;
    }
    let m = gw.metrics().encode();
    assert_eq!(
        metric(&m, "waygate_elb_responses_total", &[("code", "502"), ("cause", "TargetConnectionRefused")]),
        2.0,
        "{m}"
    );
    assert_eq!(metric(&m, "waygate_target_responses_total", &[("target_group", "refused")]), 0.0);
    assert_eq!(metric(&m, "waygate_target_responses_total", &[("target_group", "own"), ("class", "5xx")]), 1.0);
    assert_eq!(
        metric(&m, "waygate_elb_responses_total", &[("code", "503")]),
        0.0,
        "the target's 503 is not the gateway's"
    );
    assert_eq!(
        metric(
            &m,
            "waygate_target_connection_errors_total",
            &[("target_group", "refused"), ("cause", "TargetConnectionRefused")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "waygate_target_tls_negotiation_errors_total",
            &[("target_group", "tls"), ("cause", "TargetTlsCertificateInvalid")]
        ),
        1.0
    );
    assert_eq!(metric(&m, "waygate_elb_responses_total", &[("code", "404"), ("cause", "NoRoute")]), 1.0);
    assert_eq!(metric(&m, "waygate_requests_total", &[("listener", "public")]), 5.0);
    assert!(m.contains("waygate_target_response_time_seconds_bucket"), "histogram exposed");
}

/// A client that leaves before the response gets a 460 ClientClosedRequest line (ALB's code), with the attempt.
#[tokio::test]
async fn a_client_leaving_early_is_logged_as_460() {
    use tokio::io::AsyncWriteExt;
    let slow = Fault::SlowHead(Duration::from_secs(30)).spawn(loopback()).await.unwrap();
    let dir = tempdir("alog-460");
    let (gw, addr) = gateway(&log_config(&dir, &[slow.addr()], "response_timeout = \"60s\"\n", "alb")).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /leaving HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    within("target got the request", slow.stats().wait_until(|s| s.requests_served() >= 1)).await;
    drop(tcp);
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let lines = read_lines(&dir);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!((l["elb_status_code"].as_str(), l["target_status_code"].as_str()), ("460", "-"));
    assert_eq!(l["lambda_error_reason"], "ClientClosedRequest");
    assert!(l["request_url"].ends_with("/leaving"));
}

/// `received_bytes` counts the request as it came on the wire (ALB: "including the headers"): an HTTP/1 head
/// is counted byte for byte as the desync guard read it, odd spacing included, and a refused head counts its
/// own bytes (not the stand-in request the refusal is answered through).
#[tokio::test]
async fn received_bytes_are_the_heads_wire_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = Backend::new("ok").spawn(loopback()).await.unwrap();
    let dir = tempdir("alog-bytes");
    let (gw, addr) = gateway(&log_config(&dir, &[b.addr()], "", "alb")).await;
    let spaced: &[u8] = b"GET /spaced HTTP/1.1\r\nHost:app.example\r\nX-Pad:    wide    \r\nConnection: close\r\n\r\n";
    let refused: &[u8] =
        b"POST /refused HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    for head in [spaced, refused] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(head).await.unwrap();
        let mut resp = Vec::new();
        within("response", tcp.read_to_end(&mut resp)).await.unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&resp));
    }
    assert_eq!(gw.shutdown(Duration::from_secs(30)).await, Drain::Complete);
    let lines = read_lines(&dir);
    assert_eq!(lines.len(), 2);
    let by_status: HashMap<_, _> = lines.iter().map(|l| (l["elb_status_code"].clone(), l)).collect();
    assert_eq!(by_status["200"]["received_bytes"], spaced.len().to_string());
    assert_eq!(by_status["400"]["received_bytes"], refused.len().to_string());
}
