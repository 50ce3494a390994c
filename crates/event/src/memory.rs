//! The event kinds of the shared-memory and multi-variant parts of vigil (issues 11 and 12):
//! a memory access to a shared-memory object, an address-space snapshot, and a divergence
//! between variants. They live here, beside the syscall kinds, so every consumer (log, JSON,
//! text, rules, graph) handles them like any other kind.

use crate::Str;
use crate::event::Args;
use crate::syscall::SyscallId;
use std::sync::Arc;

/// How a memory access used its bytes. A read-modify-write instruction is both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemAccess {
    Read,
    Write,
    ReadWrite,
}

impl MemAccess {
    pub fn name(self) -> &'static str {
        match self {
            MemAccess::Read => "read",
            MemAccess::Write => "write",
            MemAccess::ReadWrite => "read_write",
        }
    }

    pub fn reads(self) -> bool {
        matches!(self, MemAccess::Read | MemAccess::ReadWrite)
    }

    pub fn writes(self) -> bool {
        matches!(self, MemAccess::Write | MemAccess::ReadWrite)
    }
}

/// What kind of object a shared mapping shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmoKind {
    /// A file mapped `MAP_SHARED` (including /dev/shm, shm_open and memfd files).
    File,
    /// A System V shared-memory segment (shmat); `SmoObject::ino` is its shm id.
    SysvShm,
    /// `MAP_SHARED|MAP_ANONYMOUS` memory shared across fork; `SmoObject::ino` is the inode the
    /// kernel gives it (as /proc/PID/maps shows).
    SharedAnon,
}

impl SmoKind {
    pub fn name(self) -> &'static str {
        match self {
            SmoKind::File => "file",
            SmoKind::SysvShm => "sysv_shm",
            SmoKind::SharedAnon => "shared_anon",
        }
    }

    pub fn from_name(s: &str) -> Option<SmoKind> {
        [SmoKind::File, SmoKind::SysvShm, SmoKind::SharedAnon]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// The identity of a shared-memory object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SmoObject {
    pub kind: SmoKind,
    /// Device of the file (0 when unknown or not a file).
    pub dev: u64,
    /// Inode of the file, the shm id of a SysV segment, the shmem inode of shared anonymous
    /// memory.
    pub ino: u64,
    /// The path, when there is one (empty otherwise).
    pub path: Str,
}

/// How vigil saw an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmoVia {
    /// A protection fault on a page vigil protected.
    Fault,
    /// Single-stepped with the page lifted (minipage mode: the exact bytes are known).
    Step,
    /// The kernel's own access on behalf of this syscall (a buffer argument in the object).
    Syscall(SyscallId),
}

impl SmoVia {
    /// `fault`, `step`, or `syscall`.
    pub fn name(self) -> &'static str {
        match self {
            SmoVia::Fault => "fault",
            SmoVia::Step => "step",
            SmoVia::Syscall(_) => "syscall",
        }
    }
}

/// A read or write of part of a shared-memory object (`smo_read`, `smo_write`,
/// `smo_read_write`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmoAccess {
    pub access: MemAccess,
    pub object: SmoObject,
    /// The part accessed: its offset in the object (the file offset for a file) and length.
    pub offset: u64,
    pub len: u64,
    /// The virtual address accessed (the faulting address, or the buffer's start).
    pub addr: u64,
    /// The instruction pointer of the access (the syscall instruction for a kernel access).
    pub ip: u64,
    pub via: SmoVia,
    /// Through a `MAP_PRIVATE` mapping of the object: a read sees the object's page (it has
    /// not been copied yet), a write copies the page into the process and never reaches the
    /// object or any other process.
    pub private: bool,
    /// The part of the object the mapping accessed through covers (its VMA): offset and
    /// length in the object. VMA granularity uses it.
    pub map_offset: u64,
    pub map_len: u64,
}

/// What the faulting instruction did with the address a SIGSEGV/SIGBUS names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAccess {
    /// Not decoded (no instruction could be read there).
    Unknown,
    Read,
    Write,
    ReadWrite,
    /// The instruction fetch itself (the address is the instruction pointer).
    Execute,
}

impl FaultAccess {
    pub fn name(self) -> &'static str {
        match self {
            FaultAccess::Unknown => "unknown",
            FaultAccess::Read => "read",
            FaultAccess::Write => "write",
            FaultAccess::ReadWrite => "read_write",
            FaultAccess::Execute => "execute",
        }
    }

    pub fn from_name(s: &str) -> Option<FaultAccess> {
        [
            FaultAccess::Unknown,
            FaultAccess::Read,
            FaultAccess::Write,
            FaultAccess::ReadWrite,
            FaultAccess::Execute,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// Where a kernel-raised SIGSEGV/SIGBUS pointed: what `summary` and `show` explain against the
/// address-space model when the process dies of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalFault {
    /// `si_addr`: the address the access touched.
    pub addr: u64,
    /// The instruction pointer at the fault.
    pub ip: u64,
    pub access: FaultAccess,
}

/// The minipage sizes `record --smo minipage:N` and `--granularity minipage:N` accept.
pub const MINIPAGE_MIN: u64 = 8;
pub const MINIPAGE_MAX: u64 = 2048;

/// How a recording monitored shared memory (`record --smo`, the log header's `smo`): the one
/// definition the recorder, the header and the graph share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmoMode {
    Off,
    /// One part per object: a fault grants every mapping of the object in the process.
    Object,
    /// One part per mapping (VMA).
    Vma,
    /// One part per 4 KiB page.
    Page,
    /// Every access faults and is single-stepped: the exact bytes, in parts of N bytes.
    Minipage(u64),
}

