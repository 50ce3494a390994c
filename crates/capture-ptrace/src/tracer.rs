//! The ptrace event loop: one thread waits for every stop of every traced thread, turns it into
//! events, and resumes the tracee as quickly as it can.

use crate::PtraceError;
use crate::guard::Guarded;
use crate::inspect;
use crate::own::{Cause, OwnSignals};
use crate::view::{MEMORY_CALLS, Pending, View};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::Arc;
use syscalls::Sysno;
use vigil_capture::{EventSink, Selection, StopHandle, Verdict, now_ns};
use vigil_event::syscall::Bookkeeping;
use vigil_event::*;

pub struct Tracer<'s> {
    /// What vigil knows of the traced processes and the event sequence (view.rs): the
    /// decoding and bookkeeping this loop shares with the observer.
    pub(crate) view: View<'s>,
    /// Set from outside to end the capture (detaching from what is left).
    pub(crate) stop: StopHandle,
    /// The capture was ended by `stop`.
    pub stopped: bool,
    /// New tasks whose first stop came before their parent's fork/clone event.
    pub(crate) early_children: HashSet<i32>,
    pub root: i32,
    pub root_status: Option<ExitStatus>,
    pub root_exec_seen: bool,
    /// How long to poll for the next stop before sleeping now, and at most (0: never poll).
    spin_ns: u64,
    max_spin_ns: u64,
    idle_waits: u64,
    /// Whether a CPU is free for polling, and when that was last looked at (`cpu_free`).
    cpu_free: bool,
    cpu_checked_ns: u64,
    cpus: u64,
    /// Device and inode of files the traced programs may not destroy (vigil's log).
    pub(crate) protected: Vec<(u64, u64)>,
    /// Signals the command received from other processes lately: (signal, sender, time), to
    /// tell a signal sent to the whole process group from one sent to vigil alone.
    root_signals: std::collections::VecDeque<(i32, i32, u64)>,
    /// A signal someone sent vigil, to pass on to the command unless it reached it already:
    /// (signal, sender, deadline).
    pending_forward: Option<(i32, i32, u64)>,
    /// Processes left running when vigil stopped waiting for them (signals.rs).
    pub detached: u64,
    /// Ranges vigil protected and threads it steps: their signals are vigil's (own.rs).
    pub(crate) own: OwnSignals,
    /// tracee's control of this thread's tracees, for remote syscalls.
    pub(crate) ctl: vigil_tracee::Tracer,
    /// Shared-memory monitoring (smo.rs, smo_ops.rs).
    pub(crate) smo: crate::smo::Smo,
    /// Forked children whose monitored mappings are protected at their first stop.
    pub(crate) smo_children: HashSet<i32>,
    /// Stops taken while another thread was interrupted, for the main loop to handle.
    pub(crate) deferred: std::collections::VecDeque<WaitStatus>,
    /// Wakes the wait when a monitoring slice ends.
    pub(crate) slice_timer: crate::smo_ops::SliceTimer,
}

/// How long vigil waits to see whether a signal sent to it reached the command too (sent to
/// the process group) before passing it on.
const FORWARD_WAIT_NS: u64 = 20_000_000;

/// ESRCH from a ptrace request means the tracee died meanwhile; waitpid will report it.
fn tolerate_gone(r: nix::Result<()>) -> Result<(), PtraceError> {
    match r {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(PtraceError::Sys {
            what: "ptrace",
            errno: e,
        }),
    }
}

const PTRACE_EVENT_STOP: i32 = 128;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Below this, polling for the next stop is not worth its syscalls.
const MIN_SPIN_NS: u64 = 5_000;

/// The stopped syscall's number, arguments or result; `None` if the tracee died meanwhile.
fn syscall_info(tid: i32) -> Result<Option<libc::ptrace_syscall_info>, PtraceError> {
    match ptrace::syscall_info(Pid::from_raw(tid)) {
        Ok(i) => Ok(Some(i)),
        Err(Errno::ESRCH) => Ok(None),
        Err(errno) => Err(PtraceError::Sys {
            what: "PTRACE_GET_SYSCALL_INFO",
            errno,
        }),
    }
}

