//! The matcher. Per rule and join key, a set of runs (partial matches) of the rule's linear
//! automaton. An event touches only the rules that name its class, and of those only the runs
//! of its own key. WITHIN deadlines sit in one heap ordered by time, so expiry never scans the
//! open runs. Runs of an exited process or thread are finalised. Memory is capped per key and
//! per rule, and what a cap evicts is counted.

use crate::ast::CmpOp;
use crate::compile::{CAction, CCond, CExpr, Compiled, Rule, TemplatePart};
use crate::fields::{self, Class, FieldRef, ProcTable, Val};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use vigil_event::{Event, EventKind};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_runs_per_key: usize,
    pub max_runs_per_rule: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_runs_per_key: 1024,
            max_runs_per_rule: 1 << 20,
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
    /// The seq of every matched (positive) event, in pattern order.
    pub seqs: Vec<u64>,
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
    pub evicted: u64,
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

struct Run {
    id: u64,
    /// Index of the next positive step to match (steps.len(): waiting for a trailing deadline).
    pos: usize,
    start: u64,
    counts: SmallVec<[u32; 4]>,
    distinct: Option<Box<FxHashSet<Val>>>,
    vals: SmallVec<[Val; 4]>,
    seqs: SmallVec<[u64; 4]>,
    last_pid: u32,
    last_tid: u32,
}

struct Window {
    events: VecDeque<(u64, Val)>,
    counts: FxHashMap<Val, u32>,
}

#[derive(Default)]
struct Slot {
    key: Key,
    runs: Vec<Run>,
    window: Option<Box<Window>>,
    pid: Option<u32>,
    tid: Option<u32>,
}

#[derive(Default)]
struct RuleState {
    keys: FxHashMap<Key, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_pid: FxHashMap<u32, SmallVec<[u32; 2]>>,
    by_tid: FxHashMap<u32, SmallVec<[u32; 2]>>,
    /// Runs in creation order, for the per-rule cap (dead entries are skipped lazily).
    fifo: VecDeque<(u32, u64)>,
}

pub struct Engine {
    c: Arc<Compiled>,
    states: Vec<RuleState>,
    by_class: FxHashMap<Class, Vec<u32>>,
    any_entry: Vec<u32>,
    any_exit: Vec<u32>,
    exit_rules: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32, u32, u64)>>,
    next_run: u64,
    matches: u64,
    procs: ProcTable,
    need_procs: bool,
    seen: Vec<u64>,
    epoch: u64,
    limits: Limits,
    pub stats: Stats,
    candidates: Vec<u32>,
}

