//! The HTTP/2 frame layer under the gateway's own HTTP/2 server (`waygate_h2wire::frame`): any bytes, read as a
//! frame sequence, never panic; fed whole or in pieces they give the same frames and the same error; and every
//! frame that has a writer, written again, parses back to itself. The first byte sets the split size (low 7
//! bits) and, with its top bit, a small SETTINGS_MAX_FRAME_SIZE so that the oversize refusal is reached too.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use waygate_h2wire::frame::{
    self, BlockAssembler, DEFAULT_MAX_FRAME_SIZE, Frame, FrameError, Taken, write_data_head, write_goaway, write_headers,
    write_ping, write_rst_stream, write_settings_ack, write_window_update,
};

/// What the reads gave: frames and stream errors in order, the connection error that ended them (if any), and
/// how many bytes were left unparsed (0 after a connection error: the rest is never read, however much came).
type Reading = (Vec<Result<Frame, FrameError>>, Option<FrameError>, usize);

fn read<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max_frame_size: u32) -> Reading {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match frame::parse(&mut buf, max_frame_size) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e @ FrameError::Stream(..)) => out.push(Err(e)),
                Err(e) => return (out, Some(e), 0),
            }
        }
    }
    (out, None, buf.len())
}

/// Writes `frame` again with the writers and checks that it parses back to the frame those writers mean: the
/// same, less what they never send (padding, priority, a block split over CONTINUATION frames).
fn rewrite(frame: &Frame) {
    let mut b = BytesMut::new();
    let expected = match frame.clone() {
        Frame::Data { stream, data, end_stream, .. } => {
            let len = u32::try_from(data.len()).expect("a frame's payload fits its 24-bit length");
            write_data_head(stream, len, end_stream, &mut b);
            b.extend_from_slice(&data);
            Frame::Data { stream, data, end_stream, flow_len: len }
        }
        Frame::Headers { stream, block, end_stream, .. } => {
            write_headers(stream, &block, end_stream, DEFAULT_MAX_FRAME_SIZE, &mut b);
            Frame::Headers { stream, block, end_stream, end_headers: true, priority: None }
        }
        Frame::Settings(settings) => {
            settings.write(&mut b);
            frame.clone()
        }
        Frame::SettingsAck => {
            write_settings_ack(&mut b);
            frame.clone()
        }
        Frame::Ping { ack, data } => {
            write_ping(ack, data, &mut b);
            frame.clone()
        }
        Frame::GoAway { last_stream, code, ref debug } => {
            write_goaway(last_stream, code, debug, &mut b);
            frame.clone()
        }
        Frame::RstStream { stream, code } => {
            write_rst_stream(stream, code, &mut b);
            frame.clone()
        }
        Frame::WindowUpdate { stream, increment } => {
            write_window_update(stream, increment, &mut b);
            frame.clone()
        }
        Frame::Priority { .. } | Frame::PushPromise { .. } | Frame::Continuation { .. } | Frame::Unknown { .. } => {
            return;
        }
    };
    let (frames, error, left) = read([&b[..]], DEFAULT_MAX_FRAME_SIZE);
    assert_eq!((frames, error, left), (vec![Ok(expected)], None, 0), "{frame:?} written again");
}

/// Runs the frames through an assembler as the connections do ([`BlockAssembler::take`]): any order of them must
/// give answers, not panics, and only a frame outside any open block passes through.
fn assemble(frames: &[Result<Frame, FrameError>]) {
    let mut joiner = BlockAssembler::new(4096);
    for frame in frames.iter().flatten() {
        let was_open = joiner.expecting().is_some();
        match joiner.take(frame.clone()) {
            Ok(Taken::Block(block)) => assert!(joiner.expecting().is_none(), "{block:?} completed, yet a block is open"),
            Ok(Taken::Partial) => assert!(joiner.expecting().is_some(), "no block completed, yet none is open"),
            Ok(Taken::Frame(f)) => {
                assert!(!was_open, "{f:?} passed through an open block");
                assert!(!matches!(f, Frame::Headers { .. } | Frame::Continuation { .. }), "{f:?} passed through");
            }
            Err(_) => joiner = BlockAssembler::new(4096),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let max_frame_size = if split & 0x80 == 0 { DEFAULT_MAX_FRAME_SIZE } else { 64 };
    let size = usize::from(split & 0x7f).max(1);
    let whole = read([input], max_frame_size);
    assert_eq!(whole, read(input.chunks(size), max_frame_size), "the same bytes read in pieces of {size}");
    assert_eq!(whole, read(input.chunks(1), max_frame_size), "one byte at a time");
    for frame in whole.0.iter().flatten() {
        rewrite(frame);
    }
    assemble(&whole.0);
});
