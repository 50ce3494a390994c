//! The matcher. Per rule and join key, a set of runs (partial matches) of the rule's linear
//! automaton. An event touches only the rules that name its class, and of those only the runs
//! of its own key. WITHIN deadlines sit in one heap ordered by time, so expiry never scans the
//! open runs. Runs of an exited process or thread are finalised. Memory is capped per key and
//! per rule, and what a cap evicts is counted.

use crate::compile::{CAction, CCond, CExpr, Compiled, Rule, TemplatePart};
use crate::fields::{self, EventClass, FieldRef, ProcTable, Val, compare};
use crate::runs::{Indexed, RunSet, Want};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use vigil_event::{Event, EventKind};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_runs_per_key: usize,
    /// Partial matches, and events held in counting windows, over all keys of a rule.
    pub max_runs_per_rule: usize,
    /// Join keys with state (open runs or a counting window) per rule.
    pub max_keys_per_rule: usize,
}

/// A match lists at most this many event seqs per run; the rest are counted in
/// `Match::seqs_omitted` (a repetition can match thousands of events).
pub const MAX_SEQS: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_runs_per_key: 1024,
            max_runs_per_rule: 1 << 20,
            max_keys_per_rule: 1 << 18,
        }
    }
}

/// A rule matched.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// 1, 2, 3... in the order matches were found.
    pub number: u64,
    pub rule: usize,
    /// RETURN values, in order.
    pub values: Vec<Val>,
    /// The seq of every matched (positive) event, in pattern order (every counted occurrence
    /// of a repetition), up to MAX_SEQS.
    pub seqs: Vec<u64>,
    /// Matched events beyond MAX_SEQS, not listed in `seqs`.
    pub seqs_omitted: u64,
    /// The process and thread of the event that completed the match.
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
    /// The seq of the event being processed when the match was found.
    pub at_seq: u64,
    pub output: Option<String>,
    /// Evaluated arguments of each exec action.
    pub exec: Vec<Vec<Val>>,
}

#[derive(Clone, Debug, Default)]
pub struct RuleStats {
    pub matches: u64,
    pub open: usize,
    pub peak_open: usize,
    /// Runs and window events dropped by a cap.
    pub evicted: u64,
    /// Join keys dropped (with their runs and window) by the per-rule key cap.
    pub evicted_keys: u64,
    pub expired: u64,
    pub finished_at_exit: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub rules: Vec<RuleStats>,
    /// Runs still waiting for a trailing negation's deadline when the stream ended.
    pub undecided_at_end: u64,
}

type Key = SmallVec<[Val; 2]>;

/// A WITHIN deadline: (time, rule, slot, run handle, the run id's low 32 bits). 24 bytes: the
/// heap holds one per run started, and its size is felt. A handle reused within the time frame
/// by a run whose id agrees in 32 bits would need 4 billion runs in between.
type Deadline = (u64, u32, u32, u32, u32);

struct Run {
    id: u64,
    /// Index of the next positive step to match (steps.len(): waiting for a trailing deadline).
    pos: usize,
    start: u64,
    counts: SmallVec<[u32; 4]>,
    distinct: Option<Box<FxHashSet<Val>>>,
    vals: SmallVec<[Val; 4]>,
    seqs: SmallVec<[u64; 4]>,
    seqs_omitted: u64,
    last_pid: u32,
    last_tid: u32,
    /// Where the run is indexed (its step's probe and the value it waits for).
    want: Option<Want>,
    handle: u32,
}

impl Indexed for Run {
    fn id(&self) -> u64 {
        self.id
    }

    fn want(&self) -> Option<&Want> {
        self.want.as_ref()
    }

    fn handle(&self) -> u32 {
        self.handle
    }

    fn set_handle(&mut self, h: u32) {
        self.handle = h;
    }
}

impl Run {
    /// A run started by `ev`, before it is recorded as the first step's event.
    fn new(rule: &Rule, ev: &Event) -> Run {
        Run {
            id: 0,
            pos: 0,
            start: ev.time_ns,
            counts: SmallVec::from_elem(0, rule.steps.len()),
            distinct: None,
            vals: SmallVec::from_elem(Val::Null, rule.slots),
            seqs: SmallVec::new(),
            seqs_omitted: 0,
            last_pid: ev.pid,
            last_tid: ev.tid,
            want: None,
            handle: 0,
        }
    }

    /// The index entry for the step the run now waits at.
    fn set_want(&mut self, rule: &Rule) {
        self.want = None;
        if rule.indexed
            && let Some(step) = rule.steps.get(self.pos)
            && let Some((_, slot)) = step.probe
        {
            self.want = Some((self.pos, self.vals.get(slot).cloned().unwrap_or(Val::Null)));
        }
    }
}

