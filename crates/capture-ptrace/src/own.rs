//! Signals vigil itself causes, told apart from the program's own before anything is delivered.
//!
//! Shared-memory monitoring (issue 11) will protect pages of a traced process (mprotect
//! injected with tracee's remote syscalls) and single-step the instruction that touched one;
//! the SIGSEGV and SIGTRAP that result are vigil's, and the program must never see them. This
//! registry holds what vigil protected (per process: address range and the protection to put
//! back) and which threads it is single-stepping. At a signal-delivery stop the recorder asks
//! [`OwnSignals::classify`] with tracee's classified [`Stop`] (the full siginfo, read with the
//! one PTRACE_GETSIGINFO the recorder always made): a SIGSEGV raised by the kernel at an
//! address in a registered range, or the single-step SIGTRAP (TRAP_TRACE) of a thread vigil
//! steps, is vigil's and consumed; every other signal is delivered exactly as before. Empty
//! today, so nothing is ever consumed until issue 11 registers ranges.

use std::collections::{BTreeMap, HashMap, HashSet};
use vigil_tracee::{Error, Stop, Stopped, Tracer};

/// A range vigil protected in one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protected {
    pub start: u64,
    pub end: u64,
    /// The protection (PROT_* bits) to put back when the range is given back.
    pub restore: i32,
}

/// Whose a signal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The program's (or anyone else's): deliver it.
    Program,
    /// A fault at `addr` in a range vigil protected.
    OwnFault { addr: u64, range: Protected },
    /// The trap of vigil's own single-step.
    OwnStep,
}

/// What vigil protected and which threads it steps.
#[derive(Debug, Default)]
pub struct OwnSignals {
    /// pid -> start -> range (non-overlapping per process).
    ranges: HashMap<i32, BTreeMap<u64, Protected>>,
    stepping: HashSet<i32>,
}

