//! The client-facing HTTP/2 server's own limits, which h2spec does not check (server/h2/mod.rs and conn.rs
//! state them): a request head over MAX_HEADER_LIST decoded gets 431 and the connection goes on; a stream
//! beyond MAX_CONCURRENT_STREAMS (128) is refused until one ends; rapid reset (CVE-2023-44487) ends the
//! connection with ENHANCE_YOUR_CALM while a reset now and then does not; a client's reset mid-response leaves
//! the connection usable; a header block past BLOCK_LIMIT (CONTINUATION flood) is ENHANCE_YOUR_CALM; and a
//! graceful shutdown sends GOAWAY NO_ERROR, lets the stream in flight finish, then closes. The flow-control
//! cases are in `flow.rs`; [`CASES`] lists both.

use std::net::SocketAddr;

use waygate_faultlab::{Backend, Fault, Running, TestPki};
use waygate_proxy::{Drain, Gateway};

use super::common::{DEADLINE, gateway, loopback, tempdir};
use super::flow::{self, Flow, get, post};
use super::frames::*;

/// Every case: id and what it checks.
pub const CASES: &[(&str, &str)] = &[
    ("flow/send-stream", "a response in a 16-octet stream window: stalls there, resumes on WINDOW_UPDATE"),
    ("flow/send-connection", "a response past the connection window: stalls there, resumes on WINDOW_UPDATE"),
    ("flow/initial-window", "SETTINGS_INITIAL_WINDOW_SIZE lowered then raised mid-stream: applies to it"),
    ("flow/recv-stream", "DATA past the 256 KiB stream window: RST_STREAM FLOW_CONTROL_ERROR"),
    ("flow/recv-connection", "DATA past the 1 MiB connection window: GOAWAY FLOW_CONTROL_ERROR"),
    ("flow/upload-padded", "a 4 MiB padded body within the windows given back: completes"),
    ("limits/header-list", "a request head over 16 KiB decoded: 431, then a GET is answered"),
    ("limits/concurrent-streams", "a 129th stream in flight: REFUSED_STREAM; one ends: a new one is answered"),
    ("limits/rapid-reset", "streams reset as soon as opened: GOAWAY ENHANCE_YOUR_CALM"),
    ("limits/occasional-reset", "one request in ten reset, 400 requests: no GOAWAY"),
    ("limits/reset-mid-response", "a reset mid-response: the next request is answered"),
    ("limits/continuation-flood", "CONTINUATION past the block limit: GOAWAY ENHANCE_YOUR_CALM"),
    ("limits/empty-continuation-flood", "empty CONTINUATION frames past the block limit: ENHANCE_YOUR_CALM"),
];

/// conn.rs BLOCK_LIMIT: a header block's fragments plus 9 octets a frame.
const BLOCK_LIMIT: usize = 2 * 16 * 1024 + 1024;

/// A gateway with an https and a plain listener in front of a fault-lab backend, and `/stall` routed to a
/// target whose SYNs vanish (a body sent there is taken by no one for 30 s).
pub struct Lab {
    pub backend: Running,
    _stall: Running,
    pub gw: Gateway,
    pub tls: SocketAddr,
    pub plain: SocketAddr,
}

impl Lab {
    pub async fn start() -> Lab {
        let backend = Backend::new("b1").spawn(loopback()).await.expect("backend");
        let stall = Fault::SynBlackhole.spawn(loopback()).await.expect("SYN black hole");
        let files = TestPki::shared().write_files(&tempdir("h2-limits-pki")).expect("PKI files");
        let rule = "[[listener.rule]]\npriority = 1\npath = \"/stall\"\ntarget_group = \"stall\"\n";
        let no_health = "[target_group.health_check]\nenabled = false\n";
        let text = format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n\
             [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             default_target_group = \"app\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n{rule}\
             [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"app\"\n{rule}\
             [[target_group]]\nname = \"app\"\ntargets = [\"{}\"]\n{no_health}\
             [[target_group]]\nname = \"stall\"\nretries = 0\nconnect_timeout = \"30s\"\ntargets = [\"{}\"]\n\
             {no_health}",
            files.valid.cert.display(),
            files.valid.key.display(),
            backend.addr(),
            stall.addr(),
        );
        let (gw, tls) = gateway(&text).await;
        let plain = gw.local_addr("plain").await.expect("listener plain");
        Lab { backend, _stall: stall, gw, tls, plain }
    }
}

