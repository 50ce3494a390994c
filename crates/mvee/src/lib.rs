//! vigil's multi-variant monitor: runs N variants of one program in lockstep under ptrace,
//! compares every system call across them, does the outside world's I/O once, and stops
//! everything at the first disagreement (a divergence: a detection point).
//!
//! An attack that depends on memory layout (a leaked pointer, a hard-coded address, a
//! return-oriented payload) behaves differently in variants whose layouts differ, while benign
//! input behaves the same in all of them. The variants differ by ASLR and a per-variant stack
//! shift ([`setup`]); everything else that would make them differ innocently is removed: the
//! vDSO is hidden (time calls become syscalls whose leader's result is replicated), rdtsc
//! traps, AT_RANDOM is made equal, rseq is refused, random and time calls are the leader's.
//!
//! - [`spec`]: the declarative table (how each call is compared, who runs it, what it writes).
//! - [`page`]: the monitor's page in every variant (injected-call site, the signal wait loop)
//!   and the seccomp filter that traps every call but those.
//! - [`setup`]: what happens to a fresh image after each exec.
//! - [`memio`]: memory arguments read for comparison, the leader's outputs written into
//!   the others.
//! - [`monitor`]: the loop: variant sets (one per logical thread), rendezvous, execution
//!   policies, fd kinds, virtual pids, process creation and exec in lockstep, semi-synchronous
//!   signals, divergence reports.
//!
//! Built on vigil-tracee (spawn with pre-exec steps, stops, registers, memory, remote
//! syscalls). The design follows the source documents' monitor (GHUMVEE-style lockstep with
//! a leader doing I/O); see docs/mvee.md.

mod memio;
mod monitor;
mod page;
mod setup;
mod spec;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;
use vigil_event::Verdict;
use vigil_event::memory::Divergence;
use vigil_tracee::{Exit, SpawnError, Stopped};

pub use monitor::run;

/// The most variants a run may have.
pub const MAX_VARIANTS: usize = 16;

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The command and its arguments.
    pub argv: Vec<OsString>,
    /// How many variants (2..=MAX_VARIANTS).
    pub variants: usize,
    /// Shift each variant's initial stack by a different offset.
    pub diversify_stack: bool,
    /// How long a rendezvous waits for a variant that has not arrived.
    pub timeout: Duration,
    /// How long a variant waits in the loop for a signal the others already got.
    pub signal_wait: Duration,
    /// Relaxed lockstep: calls that read only a variant's own state (reads and stats of files
    /// every variant opened itself, brk, madvise) run without waiting for the others and are
    /// compared as soon as every variant has made them; calls with an effect outside still
    /// wait, after every earlier call is compared. Off by default.
    pub relaxed: bool,
}

