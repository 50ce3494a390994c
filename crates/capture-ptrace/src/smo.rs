//! Shared-memory objects (docs/DESIGN.md parts 2 and 4, issue 11): what a traced process loads
//! from and stores to a memory-mapped file, SysV segment or shared anonymous mapping, seen
//! page by page through protection faults, with a coherence protocol across processes.
//!
//! Every mapping a traced process has of a shared-memory object (SMO) is protected PROT_NONE
//! in the tracee (an mprotect vigil injects). A load or store there faults; the recorder
//! classifies the SIGSEGV before it is delivered (own.rs), decodes the faulting instruction
//! (tracee's iced-x86 decoding: a load is a read, a store a write, a read-modify-write both)
//! and *grants* the part: readable for a read, writable for a write, always within the
//! program's own protection. The access proceeds, and the event says who touched which part.
//!
//! The protocol, over each object's byte ranges: readable by many or writable by one. A write
//! grant first takes every other process's grant of the same bytes away (an mprotect injected
//! in that process, interrupted for it), a read grant takes a writer's away. So a read after a
//! write in another process always faults again and is a new event after the write. A slice
//! ends every grant of a process: at each of its syscall stops, and `slice_ns` after the
//! oldest one (a timer interrupts the wait). In one slice a run of reads costs one fault, a run
//! of writes one, reads then writes two: the source documents' cost model.
//!
//! This module is the protocol's state and decisions (no ptrace): which ranges to lift or
//! protect in which process, and the events. smo_ops.rs carries them out in the tracees.

use std::collections::{BTreeSet, HashMap};
use vigil_event::{MemAccess, SmoAccess, SmoKind, SmoObject, SmoVia};
use vigil_procstate::Processes;
use vigil_procstate::mem::{Backing, ObjectId, Vma};

pub const PAGE: u64 = 4096;
/// Where vigil asks the kernel to place shared mappings when a seccomp filter must find the
/// buffers of read(2)/write(2)... that point into them by their high bits (the selection does
/// not trap those calls anyway): 128 GiB, high words 0x6ee0..0x6f00.
pub const WINDOW_START: u64 = vigil_event::memory::SMO_WINDOW_START;
pub const WINDOW_END: u64 = vigil_event::memory::SMO_WINDOW_END;

pub use vigil_event::memory::SmoMode;

/// Read access or write access granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read,
    Write,
}

/// Addresses of one process vigil lifted (the program's protection applies there until the
/// grant ends).
#[derive(Clone, Debug)]
pub struct Grant {
    pub start: u64,
    pub end: u64,
    pub level: Level,
    pub obj: ObjectId,
    /// Object offsets the grant covers.
    pub off_start: u64,
    pub off_end: u64,
}

/// Per process.
#[derive(Clone, Debug, Default)]
pub struct ProcSmo {
    pub grants: Vec<Grant>,
    /// When the oldest grant was made (0: none).
    pub since_ns: u64,
    /// Pages of private mappings the process wrote (copied on write): its own from then on,
    /// never protected again.
    pub copied: BTreeSet<u64>,
    /// Next address to offer the kernel in the window.
    pub window_next: u64,
    /// Mappings left unmonitored, reported once each (start address).
    pub unmonitored: BTreeSet<u64>,
    /// It has monitored mappings (kept by `Tracer::register_ranges`).
    pub has_smo: bool,
    /// A `syscall` instruction of the process that injected calls run at (found once per
    /// address space: looking for one reads /proc/PID/maps and scans code).
    pub site: Option<u64>,
}

/// A range to protect or lift in one process: `(start, end, prot)`.
pub type ProtOp = (u64, u64, i32);

/// What to do about a fault.
#[derive(Debug)]
pub enum FaultPlan {
    /// Not vigil's: the program's own fault (its protection does not allow the access, or the
    /// page is not one vigil protects). Deliver it.
    NotOurs,
    /// A page vigil protected in a mapping it no longer monitors: give the mapping its own
    /// protection back and let the access run again.
    Release(ProtOp),
    /// Already granted at this level (another thread of the process faulted first): resume.
    Already,
    /// Lift these ranges in this process (after `revoke` in the others), then the event.
    Grant {
        here: Vec<ProtOp>,
        revoke: Vec<(i32, Vec<ProtOp>)>,
        event: SmoAccess,
    },
    /// minipage: lift `lift`, single-step, protect it again; `event` gets the exact bytes.
    Step { lift: ProtOp, event: SmoAccess },
}

