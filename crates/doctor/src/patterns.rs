//! Patterns that deserve their own finding because the cause table alone hides them (issue 7, "Findings"):
//!
//! - `keep_alive_mismatch`: load-balancer 502s (target status `-`) spread thinly over many targets. One bad
//!   target concentrates errors; a keep-alive timeout shorter on the targets than on the load balancer hits
//!   every target a little, whenever a pooled connection is reused just as the target closes it.
//! - `target_concentration`: 5xx concentrated on one target, far above its peers' rate.
//! - `deregistered_mid_request`: load-balancer 502s on a target in the last minute before it leaves the
//!   logs for good (deregistration delay shorter than the requests). With waygate's audit log the
//!   deregistration event is known and the finding is exact.
//!
//! The thresholds are constants below, chosen so that a handful of stray errors does not make a finding.

use std::collections::BTreeMap;

use crate::accum::{Acc, TargetStat};
use crate::audit::Deregistration;
use crate::report::Pattern;
use crate::time::{Micros, SECOND, format_timestamp};

/// Fewest events for any pattern.
pub const MIN_EVENTS: u64 = 10;
/// Keep-alive: at least this many targets affected ...
pub const SPREAD_MIN_TARGETS: usize = 3;
/// ... no target holding more than this multiple of an even share ...
pub const SPREAD_MAX_SHARE_FACTOR: u64 = 3;
/// ... and 502s under this percentage of the affected targets' requests.
pub const SPREAD_MAX_RATE_PERCENT: u64 = 5;
/// Concentration: the top target holds at least this percentage of the 5xx with a target ...
pub const CONCENTRATION_MIN_SHARE_PERCENT: u64 = 50;
/// ... at a 5xx rate at least this many times its peers'.
pub const CONCENTRATION_MIN_RATE_FACTOR: f64 = 3.0;
/// Deregistration: the window before a target's last line in which its 502s count.
pub const DEREGISTRATION_WINDOW: Micros = 60 * SECOND;
/// Deregistration: how long the others must go on after a target's last line for it to have "left".
pub const DEREGISTRATION_GONE_AFTER: Micros = 60 * SECOND;
/// The longest deregistration delay ALB allows: 502s later than this after a deregistration are unrelated.
pub const MAX_DEREGISTRATION_DELAY: Micros = 3600 * SECOND;

fn name(t: &TargetStat) -> String {
    String::from_utf8_lossy(&t.name).into_owned()
}

