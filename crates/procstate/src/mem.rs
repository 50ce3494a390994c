//! One process's address space as an ordered set of VMAs, updated as the kernel updates it:
//! mmap (MAP_FIXED / MAP_FIXED_NOREPLACE replacing or refusing what is there), munmap and
//! mprotect (splitting at the range's ends), mremap (shrink, grow in place, move, MREMAP_FIXED,
//! MREMAP_DONTUNMAP, the old_size 0 duplicate of a shared mapping), brk, SysV shmat/shmdt,
//! madvise's fork advice, fork and exec.
//!
//! Why a model: once a program maps a file shared, its loads and stores bypass the kernel; to
//! say which object (and which page of it) an address is, vigil keeps what the kernel keeps.
//! The model is pure (no /proc, no ptrace) and deterministic, so a recorder, an eBPF backend
//! and an offline analysis of a log all compute the same thing.
//!
//! Two deliberate differences from the kernel, neither visible page by page:
//! - Adjacent compatible VMAs are never merged (the kernel merges after mmap/mprotect/mremap
//!   when it can). `merged()` gives the coalesced view for display. Because the kernel may
//!   have merged what the model keeps apart, operations that the kernel restricts to one VMA
//!   (growing mremap) accept a range covered by several contiguous model VMAs.
//! - Operations are told the kernel's answer (the address mmap/mremap/shmat returned, whether
//!   the call succeeded) rather than choosing addresses themselves: the model follows the
//!   kernel, it does not predict it. Where a call's preconditions are checkable here
//!   (alignment, zero lengths, holes) the same errors as the kernel's are returned, with the
//!   same partial effects (mprotect and madvise change the mapped part before a hole).
//!
//! Pages are 4 KiB (x86_64); huge-page mappings are modelled with 4 KiB rounding.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use vigil_event::Str;

pub const PAGE_SIZE: u64 = 4096;

/// `addr` rounded down to a page boundary.
pub fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// `len` rounded up to whole pages, `None` on overflow.
pub fn page_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE_SIZE - 1).map(page_down)
}

fn aligned(addr: u64) -> bool {
    addr.is_multiple_of(PAGE_SIZE)
}

// mmap(2) flags (x86_64).
pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
// mremap(2) flags.
pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;
// madvise(2) advice that changes what fork does.
pub const MADV_DONTFORK: u64 = 10;
pub const MADV_DOFORK: u64 = 11;
pub const MADV_WIPEONFORK: u64 = 18;
pub const MADV_KEEPONFORK: u64 = 19;
// shmat(2) flags.
pub const SHM_RDONLY: u64 = 0o10000;
pub const SHM_EXEC: u64 = 0o100000;

/// Page protection: read, write, execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Prot(u8);

impl Prot {
    pub const NONE: Prot = Prot(0);
    pub const READ: Prot = Prot(1);
    pub const WRITE: Prot = Prot(2);
    pub const EXEC: Prot = Prot(4);
    pub const RW: Prot = Prot(3);

    /// From a `PROT_*` argument; PROT_SEM, PROT_GROWSDOWN/UP and unknown bits are ignored.
    pub fn from_raw(prot: u64) -> Prot {
        Prot((prot & 7) as u8)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Prot) -> Prot {
        Prot(self.0 | other.0)
    }

    pub fn readable(self) -> bool {
        self.contains(Prot::READ)
    }

    pub fn writable(self) -> bool {
        self.contains(Prot::WRITE)
    }

    pub fn executable(self) -> bool {
        self.contains(Prot::EXEC)
    }
}

/// The identity of a mappable object, the same in every process that maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectId {
    /// A file by device and inode (regular files, files in /dev/shm, shm_open, memfd; a
    /// device or inode of 0 means the backend did not know it).
    File { dev: u64, ino: u64 },
    /// `MAP_SHARED|MAP_ANONYMOUS` memory, shared with the children forked after the mmap. The
    /// kernel's inode when it came from /proc/PID/maps, otherwise an id the model made up
    /// (`Processes::new_shared_anon`), unique within one model.
    SharedAnon(u64),
    /// A System V shared memory segment, by shmid.
    SysV(i64),
}

/// What a VMA's pages are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Anonymous memory private to the process (and, until written, to the children it forks).
    Anonymous,
    /// Pages of an object, starting at `offset` (bytes) into it. Private mappings of an object
    /// see its pages until they write one (copy on write); shared ones write through.
    Object {
        id: ObjectId,
        path: Str,
        offset: u64,
    },
}

/// The kernel's name for a special mapping, as shown in /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Role {
    #[default]
    Plain,
    /// The brk heap, `[heap]`.
    Heap,
    /// The main thread's stack, `[stack]`.
    Stack,
    /// Another bracketed name: `[vdso]`, `[vvar]`, `[vsyscall]`, `[anon:NAME]`, ...
    Named(Str),
}

/// One virtual memory area: `[start, end)`, page aligned, non-empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    /// MAP_SHARED (stores reach the object and every other mapping of it) rather than private.
    pub shared: bool,
    pub backing: Backing,
    pub role: Role,
    /// MADV_DONTFORK: not inherited by a forked child.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: a forked child gets it zero-filled (same layout).
    pub wipeonfork: bool,
    /// The kernel's VM_ACCOUNT: a private mapping that is or was writable is charged to the
    /// commit limit, and stays charged when made read-only again (a RELRO segment). The
    /// kernel never merges it with a neighbour that is not, so /proc/PID/maps shows them as
    /// two lines.
    pub accounted: bool,
}

impl Vma {
    /// A private anonymous area.
    pub fn anonymous(range: Range<u64>, prot: Prot) -> Vma {
        Vma {
            start: range.start,
            end: range.end,
            prot,
            shared: false,
            backing: Backing::Anonymous,
            role: Role::Plain,
            dontfork: false,
            wipeonfork: false,
            accounted: prot.writable(),
        }
    }

