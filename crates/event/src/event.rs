//! The event: one model for every backend (ptrace, eBPF, imported JSON).

use crate::Str;
use crate::memory::{AddressSpace, Divergence, MemAccess, SmoAccess};
use crate::syscall::{Signature, SyscallId};
use crate::value::Value;
use smallvec::SmallVec;
use std::sync::Arc;

/// Decoded syscall arguments, positional against the syscall's `Signature` (inputs, then, in
/// exit events, outputs).
pub type Args = SmallVec<[Value; 6]>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the log's total order, unique and increasing.
    pub seq: u64,
    /// Nanoseconds since the Unix epoch (monotonic within one recording).
    pub time_ns: u64,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    SyscallEntry(SyscallEntry),
    SyscallExit(SyscallExit),
    ProcessStart(ProcessStart),
    ProcessExec(ProcessExec),
    ProcessExit(ProcessExit),
    ThreadStart(ThreadStart),
    ThreadExit(ThreadExit),
    Signal(SignalDelivery),
    /// Events a backend could not deliver. Never silent.
    Lost(Lost),
    /// Something vigil itself did about a process (a rule's action: deny, kill, stop, exec).
    Action(Action),
    /// A read or write of a shared-memory object (issue 11).
    SmoAccess(SmoAccess),
    /// A process's address space (taken at exec, from /proc/PID/maps).
    AddressSpace(AddressSpace),
    /// Variants of a multi-variant run disagreed (issue 12).
    Divergence(Divergence),
}

/// The type of an event, as named in JSON, rules and summaries: one per `EventKind`, except
/// that a shared-memory access has a type per `MemAccess`. `EVENT_TYPES` is the one table
/// every consumer derives its list from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SyscallEntry,
    SyscallExit,
    ProcessStart,
    ProcessExec,
    ProcessExit,
    ThreadStart,
    ThreadExit,
    Signal,
    Lost,
    Action,
    SmoRead,
    SmoWrite,
    SmoReadWrite,
    AddressSpace,
    Divergence,
}

/// One row of `EVENT_TYPES`.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    pub ty: EventType,
    /// The name in JSON (`type`), rules and summaries.
    pub name: &'static str,
    /// Other types an event of this type also is when matched by type (a read-modify-write
    /// access is a read and a write).
    pub also: &'static [EventType],
    /// One line for documentation and messages.
    pub about: &'static str,
}

/// Every event type, in `EventType` order (a test checks it).
pub const EVENT_TYPES: &[TypeInfo] = &[
    TypeInfo {
        ty: EventType::SyscallEntry,
        name: "syscall_entry",
        also: &[],
        about: "a syscall's entry",
    },
    TypeInfo {
        ty: EventType::SyscallExit,
        name: "syscall_exit",
        also: &[],
        about: "a syscall's exit",
    },
    TypeInfo {
        ty: EventType::ProcessStart,
        name: "process_start",
        also: &[],
        about: "a new process",
    },
    TypeInfo {
        ty: EventType::ProcessExec,
        name: "process_exec",
        also: &[],
        about: "a successful exec",
    },
    TypeInfo {
        ty: EventType::ProcessExit,
        name: "process_exit",
        also: &[],
        about: "a process ended",
    },
    TypeInfo {
        ty: EventType::ThreadStart,
        name: "thread_start",
        also: &[],
        about: "a new thread",
    },
    TypeInfo {
        ty: EventType::ThreadExit,
        name: "thread_exit",
        also: &[],
        about: "a thread ended",
    },
    TypeInfo {
        ty: EventType::Signal,
        name: "signal",
        also: &[],
        about: "a signal about to be delivered",
    },
    TypeInfo {
        ty: EventType::Lost,
        name: "lost",
        also: &[],
        about: "events a backend could not deliver",
    },
    TypeInfo {
        ty: EventType::Action,
        name: "action",
        also: &[],
        about: "something vigil did about a process",
    },
    TypeInfo {
        ty: EventType::SmoRead,
        name: "smo_read",
        also: &[],
        about: "a read of a shared-memory object",
    },
    TypeInfo {
        ty: EventType::SmoWrite,
        name: "smo_write",
        also: &[],
        about: "a write of a shared-memory object",
    },
    TypeInfo {
        ty: EventType::SmoReadWrite,
        name: "smo_read_write",
        also: &[EventType::SmoRead, EventType::SmoWrite],
        about: "a read-modify-write of a shared-memory object",
    },
    TypeInfo {
        ty: EventType::AddressSpace,
        name: "address_space",
        also: &[],
        about: "a process's address space, taken at exec",
    },
    TypeInfo {
        ty: EventType::Divergence,
        name: "divergence",
        also: &[],
        about: "variants of a multi-variant run disagreed",
    },
];

