//! Keeping the registry from decoded events alone: what an offline analysis of a log, an eBPF
//! backend or any consumer without a tracee does, so each computes the same fd tables, cwds
//! and address spaces as the recorder. (The ptrace recorder calls the lower-level methods
//! instead, with targets from the kernel's own answers.)
//!
//! Calls are matched on their identity (`SyscallId::canonical`, i.e. `Sysno`), never on
//! names. What each does to the state is taken from the exit event (the kernel's result and
//! the outputs); entries only note clone flags for the `process_start` / `thread_start` that
//! follows. A process or thread met for the first time is adopted with empty tables, so a
//! system-wide stream that starts mid-way still converges. A failed call changes nothing
//! except where the kernel's failure has effects (close always closes; mprotect and madvise
//! change the part before a hole).

use crate::fd::{CLOSE_RANGE_CLOEXEC, CLOSE_RANGE_UNSHARE};
use crate::mem::{
    MAP_ANONYMOUS, MAP_PRIVATE, MAP_TYPE, MappedObject, MemError, Mmap, ObjectId, PAGE_SIZE,
};
use crate::procs::{
    CLONE_FILES, CLONE_PARENT, CLONE_THREAD, CLONE_VFORK, CLONE_VM, Processes, StateError,
    THREAD_FLAGS,
};
use std::sync::Arc;
use syscalls::Sysno;
use vigil_event::{Abi, Event, EventKind, Socket, Str, SyscallExit, Target, Value};

const O_CLOEXEC: u64 = 0o2000000;
const F_DUPFD: u64 = 0;
const F_SETFD: u64 = 2;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;
const SIGCHLD: u64 = 17;
const ENOMEM: i32 = 12;
const EINPROGRESS: i32 = 115;

/// A number from a recorded value (through any resolved/cut wrapper; an fd's number).
pub(crate) fn num(v: &Value) -> Option<u64> {
    match v.plain() {
        Value::Uint(x) => Some(*x),
        Value::Int(x) => Some(*x as u64),
        Value::Fd(fd) => Some(fd.num as i64 as u64),
        _ => None,
    }
}

pub(crate) fn arg(ev: &Event, name: &str) -> Option<u64> {
    ev.arg(name).and_then(num)
}

fn need(ev: &Event, call: &SyscallExit, name: &'static str) -> Result<u64, StateError> {
    arg(ev, name).ok_or_else(|| StateError::Missing {
        call: call.call.to_string(),
        what: name,
    })
}

/// The fd number and target of an fd-valued argument or output.
fn fd_value(ev: &Event, name: &str) -> Option<(i32, Option<Arc<Target>>)> {
    let fd = ev.arg(name)?.as_fd()?;
    Some((fd.num, fd.target.clone()))
}

fn other(label: &str) -> Arc<Target> {
    Arc::new(Target::Other {
        label: Str::from(label),
        ino: 0,
    })
}

fn mem_err(call: &SyscallExit) -> impl FnOnce(MemError) -> StateError + '_ {
    move |source| StateError::Mem {
        call: call.call.to_string(),
        source,
    }
}

/// The object an fd names, as a mapping sees it.
fn mapped_object(target: Option<&Target>) -> MappedObject {
    match target {
        Some(Target::File { path, dev, ino }) => MappedObject {
            id: ObjectId::File {
                dev: *dev,
                ino: *ino,
            },
            path: path.clone(),
        },
        Some(t) => MappedObject {
            id: ObjectId::File {
                dev: 0,
                ino: t.ino(),
            },
            path: Str::from(t.to_string()),
        },
        None => MappedObject {
            id: ObjectId::File { dev: 0, ino: 0 },
            path: Str::from("?"),
        },
    }
}

/// A path argument as a target, made absolute against the cwd when it is not already.
fn path_target(p: &Processes, tid: u32, path: &Str) -> Arc<Target> {
    let bytes = path.as_bytes();
    let path = if bytes.first() == Some(&b'/') {
        path.clone()
    } else {
        match p.fs(tid).and_then(|f| f.cwd_path()) {
            Some(cwd) => {
                let mut full = cwd.to_vec();
                if full.last() != Some(&b'/') {
                    full.push(b'/');
                }
                full.extend_from_slice(bytes);
                Str::from(full)
            }
            None => path.clone(),
        }
    };
    Arc::new(Target::File {
        path,
        dev: 0,
        ino: 0,
    })
}

impl Processes {
    /// Updates the state with what one event says happened. Errors say what could not be
    /// applied (an argument not recorded, a SysV segment of unknown size, a call the model
    /// thinks impossible); the state stays usable and the next events apply as usual.
    pub fn apply(&mut self, ev: &Event) -> Result<(), StateError> {
        let (pid, tid) = (ev.pid, ev.tid);
        match &ev.kind {
            EventKind::SyscallEntry(e) => {
                let flags = match e.call.canonical() {
                    Some(Sysno::fork) => Some(SIGCHLD),
                    Some(Sysno::vfork) => Some(CLONE_VM | CLONE_VFORK | SIGCHLD),
                    Some(Sysno::clone | Sysno::clone3) => Some(arg(ev, "flags").unwrap_or(0)),
                    _ => None,
                };
                if let Some(f) = flags {
                    self.adopt(pid, tid);
                    self.in_clone.insert(tid, f);
                }
                Ok(())
            }
            EventKind::SyscallExit(x) => {
                self.adopt(pid, tid);
                let r = if x.restarted() {
                    Ok(())
                } else {
                    self.apply_exit(ev, x)
                };
                if matches!(
                    x.call.canonical(),
                    Some(Sysno::fork | Sysno::vfork | Sysno::clone | Sysno::clone3)
                ) {
                    self.in_clone.remove(&tid);
                }
                r
            }
            // A snapshot (taken at exec from /proc/PID/maps) replaces what the model had.
            EventKind::AddressSpace(snap) => {
                self.adopt(pid, tid);
                let mm = crate::maps::from_snapshot(snap)?;
                self.set_address_space(pid, mm)
            }
            // Accesses through memory and the monitor's verdicts change no process state.
            EventKind::SmoAccess(_) | EventKind::Divergence(_) => Ok(()),
            EventKind::ProcessStart(s) => {
                let Some(creator) = self.creator_of(s.ppid, s.clone_flags) else {
                    // Its parent is not traced (the traced command itself): nothing to
                    // inherit that the events say.
                    self.add_process(
                        pid,
                        s.ppid,
                        crate::FdTable::new(),
                        crate::FsState::default(),
                        crate::AddressSpace::new(),
                    );
                    return Ok(());
                };
                self.clone_task(creator, pid, s.clone_flags & !CLONE_THREAD)?;
                if s.clone_flags & CLONE_PARENT == 0 && self.ppid_of(pid) != Some(s.ppid) {
                    // The creator was guessed; the event's parent stands.
                    self.set_ppid(pid, s.ppid);
                }
                Ok(())
            }
            EventKind::ThreadStart(t) => {
                self.adopt(pid, t.creator_tid);
                let flags = match self.in_clone.get(&t.creator_tid) {
                    Some(f) if f & CLONE_THREAD != 0 => *f,
                    _ => THREAD_FLAGS,
                };
                self.clone_task(t.creator_tid, tid, flags)
            }
            EventKind::ProcessExec(_) => {
                self.adopt(pid, tid);
                self.exec(pid, tid)
            }
            EventKind::ThreadExit(_) => {
                self.exit_thread(tid);
                Ok(())
            }
            EventKind::ProcessExit(_) => {
                self.exit_process(pid);
                Ok(())
            }
            EventKind::Signal(_) | EventKind::Lost(_) | EventKind::Action(_) => Ok(()),
        }
    }

