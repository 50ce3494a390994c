//! Replaying a log into the address spaces of its processes, with what each mapping was used
//! for so far: the parts of its object read and written (from the `smo_*` access events) and,
//! for a private file mapping, the pages written (copied on write into the process). What
//! `vigil maps` shows, and what a fatal fault is explained against (`crate::fault`).
//!
//! Why a layer over `Processes::apply`: the model's VMAs are split, moved and dropped by
//! munmap/mremap/mprotect, and what was read through a VMA must follow. The notes are kept by
//! virtual address range, each tagged with the object, the object offset at its start and the
//! sharing, and re-checked against the model after every call that changes the address space:
//! a part survives while the same object range stays mapped the same way (mprotect splits,
//! madvise), moves with mremap, and goes with munmap, with an mmap placed over it, or with the
//! address space (exec). A forked child inherits the pages its parent had copied (the copies
//! are private memory it gets a copy of) but not the parent's accesses: those are the parent's.
//! Every task sharing an address space (threads, CLONE_VM processes) adds to the same notes.
//!
//! `maps_at` drives a replay over a whole log for one process and one moment, with the checks
//! `vigil maps` needs (a pid not in the log, a moment outside it or outside the process's life,
//! a log with nothing about that process's memory).

use crate::apply::{arg, num};
use crate::mem::{AddressSpace, Backing, ObjectId, PAGE_SIZE, Vma, page_down, page_up};
use crate::procs::{MmId, Processes, StateError};
use std::collections::BTreeMap;
use std::ops::Range;
use syscalls::Sysno;
use vigil_event::{
    Abi, Event, EventKind, ExitStatus, SignalDelivery, SmoAccess, SmoKind, SmoObject, SyscallExit,
    Target, Value,
};

const O_TRUNC: u64 = 0o1000;

/// One noted range: `[start, end)` of virtual memory (the map key is `start`), showing
/// `object` from byte `offset` on, through a shared or a private mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    end: u64,
    object: ObjectId,
    offset: u64,
    shared: bool,
}

impl Mark {
    /// Whether two marks (at their starts) show the same object the same way, so that one
    /// continues the other where they meet.
    fn same_mapping(&self, start: u64, other: &Mark, other_start: u64) -> bool {
        self.object == other.object
            && self.shared == other.shared
            && i128::from(self.offset) - i128::from(start)
                == i128::from(other.offset) - i128::from(other_start)
    }

    /// The object offset at `addr` (within the mark that starts at `start`).
    fn offset_at(&self, start: u64, addr: u64) -> u64 {
        self.offset.saturating_add(addr.saturating_sub(start))
    }
}

/// Non-overlapping marks by start address; marks of the same mapping that touch are merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MarkSet {
    marks: BTreeMap<u64, Mark>,
}

impl MarkSet {
    fn len(&self) -> usize {
        self.marks.len()
    }

    /// Forgets `[start, end)`, cutting marks that straddle its ends.
    fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let hit: Vec<(u64, Mark)> = self.overlapping(start, end).map(|(k, m)| (k, *m)).collect();
        for (k, m) in hit {
            self.marks.remove(&k);
            if k < start {
                self.marks.insert(k, Mark { end: start, ..m });
            }
            if m.end > end {
                let offset = m.offset_at(k, end);
                self.marks.insert(end, Mark { offset, ..m });
            }
        }
    }

    /// The marks overlapping `[start, end)`, in address order.
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Mark)> {
        let first = self
            .marks
            .range(..=start)
            .next_back()
            .filter(|(_, m)| m.end > start)
            .map_or(start, |(k, _)| *k);
        self.marks
            .range(first..end)
            .map(|(k, m)| (*k, m))
            .filter(move |(_, m)| m.end > start)
    }

    /// Notes `[start, end)` as showing `object` from `offset`; what was noted there before
    /// is replaced, and a touching mark of the same mapping is merged with it.
    fn insert(&mut self, start: u64, end: u64, object: ObjectId, offset: u64, shared: bool) {
        if start >= end {
            return;
        }
        let new = Mark {
            end,
            object,
            offset,
            shared,
        };
        let (mut s, mut e, mut off) = (start, end, offset);
        // Touching or overlapping marks of the same mapping widen the new one.
        let near: Vec<(u64, Mark)> = self
            .marks
            .range(..=end)
            .rev()
            .take_while(|(_, m)| m.end >= start)
            .map(|(k, m)| (*k, *m))
            .collect();
        for (k, m) in near {
            if m.same_mapping(k, &new, start) {
                if k < s {
                    s = k;
                    off = m.offset;
                }
                e = e.max(m.end);
                self.marks.remove(&k);
            }
        }
        self.remove(s, e);
        self.marks.insert(
            s,
            Mark {
                end: e,
                offset: off,
                ..new
            },
        );
    }

    /// Keeps only what the address space still maps as each mark says (same object, same
    /// offsets, same sharing).
    fn clip_to(&mut self, mm: &AddressSpace) {
        let old = std::mem::take(&mut self.marks);
        for (k, m) in old {
            for (s, e, off) in consistent_pieces(mm, k, m.end, &m.object, m.offset, m.shared) {
                self.insert(s, e, m.object, off, m.shared);
            }
        }
    }

    /// mremap: the marks of `[old, old+len)` now describe `[new, new+len)`; whatever was
    /// noted at the new place (where the kernel unmapped first) is gone.
    fn move_range(&mut self, old: u64, len: u64, new: u64, new_len: u64) {
        let old_end = old.saturating_add(len);
        let moving: Vec<(u64, Mark)> = self
            .overlapping(old, old_end)
            .map(|(k, m)| {
                let s = k.max(old);
                let mark = Mark {
                    end: m.end.min(old_end),
                    offset: m.offset_at(k, s),
                    ..*m
                };
                (s, mark)
            })
            .collect();
        self.remove(old, old_end);
        self.remove(new, new.saturating_add(new_len));
        for (s, m) in moving {
            let (Some(ns), Some(ne)) = ((s - old).checked_add(new), (m.end - old).checked_add(new))
            else {
                continue;
            };
            self.insert(ns, ne, m.object, m.offset, m.shared);
        }
    }

    /// The object ranges noted within `v` (which maps an object), in offset order, merged.
    fn object_ranges(&self, v: &Vma) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = self
            .overlapping(v.start, v.end)
            .map(|(k, m)| {
                let s = k.max(v.start);
                let e = m.end.min(v.end);
                let off = m.offset_at(k, s);
                off..off.saturating_add(e - s)
            })
            .collect();
        coalesce(&mut out);
        out
    }
}

