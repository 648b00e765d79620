//! W3C Trace Context (the recommendation's `traceparent` and `tracestate` fields) for one exchange: the
//! client's `traceparent` continued when valid, a new trace started when absent or invalid, and the head
//! sampling decision that targets receive in the flags of the `traceparent` the gateway sends them.
//!
//! A new trace's id is the request id's own bits: `Root=1-{8 hex}-{24 hex}` read as 32 hex digits, the
//! mapping AWS X-Ray and OpenTelemetry's X-Ray propagator use, so a target sees one trace id in
//! `x-amzn-trace-id` and in `traceparent`. A continued trace keeps the client's id; the request id is then the
//! span's `waygate.request_id` attribute. The gateway's span id (the exchange's SERVER span) is what targets
//! receive as their parent: the request head is encoded once for every attempt, so retries are sibling CLIENT
//! spans under that one parent.
//!
//! Sampling is parent-based: a valid `traceparent`'s sampled flag is followed; otherwise the trace id decides
//! against the ratio (its low 56 bits, uniformly random in both kinds of id, compared to `ratio × 2^56`), so
//! every instance decides alike for one trace.

use http::HeaderMap;
use http::header::HeaderName;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The longest `tracestate` kept on the span (W3C: 32 members, 512 characters is what vendors must carry).
const MAX_TRACESTATE: usize = 512;

/// One exchange's place in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The gateway's span for the exchange: targets' parent.
    pub span_id: [u8; 8],
    /// The client's span, from a valid `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    /// The head decision, sent to targets in the flags.
    pub sampled: bool,
    /// The client's `tracestate` (fields joined), kept for the span when it continued a valid parent.
    pub trace_state: Option<Box<str>>,
}

/// A ratio sampler on trace ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Sampled when the trace id's low 56 bits are below this; `1 << 56` samples all.
    threshold: u64,
}

impl Sampler {
    const BITS: u32 = 56;

    /// `ratio` in 0-1 (clamped).
    pub fn new(ratio: f64) -> Self {
        let full = 1u64 << Self::BITS;
        let threshold = if ratio >= 1.0 {
            full
        } else if ratio > 0.0 {
            (ratio * full as f64) as u64
        } else {
            0
        };
        Self { threshold }
    }

    pub fn samples(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..]);
        u64::from_be_bytes(low) < self.threshold
    }
}

impl TraceContext {
    /// The context of a request with these fields: its valid `traceparent` continued (its flag followed), or a
    /// new trace from `request_id` sampled by `sampler`.
    pub fn of_request(headers: &HeaderMap, request_id: &str, sampler: Sampler) -> Self {
        let mut parents = headers.get_all(&TRACEPARENT).iter();
        // Several traceparent fields are one invalid field (W3C §3.2: a single value).
        let parent = match (parents.next(), parents.next()) {
            (Some(one), None) => parse_traceparent(one.as_bytes()),
            _ => None,
        };
        match parent {
            Some(p) => Self {
                trace_id: p.trace_id,
                span_id: new_span_id(),
                parent_span_id: Some(p.parent_id),
                sampled: p.flags & 1 == 1,
                trace_state: trace_state(headers),
            },
            None => Self::root(request_id, sampler),
        }
    }

    /// A new trace whose id is the request id's bits (random ones if it has not the X-Ray shape).
    pub fn root(request_id: &str, sampler: Sampler) -> Self {
        let trace_id = trace_id_of(request_id).unwrap_or_else(random_trace_id);
        Self {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: None,
            sampled: sampler.samples(&trace_id),
            trace_state: None,
        }
    }

    /// The `traceparent` targets receive: this trace, the gateway's span, the sampling decision.
    pub fn traceparent(&self) -> [u8; 55] {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&mut out[3..35], &self.trace_id);
        hex_into(&mut out[36..52], &self.span_id);
        out[54] = if self.sampled { b'1' } else { b'0' };
        out
    }
}

