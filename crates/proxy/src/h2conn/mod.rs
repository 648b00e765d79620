//! HTTP/2 connection state that both of the gateway's HTTP/2 ends share: its server for clients
//! ([`crate::server::h2`]) and its client toward targets ([`crate::upstream::h2`]). The wire format (frames,
//! HPACK) is `waygate_h2wire`'s; each end owns its connection's state machine (what a frame means depends on
//! the role); what is the same in both roles lives here, once:
//!
//! - [`shared`]: one connection's stream table, flow control in both directions, and the frames queued for the
//!   peer, behind one lock that the connection's task and the streams' handles take.
//! - [`fields`]: the field rules for what a peer sends, in either role.
//! - [`io`]: one stream as a byte stream, for a tunnel's end (a WebSocket over RFC 8441) on either side.

pub mod fields;
pub mod io;
pub mod shared;

pub use io::StreamIo;
pub use shared::{Inner, Key, Refused, Shared, StreamGone, WRITE_HIGH_WATER};

/// SETTINGS_INITIAL_WINDOW_SIZE the gateway advertises in both roles: body bytes a peer may send on a stream
/// before the gateway reads them. The same on both sides, so a relayed body moves at the same pace on each.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window: body bytes in flight on all of a connection's streams at once.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;