/// Which runs of a key an event can affect.
enum Scan {
    /// None: no step or negation the runs wait on takes this event.
    Nothing,
    /// Only the runs waiting for these values.
    Waiting(SmallVec<[Want; 2]>),
    All,
}

/// A counting threshold's events within the time frame (time, seq, counted value). For a
/// `distinct` count, `latest` maps each value to the seq of its latest event; older events
/// of a value are stale and compacted away, so the window holds about one event per value.
struct Window {
    events: VecDeque<(u64, u64, Val)>,
    latest: FxHashMap<Val, u64>,
}

#[derive(Default)]
struct Slot {
    key: Key,
    runs: RunSet<Run>,
    window: Option<Box<Window>>,
    pid: Option<u32>,
    tid: Option<u32>,
    /// Tells a reused slot from the one a `key_fifo` entry was made for.
    generation: u64,
}

#[derive(Default)]
struct RuleState {
    keys: FxHashMap<Key, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_pid: FxHashMap<u32, SmallVec<[u32; 2]>>,
    by_tid: FxHashMap<u32, SmallVec<[u32; 2]>>,
    /// Runs in creation order (slot, index, id), for the per-rule cap (dead entries are
    /// skipped lazily).
    fifo: VecDeque<(u32, u32, u64)>,
    /// Slots in creation order (slot, generation), for the per-rule key cap.
    key_fifo: VecDeque<(u32, u64)>,
    /// Events held in this rule's counting windows.
    window_events: usize,
}

pub struct Engine {
    c: Arc<Compiled>,
    states: Vec<RuleState>,
    by_class: FxHashMap<EventClass, Vec<u32>>,
    any_entry: Vec<u32>,
    any_exit: Vec<u32>,
    exit_rules: Vec<u32>,
    heap: BinaryHeap<Reverse<Deadline>>,
    next_run: u64,
    next_generation: u64,
    matches: u64,
    procs: ProcTable,
    need_procs: bool,
    seen: Vec<u64>,
    epoch: u64,
    limits: Limits,
    pub stats: Stats,
    candidates: Vec<u32>,
    run_candidates: Vec<u32>,
}

/// Where field values come from while checking an event.
struct Ctx<'a> {
    /// The event being matched, and the binding it would take.
    cur: Option<(usize, &'a Event)>,
    vals: &'a [Val],
    counts: &'a [u32],
    step_of: &'a [usize],
    procs: &'a ProcTable,
}

impl Ctx<'_> {
    fn value(&self, e: &CExpr) -> Val {
        match e {
            CExpr::Const(v) => v.clone(),
            CExpr::Field { b, f, slot } => match self.cur {
                Some((cb, ev)) if cb == *b => fields::get(ev, *f, self.procs),
                _ => self.vals.get(*slot).cloned().unwrap_or(Val::Null),
            },
            CExpr::Count(b) => self
                .step_of
                .get(*b)
                .and_then(|s| self.counts.get(*s))
                .map_or(Val::Null, |c| Val::Int(*c as i64)),
        }
    }

    fn str_test(&self, e: &CExpr, test: impl Fn(&str) -> bool) -> bool {
        // Valid UTF-8 (nearly every path) is tested in place; the lossy form is for the rest.
        let one = |b: &[u8]| match std::str::from_utf8(b) {
            Ok(s) => test(s),
            Err(_) => test(&String::from_utf8_lossy(b)),
        };
        match self.value(e) {
            Val::Str(s) => one(s.as_bytes()),
            Val::List(l) => l.iter().any(|s| one(s.as_bytes())),
            _ => false,
        }
    }

    fn check(&self, c: &CCond) -> bool {
        match c {
            CCond::Cmp(a, op, b) => compare(&self.value(a), *op, &self.value(b)),
            CCond::In(e, set) => match self.value(e) {
                Val::List(l) => l.iter().any(|s| set.contains(&Val::Str(s.clone()))),
                v => set.contains(&v),
            },
            CCond::Glob(e, g) => self.str_test(e, |s| g.is_match(s)),
            CCond::Regex(e, r) => self.str_test(e, |s| r.is_match(s)),
            CCond::Starts(e, p) => {
                self.str_test(e, |s| p.iter().any(|x| s.starts_with(x.as_str())))
            }
            CCond::Ends(e, p) => self.str_test(e, |s| p.iter().any(|x| s.ends_with(x.as_str()))),
            CCond::Contains(e, p) => match self.value(e) {
                Val::List(l) => l
                    .iter()
                    .any(|s| p.iter().any(|x| s.as_bytes() == x.as_bytes())),
                Val::Str(s) => {
                    let s = String::from_utf8_lossy(s.as_bytes());
                    p.iter().any(|x| s.contains(x.as_str()))
                }
                _ => false,
            },
            CCond::Has(e, mask) => self.value(e).as_int().is_some_and(|v| v & mask == *mask),
            CCond::And(a, b) => self.check(a) && self.check(b),
            CCond::Or(a, b) => self.check(a) || self.check(b),
            CCond::Not(a) => !self.check(a),
        }
    }
}