/// Sorts and merges touching ranges.
fn coalesce(ranges: &mut Vec<Range<u64>>) {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    *ranges = out;
}

/// The parts of `[start, end)` that `mm` maps as `object` with object offset `offset` at
/// `start` and the given sharing: `(start, end, object offset)` each.
fn consistent_pieces(
    mm: &AddressSpace,
    start: u64,
    end: u64,
    object: &ObjectId,
    offset: u64,
    shared: bool,
) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    for v in mm.overlapping(start, end) {
        let Backing::Object { id, .. } = &v.backing else {
            continue;
        };
        if id != object || v.shared != shared {
            continue;
        }
        let s = v.start.max(start);
        let e = v.end.min(end);
        let want = offset.saturating_add(s - start);
        if v.offset_at(s) == Some(want) {
            out.push((s, e, want));
        }
    }
    out
}

/// What the replay noted about one address space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Notes {
    read: MarkSet,
    written: MarkSet,
    copied: MarkSet,
    /// A snapshot (/proc/PID/maps at exec) gave its layout.
    snapshot: bool,
    /// Memory calls (mmap, munmap, ...) of it were recorded.
    calls: bool,
}

/// One VMA as `vigil maps` shows it: the model's mapping and what was done through it so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaView {
    pub vma: Vma,
    /// Parts of the object read through this mapping, as object byte ranges (at the
    /// recording's granularity: pages, exact bytes, or the whole mapping), merged.
    pub read: Vec<Range<u64>>,
    /// Parts written through it (for a private mapping: written into the process's copy).
    pub written: Vec<Range<u64>>,
    /// A private file mapping's pages written, hence copied into the process (object byte
    /// ranges, whole pages).
    pub copied: Vec<Range<u64>>,
}

impl VmaView {
    /// A shared mapping of an object (file, SysV segment, shared anonymous memory): a
    /// shared-memory object vigil monitors.
    pub fn is_smo(&self) -> bool {
        self.vma.shared && self.vma.object().is_some()
    }

    /// The object's identity as the access events name it (kind, device, inode or shmid,
    /// path), for a mapping of an object.
    pub fn object(&self) -> Option<SmoObject> {
        smo_object(&self.vma)
    }

    /// How many pages were copied on write.
    pub fn copied_pages(&self) -> u64 {
        self.copied
            .iter()
            .map(|r| (r.end - r.start).div_ceil(PAGE_SIZE))
            .sum()
    }
}

/// A mapped object as the access events name it.
pub fn smo_object(v: &Vma) -> Option<SmoObject> {
    let Backing::Object { id, path, .. } = &v.backing else {
        return None;
    };
    let (kind, dev, ino) = match *id {
        ObjectId::File { dev, ino } => (SmoKind::File, dev, ino),
        ObjectId::SysV(shmid) => (SmoKind::SysvShm, 0, shmid as u64),
        ObjectId::SharedAnon(ino) => (SmoKind::SharedAnon, crate::maps::SHMEM_DEV, ino),
    };
    Some(SmoObject {
        kind,
        dev,
        ino,
        path: path.clone(),
    })
}

/// One process's address space at a moment of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceView {
    pub pid: u32,
    /// The VMAs as the kernel would show them (adjacent compatible ones merged), in address
    /// order.
    pub vmas: Vec<VmaView>,
    /// A snapshot at exec gave the starting layout (otherwise only what recorded memory calls
    /// mapped is known).
    pub snapshot: bool,
    /// Memory calls of this address space were recorded.
    pub calls: bool,
}

/// A log replayed into process state, with what each mapping was used for. Feed it every
/// event in log order.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    procs: Processes,
    notes: BTreeMap<MmId, Notes>,
    /// Sizes of files the log says (ftruncate, O_TRUNC, writes at known offsets after them).
    sizes: BTreeMap<ObjectId, u64>,
    /// Access events that name an address the model does not map as their object.
    unplaced: u64,
}

/// The calls that change an address space (i386 mmap2 is recognised apart).
fn is_memory_call(call: Option<Sysno>) -> bool {
    matches!(
        call,
        Some(
            Sysno::mmap
                | Sysno::munmap
                | Sysno::mprotect
                | Sysno::mremap
                | Sysno::brk
                | Sysno::shmat
                | Sysno::shmdt
                | Sysno::madvise
        )
    )
}

fn is_i386_mmap2(x: &SyscallExit) -> bool {
    x.call.abi == Abi::I386
        && syscalls::x86::Sysno::new(x.call.nr as usize) == Some(syscalls::x86::Sysno::mmap2)
}

/// Whether an event says something about the address space of its process: a snapshot, or
/// the exit of a memory call.
pub fn is_address_space_event(ev: &Event) -> bool {
    match &ev.kind {
        EventKind::AddressSpace(_) => true,
        EventKind::SyscallExit(x) => is_memory_call(x.call.canonical()) || is_i386_mmap2(x),
        _ => false,
    }
}

/// Whether an access event's object can be the model's object `id` (the model makes up its
/// own ids for shared anonymous memory mapped by an event, and may not know a file's device).
fn same_object(id: &ObjectId, o: &SmoObject) -> bool {
    match (*id, o.kind) {
        (ObjectId::File { dev, ino }, SmoKind::File) => {
            ino == 0 || o.ino == 0 || (ino == o.ino && (dev == 0 || o.dev == 0 || dev == o.dev))
        }
        (ObjectId::SysV(shmid), SmoKind::SysvShm) => shmid as u64 == o.ino,
        (ObjectId::SharedAnon(_), SmoKind::SharedAnon) => true,
        _ => false,
    }
}

