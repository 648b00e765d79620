//! Reading frames: [`parse`] takes one frame off the read buffer and checks it against the rules of RFC 9113 §4
//! and §6 that need nothing but the frame, so that the connection state machine sees only well-formed frames.
//! Payloads that are passed on (DATA, header block fragments, GOAWAY debug data) are `Bytes` slices of the read
//! buffer; nothing is copied and nothing is allocated per frame.

use bytes::{Buf, Bytes, BytesMut};

use super::{ErrorCode, FrameError, HEAD_LEN, Head, Settings, U31, flag, kind};

/// A frame the peer sent, checked against the rules that depend only on the frame itself. Flags a frame type
/// does not define are dropped, as RFC 9113 §4.1 requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1), padding removed.
    Data {
        /// Never 0.
        stream: u32,
        /// The data, padding and its length byte removed.
        data: Bytes,
        /// The peer's last frame on this stream.
        end_stream: bool,
        /// The whole payload's length, padding included: what counts against flow control (§6.1), which
        /// `data.len()` alone would undercount.
        flow_len: u32,
    },
    /// HEADERS (§6.2): the start of a header block.
    Headers {
        /// Never 0.
        stream: u32,
        /// The block fragment, padding and priority fields removed.
        block: Bytes,
        /// The peer's last frame on this stream (CONTINUATION frames may still follow, §6.2).
        end_stream: bool,
        /// The block is whole; otherwise CONTINUATION frames on this stream follow (§6.10).
        end_headers: bool,
        /// The deprecated priority fields (§5.3.2), when the PRIORITY flag was set.
        priority: Option<Priority>,
    },
    /// PRIORITY (§6.3): deprecated signalling, read only to be checked and ignored.
    Priority {
        /// Never 0.
        stream: u32,
        /// The fields carried.
        priority: Priority,
    },
    /// RST_STREAM (§6.4).
    RstStream {
        /// Never 0.
        stream: u32,
        /// Why the peer reset the stream.
        code: ErrorCode,
    },
    /// A SETTINGS frame that is not an ACK (§6.5); it must be acknowledged.
    Settings(Settings),
    /// A SETTINGS frame with the ACK flag: the peer applied this endpoint's settings.
    SettingsAck,
    /// PUSH_PROMISE (§6.6), payload not read: a server never accepts one (§8.4: a client cannot push), so the
    /// caller answers with a connection PROTOCOL_ERROR.
    PushPromise {
        /// Never 0.
        stream: u32,
    },
    /// PING (§6.7).
    Ping {
        /// A reply to this endpoint's PING, rather than a PING to answer.
        ack: bool,
        /// The opaque data, echoed in the reply.
        data: [u8; 8],
    },
    /// GOAWAY (§6.8).
    GoAway {
        /// The highest stream the peer may have acted on (reserved bit cleared).
        last_stream: u32,
        /// Why the peer is going away.
        code: ErrorCode,
        /// Opaque diagnostic data.
        debug: Bytes,
    },
    /// WINDOW_UPDATE (§6.9).
    WindowUpdate {
        /// 0 for the connection's window.
        stream: u32,
        /// The increment, 1..=2^31-1 (reserved bit cleared).
        increment: u32,
    },
    /// CONTINUATION (§6.10): more of an open header block ([`BlockAssembler`](super::BlockAssembler) joins them).
    Continuation {
        /// Never 0.
        stream: u32,
        /// The block fragment.
        block: Bytes,
        /// The block is whole with this fragment.
        end_headers: bool,
    },
    /// A frame type this endpoint does not know: ignored (RFC 9113 §5.5), unless it comes inside a header block,
    /// which the caller refuses (§6.10).
    Unknown {
        /// The frame type.
        kind: u8,
        /// The stream identifier, maybe 0.
        stream: u32,
    },
}

/// The deprecated priority fields of HEADERS and PRIORITY frames (RFC 9113 §5.3.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream this one depends on (reserved bit excluded); never the frame's own stream.
    pub dependency: u32,
    /// The dependency is exclusive.
    pub exclusive: bool,
    /// The weight as on the wire: one less than the weight it means (1..=256).
    pub weight: u8,
}

