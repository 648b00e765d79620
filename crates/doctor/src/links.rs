//! Requests and connections joined by `conn_trace_id`, which ALB (and waygate) write at the end of every
//! access-log line and in every connection-log line. The report shows, for each 5xx cause, its first
//! requests with the connection they came on (client, listener, TLS version and cipher, client certificate,
//! `tls_verify_status`) and the other requests of that connection; and for each client TLS failure of the
//! connection logs, its first connections, which carry no request (the handshake failed).
//!
//! The first pass ([`crate::accum`]) keeps the examples: the [`EXAMPLES`] earliest requests of each cause
//! and connections of each failure reason, re-reading only those lines for their request and id. When the
//! input holds ALB connection logs, a second pass ([`Joiner`]) reads every line again and keeps only what
//! concerns those few ids; without connection logs nothing is read twice.

use std::borrow::Cow;

use crate::alb::split_alb;
use crate::classic::{Kind, kind};
use crate::connlog::{Conn, ConnKind};
use crate::fx::{FxHashMap, FxHashSet};
use crate::record::{Entry, Record, parse_entry};
use crate::time::Micros;

/// Examples kept per cause and per connection failure reason.
pub const EXAMPLES: usize = 3;
/// Requests of a linked connection shown (the earliest).
pub const CONNECTION_REQUESTS: usize = 5;
/// How much of a request line an example keeps.
const REQUEST_TEXT: usize = 200;

/// Where a line is: (file, chunk, line in chunk), to order ties in time the same way on every run.
pub(crate) type Place = (u32, u32, u64);

/// A request given as an example of its cause.
#[derive(Debug, Clone)]
pub(crate) struct RequestExample {
    pub time: Micros,
    pub place: Place,
    pub status: u16,
    pub target: Box<[u8]>,
    pub request: Box<[u8]>,
    pub trace_id: Option<Box<[u8]>>,
}

/// An ALB connection-log line, the fields an SRE reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnDetail {
    pub time: Micros,
    pub place: Place,
    pub client: Box<[u8]>,
    pub listener: Box<[u8]>,
    pub tls_protocol: Box<[u8]>,
    pub tls_cipher: Box<[u8]>,
    pub handshake: Box<[u8]>,
    pub subject: Box<[u8]>,
    pub verify: Box<[u8]>,
    pub trace_id: Option<Box<[u8]>>,
}

/// A connection's requests, as the second pass found them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnRequests {
    pub count: u64,
    pub elb_5xx: u64,
    /// The earliest: (time, place, elb_status_code, request line).
    pub first: Vec<(Micros, Place, u16, Box<[u8]>)>,
}

/// Whether a list ordered by (time, place) and capped at `cap` would take an item at `time`/`place`.
pub(crate) fn wants<T>(v: &[T], cap: usize, key: impl Fn(&T) -> (Micros, Place), time: Micros, place: Place) -> bool {
    v.len() < cap || v.last().is_some_and(|l| key(l) > (time, place))
}

/// Inserts `x` in (time, place) order, keeping the `cap` earliest.
pub(crate) fn keep<T>(v: &mut Vec<T>, cap: usize, key: impl Fn(&T) -> (Micros, Place), x: T) {
    let k = key(&x);
    let at = v.partition_point(|e| key(e) <= k);
    v.insert(at, x);
    v.truncate(cap);
}

fn owned(b: &[u8]) -> Box<[u8]> {
    b.into()
}

fn dash(b: &[u8]) -> bool {
    b.is_empty() || b == b"-"
}

fn first_byte(line: &[u8]) -> Option<(usize, u8)> {
    line.iter().position(|b| !b.is_ascii_whitespace()).map(|i| (i, line[i]))
}

/// `conn_trace_id` and `request` of a JSON line.
#[derive(serde::Deserialize)]
struct JsonIds<'a> {
    #[serde(borrow, default)]
    conn_trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<Cow<'a, str>>,
}

/// The request line and `conn_trace_id` of an access-log line (ALB, waygate's JSON, Classic: no id).
pub(crate) fn request_fields(line: &[u8]) -> (Box<[u8]>, Option<Box<[u8]>>) {
    let cut = |b: &[u8]| owned(&b[..b.len().min(REQUEST_TEXT)]);
    let id = |b: &[u8]| (!dash(b)).then(|| owned(b));
    match first_byte(line) {
        Some((i, b'{')) => match serde_json::from_slice::<JsonIds<'_>>(&line[i..]) {
            Ok(j) => (
                cut(j.request.as_deref().unwrap_or("-").as_bytes()),
                j.conn_trace_id.as_deref().and_then(|t| id(t.as_bytes())),
            ),
            Err(_) => (owned(b"-"), None),
        },
        Some((i, b'0'..=b'9')) => match split_alb(&line[i..]) {
            Ok(f) => (cut(f.get(11).unwrap_or(b"-")), None),
            Err(_) => (owned(b"-"), None),
        },
        _ => match split_alb(line) {
            Ok(f) => (cut(f.get(12).unwrap_or(b"-")), f.get(29).and_then(id)),
            Err(_) => (owned(b"-"), None),
        },
    }
}