    /// The thread that created a new process whose parent is `ppid`: a thread of that process
    /// (of its parent, with CLONE_PARENT) in a clone-family call, else its leader; `None` when
    /// the parent is not known at all.
    fn creator_of(&self, ppid: u32, flags: u64) -> Option<u32> {
        let candidates: Vec<(u32, u64)> = self
            .in_clone
            .iter()
            .filter(|(t, _)| {
                let Some(p) = self.pid_of(**t) else {
                    return false;
                };
                if flags & CLONE_PARENT != 0 {
                    self.ppid_of(p) == Some(ppid)
                } else {
                    p == ppid
                }
            })
            .map(|(t, f)| (*t, *f))
            .collect();
        if let Some((t, _)) = candidates
            .iter()
            .find(|(_, f)| *f == flags)
            .or(candidates.first())
        {
            return Some(*t);
        }
        if self.has_thread(ppid) {
            return Some(ppid);
        }
        // With CLONE_PARENT the creator is a child of `ppid`; without an entry event saying
        // which, any known thread whose process has that parent.
        (flags & CLONE_PARENT != 0)
            .then(|| {
                self.pids()
                    .find(|p| self.ppid_of(*p) == Some(ppid) && self.has_thread(*p))
            })
            .flatten()
    }

    fn new_fd(&mut self, tid: u32, fd: i64, target: Arc<Target>, cloexec: bool) {
        if let (Ok(fd), Some(t)) = (i32::try_from(fd), self.files_mut(tid)) {
            t.insert(fd, target, cloexec);
        }
    }

    /// An fd a call created: the number and target from its output when recorded, else the
    /// return value and `fallback`.
    fn created_fd(
        &mut self,
        ev: &Event,
        x: &SyscallExit,
        output: &str,
        fallback: impl FnOnce(&Processes) -> Arc<Target>,
        cloexec: bool,
    ) {
        let (fd, target) = match fd_value(ev, output) {
            Some((fd, t)) => (fd as i64, t),
            // Through io_uring, only the recorded output says an fd (not a registered
            // "direct" descriptor) was created.
            None if x.call.abi == Abi::IoUring => return,
            None => (x.ret, None),
        };
        let target = target.unwrap_or_else(|| fallback(self));
        self.new_fd(ev.tid, fd, target, cloexec);
    }

