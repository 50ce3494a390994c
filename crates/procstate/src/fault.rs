//! Explaining a SIGSEGV or SIGBUS against the address-space model: which mapping the faulting
//! address is in (or that none is, and which are nearest), and why the access failed there —
//! a write to a read-only mapping, an instruction fetch from a non-executable one, a touch of
//! a PROT_NONE guard page, a stack overflow into the gap below the stack, a bus error past the
//! end of a mapped file, ... What `vigil summary` and `vigil show` say when a process dies of
//! one. Pure: the caller gives the model, the signal's details and what it knows of file sizes.
//!
//! The heuristics (documented where they are decided):
//! - below `LOW_ADDR` (vm.mmap_min_addr's default, 64 KiB) nothing is ever mapped: a NULL
//!   pointer, plus a small offset;
//! - an unmapped address below `[stack]` with nothing between them, within `STACK_REACH` of
//!   the stack's top: the stack could not grow there (its size limit, or the guard gap the
//!   kernel keeps above the next mapping). The model's `[stack]` is the one of the exec
//!   snapshot (the stack grows without events), hence a distance from its top;
//! - a guard page is a PROT_NONE private anonymous mapping of at most `GUARD_MAX` bytes right
//!   next to an accessible private anonymous one (a thread stack's guard, a buffer's fence);
//!   any other PROT_NONE mapping is just inaccessible.

use crate::mem::{AddressSpace, Backing, ObjectId, PAGE_SIZE, Prot, Role, Vma};
use vigil_event::{FaultAccess, SignalFault};

pub const SIGBUS: i32 = 7;
pub const SIGSEGV: i32 = 11;
/// `si_code` values the explanation reads.
pub const SI_KERNEL: i32 = 0x80;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const SEGV_PKUERR: i32 = 4;
pub const BUS_ADRALN: i32 = 1;

/// Nothing is mapped below this address (vm.mmap_min_addr's default).
pub const LOW_ADDR: u64 = 0x10000;
/// How far below the top of `[stack]` an unmapped fault still counts as a stack overflow.
pub const STACK_REACH: u64 = 256 << 20;
/// The largest PROT_NONE mapping counted as a guard page.
pub const GUARD_MAX: u64 = 64 * PAGE_SIZE;

/// Why the access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Not mapped, at a low address: a NULL pointer dereference (plus an offset).
    NullDereference,
    /// Not mapped.
    NotMapped,
    /// Not mapped, just below the stack: it could not grow there.
    StackOverflow,
    /// A write (or read-modify-write) to a mapping without PROT_WRITE.
    WriteToReadOnly,
    /// An instruction fetch from a mapping without PROT_EXEC.
    ExecNonExecutable,
    /// Any access to a PROT_NONE mapping that is not a guard page.
    Inaccessible,
    /// A read of a mapping that allows other accesses but not reads (execute-only memory).
    NotReadable,
    /// A PROT_NONE guard page next to accessible memory.
    GuardPage,
    /// Protection keys denied the access (SEGV_PKUERR).
    ProtectionKey,
    /// SIGBUS in a file mapping past the end of the file: `offset` in the file, of `size`.
    BeyondEndOfFile { offset: u64, size: u64 },
    /// SIGBUS in a file mapping whose size the log does not say (most often past its end).
    FileBusError,
    /// SIGBUS for a misaligned access (alignment checking on).
    Misaligned,
    /// Another SIGBUS.
    BusError,
    /// The kernel sent it for a fault that has no address (a general protection fault: a
    /// non-canonical address, a privileged instruction, ...).
    GeneralProtection,
    /// The model allows this access (or the access is not known): the cause is unknown.
    Unknown,
}

impl FaultKind {
    /// A stable one-word name (for JSON, tests and rules).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::NullDereference => "null_dereference",
            FaultKind::NotMapped => "not_mapped",
            FaultKind::StackOverflow => "stack_overflow",
            FaultKind::WriteToReadOnly => "write_to_read_only",
            FaultKind::ExecNonExecutable => "exec_non_executable",
            FaultKind::Inaccessible => "inaccessible",
            FaultKind::NotReadable => "not_readable",
            FaultKind::GuardPage => "guard_page",
            FaultKind::ProtectionKey => "protection_key",
            FaultKind::BeyondEndOfFile { .. } => "beyond_end_of_file",
            FaultKind::FileBusError => "file_bus_error",
            FaultKind::Misaligned => "misaligned",
            FaultKind::BusError => "bus_error",
            FaultKind::GeneralProtection => "general_protection",
            FaultKind::Unknown => "unknown",
        }
    }
}

