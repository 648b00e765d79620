//! The system-log line the gateway wrote for a failed attempt, rebuilt from the record: the same fields in the
//! same order as `waygate_proxy`'s `log::attempt_failed` writes them through `tracing`'s logfmt-style
//! formatter (`LEVEL target: message key=value ...`, the timestamp aside), so that `waygate explain` can show
//! it and an operator can grep for it. A test in the proxy crate pins the two against each other.

use std::fmt::Write as _;

use waygate_faults::Cause;

use crate::{Attempt, Exchange};

/// The line `log::attempt_failed` wrote for `attempt` of `ex`, without its leading timestamp; `None` when the
/// attempt has no detail, or when the line was throttled (GatewayResourceExhausted logs one line a second
/// with a count, not one per request).
pub fn system_log_line(ex: &Exchange, attempt: &Attempt) -> Option<String> {
    let d = attempt.detail.as_deref()?;
    let cause = attempt.cause?;
    if cause == Cause::GatewayResourceExhausted {
        return None;
    }
    let level = if d.attempt >= d.max_attempts { "ERROR" } else { " WARN" };
    let group = ex.target_group.as_ref().map_or("-", |g| &g.name);
    let id = if ex.trace_id.as_str().is_empty() { "-" } else { ex.trace_id.as_str() };
    let mut line = format!(
        "{level} waygate::upstream: {} request_id={id} cause={} phase={} target_group={group} target={}",
        d.message,
        cause.name(),
        d.phase.as_str(),
        attempt.target
    );
    if let Some(c) = &d.conn {
        let _ = write!(
            line,
            " conn={} remote={} local={} reused={} use_count={} bytes_read={} bytes_written={} age_ms={} \
             last_io_ms={} idle_before_ms={} open={}",
            c.id,
            c.remote,
            c.local,
            c.reused,
            c.use_count,
            c.attempt_bytes_read,
            c.attempt_bytes_written,
            c.age.as_millis(),
            c.last_io_ago.as_millis(),
            c.idle_before_use.map_or(-1, |d| d.as_millis() as i64),
            c.open
        );
    }
    let _ = write!(line, " attempt={}/{}", d.attempt, d.max_attempts);
    Some(line)
}
