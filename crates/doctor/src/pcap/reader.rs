//! Streaming capture reader: pcap (micro- or nanosecond, either byte order) and pcapng (any number of
//! sections and interfaces) through `pcap-parser`'s circular buffer, one [`Frame`] at a time, so memory
//! stays bounded by the largest block whatever the file's size; gzip- and zstd-compressed captures are read
//! through a decompressor. A truncated file ends the stream with a [`Problem`] saying what and where; a corrupt
//! block is named at its offset and reading resumes at the next valid block ([`super::resync`]).

use std::io::{self, Read};

use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::decode::linktype;
use super::resync;
use super::zst::Zstd;

/// Initial buffer; grown (up to [`MAX_BLOCK`]) for larger blocks.
const BUFFER: usize = 128 << 10;
/// The largest block accepted: far above any real snaplen (262144), far below what would hurt.
pub const MAX_BLOCK: usize = 64 << 20;

/// Timestamps are clamped to `0..=MAX_TS` so that any difference of two fits an i64 (a corrupt pcapng
/// interface offset can say anything).
pub const MAX_TS: i64 = 1 << 62;

/// One captured packet, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 1-based, like Wireshark: every packet record counts, decodable or not.
    pub number: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The LINKTYPE_ number of the packet's interface.
    pub linktype: i32,
    pub data: &'a [u8],
}

/// Which file format the capture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }
}

/// What kind of problem, as JSON names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file ends inside a block: reading stopped there.
    Truncated,
    /// A block could not be parsed: reading resumed at the next valid block, or stopped.
    Corrupt,
    /// A pcapng packet names an interface no block described: the packet was skipped.
    UnknownInterface,
    /// Frames of a link type the decoder does not know were counted, not decoded.
    UnsupportedLinkType,
}

/// Why reading stopped early (or a block was skipped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Byte offset in the file where the bad or missing block starts.
    pub offset: u64,
    /// The last frame read before it (0: none).
    pub after_frame: u64,
    pub message: String,
}

/// What a whole read produced besides the frames.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub format: Option<Format>,
    pub frames: u64,
    /// Bytes consumed from the input (the whole file when nothing went wrong).
    pub bytes: u64,
    /// Problems met; reading stops at a `truncated` one, and at a `corrupt` one with nothing valid after it.
    pub problems: Vec<Problem>,
}

/// The input is not a capture at all (or cannot be read from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACapture(pub String);

impl std::fmt::Display for NotACapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second.
    units: u64,
    offset_secs: i64,
}

/// Reads until the buffer is full or the input ends. pcap-parser takes a short read for the end of the input
/// (at the header: "not a capture"; in a block: truncated), and a pipe or FIFO gives short reads. A read
/// error (a corrupt gzip stream, a failing disk) ends the input there, as if the file ended, and is kept in
/// `error` to be named as the reason: pcap-parser would otherwise drop the bytes read before it.
struct Filling<R> {
    inner: R,
    error: Arc<Mutex<Option<String>>>,
}

impl<R: Read> Read for Filling<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Ok(mut slot) = self.error.lock() {
                        slot.get_or_insert_with(|| e.to_string());
                    }
                    break;
                }
            }
        }
        Ok(filled)
    }
}

enum Step {
    Consume(usize),
    Refill,
    Grow(usize),
    Truncated,
    Corrupt(String),
    Eof,
}

/// How to find the next block after a corrupt one, once the file's format is known.
#[derive(Clone, Copy)]
enum Resync {
    Legacy(resync::Legacy),
    Ng { big: bool },
}

/// Bytes scanned for the next valid block after a corrupt one before giving up: four times the largest
/// snaplen tools write (262144), so a garbled length costs at most a few frames; past it, the rest of the
/// file is not a capture any more.
const SCAN_LIMIT: usize = 1 << 20;
/// Bytes kept at the end of the buffer between scans, so a block that straddles two fills is seen whole.
const SCAN_KEEP: usize = 64 << 10;