/// Runs case `id` on a new connection (each case does its own handshake).
pub async fn run(id: &str, c: &mut Conn) -> Result<(), String> {
    match id {
        "flow/send-stream" => flow::send_stream_window(c).await,
        "flow/send-connection" => flow::send_connection_window(c).await,
        "flow/initial-window" => flow::initial_window_change(c).await,
        "flow/recv-stream" => flow::recv_stream_window(c).await,
        "flow/recv-connection" => flow::recv_connection_window(c).await,
        "flow/upload-padded" => flow::upload_padded(c).await,
        "limits/header-list" => header_list(c).await,
        "limits/concurrent-streams" => concurrent_streams(c).await,
        "limits/rapid-reset" => rapid_reset(c).await,
        "limits/occasional-reset" => occasional_reset(c).await,
        "limits/reset-mid-response" => reset_mid_response(c).await,
        "limits/continuation-flood" => continuation_flood(c, 1024).await,
        "limits/empty-continuation-flood" => continuation_flood(c, 0).await,
        _ => Err(format!("no case {id}")),
    }
}

/// The whole response on `id` (frames of other streams skipped): its status, once END_STREAM came.
async fn answered(c: &mut Conn, id: u32) -> Result<u16, String> {
    let mut status = None;
    for _ in 0..10_000 {
        match c.next().await {
            Event::Frame(f) if f.ty == GOAWAY || (f.ty == RST_STREAM && f.stream == id) => {
                return Err(format!("expected a response on stream {id}: {f:?}"));
            }
            Event::Frame(f) if f.stream == id && (f.ty == HEADERS || f.ty == DATA) => {
                if f.ty == HEADERS && status.is_none() {
                    status = Some(super::frames::status(&f.payload).ok_or(format!("no :status in {f:?}"))?);
                }
                if f.flags & END_STREAM != 0 {
                    return status.ok_or(format!("stream {id} ended without a head"));
                }
            }
            Event::Frame(_) => {}
            other => return Err(format!("expected a response on stream {id}: {other:?}")),
        }
    }
    Err(format!("no end of stream {id} in 10,000 frames"))
}

fn expect_status(id: u32, got: u16, want: u16) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("stream {id} answered {got}, expected {want}")) }
}

/// 17,000 octets in one field, over 16 KiB decoded, the block split over HEADERS and CONTINUATION: a 431,
/// then a GET on the same connection is answered.
async fn header_list(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    let big = "a".repeat(17_000);
    let b = block(&[
        (":method", "GET"),
        (":scheme", c.scheme),
        (":path", "/"),
        (":authority", "localhost"),
        ("x-big", &big),
    ]);
    c.send_frame(HEADERS, END_STREAM, 1, &b[..16_384]).await;
    c.send_frame(CONTINUATION, END_HEADERS, 1, &b[16_384..]).await;
    expect_status(1, answered(c, 1).await?, 431)?;
    get(c, 3, "/").await;
    expect_status(3, answered(c, 3).await?, 200)
}

/// 128 POSTs whose bodies are still coming, then a GET: REFUSED_STREAM on it, and nothing else; one POST's
/// body ends, its response ends, and a new GET is answered.
async fn concurrent_streams(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    for id in (0..128).map(|n| 2 * n + 1) {
        post(c, id, "/echo").await;
    }
    get(c, 257, "/").await;
    loop {
        match c.next().await {
            Event::Frame(f) if f.ty == RST_STREAM && f.stream == 257 && f.error_code() == Some(REFUSED_STREAM) => break,
            Event::Frame(f) if matches!(f.ty, RST_STREAM | GOAWAY | HEADERS) => {
                return Err(format!("expected RST_STREAM REFUSED_STREAM on stream 257: {f:?}"));
            }
            Event::Frame(_) => {}
            other => return Err(format!("expected RST_STREAM REFUSED_STREAM on stream 257: {other:?}")),
        }
    }
    c.send_frame(DATA, END_STREAM, 1, &[]).await;
    expect_status(1, answered(c, 1).await?, 200)?;
    get(c, 259, "/").await;
    expect_status(259, answered(c, 259).await?, 200)
}

/// GETs each reset at once (RST_STREAM CANCEL after its HEADERS), ten at a time with a PING after them, up
/// to 600: GOAWAY ENHANCE_YOUR_CALM (conn.rs MAX_RESETS 256: each reset in flight counts two, each stream done
/// takes one off). The PING keeps each batch in one read, so nothing is left unread when the server closes.
async fn rapid_reset(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    for batch in 0..60u32 {
        for id in (0..10).map(|n| 20 * batch + 2 * n + 1) {
            get(c, id, "/").await;
            c.send_frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()).await;
        }
        c.send_frame(PING, 0, 0, b"rapid!!!").await;
        loop {
            match c.next().await {
                Event::Frame(f) if f.ty == PING && f.flags & ACK != 0 => break,
                Event::Frame(f) if f.ty == GOAWAY => {
                    return match f.error_code() {
                        Some(ENHANCE_YOUR_CALM) => Ok(()),
                        code => Err(format!("GOAWAY with code {code:?} after {} resets", 10 * batch)),
                    };
                }
                Event::Frame(_) => {}
                other => return Err(format!("after {} resets: {other:?}", 10 * batch)),
            }
        }
    }
    Err("600 streams reset at once: no GOAWAY".into())
}

