//! What a wait status means: every ptrace-stop a PTRACE_SEIZEd tracee can be in, classified
//! once, with the details a caller needs to act on it (the syscall and its arguments, the
//! seccomp filter's data, the new child of a fork, the siginfo of a signal).
//!
//! Signal stops carry the whole siginfo, so a caller can tell a signal it caused itself (a
//! SIGSEGV at an address it protected, the SIGTRAP of its own single-step) from one the program
//! must receive, and then either consume it (resume without a signal) or deliver it.

use crate::error::Error;
use crate::raw;

/// si_code of a SIGTRAP raised by a single-step (TF).
pub const TRAP_TRACE: i32 = 2;
/// si_code of a SIGTRAP raised by a breakpoint or a single-stepped syscall.
pub const TRAP_BRKPT: i32 = 1;
/// The ptrace event number of a stop induced by PTRACE_INTERRUPT, a group-stop, or the first
/// stop of a newly attached task.
pub const PTRACE_EVENT_STOP: i32 = 128;

/// The syscall ABI a syscall was made with (from `ptrace_syscall_info.arch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    /// x32: an x86-64 call whose number has bit 30 set.
    X32,
    /// i386 (`int 0x80`, or a 32-bit program).
    I386,
    Other(u32),
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u64 = 0x4000_0000;

impl Abi {
    fn from_arch(arch: u32, nr: u64) -> Abi {
        match arch {
            AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => Abi::X32,
            AUDIT_ARCH_X86_64 => Abi::X86_64,
            AUDIT_ARCH_I386 => Abi::I386,
            a => Abi::Other(a),
        }
    }
}

/// A syscall at its entry (or seccomp) stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEntry {
    /// The number in its ABI's table (the x32 bit included).
    pub nr: u64,
    pub args: [u64; 6],
    pub abi: Abi,
    /// The address after the instruction that made the call.
    pub ip: u64,
    pub sp: u64,
}

impl SyscallEntry {
    /// The x86-64 syscall identity, when the call was made in that ABI.
    pub fn sysno(&self) -> Option<syscalls::Sysno> {
        match self.abi {
            Abi::X86_64 => i32::try_from(self.nr)
                .ok()
                .and_then(|n| syscalls::Sysno::new(n as usize)),
            _ => None,
        }
    }
}

/// A ptrace event stop (PTRACE_O_TRACE* options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The new child's pid (it is traced too and reports its own first stop).
    Fork {
        child: i32,
    },
    Vfork {
        child: i32,
    },
    /// A new thread (or a clone with a new address space, by its flags).
    Clone {
        child: i32,
    },
    /// A successful execve; `former_tid` is the thread that called it (a non-leader thread's
    /// exec makes it take the leader's tid).
    Exec {
        former_tid: i32,
    },
    /// The parent of a vfork resumes (the child exec'd or exited).
    VforkDone {
        child: i32,
    },
    /// The thread is about to exit; `status` is the raw wait status it will have.
    Exit {
        status: i32,
    },
    /// Another event number (a newer kernel).
    Other {
        event: i32,
        msg: u64,
    },
}

/// A signal's siginfo, with the fields a tracer decides on taken out.
#[derive(Clone, Copy)]
pub struct SigInfo {
    pub raw: libc::siginfo_t,
}

impl SigInfo {
    pub fn signo(&self) -> i32 {
        self.raw.si_signo
    }

    /// si_code: > 0 raised by the kernel (SEGV_MAPERR, TRAP_TRACE...), SI_USER (0) by kill,
    /// SI_TKILL (-6) by tgkill, SI_QUEUE (-1) by sigqueue.
    pub fn code(&self) -> i32 {
        self.raw.si_code
    }

    /// Whether the kernel raised it for a fault or trap of the thread itself.
    pub fn from_kernel(&self) -> bool {
        self.raw.si_code > 0
    }

    /// The faulting address of a SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP raised by the
    /// kernel; `None` for other signals.
    pub fn fault_addr(&self) -> Option<u64> {
        let faults = [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
        ];
        if self.from_kernel() && faults.contains(&self.signo()) {
            // SAFETY: for these signals raised by the kernel the union holds the fault layout.
            Some(unsafe { self.raw.si_addr() } as u64)
        } else {
            None
        }
    }

    /// The sender's pid and uid of a signal sent by a process (kill, tgkill, sigqueue) or of a
    /// SIGCHLD; `None` for kernel-raised faults.
    pub fn sender(&self) -> Option<(i32, u32)> {
        if self.raw.si_code <= 0 || self.signo() == libc::SIGCHLD {
            // SAFETY: for user-sent signals and SIGCHLD the union starts with pid and uid.
            Some(unsafe { (self.raw.si_pid(), self.raw.si_uid()) })
        } else {
            None
        }
    }

