//! The desync guard: a tap on HTTP/1 client connections, ahead of hyper's parser (ARCHITECTURE.md:
//! listener → desync guard → router). It holds back each raw request head until it is complete, judges it
//! ([`verdict`]: AWS's `http_desync_guardian`, ALB's modes and limits), then hands it to hyper and tracks the
//! body's framing ([`framing`]) to find the next head. Verdicts travel to the request path in order through
//! [`Verdicts`]. A refused request reaches hyper as a minimal synthetic head marked `Connection: close`, so the
//! ordinary request path answers it (Proxy-Status, access log with classification) and the connection ends;
//! after that, reads are held so nothing else is parsed. HTTP/2 (its preface) passes straight through.

pub mod framing;
pub mod verdict;

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use waygate_config::DesyncMode;
use waygate_faults::Cause;

use framing::{Framing, Step};
pub use verdict::{Action, Verdict};

/// hyper's buffer must have this much room for a head to be read into it and judged in place; with less, the
/// head is gathered in `pending` first.
const IN_PLACE_ROOM: usize = 1024;
/// What a refused request looks like to hyper.
const SYNTHETIC: &[u8] = b"GET / HTTP/1.1\r\nhost: waygate.invalid\r\nconnection: close\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The verdicts of one connection's requests, oldest first; the request path takes one per HTTP/1 request.
#[derive(Debug, Default)]
pub struct Verdicts(Mutex<VecDeque<Verdict>>);

impl Verdicts {
    fn push(&self, v: Verdict) {
        crate::lock(&self.0).push_back(v);
    }

    /// The next request's verdict (`None` on HTTP/2, which the guard does not judge).
    pub fn take(&self) -> Option<Verdict> {
        crate::lock(&self.0).pop_front()
    }
}

enum State {
    /// Gathering the next request head.
    Head,
    Body(Framing),
    /// HTTP/2, or framing the guard could not follow (hyper rejects those bytes itself): pass through.
    Pass,
    /// The last request was handed over; reads are held until hyper finishes and closes.
    Hold,
}

