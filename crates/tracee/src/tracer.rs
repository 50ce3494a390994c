//! The supervising thread's view of its tracees: a [`Tracer`] waits for their stops, and a
//! [`Stopped`] handle, the only thing that can read or change a tracee, is what a wait hands
//! back for a stopped thread. Resuming consumes the handle (typestate): a running tracee
//! cannot be read by mistake.
//!
//! ptrace tracees belong to the thread that attached them, and every wait here passes
//! `__WALL | __WNOTHREAD`, so a `Tracer` sees only its own thread's tracees and children: two
//! tracers on two threads of one process never take each other's statuses. A `Tracer` is
//! neither `Send` nor `Sync` (nor are its handles), so it cannot leave its thread.

use crate::error::Error;
use crate::memory::{MemError, Memory};
use crate::raw;
use crate::regs::{FpRegs, Regs};
use crate::stop::{Exit, RawStatus, SigInfo, Stop, TRAP_BRKPT, TRAP_TRACE, decode_status};
use nix::errno::Errno;
use std::collections::VecDeque;
use std::marker::PhantomData;

/// How long a wait for one thread polls before it sleeps (see `wait_tid_raw`).
const SPIN_US: u64 = 50;

/// Not `Send`/`Sync`: ptrace requests only work from the thread that attached.
type ThreadBound = PhantomData<*const ()>;

/// What a wait returned.
#[derive(Debug)]
pub enum Wait {
    /// The thread is in a ptrace-stop; the handle says which and controls it.
    Stopped(Stopped),
    /// The thread is gone (reaped).
    Exited { tid: i32, exit: Exit },
}

impl Wait {
    pub fn tid(&self) -> i32 {
        match self {
            Wait::Stopped(s) => s.tid,
            Wait::Exited { tid, .. } => *tid,
        }
    }
}

/// How to resume a stopped tracee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// PTRACE_CONT: run until the next event, seccomp stop or signal.
    Cont,
    /// PTRACE_SYSCALL: also stop at the next syscall entry and exit.
    Syscall,
    /// PTRACE_SINGLESTEP: one instruction (see [`Stopped::step`] to also wait and consume
    /// the trap).
    SingleStep,
}

impl Resume {
    fn request(self) -> (&'static str, libc::c_uint) {
        match self {
            Resume::Cont => ("PTRACE_CONT", libc::PTRACE_CONT),
            Resume::Syscall => ("PTRACE_SYSCALL", libc::PTRACE_SYSCALL),
            Resume::SingleStep => ("PTRACE_SINGLESTEP", libc::PTRACE_SINGLESTEP),
        }
    }
}

/// One supervising thread's tracees. Create it on the thread that spawns or attaches them.
pub struct Tracer {
    /// Statuses taken from the kernel but not yet handed out: those a wait for other tids
    /// passed over, and exits that happened inside an operation (a remote syscall).
    queued: VecDeque<(i32, i32)>,
    _thread: ThreadBound,
}

impl Default for Tracer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("queued", &self.queued.len())
            .finish()
    }
}

const WAIT_FLAGS: i32 = libc::__WALL | libc::__WNOTHREAD;

impl Tracer {
    pub fn new() -> Self {
        Tracer {
            queued: VecDeque::new(),
            _thread: PhantomData,
        }
    }

