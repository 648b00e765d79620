//! SETTINGS payloads (RFC 9113 §6.5): reading the peer's, with the value checks of §6.5.2, and writing this
//! endpoint's.

use bytes::{BufMut, BytesMut};

use super::{DEFAULT_MAX_FRAME_SIZE, ErrorCode, FrameError, Head, MAX_MAX_FRAME_SIZE, U31, kind};

/// Setting identifiers (RFC 9113 §6.5.2; RFC 8441 §3 for ENABLE_CONNECT_PROTOCOL).
mod id {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// The settings a SETTINGS frame carried, each `None` when absent (the value in force stays as it was).
/// Unknown identifiers are ignored (§6.5.2). When a frame carries an identifier more than once the last value
/// wins, as processing them in order would leave it (§6.5.3); for HEADER_TABLE_SIZE that loses an intermediate
/// smaller value, which matters only to an HPACK encoder that used a table larger than the final value allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE: the largest HPACK dynamic table the sender's decoder accepts.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH: whether the sender accepts server push (a client only; 0 or 1).
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: how many streams the sender lets its peer open.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE: the sender's initial stream window, at most 2^31-1.
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload the sender accepts, 16,384..=16,777,215.
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: advisory limit on the uncompressed header list the sender accepts.
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441, id 0x8): extended CONNECT is allowed (0 or 1).
    pub enable_connect_protocol: Option<bool>,
}

/// A boolean setting: 0 or 1, anything else a connection PROTOCOL_ERROR (§6.5.2, RFC 8441 §3).
fn flag(value: u32) -> Result<bool, FrameError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR)),
    }
}

impl Settings {
    /// Reads a SETTINGS payload (not an ACK). All errors are connection errors, since settings apply to the
    /// whole connection: a length not a multiple of 6 is FRAME_SIZE_ERROR (§6.5); ENABLE_PUSH or
    /// ENABLE_CONNECT_PROTOCOL not 0/1, or MAX_FRAME_SIZE out of its range, is PROTOCOL_ERROR;
    /// INITIAL_WINDOW_SIZE above 2^31-1 is FLOW_CONTROL_ERROR (§6.5.2).
    pub(crate) fn parse(payload: &[u8]) -> Result<Settings, FrameError> {
        if !payload.len().is_multiple_of(6) {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        let mut s = Settings::default();
        for entry in payload.chunks_exact(6) {
            let ident = u16::from_be_bytes([entry[0], entry[1]]);
            let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            match ident {
                id::HEADER_TABLE_SIZE => s.header_table_size = Some(value),
                id::ENABLE_PUSH => s.enable_push = Some(flag(value)?),
                id::MAX_CONCURRENT_STREAMS => s.max_concurrent_streams = Some(value),
                id::INITIAL_WINDOW_SIZE if value > U31 => {
                    return Err(FrameError::Connection(ErrorCode::FLOW_CONTROL_ERROR));
                }
                id::INITIAL_WINDOW_SIZE => s.initial_window_size = Some(value),
                id::MAX_FRAME_SIZE if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) => {
                    return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR));
                }
                id::MAX_FRAME_SIZE => s.max_frame_size = Some(value),
                id::MAX_HEADER_LIST_SIZE => s.max_header_list_size = Some(value),
                id::ENABLE_CONNECT_PROTOCOL => s.enable_connect_protocol = Some(flag(value)?),
                _ => {}
            }
        }
        Ok(s)
    }

    /// Appends a whole SETTINGS frame (head included, no ACK) carrying the values present, in identifier order.
    /// Values are written as given: sending only valid ones is the caller's part.
    pub fn write(&self, dst: &mut BytesMut) {
        let entries = [
            (id::HEADER_TABLE_SIZE, self.header_table_size),
            (id::ENABLE_PUSH, self.enable_push.map(u32::from)),
            (id::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (id::INITIAL_WINDOW_SIZE, self.initial_window_size),
            (id::MAX_FRAME_SIZE, self.max_frame_size),
            (id::MAX_HEADER_LIST_SIZE, self.max_header_list_size),
            (id::ENABLE_CONNECT_PROTOCOL, self.enable_connect_protocol.map(u32::from)),
        ];
        let count = entries.iter().filter(|(_, value)| value.is_some()).count();
        dst.reserve(super::HEAD_LEN + 6 * count);
        Head::sized(6 * count, kind::SETTINGS, 0, 0).write(dst);
        for (ident, value) in entries {
            if let Some(value) = value {
                dst.put_u16(ident);
                dst.put_u32(value);
            }
        }
    }
}
