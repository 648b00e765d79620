//! How long the target keeps an idle connection open, against the gateway's pool_idle_timeout: the
//! keep-alive race (FAULTS.md TargetKeepAliveRace) happens when the target gives up first.

use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use waygate_connect::ConnCounters;

use super::report::KeepAlive;
use super::target::ProbeTarget;
use waygate_config::format_duration;

pub fn unknown_keepalive(t: &ProbeTarget, why: &str) -> KeepAlive {
    KeepAlive {
        closed_after_ms: None,
        max_wait_ms: 0,
        pool_idle_timeout_ms: t.timers.pool_idle_timeout.as_millis() as u64,
        shorter: "unknown",
        advice: format!("keep-alive not measured: {why}"),
    }
}

/// Waits, bounded by `--keepalive-max`, for the target to close the idle connection. The sender is held so
/// hyper does not close it from our side.
pub async fn watch_idle<B>(
    t: &ProbeTarget,
    counters: &ConnCounters,
    conn_task: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    sender: http1::SendRequest<B>,
) -> KeepAlive {
    let max = t.keepalive_max;
    let pool = t.timers.pool_idle_timeout;
    let pool_s = format_duration(pool);
    let closed = tokio::time::timeout(max, conn_task).await.is_ok();
    drop(sender);
    let idle = counters.last_io_ago(Instant::now());
    let (closed_after, shorter, advice) = if closed {
        if idle < pool {
            let lower = idle.saturating_sub(idle / 10).max(Duration::from_secs(1));
            (
                Some(idle),
                "target",
                format!(
                    "the target closes idle connections after {:.1}s, before the gateway's pool_idle_timeout \
                     ({pool_s}): keep-alive race risk (TargetKeepAliveRace). Set the target's keep-alive timeout \
                     above {pool_s}, or set pool_idle_timeout below it (e.g. \"{}\")",
                    idle.as_secs_f64(),
                    format_duration(Duration::from_secs(lower.as_secs().max(1)))
                ),
            )
        } else {
            (
                Some(idle),
                "gateway",
                format!(
                    "the target keeps idle connections {:.1}s, longer than pool_idle_timeout ({pool_s}): the \
                     gateway closes first, as it should",
                    idle.as_secs_f64()
                ),
            )
        }
    } else if max >= pool {
        (
            None,
            "gateway",
            format!(
                "the target kept the idle connection open for {} (--keepalive-max), at least pool_idle_timeout \
                 ({pool_s}): the gateway closes first, as it should",
                format_duration(max)
            ),
        )
    } else {
        (
            None,
            "unknown",
            format!(
                "still open after {}, shorter than pool_idle_timeout ({pool_s}): raise --keepalive-max above \
                 {pool_s} to know which side closes first",
                format_duration(max)
            ),
        )
    };
    KeepAlive {
        closed_after_ms: closed_after.map(|d| d.as_millis() as u64),
        max_wait_ms: max.as_millis() as u64,
        pool_idle_timeout_ms: pool.as_millis() as u64,
        shorter,
        advice,
    }
}