/// The monitor's state.
#[derive(Debug)]
pub struct Smo {
    pub mode: SmoMode,
    pub slice_ns: u64,
    /// Whether shared mappings are placed in the window (read/write are not all trapped).
    pub use_window: bool,
    /// Every call of WINDOW_TRAPS is trapped whatever its buffer (the selection has them):
    /// a private mapping outside the window can be monitored too (its pages are rarely futex
    /// words, the one kind of kernel access then left untrapped).
    pub buffers_trapped: bool,
    procs: HashMap<i32, ProcSmo>,
    /// Objects some traced process mapped shared: their private mappings are monitored too
    /// (their loads see the shared writers' stores), for as long as the recording lasts.
    shared: std::collections::HashSet<ObjectId>,
    /// Faults and kernel accesses handled, for the summary.
    pub faults: u64,
}

fn prot_bits(v: &Vma) -> i32 {
    v.prot.bits() as i32
}

/// The SMO object a mapping shows, as events name it.
pub fn object_of(v: &Vma) -> Option<SmoObject> {
    let Backing::Object { id, path, .. } = &v.backing else {
        return None;
    };
    let (kind, dev, ino) = match *id {
        ObjectId::File { dev, ino } => (SmoKind::File, dev, ino),
        ObjectId::SharedAnon(ino) => (SmoKind::SharedAnon, 0, ino),
        ObjectId::SysV(id) => (SmoKind::SysvShm, 0, id as u64),
    };
    Some(SmoObject {
        kind,
        dev,
        ino,
        path: path.clone(),
    })
}

impl Smo {
    pub fn new(mode: SmoMode, slice_ns: u64, use_window: bool) -> Smo {
        Smo {
            mode,
            slice_ns,
            use_window,
            buffers_trapped: false,
            procs: HashMap::new(),
            shared: Default::default(),
            faults: 0,
        }
    }

    pub fn on(&self) -> bool {
        self.mode != SmoMode::Off
    }

    pub fn proc_mut(&mut self, pid: i32) -> &mut ProcSmo {
        self.procs.entry(pid).or_insert_with(|| ProcSmo {
            window_next: WINDOW_START,
            ..ProcSmo::default()
        })
    }

    /// Whether the process has monitored mappings: only then do its syscalls' buffers matter.
    pub fn has_smo(&self, pid: i32) -> bool {
        self.procs.get(&pid).is_some_and(|p| p.has_smo)
    }

    pub fn has_grants(&self, pid: i32) -> bool {
        self.procs.get(&pid).is_some_and(|p| !p.grants.is_empty())
    }

    /// A fork: the child inherits the window position and the copied pages (its private
    /// pages are copies of the parent's); grants are not inherited (the child's first stop
    /// protects everything).
    pub fn fork(&mut self, parent: i32, child: i32) {
        let (next, copied, site) = match self.procs.get(&parent) {
            Some(p) => (p.window_next, p.copied.clone(), p.site),
            None => (WINDOW_START, BTreeSet::new(), None),
        };
        let c = self.proc_mut(child);
        c.window_next = next;
        c.copied = copied;
        c.site = site;
        c.grants.clear();
    }

    /// exec or exit: the address space is gone.
    pub fn forget(&mut self, pid: i32) {
        self.procs.remove(&pid);
    }

    /// Whether `v` (a mapping of process `pid`) is monitored: shared mappings of an object,
    /// and private ones of an object some traced process maps shared (their loads see the
    /// writers' stores until they copy the page), in the window when the window is needed.
    pub fn monitored(&self, v: &Vma) -> bool {
        let Some(id) = v.object() else {
            return false;
        };
        if !memory_object(v) {
            return false;
        }
        if self.use_window
            && !(v.start >= WINDOW_START && v.end <= WINDOW_END)
            && (v.shared || !self.buffers_trapped)
        {
            return false;
        }
        v.shared || self.shared.contains(id)
    }

