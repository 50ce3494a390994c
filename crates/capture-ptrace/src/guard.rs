//! What a traced program may not do to vigil, checked at the entry of the call.
//!
//! A monitor its subject can blind is worse than none. vigil is the parent of the traced
//! command and shares its process group, so a program could kill it (`kill(getppid(),
//! SIGKILL)`), stop it, attach to it, write into its memory, destroy the log it writes, or
//! create a child that is not traced (`clone(CLONE_UNTRACED)`). Each of these is refused or
//! defused here, before the kernel runs the call, and logged as an action:
//! - a signal, ptrace request or process_vm_writev aimed at vigil itself (any of its threads,
//!   through a pidfd too) fails with EPERM; signal 0 (a liveness probe) is let through;
//! - SIGKILL or SIGSTOP sent to a process group vigil is in, or to every process (`kill(0)`,
//!   `kill(-pgrp)`, `kill(-1)`), is delivered by vigil to every other process the caller may
//!   signal, and the call returns what the kernel would have; catchable signals reach vigil
//!   too and its handlers ignore them when a traced process sent them (signals.rs);
//! - opening vigil's log for writing, truncating, renaming or unlinking it fails with EPERM
//!   (the log is recognised by device and inode, whatever path or link names it);
//! - CLONE_UNTRACED is taken out of clone's flags (a register, which no other thread can
//!   touch) and out of clone3's `struct clone_args` (memory, which another thread could set
//!   again: the call's exit checks that the child was traced, and kills it if not).

use crate::decode::Walked;
use crate::inspect;
use crate::tracer::Tracer;
use nix::sys::ptrace;
use nix::unistd::Pid;
use syscalls::Sysno;
use vigil_event::{Abi, ArgKind, Args, SyscallId, Value};

pub const CLONE_UNTRACED: u64 = 0x0080_0000;
/// clone's number in the i386 table.
pub const I386_CLONE: u32 = 120;
const PTRACE_TRACEME: i64 = 0;
const O_ACCMODE: u64 = 3;
const O_TRUNC: u64 = 0o1000;
const SIGKILL: i64 = 9;
const SIGSTOP: i64 = 19;
/// linux/capability.h
const CAP_KILL: u32 = 5;

/// What the guard decided about a call at its entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Guarded {
    Allow,
    /// Do not run the call; it fails with this errno.
    Refuse {
        errno: i32,
        detail: String,
    },
    /// vigil did what the call asks (to everyone but itself); it returns `ret`.
    Emulated {
        ret: i64,
        detail: String,
    },
    /// The call's arguments were changed; it runs.
    Changed {
        detail: String,
    },
}

/// vigil itself, as a target.
fn own_tids() -> Vec<i64> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn pgid(pid: i32) -> i32 {
    // SAFETY: getpgid takes a pid and touches no memory.
    unsafe { libc::getpgid(pid) }
}

/// Real, effective and saved uid, and whether CAP_KILL is effective, from /proc/PID/status.
fn creds(pid: i32) -> Option<([u32; 3], bool)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
    let mut it = uid[4..].split_whitespace().filter_map(|x| x.parse().ok());
    let ids = [it.next()?, it.next()?, it.next()?];
    let cap = status
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        .is_some_and(|c| c & (1 << CAP_KILL) != 0);
    Some((ids, cap))
}

/// The kernel's kill permission rule (kill_ok_by_cred), approximated with CAP_KILL in the
/// caller's effective set.
fn may_signal(caller: &([u32; 3], bool), target: i32) -> bool {
    let (c, cap) = caller;
    if *cap {
        return true;
    }
    let Some((t, _)) = creds(target) else {
        return false;
    };
    let (c_uid, c_euid) = (c[0], c[1]);
    let (t_uid, t_suid) = (t[0], t[2]);
    c_euid == t_suid || c_euid == t_uid || c_uid == t_suid || c_uid == t_uid
}

/// The pid in /proc/PID/stat's fifth field (after the parenthesised command name).
fn stat_pgrp(pid: i32) -> Option<i32> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Which processes a group signal is for.
enum Group {
    /// A process group.
    Pgrp(i32),
    /// Every process the caller may signal (`kill(-1)`).
    All,
}