/// 400 GETs one after another, every tenth reset as soon as sent, the others answered: never a GOAWAY.
async fn occasional_reset(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    for n in 0..400 {
        let id = 2 * n + 1;
        get(c, id, "/").await;
        if n % 10 == 9 {
            c.send_frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()).await;
            continue;
        }
        expect_status(id, answered(c, id).await.map_err(|e| format!("request {n}: {e}"))?, 200)?;
    }
    c.alive().await
}

/// A 1 MB response stalled by the client's windows after its first DATA, reset by the client (with the
/// connection's window given back): a GET on a new stream is answered, and PING too.
async fn reset_mid_response(c: &mut Conn) -> Result<(), String> {
    c.handshake().await?;
    get(c, 1, "/bytes/1000000").await;
    loop {
        match c.next().await {
            Event::Frame(f) if f.ty == DATA && f.stream == 1 => break,
            Event::Frame(f) if matches!(f.ty, RST_STREAM | GOAWAY) => return Err(format!("{f:?}")),
            Event::Frame(_) => {}
            other => return Err(format!("expected DATA on stream 1: {other:?}")),
        }
    }
    c.send_frame(RST_STREAM, 0, 1, &CANCEL.to_be_bytes()).await;
    c.send_frame(WINDOW_UPDATE, 0, 0, &(1u32 << 20).to_be_bytes()).await;
    get(c, 3, "/").await;
    expect_status(3, answered(c, 3).await?, 200)?;
    c.alive().await
}

/// HEADERS without END_HEADERS, then CONTINUATION frames of `size` octets (the value of one long field),
/// until the block's cost passes BLOCK_LIMIT with the last one sent: GOAWAY ENHANCE_YOUR_CALM.
async fn continuation_flood(c: &mut Conn, size: usize) -> Result<(), String> {
    c.handshake().await?;
    let mut b = request_block(c.scheme, "GET", "/");
    // `x-flood`, a literal without indexing whose value says 40,960 octets (RFC 7541 §5.1: 127, then 40,833
    // in 7-bit groups).
    b.extend([0x00, 7]);
    b.extend(b"x-flood");
    b.extend([0x7f, 0x81, 0xbf, 0x02]);
    c.send_frame(HEADERS, END_STREAM, 1, &b).await;
    let mut cost = 9 + b.len();
    let mut frames = 0;
    while cost <= BLOCK_LIMIT && frames < 10_000 {
        c.send_frame(CONTINUATION, 0, 1, &vec![b'a'; size]).await;
        cost += 9 + size;
        frames += 1;
    }
    match c.goaway().await? {
        (_, ENHANCE_YOUR_CALM) => Ok(()),
        other => Err(format!("after {frames} CONTINUATION frames: GOAWAY (last stream, code) {other:?}")),
    }
}

/// Graceful shutdown with a stream in flight (a 100,000-octet response held by the target after its first
/// 64 KiB): GOAWAY NO_ERROR naming that stream, the stream completes once the target goes on, then the
/// connection closes and the drain completes. Shuts `lab`'s gateway down.
pub async fn graceful_shutdown(lab: &Lab, c: &mut Conn) -> Result<(), String> {
    c.handshake_with(&[(INITIAL_WINDOW_SIZE, 1 << 20)]).await?;
    let mut flow = Flow::new(1 << 20);
    flow.grant(c, 0, 1 << 20).await;
    get(c, 1, "/bytes/100000?hold=1").await;
    flow.until(c, "the first chunk", |f| f.got(1) >= waygate_faultlab::CHUNK).await?;
    let client = async {
        flow.expect_goaway = true;
        flow.until(c, "GOAWAY once the shutdown began", |f| f.goaway.is_some()).await?;
        if flow.goaway != Some((1, NO_ERROR)) {
            return Err(format!("GOAWAY (last stream, code) {:?}, expected (1, NO_ERROR)", flow.goaway));
        }
        lab.backend.release();
        flow.until(c, "the rest of the response", |f| f.ended(1)).await?;
        flow.done(1, 200, 100_000)?;
        match c.next().await {
            Event::Closed => Ok(()),
            other => Err(format!("expected the close after the last stream: {other:?}")),
        }
    };
    let (drain, result) = tokio::join!(lab.gw.shutdown(DEADLINE), client);
    result?;
    if drain != Drain::Complete {
        return Err(format!("the drain: {drain:?}"));
    }
    Ok(())
}