/// Reads every frame of `input`, calling `each` in order. Errors only when the input is not a capture.
/// A gzip- or zstd-compressed capture (by its magic bytes, whatever the name) is read through the
/// decompressor; its offsets are then those of the decompressed capture.
pub fn read_frames<R: Read + Send>(input: R, mut each: impl FnMut(Frame<'_>)) -> Result<Summary, NotACapture> {
    let (input, compression) = Source::open(input)?;
    let error = Arc::new(Mutex::new(None));
    let filling = Filling { inner: input, error: Arc::clone(&error) };
    let read_error = |fallback: &str| {
        let e = error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| fallback.to_owned());
        match compression {
            Some(c) => format!("the {c} stream is corrupt ({e})"),
            None => format!("read error ({e})"),
        }
    };
    let failed = || error.lock().ok().and_then(|e| e.clone()).is_some();
    let mut reader = match pcap_parser::create_reader(BUFFER, filling) {
        Ok(r) => r,
        Err(_) if failed() => return Err(NotACapture(read_error("read error"))),
        Err(PcapError::Eof) => return Err(NotACapture(format!("the {}file is empty", compressed(compression)))),
        Err(PcapError::HeaderNotRecognized) => {
            return Err(NotACapture(format!(
                "not a pcap or pcapng capture{}: it starts with neither magic number (pcap a1b2c3d4 or \
                 a1b23c4d in either byte order, pcapng 0a0d0d0a)",
                compression.map_or(String::new(), |c| format!(" inside the {c} stream"))
            )));
        }
        Err(PcapError::Incomplete(_) | PcapError::UnexpectedEof) => {
            return Err(NotACapture(format!("the {}file is shorter than a capture header", compressed(compression))));
        }
        Err(PcapError::ReadError) => return Err(NotACapture(read_error("read error"))),
        Err(e) => return Err(NotACapture(format!("not a readable capture: {}", short(&e.to_string())))),
    };
    let mut summary = Summary::default();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut legacy: Option<Interface> = None;
    let mut resync: Option<Resync> = None;
    let mut last_ts = 0i64;
    let mut stalls = 0u32;
    loop {
        let block_offset = reader.consumed();
        // pcap-parser takes any 16 bytes for a legacy record header: check them first, so a corrupt length
        // is named where it is instead of garbling every record after it.
        if let Some(Resync::Legacy(l)) = resync
            && let Some(detail) = l.problem(reader.data())
        {
            let problem = corrupt(block_offset, &summary, detail);
            if !resume(&mut *reader, resync, problem, &mut summary) {
                break;
            }
            continue;
        }
        let step = match reader.next() {
            Ok((size, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        summary.format = Some(Format::Pcap);
                        let units = if h.is_nanosecond_precision() { 1_000_000_000 } else { 1_000_000 };
                        let linktype = linktype::proper(h.network.0);
                        legacy = Some(Interface { linktype, units, offset_secs: 0 });
                        if !h.is_modified_format() {
                            let big = h.is_bigendian();
                            resync =
                                Some(Resync::Legacy(resync::Legacy { big, units, last_secs: None, max: MAX_BLOCK }));
                        }
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let iface = legacy.unwrap_or(Interface { linktype: 1, units: 1_000_000, offset_secs: 0 });
                        let sub = u64::from(b.ts_usec) * (1_000_000_000 / iface.units.max(1));
                        let ts = i64::from(b.ts_sec).saturating_mul(1_000_000_000).saturating_add(sub as i64);
                        let ts = ts.clamp(0, MAX_TS);
                        summary.frames += 1;
                        last_ts = ts;
                        if let Some(Resync::Legacy(l)) = &mut resync {
                            l.last_secs = Some(b.ts_sec);
                        }
                        each(Frame { number: summary.frames, ts, linktype: iface.linktype, data: b.data });
                    }
                    PcapBlockOwned::NG(block) => {
                        summary.format = Some(Format::PcapNg);
                        match block {
                            Block::SectionHeader(shb) => {
                                interfaces.clear();
                                resync = Some(Resync::Ng { big: shb.big_endian() });
                            }
                            Block::InterfaceDescription(idb) => {
                                let units = pcap_parser::pcapng::build_ts_resolution(idb.if_tsresol).unwrap_or(0);
                                interfaces.push(Interface {
                                    linktype: linktype::proper(idb.linktype.0),
                                    units,
                                    offset_secs: idb.if_tsoffset,
                                });
                            }
                            Block::EnhancedPacket(epb) => {
                                summary.frames += 1;
                                match interfaces.get(epb.if_id as usize) {
                                    Some(iface) => {
                                        let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                        let ts = ng_ts(raw, *iface);
                                        last_ts = ts;
                                        let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                                        each(Frame { number: summary.frames, ts, linktype: iface.linktype, data });
                                    }
                                    None => summary.problems.push(Problem {
                                        kind: ProblemKind::UnknownInterface,
                                        offset: block_offset as u64,
                                        after_frame: summary.frames - 1,
                                        message: format!(
                                            "frame {} names interface {} but the section declares {}; skipped",
                                            summary.frames,
                                            epb.if_id,
                                            interfaces.len()
                                        ),
                                    }),
                                }
                            }
                            Block::SimplePacket(spb) => {
                                summary.frames += 1;
                                if let Some(iface) = interfaces.first() {
                                    let len = (spb.origlen as usize).min(spb.data.len());
                                    // Simple packet blocks carry no timestamp: keep the previous one.
                                    each(Frame {
                                        number: summary.frames,
                                        ts: last_ts,
                                        linktype: iface.linktype,
                                        data: &spb.data[..len],
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Step::Consume(size)
            }
            Err(PcapError::Eof) => Step::Eof,
            Err(PcapError::Incomplete(_)) => Step::Refill,
            Err(PcapError::UnexpectedEof) => Step::Truncated,
            Err(PcapError::BufferTooSmall) => Step::Grow(reader.data().len()),
            Err(PcapError::ReadError) => Step::Corrupt(read_error("read error")),
            Err(e) => Step::Corrupt(short(&e.to_string())),
        };
        match step {
            Step::Consume(n) => {
                stalls = 0;
                reader.consume(n);
            }
            Step::Eof => break,
            Step::Refill => {
                if reader.reader_exhausted() || stalls >= 3 {
                    if !truncated_or_resumed(&mut *reader, resync, &mut summary) {
                        break;
                    }
                    continue;
                }
                stalls += 1;
                if reader.refill().is_err() {
                    summary.problems.push(corrupt(reader.consumed(), &summary, read_error("read error")));
                    break;
                }
            }
            Step::Grow(have) => {
                let want = (have.max(BUFFER) * 2).min(MAX_BLOCK);
                if have >= MAX_BLOCK || !reader.grow(want) {
                    let msg = format!("a block larger than {} MiB: not a real packet", MAX_BLOCK >> 20);
                    let problem = corrupt(reader.consumed(), &summary, msg);
                    if !resume(&mut *reader, resync, problem, &mut summary) {
                        break;
                    }
                    continue;
                }
                if reader.refill().is_err() {
                    summary.problems.push(corrupt(reader.consumed(), &summary, read_error("read error")));
                    break;
                }
            }
            Step::Truncated => {
                if !truncated_or_resumed(&mut *reader, resync, &mut summary) {
                    break;
                }
            }
            Step::Corrupt(msg) => {
                let problem = corrupt(reader.consumed(), &summary, msg);
                if !resume(&mut *reader, resync, problem, &mut summary) {
                    break;
                }
            }
        }
    }
    // A read error ended the input: it, not a truncated file, is why the capture ends where it does.
    if failed() {
        if summary.problems.last().is_some_and(|p| p.kind == ProblemKind::Truncated) {
            summary.problems.pop();
        }
        summary.problems.push(corrupt(reader.consumed(), &summary, read_error("read error")));
    }
    summary.bytes = reader.consumed() as u64;
    Ok(summary)
}

type Reader<'a> = dyn PcapReaderIterator + Send + 'a;

/// The input ended inside a block: either the file was cut there (truncated), or the block's length was
/// corrupt and valid blocks follow in what is left (then reading resumes at the first of them).
fn truncated_or_resumed(reader: &mut Reader<'_>, resync: Option<Resync>, summary: &mut Summary) -> bool {
    let offset = reader.consumed();
    let pending = reader.data().len();
    if pending == 0 {
        return false; // the input ended where a block would start: the end of the capture
    }
    let found = match resync {
        Some(Resync::Legacy(l)) => l.find(reader.data(), 1, true),
        Some(Resync::Ng { big }) => resync::ng_find(reader.data(), 4, big, MAX_BLOCK),
        None => None,
    };
    let Some(k) = found else {
        summary.problems.push(truncated(offset, summary, pending));
        return false;
    };
    let detail = "its length runs past the end of the file, yet valid blocks follow".to_owned();
    let mut problem = corrupt(offset, summary, detail);
    reader.consume(k);
    problem.message = resumed(&problem, k);
    summary.problems.push(problem);
    true
}

/// After a corrupt block at the reader's position: skips to the next valid block (at most [`SCAN_LIMIT`]
/// bytes) and records `problem` saying how far. False when none was found: reading stops.
fn resume(reader: &mut Reader<'_>, resync: Option<Resync>, mut problem: Problem, summary: &mut Summary) -> bool {
    let Some(mode) = resync else {
        problem.message.push_str("; reading stopped");
        summary.problems.push(problem);
        return false;
    };
    let mut skipped = 0usize;
    let mut from = 1;
    loop {
        let at_end = reader.reader_exhausted();
        let data = reader.data();
        let found = match mode {
            Resync::Legacy(l) => l.find(data, from, at_end),
            Resync::Ng { big } => resync::ng_find(data, from.next_multiple_of(4), big, MAX_BLOCK),
        };
        if let Some(k) = found {
            reader.consume(k);
            problem.message = resumed(&problem, skipped + k);
            summary.problems.push(problem);
            return true;
        }
        let len = data.len();
        let drop = len.saturating_sub(SCAN_KEEP) & !3;
        if (at_end && drop == 0) || skipped >= SCAN_LIMIT {
            problem.message =
                format!("{}; no valid block in the {} bytes after it, reading stopped", problem.message, skipped + len);
            summary.problems.push(problem);
            return false;
        }
        if drop > 0 {
            reader.consume(drop);
            skipped += drop;
            from = 0;
        } else {
            from = len.saturating_sub(16).max(from);
        }
        let before = reader.data().len();
        if reader.refill().is_err() || (drop == 0 && reader.data().len() == before && !reader.reader_exhausted()) {
            problem.message.push_str("; reading stopped");
            summary.problems.push(problem);
            return false;
        }
    }
}

fn resumed(problem: &Problem, skipped: usize) -> String {
    format!("{}; skipped {skipped} bytes, reading resumed at byte {}", problem.message, problem.offset + skipped as u64)
}

fn compressed(compression: Option<&str>) -> String {
    compression.map_or(String::new(), |c| format!("decompressed {c} "))
}

/// The input as the reader sees it: plain, or through a decompressor when it starts with gzip's or zstd's
/// magic bytes.
enum Source<R: Read> {
    Plain(io::Chain<io::Cursor<Vec<u8>>, R>),
    Gzip(Box<MultiGzDecoder<io::Chain<io::Cursor<Vec<u8>>, R>>>),
    Zstd(Box<Zstd<io::Chain<io::Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Source<R> {
    fn open(mut input: R) -> Result<(Source<R>, Option<&'static str>), NotACapture> {
        let mut magic = vec![0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match input.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(NotACapture(format!("read error ({e})"))),
            }
        }
        magic.truncate(got);
        let zstd = magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let gzip = magic.starts_with(&[0x1f, 0x8b]);
        let chained = io::Cursor::new(magic).chain(input);
        Ok(if gzip {
            (Source::Gzip(Box::new(MultiGzDecoder::new(chained))), Some("gzip"))
        } else if zstd {
            (Source::Zstd(Box::new(Zstd::new(chained))), Some("zstd"))
        } else {
            (Source::Plain(chained), None)
        })
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
            Source::Zstd(r) => r.read(buf),
        }
    }
}

fn ng_ts(raw: u64, iface: Interface) -> i64 {
    if iface.units == 0 {
        return 0;
    }
    let nanos = u128::from(raw) * 1_000_000_000 / u128::from(iface.units);
    let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
    nanos.saturating_add(iface.offset_secs.saturating_mul(1_000_000_000)).clamp(0, MAX_TS)
}

fn truncated(consumed: usize, summary: &Summary, pending: usize) -> Problem {
    let what = if pending == 0 { "mid-block".to_owned() } else { format!("{pending} bytes of an incomplete block") };
    Problem {
        kind: ProblemKind::Truncated,
        offset: consumed as u64,
        after_frame: summary.frames,
        message: format!(
            "capture truncated at byte {} after frame {} ({what} at the end of the file)",
            consumed, summary.frames
        ),
    }
}

fn corrupt(consumed: usize, summary: &Summary, detail: String) -> Problem {
    Problem {
        kind: ProblemKind::Corrupt,
        offset: consumed as u64,
        after_frame: summary.frames,
        message: format!("corrupt block at byte {consumed} after frame {}: {detail}", summary.frames),
    }
}

/// pcap-parser's errors are its parser's internals ("Internal parser error Verify, input ..."): say what
/// they mean for a block instead.
fn short(msg: &str) -> String {
    let kind = msg.find(", input").map_or(msg, |i| &msg[..i]);
    if kind.contains("Verify") {
        "its trailing length does not repeat its leading length, or a field is out of range".into()
    } else if kind.contains("Internal parser error") || kind.contains("Nom") {
        "its fields do not form a valid block".into()
    } else {
        kind.chars().take(120).collect()
    }
}
