//! The gateway's HTTP/2 client against a scripted raw target: frames written by hand, byte for byte, so that
//! each test can send what a real server library never would (DATA before HEADERS, a PUSH_PROMISE, trailers
//! without END_STREAM, a window past its ceiling) and check what RFC 9113 asks of the client. The target does
//! not use `waygate_h2wire`: the frames and the few HPACK representations it needs are encoded here, so the
//! tests stay independent of the code they check. Each test asserts what the HTTP/1.1 client observes (status,
//! body, the `proxy-status` cause) and, where the gateway must answer a frame, what the target received.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use waygate_faultlab::{H2Behaviour, H2Target};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

// Flags (RFC 9113 §6): END_STREAM and ACK share a bit.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

// Error codes (RFC 9113 §7).
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;

/// The largest frame payload the gateway accepts: its SETTINGS_MAX_FRAME_SIZE is the default (RFC 9113 §4.2).
const MAX_FRAME: usize = 16_384;

/// The flow-control window's ceiling (RFC 9113 §6.9.1), also the mask of a 31-bit stream identifier.
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// HPACK: `:status 200` from the static table (RFC 7541 Appendix A, index 8).
const STATUS_200: u8 = 0x88;

/// The PING payload the target sends.
const PING_DATA: &[u8; 8] = b"scripted";

/// A frame as the target read it from the gateway.
#[derive(Debug, Clone)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// The 32-bit word at `at` in the payload (an error code, a stream identifier).
    fn word(&self, at: usize) -> Option<u32> {
        self.payload.get(at..at + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    }

    /// A GOAWAY's error code.
    fn goaway_code(&self) -> Option<u32> {
        if self.kind == GOAWAY { self.word(4) } else { None }
    }

    /// An RST_STREAM's stream and error code.
    fn reset(&self) -> Option<(u32, u32)> {
        if self.kind == RST_STREAM { self.word(0).map(|code| (self.stream, code)) } else { None }
    }
}

/// One frame: the 9-byte head (24-bit length, type, flags, 31-bit stream identifier) and the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 1 << 24, "a frame's length has 24 bits");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header block in one HEADERS frame (END_HEADERS set), with END_STREAM when `end_stream`.
fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    frame(HEADERS, END_HEADERS | if end_stream { END_STREAM } else { 0 }, stream, block)
}

/// An HPACK integer (RFC 7541 §5.1) with a `prefix`-bit prefix, under `high` (the representation's bits).
fn hpack_int(prefix: u32, high: u8, value: usize) -> Vec<u8> {
    let max = (1usize << prefix) - 1;
    if value < max {
        return vec![high | value as u8];
    }
    let mut out = vec![high | max as u8];
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// HPACK: a literal field without indexing, with a new name, no Huffman coding (RFC 7541 §6.2.2).
fn literal(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend(hpack_int(7, 0, name.len()));
    out.extend_from_slice(name.as_bytes());
    out.extend(hpack_int(7, 0, value.len()));
    out.extend_from_slice(value);
    out
}

/// HPACK: `:status` with a three-digit `code`, a literal without indexing whose name is the static table's
/// index 8.
fn status(code: &str) -> Vec<u8> {
    let mut out = vec![0x08, 0x03];
    out.extend_from_slice(code.as_bytes());
    out
}

/// HPACK: `:status 200` and `content-length: len`.
fn ok_with_length(len: usize) -> Vec<u8> {
    let mut block = vec![STATUS_200];
    block.extend(literal("content-length", len.to_string().as_bytes()));
    block
}

/// What the target does for one request, in order.
enum Step {
    /// Writes these bytes to the gateway.
    Write(Vec<u8>),
    /// Waits until the gateway sends a frame that passes this check.
    Await(fn(&Frame) -> bool),
    /// Closes the connection: the FIN goes out, and what the gateway still sends is read to its end.
    Close,
}

/// The steps for the request on a stream.
type Script = Arc<dyn Fn(u32) -> Vec<Step> + Send + Sync>;

/// A scripted raw HTTP/2 target on 127.0.0.1.
struct Scripted {
    addr: SocketAddr,
    /// Every frame the gateway sent, on any connection, in order.
    frames: mpsc::UnboundedReceiver<Frame>,
}

impl Scripted {
    async fn spawn(script: impl Fn(u32) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, script.clone(), seen.clone()));
            }
        });
        Self { addr, frames }
    }

    /// The first frame from the gateway that passes `check`, within the deadline.
    async fn received(&mut self, what: &str, check: impl Fn(&Frame) -> bool) -> Frame {
        within(what, async {
            loop {
                let f = self.frames.recv().await.unwrap_or_else(|| panic!("the target stopped before {what}"));
                if check(&f) {
                    return f;
                }
            }
        })
        .await
    }
}

