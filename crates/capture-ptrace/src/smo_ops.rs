//! Shared-memory monitoring carried out in the tracees (smo.rs decides, this file acts): the
//! fault handler (decode the instruction, grant, take other processes' grants away, or step
//! in minipage mode), the syscall-stop work (a slice ends, buffers a syscall passes into a
//! shared mapping are granted so the kernel's own access neither fails with EFAULT nor goes
//! unseen), the protection of new mappings after the memory calls, of a forked child, and the
//! slice timer.
//!
//! Every protection change is an mprotect run inside the tracee (tracee's RemoteSyscalls,
//! registers and signal state restored on every path). It is issued as `pkey_mprotect(addr,
//! len, prot, -1)`, which is mprotect exactly, because vigil's seccomp filter does not trap
//! pkey_mprotect: an injected plain mprotect would stop at the filter once more.

use crate::PtraceError;
use crate::smo::{self, FaultPlan, ProtOp, SmoMode, merge};
use crate::tracer::Tracer;
use crate::view::from_tracee;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use syscalls::Sysno;
use vigil_capture::now_ns;
use vigil_event::{EventKind, MemAccess, SmoAccess, SmoVia, SyscallId};
use vigil_tracee::{Decoded, Running, Stop, Stopped, Wait};

/// A buffer a syscall hands the kernel: `(addr, len, the kernel writes it)`.
pub type Buffer = (u64, u64, bool);

/// Most iovecs vigil reads from one call (the kernel's UIO_MAXIOV).
const MAX_IOV: u64 = 1024;

/// The wait status the main loop would have seen for a stop taken while interrupting.
fn status_of(tid: i32, stop: &Stop) -> Option<WaitStatus> {
    let pid = Pid::from_raw(tid);
    Some(match *stop {
        Stop::Seccomp { .. } => WaitStatus::PtraceEvent(pid, Signal::SIGTRAP, 7),
        Stop::SyscallEntry(_) | Stop::SyscallExit { .. } => WaitStatus::PtraceSyscall(pid),
        Stop::Signal { sig, .. } => WaitStatus::Stopped(pid, Signal::try_from(sig).ok()?),
        Stop::GroupStop { sig } => {
            WaitStatus::PtraceEvent(pid, Signal::try_from(sig).ok()?, libc::PTRACE_EVENT_STOP)
        }
        Stop::Event(e) => {
            let n = match e {
                vigil_tracee::Event::Fork { .. } => libc::PTRACE_EVENT_FORK,
                vigil_tracee::Event::Vfork { .. } => libc::PTRACE_EVENT_VFORK,
                vigil_tracee::Event::Clone { .. } => libc::PTRACE_EVENT_CLONE,
                vigil_tracee::Event::Exec { .. } => libc::PTRACE_EVENT_EXEC,
                vigil_tracee::Event::VforkDone { .. } => libc::PTRACE_EVENT_VFORK_DONE,
                vigil_tracee::Event::Exit { .. } => libc::PTRACE_EVENT_EXIT,
                vigil_tracee::Event::Other { event, .. } => event,
            };
            WaitStatus::PtraceEvent(pid, Signal::SIGTRAP, n)
        }
        Stop::Interrupt | Stop::Stepped => return None,
    })
}

/// The stop a wait status reports for a stopped thread (asking the kernel what it is), or
/// None for an exit or a thread gone meanwhile.
fn stop_of_status(tid: i32, status: WaitStatus) -> Option<Stop> {
    let (sig, event) = match status {
        WaitStatus::Stopped(_, s) => (s as i32, 0),
        WaitStatus::PtraceEvent(_, s, e) => (s as i32, e),
        WaitStatus::PtraceSyscall(_) => (libc::SIGTRAP | 0x80, 0),
        _ => return None,
    };
    Stop::of(tid, sig, event).ok()
}

fn exit_status(tid: i32, exit: vigil_tracee::Exit) -> WaitStatus {
    let pid = Pid::from_raw(tid);
    match exit {
        vigil_tracee::Exit::Exited(c) => WaitStatus::Exited(pid, c),
        vigil_tracee::Exit::Killed {
            signal,
            core_dumped,
        } => WaitStatus::Signaled(
            pid,
            Signal::try_from(signal).unwrap_or(Signal::SIGKILL),
            core_dumped,
        ),
    }
}

