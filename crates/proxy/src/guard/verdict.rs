//! Judging one raw HTTP/1 request head, as ALB's desync mitigation does: AWS's `http_desync_guardian` gives
//! the classification (Compliant, Acceptable, Ambiguous, Severe) and its reason, the mode decides the action
//! (reference/ALB.md §7), and the head's own framing headers decide where its body ends. Anything the gateway
//! refuses is answered by the normal request path (so it carries Proxy-Status and an access-log line).
//!
//! The analyser reads the fields of the server's own parse (httparse) when that parse cuts them exactly as the
//! analyser's parser would: a head httparse accepted whole, with every line ended by CRLF (httparse takes a
//! bare LF, the analyser flags it; httparse refuses obs-fold, a space before a colon and a bare CR in requests).
//! Each value is then given to the analyser as its parser sees it, everything between the colon and the CR,
//! whitespace included. Any other head is analysed from its raw bytes. Both ways give the same verdict: the
//! `h1_request` fuzz target asserts it on every head it makes, and a test here on the smuggling corpus. The
//! analyser's own parse, and the moves of the request it returned, cost about 1,000 of the 6,100 instructions
//! a small request head took (callgrind). The body framing and ALB's limits are read from the same fields
//! (the raw pass found each line again with `memchr`), and the fuzz target asserts they decide as the raw
//! bytes do.

use std::mem::MaybeUninit;

use http_desync_guardian::request_analyzer::{HttpHeader, HttpRequestData, RequestAnalysisResult};
use http_desync_guardian::{ClassificationReason, RequestSafetyTier};
use waygate_config::DesyncMode;
use waygate_faults::Cause;
use waygate_telemetry::Classification;

use super::framing::Framing;

/// ALB's limits: a request line or a single header over 16 KiB, or a head over 64 KiB, is a 400.
pub const MAX_LINE: usize = 16 * 1024;
pub const MAX_HEAD: usize = 64 * 1024;
/// hyper's header count limit (raising it moves every request's headers to the heap).
pub const MAX_HEADERS: usize = 100;

/// What to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Serve it, then close both the client and the target connection (defensive mode, Ambiguous).
    AllowThenClose,
    /// Answer with this cause's error and close the client connection.
    Reject(Cause),
}

/// The verdict on one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// `None` for compliant requests.
    pub classification: Option<Classification>,
    /// The analyser's reason, e.g. `BothTeClPresent` (ALB's `classification_reason`).
    pub reason: Option<&'static str>,
    /// The head's size on the wire, through its blank line (`None`: refused before it was whole).
    pub head_len: Option<u64>,
}

impl Verdict {
    pub const fn reject(cause: Cause) -> Self {
        Self { action: Action::Reject(cause), classification: None, reason: None, head_len: None }
    }
}

/// Judges a complete head (through its blank line); returns the verdict and, when allowed, the body framing.
/// The analyser parses the raw bytes itself.
pub fn judge(head: &[u8], mode: DesyncMode) -> (Verdict, Option<Framing>) {
    judge_with(head, mode, hyper_accepts(head), HttpRequestData::analyze_raw_request(head), framing_of(head))
}

/// [`judge`], for a head the caller already parsed with httparse (`parsed`: the parse, when it accepted the
/// head whole): the analyser reads that parse's fields where they are the ones its own parser would cut.
pub fn judge_parsed<'h>(
    head: &'h [u8],
    mode: DesyncMode,
    parsed: Option<&httparse::Request<'_, 'h>>,
) -> (Verdict, Option<Framing>) {
    match parsed.and_then(|req| analyse_fields(head, req)) {
        Some((analysis, framing)) => judge_with(head, mode, true, analysis, framing),
        None => judge_with(head, mode, parsed.is_some(), HttpRequestData::analyze_raw_request(head), framing_of(head)),
    }
}