    /// Changes the sender's pid of a signal [`SigInfo::sender`] has one for (a tracer that
    /// shows its tracees other pids than the kernel's); does nothing otherwise.
    pub fn set_sender_pid(&mut self, pid: i32) {
        if self.sender().is_none() {
            return;
        }
        // si_pid: after si_signo, si_errno, si_code and the padding that aligns the union
        // (x86-64, this crate's only architecture).
        const SI_PID: usize = 16;
        // SAFETY: siginfo_t is 128 bytes; for user-sent signals and SIGCHLD (checked above)
        // the i32 at SI_PID is si_pid; the write is unaligned-safe.
        unsafe {
            let p = (&mut self.raw as *mut libc::siginfo_t)
                .cast::<u8>()
                .add(SI_PID);
            std::ptr::write_unaligned(p.cast::<i32>(), pid);
        }
    }

    /// Whether this is the SIGTRAP of a completed single-step.
    pub fn is_single_step(&self) -> bool {
        self.signo() == libc::SIGTRAP && self.code() == TRAP_TRACE
    }
}

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigInfo")
            .field("signo", &self.signo())
            .field("code", &self.code())
            .field("fault_addr", &self.fault_addr())
            .field("sender", &self.sender())
            .finish()
    }
}

/// Why a stopped tracee stopped.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Syscall-entry stop (resumed with PTRACE_SYSCALL).
    SyscallEntry(SyscallEntry),
    /// Syscall-exit stop: the return value (`-errno` when `is_error`).
    SyscallExit { ret: i64, is_error: bool },
    /// A seccomp filter returned SECCOMP_RET_TRACE; `data` is its SECCOMP_RET_DATA.
    Seccomp { call: SyscallEntry, data: u32 },
    /// A ptrace event (fork/vfork/clone/exec/exit/vfork-done).
    Event(Event),
    /// Signal-delivery stop: resume with the signal to deliver it, without to consume it.
    Signal { sig: i32, info: SigInfo },
    /// Group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): PTRACE_LISTEN keeps it stopped.
    GroupStop { sig: i32 },
    /// PTRACE_EVENT_STOP with SIGTRAP: after PTRACE_INTERRUPT, the first stop of a newly
    /// attached task, or a listening tracee woken by SIGCONT.
    Interrupt,
    /// The trap of a single-step this layer made ([`crate::Stopped::step`]); already consumed:
    /// resume without a signal.
    Stepped,
}

/// How a thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Exited(i32),
    Killed { signal: i32, core_dumped: bool },
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Exited(c) => write!(f, "exited with status {c}"),
            Exit::Killed { signal, .. } => write!(f, "killed by signal {signal}"),
        }
    }
}

/// A decoded raw wait status, before any ptrace query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawStatus {
    Exited(Exit),
    /// Stopped: the signal (with 0x80 for a TRACESYSGOOD syscall stop) and the event number.
    Stopped {
        sig: i32,
        event: i32,
    },
    Continued,
}

