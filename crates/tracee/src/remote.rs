//! Running system calls inside a stopped tracee, with every register (and the syscall,
//! restart and signal state) put back afterwards: the tracee-side half of "inject mprotect",
//! "map a scratch page", "skip this call and write its result".
//!
//! A [`RemoteSyscalls`] scope borrows a [`Stopped`] handle. Each call points the thread at a
//! `syscall` instruction with the call's registers, resumes it with PTRACE_SYSCALL and takes
//! the result at the syscall-exit stop. [`RemoteSyscalls::finish`] (or `Drop`, best effort)
//! returns the thread to a stop equivalent to the one it started from:
//!
//! - syscall-entry or seccomp stop: the first call replaces the pending call in place (the
//!   kernel re-checks the filter), later ones run at the same `syscall` instruction; at the
//!   end the thread is rewound to that instruction (rip - 2, the call's number back in rax)
//!   and run up to the same entry or seccomp stop again. All blockable signals are blocked
//!   meanwhile (PTRACE_SETSIGMASK), so nothing is delivered between the calls and the rewind;
//!   the mask is put back at the re-reached stop.
//! - syscall-exit stop: the registers (and so the call's result) are put back; the thread is
//!   at the exit stop of the last injected call, which is equivalent. Refused when the call
//!   was interrupted (rax is -ERESTART*): the signal stop that follows is the place.
//! - signal-delivery stop: the signal is taken out (the thread is resumed without it) and
//!   re-queued at the end with its exact siginfo (rt_tgsigqueueinfo from the thread itself),
//!   then the thread runs to that signal's delivery stop again. The caller can still deliver
//!   or consume it. If the thread's mask now blocks it (it was delivered inside ppoll or
//!   sigsuspend, whose temporary mask the kernel has restored), it stays pending and the
//!   thread ends at an interrupt stop instead: [`Stopped::stop`] always says which.
//! - interrupt stop, group-stop, single-step stop: the thread ends at a fresh
//!   PTRACE_INTERRUPT stop (a group-stop if its group is still stopped), so the kernel's
//!   syscall-restart logic runs from the restored registers when the caller resumes.
//!
//! Signals that arrive while the calls run are taken out and re-queued the same way. If the
//! thread dies meanwhile, the call fails with [`Error::DiedDuringInjection`] (or
//! [`Error::Gone`]) and its exit is left for the tracer's next wait. Ptrace event stops
//! (fork, exec, ...) are refused: the thread is inside a call there; resume it with
//! PTRACE_SYSCALL to the call's exit stop first. Only 64-bit code is supported.

use crate::error::Error;
use crate::memory::Memory;
use crate::raw;
use crate::regs::Regs;
use crate::stop::{Event, RawStatus, SigInfo, Stop, classify, decode_status};
use crate::tracer::{Stopped, Tracer};
use nix::errno::Errno;
use syscalls::Sysno;

/// The stop a scope started from.
#[derive(Clone, Copy, Debug)]
enum Origin {
    Entry,
    Seccomp,
    Exit,
    Signal(SigInfo),
    /// Interrupt, group-stop or single-step stop.
    Trap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing changed yet.
    Fresh,
    /// Registers or mask changed; not yet resumed.
    Changed,
    /// Resumed at least once: the thread is at the exit stop of an injected call.
    Injected,
    Restored,
    Dead,
}

/// What a wait loop does with a stop.
enum Decision {
    Accept,
    /// Resume with PTRACE_SYSCALL and keep waiting.
    Skip,
    Fail,
}

/// All blockable signals (SIGKILL and SIGSTOP cannot be blocked).
const ALL_SIGNALS: u64 = !((1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)));
const ERESTARTSYS: i64 = 512;
const ERESTART_RESTARTBLOCK: i64 = 516;
/// Bytes below the stack pointer the x86-64 ABI lets a function use without moving it.
const RED_ZONE: u64 = 128;

/// A scope of remote syscalls in one stopped thread; see the module documentation.
pub struct RemoteSyscalls<'a> {
    t: &'a mut Stopped,
    tracer: &'a mut Tracer,
    tid: i32,
    saved: Regs,
    origin: Origin,
    site: Option<u64>,
    /// Run calls at the site by single-stepping the `syscall` instruction (one stop per call)
    /// rather than through syscall-entry and -exit stops (two): for calls no seccomp filter of
    /// the tracee traps.
    stepped: bool,
    state: State,
    saved_mask: Option<u64>,
    /// Signals taken out while the calls ran, to re-queue at the end.
    captured: Vec<SigInfo>,
}

