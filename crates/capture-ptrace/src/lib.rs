//! The ptrace + seccomp capture backend: runs a command and follows it and every descendant.
//!
//! Only the selected syscalls stop the tracee (a seccomp-bpf filter returns SECCOMP_RET_TRACE
//! for them); every other call runs at native speed. Each stop costs two context switches, so
//! the loop does as little as it can per stop: one PTRACE_GET_SYSCALL_INFO, process_vm_readv
//! for strings, no formatting (events go to the sink in binary form).
//!
//! Built on vigil-tracee (the spawn with the filter as a pre-exec step, memory access, signal
//! classification, remote syscalls) and vigil-procstate (fd tables, address spaces); what is
//! the recorder's own is the polling wait loop, decoding, path walking and the guard.
//!
//! # Two drivers, one decoding
//!
//! What vigil knows of the traced processes (threads, processes, fd tables, cwd and root, argv,
//! executable and credentials, address spaces, pid namespaces) and the event sequence live in
//! one place (view.rs), with the decoding that reads and updates them (decode.rs, walk.rs,
//! nsmap.rs) and the lifecycle steps (a process or thread started, an exec, a signal, an exit).
//! None of it resumes a thread. Two things drive it:
//! - [`PtraceBackend`], the recorder: its own seccomp filter and polling wait loop (tracer.rs),
//!   with the guard, shared-memory monitoring, io_uring decoding and signal forwarding on top;
//! - [`Observer`], for a caller with its own ptrace loop (the multi-variant monitor): the caller
//!   hands it each stop of the threads it wants recorded (`spawned`, `syscall_entry`,
//!   `syscall_exit`, `new_child`, `exec`, `signal`, `exited`, and `emit` for its own events)
//!   and resumes them itself. The events are the recorder's, decoded by the same code: a test
//!   (tests/observer.rs) runs one program both ways and compares them. What the recorder does
//!   on top of the decoding (its filter, guard, verdicts, io_uring, shared memory) is not the
//!   observer's: see its docs.

mod decode;
mod fs;
mod guard;
mod inspect;
mod memory;
mod nsmap;
mod observer;
mod own;
mod seccomp;
mod signals;
mod smo;
mod smo_ops;
mod tracer;
mod uring;
mod view;
mod walk;

use nix::errno::Errno;
use nix::sys::ptrace::Options;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use vigil_capture::{Backend, EventSink, Outcome, Selection, StopHandle};
use vigil_event::Str;
use vigil_event::syscall::{self, Bookkeeping};
use vigil_tracee::SpawnError;

pub use observer::{ObserveError, Observer};
pub use smo::SmoMode;

/// Records the SIGPIPE disposition vigil inherited, for the traced command (tracee's spawn).
pub use vigil_tracee::remember_inherited_sigpipe;

#[derive(Debug, thiserror::Error)]
pub enum PtraceError {
    #[error("{command}: command not found")]
    CommandNotFound { command: String },
    #[error("{path}: permission denied (not an executable file)")]
    NotExecutable { path: String },
    #[error("{path}: cannot execute: {errno}")]
    ExecFailed { path: String, errno: Errno },
    #[error("cannot install the seccomp filter in the traced command: {errno}")]
    SeccompFailed { errno: Errno },
    #[error(
        "not allowed to trace process {pid} ({errno}): vigil needs CAP_SYS_PTRACE or a kernel.yama.ptrace_scope that allows tracing children"
    )]
    NotPermitted { pid: i32, errno: Errno },
    #[error("an argument of the command contains a NUL byte")]
    BadArgument,
    #[error("starting the traced command: {detail}")]
    Startup { detail: String },
    #[error("{what} failed: {errno}")]
    Sys { what: &'static str, errno: Errno },
}

