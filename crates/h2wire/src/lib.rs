//! HTTP/2's wire format, without the connection: the frames of RFC 9113 ([`frame`]: each frame's layout and the
//! validity rules that depend only on the frame itself) and header compression, HPACK (RFC 7541, [`hpack`]).
//!
//! The gateway owns its HTTP/2 connection state machines (streams, flow control, the failure evidence its causes
//! carry), as it owns its HTTP/1 server; this crate is the part of them that is pure bytes, so that it can be
//! tested against the RFCs' own examples and fuzzed on its own.

pub mod frame;
pub mod hpack;
