//! The header block assembler: blocks that fit one frame pass through uncopied, split blocks join back, the
//! sequencing rules of §6.10 hold, and the limit bounds both bytes and frames.

use bytes::Bytes;

use crate::frame::{Block, BlockAssembler, ErrorCode as E, Frame, FrameError, HEAD_LEN, Taken};

const PROTOCOL: FrameError = FrameError::Connection(E::PROTOCOL_ERROR);
const CALM: FrameError = FrameError::Connection(E::ENHANCE_YOUR_CALM);

fn block(stream: u32, bytes: &'static [u8], end_stream: bool) -> Block {
    Block { stream, block: Bytes::from_static(bytes), end_stream }
}

#[test]
fn a_block_in_one_frame_passes_through_without_a_copy() {
    let mut a = BlockAssembler::new(1024);
    let fragment = Bytes::from(vec![1, 2, 3]);
    let done = a.start(1, fragment.clone(), true, true).unwrap().expect("whole");
    assert_eq!(done.block.as_ptr(), fragment.as_ptr());
    assert_eq!((done.stream, done.end_stream), (1, true));
    assert_eq!(a.expecting(), None);
}

#[test]
fn continuations_join_in_order() {
    let mut a = BlockAssembler::new(1024);
    assert_eq!(a.start(3, Bytes::from_static(b"ab"), false, false), Ok(None));
    assert_eq!(a.expecting(), Some(3));
    assert_eq!(a.push(3, Bytes::new(), false), Ok(None));
    assert_eq!(a.push(3, Bytes::from_static(b"cd"), false), Ok(None));
    assert_eq!(a.push(3, Bytes::from_static(b"e"), true), Ok(Some(block(3, b"abcde", false))));
    assert_eq!(a.expecting(), None);
    // And the next block starts clean.
    assert_eq!(a.start(5, Bytes::from_static(b"x"), true, false), Ok(None));
    assert_eq!(a.push(5, Bytes::from_static(b"y"), true), Ok(Some(block(5, b"xy", true))));
}

#[test]
fn continuation_without_an_open_block_is_a_protocol_error() {
    let mut a = BlockAssembler::new(1024);
    assert_eq!(a.push(1, Bytes::from_static(b"x"), true), Err(PROTOCOL));
    a.start(1, Bytes::from_static(b"x"), false, true).unwrap();
    assert_eq!(a.push(1, Bytes::from_static(b"x"), true), Err(PROTOCOL), "after the block ended");
}

#[test]
fn continuation_on_another_stream_is_a_protocol_error() {
    let mut a = BlockAssembler::new(1024);
    a.start(1, Bytes::from_static(b"x"), false, false).unwrap();
    assert_eq!(a.push(3, Bytes::from_static(b"y"), true), Err(PROTOCOL));
}

#[test]
fn headers_inside_an_open_block_is_a_protocol_error() {
    let mut a = BlockAssembler::new(1024);
    a.start(1, Bytes::from_static(b"x"), false, false).unwrap();
    assert_eq!(a.start(3, Bytes::from_static(b"y"), false, true), Err(PROTOCOL));
    assert_eq!(a.start(1, Bytes::from_static(b"y"), false, true), Err(PROTOCOL));
}

#[test]
fn the_limit_counts_fragments_and_frame_heads() {
    // Two frames: 2 * 9 bytes of heads and 10 of fragments.
    let limit = 2 * HEAD_LEN + 10;
    let mut a = BlockAssembler::new(limit);
    a.start(1, Bytes::from_static(b"01234"), false, false).unwrap();
    assert_eq!(a.push(1, Bytes::from_static(b"56789"), true), Ok(Some(block(1, b"0123456789", false))));
    let mut a = BlockAssembler::new(limit);
    a.start(1, Bytes::from_static(b"01234"), false, false).unwrap();
    assert_eq!(a.push(1, Bytes::from_static(b"56789X"), true), Err(CALM));
    // A single HEADERS frame is held to the limit as well.
    let mut a = BlockAssembler::new(HEAD_LEN + 3);
    assert!(a.start(1, Bytes::from_static(b"abc"), false, true).is_ok());
    assert_eq!(a.start(1, Bytes::from_static(b"abcd"), false, true), Err(CALM));
}

#[test]
fn empty_continuations_cannot_go_on_forever() {
    let mut a = BlockAssembler::new(16 * 1024);
    a.start(1, Bytes::new(), false, false).unwrap();
    let accepted = (0..10_000).take_while(|_| a.push(1, Bytes::new(), false).is_ok()).count();
    assert_eq!(accepted, 16 * 1024 / HEAD_LEN - 1);
    assert_eq!(a.push(1, Bytes::new(), true), Err(CALM));
}

#[test]
fn take_passes_other_frames_through_and_refuses_them_inside_a_block() {
    let mut a = BlockAssembler::new(16 * 1024);
    let ping = || Frame::Ping { ack: false, data: [0; 8] };
    assert!(matches!(a.take(ping()), Ok(Taken::Frame(Frame::Ping { .. }))));
    let headers = Frame::Headers {
        stream: 1,
        block: Bytes::from_static(b"ab"),
        end_stream: true,
        end_headers: false,
        priority: None,
    };
    assert!(matches!(a.take(headers), Ok(Taken::Partial)));
    // Inside the open block only its CONTINUATION may come (RFC 9113 §6.10).
    assert_eq!(a.take(ping()).err(), Some(PROTOCOL));
    let mut a = BlockAssembler::new(16 * 1024);
    let start = Frame::Headers {
        stream: 3,
        block: Bytes::from_static(b"ab"),
        end_stream: false,
        end_headers: false,
        priority: None,
    };
    assert!(matches!(a.take(start), Ok(Taken::Partial)));
    let end = Frame::Continuation { stream: 3, block: Bytes::from_static(b"cd"), end_headers: true };
    assert!(matches!(a.take(end), Ok(Taken::Block(b)) if b == block(3, b"abcd", false)));
}