impl From<SpawnError> for PtraceError {
    /// A start-up failure in the recorder's terms (the messages and exit codes vigil has
    /// always given: 127 not found, 126 not executable or not executed).
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::NotFound { program } => PtraceError::CommandNotFound { command: program },
            SpawnError::NotExecutable { path } => PtraceError::NotExecutable { path },
            SpawnError::Nul { .. } => PtraceError::BadArgument,
            SpawnError::Sys { what, errno } => PtraceError::Sys { what, errno },
            SpawnError::Attach { pid, errno } => match errno {
                Errno::EPERM | Errno::EACCES => PtraceError::NotPermitted { pid, errno },
                _ => PtraceError::Sys {
                    what: "ptrace(PTRACE_SEIZE)",
                    errno,
                },
            },
            // The only pre-exec step is the seccomp filter.
            SpawnError::PreExec { errno, .. } => PtraceError::SeccompFailed { errno },
            SpawnError::Exec { program, errno } => PtraceError::ExecFailed {
                path: program,
                errno,
            },
            SpawnError::Chdir { dir, errno } => PtraceError::Startup {
                detail: format!("cannot change to {dir}: {errno}"),
            },
            SpawnError::Startup { detail } => PtraceError::Startup { detail },
            SpawnError::Trace(e) => PtraceError::Startup {
                detail: e.to_string(),
            },
        }
    }
}

impl vigil_capture::BackendError for PtraceError {
    /// The exit code a shell would give for the same failure (127 not found, 126 not executable).
    fn exit_code(&self) -> i32 {
        match self {
            PtraceError::CommandNotFound { .. } => 127,
            PtraceError::ExecFailed {
                errno: Errno::ENOENT,
                ..
            } => 127,
            PtraceError::NotExecutable { .. } | PtraceError::ExecFailed { .. } => 126,
            _ => 1,
        }
    }
}

/// Traces one command and all its descendants.
pub struct PtraceBackend {
    program: PathBuf,
    argv: Vec<OsString>,
    selection: Selection,
    /// Files the traced programs may not write over, truncate, move or remove (device, inode).
    protected: Vec<(u64, u64)>,
    /// Whether anything decides on a call at its entry (see `decide_at_entry`).
    exact_entry: bool,
    /// See `report_path_changes`.
    report_path_changes: bool,
    /// Ends `run` early: every process left is detached (see `Tracer::detach_all`).
    stop: StopHandle,
    /// The thread `run` traces on, which the stop handle wakes.
    tracer_tid: Arc<std::sync::atomic::AtomicI32>,
    /// Shared-memory monitoring (`record --smo`) and its slice.
    smo: SmoMode,
    smo_slice_ns: u64,
}

/// The default monitoring slice: 10 ms.
pub const DEFAULT_SMO_SLICE_NS: u64 = 10_000_000;

impl PtraceBackend {
    /// Resolves the command now, so a missing or non-executable program is reported before
    /// anything starts.
    pub fn new(argv: Vec<OsString>, selection: Selection) -> Result<Self, PtraceError> {
        let first = argv.first().cloned().unwrap_or_default();
        let program = vigil_tracee::resolve_program(&first, std::env::var_os("PATH").as_deref())?;
        let tracer_tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let tid = tracer_tid.clone();
        Ok(PtraceBackend {
            tracer_tid,
            stop: StopHandle::with_waker(move || {
                signals::wake(tid.load(std::sync::atomic::Ordering::SeqCst))
            }),
            program,
            argv,
            selection,
            protected: Vec::new(),
            exact_entry: true,
            report_path_changes: true,
            smo: SmoMode::Off,
            smo_slice_ns: DEFAULT_SMO_SLICE_NS,
        })
    }

    /// Monitors shared-memory objects at `mode`'s granularity, a slice ending every
    /// `slice_ns` (and at every syscall stop of a process). Default: off.
    pub fn monitor_shared_memory(&mut self, mode: SmoMode, slice_ns: u64) {
        self.smo = mode;
        self.smo_slice_ns = slice_ns.max(1);
    }

    /// Whether anything decides on a call at its entry (the online rules of `watch`, which
    /// may deny it). When nothing does (`record`), an open for reading is not walked at its
    /// entry: its entry event holds the path folded as text (marked lexical) and its exit the
    /// kernel's own answer, which is what every analysis reads. Default: true.
    pub fn decide_at_entry(&mut self, yes: bool) {
        self.exact_entry = yes;
    }

    /// Whether a path that changed during a call (a thread rewriting the buffer, a symlink
    /// swapped) is reported as a `path-changed` action when the call's entry was not walked
    /// (`decide_at_entry(false)`): its exit then walks the program's string again when it
    /// differs from the kernel's answer. Walked entries are always compared. Default: true.
    pub fn report_path_changes(&mut self, yes: bool) {
        self.report_path_changes = yes;
    }

