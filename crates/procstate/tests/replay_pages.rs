//! The replay's notes (parts read and written, pages copied) against a page-granular
//! reference: random sequences of mmap (file shared or private, anonymous), munmap, mprotect,
//! mremap (moved to a fixed place, or shrunk) and page accesses, given to the replay as events;
//! after each step what `Replay::view` shows for every mapping must be what the reference
//! says. The reference keeps one entry per page (its object offset and sharing, and whether it
//! was read, written, copied) and re-checks every page against the model after each call, so
//! the range arithmetic of the replay (splits, merges, offsets, moves) does not exist in it.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use vigil_event::{
    Args, Creds, Event, EventKind, Fd, MemAccess, ProcessStart, SmoAccess, SmoKind, SmoObject,
    SmoVia, Str, SyscallExit, SyscallId, Target, Value,
};
use vigil_procstate::mem::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED};
use vigil_procstate::{Backing, ObjectId, PAGE_SIZE, Replay};

const P: u64 = PAGE_SIZE;
const B: u64 = 0x7000_0000_0000;
const WINDOW: u64 = 16;
const FILE: ObjectId = ObjectId::File { dev: 7, ino: 42 };

#[derive(Clone, Debug)]
enum Op {
    MapFile {
        page: u64,
        pages: u64,
        first: u64,
        shared: bool,
    },
    MapAnon {
        page: u64,
        pages: u64,
    },
    Munmap {
        page: u64,
        pages: u64,
    },
    Mprotect {
        page: u64,
        pages: u64,
        prot: u64,
    },
    MoveTo {
        page: u64,
        pages: u64,
        to: u64,
    },
    Shrink {
        page: u64,
        pages: u64,
        keep: u64,
    },
    Access {
        page: u64,
        write: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..WINDOW, 1..6u64, 0..8u64, any::<bool>()).prop_map(|(page, pages, first, shared)| {
            Op::MapFile { page, pages, first, shared }
        }),
        1 => (0..WINDOW, 1..4u64).prop_map(|(page, pages)| Op::MapAnon { page, pages }),
        1 => (0..WINDOW, 1..4u64).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        1 => (0..WINDOW, 1..4u64, 0..4u64).prop_map(|(page, pages, prot)| Op::Mprotect {
            page,
            pages,
            prot
        }),
        1 => (0..WINDOW, 1..4u64, 0..WINDOW).prop_map(|(page, pages, to)| Op::MoveTo {
            page,
            pages,
            to
        }),
        1 => (0..WINDOW, 2..5u64, 1..2u64).prop_map(|(page, pages, keep)| Op::Shrink {
            page,
            pages,
            keep
        }),
        4 => (0..WINDOW, any::<bool>()).prop_map(|(page, write)| Op::Access { page, write }),
    ]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Note {
    offset: u64,
    shared: bool,
    read: bool,
    written: bool,
    copied: bool,
}

struct World {
    replay: Replay,
    seq: u64,
    /// Page address -> what was done through it.
    notes: BTreeMap<u64, Note>,
}

fn addr(page: u64) -> u64 {
    B + page * P
}

fn file_fd() -> Value {
    Value::Fd(Fd::new(
        5,
        Some(Arc::new(Target::File {
            path: Str::from("/data"),
            dev: 7,
            ino: 42,
        })),
    ))
}

impl World {
    fn new() -> World {
        let mut w = World {
            replay: Replay::new(),
            seq: 0,
            notes: BTreeMap::new(),
        };
        w.ev(EventKind::ProcessStart(ProcessStart {
            ppid: 1,
            exe: Str::from("/x"),
            argv: Arc::from(Vec::new()),
            creds: Creds::default(),
            clone_flags: 0,
        }));
        w
    }

    fn ev(&mut self, kind: EventKind) {
        self.seq += 1;
        let e = Event {
            seq: self.seq,
            time_ns: self.seq,
            pid: 10,
            tid: 10,
            kind,
        };
        self.replay.apply(&e).unwrap();
    }

    fn call(&mut self, name: &str, args: &[(&str, Value)], ret: u64) {
        let call = SyscallId::from_name(name).unwrap();
        let sig = call.signature();
        let mut a: Args = (0..sig.args.len() + sig.outputs.len())
            .map(|_| Value::Absent)
            .collect();
        for (k, v) in args {
            a[sig.field_index(k).unwrap()] = v.clone();
        }
        self.ev(EventKind::SyscallExit(SyscallExit {
            call,
            entry_seq: 0,
            ret: ret as i64,
            args: a,
        }));
    }

    fn mapped(&self, page: u64, pages: u64) -> bool {
        let mm = self.replay.processes().mm(10).unwrap();
        mm.is_mapped(addr(page), addr(page + pages))
    }

    /// Forgets the pages the model no longer maps as noted.
    fn recheck(&mut self) {
        let mm = self.replay.processes().mm(10).unwrap();
        self.notes.retain(|a, n| {
            mm.vma_at(*a).is_some_and(|v| {
                v.object() == Some(&FILE)
                    && v.shared == n.shared
                    && v.offset_at(*a) == Some(n.offset)
            })
        });
    }