    /// The pages of `[s, e)` process `pid` copied are no longer known so (a memory call changed
    /// what is mapped there).
    pub fn forget_copies(&mut self, pid: i32, s: u64, e: u64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            let gone: Vec<u64> = p.copied.range(s..e).copied().collect();
            for c in gone {
                p.copied.remove(&c);
            }
        }
    }

    /// Whether some traced process mapped `id` shared (its parts are in the log).
    pub fn is_shared(&self, id: &ObjectId) -> bool {
        self.shared.contains(id)
    }

    /// Every grant of `[s, e)` of object `id` ends (the kernel wrote those bytes): the ranges
    /// to protect again, per process.
    pub fn revoke_range(&mut self, id: &ObjectId, s: u64, e: u64) -> Vec<(i32, Vec<ProtOp>)> {
        self.take_grants(None, |g| g.obj == *id && g.off_start < e && s < g.off_end)
    }

    /// Ends the grants `take` picks in every process but `except`: the ranges to protect
    /// again, merged, per process.
    fn take_grants(
        &mut self,
        except: Option<i32>,
        take: impl Fn(&Grant) -> bool,
    ) -> Vec<(i32, Vec<ProtOp>)> {
        let mut out = Vec::new();
        for (&pid, p) in self.procs.iter_mut() {
            if Some(pid) == except {
                continue;
            }
            let mut ops = Vec::new();
            p.grants.retain(|g| {
                let t = take(g);
                if t {
                    ops.push((g.start, g.end, libc::PROT_NONE));
                }
                !t
            });
            if p.grants.is_empty() {
                p.since_ns = 0;
            }
            if !ops.is_empty() {
                merge(&mut ops);
                out.push((pid, ops));
            }
        }
        out
    }

    /// A traced process mapped `id` shared.
    pub fn note_shared(&mut self, id: ObjectId) {
        self.shared.insert(id);
    }

    /// Whether `v` would be monitored but is not, because it lies outside the window.
    pub fn outside_window(&self, v: &Vma) -> bool {
        self.use_window
            && v.object().is_some()
            && memory_object(v)
            && !(v.start >= WINDOW_START && v.end <= WINDOW_END)
            && (v.shared || !self.buffers_trapped)
            && (v.shared || v.object().is_some_and(|id| self.shared.contains(id)))
    }

    /// The ranges to protect (PROT_NONE) in process `pid` within `[start, end)`: its monitored
    /// mappings there, less the pages it copied. Grants there end.
    pub fn protect_plan(
        &mut self,
        spaces: &Processes,
        pid: i32,
        start: u64,
        end: u64,
    ) -> Vec<ProtOp> {
        let Some(mm) = spaces.mm(pid as u32) else {
            return Vec::new();
        };
        let mut ops = Vec::new();
        for v in mm.overlapping(start, end) {
            if !self.monitored(v) || v.prot.bits() == 0 {
                continue;
            }
            let (s, e) = (v.start.max(start), v.end.min(end));
            ops.extend(self.minus_copied(pid, s, e));
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.grants.retain(|g| g.end <= start || g.start >= end);
            if p.grants.is_empty() {
                p.since_ns = 0;
            }
        }
        ops
    }

    /// `[s, e)` less the process's copied pages, as PROT_NONE operations.
    fn minus_copied(&self, pid: i32, s: u64, e: u64) -> Vec<ProtOp> {
        let none = BTreeSet::new();
        let copied = self.procs.get(&pid).map_or(&none, |p| &p.copied);
        minus(copied, s, e)
            .into_iter()
            .map(|(a, b)| (a, b, libc::PROT_NONE))
            .collect()
    }

    /// Every monitored range of `pid` with the program's own protection (vigil's taken off:
    /// for a read of its maps file, or before vigil detaches). Grants there end.
    pub fn own_protection_plan(&mut self, spaces: &Processes, pid: i32) -> Vec<ProtOp> {
        let mut ops = self.protect_plan(spaces, pid, 0, u64::MAX);
        if let Some(mm) = spaces.mm(pid as u32) {
            for op in ops.iter_mut() {
                if let Some(v) = mm.vma_at(op.0) {
                    op.2 = prot_bits(v);
                }
            }
        }
        ops
    }

    /// Every grant of `pid` ends (a slice boundary): the ranges to protect again.
    pub fn end_slice(&mut self, pid: i32) -> Vec<ProtOp> {
        let Some(p) = self.procs.get_mut(&pid) else {
            return Vec::new();
        };
        p.since_ns = 0;
        let mut ops: Vec<ProtOp> = p
            .grants
            .drain(..)
            .map(|g| (g.start, g.end, libc::PROT_NONE))
            .collect();
        merge(&mut ops);
        ops
    }

    /// Processes whose oldest grant is older than the slice at `now`.
    pub fn expired(&self, now: u64) -> Vec<i32> {
        self.procs
            .iter()
            .filter(|(_, p)| p.since_ns != 0 && now.saturating_sub(p.since_ns) >= self.slice_ns)
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// When the next slice ends (None: no grant outstanding).
    pub fn next_deadline(&self) -> Option<u64> {
        self.procs
            .values()
            .filter(|p| p.since_ns != 0)
            .map(|p| p.since_ns + self.slice_ns)
            .min()
    }

    /// The unit an access at `addr` in `v` concerns: per mapping, its addresses, the object
    /// offset they start at and the mapping (its own protection and sharing).
    fn unit<'m>(
        &self,
        spaces: &'m Processes,
        pid: i32,
        v: &'m Vma,
        addr: u64,
    ) -> Vec<(u64, u64, u64, &'m Vma)> {
        let Backing::Object { offset, .. } = &v.backing else {
            return Vec::new();
        };
        let off_of = |a: u64| offset + (a - v.start);
        match self.mode {
            SmoMode::Page | SmoMode::Minipage(_) | SmoMode::Off => {
                let page = addr & !(PAGE - 1);
                vec![(page, page + PAGE, off_of(page), v)]
            }
            SmoMode::Vma => vec![(v.start, v.end, *offset, v)],
            SmoMode::Object => {
                // Every monitored mapping of the object in this process.
                let Some(mm) = spaces.mm(pid as u32) else {
                    return Vec::new();
                };
                mm.iter()
                    .filter(|w| w.object() == v.object() && self.monitored(w))
                    .filter_map(|w| match &w.backing {
                        Backing::Object { offset, .. } => Some((w.start, w.end, *offset, w)),
                        Backing::Anonymous => None,
                    })
                    .collect()
            }
        }
    }

    /// Decides about an access of kind `access` (None: not decoded) at `addr` by process
    /// `pid`, from a fault (`via` Fault) or a syscall's buffer (`via` Syscall). `exec`: the
    /// instruction fetch itself faulted.
    #[allow(clippy::too_many_arguments)]
    pub fn access(
        &mut self,
        spaces: &Processes,
        pid: i32,
        addr: u64,
        access: Option<MemAccess>,
        exec: bool,
        ip: u64,
        via: SmoVia,
        now: u64,
    ) -> FaultPlan {
        let Some(v) = spaces.mm(pid as u32).and_then(|m| m.vma_at(addr)) else {
            return FaultPlan::NotOurs;
        };
        if !self.monitored(v) {
            return FaultPlan::Release((v.start, v.end, prot_bits(v)));
        }
        let page = addr & !(PAGE - 1);
        if !v.shared
            && self
                .procs
                .get(&pid)
                .is_some_and(|p| p.copied.contains(&page))
        {
            return FaultPlan::NotOurs;
        }
        let prot = prot_bits(v);
        let needs = if exec {
            libc::PROT_EXEC
        } else {
            match access {
                Some(MemAccess::Read) => libc::PROT_READ,
                Some(MemAccess::Write) => libc::PROT_WRITE,
                Some(MemAccess::ReadWrite) => libc::PROT_READ | libc::PROT_WRITE,
                // Not decoded: whatever the program allows is what it may have done.
                None => 0,
            }
        };
        if prot & needs != needs || prot == 0 {
            return FaultPlan::NotOurs;
        }
        let access = match access {
            _ if exec => MemAccess::Read,
            Some(a) => a,
            None if prot & libc::PROT_WRITE != 0 => MemAccess::ReadWrite,
            None => MemAccess::Read,
        };
        let Some(object) = object_of(v) else {
            return FaultPlan::NotOurs;
        };
        let Some(id) = v.object().copied() else {
            return FaultPlan::NotOurs;
        };
        let (map_offset, map_len) = match &v.backing {
            Backing::Object { offset, .. } => (*offset, v.len()),
            Backing::Anonymous => (0, v.len()),
        };
        self.faults += 1;
        let off_at = map_offset + (addr - v.start);
        if let SmoMode::Minipage(_) = self.mode {
            if !matches!(via, SmoVia::Fault) {
                // A syscall's buffer: lifted for the call like a grant (ended at its exit).
                return self.grant(spaces, pid, v, id, addr, access, object, ip, via, now);
            }
            return FaultPlan::Step {
                lift: (page, page + PAGE, prot),
                event: SmoAccess {
                    access,
                    object,
                    offset: off_at,
                    len: 1,
                    addr,
                    ip,
                    via: SmoVia::Step,
                    private: !v.shared,
                    map_offset,
                    map_len,
                },
            };
        }
        self.grant(spaces, pid, v, id, addr, access, object, ip, via, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        spaces: &Processes,
        pid: i32,
        v: &Vma,
        id: ObjectId,
        addr: u64,
        access: MemAccess,
        object: SmoObject,
        ip: u64,
        via: SmoVia,
        now: u64,
    ) -> FaultPlan {
        let private = !v.shared;
        let prot = prot_bits(v);
        let level = if access.writes() {
            Level::Write
        } else {
            Level::Read
        };
        let units = self.unit(spaces, pid, v, addr);
        let (map_offset, map_len) = match &v.backing {
            Backing::Object { offset, .. } => (*offset, v.len()),
            Backing::Anonymous => (0, v.len()),
        };
        // The part the event names: the unit holding `addr`.
        let (ev_off, ev_len) = match self.mode {
            SmoMode::Page | SmoMode::Minipage(_) | SmoMode::Off => {
                let page = addr & !(PAGE - 1);
                (map_offset + (page - v.start), PAGE)
            }
            SmoMode::Vma | SmoMode::Object => (map_offset, map_len),
        };
        let event = SmoAccess {
            access,
            object,
            offset: ev_off,
            len: ev_len,
            addr,
            ip,
            via,
            private,
            map_offset,
            map_len,
        };
        if private && level == Level::Write {
            // Copy on write: the page becomes the process's own, for good.
            let page = addr & !(PAGE - 1);
            let p = self.proc_mut(pid);
            p.copied.insert(page);
            p.grants.retain(|g| g.end <= page || g.start >= page + PAGE);
            return FaultPlan::Grant {
                here: vec![(page, page + PAGE, prot)],
                revoke: Vec::new(),
                event,
            };
        }
        // Already granted at this level (or higher) for the access's page?
        if let Some(p) = self.procs.get(&pid)
            && p.grants
                .iter()
                .any(|g| g.start <= addr && addr < g.end && g.level >= level)
        {
            return FaultPlan::Already;
        }
        // Coherence: a write takes every other grant of the bytes away; a read takes a
        // writer's away.
        let ranges: Vec<(u64, u64)> = units
            .iter()
            .map(|&(s, e, off, _)| (off, off + (e - s)))
            .collect();
        let revoke = self.take_grants(Some(pid), |g| {
            g.obj == id
                && (level == Level::Write || g.level == Level::Write)
                && ranges
                    .iter()
                    .any(|&(s, e)| g.off_start < e && s < g.off_end)
        });
        let p = self.proc_mut(pid);
        if p.since_ns == 0 {
            p.since_ns = now.max(1);
        }
        let mut here = Vec::new();
        for &(s, e, off, w) in &units {
            // Each mapping keeps its own protection (object mode lifts every mapping of the
            // object); a private one is never lifted writable here (its first store is the
            // copy, seen by its own fault).
            let lifted = match level {
                Level::Write if w.shared => prot_bits(w),
                _ => prot_bits(w) & !libc::PROT_WRITE,
            };
            p.grants
                .retain(|g| !(g.start == s && g.end == e && g.level <= level));
            p.grants.push(Grant {
                start: s,
                end: e,
                level,
                obj: id,
                off_start: off,
                off_end: off + (e - s),
            });
            here.extend(
                minus(&p.copied, s, e)
                    .into_iter()
                    .map(|(a, b)| (a, b, lifted)),
            );
        }
        FaultPlan::Grant {
            here,
            revoke,
            event,
        }
    }

    /// A window address for a shared mapping of `len` bytes in process `pid`, if one is left.
    pub fn window_hint(&mut self, pid: i32, len: u64) -> Option<u64> {
        let len = len.checked_add(PAGE - 1)? & !(PAGE - 1);
        let p = self.proc_mut(pid);
        let at = p.window_next;
        let end = at.checked_add(len)?;
        (end <= WINDOW_END).then_some(at)
    }

    /// The kernel placed a mapping at `[start, end)`: the window moves past it.
    pub fn placed(&mut self, pid: i32, start: u64, end: u64) {
        if (WINDOW_START..WINDOW_END).contains(&start) {
            let p = self.proc_mut(pid);
            // A guard page between mappings keeps the kernel from merging them.
            p.window_next = p.window_next.max(end + PAGE);
        }
    }
}

