//! Per-chunk accumulation. Each rayon task folds the lines of its chunks into an [`Acc`] of plain counters
//! and small maps keyed by interned ids (targets) or a short list (causes), so the per-line work is a few
//! integer updates and one hash lookup, with no allocation unless a target or cause is seen for the first
//! time in that task. Accumulators are merged pairwise at the end (ids remapped by name).

use std::cmp::Reverse;

use memchr::memchr;

use crate::attribution::{CauseRef, Inferred, Source, attribute, source_of};
use crate::connlog::Conn;
use crate::fx::FxHashMap;
use crate::links::{self, ConnDetail, EXAMPLES, Joined, Place, RequestExample};
use crate::record::{Entry, Malformed, Record, parse_entry};
use crate::time::{MINUTE, Micros};

/// The target id of lines without a target (`-`).
pub(crate) const NO_TARGET: u32 = u32::MAX;
/// How much of a malformed line an example keeps.
const EXAMPLE_TEXT: usize = 200;

/// Which records the analysis keeps (`--since`, `--until`, `--target-group`, `--target`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep records at or after this time.
    pub since: Option<Micros>,
    /// Keep records before this time.
    pub until: Option<Micros>,
    /// A target group's ARN, or its name (matches `.../targetgroup/NAME/...` and a bare `NAME`).
    pub target_group: Option<String>,
    /// A target `ip:port`, or an `ip` (any port).
    pub target: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.target_group.is_none() && self.target.is_none()
    }

    /// Whether `r` passes.
    pub fn accept(&self, r: &Record<'_>) -> bool {
        self.accept_parts(r.time, &r.target, &r.target_group)
    }

    /// Whether a connection-log line passes: by time and target (NLB's destination, Classic's backend); a
    /// connection names no target group, so `--target-group` leaves every one out.
    pub fn accept_conn(&self, c: &Conn<'_>) -> bool {
        self.target_group.is_none() && self.accept_parts(c.time, &c.target, b"")
    }

    fn accept_parts(&self, time: Micros, target: &[u8], target_group: &[u8]) -> bool {
        if self.since.is_some_and(|s| time < s) || self.until.is_some_and(|u| time >= u) {
            return false;
        }
        if let Some(tg) = &self.target_group {
            let have: &[u8] = target_group;
            let want = tg.as_bytes();
            // `arn:...:targetgroup/NAME/ID`, without building a needle per line.
            let named = || {
                memchr::memmem::find_iter(have, b"targetgroup/").any(|i| {
                    let rest = &have[i + b"targetgroup/".len()..];
                    rest.starts_with(want) && rest.get(want.len()) == Some(&b'/')
                })
            };
            if have != want && !named() {
                return false;
            }
        }
        if let Some(t) = &self.target {
            let have: &[u8] = target;
            let want = t.as_bytes();
            let ip_only = have.len() > want.len() && have.starts_with(want) && have[want.len()] == b':';
            if have != want && !ip_only {
                return false;
            }
        }
        true
    }
}

/// A malformed line before its line number is known (chunks are numbered per file, lines per chunk).
#[derive(Debug, Clone)]
pub(crate) struct RawExample {
    pub file: u32,
    pub chunk: u32,
    pub local_line: u64,
    pub reason: Malformed,
    pub text: String,
}

/// Everything known about one target.
#[derive(Debug, Clone)]
pub(crate) struct TargetStat {
    pub name: Box<[u8]>,
    pub requests: u64,
    /// 5xx the load balancer generated on requests sent to this target.
    pub elb_5xx: u64,
    /// 5xx the target returned (target_status_code).
    pub target_5xx: u64,
    /// Every line with a 5xx elb_status_code on this target.
    pub any_5xx: u64,
    pub first: Micros,
    pub last: Micros,
    /// Longest `time - request_creation_time`.
    pub max_duration: Option<Micros>,
    /// When each load-balancer 502 (target status `-`) on this target happened.
    pub lb_502: Vec<Micros>,
}

impl TargetStat {
    fn new(name: Box<[u8]>) -> Self {
        Self {
            name,
            requests: 0,
            elb_5xx: 0,
            target_5xx: 0,
            any_5xx: 0,
            first: Micros::MAX,
            last: Micros::MIN,
            max_duration: None,
            lb_502: Vec::new(),
        }
    }