impl EventType {
    pub fn info(self) -> &'static TypeInfo {
        &EVENT_TYPES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn from_name(s: &str) -> Option<EventType> {
        EVENT_TYPES.iter().find(|t| t.name == s).map(|t| t.ty)
    }

    /// Every type name, in table order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        EVENT_TYPES.iter().map(|t| t.name)
    }

    /// Whether an event of type `self` is matched by a pattern naming `pattern`.
    pub fn counts_as(self, pattern: EventType) -> bool {
        self == pattern || self.info().also.contains(&pattern)
    }

    /// Whether events of this type are syscall entries or exits.
    pub fn is_syscall(self) -> bool {
        matches!(self, EventType::SyscallEntry | EventType::SyscallExit)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallEntry {
    pub call: SyscallId,
    pub args: Args,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallExit {
    pub call: SyscallId,
    /// `seq` of the matching entry event.
    pub entry_seq: u64,
    /// The raw return value; -4095..=-1 is `-errno`.
    pub ret: i64,
    /// The entry's arguments followed by the outputs.
    pub args: Args,
}

impl SyscallExit {
    /// The errno of a failed call.
    pub fn errno(&self) -> Option<i32> {
        errno_of(self.ret)
    }

    pub fn failed(&self) -> bool {
        self.errno().is_some()
    }

    /// Whether the call was interrupted and is being restarted by the kernel (see
    /// `is_restart`): not a failure, and not the end of the call.
    pub fn restarted(&self) -> bool {
        is_restart(self.ret)
    }
}

/// Whether a raw return value is one of the kernel-internal errnos a tracer sees when a signal
/// interrupts a call: ERESTARTSYS (512), ERESTARTNOINTR (513), ERESTARTNOHAND (514),
/// ERESTART_RESTARTBLOCK (516). The program never sees them: the kernel runs the call again
/// (or, for a handler without SA_RESTART, turns them into EINTR, which is then a failure).
pub fn is_restart(ret: i64) -> bool {
    matches!(ret, -516 | -514 | -513 | -512)
}

/// `Some(errno)` when a raw return value encodes a failure.
pub fn errno_of(ret: i64) -> Option<i32> {
    // `then`, not `then_some`: the negation must wait for the range check (-i64::MIN overflows).
    (-4095..=-1).contains(&ret).then(|| -ret as i32)
}

/// Identity and credentials of a process image.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// A new process (fork, vfork, clone without CLONE_THREAD, or the traced command itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessStart {
    pub ppid: u32,
    /// The image it runs: inherited from the parent until it execs.
    pub exe: Str,
    pub argv: Arc<[Str]>,
    pub creds: Creds,
    /// The clone flags it was created with (0 for fork, or when unknown).
    pub clone_flags: u64,
}

/// A successful execve/execveat: the process now runs a new image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessExec {
    /// The executable as the kernel resolved it (for a script, the interpreter).
    pub exe: Str,
    pub argv: Arc<[Str]>,
    pub creds: Creds,
    /// Device and inode of the executable (0 when unknown).
    pub dev: u64,
    pub ino: u64,
}

/// How a process or thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// The shell's view: the code, or 128+N for a signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal { signal, .. } => 128 + signal,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {}", crate::flags::signal_name(*signal as i64))?;
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessExit {
    pub status: ExitStatus,
}

/// A new thread in an existing process; the event's `tid` is the new thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadStart {
    pub creator_tid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadExit {
    pub status: ExitStatus,
}

/// A signal about to be delivered to the thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalDelivery {
    pub signal: i32,
    /// `si_code`: SI_USER (0), SI_KERNEL (0x80), SI_TKILL (-6), ...
    pub code: i32,
    /// The sender's pid, when a process sent it (0 otherwise).
    pub sender_pid: u32,
    pub sender_uid: u32,
    /// For a SIGSEGV/SIGBUS the kernel raised at an access: the address, the instruction and
    /// what it did there.
    pub fault: Option<crate::memory::SignalFault>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub count: u64,
    pub reason: Str,
}