impl<'s> Tracer<'s> {
    pub fn new(sink: &'s mut dyn EventSink, selection: Selection, stop: StopHandle) -> Self {
        // VIGIL_SPIN_US overrides the longest poll (0 disables polling), for measurements.
        let max_spin_ns = std::env::var("VIGIL_SPIN_US")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(100)
            * 1000;
        Tracer {
            view: View::new(sink, selection),
            protected: Vec::new(),
            root_signals: std::collections::VecDeque::new(),
            pending_forward: None,
            detached: 0,
            own: OwnSignals::default(),
            ctl: vigil_tracee::Tracer::new(),
            smo: crate::smo::Smo::new(crate::smo::SmoMode::Off, 0, false),
            smo_children: HashSet::new(),
            deferred: std::collections::VecDeque::new(),
            slice_timer: Default::default(),
            stop,
            stopped: false,
            early_children: HashSet::new(),
            root: 0,
            root_status: None,
            root_exec_seen: false,
            spin_ns: max_spin_ns,
            max_spin_ns,
            idle_waits: 0,
            cpu_free: true,
            cpu_checked_ns: 0,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        }
    }

    /// Monitors shared memory as `smo` says: the address-space model is kept whatever the
    /// selection (the memory calls are trapped for it).
    pub fn with_smo(&mut self, smo: crate::smo::Smo) {
        if smo.on() && self.view.spaces.is_none() {
            self.view.spaces = Some(vigil_procstate::Processes::new());
        }
        self.smo = smo;
    }

    /// Hands an event to the sink and applies what it asks for (kill/stop the process).
    pub(crate) fn emit(&mut self, pid: i32, tid: i32, kind: EventKind) {
        self.view.emit(pid, tid, kind);
    }

    /// The sink failed (a full disk): nothing more is recorded. The traced programs run on
    /// to their end, each stop resumed at once (detaching would make every call the seccomp
    /// filter traps fail with ENOSYS: a filter cannot be removed).
    pub(crate) fn draining(&self) -> bool {
        self.view.draining()
    }

    /// The traced command, stopped before its exec.
    pub fn add_root(&mut self, pid: i32, program: Str, argv: Arc<[Str]>) {
        self.root = pid;
        self.view.add_root(pid, program, argv);
    }

    /// Logs the signals traced processes sent to vigil itself (ignored by its handlers).
    fn drain_signals(&mut self) {
        crate::signals::take_attention();
        let (refused, dropped) = crate::signals::drain_refused();
        for (sig, sender) in refused {
            let (pid, tid) = match self.view.threads.get(&sender) {
                Some(t) => (t.pid, sender),
                None => (sender, sender),
            };
            self.action(
                pid,
                tid,
                "ignored",
                format!(
                    "{} sent to vigil itself by traced process {sender}: ignored",
                    vigil_event::flags::signal_name(sig as i64)
                ),
            );
        }
        if dropped > 0 {
            let root = self.root;
            self.action(
                root,
                root,
                "ignored",
                format!("{dropped} more signals sent to vigil by traced processes: ignored"),
            );
        }
    }