/// The file an fd value names.
fn fd_file(ev: &Event, name: &str) -> Option<ObjectId> {
    match ev.arg(name)?.as_fd()?.target.as_deref()? {
        Target::File { dev, ino, .. } if *ino != 0 => Some(ObjectId::File {
            dev: *dev,
            ino: *ino,
        }),
        _ => None,
    }
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// The process state as replayed so far.
    pub fn processes(&self) -> &Processes {
        &self.procs
    }

    /// Access events whose address the model did not map as their object (a sign the model
    /// and the recording disagree; such accesses are not shown).
    pub fn unplaced(&self) -> u64 {
        self.unplaced
    }

    /// The size of a file, when the log says it: set by ftruncate or an open with O_TRUNC,
    /// grown by writes at known offsets, forgotten by changes vigil cannot size.
    pub fn file_size(&self, id: &ObjectId) -> Option<u64> {
        self.sizes.get(id).copied()
    }

    /// Applies one event (see `Processes::apply` for what an error means: the replay goes on).
    pub fn apply(&mut self, ev: &Event) -> Result<(), StateError> {
        let parent_mm = match &ev.kind {
            EventKind::ProcessStart(s) => self.procs.mm_id(s.ppid),
            _ => None,
        };
        let r = self.procs.apply(ev);
        match &ev.kind {
            EventKind::ProcessStart(_) => {
                if let (Some(p), Some(c)) = (parent_mm, self.procs.mm_id(ev.pid))
                    && p != c
                    && let Some(pn) = self.notes.get(&p)
                {
                    let inherited = Notes {
                        copied: pn.copied.clone(),
                        snapshot: pn.snapshot,
                        calls: pn.calls,
                        ..Notes::default()
                    };
                    self.notes.insert(c, inherited);
                }
            }
            EventKind::AddressSpace(_) => {
                if r.is_ok()
                    && let Some(id) = self.procs.mm_id(ev.pid)
                {
                    self.notes.entry(id).or_default().snapshot = true;
                }
                self.forget_dead();
            }
            EventKind::ProcessExec(_) | EventKind::ProcessExit(_) => self.forget_dead(),
            EventKind::SmoAccess(a) => self.note_access(ev.pid, a),
            EventKind::SyscallExit(x) if !x.restarted() => {
                self.after_exit(ev, x);
                self.sizes_after(ev, x);
            }
            _ => {}
        }
        r
    }

    /// `apply` for a consumer that needs only address spaces and file sizes (to explain
    /// faults) and reads every event of large logs: events that change neither are skipped,
    /// and the calls that size files only size them. The fd tables are not kept, so a mapped
    /// file whose mmap event does not name its target is an unknown file.
    pub fn apply_lean(&mut self, ev: &Event) -> Result<(), StateError> {
        let whole = match &ev.kind {
            EventKind::SyscallEntry(e) => matches!(
                e.call.canonical(),
                Some(Sysno::fork | Sysno::vfork | Sysno::clone | Sysno::clone3)
            ),
            EventKind::SyscallExit(x) => {
                let call = x.call.canonical();
                if !(is_memory_call(call)
                    || is_i386_mmap2(x)
                    || matches!(
                        call,
                        Some(
                            Sysno::fork
                                | Sysno::vfork
                                | Sysno::clone
                                | Sysno::clone3
                                | Sysno::shmget
                        )
                    ))
                {
                    if !x.restarted() {
                        self.sizes_after(ev, x);
                    }
                    return Ok(());
                }
                true
            }
            EventKind::Signal(_)
            | EventKind::Lost(_)
            | EventKind::Action(_)
            | EventKind::Divergence(_) => false,
            EventKind::ProcessStart(_)
            | EventKind::ProcessExec(_)
            | EventKind::ProcessExit(_)
            | EventKind::ThreadStart(_)
            | EventKind::ThreadExit(_)
            | EventKind::AddressSpace(_)
            | EventKind::SmoAccess(_) => true,
        };
        if whole { self.apply(ev) } else { Ok(()) }
    }

    /// Drops the notes of address spaces no process uses any more.
    fn forget_dead(&mut self) {
        let live: std::collections::BTreeSet<MmId> = self
            .procs
            .pids()
            .filter_map(|p| self.procs.mm_id(p))
            .collect();
        self.notes.retain(|id, _| live.contains(id));
    }

    fn note_access(&mut self, pid: u32, a: &SmoAccess) {
        let (Some(id), Some(mm)) = (self.procs.mm_id(pid), self.procs.mm(pid)) else {
            self.unplaced += 1;
            return;
        };
        let placed = mm.vma_at(a.addr).and_then(|v| match &v.backing {
            Backing::Object { id: obj, .. } if same_object(obj, &a.object) => {
                Some((*obj, v.shared, v.offset_at(a.addr)?))
            }
            _ => None,
        });
        let Some((object, shared, at_addr)) = placed else {
            self.unplaced += 1;
            return;
        };
        // The part's virtual start: the address less the distance from the part's start.
        let start = i128::from(a.addr) - (i128::from(at_addr) - i128::from(a.offset));
        let end = start + i128::from(a.len);
        let (Ok(start), Ok(end)) = (u64::try_from(start), u64::try_from(end)) else {
            self.unplaced += 1;
            return;
        };
        if a.len == 0 {
            return;
        }
        let pieces = consistent_pieces(mm, start, end, &object, a.offset, shared);
        let pages: Vec<(u64, u64, u64)> = if !shared && a.access.writes() {
            let (ps, pe) = (page_down(start), page_up(end).unwrap_or(u64::MAX));
            let first = i128::from(a.offset) - i128::from(start - ps);
            match u64::try_from(first) {
                Ok(first) => consistent_pieces(mm, ps, pe, &object, first, shared),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let notes = self.notes.entry(id).or_default();
        for (s, e, off) in pieces {
            if a.access.reads() {
                notes.read.insert(s, e, object, off, shared);
            }
            if a.access.writes() {
                notes.written.insert(s, e, object, off, shared);
            }
        }
        for (s, e, off) in pages {
            notes.copied.insert(s, e, object, off, shared);
        }
    }

    /// A memory call: new mappings start with no notes, mremap moves them, and every note is
    /// checked against what the model now maps.
    fn after_exit(&mut self, ev: &Event, x: &SyscallExit) {
        let call = x.call.canonical();
        let mmap2 = is_i386_mmap2(x);
        if !is_memory_call(call) && !mmap2 {
            return;
        }
        let Some(id) = self.procs.mm_id(ev.pid) else {
            return;
        };
        let notes = self.notes.entry(id).or_default();
        notes.calls = true;
        let ok = !x.failed();
        let ret = x.ret as u64;
        let sets = |n: &mut Notes, f: &dyn Fn(&mut MarkSet)| {
            f(&mut n.read);
            f(&mut n.written);
            f(&mut n.copied);
        };
        match call {
            _ if ok && (mmap2 || call == Some(Sysno::mmap)) => {
                let len = if mmap2 {
                    arg(ev, "arg1").map(|l| l as u32 as u64)
                } else {
                    arg(ev, "length")
                };
                if let Some(len) = len.and_then(page_up) {
                    sets(notes, &|m| m.remove(ret, ret.saturating_add(len)));
                }
            }
            Some(Sysno::mremap) if ok => {
                let old = arg(ev, "old_addr");
                let old_size = arg(ev, "old_size").and_then(page_up);
                let new_size = arg(ev, "new_size").and_then(page_up);
                if let (Some(old), Some(old_len), Some(new_len)) = (old, old_size, new_size) {
                    if old_len == 0 {
                        // A second mapping of shared pages: new, nothing done through it.
                        sets(notes, &|m| m.remove(ret, ret.saturating_add(new_len)));
                    } else if ret != old {
                        let keep = old_len.min(new_len);
                        sets(notes, &|m| m.move_range(old, keep, ret, new_len));
                    }
                }
            }
            _ => {}
        }
        if let Some(mm) = self.procs.mm(ev.pid) {
            sets(notes, &|m| m.clip_to(mm));
        }
    }

    /// File sizes the log says.
    fn sizes_after(&mut self, ev: &Event, x: &SyscallExit) {
        let Some(call) = x.call.canonical() else {
            return;
        };
        let ok = !x.failed();
        match call {
            Sysno::ftruncate if ok => {
                if let (Some(f), Some(len)) = (fd_file(ev, "fd"), arg(ev, "length")) {
                    self.sizes.insert(f, len);
                }
            }
            Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat if ok => {
                let trunc =
                    call == Sysno::creat || arg(ev, "flags").is_some_and(|f| f & O_TRUNC != 0);
                if trunc && let Some(f) = fd_file(ev, "fd") {
                    self.sizes.insert(f, 0);
                }
            }
            Sysno::write
            | Sysno::writev
            | Sysno::pwrite64
            | Sysno::pwritev
            | Sysno::pwritev2
            | Sysno::copy_file_range
            | Sysno::sendfile
            | Sysno::splice
                if ok && x.ret > 0 && !self.sizes.is_empty() =>
            {
                let fd = match call {
                    Sysno::copy_file_range => "fd_out",
                    Sysno::sendfile => "out_fd",
                    Sysno::splice => "fd_out",
                    _ => "fd",
                };
                let Some(f) = fd_file(ev, fd) else {
                    return;
                };
                let Some(size) = self.sizes.get(&f).copied() else {
                    return;
                };
                let at = match call {
                    Sysno::write | Sysno::writev | Sysno::pwrite64 | Sysno::pwritev => {
                        ev.arg("offset").and_then(|v| match v.plain() {
                            Value::Absent => None,
                            v => num(v),
                        })
                    }
                    _ => None,
                };
                match at {
                    Some(at) => {
                        let end = at.saturating_add(x.ret as u64);
                        self.sizes.insert(f, size.max(end));
                    }
                    None => {
                        self.sizes.remove(&f);
                    }
                }
            }
            // Size changes vigil does not measure: forget what it knew.
            Sysno::truncate | Sysno::fallocate if ok => self.sizes.clear(),
            _ => {}
        }
    }

    /// The address space of a process now, with its notes; `None` for a process not alive.
    pub fn view(&self, pid: u32) -> Option<SpaceView> {
        let mm = self.procs.mm(pid)?;
        let notes = self.procs.mm_id(pid).and_then(|id| self.notes.get(&id));
        let empty = Notes::default();
        let n = notes.unwrap_or(&empty);
        let vmas = mm
            .merged()
            .into_iter()
            .map(|v| {
                let (read, written, copied) = if v.object().is_some() {
                    (
                        n.read.object_ranges(&v),
                        n.written.object_ranges(&v),
                        n.copied.object_ranges(&v),
                    )
                } else {
                    (Vec::new(), Vec::new(), Vec::new())
                };
                VmaView {
                    vma: v,
                    read,
                    written,
                    copied,
                }
            })
            .collect();
        Some(SpaceView {
            pid,
            vmas,
            snapshot: n.snapshot,
            calls: n.calls,
        })
    }

    /// How many separate ranges are noted for a process (for tests and limits).
    pub fn noted_ranges(&self, pid: u32) -> usize {
        self.procs
            .mm_id(pid)
            .and_then(|id| self.notes.get(&id))
            .map_or(0, |n| n.read.len() + n.written.len() + n.copied.len())
    }

    /// Explains a SIGSEGV/SIGBUS the process got now against its address space (`None` when
    /// the signal carries no fault, or the process is unknown).
    pub fn explain_fault(
        &self,
        pid: u32,
        signal: &SignalDelivery,
    ) -> Option<crate::fault::FaultExplanation> {
        let fault = signal.fault.as_ref()?;
        let mm = self.procs.mm(pid)?;
        Some(crate::fault::explain(
            mm,
            signal.signal,
            signal.code,
            fault,
            |id| self.file_size(id),
        ))
    }
}

/// The moment `maps_at` stops at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// The end of the log, or the process's exit (its last state) if it exited.
    End,
    /// Just after the event with this seq (or the last one before it, in a log with gaps).
    Seq(u64),
    /// The last event at or before this time (nanoseconds since the epoch).
    Time(u64),
    /// The last event at or before this long (nanoseconds) after the log's first event.
    SinceStart(u64),
}

/// Where a log starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogSpan {
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// One life of a pid in a log (pids are reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Life {
    /// Its first event (its start, when the log has it).
    pub start_seq: u64,
    pub start_ns: u64,
    /// Its exit: seq, time, status.
    pub exit: Option<(u64, u64, ExitStatus)>,
    /// The log has events about its memory (a snapshot, memory calls), at any time.
    pub memory_events: bool,
}