    /// waitpid with this thread's flags; `None` with WNOHANG when nothing is ready.
    pub(crate) fn waitpid_raw(pid: i32, nohang: bool) -> Result<Option<(i32, i32)>, Error> {
        let flags = WAIT_FLAGS | if nohang { libc::WNOHANG } else { 0 };
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, flags) };
            if r > 0 {
                return Ok(Some((r, status)));
            }
            if r == 0 {
                return Ok(None);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::ECHILD if pid > 0 => return Err(Error::Gone { tid: pid }),
                Errno::ECHILD => return Err(Error::NoTracees),
                errno => {
                    return Err(Error::Sys {
                        what: "waitpid",
                        errno,
                    });
                }
            }
        }
    }

    /// Turns a raw status into a [`Wait`], asking the kernel what the stop is.
    ///
    /// A thread that was killed between its stop and the query gives [`Error::Gone`]; its exit
    /// comes with a later wait.
    pub(crate) fn make_wait(tid: i32, status: i32) -> Result<Wait, Error> {
        match decode_status(status) {
            RawStatus::Exited(exit) => Ok(Wait::Exited { tid, exit }),
            RawStatus::Stopped { sig, event } => Ok(Wait::Stopped(Stopped::new(
                tid,
                crate::stop::classify(tid, sig, event)?,
            ))),
            RawStatus::Continued => Err(Error::Unexpected {
                tid,
                detail: "a continued status (not requested)".into(),
            }),
        }
    }

    /// Puts a raw status back, to be returned first by the next wait that covers `tid`.
    pub(crate) fn requeue(&mut self, tid: i32, status: i32) {
        self.queued.push_back((tid, status));
    }

    fn take_queued(&mut self, pred: impl Fn(i32) -> bool) -> Option<(i32, i32)> {
        let i = self.queued.iter().position(|&(t, _)| pred(t))?;
        self.queued.remove(i)
    }

    /// The next stop or exit of any of this thread's tracees (and children), blocking.
    /// [`Error::NoTracees`] when there are none left.
    pub fn wait(&mut self) -> Result<Wait, Error> {
        if let Some((tid, st)) = self.take_queued(|_| true) {
            return Self::make_wait(tid, st);
        }
        match Self::waitpid_raw(-1, false)? {
            Some((tid, st)) => Self::make_wait(tid, st),
            None => Err(Error::NoTracees),
        }
    }

    /// Like [`Tracer::wait`], but returns `None` at once when nothing is ready.
    pub fn try_wait(&mut self) -> Result<Option<Wait>, Error> {
        if let Some((tid, st)) = self.take_queued(|_| true) {
            return Self::make_wait(tid, st).map(Some);
        }
        match Self::waitpid_raw(-1, true)? {
            Some((tid, st)) => Self::make_wait(tid, st).map(Some),
            None => Ok(None),
        }
    }

    /// The next stop or exit of the one thread `tid`; others stay pending in the kernel.
    pub fn wait_tid(&mut self, tid: i32) -> Result<Wait, Error> {
        let (t, st) = self.wait_tid_raw(tid)?;
        Self::make_wait(t, st)
    }

    pub(crate) fn wait_tid_raw(&mut self, tid: i32) -> Result<(i32, i32), Error> {
        if let Some(s) = self.take_queued(|t| t == tid) {
            return Ok(s);
        }
        // The thread was just resumed by this tracer for a step or an injected call, and
        // stops again within microseconds: poll briefly before sleeping, which saves the
        // sleep and wake-up (an inter-processor interrupt, in a VM an exit to the hypervisor)
        // on most of these round trips. Only while a CPU is free for it is it worth it; the
        // poll yields the CPU to anything runnable.
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_micros(SPIN_US) {
            if let Some(s) = Self::waitpid_raw(tid, true)? {
                return Ok(s);
            }
            // SAFETY: no arguments.
            unsafe { libc::sched_yield() };
        }
        match Self::waitpid_raw(tid, false)? {
            Some(s) => Ok(s),
            None => Err(Error::Gone { tid }),
        }
    }

    /// The next stop or exit of any thread in `tids`. Statuses of this tracer's other tracees
    /// that arrive meanwhile are kept (in order) for later waits.
    pub fn wait_any_of(&mut self, tids: &[i32]) -> Result<Wait, Error> {
        if let Some((tid, st)) = self.take_queued(|t| tids.contains(&t)) {
            return Self::make_wait(tid, st);
        }
        loop {
            match Self::waitpid_raw(-1, false)? {
                Some((tid, st)) if tids.contains(&tid) => return Self::make_wait(tid, st),
                Some((tid, st)) => self.queued.push_back((tid, st)),
                None => return Err(Error::NoTracees),
            }
        }
    }

    /// PTRACE_SEIZE an existing thread with `options`, interrupt it and wait for its first
    /// stop (usually [`Stop::Interrupt`]; a stop already pending may come first). Other
    /// threads of its process are not attached: seize each of `/proc/PID/task/*`.
    pub fn attach(&mut self, tid: i32, options: crate::Options) -> Result<Wait, Error> {
        raw::seize(tid, options.bits())
            .map_err(|errno| Error::ptrace("PTRACE_SEIZE", tid, errno))?;
        raw::interrupt(tid)?;
        self.wait_tid(tid)
    }

    /// Interrupts a running tracee (PTRACE_INTERRUPT) and waits for its next stop, from which
    /// remote syscalls can be run. That stop is [`Stop::Interrupt`] unless another stop was
    /// already due (a syscall, a signal, a group-stop).
    pub fn interrupt(&mut self, running: Running) -> Result<Wait, Error> {
        running.interrupt()?;
        self.wait_tid(running.tid)
    }
}

