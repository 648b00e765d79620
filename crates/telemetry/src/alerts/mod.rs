//! Alert rules (`[[alert]]`, docs/INTERFACE.md "Alerts"): an observer of finished exchanges that counts, per
//! rule, the exchanges in scope and the matching ones by cause, and an evaluator that turns those counts into
//! firing and resolving on a one-second timer, off the request path.
//!
//! The request path ([`Alerts::observe`]) loads the rule set (an `ArcSwap`, no lock), counts the record once per
//! distinct scope it is in, tests each rule's [`rule::Matcher`] and counts a match, in its thread's own shard (a
//! cache-line-aligned slice, so worker threads do not write the same lines, and a thread that owns its shard
//! increments with a plain load and store, no locked instruction); for a match it also
//! copies the request id into the rule's small ring when nobody else is writing it (`try_lock`, never
//! waiting). Nothing is allocated. The evaluator sums the shards once a tick, pushes the difference into each
//! rule's sliding [`window::Window`], and applies the hysteresis: a transition sets
//! `waygate_alert_firing{alert}`, writes a system-log line and yields an [`AlertEvent`] for the rule's
//! webhook ([`webhook`], on the same thread's runtime).
//!
//! A reload installs a new rule set with fresh counters; a rule whose configuration did not change keeps its
//! window and state, one that changed or left while firing resolves with a note saying why.

mod event;
mod rule;
mod webhook;
mod window;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;
use waygate_config::{Alert, AlertTrigger, Webhook};
use waygate_faults::Cause;

pub use event::{AlertEvent, AlertState};
pub use webhook::{FIRST_PAUSE as WEBHOOK_FIRST_PAUSE, QUEUE as WEBHOOK_QUEUE};

use crate::{AlertCounters, Exchange, InlineStr};
use rule::{Matcher, cause_index};
use window::{Delta, Window};

/// Counter shards owned by one thread each (the first threads that observe a record); every later thread
/// shares one more shard.
const SHARDS: usize = 16;
/// Request ids each rule keeps of its latest matches.
pub const RECENT_IDS: usize = 8;
/// How often rules are evaluated.
pub const TICK: Duration = Duration::from_secs(1);

/// Counters per rule: (in scope: kept per distinct scope instead), matching, matching by cause (catalogue
/// order), matching without a cause.
const STRIDE: usize = 2 + Cause::ALL.len() + 1;

/// `"60s"`: a window as the API, the log and the webhook write it.
pub fn seconds_text(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// This thread's shard, and whether the thread is its only writer. A sole writer increments with a plain load
/// and store (no locked instruction: the evaluator only reads); threads beyond the first [`SHARDS`] share the
/// last shard and increment atomically.
fn shard_of_thread() -> (usize, bool) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: (usize, bool) = {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            if n < SHARDS { (n, true) } else { (SHARDS, false) }
        };
    }
    SHARD.try_with(|s| *s).unwrap_or((SHARDS, false))
}