/// Why `maps_at` has no address space to show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapsAtError {
    #[error("the log has no events")]
    EmptyLog,
    #[error("no process {pid} in the log")]
    PidNotInLog { pid: u32, span: LogSpan },
    #[error("{moment:?} is outside the log (seq {}..={})", span.first_seq, span.last_seq)]
    OutsideLog { moment: Moment, span: LogSpan },
    #[error("process {pid} had not started at seq {at_seq}: it starts at seq {}", life.start_seq)]
    NotStarted { pid: u32, at_seq: u64, life: Life },
    #[error("process {pid} had exited at seq {at_seq}")]
    Exited {
        pid: u32,
        at_seq: u64,
        life: Life,
        /// A later process with the same pid, if any.
        next: Option<Life>,
    },
    #[error("the log has no address-space events for process {pid}")]
    NoAddressSpace { pid: u32 },
}

/// A process's address space at a moment of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsAt {
    pub view: SpaceView,
    /// The last event applied, and its time.
    pub seq: u64,
    pub time_ns: u64,
    /// The life shown (its exit, when the view is its last state before it).
    pub life: Life,
    /// The view is the process's state just before its exit event (the default moment).
    pub at_exit: bool,
    pub span: LogSpan,
    /// Events the model could not apply up to the moment (how many, and the first few).
    pub errors: u64,
    pub first_errors: Vec<(u64, StateError)>,
    /// Access events the model could not place.
    pub unplaced: u64,
}

