//! The lockstep loop.
//!
//! Every thread of the program exists once per variant; the N threads that play the same
//! part form a *set* (a logical thread), the N processes a *logical process*. Sets are born
//! together: the first set from the N spawned variants, each later one from a fork, vfork or
//! clone that every member of a set made at the same rendezvous (threads are thus matched by
//! creation order within their creating thread).
//!
//! A set advances from one rendezvous to the next. A member stops at each system call
//! (seccomp) or rdtsc trap and waits there until every member has arrived; the calls are then
//! compared by the table's rules (`spec`), and run as the row says: by every member, by the
//! leader alone (the others skip it and receive its result and output buffers), or by nobody.
//! A disagreement of any kind (another call, other arguments, a member that crashes alone,
//! one that never arrives) is a divergence: every variant is killed and the report returned.
//!
//! File descriptors have the same numbers in every variant, by construction: calls that
//! shape the fd table run in every variant, and where the leader alone creates an fd (a file
//! opened for writing, an accepted connection) the others open a placeholder (/dev/null)
//! that lands on the same number. Each logical process keeps the *kind* of each fd: `Each`
//! when every variant opened the object itself (a regular file or directory opened read-only,
//! a memfd, an eventfd), `Leader` otherwise (standard streams, pipes, sockets, devices, files
//! opened for writing): calls on it run in the leader only.
//!
//! Process ids are virtual: the leader's are the program's. Calls that return ids give the
//! leader's, calls that take them are translated to each variant's own process, and signals'
//! senders are rewritten.
//!
//! Asynchronous signals are delivered semi-synchronously (the source documents' scheme): a
//! signal a variant has a handler for is held at its delivery stop. At a rendezvous where at
//! least half of the members hold the same signal, every member skips its call and waits in
//! the loop of the monitor's page; members that hold it get it again from the monitor,
//! the others wait for theirs; each is delivered its signal with its registers set to make
//! the skipped call again after the handler. A member that does not get it in time ends the
//! loop with a call that says so: a divergence. A signal that interrupts a blocking call in
//! every member is delivered there. Signals that terminate, are ignored or come from a fault
//! are delivered at once.

use crate::memio::{self, Content, Output};
use crate::page;
use crate::setup;
use crate::spec::{self, Arg, Len, NewFd, Run, Spec};
use crate::{Config, Journal, MveeError, Outcome, Report, Stats};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};
use syscalls::Sysno;
use vigil_event::memory::{Divergence, VariantState};
use vigil_event::syscall::{Abi as EvAbi, SyscallId};
use vigil_event::{Args, Str, Value};
use vigil_tracee::{
    Command, Exit, Memory, Options, Regs, SigInfo, Stop, Stopped, SyscallEntry, Tracer, Wait,
};

// The kernel's flag values as the u64 a register holds (libc gives them as C ints).
const SI_KERNEL: i32 = libc::SI_KERNEL;
const AT_FDCWD: i64 = libc::AT_FDCWD as i64;
const O_ACCMODE: u64 = libc::O_ACCMODE as u64;
const O_CREAT: u64 = libc::O_CREAT as u64;
const O_TRUNC: u64 = libc::O_TRUNC as u64;
const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
const O_TMPFILE: u64 = libc::O_TMPFILE as u64;
const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_PARENT_SETTID: u64 = libc::CLONE_PARENT_SETTID as u64;
const CLONE_CHILD_SETTID: u64 = libc::CLONE_CHILD_SETTID as u64;
const F_DUPFD: u64 = libc::F_DUPFD as u64;
const F_DUPFD_CLOEXEC: u64 = libc::F_DUPFD_CLOEXEC as u64;
const F_GETFD: u64 = libc::F_GETFD as u64;
const F_SETFD: u64 = libc::F_SETFD as u64;
const MAP_PRIVATE: u64 = libc::MAP_PRIVATE as u64;
const MAP_FIXED: u64 = libc::MAP_FIXED as u64;
const MAP_ANONYMOUS: u64 = libc::MAP_ANONYMOUS as u64;
const MAP_NORESERVE: u64 = libc::MAP_NORESERVE as u64;
const MAP_POPULATE: u64 = libc::MAP_POPULATE as u64;
const MAP_FIXED_NOREPLACE: u64 = libc::MAP_FIXED_NOREPLACE as u64;
const MSG_CMSG_CLOEXEC: u64 = libc::MSG_CMSG_CLOEXEC as u64;
/// Each variant's initial stack is this many bytes lower than the previous one's (a page
/// and a bit: the page bits and the low bits of stack addresses both differ).
const STACK_STEP: u64 = 4096 + 64 * 16;
/// How many calls of each set a report shows.
const HISTORY: usize = 8;

/// The process group all variants share (for forwarding a terminal's signals).
static GROUP: AtomicI32 = AtomicI32::new(0);

/// Whether every variant opened an fd's object itself, or only the leader did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Each,
    Leader,
    /// Every variant opened its own, and what it reads there is about itself (its own
    /// /proc files: maps, stat, status...): reads run unsynchronised.
    Volatile,
}

struct LProc {
    /// The real pid of each variant's process.
    pids: Vec<i32>,
    fds: HashMap<i32, Kind>,
    /// Per variant: the `data` each (epoll fd, fd) was registered with, to give each variant
    /// its own in the events epoll_wait returned to the leader.
    epoll: Vec<HashMap<(i32, i32), u64>>,
}

#[derive(Clone, Copy)]
struct Held {
    sig: i32,
    info: SigInfo,
    since: Instant,
}

enum St {
    /// Resumed: running, or inside a call.
    Running,
    /// At a seccomp stop: arrived at a rendezvous.
    AtCall(Stopped, SyscallEntry),
    /// At an rdtsc (len 2) or rdtscp (len 3) trap: arrived at a rendezvous.
    AtTsc(Stopped, u8),
    /// At its seccomp stop, waiting for the leader's result.
    AwaitLeader(Stopped, SyscallEntry),
    /// At the exit stop of a call every member ran, waiting for the leader's result.
    ExitAwait(Stopped, i64),
    /// At the exit stop of a successful execve, waiting for the others.
    Execed(Stopped),
    /// At a signal-delivery stop inside a blocking call, holding the signal.
    SigHeld(Stopped),
    /// In the signal wait loop of the monitor's page.
    InLoop,
    /// Created; its first stop, once seen.
    Fresh(Option<Stopped>),
    Gone(Exit),
}

impl St {
    fn arrived(&self) -> bool {
        matches!(self, St::AtCall(..) | St::AtTsc(..) | St::Gone(_))
    }
    fn name(&self) -> &'static str {
        match self {
            St::Running => "running",
            St::AtCall(..) => "at a system call",
            St::AtTsc(..) => "at rdtsc",
            St::AwaitLeader(..) => "waiting for the leader",
            St::ExitAwait(..) => "after a call, waiting for the leader",
            St::Execed(..) => "after exec",
            St::SigHeld(..) => "holding a signal in a call",
            St::InLoop => "waiting for a signal",
            St::Fresh(_) => "starting",
            St::Gone(_) => "gone",
        }
    }
}

struct Var {
    tid: i32,
    pid: i32,
    st: St,
    held: Vec<Held>,
    mem: Memory,
    /// The last call it arrived at (for reports).
    last: Option<SyscallEntry>,
    /// Relaxed mode: innocuous calls it made without waiting, not yet compared.
    queue: VecDeque<Record>,
    /// A signal interrupted its call and was held: the kernel makes the call again (the
    /// same call, or restart_syscall), which is the continuation of a call already compared,
    /// not a new one.
    resumes: bool,
}

/// An innocuous call a member made without a rendezvous (relaxed mode): what its comparison
/// needs, read at its stop.
struct Record {
    entry: SyscallEntry,
    /// The contents of the row's memory arguments, in the row's order.
    contents: Vec<Content>,
}

impl Var {
    fn new(tid: i32, pid: i32, st: St) -> Self {
        Var {
            tid,
            pid,
            st,
            held: Vec::new(),
            mem: Memory::new(tid),
            last: None,
            queue: VecDeque::new(),
            resumes: false,
        }
    }
}

/// The call a set is running.
struct Call {
    id: SyscallId,
    sysno: Option<Sysno>,
    spec: Spec,
    run: Run,
    /// Each member's registers at entry, to put back the arguments the monitor changed.
    regs: Vec<[u64; 6]>,
    /// Members whose arguments the monitor changed (translated pids, a placeholder open).
    changed: Vec<bool>,
    leader_ret: Option<i64>,
    outs: Vec<Output>,
    /// fork/clone: each member's child.
    children: Vec<Option<i32>>,
    clone_flags: u64,
    /// clone's parent-tid and child-tid addresses, per member.
    settid: Vec<(u64, u64)>,
    /// How many members have not finished the call.
    open: usize,
    /// execve: each member's result.
    exec_ret: Vec<Option<i64>>,
    /// fds the leader received over a socket (SCM_RIGHTS): placeholders in the others.
    received: Vec<i32>,
    /// fork/clone: members whose call was interrupted by a signal (-ERESTART*): the kernel
    /// makes it again, and that second try is theirs alone.
    restarting: Vec<bool>,
    /// The received fds are close-on-exec (MSG_CMSG_CLOEXEC).
    received_cloexec: bool,
}

struct Sync {
    sig: i32,
    saved: Vec<Option<Regs>>,
    info: Vec<Option<SigInfo>>,
    delivered: Vec<bool>,
    since: Instant,
}

struct Set {
    vars: Vec<Var>,
    lproc: usize,
    call: Option<Call>,
    sync: Option<Sync>,
    /// The last calls every member agreed on, formatted only for a report.
    history: VecDeque<Past>,
    /// Since when some members have arrived and others not.
    waiting_since: Option<Instant>,
    /// The set's birth: its call's children, for a set still starting.
    alive: bool,
}

/// A new set, each member's (parent-tid, child-tid) addresses, the clone flags.
type PendingCtid = (usize, Vec<(u64, u64)>, u64);

/// One entry of a set's history.
#[derive(Clone, Copy)]
enum Past {
    Call(SyscallId, [u64; 6]),
    Tsc,
    Signal(i32),
}

impl Set {
    fn remember(&mut self, p: Past) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(p);
    }
}

struct Monitor<'j> {
    cfg: Config,
    n: usize,
    tracer: Tracer,
    journal: &'j mut dyn Journal,
    sets: Vec<Set>,
    lprocs: Vec<LProc>,
    by_tid: HashMap<i32, (usize, usize)>,
    /// The leader's tid → each variant's tid (processes by their main thread).
    vmap: HashMap<i32, Vec<i32>>,
    /// Any variant's tid → the leader's.
    virt: HashMap<i32, i32>,
    /// First stops of children whose parent's event has not been seen yet.
    orphans: HashMap<i32, Stopped>,
    group: i32,
    stats: Stats,
    diverged: Option<Report>,
    first_exit: Option<Exit>,
    nap_ns: u64,
    noted_ptrace: bool,
    sigfd: Option<OwnedFd>,
    old_mask: Option<libc::sigset_t>,
    /// New sets whose child-tid words still hold real tids: (set, per member (ptid, ctid),
    /// clone flags).
    pending_ctid: Vec<PendingCtid>,
    /// Generated names unified at the last comparison, for the journal (after it).
    renames: Vec<(i32, i32, String)>,
    /// Each variant's distance from the leader's mappings (0 for the leader).
    deltas: Vec<u64>,
    /// What the first variant runs (after the PATH search).
    program: std::path::PathBuf,
    /// A rule's kill or stop ended the run.
    stopped_by_rule: Option<vigil_event::Verdict>,
    /// The terminal given to the variants' group: vigil's own group and SIGTTOU's action.
    terminal: Option<(libc::pid_t, libc::sigaction)>,
}

/// Runs the program of `cfg` as `cfg.variants` variants until it ends or they diverge.
///
/// The calling thread supervises the variants; it waits for their stops on a signalfd for
/// SIGCHLD (blocked in this thread while the run lasts). Every other thread of the process
/// must block SIGCHLD too (vigil-log's writer thread blocks every signal): the kernel gives a
/// process-directed signal to any thread that does not block it, and one that took it would
/// leave the monitor to notice stops at its poll timeout (a second) instead of at once.
pub fn run(cfg: &Config, journal: &mut dyn Journal) -> Result<(Outcome, Stats), MveeError> {
    if cfg.variants < 2 || cfg.variants > crate::MAX_VARIANTS {
        return Err(MveeError::Config(format!(
            "{} variants: a run has 2 to {}",
            cfg.variants,
            crate::MAX_VARIANTS
        )));
    }
    if cfg.argv.is_empty() {
        return Err(MveeError::Config("no command".into()));
    }
    let mut m = Monitor {
        n: cfg.variants,
        cfg: cfg.clone(),
        tracer: Tracer::new(),
        journal,
        sets: Vec::new(),
        lprocs: Vec::new(),
        by_tid: HashMap::new(),
        vmap: HashMap::new(),
        virt: HashMap::new(),
        orphans: HashMap::new(),
        group: 0,
        stats: Stats {
            variants: cfg.variants,
            ..Stats::default()
        },
        diverged: None,
        first_exit: None,
        nap_ns: (cfg.signal_wait.as_nanos() as u64 / page::NAPS as u64).max(1000),
        noted_ptrace: false,
        sigfd: None,
        old_mask: None,
        pending_ctid: Vec::new(),
        program: std::path::PathBuf::new(),
        deltas: distances(cfg.variants),
        renames: Vec::new(),
        stopped_by_rule: None,
        terminal: None,
    };
    let r = m.start().and_then(|()| m.main_loop());
    m.restore_mask();
    match r {
        Ok(outcome) => Ok((outcome, std::mem::take(&mut m.stats))),
        Err(e) => {
            m.kill_all();
            Err(e)
        }
    }
}

/// A secret distance per variant: variant v's mappings are v × 64 GiB plus a random 0..63 GiB
/// away from the leader's, in whole GiB (alignment below 1 GiB is the leader's).
fn distances(n: usize) -> Vec<u64> {
    (0..n)
        .map(|v| {
            if v == 0 {
                return 0;
            }
            let mut r = [0u8; 1];
            // SAFETY: one byte into a local buffer.
            unsafe { libc::getrandom(r.as_mut_ptr().cast(), 1, 0) };
            ((v as u64) * 64 + u64::from(r[0] % 64)) << 30
        })
        .collect()
}

