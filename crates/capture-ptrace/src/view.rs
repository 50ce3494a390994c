//! What the recorder knows of the traced processes, and the bookkeeping that keeps it true: the
//! threads and processes it follows (each with its fd table, cwd and root, credentials, argv and
//! executable, memory access, address space), the call each thread is in, the pid namespaces,
//! and the one sequence every event goes out in. Decoding a call (decode.rs, walk.rs, nsmap.rs)
//! reads and updates it; so do the lifecycle steps here (a process started, a task created by
//! fork/clone, an exec, a signal, a task's end).
//!
//! None of it resumes or changes a thread (it reads registers, memory and /proc): the one who
//! waits and resumes is elsewhere, the recorder's own loop (tracer.rs, which adds the guard, the
//! shared-memory monitor and io_uring on top) or a caller's (observer.rs). Both drive this same
//! code, so a log is the same whoever ran the program.

use crate::decode::Walked;
use crate::fs::{Fs, SharedFds, SharedFs};
use crate::inspect;
use crate::memory::Memory;
use crate::nsmap::NsIds;
use crate::uring::Rings;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use syscalls::Sysno;
use vigil_capture::{EventSink, Selection, Sequencer, Verdict};
use vigil_event::syscall::Bookkeeping;
use vigil_event::*;
use vigil_tracee::{Decoded, Stop};

/// A syscall between its entry and exit stops.
pub struct Pending {
    pub call: SyscallId,
    pub entry_seq: u64,
    pub raw: [u64; 6],
    pub args: Args,
    /// What each path argument named when vigil walked it at entry.
    pub walked: Walked,
    pub record: bool,
    /// Resumed with PTRACE_SYSCALL: an exit stop will come.
    pub awaiting_exit: bool,
    /// The task this call created (its fork/clone event came during the call).
    pub created: Option<i32>,
    /// Kernel writes into shared mappings this call may make, emitted after its exit.
    pub smo_out: Vec<SmoAccess>,
    /// A read of this process's maps file, for which its protections were given back.
    pub smo_maps_of: Option<i32>,
}

impl Pending {
    /// A call kept for its exit alone: no guard, no shared-memory work (the observer's).
    pub fn plain(
        call: SyscallId,
        entry_seq: u64,
        raw: [u64; 6],
        args: Args,
        walked: Walked,
        record: bool,
    ) -> Self {
        Pending {
            call,
            entry_seq,
            raw,
            args,
            walked,
            record,
            awaiting_exit: true,
            created: None,
            smo_out: Vec::new(),
            smo_maps_of: None,
        }
    }
}

pub struct Thread {
    pub pid: i32,
    pub pending: Option<Pending>,
    pub files: SharedFds,
    pub fs: SharedFs,
}

pub struct Process {
    pub ppid: i32,
    pub exe: Str,
    pub argv: Arc<[Str]>,
    pub creds: Creds,
    pub mem: Memory,
    pidfd: Option<Option<OwnedFd>>,
    /// Its io_uring rings and what was submitted through them.
    pub rings: Rings,
}

impl Process {
    pub fn pidfd(&mut self, pid: i32) -> Option<&OwnedFd> {
        self.pidfd
            .get_or_insert_with(|| inspect::pidfd_open(pid))
            .as_ref()
    }
}