impl Engine {
    pub fn new(c: Arc<Compiled>, limits: Limits) -> Engine {
        let mut by_class: FxHashMap<EventClass, Vec<u32>> = FxHashMap::default();
        let (mut any_entry, mut any_exit, mut exit_rules) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in c.rules.iter().enumerate() {
            let i = i as u32;
            let mut classes: Vec<EventClass> = r
                .steps
                .iter()
                .flat_map(|s| s.classes.iter().copied())
                .collect();
            classes.extend(
                r.gaps
                    .iter()
                    .flatten()
                    .flat_map(|n| n.classes.iter().copied()),
            );
            // A pattern naming an event type also takes the types that count as it (a
            // read-modify-write access is a read and a write).
            let classes: Vec<EventClass> = classes
                .into_iter()
                .flat_map(|cl| {
                    let also: Vec<EventClass> = match cl {
                        EventClass::Event(t) => vigil_event::EVENT_TYPES
                            .iter()
                            .filter(|u| u.ty != t && u.ty.counts_as(t))
                            .map(|u| EventClass::Event(u.ty))
                            .collect(),
                        _ => Vec::new(),
                    };
                    std::iter::once(cl).chain(also)
                })
                .collect();
            for cl in classes {
                let list = match cl {
                    EventClass::AnyEntry => &mut any_entry,
                    EventClass::AnyExit => &mut any_exit,
                    c => by_class.entry(c).or_default(),
                };
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            if r.join
                .iter()
                .any(|f| matches!(f, FieldRef::Pid | FieldRef::Tid))
            {
                exit_rules.push(i);
            }
        }
        let need_procs = c.rules.iter().any(|r| r.uses_proc_table);
        let n = c.rules.len();
        Engine {
            states: (0..n).map(|_| RuleState::default()).collect(),
            by_class,
            any_entry,
            any_exit,
            exit_rules,
            heap: BinaryHeap::new(),
            next_run: 1,
            next_generation: 1,
            matches: 0,
            procs: ProcTable::default(),
            need_procs,
            seen: vec![0; n],
            epoch: 0,
            limits,
            stats: Stats {
                events: 0,
                rules: vec![RuleStats::default(); n],
                undecided_at_end: 0,
            },
            candidates: Vec::new(),
            run_candidates: Vec::new(),
            c,
        }
    }

    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.c
    }

    /// Feeds one event; matches found are appended to `out`.
    pub fn process(&mut self, ev: &Event, out: &mut Vec<Match>) {
        self.stats.events += 1;
        self.expire(ev, out);
        let exiting = matches!(ev.kind, EventKind::ProcessExit(_));
        if self.need_procs && !exiting {
            self.procs.update(ev);
        }
        let class = EventClass::of(ev);
        self.epoch += 1;
        let mut cands = std::mem::take(&mut self.candidates);
        cands.clear();
        let wild = match class {
            EventClass::Entry(_) => &self.any_entry[..],
            EventClass::Exit(_) => &self.any_exit[..],
            _ => &[],
        };
        for &r in self
            .by_class
            .get(&class)
            .map_or(&[][..], |v| &v[..])
            .iter()
            .chain(wild)
        {
            if self.seen[r as usize] != self.epoch {
                self.seen[r as usize] = self.epoch;
                cands.push(r);
            }
        }
        for &r in &cands {
            self.step_rule(r as usize, ev, class, out);
        }
        self.candidates = cands;
        match ev.kind {
            EventKind::ProcessExit(_) => self.finish_key(Some(ev.pid), None, ev, out),
            EventKind::ThreadExit(_) => self.finish_key(None, Some(ev.tid), ev, out),
            _ => {}
        }
        if self.need_procs && exiting {
            self.procs.update(ev);
        }
    }