    fn merge(&mut self, o: TargetStat) {
        self.requests += o.requests;
        self.elb_5xx += o.elb_5xx;
        self.target_5xx += o.target_5xx;
        self.any_5xx += o.any_5xx;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.max_duration = self.max_duration.max(o.max_duration);
        self.lb_502.extend(o.lb_502);
    }
}

/// One cause row: its name, how it was named, and where and when it happened.
#[derive(Debug, Clone)]
pub(crate) struct CauseAcc {
    pub name: Box<str>,
    pub inferred: Option<Inferred>,
    pub source: Source,
    pub count: u64,
    pub first: Micros,
    pub last: Micros,
    /// elb_status_code -> count.
    pub statuses: FxHashMap<u16, u64>,
    /// target id -> count.
    pub targets: FxHashMap<u32, u64>,
    /// minute number (epoch minutes) -> count.
    pub minutes: FxHashMap<i64, u64>,
    /// The earliest requests of this cause ([`links::EXAMPLES`]).
    pub examples: Vec<RequestExample>,
}

impl CauseAcc {
    fn matches(&self, cause: CauseRef<'_>, source: Source) -> bool {
        self.source == source
            && match cause {
                CauseRef::Reason(name) => self.inferred.is_none() && self.name.as_bytes() == name,
                CauseRef::Inferred(kind) => self.inferred == Some(kind),
            }
    }
}

/// The totals of one connection-log kind.
#[derive(Debug, Clone)]
pub(crate) struct ConnAcc {
    pub connections: u64,
    pub failures: u64,
    pub first: Micros,
    pub last: Micros,
    /// Failure reason -> count.
    pub reasons: FxHashMap<Box<[u8]>, u64>,
    /// Incoming TLS alert (NLB) -> count, failed or not.
    pub alerts: FxHashMap<Box<[u8]>, u64>,
    /// Listener -> (connections, failures).
    pub listeners: FxHashMap<Box<[u8]>, (u64, u64)>,
    /// Failure reason -> its earliest connections (ALB connection logs).
    pub examples: FxHashMap<Box<[u8]>, Vec<ConnDetail>>,
}

impl ConnAcc {
    fn new() -> Self {
        Self {
            connections: 0,
            failures: 0,
            first: Micros::MAX,
            last: Micros::MIN,
            reasons: FxHashMap::default(),
            alerts: FxHashMap::default(),
            listeners: FxHashMap::default(),
            examples: FxHashMap::default(),
        }
    }

    /// Keeps `line` (connection `c`, a failure) as an example of its reason when it is among the earliest.
    fn example(&mut self, c: &Conn<'_>, line: &[u8], place: Place) {
        let Some(reason) = &c.failure else { return };
        let key = |d: &ConnDetail| (d.time, d.place);
        let have = self.examples.get(&reason[..]).map_or(&[][..], Vec::as_slice);
        if !links::wants(have, EXAMPLES, key, c.time, place) {
            return;
        }
        if let Some(d) = links::conn_detail(line, c, place) {
            links::keep(self.examples.entry(reason[..].into()).or_default(), EXAMPLES, key, d);
        }
    }

    fn add(&mut self, c: &Conn<'_>) {
        self.connections += 1;
        self.first = self.first.min(c.time);
        self.last = self.last.max(c.time);
        let failed = u64::from(c.failure.is_some());
        self.failures += failed;
        if let Some(r) = &c.failure {
            bump(&mut self.reasons, r, 1);
        }
        if let Some(a) = &c.alert {
            bump(&mut self.alerts, a, 1);
        }
        match self.listeners.get_mut(c.listener) {
            Some(l) => *l = (l.0 + 1, l.1 + failed),
            None => {
                self.listeners.insert(c.listener.into(), (1, failed));
            }
        }
    }

