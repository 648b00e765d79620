//! wsload: the WebSocket echo workload of `bench/proxy/run`, and the backend it runs against.
//!
//! - `wsload echo --port P`: the fault lab's WebSocket echo on 127.0.0.1:P, until killed: the one backend every
//!   proxy relays WebSockets to (and `direct` measures).
//! - `wsload load --url ws://127.0.0.1:P/ws [--connections 64] [--duration 10] [--size 64]`: opens the
//!   connections (a WebSocket handshake each), then on each sends one binary message, waits for its echo and
//!   sends the next, until the duration ends. Prints one line, `messages N seconds S rps R p50_ms X p99_ms Y
//!   errors E`: echoes completed, the window, echoes per second, the round-trip latency percentiles, and
//!   connections that failed (handshake refused, closed early, a wrong echo).
//!
//! No WebSocket load generator is packaged beside wrk and h2load, so this one is the benchmark's own, written
//! with the same client library the tests use (tokio-tungstenite), and run unchanged against every target.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::Message;

/// What `load` measured on one connection.
#[derive(Default)]
struct Conn {
    /// Round-trip times, microseconds.
    rtts: Vec<u32>,
    failed: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default.to_owned(), Clone::clone)
    };
    let number = |name: &str, default: &str| -> u64 {
        let text = opt(name, default);
        text.parse().unwrap_or_else(|_| fail(&format!("{name} must be a whole number, not {text:?}")))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    match args.first().map(String::as_str) {
        Some("echo") => {
            let port = u16::try_from(number("--port", "0")).unwrap_or_else(|_| fail("--port is a port number"));
            runtime.block_on(async {
                let echo = waygate_faultlab::WsTarget::Echo.spawn(SocketAddr::from(([127, 0, 0, 1], port))).await;
                let echo = echo.unwrap_or_else(|e| fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
                println!("listening on {}", echo.addr());
                std::future::pending::<()>().await;
            });
        }
        Some("load") => {
            let url = opt("--url", "");
            if url.is_empty() {
                fail("load needs --url ws://127.0.0.1:PORT/PATH");
            }
            let connections = number("--connections", "64");
            let duration = Duration::from_secs(number("--duration", "10"));
            let size = usize::try_from(number("--size", "64")).unwrap_or_else(|_| fail("--size is too large"));
            runtime.block_on(load(url, connections, duration, size));
        }
        _ => fail("usage: wsload echo --port P | wsload load --url URL [--connections N] [--duration S] [--size B]"),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("wsload: {message}");
    std::process::exit(2);
}

async fn load(url: String, connections: u64, duration: Duration, size: usize) {
    let addr: SocketAddr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.parse().ok())
        .unwrap_or_else(|| fail(&format!("--url must be ws://IP:PORT/PATH, not {url:?}")));
    let payload = Bytes::from(vec![b'w'; size]);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> =
        (0..connections).map(|_| tokio::spawn(connection(addr, url.clone(), payload.clone(), deadline))).collect();
    let mut rtts = Vec::new();
    let mut errors = 0u64;
    for task in tasks {
        let conn = task.await.unwrap_or_else(|_| Conn { failed: true, ..Conn::default() });
        errors += u64::from(conn.failed);
        rtts.extend(conn.rtts);
    }
    let seconds = started.elapsed().as_secs_f64();
    rtts.sort_unstable();
    let pct = |p: f64| rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1)));
    let ms = |v: Option<&u32>| v.map_or(0.0, |us| f64::from(*us) / 1000.0);
    println!(
        "messages {} seconds {seconds:.3} rps {:.1} p50_ms {:.3} p99_ms {:.3} errors {errors}",
        rtts.len(),
        rtts.len() as f64 / seconds,
        ms(pct(0.50)),
        ms(pct(0.99)),
    );
}

/// One connection's echo loop until `deadline`.
async fn connection(addr: SocketAddr, url: String, payload: Bytes, deadline: Instant) -> Conn {
    let mut conn = Conn::default();
    let Ok(tcp) = TcpStream::connect(addr).await else {
        conn.failed = true;
        return conn;
    };
    let _ = tcp.set_nodelay(true);
    let Ok((mut ws, _)) = client_async(url.as_str(), tcp).await else {
        conn.failed = true;
        return conn;
    };
    while Instant::now() < deadline {
        let sent = Instant::now();
        if ws.send(Message::binary(payload.clone())).await.is_err() {
            conn.failed = true;
            break;
        }
        let within = tokio::time::timeout_at(deadline.into(), ws.next()).await;
        match within {
            // The window closed with this message in flight: it is not counted.
            Err(_) => break,
            Ok(Some(Ok(Message::Binary(echo)))) if echo == payload => {
                conn.rtts.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok(_) => {
                conn.failed = true;
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    conn
}