/// The example of request `r` (its line is `line`).
pub(crate) fn request_example(line: &[u8], r: &Record<'_>, place: Place) -> RequestExample {
    let (request, trace_id) = request_fields(line);
    RequestExample { time: r.time, place, status: r.elb_status, target: owned(&r.target), request, trace_id }
}

/// The detail of an ALB connection-log line (`None` for the other connection logs).
pub(crate) fn conn_detail(line: &[u8], c: &Conn<'_>, place: Place) -> Option<ConnDetail> {
    if c.kind != ConnKind::AlbConnection {
        return None;
    }
    let start = first_byte(line)?.0;
    let f = split_alb(&line[start..]).ok()?;
    let get = |i: usize| owned(f.get(i).unwrap_or(b"-"));
    let ip = f.get(1).unwrap_or(b"-");
    let port = f.get(2).unwrap_or(b"-");
    let client = if ip.contains(&b':') { [b"[", ip, b"]:", port].concat() } else { [ip, b":", port].concat() };
    Some(ConnDetail {
        time: c.time,
        place,
        client: client.into(),
        listener: get(3),
        tls_protocol: get(4),
        tls_cipher: get(5),
        handshake: get(6),
        subject: get(7),
        verify: get(10),
        trace_id: (!c.trace_id.is_empty()).then(|| owned(c.trace_id)),
    })
}

/// The `conn_trace_id` of any line, found without parsing the rest: ALB access lines (field 30), ALB
/// connection-log lines (field 12), waygate's JSON lines (`"conn_trace_id"`).
fn line_trace_id(line: &[u8]) -> Option<&[u8]> {
    let id = match first_byte(line)? {
        (i, b'{') => {
            let key = b"\"conn_trace_id\":\"";
            let at = memchr::memmem::find(&line[i..], key)? + i + key.len();
            let end = memchr::memchr(b'"', &line[at..])? + at;
            &line[at..end]
        }
        (i, b'0'..=b'9') if kind(&line[i..]) == Kind::AlbConnection => split_alb(&line[i..]).ok()?.get(11)?,
        (_, b'0'..=b'9') => return None,
        _ if line.starts_with(b"tls 2.0 ") => return None,
        _ => split_alb(line).ok()?.get(29)?,
    };
    (!dash(id)).then_some(id)
}

/// What the second pass found for the wanted ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct Joined {
    pub conns: FxHashMap<Box<[u8]>, ConnDetail>,
    pub requests: FxHashMap<Box<[u8]>, ConnRequests>,
}

impl Joined {
    pub fn merge(mut self, o: Joined) -> Joined {
        for (k, d) in o.conns {
            match self.conns.get(&k) {
                Some(mine) if (mine.time, mine.place) <= (d.time, d.place) => {}
                _ => {
                    self.conns.insert(k, d);
                }
            }
        }
        for (k, r) in o.requests {
            let mine = self.requests.entry(k).or_default();
            mine.count += r.count;
            mine.elb_5xx += r.elb_5xx;
            for x in r.first {
                keep(&mut mine.first, CONNECTION_REQUESTS, |e| (e.0, e.1), x);
            }
        }
        self
    }
}

/// The second pass: every line whose `conn_trace_id` is wanted.
pub(crate) struct Joiner<'w> {
    pub wanted: &'w FxHashSet<Box<[u8]>>,
    pub joined: Joined,
}

impl Joiner<'_> {
    /// Scans one chunk (lines ending in LF, CRLF or CR alone, as the first pass reads them).
    pub fn process_chunk(&mut self, file: u32, chunk: u32, data: &[u8]) {
        let sep =
            if memchr::memchr(b'\n', data).is_none() && memchr::memchr(b'\r', data).is_some() { b'\r' } else { b'\n' };
        for (n, line) in data.split(|b| *b == sep).enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(id) = line_trace_id(line) else { continue };
            if !self.wanted.contains(id) {
                continue;
            }
            let place = (file, chunk, n as u64 + 1);
            match parse_entry(line) {
                Ok(Entry::Request(r)) => {
                    let e = self.joined.requests.entry(owned(id)).or_default();
                    e.count += 1;
                    e.elb_5xx += u64::from((500..600).contains(&r.elb_status));
                    if wants(&e.first, CONNECTION_REQUESTS, |x| (x.0, x.1), r.time, place) {
                        let x = (r.time, place, r.elb_status, request_fields(line).0);
                        keep(&mut e.first, CONNECTION_REQUESTS, |x| (x.0, x.1), x);
                    }
                }
                Ok(Entry::Connection(c)) => {
                    if let Some(d) = conn_detail(line, &c, place) {
                        let earlier = self.joined.conns.get(id).is_some_and(|m| (m.time, m.place) <= (d.time, place));
                        if !earlier {
                            self.joined.conns.insert(owned(id), d);
                        }
                    }
                }
                Err(_) => {}
            }
        }
    }
}
