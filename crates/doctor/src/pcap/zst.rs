//! zstd-compressed captures (`tcpdump ... | zstd`, `.pcap.zst`), decompressed as a stream by ruzstd (pure
//! Rust, no C library): every frame of the file in turn, as `zstd -d` does, skippable frames skipped, each
//! frame's content checksum verified when it has one. Memory is the decoder's window (at most ruzstd's
//! default limit) whatever the file's size. A decoding error is an `io::Error`, which the reader reports as
//! "the zstd stream is corrupt (...)" at the offset where the capture stopped.

use std::io::{self, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The input with one byte pushed back: a frame header is looked for only once a byte says more input
/// follows, so the end of the last frame is a clean end of the stream.
struct Pushback<R> {
    byte: Option<u8>,
    inner: R,
}

impl<R: Read> Read for Pushback<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.byte.take(), buf.first_mut()) {
            (Some(b), Some(slot)) => {
                *slot = b;
                Ok(1)
            }
            (Some(b), None) => {
                self.byte = Some(b);
                Ok(0)
            }
            (None, _) => self.inner.read(buf),
        }
    }
}

/// A multi-frame zstd stream as a `Read` of its decompressed bytes.
pub struct Zstd<R> {
    src: Pushback<R>,
    dec: FrameDecoder,
    /// A frame is being decoded.
    in_frame: bool,
    done: bool,
}

impl<R: Read> Zstd<R> {
    pub fn new(inner: R) -> Self {
        Zstd { src: Pushback { byte: None, inner }, dec: FrameDecoder::new(), in_frame: false, done: false }
    }

    /// Starts the next frame, if the input has one: false at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        let mut b = [0u8];
        loop {
            match self.src.read(&mut b) {
                Ok(0) => return Ok(false),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.src.byte = Some(b[0]);
        match self.dec.reset(&mut self.src) {
            Ok(()) => {
                self.in_frame = true;
                Ok(true)
            }
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame { length, .. })) => {
                let skipped = io::copy(&mut (&mut self.src).take(u64::from(length)), &mut io::sink())?;
                if skipped < u64::from(length) {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a skippable frame is cut short"));
                }
                Ok(true)
            }
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Ends the current frame, checking its content checksum when it carries one.
    fn end_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        match (self.dec.get_checksum_from_data(), self.dec.get_calculated_checksum()) {
            (Some(want), Some(got)) if want != got => Err(io::Error::other(format!(
                "frame checksum mismatch: the frame says {want:08x}, its content hashes to {got:08x}"
            ))),
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.done {
            if !self.in_frame {
                if !self.next_frame()? {
                    self.done = true;
                }
                continue;
            }
            if self.dec.can_collect() > 0 {
                return self.dec.read(buf);
            }
            if self.dec.is_finished() {
                self.end_frame()?;
                continue;
            }
            self.dec
                .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(0)
    }
}