/// Whether a mapping shows memory a program shares: a file (/dev/shm, shm_open and memfd
/// included), SysV shm or shared anonymous memory. Not the mappings of devices, io_uring
/// rings, perf buffers, sockets and other special files, whose pages the kernel or a device
/// writes on its own (protecting them would break them and show nothing of the program).
pub fn memory_object(v: &Vma) -> bool {
    let Backing::Object { id, path, .. } = &v.backing else {
        return false;
    };
    match id {
        ObjectId::SharedAnon(_) | ObjectId::SysV(_) => true,
        ObjectId::File { ino, .. } => *ino != 0 && memory_path(path.as_bytes()),
    }
}

/// Whether a mapped file's path (or a memfd's label) names memory a program shares: a regular
/// file, /dev/shm, /dev/zero, a memfd; not a device, /proc or /sys file. The one test the
/// window placement at mmap entry and the monitoring decision share.
pub fn memory_path(p: &[u8]) -> bool {
    p.starts_with(b"/dev/shm/")
        || p.starts_with(b"/dev/zero")
        || p.starts_with(b"memfd:")
        || p.starts_with(b"/memfd:")
        || (p.starts_with(b"/")
            && !p.starts_with(b"/dev/")
            && !p.starts_with(b"/proc/")
            && !p.starts_with(b"/sys/"))
}

