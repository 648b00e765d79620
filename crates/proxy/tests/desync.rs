//! Desync mitigation over raw TCP: a request-smuggling corpus (CL.TE, TE.CL, duplicate and conflicting
//! Content-Length, obfuscated Transfer-Encoding, bad URIs, bare LF) in each mode, asserting ALB's action
//! (status, connection kept or closed), the access log's classification fields, and the metric. In monitor
//! mode a request with both Transfer-Encoding and Content-Length is still served with `Connection: close`:
//! hyper's own defence, which monitor mode does not undo.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waygate_faultlab::Backend;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Served with this status; the connection stays open.
    Open(u16),
    /// Answered with this status; the connection is closed afterwards.
    Closed(u16),
}
use Expect::{Closed, Open};

struct Case {
    name: &'static str,
    raw: &'static [u8],
    class: &'static str,
    reason: &'static str,
    monitor: Expect,
    defensive: Expect,
    strictest: Expect,
}

const CORPUS: &[Case] = &[
    Case { name: "compliant", raw: b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", class: "-", reason: "-", monitor: Open(200), defensive: Open(200), strictest: Open(200) },
    Case { name: "cl.te", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", class: "Ambiguous", reason: "BothTeClPresent", monitor: Closed(200), defensive: Closed(200), strictest: Closed(400) },
    Case { name: "te.cl", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", class: "Ambiguous", reason: "BothTeClPresent", monitor: Closed(200), defensive: Closed(200), strictest: Closed(400) },
    Case { name: "duplicate-cl", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", class: "Ambiguous", reason: "DuplicateContentLength", monitor: Open(200), defensive: Closed(200), strictest: Closed(400) },
    Case { name: "conflicting-cl", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", class: "Severe", reason: "MultipleContentLength", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "signed-cl", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", class: "Severe", reason: "BadContentLength", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "te-space-before-colon", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", class: "Ambiguous", reason: "SuspiciousHeader", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "te-unknown-coding", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", class: "Severe", reason: "BadTransferEncoding", monitor: Closed(501), defensive: Closed(501), strictest: Closed(501) },
    Case { name: "te-chunked-twice", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", class: "Severe", reason: "MultipleTransferEncodingChunked", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "te-underscore", raw: b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", class: "Ambiguous", reason: "SuspiciousHeader", monitor: Open(200), defensive: Closed(200), strictest: Closed(400) },
    Case { name: "space-in-uri", raw: b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", class: "Acceptable", reason: "SpaceInUri", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "control-char-in-uri", raw: b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", class: "Ambiguous", reason: "AmbiguousUri", monitor: Closed(400), defensive: Closed(400), strictest: Closed(400) },
    Case { name: "bare-lf", raw: b"GET / HTTP/1.1\nHost: a\n\n", class: "Acceptable", reason: "NonCrLfLineTermination", monitor: Open(200), defensive: Open(200), strictest: Closed(400) },
    Case { name: "get-with-zero-cl", raw: b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", class: "Acceptable", reason: "GetHeadZeroContentLength", monitor: Open(200), defensive: Open(200), strictest: Closed(400) },
];

/// Reads one response (head and Content-Length body); returns (status, request id, head text).
async fn read_response(tcp: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = within("response head", tcp.read(&mut byte)).await.unwrap();
        assert!(n > 0, "closed before a response: {}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head[9..12].parse().unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
        })
    };
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    within("response body", tcp.read_exact(&mut body)).await.unwrap();
    (status, header("x-request-id").unwrap_or_default(), head)
}

async fn run_case(addr: SocketAddr, case: &Case, expect: Expect) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(case.raw).await.unwrap();
    let (status, id, head) = read_response(&mut tcp).await;
    match expect {
        Open(want) => {
            assert_eq!(status, want, "{}: {head}", case.name);
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
            let (next, _, _) = read_response(&mut tcp).await;
            assert_eq!(next, 200, "{}: the connection stays usable", case.name);
        }
        Closed(want) => {
            assert_eq!(status, want, "{}: {head}", case.name);
            if want >= 400 {
                assert!(
                    head.to_ascii_lowercase().contains("proxy-status: waygate"),
                    "{}: refusals carry a cause: {head}",
                    case.name
                );
            }
            let mut rest = [0u8; 64];
            let n = within("close", tcp.read(&mut rest)).await.unwrap_or(0);
            assert_eq!(n, 0, "{}: the connection is closed after the response", case.name);
        }
    }
    id
}

async fn check_mode(mode: &str, pick: fn(&Case) -> Expect) {
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let dir = tempdir(&format!("desync-{mode}"));
    let text = simple_config(&[backend.addr()], "").replacen(
        "[[listener]]",
        &format!("[access_log]\ndir = \"{}\"\n[[listener]]\ndesync_mitigation = \"{mode}\"", dir.display()),
        1,
    );
    let (gw, addr) = gateway(&text).await;
    let mut ids = HashMap::new();
    for case in CORPUS {
        ids.insert(run_case(addr, case, pick(case)).await, case);
    }
    let metrics = gw.metrics().encode();
    gw.shutdown(Duration::from_secs(30)).await;
    let mut seen = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path()).unwrap().lines() {
            let quoted: Vec<&str> = line.split('"').collect();
            // ... "classification" "classification_reason" conn_trace_id: the last quoted pair before the end.
            let (class, reason) = (quoted[quoted.len() - 4], quoted[quoted.len() - 2]);
            let Some(case) = ids.iter().find(|(id, _)| line.contains(id.as_str())).map(|(_, c)| c) else { continue };
            assert_eq!((class, reason), (case.class, case.reason), "{mode}/{}: {line}", case.name);
            seen += 1;
        }
    }
    assert_eq!(seen, CORPUS.len(), "{mode}: one classified line per corpus request");
    let severe: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("waygate_desync_noncompliant_requests_total{") && l.contains("Severe"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(severe, CORPUS.iter().filter(|c| c.class == "Severe").count() as f64, "{mode}: {metrics}");
}

#[tokio::test]
async fn monitor_mode() {
    check_mode("monitor", |c| c.monitor).await;
}

#[tokio::test]
async fn defensive_mode() {
    check_mode("defensive", |c| c.defensive).await;
}

#[tokio::test]
async fn strictest_mode() {
    check_mode("strictest", |c| c.strictest).await;
}

/// A partial request head that never completes gets 408 ClientRequestTimeout, with its cause: an HTTP/1 head,
/// and bytes that could still be the start of HTTP/2's preface (the protocol is not decided yet).
#[tokio::test]
async fn incomplete_head_times_out_with_408() {
    let backend = Backend::new("b").spawn(loopback()).await.unwrap();
    let text = simple_config(&[backend.addr()], "")
        .replace("default_target_group", "request_header_timeout = \"1s\"\ndefault_target_group");
    let (_gw, addr) = gateway(&text).await;
    for partial in [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], b"PRI * HTTP/2.0\r\n"] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(partial).await.unwrap();
        let (status, _, head) = read_response(&mut tcp).await;
        assert_eq!(status, 408, "{head}");
        assert!(head.contains("details=\"ClientRequestTimeout\""), "{head}");
    }
}