/// How many apply errors `MapsAt` keeps.
const KEPT_ERRORS: usize = 5;

/// Replays `events` (in log order) and returns process `pid`'s address space at `at`.
pub fn maps_at(
    events: impl IntoIterator<Item = Event>,
    pid: u32,
    at: Moment,
) -> Result<MapsAt, MapsAtError> {
    let mut replay = Replay::new();
    let mut span: Option<LogSpan> = None;
    let mut lives: Vec<Life> = Vec::new();
    let mut open_life = false;
    let mut errors = 0u64;
    let mut first_errors = Vec::new();
    // The moment is passed: nothing more is applied.
    let mut passed = false;
    let mut last_applied: Option<(u64, u64)> = None;
    let mut taken: Option<(SpaceView, u64, u64, bool)> = None;
    for ev in events {
        let sp = span.get_or_insert(LogSpan {
            first_seq: ev.seq,
            last_seq: ev.seq,
            first_ns: ev.time_ns,
            last_ns: ev.time_ns,
        });
        sp.last_seq = sp.last_seq.max(ev.seq);
        sp.last_ns = sp.last_ns.max(ev.time_ns);
        let first_ns = sp.first_ns;
        let exit_of_pid = match &ev.kind {
            EventKind::ProcessExit(x) if ev.pid == pid => Some(x.status),
            _ => None,
        };
        if ev.pid == pid {
            if matches!(ev.kind, EventKind::ProcessStart(_)) || !open_life {
                lives.push(Life {
                    start_seq: ev.seq,
                    start_ns: ev.time_ns,
                    exit: None,
                    memory_events: false,
                });
                open_life = true;
            }
            if let Some(l) = lives.last_mut() {
                l.memory_events |= is_address_space_event(&ev);
            }
        }
        if !passed {
            let beyond = match at {
                Moment::End => false,
                Moment::Seq(s) => ev.seq > s,
                Moment::Time(t) => ev.time_ns > t,
                Moment::SinceStart(d) => ev.time_ns > first_ns.saturating_add(d),
            };
            if beyond {
                passed = true;
                if let (Some(v), Some((s, t))) = (replay.view(pid), last_applied) {
                    taken = Some((v, s, t, false));
                }
            } else {
                if at == Moment::End
                    && exit_of_pid.is_some()
                    && let (Some(v), Some((s, t))) = (replay.view(pid), last_applied)
                {
                    // Its last state, before the exit takes it away.
                    taken = Some((v, s, t, true));
                }
                if let Err(e) = replay.apply(&ev) {
                    errors += 1;
                    if first_errors.len() < KEPT_ERRORS {
                        first_errors.push((ev.seq, e));
                    }
                }
                last_applied = Some((ev.seq, ev.time_ns));
            }
        }
        if let Some(status) = exit_of_pid {
            if let Some(l) = lives.last_mut() {
                l.exit = Some((ev.seq, ev.time_ns, status));
            }
            open_life = false;
        }
    }
    let Some(span) = span else {
        return Err(MapsAtError::EmptyLog);
    };
    let outside = match at {
        Moment::End => false,
        Moment::Seq(s) => s < span.first_seq || s > span.last_seq,
        Moment::Time(t) => t < span.first_ns || t > span.last_ns,
        Moment::SinceStart(d) => span.first_ns.saturating_add(d) > span.last_ns,
    };
    if outside {
        return Err(MapsAtError::OutsideLog { moment: at, span });
    }
    if lives.is_empty() {
        return Err(MapsAtError::PidNotInLog { pid, span });
    }
    if !passed
        && at != Moment::End
        && let (Some(v), Some((s, t))) = (replay.view(pid), last_applied)
    {
        taken = Some((v, s, t, false));
    }
    if at == Moment::End
        && let (Some(v), Some((s, t))) = (replay.view(pid), last_applied)
    {
        // Still alive at the end of the log.
        taken = Some((v, s, t, false));
    }
    let at_seq = match at {
        Moment::Seq(s) => s,
        _ => last_applied.map_or(span.first_seq, |(s, _)| s),
    };
    let Some((view, seq, time_ns, at_exit)) = taken else {
        // Not alive at that moment: the life before it had ended, or the next had not begun.
        let next = lives.iter().find(|l| l.start_seq > at_seq).copied();
        return match lives.iter().rev().find(|l| l.start_seq <= at_seq) {
            Some(l) if l.exit.is_some() => Err(MapsAtError::Exited {
                pid,
                at_seq,
                life: *l,
                next,
            }),
            _ => match next {
                Some(life) => Err(MapsAtError::NotStarted { pid, at_seq, life }),
                None => Err(MapsAtError::PidNotInLog { pid, span }),
            },
        };
    };
    let Some(life) = lives
        .iter()
        .rev()
        .find(|l| l.start_seq <= seq)
        .or(lives.first())
        .copied()
    else {
        return Err(MapsAtError::PidNotInLog { pid, span });
    };
    if !view.snapshot && !view.calls && !life.memory_events {
        return Err(MapsAtError::NoAddressSpace { pid });
    }
    Ok(MapsAt {
        view,
        seq,
        time_ns,
        life,
        at_exit,
        span,
        errors,
        first_errors,
        unplaced: replay.unplaced(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED};
    use std::sync::Arc;
    use vigil_event::{
        Args, Creds, Fd, MemAccess, ProcessExec, ProcessExit, ProcessStart, SignalFault, SmoVia,
        Str, SyscallId,
    };

    const P: u64 = PAGE_SIZE;
    const B: u64 = 0x7000_0000_0000;
    const FILE: ObjectId = ObjectId::File { dev: 7, ino: 42 };

    /// A VMA in pages from B, its parts read and written, its pages copied.
    type Row = (u64, u64, Vec<Range<u64>>, Vec<Range<u64>>, u64);

    /// A log being written and replayed as it goes.
    struct L {
        r: Replay,
        seq: u64,
        events: Vec<Event>,
    }

    impl L {
        fn new() -> L {
            let mut l = L {
                r: Replay::new(),
                seq: 0,
                events: Vec::new(),
            };
            l.ev(10, start(1, 0));
            l
        }

        fn ev(&mut self, pid: u32, kind: EventKind) {
            self.seq += 1;
            let e = Event {
                seq: self.seq,
                time_ns: 1000 * self.seq,
                pid,
                tid: pid,
                kind,
            };
            self.r.apply(&e).unwrap();
            self.events.push(e);
        }

        fn call(&mut self, pid: u32, name: &str, args: &[(&str, Value)], ret: i64) {
            let call = SyscallId::from_name(name).unwrap();
            let sig = call.signature();
            let n = sig.args.len() + sig.outputs.len();
            let mut a: Args = (0..n).map(|_| Value::Absent).collect();
            for (k, v) in args {
                a[sig.field_index(k).unwrap()] = v.clone();
            }
            self.ev(
                pid,
                EventKind::SyscallExit(SyscallExit {
                    call,
                    entry_seq: 0,
                    ret,
                    args: a,
                }),
            );
        }

        /// mmap of the file (ino 42) at `addr`, `pages` long from page `first`.
        fn map_file(&mut self, pid: u32, addr: u64, pages: u64, first: u64, shared: bool) {
            let flags = if shared { MAP_SHARED } else { MAP_PRIVATE } | MAP_FIXED;
            self.call(
                pid,
                "mmap",
                &[
                    ("addr", u(addr)),
                    ("length", u(pages * P)),
                    ("prot", u(3)),
                    ("flags", u(flags)),
                    ("fd", file_fd()),
                    ("offset", u(first * P)),
                ],
                addr as i64,
            );
        }

        fn mprotect(&mut self, pid: u32, addr: u64, len: u64, prot: u64) {
            self.call(
                pid,
                "mprotect",
                &[("addr", u(addr)), ("length", u(len)), ("prot", u(prot))],
                0,
            );
        }

        fn access(&mut self, pid: u32, access: MemAccess, addr: u64, offset: u64, len: u64) {
            let private = self
                .r
                .processes()
                .mm(pid)
                .and_then(|m| m.vma_at(addr))
                .is_some_and(|v| !v.shared);
            self.ev(
                pid,
                EventKind::SmoAccess(SmoAccess {
                    access,
                    object: SmoObject {
                        kind: SmoKind::File,
                        dev: 7,
                        ino: 42,
                        path: Str::from("/data"),
                    },
                    offset,
                    len,
                    addr,
                    ip: 0x401000,
                    via: SmoVia::Fault,
                    private,
                    map_offset: 0,
                    map_len: 0,
                }),
            );
        }

        /// Each VMA: (start page from B, end page, read, written, copied) in pages or bytes.
        fn view(&self, pid: u32) -> Vec<Row> {
            self.r
                .view(pid)
                .unwrap()
                .vmas
                .iter()
                .map(|v| {
                    (
                        (v.vma.start - B) / P,
                        (v.vma.end - B) / P,
                        v.read.clone(),
                        v.written.clone(),
                        v.copied_pages(),
                    )
                })
                .collect()
        }
    }

    fn u(x: u64) -> Value {
        Value::Uint(x)
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

    fn start(ppid: u32, flags: u64) -> EventKind {
        EventKind::ProcessStart(ProcessStart {
            ppid,
            exe: Str::from("/bin/x"),
            argv: Arc::from(Vec::new()),
            creds: Creds::default(),
            clone_flags: flags,
        })
    }

    fn exit(signal: Option<i32>) -> EventKind {
        EventKind::ProcessExit(ProcessExit {
            status: match signal {
                Some(signal) => ExitStatus::Signal {
                    signal,
                    core_dumped: false,
                },
                None => ExitStatus::Code(0),
            },
        })
    }

    fn one(r: Range<u64>) -> Vec<Range<u64>> {
        vec![r]
    }

    fn pages(a: u64, b: u64) -> Range<u64> {
        a * P..b * P
    }

    #[test]
    fn accesses_are_noted_in_object_offsets_and_merged() {
        let mut l = L::new();
        l.map_file(10, B, 4, 2, true); // file pages 2..6
        l.access(10, MemAccess::Read, B + P + 100, 3 * P, P); // page mode: file page 3
        l.access(10, MemAccess::Read, B + 2 * P, 4 * P, P);
        l.access(10, MemAccess::ReadWrite, B + 3 * P + 8, 5 * P + 8, 4); // exact bytes
        l.access(10, MemAccess::Write, B + 3 * P + 12, 5 * P + 12, 4);
        assert_eq!(
            l.view(10),
            vec![(
                0,
                4,
                vec![pages(3, 5), 5 * P + 8..5 * P + 12],
                one(5 * P + 8..5 * P + 16),
                0
            )]
        );
        // Shared: nothing is copied. An access the model cannot place is counted.
        l.access(10, MemAccess::Read, B + 10 * P, 0, P);
        assert_eq!(l.r.unplaced(), 1);
        assert_eq!(l.r.noted_ranges(10), 3);
    }

    #[test]
    fn mprotect_splits_keep_the_parts_and_a_rejoin_shows_them_together() {
        let mut l = L::new();
        l.map_file(10, B, 4, 0, true);
        l.access(10, MemAccess::Read, B + P, P, P);
        l.access(10, MemAccess::Write, B + 2 * P, 2 * P, 2 * P);
        l.mprotect(10, B + P, P, 1);
        assert_eq!(
            l.view(10),
            vec![
                (0, 1, vec![], vec![], 0),
                (1, 2, vec![pages(1, 2)], vec![], 0),
                (2, 4, vec![], vec![pages(2, 4)], 0),
            ]
        );
        l.mprotect(10, B, 4 * P, 3);
        assert_eq!(
            l.view(10),
            vec![(0, 4, vec![pages(1, 2)], vec![pages(2, 4)], 0)]
        );
    }

    #[test]
    fn munmap_drops_and_a_new_mapping_starts_clean() {
        let mut l = L::new();
        l.map_file(10, B, 4, 0, true);
        l.access(10, MemAccess::Read, B, 0, 4 * P); // vma granularity: the whole mapping
        l.call(10, "munmap", &[("addr", u(B + P)), ("length", u(P))], 0);
        assert_eq!(
            l.view(10),
            vec![
                (0, 1, vec![pages(0, 1)], vec![], 0),
                (2, 4, vec![pages(2, 4)], vec![], 0)
            ]
        );
        // The same file page mapped again where it was: a new mapping, nothing done through it.
        l.map_file(10, B + P, 1, 1, true);
        assert_eq!(
            l.view(10),
            vec![(0, 4, vec![pages(0, 1), pages(2, 4)], vec![], 0)]
        );
        // MAP_FIXED over part of it replaces that part.
        l.call(
            10,
            "mmap",
            &[
                ("addr", u(B + 3 * P)),
                ("length", u(P)),
                ("prot", u(3)),
                ("flags", u(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)),
                ("fd", Value::Fd(Fd::new(-1, None))),
                ("offset", u(0)),
            ],
            (B + 3 * P) as i64,
        );
        assert_eq!(
            l.view(10),
            vec![
                (0, 3, vec![pages(0, 1), pages(2, 3)], vec![], 0),
                (3, 4, vec![], vec![], 0)
            ]
        );
    }

    #[test]
    fn mremap_moves_the_parts_and_a_shrink_drops_the_tail() {
        let mut l = L::new();
        l.map_file(10, B, 3, 0, true);
        l.access(10, MemAccess::Read, B, 0, P);
        l.access(10, MemAccess::Write, B + 2 * P, 2 * P, P);
        let new = B + 100 * P;
        l.call(
            10,
            "mremap",
            &[
                ("old_addr", u(B)),
                ("old_size", u(3 * P)),
                ("new_size", u(4 * P)),
                ("flags", u(1)),
                ("new_addr", u(0)),
            ],
            new as i64,
        );
        assert_eq!(
            l.view(10),
            vec![(100, 104, vec![pages(0, 1)], vec![pages(2, 3)], 0)]
        );
        // Shrunk in place: the written page is gone with the tail.
        l.call(
            10,
            "mremap",
            &[
                ("old_addr", u(new)),
                ("old_size", u(4 * P)),
                ("new_size", u(2 * P)),
                ("flags", u(0)),
                ("new_addr", u(0)),
            ],
            new as i64,
        );
        assert_eq!(l.view(10), vec![(100, 102, vec![pages(0, 1)], vec![], 0)]);
        // Moved onto a fixed place over another noted mapping of the same file pages: what
        // was noted there goes with what the kernel unmapped first.
        l.map_file(10, B, 2, 0, true);
        l.access(10, MemAccess::Write, B, 0, 2 * P);
        l.call(
            10,
            "mremap",
            &[
                ("old_addr", u(new)),
                ("old_size", u(2 * P)),
                ("new_size", u(2 * P)),
                ("flags", u(3)),
                ("new_addr", u(B)),
            ],
            B as i64,
        );
        assert_eq!(l.view(10), vec![(0, 2, vec![pages(0, 1)], vec![], 0)]);
    }

    #[test]
    fn private_writes_copy_pages_and_fork_inherits_the_copies_only() {
        let mut l = L::new();
        l.map_file(10, B, 4, 0, false);
        l.access(10, MemAccess::Read, B, 0, P);
        l.access(10, MemAccess::Write, B + P + 16, P + 16, 8); // exact bytes: page 1 copied
        l.access(10, MemAccess::Write, B + 3 * P, 3 * P, P);
        let v = l.r.view(10).unwrap();
        assert_eq!(v.vmas[0].copied, vec![pages(1, 2), pages(3, 4)]);
        assert_eq!(v.vmas[0].written, vec![P + 16..P + 24, pages(3, 4)]);
        assert!(!v.vmas[0].is_smo());
        // fork: the child has the copies (its memory holds them), not the parent's accesses.
        l.ev(20, start(10, 17));
        let c = l.r.view(20).unwrap();
        assert_eq!(c.vmas[0].copied, vec![pages(1, 2), pages(3, 4)]);
        assert!(c.vmas[0].read.is_empty() && c.vmas[0].written.is_empty());
        assert!(c.calls, "the child's layout came from recorded calls");
        // Each side's later writes are its own.
        l.access(20, MemAccess::Write, B + 2 * P, 2 * P, P);
        assert_eq!(l.r.view(20).unwrap().vmas[0].copied_pages(), 3);
        assert_eq!(l.r.view(10).unwrap().vmas[0].copied_pages(), 2);
        // A CLONE_VM child shares the parent's space and its notes.
        l.ev(30, start(10, crate::procs::CLONE_VM));
        l.access(30, MemAccess::Write, B, 0, P);
        assert_eq!(l.r.view(10).unwrap().vmas[0].copied_pages(), 3);
    }

    #[test]
    fn exec_replaces_the_space_and_its_notes() {
        let mut l = L::new();
        l.map_file(10, B, 2, 0, true);
        l.access(10, MemAccess::Read, B, 0, P);
        l.ev(
            10,
            EventKind::ProcessExec(ProcessExec {
                exe: Str::from("/bin/y"),
                argv: Arc::from(Vec::new()),
                creds: Creds::default(),
                dev: 0,
                ino: 0,
            }),
        );
        let v = l.r.view(10).unwrap();
        assert!(v.vmas.is_empty() && !v.snapshot && !v.calls);
        let snap = crate::maps::parse_maps(&format!(
            "{B:x}-{:x} rw-s 00000000 00:07 42 /data\n",
            B + 2 * P
        ))
        .unwrap()
        .snapshot();
        l.ev(10, EventKind::AddressSpace(snap));
        let v = l.r.view(10).unwrap();
        assert!(v.snapshot && !v.calls);
        assert_eq!(l.view(10), vec![(0, 2, vec![], vec![], 0)]);
        assert_eq!(l.r.notes.len(), 1, "the old space's notes are gone");
    }

    #[test]
    fn a_bus_error_past_a_truncated_file_is_explained_with_its_size() {
        let mut l = L::new();
        l.call(10, "ftruncate", &[("fd", file_fd()), ("length", u(P))], 0);
        l.map_file(10, B, 3, 0, true);
        assert_eq!(l.r.file_size(&FILE), Some(P));
        let sig = SignalDelivery {
            signal: crate::fault::SIGBUS,
            code: 2,
            sender_pid: 0,
            sender_uid: 0,
            fault: Some(SignalFault {
                addr: B + 2 * P + 4,
                ip: 0x401000,
                access: vigil_event::FaultAccess::Read,
            }),
        };
        let e = l.r.explain_fault(10, &sig).unwrap();
        assert_eq!(
            e.kind,
            crate::FaultKind::BeyondEndOfFile {
                offset: 2 * P + 4,
                size: P
            }
        );
        // A write at a known offset grows it; one at an unknown offset forgets it.
        l.call(
            10,
            "pwrite64",
            &[
                ("fd", file_fd()),
                ("count", u(10)),
                ("offset", Value::Int(3 * P as i64)),
            ],
            10,
        );
        assert_eq!(l.r.file_size(&FILE), Some(3 * P + 10));
        l.call(10, "write", &[("fd", file_fd()), ("count", u(10))], 10);
        assert_eq!(l.r.file_size(&FILE), None);
        assert_eq!(
            l.r.explain_fault(10, &sig).unwrap().kind,
            crate::FaultKind::FileBusError
        );
        assert!(
            l.r.explain_fault(
                10,
                &SignalDelivery {
                    fault: None,
                    ..sig.clone()
                }
            )
            .is_none()
        );
    }

    #[test]
    fn a_lean_replay_keeps_the_same_address_spaces_and_sizes() {
        let mut l = L::new();
        l.call(10, "ftruncate", &[("fd", file_fd()), ("length", u(P))], 0);
        l.map_file(10, B, 4, 0, true);
        l.mprotect(10, B + P, P, 1);
        l.access(10, MemAccess::Write, B, 0, P);
        l.call(10, "openat", &[("fd", file_fd()), ("flags", u(0))], 5);
        l.ev(20, start(10, 17));
        l.call(20, "munmap", &[("addr", u(B)), ("length", u(P))], 0);
        l.ev(10, exit(None));
        let mut lean = Replay::new();
        for e in &l.events {
            lean.apply_lean(e).unwrap();
        }
        assert_eq!(lean.view(20), l.r.view(20));
        assert!(lean.view(10).is_none());
        assert_eq!(lean.file_size(&FILE), Some(P));
        assert!(
            lean.processes().files(20).unwrap().iter().next().is_none(),
            "no fd tables"
        );
    }

    fn snap_event() -> EventKind {
        EventKind::AddressSpace(
            crate::maps::parse_maps("00400000-00401000 r-xp 00000000 fd:01 5 /bin/prog\n")
                .unwrap()
                .snapshot(),
        )
    }

    /// A log: pid 10 starts (1), gets a snapshot (2), maps (3), pid 20 starts (4), 10 exits (5),
    /// 20 exits (6), a second pid 10 starts (7), exits (8).
    fn lives_log() -> Vec<Event> {
        let mut l = L::new();
        l.ev(10, snap_event());
        l.map_file(10, B, 1, 0, true);
        l.ev(20, start(1, 0));
        l.ev(10, exit(Some(11)));
        l.ev(20, exit(None));
        l.ev(10, start(1, 0));
        l.ev(10, exit(None));
        l.events
    }

    #[test]
    fn maps_at_a_seq_a_time_and_the_exit() {
        let log = lives_log();
        let m = maps_at(log.clone(), 10, Moment::Seq(3)).unwrap();
        assert_eq!((m.seq, m.view.vmas.len(), m.at_exit), (3, 2, false));
        let m = maps_at(log.clone(), 10, Moment::Seq(2)).unwrap();
        assert_eq!(m.view.vmas.len(), 1);
        // Times: the last event at or before.
        let m = maps_at(log.clone(), 10, Moment::Time(3500)).unwrap();
        assert_eq!(m.seq, 3);
        let m = maps_at(log.clone(), 10, Moment::SinceStart(1500)).unwrap();
        assert_eq!(m.seq, 2);
        // The default: the last life of pid 10 ends with an empty space (it has no events
        // about memory: its parent was not traced), the first one at its exit.
        let m = maps_at(log.clone(), 20, Moment::End).unwrap_err();
        assert_eq!(m, MapsAtError::NoAddressSpace { pid: 20 });
        let mut first_life_only = log.clone();
        first_life_only.truncate(6);
        let m = maps_at(first_life_only, 10, Moment::End).unwrap();
        assert!(m.at_exit);
        assert_eq!(m.seq, 4, "the state just before its exit");
        assert_eq!(m.view.vmas.len(), 2);
        assert!(matches!(
            m.life.exit,
            Some((5, _, ExitStatus::Signal { signal: 11, .. }))
        ));
    }

    #[test]
    fn maps_at_refuses_what_it_cannot_show() {
        let log = lives_log();
        let span = LogSpan {
            first_seq: 1,
            last_seq: 8,
            first_ns: 1000,
            last_ns: 8000,
        };
        assert_eq!(
            maps_at(log.clone(), 99, Moment::End),
            Err(MapsAtError::PidNotInLog { pid: 99, span })
        );
        for m in [
            Moment::Seq(0),
            Moment::Seq(9),
            Moment::Time(999),
            Moment::Time(8001),
        ] {
            assert_eq!(
                maps_at(log.clone(), 10, m),
                Err(MapsAtError::OutsideLog { moment: m, span })
            );
        }
        assert_eq!(
            maps_at(log.clone(), 10, Moment::SinceStart(7001)),
            Err(MapsAtError::OutsideLog {
                moment: Moment::SinceStart(7001),
                span
            })
        );
        // pid 20 before its start; pid 10 between its two lives.
        match maps_at(log.clone(), 20, Moment::Seq(3)) {
            Err(MapsAtError::NotStarted {
                at_seq: 3, life, ..
            }) => {
                assert_eq!(life.start_seq, 4)
            }
            other => panic!("{other:?}"),
        }
        match maps_at(log.clone(), 10, Moment::Seq(6)) {
            Err(MapsAtError::Exited {
                at_seq: 6,
                life,
                next,
                ..
            }) => {
                assert_eq!(life.exit.map(|e| e.0), Some(5));
                assert_eq!(next.map(|n| n.start_seq), Some(7));
            }
            other => panic!("{other:?}"),
        }
        // At its exit event itself it is gone.
        assert!(matches!(
            maps_at(log.clone(), 10, Moment::Seq(5)),
            Err(MapsAtError::Exited { .. })
        ));
        assert_eq!(
            maps_at(Vec::new(), 10, Moment::End),
            Err(MapsAtError::EmptyLog)
        );
        // The second pid 10 at its exit: alive, but nothing about its memory in the log.
        assert_eq!(
            maps_at(log, 10, Moment::End),
            Err(MapsAtError::NoAddressSpace { pid: 10 })
        );
    }
}
