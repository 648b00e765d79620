//! HTTP/2 frames (RFC 9113 §4 and §6): the layer between the socket's bytes and the gateway's HTTP/2 connection
//! state machine.
//!
//! Reading: [`parse`] takes one frame off the front of the read buffer and checks it against every rule that
//! depends on the frame alone (lengths, stream 0 or not, padding, setting values), so the state machine only
//! deals with rules that need connection state. Payloads are `Bytes` slices of the read buffer, never copies.
//! [`BlockAssembler`] joins a header block split over HEADERS and CONTINUATION frames.
//!
//! Writing: one function per frame the server sends, each appending a whole frame to an output buffer; DATA
//! gets only its head ([`write_data_head`]) so the payload can go out in a vectored write without being copied.

mod block;
mod error;
mod read;
mod settings;
mod write;

#[cfg(test)]
mod tests;

use bytes::{BufMut, BytesMut};

pub use block::{Block, BlockAssembler, Taken};
pub use error::{ErrorCode, FrameError};
pub use read::{Frame, Priority, parse};
pub use settings::Settings;
pub use write::{
    write_data_head, write_goaway, write_headers, write_ping, write_rst_stream, write_settings_ack, write_window_update,
};

/// The client connection preface (RFC 9113 §3.4): a client sends these 24 bytes before its first frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The length of a frame's head (RFC 9113 §4.1).
pub const HEAD_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE until a SETTINGS frame changes it, and the largest frame every peer accepts
/// (RFC 9113 §4.2, §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// The largest SETTINGS_MAX_FRAME_SIZE a peer may announce: 2^24-1, what the head's 24-bit length can hold.
pub(crate) const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;

/// Stream identifiers, dependencies and window increments are 31 bits; the top bit is reserved (RFC 9113 §4.1).
pub(crate) const U31: u32 = 0x7fff_ffff;

/// Frame type codes (RFC 9113 §6).
pub mod kind {
    /// §6.1.
    pub const DATA: u8 = 0x0;
    /// §6.2.
    pub const HEADERS: u8 = 0x1;
    /// §6.3.
    pub const PRIORITY: u8 = 0x2;
    /// §6.4.
    pub const RST_STREAM: u8 = 0x3;
    /// §6.5.
    pub const SETTINGS: u8 = 0x4;
    /// §6.6.
    pub const PUSH_PROMISE: u8 = 0x5;
    /// §6.7.
    pub const PING: u8 = 0x6;
    /// §6.8.
    pub const GOAWAY: u8 = 0x7;
    /// §6.9.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// §6.10.
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6). A flag means something only on the frame types named; elsewhere it is ignored.
pub mod flag {
    /// DATA, HEADERS: the sender's last frame on this stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement (the same bit as `END_STREAM`).
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block ends with this frame.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: the payload starts with a padding length and ends with that much padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the fragment is preceded by a stream dependency and weight.
    pub const PRIORITY: u8 = 0x20;
}

/// A frame's 9-byte head (RFC 9113 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The payload's length (24 bits), the head not included.
    pub len: u32,
    /// The frame type (see [`kind`]).
    pub kind: u8,
    /// The flags (see [`flag`]).
    pub flags: u8,
    /// The stream identifier, its reserved bit cleared: a receiver must ignore that bit.
    pub stream: u32,
}

impl Head {
    /// Reads a head. Every 9 bytes are a head; whether it is acceptable is for [`parse`] to say.
    pub fn parse(b: &[u8; HEAD_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & U31,
        }
    }

    /// Appends the head to `dst`. Only the low 24 bits of `len` and 31 bits of `stream` fit and are written
    /// (the reserved bit is sent as 0, as RFC 9113 §4.1 requires); keeping `len` within the peer's
    /// SETTINGS_MAX_FRAME_SIZE is the caller's part.
    pub fn write(&self, dst: &mut BytesMut) {
        let len = self.len.to_be_bytes();
        dst.put_slice(&[len[1], len[2], len[3], self.kind, self.flags]);
        dst.put_u32(self.stream & U31);
    }

    /// A head whose length is that of a payload the writers build themselves, bounded by the frame's
    /// construction (saturating only to keep the conversion total).
    pub(crate) fn sized(len: usize, kind: u8, flags: u8, stream: u32) -> Head {
        Head { len: u32::try_from(len).unwrap_or(u32::MAX), kind, flags, stream }
    }
}