    fn merge(&mut self, o: ConnAcc) {
        self.connections += o.connections;
        self.failures += o.failures;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        for (k, n) in o.reasons {
            bump(&mut self.reasons, &k, n);
        }
        for (k, n) in o.alerts {
            bump(&mut self.alerts, &k, n);
        }
        for (k, (n, f)) in o.listeners {
            let l = self.listeners.entry(k).or_insert((0, 0));
            *l = (l.0 + n, l.1 + f);
        }
        for (k, v) in o.examples {
            let mine = self.examples.entry(k).or_default();
            for d in v {
                links::keep(mine, EXAMPLES, |d: &ConnDetail| (d.time, d.place), d);
            }
        }
    }
}

/// Adds `n` to `key`'s count, allocating the key only the first time it is seen.
fn bump(map: &mut FxHashMap<Box<[u8]>, u64>, key: &[u8], n: u64) {
    match map.get_mut(key) {
        Some(c) => *c += n,
        None => {
            map.insert(key.into(), n);
        }
    }
}

/// Classic ELB HTTP lines, counted apart: who generated their 5xx.
#[derive(Debug, Clone)]
pub(crate) struct ClassicAcc {
    pub requests: u64,
    /// 5xx the ELB generated (index: status - 500).
    pub elb_5xx: [u64; 100],
    /// 5xx the backend instance returned (backend_status_code; index: status - 500).
    pub backend_5xx: [u64; 100],
}

/// The running totals of one task (or, after merging, of the whole input).
#[derive(Debug, Clone)]
pub(crate) struct Acc {
    pub lines: u64,
    pub requests: u64,
    pub filtered_out: u64,
    pub malformed: u64,
    pub malformed_by_file: FxHashMap<u32, u64>,
    pub examples: Vec<RawExample>,
    /// (file, chunk, lines in that chunk), to turn chunk-local line numbers into file line numbers.
    pub chunk_lines: Vec<(u32, u32, u64)>,
    pub first: Micros,
    pub last: Micros,
    /// Load-balancer-generated 5xx by status (index: status - 500).
    pub elb_5xx: [u64; 100],
    /// Target 5xx by target_status_code (index: status - 500).
    pub target_5xx: [u64; 100],
    pub target_ids: FxHashMap<Box<[u8]>, u32>,
    pub targets: Vec<TargetStat>,
    pub causes: Vec<CauseAcc>,
    /// (minute, target id) -> 5xx responses.
    pub minute_target: FxHashMap<(i64, u32), u64>,
    /// Connection logs, by [`crate::connlog::ConnKind::ALL`] index.
    pub conns: [ConnAcc; 3],
    pub classic: ClassicAcc,
    /// The second pass's findings for the examples' `conn_trace_id`s; `None` when it did not run (no ALB
    /// connection-log line in the input).
    pub joined: Option<Joined>,
    max_examples: usize,
}

impl Acc {
    pub fn new(max_examples: usize) -> Self {
        Self {
            lines: 0,
            requests: 0,
            filtered_out: 0,
            malformed: 0,
            malformed_by_file: FxHashMap::default(),
            examples: Vec::new(),
            chunk_lines: Vec::new(),
            first: Micros::MAX,
            last: Micros::MIN,
            elb_5xx: [0; 100],
            target_5xx: [0; 100],
            target_ids: FxHashMap::default(),
            targets: Vec::new(),
            causes: Vec::new(),
            minute_target: FxHashMap::default(),
            conns: [ConnAcc::new(), ConnAcc::new(), ConnAcc::new()],
            classic: ClassicAcc { requests: 0, elb_5xx: [0; 100], backend_5xx: [0; 100] },
            joined: None,
            max_examples,
        }
    }

    fn target_id(&mut self, name: &[u8]) -> u32 {
        if let Some(&id) = self.target_ids.get(name) {
            return id;
        }
        let id = self.targets.len() as u32;
        self.targets.push(TargetStat::new(name.into()));
        self.target_ids.insert(name.into(), id);
        id
    }

    fn cause_index(&mut self, cause: CauseRef<'_>, source: Source) -> usize {
        if let Some(i) = self.causes.iter().position(|c| c.matches(cause, source)) {
            return i;
        }
        let (name, inferred) = match cause {
            CauseRef::Reason(b) => (String::from_utf8_lossy(b).into_owned(), None),
            CauseRef::Inferred(k) => (k.name(), Some(k)),
        };
        self.causes.push(CauseAcc {
            name: name.into_boxed_str(),
            inferred,
            source,
            count: 0,
            first: Micros::MAX,
            last: Micros::MIN,
            statuses: FxHashMap::default(),
            targets: FxHashMap::default(),
            minutes: FxHashMap::default(),
            examples: Vec::new(),
        });
        self.causes.len() - 1
    }