pub fn compare(a: &Val, op: CmpOp, b: &Val) -> bool {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        },
        (Val::Null, _) | (_, Val::Null) => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => false,
        },
        _ => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => false,
        },
    }
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
        match self.value(e) {
            Val::Str(s) => test(&String::from_utf8_lossy(s.as_bytes())),
            Val::List(l) => l
                .iter()
                .any(|s| test(&String::from_utf8_lossy(s.as_bytes()))),
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
        let mut by_class: FxHashMap<Class, Vec<u32>> = FxHashMap::default();
        let (mut any_entry, mut any_exit, mut exit_rules) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in c.rules.iter().enumerate() {
            let i = i as u32;
            let mut classes: Vec<Class> = r
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
            for cl in classes {
                let list = match cl {
                    Class::AnyEntry => &mut any_entry,
                    Class::AnyExit => &mut any_exit,
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
        let class = Class::of(ev);
        self.epoch += 1;
        let mut cands = std::mem::take(&mut self.candidates);
        cands.clear();
        let wild = match class {
            Class::Entry(_) => &self.any_entry[..],
            Class::Exit(_) => &self.any_exit[..],
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
        while let Some(Reverse((deadline, r, slot, id))) = self.heap.peek().copied() {
            if deadline >= ev.time_ns {
                break;
            }
            self.heap.pop();
            let (r, slot) = (r as usize, slot as usize);
            let st = &mut self.states[r];
            let Some(s) = st.slots.get_mut(slot) else {
                continue;
            };
            let Some(i) = s.runs.iter().position(|x| x.id == id) else {
                continue;
            };
            let run = s.runs.swap_remove(i);
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
                (Some(p), _) => self.states[r].by_pid.remove(&p).unwrap_or_default(),
                (_, Some(t)) => self.states[r].by_tid.remove(&t).unwrap_or_default(),
                _ => SmallVec::new(),
            };
            let n = self.c.rules[r].steps.len();
            for slot in slots {
                let s = &mut self.states[r].slots[slot as usize];
                // Slots keyed by both pid and tid are found through either index.
                if pid.is_some_and(|p| s.pid != Some(p)) || tid.is_some_and(|t| s.tid != Some(t)) {
                    continue;
                }
                let runs = std::mem::take(&mut s.runs);
                let key = std::mem::take(&mut s.key);
                s.window = None;
                let other_tid = s.tid;
                let other_pid = s.pid;
                self.states[r].keys.remove(&key);
                self.states[r].free.push(slot);
                if pid.is_some()
                    && let Some(t) = other_tid
                {
                    self.states[r].by_tid.remove(&t);
                }
                if tid.is_some()
                    && let Some(p) = other_pid
                    && let Some(list) = self.states[r].by_pid.get_mut(&p)
                {
                    list.retain(|x| *x != slot);
                }
                for run in runs {
                    self.stats.rules[r].open -= 1;
                    if run.pos == n {
                        // Nothing more can come from this process: the negation held.
                        let m = self.make_match(r, &run, ev, None);
                        out.push(m);
                    } else {
                        self.stats.rules[r].finished_at_exit += 1;
                    }
                }
            }
        }
        self.exit_rules = rules;
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
            runs: Vec::new(),
            window: None,
            pid,
            tid,
        };
        st.keys.insert(key, slot as u32);
        if let Some(p) = pid {
            st.by_pid.entry(p).or_default().push(slot as u32);
        }
        if let Some(t) = tid {
            st.by_tid.entry(t).or_default().push(slot as u32);
        }
        slot
    }

    fn step_rule(&mut self, r: usize, ev: &Event, class: Class, out: &mut Vec<Match>) {
        let c = self.c.clone();
        let rule = &c.rules[r];
        let Some(key) = self.key(rule, ev) else {
            return;
        };
        let n = rule.steps.len();
        let steps_of = &rule.binding_step[..];
        // Existing runs of this key.
        if let Some(&slot) = self.states[r].keys.get(&key) {
            let slot = slot as usize;
            let mut i = 0;
            while i < self.states[r].slots[slot].runs.len() {
                let outcome = {
                    let run = &self.states[r].slots[slot].runs[i];
                    self.advance(rule, run, ev, class, steps_of)
                };
                match outcome {
                    Advance::Keep => i += 1,
                    Advance::Kill => {
                        self.states[r].slots[slot].runs.swap_remove(i);
                        self.stats.rules[r].open -= 1;
                    }
                    Advance::Matched(step) => {
                        let run = &mut self.states[r].slots[slot].runs[i];
                        match on_step(rule, run, step, ev, &self.procs) {
                            Outcome::Continue => i += 1,
                            Outcome::Kill => {
                                self.states[r].slots[slot].runs.swap_remove(i);
                                self.stats.rules[r].open -= 1;
                            }
                            Outcome::Complete if rule.trailing_negation() => {
                                run.pos = n;
                                i += 1;
                            }
                            Outcome::Complete => {
                                let run = self.states[r].slots[slot].runs.swap_remove(i);
                                self.stats.rules[r].open -= 1;
                                let m = self.make_match(r, &run, ev, Some(ev));
                                out.push(m);
                            }
                        }
                    }
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
        let mut run = Run {
            id: 0,
            pos: 0,
            start: ev.time_ns,
            counts: SmallVec::from_elem(0, n),
            distinct: None,
            vals: SmallVec::from_elem(Val::Null, rule.slots),
            seqs: SmallVec::new(),
            last_pid: ev.pid,
            last_tid: ev.tid,
        };
        match on_step(rule, &mut run, 0, ev, &self.procs) {
            Outcome::Kill => {}
            Outcome::Continue => self.store(r, key, run, ev),
            Outcome::Complete if rule.trailing_negation() => {
                run.pos = n;
                self.store(r, key, run, ev);
            }
            Outcome::Complete => {
                let m = self.make_match(r, &run, ev, Some(ev));
                out.push(m);
            }
        }
    }

    fn store(&mut self, r: usize, key: Key, mut run: Run, ev: &Event) {
        let slot = self.slot_for(r, key, ev);
        run.id = self.next_run;
        self.next_run += 1;
        if let Some(w) = self.c.rules[r].within_ns {
            self.heap.push(Reverse((
                run.start.saturating_add(w),
                r as u32,
                slot as u32,
                run.id,
            )));
        }
        let id = run.id;
        let st = &mut self.states[r];
        if st.slots[slot].runs.len() >= self.limits.max_runs_per_key {
            st.slots[slot].runs.remove(0);
            self.stats.rules[r].evicted += 1;
            self.stats.rules[r].open -= 1;
        }
        st.slots[slot].runs.push(run);
        st.fifo.push_back((slot as u32, id));
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
            st.fifo.retain(|(s, id)| {
                slots
                    .get(*s as usize)
                    .is_some_and(|sl| sl.runs.iter().any(|x| x.id == *id))
            });
        }
    }

    fn evict_oldest(&mut self, r: usize) {
        while let Some((slot, id)) = self.states[r].fifo.pop_front() {
            let runs = &mut self.states[r].slots[slot as usize].runs;
            if let Some(i) = runs.iter().position(|x| x.id == id) {
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
            .map_or(Val::Int(ev.seq as i64), |d| fields::get(ev, d, &self.procs));
        let slot = self.slot_for(r, key, ev);
        let s = &mut self.states[r].slots[slot];
        let w = s.window.get_or_insert_with(|| {
            Box::new(Window {
                events: VecDeque::new(),
                counts: FxHashMap::default(),
            })
        });
        w.events.push_back((ev.time_ns, val.clone()));
        *w.counts.entry(val).or_default() += 1;
        while let Some((t, v)) = w.events.front().cloned() {
            if ev.time_ns.saturating_sub(t) <= within {
                break;
            }
            w.events.pop_front();
            if let Some(c) = w.counts.get_mut(&v) {
                *c -= 1;
                if *c == 0 {
                    w.counts.remove(&v);
                }
            }
        }
        let count = if rep.distinct.is_some() {
            w.counts.len()
        } else {
            w.events.len()
        } as u32;
        if count >= rep.min {
            w.events.clear();
            w.counts.clear();
            let mut run = Run {
                id: 0,
                pos: 1,
                start: ev.time_ns,
                counts: SmallVec::from_elem(0, 1),
                distinct: None,
                vals: SmallVec::from_elem(Val::Null, rule.slots),
                seqs: SmallVec::new(),
                last_pid: ev.pid,
                last_tid: ev.tid,
            };
            let _ = on_step(rule, &mut run, 0, ev, &self.procs);
            run.counts[0] = count;
            run.pos = 1;
            let m = self.make_match(r, &run, ev, Some(ev));
            out.push(m);
        }
    }

    fn advance(
        &self,
        rule: &Rule,
        run: &Run,
        ev: &Event,
        class: Class,
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
        let output = rule.output.as_ref().map(|parts| {
            parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(t) => t.clone(),
                    TemplatePart::Value(e) => cx.value(e).to_string(),
                })
                .collect()
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
            pid,
            tid,
            time_ns,
            at_seq: now.seq,
            output,
            exec,
        }
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

enum Outcome {
    Continue,
    Complete,
    Kill,
}

/// Records `ev` as an event of `step`: on its first occurrence, its seq and the values kept
/// for later; repetitions are counted (or their distinct values).
fn on_step(rule: &Rule, run: &mut Run, step: usize, ev: &Event, procs: &ProcTable) -> Outcome {
    let n = rule.steps.len();
    let st = &rule.steps[step];
    if run.counts[step] == 0 {
        for (f, slot) in &st.captures {
            if let Some(v) = run.vals.get_mut(*slot) {
                *v = fields::get(ev, *f, procs);
            }
        }
        run.seqs.push(ev.seq);
    }
    run.last_pid = ev.pid;
    run.last_tid = ev.tid;
    match &st.rep {
        None => {
            run.counts[step] = 1;
            run.pos = step + 1;
            if run.pos == n {
                Outcome::Complete
            } else {
                Outcome::Continue
            }
        }
        Some(rep) => {
            if let Some(d) = rep.distinct {
                let set = run.distinct.get_or_insert_with(Default::default);
                if run.counts[step] == 0 {
                    set.clear(); // a new repeated step starts its own count
                }
                set.insert(fields::get(ev, d, procs));
                run.counts[step] = set.len() as u32;
            } else {
                run.counts[step] += 1;
            }
            run.pos = step;
            if rep.max.is_some_and(|m| run.counts[step] > m) {
                return Outcome::Kill;
            }
            if run.counts[step] >= rep.min && step + 1 == n {
                Outcome::Complete
            } else {
                Outcome::Continue
            }
        }
    }
}