/// A client stream with the guard in front of its reads. Writes pass through untouched.
pub struct Guarded<S> {
    inner: S,
    mode: DesyncMode,
    state: State,
    /// Bytes read but not yet handed on: a partial head, or what followed a body in the same read.
    pending: BytesMut,
    /// Bytes judged and ready for hyper.
    out: Bytes,
    verdicts: Arc<Verdicts>,
    head_timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    close_after_body: bool,
    first: bool,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, mode: DesyncMode, head_timeout: Duration, verdicts: Arc<Verdicts>) -> Self {
        Self {
            inner,
            mode,
            state: State::Head,
            pending: BytesMut::new(),
            out: Bytes::new(),
            verdicts,
            head_timeout,
            timer: None,
            close_after_body: false,
            first: true,
        }
    }

    fn refuse(&mut self, verdict: Verdict) {
        // Whatever the first bytes were, hyper's HTTP/1 side now reads the synthetic request.
        self.first = false;
        self.verdicts.push(verdict);
        self.out = Bytes::from_static(SYNTHETIC);
        self.pending.clear();
        self.state = State::Hold;
        self.timer = None;
    }

    fn after_message(&self) -> State {
        if self.close_after_body { State::Hold } else { State::Head }
    }

    /// Judges the head at the front of `pending`, if complete. Returns whether progress was made.
    fn take_head(&mut self) -> bool {
        if self.first {
            if self.pending.is_empty() {
                return false;
            }
            let n = self.pending.len().min(H2_PREFACE.len());
            if self.pending[..n] == H2_PREFACE[..n] {
                if n < H2_PREFACE.len() {
                    return false;
                }
                self.out = self.pending.split().freeze();
                self.state = State::Pass;
                return true;
            }
            self.first = false;
        }
        let Some(end) = head_end(&self.pending) else {
            if self.pending.len() > verdict::MAX_HEAD {
                self.refuse(Verdict::reject(Cause::ClientRequestMalformed));
                return true;
            }
            return false;
        };
        let (verdict, framing) = verdict::judge(&self.pending[..end], self.mode);
        if let Some(framing) = self.accept(verdict, framing) {
            self.out = self.pending.split_to(end).freeze();
            self.state = match framing {
                Some(f) => State::Body(f),
                None => self.after_message(),
            };
        }
        true
    }

    /// Acts on a complete head's verdict: a refused head becomes the synthetic one (`None`); an allowed head's
    /// verdict is queued and its body framing returned.
    fn accept(&mut self, verdict: Verdict, framing: Option<Framing>) -> Option<Option<Framing>> {
        self.timer = None;
        if let Action::Reject(_) = verdict.action {
            self.refuse(verdict);
            return None;
        }
        self.close_after_body = verdict.action == Action::AllowThenClose;
        self.verdicts.push(verdict);
        Some(framing)
    }

    /// The fast path for a new head: `read` (bytes just read into hyper's buffer, nothing of this message
    /// before them) is judged where it lies when it holds the whole head, so a head that arrives in one read,
    /// nearly every one, is neither copied nor buffered by the guard. Returns how many of the bytes stay with
    /// hyper: what follows the head's message moves to `pending`; an incomplete head moves there whole (0).
    fn judge_in_place(&mut self, read: &[u8]) -> usize {
        let Some(end) = head_end(read) else {
            self.pending.extend_from_slice(read);
            return 0;
        };
        let (verdict, framing) = verdict::judge(&read[..end], self.mode);
        let Some(framing) = self.accept(verdict, framing) else { return 0 };
        let keep = match framing {
            None => {
                self.state = self.after_message();
                end
            }
            Some(mut f) => match f.feed(&read[end..]) {
                Step::More => {
                    self.state = State::Body(f);
                    read.len()
                }
                Step::Done(n) => {
                    self.state = self.after_message();
                    end + n
                }
                Step::Invalid => {
                    self.state = State::Pass;
                    read.len()
                }
            },
        };
        self.pending.extend_from_slice(&read[keep..]);
        keep
    }
}

impl<S: AsyncRead + Unpin> Guarded<S> {
    /// Whether the connection speaks HTTP/2 with prior knowledge: ready once the first bytes either are the
    /// whole preface (true) or stop matching it (false, HTTP/1), as hyper-util's auto server decides. Nothing is
    /// consumed: hyper reads every byte afterwards. Until the client sends, no buffer is allocated, so a
    /// connection that is accepted and idle costs the listener almost nothing.
    pub fn poll_is_h2(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if matches!(self.state, State::Pass) {
                return Poll::Ready(Ok(true));
            }
            if !self.first {
                return Poll::Ready(Ok(false));
            }
            // Judged, or no longer the preface (an incomplete HTTP/1 head is the guard's to time out): decided.
            if self.take_head() || !self.first {
                continue;
            }
            if ready!(self.poll_head_bytes(cx))? {
                // EOF: hyper's HTTP/1 side sees what was read, and the EOF again, and closes.
                return Poll::Ready(Ok(false));
            }
        }
    }

    /// Reads more of a head into `pending`, under `request_header_timeout` once the head has begun (a partial
    /// HTTP/2 preface included): when it fires, the head is refused with ClientRequestTimeout. Ready(true) at
    /// EOF, else Ready(false) once bytes arrived or the head was refused.
    fn poll_head_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if !self.pending.is_empty() {
            let timeout = self.head_timeout;
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if timer.as_mut().poll(cx).is_ready() {
                self.refuse(Verdict::reject(Cause::ClientRequestTimeout));
                return Poll::Ready(Ok(false));
            }
        }
        // Uninitialised: zeroing 4 KiB on every read of every head cost an eighth of the gateway's instructions
        // per request. `ReadBuf` tracks what the read initialised.
        let mut chunk = [MaybeUninit::<u8>::uninit(); 4096];
        let mut rb = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        if rb.filled().is_empty() {
            return Poll::Ready(Ok(true));
        }
        self.pending.extend_from_slice(rb.filled());
        Poll::Ready(Ok(false))
    }
}