    /// Counts one record that passed the filter; returns the index of its cause row, if it has one.
    #[inline]
    pub fn add(&mut self, r: &Record<'_>) -> Option<usize> {
        self.requests += 1;
        self.first = self.first.min(r.time);
        self.last = self.last.max(r.time);
        let source = source_of(r);
        let is_5xx = (500..600).contains(&r.elb_status);
        if is_5xx && source == Source::LoadBalancer {
            self.elb_5xx[usize::from(r.elb_status - 500)] += 1;
        }
        if let Some(ts @ 500..600) = r.target_status {
            self.target_5xx[usize::from(ts - 500)] += 1;
        }
        if r.classic {
            let c = &mut self.classic;
            c.requests += 1;
            if is_5xx && source == Source::LoadBalancer {
                c.elb_5xx[usize::from(r.elb_status - 500)] += 1;
            }
            if let Some(ts @ 500..600) = r.target_status {
                c.backend_5xx[usize::from(ts - 500)] += 1;
            }
        }
        let tid = if r.target.is_empty() {
            NO_TARGET
        } else {
            let tid = self.target_id(&r.target);
            let t = &mut self.targets[tid as usize];
            t.requests += 1;
            t.first = t.first.min(r.time);
            t.last = t.last.max(r.time);
            if let Some(d) = r.duration() {
                t.max_duration = t.max_duration.max(Some(d));
            }
            if is_5xx {
                t.any_5xx += 1;
                if source == Source::LoadBalancer {
                    t.elb_5xx += 1;
                }
            }
            if matches!(r.target_status, Some(500..600)) {
                t.target_5xx += 1;
            }
            if r.elb_status == 502 && r.target_status.is_none() {
                t.lb_502.push(r.time);
            }
            tid
        };
        let minute = r.time.div_euclid(MINUTE);
        if is_5xx {
            *self.minute_target.entry((minute, tid)).or_insert(0) += 1;
        }
        if let Some(o) = attribute(r) {
            let i = self.cause_index(o.cause, o.source);
            let c = &mut self.causes[i];
            c.count += 1;
            c.first = c.first.min(r.time);
            c.last = c.last.max(r.time);
            *c.statuses.entry(r.elb_status).or_insert(0) += 1;
            *c.targets.entry(tid).or_insert(0) += 1;
            *c.minutes.entry(minute).or_insert(0) += 1;
            return Some(i);
        }
        None
    }

    fn add_malformed(&mut self, file: u32, chunk: u32, local_line: u64, reason: Malformed, line: &[u8]) {
        self.malformed += 1;
        *self.malformed_by_file.entry(file).or_insert(0) += 1;
        let full = self.examples.len() >= self.max_examples;
        if self.max_examples == 0
            || full && self.examples.last().is_some_and(|e| (e.file, e.chunk, e.local_line) < (file, chunk, local_line))
        {
            return;
        }
        let text = String::from_utf8_lossy(&line[..line.len().min(EXAMPLE_TEXT)]).into_owned();
        self.examples.push(RawExample { file, chunk, local_line, reason, text });
        self.examples.sort_by_key(|e| (e.file, e.chunk, e.local_line));
        self.examples.truncate(self.max_examples);
    }