/// The analysis of the request cut from httparse's parse of `head`; `None` where the analyser's parser could
/// cut it differently (a line not ended by CRLF), so the raw analysis must run. httparse read the head line by
/// line to its blank line, so checking that the request line, each field line and the blank line end in CRLF
/// checks every line: a bare LF anywhere would have ended one of them. The analyser's request is built where
/// it is analysed: its fields are an inline array of 64 (about 2.5 KB), each move of it a copy.
///
/// The framing and ALB's limits are read from the same fields ([`Scan`]): the lines are the ones the raw pass in
/// [`framing_of`] would find, each field's line running from its name to the CR before its LF.
fn analyse_fields<'h>(
    head: &'h [u8],
    req: &httparse::Request<'_, 'h>,
) -> Option<(RequestAnalysisResult, Result<Option<Framing>, Cause>)> {
    let base = head.as_ptr() as usize;
    let offset = |s: &[u8]| (s.as_ptr() as usize).checked_sub(base).filter(|o| o + s.len() <= head.len());
    let crlf_at = |at: usize| head.get(at..at + 2) == Some(b"\r\n");
    // method SP request-target SP HTTP/1.x CRLF: httparse allows one SP each (its default) and a version of
    // eight bytes; the analyser takes the first and the last token.
    let method = req.method?.as_bytes();
    let uri = req.path?.as_bytes();
    if offset(method) != Some(0) || offset(uri) != Some(method.len() + 1) {
        return None;
    }
    let version_at = method.len() + 1 + uri.len() + 1;
    let version = head.get(version_at..version_at + 8)?;
    if !crlf_at(version_at + 8) || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let mut data = HttpRequestData { method, version, uri, headers: Default::default() };
    let mut scan = Scan::new(head.len());
    scan.line(version_at + 8 + 1);
    for h in req.headers.iter() {
        // The analyser's value: from after the colon to the CR ending the line, whitespace included (httparse
        // trimmed it off both ends).
        let name = h.name.as_bytes();
        let from = offset(name)? + name.len() + 1;
        let trimmed_end = match offset(h.value) {
            Some(at) if !h.value.is_empty() && at >= from => at + h.value.len(),
            _ => from,
        };
        let end = trimmed_end + head.get(trimmed_end..)?.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        if head[from - 1] != b':' || !crlf_at(end) {
            return None;
        }
        scan.line(end + 1 - (from - 1 - name.len()));
        scan.field(name, trim(&head[from..end]));
        data.headers.push(HttpHeader::new(name, &head[from..end]));
    }
    // The blank line (its CR), and the empty rest after its LF.
    scan.line(1);
    scan.line(0);
    Some((data.analyze_parsed_request(), scan.finish()))
}

fn judge_with(
    head: &[u8],
    mode: DesyncMode,
    parsed: bool,
    analysis: RequestAnalysisResult,
    framing: Result<Option<Framing>, Cause>,
) -> (Verdict, Option<Framing>) {
    let classification = match analysis.tier {
        RequestSafetyTier::Compliant => None,
        RequestSafetyTier::Acceptable => Some(Classification::Acceptable),
        RequestSafetyTier::Ambiguous => Some(Classification::Ambiguous),
        RequestSafetyTier::Severe => Some(Classification::Severe),
    };
    let reason = classification.map(|_| reason_name(analysis.reason));
    let verdict = |action| Verdict { action, classification, reason, head_len: Some(head.len() as u64) };
    let framing = match framing {
        Ok(f) => f,
        Err(cause) => return (verdict(Action::Reject(cause)), None),
    };
    if !parsed {
        // hyper would answer its own bare 400: refuse here instead, so the refusal carries its cause.
        return (verdict(Action::Reject(Cause::ClientRequestMalformed)), None);
    }
    let action = match (mode, classification) {
        (_, None) | (DesyncMode::Monitor, _) => Action::Allow,
        (DesyncMode::Defensive, Some(Classification::Acceptable)) => Action::Allow,
        (DesyncMode::Defensive, Some(Classification::Ambiguous)) => Action::AllowThenClose,
        (DesyncMode::Defensive, Some(Classification::Severe)) | (DesyncMode::Strictest, Some(_)) => {
            Action::Reject(Cause::ClientRequestMalformed)
        }
    };
    let framing = if matches!(action, Action::Reject(_)) { None } else { framing };
    (verdict(action), framing)
}

