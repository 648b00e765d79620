//! The gateway's own HTTP/1.1 client exchange against scripted targets on loopback: response framing (RFC
//! 9112 §6.3: close-delimited, HEAD, chunked with trailers), interim responses, connection reuse and when a
//! connection must not be reused, request body framing, and a target that answers an upload early.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the target read it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A target answering every request with `reply(method)`; `close` after the reply ends the connection.
struct Scripted {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What a scripted target sends back.
struct Reply {
    bytes: &'static [u8],
    close: bool,
    /// Answer as soon as the head is read, leaving the body unread.
    early: bool,
}

async fn scripted(reply: fn(&str) -> Reply) -> Scripted {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, s) = (accepts.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp, reply, s.clone()));
        }
    });
    Scripted { addr, accepts, seen }
}

async fn serve(mut tcp: TcpStream, reply: fn(&str) -> Reply, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until(&mut tcp, &mut buf, b"\r\n\r\n").await else { return };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let lower = head.to_ascii_lowercase();
        let r = reply(head.split(' ').next().unwrap_or(""));
        let mut body = Vec::new();
        if !r.early {
            if lower.contains("transfer-encoding: chunked") {
                loop {
                    let Some(end) = read_until(&mut tcp, &mut buf, b"\r\n").await else { return };
                    let size = usize::from_str_radix(std::str::from_utf8(&buf[..end - 2]).unwrap(), 16).unwrap();
                    buf.drain(..end);
                    if size == 0 {
                        let Some(end) = read_until(&mut tcp, &mut buf, b"\r\n").await else { return };
                        buf.drain(..end);
                        break;
                    }
                    while buf.len() < size + 2 {
                        if !fill(&mut tcp, &mut buf).await {
                            return;
                        }
                    }
                    body.extend(buf.drain(..size));
                    buf.drain(..2);
                }
            } else if let Some(len) = lower.split("content-length: ").nth(1) {
                let len: usize = len.split("\r\n").next().unwrap().parse().unwrap();
                while buf.len() < len {
                    if !fill(&mut tcp, &mut buf).await {
                        return;
                    }
                }
                body.extend(buf.drain(..len));
            }
        }
        seen.lock().unwrap().push(Seen { head, body });
        if tcp.write_all(r.bytes).await.is_err() {
            return;
        }
        if r.close {
            // FIN, then read until the gateway closes: closing with unread input would send RST instead.
            let _ = tcp.shutdown().await;
            let mut sink = [0u8; 8 * 1024];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
    }
}

async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8 * 1024];
    match tcp.read(&mut chunk).await {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

/// The end offset of the first `pat` in the buffer, reading more as needed; `None` at EOF.
async fn read_until(tcp: &mut TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(pat.len()).position(|w| w == pat) {
            return Some(i + pat.len());
        }
        if !fill(tcp, buf).await {
            return None;
        }
    }
}

/// Several requests in order on one client connection (so one gateway worker, and one pool slot, serves them).
async fn on_one_connection<B>(addr: SocketAddr, reqs: Vec<Request<B>>) -> Vec<(u16, Bytes)>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for req in reqs {
        let resp = within("response", send.send_request(req)).await.unwrap();
        let status = resp.status().as_u16();
        let body = within("body", resp.into_body().collect()).await.unwrap().to_bytes();
        out.push((status, body));
    }
    out
}

fn reply(bytes: &'static [u8]) -> Reply {
    Reply { bytes, close: false, early: false }
}

/// Two GETs on one client connection through a gateway in front of `target`: the responses, and how many
/// connections the target accepted for them.
async fn two_gets(target: &Scripted) -> (Vec<(u16, Bytes)>, usize) {
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    let got = on_one_connection(addr, vec![request("GET", "/", "a", ""), request("GET", "/", "a", "")]).await;
    (got, target.accepts.load(Ordering::SeqCst))
}

#[tokio::test]
async fn http10_close_delimited_body_is_relayed_and_the_connection_not_reused() {
    let target = scripted(|_| Reply { close: true, ..reply(b"HTTP/1.0 200 OK\r\nx-a: 1\r\n\r\nhello, world") }).await;
    let (got, accepts) = two_gets(&target).await;
    assert_eq!(got, vec![(200, Bytes::from("hello, world")); 2]);
    assert_eq!(accepts, 2, "a close-delimited body ends its connection");
}

#[tokio::test]
async fn keep_alive_is_reused_and_a_head_response_has_no_body() {
    let target = scripted(|method| match method {
        "HEAD" => reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        _ => reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    })
    .await;
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    let reqs = vec![request("HEAD", "/", "a", ""), request("GET", "/", "a", ""), request("GET", "/x?y=1", "a", "")];
    let got = on_one_connection(addr, reqs).await;
    assert_eq!(got, vec![(200, Bytes::new()), (200, Bytes::from("hello")), (200, Bytes::from("hello"))]);
    assert_eq!(target.accepts.load(Ordering::SeqCst), 1, "one upstream connection carried all three");
    let seen = target.seen.lock().unwrap().clone();
    assert!(seen[2].head.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "{}", seen[2].head);
    assert!(seen[0].head.to_ascii_lowercase().contains("host: a\r\n"), "{}", seen[0].head);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let target = scripted(|_| {
        reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
    })
    .await;
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    let resp = get(addr, "/").await;
    assert_eq!((resp.status.as_u16(), resp.text().as_str()), (200, "ok"));
}