    /// Passes a signal someone sent vigil on to the command, unless the command received it
    /// from the same sender (it went to the whole process group): once only, as without vigil.
    fn handle_forward(&mut self) {
        let now = now_ns();
        if let Some((sig, sender)) = crate::signals::take_forward() {
            self.pending_forward = Some((sig, sender, now + FORWARD_WAIT_NS));
        }
        let Some((sig, sender, deadline)) = self.pending_forward else {
            return;
        };
        let reached = self.root_signals.iter().any(|&(s, from, at)| {
            s == sig && from == sender && at + 100_000_000 >= deadline - FORWARD_WAIT_NS
        });
        if reached {
            self.pending_forward = None;
            return;
        }
        if now < deadline {
            return;
        }
        self.pending_forward = None;
        let root = self.root;
        if self.root_status.is_none() && self.view.threads.contains_key(&root) {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(root),
                Signal::try_from(sig).unwrap_or(Signal::SIGTERM),
            );
            self.action(
                root,
                root,
                "forwarded",
                format!(
                    "{} sent to vigil by process {sender}: passed on to the command",
                    vigil_event::flags::signal_name(sig as i64)
                ),
            );
        }
    }

    /// Stops following the processes the command left running (asked to while waiting for
    /// them): each is stopped where it is and detached. Their system calls that the seccomp
    /// filter traps fail with ENOSYS from then on (a filter cannot be removed).
    fn detach_all(&mut self) {
        let tids: Vec<i32> = self.view.threads.keys().copied().collect();
        for &t in &tids {
            // SAFETY: PTRACE_INTERRUPT takes no pointers.
            unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, t, 0, 0) };
        }
        let mut left: HashSet<i32> = tids.iter().copied().collect();
        let deadline = now_ns() + 1_000_000_000;
        while !left.is_empty() && now_ns() < deadline {
            match waitpid(
                None::<Pid>,
                Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD | WaitPidFlag::WNOHANG),
            ) {
                Ok(WaitStatus::StillAlive) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Ok(WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)) => {
                    left.remove(&p.as_raw());
                }
                Ok(st) => {
                    if let Some(p) = st.pid() {
                        // A signal it was about to get is delivered on the way out.
                        let mut sig = match st {
                            WaitStatus::Stopped(_, s) if s != Signal::SIGSTOP => Some(s),
                            _ => None,
                        };
                        // Shared memory vigil protected gets the program's protection back
                        // before the process goes on alone (a fault vigil caused is dropped:
                        // the access then succeeds).
                        if self.smo.on()
                            && let Some(pid) = self.view.threads.get(&p.as_raw()).map(|t| t.pid)
                            && self.smo.has_smo(pid)
                            && self.smo_release_all(pid, p.as_raw(), st)
                        {
                            sig = None;
                        }
                        let _ = ptrace::detach(p, sig);
                        if left.remove(&p.as_raw()) {
                            self.detached += 1;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        for (tid, t) in std::mem::take(&mut self.view.threads) {
            crate::signals::set_traced(tid, false);
            if tid == t.pid {
                self.view.procs.remove(&tid);
            }
        }
    }

    /// Waits for stops until no traced task is left.
    pub fn run(&mut self) -> Result<(), PtraceError> {
        loop {
            self.drain_signals();
            self.handle_forward();
            if crate::signals::stop_waiting_requested() && self.root_status.is_some() {
                self.detach_all();
                return Ok(());
            }
            if self.stop.is_stopped() {
                self.stopped = true;
                self.detach_all();
                return Ok(());
            }
            if let Some(st) = self.deferred.pop_front() {
                self.dispatch(st)?;
                continue;
            }
            if self.smo.on() && self.smo.next_deadline().is_some_and(|d| now_ns() >= d) {
                self.smo_tick()?;
                continue;
            }
            if self.pending_forward.is_some() {
                // Do not sleep past the moment a forward must be decided.
                match waitpid(
                    None::<Pid>,
                    Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD | WaitPidFlag::WNOHANG),
                ) {
                    Ok(WaitStatus::StillAlive) => {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    Ok(st) => {
                        self.dispatch(st)?;
                        continue;
                    }
                    Err(Errno::ECHILD) => return Ok(()),
                    Err(_) => continue,
                }
            }
            let status = match self.wait_next() {
                Ok(s) => s,
                Err(Errno::ECHILD) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(PtraceError::Sys {
                        what: "waitpid",
                        errno: e,
                    });
                }
            };
            self.dispatch(status)?;
        }
    }

    /// Handles one stop (or the end of a task).
    fn dispatch(&mut self, status: WaitStatus) -> Result<(), PtraceError> {
        match status {
            WaitStatus::PtraceEvent(pid, _, 7 /* PTRACE_EVENT_SECCOMP */) => {
                self.on_syscall_entry(pid.as_raw())?
            }
            WaitStatus::PtraceSyscall(pid) => self.on_syscall_exit(pid.as_raw())?,
            WaitStatus::PtraceEvent(pid, _, ev)
                if ev == libc::PTRACE_EVENT_FORK
                    || ev == libc::PTRACE_EVENT_VFORK
                    || ev == libc::PTRACE_EVENT_CLONE =>
            {
                self.on_new_task(pid.as_raw(), ev)?
            }
            WaitStatus::PtraceEvent(pid, _, ev) if ev == libc::PTRACE_EVENT_EXEC => {
                self.on_exec(pid.as_raw())?
            }
            WaitStatus::PtraceEvent(pid, sig, PTRACE_EVENT_STOP) => {
                self.on_event_stop(pid.as_raw(), sig)?
            }
            WaitStatus::PtraceEvent(pid, _, _) => self.resume(pid.as_raw(), None)?,
            WaitStatus::Stopped(pid, sig) => self.on_signal(pid.as_raw(), sig)?,
            WaitStatus::Exited(pid, code) => {
                self.on_task_exit(pid.as_raw(), ExitStatus::Code(code))
            }
            WaitStatus::Signaled(pid, sig, core) => self.on_task_exit(
                pid.as_raw(),
                ExitStatus::Signal {
                    signal: sig as i32,
                    core_dumped: core,
                },
            ),
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
        Ok(())
    }

    /// The next stop. A tracee usually stops again within microseconds of being resumed, so
    /// the tracer polls briefly before it sleeps: when the stop comes it is already running,
    /// which saves the sleep/wake-up (an inter-processor interrupt, and in a VM an exit to the
    /// hypervisor) on every stop.
    ///
    /// The poll adapts: a stop that came while polling doubles the next poll (up to
    /// `max_spin_ns`), one that did not halves it, so a tracee that stops rarely (idle, or busy
    /// computing) costs almost no polling. The loop yields the CPU to anything else runnable.
    fn wait_next(&mut self) -> nix::Result<WaitStatus> {
        let flags = WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD | WaitPidFlag::WNOHANG;
        if self.spin_ns >= MIN_SPIN_NS && self.cpu_free() {
            let start = now_ns();
            loop {
                match waitpid(None::<Pid>, Some(flags))? {
                    WaitStatus::StillAlive => {
                        if crate::signals::attention() {
                            return Err(Errno::EINTR);
                        }
                        if now_ns().saturating_sub(start) > self.spin_ns {
                            break;
                        }
                        // SAFETY: no arguments; only gives the CPU away if someone wants it.
                        unsafe { libc::sched_yield() };
                    }
                    status => {
                        self.spin_ns = (self.spin_ns * 2).min(self.max_spin_ns);
                        return Ok(status);
                    }
                }
            }
        }
        self.spin_ns /= 2;
        // A handler that ran since the last look: act before sleeping. (One landing between
        // this check and the wait interrupts the wait: no SA_RESTART.)
        if crate::signals::attention() {
            return Err(Errno::EINTR);
        }
        let status = waitpid(
            None::<Pid>,
            Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD),
        );
        if self.spin_ns < MIN_SPIN_NS {
            // Try polling again now and then: the tracee's pace may have changed.
            self.idle_waits += 1;
            if self.idle_waits.is_multiple_of(64) {
                self.spin_ns = self.max_spin_ns;
            }
        }
        status
    }

    /// Whether polling would take no CPU another process needs: the number of runnable tasks
    /// on the machine (the tracer included), looked at every 10 ms in /proc/loadavg, is at
    /// most the number of CPUs. A traced build running two compilers on two cores has none
    /// to spare, and a tracer polling there slowed it (`bench/run record --only P1`): it
    /// sleeps in waitpid instead, which leaves the CPU to them.
    fn cpu_free(&mut self) -> bool {
        let now = now_ns();
        if now.saturating_sub(self.cpu_checked_ns) > 10_000_000 {
            self.cpu_checked_ns = now;
            self.cpu_free = inspect::runnable_tasks().is_none_or(|r| r <= self.cpus);
        }
        self.cpu_free
    }

    /// Resumes a stopped task, through its syscall's exit when one is awaited.
    pub(crate) fn resume(&mut self, tid: i32, sig: Option<Signal>) -> Result<(), PtraceError> {
        let awaiting = self
            .view
            .threads
            .get(&tid)
            .and_then(|t| t.pending.as_ref())
            .is_some_and(|p| p.awaiting_exit);
        let pid = Pid::from_raw(tid);
        tolerate_gone(if awaiting {
            ptrace::syscall(pid, sig)
        } else {
            ptrace::cont(pid, sig)
        })
    }

    fn on_event_stop(&mut self, tid: i32, sig: Signal) -> Result<(), PtraceError> {
        if matches!(
            sig,
            Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
        ) {
            // Group-stop (job control): keep the task stopped but let SIGCONT reach it.
            // SAFETY: PTRACE_LISTEN takes no pointers.
            let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid, 0, 0) };
            if r != 0 && Errno::last() != Errno::ESRCH {
                return Err(PtraceError::Sys {
                    what: "ptrace(PTRACE_LISTEN)",
                    errno: Errno::last(),
                });
            }
            return Ok(());
        }
        // The first stop of an auto-attached child.
        if self.view.threads.contains_key(&tid) {
            self.smo_child_start(tid);
            return self.resume(tid, None);
        }
        // Its parent's fork event has not been seen yet: keep it stopped until it is.
        self.early_children.insert(tid);
        Ok(())
    }

    fn on_signal(&mut self, tid: i32, sig: Signal) -> Result<(), PtraceError> {
        let Some(pid) = self.view.threads.get(&tid).map(|t| t.pid) else {
            // A task we have not been told about yet (its parent's event is still to come).
            self.early_children.insert(tid);
            return Ok(());
        };
        // Classified before anything is delivered (one PTRACE_GETSIGINFO, as always): a
        // signal vigil itself caused is settled and consumed (own.rs).
        let stop = vigil_tracee::Stop::of(tid, sig as i32, 0).ok();
        if let Some(stop) = stop {
            match self.own.classify(pid, tid, &stop) {
                Cause::Program => {}
                Cause::OwnFault { addr, .. } if self.smo.on() => {
                    // A fault in a shared mapping vigil protects: vigil's unless the program's
                    // own protection forbids the access (then it is delivered below).
                    if self.smo_fault(pid, tid, stop, addr)? {
                        self.arm_slice_timer();
                        return Ok(());
                    }
                }
                cause => return self.consume_own(pid, tid, stop, cause),
            }
        }
        let d = self
            .view
            .signal_delivery(pid, tid, sig as i32, stop.as_ref());
        if tid == self.root && d.code <= 0 {
            // Seen by handle_forward: this signal reached the command from its sender.
            self.root_signals
                .push_back((sig as i32, d.sender_pid as i32, now_ns()));
            if self.root_signals.len() > 16 {
                self.root_signals.pop_front();
            }
        }
        self.emit(pid, tid, EventKind::Signal(d));
        self.resume(tid, Some(sig))
    }

    /// A signal vigil caused (own.rs): settled (the protection it put on a range given back,
    /// the step ended) and the thread resumed without it.
    fn consume_own(
        &mut self,
        pid: i32,
        tid: i32,
        stop: vigil_tracee::Stop,
        cause: Cause,
    ) -> Result<(), PtraceError> {
        // SAFETY: `tid` is at the signal-delivery stop this thread's wait just reported, and
        // nothing else resumes it until this handler does.
        let mut at = unsafe { vigil_tracee::Stopped::assume(tid, stop) };
        match self.own.settle(&mut self.ctl, &mut at, pid, cause) {
            Ok(()) => {}
            Err(vigil_tracee::Error::DiedDuringInjection { exit, .. }) => {
                // tracee reaped it while running the mprotect: its end is reported here.
                let status = crate::view::exit_status(exit);
                self.on_task_exit(tid, status);
                return Ok(());
            }
            Err(e) if e.is_gone() => return Ok(()),
            Err(e) => {
                self.action(
                    pid,
                    tid,
                    "failed",
                    format!("settling a signal vigil caused ({cause:?}): {e}"),
                );
            }
        }
        self.resume(tid, None)
    }

    fn on_new_task(&mut self, parent_tid: i32, event: i32) -> Result<(), PtraceError> {
        let child = match ptrace::getevent(Pid::from_raw(parent_tid)) {
            Ok(c) => c as i32,
            Err(_) => return self.resume(parent_tid, None),
        };
        let flags = self.view.clone_flags_of(parent_tid, event);
        if let Some(p) = self
            .view
            .threads
            .get_mut(&parent_tid)
            .and_then(|t| t.pending.as_mut())
        {
            p.created = Some(child);
        }
        let Some(ppid) = self.view.threads.get(&parent_tid).map(|t| t.pid) else {
            return self.resume(parent_tid, None);
        };
        crate::signals::set_traced(child, true);
        if self.smo.on() && flags & libc::CLONE_VM as u64 == 0 {
            // The child has its parent's protections and grants: protected at its first stop.
            self.smo.fork(ppid, child);
            if self.smo.has_smo(ppid) {
                self.smo_children.insert(child);
            }
        }
        if !self.view.add_task(parent_tid, child, flags) {
            return self.resume(parent_tid, None);
        }
        // Its first stop may have come already: then it waits for us to resume it.
        if self.early_children.remove(&child) {
            self.smo_child_start(child);
            self.resume(child, None)?;
        }
        self.resume(parent_tid, None)
    }

    fn on_exec(&mut self, tid: i32) -> Result<(), PtraceError> {
        // A non-leader thread that execs takes over the leader's tid.
        let former = ptrace::getevent(Pid::from_raw(tid))
            .map(|f| f as i32)
            .unwrap_or(tid);
        if former != tid && self.view.threads.contains_key(&former) {
            crate::signals::set_traced(former, false);
            crate::signals::set_traced(tid, true);
        }
        let Some(pid) = self.view.exec(tid, former) else {
            return self.resume(tid, None);
        };
        // The old address space is gone, and what vigil protected in it.
        self.own.forget_process(pid);
        self.smo.forget(pid);
        if pid == self.root {
            self.root_exec_seen = true;
        }
        self.resume(tid, None)
    }

    fn on_task_exit(&mut self, tid: i32, status: ExitStatus) {
        self.early_children.remove(&tid);
        let Some((pid, process_ended)) = self.view.task_exit(tid, status) else {
            return;
        };
        crate::signals::set_traced(tid, false);
        self.own.forget_thread(tid);
        if process_ended {
            self.own.forget_process(pid);
            self.smo.forget(pid);
            self.smo_children.remove(&pid);
            if pid == self.root {
                self.root_status = Some(status);
                crate::signals::root_gone();
            }
        }
    }

    /// An action vigil itself took about a process, logged like any event.
    pub(crate) fn action(&mut self, pid: i32, tid: i32, action: &str, detail: String) {
        self.view.action(pid, tid, action, detail);
    }

    pub(crate) fn on_syscall_entry(&mut self, tid: i32) -> Result<(), PtraceError> {
        if self.draining() {
            return self.resume(tid, None);
        }
        let Some(info) = syscall_info(tid)? else {
            return Ok(());
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
            return self.resume(tid, None);
        }
        // SAFETY: op == SECCOMP, so the seccomp member of the union is the one filled in.
        let (nr, mut raw) = unsafe { (info.u.seccomp.nr, info.u.seccomp.args) };
        let call = crate::view::syscall_id(info.arch == AUDIT_ARCH_X86_64, nr, &mut raw);
        let abi = call.abi;
        let sig = call.signature();
        let record = self.view.selection.contains(call);
        let Some(pid) = self.view.threads.get(&tid).map(|t| t.pid) else {
            return self.resume(tid, None);
        };
        let sys = call.canonical();
        let smo_call = self.smo.on() && sys.is_some_and(crate::smo::interested);
        if !record && sig.bookkeeping == Bookkeeping::No && !smo_call {
            // Trapped only because every call of another ABI is (see seccomp.rs).
            return self.resume(tid, None);
        }
        let (args, walked) = self.view.decode_entry(pid, tid, call, &raw);
        // Shared memory: the slice ends at every syscall stop, and the call's buffers in
        // shared mappings are the kernel's accesses (smo_ops.rs).
        let mut smo_out = Vec::new();
        let mut smo_maps_of = None;
        if self.smo.on() {
            // The stop this is, for injections at it (tracee's remote syscalls).
            let stop = vigil_tracee::Stop::Seccomp {
                call: vigil_tracee::SyscallEntry {
                    nr,
                    args: raw,
                    abi: vigil_tracee::Abi::X86_64,
                    ip: info.instruction_pointer,
                    sp: info.stack_pointer,
                },
                data: 0,
            };
            if self.smo.has_grants(pid) || self.smo.has_smo(pid) {
                smo_out = self.smo_entry(pid, tid, call, &raw, stop)?;
                self.arm_slice_timer();
            }
            smo_maps_of = self.smo_maps_read(pid, tid, sys, &args, stop)?;
        }
        if self.smo.use_window && abi == Abi::X86_64 {
            self.window_hint(pid, tid, sys, &raw, &args);
        }
        // clone is trapped only with CLONE_UNTRACED (seccomp.rs), i386 clone always.
        let clone =
            sys == Some(Sysno::clone) || (abi == Abi::I386 && call.nr == crate::guard::I386_CLONE);
        let guarded = if sig.bookkeeping == Bookkeeping::Guard || !walked.is_empty() || clone {
            self.guard(pid, tid, call, &raw, &args, &walked)
        } else {
            Guarded::Allow
        };
        // Entry-time bookkeeping: close releases the fd whatever the call returns.
        if let Some(s @ (Sysno::close | Sysno::close_range)) = sys
            && matches!(guarded, Guarded::Allow | Guarded::Changed { .. })
        {
            self.view.close_fds(tid, s, &raw);
        }
        let mut awaiting_exit = record
            || matches!(sig.bookkeeping, Bookkeeping::Exit | Bookkeeping::Guard)
            || smo_call
            || !smo_out.is_empty()
            || smo_maps_of.is_some()
            || matches!(self.smo.mode, crate::smo::SmoMode::Minipage(_))
                && self.smo.has_grants(pid);
        if matches!(sys, Some(Sysno::exit | Sysno::exit_group)) {
            awaiting_exit = false;
        }
        let (entry_seq, verdict) = self.view.emit_entry(pid, tid, call, &args, record);
        match guarded {
            Guarded::Allow => {}
            Guarded::Changed { detail } => self.action(pid, tid, "changed", detail),
            Guarded::Refuse { errno, detail } => {
                self.action(pid, tid, "refused", detail);
                return self.skip(pid, tid, call, entry_seq, args, -(errno as i64), record);
            }
            Guarded::Emulated { ret, detail } => {
                self.action(pid, tid, "redirected", detail);
                return self.skip(pid, tid, call, entry_seq, args, ret, record);
            }
        }
        if let Verdict::Deny(errno) = verdict {
            return self.skip(pid, tid, call, entry_seq, args, -(errno as i64), true);
        }
        if sys == Some(Sysno::io_uring_enter)
            && let Some(errno) = self.uring_enter_entry(pid, tid, &raw)
        {
            return self.skip(pid, tid, call, entry_seq, args, -(errno as i64), record);
        }
        if let Some(t) = self.view.threads.get_mut(&tid) {
            t.pending = Some(Pending {
                call,
                entry_seq,
                raw,
                args,
                walked,
                record,
                awaiting_exit,
                created: None,
                smo_out,
                smo_maps_of,
            });
        }
        self.resume(tid, None)
    }

    /// A shared mapping the kernel may place where it likes is offered an address in vigil's
    /// window (smo.rs), where the seccomp filter finds buffers that point into it.
    fn window_hint(&mut self, pid: i32, tid: i32, sys: Option<Sysno>, raw: &[u64; 6], args: &Args) {
        const MAP_SHARED: u64 = 0x01;
        const MAP_TYPE: u64 = 0x0f;
        const MAP_FIXED: u64 = 0x10;
        const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
        let (reg, len) = match sys {
            Some(Sysno::mmap)
                if raw[0] == 0
                    && raw[3] & MAP_FIXED == 0
                    && raw[3] & MAP_FIXED_NOREPLACE == 0
                    && matches!(raw[3] & MAP_TYPE, MAP_SHARED | 0x03)
                    && maps_memory(raw[3], args) =>
            {
                (0, raw[1])
            }
            Some(Sysno::shmat) if raw[1] == 0 => {
                let size = self
                    .view
                    .spaces
                    .as_ref()
                    .and_then(|s| s.shm_segment(raw[0] as i64))
                    .map_or(0, |s| s.size);
                if size == 0 {
                    return;
                }
                (1, size)
            }
            _ => return,
        };
        let Some(hint) = self.smo.window_hint(pid, len) else {
            return;
        };
        let p = Pid::from_raw(tid);
        if let Ok(mut regs) = ptrace::getregs(p) {
            if reg == 0 {
                regs.rdi = hint;
            } else {
                regs.rsi = hint;
            }
            let _ = ptrace::setregs(p, regs);
        }
    }

    /// Skips the call (orig_rax = -1) and makes it return `ret`; the exit event (when the
    /// call is recorded) is emitted here since the call never runs.
    #[allow(clippy::too_many_arguments)]
    fn skip(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        entry_seq: u64,
        args: Args,
        ret: i64,
        record: bool,
    ) -> Result<(), PtraceError> {
        let p = Pid::from_raw(tid);
        if let Ok(mut regs) = ptrace::getregs(p) {
            regs.orig_rax = u64::MAX;
            regs.rax = ret as u64;
            tolerate_gone(ptrace::setregs(p, regs))?;
        }
        if record {
            self.emit(
                pid,
                tid,
                EventKind::SyscallExit(SyscallExit {
                    call,
                    entry_seq,
                    ret,
                    args,
                }),
            );
        }
        if let Some(t) = self.view.threads.get_mut(&tid) {
            t.pending = None;
        }
        self.resume(tid, None)
    }

    pub(crate) fn on_syscall_exit(&mut self, tid: i32) -> Result<(), PtraceError> {
        let Some(mut pending) = self
            .view
            .threads
            .get_mut(&tid)
            .and_then(|t| t.pending.take())
        else {
            return self.resume(tid, None);
        };
        let Some(info) = syscall_info(tid)? else {
            return Ok(());
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_EXIT {
            return self.resume(tid, None);
        }
        // SAFETY: op == EXIT, so the exit member of the union is the one filled in.
        let ret = unsafe { info.u.exit.sval };
        let pid = self.view.threads.get(&tid).map_or(tid, |t| t.pid);
        match pending.call.canonical() {
            Some(Sysno::io_uring_enter) => self.uring_enter_exit(pid, tid, &pending.raw),
            Some(Sysno::io_uring_register) if ret >= 0 => {
                self.uring_register_exit(pid, tid, &pending.raw)
            }
            _ => {}
        }
        let mut args = self.view.finish_call(pid, tid, &pending, ret);
        if pending.call.canonical() == Some(Sysno::io_uring_setup) && ret >= 0 {
            self.uring_setup_exit(pid, tid, &pending.raw, ret as i32);
        }
        if self.smo.on() {
            self.smo_file_offset(pid, tid, &pending, ret, &mut args)?;
        }
        let smo_model = self.smo.on() && pending.call.canonical().is_some_and(changes_memory);
        if pending.record || smo_model {
            self.view
                .exit_event(pid, tid, &pending, ret, args, pending.record);
        }
        if let Some(target) = pending.smo_maps_of {
            self.smo_maps_read_done(pid, tid, target)?;
        }
        if self.smo.on() {
            let smo_out = std::mem::take(&mut pending.smo_out);
            self.smo_exit_events(pid, tid, smo_out, ret);
            if smo_model && ret >= 0 {
                let mut ranges = memory_call_ranges(pending.call.canonical(), &pending.raw, ret);
                if pending.call.canonical() == Some(Sysno::shmat)
                    && let Some(v) = self
                        .view
                        .spaces
                        .as_ref()
                        .and_then(|s| s.mm(pid as u32))
                        .and_then(|m| m.vma_at(ret as u64))
                {
                    // The segment's whole mapping (its size is the model's).
                    ranges = vec![(v.start, v.end)];
                }
                if let Some(Sysno::mmap | Sysno::shmat | Sysno::mremap) = pending.call.canonical()
                    && let Some(&(s, e)) = ranges.last()
                {
                    self.smo.placed(pid, s, e);
                }
                self.smo_after_memory_call(pid, tid, &ranges)?;
            } else if matches!(self.smo.mode, crate::smo::SmoMode::Minipage(_))
                && self.smo.has_grants(pid)
            {
                // minipage: a buffer lifted for the call is protected again at once.
                let ops = self.smo.end_slice(pid);
                self.smo_protect_here(pid, tid, &ops);
            }
        }
        self.view.flush_actions();
        self.check_child_traced(pid, tid, &pending, ret);
        self.resume(tid, None)
    }

    /// A fork or clone that returned a child vigil was not told about: the child runs
    /// untraced (its CLONE_UNTRACED was set again after vigil cleared it). It is killed.
    fn check_child_traced(&mut self, pid: i32, tid: i32, p: &Pending, ret: i64) {
        let forks = matches!(
            p.call.canonical(),
            Some(Sysno::clone | Sysno::clone3 | Sysno::fork | Sysno::vfork)
        ) || (p.call.abi == Abi::I386 && p.call.nr == crate::guard::I386_CLONE);
        if !forks || ret <= 0 || p.created.is_some() {
            return;
        }
        let Some(child) = self.view.translate_pid(pid, ret as u32) else {
            return;
        };
        if self.view.threads.contains_key(&(child as i32))
            || self.early_children.contains(&(child as i32))
        {
            return;
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(child as i32), Signal::SIGKILL);
        self.action(
            pid,
            tid,
            "killed",
            format!(
                "{}: child {child} was created untraced (CLONE_UNTRACED set again after vigil removed it): killed",
                p.call
            ),
        );
    }
}

