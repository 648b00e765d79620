//! waygate's client-side HTTP/2 server, on the `h2` crate as its HTTP/1 server is on `httparse`: the crate
//! speaks the protocol (frames, HPACK, flow control, SETTINGS); this module owns what is the gateway's own.
//!
//! - [`serve`]: one connection's future, which accepts streams and runs each one inside it (no task spawned
//!   per request: a stream's wake-up polls it within its connection's task, and the frames of every stream
//!   that answered go out in one write).
//! - [`stream`]: one stream from the request to the last frame of its response (relayed under the client's
//!   flow control, trailers included), or, for an extended CONNECT answered 2xx, the hand-over of the stream
//!   as a tunnel ([`ClientTunnel`]).
//! - [`recv`]: the request body, with flow-control capacity given back as the request path takes it.
//! - [`watch`]: each stream's deadline while it waits on the client.
//!
//! Bounds (docs/config.md, "Limits of one client connection"): one client connection holds at most
//! [`MAX_CONCURRENT_STREAMS`] requests at once, so at most that many target connections (each request leases
//! one), and per stream at most [`MAX_SEND_BUF`] of response bytes queued for a client that does not take them,
//! plus the one body chunk waiting for the client's window (up to the upstream read size, 256 KiB). What a
//! client may send unread is bounded by the receive windows, [`STREAM_WINDOW`] per stream and
//! [`CONNECTION_WINDOW`] in all, and a request head by [`MAX_HEADER_LIST`].

mod recv;
mod serve;
mod stream;
mod watch;

pub use recv::RequestBody;
pub use serve::Server;
pub use stream::ClientTunnel;
pub use watch::StreamBody;
pub(crate) use watch::{request_expired, request_polled};

/// SETTINGS_MAX_CONCURRENT_STREAMS: ALB's limit of 128 requests in parallel on one HTTP/2 connection. Each holds
/// at most one target connection, so this is also the bound on target connections per client connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Response bytes h2 queues per stream beyond what the client's window lets out.
pub const MAX_SEND_BUF: usize = 64 * 1024;
/// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send on a stream before the gateway reads them.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window: request body bytes in flight on all streams at once.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// SETTINGS_MAX_HEADER_LIST_SIZE: a request head's decoded size (RFC 9113 §6.5.2), 16 KiB as before (hyper's
/// server default); h2's own default is 16 MiB.
pub const MAX_HEADER_LIST: u32 = 16 * 1024;

/// The h2 server as the gateway runs it: the bounds above, and RFC 8441's extended CONNECT for WebSockets.
fn builder() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_send_buffer_size(MAX_SEND_BUF)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): WebSockets over HTTP/2 streams (crate::upgrade).
        .enable_connect_protocol();
    builder
}