/// Forwards a terminal's SIGINT/SIGTERM/SIGHUP/SIGQUIT to the variants' group.
extern "C" fn forward(sig: libc::c_int) {
    let g = GROUP.load(Ordering::Relaxed);
    if g > 0 {
        // SAFETY: kill is async-signal-safe; the group is the variants'.
        unsafe { libc::kill(-g, sig) };
    }
}

fn is_err(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

fn sig_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

fn call_name(id: SyscallId) -> String {
    id.base_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("syscall_{}", id.nr))
}

fn id_of(e: &SyscallEntry) -> SyscallId {
    let abi = match e.abi {
        vigil_tracee::Abi::X86_64 => EvAbi::X86_64,
        vigil_tracee::Abi::I386 => EvAbi::I386,
        vigil_tracee::Abi::X32 => EvAbi::X32,
        _ => EvAbi::X86_64,
    };
    SyscallId {
        abi,
        nr: e.nr as u32,
    }
}

/// A signal's bit in a /proc or ptrace signal mask (0 for a number out of range).
fn sig_bit(sig: i32) -> u64 {
    u32::try_from(sig - 1)
        .ok()
        .and_then(|s| 1u64.checked_shl(s))
        .unwrap_or(0)
}

/// The union of the signal masks `keys` (`SigCgt:`, `SigPnd:`...) of a thread's
/// /proc/TID/status (bit n-1 for signal n); 0 when it cannot be read.
fn status_mask(tid: i32, keys: &[&str]) -> u64 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .map(|s| {
            s.lines()
                .filter_map(|l| keys.iter().find_map(|k| l.strip_prefix(k)))
                .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
                .fold(0, |a, b| a | b)
        })
        .unwrap_or(0)
}

/// The signals a thread catches.
fn caught(tid: i32) -> u64 {
    status_mask(tid, &["SigCgt:"])
}

/// The signals pending for a thread or its process.
fn pending(tid: i32) -> u64 {
    status_mask(tid, &["SigPnd:", "ShdPnd:"])
}

/// The open fds of a process, from /proc.
fn open_fds(pid: i32) -> Option<Vec<i32>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

