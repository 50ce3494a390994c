//! The partial matches ("runs") of one rule and join key. Runs are kept dense (a scan of every
//! run reads them in memory order) and named by stable handles, so the deadline heap and the
//! per-rule queue can point at them; and a run waiting at a step whose conditions include an
//! equality with a value it already holds (`r.fd == o.ret`) is indexed by that value, so an
//! event of that step looks up the runs it can advance instead of checking every one.

use crate::fields::Val;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// A run's index entry: the step it waits at and the value the step's event must bring.
pub type Want = (usize, Val);

pub trait Indexed {
    fn id(&self) -> u64;
    fn want(&self) -> Option<&Want>;
    /// The run's handle in its set.
    fn handle(&self) -> u32;
    fn set_handle(&mut self, h: u32);
}

/// Marks a free handle in `at`; the rest of the entry is the next free handle.
const FREE: u32 = 1 << 31;
const NO_HANDLE: u32 = u32::MAX;

/// Kept small: a rule has one per join key (process, thread...) with state.
pub struct RunSet<R> {
    runs: Vec<R>,
    /// `at[h]`: where handle h's run is in `runs`, or FREE | the next free handle.
    at: Vec<u32>,
    free: u32,
    index: Option<Box<FxHashMap<Want, SmallVec<[u32; 2]>>>>,
}

impl<R> Default for RunSet<R> {
    fn default() -> Self {
        RunSet {
            runs: Vec::new(),
            at: Vec::new(),
            free: NO_HANDLE,
            index: None,
        }
    }
}

impl<R: Indexed> RunSet<R> {
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// The handle of the run at position `p` (positions are 0..len, in memory order).
    pub fn handle_at(&self, p: usize) -> Option<u32> {
        self.runs.get(p).map(|r| r.handle())
    }

    fn position(&self, h: u32) -> Option<usize> {
        match self.at.get(h as usize) {
            Some(&p) if p & FREE == 0 => Some(p as usize),
            _ => None,
        }
    }

    pub fn get(&self, h: u32) -> Option<&R> {
        self.position(h).and_then(|p| self.runs.get(p))
    }

    pub fn get_mut(&mut self, h: u32) -> Option<&mut R> {
        self.position(h).and_then(|p| self.runs.get_mut(p))
    }

    /// Whether handle `h` still names the run `id`.
    pub fn holds(&self, h: u32, id: u64) -> bool {
        self.get(h).is_some_and(|r| r.id() == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &R> {
        self.runs.iter()
    }

    pub fn insert(&mut self, mut run: R) -> u32 {
        let p = self.runs.len() as u32;
        let h = match self.free {
            NO_HANDLE => {
                self.at.push(p);
                (self.at.len() - 1) as u32
            }
            h => {
                let next = self.at[h as usize] & !FREE;
                self.free = if next == NO_HANDLE & !FREE {
                    NO_HANDLE
                } else {
                    next
                };
                self.at[h as usize] = p;
                h
            }
        };
        run.set_handle(h);
        self.runs.push(run);
        self.link(h);
        h
    }

    pub fn remove(&mut self, h: u32) -> Option<R> {
        let p = self.position(h)?;
        self.unlink(h);
        let run = self.runs.swap_remove(p);
        if let Some(moved) = self.runs.get(p) {
            let m = moved.handle() as usize;
            self.at[m] = p as u32;
        }
        if self.runs.is_empty() {
            // Start afresh: handles do not stay as many as at the busiest moment.
            self.at.clear();
            self.free = NO_HANDLE;
        } else {
            self.at[h as usize] = FREE | (self.free & !FREE);
            self.free = h;
        }
        Some(run)
    }

    /// The oldest open run (the lowest id). A scan, but only when a key is at its cap, where
    /// every event of the key is checked against every run anyway.
    pub fn oldest(&self) -> Option<u32> {
        self.runs.iter().min_by_key(|r| r.id()).map(|r| r.handle())
    }

    /// Takes run `h` out of the index (before its `want` changes).
    pub fn unlink(&mut self, h: u32) {
        let Some(p) = self.position(h) else {
            return;
        };
        let Some(want) = self.runs.get(p).and_then(|r| r.want()) else {
            return;
        };
        if let Some(index) = self.index.as_mut()
            && let Some(list) = index.get_mut(want)
        {
            list.retain(|x| *x != h);
            if list.is_empty() {
                let want = want.clone();
                index.remove(&want);
            }
        }
    }

    /// Puts run `h` into the index under its current `want`.
    pub fn link(&mut self, h: u32) {
        if let Some(want) = self.get(h).and_then(|r| r.want()).cloned() {
            self.index
                .get_or_insert_with(Default::default)
                .entry(want)
                .or_default()
                .push(h);
        }
    }

    /// The runs waiting at a step for a value.
    pub fn waiting(&self, want: &Want) -> &[u32] {
        self.index
            .as_ref()
            .and_then(|i| i.get(want))
            .map_or(&[], |l| &l[..])
    }
}