    /// Protects a file (vigil's own log) from the traced programs: opening it for writing,
    /// truncating, renaming or unlinking it fails with EPERM and is logged, whatever path or
    /// link names it (it is recognised by device and inode).
    pub fn protect(&mut self, path: &std::path::Path) -> Result<(), PtraceError> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| PtraceError::Sys {
            what: "stat of the file to protect",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        self.protected.push((m.dev(), m.ino()));
        Ok(())
    }

    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// Numbers the seccomp filter traps: the selection plus the rare calls vigil's own view of
    /// a process depends on (cwd, root, credentials, socket addresses, io_uring) and those
    /// checked to keep vigil from being blinded (guard.rs).
    fn trapped(&self) -> std::collections::BTreeSet<u32> {
        let mut nrs = self.selection.nrs.clone();
        if self.smo != SmoMode::Off {
            // The model's calls, and the buffer calls the window cannot test (their buffers
            // are behind a pointer).
            nrs.extend(
                syscall::known()
                    .map(|(s, _)| s)
                    // getrandom is not decoded but writes a buffer (once per process, from
                    // glibc): trapped always.
                    .chain([syscalls::Sysno::getrandom])
                    .filter(|s| smo::interested(*s))
                    .filter(|s| !smo::WINDOW_TRAPS.iter().any(|(w, _)| w == s))
                    .filter(|s| !smo::FUTEX_CALLS.contains(s))
                    .map(|s| s.id() as u32),
            );
        }
        nrs.extend(
            syscall::known()
                .filter(|(_, s)| matches!(s.bookkeeping, Bookkeeping::Exit | Bookkeeping::Guard))
                // Trapped on an argument test instead (see `run`).
                .filter(|(s, _)| *s != syscalls::Sysno::prlimit64)
                .map(|(s, _)| s.id() as u32),
        );
        nrs
    }
}

