//! Writing the frames a server sends: each function appends one whole frame, head included, to the output buffer
//! (SETTINGS is [`Settings::write`](super::Settings::write)). Reserved bits are written as 0 (RFC 9113 §4.1);
//! values that only the caller can know to be valid (a window increment above 0, a DATA length within the peer's
//! SETTINGS_MAX_FRAME_SIZE) are written as given, cut to the bits their field holds.

use bytes::{BufMut, BytesMut};

use super::{DEFAULT_MAX_FRAME_SIZE, ErrorCode, HEAD_LEN, Head, MAX_MAX_FRAME_SIZE, U31, flag, kind};

/// SETTINGS with the ACK flag: this endpoint applied the peer's settings (§6.5.3).
pub fn write_settings_ack(dst: &mut BytesMut) {
    Head { len: 0, kind: kind::SETTINGS, flags: flag::ACK, stream: 0 }.write(dst);
}

/// PING (§6.7); with `ack`, the reply to the peer's PING, echoing its `data`.
pub fn write_ping(ack: bool, data: [u8; 8], dst: &mut BytesMut) {
    dst.reserve(HEAD_LEN + 8);
    let flags = if ack { flag::ACK } else { 0 };
    Head { len: 8, kind: kind::PING, flags, stream: 0 }.write(dst);
    dst.put_slice(&data);
}

/// GOAWAY (§6.8). `debug` is cut to what fits in a frame of [`DEFAULT_MAX_FRAME_SIZE`], the size every peer
/// accepts, so the frame is never refused for its length.
pub fn write_goaway(last_stream: u32, code: ErrorCode, debug: &[u8], dst: &mut BytesMut) {
    let debug = debug.get(..DEFAULT_MAX_FRAME_SIZE as usize - 8).unwrap_or(debug);
    dst.reserve(HEAD_LEN + 8 + debug.len());
    Head::sized(8 + debug.len(), kind::GOAWAY, 0, 0).write(dst);
    dst.put_u32(last_stream & U31);
    dst.put_u32(code.0);
    dst.put_slice(debug);
}

/// RST_STREAM (§6.4).
pub fn write_rst_stream(stream: u32, code: ErrorCode, dst: &mut BytesMut) {
    dst.reserve(HEAD_LEN + 4);
    Head { len: 4, kind: kind::RST_STREAM, flags: 0, stream }.write(dst);
    dst.put_u32(code.0);
}

/// WINDOW_UPDATE (§6.9) on `stream`, 0 for the connection. `increment` must be 1..=2^31-1: 0 is a protocol error
/// at the peer, and only the low 31 bits are sent.
pub fn write_window_update(stream: u32, increment: u32, dst: &mut BytesMut) {
    dst.reserve(HEAD_LEN + 4);
    Head { len: 4, kind: kind::WINDOW_UPDATE, flags: 0, stream }.write(dst);
    dst.put_u32(increment & U31);
}

/// DATA (§6.1): only the 9-byte head, so the payload (`Bytes`) can follow in a vectored write without being
/// copied. `len` is the payload's length, which the caller keeps within the peer's SETTINGS_MAX_FRAME_SIZE and
/// flow-control windows. No padding is sent.
pub fn write_data_head(stream: u32, len: u32, end_stream: bool, dst: &mut BytesMut) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    Head { len, kind: kind::DATA, flags, stream }.write(dst);
}

/// A header block as HEADERS plus as many CONTINUATION frames as `max_frame_size` (the peer's
/// SETTINGS_MAX_FRAME_SIZE) needs (§4.3); END_HEADERS is on the last of them, END_STREAM (when asked) on the
/// HEADERS. No padding or priority is sent. A `max_frame_size` outside 16,384..=16,777,215, which no peer may
/// announce, is taken as the nearest bound. The block is copied into `dst`: it is the HPACK encoder's output,
/// small, and the frames must be contiguous on the wire anyway (§6.10).
pub fn write_headers(stream: u32, block: &[u8], end_stream: bool, max_frame_size: u32, dst: &mut BytesMut) {
    let max = max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE) as usize;
    let frames = block.len().div_ceil(max).max(1);
    dst.reserve(frames * HEAD_LEN + block.len());
    let mut chunks = block.chunks(max).peekable();
    let first = chunks.next().unwrap_or_default();
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        flags |= flag::END_HEADERS;
    }
    Head::sized(first.len(), kind::HEADERS, flags, stream).write(dst);
    dst.put_slice(first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() { flag::END_HEADERS } else { 0 };
        Head::sized(chunk.len(), kind::CONTINUATION, flags, stream).write(dst);
        dst.put_slice(chunk);
    }
}