/// One connection: the preface and SETTINGS exchanged, then each request's script once its END_STREAM came.
async fn serve(tcp: TcpStream, script: Script, seen: mpsc::UnboundedSender<Frame>) {
    let (mut rd, mut wr) = tcp.into_split();
    let (to_script, mut from_reader) = mpsc::unbounded_channel();
    // The reader takes everything the gateway sends, to its end, so the gateway's writes never block.
    tokio::spawn(async move {
        let mut preface = [0u8; 24];
        if rd.read_exact(&mut preface).await.is_err() || &preface != PREFACE {
            return;
        }
        while let Some(f) = read_frame(&mut rd).await {
            let _ = seen.send(f.clone());
            let _ = to_script.send(f);
        }
    });
    // The gateway's SETTINGS, then the target's (empty) and the ACK of the gateway's.
    if !wait_for(&mut from_reader, |f| f.kind == SETTINGS && f.flags & ACK == 0).await {
        return;
    }
    let mut hello = frame(SETTINGS, 0, 0, &[]);
    hello.extend(frame(SETTINGS, ACK, 0, &[]));
    if wr.write_all(&hello).await.is_err() {
        return;
    }
    while let Some(f) = from_reader.recv().await {
        if !matches!(f.kind, HEADERS | DATA) || f.flags & END_STREAM == 0 {
            continue;
        }
        for step in script(f.stream) {
            match step {
                Step::Write(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Await(check) => {
                    if !wait_for(&mut from_reader, check).await {
                        return;
                    }
                }
                // Dropping the write half sends the FIN.
                Step::Close => return,
            }
        }
    }
}

/// Waits for a frame that passes `check`; false when the connection ended first.
async fn wait_for(frames: &mut mpsc::UnboundedReceiver<Frame>, check: impl Fn(&Frame) -> bool) -> bool {
    while let Some(f) = frames.recv().await {
        if check(&f) {
            return true;
        }
    }
    false
}

async fn read_frame(rd: &mut OwnedReadHalf) -> Option<Frame> {
    let mut head = [0u8; 9];
    rd.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    rd.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_WINDOW;
    Some(Frame { kind: head[3], flags: head[4], stream, payload })
}

/// A gateway in front of `targets`, spoken to over HTTP/2, with `extra` TOML for the group.
async fn gateway_to(targets: &[SocketAddr], extra: &str) -> (waygate_proxy::Gateway, SocketAddr) {
    gateway(&simple_config(targets, &format!("protocol_version = \"http2\"\n{extra}"))).await
}

/// A GET through a gateway to `target` alone (no retry) gets 502 with `cause`; the gateway is returned so that
/// the target can still be checked while it runs.
async fn fails_with(target: SocketAddr, cause: &str) -> waygate_proxy::Gateway {
    let (gw, addr) = gateway_to(&[target], "retries = 0\n").await;
    let resp = within("the response", h1(addr, request("GET", "/", "a", ""))).await;
    assert_eq!(resp.status, 502, "{:?}", resp.headers);
    assert!(resp.header("proxy-status").contains(cause), "{:?}", resp.headers);
    gw
}

/// What an HTTP/1.1 client saw: the head, then the body whole or how it failed.
struct Seen {
    status: u16,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// One request over a new HTTP/1.1 connection, its body read to its end or its failure.
async fn exchange(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> Seen {
    let tcp = TcpStream::connect(addr).await.expect("connect to gateway");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("h1 handshake");
    tokio::spawn(conn);
    let resp = send.send_request(req).await.expect("a response head");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string());
    Seen { status: parts.status.as_u16(), headers: parts.headers, body }
}

/// Checks that a response the target broke after its head never reached the client as a clean one: either the
/// gateway saw the fault before it relayed the head (502, the cause in `proxy-status`), or the client got the head
/// and then a body that fails, the cause in the system log with the stream error's code.
fn assert_broken(seen: &Seen, capture: &LogCapture, what: &str) {
    if seen.status == 502 {
        assert!(seen.header("proxy-status").contains("TargetHttp2ProtocolError"), "{what}: {:?}", seen.headers);
        return;
    }
    assert_eq!(seen.status, 200, "{what}: the target's head, or a 502: {:?}", seen.headers);
    assert!(seen.body.is_err(), "{what}: the client must see the body fail, not {:?}", seen.body);
    assert_eq!(seen.header("proxy-status"), "", "{what}: the head is the target's");
    let line = capture.line(seen.header("x-request-id"), "TargetResponseIncomplete");
    assert!(line.contains("PROTOCOL_ERROR"), "{what}: the log names the stream error: {line}");
}

/// 1. An informational head (`100`, `103`; HEADERS without END_STREAM) comes before the final one: the client gets
/// the final `200` and its body (RFC 9113 §8.1). The target closes once it has answered: what came whole stays whole.
#[tokio::test]
async fn an_informational_head_before_the_final_one_is_not_the_answer() {
    for code in ["100", "103"] {
        let target = Scripted::spawn(move |s| {
            let mut out = headers(s, &status(code), false);
            out.extend(headers(s, &ok_with_length(5), false));
            out.extend(frame(DATA, END_STREAM, s, b"hello"));
            vec![Step::Write(out), Step::Close]
        })
        .await;
        let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
        let seen = within("the response", exchange(addr, request("GET", "/", "a", ""))).await;
        assert_eq!(seen.status, 200, "after {code}: {:?}", seen.headers);
        assert_eq!(seen.body.as_deref(), Ok(&b"hello"[..]), "after {code}");
        assert_eq!(seen.header("proxy-status"), "", "after {code}: a success names no cause");
    }
}

/// A `101` has no place in HTTP/2 (RFC 9113 §8.6): the stream is malformed, 502 TargetHttp2ProtocolError.
#[tokio::test]
async fn a_101_head_is_a_protocol_error() {
    let mut target = Scripted::spawn(|s| vec![Step::Write(headers(s, &status("101"), false))]).await;
    let _gw = fails_with(target.addr, "TargetHttp2ProtocolError").await;
    let reset = target.received("the stream's RST_STREAM", |f| f.kind == RST_STREAM).await;
    assert_eq!(reset.reset(), Some((1, PROTOCOL_ERROR)));
}

/// A Content-Length counts no body after a HEAD request, nor on a 204 or 304 (RFC 9110 §8.6): a head that ends
/// the stream with `content-length: 10` is then a whole answer, not a short body.
#[tokio::test]
async fn a_content_length_counts_no_body_after_head_or_on_204_and_304() {
    for (method, code) in [("HEAD", "200"), ("GET", "204"), ("GET", "304")] {
        let target = Scripted::spawn(move |s| {
            let mut block = status(code);
            block.extend(literal("content-length", b"10"));
            vec![Step::Write(headers(s, &block, true))]
        })
        .await;
        let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
        let seen = within("the response", exchange(addr, request(method, "/", "a", ""))).await;
        assert_eq!(seen.status.to_string(), code, "{method} {code}: {:?}", seen.headers);
        assert_eq!(seen.header("proxy-status"), "", "{method} {code}: a whole answer names no cause");
    }
}

/// 2. DATA before any HEADERS on the stream: a malformed response (RFC 9113 §8.1), a stream error
/// PROTOCOL_ERROR: the client gets 502, and the target gets the stream's RST_STREAM.
#[tokio::test]
async fn data_before_the_response_head_is_a_protocol_error() {
    let mut target = Scripted::spawn(|s| vec![Step::Write(frame(DATA, END_STREAM, s, b"early"))]).await;
    let _gw = fails_with(target.addr, "TargetHttp2ProtocolError").await;
    let reset = target.received("the stream's RST_STREAM", |f| f.kind == RST_STREAM).await;
    assert_eq!(reset.reset(), Some((1, PROTOCOL_ERROR)));
}

/// 3. `content-length: 10` and fewer (or more) DATA bytes: a malformed response (RFC 9113 §8.1.1), a stream
/// error PROTOCOL_ERROR, and an intermediary must not forward it: the client never gets a complete body presented
/// as success. The gateway relays the head as it comes, so the client sees the 200 and then a body that fails.
#[tokio::test]
async fn a_body_shorter_or_longer_than_its_content_length_is_never_complete() {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let short: fn(u32) -> Vec<Step> = |s| {
        let mut out = headers(s, &ok_with_length(10), false);
        out.extend(frame(DATA, END_STREAM, s, b"12345"));
        vec![Step::Write(out)]
    };
    let short_then_trailers: fn(u32) -> Vec<Step> = |s| {
        let mut out = headers(s, &ok_with_length(10), false);
        out.extend(frame(DATA, 0, s, b"12345"));
        out.extend(headers(s, &literal("x-trailer", b"t"), true));
        vec![Step::Write(out)]
    };
    let long: fn(u32) -> Vec<Step> = |s| {
        let mut out = headers(s, &ok_with_length(10), false);
        out.extend(frame(DATA, END_STREAM, s, b"12345678901"));
        vec![Step::Write(out)]
    };
    for (name, script) in [("5 bytes", short), ("5 bytes then trailers", short_then_trailers), ("11 bytes", long)] {
        let mut target = Scripted::spawn(script).await;
        let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
        let seen = within("the response", exchange(addr, request("GET", "/", "a", ""))).await;
        assert_broken(&seen, &capture, name);
        let reset = target.received("the stream's RST_STREAM", |f| f.kind == RST_STREAM).await;
        assert_eq!(reset.reset(), Some((1, PROTOCOL_ERROR)), "{name}");
    }
}

/// 4. A second HEADERS after the response head without END_STREAM: trailers must end the stream (RFC 9113
/// §8.1), so the response is malformed, a stream error PROTOCOL_ERROR; the client does not get a clean response
/// (the head, relayed before the second HEADERS came, is followed by a body that fails).
#[tokio::test]
async fn trailers_without_end_stream_break_the_response() {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let mut target = Scripted::spawn(|s| {
        let mut block = vec![STATUS_200];
        block.extend(literal("x-field", b"value"));
        let mut out = headers(s, &block, false);
        out.extend(headers(s, &literal("x-trailer", b"t"), false));
        vec![Step::Write(out)]
    })
    .await;
    let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
    let seen = within("the response", exchange(addr, request("GET", "/", "a", ""))).await;
    assert_broken(&seen, &capture, "trailers without END_STREAM");
    if seen.status == 200 {
        assert_eq!(seen.header("x-field"), "value", "the head's regular field was relayed");
    }
    let reset = target.received("the stream's RST_STREAM", |f| f.kind == RST_STREAM).await;
    assert_eq!(reset.reset(), Some((1, PROTOCOL_ERROR)));
}

/// 5. GOAWAY with last_stream_id 0 while stream 1 waits for its answer: the target did not process it (RFC 9113
/// §6.8, §8.7), so even a POST is retried on the next target, which answers it.
#[tokio::test]
async fn a_stream_above_a_goaways_last_stream_id_is_retried_on_another_target() {
    let mut target = Scripted::spawn(|_| {
        let mut goaway = 0u32.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes());
        vec![Step::Write(frame(GOAWAY, 0, 0, &goaway))]
    })
    .await;
    let good = H2Target::new(H2Behaviour::Echo).spawn(loopback()).await.unwrap();
    let (_gw, addr) = gateway_to(&[target.addr, good.addr()], "retries = 1\n").await;
    let resp = within("the response", h1(addr, request("POST", "/", "a", "payload"))).await;
    assert_eq!(resp.status, 200, "{:?}", resp.headers);
    assert_eq!(resp.body, "payload", "the good target echoed the body");
    assert_eq!(resp.header("proxy-status"), "", "a success names no cause");
    target.received("the request on the scripted target", |f| f.kind == HEADERS && f.stream == 1).await;
    assert_eq!(good.stats().requests_served(), 1, "the retry went to the other target");
}

/// 6. A PING from the target is answered with a PING ACK carrying the same 8 bytes (RFC 9113 §6.7); the target
/// answers the request only once it has the ACK.
#[tokio::test]
async fn a_ping_from_the_target_is_acknowledged_with_its_data() {
    let mut target = Scripted::spawn(|s| {
        let mut answer = headers(s, &ok_with_length(2), false);
        answer.extend(frame(DATA, END_STREAM, s, b"ok"));
        vec![
            Step::Write(frame(PING, 0, 0, PING_DATA)),
            Step::Await(|f| f.kind == PING && f.flags & ACK != 0 && f.payload == PING_DATA),
            Step::Write(answer),
        ]
    })
    .await;
    let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
    let resp = within("the response", h1(addr, request("GET", "/", "a", ""))).await;
    assert_eq!(resp.status, 200, "{:?}", resp.headers);
    assert_eq!(resp.body, "ok");
    assert_eq!(resp.header("proxy-status"), "", "a success names no cause");
    let ack = target.received("the PING ACK", |f| f.kind == PING && f.flags & ACK != 0).await;
    assert_eq!((ack.stream, &ack.payload[..]), (0, &PING_DATA[..]));
}

/// 7. A PUSH_PROMISE from the target, whose push the gateway's SETTINGS disabled: a connection error
/// PROTOCOL_ERROR (RFC 9113 §6.6, §8.4): 502, and the target gets GOAWAY PROTOCOL_ERROR.
#[tokio::test]
async fn a_push_promise_is_a_connection_error() {
    let mut target = Scripted::spawn(|s| {
        // The promised stream 2, then :method GET, :scheme http, :path / (static indices 2, 6, 4) and
        // :authority a (a literal without indexing, static name index 1).
        let mut payload = 2u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&[0x82, 0x86, 0x84, 0x01, 0x01, b'a']);
        vec![Step::Write(frame(PUSH_PROMISE, END_HEADERS, s, &payload))]
    })
    .await;
    let _gw = fails_with(target.addr, "TargetHttp2ProtocolError").await;
    let goaway = target.received("the gateway's GOAWAY", |f| f.kind == GOAWAY).await;
    assert_eq!(goaway.goaway_code(), Some(PROTOCOL_ERROR));
}