impl Backend for PtraceBackend {
    type Error = PtraceError;

    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    fn run(&mut self, sink: &mut dyn EventSink) -> Result<Outcome, PtraceError> {
        // clone stops only when asked for CLONE_UNTRACED (guard.rs takes the flag out);
        // prlimit64 only when it names a process (glibc asks for its own limits with pid 0 at
        // every start, and vigil is never "0").
        let arg_traps = [
            (libc::SYS_clone as u32, 0, guard::CLONE_UNTRACED as u32),
            (libc::SYS_prlimit64 as u32, 0, u32::MAX),
        ];
        let trapped = self.trapped();
        let window_traps: Vec<seccomp::WindowTrap> = if self.smo != SmoMode::Off {
            smo::WINDOW_TRAPS
                .iter()
                .map(|&(s, a)| (s.id() as u32, a))
                .chain(smo::FUTEX_CALLS.iter().map(|s| (s.id() as u32, 0)))
                .collect()
        } else {
            Vec::new()
        };
        let window = (
            (smo::WINDOW_START >> 32) as u32,
            (smo::WINDOW_END >> 32) as u32,
        );
        let filter = seccomp::build(
            self.selection.all,
            &trapped,
            &arg_traps,
            &window_traps,
            window,
        );
        let options = Options::PTRACE_O_TRACESYSGOOD
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_TRACESECCOMP
            // If vigil dies, the traced tree dies with it instead of running untraced or
            // staying stopped forever.
            | Options::PTRACE_O_EXITKILL;
        // SAFETY: gettid takes no arguments.
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        self.tracer_tid
            .store(me, std::sync::atomic::Ordering::SeqCst);
        // The command starts with the signal setup vigil itself was started with: the blocked
        // mask as it is (vigil blocks nothing), handlers reset by exec, and SIGPIPE, which
        // Rust's runtime ignored in vigil, with the disposition vigil inherited.
        let mut cmd = vigil_tracee::Command::new(&self.program);
        cmd.arg0(self.argv.first().cloned().unwrap_or_default())
            .args(self.argv.iter().skip(1))
            .options(options)
            .sigpipe(vigil_tracee::SigPipe::Inherited)
            .seccomp(filter);
        let (child, _running) = vigil_tracee::Tracer::new().spawn(&mut cmd)?;
        let root = child.pid();
        let _forwarding = signals::Forwarding::install(root);
        let mut tracer = tracer::Tracer::new(sink, self.selection.clone(), self.stop.clone());
        tracer.protected = self.protected.clone();
        tracer.view.exact_entry = self.exact_entry;
        tracer.view.report_path_changes = self.report_path_changes;
        if self.smo != SmoMode::Off {
            let mut smo = smo::Smo::new(self.smo, self.smo_slice_ns, true);
            smo.buffers_trapped = self.selection.all
                || smo::WINDOW_TRAPS
                    .iter()
                    .all(|(s, _)| trapped.contains(&(s.id() as u32)));
            tracer.with_smo(smo);
        }
        let argv: Arc<[Str]> = self
            .argv
            .iter()
            .map(|a| Str::from(a.as_bytes()))
            .collect::<Vec<_>>()
            .into();
        tracer.add_root(root, Str::from(self.program.as_os_str().as_bytes()), argv);
        tracer.run()?;
        if !tracer.root_exec_seen
            && let Some(e) = child.exec_error()
        {
            return Err(e.into());
        }
        Ok(Outcome {
            status: tracer.root_status,
            events: tracer.view.out.delivered(),
            lost: 0,
            detached: tracer.detached,
            undelivered: tracer.view.out.undelivered(),
            sink_error: tracer.view.out.take_error(),
            stopped: tracer.stopped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::{Event, EventKind};

    /// Records `cmd` with the default selection and brk and madvise (not in the default set:
    /// without them the model does not see the heap move); the events and the address-space
    /// checks (comparisons, differences) made on the way.
    fn record(cmd: &[&str]) -> (Vec<Event>, usize, Vec<String>) {
        vigil_testkit::require_ptrace();
        view::space_check::CHECK.with(|c| *c.borrow_mut() = Some((0, Vec::new())));
        let mut b = PtraceBackend::new(
            cmd.iter().map(Into::into).collect(),
            Selection::parse("default,brk,madvise").unwrap(),
        )
        .unwrap();
        let mut events = Vec::new();
        b.run(&mut |e: Event| {
            events.push(e);
            vigil_capture::Verdict::Continue
        })
        .unwrap();
        let (n, diffs) = view::space_check::CHECK
            .with(|c| c.borrow_mut().take())
            .unwrap();
        (events, n, diffs)
    }

    #[test]
    fn the_address_space_model_follows_the_kernel_through_fork_exec_and_memory_calls() {
        // sh forks, cat is exec'd and its loader maps, protects and unmaps its libraries.
        let (events, checks, diffs) = record(&["sh", "-c", "cat /etc/hostname >/dev/null; :"]);
        assert!(checks > 10, "only {checks} memory calls compared");
        assert!(diffs.is_empty(), "{}", diffs.join("\n"));
        // Each exec is followed by its snapshot, which holds the new program's image.
        let execs: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.kind, EventKind::ProcessExec(_)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(execs.len(), 2, "sh and cat");
        for i in execs {
            let EventKind::ProcessExec(x) = &events[i].kind else {
                unreachable!()
            };
            let EventKind::AddressSpace(snap) = &events[i + 1].kind else {
                panic!("no snapshot after {:?}", events[i]);
            };
            assert_eq!(events[i + 1].pid, events[i].pid);
            assert!(
                snap.vmas
                    .iter()
                    .any(|v| v.ino == x.ino && v.dev != 0 && v.prot & 4 != 0),
                "the executable's code is mapped: {snap:?}"
            );
            assert!(snap.vmas.iter().any(|v| v.path.as_bytes() == b"[stack]"));
        }
    }

    #[test]
    fn no_model_and_no_snapshot_when_no_memory_call_is_recorded() {
        vigil_testkit::require_ptrace();
        let mut b = PtraceBackend::new(
            vec!["true".into()],
            Selection::parse("openat,execve").unwrap(),
        )
        .unwrap();
        let mut snaps = 0;
        b.run(&mut |e: Event| {
            snaps += matches!(e.kind, EventKind::AddressSpace(_)) as usize;
            vigil_capture::Verdict::Continue
        })
        .unwrap();
        assert_eq!(snaps, 0);
    }
}