impl SmoMode {
    /// `off`, `object`, `vma`, `page`, `minipage` (64 bytes), `minipage:N` (N a power of two
    /// from 8 to 2048); the error is a sentence naming what is wrong.
    pub fn parse(s: &str) -> Result<SmoMode, String> {
        Ok(match s {
            "off" => SmoMode::Off,
            "object" => SmoMode::Object,
            "vma" => SmoMode::Vma,
            "page" => SmoMode::Page,
            "minipage" => SmoMode::Minipage(64),
            _ => match s.strip_prefix("minipage:") {
                Some(n) => SmoMode::Minipage(minipage_size(n).ok_or_else(|| {
                    format!(
                        "minipage:{n}: the part size must be a power of two from {MINIPAGE_MIN} to {MINIPAGE_MAX} bytes"
                    )
                })?),
                None => {
                    return Err(format!(
                        "{s}: unknown mode (expected off, object, vma, page or minipage[:BYTES])"
                    ));
                }
            },
        })
    }
}

/// A minipage part size: a power of two from MINIPAGE_MIN to MINIPAGE_MAX.
pub fn minipage_size(s: &str) -> Option<u64> {
    let n: u64 = s.parse().ok()?;
    (n.is_power_of_two() && (MINIPAGE_MIN..=MINIPAGE_MAX).contains(&n)).then_some(n)
}

impl std::fmt::Display for SmoMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmoMode::Off => f.write_str("off"),
            SmoMode::Object => f.write_str("object"),
            SmoMode::Vma => f.write_str("vma"),
            SmoMode::Page => f.write_str("page"),
            SmoMode::Minipage(n) => write!(f, "minipage:{n}"),
        }
    }
}

/// The address window `record --smo` places shared mappings in (docs/shared-memory.md, "The
/// window"): a seccomp filter finds the buffers that point there by their high 32 bits. A shared
/// mapping there is monitored, one outside it is not. Here, at the bottom, so the recorder and
/// the graph agree on it.
pub const SMO_WINDOW_START: u64 = 0x6ee0_0000_0000;
pub const SMO_WINDOW_END: u64 = 0x6f00_0000_0000;

/// PROT_* bits of a VMA.
pub const PROT_READ: u8 = 1;
pub const PROT_WRITE: u8 = 2;
pub const PROT_EXEC: u8 = 4;

/// One mapping of an address space, as a line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    /// PROT_READ | PROT_WRITE | PROT_EXEC.
    pub prot: u8,
    /// `s` (shared) rather than `p` (private, copy on write).
    pub shared: bool,
    pub offset: u64,
    /// The device as the kernel numbers it (`makedev(major, minor)`), 0 for anonymous memory.
    pub dev: u64,
    pub ino: u64,
    /// The file, or the kernel's name (`[heap]`, `[stack]`, `/SYSV00000000 (deleted)`), or
    /// empty for anonymous memory.
    pub path: Str,
}

impl Vma {
    /// `rw-s`: the permission column of /proc/PID/maps.
    pub fn perms(&self) -> String {
        let bit = |b: u8, c: char| if self.prot & b != 0 { c } else { '-' };
        let mut s = String::with_capacity(4);
        s.push(bit(PROT_READ, 'r'));
        s.push(bit(PROT_WRITE, 'w'));
        s.push(bit(PROT_EXEC, 'x'));
        s.push(if self.shared { 's' } else { 'p' });
        s
    }

    /// Reads the permission column back: `(prot, shared)`.
    pub fn parse_perms(s: &str) -> Option<(u8, bool)> {
        let b = s.as_bytes();
        if b.len() != 4 {
            return None;
        }
        let mut prot = 0;
        for (i, (c, bit)) in [(b'r', PROT_READ), (b'w', PROT_WRITE), (b'x', PROT_EXEC)]
            .into_iter()
            .enumerate()
        {
            match b[i] {
                x if x == c => prot |= bit,
                b'-' => {}
                _ => return None,
            }
        }
        let shared = match b[3] {
            b's' => true,
            b'p' => false,
            _ => return None,
        };
        Some((prot, shared))
    }
}

/// A process's address space at one moment (taken at exec from /proc/PID/maps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub vmas: Arc<[Vma]>,
}

/// One variant's side of a divergence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantState {
    /// The variant's index (0 is the leader).
    pub index: u32,
    pub pid: u32,
    pub tid: u32,
    /// Whether this variant is one that disagreed.
    pub diverged: bool,
    /// The syscall it was at, if it was at one.
    pub call: Option<SyscallId>,
    /// Its arguments, positional against `call`'s signature, as compared (buffers as bytes).
    pub args: Args,
    /// What it was doing otherwise: `exited with 1`, `killed by SIGSEGV`, `no syscall within
    /// 5 s`.
    pub detail: Str,
}

/// The variants of a multi-variant run disagreed: every variant was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// What they disagreed on, in one word: `call`, `args`, `exit`, `signal`, `timeout`, ...
    pub what: Str,
    /// The leader's syscall, when the leader was at one.
    pub call: Option<SyscallId>,
    /// The names of the arguments that differed (empty when not about arguments).
    pub fields: Arc<[Str]>,
    /// A sentence for a person.
    pub detail: Str,
    pub variants: Arc<[VariantState]>,
}