/// The body framing hyper will apply, or why the head cannot be framed at all; then ALB's limits. One pass
/// over the lines (`\n`-separated, found by `memchr`): a framing error wins over a limit, as the cause.
fn framing_of(head: &[u8]) -> Result<Option<Framing>, Cause> {
    let mut scan = Scan::new(head.len());
    let mut start = 0;
    // Every `\n` ends a line, and whatever follows the last one is a line too (as `split` would yield).
    for end in memchr::memchr_iter(b'\n', head).chain(std::iter::once(head.len())) {
        let line = &head[start..end];
        start = end + 1;
        scan.line(line.len());
        if scan.lines == 1 {
            continue; // The request line.
        }
        for name in [&b"transfer-encoding"[..], b"content-length"] {
            if let Some(value) = header_value(line, name) {
                scan.field(name, value);
                break;
            }
        }
    }
    scan.finish()
}

/// What a head's lines said about its framing and ALB's limits, read one line at a time: from the raw bytes
/// ([`framing_of`]) or from httparse's fields ([`analyse_fields`]), which must decide alike.
struct Scan {
    te: Option<Vec<u8>>,
    cl: Option<u64>,
    /// The first framing error (it wins over a limit).
    bad: Option<Cause>,
    over_limits: bool,
    lines: usize,
}

impl Scan {
    fn new(head_len: usize) -> Self {
        Self { te: None, cl: None, bad: None, over_limits: head_len > MAX_HEAD, lines: 0 }
    }

    /// One line of the head, `len` bytes before its LF (its CR included).
    fn line(&mut self, len: usize) {
        self.lines += 1;
        self.over_limits |= len > MAX_LINE;
    }

    /// A field, its value trimmed; only Transfer-Encoding and Content-Length matter here.
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding") {
            let all = self.te.get_or_insert_with(Vec::new);
            if !all.is_empty() {
                all.push(b',');
            }
            all.extend_from_slice(value);
        } else if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") && self.bad.is_none() {
            match (crate::wire::parse_length(value), self.cl) {
                (Some(n), Some(prev)) if n != prev => self.bad = Some(Cause::ClientRequestMalformed),
                (Some(n), _) => self.cl = Some(n),
                (None, _) => self.bad = Some(Cause::ClientRequestMalformed),
            }
        }
    }

    fn finish(self) -> Result<Option<Framing>, Cause> {
        if let Some(cause) = self.bad {
            return Err(cause);
        }
        // The request line and the final empty line(s) are not headers.
        let over_limits = self.over_limits || self.lines > MAX_HEADERS + 3;
        let framing = match self.te {
            None => Framing::of(false, self.cl),
            Some(te) => {
                let codings: Vec<&[u8]> = te.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()).collect();
                if codings.iter().any(|c| !c.eq_ignore_ascii_case(b"chunked") && !c.eq_ignore_ascii_case(b"identity")) {
                    return Err(Cause::ClientUnsupportedTransferEncoding);
                }
                let chunked = codings.iter().filter(|c| c.eq_ignore_ascii_case(b"chunked")).count();
                if chunked > 1 {
                    return Err(Cause::ClientRequestMalformed);
                }
                if !codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
                    // Only `identity`: nothing a conforming server can frame a request body by (hyper refuses it
                    // too).
                    return Err(Cause::ClientRequestMalformed);
                }
                Framing::of(true, self.cl)
            }
        };
        if over_limits {
            return Err(Cause::ClientRequestMalformed);
        }
        Ok(framing)
    }
}

/// The trimmed value of `line` if it is a `name` header: everything before the line's first colon is the name,
/// in any case (whitespace before the colon makes it another name). A `\r` ending the line is trimmed too.
fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let n = name.len();
    (line.get(n) == Some(&b':') && line[..n].eq_ignore_ascii_case(name)).then(|| trim(&line[n + 1..]))
}

