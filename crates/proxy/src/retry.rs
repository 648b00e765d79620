//! The one decision of what follows a failed attempt (pingora's `RetryType` is the model): another target,
//! the same target on a fresh connection, or no more attempts. It reads the same evidence the classifier
//! names the cause from ([`waygate_faults::retry_safety`]), what became of the request (sent or not, its body
//! replayable or not), and what is left of the request's budget, so no flag elsewhere can retry behind it.
//!
//! - Nothing reached the target (DNS, connect, TLS, a pooled connection found dead before any byte was
//!   written) and the body can go again: another target, within `retries`.
//! - A keep-alive race on a pooled connection, for an idempotent request whose body can be replayed: the same
//!   target once more on a fresh connection, on top of `retries` (as nginx: a dead cached connection is not a
//!   try).
//! - An HTTP/2 stream the target did not process (REFUSED_STREAM, or above a GOAWAY's last_stream_id), with a
//!   body that can go again: another target within `retries`, whatever the method (RFC 9113 §8.7).
//! - A refusal that is a property of the target, not a transient fault (an https target of an http2 or grpc
//!   group that did not offer h2 by ALPN; a WebSocket for an http2 target whose SETTINGS did not enable
//!   extended CONNECT): another target within `retries`, never this one again for the request, not even on a
//!   fresh connection; with no other target left, the failure is answered at once.
//! - Anything else (a timeout, a response begun, a request the target may have acted on, a target retired by
//!   its deregistration, a client that failed): the failure is answered.

use waygate_faults::{BadUpgrade, Evidence, H2Evidence, HttpEvidence, RetrySafety, retry_safety};

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Another attempt on another target (counted against the group's `retries`).
    OtherTarget,
    /// The same target again, on a new connection (once per request, not counted against `retries`).
    FreshConnection,
    /// No more attempts: answer with the failure's cause.
    Answer,
    /// Another attempt on another target (counted against `retries`), never this one again for the request: it
    /// would refuse the same way. With no other target left, the failure is answered at once.
    OtherTargetOnly,
}

/// What became of the request in the failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The connection came from the pool.
    pub reused: bool,
    /// The request body can be sent again: untouched, or buffered whole.
    pub replayable: bool,
    /// The target was retired (deregistered) under the request.
    pub deregistered: bool,
}

/// A request's attempts: how many were made and may be made.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub attempt: usize,
    pub max_attempts: usize,
    race_retried: bool,
}

impl Budget {
    /// `retries` from the target group: `1 + retries` attempts.
    pub fn new(retries: u32) -> Self {
        Self { attempt: 0, max_attempts: 1 + retries as usize, race_retried: false }
    }

    /// Counts the attempt about to be made.
    pub fn begin(&mut self) {
        self.attempt += 1;
    }
}