impl Tracer<'_> {
    /// Runs `ops` as mprotects in the stopped thread `at`; `discard`: it is at vigil's own
    /// fault, whose signal is dropped.
    fn protect_in(
        &mut self,
        pid: i32,
        at: &mut Stopped,
        ops: &[ProtOp],
        discard: bool,
    ) -> Result<(), vigil_tracee::Error> {
        let site = self.smo.proc_mut(pid).site;
        // pkey_mprotect is never trapped by vigil's filter: one stop per call, stepped.
        let mut remote = at.remote(&mut self.ctl)?.stepped();
        if let Some(s) = site {
            remote = remote.with_site(s);
        }
        let mut first_err = None;
        for &(s, e, prot) in ops {
            if e <= s {
                continue;
            }
            match remote.syscall(
                Sysno::pkey_mprotect,
                &[s, e - s, prot as u64, u64::MAX as u32 as u64],
            ) {
                Ok(r) if (-4095..0).contains(&r) => {
                    // ENOMEM: the range was unmapped meanwhile by another thread; the model
                    // catches up at its munmap.
                    first_err.get_or_insert(r);
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        if site.is_none()
            && let Ok(s) = remote.site()
        {
            self.smo.proc_mut(pid).site = Some(s);
        }
        if discard {
            remote.finish_discarding_signal()
        } else {
            remote.finish()
        }
    }

    /// Protects `ops` in process `pid`, which is running: one of its threads is interrupted,
    /// the mprotects run there, and it goes on (a stop that came instead of the interrupt is
    /// handed to the main loop afterwards).
    pub(crate) fn protect_other(&mut self, pid: i32, ops: &[ProtOp]) -> Result<(), PtraceError> {
        if ops.is_empty() {
            return Ok(());
        }
        let tid = if self.view.threads.get(&pid).is_some_and(|t| t.pid == pid) {
            pid
        } else {
            match self.view.threads.iter().find(|(_, t)| t.pid == pid) {
                Some((&t, _)) => t,
                None => return Ok(()),
            }
        };
        if self.early_children.contains(&tid) {
            return Ok(());
        }
        // A thread of it already stopped, its stop waiting in `deferred` (taken by an earlier
        // interrupt): inject there. Interrupting it again would wait for a stop that cannot
        // come while vigil holds it.
        if let Some(st) = self.deferred.iter().copied().find(|st| {
            st.pid().is_some_and(|p| {
                self.view
                    .threads
                    .get(&p.as_raw())
                    .is_some_and(|t| t.pid == pid)
            })
        }) {
            let Some(held) = st.pid().map(Pid::as_raw) else {
                return Ok(());
            };
            match stop_of_status(held, st) {
                Some(stop) if !matches!(stop, Stop::Event(_)) => {
                    // SAFETY: `held` is stopped at the stop its deferred status reports,
                    // which the main loop handles (and resumes) later.
                    let mut at = unsafe { Stopped::assume(held, stop) };
                    if let Err(e) = self.protect_in(pid, &mut at, ops, false)
                        && !e.is_gone()
                    {
                        self.action(
                            pid,
                            held,
                            "failed",
                            format!("protecting shared memory: {e}"),
                        );
                    }
                }
                // At an event stop no call can run; it is inside the kernel until resumed.
                _ => {}
            }
            return Ok(());
        }
        let interrupted = self.ctl.interrupt(Running::from_tid(tid));
        let Some(mut wait) = self.waited(pid, tid, interrupted) else {
            return Ok(());
        };
        let mut s = loop {
            let s = match wait {
                Wait::Exited { tid, exit } => {
                    self.deferred.push_back(exit_status(tid, exit));
                    return Ok(());
                }
                Wait::Stopped(s) => s,
            };
            // A blocking call the interrupt cut short stops at its exit first (it restarts
            // later): that stop is the recorder's as always, and the interrupt stop follows.
            if let Stop::SyscallExit { ret, .. } = *s.stop()
                && (-516..=-512).contains(&ret)
            {
                drop(s);
                self.on_syscall_exit(tid)?;
                let next = self.ctl.wait_tid(tid);
                let Some(w) = self.waited(pid, tid, next) else {
                    return Ok(());
                };
                wait = w;
                continue;
            }
            break s;
        };
        if let Stop::Event(_) = s.stop() {
            // Inside fork/clone/exec: no call can be run here. Its process is stopped; the
            // next grant decision sees the stale grant only until its next syscall stop.
            if let Some(st) = status_of(tid, s.stop()) {
                self.deferred.push_back(st);
            }
            return Ok(());
        }
        if let Err(e) = self.protect_in(pid, &mut s, ops, false) {
            let ended = e.is_gone() || matches!(e, vigil_tracee::Error::DiedDuringInjection { .. });
            self.protection_failed(pid, tid, e, "protecting shared memory");
            if ended {
                return Ok(());
            }
        }
        let stop = *s.stop();
        self.resume_or_defer(tid, &stop)
    }

    /// A wait for a thread interrupted for shared memory: its result, or None when it is gone
    /// or the wait failed (said in an action: the protection is then left to the next slice).
    fn waited(&mut self, pid: i32, tid: i32, r: Result<Wait, vigil_tracee::Error>) -> Option<Wait> {
        match r {
            Ok(w) => Some(w),
            Err(e) if e.is_gone() => None,
            Err(e) => {
                self.action(
                    pid,
                    tid,
                    "failed",
                    format!("interrupting for shared memory: {e}"),
                );
                None
            }
        }
    }

    /// A SIGSEGV at `addr` in a range vigil protected. Ok(true): vigil's, handled and the
    /// thread resumed; Ok(false): the program's own, to deliver as usual.
    pub(crate) fn smo_fault(
        &mut self,
        pid: i32,
        tid: i32,
        stop: Stop,
        addr: u64,
    ) -> Result<bool, PtraceError> {
        // SAFETY: `tid` is at the signal-delivery stop this thread's wait just reported, and
        // nothing else resumes it until this handler does.
        let mut at = unsafe { Stopped::assume(tid, stop) };
        let Ok(regs) = at.regs() else {
            return Ok(false);
        };
        let (access, exec, decoded) = self.view.decode_at(pid, &regs, addr);
        let Some(spaces) = self.view.spaces.as_ref() else {
            return Ok(false);
        };
        let plan = self.smo.access(
            spaces,
            pid,
            addr,
            access,
            exec,
            regs.ip(),
            SmoVia::Fault,
            now_ns(),
        );
        match plan {
            FaultPlan::NotOurs => Ok(false),
            FaultPlan::Release(op) => {
                // vigil's protection on a mapping it no longer monitors: given back.
                if let Err(e) = self.protect_in(pid, &mut at, &[op], true) {
                    return self.injection_failed(pid, tid, e);
                }
                self.register_ranges(pid);
                self.resume(tid, None)?;
                Ok(true)
            }
            FaultPlan::Already => {
                self.resume(tid, None)?;
                Ok(true)
            }
            FaultPlan::Grant {
                here,
                revoke,
                event,
            } => {
                for (q, ops) in revoke {
                    self.protect_other(q, &ops)?;
                }
                match self.protect_in(pid, &mut at, &here, true) {
                    Ok(()) => {}
                    Err(e) => return self.injection_failed(pid, tid, e),
                }
                self.emit(pid, tid, EventKind::SmoAccess(event));
                self.resume(tid, None)?;
                Ok(true)
            }
            FaultPlan::Step { lift, event } => {
                self.smo_step(pid, tid, at, lift, event, decoded)?;
                Ok(true)
            }
        }
    }

    /// An injected protection that failed in thread `tid`: its death is handed to the main
    /// loop; any other failure is said in an action (the range stays as it was until the next
    /// slice or memory call). A thread already gone needs nothing.
    fn protection_failed(&mut self, pid: i32, tid: i32, e: vigil_tracee::Error, what: &str) {
        match e {
            vigil_tracee::Error::DiedDuringInjection { exit, .. } => {
                self.deferred.push_back(exit_status(tid, exit));
            }
            e if e.is_gone() => {}
            e => self.action(pid, tid, "failed", format!("{what}: {e}")),
        }
    }

    /// Where a thread vigil stopped for an injection is left: at an interrupt (or step) stop
    /// it is resumed; any other stop is the main loop's to handle.
    fn resume_or_defer(&mut self, tid: i32, stop: &Stop) -> Result<(), PtraceError> {
        match stop {
            Stop::Interrupt | Stop::Stepped => self.resume(tid, None),
            stop => {
                if let Some(st) = status_of(tid, stop) {
                    self.deferred.push_back(st);
                }
                Ok(())
            }
        }
    }

    fn injection_failed(
        &mut self,
        pid: i32,
        tid: i32,
        e: vigil_tracee::Error,
    ) -> Result<bool, PtraceError> {
        match e {
            vigil_tracee::Error::DiedDuringInjection { exit, .. } => {
                self.deferred.push_back(exit_status(tid, exit));
                Ok(true)
            }
            e if e.is_gone() => Ok(true),
            e => {
                self.action(pid, tid, "failed", format!("shared-memory fault: {e}"));
                // The access faults again and is then delivered as the program's (the grant
                // was recorded, so the plan says Already... resume and let it retry once).
                self.resume(tid, None)?;
                Ok(true)
            }
        }
    }

    /// minipage: lift the page, execute the one instruction, protect the page again; the
    /// event names the exact bytes. An instruction touching a second protected page faults
    /// during the step: that page is lifted too (up to four).
    fn smo_step(
        &mut self,
        pid: i32,
        tid: i32,
        mut at: Stopped,
        lift: ProtOp,
        mut event: SmoAccess,
        decoded: Option<Decoded>,
    ) -> Result<(), PtraceError> {
        let exact = |d: &Option<Decoded>, addr: u64| {
            d.as_ref().and_then(|d| {
                d.operands
                    .iter()
                    .find(|o| {
                        o.addr
                            .is_some_and(|a| a <= addr && addr < a.saturating_add(o.size.max(1)))
                    })
                    .and_then(|o| Some((o.addr?, o.size.max(1))))
            })
        };
        let fix = |ev: &mut SmoAccess, range: Option<(u64, u64)>| {
            if let Some((a, n)) = range {
                let page_end = (ev.addr | 0xfff) + 1;
                let a = a.max(ev.addr & !0xfff);
                let n = n.min(page_end - a);
                ev.offset -= ev.addr - a;
                ev.len = n;
                ev.addr = a;
            }
        };
        let first = exact(&decoded, event.addr);
        fix(&mut event, first);
        let mut lifted = vec![lift];
        let mut events = vec![event];
        if let Err(e) = self.protect_in(pid, &mut at, &[lift], true) {
            self.injection_failed(pid, tid, e)?;
            return Ok(());
        }
        let mut at = at;
        for _ in 0..4 {
            let wait = match at.step(&mut self.ctl) {
                Ok(w) => w,
                Err(e) if e.is_gone() => return Ok(()),
                Err(e) => {
                    self.action(pid, tid, "failed", format!("single-step: {e}"));
                    return Ok(());
                }
            };
            at = match wait {
                Wait::Exited { tid, exit } => {
                    self.deferred.push_back(exit_status(tid, exit));
                    return Ok(());
                }
                Wait::Stopped(s) => s,
            };
            // Another protected page touched by the same instruction: lift it too.
            if let Stop::Signal {
                sig: libc::SIGSEGV,
                info,
            } = *at.stop()
                && let Some(addr2) = info.fault_addr()
                && self.own.range_at(pid, addr2).is_some()
                && let Some(spaces) = self.view.spaces.as_ref()
                && let FaultPlan::Step {
                    lift: l2,
                    event: mut e2,
                } = {
                    let ip = at.regs().map(|r| r.ip()).unwrap_or(0);
                    let access = decoded
                        .as_ref()
                        .and_then(|d| d.access_at(addr2))
                        .map(from_tracee);
                    self.smo.access(
                        spaces,
                        pid,
                        addr2,
                        access,
                        false,
                        ip,
                        SmoVia::Fault,
                        now_ns(),
                    )
                }
            {
                let range = exact(&decoded, addr2);
                fix(&mut e2, range);
                if let Err(e) = self.protect_in(pid, &mut at, &[l2], true) {
                    self.injection_failed(pid, tid, e)?;
                    return Ok(());
                }
                lifted.push(l2);
                events.push(e2);
                continue;
            }
            break;
        }
        let ops: Vec<ProtOp> = lifted
            .iter()
            .map(|&(s, e, _)| (s, e, libc::PROT_NONE))
            .collect();
        let stop = *at.stop();
        match stop {
            Stop::Event(_) => {}
            _ => {
                if let Err(e) = self.protect_in(pid, &mut at, &ops, false) {
                    self.injection_failed(pid, tid, e)?;
                    return Ok(());
                }
            }
        }
        for e in events {
            self.emit(pid, tid, EventKind::SmoAccess(e));
        }
        let stop = *at.stop();
        self.resume_or_defer(tid, &stop)
    }

    /// The buffers syscall `call` hands the kernel, read from its registers (and iovecs and
    /// message headers from the tracee's memory).
    fn buffers(&mut self, pid: i32, call: Sysno, raw: &[u64; 6]) -> Vec<Buffer> {
        let iov = |t: &mut Self, at: u64, n: u64, writes: bool| -> Vec<Buffer> {
            let mut out = Vec::new();
            let Some(p) = t.view.procs.get_mut(&pid) else {
                return out;
            };
            for i in 0..n.min(MAX_IOV) {
                let Some(entry) = at
                    .checked_add(16 * i)
                    .filter(|e| e.checked_add(16).is_some())
                else {
                    break;
                };
                let (Ok(base), Ok(len)) = (p.mem.read_u64(entry), p.mem.read_u64(entry + 8)) else {
                    break;
                };
                if len > 0 {
                    out.push((base, len, writes));
                }
            }
            out
        };
        let msg = |t: &mut Self, at: u64, writes: bool| -> Vec<Buffer> {
            let Some(p) = t.view.procs.get_mut(&pid) else {
                return Vec::new();
            };
            let Some(iov_at) = at.checked_add(16).filter(|a| a.checked_add(16).is_some()) else {
                return Vec::new();
            };
            let (Ok(v), Ok(n)) = (p.mem.read_u64(iov_at), p.mem.read_u64(iov_at + 8)) else {
                return Vec::new();
            };
            iov(t, v, n, writes)
        };
        match call {
            Sysno::read | Sysno::pread64 | Sysno::recvfrom => vec![(raw[1], raw[2], true)],
            Sysno::write | Sysno::pwrite64 | Sysno::sendto => vec![(raw[1], raw[2], false)],
            Sysno::getrandom => vec![(raw[0], raw[1], true)],
            Sysno::readv | Sysno::preadv | Sysno::preadv2 => iov(self, raw[1], raw[2], true),
            Sysno::writev | Sysno::pwritev | Sysno::pwritev2 => iov(self, raw[1], raw[2], false),
            Sysno::recvmsg => msg(self, raw[1], true),
            Sysno::sendmsg => msg(self, raw[1], false),
            _ => Vec::new(),
        }
    }

    /// At a syscall's entry stop, for a process with monitored mappings: the slice ends (every
    /// grant is taken back) and the buffers the call hands the kernel in shared mappings are
    /// granted as accesses of the call. Kernel reads are emitted now, kernel writes at the
    /// exit (returned, with the bytes the call may write).
    pub(crate) fn smo_entry(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        raw: &[u64; 6],
        seccomp_stop: Stop,
    ) -> Result<Vec<SmoAccess>, PtraceError> {
        let mut ops = self.smo.end_slice(pid);
        let mut now_events = Vec::new();
        let mut later = Vec::new();
        if self.smo.has_smo(pid)
            && let Some(sys) = call.canonical()
        {
            let mut bufs = self.buffers(pid, sys, raw);
            let memory_call = call.signature().class == vigil_event::Class::MEMORY;
            if bufs.is_empty() && !memory_call {
                // Any other call: a pointer argument into a shared mapping is a struct or word
                // the kernel may read or write (futex words, above all). Only the arguments
                // the call has: the other registers hold whatever the program left there.
                let pointers: Vec<u64> = if sys == Sysno::futex {
                    const FUTEX_REQUEUE: u64 = 3;
                    const FUTEX_CMP_REQUEUE: u64 = 4;
                    const FUTEX_WAKE_OP: u64 = 5;
                    const FUTEX_CMP_REQUEUE_PI: u64 = 12;
                    let op = raw[1] & 0x7f;
                    let second = matches!(
                        op,
                        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP | FUTEX_CMP_REQUEUE_PI
                    );
                    let mut v = vec![raw[0]];
                    if second {
                        v.push(raw[4]);
                    }
                    v
                } else {
                    // A call vigil does not decode has no known arguments: none is looked at.
                    vigil_event::syscall::signature_of(sys)
                        .map_or(&[][..], |s| s.args)
                        .iter()
                        .zip(raw.iter())
                        .filter(|(a, _)| a.kind.is_pointer())
                        .map(|(_, &v)| v)
                        .collect()
                };
                for a in pointers {
                    if a != 0 && self.own.range_at(pid, a).is_some() {
                        bufs.push((a, 1, true));
                        // A path or a struct may run on into the next page.
                        let next = (a | 0xfff).saturating_add(1);
                        if sys != Sysno::futex && self.own.range_at(pid, next).is_some() {
                            bufs.push((next, 1, true));
                        }
                    }
                }
            }
            let ip = self
                .view
                .threads
                .get(&tid)
                .and(match seccomp_stop {
                    Stop::Seccomp { call, .. } => Some(call.ip),
                    _ => None,
                })
                .unwrap_or(0);
            // Only the pages of a buffer that lie in protected ranges are walked: its length
            // is the program's (up to the whole address space).
            let mut pieces = Vec::new();
            for (addr, len, writes) in bufs {
                let end = addr.saturating_add(len);
                for r in self.own.ranges_in(pid, addr, end) {
                    pieces.push((addr.max(r.start), end.min(r.end), len, writes));
                }
            }
            for (start, end, len, writes) in pieces {
                let mut a = start;
                while a < end {
                    let next = (a | 0xfff).saturating_add(1).min(end);
                    if let Some(spaces) = self.view.spaces.as_ref() {
                        let access = if writes {
                            MemAccess::Write
                        } else {
                            MemAccess::Read
                        };
                        let generic = len == 1;
                        let access = if generic {
                            MemAccess::ReadWrite
                        } else {
                            access
                        };
                        if let FaultPlan::Grant {
                            here,
                            revoke,
                            mut event,
                        } = self.smo.access(
                            spaces,
                            pid,
                            a,
                            Some(access),
                            false,
                            ip,
                            SmoVia::Syscall(call),
                            now_ns(),
                        ) {
                            for (q, o) in revoke {
                                self.protect_other(q, &o)?;
                            }
                            // Applied after the slice's protections (below): the grant wins
                            // on its page, the rest of a protected range stays protected.
                            ops.extend(here);
                            if let SmoMode::Minipage(_) = self.smo.mode {
                                // The event names the page (its offset): the bytes at `a`.
                                event.offset += a & 0xfff;
                                event.addr = a;
                                event.len = next - a;
                            }
                            if writes && !generic {
                                // The bytes the call may write: cut to what it wrote at exit.
                                later.push(event);
                            } else {
                                now_events.push(event);
                            }
                        }
                    }
                    a = next;
                }
            }
        }
        if !ops.is_empty() {
            // Lifts after protections: a grant inside a range the slice protects wins.
            let (mut none, mut lifts): (Vec<ProtOp>, Vec<ProtOp>) =
                ops.into_iter().partition(|o| o.2 == libc::PROT_NONE);
            merge(&mut none);
            merge(&mut lifts);
            none.extend(lifts);
            // SAFETY: `tid` is at the seccomp stop this thread's wait just reported, and
            // nothing else resumes it until the recorder does after this returns.
            let mut at = unsafe { Stopped::assume(tid, seccomp_stop) };
            if let Err(e) = self.protect_in(pid, &mut at, &none, false) {
                self.protection_failed(pid, tid, e, "the shared-memory slice");
            }
        }
        for e in now_events {
            self.emit(pid, tid, EventKind::SmoAccess(e));
        }
        Ok(later)
    }

    /// After a memory call succeeded in `pid` (the model already updated): what it mapped,
    /// moved or re-protected is protected again; a new shared mapping of an object others map
    /// privately makes their mappings monitored too. `tid` is at the call's exit stop.
    pub(crate) fn smo_after_memory_call(
        &mut self,
        pid: i32,
        tid: i32,
        ranges: &[(u64, u64)],
    ) -> Result<(), PtraceError> {
        let Some(spaces) = self.view.spaces.as_ref() else {
            return Ok(());
        };
        let mut here = Vec::new();
        let mut others: Vec<(i32, Vec<ProtOp>)> = Vec::new();
        let mut new_objects = Vec::new();
        let mut found: Vec<(i32, SmoAccess)> = Vec::new();
        for &(s, e) in ranges {
            if let Some(mm) = spaces.mm(pid as u32) {
                for v in mm.overlapping(s, e) {
                    if v.shared
                        && let Some(id) = v.object()
                        && smo::memory_object(v)
                    {
                        new_objects.push(*id);
                    }
                    if self.smo.outside_window(v)
                        && self.smo.proc_mut(pid).unmonitored.insert(v.start)
                    {
                        let detail = format!(
                            "shared mapping {:#x}-{:#x} ({}) is not monitored: it lies outside vigil's address window (placed with MAP_FIXED, attached at an address, or moved by mremap), where the seccomp filter cannot find the calls that hand it to the kernel (futex)",
                            v.start,
                            v.end,
                            v.path().map(|p| p.to_string()).unwrap_or_default()
                        );
                        self.view.generated_actions.push((
                            pid as u32,
                            tid as u32,
                            EventKind::Action(vigil_event::Action {
                                action: "unmonitored".into(),
                                by: "".into(),
                                target_pid: pid as u32,
                                detail: detail.into(),
                            }),
                        ));
                    }
                }
            }
            // The pages known copied there may have been unmapped, replaced or moved: what the
            // kernel's page map says now is what holds for the monitored private mappings.
            self.smo.forget_copies(pid, s, e);
            if let Some(mm) = spaces.mm(pid as u32) {
                for v in mm.overlapping(s, e) {
                    if !v.shared && self.smo.monitored(v) {
                        let c = crate::inspect::private_copies(pid, v.start.max(s), v.end.min(e));
                        self.smo.proc_mut(pid).copied.extend(c);
                    }
                }
            }
            here.extend(self.smo.protect_plan(spaces, pid, s, e));
            // A shared mapping that left the window (mremap moved it): no longer monitored,
            // so it gets the program's own protection back.
            if let Some(mm) = spaces.mm(pid as u32) {
                for v in mm.overlapping(s, e) {
                    if self.smo.outside_window(v) {
                        here.push((v.start.max(s), v.end.min(e), v.prot.bits() as i32));
                    }
                }
            }
        }
        // Private mappings of an object that just became shared, in this and other processes.
        new_objects.sort();
        new_objects.dedup();
        for id in &new_objects {
            self.smo.note_shared(*id);
        }
        for id in new_objects {
            for (q, mm) in spaces.spaces() {
                let q = q as i32;
                let ranges: Vec<(u64, u64)> = mm
                    .iter()
                    .filter(|v| !v.shared && v.object() == Some(&id))
                    .map(|v| (v.start, v.end))
                    .collect();
                for (s, e) in ranges {
                    // Pages the process stored to before the object was shared are its own
                    // copies already (the kernel's page map says which): never protected.
                    let copied = crate::inspect::private_copies(q, s, e);
                    // Each one newly found is recorded as the private store it was (copied on
                    // write, no flow to the object), placed when vigil found it: its moment and
                    // instruction are unknown (ip 0).
                    for page in copied {
                        if !self.smo.proc_mut(q).copied.insert(page) {
                            continue;
                        }
                        let Some(v) = spaces.mm(q as u32).and_then(|m| m.vma_at(page)) else {
                            continue;
                        };
                        let (Some(object), Some(off)) = (smo::object_of(v), v.offset_at(page))
                        else {
                            continue;
                        };
                        let map_offset = v.offset_at(v.start).unwrap_or(0);
                        found.push((
                            q,
                            SmoAccess {
                                access: MemAccess::Write,
                                object,
                                offset: off,
                                len: smo::PAGE,
                                addr: page,
                                ip: 0,
                                via: SmoVia::Fault,
                                private: true,
                                map_offset,
                                map_len: v.len(),
                            },
                        ));
                    }
                    let ops = self.smo.protect_plan(spaces, q, s, e);
                    if q == pid {
                        here.extend(ops);
                    } else if !ops.is_empty() {
                        others.push((q, ops));
                    }
                }
            }
        }
        for (q, ev) in found {
            self.emit(q, q, EventKind::SmoAccess(ev));
        }
        self.register_ranges(pid);
        for (q, ops) in others {
            self.register_ranges(q);
            self.protect_other(q, &ops)?;
        }
        if !here.is_empty() {
            merge(&mut here);
            self.smo_protect_here(pid, tid, &here);
        }
        Ok(())
    }

    /// Registers the process's monitored mappings with the own-signal registry (a SIGSEGV
    /// there is classified as vigil's first), from the model.
    pub(crate) fn register_ranges(&mut self, pid: i32) {
        let Some(spaces) = self.view.spaces.as_ref() else {
            return;
        };
        self.own.forget_process(pid);
        let mut any = false;
        if let Some(mm) = spaces.mm(pid as u32) {
            for v in mm.iter() {
                if self.smo.monitored(v) {
                    self.own.protect(pid, v.start, v.end, v.prot.bits() as i32);
                    any = true;
                }
            }
        }
        self.smo.proc_mut(pid).has_smo = any;
    }

    /// A forked child starts with its parent's mappings and their protections, grants
    /// included: everything monitored is protected before it first runs.
    pub(crate) fn smo_child_start(&mut self, child: i32) {
        if !self.smo.on() || !self.smo_children.remove(&child) {
            return;
        }
        self.register_ranges(child);
        let Some(spaces) = self.view.spaces.as_ref() else {
            return;
        };
        let ops = self.smo.protect_plan(spaces, child, 0, u64::MAX);
        if ops.is_empty() {
            return;
        }
        // SAFETY: the child is at its first stop (an interrupt-like PTRACE_EVENT_STOP) and is
        // resumed by the recorder right after this.
        let mut at = unsafe { Stopped::assume(child, Stop::Interrupt) };
        if let Err(e) = self.protect_in(child, &mut at, &ops, false)
            && !e.is_gone()
        {
            self.action(
                child,
                child,
                "failed",
                format!("protecting shared memory in a new process: {e}"),
            );
        }
    }

    /// Ends the slices that are due (a timer woke the wait): each such process is
    /// interrupted and its grants taken back.
    pub(crate) fn smo_tick(&mut self) -> Result<(), PtraceError> {
        let now = now_ns();
        for pid in self.smo.expired(now) {
            let ops = self.smo.end_slice(pid);
            self.protect_other(pid, &ops)?;
        }
        self.arm_slice_timer();
        Ok(())
    }

    /// Arms the slice timer for the next deadline (or disarms it).
    pub(crate) fn arm_slice_timer(&mut self) {
        let deadline = self.smo.next_deadline();
        self.slice_timer.arm(deadline);
    }

    /// Runs `ops` at the thread's syscall-exit stop.
    pub(crate) fn smo_protect_here(&mut self, pid: i32, tid: i32, ops: &[ProtOp]) {
        if ops.is_empty() {
            return;
        }
        // SAFETY: `tid` is at the exit stop its wait just reported; the recorder resumes it
        // after this returns.
        let mut at = unsafe {
            Stopped::assume(
                tid,
                Stop::SyscallExit {
                    ret: 0,
                    is_error: false,
                },
            )
        };
        if let Err(e) = self.protect_in(pid, &mut at, ops, false) {
            self.protection_failed(pid, tid, e, "protecting shared memory");
        }
    }

    /// The file offset a read/write/readv/writev started at, for a file some traced process
    /// maps (its parts in the graph need it): the position after the call, from
    /// /proc/PID/fdinfo, less what the call moved it by.
    pub(crate) fn smo_file_offset(
        &mut self,
        pid: i32,
        tid: i32,
        p: &crate::view::Pending,
        ret: i64,
        args: &mut vigil_event::Args,
    ) -> Result<(), PtraceError> {
        let sys = p.call.canonical();
        if ret <= 0
            || !matches!(
                sys,
                Some(
                    Sysno::read
                        | Sysno::write
                        | Sysno::readv
                        | Sysno::writev
                        | Sysno::pwrite64
                        | Sysno::pwritev
                        | Sysno::pwritev2
                )
            )
        {
            return Ok(());
        }
        let Some(vigil_event::Value::Fd(fd)) = args.first() else {
            return Ok(());
        };
        let Some(vigil_event::value::Target::File { dev, ino, .. }) = fd.target.as_deref() else {
            return Ok(());
        };
        let id = vigil_procstate::mem::ObjectId::File {
            dev: *dev,
            ino: *ino,
        };
        // Only files some traced process maps shared have parts (a set lookup: every other
        // read and write pays nothing more).
        if !self.smo.is_shared(&id) {
            return Ok(());
        }
        let offset = match sys {
            Some(Sysno::pwrite64 | Sysno::pwritev | Sysno::pwritev2) => p.raw[3],
            _ => {
                let Some(pos) = crate::inspect::fd_pos(pid, fd.num) else {
                    return Ok(());
                };
                let off = pos.saturating_sub(ret as u64);
                let n = p.call.signature().args.len();
                if args.len() == n {
                    args.push(vigil_event::Value::Uint(off));
                }
                off
            }
        };
        // The kernel changed those bytes of the file: a process holding a grant of them must
        // fault again, so that its next load is an event after this write.
        if matches!(
            sys,
            Some(Sysno::write | Sysno::writev | Sysno::pwrite64 | Sysno::pwritev | Sysno::pwritev2)
        ) {
            for (q, ops) in self.smo.revoke_range(&id, offset, offset + ret as u64) {
                if q == pid {
                    // This process, stopped at the call's exit: protected right here.
                    self.smo_protect_here(pid, tid, &ops);
                } else {
                    self.protect_other(q, &ops)?;
                }
            }
        }
        Ok(())
    }

    /// A read of `/proc/N/maps` (or smaps, numa_maps) of a traced process with monitored
    /// mappings: the program must see its own protections there, not vigil's, so they are
    /// given back for the call (and taken again at its exit, `smo_maps_read_done`). The
    /// process whose maps are read, if any.
    pub(crate) fn smo_maps_read(
        &mut self,
        pid: i32,
        tid: i32,
        call: Option<Sysno>,
        args: &vigil_event::Args,
        seccomp_stop: Stop,
    ) -> Result<Option<i32>, PtraceError> {
        if !matches!(
            call,
            Some(Sysno::read | Sysno::pread64 | Sysno::readv | Sysno::preadv | Sysno::preadv2)
        ) {
            return Ok(None);
        }
        let Some(vigil_event::Value::Fd(fd)) = args.first() else {
            return Ok(None);
        };
        let Some(path) = fd.target.as_deref().and_then(|t| t.path()) else {
            return Ok(None);
        };
        let path = path.as_bytes();
        let Some(rest) = path.strip_prefix(b"/proc/") else {
            return Ok(None);
        };
        let Some(i) = rest.iter().position(|&b| b == b'/') else {
            return Ok(None);
        };
        let (n, file) = (&rest[..i], &rest[i + 1..]);
        if !matches!(file, b"maps" | b"smaps" | b"numa_maps" | b"smaps_rollup") {
            return Ok(None);
        }
        let Some(target) = std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            return Ok(None);
        };
        if !self.smo.has_smo(target) {
            return Ok(None);
        }
        let Some(spaces) = self.view.spaces.as_ref() else {
            return Ok(None);
        };
        let ops = self.smo.own_protection_plan(spaces, target);
        if ops.is_empty() {
            return Ok(None);
        }
        if target == pid {
            // SAFETY: `tid` is at the seccomp stop its wait just reported; the recorder
            // resumes it after this returns.
            let mut at = unsafe { Stopped::assume(tid, seccomp_stop) };
            if let Err(e) = self.protect_in(pid, &mut at, &ops, false)
                && !e.is_gone()
            {
                self.action(
                    pid,
                    tid,
                    "failed",
                    format!("showing a process its own maps: {e}"),
                );
            }
        } else {
            self.protect_other(target, &ops)?;
        }
        Ok(Some(target))
    }

    /// vigil is leaving process `pid` (detaching): every monitored mapping gets the program's
    /// own protection back, run in thread `tid` at the stop `status` reported. Whether that
    /// stop's signal was a fault vigil caused (then it must not be delivered).
    pub(crate) fn smo_release_all(&mut self, pid: i32, tid: i32, status: WaitStatus) -> bool {
        let Some(stop) = stop_of_status(tid, status) else {
            return false;
        };
        let own = matches!(
            self.own.classify(pid, tid, &stop),
            crate::own::Cause::OwnFault { .. }
        );
        let Some(spaces) = self.view.spaces.as_ref() else {
            return own;
        };
        let ops = self.smo.own_protection_plan(spaces, pid);
        // SAFETY: `tid` is at the stop its wait just reported and is detached right after.
        let mut at = unsafe { Stopped::assume(tid, stop) };
        let _ = self.protect_in(pid, &mut at, &ops, own);
        // A fault vigil caused may already be queued behind the stop it was interrupted at:
        // run the thread to that signal's stop, where the detach drops it.
        let queued_own = !own && self.own_fault_queued(pid, tid);
        self.smo.forget(pid);
        self.own.forget_process(pid);
        if queued_own {
            // SAFETY: PTRACE_CONT of a stopped tracee with no signal takes no pointers.
            unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, 0) };
            if let Ok(vigil_tracee::Wait::Stopped(s)) = self.ctl.wait_tid(tid)
                && matches!(
                    s.stop(),
                    Stop::Signal {
                        sig: libc::SIGSEGV,
                        ..
                    }
                )
            {
                return true;
            }
        }
        own
    }

    /// Whether thread `tid` has a SIGSEGV queued at an address vigil protected.
    fn own_fault_queued(&self, pid: i32, tid: i32) -> bool {
        #[repr(C)]
        struct PeekArgs {
            off: u64,
            flags: u32,
            nr: i32,
        }
        const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
        // SAFETY: siginfo_t is plain data; an all-zero value is valid.
        let mut infos: [libc::siginfo_t; 8] = unsafe { std::mem::zeroed() };
        let args = PeekArgs {
            off: 0,
            flags: 0,
            nr: infos.len() as i32,
        };
        // SAFETY: `args` and `infos` outlive the call; the kernel writes at most `nr` entries.
        let n = unsafe {
            libc::ptrace(
                PTRACE_PEEKSIGINFO,
                tid,
                &args as *const PeekArgs,
                infos.as_mut_ptr(),
            )
        };
        if n <= 0 {
            return false;
        }
        infos[..n as usize].iter().any(|i| {
            // SAFETY: si_addr is the union member the kernel fills for SIGSEGV.
            i.si_signo == libc::SIGSEGV
                && self
                    .own
                    .range_at(pid, unsafe { i.si_addr() } as u64)
                    .is_some()
        })
    }

    /// After the read of a maps file: the protections go back on.
    pub(crate) fn smo_maps_read_done(
        &mut self,
        pid: i32,
        tid: i32,
        target: i32,
    ) -> Result<(), PtraceError> {
        let Some(spaces) = self.view.spaces.as_ref() else {
            return Ok(());
        };
        let ops = self.smo.protect_plan(spaces, target, 0, u64::MAX);
        if target == pid {
            self.smo_protect_here(pid, tid, &ops);
            Ok(())
        } else {
            self.protect_other(target, &ops)
        }
    }

    /// Kernel writes into shared mappings, emitted after the call, cut to what it wrote.
    pub(crate) fn smo_exit_events(&mut self, pid: i32, tid: i32, events: Vec<SmoAccess>, ret: i64) {
        if ret <= 0 {
            return;
        }
        let mut left = ret as u64;
        for mut e in events {
            if left == 0 {
                break;
            }
            if let SmoMode::Minipage(_) = self.smo.mode {
                e.len = e.len.min(left);
            }
            left = left.saturating_sub(e.len.min(left));
            self.emit(pid, tid, EventKind::SmoAccess(e));
        }
    }
}