/// The kernel's `si_code` and the model disagree about whether the address is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disagreement {
    /// SEGV_MAPERR, but the model has a mapping there.
    KernelFoundNoMapping,
    /// SEGV_ACCERR, but the model has no mapping there.
    KernelFoundMapping,
}

/// A fault explained against the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultExplanation {
    pub signal: i32,
    /// `si_code`.
    pub code: i32,
    pub addr: u64,
    pub ip: u64,
    pub access: FaultAccess,
    pub kind: FaultKind,
    /// The mapping the address is in (as the kernel shows it: compatible neighbours merged).
    pub vma: Option<Vma>,
    /// For an unmapped address: the nearest mappings below and above it.
    pub below: Option<Vma>,
    pub above: Option<Vma>,
    /// For a guard page: the accessible mapping it guards.
    pub guarded: Option<Vma>,
    /// The mapping the faulting instruction is in.
    pub ip_vma: Option<Vma>,
    pub disagreement: Option<Disagreement>,
}

/// Whether the instruction fetched the address itself.
fn executes(fault: &SignalFault) -> bool {
    fault.access == FaultAccess::Execute
        || (fault.access == FaultAccess::Unknown && fault.addr == fault.ip)
}

fn writes(a: FaultAccess) -> bool {
    matches!(a, FaultAccess::Write | FaultAccess::ReadWrite)
}

fn private_anon(v: &Vma) -> bool {
    !v.shared && v.backing == Backing::Anonymous
}

