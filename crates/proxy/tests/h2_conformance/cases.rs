//! The cases, each named by its h2spec id (`http2/<RFC 9113 section>/<n>`, `hpack/<RFC 7541 section>/<n>`,
//! `generic/...`) and doing what that h2spec case does, checked as h2spec checks it. They are the server
//! obligations of h2spec's suite that a gateway's HTTP/2 front end most easily loses: frame sizes and types,
//! stream states, SETTINGS, PING, flow control, CONTINUATION, HPACK errors and malformed requests.

use super::frames::*;

/// Every case: id and what it sends.
pub const CASES: &[(&str, &str)] = &[
    ("generic/2/1", "GET on a stream: a response"),
    ("generic/2/2", "POST with a body in DATA frames: a response"),
    ("generic/4/1", "a request with trailers: a response"),
    ("http2/3.5/2", "an invalid connection preface: connection error PROTOCOL_ERROR"),
    ("http2/4.1/1", "a frame of unknown type: ignored"),
    ("http2/4.1/2", "a frame with undefined flags: ignored"),
    ("http2/4.1/3", "a frame with the reserved bit set: ignored"),
    ("http2/4.2/1", "DATA of 2^14 octets: accepted"),
    ("http2/4.2/2", "DATA over SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR"),
    ("http2/4.2/3", "HEADERS over SETTINGS_MAX_FRAME_SIZE: connection error FRAME_SIZE_ERROR"),
    ("http2/4.3/1", "an invalid header block fragment: COMPRESSION_ERROR"),
    ("http2/4.3/2", "PRIORITY inside a header block: PROTOCOL_ERROR"),
    ("http2/4.3/3", "HEADERS of another stream inside a header block: PROTOCOL_ERROR"),
    ("http2/5.1/1", "DATA on an idle stream: PROTOCOL_ERROR"),
    ("http2/5.1/2", "RST_STREAM on an idle stream: PROTOCOL_ERROR"),
    ("http2/5.1/3", "WINDOW_UPDATE on an idle stream: PROTOCOL_ERROR"),
    ("http2/5.1/4", "CONTINUATION on an idle stream: PROTOCOL_ERROR"),
    ("http2/5.1/5", "DATA on a half-closed (remote) stream: STREAM_CLOSED"),
    ("http2/5.1/6", "HEADERS on a half-closed (remote) stream: STREAM_CLOSED"),
    ("http2/5.1/7", "CONTINUATION on a half-closed (remote) stream: STREAM_CLOSED or PROTOCOL_ERROR"),
    ("http2/5.1.1/1", "an even stream id from the client: PROTOCOL_ERROR"),
    ("http2/5.1.1/2", "a stream id below an earlier one: PROTOCOL_ERROR"),
    ("http2/5.3.1/1", "HEADERS depending on its own stream: PROTOCOL_ERROR"),
    ("http2/5.3.1/2", "PRIORITY depending on its own stream: PROTOCOL_ERROR"),
    ("http2/5.5/1", "an unknown extension frame: ignored"),
    ("http2/5.5/2", "an unknown extension frame inside a header block: PROTOCOL_ERROR"),
    ("http2/6.1/1", "DATA on stream 0: PROTOCOL_ERROR"),
    ("http2/6.1/3", "DATA with a pad length over its payload: PROTOCOL_ERROR"),
    ("http2/6.2/2", "HEADERS on stream 0: PROTOCOL_ERROR"),
    ("http2/6.2/3", "HEADERS with a pad length over its payload: PROTOCOL_ERROR"),
    ("http2/6.3/1", "PRIORITY on stream 0: PROTOCOL_ERROR"),
    ("http2/6.3/2", "PRIORITY of 4 octets: FRAME_SIZE_ERROR"),
    ("http2/6.4/1", "RST_STREAM on stream 0: PROTOCOL_ERROR"),
    ("http2/6.4/3", "RST_STREAM of 3 octets: FRAME_SIZE_ERROR"),
    ("http2/6.5/1", "a SETTINGS ACK with a payload: FRAME_SIZE_ERROR"),
    ("http2/6.5/2", "SETTINGS on stream 1: PROTOCOL_ERROR"),
    ("http2/6.5/3", "SETTINGS of 3 octets: FRAME_SIZE_ERROR"),
    ("http2/6.5.2/1", "SETTINGS_ENABLE_PUSH 2: PROTOCOL_ERROR"),
    ("http2/6.5.2/2", "SETTINGS_INITIAL_WINDOW_SIZE 2^31: FLOW_CONTROL_ERROR"),
    ("http2/6.5.2/3", "SETTINGS_MAX_FRAME_SIZE 16383: PROTOCOL_ERROR"),
    ("http2/6.5.2/4", "SETTINGS_MAX_FRAME_SIZE 2^24: PROTOCOL_ERROR"),
    ("http2/6.5.2/5", "an unknown setting: ignored, acknowledged"),
    ("http2/6.5.3/2", "SETTINGS: acknowledged"),
    ("http2/6.7/1", "PING: acknowledged with its data"),
    ("http2/6.7/2", "a PING ACK: not answered"),
    ("http2/6.7/3", "PING on stream 1: PROTOCOL_ERROR"),
    ("http2/6.7/4", "PING of 7 octets: FRAME_SIZE_ERROR"),
    ("http2/6.8/1", "GOAWAY on stream 1: PROTOCOL_ERROR"),
    ("http2/6.9/1", "a connection WINDOW_UPDATE of 0: PROTOCOL_ERROR"),
    ("http2/6.9/2", "a stream WINDOW_UPDATE of 0: PROTOCOL_ERROR"),
    ("http2/6.9/3", "WINDOW_UPDATE of 3 octets: FRAME_SIZE_ERROR"),
    ("http2/6.9.1/2", "a connection window over 2^31-1: FLOW_CONTROL_ERROR"),
    ("http2/6.9.1/3", "a stream window over 2^31-1: FLOW_CONTROL_ERROR"),
    ("http2/6.10/1", "HEADERS and several CONTINUATIONs: a response"),
    ("http2/6.10/2", "CONTINUATION followed by another frame type: PROTOCOL_ERROR"),
    ("http2/6.10/3", "CONTINUATION on stream 0: PROTOCOL_ERROR"),
    ("http2/6.10/4", "CONTINUATION after END_HEADERS: PROTOCOL_ERROR"),
    ("http2/8.1/1", "a second HEADERS without END_STREAM: PROTOCOL_ERROR"),
    ("http2/8.1.2/1", "an uppercase field name: PROTOCOL_ERROR"),
    ("http2/8.1.2.1/1", "an unknown pseudo-header: PROTOCOL_ERROR"),
    ("http2/8.1.2.1/2", "a response pseudo-header in a request: PROTOCOL_ERROR"),
    ("http2/8.1.2.1/3", "a pseudo-header in trailers: PROTOCOL_ERROR"),
    ("http2/8.1.2.1/4", "a pseudo-header after a regular field: PROTOCOL_ERROR"),
    ("http2/8.1.2.2/1", "a connection-specific field: PROTOCOL_ERROR"),
    ("http2/8.1.2.2/2", "TE other than trailers: PROTOCOL_ERROR"),
    ("http2/8.1.2.3/1", "an empty :path: PROTOCOL_ERROR"),
    ("http2/8.1.2.3/2", "no :method: PROTOCOL_ERROR"),
    ("http2/8.1.2.3/3", "no :scheme: PROTOCOL_ERROR"),
    ("http2/8.1.2.3/4", "no :path: PROTOCOL_ERROR"),
    ("http2/8.1.2.3/5", "a duplicated :method: PROTOCOL_ERROR"),
    ("http2/8.1.2.6/1", "content-length above the DATA sent: PROTOCOL_ERROR"),
    ("http2/8.1.2.6/2", "content-length above a request ended by its HEADERS: PROTOCOL_ERROR"),
    ("http2/8.2/1", "PUSH_PROMISE from a client: PROTOCOL_ERROR"),
    ("hpack/2.3.3/1", "an index beyond both tables: COMPRESSION_ERROR"),
    ("hpack/4.2/1", "a table size update over SETTINGS_HEADER_TABLE_SIZE: COMPRESSION_ERROR"),
    ("hpack/5.2/1", "a Huffman string holding EOS: COMPRESSION_ERROR"),
    ("hpack/6.1/1", "an indexed field of index 0: COMPRESSION_ERROR"),
    ("hpack/6.3/1", "a table size update after a field: COMPRESSION_ERROR"),
];