/// A POSIX timer that interrupts the tracer thread's wait (SIGURG, handled without
/// SA_RESTART) when the next slice ends.
#[derive(Debug, Default)]
pub struct SliceTimer {
    id: Option<libc::timer_t>,
    armed_for: Option<u64>,
}

impl SliceTimer {
    fn create(&mut self) -> Option<libc::timer_t> {
        if let Some(id) = self.id {
            return Some(id);
        }
        crate::signals::ensure_wake_handler();
        // SAFETY: a zeroed sigevent, filled as SIGEV_THREAD_ID needs; timer_create writes the
        // id into `id`.
        unsafe {
            let mut sev: libc::sigevent = std::mem::zeroed();
            sev.sigev_notify = libc::SIGEV_THREAD_ID;
            sev.sigev_signo = libc::SIGURG;
            sev.sigev_notify_thread_id = libc::syscall(libc::SYS_gettid) as i32;
            let mut id: libc::timer_t = std::mem::zeroed();
            if libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) != 0 {
                return None;
            }
            self.id = Some(id);
            Some(id)
        }
    }

    /// Fires at `deadline` (now_ns clock), or never.
    pub fn arm(&mut self, deadline: Option<u64>) {
        if deadline == self.armed_for {
            return;
        }
        let Some(id) = self.create() else {
            return;
        };
        self.armed_for = deadline;
        let (sec, nsec) = match deadline {
            Some(d) => {
                let left = d.saturating_sub(now_ns()).max(100_000);
                ((left / 1_000_000_000) as i64, (left % 1_000_000_000) as i64)
            }
            None => (0, 0),
        };
        // SAFETY: `id` is a timer this struct created; the itimerspec is fully initialised.
        unsafe {
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                },
            };
            libc::timer_settime(id, 0, &spec, std::ptr::null_mut());
        }
    }
}

impl Drop for SliceTimer {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // SAFETY: a timer this struct created, deleted once.
            unsafe {
                libc::timer_delete(id);
            }
        }
    }
}
