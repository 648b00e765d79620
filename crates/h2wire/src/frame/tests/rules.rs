//! Each validity rule of RFC 9113 §4 and §6 that `parse` enforces, with the frame just inside the rule next to
//! the one just outside it, so a rule that stopped being checked, or became too strict, fails here.

use bytes::Bytes;

use super::{conn, one, raw, stream};
use crate::frame::{DEFAULT_MAX_FRAME_SIZE, ErrorCode as E, Frame, FrameError, Priority, Settings, flag, kind, parse};

const PRIORITY_5: [u8; 5] = [0x80, 0, 0, 3, 15];

/// Frames that belong to a stream, each with a payload valid on stream 1.
fn stream_frames() -> [(u8, &'static [u8]); 6] {
    [
        (kind::DATA, b"x"),
        (kind::HEADERS, b"x"),
        (kind::PRIORITY, &[0, 0, 0, 3, 15]),
        (kind::RST_STREAM, &[0, 0, 0, 8]),
        (kind::PUSH_PROMISE, &[0, 0, 0, 2]),
        (kind::CONTINUATION, b"x"),
    ]
}

#[test]
fn stream_frames_on_stream_zero_are_protocol_errors() {
    for (k, payload) in stream_frames() {
        assert!(one(k, 0, 1, payload).is_ok(), "kind {k} on stream 1");
        assert_eq!(one(k, 0, 0, payload), conn(E::PROTOCOL_ERROR), "kind {k} on stream 0");
    }
}

#[test]
fn connection_frames_on_a_stream_are_protocol_errors() {
    for (k, payload) in [(kind::SETTINGS, &[][..]), (kind::PING, &[0; 8]), (kind::GOAWAY, &[0; 8])] {
        assert!(one(k, 0, 0, payload).is_ok(), "kind {k} on stream 0");
        assert_eq!(one(k, 0, 1, payload), conn(E::PROTOCOL_ERROR), "kind {k} on stream 1");
    }
}

#[test]
fn data_padding_must_be_shorter_than_the_payload() {
    let ok = one(kind::DATA, flag::PADDED | flag::END_STREAM, 1, &[2, b'a', 0, 0]);
    let data = Bytes::from_static(b"a");
    assert_eq!(ok, Ok(Frame::Data { stream: 1, data, end_stream: true, flow_len: 4 }));
    let empty = one(kind::DATA, flag::PADDED, 1, &[3, 0, 0, 0]);
    assert_eq!(empty, Ok(Frame::Data { stream: 1, data: Bytes::new(), end_stream: false, flow_len: 4 }));
    assert_eq!(one(kind::DATA, flag::PADDED, 1, &[4, 0, 0, 0]), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::DATA, flag::PADDED, 1, &[1]), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::DATA, flag::PADDED, 1, &[255, 0]), conn(E::PROTOCOL_ERROR));
    // No room for the Pad Length byte itself: too small for its mandatory data (§4.2).
    assert_eq!(one(kind::DATA, flag::PADDED, 1, &[]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn headers_padding_must_be_shorter_than_the_payload() {
    let ok = one(kind::HEADERS, flag::PADDED | flag::END_HEADERS, 1, &[1, b'h', 0]);
    let block = Bytes::from_static(b"h");
    let expected = Frame::Headers { stream: 1, block, end_stream: false, end_headers: true, priority: None };
    assert_eq!(ok, Ok(expected));
    let all_padding = one(kind::HEADERS, flag::PADDED, 1, &[2, 0, 0]);
    assert!(matches!(all_padding, Ok(Frame::Headers { ref block, .. }) if block.is_empty()));
    assert_eq!(one(kind::HEADERS, flag::PADDED, 1, &[3, b'h', 0]), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::HEADERS, flag::PADDED, 1, &[4, b'h', 0]), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::HEADERS, flag::PADDED, 1, &[]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn headers_with_priority_need_five_more_bytes() {
    let priority = Some(Priority { dependency: 3, exclusive: true, weight: 15 });
    let ok = one(kind::HEADERS, flag::PRIORITY | flag::END_STREAM, 1, &[0x80, 0, 0, 3, 15, b'h']);
    let block = Bytes::from_static(b"h");
    assert_eq!(ok, Ok(Frame::Headers { stream: 1, block, end_stream: true, end_headers: false, priority }));
    let bare = one(kind::HEADERS, flag::PRIORITY, 1, &PRIORITY_5);
    let block = Bytes::new();
    assert_eq!(bare, Ok(Frame::Headers { stream: 1, block, end_stream: false, end_headers: false, priority }));
    assert_eq!(one(kind::HEADERS, flag::PRIORITY, 1, &PRIORITY_5[..4]), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::HEADERS, flag::PRIORITY, 1, &[]), conn(E::FRAME_SIZE_ERROR));
    // Padded too: the Pad Length byte and the five bytes, then padding that must fit after them (§6.2).
    let padded = |pad: u8, tail: &[u8]| {
        let payload: Vec<u8> = [&[pad][..], &PRIORITY_5, tail].concat();
        one(kind::HEADERS, flag::PADDED | flag::PRIORITY, 1, &payload)
    };
    assert!(matches!(padded(1, b"h\0"), Ok(Frame::Headers { ref block, priority: Some(_), .. }) if block == "h"));
    assert_eq!(padded(3, b"h\0"), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::HEADERS, flag::PADDED | flag::PRIORITY, 1, &[0, 0x80, 0, 0]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn priority_must_be_five_bytes_on_pain_of_a_stream_error() {
    let priority = Priority { dependency: 3, exclusive: false, weight: 15 };
    assert_eq!(one(kind::PRIORITY, 0, 1, &[0, 0, 0, 3, 15]), Ok(Frame::Priority { stream: 1, priority }));
    assert_eq!(one(kind::PRIORITY, 0, 1, &[0, 0, 0, 3]), stream(1, E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::PRIORITY, 0, 9, &[0, 0, 0, 3, 15, 0]), stream(9, E::FRAME_SIZE_ERROR));
}

#[test]
fn depending_on_its_own_stream_is_refused() {
    // PRIORITY: the stream error of §5.3.1, the exclusive bit notwithstanding.
    assert_eq!(one(kind::PRIORITY, 0, 3, &[0x80, 0, 0, 3, 15]), stream(3, E::PROTOCOL_ERROR));
    assert_eq!(one(kind::PRIORITY, 0, 3, &[0, 0, 0, 3, 15]), stream(3, E::PROTOCOL_ERROR));
    // HEADERS: on the connection, as the block it carries cannot be dropped undecoded (see `parse`).
    assert_eq!(one(kind::HEADERS, flag::PRIORITY, 3, &PRIORITY_5), conn(E::PROTOCOL_ERROR));
    assert!(one(kind::HEADERS, flag::PRIORITY, 5, &PRIORITY_5).is_ok());
}

#[test]
fn rst_stream_must_be_four_bytes() {
    assert_eq!(one(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]), Ok(Frame::RstStream { stream: 1, code: E::CANCEL }));
    assert_eq!(one(kind::RST_STREAM, 0, 1, &[0, 0, 8]), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::RST_STREAM, 0, 1, &[0, 0, 0, 0, 8]), conn(E::FRAME_SIZE_ERROR));
}

fn setting(id: u16, value: u32) -> Vec<u8> {
    [&id.to_be_bytes()[..], &value.to_be_bytes()].concat()
}

fn settings(payload: &[u8]) -> Result<Frame, FrameError> {
    one(kind::SETTINGS, 0, 0, payload)
}

#[test]
fn settings_length_must_be_a_multiple_of_six() {
    assert_eq!(settings(&[]), Ok(Frame::Settings(Settings::default())));
    let twice = [setting(3, 100), setting(3, 7)].concat();
    let last_wins = Settings { max_concurrent_streams: Some(7), ..Settings::default() };
    assert_eq!(settings(&twice), Ok(Frame::Settings(last_wins)));
    assert_eq!(settings(&twice[..11]), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(settings(&[0; 5]), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(settings(&[0; 7]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn settings_ack_must_be_empty() {
    assert_eq!(one(kind::SETTINGS, flag::ACK, 0, &[]), Ok(Frame::SettingsAck));
    assert_eq!(one(kind::SETTINGS, flag::ACK, 0, &setting(3, 1)), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::SETTINGS, flag::ACK, 0, &[0]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn settings_values_are_read_and_unknown_ones_ignored() {
    let payload = [
        setting(1, 4096),
        setting(2, 0),
        setting(3, 100),
        setting(4, 65_535),
        setting(5, 32_768),
        setting(6, 8192),
        setting(8, 1),
        setting(0x7, 5),
        setting(0xabcd, u32::MAX),
    ]
    .concat();
    let expected = Settings {
        header_table_size: Some(4096),
        enable_push: Some(false),
        max_concurrent_streams: Some(100),
        initial_window_size: Some(65_535),
        max_frame_size: Some(32_768),
        max_header_list_size: Some(8192),
        enable_connect_protocol: Some(true),
    };
    assert_eq!(settings(&payload), Ok(Frame::Settings(expected)));
}

#[test]
fn boolean_settings_must_be_zero_or_one() {
    for id in [2, 8] {
        assert!(settings(&setting(id, 0)).is_ok());
        assert!(settings(&setting(id, 1)).is_ok());
        assert_eq!(settings(&setting(id, 2)), conn(E::PROTOCOL_ERROR), "setting {id}");
        assert_eq!(settings(&setting(id, u32::MAX)), conn(E::PROTOCOL_ERROR), "setting {id}");
    }
}

#[test]
fn initial_window_size_above_2_31_minus_1_is_a_flow_control_error() {
    let max = Settings { initial_window_size: Some(0x7fff_ffff), ..Settings::default() };
    assert_eq!(settings(&setting(4, 0x7fff_ffff)), Ok(Frame::Settings(max)));
    assert_eq!(settings(&setting(4, 0x8000_0000)), conn(E::FLOW_CONTROL_ERROR));
    assert_eq!(settings(&setting(4, u32::MAX)), conn(E::FLOW_CONTROL_ERROR));
}

#[test]
fn max_frame_size_must_be_within_its_range() {
    for ok in [16_384, 16_777_215] {
        let s = Settings { max_frame_size: Some(ok), ..Settings::default() };
        assert_eq!(settings(&setting(5, ok)), Ok(Frame::Settings(s)));
    }
    for bad in [0, 16_383, 16_777_216, u32::MAX] {
        assert_eq!(settings(&setting(5, bad)), conn(E::PROTOCOL_ERROR), "max frame size {bad}");
    }
}

#[test]
fn ping_must_be_eight_bytes() {
    assert_eq!(one(kind::PING, flag::ACK, 0, b"12345678"), Ok(Frame::Ping { ack: true, data: *b"12345678" }));
    assert_eq!(one(kind::PING, 0, 0, b"12345678"), Ok(Frame::Ping { ack: false, data: *b"12345678" }));
    assert_eq!(one(kind::PING, 0, 0, b"1234567"), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::PING, 0, 0, b"123456789"), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn goaway_must_be_at_least_eight_bytes() {
    let debug = Bytes::from_static(b"bye");
    let frame = Frame::GoAway { last_stream: 5, code: E::ENHANCE_YOUR_CALM, debug };
    assert_eq!(one(kind::GOAWAY, 0, 0, &[0x80, 0, 0, 5, 0, 0, 0, 0xb, b'b', b'y', b'e']), Ok(frame));
    let frame = Frame::GoAway { last_stream: 0, code: E(0x1234), debug: Bytes::new() };
    assert_eq!(one(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0x12, 0x34]), Ok(frame));
    assert_eq!(one(kind::GOAWAY, 0, 0, &[0; 7]), conn(E::FRAME_SIZE_ERROR));
    assert_eq!(one(kind::GOAWAY, 0, 0, &[]), conn(E::FRAME_SIZE_ERROR));
}

#[test]
fn window_update_must_be_four_bytes() {
    for id in [0, 1] {
        let ok = Frame::WindowUpdate { stream: id, increment: 1 };
        assert_eq!(one(kind::WINDOW_UPDATE, 0, id, &[0, 0, 0, 1]), Ok(ok));
        assert_eq!(one(kind::WINDOW_UPDATE, 0, id, &[0, 0, 1]), conn(E::FRAME_SIZE_ERROR));
        assert_eq!(one(kind::WINDOW_UPDATE, 0, id, &[0, 0, 0, 0, 1]), conn(E::FRAME_SIZE_ERROR));
    }
}

#[test]
fn window_update_of_zero_is_a_protocol_error_on_its_scope() {
    assert_eq!(one(kind::WINDOW_UPDATE, 0, 7, &[0, 0, 0, 0]), stream(7, E::PROTOCOL_ERROR));
    assert_eq!(one(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]), conn(E::PROTOCOL_ERROR));
    // Only the reserved bit set: still an increment of 0.
    assert_eq!(one(kind::WINDOW_UPDATE, 0, 7, &[0x80, 0, 0, 0]), stream(7, E::PROTOCOL_ERROR));
    let max = Frame::WindowUpdate { stream: 0, increment: 0x7fff_ffff };
    assert_eq!(one(kind::WINDOW_UPDATE, 0, 0, &[0xff; 4]), Ok(max));
}

#[test]
fn reserved_bits_are_ignored_on_read() {
    let frame = Frame::RstStream { stream: 1, code: E::CANCEL };
    assert_eq!(one(kind::RST_STREAM, 0, 0x8000_0001, &[0, 0, 0, 8]), Ok(frame));
    // Stream 0 with the reserved bit set is still stream 0.
    assert_eq!(one(kind::DATA, 0, 0x8000_0000, b"x"), conn(E::PROTOCOL_ERROR));
    assert_eq!(one(kind::PING, 0, 0x8000_0000, &[0; 8]), Ok(Frame::Ping { ack: false, data: [0; 8] }));
    let frame = Frame::WindowUpdate { stream: 3, increment: 9 };
    assert_eq!(one(kind::WINDOW_UPDATE, 0, 0x8000_0003, &[0x80, 0, 0, 9]), Ok(frame));
}

#[test]
fn undefined_flags_are_ignored() {
    let frame = Frame::Data { stream: 1, data: Bytes::from_static(b"x"), end_stream: false, flow_len: 1 };
    assert_eq!(one(kind::DATA, !(flag::PADDED | flag::END_STREAM), 1, b"x"), Ok(frame));
    assert_eq!(one(kind::PING, 0xfe, 0, &[0; 8]), Ok(Frame::Ping { ack: false, data: [0; 8] }));
}

#[test]
fn unknown_types_parse_as_unknown() {
    assert_eq!(one(0xa, 0xff, 0, b"anything"), Ok(Frame::Unknown { kind: 0xa, stream: 0 }));
    assert_eq!(one(0xff, 0, 0x8000_0009, &[]), Ok(Frame::Unknown { kind: 0xff, stream: 9 }));
}

#[test]
fn parsing_goes_on_after_a_stream_error() {
    let mut b = raw(kind::PRIORITY, 0, 1, &[0; 4]);
    b.extend_from_slice(&raw(kind::WINDOW_UPDATE, 0, 3, &[0; 4]));
    b.extend_from_slice(&raw(0x42, 0, 3, b"skip me"));
    b.extend_from_slice(&raw(kind::PING, 0, 0, b"abcdefgh"));
    assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Err(FrameError::Stream(1, E::FRAME_SIZE_ERROR)));
    assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Err(FrameError::Stream(3, E::PROTOCOL_ERROR)));
    assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(Some(Frame::Unknown { kind: 0x42, stream: 3 })));
    assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(Some(Frame::Ping { ack: false, data: *b"abcdefgh" })));
    assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(None));
}
