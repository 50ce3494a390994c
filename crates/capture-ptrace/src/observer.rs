//! The recorder's events for a caller that runs its own ptrace loop (the multi-variant
//! monitor): the caller waits, decides and resumes; at each stop of a thread it wants recorded
//! it tells the [`Observer`], which decodes and keeps its books with the recorder's own code
//! (view.rs, decode.rs, walk.rs, nsmap.rs) and emits what `vigil record` would have.
//!
//! The observer reads (registers, memory, /proc, duplicates of the tracee's fds through
//! pidfd_getfd) and never resumes a thread, changes its registers or memory, or signals it.

use crate::view::{Pending, View, exit_status, syscall_id};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use vigil_capture::{EventSink, Outcome, Selection};
use vigil_event::syscall::Bookkeeping;
use vigil_event::{EventKind, ExitStatus, Str};
use vigil_tracee::{Event, Exit, Stop, Stopped};

/// Why the observer could not take a stop.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The thread is none of those the observer follows (not the spawned process, nor
    /// announced with [`Observer::new_child`]).
    #[error("thread {tid} is not observed")]
    NotObserved { tid: i32 },
    /// `spawned` for a thread the observer already follows.
    #[error("thread {tid} is already observed")]
    AlreadyObserved { tid: i32 },
    /// The call is for another kind of stop than the thread is in.
    #[error("thread {tid}: {call} needs {needs}, not {stop}")]
    WrongStop {
        tid: i32,
        call: &'static str,
        needs: &'static str,
        stop: String,
    },
    /// The sink failed earlier (a full disk): nothing more is recorded or kept. The sink's
    /// own error is in [`Observer::finish`]'s outcome. The program can run on without the
    /// observer.
    #[error("the event sink failed: nothing more is recorded")]
    SinkFailed,
}

/// Turns the stops of threads a caller supervises into the recorder's events, with the
/// recorder's decoding and bookkeeping: paths resolved as the kernel resolves them for the
/// thread (its cwd, root, dirfds, `/proc/self`), fds shown as what they refer to, process
/// starts, execs and exits with argv, executable, credentials and clone flags, the
/// address-space snapshot at each exec (when memory calls are selected) and the model kept
/// through the memory calls, signals with their sender and fault. The events go to the sink in
/// one sequence, numbered as the recorder numbers them, so the log reads as `vigil record`'s
/// (`vigil show`, `summary`, `backtrack` work on it).
///
/// The caller owns the ptrace loop: it waits, resumes and decides. The observer never resumes
/// a thread, changes its registers or memory, or signals it; it emits only in the calls below.
///
/// What the recorder does on its own stops and the observer leaves out (the caller's business
/// if it wants them): the seccomp filter (the caller traps what it likes; calls not selected
/// are only decoded when their bookkeeping matters, as the recorder's are), the guard
/// (refusing signals, ptrace or writes aimed at vigil, CLONE_UNTRACED, protecting the log
/// from the traced programs), verdicts of the sink (a rule's kill, stop or deny is not carried
/// out here), signal forwarding and the signals sent to vigil itself, io_uring submissions
/// read from the rings, and shared-memory monitoring.
pub struct Observer<'s> {
    view: View<'s>,
    root: i32,
    root_status: Option<ExitStatus>,
}

impl<'s> Observer<'s> {
    /// An observer that records the calls in `selection` into `sink`.
    pub fn new(sink: &'s mut dyn EventSink, selection: Selection) -> Self {
        let mut view = View::new(sink, selection);
        view.apply_verdicts = false;
        Observer {
            view,
            root: 0,
            root_status: None,
        }
    }

    /// Whether anything decides on a call at its entry: as `PtraceBackend::decide_at_entry`.
    /// Default: true. `vigil record` sets it to false (an open for reading then holds the
    /// kernel's answer at its exit, not a walk at its entry).
    pub fn decide_at_entry(&mut self, yes: bool) {
        self.view.exact_entry = yes;
    }

    /// As `PtraceBackend::report_path_changes`. Default: true; `vigil record` sets false.
    pub fn report_path_changes(&mut self, yes: bool) {
        self.view.report_path_changes = yes;
    }

    /// Whether the thread is one the observer follows.
    pub fn observes(&self, tid: i32) -> bool {
        self.view.threads.contains_key(&tid)
    }