impl Priority {
    fn parse(b: &[u8; 5]) -> Priority {
        let word = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Priority { dependency: word & U31, exclusive: word & !U31 != 0, weight: b[4] }
    }
}

/// Parses one frame from `buf`, taking its bytes off the front (`buf.split_to`, zero copy): `Ok(None)` when
/// `buf` does not hold a whole frame yet, and `buf` is left as it was.
///
/// `max_frame_size` is this endpoint's SETTINGS_MAX_FRAME_SIZE: a longer frame is a connection error
/// FRAME_SIZE_ERROR (§4.2) as soon as its head is seen, so the peer cannot make this endpoint buffer more than it
/// announced. A refused frame has been taken off `buf`, so after a [`FrameError::Stream`] parsing goes on with the
/// next frame; after a [`FrameError::Connection`] the connection is over and `buf` does not matter.
///
/// A HEADERS frame whose priority makes the stream depend on itself is a *connection* PROTOCOL_ERROR, although
/// §5.3.1 calls for a stream error: a stream error would drop the frame's header block undecoded and leave the
/// connection's HPACK state out of step with the peer's (§4.3), and §5.4.1 allows treating any stream error as a
/// connection error. A PRIORITY frame carries no block, so there the stream error stands.
pub fn parse(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, FrameError> {
    let Some(head) = buf.first_chunk::<HEAD_LEN>().map(Head::parse) else { return Ok(None) };
    if head.len > max_frame_size {
        return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
    }
    // At most 2^24-1: the head's length field is 24 bits.
    let len = head.len as usize;
    if buf.len() - HEAD_LEN < len {
        return Ok(None);
    }
    buf.advance(HEAD_LEN);
    match head.kind {
        kind::DATA => data(head, buf.split_to(len).freeze()),
        kind::HEADERS => headers(head, buf.split_to(len).freeze()),
        kind::CONTINUATION => continuation(head, buf.split_to(len).freeze()),
        kind::GOAWAY => goaway(head, buf.split_to(len).freeze()),
        _ => {
            // The other frames' payloads are read into values, so the buffer is not shared for them.
            let frame = fixed(head, &buf[..len]);
            buf.advance(len);
            frame
        }
    }
    .map(Some)
}

fn conn(code: ErrorCode) -> FrameError {
    FrameError::Connection(code)
}

/// Frames that belong to a stream (DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE, CONTINUATION) on stream 0.
fn on_stream(head: Head) -> Result<u32, FrameError> {
    if head.stream == 0 { Err(conn(ErrorCode::PROTOCOL_ERROR)) } else { Ok(head.stream) }
}

/// Frames that belong to the connection (SETTINGS, PING, GOAWAY) on a stream.
fn on_connection(head: Head) -> Result<(), FrameError> {
    if head.stream == 0 { Ok(()) } else { Err(conn(ErrorCode::PROTOCOL_ERROR)) }
}

fn has(head: Head, flag: u8) -> bool {
    head.flags & flag != 0
}

/// Strips padding (§6.1, §6.2): returns the payload after the Pad Length byte and before the padding, with
/// `fixed` bytes of fields still at its front. A padded frame with no room for its Pad Length byte or the
/// fields is too small for its mandatory data (FRAME_SIZE_ERROR, §4.2); padding longer than what remains after
/// them is a PROTOCOL_ERROR (§6.1, §6.2). Both on the connection: DATA counts against the connection's window
/// and HEADERS carries HPACK state (§4.2).
fn unpad(head: Head, mut payload: Bytes, fixed: usize) -> Result<Bytes, FrameError> {
    let pad = if has(head, flag::PADDED) {
        let Some(&pad) = payload.first() else { return Err(conn(ErrorCode::FRAME_SIZE_ERROR)) };
        payload.advance(1);
        usize::from(pad)
    } else {
        0
    };
    let Some(room) = payload.len().checked_sub(fixed) else { return Err(conn(ErrorCode::FRAME_SIZE_ERROR)) };
    if pad > room {
        return Err(conn(ErrorCode::PROTOCOL_ERROR));
    }
    payload.truncate(payload.len() - pad);
    Ok(payload)
}

fn data(head: Head, payload: Bytes) -> Result<Frame, FrameError> {
    let stream = on_stream(head)?;
    let data = unpad(head, payload, 0)?;
    Ok(Frame::Data { stream, data, end_stream: has(head, flag::END_STREAM), flow_len: head.len })
}

fn headers(head: Head, payload: Bytes) -> Result<Frame, FrameError> {
    let stream = on_stream(head)?;
    let with_priority = has(head, flag::PRIORITY);
    let mut block = unpad(head, payload, if with_priority { 5 } else { 0 })?;
    let mut priority = None;
    if let Some(fields) = block.first_chunk::<5>().filter(|_| with_priority) {
        let p = Priority::parse(fields);
        if p.dependency == stream {
            // Connection, not stream: see `parse`.
            return Err(conn(ErrorCode::PROTOCOL_ERROR));
        }
        priority = Some(p);
        block.advance(5);
    }
    Ok(Frame::Headers {
        stream,
        block,
        end_stream: has(head, flag::END_STREAM),
        end_headers: has(head, flag::END_HEADERS),
        priority,
    })
}

fn continuation(head: Head, block: Bytes) -> Result<Frame, FrameError> {
    let stream = on_stream(head)?;
    Ok(Frame::Continuation { stream, block, end_headers: has(head, flag::END_HEADERS) })
}

fn goaway(head: Head, mut payload: Bytes) -> Result<Frame, FrameError> {
    on_connection(head)?;
    let Some(fixed) = payload.first_chunk::<8>() else { return Err(conn(ErrorCode::FRAME_SIZE_ERROR)) };
    let last_stream = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]) & U31;
    let code = ErrorCode(u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]));
    payload.advance(8);
    Ok(Frame::GoAway { last_stream, code, debug: payload })
}