impl std::fmt::Debug for RemoteSyscalls<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSyscalls")
            .field("tid", &self.tid)
            .field("origin", &self.origin)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<'a> RemoteSyscalls<'a> {
    /// Saves the thread's registers; nothing runs until the first call.
    pub fn new(t: &'a mut Stopped, tracer: &'a mut Tracer) -> Result<Self, Error> {
        let tid = t.tid();
        let origin = match t.stop {
            Stop::SyscallEntry(_) => Origin::Entry,
            Stop::Seccomp { .. } => Origin::Seccomp,
            Stop::SyscallExit { .. } => Origin::Exit,
            Stop::Signal { info, .. } => Origin::Signal(info),
            Stop::Interrupt | Stop::GroupStop { .. } | Stop::Stepped => Origin::Trap,
            Stop::Event(_) => {
                return Err(Error::Unsupported {
                    tid,
                    what: "remote syscalls at a ptrace event stop",
                });
            }
        };
        let saved = t.regs()?;
        if saved.is_compat() {
            return Err(Error::Unsupported {
                tid,
                what: "remote syscalls in 32-bit code",
            });
        }
        if let Origin::Exit = origin {
            let ret = saved.syscall_ret();
            if (-ERESTART_RESTARTBLOCK..=-ERESTARTSYS).contains(&ret) {
                return Err(Error::Unsupported {
                    tid,
                    what: "remote syscalls at the exit stop of an interrupted call",
                });
            }
        }
        Ok(RemoteSyscalls {
            t,
            tracer,
            tid,
            saved,
            origin,
            site: None,
            stepped: false,
            state: State::Fresh,
            saved_mask: None,
            captured: Vec::new(),
        })
    }

    /// Uses the `syscall` instruction (bytes 0f 05) at `addr` instead of looking for one.
    pub fn with_site(mut self, addr: u64) -> Self {
        self.site = Some(addr);
        self
    }

    /// Runs the calls made at the site (all but a first call replacing a pending one) by
    /// single-stepping the `syscall` instruction: one stop per call instead of two. Only for
    /// calls the tracee's seccomp filter lets through (one it traps stops at the filter, which
    /// fails the call with [`Error::Unexpected`]).
    pub fn stepped(mut self) -> Self {
        self.stepped = true;
        self
    }

    /// The registers the thread had when the scope started (and will have again).
    pub fn saved_regs(&self) -> &Regs {
        &self.saved
    }

    /// The stopped thread, e.g. to read or write its memory between calls.
    pub fn stopped(&self) -> &Stopped {
        self.t
    }

    /// The address of the `syscall` instruction the calls run at (found once).
    pub fn site(&mut self) -> Result<u64, Error> {
        if let Some(s) = self.site {
            return Ok(s);
        }
        let mut mem = Memory::new(self.tid);
        // The thread's own last syscall instruction (at a syscall stop, or interrupted in one).
        let mut b = [0u8; 2];
        let prev = self.saved.ip().wrapping_sub(2);
        if mem.read(self.t, prev, &mut b).is_ok() && b == [0x0f, 0x05] {
            self.site = Some(prev);
            return Ok(prev);
        }
        let site = find_syscall_insn(self.t, &mut mem)?;
        self.site = Some(site);
        Ok(site)
    }

    /// Runs syscall `nr` with `args` in the thread; the raw return value (-4095..-1: -errno).
    pub fn syscall(&mut self, nr: Sysno, args: &[u64]) -> Result<i64, Error> {
        self.syscall_raw(nr.id() as u64, args)
    }

    /// [`RemoteSyscalls::syscall`] by number (x86-64 table).
    pub fn syscall_raw(&mut self, nr: u64, args: &[u64]) -> Result<i64, Error> {
        // (Restored is only ever reached by `finish` and `Drop`, which end the scope.)
        if self.state == State::Dead {
            return Err(Error::Gone { tid: self.tid });
        }
        let mut regs = self.saved;
        let in_place =
            matches!(self.origin, Origin::Entry | Origin::Seccomp) && self.state != State::Injected;
        if in_place {
            // The pending call is replaced: orig_rax is what the kernel will run.
            if self.saved_mask.is_none() {
                let mask = self.guard(raw::get_sigmask(self.tid))?;
                self.guard(raw::set_sigmask(self.tid, ALL_SIGNALS))?;
                self.saved_mask = Some(mask);
            }
            regs.set_syscall(nr, args);
        } else {
            let site = self.site()?;
            regs.set_ip(site);
            regs.set_syscall(nr, args);
            // Not in a syscall: no restart logic may touch these registers on the way out.
            regs.0.orig_rax = u64::MAX;
        }
        if self.state == State::Fresh {
            self.state = State::Changed;
        }
        self.guard(raw::setregs(self.tid, &regs))?;
        if self.stepped && !in_place {
            return self.step_call(regs.ip());
        }
        self.resume(libc::PTRACE_SYSCALL)?;
        self.state = State::Injected;
        match self.wait_for(true, |s| match s {
            Stop::SyscallExit { .. } => Decision::Accept,
            _ => Decision::Skip,
        })? {
            Stop::SyscallExit { ret, .. } => Ok(ret),
            other => Err(self.unexpected(other)),
        }
    }

    /// A call whose negative result is an error of this crate.
    fn checked(&mut self, nr: Sysno, args: &[u64]) -> Result<u64, Error> {
        let r = self.syscall(nr, args)?;
        if (-4095..0).contains(&r) {
            Err(Error::Remote {
                tid: self.tid,
                call: nr,
                errno: Errno::from_raw(-r as i32),
            })
        } else {
            Ok(r as u64)
        }
    }

    /// mmap in the thread; the mapping's address.
    pub fn mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: i32,
        flags: i32,
        fd: i32,
        offset: u64,
    ) -> Result<u64, Error> {
        self.checked(
            Sysno::mmap,
            &[
                addr,
                len,
                prot as u64,
                flags as u64,
                fd as i64 as u64,
                offset,
            ],
        )
    }

    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        self.checked(Sysno::munmap, &[addr, len]).map(|_| ())
    }

    pub fn mprotect(&mut self, addr: u64, len: u64, prot: i32) -> Result<(), Error> {
        self.checked(Sysno::mprotect, &[addr, len, prot as u64])
            .map(|_| ())
    }

    /// Ends the scope: the thread is back at an equivalent stop with its registers as they
    /// were (see the module documentation); the handle's [`Stopped::stop`] says which stop.
    pub fn finish(mut self) -> Result<(), Error> {
        self.restore()
    }

    /// Ends a scope begun at a signal-delivery stop whose signal the caller consumes (vigil's
    /// own fault): the registers are put back and the signal is NOT queued again, so there is
    /// no second trip to its delivery stop. The thread is left stopped between instructions
    /// (at the exit stop of the last injected call, which resumes like an interrupt stop: the
    /// saved registers are not those of a syscall, so no restart logic applies); the handle
    /// says [`Stop::Interrupt`]. Resume it without a signal. Signals that arrived while the
    /// calls ran are queued again as usual. At any other stop this is [`Self::finish`].
    pub fn finish_discarding_signal(mut self) -> Result<(), Error> {
        if !matches!(self.origin, Origin::Signal(_)) {
            return self.restore();
        }
        let r = match self.state {
            State::Fresh | State::Restored => Ok(()),
            State::Dead => Err(Error::Gone { tid: self.tid }),
            State::Changed => self.guard(raw::setregs(self.tid, &self.saved)),
            State::Injected => self
                .requeue_signals(None)
                .and_then(|()| self.guard(raw::setregs(self.tid, &self.saved)))
                .map(|()| self.t.stop = Stop::Interrupt),
        };
        if self.state != State::Dead {
            self.state = State::Restored;
        }
        r
    }

    /// Puts the thread back, once: a failed attempt (the thread at an unexpected stop, a
    /// remote call that failed) is not repeated by `Drop`, where it could queue a signal twice.
    fn restore(&mut self) -> Result<(), Error> {
        let r = self.put_back();
        if self.state != State::Dead {
            self.state = State::Restored;
        }
        r
    }

    fn put_back(&mut self) -> Result<(), Error> {
        match self.state {
            State::Fresh | State::Restored => return Ok(()),
            State::Dead => return Err(Error::Gone { tid: self.tid }),
            State::Changed => {
                // Never resumed: still at the original stop.
                self.guard(raw::setregs(self.tid, &self.saved))?;
                if let Some(m) = self.saved_mask {
                    self.guard(raw::set_sigmask(self.tid, m))?;
                }
                return Ok(());
            }
            State::Injected => {}
        }
        match self.origin {
            Origin::Entry | Origin::Seccomp => self.rewind()?,
            Origin::Exit => {
                self.requeue_signals(None)?;
                self.guard(raw::setregs(self.tid, &self.saved))?;
            }
            Origin::Signal(info) => {
                self.requeue_signals(Some(info))?;
                self.guard(raw::setregs(self.tid, &self.saved))?;
                let mask = self.guard(raw::get_sigmask(self.tid))?;
                if mask & sigbit(info.signo()) == 0 {
                    self.resume(libc::PTRACE_CONT)?;
                    let stop = self.wait_for(false, |s| match s {
                        Stop::Signal { .. } | Stop::Interrupt | Stop::GroupStop { .. } => {
                            Decision::Accept
                        }
                        _ => Decision::Fail,
                    })?;
                    self.t.stop = stop;
                } else {
                    self.trap_stop()?;
                }
            }
            Origin::Trap => {
                self.requeue_signals(None)?;
                self.guard(raw::setregs(self.tid, &self.saved))?;
                // Stopped in user mode (not inside a call: orig_rax is -1) and not in a
                // group-stop: the exit stop of the injected call, with the registers back,
                // resumes exactly like the interrupt stop did (no restart logic can apply), so
                // no second trip to an interrupt stop is needed.
                let in_user_mode = self.saved.0.orig_rax == u64::MAX;
                if !(in_user_mode && matches!(self.t.stop, Stop::Interrupt | Stop::Stepped)) {
                    self.trap_stop()?;
                } else {
                    self.t.stop = Stop::Interrupt;
                }
            }
        }
        Ok(())
    }

    /// Back to the original entry/seccomp stop: re-execute the call's instruction.
    fn rewind(&mut self) -> Result<(), Error> {
        let mut regs = self.saved;
        regs.set_ip(self.saved.ip().wrapping_sub(2));
        regs.0.rax = self.saved.0.orig_rax;
        regs.0.orig_rax = u64::MAX;
        self.guard(raw::setregs(self.tid, &regs))?;
        self.resume(libc::PTRACE_SYSCALL)?;
        let want_seccomp = matches!(self.origin, Origin::Seccomp);
        self.wait_for(true, |s| match s {
            Stop::SyscallEntry(_) if !want_seccomp => Decision::Accept,
            Stop::SyscallEntry(_) => Decision::Skip,
            Stop::Seccomp { .. } if want_seccomp => Decision::Accept,
            Stop::GroupStop { .. } | Stop::Interrupt => Decision::Skip,
            _ => Decision::Fail,
        })?;
        // rcx and r11 (clobbered by `syscall`) and anything else exactly as they were.
        self.guard(raw::setregs(self.tid, &self.saved))?;
        if let Some(m) = self.saved_mask {
            self.guard(raw::set_sigmask(self.tid, m))?;
        }
        Ok(())
    }

    /// From an exit stop with the registers restored: PTRACE_INTERRUPT and run to that stop.
    fn trap_stop(&mut self) -> Result<(), Error> {
        self.guard(raw::interrupt(self.tid))?;
        self.resume(libc::PTRACE_CONT)?;
        let stop = self.wait_for(false, |s| match s {
            Stop::Interrupt | Stop::GroupStop { .. } | Stop::Signal { .. } => Decision::Accept,
            _ => Decision::Fail,
        })?;
        // An interrupt stop is what a single-step stop was: stopped between instructions,
        // nothing to deliver.
        if !(matches!(stop, Stop::Interrupt)
            && matches!(self.t.stop, Stop::Interrupt | Stop::Stepped))
        {
            self.t.stop = stop;
        }
        Ok(())
    }

    /// Re-queues `first` and the captured signals in the thread with their siginfo, with all
    /// signals blocked meanwhile so none is delivered between the calls.
    fn requeue_signals(&mut self, first: Option<SigInfo>) -> Result<(), Error> {
        // Its calls (rt_sigprocmask, rt_tgsigqueueinfo) may be trapped by the tracee's filter:
        // never stepped.
        let stepped = std::mem::replace(&mut self.stepped, false);
        let r = self.requeue_signals_now(first);
        self.stepped = stepped;
        r
    }

    fn requeue_signals_now(&mut self, first: Option<SigInfo>) -> Result<(), Error> {
        let mut sigs: Vec<SigInfo> = first.into_iter().collect();
        sigs.append(&mut self.captured);
        if sigs.is_empty() {
            return Ok(());
        }
        let tgid = tgid_of(self.tid).unwrap_or(self.tid);
        // Scratch space below the red zone: the old mask, then one siginfo.
        let size = 8 + std::mem::size_of::<libc::siginfo_t>();
        let scratch = (self.saved.sp().wrapping_sub(RED_ZONE + size as u64 + 64)) & !63;
        let mut mem = Memory::new(self.tid);
        let mut backup = vec![0u8; size];
        let (scratch, mapped) = match mem.read(self.t, scratch, &mut backup) {
            Ok(()) => (scratch, false),
            Err(_) => {
                let page = self.mmap(
                    0,
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )?;
                (page, true)
            }
        };
        let mask_at = scratch;
        let info_at = scratch + 8;
        let all = ALL_SIGNALS.to_ne_bytes();
        self.write(&mut mem, info_at, &all)?;
        // rt_sigprocmask(SIG_BLOCK, &all, &old, 8): old lands at `mask_at`.
        self.syscall(
            Sysno::rt_sigprocmask,
            &[libc::SIG_BLOCK as u64, info_at, mask_at, 8],
        )?;
        // Anything that arrived before the block took effect is queued too.
        sigs.append(&mut self.captured);
        for info in &sigs {
            // SAFETY: siginfo_t is plain data; its bytes are what the kernel copies in.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&info.raw as *const libc::siginfo_t).cast::<u8>(),
                    std::mem::size_of::<libc::siginfo_t>(),
                )
            };
            self.write(&mut mem, info_at, bytes)?;
            self.syscall(
                Sysno::rt_tgsigqueueinfo,
                &[tgid as u64, self.tid as u64, info.signo() as u64, info_at],
            )?;
        }
        self.syscall(
            Sysno::rt_sigprocmask,
            &[libc::SIG_SETMASK as u64, mask_at, 0, 8],
        )?;
        if mapped {
            self.munmap(scratch, 4096)?;
        } else {
            self.write(&mut mem, scratch, &backup)?;
        }
        Ok(())
    }

    fn write(&mut self, mem: &mut Memory, addr: u64, data: &[u8]) -> Result<(), Error> {
        mem.write(self.t, addr, data).map_err(|e| match e.errno {
            Errno::ESRCH => {
                self.state = State::Dead;
                Error::Gone { tid: self.tid }
            }
            errno => Error::Ptrace {
                what: "writing scratch memory",
                tid: self.tid,
                errno,
            },
        })
    }

    /// Marks the scope dead when a request says the thread is gone.
    fn guard<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Gone { .. }) = r {
            self.state = State::Dead;
        }
        r
    }

    /// Single-steps the `syscall` instruction the registers point at: the call runs, and the
    /// kernel reports the step after it (SIGTRAP, TRAP_BRKPT), consumed here; the result is in
    /// rax. Signals that arrive meanwhile are captured for re-queueing as in `wait_for`. The
    /// thread is left at that SIGTRAP's delivery stop, which resumes without a signal like the
    /// exit stop of an injected call.
    fn step_call(&mut self, site: u64) -> Result<i64, Error> {
        self.resume(libc::PTRACE_SINGLESTEP)?;
        self.state = State::Injected;
        loop {
            let stop = self.next_stop()?;
            match stop {
                Stop::Signal { sig, info }
                    if sig == libc::SIGTRAP
                        && (info.code() == crate::stop::TRAP_BRKPT
                            || info.code() == crate::stop::TRAP_TRACE) =>
                {
                    let regs = self.guard(raw::getregs(self.tid))?;
                    return Ok(regs.0.rax as i64);
                }
                Stop::Signal { .. } | Stop::Interrupt | Stop::GroupStop { .. } => {
                    // Another signal (kept for later) or a pending interrupt came first. Before
                    // the instruction ran, step again; after (the call done, its step report
                    // queued behind), continue: the report is delivered before any user code.
                    if let Stop::Signal { info, .. } = stop {
                        self.captured.push(info);
                    }
                    let at = self.guard(raw::getregs(self.tid))?.ip();
                    if at == site {
                        self.resume(libc::PTRACE_SINGLESTEP)?;
                    } else {
                        self.resume(libc::PTRACE_CONT)?;
                    }
                }
                other => return Err(self.unexpected(other)),
            }
        }
    }

    fn resume(&mut self, request: libc::c_uint) -> Result<(), Error> {
        let r = raw::resume("resuming for a remote syscall", request, self.tid, 0);
        self.guard(r)
    }

    fn unexpected(&mut self, stop: Stop) -> Error {
        Error::Unexpected {
            tid: self.tid,
            detail: format!("stop during a remote syscall: {stop:?}"),
        }
    }

    /// This thread's next stop. Its death is [`Error::DiedDuringInjection`] (its exit status
    /// kept for the tracer's next wait); a thread dying of SIGKILL is let go to that exit.
    fn next_stop(&mut self) -> Result<Stop, Error> {
        loop {
            let waited = self.tracer.wait_tid_raw(self.tid);
            let (tid, status) = self.guard(waited)?;
            let (sig, event) = match decode_status(status) {
                RawStatus::Exited(exit) => {
                    self.tracer.requeue(tid, status);
                    self.state = State::Dead;
                    return Err(Error::DiedDuringInjection { tid, exit });
                }
                RawStatus::Continued => continue,
                RawStatus::Stopped { sig, event } => (sig, event),
            };
            let stop = match classify(tid, sig, event) {
                Ok(s) => s,
                // Killed right after stopping: its exit comes next.
                Err(Error::Gone { .. }) => continue,
                Err(e) => return Err(e),
            };
            if let Stop::Event(Event::Exit { .. }) = stop {
                // Dying (SIGKILL): let it go; its exit comes next.
                let _ = raw::resume("PTRACE_CONT", libc::PTRACE_CONT, tid, 0);
                continue;
            }
            return Ok(stop);
        }
    }

    /// Waits for this thread's stops until `decide` accepts one. Skipped stops are resumed
    /// with PTRACE_SYSCALL; signal stops are taken out (`capture`) or decided on.
    fn wait_for(
        &mut self,
        capture: bool,
        decide: impl Fn(&Stop) -> Decision,
    ) -> Result<Stop, Error> {
        loop {
            let stop = self.next_stop()?;
            if let (true, Stop::Signal { info, .. }) = (capture, &stop) {
                self.captured.push(*info);
                self.resume(libc::PTRACE_SYSCALL)?;
                continue;
            }
            match decide(&stop) {
                Decision::Accept => return Ok(stop),
                Decision::Skip => self.resume(libc::PTRACE_SYSCALL)?,
                Decision::Fail => return Err(self.unexpected(stop)),
            }
        }
    }
}