    /// The first process, which the caller spawned (its parent is this process): its start
    /// event, with `program` (what it runs, after the PATH search) and `argv`. At its exec
    /// event stop, or at the exit stop of that execve, its exec event (state read from /proc)
    /// and address-space snapshot follow. At a stop before its exec (the seccomp stop of the
    /// execve) that is all: the caller then hands on the execve's entry, exec event and exit
    /// as for any call, and the log is exactly the recorder's.
    pub fn spawned(
        &mut self,
        t: &Stopped,
        program: &Path,
        argv: &[OsString],
    ) -> Result<(), ObserveError> {
        let pid = t.tid();
        if self.observes(pid) {
            return Err(ObserveError::AlreadyObserved { tid: pid });
        }
        self.live()?;
        let argv: Arc<[Str]> = argv
            .iter()
            .map(|a| Str::from(a.as_bytes()))
            .collect::<Vec<_>>()
            .into();
        self.root = pid;
        self.view
            .add_root(pid, Str::from(program.as_os_str().as_bytes()), argv);
        let former = match *t.stop() {
            Stop::Event(Event::Exec { former_tid }) => Some(former_tid),
            Stop::SyscallExit { ret: 0, .. } => Some(pid),
            _ => None,
        };
        if let Some(former) = former {
            self.view.exec(pid, former);
        }
        self.sent()
    }

    /// At a syscall-entry or seccomp stop of an observed thread: decodes the call (paths
    /// walked, fds resolved, pids translated) and emits its entry event if the call is
    /// selected (its seq is returned), keeping what its exit needs. close and close_range
    /// release their fds here, as in the recorder (whatever the call returns). Calls neither
    /// selected nor needed for the books (fd tables, cwd, credentials) are passed over.
    pub fn syscall_entry(&mut self, t: &Stopped) -> Result<Option<u64>, ObserveError> {
        let tid = t.tid();
        let entry = match *t.stop() {
            Stop::Seccomp { call, .. } | Stop::SyscallEntry(call) => call,
            ref other => return Err(wrong(tid, "syscall_entry", "a syscall entry", other)),
        };
        let pid = self.pid(tid)?;
        self.live()?;
        let mut raw = entry.args;
        let x86_64 = matches!(
            entry.abi,
            vigil_tracee::Abi::X86_64 | vigil_tracee::Abi::X32
        );
        let call = syscall_id(x86_64, entry.nr, &mut raw);
        let record = self.view.selection.contains(call);
        if !record
            && matches!(
                call.signature().bookkeeping,
                Bookkeeping::No | Bookkeeping::Guard
            )
        {
            if let Some(th) = self.view.threads.get_mut(&tid) {
                th.pending = None;
            }
            return Ok(None);
        }
        let (args, walked) = self.view.decode_entry(pid, tid, call, &raw);
        if let Some(s @ (syscalls::Sysno::close | syscalls::Sysno::close_range)) = call.canonical()
        {
            self.view.close_fds(tid, s, &raw);
        }
        let (entry_seq, _) = self.view.emit_entry(pid, tid, call, &args, record);
        if let Some(th) = self.view.threads.get_mut(&tid) {
            th.pending = Some(Pending::plain(call, entry_seq, raw, args, walked, record));
        }
        self.sent()?;
        Ok(record.then_some(entry_seq))
    }

    /// After the call the thread last entered: at its exit stop (`t`), `ret` being the
    /// result the kernel gave (`-errno` for an error); or, for a call the caller emulated or
    /// skipped, at whatever stop it set the result, `ret` being that result. Emits the exit
    /// event if the call is recorded (its seq is returned), with its outputs (a new fd and
    /// what it is, the pipe's or socketpair's fds, an accepted peer...), and keeps the fd
    /// table, cwd, root, credentials and address space as the call left them. Nothing
    /// happens for a thread not in a call the observer kept.
    pub fn syscall_exit(&mut self, t: &Stopped, ret: i64) -> Result<Option<u64>, ObserveError> {
        let tid = t.tid();
        let pid = self.pid(tid)?;
        self.live()?;
        let Some(pending) = self
            .view
            .threads
            .get_mut(&tid)
            .and_then(|th| th.pending.take())
        else {
            return Ok(None);
        };
        let args = self.view.finish_call(pid, tid, &pending, ret);
        let seq = self
            .view
            .exit_event(pid, tid, &pending, ret, args, pending.record);
        self.view.flush_actions();
        self.sent()?;
        Ok(seq)
    }