    fn apply_exit(&mut self, ev: &Event, x: &SyscallExit) -> Result<(), StateError> {
        let tid = ev.tid;
        let ok = !x.failed();
        let Some(call) = x.call.canonical() else {
            if x.call.abi == Abi::I386
                && syscalls::x86::Sysno::new(x.call.nr as usize)
                    == Some(syscalls::x86::Sysno::mmap2)
                && ok
            {
                return self.apply_mmap(ev, x, true);
            }
            return Ok(());
        };
        // Flags of calls outside the table (GENERIC signature: arg0..arg5); unknown
        // close-on-exec flags count as set, so exec forgets such an fd rather than keep a
        // stale one.
        let generic_flag =
            |i: usize, bit: u64| arg(ev, &format!("arg{i}")).is_none_or(|f| f & bit != 0);
        match call {
            Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat if ok => {
                let cloexec =
                    call != Sysno::creat && arg(ev, "flags").is_some_and(|f| f & O_CLOEXEC != 0);
                let path = ev.arg("path").and_then(Value::as_str).cloned();
                self.created_fd(
                    ev,
                    x,
                    "fd",
                    |p| match &path {
                        Some(path) => path_target(p, tid, path),
                        None => other("?"),
                    },
                    cloexec,
                );
            }
            Sysno::close => {
                // The fd is released whatever close returns.
                if let (Some(fd), Some(t)) = (arg(ev, "fd"), self.files_mut(tid)) {
                    t.remove(fd as i32);
                }
            }
            Sysno::close_range if ok => {
                let first = need(ev, x, "first")?;
                let last = need(ev, x, "last")?;
                let flags = arg(ev, "flags").unwrap_or(0);
                if flags & CLOSE_RANGE_UNSHARE != 0 {
                    self.unshare(tid, CLONE_FILES)?;
                }
                if let Some(t) = self.files_mut(tid) {
                    t.close_range(first as u32, last as u32, flags & CLOSE_RANGE_CLOEXEC != 0);
                }
            }
            Sysno::dup | Sysno::dup2 | Sysno::dup3 if ok => {
                let old = need(ev, x, "oldfd")? as i32;
                let cloexec =
                    call == Sysno::dup3 && arg(ev, "flags").is_some_and(|f| f & O_CLOEXEC != 0);
                self.dup_fd(ev, tid, old, x.ret, cloexec, "oldfd");
            }
            Sysno::fcntl if ok => {
                let fd = need(ev, x, "fd")? as i32;
                match need(ev, x, "cmd")? {
                    F_DUPFD | F_DUPFD_CLOEXEC => {
                        let cloexec = arg(ev, "cmd") == Some(F_DUPFD_CLOEXEC);
                        self.dup_fd(ev, tid, fd, x.ret, cloexec, "fd");
                    }
                    F_SETFD => {
                        let on = arg(ev, "arg").is_some_and(|a| a & FD_CLOEXEC != 0);
                        if let Some(t) = self.files_mut(tid) {
                            t.set_cloexec(fd, on);
                        }
                    }
                    _ => {}
                }
            }
            Sysno::pipe | Sysno::pipe2 if ok => {
                let cloexec =
                    call == Sysno::pipe2 && arg(ev, "flags").is_some_and(|f| f & O_CLOEXEC != 0);
                for out in ["rfd", "wfd"] {
                    if let Some((fd, t)) = fd_value(ev, out) {
                        let t = t.unwrap_or_else(|| Arc::new(Target::Pipe { ino: 0 }));
                        self.new_fd(tid, fd as i64, t, cloexec);
                    }
                }
            }
            Sysno::socket if ok => {
                let ty = arg(ev, "type").unwrap_or(0);
                let domain = arg(ev, "domain").unwrap_or(0);
                self.created_fd(
                    ev,
                    x,
                    "fd",
                    |_| {
                        Arc::new(Target::Socket(Socket {
                            ino: 0,
                            family: domain as u16,
                            sock_type: (ty & 0xf) as u16,
                            local: None,
                            remote: None,
                        }))
                    },
                    ty & O_CLOEXEC != 0,
                );
            }
            Sysno::socketpair if ok => {
                let cloexec = arg(ev, "type").is_some_and(|t| t & O_CLOEXEC != 0);
                for out in ["fd0", "fd1"] {
                    if let Some((fd, Some(t))) = fd_value(ev, out) {
                        self.new_fd(tid, fd as i64, t, cloexec);
                    } else if let Some((fd, None)) = fd_value(ev, out) {
                        self.new_fd(tid, fd as i64, other("socket:[?]"), cloexec);
                    }
                }
            }
            Sysno::accept | Sysno::accept4 if ok => {
                let cloexec =
                    call == Sysno::accept4 && arg(ev, "flags").is_some_and(|f| f & O_CLOEXEC != 0);
                self.created_fd(ev, x, "newfd", |_| other("socket:[?]"), cloexec);
            }
            Sysno::connect | Sysno::bind
                if ok || (call == Sysno::connect && x.errno() == Some(EINPROGRESS)) =>
            {
                self.socket_addresses(ev, call == Sysno::connect);
            }
            Sysno::memfd_create if ok => {
                let name = ev
                    .arg("name")
                    .and_then(Value::as_str)
                    .map(|n| n.to_string());
                let cloexec = arg(ev, "flags").is_some_and(|f| f & 1 != 0);
                let label = format!("/memfd:{} (deleted)", name.unwrap_or_default());
                self.created_fd(ev, x, "fd", |_| other(&label), cloexec);
            }
            Sysno::io_uring_setup if ok => {
                self.created_fd(ev, x, "fd", |_| other("anon_inode:[io_uring]"), true);
            }
            Sysno::eventfd
            | Sysno::eventfd2
            | Sysno::signalfd
            | Sysno::signalfd4
            | Sysno::timerfd_create
            | Sysno::epoll_create
            | Sysno::epoll_create1
            | Sysno::inotify_init
            | Sysno::inotify_init1
            | Sysno::fanotify_init
            | Sysno::userfaultfd
            | Sysno::pidfd_open
            | Sysno::pidfd_getfd
            | Sysno::perf_event_open
            | Sysno::memfd_secret
            | Sysno::open_by_handle_at
            | Sysno::open_tree
            | Sysno::fsopen
            | Sysno::fsmount
            | Sysno::fspick
                if ok =>
            {
                let (label, cloexec) = match call {
                    Sysno::eventfd => ("anon_inode:[eventfd]", false),
                    Sysno::eventfd2 => ("anon_inode:[eventfd]", generic_flag(1, O_CLOEXEC)),
                    Sysno::signalfd | Sysno::signalfd4 => {
                        // With an existing signalfd it is modified, not created.
                        if arg(ev, "arg0").is_some_and(|fd| fd as i32 != -1) {
                            return Ok(());
                        }
                        let c = call == Sysno::signalfd4 && generic_flag(3, O_CLOEXEC);
                        ("anon_inode:[signalfd]", c)
                    }
                    Sysno::timerfd_create => ("anon_inode:[timerfd]", generic_flag(1, O_CLOEXEC)),
                    Sysno::epoll_create => ("anon_inode:[eventpoll]", false),
                    Sysno::epoll_create1 => ("anon_inode:[eventpoll]", generic_flag(0, O_CLOEXEC)),
                    Sysno::inotify_init => ("anon_inode:inotify", false),
                    Sysno::inotify_init1 => ("anon_inode:inotify", generic_flag(0, O_CLOEXEC)),
                    Sysno::fanotify_init => ("anon_inode:[fanotify]", generic_flag(0, 1)),
                    Sysno::userfaultfd => ("anon_inode:[userfaultfd]", generic_flag(0, O_CLOEXEC)),
                    Sysno::pidfd_open => ("anon_inode:[pidfd]", true),
                    Sysno::pidfd_getfd => ("?", true),
                    Sysno::perf_event_open => ("anon_inode:[perf_event]", generic_flag(4, 8)),
                    Sysno::memfd_secret => ("/secretmem (deleted)", generic_flag(0, O_CLOEXEC)),
                    Sysno::open_by_handle_at => ("?", generic_flag(2, O_CLOEXEC)),
                    Sysno::open_tree => ("?", generic_flag(2, O_CLOEXEC)),
                    Sysno::fsopen => ("anon_inode:[fscontext]", generic_flag(1, 1)),
                    Sysno::fsmount => ("?", generic_flag(1, 1)),
                    _ => ("anon_inode:[fscontext]", generic_flag(2, 1)),
                };
                self.new_fd(tid, x.ret, other(label), cloexec);
            }
            Sysno::chdir | Sysno::chroot if ok => {
                let Some(path) = ev.arg("path").and_then(Value::as_str).cloned() else {
                    return Err(StateError::Missing {
                        call: x.call.to_string(),
                        what: "path",
                    });
                };
                let t = path_target(self, tid, &path);
                if let Some(fs) = self.fs_mut(tid) {
                    if call == Sysno::chdir {
                        fs.cwd = Some(t);
                    } else {
                        fs.root = Some(t);
                    }
                }
            }
            Sysno::fchdir if ok => {
                let fd = need(ev, x, "fd")? as i32;
                let t = fd_value(ev, "fd")
                    .and_then(|(_, t)| t)
                    .or_else(|| self.files(tid).and_then(|f| f.target(fd).cloned()));
                if let Some(fs) = self.fs_mut(tid) {
                    fs.cwd = t;
                }
            }
            Sysno::unshare if ok => {
                let flags = need(ev, x, "flags")?;
                self.unshare(tid, flags)?;
            }
            Sysno::mmap if ok => return self.apply_mmap(ev, x, false),
            Sysno::munmap if ok => {
                let (addr, len) = (need(ev, x, "addr")?, need(ev, x, "length")?);
                return self.mm_op(ev, x, |m| m.munmap(addr, len));
            }
            Sysno::mprotect if ok || x.errno() == Some(ENOMEM) => {
                let (addr, len) = (need(ev, x, "addr")?, need(ev, x, "length")?);
                let prot = need(ev, x, "prot")?;
                let r = self.mm_op(ev, x, |m| m.mprotect(addr, len, prot));
                // A failure was expected (the hole the kernel found).
                return if ok { r } else { Ok(()) };
            }
            Sysno::madvise if ok || x.errno() == Some(ENOMEM) => {
                let addr = need(ev, x, "arg0")?;
                let len = need(ev, x, "arg1")?;
                let advice = need(ev, x, "arg2")?;
                let r = self.mm_op(ev, x, |m| m.madvise(addr, len, advice));
                return if ok { r } else { Ok(()) };
            }
            Sysno::mremap if ok => {
                let old = need(ev, x, "old_addr")?;
                let old_size = need(ev, x, "old_size")?;
                let new_size = need(ev, x, "new_size")?;
                let flags = need(ev, x, "flags")?;
                let new_addr = arg(ev, "new_addr").unwrap_or(0);
                let ret = x.ret as u64;
                return self.mm_op(ev, x, |m| {
                    m.mremap(old, old_size, new_size, flags, new_addr, ret)
                });
            }
            Sysno::brk => {
                // brk never fails: it returns the break, moved or not.
                let ret = x.ret as u64;
                return self.mm_op(ev, x, |m| m.brk_to(ret));
            }
            Sysno::shmget if ok => {
                let size = need(ev, x, "size")?;
                let key = arg(ev, "key").unwrap_or(0);
                self.add_shm_segment(x.ret, key, size);
            }
            Sysno::shmat if ok => {
                let shmid = need(ev, x, "shmid")? as i64;
                let flags = arg(ev, "flags").unwrap_or(0);
                let size = self
                    .shm_segment(shmid)
                    .map(|s| s.size)
                    .ok_or(StateError::UnknownShmSegment(shmid))?;
                let object = MappedObject {
                    id: ObjectId::SysV(shmid),
                    path: self.shm_path(shmid),
                };
                let addr = x.ret as u64;
                return self.mm_op(ev, x, |m| m.shmat(addr, size, object, flags).map(|_| ()));
            }
            Sysno::shmdt if ok => {
                let addr = need(ev, x, "addr")?;
                return self.mm_op(ev, x, |m| m.shmdt(addr, None).map(|_| ()));
            }
            _ => {}
        }
        Ok(())
    }

