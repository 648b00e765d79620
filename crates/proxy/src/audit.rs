//! The audit log: every control-plane event (register, deregister, drain end, reload, health transition)
//! with its time, its actor (an admin token's name, "config", "signal", "health-check") and details, kept in
//! memory for `GET /api/v1/audit` and written to the system log as it happens, so that a burst of 5xx can be
//! lined up with the deregistration or reload that caused it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Events kept for the admin API; older ones remain in the system log only.
const KEEP: usize = 10_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    Deregister,
    /// A draining target left: nothing in flight any more, or its deregistration_delay elapsed.
    Drained,
    Reload,
    ReloadRejected,
    Health,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Deregister => "deregister",
            Action::Drained => "drained",
            Action::Reload => "reload",
            Action::ReloadRejected => "reload_rejected",
            Action::Health => "health",
        }
    }
}

/// One control-plane event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Increases by one per event, from 1: `GET /api/v1/audit?since=N` returns the events after N.
    pub seq: u64,
    pub time: SystemTime,
    pub actor: String,
    pub action: Action,
    pub target_group: Option<String>,
    pub target: Option<String>,
    pub details: String,
    /// `drained` events: how many requests the drain's end aborted (0 when nothing was in flight any more).
    pub aborted: Option<u64>,
}

impl Event {
    /// Numbered when appended.
    fn new(actor: &str, action: Action, group: Option<&str>, target: Option<&str>, details: String) -> Self {
        Self {
            seq: 0,
            time: SystemTime::now(),
            actor: actor.to_owned(),
            action,
            target_group: group.map(str::to_owned),
            target: target.map(str::to_owned),
            details,
            aborted: None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    events: VecDeque<Event>,
}

/// The gateway's audit log.
#[derive(Debug, Default)]
pub struct AuditLog {
    inner: Mutex<Inner>,
}

impl AuditLog {
    /// Records an event and writes it to the system log; returns its sequence number.
    pub fn record(
        &self,
        actor: &str,
        action: Action,
        target_group: Option<&str>,
        target: Option<&str>,
        details: String,
    ) -> u64 {
        self.append(Event::new(actor, action, target_group, target, details))
    }

    /// A draining target left, aborting `aborted` requests still in flight.
    pub fn record_drained(&self, actor: &str, target_group: &str, target: &str, aborted: u64, details: String) -> u64 {
        let event = Event::new(actor, Action::Drained, Some(target_group), Some(target), details);
        self.append(Event { aborted: Some(aborted), ..event })
    }

    fn append(&self, mut event: Event) -> u64 {
        tracing::info!(target: "waygate::audit", actor = %event.actor, action = %event.action.as_str(),
            target_group = %event.target_group.as_deref().unwrap_or("-"),
            target_addr = %event.target.as_deref().unwrap_or("-"), "{}", event.details);
        let mut inner = crate::lock(&self.inner);
        inner.next_seq += 1;
        event.seq = inner.next_seq;
        if inner.events.len() >= KEEP {
            inner.events.pop_front();
        }
        inner.events.push_back(event);
        inner.next_seq
    }

    /// The kept events with a sequence number above `since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<Event> {
        let inner = crate::lock(&self.inner);
        inner.events.iter().filter(|e| e.seq > since).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_numbered_and_filtered() {
        let log = AuditLog::default();
        log.record("ops", Action::Register, Some("web"), Some("127.0.0.1:1"), "registered".into());
        log.record("signal", Action::Reload, None, None, "reloaded".into());
        let all = log.since(0);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all[0].actor, "ops");
        assert_eq!(log.since(1).len(), 1);
        assert!(log.since(2).is_empty());
    }

    #[test]
    fn only_the_newest_are_kept() {
        let log = AuditLog::default();
        for _ in 0..KEEP + 5 {
            log.record("config", Action::Health, None, None, String::new());
        }
        let kept = log.since(0);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].seq, 6);
    }
}
