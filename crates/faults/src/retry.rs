//! Whether a failed attempt may be retried on another connection or target (FAULTS.md, "Retries are
//! visible, never silent"). The decision is a pure function of the same [`Evidence`] the classifier reads,
//! so a retry and the cause it is counted under can never disagree.

use crate::{Cause, Evidence, Phase, classify};

/// Why an attempt may, or may not, be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetrySafety {
    /// Nothing of the request reached the target (DNS, connect or TLS failure, or a pooled connection
    /// found dead before any request byte was written): always safe.
    NothingSent,
    /// A keep-alive race on a reused connection, before any response byte, for an idempotent request
    /// whose body can be replayed: safe, the target cannot have acted on a request it closed under.
    ReusedConnectionRace,
    /// The target said it did not process the request's HTTP/2 stream (REFUSED_STREAM, or a GOAWAY whose
    /// last_stream_id is below it): safe whatever the method, if the body can be replayed (RFC 9113 §8.7).
    Unprocessed,
    /// Anything else: the target may have acted on the request, or a response already started.
    Unsafe,
}

impl RetrySafety {
    /// Whether another attempt is allowed (still subject to the target group's `retries` budget).
    pub const fn is_safe(self) -> bool {
        !matches!(self, Self::Unsafe)
    }
}

/// Decides whether the attempt that failed with `evidence` may be retried. `idempotent`: the method is
/// idempotent (RFC 9110 §9.2.2). `body_replayable`: the request body is empty or fully buffered.
///
/// Route and select failures are not attempts at a target, so there is nothing to retry (`Unsafe`);
/// a client that went away, or a response already started, is never retried. A response timeout on a
/// reused connection is not a keep-alive race: the target may be working on the request, so it is unsafe.
pub fn retry_safety(evidence: &Evidence, idempotent: bool, body_replayable: bool) -> RetrySafety {
    if evidence.client_closed || evidence.response_started {
        return RetrySafety::Unsafe;
    }
    match evidence.phase {
        Phase::Route | Phase::Select | Phase::StreamBody => RetrySafety::Unsafe,
        Phase::Dns | Phase::Connect | Phase::TlsHandshake => RetrySafety::NothingSent,
        Phase::SendRequest | Phase::AwaitHeaders if evidence.bytes_written == 0 => RetrySafety::NothingSent,
        Phase::SendRequest | Phase::AwaitHeaders
            if body_replayable && evidence.h2.is_some_and(crate::H2Evidence::unprocessed) =>
        {
            RetrySafety::Unprocessed
        }
        // A verdict from the invoke API (too large, throttled, denied...) would repeat; only a failure to
        // reach the endpoint before writing anything is worth another attempt.
        Phase::FunctionInvoke if evidence.bytes_written == 0 && evidence.lambda.is_none() => RetrySafety::NothingSent,
        Phase::SendRequest | Phase::AwaitHeaders
            if idempotent && body_replayable && classify(evidence) == Cause::TargetKeepAliveRace =>
        {
            RetrySafety::ReusedConnectionRace
        }
        Phase::SendRequest | Phase::AwaitHeaders | Phase::FunctionInvoke => RetrySafety::Unsafe,
    }
}