    fn mm_op(
        &mut self,
        ev: &Event,
        x: &SyscallExit,
        f: impl FnOnce(&mut crate::mem::AddressSpace) -> Result<(), MemError>,
    ) -> Result<(), StateError> {
        let mm = self
            .mm_mut(ev.pid)
            .ok_or(StateError::UnknownProcess(ev.pid))?;
        f(mm).map_err(mem_err(x))
    }

    fn dup_fd(&mut self, ev: &Event, tid: u32, old: i32, new: i64, cloexec: bool, old_arg: &str) {
        let Ok(new) = i32::try_from(new) else {
            return;
        };
        let known = self
            .files_mut(tid)
            .is_some_and(|t| t.dup(old, new, cloexec));
        if !known {
            // The table did not know the source; the event may.
            let t = fd_value(ev, "fd")
                .filter(|(n, _)| *n == new)
                .and_then(|(_, t)| t)
                .or_else(|| fd_value(ev, old_arg).and_then(|(_, t)| t));
            if let Some(t) = t {
                self.new_fd(tid, new as i64, t, cloexec);
            }
        }
    }

    /// connect/bind: the socket as it is after the call (the recorder's exit event carries
    /// it; otherwise the address argument fills in the side that changed).
    fn socket_addresses(&mut self, ev: &Event, connect: bool) {
        let Some((fd, recorded)) = fd_value(ev, "fd") else {
            return;
        };
        let tid = ev.tid;
        let current = self.files(tid).and_then(|f| f.get(fd).cloned());
        let updated = match (recorded, &current) {
            (Some(t), Some(cur)) if matches!(*t, Target::Socket(_)) && t != cur.target => Some(t),
            (_, Some(cur)) => match &*cur.target {
                Target::Socket(s) => {
                    let addr = match ev.arg("addr").map(Value::plain) {
                        Some(Value::Addr(a)) => Some((**a).clone()),
                        _ => None,
                    };
                    let mut s = s.clone();
                    if connect {
                        s.remote = addr.or(s.remote);
                    } else {
                        s.local = addr.or(s.local);
                    }
                    Some(Arc::new(Target::Socket(s)))
                }
                _ => None,
            },
            (Some(t), None) => Some(t),
            (None, None) => None,
        };
        if let Some(t) = updated {
            let cloexec = current.is_none_or(|c| c.cloexec);
            self.new_fd(tid, fd as i64, t, cloexec);
        }
    }