    /// End of the stream: runs waiting for a deadline that did not pass are undecided.
    pub fn finish(&mut self) {
        for (ri, st) in self.states.iter().enumerate() {
            let n = self.c.rules[ri].steps.len();
            for slot in &st.slots {
                self.stats.undecided_at_end +=
                    slot.runs.iter().filter(|r| r.pos == n).count() as u64;
            }
        }
    }

    fn key(&self, rule: &Rule, ev: &Event) -> Option<Key> {
        let mut k = Key::new();
        for f in &rule.join {
            let v = fields::get(ev, *f, &self.procs);
            if v == Val::Null {
                return None;
            }
            k.push(v);
        }
        Some(k)
    }

    fn expire(&mut self, ev: &Event, out: &mut Vec<Match>) {
        while let Some(Reverse((deadline, r, slot, i, id))) = self.heap.peek().copied() {
            if deadline >= ev.time_ns {
                break;
            }
            self.heap.pop();
            let (r, slot) = (r as usize, slot as usize);
            let st = &mut self.states[r];
            let Some(s) = st.slots.get_mut(slot) else {
                continue;
            };
            if s.runs.get(i).is_none_or(|x| x.id as u32 != id) {
                continue;
            }
            let Some(run) = s.runs.remove(i) else {
                continue;
            };
            self.stats.rules[r].open -= 1;
            if run.pos == self.c.rules[r].steps.len() {
                // "a, then no b within T": T passed without b.
                let m = self.make_match(r, &run, ev, None);
                out.push(m);
            } else {
                self.stats.rules[r].expired += 1;
            }
        }
    }

    fn finish_key(&mut self, pid: Option<u32>, tid: Option<u32>, ev: &Event, out: &mut Vec<Match>) {
        let rules = std::mem::take(&mut self.exit_rules);
        for &r in &rules {
            let r = r as usize;
            let slots: SmallVec<[u32; 2]> = match (pid, tid) {
                (Some(p), _) => self.states[r].by_pid.get(&p).cloned().unwrap_or_default(),
                (_, Some(t)) => self.states[r].by_tid.get(&t).cloned().unwrap_or_default(),
                _ => SmallVec::new(),
            };
            let n = self.c.rules[r].steps.len();
            for slot in slots {
                let s = &self.states[r].slots[slot as usize];
                // Slots keyed by both pid and tid are found through either index.
                if pid.is_some_and(|p| s.pid != Some(p)) || tid.is_some_and(|t| s.tid != Some(t)) {
                    continue;
                }
                for run in self.remove_slot(r, slot).iter() {
                    if run.pos == n {
                        // Nothing more can come from this process: the negation held.
                        let m = self.make_match(r, run, ev, None);
                        out.push(m);
                    } else {
                        self.stats.rules[r].finished_at_exit += 1;
                    }
                }
            }
        }
        self.exit_rules = rules;
    }

    /// Frees a slot: its key, its indexes and its window go; its runs are returned.
    fn remove_slot(&mut self, r: usize, slot: u32) -> RunSet<Run> {
        let st = &mut self.states[r];
        let s = &mut st.slots[slot as usize];
        let runs = std::mem::take(&mut s.runs);
        let key = std::mem::take(&mut s.key);
        if let Some(w) = s.window.take() {
            st.window_events -= w.events.len();
        }
        s.generation = 0;
        let (pid, tid) = (s.pid.take(), s.tid.take());
        st.keys.remove(&key);
        st.free.push(slot);
        for (index, id) in [(&mut st.by_pid, pid), (&mut st.by_tid, tid)] {
            if let Some(id) = id
                && let Some(list) = index.get_mut(&id)
            {
                list.retain(|x| *x != slot);
                if list.is_empty() {
                    index.remove(&id);
                }
            }
        }
        self.stats.rules[r].open -= runs.len();
        runs
    }

    /// Over the per-rule key or window cap: the oldest keys go, their runs counted as evicted.
    /// `keep`, the key being worked on, stays (and keeps its place in the queue).
    fn evict_keys(&mut self, r: usize, keep: usize) {
        let mut kept = None;
        loop {
            let st = &self.states[r];
            if st.keys.len() <= self.limits.max_keys_per_rule
                && st.window_events <= self.limits.max_runs_per_rule
            {
                break;
            }
            let Some((slot, generation)) = self.states[r].key_fifo.pop_front() else {
                break;
            };
            let st = &self.states[r];
            if st.slots[slot as usize].generation != generation {
                continue;
            }
            if slot as usize == keep {
                kept = Some((slot, generation));
                continue;
            }
            let held = st.slots[slot as usize]
                .window
                .as_ref()
                .map_or(0, |w| w.events.len());
            let runs = self.remove_slot(r, slot);
            self.stats.rules[r].evicted += (runs.len() + held) as u64;
            self.stats.rules[r].evicted_keys += 1;
        }
        if let Some(entry) = kept {
            self.states[r].key_fifo.push_front(entry);
        }
    }

