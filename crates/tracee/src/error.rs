//! The errors of the tracee layer, typed so a caller can tell "the tracee is gone" (normal in
//! a tracer's life: any thread can be SIGKILLed at any time) from a real failure.

use nix::errno::Errno;

use crate::stop::Exit;

/// What went wrong while controlling a tracee.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thread no longer exists or is no longer in a ptrace-stop (ESRCH): it was killed or
    /// exited meanwhile. Its exit is still reported by the tracer's wait.
    #[error("tracee {tid} is gone")]
    Gone { tid: i32 },
    /// A ptrace request failed for another reason.
    #[error("{what} on tracee {tid}: {errno}")]
    Ptrace {
        what: &'static str,
        tid: i32,
        errno: Errno,
    },
    /// A system call of the tracer itself failed.
    #[error("{what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    /// The tracee died while a remote syscall ran in it. Its exit is left for the tracer's next
    /// wait, which reports it as usual.
    #[error("tracee {tid} died during a remote syscall ({exit})")]
    DiedDuringInjection { tid: i32, exit: Exit },
    /// A remote syscall's convenience wrapper (mmap, mprotect, ...) got an error result.
    #[error("{call} in tracee {tid}: {errno}")]
    Remote {
        tid: i32,
        call: syscalls::Sysno,
        errno: Errno,
    },
    /// No `syscall` instruction was found in the tracee to run a remote syscall with.
    #[error("no syscall instruction found in tracee {tid}")]
    NoSyscallInstruction { tid: i32 },
    /// The operation is not available for this tracee (e.g. remote syscalls in 32-bit code).
    #[error("tracee {tid}: {what} is not supported")]
    Unsupported { tid: i32, what: &'static str },
    /// The tracee stopped in a way the operation cannot continue from.
    #[error("tracee {tid}: unexpected {detail}")]
    Unexpected { tid: i32, detail: String },
    /// The tracer has no tracees (or children) left to wait for (ECHILD).
    #[error("no tracees left to wait for")]
    NoTracees,
}

impl Error {
    /// A ptrace request's error: ESRCH means the tracee is gone.
    pub(crate) fn ptrace(what: &'static str, tid: i32, errno: Errno) -> Self {
        if errno == Errno::ESRCH {
            Error::Gone { tid }
        } else {
            Error::Ptrace { what, tid, errno }
        }
    }

    /// Whether the error only says that the tracee no longer exists (or died).
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. } | Error::DiedDuringInjection { .. })
    }
}

/// Why a command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program does not exist (or is not on PATH). A shell reports this as status 127.
    #[error("{program}: command not found")]
    NotFound { program: String },
    /// The program exists but is not an executable file. A shell reports this as status 126.
    #[error("{path}: not executable")]
    NotExecutable { path: String },
    /// An argument, variable or path contains a NUL byte.
    #[error("argument contains a NUL byte: {what}")]
    Nul { what: String },
    /// A system call of the tracer failed while starting the command.
    #[error("{what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    /// PTRACE_SEIZE refused the child.
    #[error("cannot trace process {pid}: {errno}")]
    Attach { pid: i32, errno: Errno },
    /// A step the child runs before exec failed (it then exits with status 126). `step` is the
    /// step's index in the order they were added, `what` its kind.
    #[error("pre-exec step {step} ({what}) failed: {errno}")]
    PreExec {
        step: usize,
        what: &'static str,
        errno: Errno,
    },
    /// The child could not change to the working directory.
    #[error("cannot change to directory {dir}: {errno}")]
    Chdir { dir: String, errno: Errno },
    /// execve failed in the child (ENOENT: 127, otherwise 126, as a shell exits).
    #[error("cannot execute {program}: {errno}")]
    Exec { program: String, errno: Errno },
    /// The child did not reach its exec as expected.
    #[error("the traced command did not start: {detail}")]
    Startup { detail: String },
    /// Controlling the child failed.
    #[error(transparent)]
    Trace(#[from] Error),
}