fn span(times: impl Iterator<Item = Micros>) -> (Option<String>, Option<String>) {
    let (lo, hi) = times.fold((Micros::MAX, Micros::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if lo > hi { (None, None) } else { (Some(format_timestamp(lo)), Some(format_timestamp(hi))) }
}

fn seconds(d: Micros) -> String {
    format!("{:.1} s", d as f64 / SECOND as f64)
}

/// Every pattern found, in a stable order.
pub(crate) fn find(acc: &Acc, audit: &[Deregistration]) -> Vec<Pattern> {
    let mut out = Vec::new();
    out.extend(keep_alive(acc));
    out.extend(concentration(acc));
    out.extend(deregistration(acc, audit));
    out
}

fn keep_alive(acc: &Acc) -> Option<Pattern> {
    let serving = acc.targets.iter().filter(|t| t.requests > 0).count();
    let affected: Vec<&TargetStat> = acc.targets.iter().filter(|t| !t.lb_502.is_empty()).collect();
    let total: u64 = affected.iter().map(|t| t.lb_502.len() as u64).sum();
    let max = affected.iter().map(|t| t.lb_502.len() as u64).max().unwrap_or(0);
    let requests: u64 = affected.iter().map(|t| t.requests).sum();
    let k = affected.len();
    if total < MIN_EVENTS
        || k < SPREAD_MIN_TARGETS
        || k * 2 < serving
        || max * k as u64 > SPREAD_MAX_SHARE_FACTOR * total
        || total * 100 >= SPREAD_MAX_RATE_PERCENT * requests
    {
        return None;
    }
    let (first_seen, last_seen) = span(affected.iter().flat_map(|t| t.lb_502.iter().copied()));
    let rate = total as f64 * 100.0 / requests as f64;
    Some(Pattern {
        kind: "keep_alive_mismatch",
        summary: format!(
            "{total} load-balancer 502s (target_status_code -) spread thinly over {k} of {serving} targets \
            (at most {max} on one, {rate:.2}% of their requests): the signature of targets closing idle \
            keep-alive connections before the load balancer does"
        ),
        count: total,
        targets: affected.iter().map(|t| (name(t), t.lb_502.len() as u64)).collect(),
        first_seen,
        last_seen,
        exact: false,
        remediation: "Set the targets' keep-alive (idle) timeout longer than the load balancer's idle timeout \
            (ALB: 60 s by default; waygate: the target group's pool_idle_timeout), or lower the load balancer's. \
            Behind waygate these 502s are named TargetKeepAliveRace and retried when safe."
            .to_owned(),
    })
}

fn concentration(acc: &Acc) -> Option<Pattern> {
    let serving: Vec<&TargetStat> = acc.targets.iter().filter(|t| t.requests > 0).collect();
    if serving.len() < 2 {
        return None;
    }
    let total: u64 = serving.iter().map(|t| t.any_5xx).sum();
    let top = serving.iter().max_by(|a, b| a.any_5xx.cmp(&b.any_5xx).then_with(|| b.name.cmp(&a.name)))?;
    let others_requests: u64 = serving.iter().map(|t| t.requests).sum::<u64>() - top.requests;
    let others_5xx = total - top.any_5xx;
    if total < MIN_EVENTS || top.any_5xx * 100 < CONCENTRATION_MIN_SHARE_PERCENT * total || others_requests == 0 {
        return None;
    }
    let top_rate = top.any_5xx as f64 / top.requests as f64;
    let others_rate = others_5xx as f64 / others_requests as f64;
    if top_rate < CONCENTRATION_MIN_RATE_FACTOR * others_rate {
        return None;
    }
    let target = name(top);
    let mut causes: Vec<(u64, &str)> = acc
        .causes
        .iter()
        .filter_map(|c| {
            let id = *acc.target_ids.get(&top.name)?;
            c.targets.get(&id).map(|n| (*n, &*c.name))
        })
        .collect();
    causes.sort_by(|a, b| b.cmp(a));
    let causes: Vec<String> = causes.iter().take(3).map(|(n, c)| format!("{c} {n}")).collect();
    Some(Pattern {
        kind: "target_concentration",
        summary: format!(
            "{} of {total} 5xx with a target ({:.0}%) are on {target}: {:.2}% of its requests against {:.2}% on \
            the other {} targets ({})",
            top.any_5xx,
            top.any_5xx as f64 * 100.0 / total as f64,
            top_rate * 100.0,
            others_rate * 100.0,
            serving.len() - 1,
            causes.join(", ")
        ),
        count: top.any_5xx,
        targets: BTreeMap::from([(target.clone(), top.any_5xx)]),
        first_seen: Some(format_timestamp(top.first)),
        last_seen: Some(format_timestamp(top.last)),
        exact: false,
        remediation: format!(
            "The problem is {target}, not the fleet: take it out of service (deregister it), then look at its \
            application logs and resources (CPU, memory, file descriptors, disk) and check it from the load \
            balancer's network with `waygate doctor probe {target}`. Make its health check strict enough to \
            catch this state."
        ),
    })
}

fn delay_advice(t: &TargetStat) -> String {
    match t.max_duration {
        Some(d) => format!(
            "Raise the target group's deregistration_delay above {}, the longest request seen on this target, \
            or make such requests shorter.",
            seconds(d)
        ),
        None => "Raise the target group's deregistration_delay above the longest request duration.".to_owned(),
    }
}

fn deregistration(acc: &Acc, audit: &[Deregistration]) -> Vec<Pattern> {
    let mut out = Vec::new();
    let mut exact_targets = Vec::new();
    for d in audit {
        let Some(&id) = acc.target_ids.get(d.target.as_bytes()) else { continue };
        let t = &acc.targets[id as usize];
        let cut: Vec<Micros> =
            t.lb_502.iter().copied().filter(|x| *x >= d.time && *x - d.time <= MAX_DEREGISTRATION_DELAY).collect();
        if cut.is_empty() {
            continue;
        }
        exact_targets.push(id);
        let (first_seen, last_seen) = span(cut.iter().copied());
        let after = cut.iter().max().map_or(0, |l| l - d.time);
        out.push(Pattern {
            kind: "deregistered_mid_request",
            summary: format!(
                "{} was deregistered at {}{}{}; {} requests on it ended in a load-balancer 502 up to {} later: \
                the deregistration delay ran out while they were in flight",
                d.target,
                format_timestamp(d.time),
                d.target_group.as_ref().map(|g| format!(" from {g}")).unwrap_or_default(),
                d.actor.as_ref().map(|a| format!(" by {a}")).unwrap_or_default(),
                cut.len(),
                seconds(after)
            ),
            count: cut.len() as u64,
            targets: BTreeMap::from([(d.target.clone(), cut.len() as u64)]),
            first_seen,
            last_seen,
            exact: true,
            remediation: delay_advice(t),
        });
    }
    let Some(end) = acc.targets.iter().map(|t| t.last).max() else { return out };
    for (id, t) in acc.targets.iter().enumerate() {
        if t.lb_502.is_empty() || exact_targets.contains(&(id as u32)) || end - t.last < DEREGISTRATION_GONE_AFTER {
            continue;
        }
        let near: Vec<Micros> = t.lb_502.iter().copied().filter(|x| t.last - *x <= DEREGISTRATION_WINDOW).collect();
        if near.is_empty() {
            continue;
        }
        let (first_seen, last_seen) = span(near.iter().copied());
        out.push(Pattern {
            kind: "deregistered_mid_request",
            summary: format!(
                "{} load-balancer 502s on {} in the last {} before it left the logs at {} (others went on for {}): \
                most likely deregistered with a deregistration delay shorter than its requests; give the audit log \
                (--audit) to make this exact",
                near.len(),
                name(t),
                seconds(DEREGISTRATION_WINDOW),
                format_timestamp(t.last),
                seconds(end - t.last)
            ),
            count: near.len() as u64,
            targets: BTreeMap::from([(name(t), near.len() as u64)]),
            first_seen,
            last_seen,
            exact: false,
            remediation: format!("Check DeregisterTargets calls (CloudTrail) around that time. {}", delay_advice(t)),
        });
    }
    out
}