#[tokio::test]
async fn bytes_after_the_body_keep_the_connection_out_of_the_pool() {
    let target = scripted(|_| reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK")).await;
    let (got, accepts) = two_gets(&target).await;
    assert_eq!(got, vec![(200, Bytes::from("ok")); 2]);
    assert_eq!(accepts, 2, "a connection with unread bytes is not reused");
}

#[tokio::test]
async fn chunked_response_is_decoded_for_an_http1_client() {
    let target = scripted(|_| {
        reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nx-sum: 1\r\n\r\n")
    })
    .await;
    let (got, accepts) = two_gets(&target).await;
    assert_eq!(got, vec![(200, Bytes::from("hello, world")); 2]);
    assert_eq!(accepts, 1, "a chunked body read whole leaves the connection reusable");
}

#[tokio::test]
async fn request_bodies_are_framed_for_the_target() {
    let target = scripted(|_| reply(b"HTTP/1.1 204 No Content\r\n\r\n")).await;
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    assert_eq!(h1(addr, request("POST", "/empty", "a", "")).await.status, 204);
    assert_eq!(h1(addr, request("PUT", "/sized", "a", "0123456789")).await.status, 204);
    // A client body of unknown length (chunked on the client side) is chunked to the target.
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
        Ok(Frame::data(Bytes::from("stream"))),
        Ok(Frame::data(Bytes::from(vec![b'x'; 40_000]))),
        Ok(Frame::data(Bytes::from("ed"))),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let req = Request::builder().method("POST").uri("/chunked").header("host", "a").body(body).unwrap();
    assert_eq!(on_one_connection(addr, vec![req]).await, vec![(204, Bytes::new())]);
    let seen = target.seen.lock().unwrap().clone();
    let by_path = |p: &str| seen.iter().find(|s| s.head.contains(&format!(" {p} "))).unwrap().clone();
    let empty = by_path("/empty");
    assert!(empty.head.to_ascii_lowercase().contains("content-length: 0\r\n"), "{}", empty.head);
    let sized = by_path("/sized");
    assert_eq!(
        (sized.body.as_slice(), sized.head.to_ascii_lowercase().contains("content-length: 10")),
        (&b"0123456789"[..], true)
    );
    let chunked = by_path("/chunked");
    assert!(chunked.head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{}", chunked.head);
    let mut want = b"stream".to_vec();
    want.extend(vec![b'x'; 40_000]);
    want.extend(b"ed");
    assert_eq!(chunked.body, want);
}

#[tokio::test]
async fn a_target_answering_an_upload_early_is_relayed() {
    let target = scripted(|_| Reply {
        bytes: b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!",
        close: true,
        early: true,
    })
    .await;
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    let resp = h1(addr, request("POST", "/upload", "a", vec![b'u'; 8 << 20])).await;
    assert_eq!((resp.status.as_u16(), resp.text().as_str()), (413, "big!"));
    assert!(resp.headers.get("proxy-status").is_none(), "the target's answer, not a gateway error");
}

/// A target's fields reach an HTTP/1.1 client as it sent them (their order and case, repeated ones apart, its
/// own Date kept) and an HTTP/2 client as a map; on both, its hop-by-hop fields (the fixed set and those its
/// `Connection` names) are gone, and its `x-request-id` gives way to the gateway's.
#[tokio::test]
async fn a_targets_fields_reach_either_client_as_sent_less_hop_by_hop() {
    let target = scripted(|_| {
        reply(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\
              X-Request-Id: target-made\r\nKeep-Alive: timeout=30\r\nset-cookie: b=2\r\n\
              Date: Sun, 06 Dec 2026 23:00:00 GMT\r\nContent-Length: 2\r\n\r\nok",
        )
    })
    .await;
    let (_gw, addr) = gateway(&simple_config(&[target.addr], "")).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let end = Box::pin(within("head", read_until(&mut tcp, &mut buf, b"\r\n\r\n"))).await.expect("a response head");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let lines: Vec<&str> = head.split("\r\n").skip(1).filter(|l| !l.is_empty()).collect();
    let named = |n: &str| lines.iter().filter(|l| l.to_ascii_lowercase().starts_with(&format!("{n}:"))).count();
    assert_eq!(
        lines.iter().filter(|l| !l.to_ascii_lowercase().starts_with("x-request-id:")).copied().collect::<Vec<_>>(),
        ["Set-Cookie: a=1", "set-cookie: b=2", "Date: Sun, 06 Dec 2026 23:00:00 GMT", "Content-Length: 2"],
        "{head}"
    );
    assert_eq!(named("x-request-id"), 1, "{head}");
    assert!(!head.contains("target-made"), "the gateway's id replaces the target's: {head}");

    let resp = h2_over(TcpStream::connect(addr).await.unwrap(), h2_request("http", "a", "/")).await;
    assert_eq!((resp.status.as_u16(), resp.text().as_str()), (200, "ok"));
    let cookies: Vec<_> = resp.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies, ["a=1", "b=2"], "{:?}", resp.headers);
    assert_eq!(resp.headers.get_all("x-request-id").iter().count(), 1, "{:?}", resp.headers);
    assert!(resp.header("x-request-id").starts_with("Root=1-"), "{:?}", resp.headers);
    assert_eq!(resp.header("date"), "Sun, 06 Dec 2026 23:00:00 GMT");
    for hop in ["x-hop", "keep-alive", "connection"] {
        assert!(!resp.headers.contains_key(hop), "{hop}: {:?}", resp.headers);
    }
}
