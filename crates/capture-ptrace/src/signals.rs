//! Signals that reach vigil itself while it traces a command.
//!
//! vigil shares the traced command's process group and is its parent, so a traced program can
//! signal it: a group signal (`kill(0, SIGTERM)`, the `trap 'kill 0' EXIT` idiom) or one aimed
//! at vigil. Signals aimed at vigil are refused at the syscall (guard.rs); group signals still
//! arrive, so vigil handles every signal that would stop or end it:
//! - sent by a traced process: ignored, and logged as an action (the other members of the
//!   group got it from the kernel, as without vigil);
//! - Ctrl-C, Ctrl-\ and a hangup from the terminal: the command got them too; vigil ignores
//!   them and lets the command decide, then exits with its status. Ctrl-Z (and SIGTTIN/TTOU
//!   from the terminal) stops vigil with its job, so job control works;
//! - SIGINT, SIGQUIT, SIGTERM, SIGHUP sent by anyone else (a supervisor, `kill PID`): passed on
//!   to the traced command while it runs and is still traced, so stopping vigil stops what it
//!   traces — unless the same sender's signal reached the command itself (sent to the whole
//!   process group): then it is not passed on a second time. Once the command has exited and
//!   vigil waits for processes it left running, any of them (the terminal's too) ends the wait;
//!   other signals from outside end vigil as they would have (its tracees with it);
//! - faults of vigil's own (SIGSEGV... raised by the kernel) go to the handler that was there
//!   before (Rust's stack-overflow report) or to the default action.
//!
//! The handlers only touch atomics and make async-signal-safe calls. Which pids are traced is a
//! bitmap over the pid space, set and cleared by the tracer; refused signals are queued in a
//! small ring the tracer drains into action events.

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// The traced command's pid while it runs (0 once it has exited: never signal a pid that may
/// have been reused).
static ROOT: AtomicI32 = AtomicI32::new(0);

/// PID_MAX_LIMIT on 64-bit Linux: every pid fits.
const PID_LIMIT: usize = 1 << 22;
static TRACED: [AtomicU64; PID_LIMIT / 64] = [const { AtomicU64::new(0) }; PID_LIMIT / 64];

/// Marks a task as traced (or no longer).
pub fn set_traced(tid: i32, traced: bool) {
    let Ok(t) = usize::try_from(tid) else { return };
    if t >= PID_LIMIT {
        return;
    }
    let bit = 1u64 << (t % 64);
    if traced {
        TRACED[t / 64].fetch_or(bit, Ordering::Relaxed);
    } else {
        TRACED[t / 64].fetch_and(!bit, Ordering::Relaxed);
    }
}

fn is_traced(pid: i32) -> bool {
    let Ok(t) = usize::try_from(pid) else {
        return false;
    };
    t < PID_LIMIT && TRACED[t / 64].load(Ordering::Relaxed) & (1u64 << (t % 64)) != 0
}

/// The traced command has exited: nothing is forwarded to its pid any more.
pub fn root_gone() {
    ROOT.store(0, Ordering::Relaxed);
}

/// The tracer's thread: signals handled on another thread of vigil wake it (SIGURG), so that a
/// request is acted on at once rather than at the next stop.
static TRACER_TID: AtomicI32 = AtomicI32::new(0);
/// Something for the tracer to look at (a forward, a request to stop waiting, a refusal).
static ATTENTION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a handler left something for the tracer (cleared by `take_attention`).
pub fn attention() -> bool {
    ATTENTION.load(Ordering::Acquire)
}

pub fn take_attention() -> bool {
    ATTENTION.swap(false, Ordering::AcqRel)
}

/// Marks work for the tracer, and wakes it when the signal landed on another thread.
fn notify_tracer() {
    poke(TRACER_TID.load(Ordering::Relaxed));
}

/// Marks work for the tracer running on thread `tid` and interrupts its wait with SIGURG,
/// unless that is the calling thread (then it is not waiting). Async-signal-safe.
fn poke(tid: i32) {
    ATTENTION.store(true, Ordering::Release);
    // SAFETY: getpid, gettid and tgkill are async-signal-safe and take integers.
    unsafe {
        if tid > 0 && libc::syscall(libc::SYS_gettid) as i32 != tid {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGURG);
        }
    }
}