/// Cases that replace the handshake: they send something else first.
pub const BEFORE_HANDSHAKE: &[&str] = &["http2/3.5/2"];

/// A request's fields, then `extra`.
fn request(c: &Conn, method: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![(":method", method), (":scheme", c.scheme), (":path", "/"), (":authority", "localhost")];
    fields.extend_from_slice(extra);
    block(&fields)
}

/// Opens stream `id` with a POST whose body is still to come.
async fn open_post(c: &mut Conn, id: u32) {
    let b = request(c, "POST", &[]);
    c.send_frame(HEADERS, END_HEADERS, id, &b).await;
}

/// Sends a complete GET on `id`: the stream is then half-closed (remote).
async fn get(c: &mut Conn, id: u32) {
    let b = request(c, "GET", &[]);
    c.send_frame(HEADERS, END_HEADERS | END_STREAM, id, &b).await;
}

/// A malformed request (RFC 9113 §8.1.1): these fields as the whole header block, answered by a stream error.
async fn malformed(c: &mut Conn, fields: &[(&str, &str)]) -> Result<(), String> {
    c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(fields)).await;
    c.stream_error(1, &[PROTOCOL_ERROR]).await
}

fn base<'a>(c: &Conn) -> [(&'a str, &'a str); 4] {
    let scheme = if c.scheme == "https" { "https" } else { "http" };
    [(":method", "GET"), (":scheme", scheme), (":path", "/"), (":authority", "localhost")]
}

