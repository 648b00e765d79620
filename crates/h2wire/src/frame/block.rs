//! Joining a header block split over a HEADERS frame and CONTINUATION frames (RFC 9113 §4.3, §6.10), so that the
//! HPACK decoder gets one contiguous block. A block that fits its HEADERS frame, the usual case, passes through
//! without a copy; only a split block is copied, into one buffer.

use bytes::{Bytes, BytesMut};

use super::{ErrorCode, Frame, FrameError, HEAD_LEN};

/// A whole header block, ready for the HPACK decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The stream the HEADERS frame opened or continued.
    pub stream: u32,
    /// The compressed block: all fragments in order.
    pub block: Bytes,
    /// The HEADERS frame had END_STREAM.
    pub end_stream: bool,
}

/// What [`BlockAssembler::take`] made of a frame.
#[derive(Debug)]
pub enum Taken {
    /// Not part of a header block: the frame, for the caller.
    Frame(Frame),
    /// The frame completed a header block.
    Block(Block),
    /// The frame opened or continued a block that is not whole yet.
    Partial,
}

/// Joins a HEADERS frame's block fragment with its CONTINUATION frames (RFC 9113 §4.3, §6.10).
///
/// While a block is open ([`expecting`](Self::expecting) says on which stream), the only frame the peer may send
/// is a CONTINUATION on that stream: any other frame is a connection PROTOCOL_ERROR, which
/// [`take`](Self::take), given every frame, raises.
///
/// `limit` bounds what one block may cost this endpoint to take in: its fragments' bytes plus [`HEAD_LEN`] for
/// each of its frames, so that a flood of empty CONTINUATION frames, which add no bytes, is bounded as well.
/// Beyond it the answer is a connection error ENHANCE_YOUR_CALM: the peer is loading this endpoint beyond what
/// it is willing to bear but breaks no rule of the protocol (the limit is this endpoint's own and never
/// announced; SETTINGS_MAX_HEADER_LIST_SIZE is advisory and counts decoded fields), so PROTOCOL_ERROR would
/// misreport it. It is a connection error, not a stream error, because the block cannot be dropped unread:
/// the HPACK state it updates is the connection's (§4.3).
#[derive(Debug)]
pub struct BlockAssembler {
    limit: usize,
    /// The block being joined, when one is open.
    open: Option<Open>,
    /// The fragments so far; kept between blocks for its spare capacity.
    parts: BytesMut,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    stream: u32,
    end_stream: bool,
    /// Bytes charged against `limit` so far.
    cost: usize,
}

impl BlockAssembler {
    /// An assembler that holds at most `limit` bytes of block and frame heads (see the type's doc).
    pub fn new(limit: usize) -> BlockAssembler {
        BlockAssembler { limit, open: None, parts: BytesMut::new() }
    }

    /// The stream whose block is open, waiting for CONTINUATION frames; `None` between blocks.
    pub fn expecting(&self) -> Option<u32> {
        self.open.map(|open| open.stream)
    }

    /// Any frame as it comes: a HEADERS or CONTINUATION frame goes into the block (a whole one comes out), any
    /// other passes through, except while a block is open, when only its CONTINUATION may come (§6.10: a
    /// connection PROTOCOL_ERROR).
    pub fn take(&mut self, frame: Frame) -> Result<Taken, FrameError> {
        let block = match frame {
            Frame::Headers { stream, block, end_stream, end_headers, .. } => {
                self.start(stream, block, end_stream, end_headers)?
            }
            Frame::Continuation { stream, block, end_headers } => self.push(stream, block, end_headers)?,
            _ if self.open.is_some() => return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR)),
            other => return Ok(Taken::Frame(other)),
        };
        Ok(block.map_or(Taken::Partial, Taken::Block))
    }

    /// Takes a HEADERS frame's fragment: the whole block at once when `end_headers` is set (no copy), else
    /// `None` and the block stays open for [`push`](Self::push). A HEADERS frame while a block is open is a
    /// connection PROTOCOL_ERROR (§6.10).
    pub(crate) fn start(
        &mut self,
        stream: u32,
        fragment: Bytes,
        end_stream: bool,
        end_headers: bool,
    ) -> Result<Option<Block>, FrameError> {
        if self.open.is_some() {
            return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR));
        }
        let cost = self.charge(0, fragment.len())?;
        if end_headers {
            return Ok(Some(Block { stream, block: fragment, end_stream }));
        }
        self.parts.clear();
        self.parts.extend_from_slice(&fragment);
        self.open = Some(Open { stream, end_stream, cost });
        Ok(None)
    }

    /// Takes a CONTINUATION frame's fragment: the whole block when `end_headers` is set, else `None`. A
    /// CONTINUATION with no block open, or on another stream than the open block's, is a connection
    /// PROTOCOL_ERROR (§6.10).
    pub(crate) fn push(
        &mut self,
        stream: u32,
        fragment: Bytes,
        end_headers: bool,
    ) -> Result<Option<Block>, FrameError> {
        let Some(open) = self.open.filter(|open| open.stream == stream) else {
            return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR));
        };
        let cost = self.charge(open.cost, fragment.len())?;
        self.parts.extend_from_slice(&fragment);
        if !end_headers {
            self.open = Some(Open { cost, ..open });
            return Ok(None);
        }
        self.open = None;
        Ok(Some(Block { stream, block: self.parts.split().freeze(), end_stream: open.end_stream }))
    }

    /// Adds one frame carrying `len` bytes of fragment to `cost`, refusing it beyond the limit.
    fn charge(&self, cost: usize, len: usize) -> Result<usize, FrameError> {
        cost.checked_add(HEAD_LEN + len)
            .filter(|&cost| cost <= self.limit)
            .ok_or(FrameError::Connection(ErrorCode::ENHANCE_YOUR_CALM))
    }
}