/// A valid `traceparent`'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    pub version: u8,
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// W3C §3.2 (and §4.3 for versions after 00): lowercase hex fields, neither id all zeros, version `ff` invalid,
/// version 00 exactly 55 characters, a later version at least 55 with a `-` after them.
pub fn parse_traceparent(value: &[u8]) -> Option<Traceparent> {
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let version = hex_byte(&value[0..2])?;
    match version {
        0xff => return None,
        0 if value.len() != 55 => return None,
        _ if value.len() > 55 && value[55] != b'-' => return None,
        _ => {}
    }
    let mut trace_id = [0u8; 16];
    let mut parent_id = [0u8; 8];
    hex_from(&value[3..35], &mut trace_id)?;
    hex_from(&value[36..52], &mut parent_id)?;
    let flags = hex_byte(&value[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(Traceparent { version, trace_id, parent_id, flags })
}

/// The request id's 8 + 24 hex digits (`Root=1-{8}-{24}`) as a trace id.
pub fn trace_id_of(request_id: &str) -> Option<[u8; 16]> {
    let b = request_id.as_bytes();
    if b.len() != 40 || !b.starts_with(b"Root=1-") || b[15] != b'-' {
        return None;
    }
    let mut digits = [0u8; 32];
    digits[..8].copy_from_slice(&b[7..15]);
    digits[8..].copy_from_slice(&b[16..40]);
    let mut id = [0u8; 16];
    hex_from(&digits, &mut id)?;
    (id != [0; 16]).then_some(id)
}

/// The client's `tracestate`, its fields joined (W3C §3.3: several fields are one list), when it is text of
/// at most [`MAX_TRACESTATE`] bytes.
fn trace_state(headers: &HeaderMap) -> Option<Box<str>> {
    let mut joined = String::new();
    for v in headers.get_all(&TRACESTATE) {
        let text = v.to_str().ok()?.trim();
        if text.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(text);
    }
    (!joined.is_empty() && joined.len() <= MAX_TRACESTATE).then(|| joined.into_boxed_str())
}

/// A random span id, never all zeros (W3C: invalid).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn random_trace_id() -> [u8; 16] {
    loop {
        let id: u128 = rand::random();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` into `out` (twice as long).
pub fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// Lowercase hex text of `bytes`.
#[cfg(test)]
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    Some(nibble(pair[0])? << 4 | nibble(pair[1])?)
}

/// Lowercase hex (only: W3C forbids uppercase) into bytes.
fn hex_from(text: &[u8], out: &mut [u8]) -> Option<()> {
    for (pair, b) in text.chunks_exact(2).zip(out.iter_mut()) {
        *b = hex_byte(pair)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const ID: &str = "Root=1-6740a1b2-9f8e7d6c5b4a39281706f5e4";
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn w3c_examples_parse() {
        let p = parse_traceparent(PARENT.as_bytes()).unwrap();
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.parent_id), "00f067aa0ba902b7");
        assert_eq!((p.version, p.flags), (0, 1));
        // A later version may append fields after a dash.
        let future = b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-holds";
        assert_eq!(parse_traceparent(future).map(|p| p.version), Some(0xcc));
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_valid_parent_is_continued_with_its_flag_and_state() {
        let h = headers(&[("traceparent", PARENT), ("tracestate", "congo=t61rcWkgMzE"), ("tracestate", "rojo=1")]);
        let ctx = TraceContext::of_request(&h, ID, Sampler::new(0.0));
        assert_eq!(hex(&ctx.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id.map(|p| hex(&p)).as_deref(), Some("00f067aa0ba902b7"));
        assert!(ctx.sampled, "the parent's sampled flag wins over a ratio of 0");
        assert_eq!(ctx.trace_state.as_deref(), Some("congo=t61rcWkgMzE,rojo=1"));
        let unsampled = headers(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")]);
        assert!(!TraceContext::of_request(&unsampled, ID, Sampler::new(1.0)).sampled, "and so does an unsampled one");
        let sent = String::from_utf8(ctx.traceparent().to_vec()).unwrap();
        assert_eq!(sent, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", hex(&ctx.span_id)));
        assert_ne!(ctx.span_id, [0; 8]);
    }

    #[test]
    fn absent_or_invalid_starts_a_trace_from_the_request_id() {
        for h in [
            headers(&[]),
            headers(&[("traceparent", "garbage")]),
            headers(&[("traceparent", PARENT), ("traceparent", PARENT)]),
        ] {
            let ctx = TraceContext::of_request(&h, ID, Sampler::new(1.0));
            assert_eq!(hex(&ctx.trace_id), "6740a1b29f8e7d6c5b4a39281706f5e4", "X-Ray's id, as 32 hex digits");
            assert_eq!((ctx.parent_span_id, ctx.sampled, ctx.trace_state.as_ref()), (None, true, None));
        }
        assert!(!TraceContext::root(ID, Sampler::new(0.0)).sampled);
        assert_eq!(trace_id_of("not an id"), None);
    }

    #[test]
    fn the_ratio_samples_its_share_of_trace_ids() {
        let sampler = Sampler::new(0.25);
        let sampled = (0..4000u32)
            .filter(|i| {
                let mut id = [0u8; 16];
                // Low 56 bits spread evenly over their range.
                id[9..13].copy_from_slice(&(i.wrapping_mul(1_073_741)).to_be_bytes());
                sampler.samples(&id)
            })
            .count();
        assert!((900..=1100).contains(&sampled), "{sampled} of 4000 at 0.25");
        assert!(Sampler::new(1.0).samples(&[0xff; 16]));
        assert!(!Sampler::new(0.0).samples(&[0; 16]));
    }
}