impl OwnSignals {
    /// Records that vigil protected `[start, end)` in process `pid` and will put `restore`
    /// back.
    #[allow(
        dead_code,
        reason = "shared-memory monitoring (issue 11) registers the ranges"
    )]
    pub fn protect(&mut self, pid: i32, start: u64, end: u64, restore: i32) {
        if start < end {
            self.ranges.entry(pid).or_default().insert(
                start,
                Protected {
                    start,
                    end,
                    restore,
                },
            );
        }
    }

    /// Forgets the range starting at `start` (it was given back); the range it was.
    pub fn release(&mut self, pid: i32, start: u64) -> Option<Protected> {
        let m = self.ranges.get_mut(&pid)?;
        let r = m.remove(&start);
        if m.is_empty() {
            self.ranges.remove(&pid);
        }
        r
    }

    /// The range of `pid` holding `addr`, if vigil protected one there.
    pub fn range_at(&self, pid: i32, addr: u64) -> Option<Protected> {
        let (_, r) = self.ranges.get(&pid)?.range(..=addr).next_back()?;
        (addr < r.end).then_some(*r)
    }

    /// The ranges of `pid` that overlap `[start, end)`, in address order.
    pub fn ranges_in(&self, pid: i32, start: u64, end: u64) -> Vec<Protected> {
        let Some(m) = self.ranges.get(&pid) else {
            return Vec::new();
        };
        let first = self.range_at(pid, start).filter(|r| r.start < start);
        first
            .into_iter()
            .chain(m.range(start..end).map(|(_, r)| *r))
            .collect()
    }

    /// Marks a thread as single-stepped by vigil (or no longer).
    #[allow(
        dead_code,
        reason = "shared-memory monitoring (issue 11) steps threads"
    )]
    pub fn set_stepping(&mut self, tid: i32, on: bool) {
        if on {
            self.stepping.insert(tid);
        } else {
            self.stepping.remove(&tid);
        }
    }

    /// The process's address space is gone (exec, exit): its ranges with it.
    pub fn forget_process(&mut self, pid: i32) {
        self.ranges.remove(&pid);
    }

    pub fn forget_thread(&mut self, tid: i32) {
        self.stepping.remove(&tid);
    }

    /// Whose the signal of a signal-delivery stop of thread `tid` of process `pid` is.
    pub fn classify(&self, pid: i32, tid: i32, stop: &Stop) -> Cause {
        if self.ranges.is_empty() && self.stepping.is_empty() {
            return Cause::Program;
        }
        let Stop::Signal { sig, info } = stop else {
            return Cause::Program;
        };
        if *sig == libc::SIGSEGV
            && let Some(addr) = info.fault_addr()
            && let Some(range) = self.range_at(pid, addr)
        {
            return Cause::OwnFault { addr, range };
        }
        if *sig == libc::SIGTRAP && info.is_single_step() && self.stepping.contains(&tid) {
            return Cause::OwnStep;
        }
        Cause::Program
    }

    /// Settles a signal vigil caused, before the thread is resumed without it: a fault in a
    /// protected range gives the range its protection back (mprotect run in the thread, its
    /// registers and the signal stop restored by tracee) and forgets it, so the access runs
    /// again and succeeds; a single-step trap ends the step. `at` is the thread at the signal
    /// stop.
    pub fn settle(
        &mut self,
        tracer: &mut Tracer,
        at: &mut Stopped,
        pid: i32,
        cause: Cause,
    ) -> Result<(), Error> {
        match cause {
            Cause::Program => Ok(()),
            Cause::OwnStep => {
                self.stepping.remove(&at.tid());
                Ok(())
            }
            Cause::OwnFault { range, .. } => {
                // Forgotten first, whatever the mprotect does: if it fails, the access faults
                // again as the program's own and is delivered, rather than being taken for
                // vigil's and consumed over and over.
                self.release(pid, range.start);
                let mut remote = at.remote(tracer)?;
                remote.mprotect(range.start, range.end - range.start, range.restore)?;
                remote.finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_tracee::{Command, Event, Exit, Options, Resume, Wait};

    #[test]
    fn ranges_are_looked_up_by_address_and_process() {
        let mut o = OwnSignals::default();
        o.protect(7, 0x1000, 0x3000, libc::PROT_READ);
        o.protect(7, 0x5000, 0x6000, libc::PROT_NONE);
        assert_eq!(o.range_at(7, 0x2fff).map(|r| r.start), Some(0x1000));
        assert_eq!(o.range_at(7, 0x3000), None);
        assert_eq!(o.range_at(7, 0xfff), None);
        assert_eq!(o.range_at(8, 0x1000), None, "another process's space");
        assert_eq!(o.range_at(7, 0x5000).map(|r| r.end), Some(0x6000));
        assert!(o.release(7, 0x1000).is_some());
        assert_eq!(o.range_at(7, 0x1000), None);
        o.forget_process(7);
        assert_eq!(o.range_at(7, 0x5000), None);
    }

    /// Runs programs/own_fault.c in `mode` under tracee's Tracer. At its getppid stop the page
    /// it announces is registered and protected PROT_NONE with a remote mprotect; then each
    /// signal stop is classified with the registry, vigil's settled and consumed, the others
    /// delivered. The causes seen, and how the program ended.
    fn run(mode: &str) -> (Vec<Cause>, Exit) {
        run_restoring(mode, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// `run`, with `restore` as the protection the range gets back when vigil settles a fault.
    fn run_restoring(mode: &str, restore: i32) -> (Vec<Cause>, Exit) {
        vigil_testkit::require_ptrace();
        let prog = vigil_testkit::program("own_fault");
        let mut cmd = Command::new(&prog);
        cmd.arg(mode)
            .options(
                Options::PTRACE_O_TRACESECCOMP
                    | Options::PTRACE_O_TRACESYSGOOD
                    | Options::PTRACE_O_EXITKILL,
            )
            .seccomp(vigil_testkit::getppid_trap_filter(0));
        let mut tracer = Tracer::new();
        let (child, s) = tracer.spawn_until_exec(&mut cmd).unwrap();
        assert!(matches!(s.stop(), Stop::Event(Event::Exec { .. })));
        let pid = child.pid();
        let mut own = OwnSignals::default();
        let mut causes = Vec::new();
        s.cont().unwrap();
        loop {
            let mut s = match tracer.wait_tid(pid).unwrap() {
                Wait::Exited { exit, .. } => return (causes, exit),
                Wait::Stopped(s) => s,
            };
            match *s.stop() {
                Stop::Seccomp { call, .. } => {
                    let page = call.args[0];
                    let mut remote = s.remote(&mut tracer).unwrap();
                    remote.mprotect(page, 4096, libc::PROT_NONE).unwrap();
                    remote.finish().unwrap();
                    own.protect(pid, page, page + 4096, restore);
                    let _ = s.cont();
                }
                stop @ Stop::Signal { .. } => {
                    let cause = own.classify(pid, pid, &stop);
                    causes.push(cause);
                    if cause == Cause::Program {
                        let _ = s.deliver(Resume::Cont);
                    } else {
                        // As the recorder does: a failure is reported, the thread resumed.
                        let _ = own.settle(&mut tracer, &mut s, pid, cause);
                        let _ = s.cont();
                    }
                }
                _ => {
                    let _ = s.cont();
                }
            }
        }
    }

    #[test]
    fn vigils_own_fault_is_consumed_and_the_access_then_succeeds() {
        let (causes, exit) = run("touch");
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert!(
            matches!(causes[0], Cause::OwnFault { addr, range } if addr == range.start),
            "{causes:?}"
        );
        // The program read its 42 after the protection was put back: it never saw a signal.
        assert_eq!(exit, Exit::Exited(42));
    }

    #[test]
    fn a_fault_elsewhere_reaches_the_program_as_natively() {
        let (causes, exit) = run("stray");
        assert_eq!(causes, vec![Cause::Program]);
        assert!(
            matches!(exit, Exit::Killed { signal, .. } if signal == libc::SIGSEGV),
            "{exit:?}"
        );
    }

    #[test]
    fn a_fault_vigil_cannot_settle_is_the_programs_next_time_not_a_loop() {
        // An mprotect that fails (EINVAL: no such protection bits): the range is forgotten, the
        // access faults again and that fault is delivered.
        let (causes, exit) = run_restoring("touch", 0x7000_0000);
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(matches!(causes[0], Cause::OwnFault { .. }), "{causes:?}");
        assert_eq!(causes[1], Cause::Program);
        assert!(
            matches!(exit, Exit::Killed { signal, .. } if signal == libc::SIGSEGV),
            "{exit:?}"
        );
    }
}
