//! Streaming capture reader: pcap (micro- or nanosecond, either byte order) and pcapng (any number of
//! sections and interfaces) through `pcap-parser`'s circular buffer, one [`Frame`] at a time, so memory
//! stays bounded by the largest block whatever the file's size. Truncated and corrupt files end the
//! stream with a [`Problem`] saying what and where; the frames before it are still delivered.

use std::io::{self, Read};

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};

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
    /// A block could not be parsed: reading stopped there.
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
    /// Problems met; reading stops at the first `truncated` or `corrupt` one.
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
/// (at the header: "not a capture"; in a block: truncated), and a pipe or FIFO gives short reads.
struct Filling<R>(R);

impl<R: Read> Read for Filling<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // What was read first is handed on; the error comes back on the next read.
                Err(_) if filled > 0 => break,
                Err(e) => return Err(e),
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

/// Reads every frame of `input`, calling `each` in order. Errors only when the input is not a capture.
pub fn read_frames<R: Read + Send>(input: R, mut each: impl FnMut(Frame<'_>)) -> Result<Summary, NotACapture> {
    let mut reader = match pcap_parser::create_reader(BUFFER, Filling(input)) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err(NotACapture("the file is empty".into())),
        Err(PcapError::HeaderNotRecognized) => {
            return Err(NotACapture("not a pcap or pcapng capture (unknown magic number)".into()));
        }
        Err(PcapError::Incomplete(_) | PcapError::UnexpectedEof) => {
            return Err(NotACapture("the file is shorter than a capture header".into()));
        }
        Err(PcapError::ReadError) => return Err(NotACapture("read error".into())),
        Err(e) => return Err(NotACapture(format!("not a readable capture: {}", short(&e.to_string())))),
    };
    let mut summary = Summary::default();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut legacy: Option<Interface> = None;
    let mut last_ts = 0i64;
    let mut stalls = 0u32;
    loop {
        let block_offset = reader.consumed();
        let step = match reader.next() {
            Ok((size, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        summary.format = Some(Format::Pcap);
                        let units = if h.is_nanosecond_precision() { 1_000_000_000 } else { 1_000_000 };
                        legacy = Some(Interface { linktype: h.network.0, units, offset_secs: 0 });
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let iface = legacy.unwrap_or(Interface { linktype: 1, units: 1_000_000, offset_secs: 0 });
                        let sub = u64::from(b.ts_usec) * (1_000_000_000 / iface.units.max(1));
                        let ts = i64::from(b.ts_sec).saturating_mul(1_000_000_000).saturating_add(sub as i64);
                        let ts = ts.clamp(0, MAX_TS);
                        summary.frames += 1;
                        last_ts = ts;
                        each(Frame { number: summary.frames, ts, linktype: iface.linktype, data: b.data });
                    }
                    PcapBlockOwned::NG(block) => {
                        summary.format = Some(Format::PcapNg);
                        match block {
                            Block::SectionHeader(_) => interfaces.clear(),
                            Block::InterfaceDescription(idb) => {
                                let units = pcap_parser::pcapng::build_ts_resolution(idb.if_tsresol).unwrap_or(0);
                                interfaces.push(Interface {
                                    linktype: idb.linktype.0,
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
            Err(PcapError::ReadError) => Step::Corrupt("read error".into()),
            Err(e) => Step::Corrupt(short(&e.to_string())),
        };
        match step {
            Step::Consume(n) => {
                stalls = 0;
                reader.consume(n);
            }
            Step::Eof => break,
            Step::Refill => {
                if reader.reader_exhausted() {
                    summary.problems.push(truncated(reader.consumed(), &summary, reader.data().len()));
                    break;
                }
                stalls += 1;
                if stalls > 3 {
                    summary.problems.push(truncated(reader.consumed(), &summary, reader.data().len()));
                    break;
                }
                if let Err(e) = reader.refill() {
                    let msg = e.to_string();
                    summary.problems.push(corrupt(reader.consumed(), &summary, msg));
                    break;
                }
            }
            Step::Grow(have) => {
                let want = (have.max(BUFFER) * 2).min(MAX_BLOCK);
                if have >= MAX_BLOCK || !reader.grow(want) {
                    let msg = format!("a block larger than {} MiB: not a real packet", MAX_BLOCK >> 20);
                    summary.problems.push(corrupt(reader.consumed(), &summary, msg));
                    break;
                }
                if let Err(e) = reader.refill() {
                    let msg = e.to_string();
                    summary.problems.push(corrupt(reader.consumed(), &summary, msg));
                    break;
                }
            }
            Step::Truncated => {
                summary.problems.push(truncated(reader.consumed(), &summary, reader.data().len()));
                break;
            }
            Step::Corrupt(msg) => {
                summary.problems.push(corrupt(reader.consumed(), &summary, msg));
                break;
            }
        }
    }
    summary.bytes = reader.consumed() as u64;
    Ok(summary)
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
        message: format!("corrupt block at byte {consumed} after frame {}: {detail}; reading stopped", summary.frames),
    }
}

/// pcap-parser's nom errors quote the input bytes: keep the kind, drop the dump.
fn short(msg: &str) -> String {
    match msg.find(", input") {
        Some(i) => msg[..i].to_owned(),
        None => msg.chars().take(120).collect(),
    }
}