    fn step(&mut self, op: &Op) {
        let u = Value::Uint;
        match *op {
            Op::MapFile {
                page,
                pages,
                first,
                shared,
            } => {
                let flags = if shared { MAP_SHARED } else { MAP_PRIVATE } | MAP_FIXED;
                self.call(
                    "mmap",
                    &[
                        ("addr", u(addr(page))),
                        ("length", u(pages * P)),
                        ("prot", u(3)),
                        ("flags", u(flags)),
                        ("fd", file_fd()),
                        ("offset", u(first * P)),
                    ],
                    addr(page),
                );
                for p in page..page + pages {
                    self.notes.remove(&addr(p));
                }
            }
            Op::MapAnon { page, pages } => {
                self.call(
                    "mmap",
                    &[
                        ("addr", u(addr(page))),
                        ("length", u(pages * P)),
                        ("prot", u(3)),
                        ("flags", u(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)),
                        ("fd", Value::Fd(Fd::new(-1, None))),
                        ("offset", u(0)),
                    ],
                    addr(page),
                );
            }
            Op::Munmap { page, pages } => {
                self.call(
                    "munmap",
                    &[("addr", u(addr(page))), ("length", u(pages * P))],
                    0,
                );
            }
            Op::Mprotect { page, pages, prot } => {
                if !self.mapped(page, pages) {
                    return;
                }
                self.call(
                    "mprotect",
                    &[
                        ("addr", u(addr(page))),
                        ("length", u(pages * P)),
                        ("prot", u(prot)),
                    ],
                    0,
                );
            }
            Op::MoveTo { page, pages, to } => {
                let overlap = to < page + pages && page < to + pages;
                if !self.mapped(page, pages) || overlap {
                    return;
                }
                self.call(
                    "mremap",
                    &[
                        ("old_addr", u(addr(page))),
                        ("old_size", u(pages * P)),
                        ("new_size", u(pages * P)),
                        ("flags", u(3)),
                        ("new_addr", u(addr(to))),
                    ],
                    addr(to),
                );
                let moving: Vec<(u64, Note)> = (page..page + pages)
                    .filter_map(|p| self.notes.remove(&addr(p)).map(|n| (p, n)))
                    .collect();
                for p in to..to + pages {
                    self.notes.remove(&addr(p));
                }
                for (p, n) in moving {
                    self.notes.insert(addr(p - page + to), n);
                }
            }
            Op::Shrink { page, pages, keep } => {
                // Only a range the model has as one mapping of one kind can be shrunk.
                let mm = self.replay.processes().mm(10).unwrap();
                let one = mm
                    .vma_at(addr(page))
                    .is_some_and(|v| v.start <= addr(page) && v.end >= addr(page + pages));
                if !one {
                    return;
                }
                self.call(
                    "mremap",
                    &[
                        ("old_addr", u(addr(page))),
                        ("old_size", u(pages * P)),
                        ("new_size", u(keep * P)),
                        ("flags", u(0)),
                        ("new_addr", u(0)),
                    ],
                    addr(page),
                );
            }
            Op::Access { page, write } => {
                let mm = self.replay.processes().mm(10).unwrap();
                let Some(v) = mm.vma_at(addr(page)) else {
                    return;
                };
                if v.object() != Some(&FILE) {
                    return;
                }
                let (offset, shared) = (v.offset_at(addr(page)).unwrap(), v.shared);
                self.ev(EventKind::SmoAccess(SmoAccess {
                    access: if write {
                        MemAccess::Write
                    } else {
                        MemAccess::Read
                    },
                    object: SmoObject {
                        kind: SmoKind::File,
                        dev: 7,
                        ino: 42,
                        path: Str::from("/data"),
                    },
                    offset,
                    len: P,
                    addr: addr(page) + 8,
                    ip: 0,
                    via: SmoVia::Fault,
                    private: !shared,
                    map_offset: 0,
                    map_len: 0,
                }));
                let n = self.notes.entry(addr(page)).or_insert(Note {
                    offset,
                    shared,
                    ..Note::default()
                });
                n.read |= !write;
                n.written |= write;
                n.copied |= write && !shared;
                return;
            }
        }
        self.recheck();
    }

    /// The reference's ranges within `[start, end)`, as object offsets, merged.
    fn expected(&self, start: u64, end: u64, pick: fn(&Note) -> bool) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut pages: Vec<u64> = self
            .notes
            .range(start..end)
            .filter(|(_, n)| pick(n))
            .map(|(_, n)| n.offset)
            .collect();
        pages.sort();
        for o in pages {
            match out.last_mut() {
                Some(r) if r.end >= o => r.end = r.end.max(o + P),
                _ => out.push(o..o + P),
            }
        }
        out
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let view = self.replay.view(10).unwrap();
        for v in &view.vmas {
            let (s, e) = (v.vma.start, v.vma.end);
            let what = format!("{}", v.vma);
            if matches!(v.vma.backing, Backing::Anonymous) {
                prop_assert!(v.read.is_empty() && v.written.is_empty(), "{what}");
                continue;
            }
            prop_assert_eq!(&v.read, &self.expected(s, e, |n| n.read), "read {}", what);
            prop_assert_eq!(
                &v.written,
                &self.expected(s, e, |n| n.written),
                "written {}",
                what
            );
            prop_assert_eq!(
                &v.copied,
                &self.expected(s, e, |n| n.copied),
                "copied {}",
                what
            );
        }
        let noted: usize = self.notes.len();
        prop_assert!(noted == 0 || !view.vmas.is_empty());
        Ok(())
    }
}

proptest! {
    #[test]
    fn the_replay_notes_what_a_page_reference_notes(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op);
            w.check()?;
        }
    }
}
