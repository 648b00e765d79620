//! Every writer read back by `parse`, header blocks split into CONTINUATION frames at the peer's frame size,
//! frames cut short at every byte, and frames too large refused from their head alone.

use bytes::{Bytes, BytesMut};

use super::{conn, raw};
use crate::frame::{
    BlockAssembler, DEFAULT_MAX_FRAME_SIZE, ErrorCode as E, Frame, HEAD_LEN, Priority, Settings, flag, kind, parse,
    write_data_head, write_goaway, write_headers, write_ping, write_rst_stream, write_settings_ack,
    write_window_update,
};

/// All the frames in `b`, which must hold nothing else.
fn frames(mut b: BytesMut, max_frame_size: u32) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(frame) = parse(&mut b, max_frame_size).expect("a valid frame") {
        out.push(frame);
    }
    assert!(b.is_empty(), "{} bytes left over", b.len());
    out
}

fn written(write: impl FnOnce(&mut BytesMut)) -> Vec<Frame> {
    let mut b = BytesMut::new();
    write(&mut b);
    frames(b, DEFAULT_MAX_FRAME_SIZE)
}

#[test]
fn control_frames_read_back_as_written() {
    assert_eq!(written(write_settings_ack), [Frame::SettingsAck]);
    for ack in [false, true] {
        assert_eq!(written(|b| write_ping(ack, *b"pingpong", b)), [Frame::Ping { ack, data: *b"pingpong" }]);
    }
    let goaway = Frame::GoAway { last_stream: 0x7fff_ffff, code: E(0xdead), debug: Bytes::from_static(b"why") };
    assert_eq!(written(|b| write_goaway(u32::MAX, E(0xdead), b"why", b)), [goaway]);
    let rst = Frame::RstStream { stream: 5, code: E::REFUSED_STREAM };
    assert_eq!(written(|b| write_rst_stream(5, E::REFUSED_STREAM, b)), [rst]);
    for stream in [0, 1, 0x7fff_ffff] {
        let update = Frame::WindowUpdate { stream, increment: 0x7fff_ffff };
        assert_eq!(written(|b| write_window_update(stream, 0x7fff_ffff, b)), [update]);
    }
}

#[test]
fn settings_read_back_as_written() {
    let all = Settings {
        header_table_size: Some(0),
        enable_push: Some(false),
        max_concurrent_streams: Some(250),
        initial_window_size: Some(1 << 20),
        max_frame_size: Some(16_777_215),
        max_header_list_size: Some(u32::MAX),
        enable_connect_protocol: Some(true),
    };
    for settings in [all, Settings::default(), Settings { enable_push: Some(true), ..Settings::default() }] {
        assert_eq!(written(|b| settings.write(b)), [Frame::Settings(settings)]);
    }
    let mut b = BytesMut::new();
    all.write(&mut b);
    assert_eq!(b.len(), HEAD_LEN + 7 * 6);
}

#[test]
fn goaway_debug_data_is_cut_to_fit_any_peer() {
    let debug = vec![b'd'; 20_000];
    let [Frame::GoAway { debug: read, .. }] = &written(|b| write_goaway(1, E::NO_ERROR, &debug, b))[..] else {
        panic!("one GOAWAY");
    };
    assert_eq!(read.len(), DEFAULT_MAX_FRAME_SIZE as usize - 8);
}

#[test]
fn data_head_and_payload_read_back_as_data() {
    for end_stream in [false, true] {
        let mut b = BytesMut::new();
        write_data_head(3, 5, end_stream, &mut b);
        assert_eq!(b.len(), HEAD_LEN);
        b.extend_from_slice(b"hello");
        let data = Bytes::from_static(b"hello");
        assert_eq!(frames(b, DEFAULT_MAX_FRAME_SIZE), [Frame::Data { stream: 3, data, end_stream, flow_len: 5 }]);
    }
}

/// The flags and lengths of the frames `write_headers` made, and the block joined back.
fn split(len: usize, peer_max: u32, end_stream: bool) -> (Vec<(u8, bool, usize)>, Bytes) {
    let block: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut b = BytesMut::new();
    write_headers(7, &block, end_stream, peer_max, &mut b);
    let mut joiner = BlockAssembler::new(1 << 20);
    let mut shape = Vec::new();
    let mut whole = None;
    for frame in frames(b, peer_max.max(DEFAULT_MAX_FRAME_SIZE)) {
        let done = match frame {
            Frame::Headers { stream: 7, block, end_stream: es, end_headers, priority: None } => {
                assert_eq!(es, end_stream);
                shape.push((kind::HEADERS, end_headers, block.len()));
                joiner.start(7, block, es, end_headers)
            }
            Frame::Continuation { stream: 7, block, end_headers } => {
                shape.push((kind::CONTINUATION, end_headers, block.len()));
                joiner.push(7, block, end_headers)
            }
            other => panic!("unexpected {other:?}"),
        };
        if let Some(done) = done.expect("the block joins") {
            assert!(whole.is_none(), "one block");
            assert_eq!((done.stream, done.end_stream), (7, end_stream));
            whole = Some(done.block);
        }
    }
    let whole = whole.expect("the block completes");
    assert_eq!(whole, block);
    (shape, whole)
}