    pub fn range(&self) -> Range<u64> {
        self.start..self.end
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The object mapped, for file, shared anonymous and SysV mappings.
    pub fn object(&self) -> Option<&ObjectId> {
        match &self.backing {
            Backing::Object { id, .. } => Some(id),
            Backing::Anonymous => None,
        }
    }

    /// The object path (`/dev/zero (deleted)`, `/SYSV...` included).
    pub fn path(&self) -> Option<&Str> {
        match &self.backing {
            Backing::Object { path, .. } => Some(path),
            Backing::Anonymous => None,
        }
    }

    /// The byte offset into the object that `addr` maps (for addresses in this VMA).
    pub fn offset_at(&self, addr: u64) -> Option<u64> {
        match &self.backing {
            Backing::Object { offset, .. } if self.contains(addr) => {
                offset.checked_add(addr - self.start)
            }
            _ => None,
        }
    }

    /// The same mapping restricted to `[start, end)` (which must lie within it): the file
    /// offset moves with the start.
    fn slice(&self, start: u64, end: u64) -> Vma {
        let mut v = self.clone();
        if let Backing::Object { offset, .. } = &mut v.backing {
            *offset = offset.saturating_add(start - self.start);
        }
        v.start = start;
        v.end = end;
        v
    }

    /// Whether `next` (starting where this ends) continues it with the same attributes, so
    /// the kernel could have one VMA for both.
    pub fn continues_into(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.shared == next.shared
            && self.role == next.role
            && self.dontfork == next.dontfork
            && self.wipeonfork == next.wipeonfork
            && self.accounted == next.accounted
            && match (&self.backing, &next.backing) {
                (Backing::Anonymous, Backing::Anonymous) => true,
                (
                    Backing::Object { id, offset, .. },
                    Backing::Object {
                        id: id2,
                        offset: offset2,
                        ..
                    },
                ) => id == id2 && offset.checked_add(self.len()) == Some(*offset2),
                _ => false,
            }
    }
}

impl Vma {
    /// This VMA as the event model's snapshot line (the fields of its /proc/PID/maps line).
    pub fn to_event(&self) -> vigil_event::memory::Vma {
        let (offset, dev, ino) = match &self.backing {
            Backing::Object {
                id, offset: off, ..
            } => match *id {
                ObjectId::File { dev, ino } => (*off, dev, ino),
                ObjectId::SharedAnon(ino) => (*off, crate::maps::SHMEM_DEV, ino),
                ObjectId::SysV(id) => (*off, crate::maps::SHMEM_DEV, id as u64),
            },
            Backing::Anonymous => (0, 0, 0),
        };
        let path = match (&self.role, &self.backing) {
            (_, Backing::Object { path, .. }) => path.clone(),
            (Role::Heap, _) => Str::from("[heap]"),
            (Role::Stack, _) => Str::from("[stack]"),
            (Role::Named(n), _) => n.clone(),
            (Role::Plain, _) => Str::from(""),
        };
        vigil_event::memory::Vma {
            start: self.start,
            end: self.end,
            prot: self.prot.bits(),
            shared: self.shared,
            offset,
            dev,
            ino,
            path,
        }
    }
}

impl AddressSpace {
    /// The whole space as an address-space snapshot event (what `record` takes at exec).
    pub fn snapshot(&self) -> vigil_event::memory::AddressSpace {
        vigil_event::memory::AddressSpace {
            vmas: self.iter().map(Vma::to_event).collect::<Vec<_>>().into(),
        }
    }
}

impl fmt::Display for Vma {
    /// The /proc/PID/maps line for this VMA.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.prot;
        let (offset, dev, ino) = match &self.backing {
            Backing::Object {
                id, offset: off, ..
            } => {
                let (dev, ino) = match *id {
                    ObjectId::File { dev, ino } => (dev, ino),
                    ObjectId::SharedAnon(ino) => (crate::maps::SHMEM_DEV, ino),
                    ObjectId::SysV(id) => (crate::maps::SHMEM_DEV, id as u64),
                };
                (*off, dev, ino)
            }
            Backing::Anonymous => (0, 0, 0),
        };
        let (major, minor) = crate::maps::dev_split(dev);
        let line = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {}",
            self.start,
            self.end,
            if p.readable() { 'r' } else { '-' },
            if p.writable() { 'w' } else { '-' },
            if p.executable() { 'x' } else { '-' },
            if self.shared { 's' } else { 'p' },
            offset,
            major,
            minor,
            ino
        );
        let name = match (&self.role, &self.backing) {
            (_, Backing::Object { path, .. }) => Some(path.to_string()),
            (Role::Heap, _) => Some("[heap]".to_string()),
            (Role::Stack, _) => Some("[stack]".to_string()),
            (Role::Named(n), _) => Some(n.to_string()),
            (Role::Plain, _) => None,
        };
        match name {
            // The kernel pads the name to column 73.
            Some(n) => write!(f, "{line:<72} {n}"),
            None => write!(f, "{line}"),
        }
    }
}

/// Why an operation was refused. Each corresponds to the errno the kernel gives for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("{what} {addr:#x} is not page aligned")]
    Unaligned { what: &'static str, addr: u64 },
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("the range {start:#x}-{end:#x} is not (entirely) mapped")]
    NotMapped { start: u64, end: u64 },
    #[error("{start:#x}-{end:#x} overlaps an existing mapping (MAP_FIXED_NOREPLACE)")]
    Exists { start: u64, end: u64 },
    #[error("no mapping at {addr:#x} to remap")]
    Fault { addr: u64 },
    #[error("the range overflows the address space")]
    Overflow,
}

impl MemError {
    /// The errno the kernel returns in the same situation.
    pub fn errno(&self) -> i32 {
        match self {
            MemError::Unaligned { .. } | MemError::Invalid(_) => 22, // EINVAL
            MemError::NotMapped { .. } | MemError::Overflow => 12,   // ENOMEM
            MemError::Exists { .. } => 17,                           // EEXIST
            MemError::Fault { .. } => 14,                            // EFAULT
        }
    }
}

/// The file (or shared anonymous object) an mmap maps, as the caller knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedObject {
    pub id: ObjectId,
    pub path: Str,
}

impl MappedObject {
    /// The object of a `MAP_SHARED|MAP_ANONYMOUS` mapping, shown as the kernel shows it.
    pub fn shared_anon(id: u64) -> MappedObject {
        MappedObject {
            id: ObjectId::SharedAnon(id),
            path: Str::from("/dev/zero (deleted)"),
        }
    }
}

/// One mmap as the kernel performed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mmap {
    /// Where the mapping is: the call's return value (for MAP_FIXED, also its `addr`).
    pub addr: u64,
    pub len: u64,
    /// `PROT_*` bits.
    pub prot: u64,
    /// `MAP_*` flags.
    pub flags: u64,
    /// The file mapped; for MAP_SHARED|MAP_ANONYMOUS the shared object (see
    /// `MappedObject::shared_anon`); ignored for private anonymous mappings.
    pub object: Option<MappedObject>,
    /// Byte offset into the file.
    pub offset: u64,
}

/// The brk heap: where it starts and the current break (unaligned; the heap VMA ends at the
/// break rounded up to a page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Brk {
    pub start: u64,
    pub current: u64,
}

/// A process's address space. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AddressSpace {
    vmas: BTreeMap<u64, Vma>,
    brk: Option<Brk>,
}