/// SIGURG's handler: it only interrupts the tracer's wait (installed without SA_RESTART).
extern "C" fn on_wake(_: libc::c_int) {}

/// Installs `on_wake` for SIGURG, once for the process and for good: several captures may run
/// at once on different threads (a handler restored by one that ends would leave another's
/// wake-ups ignored: SIGURG's default action is to ignore it).
fn install_wake_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction with a valid handler and no SA_RESTART is valid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_wake as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut());
        }
    });
}

/// Makes sure SIGURG interrupts a wait (the slice timer uses it too).
pub fn ensure_wake_handler() {
    install_wake_handler();
}

/// Wakes the tracer running on thread `tid` (a `StopHandle` of its backend): its wait is
/// interrupted and it looks at what it was asked.
pub fn wake(tid: i32) {
    install_wake_handler();
    poke(tid);
}

/// SIGINT, SIGQUIT, SIGTERM, SIGHUP: the signals that ask a program to end.
fn asks_to_end(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGINT | libc::SIGQUIT | libc::SIGTERM | libc::SIGHUP
    )
}

/// Set when a request to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT) arrives after the command has
/// exited, while vigil waits for processes it left running.
static STOP_WAITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether vigil was asked to stop waiting for what the command left running.
pub fn stop_waiting_requested() -> bool {
    STOP_WAITING.load(Ordering::Relaxed)
}

/// A signal to pass on to the command, (signal << 32 | sender), 0 for none.
static FORWARD: AtomicU64 = AtomicU64::new(0);

/// The signal someone outside the traced tree sent vigil, to pass on to the command: (signal,
/// sender pid).
pub fn take_forward() -> Option<(i32, i32)> {
    let v = FORWARD.swap(0, Ordering::AcqRel);
    (v != 0).then_some(((v >> 32) as i32, v as u32 as i32))
}

/// Signals from traced processes that vigil ignored, (signal << 32 | sender), for the tracer
/// to log. A full ring drops the oldest records but still counts them.
const RING: usize = 64;
static REFUSED: [AtomicU64; RING] = [const { AtomicU64::new(0) }; RING];
static REFUSED_HEAD: AtomicUsize = AtomicUsize::new(0);
static REFUSED_TAIL: AtomicUsize = AtomicUsize::new(0);

fn record_refused(sig: i32, sender: i32) {
    let slot = REFUSED_HEAD.fetch_add(1, Ordering::AcqRel);
    REFUSED[slot % RING].store(
        ((sig as u64) << 32) | (sender as u32 as u64),
        Ordering::Release,
    );
}

/// Signals traced processes sent to vigil since the last call: (signal, sender pid), and how
/// many more were sent than the ring could keep.
pub fn drain_refused() -> (Vec<(i32, i32)>, u64) {
    let head = REFUSED_HEAD.load(Ordering::Acquire);
    let tail = REFUSED_TAIL.swap(head, Ordering::AcqRel);
    if head == tail {
        return (Vec::new(), 0);
    }
    let n = head.wrapping_sub(tail);
    let kept = n.min(RING);
    let out = (head - kept..head)
        .map(|i| {
            let v = REFUSED[i % RING].load(Ordering::Acquire);
            ((v >> 32) as i32, v as u32 as i32)
        })
        .collect();
    (out, (n - kept) as u64)
}

/// Signals whose default action would stop or end vigil (SIGKILL and SIGSTOP cannot be
/// caught: guard.rs keeps traced processes from sending them to vigil).
fn handled() -> Vec<libc::c_int> {
    let mut v = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGUSR1,
        libc::SIGSEGV,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGSTKFLT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSYS,
    ];
    v.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    v
}

fn is_fault(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP
    )
}

/// The handlers in place before vigil's, indexed by signal (for its own faults).
static PREVIOUS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];
static PREVIOUS_FLAGS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