/// The end of the head (after its blank line), accepting bare LF as hyper does.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &buf[i..]) {
        let at = i + p;
        let rest = &buf[at + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = this.out.len().min(buf.remaining());
                buf.put_slice(&this.out[..n]);
                this.out.advance(n);
                if this.out.is_empty() {
                    // Drop the reference to the read chunk, and the chunk itself once `pending` lets go too: an
                    // idle keep-alive connection should hold no buffer of the guard's.
                    this.out = Bytes::new();
                    if this.pending.is_empty() {
                        this.pending = BytesMut::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            match &mut this.state {
                State::Pass => return Pin::new(&mut this.inner).poll_read(cx, buf),
                State::Hold => return Poll::Pending,
                State::Body(framing) => {
                    if !this.pending.is_empty() {
                        match framing.feed(&this.pending) {
                            Step::More => this.out = this.pending.split().freeze(),
                            Step::Done(n) => {
                                this.out = this.pending.split_to(n).freeze();
                                this.state = this.after_message();
                            }
                            Step::Invalid => {
                                this.out = this.pending.split().freeze();
                                this.state = State::Pass;
                            }
                        }
                        continue;
                    }
                    // Body bytes go straight into hyper's buffer; only a message end inside them is split off.
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let read = &buf.filled()[before..];
                    if read.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    match framing.feed(read) {
                        Step::More => {}
                        Step::Done(n) => {
                            this.pending.extend_from_slice(&read[n..]);
                            buf.set_filled(before + n);
                            this.state = this.after_message();
                        }
                        Step::Invalid => this.state = State::Pass,
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Head => {
                    if this.pending.is_empty() && !this.first && buf.remaining() >= IN_PLACE_ROOM {
                        let before = buf.filled().len();
                        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                        let read = &buf.filled()[before..];
                        if read.is_empty() {
                            // EOF: hyper sees it and closes.
                            this.state = State::Pass;
                            return Poll::Ready(Ok(()));
                        }
                        let keep = this.judge_in_place(read);
                        buf.set_filled(before + keep);
                        if keep > 0 {
                            return Poll::Ready(Ok(()));
                        }
                        // Incomplete (now in `pending`, under the head timeout) or refused (the synthetic head).
                        continue;
                    }
                    if this.take_head() {
                        continue;
                    }
                    if ready!(this.poll_head_bytes(cx))? {
                        // EOF: hand any partial head to hyper, which reports it as incomplete and closes.
                        this.out = this.pending.split().freeze();
                        this.state = State::Pass;
                        if this.out.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads everything the guard lets through with reads of `read_size` bytes: tiny reads put boundaries
    /// everywhere (the buffered path); large ones judge heads in place in the reader's buffer.
    async fn through_reads(input: &[u8], mode: DesyncMode, read_size: usize) -> (Vec<u8>, Vec<Verdict>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client);
        let verdicts = Arc::new(Verdicts::default());
        let mut g = Guarded::new(server, mode, Duration::from_secs(5), verdicts.clone());
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_size];
        loop {
            match tokio::time::timeout(Duration::from_millis(200), g.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break, // EOF, or held after a refusal
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => panic!("{e}"),
            }
        }
        let mut vs = Vec::new();
        while let Some(v) = verdicts.take() {
            vs.push(v);
        }
        (out, vs)
    }

    /// Both read paths, which must agree byte for byte and verdict for verdict.
    async fn through(input: &[u8], mode: DesyncMode) -> (Vec<u8>, Vec<Verdict>) {
        let small = through_reads(input, mode, 7).await;
        let large = through_reads(input, mode, 64 * 1024).await;
        assert_eq!(small, large, "in-place judging must see what buffered judging sees");
        small
    }

    #[tokio::test]
    async fn pipelined_requests_pass_byte_for_byte_with_one_verdict_each() {
        let input = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, vs) = through(input, DesyncMode::Defensive).await;
        assert_eq!(out, input.to_vec());
        assert_eq!(vs.len(), 3);
        assert!(vs.iter().all(|v| v.action == Action::Allow));
    }

    /// As on a live connection: the protocol is decided on the first bytes, then each later head arrives whole in
    /// one read of hyper's (large) buffer and is judged in place; what follows it, a partial head, a body ending
    /// mid-read or a refusal must come out exactly as the buffered path gives them.
    #[tokio::test]
    async fn heads_arriving_whole_are_judged_in_place() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let verdicts = Arc::new(Verdicts::default());
        let mut g = Guarded::new(server, DesyncMode::Defensive, Duration::from_secs(5), verdicts.clone());
        let mut buf = vec![0u8; 64 * 1024];
        let refused = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello";
        let steps: [(&[u8], &[u8]); 7] = [
            (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"),
            (b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
            (b"POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel", b"POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"),
            (b"lo", b"lo"),
            (b"GET /d HTTP/1.1\r\nHo", b""),
            (
                b"st: a\r\n\r\nPOST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /f HTTP/1.1\r\nHost: a\r\n\r\n",
                b"GET /d HTTP/1.1\r\nHost: a\r\n\r\nPOST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /f HTTP/1.1\r\nHost: a\r\n\r\n",
            ),
            (refused, SYNTHETIC),
        ];
        for (i, (write, expect)) in steps.into_iter().enumerate() {
            client.write_all(write).await.unwrap();
            if i == 0 {
                let h2 = std::future::poll_fn(|cx| g.poll_is_h2(cx)).await.unwrap();
                assert!(!h2);
            }
            let mut got = Vec::new();
            while got.len() < expect.len() {
                let n = tokio::time::timeout(Duration::from_secs(5), g.read(&mut buf)).await.expect("bytes").unwrap();
                assert!(n > 0, "step {i}: early EOF");
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect), "step {i}");
            // Nothing more than expected comes through (a partial head is held back).
            let more = tokio::time::timeout(Duration::from_millis(50), g.read(&mut buf)).await;
            assert!(more.is_err(), "step {i}: unexpected bytes {more:?}");
        }
        let mut vs = Vec::new();
        while let Some(v) = verdicts.take() {
            vs.push(v.action);
        }
        let allowed = [Action::Allow; 6];
        assert_eq!(vs[..6], allowed, "one verdict per head, in order");
        assert_eq!(vs[6..], [Action::Reject(Cause::ClientRequestMalformed)]);
    }

    #[tokio::test]
    async fn a_severe_request_becomes_a_synthetic_head_and_nothing_after_it() {
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n";
        let (out, vs) = through(input, DesyncMode::Defensive).await;
        assert_eq!(out, SYNTHETIC.to_vec());
        assert_eq!(vs.len(), 1);
        assert_eq!(vs[0].action, Action::Reject(Cause::ClientRequestMalformed));
    }

    #[tokio::test]
    async fn h2_preface_passes_through() {
        let mut input = H2_PREFACE.to_vec();
        input.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        let (out, vs) = through(&input, DesyncMode::Strictest).await;
        assert_eq!(out, input);
        assert!(vs.is_empty());
    }

    async fn is_h2(parts: &[&[u8]]) -> bool {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut g = Guarded::new(server, DesyncMode::Defensive, Duration::from_secs(5), Arc::default());
        for part in parts {
            client.write_all(part).await.unwrap();
            tokio::task::yield_now().await;
        }
        // No EOF: the answer must come from the bytes alone, not from waiting for more.
        let is_h2 = tokio::time::timeout(Duration::from_secs(5), std::future::poll_fn(|cx| g.poll_is_h2(cx)));
        let is_h2 = is_h2.await.expect("decided").unwrap();
        drop(client);
        is_h2
    }

    #[tokio::test]
    async fn protocol_is_decided_by_the_first_bytes() {
        assert!(is_h2(&[&H2_PREFACE[..5], &H2_PREFACE[5..]]).await);
        assert!(!is_h2(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]).await, "an incomplete head is HTTP/1 already");
        assert!(!is_h2(&[b"PRI", b" / HTTP/1.1\r\n"]).await);
    }
}