    fn slot_for(&mut self, r: usize, key: Key, ev: &Event) -> usize {
        if let Some(&s) = self.states[r].keys.get(&key) {
            return s as usize;
        }
        let rule = &self.c.rules[r];
        let pid = rule
            .join
            .iter()
            .position(|f| *f == FieldRef::Pid)
            .and_then(|i| key[i].as_int())
            .map(|v| v as u32);
        let tid = rule
            .join
            .iter()
            .position(|f| *f == FieldRef::Tid)
            .and_then(|i| key[i].as_int())
            .map(|v| v as u32);
        let _ = ev;
        let generation = self.next_generation;
        self.next_generation += 1;
        let st = &mut self.states[r];
        let slot = match st.free.pop() {
            Some(s) => s as usize,
            None => {
                st.slots.push(Slot::default());
                st.slots.len() - 1
            }
        };
        st.slots[slot] = Slot {
            key: key.clone(),
            runs: RunSet::default(),
            window: None,
            pid,
            tid,
            generation,
        };
        st.keys.insert(key, slot as u32);
        st.key_fifo.push_back((slot as u32, generation));
        if let Some(p) = pid {
            st.by_pid.entry(p).or_default().push(slot as u32);
        }
        if let Some(t) = tid {
            st.by_tid.entry(t).or_default().push(slot as u32);
        }
        // Keep the creation-order queue from growing with freed slots.
        if st.key_fifo.len() > 2 * st.keys.len() + 1024 {
            let slots = &st.slots;
            st.key_fifo
                .retain(|(s, g)| slots.get(*s as usize).is_some_and(|x| x.generation == *g));
        }
        if st.keys.len() > self.limits.max_keys_per_rule {
            self.evict_keys(r, slot);
        }
        slot
    }

    fn step_rule(&mut self, r: usize, ev: &Event, class: EventClass, out: &mut Vec<Match>) {
        let c = self.c.clone();
        let rule = &c.rules[r];
        let Some(key) = self.key(rule, ev) else {
            return;
        };
        let n = rule.steps.len();
        let steps_of = &rule.binding_step[..];
        // Existing runs of this key: all of them, or only those an index says can take it.
        if let Some(&slot) = self.states[r].keys.get(&key) {
            let slot = slot as usize;
            let runs = &self.states[r].slots[slot].runs;
            // A few runs are checked faster than the index is consulted.
            let scan = if runs.len() <= 8 {
                Scan::All
            } else {
                self.scan(rule, ev, class)
            };
            match scan {
                Scan::Nothing => {}
                Scan::All => {
                    // In place: a run removed is replaced at its position by the last one.
                    let mut p = 0;
                    while let Some(h) = self.states[r].slots[slot].runs.handle_at(p) {
                        if !self.visit(r, rule, slot, h, ev, class, out) {
                            p += 1;
                        }
                    }
                }
                Scan::Waiting(wants) => {
                    let mut cands = std::mem::take(&mut self.run_candidates);
                    cands.clear();
                    for w in &wants {
                        cands.extend_from_slice(runs.waiting(w));
                    }
                    if wants.len() > 1 {
                        cands.sort_unstable();
                        cands.dedup();
                    }
                    for &h in &cands {
                        self.visit(r, rule, slot, h, ev, class, out);
                    }
                    self.run_candidates = cands;
                }
            }
        }
        // A new run from this event.
        let first = &rule.steps[0];
        if !first.classes.iter().any(|cl| cl.covers(class)) {
            return;
        }
        let cx = Ctx {
            cur: first.binding.map(|b| (b, ev)),
            vals: &[],
            counts: &[],
            step_of: steps_of,
            procs: &self.procs,
        };
        if !first.conds.iter().all(|cd| cx.check(cd)) {
            return;
        }
        if rule.sliding {
            self.slide(r, key, ev, out);
            return;
        }
        // A leading repetition is one run per key: an ongoing one has just counted this event.
        if first.rep.is_some()
            && let Some(&slot) = self.states[r].keys.get(&key)
            && self.states[r].slots[slot as usize]
                .runs
                .iter()
                .any(|x| x.pos == 0)
        {
            return;
        }
        let mut run = Run::new(rule, ev);
        match on_step(rule, &mut run, 0, ev, &self.procs) {
            StepOutcome::Kill => {}
            StepOutcome::Continue => self.store(r, key, run, ev),
            StepOutcome::Complete if rule.trailing_negation() => {
                run.pos = n;
                self.store(r, key, run, ev);
            }
            StepOutcome::Complete => {
                let m = self.make_match(r, &run, ev, Some(ev));
                out.push(m);
            }
        }
    }