impl Tracer<'_> {
    /// Checks a call at its entry (see the module doc). `args` are decoded (pids translated,
    /// paths walked); `walked` names the objects the paths reached.
    pub(crate) fn guard(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        raw: &[u64; 6],
        args: &Args,
        walked: &Walked,
    ) -> Guarded {
        // i386 clone has no x86_64 twin (its arguments are in another order) but its flags
        // come first all the same.
        let i386_clone = call.abi == Abi::I386 && call.nr == I386_CLONE;
        let Some(sys) = call.canonical().or(i386_clone.then_some(Sysno::clone)) else {
            return Guarded::Allow;
        };
        if let Some(g) = self.guard_log(sys, args, walked)
            && g != Guarded::Allow
        {
            return g;
        }
        if call.signature().bookkeeping != vigil_event::syscall::Bookkeeping::Guard
            && sys != Sysno::clone
        {
            // Only the log and /proc checks above apply to calls that merely take a path.
            return Guarded::Allow;
        }
        let me = self.view.vigil_pid as i64;
        let int = |i: usize| args.get(i).and_then(Value::as_int);
        let sig_at = call
            .signature()
            .args
            .iter()
            .position(|a| a.kind == ArgKind::Signal);
        let signal = sig_at.and_then(int);
        if signal == Some(0) {
            return Guarded::Allow;
        }
        let refuse = |what: String| Guarded::Refuse {
            errno: libc::EPERM,
            detail: format!("{call}: {what} aimed at vigil itself: refused"),
        };
        let sig_name = || vigil_event::flags::signal_name(signal.unwrap_or(0));
        match sys {
            Sysno::kill => {
                let target = int(0).unwrap_or(0);
                let group = match target {
                    t if t > 0 => {
                        return if t == me {
                            refuse(sig_name())
                        } else {
                            Guarded::Allow
                        };
                    }
                    0 => Group::Pgrp(pgid(pid)),
                    -1 => Group::All,
                    t => Group::Pgrp((-t) as i32),
                };
                self.guard_group(pid, group, signal.unwrap_or(0), call)
            }
            Sysno::tkill => match int(0) {
                Some(t) if own_tids().contains(&t) => refuse(sig_name()),
                _ => Guarded::Allow,
            },
            Sysno::tgkill | Sysno::rt_tgsigqueueinfo => {
                let tids = own_tids();
                if int(0) == Some(me) || int(1).is_some_and(|t| tids.contains(&t)) {
                    refuse(sig_name())
                } else {
                    Guarded::Allow
                }
            }
            Sysno::rt_sigqueueinfo if int(0) == Some(me) => refuse(sig_name()),
            Sysno::pidfd_send_signal => {
                let fd = raw[0] as i32;
                let pidfd = self.view.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
                match inspect::fd_dup(pidfd, fd).and_then(|ours| inspect::pidfd_pid(&ours)) {
                    Some(p) if p as i64 == me => refuse(sig_name()),
                    _ => Guarded::Allow,
                }
            }
            Sysno::ptrace => {
                let req = int(0).unwrap_or(-1);
                match int(1) {
                    Some(t) if req != PTRACE_TRACEME && own_tids().contains(&t) => {
                        refuse("a ptrace request".into())
                    }
                    _ => Guarded::Allow,
                }
            }
            Sysno::process_vm_writev => match int(0) {
                Some(t) if own_tids().contains(&t) => refuse("a write into its memory".into()),
                _ => Guarded::Allow,
            },
            // New resource limits on vigil (no files, no memory) would break it; reading
            // them (new_limit NULL) is harmless.
            Sysno::prlimit64 if raw[2] != 0 => match int(0) {
                Some(t) if t == me || own_tids().contains(&t) => {
                    refuse("a change of its resource limits".into())
                }
                _ => Guarded::Allow,
            },
            Sysno::clone if raw[0] & CLONE_UNTRACED != 0 => {
                match set_arg(tid, call.abi, 0, raw[0] & !CLONE_UNTRACED) {
                    Ok(()) => Guarded::Changed {
                        detail: format!(
                            "{call}: CLONE_UNTRACED removed: every child of a traced process is traced"
                        ),
                    },
                    Err(_) => Guarded::Refuse {
                        errno: libc::EPERM,
                        detail: format!(
                            "{call}: CLONE_UNTRACED could not be removed: the call is refused"
                        ),
                    },
                }
            }
            Sysno::clone3 => {
                let flags = args.first().and_then(Value::as_uint).unwrap_or(0);
                if flags & CLONE_UNTRACED == 0 {
                    return Guarded::Allow;
                }
                let cleared = (flags & !CLONE_UNTRACED).to_ne_bytes();
                let written = self
                    .view
                    .procs
                    .get_mut(&pid)
                    .map(|p| p.mem.write(raw[0], &cleared));
                match written {
                    Some(Ok(())) => Guarded::Changed {
                        detail: format!(
                            "{call}: CLONE_UNTRACED removed from clone_args: every child of a traced process is traced"
                        ),
                    },
                    _ => Guarded::Refuse {
                        errno: libc::EPERM,
                        detail: format!(
                            "{call}: CLONE_UNTRACED could not be removed: the call is refused"
                        ),
                    },
                }
            }
            _ => Guarded::Allow,
        }
    }

    /// Opening the log for writing, truncating, renaming or unlinking it; opening anything
    /// of vigil's own /proc directory for writing (its memory, its settings).
    fn guard_log(&mut self, sys: Sysno, args: &Args, walked: &Walked) -> Option<Guarded> {
        let flags_of = |i: usize| args.get(i).and_then(Value::as_uint).unwrap_or(0);
        let writes = |f: u64| f & O_ACCMODE != 0 || f & O_TRUNC != 0;
        let opened_for_write = match sys {
            Sysno::open => writes(flags_of(1)),
            Sysno::openat | Sysno::openat2 => writes(flags_of(2)),
            Sysno::creat => true,
            _ => false,
        };
        if opened_for_write {
            let own_proc = walked.iter().any(|(i, _)| {
                args.get(*i)
                    .and_then(Value::as_str)
                    .is_some_and(|p| under(p.as_bytes(), &self.view.vigil_proc))
            });
            if own_proc {
                return Some(Guarded::Refuse {
                    errno: libc::EPERM,
                    detail: format!("{sys}: a write into vigil's own /proc directory: refused"),
                });
            }
        }
        if self.protected.is_empty() {
            return None;
        }
        let hits = walked
            .iter()
            .any(|(_, id)| id.is_some_and(|id| self.protected.contains(&id)));
        if !hits {
            return None;
        }
        let destroys = match sys {
            Sysno::open => writes(flags_of(1)),
            Sysno::openat | Sysno::openat2 => writes(flags_of(2)),
            Sysno::creat
            | Sysno::truncate
            | Sysno::unlink
            | Sysno::unlinkat
            | Sysno::rmdir
            | Sysno::rename
            | Sysno::renameat
            | Sysno::renameat2 => true,
            _ => false,
        };
        Some(if destroys {
            Guarded::Refuse {
                errno: libc::EPERM,
                detail: format!(
                    "{sys}: would write over, truncate, move or remove vigil's own log: refused"
                ),
            }
        } else {
            Guarded::Allow
        })
    }

    /// A signal to a process group (or every process) that includes vigil. Catchable
    /// signals go through (vigil ignores them from traced processes); SIGKILL and SIGSTOP,
    /// which it cannot ignore, are delivered by vigil to every other member instead.
    fn guard_group(&mut self, caller: i32, group: Group, signal: i64, call: SyscallId) -> Guarded {
        let me = self.view.vigil_pid;
        let mine = pgid(0);
        let includes_me = match group {
            Group::Pgrp(g) => g == mine,
            Group::All => true,
        };
        if !includes_me || (signal != SIGKILL && signal != SIGSTOP) {
            return Guarded::Allow;
        }
        let Some(caller_creds) = creds(caller) else {
            return Guarded::Allow;
        };
        let caller_ns = self.view.task_ns(caller).map(|n| n.ns);
        let (mut sent, mut denied) = (0usize, 0usize);
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                if p == me {
                    continue;
                }
                let member = match group {
                    Group::Pgrp(g) => stat_pgrp(p) == Some(g),
                    // kill(-1): all but init and the caller, as far as the caller can see.
                    Group::All => {
                        p != 1
                            && p != caller
                            && caller_ns.is_some()
                            && crate::nsmap::ns_ids(p).map(|n| n.ns) == caller_ns
                    }
                };
                if !member {
                    continue;
                }
                if may_signal(&caller_creds, p) {
                    // SAFETY: kill takes integers only.
                    if unsafe { libc::kill(p, signal as i32) } == 0 {
                        sent += 1;
                    }
                } else {
                    denied += 1;
                }
            }
        }
        // vigil itself counts as signalled: natively the call would have reached it.
        let ret = if sent > 0 || matches!(group, Group::Pgrp(_)) {
            0
        } else if denied > 0 {
            -(libc::EPERM as i64)
        } else {
            -(libc::ESRCH as i64)
        };
        let whom = match group {
            Group::Pgrp(g) => format!("process group {g}"),
            Group::All => "every process".into(),
        };
        Guarded::Emulated {
            ret,
            detail: format!(
                "{call}: {} to {whom}, which includes vigil: delivered by vigil to the {sent} other process(es) instead",
                vigil_event::flags::signal_name(signal)
            ),
        }
    }
}

/// Whether `path` is `dir` or below it.
fn under(path: &[u8], dir: &[u8]) -> bool {
    path.starts_with(dir) && matches!(path.get(dir.len()), None | Some(b'/'))
}

/// Sets argument `index` of the syscall a thread is stopped at (seccomp stop).
pub fn set_arg(tid: i32, abi: Abi, index: usize, value: u64) -> nix::Result<()> {
    let p = Pid::from_raw(tid);
    let mut regs = ptrace::getregs(p)?;
    let slot = match (abi, index) {
        (Abi::I386, 0) => &mut regs.rbx,
        (Abi::I386, 1) => &mut regs.rcx,
        (Abi::I386, 2) => &mut regs.rdx,
        (Abi::I386, 3) => &mut regs.rsi,
        (Abi::I386, 4) => &mut regs.rdi,
        (Abi::I386, _) => &mut regs.rbp,
        (_, 0) => &mut regs.rdi,
        (_, 1) => &mut regs.rsi,
        (_, 2) => &mut regs.rdx,
        (_, 3) => &mut regs.r10,
        (_, 4) => &mut regs.r8,
        (_, _) => &mut regs.r9,
    };
    *slot = value;
    ptrace::setregs(p, regs)
}