    /// Parses and counts every line of one chunk (whole lines; the last may lack its newline).
    pub fn process_chunk(&mut self, filter: &Filter, file: u32, chunk: u32, data: &[u8]) {
        let filtering = !filter.is_empty();
        let mut pos = 0;
        let mut local = 0u64;
        // LF and CRLF end lines; a chunk with no LF but a CR is of CR-only line ends (the reader cuts such a
        // file at a CR). The first LF is found within the first line, so the check costs nothing.
        let sep = if memchr(b'\n', data).is_none() && memchr(b'\r', data).is_some() { b'\r' } else { b'\n' };
        while pos < data.len() {
            let end = memchr(sep, &data[pos..]).map_or(data.len(), |k| pos + k);
            let mut line = &data[pos..end];
            pos = end + 1;
            local += 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.lines += 1;
            match parse_entry(line) {
                Ok(Entry::Request(r)) if !filtering || filter.accept(&r) => {
                    if let Some(i) = self.add(&r) {
                        let c = &mut self.causes[i];
                        let key = |e: &RequestExample| (e.time, e.place);
                        if links::wants(&c.examples, EXAMPLES, key, r.time, (file, chunk, local)) {
                            let e = links::request_example(line, &r, (file, chunk, local));
                            links::keep(&mut c.examples, EXAMPLES, key, e);
                        }
                    }
                }
                Ok(Entry::Connection(c)) if !filtering || filter.accept_conn(&c) => {
                    let acc = &mut self.conns[c.kind as usize];
                    acc.add(&c);
                    acc.example(&c, line, (file, chunk, local));
                }
                Ok(_) => self.filtered_out += 1,
                Err(m) => self.add_malformed(file, chunk, local, m, line),
            }
        }
        self.chunk_lines.push((file, chunk, local));
    }

    /// Folds `o` into `self`; ids in `o` are remapped by name.
    pub fn merge(mut self, mut o: Acc) -> Acc {
        if o.requests > self.requests {
            std::mem::swap(&mut self, &mut o);
        }
        self.lines += o.lines;
        self.requests += o.requests;
        self.filtered_out += o.filtered_out;
        self.malformed += o.malformed;
        for (f, n) in o.malformed_by_file {
            *self.malformed_by_file.entry(f).or_insert(0) += n;
        }
        self.examples.extend(o.examples);
        self.examples.sort_by_key(|e| (e.file, e.chunk, e.local_line));
        self.examples.truncate(self.max_examples.max(o.max_examples));
        self.chunk_lines.extend(o.chunk_lines);
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        for i in 0..100 {
            self.elb_5xx[i] += o.elb_5xx[i];
            self.target_5xx[i] += o.target_5xx[i];
            self.classic.elb_5xx[i] += o.classic.elb_5xx[i];
            self.classic.backend_5xx[i] += o.classic.backend_5xx[i];
        }
        self.classic.requests += o.classic.requests;
        for (mine, theirs) in self.conns.iter_mut().zip(o.conns) {
            mine.merge(theirs);
        }
        let remap: Vec<u32> = o
            .targets
            .into_iter()
            .map(|t| {
                let id = self.target_id(&t.name);
                self.targets[id as usize].merge(t);
                id
            })
            .collect();
        let map = |id: u32| if id == NO_TARGET { NO_TARGET } else { remap[id as usize] };
        for ((m, t), n) in o.minute_target {
            *self.minute_target.entry((m, map(t))).or_insert(0) += n;
        }
        for c in o.causes {
            let key = match c.inferred {
                Some(k) => CauseRef::Inferred(k),
                None => CauseRef::Reason(c.name.as_bytes()),
            };
            let i = self.cause_index(key, c.source);
            let mine = &mut self.causes[i];
            mine.count += c.count;
            mine.first = mine.first.min(c.first);
            mine.last = mine.last.max(c.last);
            for (s, n) in c.statuses {
                *mine.statuses.entry(s).or_insert(0) += n;
            }
            for (t, n) in c.targets {
                *mine.targets.entry(map(t)).or_insert(0) += n;
            }
            for (m, n) in c.minutes {
                *mine.minutes.entry(m).or_insert(0) += n;
            }
            for e in c.examples {
                links::keep(&mut mine.examples, EXAMPLES, |e: &RequestExample| (e.time, e.place), e);
            }
        }
        self
    }

    /// Causes by count, largest first (ties by name, then source), for stable output.
    pub fn sorted_causes(&self) -> Vec<&CauseAcc> {
        let mut v: Vec<&CauseAcc> = self.causes.iter().collect();
        v.sort_by(|a, b| (Reverse(a.count), &a.name, a.source).cmp(&(Reverse(b.count), &b.name, b.source)));
        v
    }

    /// The name of a target id (`-` for none).
    pub fn target_name(&self, id: u32) -> String {
        if id == NO_TARGET {
            "-".to_owned()
        } else {
            String::from_utf8_lossy(&self.targets[id as usize].name).into_owned()
        }
    }
}