/// Runs the case `id` on a connection (after the handshake unless it is in [`BEFORE_HANDSHAKE`]).
pub async fn run(id: &str, c: &mut Conn) -> Result<(), String> {
    use PROTOCOL_ERROR as PE;
    let [m, s, p, a] = base(c);
    match id {
        "generic/2/1" => {
            get(c, 1).await;
            c.response(1).await
        }
        "generic/2/2" => {
            open_post(c, 1).await;
            c.send_frame(DATA, 0, 1, b"hello ").await;
            c.send_frame(DATA, END_STREAM, 1, b"world").await;
            c.response(1).await
        }
        "generic/4/1" => {
            open_post(c, 1).await;
            c.send_frame(DATA, 0, 1, b"body").await;
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(&[("x-trailer", "done")])).await;
            c.response(1).await
        }
        "http2/3.5/2" => {
            c.send(b"INVALID CONNECTION PREFACE\r\n\r\n").await;
            c.connection_error(&[PE]).await
        }
        "http2/4.1/1" | "http2/5.5/1" => {
            c.send_frame(UNKNOWN, 0, 0, b"x-unknown").await;
            c.alive().await
        }
        "http2/4.1/2" => {
            c.send_frame(PING, 0x16, 0, b"h2spec!!").await;
            c.ping_ack(b"h2spec!!").await
        }
        "http2/4.1/3" => {
            c.send(&[&[0, 0, 8, PING, 0, 0x80, 0, 0, 0][..], b"h2spec!!"].concat()).await;
            c.ping_ack(b"h2spec!!").await
        }
        "http2/4.2/1" => {
            open_post(c, 1).await;
            c.send_frame(DATA, END_STREAM, 1, &[b'x'; 16_384]).await;
            c.response(1).await
        }
        "http2/4.2/2" => {
            open_post(c, 1).await;
            c.send_frame(DATA, END_STREAM, 1, &[b'x'; 16_385]).await;
            c.stream_error(1, &[FRAME_SIZE_ERROR]).await
        }
        "http2/4.2/3" => {
            let big = "x".repeat(16_400);
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &request(c, "GET", &[("x-big", &big)])).await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/4.3/1" => {
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x00, 0x0a, b'a', b'b']).await;
            c.connection_error(&[COMPRESSION_ERROR]).await
        }
        "http2/4.3/2" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(PRIORITY, 0, 1, &[0, 0, 0, 0, 16]).await;
            c.connection_error(&[PE]).await
        }
        "http2/4.3/3" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 3, &request(c, "GET", &[])).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1/1" => {
            c.send_frame(DATA, END_STREAM, 1, b"x").await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1/2" => {
            c.send_frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1/3" => {
            c.send_frame(WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes()).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1/4" => {
            c.send_frame(CONTINUATION, END_HEADERS, 1, &request(c, "GET", &[])).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1/5" => {
            get(c, 1).await;
            c.send_frame(DATA, END_STREAM, 1, b"x").await;
            c.stream_error(1, &[STREAM_CLOSED]).await
        }
        "http2/5.1/6" => {
            get(c, 1).await;
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(&[("x-more", "1")])).await;
            c.stream_error(1, &[STREAM_CLOSED]).await
        }
        "http2/5.1/7" => {
            get(c, 1).await;
            c.send_frame(CONTINUATION, END_HEADERS, 1, &block(&[("x-more", "1")])).await;
            c.stream_error(1, &[STREAM_CLOSED, PE]).await
        }
        "http2/5.1.1/1" => {
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 2, &request(c, "GET", &[])).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.1.1/2" => {
            get(c, 5).await;
            c.response(5).await?;
            get(c, 3).await;
            c.connection_error(&[PE]).await
        }
        "http2/5.3.1/1" => {
            let b = [&[0, 0, 0, 1, 255][..], &request(c, "GET", &[])].concat();
            c.send_frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, &b).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/5.3.1/2" => {
            open_post(c, 1).await;
            c.send_frame(PRIORITY, 0, 1, &[0, 0, 0, 1, 255]).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/5.5/2" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(UNKNOWN, 0, 1, b"x-unknown").await;
            c.connection_error(&[PE]).await
        }
        "http2/6.1/1" => {
            c.send_frame(DATA, END_STREAM, 0, b"x").await;
            c.connection_error(&[PE]).await
        }
        "http2/6.1/3" => {
            open_post(c, 1).await;
            c.send_frame(DATA, PADDED | END_STREAM, 1, &[6, b'a', b'b', b'c', 0, 0]).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.2/2" => {
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 0, &request(c, "GET", &[])).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.2/3" => {
            let b = request(c, "GET", &[]);
            let pad = u8::try_from(b.len() + 10).unwrap_or(u8::MAX);
            c.send_frame(HEADERS, PADDED | END_HEADERS | END_STREAM, 1, &[&[pad][..], &b].concat()).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.3/1" => {
            c.send_frame(PRIORITY, 0, 0, &[0, 0, 0, 1, 16]).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.3/2" => {
            open_post(c, 1).await;
            c.send_frame(PRIORITY, 0, 1, &[0, 0, 0, 3]).await;
            c.stream_error(1, &[FRAME_SIZE_ERROR]).await
        }
        "http2/6.4/1" => {
            c.send_frame(RST_STREAM, 0, 0, &8u32.to_be_bytes()).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.4/3" => {
            open_post(c, 1).await;
            c.send_frame(RST_STREAM, 0, 1, &[0, 0, 8]).await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/6.5/1" => {
            c.send_frame(SETTINGS, ACK, 0, &settings(&[(INITIAL_WINDOW_SIZE, 100)])).await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/6.5/2" => {
            c.send_frame(SETTINGS, 0, 1, &settings(&[(INITIAL_WINDOW_SIZE, 100)])).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.5/3" => {
            c.send_frame(SETTINGS, 0, 0, &[0, 4, 0]).await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/6.5.2/1" => settings_error(c, ENABLE_PUSH, 2, PE).await,
        "http2/6.5.2/2" => settings_error(c, INITIAL_WINDOW_SIZE, 1 << 31, FLOW_CONTROL_ERROR).await,
        "http2/6.5.2/3" => settings_error(c, MAX_FRAME_SIZE, 16_383, PE).await,
        "http2/6.5.2/4" => settings_error(c, MAX_FRAME_SIZE, 1 << 24, PE).await,
        "http2/6.5.2/5" => {
            c.send_frame(SETTINGS, 0, 0, &settings(&[(0xff, 1)])).await;
            c.settings_ack().await
        }
        "http2/6.5.3/2" => {
            c.send_frame(SETTINGS, 0, 0, &settings(&[(INITIAL_WINDOW_SIZE, 65_535)])).await;
            c.settings_ack().await
        }
        "http2/6.7/1" => c.alive().await,
        "http2/6.7/2" => {
            c.send_frame(PING, ACK, 0, b"unasked!").await;
            c.alive().await
        }
        "http2/6.7/3" => {
            c.send_frame(PING, 0, 1, b"h2spec!!").await;
            c.connection_error(&[PE]).await
        }
        "http2/6.7/4" => {
            c.send_frame(PING, 0, 0, b"h2spec!").await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/6.8/1" => {
            c.send_frame(GOAWAY, 0, 1, &[0, 0, 0, 0, 0, 0, 0, 0]).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.9/1" => {
            c.send_frame(WINDOW_UPDATE, 0, 0, &0u32.to_be_bytes()).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.9/2" => {
            open_post(c, 1).await;
            c.send_frame(WINDOW_UPDATE, 0, 1, &0u32.to_be_bytes()).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/6.9/3" => {
            c.send_frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1]).await;
            c.connection_error(&[FRAME_SIZE_ERROR]).await
        }
        "http2/6.9.1/2" => {
            c.send_frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()).await;
            c.connection_error(&[FLOW_CONTROL_ERROR]).await
        }
        "http2/6.9.1/3" => {
            open_post(c, 1).await;
            c.send_frame(WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes()).await;
            c.stream_error(1, &[FLOW_CONTROL_ERROR]).await
        }
        "http2/6.10/1" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(CONTINUATION, 0, 1, &block(&[("x-a", "1")])).await;
            c.send_frame(CONTINUATION, END_HEADERS, 1, &block(&[("x-b", "2")])).await;
            c.response(1).await
        }
        "http2/6.10/2" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(CONTINUATION, 0, 1, &block(&[("x-a", "1")])).await;
            c.send_frame(DATA, 0, 1, b"x").await;
            c.connection_error(&[PE]).await
        }
        "http2/6.10/3" => {
            c.send_frame(HEADERS, END_STREAM, 1, &request(c, "GET", &[])).await;
            c.send_frame(CONTINUATION, END_HEADERS, 0, &block(&[("x-a", "1")])).await;
            c.connection_error(&[PE]).await
        }
        "http2/6.10/4" => {
            c.send_frame(HEADERS, END_HEADERS, 1, &request(c, "POST", &[])).await;
            c.send_frame(CONTINUATION, END_HEADERS, 1, &block(&[("x-a", "1")])).await;
            c.connection_error(&[PE]).await
        }
        "http2/8.1/1" => {
            open_post(c, 1).await;
            c.send_frame(DATA, 0, 1, b"x").await;
            c.send_frame(HEADERS, END_HEADERS, 1, &block(&[("x-trailer", "1")])).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/8.1.2/1" => malformed(c, &[m, s, p, a, ("X-Upper", "1")]).await,
        "http2/8.1.2.1/1" => malformed(c, &[m, s, p, a, (":unknown", "1")]).await,
        "http2/8.1.2.1/2" => malformed(c, &[m, s, p, a, (":status", "200")]).await,
        "http2/8.1.2.1/3" => {
            // As h2spec sends it: DATA, then the trailers without END_STREAM.
            open_post(c, 1).await;
            c.send_frame(DATA, 0, 1, b"test").await;
            c.send_frame(HEADERS, END_HEADERS, 1, &block(&[(":method", "POST")])).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/8.1.2.1/4" => malformed(c, &[m, s, ("x-first", "1"), p, a]).await,
        "http2/8.1.2.2/1" => malformed(c, &[m, s, p, a, ("connection", "keep-alive")]).await,
        "http2/8.1.2.2/2" => malformed(c, &[m, s, p, a, ("te", "gzip")]).await,
        "http2/8.1.2.3/1" => malformed(c, &[m, s, (":path", ""), a]).await,
        "http2/8.1.2.3/2" => malformed(c, &[s, p, a]).await,
        "http2/8.1.2.3/3" => malformed(c, &[m, p, a]).await,
        "http2/8.1.2.3/4" => malformed(c, &[m, s, a]).await,
        "http2/8.1.2.3/5" => malformed(c, &[m, m, s, p, a]).await,
        "http2/8.1.2.6/1" => {
            let b = request(c, "POST", &[("content-length", "1")]);
            c.send_frame(HEADERS, END_HEADERS, 1, &b).await;
            c.send_frame(DATA, END_STREAM, 1, b"four").await;
            c.stream_error(1, &[PE]).await
        }
        "http2/8.1.2.6/2" => {
            let b = request(c, "POST", &[("content-length", "4")]);
            c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, &b).await;
            c.stream_error(1, &[PE]).await
        }
        "http2/8.2/1" => {
            let b = [&[0, 0, 0, 2][..], &request(c, "GET", &[])].concat();
            c.send_frame(PUSH_PROMISE, END_HEADERS, 1, &b).await;
            c.connection_error(&[PE]).await
        }
        "hpack/2.3.3/1" => hpack_error(c, &[0xff, 0x80, 0x01]).await,
        "hpack/4.2/1" => hpack_error(c, &[0x3f, 0xe2, 0x1f]).await,
        "hpack/5.2/1" => hpack_error(c, &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, b'v']).await,
        "hpack/6.1/1" => hpack_error(c, &[0x80]).await,
        "hpack/6.3/1" => hpack_error(c, &[0x82, 0x20]).await,
        other => Err(format!("no case {other}")),
    }
}

async fn settings_error(c: &mut Conn, id: u16, value: u32, code: u32) -> Result<(), String> {
    c.send_frame(SETTINGS, 0, 0, &settings(&[(id, value)])).await;
    c.connection_error(&[code]).await
}

async fn hpack_error(c: &mut Conn, block: &[u8]) -> Result<(), String> {
    c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1, block).await;
    c.connection_error(&[COMPRESSION_ERROR]).await
}
