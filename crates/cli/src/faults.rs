//! Fatal faults, for `summary` and `show`: when a traced process dies of SIGSEGV or SIGBUS,
//! the fault is explained against the address-space model replayed from the log (the
//! classification is vigil_procstate::fault's; this module says it in words).
//!
//! The fault explained is the last one (a SIGSEGV/SIGBUS signal event with a fault) of the
//! process before its exit by that signal, since its last exec: a crash handler that resets
//! the signal and raises it again dies of the fault it caught. A process killed by a signal
//! with no fault before it (sent with kill, or a recorder that does not fill faults in) has
//! nothing to explain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vigil_event::{Event, EventKind, ExitStatus, FaultAccess};
use vigil_log::LogReader;
use vigil_procstate::fault::{Disagreement, FaultExplanation, FaultKind, SIGBUS, SIGSEGV};
use vigil_procstate::{Replay, Vma};

/// Which exits are deaths by a fault (the process's last fault since its exec was of the
/// signal it died of), without a model: cheap enough for every event of a large log.
#[derive(Default)]
pub struct FaultDeaths {
    /// The signal of each process's last fault.
    last: HashMap<u32, i32>,
}

impl FaultDeaths {
    /// Feeds the next event of the log; true at the exit of a process killed by its fault.
    pub fn add(&mut self, ev: &Event) -> bool {
        match &ev.kind {
            // One without a fault (a crash handler raising it again, a kill) leaves the last
            // fault as the cause.
            EventKind::Signal(s)
                if (s.signal == SIGSEGV || s.signal == SIGBUS) && s.fault.is_some() =>
            {
                self.last.insert(ev.pid, s.signal);
                false
            }
            // A new program: the old one's faults were handled.
            EventKind::ProcessExec(_) => {
                self.last.remove(&ev.pid);
                false
            }
            EventKind::ProcessExit(x) => matches!(
                (self.last.remove(&ev.pid), x.status),
                (Some(fault), ExitStatus::Signal { signal, .. }) if fault == signal
            ),
            _ => false,
        }
    }
}

/// Follows a log and says, at the exit of a process killed by a fault, what the fault was.
#[derive(Default)]
pub struct FatalFaults {
    deaths: FaultDeaths,
    replay: Replay,
    /// Each process's last fault, explained.
    last: HashMap<u32, FaultExplanation>,
}

impl FatalFaults {
    /// Feeds the next event of the log; at the exit of a process killed by its last fault,
    /// returns that fault explained.
    pub fn add(&mut self, ev: &Event) -> Option<FaultExplanation> {
        let mut fatal = None;
        match &ev.kind {
            EventKind::Signal(s) => {
                if let Some(e) = self.replay.explain_fault(ev.pid, s) {
                    self.last.insert(ev.pid, e);
                }
            }
            EventKind::ProcessExec(_) => {
                self.last.remove(&ev.pid);
            }
            _ => {}
        }
        let died = self.deaths.add(ev);
        if matches!(ev.kind, EventKind::ProcessExit(_)) {
            fatal = self.last.remove(&ev.pid).filter(|_| died);
        }
        // What the model cannot apply is said by `maps`; here it only explains faults, and
        // keeps nothing else (summary and show read every event of large logs).
        let _ = self.replay.apply_lean(ev);
        fatal
    }
}

/// Explains the deaths by a fault of a log being read, at no cost for a log without any:
/// deaths are spotted cheaply (`FaultDeaths`), and only then is the model replayed, by a
/// second reader of the same log that goes no further than the last death explained (and
/// reopens the log when it has grown: `show --follow`).
pub struct DeathExplainer {
    log: PathBuf,
    deaths: FaultDeaths,
    side: Option<Side>,
}

struct Side {
    reader: LogReader<std::fs::File>,
    faults: FatalFaults,
    /// The last seq fed to `faults`.
    at: Option<u64>,
}

impl DeathExplainer {
    pub fn new(log: &Path) -> DeathExplainer {
        DeathExplainer {
            log: log.to_path_buf(),
            deaths: FaultDeaths::default(),
            side: None,
        }
    }

    /// Feeds the next event the caller read; at the exit of a process killed by its last
    /// fault, returns that fault explained (`None` when the log cannot be read again).
    pub fn add(&mut self, ev: &Event) -> Option<FaultExplanation> {
        if !self.deaths.add(ev) {
            return None;
        }
        // The end of a log being written may come before the exit: then once more, reopened.
        for _ in 0..2 {
            let side = match self.side.as_mut() {
                Some(side) => side,
                None => self.side.insert(Side {
                    reader: LogReader::open(&self.log).ok()?,
                    faults: FatalFaults::default(),
                    at: None,
                }),
            };
            // Damage was reported by the caller's reading.
            for e in side.reader.by_ref().flatten() {
                if side.at.is_some_and(|at| e.seq <= at) {
                    continue;
                }
                side.at = Some(e.seq);
                let fatal = side.faults.add(&e);
                if e.seq == ev.seq {
                    return fatal;
                }
                if e.seq > ev.seq {
                    return None;
                }
            }
            side.reader = LogReader::open(&self.log).ok()?;
        }
        None
    }
}