impl Monitor<'_> {
    fn start(&mut self) -> Result<(), MveeError> {
        let options = Options::PTRACE_O_TRACESYSGOOD
            | Options::PTRACE_O_TRACESECCOMP
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_EXITKILL;
        let mut stops = Vec::new();
        for v in 0..self.n {
            let mut cmd = Command::new(&self.cfg.argv[0]);
            cmd.args(&self.cfg.argv[1..]);
            cmd.options(options);
            cmd.seccomp(page::filter());
            let group = self.group;
            // SAFETY: setpgid is async-signal-safe and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    // SAFETY: no pointers.
                    if libc::setpgid(0, group) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
            let (child, s) = self.tracer.spawn_until_exec(&mut cmd)?;
            if v == 0 {
                self.program = child.program().to_path_buf();
                self.group = child.pid();
                GROUP.store(self.group, Ordering::Relaxed);
                self.take_terminal();
            }
            // To the exit stop of execve, where the image is set up.
            let tid = s.tid();
            s.syscall()?;
            let s = loop {
                match self.tracer.wait_tid(tid)? {
                    Wait::Stopped(s) if matches!(s.stop(), Stop::SyscallExit { .. }) => break s,
                    Wait::Stopped(s) => {
                        s.syscall()?;
                    }
                    Wait::Exited { exit, .. } => {
                        return Err(MveeError::Startup(format!(
                            "variant {v} {exit} before it started"
                        )));
                    }
                }
            };
            stops.push(s);
        }
        let pids: Vec<i32> = stops.iter().map(|s| s.tid()).collect();
        let mut fds = HashMap::new();
        for fd in open_fds(pids[0]).unwrap_or_default() {
            fds.insert(fd, Kind::Leader);
        }
        self.lprocs.push(LProc {
            pids: pids.clone(),
            fds,
            epoll: vec![HashMap::new(); self.n],
        });
        self.vmap.insert(pids[0], pids.clone());
        for &p in &pids {
            self.virt.insert(p, pids[0]);
        }
        let mut vars = Vec::new();
        for (v, s) in stops.into_iter().enumerate() {
            self.by_tid.insert(s.tid(), (0, v));
            vars.push(Var::new(s.tid(), s.tid(), St::Execed(s)));
        }
        self.sets.push(Set {
            vars,
            lproc: 0,
            call: None,
            sync: None,
            history: VecDeque::new(),
            waiting_since: None,
            alive: true,
        });
        self.stats.sets = 1;
        if let St::Execed(s) = &self.sets[0].vars[0].st {
            self.journal.spawned(s, &self.program, &self.cfg.argv)?;
        }
        self.setup_images(0)?;
        self.install_signals()?;
        Ok(())
    }

    /// After spawning: SIGCHLD (a tracee's stop) wakes a poll on a signalfd, so waits can have
    /// a deadline; terminal signals go to the variants.
    fn install_signals(&mut self) -> Result<(), MveeError> {
        // SAFETY: sigset operations on local, initialised sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let mut old: libc::sigset_t = std::mem::zeroed();
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
                return Err(MveeError::Wait(std::io::Error::last_os_error()));
            }
            self.old_mask = Some(old);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(MveeError::Wait(std::io::Error::last_os_error()));
            }
            self.sigfd = Some(OwnedFd::from_raw_fd(fd));
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        Ok(())
    }

    /// When vigil runs in the foreground of a terminal on its standard input, the variants'
    /// group becomes the foreground one for the run (the program reads the terminal and gets
    /// Ctrl-C as it would without vigil); vigil's group gets it back at the end. SIGTTOU is
    /// ignored meanwhile: vigil hands the terminal back from the background.
    fn take_terminal(&mut self) {
        // SAFETY: plain calls on fd 0 and this process; the old SIGTTOU action is kept to be
        // put back.
        unsafe {
            if libc::isatty(0) != 1 || libc::tcgetpgrp(0) != libc::getpgrp() {
                return;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            let mut ign: libc::sigaction = std::mem::zeroed();
            ign.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(libc::SIGTTOU, &ign, &mut old);
            if libc::tcsetpgrp(0, self.group) == 0 {
                self.terminal = Some((libc::getpgrp(), old));
            } else {
                libc::sigaction(libc::SIGTTOU, &old, std::ptr::null_mut());
            }
        }
    }

    fn restore_mask(&mut self) {
        if let Some((pgrp, old)) = self.terminal.take() {
            // SAFETY: giving the terminal back to vigil's own group, then SIGTTOU's action.
            unsafe {
                libc::tcsetpgrp(0, pgrp);
                libc::sigaction(libc::SIGTTOU, &old, std::ptr::null_mut());
            }
        }
        if let Some(old) = self.old_mask.take() {
            // SAFETY: `old` is the mask this thread had.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        }
        GROUP.store(0, Ordering::Relaxed);
    }

    /// The next stop, or None when a deadline passed (or a wake-up brought nothing).
    fn next_wait(&mut self, deadline: Option<Instant>) -> Result<Option<Wait>, MveeError> {
        if let Some(w) = self.tracer.try_wait()? {
            return Ok(Some(w));
        }
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(30) {
            // SAFETY: no arguments.
            unsafe { libc::sched_yield() };
            if let Some(w) = self.tracer.try_wait()? {
                return Ok(Some(w));
            }
        }
        let timeout_ms = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .clamp(1, 1000) as i32,
            None => 1000,
        };
        if let Some(fd) = &self.sigfd {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, timeout_ms) };
            let mut buf = [0u8; 128 * 8];
            // SAFETY: reading into a local buffer; the fd is non-blocking.
            while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
        Ok(self.tracer.try_wait()?)
    }

    fn live(&self) -> bool {
        self.sets.iter().any(|s| s.alive)
    }

    fn main_loop(&mut self) -> Result<Outcome, MveeError> {
        while self.live() {
            let deadline = self.deadline();
            let w = match self.next_wait(deadline) {
                Ok(w) => w,
                Err(MveeError::Tracee(vigil_tracee::Error::NoTracees)) => break,
                Err(e) => return Err(e),
            };
            match w {
                Some(w) => self.handle(w)?,
                None => self.check_timeouts()?,
            }
            if let Some(r) = self.diverged.take() {
                return Ok(self.finish_divergence(r));
            }
            if let Some(action) = self.stopped_by_rule.take() {
                let pid = self.sets.first().map_or(0, |s| s.vars[0].pid);
                let _ = self
                    .journal
                    .action(pid, pid, "stop", "a rule ended the run");
                self.kill_all();
                return Ok(Outcome::Stopped { pid, action });
            }
        }
        Ok(Outcome::Exited(self.first_exit.unwrap_or(Exit::Exited(0))))
    }

    fn deadline(&self) -> Option<Instant> {
        self.sets
            .iter()
            .filter(|s| s.alive)
            .filter_map(|s| s.waiting_since)
            .min()
            .map(|t| {
                t + self
                    .cfg
                    .timeout
                    .min(self.cfg.signal_wait.max(self.cfg.timeout))
            })
    }

    fn finish_divergence(&mut self, mut r: Report) -> Outcome {
        match self.journal.divergence(&r) {
            Ok(seq) => r.seq = seq,
            Err(e) => self
                .journal
                .note(&format!("the divergence could not be logged: {e}")),
        }
        self.kill_all();
        Outcome::Diverged(Box::new(r))
    }

    /// Kills every variant process and reaps them (bounded).
    fn kill_all(&mut self) {
        for lp in &self.lprocs {
            for &p in &lp.pids {
                // SAFETY: a signal to a process of ours.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        for s in &self.sets {
            for v in &s.vars {
                // SAFETY: a signal to a thread of ours.
                unsafe { libc::syscall(libc::SYS_tgkill, v.pid, v.tid, libc::SIGKILL) };
            }
        }
        if self.group > 0 {
            // SAFETY: the variants' own group.
            unsafe { libc::kill(-self.group, libc::SIGKILL) };
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            match self.tracer.try_wait() {
                Ok(Some(_)) => continue,
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => break,
            }
        }
        for s in &mut self.sets {
            s.alive = false;
        }
    }

    // ---- dispatch ----

    fn handle(&mut self, w: Wait) -> Result<(), MveeError> {
        let tid = w.tid();
        let Some(&(si, v)) = self.by_tid.get(&tid) else {
            match w {
                Wait::Stopped(s) => {
                    self.orphans.insert(tid, s);
                }
                Wait::Exited { .. } => {}
            }
            return Ok(());
        };
        match w {
            Wait::Exited { exit, .. } => self.on_exited(si, v, exit),
            Wait::Stopped(s) => {
                let stop = *s.stop();
                match stop {
                    Stop::Seccomp { call, .. } => self.on_call(si, v, s, call),
                    Stop::SyscallEntry(_) => {
                        s.cont()?;
                        Ok(())
                    }
                    Stop::SyscallExit { ret, .. } => self.on_exit(si, v, s, ret),
                    Stop::Event(e) => self.on_event(si, v, s, e),
                    Stop::Signal { sig, info } => self.on_signal(si, v, s, sig, info),
                    Stop::Interrupt | Stop::GroupStop { .. } | Stop::Stepped => {
                        if let St::Fresh(slot @ None) = &mut self.sets[si].vars[v].st {
                            *slot = Some(s);
                            return self.try_start(si);
                        }
                        s.cont()?;
                        Ok(())
                    }
                }
            }
        }
    }

    fn var(&mut self, si: usize, v: usize) -> &mut Var {
        &mut self.sets[si].vars[v]
    }

    // ---- arrivals ----

    fn on_call(
        &mut self,
        si: usize,
        v: usize,
        s: Stopped,
        call: SyscallEntry,
    ) -> Result<(), MveeError> {
        if call.ip == page::GAVE_UP_END {
            let sig = self.sets[si].sync.as_ref().map(|y| y.sig).unwrap_or(0);
            let wait = self.cfg.signal_wait;
            self.var(si, v).st = St::AtCall(s, call);
            self.diverge(
                si,
                "signal",
                vec![v],
                &[],
                format!(
                    "variant {v} did not receive {} within {wait:?} of the others",
                    sig_name(sig)
                ),
            );
            return Ok(());
        }
        // A call the kernel makes again after a held signal interrupted it: the same call
        // goes on (to its exit stop when the set still waits for one).
        if std::mem::take(&mut self.var(si, v).resumes) {
            let again = self.var(si, v).last.is_some_and(|l| l.nr == call.nr)
                || (call.abi == vigil_tracee::Abi::X86_64
                    && call.nr == Sysno::restart_syscall.id() as u64);
            if again {
                if self.sets[si].call.is_some() {
                    s.syscall()?;
                } else {
                    s.cont()?;
                }
                return Ok(());
            }
        }
        // A fork the kernel makes again after a signal interrupted it (this member's alone:
        // the others made theirs).
        if let Some(c) = &mut self.sets[si].call
            && c.run == Run::Spawn
            && c.restarting[v]
            && id_of(&call).nr == c.id.nr
        {
            c.restarting[v] = false;
            s.syscall()?;
            return Ok(());
        }
        // Reads of a variant's own /proc files: each sees its own layout, in as many
        // reads as its content needs. They run unsynchronised (no effect outside the
        // variant); what the program does with what it read is compared at its next calls.
        if let Some(sn) = id_of(&call).canonical()
            && call.abi == vigil_tracee::Abi::X86_64
            && matches!(
                sn,
                Sysno::read | Sysno::pread64 | Sysno::readv | Sysno::preadv | Sysno::lseek
            )
            && self.fd_kind(si, call.args[0]) == Kind::Volatile
        {
            self.stats.unsynchronised += 1;
            s.cont()?;
            return Ok(());
        }
        if self.innocuous(si, &call) {
            let spec = spec::spec(id_of(&call));
            let var = self.var(si, v);
            let contents = spec
                .ins
                .iter()
                .map(|m| memio::read_in(&mut var.mem, &s, &call.args, m))
                .collect();
            var.last = Some(call);
            var.queue.push_back(Record {
                entry: call,
                contents,
            });
            self.stats.relaxed += 1;
            s.cont()?;
            return self.drain(si);
        }
        let var = self.var(si, v);
        var.last = Some(call);
        var.st = St::AtCall(s, call);
        self.release_held_in_call(si)?;
        self.try_rendezvous(si)
    }

    /// Relaxed mode: a call that reads only the variant's own state (its own files and
    /// memory), made without a rendezvous and compared as soon as every member has made it.
    /// Nothing outside a variant happens before every earlier call is compared: calls with
    /// an effect outside still wait at a rendezvous, which first needs every queue empty.
    fn innocuous(&self, si: usize, e: &SyscallEntry) -> bool {
        if !self.cfg.relaxed
            || self.journal.wants_events()
            || self.sets[si].sync.is_some()
            || e.abi != vigil_tracee::Abi::X86_64
        {
            return false;
        }
        let Some(s) = Sysno::new(e.nr as usize) else {
            return false;
        };
        let own = |fd: u64| self.fd_kind(si, fd) != Kind::Leader;
        let at = |fd: u64| fd as i32 == libc::AT_FDCWD || own(fd);
        match s {
            Sysno::read
            | Sysno::pread64
            | Sysno::readv
            | Sysno::preadv
            | Sysno::getdents64
            | Sysno::getdents
            | Sysno::lseek
            | Sysno::fstat
            | Sysno::fadvise64 => own(e.args[0]),
            Sysno::newfstatat
            | Sysno::statx
            | Sysno::faccessat
            | Sysno::faccessat2
            | Sysno::readlinkat => at(e.args[0]),
            Sysno::stat | Sysno::lstat | Sysno::access | Sysno::readlink | Sysno::getcwd => true,
            Sysno::brk | Sysno::madvise => true,
            _ => false,
        }
    }

    /// Relaxed mode: compares the members' queued calls, oldest first, while every member
    /// has one.
    fn drain(&mut self, si: usize) -> Result<(), MveeError> {
        loop {
            let set = &self.sets[si];
            if set.vars.iter().any(|x| x.queue.is_empty()) || self.diverged.is_some() {
                return Ok(());
            }
            let records: Vec<Record> = self.sets[si]
                .vars
                .iter_mut()
                .filter_map(|x| x.queue.pop_front())
                .collect();
            let entries: Vec<SyscallEntry> = records.iter().map(|r| r.entry).collect();
            let id = id_of(&entries[0]);
            if entries.iter().any(|e| id_of(e) != id) && entries.iter().any(loose) {
                // Calls on their own memory only some made (see `loose`): let go; the
                // others' calls wait to be compared with what comes next.
                for (x, r) in self.sets[si].vars.iter_mut().zip(records) {
                    if !loose(&r.entry) {
                        x.queue.push_front(r);
                    }
                }
                continue;
            }
            if entries.iter().any(|e| id_of(e) != id) {
                self.diverge_calls(si, &entries);
                return Ok(());
            }
            let spec = spec::spec(id);
            let contents: Vec<Vec<Content>> = records.into_iter().map(|r| r.contents).collect();
            if let Some((fields, differ, detail)) =
                self.compare(si, id, &spec, &entries, Some(&contents))
            {
                if !entries.iter().all(loose) {
                    self.diverge(si, "args", differ, &fields, detail);
                    return Ok(());
                }
            }
            self.stats.lockstep += 1;
            self.sets[si].remember(Past::Call(id, entries[0].args));
        }
    }

    /// Every member is at a rendezvous but some still have calls made without one that the
    /// others did not make: calls on their own memory (`loose`) are let go; anything else is
    /// a divergence.
    fn leftovers(&mut self, si: usize) -> Result<(), MveeError> {
        let set = &mut self.sets[si];
        if !set.vars.iter().all(|x| x.st.arrived()) {
            return Ok(());
        }
        for x in set.vars.iter_mut() {
            x.queue.retain(|r| !loose(&r.entry));
        }
        let extra: Vec<usize> = (0..self.n)
            .filter(|&v| !self.sets[si].vars[v].queue.is_empty())
            .collect();
        if extra.is_empty() {
            return self.try_rendezvous(si);
        }
        let detail = extra
            .iter()
            .map(|&v| {
                let calls: Vec<String> = self.sets[si].vars[v]
                    .queue
                    .iter()
                    .map(|r| call_name(id_of(&r.entry)))
                    .collect();
                format!("variant {v} made {} the others did not", calls.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.diverge(si, "call", extra, &[], detail);
        Ok(())
    }

    fn on_exited(&mut self, si: usize, v: usize, exit: Exit) -> Result<(), MveeError> {
        if v == 0 {
            let tid = self.sets[si].vars[0].tid;
            self.journal.exited(tid, exit)?;
        }
        if si == 0 && v == 0 {
            self.first_exit = Some(exit);
        }
        let set = &mut self.sets[si];
        set.vars[v].st = St::Gone(exit);
        if let Some(c) = &mut set.call {
            c.open = c.open.saturating_sub(1);
        }
        self.by_tid.remove(&self.sets[si].vars[v].tid);
        self.check_ended(si)
    }

    /// A set whose members are all gone ends; one whose members ended differently, or where
    /// some ended and others went on to another call, diverged.
    fn check_ended(&mut self, si: usize) -> Result<(), MveeError> {
        let set = &self.sets[si];
        let exits: Vec<Option<Exit>> = set
            .vars
            .iter()
            .map(|x| match x.st {
                St::Gone(e) => Some(e),
                _ => None,
            })
            .collect();
        let gone = exits.iter().filter(|e| e.is_some()).count();
        if gone == 0 {
            return Ok(());
        }
        if gone == self.n {
            let first = exits[0];
            let differ: Vec<usize> = (0..self.n).filter(|&i| exits[i] != first).collect();
            self.sets[si].alive = false;
            if !differ.is_empty() {
                let detail = (0..self.n)
                    .map(|i| match exits[i] {
                        Some(e) => format!("variant {i} {e}"),
                        None => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                self.diverge(si, "exit", differ, &[], detail);
            }
            return Ok(());
        }
        // Some gone, others not: a crash alone unless the others are on their way out.
        let killed = exits.iter().flatten().find_map(|e| match e {
            Exit::Killed { signal, .. } => Some(*signal),
            _ => None,
        });
        // A member waiting at a call with the same deadly signal pending is on its way out
        // too (a stopped thread takes a signal only when it runs): it skips the call and dies.
        if let Some(sig) = killed {
            for v in 0..self.n {
                let dying = matches!(self.sets[si].vars[v].st, St::AtCall(..))
                    && pending(self.sets[si].vars[v].tid) & sig_bit(sig) != 0;
                if dying {
                    self.skip_with(si, v, -(libc::EINTR as i64), false)?;
                }
            }
        }
        let set = &self.sets[si];
        let others_at_call = set
            .vars
            .iter()
            .any(|x| matches!(x.st, St::AtCall(..) | St::AtTsc(..) | St::InLoop));
        // Members still running may be on their way to the same end (a signal to the whole
        // group reaches them a moment later): only one that went on to another rendezvous, or
        // the timeout, makes it a divergence.
        if others_at_call {
            let gone_idx: Vec<usize> = (0..self.n).filter(|&i| exits[i].is_some()).collect();
            let what = if killed.is_some() { "crash" } else { "exit" };
            let detail = gone_idx
                .iter()
                .map(|&i| {
                    format!(
                        "variant {i} {}",
                        exits[i].map(|e| e.to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let detail = format!("{detail}, alone; the others went on");
            self.diverge(si, what, gone_idx, &[], detail);
        } else if self.sets[si].waiting_since.is_none() {
            self.sets[si].waiting_since = Some(Instant::now());
        }
        Ok(())
    }

    fn try_rendezvous(&mut self, si: usize) -> Result<(), MveeError> {
        let set = &mut self.sets[si];
        if set.call.is_some() || set.sync.is_some() {
            return Ok(());
        }
        if !set.vars.iter().all(|x| x.st.arrived()) {
            if set.waiting_since.is_none() {
                set.waiting_since = Some(Instant::now());
            }
            return Ok(());
        }
        if set.vars.iter().any(|x| matches!(x.st, St::Gone(_))) {
            return self.check_ended(si);
        }
        // Relaxed mode: calls made without waiting are compared before this one; a member
        // whose queue is not empty made calls the others did not.
        if set.vars.iter().any(|x| !x.queue.is_empty()) {
            return self.leftovers(si);
        }
        let set = &mut self.sets[si];
        let started = set.waiting_since.take().unwrap_or_else(Instant::now);
        // All at the same kind of point?
        let tsc = set
            .vars
            .iter()
            .filter(|x| matches!(x.st, St::AtTsc(..)))
            .count();
        if tsc == self.n {
            return self.do_tsc(si);
        }
        if tsc > 0 {
            let differ: Vec<usize> = (0..self.n)
                .filter(|&i| {
                    matches!(self.sets[si].vars[i].st, St::AtTsc(..))
                        != matches!(self.sets[si].vars[0].st, St::AtTsc(..))
                })
                .collect();
            self.diverge(
                si,
                "call",
                differ,
                &[],
                "rdtsc in some variants, a system call in others".into(),
            );
            return Ok(());
        }
        // A held signal most members have: deliver it before the call.
        if let Some(sig) = self.quorum(si) {
            return self.start_sync(si, sig);
        }
        let entries: Vec<SyscallEntry> = self.sets[si]
            .vars
            .iter()
            .map(|x| match &x.st {
                St::AtCall(_, e) => *e,
                _ => unreachable_entry(),
            })
            .collect();
        let id = id_of(&entries[0]);
        if entries.iter().any(|e| id_of(e) != id) {
            // Calls some members make and others do not, with no effect outside the
            // variant: run by those members on their own (see `loose`); the set meets again
            // at their next call.
            if entries.iter().any(loose) {
                return self.run_loose(si, &entries, started);
            }
            self.diverge_calls(si, &entries);
            return Ok(());
        }
        let spec = spec::spec(id);
        if let Some((fields, differ, detail)) = self.compare(si, id, &spec, &entries, None) {
            // The same memory call with other sizes (an allocator that grows by what it
            // found): each member makes its own.
            if entries.iter().all(loose) && fields.iter().all(|f| f != "path") {
                return self.run_loose(si, &entries, started);
            }
            self.diverge(si, "args", differ, &fields, detail);
            return Ok(());
        }
        self.stats.lockstep += 1;
        self.stats.lockstep_ns += started.elapsed().as_nanos() as u64;
        for (pid, tid, detail) in std::mem::take(&mut self.renames) {
            self.journal.action(pid, tid, "rename", &detail)?;
        }
        self.execute(si, id, spec, entries)
    }

    /// The members at a `loose` call make it on their own, unsynchronised; the others wait.
    fn run_loose(
        &mut self,
        si: usize,
        entries: &[SyscallEntry],
        started: Instant,
    ) -> Result<(), MveeError> {
        self.sets[si].waiting_since = Some(started);
        for (v, e) in entries.iter().enumerate() {
            if loose(e)
                && let Some((s, _)) = self.take_at_call(si, v)
            {
                self.stats.unsynchronised += 1;
                s.cont()?;
            }
        }
        Ok(())
    }

    // ---- comparison ----

    /// The arguments that differ: their names, the members that differ from the leader, and
    /// a sentence.
    /// `recorded`: the members' memory contents read when they made the call without a
    /// rendezvous (relaxed mode), per member in the row's order; None: read them now, at
    /// their stops.
    fn compare(
        &mut self,
        si: usize,
        id: SyscallId,
        spec: &Spec,
        entries: &[SyscallEntry],
        recorded: Option<&[Vec<Content>]>,
    ) -> Option<(Vec<String>, Vec<usize>, String)> {
        let sig = id.signature();
        let name = |i: usize| {
            sig.args
                .get(i)
                .map(|a| a.name.to_string())
                .unwrap_or_else(|| format!("arg{i}"))
        };
        let mut fields = Vec::new();
        let mut differ = Vec::new();
        let mut details = Vec::new();
        let a0 = entries[0].args;
        // A read of a file every variant opened itself (its own /proc/self/maps, say) may
        // get other bytes in each; how much the next read asks for then differs with no
        // effect outside the variant: only the fd is compared. What the program does with
        // what it read is compared at its next calls.
        let private_read = matches!(spec.run, Run::ByFd(_))
            && spec.ins.is_empty()
            && spec.args.first() == Some(&Arg::Fd)
            && self.fd_kind(si, a0[0]) != Kind::Leader;
        for (i, kind) in spec.args.iter().enumerate() {
            for (v, e) in entries.iter().enumerate().skip(1) {
                let (x, y) = (a0[i], e.args[i]);
                let same = match kind {
                    Arg::Int | Arg::Pid if private_read => true,
                    Arg::Int | Arg::Fd | Arg::Pid => x == y,
                    Arg::Ptr => (x == 0) == (y == 0),
                    Arg::Ignore => true,
                };
                if !same {
                    if !fields.contains(&name(i)) {
                        fields.push(name(i));
                        details.push(format!(
                            "{} is {x:#x} in variant 0, {y:#x} in variant {v}",
                            name(i)
                        ));
                    }
                    if !differ.contains(&v) {
                        differ.push(v);
                    }
                }
            }
        }
        let sysno = id.canonical().filter(|_| id.abi == EvAbi::X86_64);
        for (mi, m) in spec.ins.iter().enumerate() {
            let contents: Vec<Content> = match recorded {
                Some(r) => r
                    .iter()
                    .map(|c| c.get(mi).cloned().unwrap_or(Content::Unreadable))
                    .collect(),
                None => (0..self.n)
                    .map(|v| {
                        let var = &mut self.sets[si].vars[v];
                        let St::AtCall(s, e) = &var.st else {
                            return Content::Unreadable;
                        };
                        let mut c = memio::read_in(&mut var.mem, s, &e.args, m);
                        if sysno == Some(Sysno::rt_sigaction) {
                            normalise_sigaction(&mut c);
                        }
                        c
                    })
                    .collect(),
            };
            let exclusive = recorded.is_none()
                && m.len == Len::CStr
                && creates_exclusively(sysno, &entries[0].args);
            for (v, c) in contents.iter().enumerate().skip(1) {
                if *c != contents[0]
                    && exclusive
                    && let (Content::Bytes(mine), Content::Bytes(leader)) = (c, &contents[0])
                    && is_generated_name(leader, mine)
                {
                    // A unique name the program generated from its own address (gnulib's
                    // mkstemp seeds with one): the variant is given the leader's name, in
                    // its own buffer, so it names the same file from now on.
                    let var = &mut self.sets[si].vars[v];
                    if let St::AtCall(s, e) = &var.st
                        && var.mem.write(s, e.args[m.arg as usize], leader).is_ok()
                    {
                        self.stats.names_unified += 1;
                        let (pid, tid) = (self.sets[si].vars[0].pid, self.sets[si].vars[0].tid);
                        let detail = format!(
                            "variant {v}'s generated name {} is the leader's {}",
                            String::from_utf8_lossy(mine),
                            String::from_utf8_lossy(leader)
                        );
                        self.renames.push((pid, tid, detail));
                        continue;
                    }
                }
                if *c != contents[0] {
                    let f = name(m.arg as usize);
                    if !fields.contains(&f) {
                        let (a, b) = show_difference(&contents[0], c);
                        details.push(format!("{f} holds {a} in variant 0, {b} in variant {v}"));
                        fields.push(f);
                    }
                    if !differ.contains(&v) {
                        differ.push(v);
                    }
                }
            }
        }
        if differ.is_empty() {
            None
        } else {
            Some((fields, differ, details.join("; ")))
        }
    }

    // ---- execution ----

    fn fd_kind(&self, si: usize, fd: u64) -> Kind {
        let lp = &self.lprocs[self.sets[si].lproc];
        lp.fds.get(&(fd as i32)).copied().unwrap_or(Kind::Each)
    }

    fn execute(
        &mut self,
        si: usize,
        id: SyscallId,
        spec: Spec,
        entries: Vec<SyscallEntry>,
    ) -> Result<(), MveeError> {
        let sysno = id.canonical().filter(|_| id.abi == EvAbi::X86_64);
        let mut run = spec.run;
        if let Run::ByFd(n) = run {
            run = match self.fd_kind(si, entries[0].args[n as usize]) {
                Kind::Each | Kind::Volatile => Run::Each,
                Kind::Leader => Run::Leader,
            };
        }
        // fcntl's commands that shape the table run everywhere.
        if sysno == Some(Sysno::mmap)
            && entries[0].args[3] & MAP_ANONYMOUS == 0
            && (entries[0].args[4] as i32) >= 0
            && self.fd_kind(si, entries[0].args[4]) == Kind::Leader
        {
            run = Run::MapCopy;
        }
        if run == Run::Each
            && sysno == Some(Sysno::mmap)
            && entries[0].args[0] == 0
            && entries[0].args[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE) == 0
        {
            run = Run::MapPlaced;
        }
        if sysno == Some(Sysno::epoll_ctl) {
            self.note_epoll_ctl(si, &entries);
        }
        if sysno == Some(Sysno::fcntl)
            && matches!(
                entries[0].args[1],
                F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD
            )
        {
            run = Run::Each;
        }
        let mut translated: Vec<Option<[u64; 6]>> = vec![None; self.n];
        if run == Run::Kill {
            match self.translate_pids(si, &spec, &entries) {
                Some(t) => {
                    translated = t.into_iter().map(Some).collect();
                    run = Run::EachLeaderResult;
                }
                None => run = Run::Leader,
            }
        }
        let regs: Vec<[u64; 6]> = entries.iter().map(|e| e.args).collect();
        let mut clone_flags = 0;
        let mut settid = vec![(0, 0); self.n];
        if run == Run::Spawn {
            for v in 0..self.n {
                let a = entries[v].args;
                let (flags, ptid, ctid) = match sysno {
                    Some(Sysno::clone) => (a[0], a[2], a[3]),
                    Some(Sysno::clone3) => {
                        let var = &mut self.sets[si].vars[v];
                        let St::AtCall(s, _) = &var.st else { continue };
                        let mut b = [0u8; 32];
                        if var.mem.read(s, a[0], &mut b).is_ok() {
                            let w = |o: usize| {
                                u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
                            };
                            (w(0), w(24), w(16))
                        } else {
                            (0, 0, 0)
                        }
                    }
                    _ => (0, 0, 0),
                };
                if v == 0 {
                    clone_flags = flags;
                }
                settid[v] = (ptid, ctid);
            }
        }
        if let Some(sn) = sysno
            && spec.run == Run::Refuse(libc::EPERM)
            && sn == Sysno::ptrace
            && !self.noted_ptrace
        {
            self.noted_ptrace = true;
            self.journal.note(&format!(
                "process {} called ptrace: refused (EPERM), a program cannot trace under the multi-variant monitor",
                self.sets[si].vars[0].pid
            ));
        }
        self.sets[si].remember(Past::Call(id, entries[0].args));
        self.sets[si].call = Some(Call {
            id,
            sysno,
            spec,
            run,
            regs,
            changed: vec![false; self.n],
            leader_ret: None,
            outs: Vec::new(),
            children: vec![None; self.n],
            clone_flags,
            settid,
            open: self.n,
            exec_ret: vec![None; self.n],
            received: Vec::new(),
            received_cloexec: false,
            restarting: vec![false; self.n],
        });
        // The leader's entry goes to the journal, whose rules may refuse the call or end
        // the run.
        if let St::AtCall(s, _) = &self.sets[si].vars[0].st {
            self.journal.entry(s)?;
            match self.journal.verdict() {
                vigil_event::Verdict::Continue => {}
                vigil_event::Verdict::Deny(errno) => {
                    if let Some(c) = &mut self.sets[si].call {
                        c.run = Run::Refuse(errno);
                    }
                    run = Run::Refuse(errno);
                }
                v @ (vigil_event::Verdict::Kill | vigil_event::Verdict::Stop) => {
                    self.stopped_by_rule = Some(v);
                    return Ok(());
                }
            }
        }
        match run {
            Run::Refuse(errno) => {
                self.stats.refused += 1;
                let (pid, tid) = (self.sets[si].vars[0].pid, self.sets[si].vars[0].tid);
                self.journal.action(
                    pid,
                    tid,
                    "refuse",
                    &format!("{}: {}", call_name(id), nix::errno::Errno::from_raw(errno)),
                )?;
                for v in 0..self.n {
                    self.skip_with(si, v, -(errno as i64), true)?;
                }
                self.sets[si].call = None;
                Ok(())
            }
            Run::Leader | Run::Open | Run::MapCopy | Run::MapPlaced => {
                self.stats.leader_only += u64::from(run == Run::Leader);
                for v in 1..self.n {
                    let var = self.var(si, v);
                    if let St::AtCall(s, e) = std::mem::replace(&mut var.st, St::Running) {
                        var.st = St::AwaitLeader(s, e);
                    }
                }
                self.resume_call(si, 0, true, None)
            }
            Run::Each
            | Run::EachLeaderResult
            | Run::Spawn
            | Run::Exec
            | Run::Kill
            | Run::ByFd(_) => {
                let leader_exit = self.journal.wants_events()
                    || spec.new_fd != NewFd::No
                    || matches!(
                        sysno,
                        Some(
                            Sysno::close
                                | Sysno::close_range
                                | Sysno::dup
                                | Sysno::dup2
                                | Sysno::dup3
                                | Sysno::fcntl
                        )
                    );
                for (v, args) in translated.into_iter().enumerate() {
                    let need_exit = (v == 0 && leader_exit) || run != Run::Each || args.is_some();
                    self.resume_call(si, v, need_exit, args)?;
                }
                if run == Run::Each {
                    // Members of a plain call are done with it once resumed (the leader at
                    // its exit stop when it has one).
                    if leader_exit {
                        if let Some(c) = &mut self.sets[si].call {
                            c.open = 1;
                        }
                    } else {
                        self.sets[si].call = None;
                    }
                }
                Ok(())
            }
        }
    }

    /// Resumes a member into its call (with new arguments if given); `exit` asks for the
    /// exit stop.
    fn resume_call(
        &mut self,
        si: usize,
        v: usize,
        exit: bool,
        args: Option<[u64; 6]>,
    ) -> Result<(), MveeError> {
        if let Some(a) = args {
            return self.rerun_with(si, v, |r| {
                r.0.rdi = a[0];
                r.0.rsi = a[1];
                r.0.rdx = a[2];
                r.0.r10 = a[3];
                r.0.r8 = a[4];
                r.0.r9 = a[5];
            });
        }
        let Some((s, _)) = self.take_at_call(si, v) else {
            return Ok(());
        };
        if exit {
            s.syscall()?;
        } else {
            s.cont()?;
        }
        Ok(())
    }

    /// A member's handle at its seccomp stop (arrived, or waiting for the leader), which the
    /// caller resumes; None (and the state left as it was) at any other point.
    fn take_at_call(&mut self, si: usize, v: usize) -> Option<(Stopped, SyscallEntry)> {
        let var = self.var(si, v);
        match std::mem::replace(&mut var.st, St::Running) {
            St::AtCall(s, e) | St::AwaitLeader(s, e) => Some((s, e)),
            other => {
                var.st = other;
                None
            }
        }
    }

    /// Runs a member's call with registers `edit` changed (its arguments, or another call in
    /// its place), to its exit stop, where the changed arguments are put back.
    fn rerun_with(
        &mut self,
        si: usize,
        v: usize,
        edit: impl FnOnce(&mut Regs),
    ) -> Result<(), MveeError> {
        let Some((mut s, _)) = self.take_at_call(si, v) else {
            return Ok(());
        };
        let mut r = s.regs()?;
        edit(&mut r);
        s.set_regs(&r)?;
        if let Some(c) = &mut self.sets[si].call {
            c.changed[v] = true;
        }
        s.syscall()?;
        Ok(())
    }

    /// Skips a member's call at its seccomp stop: it returns `ret` without running.
    fn skip_with(&mut self, si: usize, v: usize, ret: i64, journal: bool) -> Result<(), MveeError> {
        let Some((mut s, _)) = self.take_at_call(si, v) else {
            return Ok(());
        };
        let mut r = s.regs()?;
        r.0.orig_rax = u64::MAX;
        r.0.rax = ret as u64;
        s.set_regs(&r)?;
        if journal && v == 0 {
            self.journal.exit(&s, ret)?;
        }
        s.cont()?;
        Ok(())
    }

    /// The pid arguments of a Kill call translated per member; None when one names something
    /// outside the variants (then only the leader runs it).
    fn translate_pids(
        &self,
        si: usize,
        spec: &Spec,
        entries: &[SyscallEntry],
    ) -> Option<Vec<[u64; 6]>> {
        let mut out: Vec<[u64; 6]> = entries.iter().map(|e| e.args).collect();
        for (i, kind) in spec.args.iter().enumerate() {
            if *kind != Arg::Pid {
                continue;
            }
            let raw = entries[0].args[i] as i64 as i32;
            if raw == 0 {
                // The caller's own process (getpgid(0)) or group (kill(0)): kill(0) in the
                // shared group is a signal to every variant, sent once.
                if self.in_shared_group(si)
                    && i == 0
                    && spec.args.len() == 2
                    && spec.args[1] == Arg::Int
                {
                    return None;
                }
                continue;
            }
            if raw == -1 {
                return None;
            }
            let id = raw.unsigned_abs() as i32;
            if raw < 0 && id == self.group {
                return None;
            }
            let reals = self.vmap.get(&id)?;
            for (v, a) in out.iter_mut().enumerate() {
                let r = *reals.get(v)?;
                a[i] = if raw < 0 {
                    (-r) as i64 as u64
                } else {
                    r as u64
                };
            }
        }
        Some(out)
    }

    fn in_shared_group(&self, si: usize) -> bool {
        let pid = self.sets[si].vars[0].pid;
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                rest.split(' ').nth(2)?.parse::<i32>().ok()
            })
            == Some(self.group)
    }

    // ---- exits ----

    fn on_exit(&mut self, si: usize, v: usize, s: Stopped, ret: i64) -> Result<(), MveeError> {
        let Some(call) = &self.sets[si].call else {
            s.cont()?;
            return Ok(());
        };
        let run = call.run;
        if run == Run::Exec {
            return self.on_exec_exit(si, v, s, ret);
        }
        // A signal interrupted the call: its result is not this (the signal is held, so the
        // kernel makes the call again, which `resumes` follows to its real end).
        if is_restart(ret) && run != Run::Spawn {
            self.var(si, v).resumes = true;
            s.cont()?;
            return Ok(());
        }
        if v == 0 {
            return self.on_leader_exit(si, s, ret);
        }
        match run {
            Run::MapPlaced | Run::MapCopy => {
                // The follower's own mapping: where it was placed (or, if something of its
                // own is there, wherever the kernel chooses), filled with the file's bytes
                // when only the leader could map the file.
                let mut s = s;
                let file = match run {
                    Run::MapCopy => call.outs.first().map(|o| o.bytes.clone()),
                    _ => None,
                };
                let leader_failed = call_failed(&call_ref(&self.sets[si].call));
                let mut ret = ret;
                if is_err(ret) && !leader_failed {
                    ret = self.map_anywhere(&mut s)?;
                }
                if let Some(file) = file.filter(|f| !f.is_empty() && !is_err(ret)) {
                    let var = self.var(si, v);
                    if let Err(e) = var.mem.write(&s, ret as u64, &file) {
                        let _ = s.cont();
                        let detail = format!(
                            "variant {v}: cannot fill its copy of the leader's mapping: {e}"
                        );
                        self.diverge(si, "result", vec![v], &[], detail);
                        return Ok(());
                    }
                }
                self.put_back_args(si, v, &mut s, None)?;
                s.cont()?;
                self.close_one(si);
                if is_err(ret) != leader_failed {
                    let detail =
                        format!("mmap: the leader's succeeded or failed, variant {v}'s gave {ret}");
                    self.diverge(si, "result", vec![v], &[], detail);
                }
                Ok(())
            }
            Run::Open | Run::Leader => {
                // A follower's own open, or its placeholder: it must land on the leader's fd.
                let want = call.leader_ret.unwrap_or(ret);
                let mut s = s;
                self.put_back_args(si, v, &mut s, None)?;
                s.cont()?;
                self.close_one(si);
                if ret != want {
                    self.diverge(
                        si,
                        "result",
                        vec![v],
                        &[],
                        format!(
                            "{} returned {want} in the leader and {ret} in variant {v}",
                            call_name(
                                self.sets[si]
                                    .call
                                    .as_ref()
                                    .map(|c| c.id)
                                    .unwrap_or_default()
                            )
                        ),
                    );
                }
                Ok(())
            }
            Run::Spawn if is_restart(ret) => self.spawn_restarts(si, v, s),
            Run::Spawn => {
                let leader_child = call.children[0];
                if ret > 0 && leader_child.is_none() {
                    self.var(si, v).st = St::ExitAwait(s, ret);
                    return Ok(());
                }
                self.finish_spawn_parent(si, v, s, ret)
            }
            _ => {
                if call.leader_ret.is_some() || run == Run::Each {
                    self.finish_follower(si, v, s, ret)
                } else {
                    self.var(si, v).st = St::ExitAwait(s, ret);
                    Ok(())
                }
            }
        }
    }

    fn close_one(&mut self, si: usize) {
        let done = match &mut self.sets[si].call {
            Some(c) => {
                c.open = c.open.saturating_sub(1);
                c.open == 0
            }
            None => false,
        };
        if done {
            self.sets[si].call = None;
            // Members that ran ahead to their next call may be waiting.
            let _ = self.try_rendezvous(si);
        }
    }

    /// Puts back the argument registers the monitor changed, with the call's result in rax
    /// (`ret` None: the result the call gave).
    fn put_back_args(
        &mut self,
        si: usize,
        v: usize,
        s: &mut Stopped,
        ret: Option<i64>,
    ) -> Result<(), MveeError> {
        let Some(c) = &self.sets[si].call else {
            return Ok(());
        };
        if !c.changed[v] && ret.is_none() {
            return Ok(());
        }
        let mut r = s.regs()?;
        if c.changed[v] {
            let a = c.regs[v];
            r.0.rdi = a[0];
            r.0.rsi = a[1];
            r.0.rdx = a[2];
            r.0.r10 = a[3];
            r.0.r8 = a[4];
            r.0.r9 = a[5];
        }
        if let Some(ret) = ret {
            r.0.rax = ret as u64;
        }
        s.set_regs(&r)?;
        Ok(())
    }

    fn on_leader_exit(&mut self, si: usize, mut s: Stopped, ret: i64) -> Result<(), MveeError> {
        let Some(call) = &self.sets[si].call else {
            s.cont()?;
            return Ok(());
        };
        let (run, spec, sysno) = (call.run, call.spec, call.sysno);
        let args = call.regs.first().copied().unwrap_or([0; 6]);
        // The leader's outputs, for the others.
        let mut outs = Vec::new();
        if matches!(run, Run::Leader | Run::EachLeaderResult) && !is_err(ret) {
            let var = &mut self.sets[si].vars[0];
            for m in spec.outs {
                if let Some(o) = memio::read_out(&mut var.mem, &s, &args, m, ret) {
                    outs.push(o);
                }
            }
        }
        self.put_back_args(si, 0, &mut s, None)?;
        self.journal.exit(&s, ret)?;
        // The fd table.
        let open_kind = if run == Run::Open && !is_err(ret) {
            Some(self.classify_open(&s, sysno, &args, ret))
        } else {
            None
        };
        self.book_fds(si, sysno, &spec, &args, ret, open_kind, &s);
        if run == Run::MapCopy && !is_err(ret) {
            outs = vec![self.mapped_file(&s, &args)];
        }
        let received = if matches!(sysno, Some(Sysno::recvmsg)) && !is_err(ret) {
            outs.first()
                .map(|o| scm_rights(&o.bytes))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if !received.is_empty() {
            let lp = self.sets[si].lproc;
            for &fd in &received {
                self.lprocs[lp].fds.insert(fd, Kind::Leader);
            }
        }
        if run == Run::Spawn && is_restart(ret) {
            return self.spawn_restarts(si, 0, s);
        }
        if run == Run::Spawn {
            if let Some(c) = &mut self.sets[si].call {
                c.leader_ret = Some(ret);
            }
            s.cont()?;
            self.close_one_spawn(si)?;
            return self.flush_spawn_parents(si);
        }
        s.cont()?;
        if let Some(c) = &mut self.sets[si].call {
            c.leader_ret = Some(ret);
            c.outs = outs;
            c.received_cloexec = args[2] & MSG_CMSG_CLOEXEC != 0;
            c.received = received;
        }
        match run {
            Run::MapCopy => {
                for v in 1..self.n {
                    if is_err(ret) {
                        self.follower_from_leader(si, v, ret)?;
                        self.close_one(si);
                    } else {
                        self.anonymous_map(si, v, ret as u64)?;
                    }
                }
                self.close_one(si);
            }
            Run::MapPlaced => {
                for v in 1..self.n {
                    if is_err(ret) {
                        self.resume_call(si, v, true, None)?;
                    } else {
                        self.placed_map(si, v, ret as u64)?;
                    }
                }
                self.close_one(si);
            }
            Run::Leader => {
                let new_fd = spec.new_fd == NewFd::Ret && !is_err(ret);
                for v in 1..self.n {
                    if new_fd {
                        self.placeholder(si, v, &args, sysno)?;
                    } else {
                        self.follower_from_leader(si, v, ret)?;
                        self.close_one(si);
                    }
                }
                self.close_one(si);
            }
            Run::Open => {
                for v in 1..self.n {
                    match open_kind {
                        None => {
                            self.follower_from_leader(si, v, ret)?;
                            self.close_one(si);
                        }
                        Some(Kind::Each | Kind::Volatile) => self.resume_call(si, v, true, None)?,
                        Some(Kind::Leader) => self.placeholder(si, v, &args, sysno)?,
                    }
                }
                self.close_one(si);
            }
            Run::EachLeaderResult => {
                for v in 1..self.n {
                    let var = self.var(si, v);
                    if let St::ExitAwait(..) = var.st {
                        let St::ExitAwait(fs, fret) = std::mem::replace(&mut var.st, St::Running)
                        else {
                            continue;
                        };
                        self.finish_follower(si, v, fs, fret)?;
                    }
                }
                self.close_one(si);
            }
            _ => self.close_one(si),
        }
        Ok(())
    }

    /// A follower that skipped the call: the leader's result and outputs.
    fn follower_from_leader(&mut self, si: usize, v: usize, ret: i64) -> Result<(), MveeError> {
        let outs = self.sets[si]
            .call
            .as_ref()
            .map(|c| c.outs.clone())
            .unwrap_or_default();
        let Some((mut s, e)) = self.take_at_call(si, v) else {
            return Ok(());
        };
        let (sysno, received, cloexec) = self.sets[si]
            .call
            .as_ref()
            .map(|c| (c.sysno, c.received.clone(), c.received_cloexec))
            .unwrap_or((None, Vec::new(), false));
        let epoll = matches!(
            sysno,
            Some(Sysno::epoll_wait | Sysno::epoll_pwait | Sysno::epoll_pwait2)
        );
        for o in &outs {
            let translated;
            let o = if epoll {
                translated = self.epoll_events_for(si, v, e.args[0] as i32, o);
                &translated
            } else {
                o
            };
            let var = self.var(si, v);
            if let Err(err) = memio::write_out(&mut var.mem, &s, &e.args, o) {
                let _ = s.cont();
                self.diverge(si, "result", vec![v], &[], format!("variant {v}: {err}"));
                return Ok(());
            }
        }
        if !received.is_empty()
            && let Err(err) = self.placeholders_at(&mut s, &received, cloexec)
        {
            let _ = s.cont();
            self.diverge(
                si,
                "result",
                vec![v],
                &[],
                format!(
                    "variant {v}: cannot make placeholders for the fds the leader received: {err}"
                ),
            );
            return Ok(());
        }
        let mut r = s.regs()?;
        r.0.orig_rax = u64::MAX;
        r.0.rax = ret as u64;
        s.set_regs(&r)?;
        s.cont()?;
        // The kernel raised SIGPIPE in the leader for its write to a pipe with no reader:
        // the others, given its EPIPE, get the signal too.
        if ret == -(libc::EPIPE as i64) && raises_sigpipe(sysno, &e.args) {
            let x = &self.sets[si].vars[v];
            // SAFETY: a signal to one of our variant threads.
            unsafe { libc::syscall(libc::SYS_tgkill, x.pid, x.tid, libc::SIGPIPE) };
        }
        Ok(())
    }

    /// Opens /dev/null onto each of `fds` in a member stopped at its seccomp stop (the fds
    /// the leader received over a socket), and brings it back to that stop.
    fn placeholders_at(
        &mut self,
        s: &mut Stopped,
        fds: &[i32],
        cloexec: bool,
    ) -> Result<(), vigil_tracee::Error> {
        let flags = if cloexec { O_CLOEXEC } else { 0 };
        let mut r = s.remote(&mut self.tracer)?.with_site(page::SITE);
        for &fd in fds {
            let t = r.syscall(Sysno::openat, &[AT_FDCWD as u64, page::DEVNULL, flags, 0])?;
            if t >= 0 && t as i32 != fd {
                r.syscall(Sysno::dup3, &[t as u64, fd as u64, flags])?;
                r.syscall(Sysno::close, &[t as u64])?;
            }
        }
        r.finish()
    }

    /// Records the `data` each variant registers an fd with in an epoll set.
    fn note_epoll_ctl(&mut self, si: usize, entries: &[SyscallEntry]) {
        let lp = self.sets[si].lproc;
        for (v, e) in entries.iter().enumerate() {
            let (epfd, op, fd, ev) = (
                e.args[0] as i32,
                e.args[1] as i32,
                e.args[2] as i32,
                e.args[3],
            );
            let data = if op == libc::EPOLL_CTL_DEL || ev == 0 {
                None
            } else {
                let var = &mut self.sets[si].vars[v];
                match &var.st {
                    St::AtCall(s, _) => var.mem.read_u64(s, ev + 4).ok(),
                    _ => None,
                }
            };
            let map = &mut self.lprocs[lp].epoll[v];
            match data {
                Some(d) => {
                    map.insert((epfd, fd), d);
                }
                None if op == libc::EPOLL_CTL_DEL => {
                    map.remove(&(epfd, fd));
                }
                None => {}
            }
        }
    }

    /// The leader's epoll events with each event's `data` replaced by what variant `v`
    /// registered the same fd with.
    fn epoll_events_for(&self, si: usize, v: usize, epfd: i32, o: &Output) -> Output {
        let lp = &self.lprocs[self.sets[si].lproc];
        let mut out = o.clone();
        for ev in out.bytes.chunks_exact_mut(12) {
            let mut d = [0u8; 8];
            d.copy_from_slice(&ev[4..12]);
            let leader_data = u64::from_le_bytes(d);
            let fd = lp.epoll[0]
                .iter()
                .find(|(k, x)| k.0 == epfd && **x == leader_data)
                .map(|(k, _)| k.1);
            if let Some(mine) = fd.and_then(|f| lp.epoll[v].get(&(epfd, f))) {
                ev[4..12].copy_from_slice(&mine.to_le_bytes());
            }
        }
        out
    }

    /// The bytes of the file an mmap of a leader-only fd maps (read through the leader's fd,
    /// at the mapping's offset, at most the mapping's length).
    fn mapped_file(&self, s: &Stopped, args: &[u64; 6]) -> Output {
        use std::os::unix::fs::FileExt;
        let len = (args[1] as usize).min(memio::MAX_BYTES);
        let mut bytes = vec![0u8; len];
        let got = std::fs::File::open(format!("/proc/{}/fd/{}", s.tid(), args[4] as i32))
            .and_then(|f| {
                let mut n = 0;
                while n < len {
                    match f.read_at(&mut bytes[n..], args[5] + n as u64)? {
                        0 => break,
                        k => n += k,
                    }
                }
                Ok(n)
            })
            .unwrap_or(0);
        bytes.truncate(got);
        Output {
            mem: spec::Mem {
                arg: 0,
                len: Len::Ret,
            },
            bytes,
            header: None,
        }
    }

    /// A follower maps anonymous memory where the leader mapped a file only it opened.
    fn anonymous_map(&mut self, si: usize, v: usize, leader_addr: u64) -> Result<(), MveeError> {
        let at = self.placement(v, leader_addr);
        self.rerun_with(si, v, |r| {
            let keep = MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | MAP_POPULATE;
            r.0.r10 = (r.0.r10 & keep) | MAP_PRIVATE | MAP_ANONYMOUS;
            if r.0.r10 & (MAP_FIXED | MAP_FIXED_NOREPLACE) == 0 {
                r.0.rdi = at;
                r.0.r10 |= MAP_FIXED_NOREPLACE;
            }
            r.0.r8 = u64::MAX;
            r.0.r9 = 0;
        })
    }

    /// Where variant `v` maps what the leader mapped at `leader_addr`: moved by the variant's
    /// distance, down (or up, for a low address).
    fn placement(&self, v: usize, leader_addr: u64) -> u64 {
        let d = self.deltas.get(v).copied().unwrap_or(0);
        if leader_addr > d + (4 << 30) {
            leader_addr - d
        } else {
            leader_addr + d
        }
    }

    /// A follower maps at its placement of the leader's address (MAP_FIXED_NOREPLACE).
    fn placed_map(&mut self, si: usize, v: usize, leader_addr: u64) -> Result<(), MveeError> {
        let at = self.placement(v, leader_addr);
        self.rerun_with(si, v, |r| {
            r.0.rdi = at;
            r.0.r10 |= MAP_FIXED_NOREPLACE;
        })
    }

    /// A placed mapping that could not go where it was placed (something of the variant's
    /// own is there): mapped again wherever the kernel chooses, from the exit stop.
    fn map_anywhere(&mut self, s: &mut Stopped) -> Result<i64, MveeError> {
        let r = s.regs()?;
        let a = r.syscall_args();
        let mut rs = s.remote(&mut self.tracer)?.with_site(page::SITE);
        let got = rs.syscall(
            Sysno::mmap,
            &[0, a[1], a[2], a[3] & !MAP_FIXED_NOREPLACE, a[4], a[5]],
        )?;
        rs.finish()?;
        let mut r = s.regs()?;
        r.0.rax = got as u64;
        s.set_regs(&r)?;
        Ok(got)
    }

    /// A follower that ran the call itself: the leader's result and outputs replace its own.
    fn finish_follower(
        &mut self,
        si: usize,
        v: usize,
        mut s: Stopped,
        ret: i64,
    ) -> Result<(), MveeError> {
        let (run, leader_ret, outs, args) = match &self.sets[si].call {
            Some(c) => (
                c.run,
                c.leader_ret,
                c.outs.clone(),
                c.regs.get(v).copied().unwrap_or([0; 6]),
            ),
            None => {
                s.cont()?;
                return Ok(());
            }
        };
        if run == Run::EachLeaderResult {
            let lr = leader_ret.unwrap_or(ret);
            if !is_err(lr) {
                let var = self.var(si, v);
                for o in &outs {
                    if let Err(e) = memio::write_out(&mut var.mem, &s, &args, o) {
                        let _ = s.cont();
                        self.diverge(si, "result", vec![v], &[], format!("variant {v}: {e}"));
                        return Ok(());
                    }
                }
            }
            self.put_back_args(si, v, &mut s, Some(lr))?;
        } else {
            self.put_back_args(si, v, &mut s, None)?;
        }
        s.cont()?;
        self.close_one(si);
        Ok(())
    }

    /// A follower takes a placeholder fd (an open of /dev/null) where the leader created one.
    fn placeholder(
        &mut self,
        si: usize,
        v: usize,
        leader_args: &[u64; 6],
        sysno: Option<Sysno>,
    ) -> Result<(), MveeError> {
        let cloexec = match sysno {
            Some(Sysno::open) => leader_args[1] & O_CLOEXEC,
            Some(Sysno::openat) => leader_args[2] & O_CLOEXEC,
            Some(Sysno::accept4) => leader_args[3] & O_CLOEXEC,
            Some(Sysno::openat2) => O_CLOEXEC & self.openat2_flags(si, v),
            _ => 0,
        };
        self.rerun_with(si, v, |r| {
            r.0.orig_rax = Sysno::openat.id() as u64;
            r.0.rdi = AT_FDCWD as u64;
            r.0.rsi = page::DEVNULL;
            r.0.rdx = cloexec;
            r.0.r10 = 0;
        })
    }

    fn openat2_flags(&mut self, si: usize, v: usize) -> u64 {
        let var = &mut self.sets[si].vars[v];
        match &var.st {
            St::AwaitLeader(s, e) | St::AtCall(s, e) => var.mem.read_u64(s, e.args[2]).unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether an fd the leader opened is one every variant opens itself.
    fn classify_open(&self, s: &Stopped, sysno: Option<Sysno>, args: &[u64; 6], fd: i64) -> Kind {
        let flags = match sysno {
            Some(Sysno::open) => args[1],
            Some(Sysno::openat) => args[2],
            Some(Sysno::openat2) => {
                let mut b = [0u8; 8];
                if s.read_memory(args[2], &mut b).is_err() {
                    return Kind::Leader;
                }
                u64::from_le_bytes(b)
            }
            _ => return Kind::Leader,
        };
        if flags & O_ACCMODE != 0
            || flags & (O_CREAT | O_TRUNC) != 0
            || flags & O_TMPFILE == O_TMPFILE
        {
            return Kind::Leader;
        }
        let link = format!("/proc/{}/fd/{fd}", s.tid());
        match std::fs::metadata(&link) {
            Ok(m) if m.is_file() || m.is_dir() => {
                let own_proc =
                    std::fs::read_link(&link).is_ok_and(|p| p.starts_with("/proc/") && m.is_file());
                if own_proc { Kind::Volatile } else { Kind::Each }
            }
            _ => Kind::Leader,
        }
    }

    /// Keeps the logical process's fd kinds in step with the leader's call.
    #[allow(clippy::too_many_arguments)]
    fn book_fds(
        &mut self,
        si: usize,
        sysno: Option<Sysno>,
        spec: &Spec,
        args: &[u64; 6],
        ret: i64,
        open_kind: Option<Kind>,
        s: &Stopped,
    ) {
        if is_err(ret) {
            return;
        }
        let Some(sn) = sysno else { return };
        let lp = self.sets[si].lproc;
        let old_kind = |fds: &HashMap<i32, Kind>, fd: u64| {
            fds.get(&(fd as i32)).copied().unwrap_or(Kind::Each)
        };
        let fds = &mut self.lprocs[lp].fds;
        match sn {
            Sysno::close => {
                fds.remove(&(args[0] as i32));
            }
            Sysno::dup | Sysno::dup2 | Sysno::dup3 => {
                let k = old_kind(fds, args[0]);
                fds.insert(ret as i32, k);
            }
            Sysno::fcntl if matches!(args[1], F_DUPFD | F_DUPFD_CLOEXEC) => {
                let k = old_kind(fds, args[0]);
                fds.insert(ret as i32, k);
            }
            Sysno::close_range => {
                let pid = self.sets[si].vars[0].pid;
                if let Some(open) = open_fds(pid) {
                    self.lprocs[lp].fds.retain(|fd, _| open.contains(fd));
                }
            }
            _ => match spec.new_fd {
                NewFd::Ret => {
                    let k = open_kind.unwrap_or(match sn {
                        Sysno::eventfd
                        | Sysno::eventfd2
                        | Sysno::memfd_create
                        | Sysno::epoll_create
                        | Sysno::epoll_create1
                        | Sysno::pidfd_open => Kind::Each,
                        _ => Kind::Leader,
                    });
                    fds.insert(ret as i32, k);
                }
                NewFd::Pair(n) => {
                    let mut b = [0u8; 8];
                    if s.read_memory(args[n as usize], &mut b).is_ok() {
                        for fd in [&b[..4], &b[4..]] {
                            let fd = i32::from_le_bytes([fd[0], fd[1], fd[2], fd[3]]);
                            fds.insert(fd, Kind::Leader);
                        }
                    }
                }
                NewFd::No => {}
            },
        }
    }

    // ---- process creation ----

    fn on_event(
        &mut self,
        si: usize,
        v: usize,
        s: Stopped,
        e: vigil_tracee::Event,
    ) -> Result<(), MveeError> {
        use vigil_tracee::Event as E;
        match e {
            E::Fork { child } | E::Vfork { child } | E::Clone { child } => {
                if v == 0 {
                    self.journal.child(&s)?;
                }
                if let Some(c) = &mut self.sets[si].call {
                    c.children[v] = Some(child);
                    // Some members have their child and others not yet: bounded like a
                    // rendezvous.
                    if c.children.iter().any(|x| x.is_none())
                        && self.sets[si].waiting_since.is_none()
                    {
                        self.sets[si].waiting_since = Some(Instant::now());
                    }
                }
                s.syscall()?;
                self.try_make_child_set(si)?;
                self.flush_spawn_parents(si)
            }
            E::Exec { .. } => {
                if v == 0 {
                    self.journal.exec(&s)?;
                }
                s.syscall()?;
                Ok(())
            }
            E::VforkDone { .. } => {
                s.syscall()?;
                Ok(())
            }
            _ => {
                s.cont()?;
                Ok(())
            }
        }
    }

    /// Followers' fork exits that waited for the leader's child pid.
    fn flush_spawn_parents(&mut self, si: usize) -> Result<(), MveeError> {
        if self.sets[si]
            .call
            .as_ref()
            .is_none_or(|c| c.children[0].is_none())
        {
            return Ok(());
        }
        for v in 1..self.n {
            if let St::ExitAwait(..) = self.sets[si].vars[v].st {
                let St::ExitAwait(s, ret) =
                    std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
                else {
                    continue;
                };
                self.finish_spawn_parent(si, v, s, ret)?;
            }
        }
        Ok(())
    }

    fn finish_spawn_parent(
        &mut self,
        si: usize,
        v: usize,
        mut s: Stopped,
        ret: i64,
    ) -> Result<(), MveeError> {
        let (leader_child, flags, ptid) = match &self.sets[si].call {
            Some(c) => (c.children[0], c.clone_flags, c.settid[v].0),
            None => (None, 0, 0),
        };
        if ret > 0
            && let Some(lc) = leader_child
        {
            let mut r = s.regs()?;
            r.0.rax = lc as u64;
            s.set_regs(&r)?;
            if flags & CLONE_PARENT_SETTID != 0 && ptid != 0 {
                let _ = s.write_memory(ptid, &lc.to_le_bytes());
            }
        }
        s.cont()?;
        self.close_one_spawn(si)
    }

    /// A member's fork was interrupted by a signal: the kernel makes the call again once the
    /// signal is handled; the call stays open for it (see `on_call`).
    fn spawn_restarts(&mut self, si: usize, v: usize, s: Stopped) -> Result<(), MveeError> {
        if let Some(c) = &mut self.sets[si].call {
            c.restarting[v] = true;
        }
        s.cont()?;
        Ok(())
    }

    fn close_one_spawn(&mut self, si: usize) -> Result<(), MveeError> {
        // The call ends once every parent is past it and the children's set exists.
        if let Some(c) = &mut self.sets[si].call {
            c.open = c.open.saturating_sub(1);
            if c.open == 0 && c.children.iter().all(|x| x.is_some()) {
                self.sets[si].call = None;
                self.try_rendezvous(si)?;
            }
        }
        Ok(())
    }

    fn try_make_child_set(&mut self, si: usize) -> Result<(), MveeError> {
        let Some(c) = &self.sets[si].call else {
            return Ok(());
        };
        if !c.children.iter().all(|x| x.is_some()) {
            return Ok(());
        }
        let kids: Vec<i32> = c.children.iter().flatten().copied().collect();
        if kids.iter().any(|k| self.by_tid.contains_key(k)) {
            return Ok(());
        }
        let flags = c.clone_flags;
        let thread = c.id.canonical() != Some(Sysno::fork)
            && c.id.canonical() != Some(Sysno::vfork)
            && flags & CLONE_THREAD != 0;
        let settid = c.settid.clone();
        let parent = &self.sets[si];
        let lproc = if thread {
            parent.lproc
        } else {
            // A new process starts with a copy of its parent's table (CLONE_FILES without
            // CLONE_THREAD, a shared table between processes, is treated as a copy).
            let fds = self.lprocs[parent.lproc].fds.clone();
            let epoll = self.lprocs[parent.lproc].epoll.clone();
            self.lprocs.push(LProc {
                pids: kids.clone(),
                fds,
                epoll,
            });
            self.lprocs.len() - 1
        };
        let pids: Vec<i32> = if thread {
            parent.vars.iter().map(|x| x.pid).collect()
        } else {
            kids.clone()
        };
        let new = self.sets.len();
        let mut vars = Vec::new();
        for (v, &k) in kids.iter().enumerate() {
            self.by_tid.insert(k, (new, v));
            let first = self.orphans.remove(&k);
            vars.push(Var::new(k, pids[v], St::Fresh(first)));
            self.virt.insert(k, kids[0]);
        }
        self.vmap.insert(kids[0], kids.clone());
        self.sets[si].waiting_since = None;
        self.sets.push(Set {
            vars,
            lproc,
            call: None,
            sync: None,
            history: VecDeque::new(),
            waiting_since: None,
            alive: true,
        });
        self.stats.sets += 1;
        // Child-tid words the kernel wrote hold the real tid: the leader's goes there once
        // the children are stopped (try_start).
        self.pending_ctid.push((new, settid, flags));
        self.try_start(new)
    }

    /// A new set starts once every member's first stop is in.
    fn try_start(&mut self, si: usize) -> Result<(), MveeError> {
        if !self.sets[si]
            .vars
            .iter()
            .all(|x| matches!(x.st, St::Fresh(Some(_))))
        {
            return Ok(());
        }
        let leader_tid = self.sets[si].vars[0].tid;
        if let Some(i) = self.pending_ctid.iter().position(|p| p.0 == si) {
            let (_, settid, flags) = self.pending_ctid.remove(i);
            if flags & CLONE_CHILD_SETTID != 0 {
                for (v, &(_, ctid)) in settid.iter().enumerate().skip(1) {
                    if let St::Fresh(Some(s)) = &mut self.sets[si].vars[v].st
                        && ctid != 0
                    {
                        let _ = s.write_memory(ctid, &leader_tid.to_le_bytes());
                    }
                }
            }
        }
        for v in 0..self.n {
            if let St::Fresh(Some(s)) =
                std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
            {
                s.cont()?;
            }
        }
        Ok(())
    }

    // ---- exec ----

    fn on_exec_exit(&mut self, si: usize, v: usize, s: Stopped, ret: i64) -> Result<(), MveeError> {
        if v == 0 {
            self.journal.exit(&s, ret)?;
        }
        if let Some(c) = &mut self.sets[si].call {
            c.exec_ret[v] = Some(ret);
        }
        self.var(si, v).st = St::Execed(s);
        let Some(c) = &self.sets[si].call else {
            return Ok(());
        };
        if c.exec_ret.iter().any(|r| r.is_none()) {
            return Ok(());
        }
        let rets: Vec<i64> = c.exec_ret.iter().map(|r| r.unwrap_or(0)).collect();
        self.sets[si].call = None;
        if rets.iter().any(|&r| (r == 0) != (rets[0] == 0)) {
            let differ = (1..self.n)
                .filter(|&i| (rets[i] == 0) != (rets[0] == 0))
                .collect();
            self.diverge(
                si,
                "result",
                differ,
                &[],
                format!("execve returned {rets:?} in the variants"),
            );
            return Ok(());
        }
        if rets[0] != 0 {
            for v in 0..self.n {
                if let St::Execed(s) = std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
                {
                    s.cont()?;
                }
            }
            return Ok(());
        }
        let pid = self.sets[si].vars[0].pid;
        let lp = self.sets[si].lproc;
        if let Some(open) = open_fds(pid) {
            self.lprocs[lp].fds.retain(|fd, _| open.contains(fd));
        }
        self.setup_images(si)
    }

    /// Sets up every member's fresh image (they are at execve's exit stop) and resumes them.
    fn setup_images(&mut self, si: usize) -> Result<(), MveeError> {
        let mut random = None;
        for v in 0..self.n {
            let shift = if self.cfg.diversify_stack {
                v as u64 * STACK_STEP
            } else {
                0
            };
            let nap = self.nap_ns;
            let St::Execed(mut s) = std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
            else {
                continue;
            };
            let image = setup::fresh_image(&mut s, &mut self.tracer, nap, shift)?;
            if let Some(at) = image.at_random {
                if v == 0 {
                    random = Some(setup::read_random(&s, at)?);
                } else if let Some(b) = &random {
                    setup::write_random(&mut s, at, b)?;
                }
            }
            self.sets[si].vars[v].st = St::Execed(s);
        }
        for v in 0..self.n {
            if let St::Execed(s) = std::mem::replace(&mut self.sets[si].vars[v].st, St::Running) {
                s.cont()?;
            }
        }
        Ok(())
    }

    // ---- rdtsc ----

    fn do_tsc(&mut self, si: usize) -> Result<(), MveeError> {
        self.stats.rdtsc += 1;
        let mut aux = 0u32;
        // SAFETY: rdtscp has no preconditions on x86-64 (this crate is x86-64 only).
        let tsc = unsafe { core::arch::x86_64::__rdtscp(&mut aux) };
        for v in 0..self.n {
            let St::AtTsc(mut s, len) =
                std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
            else {
                continue;
            };
            let mut r = s.regs()?;
            r.0.rax = tsc & 0xffff_ffff;
            r.0.rdx = tsc >> 32;
            if len == 3 {
                r.0.rcx = aux as u64;
            }
            r.0.rip += len as u64;
            s.set_regs(&r)?;
            s.cont()?;
        }
        self.sets[si].remember(Past::Tsc);
        Ok(())
    }

    // ---- signals ----

    fn on_signal(
        &mut self,
        si: usize,
        v: usize,
        mut s: Stopped,
        sig: i32,
        mut info: SigInfo,
    ) -> Result<(), MveeError> {
        // A member in the wait loop that got the signal being synchronised.
        if let Some(sync) = &self.sets[si].sync
            && sync.sig == sig
            && matches!(self.sets[si].vars[v].st, St::InLoop)
        {
            return self.deliver_synced(si, v, s, info);
        }
        // rdtsc / rdtscp.
        if sig == libc::SIGSEGV && info.code() == SI_KERNEL {
            let ip = s.regs()?.ip();
            let mut b = [0u8; 3];
            if s.read_memory(ip, &mut b).is_ok() {
                let len = if b[..2] == [0x0f, 0x31] {
                    Some(2)
                } else if b == [0x0f, 0x01, 0xf9] {
                    Some(3)
                } else {
                    None
                };
                if let Some(len) = len {
                    self.var(si, v).st = St::AtTsc(s, len);
                    return self.try_rendezvous(si);
                }
            }
        }
        let synchronous = info.from_kernel()
            && matches!(
                sig,
                libc::SIGSEGV
                    | libc::SIGBUS
                    | libc::SIGILL
                    | libc::SIGFPE
                    | libc::SIGTRAP
                    | libc::SIGSYS
            );
        let handled = caught(s.tid()) & sig_bit(sig) != 0;
        if synchronous || !handled {
            self.stats.signals_immediate += 1;
            self.virtualise(&mut s, &mut info);
            if v == 0 {
                self.journal.signal(&s)?;
            }
            s.resume(vigil_tracee::Resume::Cont, Some(sig))?;
            return Ok(());
        }
        // Held.
        let regs = s.regs()?;
        let in_call =
            (regs.0.orig_rax as i64) >= 0 && matches!(regs.0.rax as i64, -516..=-512 | -4);
        // A standard signal held twice is one (the kernel merges them too): variants that
        // saw two SIGCHLDs apart and one that saw them merged stay in step.
        let var = self.var(si, v);
        if sig >= libc::SIGRTMIN() || !var.held.iter().any(|h| h.sig == sig) {
            var.held.push(Held {
                sig,
                info,
                since: Instant::now(),
            });
        }
        // In a call the leader makes alone (the others wait for its result at their entry
        // stops, where no signal reaches them): the leader goes back into it at once (the
        // kernel makes it again) and the signal waits for the next rendezvous.
        let alone = self.sets[si].call.as_ref().is_some_and(|c| {
            matches!(
                c.run,
                Run::Leader | Run::Open | Run::MapCopy | Run::MapPlaced
            )
        });
        if in_call && (alone || self.sets[si].sync.is_some()) {
            self.var(si, v).resumes = true;
            s.cont()?;
            return Ok(());
        }
        if in_call {
            self.var(si, v).st = St::SigHeld(s);
            if self.sets[si].waiting_since.is_none() {
                self.sets[si].waiting_since = Some(Instant::now());
            }
            return self.try_deliver_in_call(si);
        }
        s.cont()?;
        Ok(())
    }

    /// Members holding the same signal inside a blocking call all take it there.
    fn try_deliver_in_call(&mut self, si: usize) -> Result<(), MveeError> {
        let set = &self.sets[si];
        if !set.vars.iter().all(|x| matches!(x.st, St::SigHeld(_))) {
            return Ok(());
        }
        let Some(sig) = set.vars[0]
            .held
            .iter()
            .map(|h| h.sig)
            .find(|&g| set.vars.iter().all(|x| x.held.iter().any(|h| h.sig == g)))
        else {
            return Ok(());
        };
        let mut since = Instant::now();
        for v in 0..self.n {
            let var = &mut self.sets[si].vars[v];
            let i = var.held.iter().position(|h| h.sig == sig).unwrap_or(0);
            let h = var.held.remove(i);
            since = since.min(h.since);
            let St::SigHeld(mut s) = std::mem::replace(&mut var.st, St::Running) else {
                continue;
            };
            let mut info = h.info;
            self.virtualise(&mut s, &mut info);
            if v == 0 {
                self.journal.signal(&s)?;
            }
            s.resume(vigil_tracee::Resume::Cont, Some(sig))?;
        }
        // Others still held here go back into their calls.
        self.release_held_in_call(si)?;
        self.sets[si].waiting_since = None;
        self.stats.signals_synced += 1;
        self.stats
            .signal_delays_ns
            .push(since.elapsed().as_nanos() as u64);
        Ok(())
    }

    /// Members held at a signal stop inside a call go back into it (keeping the signal held)
    /// once another member has left the call.
    fn release_held_in_call(&mut self, si: usize) -> Result<(), MveeError> {
        let left = self.sets[si]
            .vars
            .iter()
            .any(|x| matches!(x.st, St::AtCall(..) | St::AtTsc(..)));
        if !left {
            return Ok(());
        }
        for v in 0..self.n {
            if let St::SigHeld(_) = self.sets[si].vars[v].st
                && let St::SigHeld(s) =
                    std::mem::replace(&mut self.sets[si].vars[v].st, St::Running)
            {
                // Back into its call, which the kernel makes again (see `resumes`).
                self.sets[si].vars[v].resumes = true;
                s.cont()?;
            }
        }
        Ok(())
    }

    /// A signal held by at least half of the members and blocked by none of them at this
    /// rendezvous (a blocked one waits for a point where the program takes it).
    fn quorum(&self, si: usize) -> Option<i32> {
        let set = &self.sets[si];
        if set.vars.iter().all(|x| x.held.is_empty()) {
            return None;
        }
        let mut blocked = 0u64;
        for x in &set.vars {
            if let St::AtCall(s, _) = &x.st {
                blocked |= s.sigmask().unwrap_or(u64::MAX);
            }
        }
        let mut sigs: Vec<i32> = set
            .vars
            .iter()
            .flat_map(|x| x.held.iter().map(|h| h.sig))
            .collect();
        sigs.sort_unstable();
        sigs.dedup();
        sigs.into_iter().find(|&g| {
            if blocked & sig_bit(g) != 0 {
                return false;
            }
            let have = set
                .vars
                .iter()
                .filter(|x| x.held.iter().any(|h| h.sig == g))
                .count();
            have * 2 >= self.n
        })
    }

    fn start_sync(&mut self, si: usize, sig: i32) -> Result<(), MveeError> {
        let mut sync = Sync {
            sig,
            saved: vec![None; self.n],
            info: vec![None; self.n],
            delivered: vec![false; self.n],
            since: Instant::now(),
        };
        for v in 0..self.n {
            let var = &mut self.sets[si].vars[v];
            if let Some(i) = var.held.iter().position(|h| h.sig == sig) {
                let h = var.held.remove(i);
                sync.info[v] = Some(h.info);
                sync.since = sync.since.min(h.since);
            }
            let St::AtCall(mut s, _) = std::mem::replace(&mut var.st, St::InLoop) else {
                continue;
            };
            let mut r = s.regs()?;
            let mut again = r;
            again.0.rip -= 2;
            again.0.rax = r.0.orig_rax;
            sync.saved[v] = Some(again);
            r.0.orig_rax = u64::MAX;
            r.0.rip = page::LOOP;
            s.set_regs(&r)?;
            s.cont()?;
        }
        // SIGCHLD says "a child changed state", which wait4 then tells in detail (the
        // leader's answer, in every variant): one variant may have seen two exits as one
        // signal and another as two. Every variant gets it now, with the leader's (or a
        // holder's) siginfo, rather than waiting for one that may never come.
        let notify_only = sig == libc::SIGCHLD;
        let any_info = sync.info.iter().flatten().next().copied();
        for v in 0..self.n {
            if notify_only && sync.info[v].is_none() {
                sync.info[v] = any_info;
            }
            if sync.info[v].is_some() {
                let x = &self.sets[si].vars[v];
                // SAFETY: a signal to one of our variant threads.
                unsafe { libc::syscall(libc::SYS_tgkill, x.pid, x.tid, sig) };
            }
        }
        self.sets[si].sync = Some(sync);
        self.sets[si].waiting_since = Some(Instant::now());
        Ok(())
    }

    fn deliver_synced(
        &mut self,
        si: usize,
        v: usize,
        mut s: Stopped,
        natural: SigInfo,
    ) -> Result<(), MveeError> {
        let Some(sync) = &mut self.sets[si].sync else {
            return Ok(());
        };
        let sig = sync.sig;
        let regs = sync.saved[v].take();
        let mut info = sync.info[v].take().unwrap_or(natural);
        sync.delivered[v] = true;
        let all = sync.delivered.iter().all(|&d| d);
        let since = sync.since;
        if let Some(r) = regs {
            s.set_regs(&r)?;
        }
        self.virtualise(&mut s, &mut info);
        if v == 0 {
            self.journal.signal(&s)?;
        }
        self.sets[si].vars[v].st = St::Running;
        s.resume(vigil_tracee::Resume::Cont, Some(sig))?;
        if all {
            self.sets[si].sync = None;
            self.sets[si].waiting_since = None;
            self.stats.signals_synced += 1;
            self.stats
                .signal_delays_ns
                .push(since.elapsed().as_nanos() as u64);
            self.sets[si].remember(Past::Signal(sig));
        }
        Ok(())
    }

    /// The sender of a signal as the program knows it (the leader's pid).
    fn virtualise(&self, s: &mut Stopped, info: &mut SigInfo) {
        if let Some((pid, _)) = info.sender()
            && let Some(&vp) = self.virt.get(&pid)
        {
            info.set_sender_pid(vp);
        }
        // Always: a held signal is delivered with the siginfo it came with, not that of the
        // monitor's tgkill that brought it back.
        let _ = s.set_siginfo(info);
    }

    // ---- timeouts and divergence ----

    fn check_timeouts(&mut self) -> Result<(), MveeError> {
        let now = Instant::now();
        for si in 0..self.sets.len() {
            let set = &self.sets[si];
            if !set.alive {
                continue;
            }
            let Some(since) = set.waiting_since else {
                continue;
            };
            let bound =
                if set.sync.is_some() || set.vars.iter().any(|x| matches!(x.st, St::SigHeld(_))) {
                    self.cfg.signal_wait + self.cfg.timeout
                } else {
                    self.cfg.timeout
                };
            if now.duration_since(since) < bound {
                continue;
            }
            if let Some(c) = &set.call
                && c.run == Run::Spawn
                && c.children.iter().any(|x| x.is_none())
            {
                let missing: Vec<usize> =
                    (0..self.n).filter(|&v| c.children[v].is_none()).collect();
                let names = missing
                    .iter()
                    .map(|&v| format!("variant {v} (pid {})", set.vars[v].pid))
                    .collect::<Vec<_>>()
                    .join(", ");
                let detail = format!(
                    "{names} made no child within {bound:?} of the others' {}",
                    call_name(c.id)
                );
                self.diverge(si, "timeout", missing, &[], detail);
                return Ok(());
            }
            let stragglers: Vec<usize> = (0..self.n)
                .filter(|&v| {
                    !set.vars[v].st.arrived()
                        || matches!(set.vars[v].st, St::SigHeld(_) | St::InLoop)
                })
                .filter(|&v| !matches!(set.vars[v].st, St::SigHeld(_)) || set.sync.is_none())
                .collect();
            let names = stragglers
                .iter()
                .map(|&v| {
                    format!(
                        "variant {v} (pid {}, {})",
                        set.vars[v].tid,
                        set.vars[v].st.name()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let what = if set.vars.iter().any(|x| matches!(x.st, St::SigHeld(_))) {
                "signal"
            } else {
                "timeout"
            };
            self.diverge(
                si,
                what,
                stragglers,
                &[],
                format!("no rendezvous within {:?}: {names} did not arrive", bound),
            );
            return Ok(());
        }
        Ok(())
    }

    /// A `call` divergence: the members are at different calls (`entries`, one each).
    fn diverge_calls(&mut self, si: usize, entries: &[SyscallEntry]) {
        let id = id_of(&entries[0]);
        let differ = (1..self.n).filter(|&i| id_of(&entries[i]) != id).collect();
        let detail = (0..self.n)
            .map(|i| format!("variant {i}: {}", call_name(id_of(&entries[i]))))
            .collect::<Vec<_>>()
            .join(", ");
        self.diverge(si, "call", differ, &[], detail);
    }

    /// Records a divergence (the first one wins); the loop then kills everything.
    fn diverge(
        &mut self,
        si: usize,
        what: &str,
        differ: Vec<usize>,
        fields: &[String],
        detail: String,
    ) {
        if self.diverged.is_some() {
            return;
        }
        let set = &mut self.sets[si];
        let leader_call = match &set.vars[0].st {
            St::AtCall(_, e) | St::AwaitLeader(_, e) => Some(id_of(e)),
            _ => set.call.as_ref().map(|c| c.id),
        };
        let mut variants = Vec::new();
        let mut side = String::new();
        for (v, var) in set.vars.iter_mut().enumerate() {
            let (call, args, text) = match &var.st {
                St::AtCall(s, e) | St::AwaitLeader(s, e) => {
                    let id = id_of(e);
                    let (vals, text) = describe_args(&mut var.mem, s, id, e);
                    (Some(id), vals, format!("{}({text})", call_name(id)))
                }
                St::AtTsc(_, len) => (
                    None,
                    Args::new(),
                    if *len == 3 {
                        "rdtscp".into()
                    } else {
                        "rdtsc".into()
                    },
                ),
                St::Gone(e) => (None, Args::new(), e.to_string()),
                other => (
                    None,
                    Args::new(),
                    match var.last {
                        Some(e) => format!("{} (last call {})", other.name(), call_name(id_of(&e))),
                        None => other.name().to_string(),
                    },
                ),
            };
            let _ = writeln!(
                side,
                "  {} variant {v} (pid {}, tid {}): {text}",
                if differ.contains(&v) { "≠" } else { " " },
                var.pid,
                var.tid
            );
            variants.push(VariantState {
                index: v as u32,
                pid: var.pid as u32,
                tid: var.tid as u32,
                diverged: differ.contains(&v),
                call,
                args,
                detail: Str::from(text.as_str()),
            });
        }
        let call_text = leader_call.map(call_name).unwrap_or_else(|| "-".into());
        let mut text = format!(
            "vigil: divergence: {what} at {call_text} in process {} ({} variants): {detail}\n",
            set.vars[0].pid, self.n
        );
        text.push_str(&side);
        if !set.history.is_empty() {
            text.push_str("  recent calls (every variant agreed):\n");
            for h in &set.history {
                let line = match h {
                    Past::Call(id, args) => {
                        format!("{}({})", call_name(*id), short_args(args, &spec::spec(*id)))
                    }
                    Past::Tsc => "rdtsc".into(),
                    Past::Signal(sig) => format!("<{} delivered>", sig_name(*sig)),
                };
                let _ = writeln!(text, "    {line}");
            }
        }
        let divergence = Divergence {
            what: Str::from(what),
            call: leader_call,
            fields: fields
                .iter()
                .map(|f| Str::from(f.as_str()))
                .collect::<Vec<_>>()
                .into(),
            detail: Str::from(detail.as_str()),
            variants: Arc::from(variants),
        };
        self.diverged = Some(Report {
            divergence,
            pid: set.vars[0].pid,
            tid: set.vars[0].tid,
            text,
            seq: None,
        });
    }
}

/// Whether a call that fails with EPIPE raised SIGPIPE (writes, and sends without
/// MSG_NOSIGNAL).
fn raises_sigpipe(sysno: Option<Sysno>, args: &[u64; 6]) -> bool {
    const MSG_NOSIGNAL: u64 = libc::MSG_NOSIGNAL as u64;
    match sysno {
        Some(Sysno::sendto | Sysno::sendmsg | Sysno::sendmmsg) => {
            let flags = if sysno == Some(Sysno::sendto) {
                args[3]
            } else {
                args[2]
            };
            flags & MSG_NOSIGNAL == 0
        }
        Some(
            Sysno::write
            | Sysno::writev
            | Sysno::pwrite64
            | Sysno::pwritev
            | Sysno::pwritev2
            | Sysno::sendfile
            | Sysno::splice
            | Sysno::tee
            | Sysno::copy_file_range,
        ) => true,
        _ => false,
    }
}

/// Calls that may be made by some variants and not others without any effect outside the
/// variant, when the variants' calls disagree: getrandom (a generator seeded from an address
/// rejects a draw in one variant only: gnulib's mkstemp) and the calls that manage the
/// variant's own memory (an allocator or a garbage collector that hashes addresses grows its
/// heap at other moments: gcc's cc1) — brk, anonymous mmap, munmap, madvise, mremap, and
/// mprotect that does not make memory executable (making memory executable is an exploit's
/// step: it stays compared).
fn loose(e: &SyscallEntry) -> bool {
    if e.abi != vigil_tracee::Abi::X86_64 {
        return false;
    }
    let Some(s) = Sysno::new(e.nr as usize) else {
        return false;
    };
    match s {
        Sysno::getrandom | Sysno::brk | Sysno::munmap | Sysno::madvise | Sysno::mremap => true,
        Sysno::mmap => e.args[3] & MAP_ANONYMOUS != 0 && e.args[2] & libc::PROT_EXEC as u64 == 0,
        Sysno::mprotect => e.args[2] & libc::PROT_EXEC as u64 == 0,
        _ => false,
    }
}

/// Whether a call creates a new name and fails if it exists (mkstemp's open with O_CREAT |
/// O_EXCL, mkdtemp's mkdir): where programs put names they generate to be unique.
fn creates_exclusively(sysno: Option<Sysno>, args: &[u64; 6]) -> bool {
    const O_EXCL: u64 = libc::O_EXCL as u64;
    let excl = |flags: u64| flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
    match sysno {
        Some(Sysno::open) => excl(args[1]),
        Some(Sysno::openat) => excl(args[2]),
        Some(Sysno::mkdir | Sysno::mkdirat) => true,
        _ => false,
    }
}

/// Whether two paths are the same generated unique name: equal but for the last component,
/// where they differ only at letters and digits, all within one run of at least six of them
/// (a mkstemp template's XXXXXX), at the same length.
fn is_generated_name(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a == b {
        return false;
    }
    let last = a.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    if a[..last] != b[..last] {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let first = (last..a.len()).find(|&i| a[i] != b[i]);
    let end = (last..a.len()).rfind(|&i| a[i] != b[i]);
    let (Some(first), Some(end)) = (first, end) else {
        return false;
    };
    if !(first..=end).all(|i| alnum(a[i]) && alnum(b[i])) {
        return false;
    }
    // The run of letters and digits around the difference, in the leader's name.
    let mut lo = first;
    while lo > last && alnum(a[lo - 1]) {
        lo -= 1;
    }
    let mut hi = end + 1;
    while hi < a.len() && alnum(a[hi]) {
        hi += 1;
    }
    hi - lo >= 6
}

/// Whether a call's result says the kernel will make it again once a signal is handled
/// (-ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK).
fn is_restart(ret: i64) -> bool {
    (-516..=-512).contains(&ret)
}

/// Whether the leader's result of the set's call was an error.
fn call_failed(c: &Option<&Call>) -> bool {
    c.and_then(|c| c.leader_ret).is_some_and(is_err)
}

fn call_ref(c: &Option<Call>) -> Option<&Call> {
    c.as_ref()
}

/// The fds an SCM_RIGHTS control message carries, from recvmsg's copied output (memio's
/// msghdr encoding: name length and name, control length and control, then the data).
fn scm_rights(out: &[u8]) -> Vec<i32> {
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(out.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let Some(namelen) = u32_at(0) else {
        return Vec::new();
    };
    let at = 4 + namelen;
    let Some(clen) = u32_at(at) else {
        return Vec::new();
    };
    let Some(control) = out.get(at + 4..at + 4 + clen) else {
        return Vec::new();
    };
    let mut fds = Vec::new();
    let mut off = 0usize;
    while off + 16 <= control.len() {
        let len = u64::from_le_bytes(control[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
        let level = i32::from_le_bytes(control[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = i32::from_le_bytes(control[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        if len < 16 || off + len > control.len() {
            break;
        }
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            for c in control[off + 16..off + len].chunks_exact(4) {
                fds.push(i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        off += len.div_ceil(8) * 8;
    }
    fds
}

/// Never reached: try_rendezvous checked every member is at a call.
fn unreachable_entry() -> SyscallEntry {
    SyscallEntry {
        nr: u64::MAX,
        args: [0; 6],
        abi: vigil_tracee::Abi::X86_64,
        ip: 0,
        sp: 0,
    }
}

/// rt_sigaction's `struct sigaction` compared on what means the same in every variant: the
/// handler's kind (default, ignore, a function), the flags and the mask; not the addresses.
fn normalise_sigaction(c: &mut Content) {
    if let Content::Bytes(b) = c
        && b.len() >= 8
    {
        let h = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let kind: u64 = if h <= 1 { h } else { 2 };
        b[..8].copy_from_slice(&kind.to_le_bytes());
        if b.len() >= 24 {
            b[16..24].fill(0);
        }
    }
}

fn show_content(c: &Content) -> String {
    match c {
        Content::Null => "NULL".into(),
        Content::Unreadable => "unreadable memory".into(),
        Content::Bytes(b) => show_bytes(b),
    }
}

/// Two contents shown around where they first differ.
fn show_difference(a: &Content, b: &Content) -> (String, String) {
    if let (Content::Bytes(x), Content::Bytes(y)) = (a, b) {
        let at = x
            .iter()
            .zip(y.iter())
            .position(|(p, q)| p != q)
            .unwrap_or(x.len().min(y.len()));
        if at > 32 {
            let from = at - 16;
            let show = |v: &[u8]| {
                format!(
                    "...{} (at byte {from} of {})",
                    show_bytes(&v[from.min(v.len())..]),
                    v.len()
                )
            };
            return (show(x), show(y));
        }
    }
    (show_content(a), show_content(b))
}

fn show_bytes(b: &[u8]) -> String {
    let cut = b.len() > 64;
    let shown = &b[..b.len().min(64)];
    let mut s = String::from("\"");
    for &c in shown {
        match c {
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    if cut {
        let _ = write!(s, "... ({} bytes)", b.len());
    }
    s
}

fn short_args(args: &[u64; 6], spec: &Spec) -> String {
    spec.args
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            Arg::Ptr => {
                if args[i] == 0 {
                    "NULL".into()
                } else {
                    "ptr".into()
                }
            }
            Arg::Ignore => "_".into(),
            Arg::Fd => format!("{}", args[i] as i32),
            _ => format!("{}", args[i] as i64),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A member's arguments as compared: values for the log and a line for the report.
fn describe_args(mem: &mut Memory, s: &Stopped, id: SyscallId, e: &SyscallEntry) -> (Args, String) {
    let spec = spec::spec(id);
    let sig = id.signature();
    let mut vals = Args::new();
    let mut parts = Vec::new();
    for (i, k) in spec.args.iter().enumerate() {
        let name = sig.args.get(i).map(|a| a.name).unwrap_or("arg");
        if let Some(m) = spec.ins.iter().find(|m| m.arg as usize == i) {
            let c = memio::read_in(mem, s, &e.args, m);
            parts.push(format!("{name}={}", show_content(&c)));
            vals.push(match c {
                Content::Bytes(b) if m.len == Len::CStr => Value::Str(Str::from(b.as_slice())),
                Content::Bytes(b) => Value::Bytes(b.into()),
                Content::Null => Value::Uint(0),
                Content::Unreadable => Value::Unreadable(e.args[i]),
            });
            continue;
        }
        let x = e.args[i];
        match k {
            Arg::Ptr => {
                parts.push(format!("{name}={x:#x}"));
                vals.push(Value::Uint(x));
            }
            _ => {
                parts.push(format!("{name}={}", x as i64));
                vals.push(Value::Int(x as i64));
            }
        }
    }
    (vals, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_told_from_other_differences() {
        assert!(is_generated_name(b"/tmp/tacTyPhU4", b"/tmp/tacQoDWLq"));
        assert!(is_generated_name(
            b"/tmp/sortAbC123.tmp",
            b"/tmp/sortXyZ789.tmp"
        ));
        // Another directory, another length, a difference outside the name, too short a run.
        assert!(!is_generated_name(b"/tmp/a/x123456", b"/tmp/b/x123456"));
        assert!(!is_generated_name(b"/tmp/x1234567", b"/tmp/x123456"));
        assert!(!is_generated_name(b"/tmp/ab-1", b"/tmp/ab-2"));
        // The price: an address written into an exclusively created name looks the same (the
        // leader's name is used everywhere, so nothing of the variant's address gets out).
        assert!(is_generated_name(
            b"/tmp/f.0x7ffd16b879ec",
            b"/tmp/f.0x7fff0f3486dc"
        ));
        assert!(!is_generated_name(b"/tmp/same", b"/tmp/same"));
    }

    #[test]
    fn scm_rights_are_read_from_a_copied_msghdr() {
        // name length 0, control of one SCM_RIGHTS message with fds 7 and 9, then data.
        let mut control = Vec::new();
        control.extend(24u64.to_le_bytes());
        control.extend(libc::SOL_SOCKET.to_le_bytes());
        control.extend(libc::SCM_RIGHTS.to_le_bytes());
        control.extend(7i32.to_le_bytes());
        control.extend(9i32.to_le_bytes());
        let mut out = Vec::new();
        out.extend(0u32.to_le_bytes());
        out.extend((control.len() as u32).to_le_bytes());
        out.extend(&control);
        out.extend(b"x");
        assert_eq!(scm_rights(&out), vec![7, 9]);
        // Another kind of control message carries no fds; a cut one is not read past.
        let mut other = out.clone();
        other[8 + 12..8 + 16].copy_from_slice(&2i32.to_le_bytes());
        assert!(scm_rights(&other).is_empty());
        assert!(scm_rights(&out[..20]).is_empty());
    }

    #[test]
    fn sigactions_compare_on_meaning_not_addresses() {
        let act = |handler: u64, flags: u64, restorer: u64, mask: u64| {
            let mut b = Vec::new();
            for w in [handler, flags, restorer, mask] {
                b.extend(w.to_le_bytes());
            }
            let mut c = Content::Bytes(b);
            normalise_sigaction(&mut c);
            c
        };
        // Two handlers at different addresses, restorers too: the same.
        assert_eq!(
            act(0x5555_0000, 4, 0x7f00_1000, 0),
            act(0x5566_0000, 4, 0x7f22_1000, 0)
        );
        // A handler against SIG_IGN, other flags, another mask: different.
        assert_ne!(act(0x5555_0000, 4, 0, 0), act(1, 4, 0, 0));
        assert_ne!(act(0x5555_0000, 4, 0, 0), act(0x5555_0000, 0, 0, 0));
        assert_ne!(act(0, 0, 0, 1), act(0, 0, 0, 2));
    }

    #[test]
    fn differences_are_shown_where_they_start() {
        let a = Content::Bytes([vec![b'a'; 100], b"XYZ".to_vec()].concat());
        let b = Content::Bytes([vec![b'a'; 100], b"QRS".to_vec()].concat());
        let (x, y) = show_difference(&a, &b);
        assert!(x.contains("XYZ") && y.contains("QRS"), "{x} / {y}");
        assert!(x.contains("at byte 84"), "{x}");
    }
}
