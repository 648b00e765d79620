//! waygate's client-side HTTP/2 server, its own as its HTTP/1 server is: the wire format (frames, HPACK) comes
//! from `waygate_h2wire`; this module is the connection's state machine and what is the gateway's own. It
//! replaced the `h2` crate here, which left the gateway behind HAProxy on h2c: with h2, a small h2c request
//! took 46,451 instructions, now 30,851 (docs/benchmarks.md, "Instructions per request"). h2's HPACK
//! encoder alone spent 4,900 per response (a dynamic-table lookup and Huffman coding for every field); the
//! whole response head, encoded and framed here, about 1,100.
//!
//! - [`conn`]: one connection's future: frames read and applied, a stream future per request inside it (no
//!   task per request), and what every stream queued written in one write.
//! - [`crate::h2conn`]: what the connection and its streams share (the stream table, flow control, the frames
//!   queued), the same for the gateway's HTTP/2 client toward targets.
//! - [`request`]: a request head from its fields, checked (RFC 9113 §8.3).
//! - [`stream`]: one stream from the request to the last frame of its response (relayed under the client's
//!   flow control, trailers included), or, for an extended CONNECT answered 2xx, its hand-over as a tunnel.
//! - [`recv`]: the request body, with flow-control window given back as the request path takes it.
//! - [`tunnel`]: an extended CONNECT's stream as the client's end of a tunnel.
//! - [`watch`]: each stream's deadline while it waits on the client.
//!
//! Bounds (docs/config.md, "Limits of one client connection"): one client connection holds at most
//! [`MAX_CONCURRENT_STREAMS`] requests at once, so at most that many target connections (each request leases
//! one), and frames queued for a client that does not read them stop its streams at
//! [`crate::h2conn::WRITE_HIGH_WATER`] (with at most as much again being written), plus the one body chunk each stream
//! holds (up to the upstream read size, 256
//! KiB). What a client may send unread is bounded by the receive windows, [`STREAM_WINDOW`] per stream and
//! [`CONNECTION_WINDOW`] in all, and a request head by [`MAX_HEADER_LIST`] (decoded) and
//! [`conn::BLOCK_LIMIT`] (compressed).

mod conn;
mod recv;
mod request;
mod stream;
#[cfg(test)]
mod tests;
mod tunnel;
mod watch;

pub use crate::h2conn::{CONNECTION_WINDOW, STREAM_WINDOW, StreamGone};
pub use conn::Server;
pub use recv::RequestBody;
pub use request::Protocol;
pub use tunnel::ClientTunnel;
pub use watch::StreamBody;
pub(crate) use watch::{request_expired, request_polled};

/// SETTINGS_MAX_CONCURRENT_STREAMS: ALB's limit of 128 requests in parallel on one HTTP/2 connection. Each holds
/// at most one target connection, so this is also the bound on target connections per client connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// SETTINGS_MAX_HEADER_LIST_SIZE: a request head's decoded size (RFC 9113 §6.5.2), 16 KiB as before (hyper's
/// server default); h2's own default is 16 MiB.
pub const MAX_HEADER_LIST: u32 = 16 * 1024;