fn access_text(a: FaultAccess) -> &'static str {
    match a {
        FaultAccess::Read => "read",
        FaultAccess::Write => "write",
        FaultAccess::ReadWrite => "read-modify-write",
        FaultAccess::Execute => "instruction fetch",
        FaultAccess::Unknown => "access",
    }
}

/// Why, in words.
pub fn kind_text(e: &FaultExplanation) -> String {
    match e.kind {
        FaultKind::NullDereference => "not mapped, e.g. a NULL dereference".into(),
        FaultKind::NotMapped => "not mapped".into(),
        FaultKind::StackOverflow => {
            "not mapped: stack overflow into the guard gap below the stack".into()
        }
        FaultKind::WriteToReadOnly => "write to a read-only mapping".into(),
        FaultKind::ExecNonExecutable => "execute of a non-executable mapping".into(),
        FaultKind::Inaccessible => match e.access {
            FaultAccess::Read => "read of an inaccessible (PROT_NONE) mapping".into(),
            FaultAccess::Write | FaultAccess::ReadWrite => {
                "write to an inaccessible (PROT_NONE) mapping".into()
            }
            FaultAccess::Execute => "execute of an inaccessible (PROT_NONE) mapping".into(),
            FaultAccess::Unknown => "access to an inaccessible (PROT_NONE) mapping".into(),
        },
        FaultKind::NotReadable => "read of a mapping without read permission".into(),
        FaultKind::GuardPage => "guard page (a PROT_NONE page next to accessible memory)".into(),
        FaultKind::ProtectionKey => "denied by a memory protection key".into(),
        FaultKind::BeyondEndOfFile { offset, size } => format!(
            "bus error beyond the end of the mapped file (offset {offset:#x}; the file is \
             {size} bytes)"
        ),
        FaultKind::FileBusError => "bus error in a file mapping (e.g. beyond the end of the file)".into(),
        FaultKind::Misaligned => "bus error: misaligned access".into(),
        FaultKind::BusError => "bus error".into(),
        FaultKind::GeneralProtection => {
            "general protection fault (the kernel gives no address: e.g. a non-canonical pointer or a privileged instruction)".into()
        }
        FaultKind::Unknown => match e.access {
            FaultAccess::Unknown => "unknown access (the instruction was not decoded)".into(),
            a => format!(
                "unknown: the model allows a {} there",
                access_text(a)
            ),
        },
    }
}

fn signal_name(sig: i32) -> String {
    vigil_event::flags::signal_name(i64::from(sig))
}

/// The explanation, a headline and detail lines (without indentation).
pub fn describe(e: &FaultExplanation) -> Vec<String> {
    let mut lines = Vec::new();
    let head = if e.kind == FaultKind::GeneralProtection {
        format!("{}: {}", signal_name(e.signal), kind_text(e))
    } else {
        format!(
            "{} at {:#x} ({}): {}",
            signal_name(e.signal),
            e.addr,
            access_text(e.access),
            kind_text(e)
        )
    };
    lines.push(head);
    let line = |v: &Vma| v.to_string();
    match (&e.vma, e.kind) {
        (Some(v), _) => lines.push(format!("mapping: {}", line(v))),
        (None, FaultKind::GeneralProtection) => {}
        (None, _) => {
            lines.push(format!(
                "nearest mapping below: {}",
                e.below.as_ref().map_or("none".to_string(), line)
            ));
            lines.push(format!(
                "nearest mapping above: {}",
                e.above.as_ref().map_or("none".to_string(), line)
            ));
        }
    }
    if let Some(g) = &e.guarded {
        lines.push(format!("guarding: {}", line(g)));
    }
    lines.push(format!(
        "instruction at {:#x}: {}",
        e.ip,
        e.ip_vma
            .as_ref()
            .map_or("not in a mapping the model knows".to_string(), line)
    ));
    match e.disagreement {
        Some(Disagreement::KernelFoundNoMapping) => lines.push(
            "note: the kernel found no mapping there (SEGV_MAPERR): the model may be out of date"
                .into(),
        ),
        Some(Disagreement::KernelFoundMapping) => lines.push(
            "note: the kernel found a mapping there that denied the access (SEGV_ACCERR): the \
             model lacks it"
                .into(),
        ),
        None => {}
    }
    lines
}