/// `[s, e)` less the pages in `copied`.
fn minus(copied: &BTreeSet<u64>, s: u64, e: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = s;
    for &c in copied.range(s..e) {
        if c > at {
            out.push((at, c));
        }
        at = at.max(c + PAGE);
    }
    if at < e {
        out.push((at, e));
    }
    out
}

/// The calls shared-memory monitoring must see even when they are not recorded: those that
/// change an address space (the model follows them, new mappings are protected) and those
/// that hand the kernel a buffer it reads or writes.
pub fn interested(s: syscalls::Sysno) -> bool {
    use syscalls::Sysno::*;
    matches!(
        s,
        mmap | munmap
            | mprotect
            | mremap
            | shmat
            | shmdt
            | shmget
            | brk
            | madvise
            | read
            | write
            | pread64
            | pwrite64
            | readv
            | writev
            | preadv
            | pwritev
            | preadv2
            | pwritev2
            | recvfrom
            | sendto
            | recvmsg
            | sendmsg
            | getrandom
            | futex
    )
}

/// The futex calls: a futex word in a shared mapping is read (and its page pinned) by the
/// kernel. Trapped when their address (argument 0) is in the window.
pub const FUTEX_CALLS: [syscalls::Sysno; 1] = [syscalls::Sysno::futex];