    fn apply_mmap(
        &mut self,
        ev: &Event,
        x: &SyscallExit,
        i386_mmap2: bool,
    ) -> Result<(), StateError> {
        let (len, prot, flags, offset) = if i386_mmap2 {
            (
                need(ev, x, "arg1")? as u32 as u64,
                need(ev, x, "arg2")?,
                need(ev, x, "arg3")?,
                (need(ev, x, "arg5")? as u32 as u64) * PAGE_SIZE,
            )
        } else {
            (
                need(ev, x, "length")?,
                need(ev, x, "prot")?,
                need(ev, x, "flags")?,
                arg(ev, "offset").unwrap_or(0),
            )
        };
        let object = if flags & MAP_ANONYMOUS != 0 {
            (flags & MAP_TYPE != MAP_PRIVATE).then(|| match self.new_shared_anon() {
                ObjectId::SharedAnon(id) => MappedObject::shared_anon(id),
                other => MappedObject {
                    id: other,
                    path: Str::from("/dev/zero (deleted)"),
                },
            })
        } else {
            let (fd, target) = if i386_mmap2 {
                (arg(ev, "arg4").map(|f| f as i32), None)
            } else {
                match fd_value(ev, "fd") {
                    Some((fd, t)) => (Some(fd), t),
                    None => (arg(ev, "fd").map(|f| f as i32), None),
                }
            };
            let target = target.or_else(|| {
                fd.and_then(|fd| self.files(ev.tid).and_then(|t| t.target(fd).cloned()))
            });
            Some(mapped_object(target.as_deref()))
        };
        let m = Mmap {
            addr: x.ret as u64,
            len,
            prot,
            flags,
            object,
            offset,
        };
        self.mm_op(ev, x, |a| a.mmap(&m).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{MAP_FIXED, MAP_SHARED, Prot, Role};
    use vigil_event::{
        Args, Creds, ExitStatus, Fd, ProcessExec, ProcessExit, ProcessStart, SyscallEntry,
        SyscallId, ThreadExit, ThreadStart,
    };

    const P: u64 = PAGE_SIZE;

    struct Log {
        ps: Processes,
        seq: u64,
    }

    fn val(v: &Value) -> Value {
        v.clone()
    }

    impl Log {
        fn new() -> Log {
            let mut ps = Processes::new();
            ps.add_process(
                10,
                1,
                crate::FdTable::new(),
                crate::FsState::new(
                    Target::File {
                        path: Str::from("/work"),
                        dev: 0,
                        ino: 0,
                    },
                    Target::File {
                        path: Str::from("/"),
                        dev: 0,
                        ino: 0,
                    },
                ),
                crate::AddressSpace::new(),
            );
            Log { ps, seq: 0 }
        }

        fn ev(&mut self, pid: u32, tid: u32, kind: EventKind) -> Result<(), StateError> {
            self.seq += 1;
            let e = Event {
                seq: self.seq,
                time_ns: self.seq,
                pid,
                tid,
                kind,
            };
            self.ps.apply(&e)
        }

        /// A syscall exit with named arguments (missing ones absent) and outputs.
        fn call(
            &mut self,
            pid: u32,
            tid: u32,
            name: &str,
            args: &[(&str, Value)],
            ret: i64,
        ) -> Result<(), StateError> {
            let call = SyscallId::from_name(name).unwrap();
            let sig = call.signature();
            let n = sig.args.len() + sig.outputs.len();
            let mut a: Args = (0..n).map(|_| Value::Absent).collect();
            for (k, v) in args {
                let i = sig
                    .field_index(k)
                    .unwrap_or_else(|| panic!("{name} has no {k}"));
                a[i] = val(v);
            }
            self.ev(
                pid,
                tid,
                EventKind::SyscallExit(SyscallExit {
                    call,
                    entry_seq: 0,
                    ret,
                    args: a,
                }),
            )
        }

        fn entry(&mut self, pid: u32, tid: u32, name: &str, args: &[(&str, Value)]) {
            let call = SyscallId::from_name(name).unwrap();
            let sig = call.signature();
            let mut a: Args = (0..sig.args.len()).map(|_| Value::Absent).collect();
            for (k, v) in args {
                a[sig.field_index(k).unwrap()] = v.clone();
            }
            self.ev(
                pid,
                tid,
                EventKind::SyscallEntry(SyscallEntry { call, args: a }),
            )
            .unwrap();
        }

        fn fds(&self, tid: u32) -> Vec<(i32, String, bool)> {
            self.ps
                .files(tid)
                .unwrap()
                .iter()
                .map(|(fd, e)| (fd, e.target.to_string(), e.cloexec))
                .collect()
        }
    }

    fn u(x: u64) -> Value {
        Value::Uint(x)
    }

    fn s(x: &str) -> Value {
        Value::Str(Str::from(x))
    }

    fn fd(n: i32) -> Value {
        Value::Fd(Fd::new(n, None))
    }

    fn fdt(n: i32, path: &str, ino: u64) -> Value {
        Value::Fd(Fd::new(
            n,
            Some(Arc::new(Target::File {
                path: Str::from(path),
                dev: 7,
                ino,
            })),
        ))
    }

    #[test]
    fn opens_dups_fcntl_close_and_exec() {
        let mut l = Log::new();
        l.call(
            10,
            10,
            "openat",
            &[
                ("path", s("/etc/a")),
                ("flags", u(O_CLOEXEC)),
                ("fd", fdt(3, "/etc/a", 5)),
            ],
            3,
        )
        .unwrap();
        // No output recorded: the return value and the path.
        l.call(10, 10, "open", &[("path", s("rel")), ("flags", u(0))], 4)
            .unwrap();
        l.call(10, 10, "creat", &[("path", s("/c"))], 5).unwrap();
        l.call(10, 10, "openat", &[("path", s("/nope"))], -2)
            .unwrap();
        l.call(10, 10, "dup", &[("oldfd", fd(3))], 6).unwrap();
        l.call(
            10,
            10,
            "dup3",
            &[("oldfd", fd(4)), ("newfd", u(9)), ("flags", u(O_CLOEXEC))],
            9,
        )
        .unwrap();
        l.call(10, 10, "dup2", &[("oldfd", fd(5)), ("newfd", u(4))], 4)
            .unwrap();
        l.call(
            10,
            10,
            "fcntl",
            &[("fd", fd(6)), ("cmd", u(F_DUPFD_CLOEXEC)), ("arg", u(20))],
            20,
        )
        .unwrap();
        l.call(
            10,
            10,
            "fcntl",
            &[("fd", fd(6)), ("cmd", u(F_SETFD)), ("arg", u(1))],
            0,
        )
        .unwrap();
        l.call(
            10,
            10,
            "fcntl",
            &[("fd", fd(3)), ("cmd", u(F_SETFD)), ("arg", u(0))],
            0,
        )
        .unwrap();
        l.call(
            10,
            10,
            "fcntl",
            &[("fd", fd(5)), ("cmd", u(F_DUPFD)), ("arg", u(30))],
            30,
        )
        .unwrap();
        assert_eq!(
            l.fds(10),
            vec![
                (3, "/etc/a".into(), false),
                (4, "/c".into(), false),
                (5, "/c".into(), false),
                (6, "/etc/a".into(), true),
                (9, "/work/rel".into(), true),
                (20, "/etc/a".into(), true),
                (30, "/c".into(), false),
            ]
        );
        // close releases even when it fails with EINTR.
        l.call(10, 10, "close", &[("fd", fd(30))], -4).unwrap();
        l.call(
            10,
            10,
            "close_range",
            &[
                ("first", u(5)),
                ("last", u(6)),
                ("flags", u(CLOSE_RANGE_CLOEXEC)),
            ],
            0,
        )
        .unwrap();
        l.call(
            10,
            10,
            "close_range",
            &[
                ("first", u(20)),
                ("last", u(u32::MAX as u64)),
                ("flags", u(0)),
            ],
            0,
        )
        .unwrap();
        l.ev(10, 10, EventKind::ProcessExec(exec_ev())).unwrap();
        assert_eq!(
            l.fds(10),
            vec![(3, "/etc/a".into(), false), (4, "/c".into(), false)]
        );
        assert!(matches!(
            l.call(10, 10, "close_range", &[("first", u(0))], 0),
            Err(StateError::Missing { what: "last", .. })
        ));
    }

    fn exec_ev() -> ProcessExec {
        ProcessExec {
            exe: Str::from("/bin/x"),
            argv: Arc::from(Vec::new()),
            creds: Creds::default(),
            dev: 0,
            ino: 0,
        }
    }

    fn start(ppid: u32, flags: u64) -> EventKind {
        EventKind::ProcessStart(ProcessStart {
            ppid,
            exe: Str::from("/bin/x"),
            argv: Arc::from(Vec::new()),
            creds: Creds::default(),
            clone_flags: flags,
        })
    }

    #[test]
    fn pipes_sockets_and_anonymous_fds() {
        let mut l = Log::new();
        let pipe_fd = |n| Value::Fd(Fd::new(n, Some(Arc::new(Target::Pipe { ino: 77 }))));
        l.call(
            10,
            10,
            "pipe2",
            &[
                ("flags", u(O_CLOEXEC)),
                ("rfd", pipe_fd(3)),
                ("wfd", pipe_fd(4)),
            ],
            0,
        )
        .unwrap();
        l.call(
            10,
            10,
            "socket",
            &[("domain", u(2)), ("type", u(1 | O_CLOEXEC))],
            5,
        )
        .unwrap();
        l.call(10, 10, "accept4", &[("fd", fd(5)), ("flags", u(0))], 6)
            .unwrap();
        l.call(
            10,
            10,
            "memfd_create",
            &[("name", s("buf")), ("flags", u(1))],
            7,
        )
        .unwrap();
        l.call(10, 10, "eventfd2", &[("arg0", u(0)), ("arg1", u(0))], 8)
            .unwrap();
        l.call(10, 10, "epoll_create", &[], 9).unwrap();
        l.call(10, 10, "pidfd_open", &[], 11).unwrap();
        l.call(10, 10, "signalfd4", &[("arg0", Value::Int(8))], 8)
            .unwrap(); // modifies: no new fd
        let got = l.fds(10);
        assert_eq!(
            got,
            vec![
                (3, "pipe:[77]".into(), true),
                (4, "pipe:[77]".into(), true),
                (5, "TCP:[0]".into(), true),
                (6, "socket:[?]".into(), false),
                (7, "/memfd:buf (deleted)".into(), true),
                (8, "anon_inode:[eventfd]".into(), false),
                (9, "anon_inode:[eventpoll]".into(), false),
                (11, "anon_inode:[pidfd]".into(), true),
            ]
        );
        // An io_uring openat without an fd output created a direct descriptor: no fd.
        l.call(10, 10, "io_uring:openat", &[("path", s("/x"))], 0)
            .unwrap();
        assert_eq!(l.fds(10).len(), 8);
    }

    #[test]
    fn connect_and_bind_fill_in_addresses() {
        let mut l = Log::new();
        l.call(10, 10, "socket", &[("domain", u(2)), ("type", u(1))], 3)
            .unwrap();
        let addr = vigil_event::SockAddr::V4("10.0.0.1:80".parse().unwrap());
        l.call(
            10,
            10,
            "connect",
            &[("fd", fd(3)), ("addr", Value::Addr(Arc::new(addr)))],
            -115,
        )
        .unwrap();
        assert_eq!(l.fds(10)[0].1, "TCP:[?->10.0.0.1:80]");
    }

    #[test]
    fn cwd_and_root() {
        let mut l = Log::new();
        l.call(10, 10, "chdir", &[("path", s("/tmp"))], 0).unwrap();
        l.call(10, 10, "chdir", &[("path", s("/nope"))], -2)
            .unwrap();
        assert_eq!(l.ps.fs(10).unwrap().cwd_path(), Some(&b"/tmp"[..]));
        l.call(10, 10, "openat", &[("path", s("/srv")), ("flags", u(0))], 3)
            .unwrap();
        l.call(10, 10, "fchdir", &[("fd", fd(3))], 0).unwrap();
        assert_eq!(l.ps.fs(10).unwrap().cwd_path(), Some(&b"/srv"[..]));
        l.call(10, 10, "chroot", &[("path", s("jail"))], 0).unwrap();
        assert_eq!(l.ps.fs(10).unwrap().root_path(), Some(&b"/srv/jail"[..]));
    }

    #[test]
    fn fork_clone_threads_exec_exit_from_events() {
        let mut l = Log::new();
        l.call(10, 10, "openat", &[("path", s("/a")), ("flags", u(0))], 3)
            .unwrap();
        // A thread, then a CLONE_FILES|CLONE_FS child made by that thread.
        l.entry(10, 10, "clone", &[("flags", u(THREAD_FLAGS))]);
        l.ev(
            10,
            11,
            EventKind::ThreadStart(ThreadStart { creator_tid: 10 }),
        )
        .unwrap();
        l.call(10, 10, "clone", &[("flags", u(THREAD_FLAGS))], 11)
            .unwrap();
        l.entry(
            10,
            11,
            "clone",
            &[("flags", u(CLONE_FILES | 0x200 | SIGCHLD))],
        );
        l.ev(20, 20, start(10, CLONE_FILES | 0x200 | SIGCHLD))
            .unwrap();
        l.call(10, 11, "clone", &[], 20).unwrap();
        assert_eq!(l.ps.files_id(20), l.ps.files_id(10));
        assert_eq!(l.ps.fs_id(20), l.ps.fs_id(10));
        // A plain fork copies.
        l.ev(30, 30, start(10, SIGCHLD)).unwrap();
        l.call(30, 30, "close", &[("fd", fd(3))], 0).unwrap();
        assert_eq!(l.fds(10).len(), 1);
        assert!(l.fds(30).is_empty());
        assert_eq!(l.ps.ppid_of(30), Some(10));
        // Shared: a close in the CLONE_FILES child is seen by the parent.
        l.call(20, 20, "close", &[("fd", fd(3))], 0).unwrap();
        assert!(l.fds(10).is_empty());
        l.ev(
            10,
            11,
            EventKind::ThreadExit(ThreadExit {
                status: ExitStatus::Code(0),
            }),
        )
        .unwrap();
        assert_eq!(l.ps.tids_of(10), vec![10]);
        l.ev(
            30,
            30,
            EventKind::ProcessExit(ProcessExit {
                status: ExitStatus::Code(0),
            }),
        )
        .unwrap();
        assert_eq!(l.ps.pids().collect::<Vec<_>>(), vec![10, 20]);
        // The traced command's own start: its parent (vigil) is not traced.
        l.ev(60, 60, start(4242, 0)).unwrap();
        assert_eq!(l.ps.ppid_of(60), Some(4242));
        assert!(l.fds(60).is_empty());
        assert!(!l.ps.pids().any(|p| p == 4242), "no phantom parent");
        // An event of an unknown process adopts it.
        l.call(99, 99, "openat", &[("path", s("/z")), ("flags", u(0))], 4)
            .unwrap();
        assert_eq!(l.fds(99), vec![(4, "/z".into(), false)]);
    }

    #[test]
    fn memory_calls_from_events() {
        let mut l = Log::new();
        let base = 0x7000_0000u64;
        l.call(
            10,
            10,
            "mmap",
            &[
                ("addr", u(0)),
                ("length", u(3 * P)),
                ("prot", u(3)),
                ("flags", u(MAP_PRIVATE | MAP_ANONYMOUS)),
                ("fd", Value::Fd(Fd::new(-1, None))),
                ("offset", u(0)),
            ],
            base as i64,
        )
        .unwrap();
        l.call(
            10,
            10,
            "mmap",
            &[
                ("addr", u(base + P)),
                ("length", u(P)),
                ("prot", u(1)),
                ("flags", u(MAP_SHARED | MAP_FIXED)),
                ("fd", fdt(5, "/data", 42)),
                ("offset", u(4 * P)),
            ],
            (base + P) as i64,
        )
        .unwrap();
        l.call(
            10,
            10,
            "mmap",
            &[
                ("addr", u(0)),
                ("length", u(P)),
                ("prot", u(3)),
                ("flags", u(MAP_SHARED | MAP_ANONYMOUS)),
                ("fd", fd(-1)),
                ("offset", u(0)),
            ],
            (base + 10 * P) as i64,
        )
        .unwrap();
        l.call(
            10,
            10,
            "mprotect",
            &[("addr", u(base)), ("length", u(P)), ("prot", u(0))],
            0,
        )
        .unwrap();
        // A failed mprotect over a hole changes the mapped part first.
        l.call(
            10,
            10,
            "mprotect",
            &[
                ("addr", u(base + 2 * P)),
                ("length", u(2 * P)),
                ("prot", u(1)),
            ],
            -12,
        )
        .unwrap();
        let mm = l.ps.mm(10).unwrap();
        let desc: Vec<(u64, u64, u8, bool)> = mm
            .iter()
            .map(|v| {
                (
                    (v.start - base) / P,
                    (v.end - base) / P,
                    v.prot.bits(),
                    v.shared,
                )
            })
            .collect();
        assert_eq!(
            desc,
            vec![
                (0, 1, 0, false),
                (1, 2, 1, true),
                (2, 3, 1, false),
                (10, 11, 3, true)
            ]
        );
        let f = ObjectId::File { dev: 7, ino: 42 };
        assert_eq!(
            mm.vma_at(base + P).unwrap().offset_at(base + P),
            Some(4 * P)
        );
        assert_eq!(l.ps.shared_mappings(&f).len(), 1);
        // Fork: both map it; the shared anonymous object too.
        l.ev(30, 30, start(10, SIGCHLD)).unwrap();
        assert_eq!(l.ps.page_mappers(&f, 4 * P).len(), 2);
        let anon = *l
            .ps
            .mm(10)
            .unwrap()
            .vma_at(base + 10 * P)
            .unwrap()
            .object()
            .unwrap();
        assert_eq!(l.ps.shared_mappings(&anon).len(), 2);
        l.call(
            30,
            30,
            "mremap",
            &[
                ("old_addr", u(base + P)),
                ("old_size", u(P)),
                ("new_size", u(2 * P)),
                ("flags", u(1)),
                ("new_addr", u(0)),
            ],
            (base + 20 * P) as i64,
        )
        .unwrap();
        l.call(30, 30, "munmap", &[("addr", u(base)), ("length", u(1))], 0)
            .unwrap();
        let child: Vec<u64> =
            l.ps.mm(30)
                .unwrap()
                .iter()
                .map(|v| (v.start - base) / P)
                .collect();
        assert_eq!(child, vec![2, 10, 20]);
        assert_eq!(
            l.ps.mm(10).unwrap().len(),
            4,
            "the parent's copy is its own"
        );
        // brk through the generic signature.
        l.call(10, 10, "brk", &[("arg0", u(0))], 0x60_0000).unwrap();
        l.call(10, 10, "brk", &[("arg0", u(0x60_2100))], 0x60_2100)
            .unwrap();
        assert_eq!(
            l.ps.mm(10)
                .unwrap()
                .vma_at(0x60_2000)
                .map(|v| (v.end, v.role.clone())),
            Some((0x60_3000, Role::Heap))
        );
        // madvise(DONTFORK) then fork.
        l.call(
            10,
            10,
            "madvise",
            &[("arg0", u(base)), ("arg1", u(P)), ("arg2", u(10))],
            0,
        )
        .unwrap();
        l.ev(40, 40, start(10, SIGCHLD)).unwrap();
        assert!(l.ps.mm(40).unwrap().vma_at(base).is_none());
        // CLONE_VM child shares; exec gives it a new space.
        l.ev(50, 50, start(10, CLONE_VM | CLONE_VFORK | SIGCHLD))
            .unwrap();
        assert_eq!(l.ps.mm_id(50), l.ps.mm_id(10));
        l.ev(50, 50, EventKind::ProcessExec(exec_ev())).unwrap();
        assert!(l.ps.mm(50).unwrap().is_empty());
        assert_eq!(l.ps.mm(10).unwrap().len(), 5);
        // Missing arguments are reported, not guessed.
        assert!(matches!(
            l.call(10, 10, "munmap", &[("addr", u(base))], 0),
            Err(StateError::Missing { what: "length", .. })
        ));
        // A model/kernel disagreement is an error; the state is kept.
        assert!(matches!(
            l.call(
                10,
                10,
                "mremap",
                &[
                    ("old_addr", u(base + 50 * P)),
                    ("old_size", u(P)),
                    ("new_size", u(2 * P)),
                    ("flags", u(1))
                ],
                (base + 60 * P) as i64
            ),
            Err(StateError::Mem {
                source: MemError::Fault { .. },
                ..
            })
        ));
    }

    #[test]
    fn sysv_segments_from_events() {
        let mut l = Log::new();
        l.call(
            10,
            10,
            "shmget",
            &[
                ("key", u(0x1234)),
                ("size", u(2 * P + 1)),
                ("flags", u(0o1600)),
            ],
            7,
        )
        .unwrap();
        l.call(
            10,
            10,
            "shmat",
            &[("shmid", Value::Int(7)), ("addr", u(0)), ("flags", u(0))],
            0x5000_0000,
        )
        .unwrap();
        let v = l.ps.mm(10).unwrap().vma_at(0x5000_2000).unwrap().clone();
        assert_eq!((v.end, v.prot, v.shared), (0x5000_3000, Prot::RW, true));
        assert_eq!(v.path().unwrap().to_string(), "/SYSV00001234 (deleted)");
        assert!(matches!(
            l.call(
                10,
                10,
                "shmat",
                &[("shmid", Value::Int(8)), ("flags", u(0))],
                0x6000_0000
            ),
            Err(StateError::UnknownShmSegment(8))
        ));
        l.call(10, 10, "shmdt", &[("addr", u(0x5000_0000))], 0)
            .unwrap();
        assert!(l.ps.mm(10).unwrap().is_empty());
    }

    #[test]
    fn i386_mmap2_offset_is_in_pages() {
        let mut l = Log::new();
        l.call(
            10,
            10,
            "openat",
            &[
                ("path", s("/lib")),
                ("flags", u(0)),
                ("fd", fdt(3, "/lib", 9)),
            ],
            3,
        )
        .unwrap();
        l.call(
            10,
            10,
            "i386:mmap2",
            &[
                ("arg0", u(0)),
                ("arg1", u(P)),
                ("arg2", u(5)),
                ("arg3", u(MAP_PRIVATE)),
                ("arg4", u(3)),
                ("arg5", u(2)),
            ],
            0x8000_0000,
        )
        .unwrap();
        let v = l.ps.mm(10).unwrap().vma_at(0x8000_0000).unwrap().clone();
        assert_eq!(v.offset_at(v.start), Some(2 * P));
        assert_eq!(v.object(), Some(&ObjectId::File { dev: 7, ino: 9 }));
    }

    #[test]
    fn an_address_space_snapshot_replaces_the_model_of_that_process() {
        use vigil_event::memory::{AddressSpace as Snap, PROT_READ, PROT_WRITE, Vma as SVma};
        let mut l = Log::new();
        l.call(10, 10, "mmap", &[], 0x7000_0000).unwrap_or(());
        let vmas: Vec<SVma> = vec![
            SVma {
                start: 0x40_0000,
                end: 0x40_2000,
                prot: PROT_READ,
                shared: false,
                offset: 0x1000,
                dev: crate::maps::makedev(8, 1),
                ino: 42,
                path: Str::from("/usr/bin/prog"),
            },
            SVma {
                start: 0x7f00_0000_0000,
                end: 0x7f00_0000_1000,
                prot: PROT_READ | PROT_WRITE,
                shared: true,
                offset: 0,
                dev: crate::maps::makedev(0, 26),
                ino: 7,
                path: Str::from("/dev/shm/x"),
            },
        ];
        l.ev(10, 10, EventKind::AddressSpace(Snap { vmas: vmas.into() }))
            .unwrap();
        let mm = l.ps.mm(10).unwrap();
        let got: Vec<(u64, u64, bool)> = mm.iter().map(|v| (v.start, v.end, v.shared)).collect();
        assert_eq!(
            got,
            vec![
                (0x40_0000, 0x40_2000, false),
                (0x7f00_0000_0000, 0x7f00_0000_1000, true)
            ]
        );
        let shm = mm.vma_at(0x7f00_0000_0800).unwrap();
        assert!(shm.prot.contains(Prot::WRITE), "{shm}");
        assert!(
            mm.vma_at(0x40_1000)
                .unwrap()
                .to_string()
                .contains("/usr/bin/prog")
        );
    }
}