/// The traced processes as vigil knows them, and the event sequence.
pub struct View<'s> {
    /// Numbers events and hands them to the sink (which may fail: then nothing more is
    /// recorded).
    pub(crate) out: Sequencer<'s>,
    /// Whether a kill or stop verdict of the sink is carried out here (the recorder) or left
    /// to whoever drives this (the observer: not at all).
    pub(crate) apply_verdicts: bool,
    pub(crate) selection: Selection,
    pub(crate) threads: HashMap<i32, Thread>,
    pub(crate) procs: HashMap<i32, Process>,
    /// Not every fd-changing call stops the tracee: check the fd table before trusting it.
    pub(crate) validate_fds: bool,
    /// vigil's own pid, and `/proc/<it>`, which a path walk must not end in (walk.rs).
    pub(crate) vigil_pid: i32,
    pub(crate) vigil_proc: Vec<u8>,
    /// Top-level directories seen to be symlinks (walk.rs).
    pub(crate) top_symlinks: RefCell<std::collections::HashSet<Vec<u8>>>,
    /// vigil's pid namespace, and the namespace ids of traced tasks that needed translating.
    pub(crate) own_pidns: u64,
    pub(crate) ns_cache: HashMap<i32, NsIds>,
    /// Something decides at a call's entry (a rule that may deny): paths are walked there
    /// for every call. Otherwise an open for reading is walked by the kernel alone, its exit
    /// holding the answer (decode.rs).
    pub(crate) exact_entry: bool,
    /// Report a path that changed during a call even when its entry was not walked (lazy):
    /// checked after the call (decode.rs). `watch` asks for it, `record` does not.
    pub(crate) report_path_changes: bool,
    /// Actions vigil took while handling the current stop, emitted after its event.
    pub(crate) generated_actions: Vec<(u32, u32, EventKind)>,
    /// Each process's address space (procstate: fork copies, CLONE_VM shares, exec replaces),
    /// fed by the recorded mmap/munmap/mprotect/mremap/brk/shmat/shmdt exits and loaded from
    /// /proc/PID/maps at each exec; `None` when none of those calls is selected (they are never
    /// trapped just for the model).
    pub(crate) spaces: Option<vigil_procstate::Processes>,
    /// Buffer for reading /proc/PID/maps.
    maps_buf: Vec<u8>,
}

impl<'s> View<'s> {
    pub fn new(sink: &'s mut dyn EventSink, selection: Selection) -> Self {
        let validate_fds = !selection.all
            && syscall::known()
                .filter(|(_, s)| s.bookkeeping == Bookkeeping::Fd)
                .any(|(n, _)| !selection.nrs.contains(&(n.id() as u32)));
        View {
            out: Sequencer::new(sink),
            apply_verdicts: true,
            validate_fds,
            vigil_pid: std::process::id() as i32,
            vigil_proc: format!("/proc/{}", std::process::id()).into_bytes(),
            top_symlinks: Default::default(),
            own_pidns: crate::nsmap::own_ns(),
            ns_cache: HashMap::new(),
            exact_entry: true,
            report_path_changes: true,
            generated_actions: Vec::new(),
            spaces: tracks_address_spaces(&selection).then(vigil_procstate::Processes::new),
            maps_buf: Vec::new(),
            selection,
            threads: HashMap::new(),
            procs: HashMap::new(),
        }
    }

    pub(crate) fn emit(&mut self, pid: i32, tid: i32, kind: EventKind) {
        let _ = self.emit_for_verdict(pid, tid, kind);
    }

    /// Hands an event to the sink and applies what it asks for (kill/stop the process) when
    /// verdicts are this side's; returns the verdict so a syscall entry can be denied.
    pub(crate) fn emit_for_verdict(&mut self, pid: i32, tid: i32, kind: EventKind) -> Verdict {
        let d = self.out.emit(pid as u32, tid as u32, kind);
        if !self.apply_verdicts {
            return d.verdict;
        }
        for (other, v) in d.others {
            // Only a process still traced (not reaped): its pid cannot be someone else's yet.
            if self.threads.values().any(|t| t.pid as u32 == other) {
                signal(other as i32, v);
            }
        }
        signal(pid, d.verdict);
        d.verdict
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.out.next_seq()
    }

    /// The sink failed (a full disk): nothing more is recorded.
    pub(crate) fn draining(&self) -> bool {
        self.out.failed().is_some()
    }

    /// An action vigil itself took about a process, logged like any event.
    pub(crate) fn action(&mut self, pid: i32, tid: i32, action: &str, detail: String) {
        self.emit(
            pid,
            tid,
            EventKind::Action(Action {
                action: Str::from(action),
                by: Str::from(""),
                target_pid: pid as u32,
                detail: Str::from(detail),
            }),
        );
    }