    /// Which runs of a key `ev` can affect. A negation that takes the event may kill any run;
    /// a step that takes it advances only runs whose probe value the event brings.
    fn scan(&self, rule: &Rule, ev: &Event, class: EventClass) -> Scan {
        if !rule.indexed || rule.neg_classes.iter().any(|c| c.covers(class)) {
            return Scan::All;
        }
        let mut wants = SmallVec::new();
        for (i, st) in rule.steps.iter().enumerate().skip(1) {
            if !st.classes.iter().any(|c| c.covers(class)) {
                continue;
            }
            match st.probe {
                Some((f, _)) => wants.push((i, fields::get(ev, f, &self.procs))),
                None => return Scan::All,
            }
        }
        if wants.is_empty() {
            Scan::Nothing
        } else {
            Scan::Waiting(wants)
        }
    }

    /// Offers `ev` to run `i` of a slot; true when the run ended (it left the set).
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        r: usize,
        rule: &Rule,
        slot: usize,
        i: u32,
        ev: &Event,
        class: EventClass,
        out: &mut Vec<Match>,
    ) -> bool {
        let n = rule.steps.len();
        let outcome = match self.states[r].slots[slot].runs.get(i) {
            Some(run) => self.advance(rule, run, ev, class, &rule.binding_step),
            None => return false,
        };
        let runs = &mut self.states[r].slots[slot].runs;
        let step = match outcome {
            Advance::Keep => return false,
            Advance::Kill => {
                runs.remove(i);
                self.stats.rules[r].open -= 1;
                return true;
            }
            Advance::Matched(step) => step,
        };
        runs.unlink(i);
        let Some(run) = runs.get_mut(i) else {
            return false;
        };
        match on_step(rule, run, step, ev, &self.procs) {
            StepOutcome::Continue => {
                run.set_want(rule);
                runs.link(i);
                false
            }
            StepOutcome::Kill => {
                runs.remove(i);
                self.stats.rules[r].open -= 1;
                true
            }
            StepOutcome::Complete if rule.trailing_negation() => {
                run.pos = n;
                run.set_want(rule);
                runs.link(i);
                false
            }
            StepOutcome::Complete => {
                if let Some(run) = runs.remove(i) {
                    self.stats.rules[r].open -= 1;
                    let m = self.make_match(r, &run, ev, Some(ev));
                    out.push(m);
                }
                true
            }
        }
    }

    fn store(&mut self, r: usize, key: Key, mut run: Run, ev: &Event) {
        let slot = self.slot_for(r, key, ev);
        run.id = self.next_run;
        self.next_run += 1;
        run.set_want(&self.c.rules[r]);
        let id = run.id;
        let start = run.start;
        let st = &mut self.states[r];
        let runs = &mut st.slots[slot].runs;
        if runs.len() >= self.limits.max_runs_per_key
            && let Some(oldest) = runs.oldest()
        {
            runs.remove(oldest);
            self.stats.rules[r].evicted += 1;
            self.stats.rules[r].open -= 1;
        }
        let i = runs.insert(run);
        if let Some(w) = self.c.rules[r].within_ns {
            self.heap.push(Reverse((
                start.saturating_add(w),
                r as u32,
                slot as u32,
                i,
                id as u32,
            )));
        }
        st.fifo.push_back((slot as u32, i, id));
        let stats = &mut self.stats.rules[r];
        stats.open += 1;
        stats.peak_open = stats.peak_open.max(stats.open);
        if stats.open > self.limits.max_runs_per_rule {
            self.evict_oldest(r);
        }
        // Keep the creation-order queue from growing with dead entries.
        let st = &mut self.states[r];
        if st.fifo.len() > 4 * self.stats.rules[r].open + 4096 {
            let slots = &st.slots;
            st.fifo.retain(|(s, i, id)| {
                slots
                    .get(*s as usize)
                    .is_some_and(|sl| sl.runs.holds(*i, *id))
            });
        }
    }

    fn evict_oldest(&mut self, r: usize) {
        while let Some((slot, i, id)) = self.states[r].fifo.pop_front() {
            let runs = &mut self.states[r].slots[slot as usize].runs;
            if runs.holds(i, id) {
                runs.remove(i);
                self.stats.rules[r].evicted += 1;
                self.stats.rules[r].open -= 1;
                return;
            }
        }
    }

    /// Counting threshold over a sliding window (a single repeated event with WITHIN).
    fn slide(&mut self, r: usize, key: Key, ev: &Event, out: &mut Vec<Match>) {
        let rule = &self.c.clone().rules[r];
        let (Some(rep), Some(within)) = (rule.steps[0].rep.as_ref(), rule.within_ns) else {
            return;
        };
        let val = rep
            .distinct
            .map_or(Val::Null, |d| fields::get(ev, d, &self.procs));
        let slot = self.slot_for(r, key, ev);
        let s = &mut self.states[r].slots[slot];
        let w = s.window.get_or_insert_with(|| {
            Box::new(Window {
                events: VecDeque::new(),
                latest: FxHashMap::default(),
            })
        });
        let before = w.events.len();
        w.events.push_back((ev.time_ns, ev.seq, val.clone()));
        if rep.distinct.is_some() {
            w.latest.insert(val, ev.seq);
        }
        while let Some((t, seq, v)) = w.events.front() {
            if ev.time_ns.saturating_sub(*t) <= within {
                break;
            }
            if w.latest.get(v) == Some(seq) {
                w.latest.remove(v);
            }
            w.events.pop_front();
        }
        if rep.distinct.is_some() && w.events.len() > 2 * w.latest.len() + 64 {
            let latest = &w.latest;
            w.events.retain(|(_, seq, v)| latest.get(v) == Some(seq));
        }
        let count = if rep.distinct.is_some() {
            w.latest.len()
        } else {
            w.events.len()
        };
        let mut matched = None;
        if count >= rep.min as usize {
            let mut run = Run::new(rule, ev);
            let _ = on_step(rule, &mut run, 0, ev, &self.procs);
            // The events that made the count, oldest first.
            let latest = &w.latest;
            let counted = w
                .events
                .iter()
                .filter(|(_, seq, v)| rep.distinct.is_none() || latest.get(v) == Some(seq));
            run.seqs = counted.take(MAX_SEQS).map(|e| e.1).collect();
            run.seqs_omitted = count.saturating_sub(MAX_SEQS) as u64;
            run.counts[0] = count as u32;
            run.pos = 1;
            w.events.clear();
            w.latest.clear();
            matched = Some(run);
        }
        let after = w.events.len();
        let st = &mut self.states[r];
        st.window_events = st.window_events + after - before;
        if st.window_events > self.limits.max_runs_per_rule {
            self.evict_keys(r, slot);
        }
        if let Some(run) = matched {
            let m = self.make_match(r, &run, ev, Some(ev));
            out.push(m);
        }
    }

    fn advance(
        &self,
        rule: &Rule,
        run: &Run,
        ev: &Event,
        class: EventClass,
        steps_of: &[usize],
    ) -> Advance {
        let n = rule.steps.len();
        let cx = |cur: Option<usize>| Ctx {
            cur: cur.map(|b| (b, ev)),
            vals: &run.vals,
            counts: &run.counts,
            step_of: steps_of,
            procs: &self.procs,
        };
        let s = run.pos;
        // A repetition that has reached its count is done: the run is then in the gap after it.
        let satisfied = s < n
            && rule.steps[s]
                .rep
                .as_ref()
                .is_some_and(|rep| run.counts[s] >= rep.min);
        let gap = if satisfied { Some(s) } else { s.checked_sub(1) };
        if let Some(g) = gap {
            for neg in &rule.gaps[g] {
                if neg.classes.iter().any(|cl| cl.covers(class))
                    && neg.conds.iter().all(|cd| cx(neg.binding).check(cd))
                {
                    return Advance::Kill;
                }
            }
        }
        if s >= n {
            return Advance::Keep;
        }
        let fits = |i: usize| {
            let st = &rule.steps[i];
            st.classes.iter().any(|cl| cl.covers(class))
                && st.conds.iter().all(|cd| cx(st.binding).check(cd))
        };
        if satisfied && s + 1 < n && fits(s + 1) {
            return Advance::Matched(s + 1);
        }
        if fits(s) {
            return Advance::Matched(s);
        }
        Advance::Keep
    }

    fn make_match(&mut self, r: usize, run: &Run, now: &Event, cur: Option<&Event>) -> Match {
        self.matches += 1;
        self.stats.rules[r].matches += 1;
        let rule = &self.c.rules[r];
        let steps_of = &rule.binding_step[..];
        let cx = Ctx {
            cur: None,
            vals: &run.vals,
            counts: &run.counts,
            step_of: steps_of,
            procs: &self.procs,
        };
        let values = rule.returns.iter().map(|(_, e)| cx.value(e)).collect();
        // A field with no value (of another event of an alternative, an errno of a call that
        // succeeded) shows as nothing; what that leaves at the end is trimmed.
        let output = rule.output.as_ref().map(|parts| {
            let text: String = parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(t) => t.clone(),
                    TemplatePart::Value(choices) => choices
                        .iter()
                        .map(|e| cx.value(e))
                        .find(|v| *v != Val::Null)
                        .map_or_else(String::new, |v| v.to_string()),
                })
                .collect();
            text.trim_end().to_string()
        });
        let exec = rule
            .actions
            .iter()
            .filter_map(|a| match a {
                CAction::Exec(args) => Some(args.iter().map(|e| cx.value(e)).collect()),
                _ => None,
            })
            .collect();
        let (pid, tid, time_ns) = match cur {
            Some(e) => (e.pid, e.tid, e.time_ns),
            None => (run.last_pid, run.last_tid, now.time_ns),
        };
        Match {
            number: self.matches,
            rule: r,
            values,
            seqs: run.seqs.to_vec(),
            seqs_omitted: run.seqs_omitted,
            pid,
            tid,
            time_ns,
            at_seq: now.seq,
            output,
            exec,
        }
    }

    /// Whether process `pid` has a run of rule `rule` that waits for its last positive step
    /// (one more event completes it): what a backend that acts in the kernel arms the process
    /// for. Only runs keyed by process (`[ProcessId]` joins) are found.
    pub fn waits_for_last_step(&self, rule: usize, pid: u32) -> bool {
        let (Some(st), Some(r)) = (self.states.get(rule), self.c.rules.get(rule)) else {
            return false;
        };
        let Some(last) = r.steps.len().checked_sub(1) else {
            return false;
        };
        st.by_pid.get(&pid).is_some_and(|slots| {
            slots.iter().any(|&s| {
                st.slots
                    .get(s as usize)
                    .is_some_and(|slot| slot.runs.iter().any(|run| run.pos == last))
            })
        })
    }

    /// Runs open now, over all rules.
    pub fn open_runs(&self) -> usize {
        self.stats.rules.iter().map(|s| s.open).sum()
    }
}