/// Calls whose pointer argument is tested against the window by the seccomp filter when the
/// selection leaves them out: `(number, argument)`. The others of `interested` are trapped
/// always.
pub const WINDOW_TRAPS: [(syscalls::Sysno, u32); 6] = [
    (syscalls::Sysno::read, 1),
    (syscalls::Sysno::write, 1),
    (syscalls::Sysno::pread64, 1),
    (syscalls::Sysno::pwrite64, 1),
    (syscalls::Sysno::recvfrom, 1),
    (syscalls::Sysno::sendto, 1),
];

/// Sorts and merges adjacent ranges with the same protection.
pub fn merge(ops: &mut Vec<ProtOp>) {
    ops.sort_unstable();
    let mut out: Vec<ProtOp> = Vec::with_capacity(ops.len());
    for &(s, e, p) in ops.iter() {
        match out.last_mut() {
            Some((_, le, lp)) if *le >= s && *lp == p => *le = (*le).max(e),
            _ => out.push((s, e, p)),
        }
    }
    *ops = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_name_round_trip() {
        for s in [
            "off",
            "object",
            "vma",
            "page",
            "minipage:64",
            "minipage:8",
            "minipage:2048",
        ] {
            assert_eq!(SmoMode::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(SmoMode::parse("minipage").unwrap(), SmoMode::Minipage(64));
        for bad in [
            "pages",
            "minipage:4",
            "minipage:4096",
            "minipage:48",
            "minipage:x",
            "",
        ] {
            assert!(SmoMode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_merge_and_copied_pages_are_left_out() {
        let mut ops = vec![
            (0x3000, 0x4000, 0),
            (0x1000, 0x2000, 0),
            (0x2000, 0x3000, 0),
        ];
        merge(&mut ops);
        assert_eq!(ops, vec![(0x1000, 0x4000, 0)]);
        let copied: BTreeSet<u64> = [0x2000].into_iter().collect();
        assert_eq!(
            minus(&copied, 0x1000, 0x4000),
            vec![(0x1000, 0x2000), (0x3000, 0x4000)]
        );
    }
}