fn bump(counter: &AtomicU64, sole_writer: bool) {
    if sole_writer {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The latest matching request ids of one rule, oldest overwritten.
#[derive(Debug, Default)]
struct RecentIds {
    ids: [InlineStr; RECENT_IDS],
    next: usize,
    len: usize,
}

impl RecentIds {
    fn push(&mut self, id: &InlineStr) {
        self.ids[self.next] = id.clone();
        self.next = (self.next + 1) % RECENT_IDS;
        self.len = (self.len + 1).min(RECENT_IDS);
    }

    /// Newest first.
    fn list(&self) -> Vec<String> {
        (1..=self.len).map(|k| self.ids[(self.next + RECENT_IDS - k) % RECENT_IDS].to_string()).collect()
    }
}

struct Compiled {
    alert: Arc<Alert>,
    matcher: Matcher,
    recent: Mutex<RecentIds>,
}

/// What the request path reads: the rules and their counters. Rules with the same scope (target group and
/// listener) share one in-scope counter, so twenty rules over all traffic count each record once, not twenty
/// times. A shard is the distinct scopes' counters, then [`STRIDE`] per rule (whose first slot is unused).
struct RuleSet {
    rules: Box<[Compiled]>,
    /// Each distinct scope, by the index of a rule that has it.
    scopes: Box<[usize]>,
    /// Each rule's scope (an index into `scopes`).
    scope_of: Box<[usize]>,
    shards: Box<[CachePadded<Box<[AtomicU64]>>]>,
}

impl RuleSet {
    fn new(alerts: &[Arc<Alert>]) -> Self {
        let rules: Box<[Compiled]> = alerts
            .iter()
            .map(|a| Compiled { alert: a.clone(), matcher: Matcher::new(&a.when), recent: Mutex::default() })
            .collect();
        let mut scopes: Vec<usize> = Vec::new();
        let scope_of = rules
            .iter()
            .enumerate()
            .map(|(r, rule)| match scopes.iter().position(|&s| rules[s].matcher.same_scope(&rule.matcher)) {
                Some(at) => at,
                None => {
                    scopes.push(r);
                    scopes.len() - 1
                }
            })
            .collect();
        let slots = scopes.len() + alerts.len() * STRIDE;
        let shards = (0..=SHARDS).map(|_| CachePadded::new((0..slots).map(|_| AtomicU64::new(0)).collect())).collect();
        Self { rules, scopes: scopes.into(), scope_of, shards }
    }

    fn rule_base(&self, r: usize) -> usize {
        self.scopes.len() + r * STRIDE
    }

    /// Rule `r`'s counters summed over the shards (cumulative since the set was installed); slot 0 is its
    /// scope's.
    fn totals(&self, r: usize) -> [u64; STRIDE] {
        let mut out = [0; STRIDE];
        let base = self.rule_base(r);
        for shard in &self.shards {
            out[0] += shard[self.scope_of[r]].load(Ordering::Relaxed);
            for (k, slot) in out.iter_mut().enumerate().skip(1) {
                *slot += shard[base + k].load(Ordering::Relaxed);
            }
        }
        out
    }
}

/// The evaluator's state of one rule.
struct Eval {
    alert: Arc<Alert>,
    /// The set's cumulative counters at the last tick.
    last: [u64; STRIDE],
    window: Window,
    state: AlertState,
    since: SystemTime,
    value: f64,
}

impl Eval {
    fn new(alert: Arc<Alert>, now: SystemTime) -> Self {
        let window = Window::new(alert.window, Cause::ALL.len() + 1);
        Self { alert, last: [0; STRIDE], window, state: AlertState::Ok, since: now, value: 0.0 }
    }
}

struct Evaluator {
    rules: Vec<Eval>,
    /// Resolutions a reload caused, reported at the next evaluation.
    pending: Vec<(Option<Webhook>, AlertEvent)>,
}

/// One rule as `GET /api/v1/alerts` shows it.
#[derive(Debug, Clone)]
pub struct AlertStatus {
    pub alert: Arc<Alert>,
    pub state: AlertState,
    pub value: f64,
    /// Since when the state holds (the process start, or the rule's load, for a rule that never fired).
    pub since: SystemTime,
    /// Exchanges in scope and matching ones within the window.
    pub in_scope: u64,
    pub matching: u64,
    pub causes: Vec<(&'static str, u64)>,
    pub request_ids: Vec<String>,
    pub remediation: Option<&'static str>,
}

/// The alert rules of one gateway. Shared by the request path (observe), the timer thread (evaluate) and the
/// admin API (status).
pub struct Alerts {
    set: ArcSwap<RuleSet>,
    eval: Mutex<Evaluator>,
    counters: AlertCounters,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("rules", &self.set.load().rules.len()).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Alerts {
    /// No rules yet; `counters` from [`crate::Metrics::alert_counters`].
    pub fn new(counters: AlertCounters) -> Self {
        Self {
            set: ArcSwap::from_pointee(RuleSet::new(&[])),
            eval: Mutex::new(Evaluator { rules: Vec::new(), pending: Vec::new() }),
            counters,
        }
    }

    /// Counts one finished exchange. Called by the data plane for every record.
    pub fn observe(&self, ex: &Exchange) {
        let set = self.set.load();
        if set.rules.is_empty() {
            return;
        }
        let (shard, sole) = shard_of_thread();
        let shard = &set.shards[shard];
        // The scopes this record is in: a bit each for the first 64, the rest tested again per rule.
        let mut in_scope = 0u64;
        for (s, &rep) in set.scopes.iter().enumerate() {
            if set.rules[rep].matcher.scope(ex) {
                bump(&shard[s], sole);
                if s < 64 {
                    in_scope |= 1 << s;
                }
            }
        }
        for (r, rule) in set.rules.iter().enumerate() {
            let s = set.scope_of[r];
            let scoped = if s < 64 { in_scope & (1 << s) != 0 } else { rule.matcher.scope(ex) };
            if !scoped || !rule.matcher.hit(ex) {
                continue;
            }
            let base = set.rule_base(r);
            bump(&shard[base + 1], sole);
            bump(&shard[base + ex.cause.map_or(STRIDE - 1, |c| 2 + cause_index(c))], sole);
            if let Ok(mut recent) = rule.recent.try_lock() {
                recent.push(&ex.trace_id);
            }
        }
    }

    /// Installs the rules of a (re)loaded configuration.
    pub fn configure(&self, alerts: &[Alert]) {
        self.configure_at(alerts, SystemTime::now());
    }

    /// [`Alerts::configure`] at `now` (tests drive the clock).
    pub fn configure_at(&self, alerts: &[Alert], now: SystemTime) {
        let mut eval = lock(&self.eval);
        let mut old: Vec<Eval> = std::mem::take(&mut eval.rules);
        let mut kept = Vec::with_capacity(alerts.len());
        for a in alerts {
            match old.iter().position(|e| *e.alert == *a) {
                Some(i) => {
                    let mut e = old.remove(i);
                    e.last = [0; STRIDE];
                    kept.push(e);
                }
                None => kept.push(Eval::new(Arc::new(a.clone()), now)),
            }
        }
        let set = RuleSet::new(&kept.iter().map(|e| e.alert.clone()).collect::<Vec<_>>());
        let current = self.set.load();
        for e in old {
            self.counters.firing.remove(&crate::labels::AlertLabels { alert: e.alert.name.clone() });
            if e.state == AlertState::Firing {
                let note = if alerts.iter().any(|a| a.name == e.alert.name) {
                    "resolved because a reload changed the rule"
                } else {
                    "resolved because a reload removed the rule"
                };
                let ids =
                    current.rules.iter().find(|c| Arc::ptr_eq(&c.alert, &e.alert)).map(|c| lock(&c.recent).list());
                let mut event = event(&e, AlertState::Ok, now, ids.unwrap_or_default());
                event.note = Some(note);
                event.log();
                eval.pending.push((e.alert.webhook.clone(), event));
            }
        }
        for e in &kept {
            let firing = i64::from(e.state == AlertState::Firing);
            self.counters.firing.get_or_create(&crate::labels::AlertLabels { alert: e.alert.name.clone() }).set(firing);
        }
        eval.rules = kept;
        self.set.store(Arc::new(set));
    }

    /// One evaluation at `now`: every rule's window advances by what was counted since the last one; the
    /// transitions are logged, set in `waygate_alert_firing`, and returned with their rule's webhook.
    pub fn evaluate(&self, now: SystemTime) -> Vec<(Option<Webhook>, AlertEvent)> {
        let mut eval = lock(&self.eval);
        let set = self.set.load();
        let mut out = std::mem::take(&mut eval.pending);
        for (r, e) in eval.rules.iter_mut().enumerate() {
            let totals = set.totals(r);
            let mut delta = Delta { scope: totals[0] - e.last[0], hits: totals[1] - e.last[1], causes: Vec::new() };
            for (k, (now, last)) in totals.iter().zip(&e.last).enumerate().skip(2) {
                if now > last {
                    delta.causes.push((k - 2, now - last));
                }
            }
            e.last = totals;
            e.window.push(now, delta);
            e.value = e.window.value(&e.alert.trigger);
            let was = e.state == AlertState::Firing;
            let is = window::firing(was, e.value, e.window.scope, &e.alert.trigger, e.alert.resolve_below);
            if was == is {
                continue;
            }
            e.state = if is { AlertState::Firing } else { AlertState::Ok };
            e.since = now;
            let labels = crate::labels::AlertLabels { alert: e.alert.name.clone() };
            self.counters.firing.get_or_create(&labels).set(i64::from(is));
            let event = event(e, e.state, now, lock(&set.rules[r].recent).list());
            event.log();
            out.push((e.alert.webhook.clone(), event));
        }
        out
    }

    /// Every rule's state now, in config order.
    pub fn status(&self) -> Vec<AlertStatus> {
        let eval = lock(&self.eval);
        let set = self.set.load();
        eval.rules
            .iter()
            .zip(set.rules.iter())
            .map(|(e, c)| {
                let causes = causes(e);
                AlertStatus {
                    alert: e.alert.clone(),
                    state: e.state,
                    value: e.value,
                    since: e.since,
                    in_scope: e.window.scope,
                    matching: e.window.hits,
                    remediation: remediation(&causes),
                    causes,
                    request_ids: lock(&c.recent).list(),
                }
            })
            .collect()
    }

    /// Evaluates every [`TICK`] on a thread of its own (with its own runtime for the webhooks) until the last
    /// other reference to `this` is gone.
    pub fn start(this: &Arc<Self>) -> std::io::Result<()> {
        let weak: Weak<Self> = Arc::downgrade(this);
        let counters = this.counters.clone();
        std::thread::Builder::new().name("waygate-alerts".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(target: "waygate::alert", error = %e, "alert evaluator failed to start: no alerts");
                    return;
                }
            };
            rt.block_on(async move {
                let mut hooks = webhook::Webhooks::new(counters);
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(alerts) = weak.upgrade() else { break };
                    for (hook, event) in alerts.evaluate(SystemTime::now()) {
                        if let Some(hook) = hook {
                            hooks.send(&hook, &event);
                        }
                    }
                }
            });
        })?;
        Ok(())
    }
}

/// The window's matches by cause, most first.
fn causes(e: &Eval) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = e
        .window
        .causes
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (Cause::ALL.get(i).map_or("", |c| c.name()), *n))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    out
}

fn remediation(causes: &[(&'static str, u64)]) -> Option<&'static str> {
    causes.iter().find_map(|(name, _)| name.parse::<Cause>().ok()).map(Cause::remediation)
}

fn event(e: &Eval, state: AlertState, now: SystemTime, request_ids: Vec<String>) -> AlertEvent {
    let causes = causes(e);
    AlertEvent {
        alert: e.alert.name.clone(),
        state,
        value: e.value,
        threshold: e.alert.trigger.threshold(),
        window: e.alert.window,
        at: now,
        remediation: remediation(&causes),
        causes,
        request_ids,
        runbook: e.alert.runbook.clone(),
        note: None,
    }
}

/// `count` or `ratio`: how the API names a trigger.
pub fn trigger_kind(t: &AlertTrigger) -> &'static str {
    match t {
        AlertTrigger::Count(_) => "count",
        AlertTrigger::Ratio { .. } => "ratio",
    }
}

#[cfg(test)]
mod tests;
