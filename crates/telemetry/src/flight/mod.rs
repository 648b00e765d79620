//! The flight recorder: the last N failed exchanges (ARCHITECTURE.md: one request, one record), kept in full
//! without bodies so that `GET /api/v1/exchanges/{request_id}` and `waygate explain` can tell a failure's
//! story after it happened, with no session started beforehand.
//!
//! It is an [`Observer`]: the data plane hands it every finished record on the request's own thread. A record
//! that is not a failure ([`Exchange::is_failure`]) costs those few comparisons and nothing else. A failure is
//! copied (outside the lock) into an `Arc`, then one short critical section puts it in the ring's next slot
//! and the request id in the index, both O(1); the record it pushed out is dropped after the lock is released.
//!
//! Memory is bounded: N slots, each one record (at most 3.5 KiB with six failed attempts, each with its
//! detail and connection snapshot: [`FlightRecorder::RECORD_BOUND`]; about 1 KiB for the usual one attempt)
//! plus its URL and User-Agent beyond the 128 bytes kept inside the record, each cut to 8 KiB in the copy kept
//! ([`MAX_TEXT`]). 1,000 records take about 1 MiB, 20 MiB at most.

mod syslog;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use syslog::system_log_line;
pub use view::{AttemptView, CauseView, ConnView, ExchangeView};

use crate::{Exchange, InlineStr, Observer};

/// The URL and User-Agent of a kept record are cut to this many bytes (ALB cuts the user agent to 8 KB too).
pub const MAX_TEXT: usize = 8 * 1024;

/// The last N failed exchanges, by request id.
#[derive(Debug)]
pub struct FlightRecorder {
    capacity: usize,
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    /// `slots[seq % capacity]` holds the record numbered `seq`.
    slots: Vec<Option<Arc<Exchange>>>,
    /// The number the next record gets.
    next: u64,
    /// Request id → the number of the latest record with it.
    index: HashMap<Box<str>, u64>,
}

impl FlightRecorder {
    /// Bytes one kept record takes besides its URL and User-Agent text beyond what fits inline: the record,
    /// the `Arc`'s counts, the index entry, and up to the configured attempts' details with their
    /// connection snapshots and messages (`1 + MAX_RETRIES` of them). Pinned by a test.
    pub const RECORD_BOUND: usize = 3584;

    /// A recorder of the last `capacity` failures; 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        let ring = Ring { slots: Vec::with_capacity(capacity), next: 0, index: HashMap::with_capacity(capacity) };
        Self { capacity, ring: Mutex::new(ring) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many records it holds now.
    pub fn len(&self) -> usize {
        self.lock().index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `ex` if it is a failure, pushing out the oldest when full.
    pub fn record(&self, ex: &Exchange) {
        if !ex.is_failure() || self.capacity == 0 {
            return;
        }
        let mut kept = trimmed(ex);
        kept.debug = None;
        let kept = Arc::new(kept);
        // Allocated before the lock, which is held for the ring's bookkeeping only.
        let key: Box<str> = kept.trace_id.as_str().into();
        let evicted = {
            let mut ring = self.lock();
            let seq = ring.next;
            ring.next += 1;
            let slot = (seq % self.capacity as u64) as usize;
            let evicted = if slot < ring.slots.len() {
                ring.slots[slot].replace(kept.clone())
            } else {
                ring.slots.push(Some(kept.clone()));
                None
            };
            if let Some(old) = &evicted {
                // Another failure may have reused the id since (a client-sent id): only the entry pointing
                // at the evicted record goes.
                let old_seq = seq - self.capacity as u64;
                if ring.index.get(old.trace_id.as_str()) == Some(&old_seq) {
                    ring.index.remove(old.trace_id.as_str());
                }
            }
            ring.index.insert(key, seq);
            evicted
        };
        drop(evicted);
    }

    /// The latest kept record with this request id.
    pub fn get(&self, request_id: &str) -> Option<Arc<Exchange>> {
        let ring = self.lock();
        let seq = *ring.index.get(request_id)?;
        ring.slots.get((seq % self.capacity as u64) as usize)?.clone()
    }

    /// The request ids kept, newest first (for tests and listings).
    pub fn request_ids(&self) -> Vec<String> {
        let ring = self.lock();
        let mut ids: Vec<(u64, &str)> = ring.index.iter().map(|(id, seq)| (*seq, &**id)).collect();
        ids.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        ids.into_iter().map(|(_, id)| id.to_owned()).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // Nothing in the critical sections can leave the ring half-updated in a way that matters to a reader.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Observer for FlightRecorder {
    /// A success costs [`Exchange::is_failure`]; a failure, one copy and an O(1) insert under a short lock.
    fn observe(&self, exchange: &Exchange) {
        self.record(exchange);
    }
}

/// The copy kept: the record with its URL and User-Agent cut to [`MAX_TEXT`] bytes (a debug session's copy
/// keeps its capture; the flight recorder's drops it).
pub(crate) fn trimmed(ex: &Exchange) -> Exchange {
    let mut kept = ex.clone();
    if kept.url.as_str().len() > MAX_TEXT {
        kept.url = InlineStr::from(cut(kept.url.as_str()));
    }
    if let Some(ua) = &kept.user_agent
        && ua.as_str().len() > MAX_TEXT
    {
        kept.user_agent = Some(InlineStr::from(cut(ua.as_str())));
    }
    kept
}

/// `s` up to [`MAX_TEXT`] bytes, on a character boundary.
fn cut(s: &str) -> &str {
    let mut end = MAX_TEXT.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