pub(crate) fn decode_status(status: i32) -> RawStatus {
    if libc::WIFEXITED(status) {
        RawStatus::Exited(Exit::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        RawStatus::Exited(Exit::Killed {
            signal: libc::WTERMSIG(status),
            core_dumped: libc::WCOREDUMP(status),
        })
    } else if libc::WIFSTOPPED(status) {
        RawStatus::Stopped {
            sig: libc::WSTOPSIG(status),
            event: (status >> 16) & 0xffff,
        }
    } else {
        RawStatus::Continued
    }
}

fn entry_of(info: &libc::ptrace_syscall_info, nr: u64, args: [u64; 6]) -> SyscallEntry {
    SyscallEntry {
        nr,
        args,
        abi: Abi::from_arch(info.arch, nr),
        ip: info.instruction_pointer,
        sp: info.stack_pointer,
    }
}

impl Stop {
    /// Classifies a stop the caller's own waitpid reported for `tid` (`sig` = WSTOPSIG,
    /// `event` = status >> 16), for a caller with its own wait loop (the recorder polls).
    /// One ptrace request for a syscall, seccomp, event or signal stop, none for group and
    /// interrupt stops; [`Error::Gone`] if the thread was killed meanwhile.
    pub fn of(tid: i32, sig: i32, event: i32) -> Result<Stop, Error> {
        classify(tid, sig, event)
    }
}

/// Classifies a stopped tracee's stop, asking the kernel for the details (one ptrace request
/// for a syscall, seccomp, event or signal stop; none for group and interrupt stops).
pub(crate) fn classify(tid: i32, sig: i32, event: i32) -> Result<Stop, Error> {
    if sig == (libc::SIGTRAP | 0x80) {
        let info = raw::syscall_info(tid)?;
        return match info.op {
            libc::PTRACE_SYSCALL_INFO_ENTRY => {
                // SAFETY: op ENTRY says the union holds `entry`.
                let e = unsafe { info.u.entry };
                Ok(Stop::SyscallEntry(entry_of(&info, e.nr, e.args)))
            }
            libc::PTRACE_SYSCALL_INFO_EXIT => {
                // SAFETY: op EXIT says the union holds `exit`.
                let x = unsafe { info.u.exit };
                Ok(Stop::SyscallExit {
                    ret: x.sval,
                    is_error: x.is_error != 0,
                })
            }
            op => Err(Error::Unexpected {
                tid,
                detail: format!("syscall stop with PTRACE_GET_SYSCALL_INFO op {op}"),
            }),
        };
    }
    if event == 0 {
        // A legacy post-exec SIGTRAP (no PTRACE_O_TRACEEXEC) is a signal stop like others.
        let info = raw::siginfo(tid)?;
        return Ok(Stop::Signal { sig, info });
    }
    match event {
        libc::PTRACE_EVENT_SECCOMP => {
            let info = raw::syscall_info(tid)?;
            if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
                return Err(Error::Unexpected {
                    tid,
                    detail: format!("seccomp stop with PTRACE_GET_SYSCALL_INFO op {}", info.op),
                });
            }
            // SAFETY: op SECCOMP says the union holds `seccomp`.
            let s = unsafe { info.u.seccomp };
            Ok(Stop::Seccomp {
                call: entry_of(&info, s.nr, s.args),
                data: s.ret_data,
            })
        }
        PTRACE_EVENT_STOP => {
            if matches!(
                sig,
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
            ) {
                Ok(Stop::GroupStop { sig })
            } else {
                Ok(Stop::Interrupt)
            }
        }
        ev => {
            let msg = raw::event_msg(tid)?;
            let child = msg as i32;
            Ok(Stop::Event(match ev {
                libc::PTRACE_EVENT_FORK => Event::Fork { child },
                libc::PTRACE_EVENT_VFORK => Event::Vfork { child },
                libc::PTRACE_EVENT_CLONE => Event::Clone { child },
                libc::PTRACE_EVENT_EXEC => Event::Exec { former_tid: child },
                libc::PTRACE_EVENT_VFORK_DONE => Event::VforkDone { child },
                libc::PTRACE_EVENT_EXIT => Event::Exit { status: child },
                event => Event::Other { event, msg },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_statuses_decode() {
        assert_eq!(decode_status(3 << 8), RawStatus::Exited(Exit::Exited(3)));
        assert_eq!(
            decode_status(libc::SIGKILL),
            RawStatus::Exited(Exit::Killed {
                signal: libc::SIGKILL,
                core_dumped: false
            })
        );
        // A PTRACE_EVENT_STOP group-stop: (SIGSTOP | EVENT_STOP << 8) << 8 | 0x7f.
        let st = ((libc::SIGSTOP | (PTRACE_EVENT_STOP << 8)) << 8) | 0x7f;
        assert_eq!(
            decode_status(st),
            RawStatus::Stopped {
                sig: libc::SIGSTOP,
                event: PTRACE_EVENT_STOP
            }
        );
        let sys = ((libc::SIGTRAP | 0x80) << 8) | 0x7f;
        assert_eq!(
            decode_status(sys),
            RawStatus::Stopped {
                sig: libc::SIGTRAP | 0x80,
                event: 0
            }
        );
        // A real-time signal, which nix's Signal cannot name.
        assert_eq!(
            decode_status((40 << 8) | 0x7f),
            RawStatus::Stopped { sig: 40, event: 0 }
        );
    }
}

#[cfg(test)]
mod sender_tests {
    use super::SigInfo;

    fn info(signo: i32, code: i32) -> SigInfo {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut raw: libc::siginfo_t = unsafe { std::mem::zeroed() };
        raw.si_signo = signo;
        raw.si_code = code;
        SigInfo { raw }
    }

    #[test]
    fn a_senders_pid_can_be_changed_and_read_back() {
        let mut i = info(libc::SIGUSR1, libc::SI_USER);
        i.set_sender_pid(4242);
        assert_eq!(i.sender().map(|s| s.0), Some(4242));
        assert_eq!(i.signo(), libc::SIGUSR1);
        // A fault has no sender: nothing is written.
        let mut f = info(libc::SIGSEGV, 1);
        f.set_sender_pid(4242);
        assert_eq!(f.sender(), None);
        assert_eq!(f.fault_addr(), Some(0));
    }
}
