//! vigil's tracee-control layer: everything vigil does *to* a traced thread, apart from what
//! it makes of it. The recorder (capture-ptrace), the shared-memory monitor and the
//! multi-variant monitor are built on it; it knows nothing of events, logs or rules.
//!
//! # The layer
//!
//! - **Spawning** ([`Command`], [`Tracer::spawn`], [`Tracer::spawn_until_exec`]): program,
//!   arguments, environment, working directory, standard streams, and steps the child runs
//!   after it is seized and before exec (a seccomp BPF filter given as instructions, prctl,
//!   personality flags such as `ADDR_NO_RANDOMIZE`, an async-signal-safe hook). The child
//!   keeps the caller's signal mask and ignored dispositions; SIGPIPE gets back the
//!   disposition the process inherited ([`remember_inherited_sigpipe`]). Exec failures come
//!   back typed ([`SpawnError`]) through a close-on-exec pipe. [`Tracer::attach`] seizes an
//!   existing thread.
//! - **Waiting** ([`Tracer`]): one per supervising thread. Waits pass
//!   `__WALL | __WNOTHREAD`, so a tracer only ever sees its own thread's tracees: two tracers
//!   on two threads of one process supervise two trees without taking each other's statuses.
//!   Wait for any tracee, one tid ([`Tracer::wait_tid`]) or a set ([`Tracer::wait_any_of`];
//!   the others' statuses are kept for later waits).
//! - **Stops** ([`Stop`]): each wait status classified once: syscall entry/exit
//!   (PTRACE_GET_SYSCALL_INFO), seccomp stop with its SECCOMP_RET_DATA, fork/vfork/clone/
//!   exec/exit/vfork-done events, signal-delivery stop with its full siginfo ([`SigInfo`]:
//!   si_code, fault address, sender), group-stop, interrupt stop; exits as [`Wait::Exited`].
//!   A signal the caller caused (a SIGSEGV at an address it protected, its own single-step's
//!   SIGTRAP) can thus be consumed (resume without it) and any other delivered.
//! - **Typestate** ([`Stopped`], [`Running`]): a wait hands back a `Stopped` handle, the only
//!   thing that reads or writes registers ([`Regs`], [`FpRegs`]) and memory or resumes the
//!   thread; resuming consumes it and yields a `Running`, which can only be interrupted
//!   ([`Tracer::interrupt`]) or waited for. Handles are neither `Send` nor `Sync`: ptrace
//!   requests only work from the attaching thread.
//! - **Memory** ([`Memory`]): read and write, process_vm_readv/writev first and
//!   /proc/PID/mem for the rest (PROT_NONE pages read, read-only pages written); partial
//!   accesses say how much was done ([`MemError::done`]); bounded C strings.
//! - **Remote syscalls** ([`RemoteSyscalls`], [`Stopped::remote`]): a scope in which the
//!   stopped thread runs arbitrary syscalls (mmap, mprotect, munmap helpers), after which its
//!   registers, pending syscall, restart state and pending signal are as they were, on every
//!   path (finish, error, early return, `Drop`); a thread that dies meanwhile is reported as
//!   an error and its exit left for the next wait. Modelled on rr's AutoRemoteSyscalls.
//! - **Memory access of an instruction** ([`memory_operands`]): the instruction at a thread's
//!   IP decoded (iced-x86) into its memory operands, each with its address in the thread's
//!   registers, size and access (read, write, both): how a protection fault is classified.
//! - **Single-step** ([`Stopped::step`]): one instruction; its SIGTRAP is recognised and
//!   consumed ([`Stop::Stepped`]).
//!
//! x86-64 only. i386 (compat) tracees are readable: registers through the same layout
//! ([`Regs::is_compat`], [`Regs::syscall_args_i386`]), syscalls tagged with their [`Abi`];
//! remote syscalls in 32-bit code are refused.
//!
//! The design follows reverie's safeptrace (typestate handles) and reverie-process (the spawn
//! builder), and rr's scoped remote syscalls; no code is taken from them.

mod access;
pub mod bpf;
mod error;
mod memory;
mod raw;
mod regs;
mod remote;
mod spawn;
mod stop;
mod tracer;

pub use access::{
    DecodeError, Decoded, MAX_INSTRUCTION_LEN, MemAccess, MemOperand, memory_operands,
};
pub use error::{Error, SpawnError};
pub use memory::{MemError, Memory};
pub use nix::sys::ptrace::Options;
pub use regs::{FpRegs, Regs};
pub use remote::RemoteSyscalls;
pub use spawn::{
    Child, Command, Hook, SigPipe, Stdio, remember_inherited_sigpipe, resolve_program,
};
pub use stop::{
    Abi, Event, Exit, PTRACE_EVENT_STOP, SigInfo, Stop, SyscallEntry, TRAP_BRKPT, TRAP_TRACE,
};
pub use tracer::{Resume, Running, Stopped, Tracer, Wait};