    /// A call's entry event when it is recorded: its seq (the seq it would have had
    /// otherwise) and what the sink wants done about it.
    pub(crate) fn emit_entry(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        args: &Args,
        record: bool,
    ) -> (u64, Verdict) {
        let entry_seq = self.next_seq();
        if !record {
            return (entry_seq, Verdict::Continue);
        }
        let verdict = self.emit_for_verdict(
            pid,
            tid,
            EventKind::SyscallEntry(SyscallEntry {
                call,
                args: args.clone(),
            }),
        );
        (entry_seq, verdict)
    }

    /// Emits the actions queued while the current stop was handled.
    pub(crate) fn flush_actions(&mut self) {
        for (pid, tid, kind) in std::mem::take(&mut self.generated_actions) {
            self.emit(pid as i32, tid as i32, kind);
        }
    }

    pub(crate) fn thread_files(&self, tid: i32) -> Option<SharedFds> {
        self.threads.get(&tid).map(|t| t.files.clone())
    }

    /// The first process, started by vigil (its parent) and not yet exec'd: `program` is what
    /// it is about to run. Emits its start.
    pub(crate) fn add_root(&mut self, pid: i32, program: Str, argv: Arc<[Str]>) {
        let files: SharedFds = Rc::new(RefCell::new(Default::default()));
        let fs: SharedFs = Rc::new(RefCell::new(Fs::new(inspect::cwd(pid))));
        let creds = inspect::creds(pid).unwrap_or_default();
        self.threads.insert(
            pid,
            Thread {
                pid,
                pending: None,
                files,
                fs,
            },
        );
        self.procs.insert(
            pid,
            Process {
                ppid: std::process::id() as i32,
                exe: program.clone(),
                argv: argv.clone(),
                creds: creds.clone(),
                mem: Memory::new(pid),
                pidfd: None,
                rings: Rings::default(),
            },
        );
        if let Some(st) = self.spaces.as_mut() {
            st.add_process(
                pid as u32,
                std::process::id(),
                vigil_procstate::FdTable::new(),
                vigil_procstate::FsState::default(),
                vigil_procstate::AddressSpace::new(),
            );
        }
        self.emit(
            pid,
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid: std::process::id(),
                exe: program,
                argv,
                creds,
                clone_flags: 0,
            }),
        );
    }

    /// The clone flags of the call that created a task (`event`: the PTRACE_EVENT_* of its
    /// creator's stop), from the creator's registers (it is stopped inside the call).
    pub(crate) fn clone_flags_of(&mut self, tid: i32, event: i32) -> u64 {
        if event == libc::PTRACE_EVENT_FORK {
            return libc::SIGCHLD as u64;
        }
        if event == libc::PTRACE_EVENT_VFORK {
            return (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | libc::SIGCHLD as u64;
        }
        let Ok(regs) = ptrace::getregs(Pid::from_raw(tid)) else {
            return 0;
        };
        match regs.orig_rax as i64 {
            n if n == libc::SYS_clone => regs.rdi,
            n if n == libc::SYS_clone3 => {
                let pid = self.threads.get(&tid).map_or(tid, |t| t.pid);
                self.procs
                    .get_mut(&pid)
                    .and_then(|p| p.mem.read_u64(regs.rdi).ok())
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// A task `parent_tid` created with `flags`: a thread of its process, or a new process
    /// (fork copies the fd table, cwd and address space; CLONE_FILES, CLONE_FS and CLONE_VM
    /// share them). Emits its start. False when the creator is not followed.
    pub(crate) fn add_task(&mut self, parent_tid: i32, child: i32, flags: u64) -> bool {
        let Some(parent) = self.threads.get(&parent_tid) else {
            return false;
        };
        let ppid = parent.pid;
        if let Some(st) = self.spaces.as_mut() {
            // CLONE_VM shares the parent's address space, a fork copies it.
            let _ = st.clone_task(parent_tid as u32, child as u32, flags);
        }
        let files = if flags & libc::CLONE_FILES as u64 != 0 {
            parent.files.clone()
        } else {
            Rc::new(RefCell::new(parent.files.borrow().clone()))
        };
        let fs = if flags & libc::CLONE_FS as u64 != 0 {
            parent.fs.clone()
        } else {
            Rc::new(RefCell::new(parent.fs.borrow().clone()))
        };
        if flags & libc::CLONE_THREAD as u64 != 0 {
            self.threads.insert(
                child,
                Thread {
                    pid: ppid,
                    pending: None,
                    files,
                    fs,
                },
            );
            self.emit(
                ppid,
                child,
                EventKind::ThreadStart(ThreadStart {
                    creator_tid: parent_tid as u32,
                }),
            );
            return true;
        }
        let Some(p) = self.procs.get(&ppid) else {
            return false;
        };
        // CLONE_PARENT: the new process is a sibling of its creator.
        let real_ppid = if flags & libc::CLONE_PARENT as u64 != 0 {
            p.ppid
        } else {
            ppid
        };
        let start = ProcessStart {
            ppid: real_ppid as u32,
            exe: p.exe.clone(),
            argv: p.argv.clone(),
            creds: p.creds.clone(),
            clone_flags: flags,
        };
        let proc_ = Process {
            ppid: real_ppid,
            exe: p.exe.clone(),
            argv: p.argv.clone(),
            creds: p.creds.clone(),
            mem: Memory::new(child),
            pidfd: None,
            rings: p.rings.inherit(),
        };
        self.procs.insert(child, proc_);
        self.threads.insert(
            child,
            Thread {
                pid: child,
                pending: None,
                files,
                fs,
            },
        );
        self.emit(child, child, EventKind::ProcessStart(start));
        true
    }

    /// A successful exec by thread `former` (now `tid`: a non-leader thread that execs takes
    /// over the leader's tid): the process's new program, argv, credentials and fd table
    /// (close-on-exec fds gone), its exec event and its new address space. Returns its pid;
    /// `None` when the thread is not followed.
    pub(crate) fn exec(&mut self, tid: i32, former: i32) -> Option<i32> {
        if former != tid
            && let Some(t) = self.threads.remove(&former)
        {
            self.threads.insert(tid, t);
        }
        let thread = self.threads.get_mut(&tid)?;
        let pid = thread.pid;
        // exec gives the process its own fd table and closes close-on-exec fds.
        let table = thread.files.borrow().clone();
        thread.files = Rc::new(RefCell::new(table));
        thread.files.borrow_mut().exec();
        // argv as the kernel placed it in the new image (for a script, the interpreter's
        // argv): not what vigil read at entry, which a thread could have changed since.
        let argv = match inspect::cmdline(pid) {
            Some(a) => a,
            None => thread
                .pending
                .as_ref()
                .and_then(|p| {
                    let at = p
                        .call
                        .signature()
                        .args
                        .iter()
                        .position(|a| a.kind == ArgKind::Argv)?;
                    p.args.get(at)?.as_list().cloned()
                })
                .unwrap_or_else(|| Arc::from(Vec::new())),
        };
        let (exe, dev, ino, setid) = inspect::exe(pid);
        let inherited = self.procs.get(&pid).map(|p| p.creds.clone());
        let creds = match inherited {
            Some(c) if !setid => c,
            _ => inspect::creds(pid).unwrap_or_default(),
        };
        if let Some(p) = self.procs.get_mut(&pid) {
            p.exe = exe.clone();
            p.argv = argv.clone();
            p.creds = creds.clone();
            // The old address space is gone; so is any cached /proc/PID/mem, and the rings'
            // mappings.
            p.mem = Memory::new(pid);
            p.rings = Rings::default();
        }
        self.emit(
            pid,
            tid,
            EventKind::ProcessExec(ProcessExec {
                exe,
                argv,
                creds,
                dev,
                ino,
            }),
        );
        self.exec_address_space(pid, former);
        Some(pid)
    }

    /// exec replaced the process's address space: the model takes the new one from
    /// /proc/PID/maps, and the log gets it as a snapshot event.
    fn exec_address_space(&mut self, pid: i32, former: i32) {
        let Some(st) = self.spaces.as_mut() else {
            return;
        };
        if st.exec(pid as u32, former as u32).is_err() {
            st.adopt(pid as u32, pid as u32);
        }
        let snap = match inspect::maps(pid, &mut self.maps_buf) {
            Some(text) if st.load_maps(pid as u32, &text).is_ok() => {
                st.mm(pid as u32).map(|m| m.snapshot())
            }
            _ => None,
        };
        if let Some(snap) = snap {
            self.emit(pid, pid, EventKind::AddressSpace(snap));
        }
    }

    /// A recorded syscall exit that changes an address space updates the process's model
    /// (procstate applies it as any consumer of the event would). Returns the event's kind.
    pub(crate) fn model_memory(&mut self, pid: i32, tid: i32, kind: EventKind) -> EventKind {
        let Some(st) = self.spaces.as_mut() else {
            return kind;
        };
        let EventKind::SyscallExit(x) = &kind else {
            return kind;
        };
        let changes_memory = match x.call.canonical() {
            Some(s) => MEMORY_CALLS.contains(&s) || s == Sysno::shmget || s == Sysno::madvise,
            // i386 mmap2 has no x86-64 identity; procstate recognises it.
            None => x.call.abi == Abi::I386,
        };
        if !changes_memory {
            return kind;
        }
        let ev = Event {
            seq: 0,
            time_ns: 0,
            pid: pid as u32,
            tid: tid as u32,
            kind,
        };
        // A call the model cannot place (an earlier one was not selected) leaves it as it is;
        // the next exec's snapshot puts it right.
        let _ = st.apply(&ev);
        #[cfg(test)]
        space_check::compare(st, pid);
        ev.kind
    }

    /// A call's exit event, after `finish_call` made its arguments: the address-space model
    /// follows it, and it is emitted when the call is recorded (`emit`). Returns its seq if
    /// it was emitted.
    pub(crate) fn exit_event(
        &mut self,
        pid: i32,
        tid: i32,
        pending: &Pending,
        ret: i64,
        args: Args,
        emit: bool,
    ) -> Option<u64> {
        let kind = self.model_memory(
            pid,
            tid,
            EventKind::SyscallExit(SyscallExit {
                call: pending.call,
                entry_seq: pending.entry_seq,
                ret,
                args,
            }),
        );
        if !emit {
            return None;
        }
        let seq = self.next_seq();
        self.emit(pid, tid, kind);
        Some(seq)
    }

    /// A thread that ended (reaped): its exit event, and its process's when it was the
    /// leader. Returns its pid and whether the process ended; `None` when it was not followed.
    pub(crate) fn task_exit(&mut self, tid: i32, status: ExitStatus) -> Option<(i32, bool)> {
        let thread = self.threads.remove(&tid)?;
        self.ns_cache.remove(&tid);
        let pid = thread.pid;
        if let Some(st) = self.spaces.as_mut() {
            st.exit_thread(tid as u32);
            if tid == pid {
                st.exit_process(pid as u32);
            }
        }
        self.emit(pid, tid, EventKind::ThreadExit(ThreadExit { status }));
        if tid == pid {
            self.procs.remove(&pid);
            self.emit(pid, tid, EventKind::ProcessExit(ProcessExit { status }));
        }
        Some((pid, tid == pid))
    }

    /// What a signal about to be delivered to `tid` is: its code, its sender (as vigil
    /// numbers processes) and, for a fault, what the faulting instruction did. `stop` is the
    /// signal-delivery stop as classified (`None` if it could not be).
    pub(crate) fn signal_delivery(
        &mut self,
        pid: i32,
        tid: i32,
        sig: i32,
        stop: Option<&Stop>,
    ) -> SignalDelivery {
        let fault = stop.and_then(|s| self.fault_of(pid, tid, s));
        let (code, sender_pid, sender_uid) = match stop {
            Some(Stop::Signal { info, .. }) => {
                // SAFETY: si_pid/si_uid are read from the union as the kernel filled it; for
                // signals not sent by a process they are zero or unrelated integers.
                unsafe { (info.code(), info.raw.si_pid() as u32, info.raw.si_uid()) }
            }
            _ => (0, 0, 0),
        };
        let sender = if code <= 0 {
            // si_pid is the sender as the receiver's pid namespace numbers it.
            let real = match self.task_ns(tid) {
                Some(n) if n.ns != self.own_pidns && sender_pid != 0 => {
                    self.translate_pid(tid, sender_pid).unwrap_or(sender_pid)
                }
                _ => sender_pid,
            };
            (real, sender_uid)
        } else {
            (0, 0)
        };
        SignalDelivery {
            signal: sig,
            code,
            sender_pid: sender.0,
            sender_uid: sender.1,
            fault,
        }
    }

    /// The instruction at the thread's IP and what it does at `addr`: (access, executes).
    pub(crate) fn decode_at(
        &mut self,
        pid: i32,
        regs: &vigil_tracee::Regs,
        addr: u64,
    ) -> (Option<MemAccess>, bool, Option<Decoded>) {
        let ip = regs.ip();
        let mut code = [0u8; vigil_tracee::MAX_INSTRUCTION_LEN];
        let n = match self.procs.get_mut(&pid) {
            Some(p) => {
                if p.mem.read(ip, &mut code).is_ok() {
                    code.len()
                } else {
                    // The instruction may end a mapping: what there is up to the page's end.
                    let n = code.len().min((0x1000 - (ip & 0xfff)) as usize);
                    if p.mem.read(ip, &mut code[..n]).is_ok() {
                        n
                    } else {
                        0
                    }
                }
            }
            None => 0,
        };
        let decoded = vigil_tracee::memory_operands(&code[..n], regs).ok();
        let exec = match &decoded {
            Some(d) => addr >= ip && addr < ip + d.len as u64,
            None => addr & !0xfff == ip & !0xfff,
        };
        let access = decoded
            .as_ref()
            .and_then(|d| d.access_at(addr))
            .map(from_tracee);
        (access, exec, decoded)
    }

    /// What a kernel-raised SIGSEGV/SIGBUS/... pointed at, for the signal event.
    pub(crate) fn fault_of(&mut self, pid: i32, tid: i32, stop: &Stop) -> Option<SignalFault> {
        let Stop::Signal { sig, info } = stop else {
            return None;
        };
        if !matches!(
            *sig,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
        ) || info.code() <= 0
        {
            return None;
        }
        let addr = info.fault_addr()?;
        let regs = ptrace::getregs(Pid::from_raw(tid)).ok()?;
        let regs = vigil_tracee::Regs(regs);
        let (access, exec, _) = self.decode_at(pid, &regs, addr);
        Some(SignalFault {
            addr,
            ip: regs.ip(),
            access: match (exec, access) {
                (true, _) => FaultAccess::Execute,
                (false, Some(MemAccess::Read)) => FaultAccess::Read,
                (false, Some(MemAccess::Write)) => FaultAccess::Write,
                (false, Some(MemAccess::ReadWrite)) => FaultAccess::ReadWrite,
                (false, None) => FaultAccess::Unknown,
            },
        })
    }
}

/// The syscall a seccomp or syscall-entry stop is for, in vigil's terms, from the stop's
/// architecture (`x86_64`: AUDIT_ARCH_X86_64; any other is taken as i386) and number. The
/// arguments of an i386 call are cut to their low 32 bits in `raw`: the kernel uses only
/// those (int $0x80 from a 64-bit process included), so must vigil, or a pointer with high
/// bits set would make it read another string than the kernel does.
pub(crate) fn syscall_id(x86_64: bool, nr: u64, raw: &mut [u64; 6]) -> SyscallId {
    let abi = match x86_64 {
        true if nr as u32 & syscall::X32_BIT != 0 => Abi::X32,
        true => Abi::X86_64,
        false => Abi::I386,
    };
    if abi == Abi::I386 {
        for r in raw.iter_mut() {
            *r &= 0xffff_ffff;
        }
    }
    SyscallId { abi, nr: nr as u32 }
}

/// How a reaped thread ended, in the event model's terms.
pub(crate) fn exit_status(exit: vigil_tracee::Exit) -> ExitStatus {
    match exit {
        vigil_tracee::Exit::Exited(c) => ExitStatus::Code(c),
        vigil_tracee::Exit::Killed {
            signal,
            core_dumped,
        } => ExitStatus::Signal {
            signal,
            core_dumped,
        },
    }
}

pub(crate) fn from_tracee(a: vigil_tracee::MemAccess) -> MemAccess {
    match a {
        vigil_tracee::MemAccess::Read => MemAccess::Read,
        vigil_tracee::MemAccess::Write => MemAccess::Write,
        vigil_tracee::MemAccess::ReadWrite => MemAccess::ReadWrite,
    }
}

/// The calls that change an address space, which the model follows.
pub(crate) const MEMORY_CALLS: [Sysno; 7] = [
    Sysno::mmap,
    Sysno::munmap,
    Sysno::mprotect,
    Sysno::mremap,
    Sysno::brk,
    Sysno::shmat,
    Sysno::shmdt,
];

/// Whether address spaces are modelled: only when the calls that change them are recorded
/// (they are never trapped for the model alone).
fn tracks_address_spaces(selection: &Selection) -> bool {
    selection.all
        || MEMORY_CALLS
            .iter()
            .any(|s| selection.nrs.contains(&(s.id() as u32)))
}

/// Carries out a kill or stop verdict on a traced process (a deny is applied at the syscall).
fn signal(pid: i32, verdict: Verdict) {
    let sig = match verdict {
        Verdict::Kill => Signal::SIGKILL,
        Verdict::Stop => Signal::SIGSTOP,
        Verdict::Continue | Verdict::Deny(_) => return,
    };
    // It may be gone already: nothing left to do then.
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
}

/// Tests of the address-space model fed by the recorder: with checking on (this thread), after
/// each memory call the model is compared with the kernel's /proc/PID/maps page by page.
#[cfg(test)]
pub(crate) mod space_check {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use vigil_procstate::{AddressSpace, Processes, Role};

    thread_local! {
        /// (comparisons made, differences found), when checking is on.
        pub static CHECK: RefCell<Option<(usize, Vec<String>)>> = const { RefCell::new(None) };
    }

    /// Page -> (prot, shared, object identity, page offset), the main stack left out (it
    /// grows behind any model's back).
    fn pages(a: &AddressSpace) -> BTreeMap<u64, (u8, bool, Option<String>, u64)> {
        let mut out = BTreeMap::new();
        for v in a.iter().filter(|v| v.role != Role::Stack) {
            for addr in (v.start..v.end).step_by(4096) {
                let obj = v.object().map(|o| format!("{o:?}"));
                let off = v.offset_at(addr).unwrap_or(0);
                out.insert(addr, (v.prot.bits(), v.shared, obj, off));
            }
        }
        out
    }

    pub fn compare(st: &Processes, pid: i32) {
        CHECK.with(|c| {
            let mut c = c.borrow_mut();
            let Some((n, diffs)) = c.as_mut() else {
                return;
            };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
                return;
            };
            let (Ok(real), Some(model)) = (vigil_procstate::parse_maps(&text), st.mm(pid as u32))
            else {
                diffs.push(format!("{pid}: no model"));
                return;
            };
            *n += 1;
            let (want, got) = (pages(&real), pages(model));
            if want != got {
                diffs.push(format!(
                    "{pid}: real\n{text}model\n{}",
                    model.to_maps_text()
                ));
            }
        });
    }
}
