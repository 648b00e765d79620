//! Faults at the TLS handshake: silence, a fatal alert, bad certificates, and a port that is not TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::backend::Backend;
use crate::pki::Identity;
use crate::raw::{self, Conn};
use crate::running::{self, Running, Shared};

/// A TLS record header is 5 bytes: content type, version (2), length (2).
const RECORD_HEADER: usize = 5;
/// Fatal handshake_failure(40) alert record, TLS 1.2 record version.
pub const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// Accepts and reads everything (counted in `bytes_read`), writes nothing, closes only when the peer does.
pub(super) async fn blackhole(bind: SocketAddr) -> io::Result<Running> {
    let listener = running::bind(bind).await?;
    running::serve(listener, |stream, shared| async move {
        Conn::new(stream).idle_until_peer_closes(&shared).await;
    })
}

/// Reads the first TLS record (the ClientHello), answers with [`HANDSHAKE_FAILURE_ALERT`], closes (FIN).
pub(super) async fn alert(bind: SocketAddr) -> io::Result<Running> {
    let listener = running::bind(bind).await?;
    running::serve(listener, |stream, shared| async move {
        let mut conn = Conn::new(stream);
        if read_first_record(&mut conn, &shared).await.is_ok() {
            shared.stats.add_request();
            let _ = conn.write(&HANDSHAKE_FAILURE_ALERT).await;
        }
        conn.finish(&shared).await;
    })
}

/// A real HTTPS backend presenting `identity`.
pub(super) async fn backend(bind: SocketAddr, name: &str, identity: &Identity) -> io::Result<Running> {
    Backend::new(name).tls(identity).spawn(bind).await
}

/// Plain HTTP/1.1: a request gets a 200; anything else (a ClientHello) gets a 400 and a clean close.
pub(super) async fn plain_http(bind: SocketAddr) -> io::Result<Running> {
    let listener = running::bind(bind).await?;
    running::serve(listener, |stream, shared| async move {
        let mut conn = Conn::new(stream);
        let looks_like_tls = match conn.peek_byte(&shared).await {
            Ok(Some(byte)) => byte == 0x16,
            _ => return,
        };
        let reply = if looks_like_tls {
            let _ = read_first_record(&mut conn, &shared).await;
            raw::response("400 Bad Request", "plain-http-on-tls", "this port speaks plain HTTP\n")
        } else {
            match conn.read_head(&shared).await {
                Ok(Some(_)) => raw::response("200 OK", "plain-http-on-tls", "plain HTTP\n"),
                Ok(None) => return,
                Err(_) => raw::response("400 Bad Request", "plain-http-on-tls", "bad request\n"),
            }
        };
        shared.stats.add_request();
        let reply = with_close(reply);
        let _ = conn.write(&reply).await;
        conn.finish(&shared).await;
    })
}

/// Adds `connection: close` after the status line.
fn with_close(response: Vec<u8>) -> Vec<u8> {
    let at = raw::find(&response, b"\r\n").map_or(response.len(), |i| i + 2);
    let mut out = response[..at].to_vec();
    out.extend_from_slice(b"connection: close\r\n");
    out.extend_from_slice(&response[at..]);
    out
}

async fn read_first_record(conn: &mut Conn, shared: &Arc<Shared>) -> io::Result<()> {
    conn.read_exact_buffered(RECORD_HEADER, shared).await?;
    let header = conn.buffered();
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    conn.read_exact_buffered(RECORD_HEADER + len, shared).await?;
    conn.consume(RECORD_HEADER + len);
    Ok(())
}