impl Drop for RemoteSyscalls<'_> {
    fn drop(&mut self) {
        // Best effort: `finish` reports what this cannot.
        let _ = self.restore();
    }
}

fn sigbit(sig: i32) -> u64 {
    if (1..=64).contains(&sig) {
        1 << (sig - 1)
    } else {
        0
    }
}

fn tgid_of(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A `syscall` instruction (0f 05) in the thread's executable memory: the vDSO first, then
/// the other executable mappings.
fn find_syscall_insn(t: &Stopped, mem: &mut Memory) -> Result<u64, Error> {
    let tid = t.tid();
    let maps =
        std::fs::read_to_string(format!("/proc/{tid}/maps")).map_err(|_| Error::Gone { tid })?;
    let mut regions: Vec<(u64, u64, bool)> = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let name = f.nth(3).unwrap_or("");
        if !perms.contains('x') || name == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        regions.push((a, b, name == "[vdso]"));
    }
    regions.sort_by_key(|r| !r.2);
    let mut buf = vec![0u8; 64 * 1024];
    for (start, end, _) in regions {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            // One extra byte overlaps chunks so a pair across a boundary is seen.
            let Ok(got) = mem.read_partial(t, at, &mut buf[..n]) else {
                break;
            };
            if let Some(i) = buf[..got].windows(2).position(|w| w == [0x0f, 0x05]) {
                return Ok(at + i as u64);
            }
            if got < n || got < 2 {
                break;
            }
            at += got as u64 - 1;
        }
    }
    Err(Error::NoSyscallInstruction { tid })
}
