//! Tests of the frame layer: every validity rule `parse` enforces ([`rules`]), every writer read back by `parse`
//! and frames split at every point ([`writers`]), and the header block assembler ([`block`]). Frames are built
//! byte by byte here, not with the writers, so a writer's mistake cannot hide a reader's.

mod block;
mod rules;
mod writers;

use bytes::{BufMut, BytesMut};

use super::{DEFAULT_MAX_FRAME_SIZE, ErrorCode, Frame, FrameError, HEAD_LEN, Head, parse};

/// A frame's bytes, the stream identifier written as given (reserved bit included).
fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let len = u32::try_from(payload.len()).expect("test payloads are small").to_be_bytes();
    let mut b = BytesMut::new();
    b.put_slice(&[len[1], len[2], len[3], kind, flags]);
    b.put_u32(stream);
    b.put_slice(payload);
    b
}

/// Parses one whole frame and checks that it was taken off the buffer, whatever the verdict.
fn one(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Result<Frame, FrameError> {
    let mut b = raw(kind, flags, stream, payload);
    let result = parse(&mut b, DEFAULT_MAX_FRAME_SIZE);
    assert!(b.is_empty(), "the frame was not taken off the buffer: {result:?}");
    result.map(|frame| frame.expect("a whole frame parses"))
}

fn conn(code: ErrorCode) -> Result<Frame, FrameError> {
    Err(FrameError::Connection(code))
}

fn stream(id: u32, code: ErrorCode) -> Result<Frame, FrameError> {
    Err(FrameError::Stream(id, code))
}

#[test]
fn head_reads_and_writes_its_fields() {
    let b = raw(0xab, 0xcd, 0x8000_0007, &[0; 0x0102]);
    let head = Head::parse(b[..HEAD_LEN].try_into().unwrap());
    assert_eq!(head, Head { len: 0x0102, kind: 0xab, flags: 0xcd, stream: 7 });
    let mut out = BytesMut::new();
    Head { stream: 0xffff_ffff, ..head }.write(&mut out);
    assert_eq!(&out[..], &[0x00, 0x01, 0x02, 0xab, 0xcd, 0x7f, 0xff, 0xff, 0xff]);
}

#[test]
fn error_codes_show_their_rfc_names() {
    assert_eq!(ErrorCode::NO_ERROR.to_string(), "NO_ERROR");
    assert_eq!(format!("{:?}", ErrorCode::PROTOCOL_ERROR), "PROTOCOL_ERROR");
    assert_eq!(ErrorCode::HTTP_1_1_REQUIRED.name(), Some("HTTP_1_1_REQUIRED"));
    assert_eq!(ErrorCode(0xe).name(), None);
    assert_eq!(ErrorCode(0xe).to_string(), "0xe");
    assert_eq!(format!("{:?}", ErrorCode(u32::MAX)), "0xffffffff");
    assert_eq!(FrameError::Stream(3, ErrorCode::CANCEL).to_string(), "stream 3 error CANCEL");
    assert_eq!(FrameError::Connection(ErrorCode::CANCEL).code(), ErrorCode::CANCEL);
}