/// Whether an mmap maps memory a program shares (smo::memory_object): anonymous memory, or
/// a file that is not a device or another special file (an io_uring ring, a perf buffer).
fn maps_memory(flags: u64, args: &Args) -> bool {
    const MAP_ANONYMOUS: u64 = 0x20;
    if flags & MAP_ANONYMOUS != 0 {
        return true;
    }
    match args.get(4) {
        Some(Value::Fd(fd)) => match fd.target.as_deref() {
            Some(value::Target::File { path, .. }) => crate::smo::memory_path(path.as_bytes()),
            Some(value::Target::Other { label, .. }) => {
                let l = label.as_bytes();
                l.starts_with(b"memfd:") || l.starts_with(b"/memfd:")
            }
            _ => false,
        },
        _ => false,
    }
}

/// The calls that change an address space (those the model follows, and madvise and shmget).
fn changes_memory(s: Sysno) -> bool {
    MEMORY_CALLS.contains(&s) || s == Sysno::shmget || s == Sysno::madvise
}

/// The address ranges a successful memory call changed: what vigil protects again after it.
fn memory_call_ranges(sys: Option<Sysno>, raw: &[u64; 6], ret: i64) -> Vec<(u64, u64)> {
    let page_up = |n: u64| n.saturating_add(0xfff) & !0xfff;
    let r = ret as u64;
    match sys {
        Some(Sysno::mmap) => vec![(r, r.saturating_add(page_up(raw[1])))],
        Some(Sysno::munmap | Sysno::mprotect | Sysno::madvise) => {
            vec![(raw[0], raw[0].saturating_add(page_up(raw[1])))]
        }
        Some(Sysno::mremap) => vec![
            (raw[0], raw[0].saturating_add(page_up(raw[1]))),
            (r, r.saturating_add(page_up(raw[2]))),
        ],
        // The segment's size is the model's: its whole mapping is looked at.
        Some(Sysno::shmat) => vec![(r, r.saturating_add(1))],
        _ => Vec::new(),
    }
}