/// Decides what follows the failed attempt whose evidence is `evidence`, for a request of `idempotent` method,
/// and spends `budget` accordingly.
pub fn decide(evidence: &Evidence, outcome: Outcome, idempotent: bool, budget: &mut Budget) -> Next {
    if evidence.timed_out || outcome.deregistered || !outcome.replayable {
        return Next::Answer;
    }
    if matches!(evidence.http, Some(HttpEvidence::BadUpgrade(BadUpgrade::ExtendedConnectDisabled)))
        || evidence.h2 == Some(H2Evidence::NotNegotiated)
    {
        return if budget.attempt < budget.max_attempts { Next::OtherTargetOnly } else { Next::Answer };
    }
    match retry_safety(evidence, idempotent, outcome.replayable) {
        RetrySafety::ReusedConnectionRace | RetrySafety::NothingSent if outcome.reused && !budget.race_retried => {
            budget.race_retried = true;
            budget.max_attempts += 1;
            Next::FreshConnection
        }
        RetrySafety::NothingSent | RetrySafety::Unprocessed if budget.attempt < budget.max_attempts => {
            Next::OtherTarget
        }
        _ => Next::Answer,
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use waygate_faults::Phase;

    use super::*;

    fn ev(phase: Phase, written: u64) -> Evidence {
        Evidence { bytes_written: written, ..Evidence::new(phase) }
    }

    const FRESH: Outcome = Outcome { reused: false, replayable: true, deregistered: false };
    const POOLED: Outcome = Outcome { reused: true, ..FRESH };

    fn after(evidence: &Evidence, outcome: Outcome, idempotent: bool, retries: u32, attempt: usize) -> Next {
        let mut budget = Budget::new(retries);
        budget.attempt = attempt;
        decide(evidence, outcome, idempotent, &mut budget)
    }

    #[test]
    fn nothing_sent_goes_to_another_target_within_retries() {
        let refused = Evidence { io_kind: Some(ErrorKind::ConnectionRefused), ..ev(Phase::Connect, 0) };
        assert_eq!(after(&refused, FRESH, false, 1, 1), Next::OtherTarget, "even a POST: nothing reached it");
        assert_eq!(after(&refused, FRESH, false, 1, 2), Next::Answer, "retries spent");
        assert_eq!(after(&refused, FRESH, true, 0, 1), Next::Answer, "retries = 0");
        let unwritten = ev(Phase::SendRequest, 0);
        assert_eq!(after(&unwritten, FRESH, false, 1, 1), Next::OtherTarget);
        let untouched_body_lost = Outcome { replayable: false, ..FRESH };
        assert_eq!(after(&unwritten, untouched_body_lost, false, 1, 1), Next::Answer, "the body is gone");
    }

    #[test]
    fn a_keep_alive_race_gets_one_fresh_connection_for_idempotent_requests() {
        let race =
            Evidence { reused: true, http: Some(HttpEvidence::ClosedBeforeHead), ..ev(Phase::AwaitHeaders, 120) };
        let mut budget = Budget::new(0);
        budget.begin();
        assert_eq!(decide(&race, POOLED, true, &mut budget), Next::FreshConnection);
        assert_eq!(budget.max_attempts, 2, "on top of retries");
        budget.begin();
        assert_eq!(decide(&race, POOLED, true, &mut budget), Next::Answer, "once per request");
        assert_eq!(after(&race, POOLED, false, 3, 1), Next::Answer, "a POST is never replayed");
        let gone = Outcome { deregistered: true, ..POOLED };
        assert_eq!(after(&race, gone, true, 3, 1), Next::Answer, "a retired target gets nothing more");
    }

    #[test]
    fn timeouts_and_begun_responses_are_answered() {
        let timeout = Evidence { timed_out: true, ..ev(Phase::Connect, 0) };
        assert_eq!(after(&timeout, FRESH, true, 3, 1), Next::Answer);
        let begun = Evidence { response_started: true, ..ev(Phase::StreamBody, 500) };
        assert_eq!(after(&begun, FRESH, true, 3, 1), Next::Answer);
        let sent = Evidence { io_kind: Some(ErrorKind::ConnectionReset), ..ev(Phase::AwaitHeaders, 500) };
        assert_eq!(after(&sent, FRESH, true, 3, 1), Next::Answer, "a fresh connection's reset after sending");
    }

    #[test]
    fn a_target_without_extended_connect_is_never_tried_again() {
        let disabled = Evidence {
            http: Some(HttpEvidence::BadUpgrade(BadUpgrade::ExtendedConnectDisabled)),
            ..ev(Phase::SendRequest, 0)
        };
        assert_eq!(after(&disabled, FRESH, true, 1, 1), Next::OtherTargetOnly);
        assert_eq!(after(&disabled, POOLED, true, 1, 1), Next::OtherTargetOnly, "no fresh connection to it either");
        assert_eq!(after(&disabled, POOLED, true, 0, 1), Next::Answer, "retries = 0");
        assert_eq!(after(&disabled, FRESH, true, 3, 4), Next::Answer, "retries spent");
        let no_h2 = Evidence { h2: Some(H2Evidence::NotNegotiated), ..ev(Phase::TlsHandshake, 0) };
        assert_eq!(after(&no_h2, FRESH, false, 1, 1), Next::OtherTargetOnly, "its ALPN answer will not change");
        assert_eq!(after(&no_h2, FRESH, false, 0, 1), Next::Answer, "retries = 0");
    }
}