/// A tracee that was resumed: it can only be interrupted or waited for.
#[derive(Debug)]
pub struct Running {
    tid: i32,
    _thread: ThreadBound,
}

impl Running {
    /// A handle for a thread this tracer resumed earlier (e.g. one whose handle was dropped).
    pub fn from_tid(tid: i32) -> Self {
        Running {
            tid,
            _thread: PhantomData,
        }
    }

    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Asks the kernel to stop it (PTRACE_INTERRUPT); the stop comes with a later wait.
    pub fn interrupt(&self) -> Result<(), Error> {
        raw::interrupt(self.tid)
    }
}

/// A thread in a ptrace-stop. Registers and memory are read and written through it; resuming
/// consumes it. Dropping it leaves the thread stopped (take a [`Running::from_tid`] handle and
/// wait again to regain it).
#[derive(Debug)]
#[must_use = "a stopped tracee stays stopped until it is resumed"]
pub struct Stopped {
    tid: i32,
    pub(crate) stop: Stop,
    _thread: ThreadBound,
}

impl Stopped {
    pub(crate) fn new(tid: i32, stop: Stop) -> Self {
        Stopped {
            tid,
            stop,
            _thread: PhantomData,
        }
    }

    /// A handle for a thread the caller knows to be stopped, for a caller that waits with its
    /// own loop and classified the stop itself (the recorder's hot path: it polls waitpid and
    /// asks PTRACE_GET_SYSCALL_INFO once per stop, and must not pay for a second query just to
    /// get a handle). `stop` is what the caller found.
    ///
    /// # Safety
    /// `tid` must be in a ptrace-stop of a tracee attached by the calling thread for as long as
    /// the handle is used, and no other handle for it may be resumed meanwhile. For memory
    /// access it is enough that some thread of `tid`'s process is in such a stop at the moment
    /// of each access (the handle is then a proof about the process, not this thread). The
    /// layer's guarantees (registers and memory of a thread that is not running) rest on it.
    pub unsafe fn assume(tid: i32, stop: Stop) -> Stopped {
        Stopped::new(tid, stop)
    }

    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Why it stopped.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    pub fn regs(&self) -> Result<Regs, Error> {
        raw::getregs(self.tid)
    }

    pub fn set_regs(&mut self, regs: &Regs) -> Result<(), Error> {
        raw::setregs(self.tid, regs)
    }

    pub fn fpregs(&self) -> Result<FpRegs, Error> {
        raw::getfpregs(self.tid)
    }

    pub fn set_fpregs(&mut self, fp: &FpRegs) -> Result<(), Error> {
        raw::setfpregs(self.tid, fp)
    }

    /// PTRACE_GET_SYSCALL_INFO (meaningful at syscall and seccomp stops).
    pub fn syscall_info(&self) -> Result<libc::ptrace_syscall_info, Error> {
        raw::syscall_info(self.tid)
    }

    /// The siginfo of the current signal stop (PTRACE_GETSIGINFO).
    pub fn siginfo(&self) -> Result<SigInfo, Error> {
        raw::siginfo(self.tid)
    }

