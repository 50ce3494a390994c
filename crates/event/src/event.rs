//! The event: one model for every backend (ptrace, eBPF, imported JSON).

use crate::Str;
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

impl Event {
    /// The event type's name as used in JSON and rules.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            EventKind::SyscallEntry(_) => "syscall_entry",
            EventKind::SyscallExit(_) => "syscall_exit",
            EventKind::ProcessStart(_) => "process_start",
            EventKind::ProcessExec(_) => "process_exec",
            EventKind::ProcessExit(_) => "process_exit",
            EventKind::ThreadStart(_) => "thread_start",
            EventKind::ThreadExit(_) => "thread_exit",
            EventKind::Signal(_) => "signal",
            EventKind::Lost(_) => "lost",
            EventKind::Action(_) => "action",
        }
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
    use super::errno_of;

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
