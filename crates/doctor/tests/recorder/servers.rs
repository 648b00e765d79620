//! The server namespace's side: the fault lab's targets for the shapes it has, and raw servers for the rest
//! (a TLS warning alert, a server that closes after its ServerHello, a WebSocket upgrade that ends on the
//! client's first frame, an SSH-like banner, and a real TLS server that closes when a kept-alive connection
//! is reused). Prints [`READY`] once every listener is bound, and runs until its stdin closes.

use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use waygate_faultlab::{Backend, Fault, TestPki};

use super::*;

/// What the role prints when it is ready.
pub const READY: &str = "corpus servers ready";

/// A TLS record of `kind` holding `body`.
pub fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
    r.extend_from_slice(body);
    r
}

/// A TLS 1.2-shaped ServerHello record (TLS_AES_128_GCM_SHA256, no extensions).
pub fn server_hello() -> Vec<u8> {
    let mut hs = vec![2, 0, 0, 38, 3, 3];
    hs.extend([0x5a; 32]);
    hs.extend([0, 0x13, 0x01, 0]);
    record(22, &hs)
}

/// The role: every server, until stdin closes.
pub fn role() {
    let Some(out) = std::env::var_os("WAYGATE_CORPUS_OUT").map(PathBuf::from) else {
        println!("corpus_role_servers runs inside corpus_recorded_afresh only");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pki = TestPki::shared();
    std::fs::write(out.join("ca.pem"), pki.ca_pem()).expect("write ca.pem");
    let mut running = Vec::new();
    let faults = [
        (RESET, Fault::ResetBeforeResponse),
        (PMTU, Fault::TlsBlackhole),
        (GAVE_UP, Fault::TlsBlackhole),
        (RACE, Fault::KeepAliveRace),
        (RESPONSE_TIMEOUT, Fault::TlsBlackhole),
        (HANDSHAKE_TIMEOUT, Fault::TlsBlackhole),
        (TLS_ALERT, Fault::TlsAlert),
        (IDLE_CLOSE, Fault::KeepAliveCloser(Duration::from_millis(300))),
    ];
    for (shape, fault) in faults {
        running.push(rt.block_on(fault.spawn(shape.server())).expect("spawn a fault"));
    }
    running.push(rt.block_on(Backend::new("corpus").spawn(ONE_SIDED.server())).expect("spawn the backend"));
    rt.block_on(async {
        serve(WARNING.server(), warning_then_hello).await?;
        serve(AFTER_HELLO.server(), close_after_hello).await?;
        serve(UPGRADE.server(), upgrade_then_close).await?;
        serve(NOT_HTTP.server(), banner).await?;
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.valid().server_config());
        serve(RACE_TLS.server(), move |s| tls_one_request(acceptor.clone(), s)).await
    })
    .expect("bind the raw servers");
    println!("{READY}");
    // Until the recorder closes stdin (or kills this process).
    let _ = io::stdin().read(&mut [0u8; 1]);
    drop(running);
}

/// Accepts on `addr`, handling each connection with `handle` on its own task.
async fn serve<F, Fut>(addr: SocketAddr, handle: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handle(s));
        }
    });
    Ok(())
}

/// Reads until the peer closes (or errs).
async fn drain(s: &mut (impl AsyncRead + Unpin)) {
    let mut buf = [0u8; 4096];
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Reads until the end of an HTTP head.
async fn read_head(s: &mut (impl AsyncRead + Unpin)) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// A warning-level `unrecognized_name` alert, then a ServerHello; open until the client closes.
async fn warning_then_hello(mut s: TcpStream) -> io::Result<()> {
    s.read_exact(&mut [0u8; 517]).await?;
    let mut out = record(21, &[1, 112]);
    out.extend(server_hello());
    s.write_all(&out).await?;
    drain(&mut s).await;
    Ok(())
}

/// A ServerHello, then a close (FIN) on the client's second flight.
async fn close_after_hello(mut s: TcpStream) -> io::Result<()> {
    s.read_exact(&mut [0u8; 517]).await?;
    s.write_all(&server_hello()).await?;
    let _ = s.read(&mut [0u8; 4096]).await?;
    Ok(())
}

/// `101 Switching Protocols`, then a close (FIN) on the client's first frame.
async fn upgrade_then_close(mut s: TcpStream) -> io::Result<()> {
    read_head(&mut s).await?;
    s.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
          sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    )
    .await?;
    let _ = s.read(&mut [0u8; 4096]).await?;
    Ok(())
}

/// An SSH-like server: it speaks first, then waits for the client to close.
async fn banner(mut s: TcpStream) -> io::Result<()> {
    s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await?;
    drain(&mut s).await;
    Ok(())
}

/// A real TLS server that answers one request, then closes the TCP connection (FIN, no close_notify)
/// when the next request arrives: the keep-alive race inside TLS.
async fn tls_one_request(acceptor: tokio_rustls::TlsAcceptor, s: TcpStream) -> io::Result<()> {
    let mut tls = acceptor.accept(s).await?;
    read_head(&mut tls).await?;
    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await?;
    tls.flush().await?;
    let _ = tls.read(&mut [0u8; 4096]).await?;
    let (tcp, _) = tls.into_inner();
    drop(tcp);
    Ok(())
}