#[test]
fn write_headers_splits_at_the_peers_frame_size() {
    let (h, c) = (kind::HEADERS, kind::CONTINUATION);
    assert_eq!(split(0, 16_384, true).0, [(h, true, 0)]);
    assert_eq!(split(100, 16_384, false).0, [(h, true, 100)]);
    assert_eq!(split(16_384, 16_384, false).0, [(h, true, 16_384)]);
    assert_eq!(split(16_385, 16_384, true).0, [(h, false, 16_384), (c, true, 1)]);
    assert_eq!(split(40_000, 16_384, false).0, [(h, false, 16_384), (c, false, 16_384), (c, true, 7_232)]);
    assert_eq!(split(40_000, 20_000, true).0, [(h, false, 20_000), (c, true, 20_000)]);
    assert_eq!(split(40_000, 1 << 20, false).0, [(h, true, 40_000)]);
    // A size no peer may announce is taken as the nearest bound, never as a reason to loop or panic.
    assert_eq!(split(20_000, 0, false).0, [(h, false, 16_384), (c, true, 3_616)]);
}

/// Frames of every kind that carries a payload, padding and priority included.
fn samples() -> Vec<BytesMut> {
    vec![
        raw(kind::DATA, flag::PADDED | flag::END_STREAM, 1, &[3, b'a', b'b', 0, 0, 0]),
        raw(kind::HEADERS, flag::PADDED | flag::PRIORITY, 3, &[1, 0, 0, 0, 1, 7, b'h', 0]),
        raw(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 9, 0, 4, 0, 0, 1, 0]),
        raw(kind::GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0, b'x']),
        raw(kind::PING, 0, 0, b"12345678"),
        raw(kind::SETTINGS, flag::ACK, 0, &[]),
        raw(0x20, 0, 0, b"??"),
    ]
}

#[test]
fn every_prefix_of_a_frame_is_incomplete_and_the_whole_parses() {
    for sample in samples() {
        let whole = parse(&mut sample.clone(), DEFAULT_MAX_FRAME_SIZE).expect("valid").expect("whole");
        for cut in 0..sample.len() {
            let mut b = BytesMut::from(&sample[..cut]);
            assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(None), "{whole:?} cut at {cut}");
            assert_eq!(b, sample[..cut], "an incomplete frame is left in the buffer");
            b.extend_from_slice(&sample[cut..]);
            assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(Some(whole.clone())), "completed at {cut}");
            assert!(b.is_empty());
        }
    }
    let headers = Frame::Headers {
        stream: 3,
        block: Bytes::from_static(b"h"),
        end_stream: false,
        end_headers: false,
        priority: Some(Priority { dependency: 1, exclusive: false, weight: 7 }),
    };
    assert_eq!(parse(&mut samples()[1].clone(), DEFAULT_MAX_FRAME_SIZE), Ok(Some(headers)));
}

#[test]
fn frames_in_one_buffer_parse_in_order() {
    let mut b = BytesMut::new();
    let samples = samples();
    let each: Vec<Frame> = samples.iter().flat_map(|s| frames(s.clone(), DEFAULT_MAX_FRAME_SIZE)).collect();
    samples.iter().for_each(|s| b.extend_from_slice(s));
    assert_eq!(frames(b, DEFAULT_MAX_FRAME_SIZE), each);
}

#[test]
fn a_frame_above_max_frame_size_is_refused_from_its_head() {
    let head_only = |len: usize| BytesMut::from(&raw(kind::DATA, 0, 1, &vec![0; len])[..HEAD_LEN]);
    assert_eq!(parse(&mut head_only(16_384), 16_384), Ok(None));
    assert_eq!(parse(&mut head_only(16_385), 16_384), conn(E::FRAME_SIZE_ERROR).map(Some));
    assert_eq!(parse(&mut head_only(16_385), 16_385), Ok(None));
    // Whatever the type: even one this endpoint would ignore.
    let mut unknown = BytesMut::from(&raw(0x33, 0, 0, &[0; 101])[..HEAD_LEN]);
    assert_eq!(parse(&mut unknown, 100), conn(E::FRAME_SIZE_ERROR).map(Some));
    let mut settings = BytesMut::from(&raw(kind::SETTINGS, 0, 0, &[0; 16_386])[..]);
    assert_eq!(parse(&mut settings, DEFAULT_MAX_FRAME_SIZE), conn(E::FRAME_SIZE_ERROR).map(Some));
}