    /// A new process or thread: `parent` is at its fork, vfork or clone event stop. Its start
    /// event (with the clone flags, read from the call); its fd table, cwd and address space
    /// shared or copied as the flags say. Returns the new task's tid, which the observer
    /// follows from now on.
    pub fn new_child(&mut self, parent: &Stopped) -> Result<i32, ObserveError> {
        let tid = parent.tid();
        let (child, event) = match *parent.stop() {
            Stop::Event(Event::Fork { child }) => (child, libc::PTRACE_EVENT_FORK),
            Stop::Event(Event::Vfork { child }) => (child, libc::PTRACE_EVENT_VFORK),
            Stop::Event(Event::Clone { child }) => (child, libc::PTRACE_EVENT_CLONE),
            ref other => {
                return Err(wrong(
                    tid,
                    "new_child",
                    "a fork, vfork or clone event",
                    other,
                ));
            }
        };
        self.pid(tid)?;
        self.live()?;
        let flags = self.view.clone_flags_of(tid, event);
        if let Some(p) = self
            .view
            .threads
            .get_mut(&tid)
            .and_then(|t| t.pending.as_mut())
        {
            p.created = Some(child);
        }
        if !self.view.add_task(tid, child, flags) {
            return Err(ObserveError::NotObserved { tid });
        }
        self.sent()?;
        Ok(child)
    }

    /// An exec event stop: the process's exec event (its new program, argv as the kernel
    /// placed it, credentials), close-on-exec fds closed, and the new address space's
    /// snapshot. A thread other than the leader that exec'd has taken the leader's tid: the
    /// observer follows it under that tid (the caller reports the other threads' exits).
    pub fn exec(&mut self, t: &Stopped) -> Result<(), ObserveError> {
        let tid = t.tid();
        let former = match *t.stop() {
            Stop::Event(Event::Exec { former_tid }) => former_tid,
            ref other => return Err(wrong(tid, "exec", "an exec event", other)),
        };
        self.live()?;
        if self.view.exec(tid, former).is_none() {
            return Err(ObserveError::NotObserved { tid: former });
        }
        self.sent()
    }

    /// A signal-delivery stop whose signal the caller is about to deliver: the signal event
    /// (its code, sender as this process numbers pids, and for a fault the address, the
    /// instruction and its access).
    pub fn signal(&mut self, t: &Stopped) -> Result<(), ObserveError> {
        let tid = t.tid();
        let sig = match *t.stop() {
            Stop::Signal { sig, .. } => sig,
            ref other => return Err(wrong(tid, "signal", "a signal-delivery stop", other)),
        };
        let pid = self.pid(tid)?;
        self.live()?;
        let d = self.view.signal_delivery(pid, tid, sig, Some(t.stop()));
        self.view.emit(pid, tid, EventKind::Signal(d));
        self.sent()
    }

    /// A thread the caller waited for (reaped): its exit event, and its process's when it
    /// was the leader.
    pub fn exited(&mut self, tid: i32, exit: Exit) -> Result<(), ObserveError> {
        self.pid(tid)?;
        self.live()?;
        let status = exit_status(exit);
        if let Some((pid, true)) = self.view.task_exit(tid, status)
            && pid == self.root
        {
            self.root_status = Some(status);
        }
        self.sent()
    }

    /// Any other event (the caller's own: a divergence, an action it took), numbered in the
    /// same sequence. Returns its seq.
    pub fn emit(&mut self, pid: u32, tid: u32, kind: EventKind) -> Result<u64, ObserveError> {
        self.live()?;
        let seq = self.view.next_seq();
        self.view.emit(pid as i32, tid as i32, kind);
        self.sent()?;
        Ok(seq)
    }

    /// Ends the observation: the events handed on and not, the sink's error if it failed, the
    /// spawned process's status if its exit was reported. `detached` counts the processes
    /// whose exit was never reported: nothing is made up for them (the log shows them
    /// running at its end).
    pub fn finish(mut self) -> Outcome {
        Outcome {
            status: self.root_status,
            events: self.view.out.delivered(),
            lost: 0,
            detached: self.view.procs.len() as u64,
            undelivered: self.view.out.undelivered(),
            sink_error: self.view.out.take_error(),
            stopped: false,
        }
    }

    /// The pid of an observed thread.
    fn pid(&self, tid: i32) -> Result<i32, ObserveError> {
        self.view
            .threads
            .get(&tid)
            .map(|t| t.pid)
            .ok_or(ObserveError::NotObserved { tid })
    }

    /// Nothing is done once the sink failed (as the recorder, which then only resumes).
    fn live(&self) -> Result<(), ObserveError> {
        if self.view.draining() {
            Err(ObserveError::SinkFailed)
        } else {
            Ok(())
        }
    }

    /// After emitting: whether the sink took it all.
    fn sent(&self) -> Result<(), ObserveError> {
        self.live()
    }
}

fn wrong(tid: i32, call: &'static str, needs: &'static str, stop: &Stop) -> ObserveError {
    ObserveError::WrongStop {
        tid,
        call,
        needs,
        stop: format!("{stop:?}"),
    }
}