enum Advance {
    Keep,
    Kill,
    /// The event is the run's next event for this step.
    Matched(usize),
}

enum StepOutcome {
    Continue,
    Complete,
    Kill,
}

/// Records `ev` as an event of `step`: on its first occurrence, the values kept for later;
/// the seq of every occurrence that counts; repetitions are counted (or their distinct values).
fn on_step(rule: &Rule, run: &mut Run, step: usize, ev: &Event, procs: &ProcTable) -> StepOutcome {
    let n = rule.steps.len();
    let st = &rule.steps[step];
    if run.counts[step] == 0 {
        for (f, slot) in &st.captures {
            if let Some(v) = run.vals.get_mut(*slot) {
                *v = fields::get(ev, *f, procs);
            }
        }
    }
    run.last_pid = ev.pid;
    run.last_tid = ev.tid;
    let counted = match &st.rep {
        None => {
            run.counts[step] = 1;
            run.pos = step + 1;
            true
        }
        Some(rep) => {
            let before = run.counts[step];
            if let Some(d) = rep.distinct {
                let set = run.distinct.get_or_insert_with(Default::default);
                if before == 0 {
                    set.clear(); // a new repeated step starts its own count
                }
                // Past the largest count that can matter, values are no longer kept (the
                // count then stays at that bound).
                let bound = rep.max.map_or(rep.min, |m| m.saturating_add(1)) as usize;
                if set.len() < bound.max(MAX_SEQS) {
                    set.insert(fields::get(ev, d, procs));
                }
                run.counts[step] = set.len() as u32;
            } else {
                run.counts[step] = before.saturating_add(1);
            }
            run.pos = step;
            run.counts[step] > before
        }
    };
    if counted {
        if run.seqs.len() < MAX_SEQS {
            run.seqs.push(ev.seq);
        } else {
            run.seqs_omitted += 1;
        }
    }
    match &st.rep {
        None if run.pos == n => StepOutcome::Complete,
        None => StepOutcome::Continue,
        Some(rep) => {
            if rep.max.is_some_and(|m| run.counts[step] > m) {
                return StepOutcome::Kill;
            }
            if run.counts[step] >= rep.min && step + 1 == n {
                StepOutcome::Complete
            } else {
                StepOutcome::Continue
            }
        }
    }
}