impl AddressSpace {
    pub fn new() -> AddressSpace {
        AddressSpace::default()
    }

    /// From VMAs in any order; overlapping parts of later ones replace earlier ones.
    pub fn from_vmas(vmas: impl IntoIterator<Item = Vma>) -> AddressSpace {
        let mut a = AddressSpace::new();
        for v in vmas {
            if !v.is_empty() {
                a.place(v);
            }
        }
        a
    }

    /// The VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> + Clone {
        self.vmas.values()
    }

    pub fn len(&self) -> usize {
        self.vmas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }

    /// Total bytes mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.vmas.values().map(Vma::len).sum()
    }

    pub fn brk(&self) -> Option<Brk> {
        self.brk
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }

    /// The VMAs that overlap `[start, end)`, in address order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self.vma_at(start).map_or(start, |v| v.start);
        self.vmas
            .range(first..)
            .map(|(_, v)| v)
            .take_while(move |v| v.start < end)
            .filter(move |v| v.end > start)
    }

    /// Whether every byte of `[start, end)` is mapped.
    pub fn is_mapped(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in self.overlapping(start, end) {
            if v.start > at {
                return false;
            }
            at = v.end;
        }
        at >= end
    }

    /// The VMAs with adjacent compatible ones coalesced, as the kernel would usually show them.
    pub fn merged(&self) -> Vec<Vma> {
        let mut out: Vec<Vma> = Vec::new();
        for v in self.vmas.values() {
            match out.last_mut() {
                Some(last) if last.continues_into(v) => last.end = v.end,
                _ => out.push(v.clone()),
            }
        }
        out
    }

    /// The /proc/PID/maps form of the (merged) address space.
    pub fn to_maps_text(&self) -> String {
        let mut s = String::new();
        for v in self.merged() {
            s.push_str(&v.to_string());
            s.push('\n');
        }
        s
    }

    /// Removes `[start, end)` from every VMA, splitting those that straddle its ends.
    fn clear(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let hit: Vec<u64> = self.overlapping(start, end).map(|v| v.start).collect();
        for s in hit {
            let Some(v) = self.vmas.remove(&s) else {
                continue;
            };
            if v.start < start {
                let left = v.slice(v.start, start);
                self.vmas.insert(left.start, left);
            }
            if v.end > end {
                let right = v.slice(end, v.end);
                self.vmas.insert(right.start, right);
            }
        }
    }

    /// Puts `v` in, replacing whatever overlaps it.
    fn place(&mut self, v: Vma) {
        self.clear(v.start, v.end);
        self.vmas.insert(v.start, v);
    }

    /// Splits VMAs so that `at` is a boundary (no VMA straddles it).
    fn split_at(&mut self, at: u64) {
        let Some(v) = self.vma_at(at).filter(|v| v.start < at).cloned() else {
            return;
        };
        self.vmas.remove(&v.start);
        let (l, r) = (v.slice(v.start, at), v.slice(at, v.end));
        self.vmas.insert(l.start, l);
        self.vmas.insert(r.start, r);
    }

    /// Applies `f` to every VMA piece within `[start, end)` in order, up to the first hole;
    /// `NotMapped` if there is one (what was changed before it stays changed, as in the kernel).
    fn modify(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut Vma),
    ) -> Result<(), MemError> {
        self.split_at(start);
        self.split_at(end);
        let mut at = start;
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        for k in keys {
            if k != at {
                return Err(MemError::NotMapped { start, end });
            }
            if let Some(v) = self.vmas.get_mut(&k) {
                f(v);
                at = v.end;
            }
        }
        if at < end {
            return Err(MemError::NotMapped { start, end });
        }
        Ok(())
    }

    fn range_of(addr: u64, len: u64, what: &'static str) -> Result<(u64, u64), MemError> {
        if !aligned(addr) {
            return Err(MemError::Unaligned { what, addr });
        }
        if len == 0 {
            return Err(MemError::Invalid("zero length"));
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MemError::Overflow)?;
        Ok((addr, end))
    }

    /// mmap: the new mapping replaces whatever was in its range (MAP_FIXED, or stale model
    /// state where the kernel found room); with MAP_FIXED_NOREPLACE an overlap is refused.
    /// Returns the mapped range (the length rounded up to pages).
    pub fn mmap(&mut self, m: &Mmap) -> Result<Range<u64>, MemError> {
        if !m.offset.is_multiple_of(PAGE_SIZE) {
            return Err(MemError::Invalid("offset not page aligned"));
        }
        let (start, end) = Self::range_of(m.addr, m.len, "mmap address")?;
        let shared = match m.flags & MAP_TYPE {
            MAP_SHARED | MAP_SHARED_VALIDATE => true,
            MAP_PRIVATE => false,
            _ => return Err(MemError::Invalid("neither MAP_SHARED nor MAP_PRIVATE")),
        };
        if m.flags & MAP_FIXED_NOREPLACE != 0
            && m.flags & MAP_FIXED == 0
            && self.overlapping(start, end).next().is_some()
        {
            return Err(MemError::Exists { start, end });
        }
        let anonymous = m.flags & MAP_ANONYMOUS != 0;
        let backing = match (&m.object, anonymous, shared) {
            (_, true, false) => Backing::Anonymous,
            (Some(o), false, _) => Backing::Object {
                id: o.id,
                path: o.path.clone(),
                offset: m.offset,
            },
            // Shared anonymous memory starts at offset 0 of its own object.
            (Some(o), true, true) => Backing::Object {
                id: o.id,
                path: o.path.clone(),
                offset: 0,
            },
            (None, true, true) => {
                return Err(MemError::Invalid(
                    "a shared anonymous mapping needs its object (MappedObject::shared_anon)",
                ));
            }
            (None, false, _) => return Err(MemError::Invalid("a file mapping without its file")),
        };
        let prot = Prot::from_raw(m.prot);
        self.place(Vma {
            start,
            end,
            prot,
            shared,
            backing,
            role: Role::Plain,
            dontfork: false,
            wipeonfork: false,
            accounted: !shared && prot.writable() && m.flags & MAP_NORESERVE == 0,
        });
        Ok(start..end)
    }

    /// munmap: everything in `[addr, addr+len)` (rounded up to pages) goes; holes are fine.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        let (start, end) = Self::range_of(addr, len, "munmap address")?;
        self.clear(start, end);
        Ok(())
    }

    /// mprotect: new protection for `[addr, addr+len)`, splitting VMAs at its ends. A hole in
    /// the range is `NotMapped` (ENOMEM), with the mapped part before it already changed, as
    /// the kernel does. A zero length does nothing.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), MemError> {
        if len == 0 {
            return if aligned(addr) {
                Ok(())
            } else {
                Err(MemError::Unaligned {
                    what: "mprotect address",
                    addr,
                })
            };
        }
        let (start, end) = Self::range_of(addr, len, "mprotect address")?;
        let prot = Prot::from_raw(prot);
        self.modify(start, end, |v| {
            v.prot = prot;
            // Made writable, a private mapping is charged, and a file mapping stays so when
            // made read-only again. Anonymous memory is no longer charged then if none of its
            // pages was written yet; the model does not see writes and takes it as unwritten
            // (a guard page, the usual case, never is).
            if !v.shared && prot.writable() {
                v.accounted = true;
            } else if v.backing == Backing::Anonymous {
                v.accounted = false;
            }
        })
    }

    /// madvise: MADV_DONTFORK/DOFORK/WIPEONFORK/KEEPONFORK mark the range (split at its
    /// ends); other advice changes no VMA. Holes: as mprotect (changed up to them, ENOMEM).
    pub fn madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<(), MemError> {
        if !aligned(addr) {
            return Err(MemError::Unaligned {
                what: "madvise address",
                addr,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MemError::Overflow)?;
        let change: fn(&mut Vma) = match advice {
            MADV_DONTFORK => |v| v.dontfork = true,
            MADV_DOFORK => |v| v.dontfork = false,
            MADV_WIPEONFORK => {
                // Only private anonymous memory can be wiped.
                if self
                    .overlapping(addr, end)
                    .any(|v| v.shared || v.backing != Backing::Anonymous)
                {
                    return Err(MemError::Invalid(
                        "MADV_WIPEONFORK on memory that is not private anonymous",
                    ));
                }
                |v| v.wipeonfork = true
            }
            MADV_KEEPONFORK => |v| v.wipeonfork = false,
            _ => return Ok(()),
        };
        // madvise goes over every mapped part and reports a hole at the end.
        let pieces: Vec<(u64, u64)> = self
            .overlapping(addr, end)
            .map(|v| (v.start, v.end))
            .collect();
        let mut whole = true;
        let mut at = addr;
        for (s, e) in pieces {
            if s > at {
                whole = false;
            }
            let (s, e) = (s.max(addr), e.min(end));
            let _ = self.modify(s, e, change);
            at = e;
        }
        if whole && at >= end {
            Ok(())
        } else {
            Err(MemError::NotMapped { start: addr, end })
        }
    }

    /// mremap, given the address the kernel returned (`result`). Shrinking unmaps the tail;
    /// growing extends in place (`result == old_addr`) or moves; MREMAP_FIXED moves to
    /// `new_addr`, unmapping what was there; MREMAP_DONTUNMAP leaves the old range mapped;
    /// `old_size` 0 duplicates a shared mapping. The old range may be covered by several
    /// contiguous model VMAs (the kernel may have merged them into one).
    pub fn mremap(
        &mut self,
        old_addr: u64,
        old_size: u64,
        new_size: u64,
        flags: u64,
        new_addr: u64,
        result: u64,
    ) -> Result<(), MemError> {
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return Err(MemError::Invalid("unknown mremap flags"));
        }
        let maymove = flags & MREMAP_MAYMOVE != 0;
        let fixed = flags & MREMAP_FIXED != 0;
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if (fixed || dontunmap) && !maymove {
            return Err(MemError::Invalid(
                "MREMAP_FIXED and MREMAP_DONTUNMAP need MREMAP_MAYMOVE",
            ));
        }
        if dontunmap && old_size != new_size {
            return Err(MemError::Invalid("MREMAP_DONTUNMAP cannot resize"));
        }
        if !aligned(old_addr) {
            return Err(MemError::Unaligned {
                what: "mremap old address",
                addr: old_addr,
            });
        }
        let old_len = page_up(old_size).ok_or(MemError::Overflow)?;
        let new_len = page_up(new_size).ok_or(MemError::Overflow)?;
        if new_len == 0 {
            return Err(MemError::Invalid("zero new size"));
        }
        let old_end = old_addr.checked_add(old_len).ok_or(MemError::Overflow)?;
        let Some(first) = self.vma_at(old_addr).cloned() else {
            return Err(MemError::Fault { addr: old_addr });
        };
        if fixed && result != new_addr {
            return Err(MemError::Invalid(
                "MREMAP_FIXED placed the mapping elsewhere",
            ));
        }
        if !aligned(result) {
            return Err(MemError::Unaligned {
                what: "mremap result",
                addr: result,
            });
        }
        let result_end = result.checked_add(new_len).ok_or(MemError::Overflow)?;
        if old_len == 0 {
            // A second mapping of the same shared pages; the old one stays.
            if !first.shared || !maymove {
                return Err(MemError::Invalid(
                    "old size 0 duplicates only shared mappings, with MREMAP_MAYMOVE",
                ));
            }
            let mut v = first.slice(old_addr, first.end);
            v.start = result;
            v.end = result_end;
            self.place(v);
            return Ok(());
        }
        if fixed || dontunmap {
            if result < old_end && old_addr < result_end {
                return Err(MemError::Invalid("the new range overlaps the old one"));
            }
            // The kernel unmaps the target (FIXED) and the old tail (shrink) first.
            self.clear(result, result_end);
            let keep = old_len.min(new_len);
            if old_len > new_len {
                self.clear(old_addr + new_len, old_end);
            }
            return self.move_range(old_addr, keep, result, new_len, dontunmap);
        }
        if new_len <= old_len {
            if result != old_addr {
                return Err(MemError::Invalid("a shrinking mremap does not move"));
            }
            self.clear(old_addr + new_len, old_end);
            return Ok(());
        }
        if !self.is_mapped(old_addr, old_end) {
            return Err(MemError::Fault { addr: old_addr });
        }
        if result == old_addr {
            // Grown in place: the area after the old range takes the attributes of its last
            // page, the file offset continuing.
            let Some(last) = self.vma_at(old_end - 1).cloned() else {
                return Err(MemError::Fault { addr: old_addr });
            };
            let mut ext = last.slice(last.start, last.end);
            if let Backing::Object { offset, .. } = &mut ext.backing {
                *offset = offset.saturating_add(old_end - last.start);
            }
            ext.start = old_end;
            ext.end = result_end;
            self.place(ext);
            return Ok(());
        }
        if !maymove {
            return Err(MemError::Invalid("a mremap without MREMAP_MAYMOVE moved"));
        }
        self.clear(result, result_end);
        self.move_range(old_addr, old_len, result, new_len, false)
    }

    /// Moves the VMAs of `[old, old+len)` to `new`, the last one extended to `new_len`.
    fn move_range(
        &mut self,
        old: u64,
        len: u64,
        new: u64,
        new_len: u64,
        keep_old: bool,
    ) -> Result<(), MemError> {
        let old_end = old + len;
        if !self.is_mapped(old, old_end) {
            return Err(MemError::Fault { addr: old });
        }
        let mut pieces: Vec<Vma> = self
            .overlapping(old, old_end)
            .map(|v| v.slice(v.start.max(old), v.end.min(old_end)))
            .collect();
        if !keep_old {
            self.clear(old, old_end);
        }
        for p in &mut pieces {
            p.start = p.start - old + new;
            p.end = p.end - old + new;
        }
        if let Some(last) = pieces.last_mut() {
            last.end = new + new_len;
        }
        for p in pieces {
            self.place(p);
        }
        Ok(())
    }

    /// brk: the break is now `result` (what the call returned: the new break, or the old one
    /// when refused). The heap VMA `[start, page_up(break))` grows or shrinks with it. The
    /// first break seen (usually `brk(0)`) fixes the heap's start, unless a `[heap]` VMA from
    /// /proc/PID/maps already says where it starts.
    pub fn brk_to(&mut self, result: u64) -> Result<(), MemError> {
        let new_end = page_up(result).ok_or(MemError::Overflow)?;
        let (start, old_end) = match self.brk {
            Some(b) => (b.start, page_up(b.current).ok_or(MemError::Overflow)?),
            None => match self.iter().find(|v| v.role == Role::Heap) {
                Some(h) => {
                    let end = self
                        .iter()
                        .filter(|v| v.role == Role::Heap)
                        .map(|v| v.end)
                        .max()
                        .unwrap_or(h.end);
                    (h.start, end)
                }
                None => (result, new_end),
            },
        };
        if result < start {
            return Err(MemError::Invalid("break below the heap's start"));
        }
        self.brk = Some(Brk {
            start,
            current: result,
        });
        if new_end > old_end {
            let mut v = Vma::anonymous(old_end..new_end, Prot::RW);
            v.role = Role::Heap;
            self.place(v);
        } else if new_end < old_end {
            self.clear(new_end, old_end);
        }
        Ok(())
    }

    /// Sets what is known of the break (from a snapshot or a backend that read it).
    pub fn set_brk(&mut self, brk: Option<Brk>) {
        self.brk = brk;
    }

    /// shmat: a SysV segment of `size` bytes attached at `addr` (the call's return value),
    /// replacing what was there (SHM_REMAP, or stale state).
    pub fn shmat(
        &mut self,
        addr: u64,
        size: u64,
        object: MappedObject,
        flags: u64,
    ) -> Result<Range<u64>, MemError> {
        let (start, end) = Self::range_of(addr, size, "shmat address")?;
        let mut prot = if flags & SHM_RDONLY != 0 {
            Prot::READ
        } else {
            Prot::RW
        };
        if flags & SHM_EXEC != 0 {
            prot = prot.union(Prot::EXEC);
        }
        self.place(Vma {
            start,
            end,
            prot,
            shared: true,
            backing: Backing::Object {
                id: object.id,
                path: object.path,
                offset: 0,
            },
            role: Role::Plain,
            dontfork: false,
            wipeonfork: false,
            accounted: false,
        });
        Ok(start..end)
    }

    /// shmdt: detaches the segment attached at `addr`: as the kernel, the first SysV VMA at
    /// or after `addr` whose offset is its distance from `addr` names the segment, and every
    /// VMA of that segment attached at `addr` within its size (`size`, when known) goes.
    /// Returns the segment detached.
    pub fn shmdt(&mut self, addr: u64, size: Option<u64>) -> Result<ObjectId, MemError> {
        if !aligned(addr) {
            return Err(MemError::Unaligned {
                what: "shmdt address",
                addr,
            });
        }
        let attached_here = |v: &Vma| match &v.backing {
            Backing::Object {
                id: id @ ObjectId::SysV(_),
                offset,
                ..
            } if v.start >= addr && v.start - addr == *offset => Some(*id),
            _ => None,
        };
        let Some(id) = self.vmas.range(addr..).find_map(|(_, v)| attached_here(v)) else {
            return Err(MemError::Invalid("no segment attached there"));
        };
        let limit = size.and_then(page_up).map(|s| addr.saturating_add(s));
        let gone: Vec<u64> = self
            .vmas
            .range(addr..)
            .map(|(_, v)| v)
            .take_while(|v| limit.is_none_or(|l| v.end <= l))
            .filter(|v| attached_here(v) == Some(id))
            .map(|v| v.start)
            .collect();
        for s in gone {
            self.vmas.remove(&s);
        }
        Ok(id)
    }

    /// What a child forked from this space (without CLONE_VM) starts with: every VMA but the
    /// MADV_DONTFORK ones; private ones become the child's own copies (same contents until
    /// either side writes), shared ones stay mappings of the same objects.
    pub fn fork(&self) -> AddressSpace {
        AddressSpace {
            vmas: self
                .vmas
                .iter()
                .filter(|(_, v)| !v.dontfork)
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            brk: self.brk,
        }
    }

    /// Checks the model's invariants: VMAs sorted, page aligned, non-empty, not overlapping,
    /// keyed by their start. For tests and debugging.
    pub fn check(&self) -> Result<(), String> {
        let mut prev_end = 0u64;
        for (k, v) in &self.vmas {
            if *k != v.start {
                return Err(format!("{v} keyed at {k:#x}"));
            }
            if v.is_empty() || !aligned(v.start) || !aligned(v.end) {
                return Err(format!("bad VMA {v}"));
            }
            if v.start < prev_end {
                return Err(format!("{v} overlaps the previous VMA"));
            }
            prev_end = v.end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;
    const BASE: u64 = 0x10_0000;

    fn file(ino: u64) -> MappedObject {
        MappedObject {
            id: ObjectId::File { dev: 8, ino },
            path: Str::from(format!("/f{ino}")),
        }
    }

    fn anon(addr: u64, len: u64, prot: u64) -> Mmap {
        Mmap {
            addr,
            len,
            prot,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            object: None,
            offset: 0,
        }
    }

    fn fmap(addr: u64, len: u64, ino: u64, offset: u64, shared: bool) -> Mmap {
        Mmap {
            addr,
            len,
            prot: 3,
            flags: if shared { MAP_SHARED } else { MAP_PRIVATE } | MAP_FIXED,
            object: Some(file(ino)),
            offset,
        }
    }

    fn layout(a: &AddressSpace) -> Vec<(u64, u64, u8)> {
        a.check().unwrap();
        a.iter()
            .map(|v| ((v.start - BASE) / P, (v.end - BASE) / P, v.prot.bits()))
            .collect()
    }

    fn offsets(a: &AddressSpace) -> Vec<Option<u64>> {
        a.iter()
            .map(|v| v.offset_at(v.start).map(|o| o / P))
            .collect()
    }

    #[test]
    fn mmap_rounds_length_and_checks_arguments() {
        let mut a = AddressSpace::new();
        assert_eq!(a.mmap(&anon(BASE, 1, 3)), Ok(BASE..BASE + P));
        assert_eq!(
            a.mmap(&anon(BASE + 3 * P, P + 1, 1)),
            Ok(BASE + 3 * P..BASE + 5 * P)
        );
        assert_eq!(layout(&a), vec![(0, 1, 3), (3, 5, 1)]);
        assert!(matches!(
            a.mmap(&anon(BASE + 1, P, 3)),
            Err(MemError::Unaligned { .. })
        ));
        assert_eq!(a.mmap(&anon(BASE, 0, 3)).map_err(|e| e.errno()), Err(22));
        let mut bad = fmap(BASE, P, 1, 100, true);
        assert!(matches!(a.mmap(&bad), Err(MemError::Invalid(_))));
        bad.offset = 0;
        bad.flags = MAP_FIXED;
        assert!(matches!(a.mmap(&bad), Err(MemError::Invalid(_))));
        assert_eq!(
            a.mmap(&anon(u64::MAX - P + 1, 2 * P, 3)),
            Err(MemError::Overflow)
        );
        assert_eq!(
            layout(&a),
            vec![(0, 1, 3), (3, 5, 1)],
            "refusals change nothing"
        );
    }

    #[test]
    fn map_fixed_over_the_middle_splits_and_keeps_file_offsets() {
        let mut a = AddressSpace::new();
        a.mmap(&fmap(BASE, 6 * P, 7, 2 * P, true)).unwrap();
        a.mmap(&anon(BASE + 2 * P, 2 * P, 1)).unwrap();
        assert_eq!(layout(&a), vec![(0, 2, 3), (2, 4, 1), (4, 6, 3)]);
        assert_eq!(offsets(&a), vec![Some(2), None, Some(6)]);
        assert!(a.iter().next().unwrap().shared);
        // Overlapping several VMAs and a hole at once.
        a.mmap(&fmap(BASE + P, 6 * P, 9, 0, false)).unwrap();
        assert_eq!(layout(&a), vec![(0, 1, 3), (1, 7, 3)]);
        assert_eq!(offsets(&a), vec![Some(2), Some(0)]);
        assert!(!a.vma_at(BASE + 3 * P).unwrap().shared);
    }

    #[test]
    fn fixed_noreplace_refuses_an_overlap_and_changes_nothing() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE + 2 * P, P, 3)).unwrap();
        let mut m = anon(BASE, 3 * P, 1);
        m.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        assert_eq!(a.mmap(&m).map_err(|e| e.errno()), Err(17));
        assert_eq!(layout(&a), vec![(2, 3, 3)]);
        m.len = 2 * P;
        assert!(a.mmap(&m).is_ok(), "right up to the neighbour is fine");
        assert_eq!(layout(&a), vec![(0, 2, 1), (2, 3, 3)]);
    }

    #[test]
    fn shared_anonymous_needs_an_object_and_starts_at_offset_zero() {
        let mut a = AddressSpace::new();
        let mut m = anon(BASE, P, 3);
        m.flags = MAP_SHARED | MAP_ANONYMOUS;
        assert!(matches!(a.mmap(&m), Err(MemError::Invalid(_))));
        m.object = Some(MappedObject::shared_anon(5));
        m.offset = 8 * P; // ignored for anonymous memory
        a.mmap(&m).unwrap();
        let v = a.vma_at(BASE).unwrap();
        assert_eq!(v.object(), Some(&ObjectId::SharedAnon(5)));
        assert_eq!(v.offset_at(BASE + 10), Some(10));
        assert!(v.shared);
    }

    #[test]
    fn munmap_splits_at_both_ends_with_unaligned_length() {
        let mut a = AddressSpace::new();
        a.mmap(&fmap(BASE, 8 * P, 1, 0, false)).unwrap();
        a.munmap(BASE + 2 * P, 2 * P + 1).unwrap(); // three pages
        assert_eq!(layout(&a), vec![(0, 2, 3), (5, 8, 3)]);
        assert_eq!(offsets(&a), vec![Some(0), Some(5)]);
        // Across a hole and several VMAs, and the exact boundaries.
        a.mmap(&anon(BASE + 9 * P, P, 1)).unwrap();
        a.munmap(BASE + P, 8 * P).unwrap();
        assert_eq!(layout(&a), vec![(0, 1, 3), (9, 10, 1)]);
        a.munmap(BASE + 9 * P, P).unwrap();
        a.munmap(BASE + 20 * P, P).unwrap(); // nothing there: fine
        assert_eq!(layout(&a), vec![(0, 1, 3)]);
        assert!(matches!(
            a.munmap(BASE + 5, P),
            Err(MemError::Unaligned { .. })
        ));
        assert!(matches!(a.munmap(BASE, 0), Err(MemError::Invalid(_))));
    }

    #[test]
    fn mprotect_splits_and_stops_at_a_hole_like_the_kernel() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE, 4 * P, 3)).unwrap();
        a.mprotect(BASE + P, P + 10, 1).unwrap(); // pages 1..3
        assert_eq!(layout(&a), vec![(0, 1, 3), (1, 3, 1), (3, 4, 3)]);
        // At exact VMA boundaries: no new split.
        a.mprotect(BASE + P, 2 * P, 0).unwrap();
        assert_eq!(layout(&a), vec![(0, 1, 3), (1, 3, 0), (3, 4, 3)]);
        // A hole: the part before it changes, ENOMEM.
        a.mmap(&anon(BASE + 6 * P, P, 3)).unwrap();
        assert_eq!(
            a.mprotect(BASE + 2 * P, 5 * P, 4).map_err(|e| e.errno()),
            Err(12)
        );
        assert_eq!(
            layout(&a),
            vec![(0, 1, 3), (1, 2, 0), (2, 3, 4), (3, 4, 4), (6, 7, 3)]
        );
        // Starting in a hole: nothing changes.
        assert!(a.mprotect(BASE + 5 * P, 2 * P, 1).is_err());
        assert_eq!(a.vma_at(BASE + 6 * P).unwrap().prot, Prot::RW);
        // Running past the last VMA: changed, then ENOMEM.
        assert!(a.mprotect(BASE + 6 * P, 3 * P, 1).is_err());
        assert_eq!(a.vma_at(BASE + 6 * P).unwrap().prot, Prot::READ);
        assert_eq!(a.mprotect(BASE + 3, 0, 1).map_err(|e| e.errno()), Err(22));
        assert_eq!(a.mprotect(BASE, 0, 1), Ok(()));
        // The merged view joins what the kernel would.
        let merged: Vec<_> = a.merged().iter().map(|v| (v.start, v.end)).collect();
        assert_eq!(
            merged,
            vec![
                (BASE, BASE + P),
                (BASE + P, BASE + 2 * P),
                (BASE + 2 * P, BASE + 4 * P),
                (BASE + 6 * P, BASE + 7 * P)
            ]
        );
    }

    #[test]
    fn a_private_mapping_once_writable_is_never_merged_with_one_that_was_not() {
        // ld.so's RELRO: a read-only segment, then the data mapped writable and made
        // read-only after relocation. The kernel charged the second (VM_ACCOUNT) and shows
        // two lines; a shared mapping made read-only and back is one line again.
        let mut a = AddressSpace::new();
        let mut ro = fmap(BASE, 2 * P, 1, 0, false);
        ro.prot = 1;
        a.mmap(&ro).unwrap();
        a.mmap(&fmap(BASE + 2 * P, P, 1, 2 * P, false)).unwrap();
        a.mprotect(BASE + 2 * P, P, 1).unwrap();
        assert_eq!(a.merged().len(), 2);
        assert!(a.vma_at(BASE + 2 * P).unwrap().accounted);
        assert!(!a.vma_at(BASE).unwrap().accounted);
        // Made writable later, the first is charged too: one line.
        a.mprotect(BASE, 2 * P, 1 | 2).unwrap();
        a.mprotect(BASE, 2 * P, 1).unwrap();
        assert_eq!(a.merged().len(), 1);
        a.mmap(&fmap(BASE + 8 * P, 3 * P, 2, 0, true)).unwrap();
        a.mprotect(BASE + 9 * P, P, 1).unwrap();
        assert_eq!(a.merged().len(), 4);
        a.mprotect(BASE + 9 * P, P, 3).unwrap();
        assert_eq!(a.merged().len(), 2);
        // Anonymous memory made a guard page (never written): no longer charged, merged
        // with a PROT_NONE reservation beside it.
        a.mmap(&anon(BASE + 12 * P, P, 0)).unwrap();
        a.mmap(&anon(BASE + 13 * P, P, 3)).unwrap();
        a.mprotect(BASE + 13 * P, P, 0).unwrap();
        assert_eq!(a.merged().len(), 3);
        // MAP_NORESERVE: not charged.
        let mut nr = anon(BASE + 20 * P, P, 3);
        nr.flags |= MAP_NORESERVE;
        a.mmap(&nr).unwrap();
        assert!(!a.vma_at(BASE + 20 * P).unwrap().accounted);
    }

    #[test]
    fn mremap_shrinks_grows_in_place_and_moves() {
        let mut a = AddressSpace::new();
        a.mmap(&fmap(BASE, 4 * P, 3, P, true)).unwrap();
        // Shrink: the tail goes, the address stays.
        a.mremap(BASE, 4 * P, 3 * P - 5, 0, 0, BASE).unwrap();
        assert_eq!(layout(&a), vec![(0, 3, 3)]);
        assert!(matches!(
            a.mremap(BASE, 3 * P, P, 0, 0, BASE + P),
            Err(MemError::Invalid(_))
        ));
        // Grow in place: the extension continues the file.
        a.mremap(BASE, 3 * P, 5 * P, 0, 0, BASE).unwrap();
        assert_eq!(layout(&a), vec![(0, 3, 3), (3, 5, 3)]);
        assert_eq!(offsets(&a), vec![Some(1), Some(4)]);
        // Grow by moving: the whole old range (two model VMAs, one kernel VMA) moves.
        a.mremap(BASE, 5 * P, 6 * P, MREMAP_MAYMOVE, 0, BASE + 20 * P)
            .unwrap();
        assert_eq!(layout(&a), vec![(20, 23, 3), (23, 26, 3)]);
        assert_eq!(offsets(&a), vec![Some(1), Some(4)]);
        assert!(a.vma_at(BASE).is_none());
        // A move without MREMAP_MAYMOVE cannot have happened.
        assert!(a.mremap(BASE + 20 * P, P, 2 * P, 0, 0, BASE).is_err());
        // Growing a range with a hole, or from an unmapped address: EFAULT.
        assert_eq!(
            a.mremap(BASE, P, 2 * P, MREMAP_MAYMOVE, 0, BASE + 40 * P)
                .map_err(|e| e.errno()),
            Err(14)
        );
        a.munmap(BASE + 22 * P, P).unwrap();
        assert_eq!(
            a.mremap(
                BASE + 20 * P,
                4 * P,
                8 * P,
                MREMAP_MAYMOVE,
                0,
                BASE + 40 * P
            )
            .map_err(|e| e.errno()),
            Err(14)
        );
        assert_eq!(layout(&a), vec![(20, 22, 3), (23, 26, 3)]);
    }

    #[test]
    fn mremap_part_of_a_vma_splits_it() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE, 6 * P, 3)).unwrap();
        a.mremap(BASE + 2 * P, 2 * P, 3 * P, MREMAP_MAYMOVE, 0, BASE + 10 * P)
            .unwrap();
        assert_eq!(layout(&a), vec![(0, 2, 3), (4, 6, 3), (10, 13, 3)]);
    }

    #[test]
    fn mremap_fixed_unmaps_the_target_and_shrinks_first() {
        let mut a = AddressSpace::new();
        a.mmap(&fmap(BASE, 4 * P, 1, 0, false)).unwrap();
        a.mmap(&anon(BASE + 10 * P, 4 * P, 1)).unwrap();
        let f = MREMAP_MAYMOVE | MREMAP_FIXED;
        a.mremap(BASE, 4 * P, 2 * P, f, BASE + 11 * P, BASE + 11 * P)
            .unwrap();
        assert_eq!(layout(&a), vec![(10, 11, 1), (11, 13, 3), (13, 14, 1)]);
        assert_eq!(offsets(&a), vec![None, Some(0), None]);
        // Overlapping old and new ranges: EINVAL, nothing changes.
        assert!(matches!(
            a.mremap(BASE + 11 * P, 2 * P, 2 * P, f, BASE + 12 * P, BASE + 12 * P),
            Err(MemError::Invalid(_))
        ));
        // FIXED without MAYMOVE, a result other than new_addr: refused.
        assert!(
            a.mremap(BASE + 11 * P, P, P, MREMAP_FIXED, BASE, BASE)
                .is_err()
        );
        assert!(a.mremap(BASE + 11 * P, P, P, f, BASE, BASE + P).is_err());
        assert_eq!(layout(&a), vec![(10, 11, 1), (11, 13, 3), (13, 14, 1)]);
        // Growing while moving to a fixed place.
        a.mremap(BASE + 11 * P, 2 * P, 3 * P, f, BASE, BASE)
            .unwrap();
        assert_eq!(layout(&a), vec![(0, 3, 3), (10, 11, 1), (13, 14, 1)]);
        assert_eq!(offsets(&a), vec![Some(0), None, None]);
    }

    #[test]
    fn mremap_dontunmap_keeps_the_old_range() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE, 2 * P, 3)).unwrap();
        let f = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
        assert!(a.mremap(BASE, 2 * P, 3 * P, f, 0, BASE + 8 * P).is_err());
        a.mremap(BASE, 2 * P, 2 * P, f, 0, BASE + 8 * P).unwrap();
        assert_eq!(layout(&a), vec![(0, 2, 3), (8, 10, 3)]);
    }

    #[test]
    fn mremap_old_size_zero_duplicates_a_shared_mapping() {
        let mut a = AddressSpace::new();
        a.mmap(&fmap(BASE, 4 * P, 2, 0, true)).unwrap();
        a.mremap(BASE + P, 0, 2 * P, MREMAP_MAYMOVE, 0, BASE + 10 * P)
            .unwrap();
        assert_eq!(layout(&a), vec![(0, 4, 3), (10, 12, 3)]);
        assert_eq!(offsets(&a), vec![Some(0), Some(1)]);
        a.mmap(&anon(BASE + 20 * P, P, 3)).unwrap();
        assert!(
            a.mremap(BASE + 20 * P, 0, P, MREMAP_MAYMOVE, 0, BASE + 30 * P)
                .is_err()
        );
    }

    #[test]
    fn brk_grows_and_shrinks_the_heap() {
        let mut a = AddressSpace::new();
        let start = BASE + 100 * P;
        a.brk_to(start).unwrap(); // brk(0)
        assert!(a.is_empty());
        a.brk_to(start + 2 * P + 8).unwrap();
        assert_eq!(layout(&a), vec![(100, 103, 3)]);
        assert_eq!(a.vma_at(start).unwrap().role, Role::Heap);
        a.brk_to(start + P).unwrap();
        assert_eq!(layout(&a), vec![(100, 101, 3)]);
        a.brk_to(start + P + 1).unwrap();
        assert_eq!(layout(&a), vec![(100, 101, 3), (101, 102, 3)]);
        assert_eq!(a.merged().len(), 1);
        assert!(a.brk_to(start - P).is_err());
        assert_eq!(a.brk().map(|b| b.current), Some(start + P + 1));
    }

    #[test]
    fn shmat_and_shmdt_including_a_split_attachment() {
        let mut a = AddressSpace::new();
        let seg = MappedObject {
            id: ObjectId::SysV(42),
            path: Str::from("/SYSV00000000 (deleted)"),
        };
        a.shmat(BASE, 3 * P - 1, seg.clone(), 0).unwrap();
        a.shmat(BASE + 10 * P, 3 * P, seg.clone(), SHM_RDONLY | SHM_EXEC)
            .unwrap();
        assert_eq!(layout(&a), vec![(0, 3, 3), (10, 13, 5)]);
        a.mprotect(BASE + P, P, 1).unwrap();
        assert_eq!(a.shmdt(BASE, Some(3 * P)), Ok(ObjectId::SysV(42)));
        assert_eq!(layout(&a), vec![(10, 13, 5)]);
        assert!(a.shmdt(BASE, None).is_err(), "nothing attached any more");
        // A non-SysV mapping at the address does not count; the next attachment does not
        // match either (its offset is not its distance from the address).
        a.mmap(&anon(BASE, P, 3)).unwrap();
        assert!(a.shmdt(BASE, None).is_err());
        assert!(a.shmdt(BASE + 10 * P + 1, None).is_err());
        a.shmdt(BASE + 10 * P, None).unwrap();
        assert_eq!(layout(&a), vec![(0, 1, 3)]);
    }

    #[test]
    fn madvise_dontfork_is_left_out_of_a_fork() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE, 4 * P, 3)).unwrap();
        let mut sh = fmap(BASE + 8 * P, P, 1, 0, true);
        sh.flags = MAP_SHARED | MAP_FIXED;
        a.mmap(&sh).unwrap();
        a.madvise(BASE + P, P, MADV_DONTFORK).unwrap();
        a.madvise(BASE, P, 4).unwrap(); // MADV_DONTNEED: no change
        assert_eq!(a.len(), 4);
        let child = a.fork();
        assert_eq!(layout(&child), vec![(0, 1, 3), (2, 4, 3), (8, 9, 3)]);
        assert!(child.vma_at(BASE + 8 * P).unwrap().shared);
        a.madvise(BASE + P, P, MADV_DOFORK).unwrap();
        assert_eq!(a.fork().mapped_bytes(), 5 * P);
        assert!(a.madvise(BASE + 8 * P, P, MADV_WIPEONFORK).is_err());
        a.madvise(BASE, P, MADV_WIPEONFORK).unwrap();
        assert!(a.fork().vma_at(BASE).unwrap().wipeonfork);
        assert_eq!(
            a.madvise(BASE + 3 * P, 3 * P, MADV_DONTFORK)
                .map_err(|e| e.errno()),
            Err(12)
        );
        assert!(
            a.vma_at(BASE + 3 * P).unwrap().dontfork,
            "the mapped part changed"
        );
    }

    #[test]
    fn queries() {
        let mut a = AddressSpace::new();
        a.mmap(&anon(BASE, 2 * P, 3)).unwrap();
        a.mmap(&anon(BASE + 4 * P, 2 * P, 1)).unwrap();
        assert!(a.vma_at(BASE - 1).is_none());
        assert_eq!(a.vma_at(BASE + 2 * P - 1).map(|v| v.start), Some(BASE));
        assert!(a.vma_at(BASE + 2 * P).is_none());
        let o: Vec<u64> = a
            .overlapping(BASE + P, BASE + 4 * P + 1)
            .map(|v| v.start)
            .collect();
        assert_eq!(o, vec![BASE, BASE + 4 * P]);
        assert_eq!(a.overlapping(BASE + 2 * P, BASE + 4 * P).count(), 0);
        assert!(a.is_mapped(BASE, BASE + 2 * P));
        assert!(!a.is_mapped(BASE, BASE + 3 * P));
        assert_eq!(a.overlapping(0, u64::MAX).count(), 2);
    }
}