    /// Changes the siginfo delivered if the stop is resumed with its signal.
    pub fn set_siginfo(&mut self, info: &SigInfo) -> Result<(), Error> {
        raw::set_siginfo(self.tid, info)
    }

    /// PTRACE_GETEVENTMSG.
    pub fn event_msg(&self) -> Result<u64, Error> {
        raw::event_msg(self.tid)
    }

    /// The thread's blocked-signal mask (bit `n - 1` for signal `n`).
    pub fn sigmask(&self) -> Result<u64, Error> {
        raw::get_sigmask(self.tid)
    }

    /// Reads `buf.len()` bytes of its memory (one-off; keep a [`Memory`] per process to
    /// reuse the /proc/PID/mem file).
    pub fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        Memory::new(self.tid).read(self, addr, buf)
    }

    /// Writes `data` into its memory, read-only pages included (one-off).
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        Memory::new(self.tid).write(self, addr, data)
    }

    /// Resumes it, delivering `sig` (at a signal-delivery stop; ignored by the kernel at other
    /// stops). Resuming a signal stop without its signal consumes the signal.
    pub fn resume(self, how: Resume, sig: Option<i32>) -> Result<Running, Error> {
        let (what, request) = how.request();
        raw::resume(what, request, self.tid, sig.unwrap_or(0))?;
        Ok(Running::from_tid(self.tid))
    }

    /// PTRACE_CONT without a signal.
    pub fn cont(self) -> Result<Running, Error> {
        self.resume(Resume::Cont, None)
    }

    /// PTRACE_SYSCALL without a signal.
    pub fn syscall(self) -> Result<Running, Error> {
        self.resume(Resume::Syscall, None)
    }

    /// Resumes a signal-delivery stop delivering its own signal (other stops: no signal).
    pub fn deliver(self, how: Resume) -> Result<Running, Error> {
        let sig = match self.stop {
            Stop::Signal { sig, .. } => Some(sig),
            _ => None,
        };
        self.resume(how, sig)
    }

    /// PTRACE_LISTEN: leaves a group-stopped tracee stopped, but lets the kernel report the
    /// next SIGCONT or PTRACE_INTERRUPT (as [`Stop::Interrupt`]).
    pub fn listen(self) -> Result<Running, Error> {
        raw::resume("PTRACE_LISTEN", libc::PTRACE_LISTEN, self.tid, 0)?;
        Ok(Running::from_tid(self.tid))
    }

    /// Stops tracing the thread, delivering `sig`.
    pub fn detach(self, sig: Option<i32>) -> Result<(), Error> {
        raw::resume(
            "PTRACE_DETACH",
            libc::PTRACE_DETACH,
            self.tid,
            sig.unwrap_or(0),
        )
    }

    /// Executes exactly one instruction (PTRACE_SINGLESTEP, no signal) and waits for this
    /// thread. The resulting SIGTRAP (TRAP_TRACE, or TRAP_BRKPT after a `syscall`
    /// instruction) is recognised as this step's and consumed: the handle returned has
    /// [`Stop::Stepped`]. Anything else that happened instead (a seccomp stop, another
    /// signal, an exit) is returned as it is.
    pub fn step(self, tracer: &mut Tracer) -> Result<Wait, Error> {
        let tid = self.tid;
        self.resume(Resume::SingleStep, None)?;
        match tracer.wait_tid(tid)? {
            Wait::Stopped(mut s) => {
                if let Stop::Signal { sig, info } = s.stop
                    && sig == libc::SIGTRAP
                    && (info.code() == TRAP_TRACE || info.code() == TRAP_BRKPT)
                {
                    s.stop = Stop::Stepped;
                }
                Ok(Wait::Stopped(s))
            }
            exited => Ok(exited),
        }
    }

    /// Starts a scope of remote syscalls in this thread (see [`crate::RemoteSyscalls`]).
    pub fn remote<'a>(
        &'a mut self,
        tracer: &'a mut Tracer,
    ) -> Result<crate::RemoteSyscalls<'a>, Error> {
        crate::RemoteSyscalls::new(self, tracer)
    }
}