/// Whether hyper's parser (httparse, with hyper's server defaults) accepts the head. The header array is left
/// uninitialised (httparse writes what it parses): initialising 100 headers cost more than the parse.
fn hyper_accepts(head: &[u8]) -> bool {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    matches!(req.parse_with_uninit_headers(head, &mut headers), Ok(httparse::Status::Complete(_)))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// ALB's reason names (reference/ALB.md §7), the analyser's variants verbatim.
fn reason_name(r: ClassificationReason) -> &'static str {
    use ClassificationReason as R;
    match r {
        R::Compliant => "Compliant",
        R::EmptyHeader => "EmptyHeader",
        R::SuspiciousHeader => "SuspiciousHeader",
        R::NonCompliantHeader => "NonCompliantHeader",
        R::BadHeader => "BadHeader",
        R::AmbiguousUri => "AmbiguousUri",
        R::SpaceInUri => "SpaceInUri",
        R::BadUri => "BadUri",
        R::NonCompliantVersion => "NonCompliantVersion",
        R::BadVersion => "BadVersion",
        R::GetHeadZeroContentLength => "GetHeadZeroContentLength",
        R::UndefinedContentLengthSemantics => "UndefinedContentLengthSemantics",
        R::MultipleContentLength => "MultipleContentLength",
        R::DuplicateContentLength => "DuplicateContentLength",
        R::BadContentLength => "BadContentLength",
        R::UndefinedTransferEncodingSemantics => "UndefinedTransferEncodingSemantics",
        R::MultipleTransferEncodingChunked => "MultipleTransferEncodingChunked",
        R::BadTransferEncoding => "BadTransferEncoding",
        R::BothTeClPresent => "BothTeClPresent",
        R::BadMethod => "BadMethod",
        R::NonCrLfLineTermination => "NonCrLfLineTermination",
        R::MultilineHeader => "MultilineHeader",
        R::PartialHeaderLine => "PartialHeaderLine",
        R::MissingLastEmptyLine => "MissingLastEmptyLine",
        R::MissingHeaderColon => "MissingHeaderColon",
        R::MissingUri => "MissingUri",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(head: &str, mode: DesyncMode) -> Verdict {
        judge(head.as_bytes(), mode).0
    }

    #[test]
    fn compliant_requests_pass_in_every_mode() {
        for mode in [DesyncMode::Monitor, DesyncMode::Defensive, DesyncMode::Strictest] {
            let v = j("GET / HTTP/1.1\r\nHost: a\r\n\r\n", mode);
            assert_eq!((v.action, v.classification), (Action::Allow, None));
        }
    }

    #[test]
    fn modes_act_as_alb() {
        let both = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let v = j(both, DesyncMode::Defensive);
        assert_eq!(v.classification, Some(Classification::Ambiguous));
        assert_eq!(v.reason, Some("BothTeClPresent"));
        assert_eq!(v.action, Action::AllowThenClose);
        assert_eq!(j(both, DesyncMode::Monitor).action, Action::Allow);
        assert_eq!(j(both, DesyncMode::Strictest).action, Action::Reject(Cause::ClientRequestMalformed));
        let get0 = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(j(get0, DesyncMode::Defensive).classification, Some(Classification::Acceptable));
        assert_eq!(j(get0, DesyncMode::Defensive).action, Action::Allow);
        assert_eq!(j(get0, DesyncMode::Strictest).action, Action::Reject(Cause::ClientRequestMalformed));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (_, f) = judge(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            DesyncMode::Monitor,
        );
        assert_eq!(f, Some(Framing::Chunked), "chunked wins");
        let (_, f) = judge(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n", DesyncMode::Monitor);
        assert_eq!(f, Some(Framing::Length(7)));
        let (v, _) =
            judge(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n", DesyncMode::Monitor);
        assert_eq!(v.action, Action::Reject(Cause::ClientRequestMalformed), "unframeable even in monitor mode");
        let (v, _) =
            judge(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", DesyncMode::Monitor);
        assert_eq!(v.action, Action::Reject(Cause::ClientUnsupportedTransferEncoding));
    }

    #[test]
    fn a_content_length_is_digits_only() {
        // The analyser calls a signed length Severe (BadContentLength), which monitor mode alone would serve: it
        // cannot frame a body, so it is refused in every mode, through either parse.
        let head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n";
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut slots);
        assert!(matches!(req.parse(head), Ok(httparse::Status::Complete(_))));
        for mode in [DesyncMode::Monitor, DesyncMode::Defensive, DesyncMode::Strictest] {
            for (v, f) in [judge(head, mode), judge_parsed(head, mode, Some(&req))] {
                assert_eq!((v.action, f), (Action::Reject(Cause::ClientRequestMalformed), None), "{mode:?}");
                assert_eq!((v.classification, v.reason), (Some(Classification::Severe), Some("BadContentLength")));
            }
        }
        // Whitespace around the value is not part of it.
        let (v, f) = judge(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t5 \r\n\r\n", DesyncMode::Strictest);
        assert_eq!((v.action, v.classification, f), (Action::Allow, None, Some(Framing::Length(5))));
    }

    /// The two passes `framing_of` replaced (framing, then limits) and the initialised-headers parse, kept to
    /// pin that the one pass decides every head the same way.
    fn two_pass(head: &[u8]) -> (Result<Option<Framing>, Cause>, bool) {
        let framing = (|| {
            let mut te: Option<Vec<u8>> = None;
            let mut cl: Option<u64> = None;
            for line in head.split(|&b| b == b'\n').skip(1) {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
                let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
                if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    let all = te.get_or_insert_with(Vec::new);
                    if !all.is_empty() {
                        all.push(b',');
                    }
                    all.extend_from_slice(value);
                } else if name.eq_ignore_ascii_case(b"content-length") {
                    let n = crate::wire::parse_length(value);
                    match (n, cl) {
                        (None, _) => return Err(Cause::ClientRequestMalformed),
                        (Some(n), Some(prev)) if n != prev => return Err(Cause::ClientRequestMalformed),
                        (Some(n), _) => cl = Some(n),
                    }
                }
            }
            let Some(te) = te else { return Ok(Framing::of(false, cl)) };
            let codings: Vec<&[u8]> = te.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()).collect();
            if codings.iter().any(|c| !c.eq_ignore_ascii_case(b"chunked") && !c.eq_ignore_ascii_case(b"identity")) {
                return Err(Cause::ClientUnsupportedTransferEncoding);
            }
            if codings.iter().filter(|c| c.eq_ignore_ascii_case(b"chunked")).count() > 1 {
                return Err(Cause::ClientRequestMalformed);
            }
            if !codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
                return Err(Cause::ClientRequestMalformed);
            }
            Ok(Framing::of(true, cl))
        })();
        let framing = framing.and_then(|f| {
            let lines = head.split(|&b| b == b'\n').collect::<Vec<_>>();
            let over =
                lines.iter().any(|l| l.len() > MAX_LINE) || lines.len() > MAX_HEADERS + 3 || head.len() > MAX_HEAD;
            if over { Err(Cause::ClientRequestMalformed) } else { Ok(f) }
        });
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let accepted = matches!(httparse::Request::new(&mut headers).parse(head), Ok(httparse::Status::Complete(_)));
        (framing, accepted)
    }

    #[test]
    fn one_pass_decides_as_the_two_passes_did() {
        let big = "a".repeat(MAX_LINE);
        let many: String = (0..MAX_HEADERS).map(|i| format!("X-H{i}: 1\r\n")).collect();
        let mut heads: Vec<String> = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\n\n",
            "Content-Length: 5\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-LENGTH:5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \t5 \r\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            "POST / HTTP/1.1\r\n Content-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5:6\r\n\r\n",
            "POST / HTTP/1.1\r\nX-Content-Length: x\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding:chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding\r\n : chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nX: a\r\n chunked\r\nTransfer-Encoding: x\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nContent-Length: 4\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r",
            "GET / HTTP/1.1\r\nHost: a\r\n",
            "",
            "\n",
            ":\n:\n",
        ]
        .map(String::from)
        .into();
        heads.push(format!("GET / HTTP/1.1\r\nX-Big: {big}\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", &big[8..]));
        heads.push(format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", &big[6..]));
        heads.push(format!("GET /{big} HTTP/1.1\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\n{many}\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\n{many}X: 1\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\n{many}\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\n{many}Transfer-Encoding: gzip\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\nX-Big: {big}\r\nTransfer-Encoding: gzip\r\n\r\n"));
        heads.push(format!("GET / HTTP/1.1\r\n{}\r\n", "X: ".repeat(MAX_HEAD / 3)));
        for head in &heads {
            let head = head.as_bytes();
            let (framing, accepted) = two_pass(head);
            assert_eq!(framing_of(head), framing, "{:?}", String::from_utf8_lossy(head));
            assert_eq!(hyper_accepts(head), accepted, "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn limits_are_albs() {
        let long = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_LINE + 1));
        assert_eq!(j(&long, DesyncMode::Monitor).action, Action::Reject(Cause::ClientRequestMalformed));
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-H{i}: 1\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(j(&head, DesyncMode::Monitor).action, Action::Reject(Cause::ClientRequestMalformed));
    }

    /// The analyser's (tier, reason) and the framing from the raw bytes, and from httparse's fields where those
    /// are used.
    fn both_ways(head: &[u8]) -> (String, Option<String>) {
        let show = |(a, framing): (RequestAnalysisResult, Result<Option<Framing>, Cause>)| {
            format!("{:?} {} {framing:?}", a.tier, reason_name(a.reason))
        };
        let raw = show((HttpRequestData::analyze_raw_request(head), framing_of(head)));
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let parsed = matches!(req.parse_with_uninit_headers(head, &mut slots), Ok(httparse::Status::Complete(_)));
        (raw, if parsed { analyse_fields(head, &req).map(show) } else { None })
    }

    #[test]
    fn the_analysis_of_httparses_fields_is_the_raw_analysis() {
        // (head, whether httparse's fields stand in for the analyser's parse)
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET /x?y=1 HTTP/1.0\r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length:  +5 \r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", true),
            (
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                true,
            ),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t \r\n\r\n", true),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xffchunked\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n", true),
            (b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", true),
            (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", true),
            // The analyser's parser cuts these differently, or httparse refuses them: analysed raw.
            (b"GET / HTTP/1.1\nHost: a\n\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", false),
            (b"GET / HTTP/1.1\r\n\n", false),
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", false),
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", false),
            (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", false),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", false),
        ];
        for &(head, fields_used) in cases {
            let (raw, parsed) = both_ways(head);
            let text = String::from_utf8_lossy(head);
            assert_eq!(parsed.is_some(), fields_used, "{text:?}");
            if let Some(parsed) = parsed {
                assert_eq!(parsed, raw, "{text:?}");
            }
        }
    }

    /// ALB's line and count limits, read from httparse's fields, fall where the raw lines put them: a line at the
    /// limit (its CR counted) passes, one byte more does not, for the request line and a field alike.
    #[test]
    fn limits_from_httparses_fields_are_the_raw_ones() {
        let field = |len: usize| format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(len - 8));
        let target = |len: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(len - 15));
        let many = |n: usize| {
            format!("GET / HTTP/1.1\r\n{}\r\n", (0..n).map(|i| format!("X-H{i}: 1\r\n")).collect::<String>())
        };
        let heads = [field(MAX_LINE), field(MAX_LINE + 1), target(MAX_LINE), target(MAX_LINE + 1), many(MAX_HEADERS)];
        let mut refused = 0;
        for head in &heads {
            let (raw, parsed) = both_ways(head.as_bytes());
            assert_eq!(parsed.as_ref(), Some(&raw), "{}", &head[..40]);
            refused += usize::from(raw.contains("Err"));
        }
        assert_eq!(refused, 2, "the two lines over the limit");
    }
}