/// The frames whose payload is read into values: PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING,
/// WINDOW_UPDATE, and unknown types.
fn fixed(head: Head, payload: &[u8]) -> Result<Frame, FrameError> {
    match head.kind {
        kind::PRIORITY => {
            let stream = on_stream(head)?;
            // A stream error (§6.3): PRIORITY changes no connection state.
            let Ok(fields) = <&[u8; 5]>::try_from(payload) else {
                return Err(FrameError::Stream(stream, ErrorCode::FRAME_SIZE_ERROR));
            };
            let priority = Priority::parse(fields);
            if priority.dependency == stream {
                return Err(FrameError::Stream(stream, ErrorCode::PROTOCOL_ERROR));
            }
            Ok(Frame::Priority { stream, priority })
        }
        kind::RST_STREAM => {
            let stream = on_stream(head)?;
            let code = u32_of(payload)?;
            Ok(Frame::RstStream { stream, code: ErrorCode(code) })
        }
        kind::SETTINGS => {
            on_connection(head)?;
            if !has(head, flag::ACK) {
                return Settings::parse(payload).map(Frame::Settings);
            }
            if payload.is_empty() { Ok(Frame::SettingsAck) } else { Err(conn(ErrorCode::FRAME_SIZE_ERROR)) }
        }
        kind::PUSH_PROMISE => Ok(Frame::PushPromise { stream: on_stream(head)? }),
        kind::PING => {
            on_connection(head)?;
            let Ok(&data) = <&[u8; 8]>::try_from(payload) else { return Err(conn(ErrorCode::FRAME_SIZE_ERROR)) };
            Ok(Frame::Ping { ack: has(head, flag::ACK), data })
        }
        kind::WINDOW_UPDATE => {
            let increment = u32_of(payload)? & U31;
            match (increment, head.stream) {
                (0, 0) => Err(conn(ErrorCode::PROTOCOL_ERROR)),
                (0, stream) => Err(FrameError::Stream(stream, ErrorCode::PROTOCOL_ERROR)),
                (increment, stream) => Ok(Frame::WindowUpdate { stream, increment }),
            }
        }
        kind => Ok(Frame::Unknown { kind, stream: head.stream }),
    }
}

/// The payload of RST_STREAM and WINDOW_UPDATE: exactly 4 bytes, else a connection FRAME_SIZE_ERROR (§6.4, §6.9).
fn u32_of(payload: &[u8]) -> Result<u32, FrameError> {
    <[u8; 4]>::try_from(payload).map(u32::from_be_bytes).map_err(|_| conn(ErrorCode::FRAME_SIZE_ERROR))
}