/// Explains `fault` (of signal `signal` with `si_code` `code`) against `mm`; `file_size` says
/// a file's size when known.
pub fn explain(
    mm: &AddressSpace,
    signal: i32,
    code: i32,
    fault: &SignalFault,
    file_size: impl Fn(&ObjectId) -> Option<u64>,
) -> FaultExplanation {
    let merged = mm.merged();
    let at = |a: u64| merged.iter().position(|v| v.contains(a));
    let i = at(fault.addr);
    let mut e = FaultExplanation {
        signal,
        code,
        addr: fault.addr,
        ip: fault.ip,
        access: fault.access,
        kind: FaultKind::Unknown,
        vma: i.map(|i| merged[i].clone()),
        below: None,
        above: None,
        guarded: None,
        ip_vma: at(fault.ip).map(|i| merged[i].clone()),
        disagreement: None,
    };
    if signal == SIGSEGV && code == SI_KERNEL {
        e.kind = FaultKind::GeneralProtection;
        return e;
    }
    let Some(i) = i else {
        let above = merged.iter().position(|v| v.start > fault.addr);
        let below_i = match above {
            Some(0) => None,
            Some(a) => Some(a - 1),
            None => merged.len().checked_sub(1),
        };
        e.below = below_i.map(|b| merged[b].clone());
        e.above = above.map(|a| merged[a].clone());
        e.kind = if fault.addr < LOW_ADDR {
            FaultKind::NullDereference
        } else if e
            .above
            .as_ref()
            .is_some_and(|s| s.role == Role::Stack && s.end - fault.addr <= STACK_REACH)
        {
            FaultKind::StackOverflow
        } else {
            FaultKind::NotMapped
        };
        if signal == SIGSEGV && code == SEGV_ACCERR {
            e.disagreement = Some(Disagreement::KernelFoundMapping);
        }
        return e;
    };
    let v = &merged[i];
    if signal == SIGSEGV && code == SEGV_MAPERR {
        e.disagreement = Some(Disagreement::KernelFoundNoMapping);
    }
    if signal == SIGBUS {
        e.kind = match &v.backing {
            Backing::Object {
                id: id @ ObjectId::File { .. },
                ..
            } => match (v.offset_at(fault.addr), file_size(id)) {
                // A page wholly past the end faults; the model's size may lag a little.
                (Some(offset), Some(size)) if offset >= size => {
                    FaultKind::BeyondEndOfFile { offset, size }
                }
                _ if code == BUS_ADRALN => FaultKind::Misaligned,
                _ => FaultKind::FileBusError,
            },
            _ if code == BUS_ADRALN => FaultKind::Misaligned,
            _ => FaultKind::BusError,
        };
        return e;
    }
    if code == SEGV_PKUERR {
        e.kind = FaultKind::ProtectionKey;
        return e;
    }
    e.kind = if v.prot == Prot::NONE {
        let guarded = [i.checked_sub(1), i.checked_add(1)]
            .into_iter()
            .flatten()
            .filter_map(|n| merged.get(n))
            .find(|n| {
                (n.end == v.start || n.start == v.end) && n.prot != Prot::NONE && private_anon(n)
            });
        match guarded {
            Some(g) if private_anon(v) && v.len() <= GUARD_MAX => {
                e.guarded = Some(g.clone());
                FaultKind::GuardPage
            }
            _ => FaultKind::Inaccessible,
        }
    } else if executes(fault) && !v.prot.executable() {
        FaultKind::ExecNonExecutable
    } else if writes(fault.access) && !v.prot.writable() {
        FaultKind::WriteToReadOnly
    } else if fault.access == FaultAccess::Read && !v.prot.readable() {
        FaultKind::NotReadable
    } else {
        FaultKind::Unknown
    };
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MappedObject, Mmap};
    use vigil_event::Str;

    const P: u64 = PAGE_SIZE;

    fn map(a: &mut AddressSpace, addr: u64, len: u64, prot: u64, file: Option<u64>) {
        a.mmap(&Mmap {
            addr,
            len,
            prot,
            flags: MAP_FIXED
                | match file {
                    Some(_) => MAP_SHARED,
                    None => MAP_PRIVATE | MAP_ANONYMOUS,
                },
            object: file.map(|ino| MappedObject {
                id: ObjectId::File { dev: 8, ino },
                path: Str::from(format!("/f{ino}")),
            }),
            offset: 0,
        })
        .unwrap();
    }

    fn space() -> AddressSpace {
        let mut a = crate::maps::parse_maps(
            "00400000-00401000 r-xp 00000000 fd:01 5 /bin/prog\n\
             00401000-00402000 r--p 00001000 fd:01 5 /bin/prog\n\
             7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n",
        )
        .unwrap();
        // A guard page below a thread stack, a big PROT_NONE reservation, a file.
        map(&mut a, 0x7f00_0000_0000, P, 0, None);
        map(&mut a, 0x7f00_0000_1000, 8 * P, 3, None);
        map(&mut a, 0x7f10_0000_0000, 1024 * P, 0, None);
        map(&mut a, 0x7f20_0000_0000, 3 * P, 3, Some(9));
        a
    }

    fn explain_at(
        a: &AddressSpace,
        signal: i32,
        code: i32,
        addr: u64,
        access: FaultAccess,
    ) -> FaultExplanation {
        let f = SignalFault {
            addr,
            ip: 0x400100,
            access,
        };
        explain(a, signal, code, &f, |id| {
            (*id == ObjectId::File { dev: 8, ino: 9 }).then_some(P + 10)
        })
    }

    #[test]
    fn unmapped_addresses() {
        let a = space();
        let e = explain_at(&a, SIGSEGV, SEGV_MAPERR, 0x8, FaultAccess::Write);
        assert_eq!(e.kind, FaultKind::NullDereference);
        assert_eq!(e.below, None);
        assert_eq!(e.above.map(|v| v.start), Some(0x400000));
        let e = explain_at(&a, SIGSEGV, SEGV_MAPERR, 0x500000, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::NotMapped);
        assert_eq!(e.below.map(|v| v.end), Some(0x402000));
        assert!(e.vma.is_none() && e.disagreement.is_none());
        // Just below the stack, and far below it.
        let e = explain_at(
            &a,
            SIGSEGV,
            SEGV_MAPERR,
            0x7ffc_ff80_0000,
            FaultAccess::Write,
        );
        assert_eq!(e.kind, FaultKind::StackOverflow);
        let e = explain_at(
            &a,
            SIGSEGV,
            SEGV_MAPERR,
            0x7ffb_0000_0000,
            FaultAccess::Write,
        );
        assert_eq!(e.kind, FaultKind::NotMapped);
        // Above everything.
        let e = explain_at(
            &a,
            SIGSEGV,
            SEGV_MAPERR,
            0xffff_0000_0000,
            FaultAccess::Read,
        );
        assert_eq!((e.kind, e.above.is_none()), (FaultKind::NotMapped, true));
        assert_eq!(e.below.map(|v| v.role), Some(Role::Stack));
        // The kernel says mapped, the model does not.
        let e = explain_at(&a, SIGSEGV, SEGV_ACCERR, 0x500000, FaultAccess::Read);
        assert_eq!(e.disagreement, Some(Disagreement::KernelFoundMapping));
    }

    #[test]
    fn permission_faults() {
        let a = space();
        let e = explain_at(&a, SIGSEGV, SEGV_ACCERR, 0x401008, FaultAccess::Write);
        assert_eq!(e.kind, FaultKind::WriteToReadOnly);
        assert_eq!(e.vma.as_ref().map(|v| v.start), Some(0x401000));
        assert_eq!(e.ip_vma.map(|v| v.start), Some(0x400000));
        let e = explain_at(&a, SIGSEGV, SEGV_ACCERR, 0x401008, FaultAccess::ReadWrite);
        assert_eq!(e.kind, FaultKind::WriteToReadOnly);
        let e = explain_at(&a, SIGSEGV, SEGV_ACCERR, 0x401008, FaultAccess::Execute);
        assert_eq!(e.kind, FaultKind::ExecNonExecutable);
        // An undecoded access whose address is the instruction pointer is a fetch.
        let f = SignalFault {
            addr: 0x7f00_0000_2000,
            ip: 0x7f00_0000_2000,
            access: FaultAccess::Unknown,
        };
        assert_eq!(
            explain(&a, SIGSEGV, SEGV_ACCERR, &f, |_| None).kind,
            FaultKind::ExecNonExecutable
        );
        // The model allows it: unknown, and the kernel's MAPERR disagrees.
        let e = explain_at(&a, SIGSEGV, SEGV_MAPERR, 0x401008, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::Unknown);
        assert_eq!(e.disagreement, Some(Disagreement::KernelFoundNoMapping));
        let e = explain_at(&a, SIGSEGV, SEGV_ACCERR, 0x401008, FaultAccess::Unknown);
        assert_eq!(e.kind, FaultKind::Unknown);
        let e = explain_at(&a, SIGSEGV, SEGV_PKUERR, 0x401008, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::ProtectionKey);
        let e = explain_at(&a, SIGSEGV, SI_KERNEL, 0, FaultAccess::Unknown);
        assert_eq!(e.kind, FaultKind::GeneralProtection);
    }

    #[test]
    fn guard_pages_and_inaccessible_memory() {
        let a = space();
        let e = explain_at(
            &a,
            SIGSEGV,
            SEGV_ACCERR,
            0x7f00_0000_0010,
            FaultAccess::Write,
        );
        assert_eq!(e.kind, FaultKind::GuardPage);
        assert_eq!(e.guarded.map(|v| v.start), Some(0x7f00_0000_1000));
        // A large PROT_NONE reservation is not a guard page, even next to memory.
        let e = explain_at(
            &a,
            SIGSEGV,
            SEGV_ACCERR,
            0x7f10_0000_0000,
            FaultAccess::Read,
        );
        assert_eq!(e.kind, FaultKind::Inaccessible);
        // A small PROT_NONE mapping with nothing accessible beside it.
        let mut b = a.clone();
        map(&mut b, 0x7f30_0000_0000, P, 0, None);
        let e = explain_at(
            &b,
            SIGSEGV,
            SEGV_ACCERR,
            0x7f30_0000_0000,
            FaultAccess::Read,
        );
        assert_eq!(e.kind, FaultKind::Inaccessible);
        // Execute-only memory read.
        map(&mut b, 0x7f40_0000_0000, P, 4, None);
        let e = explain_at(
            &b,
            SIGSEGV,
            SEGV_ACCERR,
            0x7f40_0000_0000,
            FaultAccess::Read,
        );
        assert_eq!(e.kind, FaultKind::NotReadable);
    }

    #[test]
    fn bus_errors() {
        let a = space();
        // The file is P+10 bytes: its second page is partly inside, the third beyond.
        let base = 0x7f20_0000_0000;
        let e = explain_at(&a, SIGBUS, 2, base + 2 * P + 8, FaultAccess::Read);
        assert_eq!(
            e.kind,
            FaultKind::BeyondEndOfFile {
                offset: 2 * P + 8,
                size: P + 10
            }
        );
        let e = explain_at(&a, SIGBUS, 2, base + 8, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::FileBusError, "inside the known size");
        let e = explain(
            &a,
            SIGBUS,
            2,
            &SignalFault {
                addr: base + 2 * P,
                ip: 0,
                access: FaultAccess::Write,
            },
            |_| None,
        );
        assert_eq!(e.kind, FaultKind::FileBusError, "size unknown");
        let e = explain_at(&a, SIGBUS, BUS_ADRALN, 0x7f00_0000_1001, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::Misaligned);
        let e = explain_at(&a, SIGBUS, 2, 0x7f00_0000_1000, FaultAccess::Read);
        assert_eq!(e.kind, FaultKind::BusError);
    }
}