impl Config {
    pub fn new(argv: Vec<OsString>) -> Self {
        Config {
            argv,
            variants: 2,
            diversify_stack: true,
            timeout: Duration::from_secs(10),
            signal_wait: Duration::from_secs(1),
            relaxed: false,
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The program ended the same way in every variant: its exit.
    Exited(Exit),
    /// The variants disagreed; every variant was killed.
    Diverged(Box<Report>),
    /// A rule's action (kill or stop) ended the run; every variant was killed. The leader's
    /// process and the action.
    Stopped { pid: i32, action: Verdict },
}

/// A divergence, for the log and for a person.
#[derive(Debug, Clone)]
pub struct Report {
    pub divergence: Divergence,
    /// The leader's process and thread where it happened.
    pub pid: i32,
    pub tid: i32,
    /// The report for standard error: what differed, the variants side by side, the recent
    /// calls.
    pub text: String,
    /// Its event's sequence number in the log, when there is one.
    pub seq: Option<u64>,
}

/// What the monitor did, for `--stats` and the benchmark.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub variants: usize,
    /// Rendezvous at a system call (every variant at the same call, compared).
    pub lockstep: u64,
    /// Calls only the leader ran, the others given its result.
    pub leader_only: u64,
    /// Calls nobody ran (refused).
    pub refused: u64,
    /// rdtsc/rdtscp traps, given the leader's value.
    pub rdtsc: u64,
    /// Signals delivered to every variant at one point; their delay (from the first variant
    /// receiving it to the last one taking it) in nanoseconds.
    pub signals_synced: u64,
    pub signal_delays_ns: Vec<u64>,
    /// Signals delivered at once (terminating, ignored, or raised by a fault).
    pub signals_immediate: u64,
    /// Processes and threads followed (variant sets).
    pub sets: u64,
    /// Reads of a variant's own /proc files, run without a rendezvous.
    pub unsynchronised: u64,
    /// Calls made without a rendezvous in relaxed mode (compared afterwards).
    pub relaxed: u64,
    /// Unique names a variant generated from its own addresses (mkstemp) replaced by the
    /// leader's.
    pub names_unified: u64,
    /// Nanoseconds from the first variant's arrival at a rendezvous to the last one's
    /// departure, summed (the lockstep's cost).
    pub lockstep_ns: u64,
}

/// Where the leader's events and the monitor's decisions go (the log, online rules). Every
/// method has a default that does nothing; an error stops the run (the variants are killed).
pub trait Journal {
    /// Whether it takes the leader's syscall events (then every call of the leader is
    /// followed to its exit stop).
    fn wants_events(&self) -> bool {
        false
    }
    /// The first leader process, stopped at the exit of its first execve; `program` is what
    /// it runs (after the PATH search).
    fn spawned(
        &mut self,
        _t: &Stopped,
        _program: &Path,
        _argv: &[OsString],
    ) -> Result<(), JournalError> {
        Ok(())
    }
    /// The leader at a syscall's entry (the variants agreed on it).
    fn entry(&mut self, _t: &Stopped) -> Result<(), JournalError> {
        Ok(())
    }
    /// What the journal's rules decided about the last event it took (a rule's `deny`,
    /// `kill` or `stop`); asked after every call to `entry`. The monitor carries it out in
    /// every variant: a deny refuses the call everywhere, a kill or stop ends the run.
    fn verdict(&mut self) -> Verdict {
        Verdict::Continue
    }
    /// The leader after a call: at its exit stop, or at the stop where the monitor gave it
    /// `ret` (a refused call).
    fn exit(&mut self, _t: &Stopped, _ret: i64) -> Result<(), JournalError> {
        Ok(())
    }
    /// The leader at a fork, vfork or clone event stop: a new process or thread.
    fn child(&mut self, _parent: &Stopped) -> Result<(), JournalError> {
        Ok(())
    }
    /// The leader at an exec event.
    fn exec(&mut self, _t: &Stopped) -> Result<(), JournalError> {
        Ok(())
    }
    /// A signal about to be delivered to the leader.
    fn signal(&mut self, _t: &Stopped) -> Result<(), JournalError> {
        Ok(())
    }
    /// A leader thread ended.
    fn exited(&mut self, _tid: i32, _exit: Exit) -> Result<(), JournalError> {
        Ok(())
    }
    /// A divergence: returns its event's sequence number, if it was logged.
    fn divergence(&mut self, _report: &Report) -> Result<Option<u64>, JournalError> {
        Ok(None)
    }
    /// Something a person should know that is not a divergence (a refused ptrace).
    fn note(&mut self, _text: &str) {}
    /// A decision of the monitor about the leader's process `pid` (thread `tid`), for the
    /// log as an `action` event by `mvee`: `refuse` (a call no variant may make, `detail` the
    /// call and errno), `rename` (a generated name unified, `detail` the leader's name),
    /// `stop` (a rule ended the run).
    fn action(
        &mut self,
        _pid: i32,
        _tid: i32,
        _action: &str,
        _detail: &str,
    ) -> Result<(), JournalError> {
        Ok(())
    }
}

/// A journal's failure (the log's disk is full).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum MveeError {
    #[error("{0}")]
    Spawn(#[from] SpawnError),
    #[error("{0}")]
    Tracee(#[from] vigil_tracee::Error),
    #[error("{0}")]
    Setup(#[from] setup::SetupError),
    #[error("the log: {0}")]
    Journal(#[from] JournalError),
    /// The configuration is not one a run can have (a usage error).
    #[error("{0}")]
    Config(String),
    /// A variant did not get as far as its program's first instruction.
    #[error("starting the variants: {0}")]
    Startup(String),
    #[error("waiting for the variants: {0}")]
    Wait(std::io::Error),
}