/// An action vigil took, logged like any other event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// What was done: `deny`, `kill`, `stop`, `exec`, ...
    pub action: Str,
    /// Who asked for it (a rule's name), empty if no one.
    pub by: Str,
    /// The process acted on (0 if none).
    pub target_pid: u32,
    /// Free detail: the errno of a deny, the program of an exec, a failure.
    pub detail: Str,
}

impl MemAccess {
    /// The type of a shared-memory access of this kind: `smo_read`, `smo_write`,
    /// `smo_read_write`.
    pub fn event_type(self) -> EventType {
        match self {
            MemAccess::Read => EventType::SmoRead,
            MemAccess::Write => EventType::SmoWrite,
            MemAccess::ReadWrite => EventType::SmoReadWrite,
        }
    }
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::SyscallEntry(_) => EventType::SyscallEntry,
            EventKind::SyscallExit(_) => EventType::SyscallExit,
            EventKind::ProcessStart(_) => EventType::ProcessStart,
            EventKind::ProcessExec(_) => EventType::ProcessExec,
            EventKind::ProcessExit(_) => EventType::ProcessExit,
            EventKind::ThreadStart(_) => EventType::ThreadStart,
            EventKind::ThreadExit(_) => EventType::ThreadExit,
            EventKind::Signal(_) => EventType::Signal,
            EventKind::Lost(_) => EventType::Lost,
            EventKind::Action(_) => EventType::Action,
            EventKind::SmoAccess(a) => a.access.event_type(),
            EventKind::AddressSpace(_) => EventType::AddressSpace,
            EventKind::Divergence(_) => EventType::Divergence,
        }
    }
}

impl Event {
    /// The event type's name as used in JSON and rules.
    pub fn type_name(&self) -> &'static str {
        self.event_type().name()
    }

    /// The event's type (see `EVENT_TYPES`).
    pub fn event_type(&self) -> EventType {
        self.kind.event_type()
    }

    /// The syscall, for entry and exit events.
    pub fn syscall(&self) -> Option<SyscallId> {
        match &self.kind {
            EventKind::SyscallEntry(e) => Some(e.call),
            EventKind::SyscallExit(e) => Some(e.call),
            _ => None,
        }
    }

    /// The decoded arguments of a syscall event, with their signature.
    pub fn args(&self) -> Option<(&'static Signature, &Args)> {
        match &self.kind {
            EventKind::SyscallEntry(e) => Some((e.call.signature(), &e.args)),
            EventKind::SyscallExit(e) => Some((e.call.signature(), &e.args)),
            _ => None,
        }
    }

    /// A named argument or output of a syscall event: its plain value (what the kernel used,
    /// what was kept of a cut value).
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.arg_raw(name).map(Value::plain)
    }

    /// A named argument as recorded, with its given form and cut marker if it has them.
    pub fn arg_raw(&self, name: &str) -> Option<&Value> {
        let (sig, args) = self.args()?;
        args.get(sig.field_index(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is in `EventType` order and names each type once, so `EventType::info`
    /// indexes it.
    #[test]
    fn the_type_table_is_in_order() {
        for (i, t) in EVENT_TYPES.iter().enumerate() {
            assert_eq!(t.ty as usize, i, "{}", t.name);
            assert_eq!(EventType::from_name(t.name), Some(t.ty));
        }
        assert_eq!(EVENT_TYPES.len(), EventType::Divergence as usize + 1);
    }

    /// Found by crates/log/tests/fuzz.rs: an exit whose raw return value is i64::MIN (a log or
    /// a JSON line can hold any) made errno_of negate it before checking its range, a panic in
    /// a debug build. Every raw value has an answer.
    #[test]
    fn every_return_value_has_an_errno_or_none() {
        for (ret, errno) in [
            (i64::MIN, None),
            (i64::MIN + 1, None),
            (-4096, None),
            (-4095, Some(4095)),
            (-1, Some(1)),
            (0, None),
            (i64::MAX, None),
        ] {
            assert_eq!(errno_of(ret), errno, "{ret}");
        }
    }
}

/// What a consumer of events (an online rule set) wants done about the process of the event
/// it was just given. Lives in the event model so the rules need nothing else; backends apply it. Only entry events of a backend
/// that stops the caller before the call runs (ptrace) can be denied; others ignore `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[must_use]
pub enum Verdict {
    #[default]
    Continue,
    /// Do not execute the call; make it return `-errno`.
    Deny(i32),
    /// SIGKILL the process.
    Kill,
    /// SIGSTOP the process.
    Stop,
}