/// 8. A response head over the gateway's limit (`MAX_RESPONSE_HEAD`, its SETTINGS_MAX_HEADER_LIST_SIZE), in a
/// HEADERS frame and CONTINUATION frames: 502 TargetResponseHeadersTooLarge.
#[tokio::test]
async fn a_response_head_over_the_limit_is_too_large() {
    let target = Scripted::spawn(|s| {
        let mut block = vec![STATUS_200];
        block.extend(literal("x-big", &vec![b'x'; waygate_connect::MAX_RESPONSE_HEAD + 1024]));
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        assert!(chunks.len() > 1, "the block needs CONTINUATION frames");
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let flags = if i == chunks.len() - 1 { END_HEADERS } else { 0 };
            out.extend(frame(kind, flags, s, chunk));
        }
        out.extend(frame(DATA, END_STREAM, s, b""));
        vec![Step::Write(out)]
    })
    .await;
    let _gw = fails_with(target.addr, "TargetResponseHeadersTooLarge").await;
}

// 9. A target that answers in HTTP/1.1 instead of SETTINGS is covered by upstream_h2.rs
// (`stream_resets_goaways_and_protocol_errors_have_their_causes`, its HTTP/1-only target).

/// 10. A WINDOW_UPDATE on the connection that takes its window past 2^31-1: a connection error
/// FLOW_CONTROL_ERROR (RFC 9113 §6.9.1): the target gets GOAWAY FLOW_CONTROL_ERROR and the request fails.
#[tokio::test]
async fn a_connection_window_past_its_ceiling_is_a_flow_control_error() {
    let mut target = Scripted::spawn(|_| {
        // The window starts at 65,535: any increment of 2^31 - 65,535 or more passes the ceiling.
        vec![Step::Write(frame(WINDOW_UPDATE, 0, 0, &MAX_WINDOW.to_be_bytes()))]
    })
    .await;
    let _gw = fails_with(target.addr, "TargetHttp2ProtocolError").await;
    let goaway = target.received("the gateway's GOAWAY", |f| f.kind == GOAWAY).await;
    assert_eq!(goaway.goaway_code(), Some(FLOW_CONTROL_ERROR));
}

/// The boundary of the test above: a WINDOW_UPDATE that takes the connection's window to exactly 2^31-1 is
/// allowed, and the request is answered.
#[tokio::test]
async fn a_connection_window_at_its_ceiling_is_allowed() {
    let target = Scripted::spawn(|s| {
        let mut out = frame(WINDOW_UPDATE, 0, 0, &(MAX_WINDOW - 65_535).to_be_bytes());
        out.extend(headers(s, &ok_with_length(2), false));
        out.extend(frame(DATA, END_STREAM, s, b"ok"));
        vec![Step::Write(out)]
    })
    .await;
    let (_gw, addr) = gateway_to(&[target.addr], "retries = 0\n").await;
    let resp = within("the response", h1(addr, request("GET", "/", "a", ""))).await;
    assert_eq!(resp.status, 200, "{:?}", resp.headers);
    assert_eq!(resp.body, "ok");
    assert_eq!(resp.header("proxy-status"), "", "a success names no cause");
}