/// Restores the default action of `sig`.
fn default_action(sig: libc::c_int) {
    // SAFETY: a zeroed sigaction with SIG_DFL is valid; sigaction is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let (code, sender) = if info.is_null() {
        (0, 0)
    } else {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler (not null here).
        unsafe { ((*info).si_code, (*info).si_pid()) }
    };
    let from_process = code <= 0;
    if is_fault(sig) && !from_process {
        // vigil's own fault: the previous handler (Rust's stack-overflow report) or death.
        let idx = sig as usize;
        let prev = PREVIOUS.get(idx).map_or(0, |p| p.load(Ordering::Relaxed));
        let flags = PREVIOUS_FLAGS
            .get(idx)
            .map_or(0, |p| p.load(Ordering::Relaxed));
        if prev != libc::SIG_DFL && prev != libc::SIG_IGN && flags & libc::SA_SIGINFO as usize != 0
        {
            // SAFETY: `prev` was installed as an SA_SIGINFO handler with this signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, ctx);
        } else {
            default_action(sig);
        }
        return;
    }
    if from_process && is_traced(sender) {
        record_refused(sig, sender);
        notify_tracer();
        return;
    }
    let from_tty = code == libc::SI_KERNEL;
    if asks_to_end(sig) && ROOT.load(Ordering::Relaxed) == 0 {
        // The command has exited and vigil waits for what it left running: a request to
        // end is one to stop waiting (the tracer detaches from them).
        STOP_WAITING.store(true, Ordering::Relaxed);
        notify_tracer();
        return;
    }
    match sig {
        libc::SIGINT | libc::SIGQUIT | libc::SIGHUP if from_tty => {}
        libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
            // SAFETY: kill and getpid are async-signal-safe.
            unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
        }
        libc::SIGINT | libc::SIGQUIT | libc::SIGTERM | libc::SIGHUP => {
            // Sent to vigil by someone else: to be passed on to the command, unless it was
            // sent to the whole process group and reached the command already (the tracer
            // decides, having seen the command's own signals).
            FORWARD.store(
                ((sig as u64) << 32) | (sender as u32 as u64),
                Ordering::Release,
            );
            notify_tracer();
        }
        _ => {
            // From outside: what the signal would have done to vigil.
            default_action(sig);
            // SAFETY: raise is async-signal-safe; the default action now applies.
            unsafe { libc::raise(sig) };
        }
    }
}

/// Installed for the duration of a capture; the previous handlers come back on drop.
pub struct Forwarding {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl Forwarding {
    pub fn install(root: i32) -> Forwarding {
        ROOT.store(root, Ordering::Relaxed);
        // SAFETY: gettid takes no arguments.
        TRACER_TID.store(
            unsafe { libc::syscall(libc::SYS_gettid) } as i32,
            Ordering::Relaxed,
        );
        ATTENTION.store(false, Ordering::Relaxed);
        STOP_WAITING.store(false, Ordering::Relaxed);
        FORWARD.store(0, Ordering::Relaxed);
        set_traced(root, true);
        let mut old = Vec::new();
        for sig in handled() {
            // SAFETY: a zeroed sigaction with a valid handler and flags is a valid argument.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                // The requests to end interrupt the tracer's waitpid (EINTR), so it acts on
                // them at once; the others restart it.
                let restart = if asks_to_end(sig) {
                    0
                } else {
                    libc::SA_RESTART
                };
                sa.sa_flags = libc::SA_SIGINFO | restart | libc::SA_ONSTACK;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    if let (Some(p), Some(f)) =
                        (PREVIOUS.get(sig as usize), PREVIOUS_FLAGS.get(sig as usize))
                    {
                        p.store(prev.sa_sigaction, Ordering::Relaxed);
                        f.store(prev.sa_flags as usize, Ordering::Relaxed);
                    }
                    old.push((sig, prev));
                }
            }
        }
        install_wake_handler();
        Forwarding { old }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        ROOT.store(0, Ordering::Relaxed);
        TRACER_TID.store(0, Ordering::Relaxed);
        for (sig, prev) in &self.old {
            // SAFETY: restoring the action we saved.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traced_bitmap_and_the_refused_ring() {
        set_traced(4_194_303, true);
        assert!(is_traced(4_194_303));
        set_traced(4_194_303, false);
        assert!(!is_traced(4_194_303));
        assert!(!is_traced(-1));
        let _ = drain_refused();
        for i in 0..(RING as i32 + 6) {
            record_refused(15, i);
        }
        let (got, dropped) = drain_refused();
        assert_eq!(got.len(), RING);
        assert_eq!(dropped, 6);
        assert_eq!(got.last(), Some(&(15, RING as i32 + 5)));
        assert_eq!(drain_refused().0.len(), 0);
    }
}
