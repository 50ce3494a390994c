//! Records from the kernel side turned into vigil's events: the same kinds and the same
//! decoded arguments as the ptrace backend (paths as absolute strings, fds as what they point
//! at, outputs at exit), numbered by the Sequencer like every backend's.
//!
//! What each process has open and where it is comes from vigil-procstate, kept from the
//! events themselves (`Processes::apply`) and seeded from /proc for processes that were
//! already running (scan.rs). An fd is believed only while the kernel's inode for it (read by
//! the kernel side at the call) matches the table; otherwise it is looked up again.

use crate::record::{
    self, F_COMPAT, F_EXE_NAMED, F_GROUP_DEAD, F_THREAD, FdInfo, Header, Record, Slot,
};
use std::collections::HashMap;
use std::sync::Arc;
use syscalls::Sysno;
use vigil_capture::{Delivery, Sequencer};
use vigil_event::syscall::{Abi, ArgKind};
use vigil_event::value::{AT_FDCWD, Fd, Resolution, SockAddr, Socket, Target};
use vigil_event::{
    Action, Args, Creds, Cut, EventKind, ExitStatus, Lost, ProcessExec, ProcessExit, ProcessStart,
    SignalDelivery, Str, SyscallEntry, SyscallExit, SyscallId, ThreadExit, ThreadStart, Value,
};
use vigil_procstate::{AddressSpace, FdTable, FsState, Processes};

const O_CREAT: u64 = 0o100;
const O_TMPFILE: u64 = 0o20000000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// What vigil knows of a process beyond its tables: what it runs.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub exe: Str,
    pub argv: Arc<[Str]>,
    pub creds: Creds,
}

/// A call between its entry and its exit.
struct Pending {
    call: SyscallId,
    raw: [u64; 6],
    args: Args,
    entry_seq: u64,
    /// An exec's entry waits for the kernel's argv (emitted at the exec or the exit).
    held: Option<(u32, u64)>,
    /// The kernel's path of the file the call opened: path, dev, ino.
    kpath: Option<(Vec<u8>, u64, u64)>,
    /// The kernel's copy of the address connected or bound to.
    kaddr: Option<Vec<u8>>,
    /// The socket's own address at the exit of a connect, bind or accept, as the kernel has
    /// it (the source port it chose, the port a bind to port 0 got).
    klocal: Option<Vec<u8>>,
}

/// The decoder's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Records the kernel side could not put in the ring buffer (reported as `lost` events).
    pub lost: u64,
    /// Records that did not parse (never expected: counted and reported as `lost`).
    pub malformed: u64,
    pub records: u64,
}

/// Rule names of the kernel's deny/kill entries, for their `action` events.
pub type RuleNames = Vec<String>;

pub struct Decoder {
    pub procs: Processes,
    pub info: HashMap<u32, ProcInfo>,
    pending: HashMap<u32, Pending>,
    /// The kernel's path of what an exec is about to run, by the exec'ing thread.
    exe_path: HashMap<u32, (Vec<u8>, u64, u64)>,
    /// CLOCK_REALTIME − CLOCK_BOOTTIME, ns.
    epoch_offset: i64,
    pub counts: Counts,
    pub rule_names: RuleNames,
}

fn boottime_to_epoch_offset() -> i64 {
    let real = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME);
    let boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME);
    match (real, boot) {
        (Ok(r), Ok(b)) => {
            let ns = |t: nix::sys::time::TimeSpec| t.tv_sec() * 1_000_000_000 + t.tv_nsec();
            ns(r) - ns(b)
        }
        _ => 0,
    }
}

/// `base` + `path` with `.`, `..` and repeated slashes folded as text.
pub fn fold(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let joined: Vec<&[u8]> = if path.first() == Some(&b'/') {
        path.split(|c| *c == b'/').collect()
    } else {
        base.split(|c| *c == b'/')
            .chain(path.split(|c| *c == b'/'))
            .collect()
    };
    for p in joined {
        match p {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// argv as the kernel copied it (NUL-separated), with a cut marker when it was longer.
pub fn argv_value(bytes: &[u8], whole_len: u32) -> Value {
    let mut items: Vec<Str> = bytes.split(|c| *c == 0).map(Str::from).collect::<Vec<_>>();
    // The area ends with a NUL: the last split is empty.
    if bytes.last() == Some(&0) {
        items.pop();
    }
    let kept = Value::List(items.into());
    let missing = (whole_len as u64).saturating_sub(bytes.len() as u64);
    if missing == 0 {
        return kept;
    }
    Value::Cut(Arc::new(Cut {
        kept,
        items: 0,
        bytes: missing,
        exact: false,
    }))
}

fn str_value(s: &Slot) -> Value {
    match &s.bytes {
        None => Value::Unreadable(0),
        Some(b) if s.cut => Value::Cut(Arc::new(Cut {
            kept: Value::Str(Str::from(b.as_slice())),
            items: 0,
            bytes: 1,
            exact: false,
        })),
        Some(b) => Value::Str(Str::from(b.as_slice())),
    }
}

fn status_of(code: i32) -> ExitStatus {
    let sig = code & 0x7f;
    if sig == 0 {
        ExitStatus::Code((code >> 8) & 0xff)
    } else {
        ExitStatus::Signal {
            signal: sig,
            core_dumped: code & 0x80 != 0,
        }
    }
}

/// An exec's entry held for its outcome (see `Pending::held`), emitted now with what is known.
fn emit_held(p: &mut Pending, tid: u32, seq: &mut Sequencer, out: &mut Vec<(u32, Delivery)>) {
    if let Some((pid, time)) = p.held.take() {
        let d = seq.emit_at(
            pid,
            tid,
            time,
            EventKind::SyscallEntry(SyscallEntry {
                call: p.call,
                args: p.args.clone(),
            }),
        );
        p.entry_seq = seq.next_seq() - 1;
        out.push((pid, d));
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            procs: Processes::new(),
            info: HashMap::new(),
            pending: HashMap::new(),
            exe_path: HashMap::new(),
            epoch_offset: boottime_to_epoch_offset(),
            counts: Counts::default(),
            rule_names: Vec::new(),
        }
    }

    fn time(&self, h: &Header) -> u64 {
        (h.time as i64).saturating_add(self.epoch_offset).max(0) as u64
    }

    /// A process that was running before the capture began (scan.rs).
    pub fn add_existing(
        &mut self,
        pid: u32,
        ppid: u32,
        files: FdTable,
        fs: FsState,
        info: ProcInfo,
        tids: &[u32],
    ) {
        self.procs
            .add_process(pid, ppid, files, fs, AddressSpace::new());
        for &t in tids {
            self.procs.adopt(pid, t);
        }
        self.info.insert(pid, info);
    }

    /// Hands one record on as events. Returns the deliveries of events that carry a
    /// verdict (syscall entries and exits) with the process they are about.
    pub fn handle(&mut self, data: &[u8], seq: &mut Sequencer, out: &mut Vec<(u32, Delivery)>) {
        self.counts.records += 1;
        let Some((h, rec)) = record::parse(data) else {
            self.counts.malformed += 1;
            seq.emit(
                0,
                0,
                EventKind::Lost(Lost {
                    count: 1,
                    reason: Str::from("a record from the kernel side that did not parse"),
                }),
            );
            return;
        };
        if h.lost > 0 {
            self.counts.lost += h.lost;
            seq.emit_at(
                0,
                0,
                self.time(&h),
                EventKind::Lost(Lost {
                    count: h.lost,
                    reason: Str::from(format!(
                        "the ring buffer was full (CPU {}): records of the kernel side dropped",
                        h.cpu
                    )),
                }),
            );
        }
        let t = self.time(&h);
        // A process met for the first time (it started before it matched the filters: its
        // fork was not recorded): known from now on, from /proc while it is there.
        if h.pid != 0 && !self.info.contains_key(&h.pid) {
            self.first_sight(h.pid, t, seq);
        }
        match rec {
            Record::Enter {
                nr,
                args,
                fds,
                slots,
            } => self.enter(&h, t, nr, args, fds, slots, seq, out),
            Record::Exit {
                nr,
                ret,
                pair,
                newfd,
                slots,
            } => self.exit(&h, t, nr, ret, pair, newfd, slots, seq, out),
            Record::KPath {
                hook,
                dev,
                ino,
                path,
                cut,
            } => {
                // A path the kernel side could not walk whole is not the kernel's answer: the
                // program's own (lexical) one stays.
                let Some(path) = path.filter(|_| !cut) else {
                    return;
                };
                let dev = record::kdev_to_user(dev);
                if hook == 2 {
                    self.exe_path.insert(h.tid, (path.clone(), dev, ino));
                }
                if hook == 3 {
                    // The kernel's cwd (at an exec, a chdir): what relative paths start from.
                    if !self.procs.has_thread(h.tid) {
                        self.procs.adopt(h.pid, h.tid);
                    }
                    if let Some(fs) = self.procs.fs_mut(h.tid) {
                        fs.cwd = Some(Arc::new(Target::File {
                            path: Str::from(path.as_slice()),
                            dev,
                            ino,
                        }));
                    }
                    return;
                }
                if let Some(p) = self.pending.get_mut(&h.tid)
                    && hook == 1
                    && p.kpath.is_none()
                {
                    p.kpath = Some((path, dev, ino));
                }
            }
            Record::KAddr { hook, addr } => {
                if let Some(p) = self.pending.get_mut(&h.tid) {
                    if hook == 5 {
                        p.klocal = Some(addr);
                    } else {
                        p.kaddr = Some(addr);
                    }
                }
            }
            Record::Fork {
                child_pid,
                child_tid,
                clone_flags,
                call_nr,
                creds,
            } => {
                if h.flags & F_THREAD != 0 {
                    self.emit(
                        seq,
                        child_pid,
                        child_tid,
                        t,
                        EventKind::ThreadStart(ThreadStart { creator_tid: h.tid }),
                    );
                    return;
                }
                // As the ptrace backend records it (the kernel's PTRACE_EVENT_* for the call):
                // CLONE_VFORK is a vfork; a clone whose exit signal is SIGCHLD is a fork
                // (glibc's fork); others keep their flags.
                const CLONE_VM: u64 = 0x100;
                const CLONE_VFORK: u64 = 0x4000;
                const SIGCHLD: u64 = 17;
                let flags = match Sysno::new(call_nr as usize) {
                    Some(Sysno::clone | Sysno::clone3) if clone_flags & CLONE_VFORK != 0 => {
                        CLONE_VFORK | CLONE_VM | SIGCHLD
                    }
                    Some(Sysno::clone) if clone_flags & 0xff == SIGCHLD => SIGCHLD,
                    Some(Sysno::clone | Sysno::clone3) => clone_flags,
                    Some(Sysno::vfork) => CLONE_VFORK | CLONE_VM | SIGCHLD,
                    _ => SIGCHLD,
                };
                let parent = self.info.get(&h.pid).cloned();
                let (exe, argv) = match parent {
                    Some(p) => (p.exe, p.argv),
                    None => (Str::from(""), Arc::from(Vec::new())),
                };
                self.info.insert(
                    child_pid,
                    ProcInfo {
                        exe: exe.clone(),
                        argv: argv.clone(),
                        creds: creds.clone(),
                    },
                );
                self.emit(
                    seq,
                    child_pid,
                    child_tid,
                    t,
                    EventKind::ProcessStart(ProcessStart {
                        ppid: h.pid,
                        exe,
                        argv,
                        creds,
                        clone_flags: flags,
                    }),
                );
            }
            Record::Exec {
                old_tid,
                dev,
                ino,
                creds,
                filename,
                argv,
                argv_len,
            } => {
                let argv_v = argv_value(&argv, argv_len);
                let ran = self
                    .exe_path
                    .remove(&h.tid)
                    .or_else(|| self.exe_path.remove(&old_tid));
                // The exec's entry, held for this argv.
                if let Some(p) = self.pending.remove(&old_tid) {
                    let mut p = p;
                    if let Some(i) = p.call.signature().field_index("argv")
                        && let Some(a) = p.args.get_mut(i)
                    {
                        *a = argv_v.clone();
                    }
                    let named = ran.as_ref().filter(|_| h.flags & F_EXE_NAMED != 0);
                    self.exec_path(&mut p, old_tid, &filename, named);
                    emit_held(&mut p, old_tid, seq, out);
                    // The exit comes from the leader's tid.
                    self.pending.insert(h.tid, p);
                }
                let exe = match ran {
                    Some((path, _, _)) => Str::from(path),
                    None => Str::from(filename),
                };
                let argv_list = argv_v
                    .as_list()
                    .cloned()
                    .unwrap_or_else(|| Arc::from(Vec::new()));
                self.info.insert(
                    h.pid,
                    ProcInfo {
                        exe: exe.clone(),
                        argv: argv_list.clone(),
                        creds: creds.clone(),
                    },
                );
                self.emit(
                    seq,
                    h.pid,
                    h.tid,
                    t,
                    EventKind::ProcessExec(ProcessExec {
                        exe,
                        argv: argv_list,
                        creds,
                        dev: record::kdev_to_user(dev),
                        ino,
                    }),
                );
            }
            Record::TaskExit { code } => {
                let status = status_of(code);
                self.pending.remove(&h.tid);
                self.exe_path.remove(&h.tid);
                // Every thread's end, the main thread's too (as the ptrace backend: rules
                // match `threadtermination` on it), then the process's with its last thread.
                self.emit(
                    seq,
                    h.pid,
                    h.tid,
                    t,
                    EventKind::ThreadExit(ThreadExit { status }),
                );
                if h.flags & F_GROUP_DEAD != 0 {
                    self.emit(
                        seq,
                        h.pid,
                        h.tid,
                        t,
                        EventKind::ProcessExit(ProcessExit { status }),
                    );
                    self.info.remove(&h.pid);
                }
            }
            Record::Signal {
                sig,
                code,
                sender_pid,
                sender_uid,
            } => {
                self.emit(
                    seq,
                    h.pid,
                    h.tid,
                    t,
                    EventKind::Signal(SignalDelivery {
                        signal: sig,
                        code,
                        sender_pid,
                        sender_uid,
                        fault: None,
                    }),
                );
            }
            Record::Enforced {
                what,
                rule,
                err,
                hook,
                ..
            } => {
                // The connect hook refused the call; the kill (which it cannot send) is sent
                // now, by user space.
                if what == 2 && hook == 3 && err != 0 {
                    out.push((
                        h.pid,
                        Delivery {
                            verdict: vigil_capture::Verdict::Kill,
                            others: Vec::new(),
                        },
                    ));
                }
                let action = if what == 2 { "kill" } else { "deny" };
                let at = match hook {
                    1 => "file open",
                    2 => "exec",
                    3 => "connect",
                    _ => "call",
                };
                let detail = if what == 2 && hook == 3 && err != 0 {
                    format!(
                        "the {at} refused in the kernel (cgroup connect hook), then SIGKILL from vigil"
                    )
                } else if what == 2 {
                    format!(
                        "SIGKILL in the kernel at the {at}'s entry (bpf_send_signal); the connection refused"
                    )
                } else {
                    format!(
                        "{:?} at the {at}, in the kernel (BPF LSM)",
                        nix::errno::Errno::from_raw(err)
                    )
                };
                let by = self
                    .rule_names
                    .get(rule as usize)
                    .cloned()
                    .unwrap_or_default();
                self.emit(
                    seq,
                    h.pid,
                    h.tid,
                    t,
                    EventKind::Action(Action {
                        action: Str::from(action),
                        by: Str::from(by),
                        target_pid: h.pid,
                        detail: Str::from(detail),
                    }),
                );
            }
        }
    }

    /// A `process_start` for a process whose start was not recorded, with what /proc says of
    /// it now (its tree, exe, argv, fds, cwd), or nothing known when it is already gone.
    fn first_sight(&mut self, pid: u32, t: u64, seq: &mut Sequencer) {
        let (ppid, info) = match crate::scan::read(pid) {
            Some(e) => {
                let info = e.info.clone();
                let ppid = e.ppid;
                self.add_existing(e.pid, e.ppid, e.files, e.fs, e.info, &e.tids);
                (ppid, info)
            }
            None => {
                self.procs.adopt(pid, pid);
                let info = ProcInfo {
                    exe: Str::from(""),
                    argv: Arc::from(Vec::new()),
                    creds: Creds::default(),
                };
                self.info.insert(pid, info.clone());
                (0, info)
            }
        };
        seq.emit_at(
            pid,
            pid,
            t,
            EventKind::ProcessStart(ProcessStart {
                ppid,
                exe: info.exe,
                argv: info.argv,
                creds: info.creds,
                clone_flags: 0,
            }),
        );
    }

    /// Emits an event and keeps the process state in step with it; what the sink decided.
    fn emit(
        &mut self,
        seq: &mut Sequencer,
        pid: u32,
        tid: u32,
        t: u64,
        kind: EventKind,
    ) -> Delivery {
        let ev = vigil_event::Event {
            seq: 0,
            time_ns: t,
            pid,
            tid,
            kind,
        };
        let _ = self.procs.apply(&ev);
        seq.emit_at(pid, tid, t, ev.kind)
    }

    /// What fd `fd` of `tid` refers to, given what the kernel said is there.
    fn fd_target(&mut self, pid: u32, tid: u32, fd: i32, k: FdInfo) -> Option<Arc<Target>> {
        if fd < 0 {
            return None;
        }
        if !k.is_some() {
            // Nothing open there in the kernel: whatever the table says is stale.
            if let Some(f) = self.procs.files_mut(tid) {
                f.remove(fd);
            }
            return None;
        }
        if let Some(t) = self.procs.files(tid).and_then(|f| f.target(fd)) {
            let dev_ok = t.dev() == 0 || t.dev() == k.dev_user();
            if t.ino() == k.ino && dev_ok {
                return Some(t.clone());
            }
        }
        let target = Arc::new(self.probe(pid, fd, k));
        if self.procs.files(tid).is_none() {
            self.procs.adopt(pid, tid);
        }
        if let Some(f) = self.procs.files_mut(tid) {
            // Its close-on-exec flag is unknown: marked set, so exec forgets it.
            f.insert(fd, target.clone(), true);
        }
        Some(target)
    }

    /// An fd vigil has no record of, named from what the kernel said and /proc.
    fn probe(&self, pid: u32, fd: i32, k: FdInfo) -> Target {
        match k.kind() {
            S_IFIFO => return Target::Pipe { ino: k.ino },
            S_IFSOCK => {
                return Target::Socket(Socket {
                    ino: k.ino,
                    family: 0,
                    sock_type: 0,
                    local: None,
                    remote: None,
                });
            }
            _ => {}
        }
        match crate::scan::link(&format!("/proc/{pid}/fd/{fd}")) {
            Some(l) => crate::scan::label(&l, k.dev_user(), k.ino),
            None if matches!(k.kind(), S_IFREG | S_IFDIR) => Target::File {
                path: Str::from("?"),
                dev: k.dev_user(),
                ino: k.ino,
            },
            None => Target::Other {
                label: Str::from("?"),
                ino: k.ino,
            },
        }
    }

    /// A path argument: folded onto the cwd or the dirfd's path, as text (the kernel's own
    /// answer, where a hook gives one, replaces it at the exit).
    fn path_value(&self, tid: u32, given: &[u8], dir: Option<&Value>) -> Value {
        let given_v = Value::Str(Str::from(given));
        if given.is_empty() {
            return Value::resolved(given_v, Value::Absent, Resolution::Unknown);
        }
        if given[0] == b'/' {
            return Value::resolved(
                Value::Str(Str::from(fold(b"", given))),
                given_v,
                Resolution::Lexical,
            );
        }
        let base: Option<Vec<u8>> = match dir.and_then(Value::as_fd) {
            Some(fd) if fd.num != AT_FDCWD => fd
                .target
                .as_deref()
                .and_then(Target::path)
                .map(|p| p.as_bytes().to_vec()),
            _ => self
                .procs
                .fs(tid)
                .and_then(|f| f.cwd_path())
                .map(<[u8]>::to_vec),
        };
        match base.filter(|b| b.first() == Some(&b'/')) {
            Some(b) => Value::resolved(
                Value::Str(Str::from(fold(&b, given))),
                given_v,
                Resolution::Lexical,
            ),
            None => Value::resolved(given_v, Value::Absent, Resolution::Unknown),
        }
    }

    /// An exec's path argument from the kernel's side of the exec: the file it ran (its
    /// kernel path, what was given beside it) when that is the file the call named, not a
    /// script's interpreter; else, when the program's memory could not be read at the entry
    /// (a string in a page a forked child has not touched yet), the name the kernel copied.
    fn exec_path(
        &self,
        p: &mut Pending,
        tid: u32,
        filename: &[u8],
        ran: Option<&(Vec<u8>, u64, u64)>,
    ) {
        let sig = p.call.signature();
        let Some(i) = sig.args.iter().position(|a| a.kind.is_path()) else {
            return;
        };
        let Some(cur) = p.args.get(i) else { return };
        let given = match cur.given().unwrap_or(cur).plain() {
            Value::Str(s) => Value::Str(s.clone()),
            _ => Value::Str(Str::from(filename)),
        };
        let new = match ran {
            Some((path, _, _)) => Value::resolved(
                Value::Str(Str::from(path.as_slice())),
                given,
                Resolution::Exact,
            ),
            None if cur.as_str().is_none() => {
                let dir = sig.args[i]
                    .kind
                    .dirfd_arg()
                    .and_then(|d| p.args.get(d))
                    .cloned();
                self.path_value(tid, filename, dir.as_ref())
            }
            None => return,
        };
        p.args[i] = new;
    }

    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        h: &Header,
        t: u64,
        nr: u32,
        raw: [u64; 6],
        fds: [FdInfo; 2],
        slots: Vec<Slot>,
        seq: &mut Sequencer,
        out: &mut Vec<(u32, Delivery)>,
    ) {
        let call = if h.flags & F_COMPAT != 0 {
            SyscallId { abi: Abi::I386, nr }
        } else if nr & vigil_event::syscall::X32_BIT != 0 {
            SyscallId { abi: Abi::X32, nr }
        } else {
            SyscallId::x86_64(nr)
        };
        let (pid, tid) = (h.pid, h.tid);
        if !self.procs.has_thread(tid) {
            self.procs.adopt(pid, tid);
        }
        let sig = call.signature();
        let mut args = Args::new();
        let mut nfd = 0usize;
        for (i, spec) in sig.args.iter().enumerate() {
            let r = raw[i];
            let slot = slots.iter().find(|s| s.arg as usize == i);
            let v = match spec.kind {
                ArgKind::Fd | ArgKind::DirFd => {
                    let fd = r as i32;
                    let k = if call.abi == Abi::I386 {
                        FdInfo::default()
                    } else {
                        fds.get(nfd).copied().unwrap_or_default()
                    };
                    nfd += 1;
                    let target = if fd == AT_FDCWD && spec.kind == ArgKind::DirFd {
                        self.procs.fs(tid).and_then(|f| f.cwd.clone())
                    } else {
                        self.fd_target(pid, tid, fd, k)
                    };
                    Value::Fd(Fd::new(fd, target))
                }
                k if k.is_path() => match slot {
                    Some(Slot {
                        bytes: Some(b),
                        cut: false,
                        ..
                    }) => {
                        let dir = k.dirfd_arg().and_then(|d| args.get(d));
                        self.path_value(tid, b, dir)
                    }
                    Some(s) if s.bytes.is_some() => str_value(s),
                    _ => Value::Unreadable(r),
                },
                ArgKind::Str => match slot {
                    Some(s) if s.bytes.is_some() => str_value(s),
                    _ if r == 0 => Value::Unreadable(0),
                    _ => Value::Unreadable(r),
                },
                ArgKind::Int | ArgKind::Signal => {
                    if matches!(spec.name, "offset" | "length" | "offset_high") {
                        Value::Int(r as i64)
                    } else {
                        Value::Int(r as i32 as i64)
                    }
                }
                ArgKind::Pid => Value::Int(r as i32 as i64),
                ArgKind::SockAddr(_) => match slot.and_then(|s| s.bytes.as_deref()) {
                    Some(b) => match SockAddr::from_raw(b) {
                        Some(a) => Value::Addr(Arc::new(a)),
                        None => Value::Unreadable(r),
                    },
                    None => Value::Unreadable(r),
                },
                ArgKind::Clone3Flags | ArgKind::OpenHowFlags => {
                    match slot.and_then(|s| s.bytes.as_deref()) {
                        Some(b) if b.len() >= 8 => {
                            let mut w = [0u8; 8];
                            w.copy_from_slice(&b[..8]);
                            Value::Uint(u64::from_le_bytes(w))
                        }
                        _ => Value::Unreadable(r),
                    }
                }
                // argv comes from the new image at the exec (the kernel's copy); envp is not
                // read by this backend.
                ArgKind::Argv | ArgKind::Envp => Value::Absent,
                k => {
                    if k.is_c_int() {
                        Value::Uint(r & 0xffff_ffff)
                    } else {
                        Value::Uint(r)
                    }
                }
            };
            args.push(v);
        }
        // open's mode is garbage unless the call creates a file.
        if let Some(f) = sig.args.iter().position(|a| a.kind == ArgKind::OpenFlags)
            && sig.args.get(f + 1).is_some_and(|a| a.kind == ArgKind::Mode)
            && raw[f] & (O_CREAT | O_TMPFILE) == 0
        {
            args.truncate(f + 1);
        }
        let is_exec = matches!(call.canonical(), Some(Sysno::execve | Sysno::execveat));
        let mut p = Pending {
            call,
            raw,
            args,
            entry_seq: 0,
            held: None,
            kpath: None,
            kaddr: None,
            klocal: None,
        };
        if is_exec {
            p.held = Some((pid, t));
        } else {
            let ev = vigil_event::Event {
                seq: 0,
                time_ns: t,
                pid,
                tid,
                kind: EventKind::SyscallEntry(SyscallEntry {
                    call,
                    args: p.args.clone(),
                }),
            };
            let _ = self.procs.apply(&ev);
            let d = seq.emit_at(pid, tid, t, ev.kind);
            p.entry_seq = seq.next_seq() - 1;
            out.push((pid, d));
        }
        self.pending.insert(tid, p);
    }

    #[allow(clippy::too_many_arguments)]
    fn exit(
        &mut self,
        h: &Header,
        t: u64,
        nr: u32,
        ret: i64,
        pair: [i32; 2],
        newfd: [FdInfo; 2],
        slots: Vec<Slot>,
        seq: &mut Sequencer,
        out: &mut Vec<(u32, Delivery)>,
    ) {
        let (pid, tid) = (h.pid, h.tid);
        let Some(mut p) = self.pending.remove(&tid) else {
            // Its entry was lost (counted there): the exit alone, with no arguments.
            let call = SyscallId::x86_64(nr);
            let kind = EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq: 0,
                ret,
                args: Args::new(),
            });
            let d = seq.emit_at(pid, tid, t, kind);
            out.push((pid, d));
            return;
        };
        // A failed exec's entry was never emitted: it goes out now, without argv.
        emit_held(&mut p, tid, seq, out);
        let call = p.call;
        let sig = call.signature();
        let ok = vigil_event::errno_of(ret).is_none() && !vigil_event::is_restart(ret);
        let connecting = p.call.canonical() == Some(Sysno::connect) && ret == -115;
        // The entry's arguments become the exit's (taken, not copied: the entry was emitted).
        let mut args = std::mem::take(&mut p.args);
        // The kernel's own path for what it opened (or executed).
        if let Some((path, _, _)) = &p.kpath
            && ok
            && let Some(i) = sig.args.iter().position(|a| a.kind.is_path())
        {
            let given = args
                .get(i)
                .and_then(|v| v.given().or(Some(v)))
                .cloned()
                .unwrap_or(Value::Absent);
            let given = match given.plain() {
                Value::Str(_) => given.plain().clone(),
                _ => Value::Absent,
            };
            if let Some(a) = args.get_mut(i) {
                *a = Value::resolved(
                    Value::Str(Str::from(path.as_slice())),
                    given,
                    Resolution::Exact,
                );
            }
        }
        if let Some(addr) = &p.kaddr
            && let Some(i) = sig
                .args
                .iter()
                .position(|a| matches!(a.kind, ArgKind::SockAddr(_)))
            && let Some(a) = SockAddr::from_raw(addr)
            && let Some(slot) = args.get_mut(i)
        {
            *slot = Value::Addr(Arc::new(a));
        }
        let outputs = if ok || connecting {
            self.outputs(pid, &p, ret, pair, newfd, &slots, &mut args)
        } else {
            Vec::new()
        };
        if !outputs.is_empty() {
            // Outputs sit after all inputs, absent inputs included (as the ptrace backend).
            args.resize(sig.args.len(), Value::Absent);
            args.extend(outputs);
        }
        while args.last() == Some(&Value::Absent) {
            args.pop();
        }
        let kind = EventKind::SyscallExit(SyscallExit {
            call,
            entry_seq: p.entry_seq,
            ret,
            args,
        });
        let d = self.emit(seq, pid, tid, t, kind);
        out.push((pid, d));
    }

    /// The outputs of a successful call, as the ptrace backend records them; a connect or
    /// bind also updates its socket (in `args`, which the fd table takes it from).
    #[allow(clippy::too_many_arguments)]
    fn outputs(
        &mut self,
        pid: u32,
        p: &Pending,
        ret: i64,
        pair: [i32; 2],
        newfd: [FdInfo; 2],
        slots: &[Slot],
        args: &mut Args,
    ) -> Vec<Value> {
        let Some(call) = p.call.canonical() else {
            return Vec::new();
        };
        let fd = ret as i32;
        let local = p.klocal.as_deref().and_then(SockAddr::from_raw);
        let addr_of = |slots: &[Slot]| -> Value {
            match slots
                .first()
                .and_then(|s| s.bytes.as_deref())
                .and_then(SockAddr::from_raw)
            {
                Some(a) => Value::Addr(Arc::new(a)),
                None => Value::Absent,
            }
        };
        match call {
            Sysno::open
            | Sysno::openat
            | Sysno::openat2
            | Sysno::creat
            | Sysno::io_uring_setup
            | Sysno::memfd_create
            | Sysno::socket => {
                vec![Value::Fd(Fd::new(
                    fd,
                    Some(Arc::new(self.new_target(pid, p, args, fd, newfd[0]))),
                ))]
            }
            Sysno::dup | Sysno::dup2 | Sysno::dup3 => {
                let target = args
                    .first()
                    .and_then(Value::as_fd)
                    .and_then(|f| f.target.clone())
                    .unwrap_or_else(|| Arc::new(self.new_target(pid, p, args, fd, newfd[0])));
                vec![Value::Fd(Fd::new(fd, Some(target)))]
            }
            Sysno::pipe | Sysno::pipe2 => {
                let t = Arc::new(Target::Pipe { ino: newfd[0].ino });
                vec![
                    Value::Fd(Fd::new(pair[0], Some(t.clone()))),
                    Value::Fd(Fd::new(pair[1], Some(t))),
                ]
            }
            Sysno::socketpair => (0..2)
                .map(|i| {
                    Value::Fd(Fd::new(
                        pair[i],
                        Some(Arc::new(self.new_target(pid, p, args, pair[i], newfd[i]))),
                    ))
                })
                .collect(),
            Sysno::accept | Sysno::accept4 => {
                let peer = addr_of(slots);
                let mut t = self.new_target(pid, p, args, fd, newfd[0]);
                if let (Target::Socket(s), Value::Addr(a)) = (&mut t, &peer) {
                    s.remote = Some((**a).clone());
                }
                if let (Target::Socket(s), Some(l)) = (&mut t, local) {
                    s.local = Some(l);
                }
                vec![peer, Value::Fd(Fd::new(fd, Some(Arc::new(t))))]
            }
            Sysno::readlink | Sysno::readlinkat => match slots.first() {
                Some(s) => vec![str_value(s)],
                None => Vec::new(),
            },
            Sysno::recvfrom if p.raw[4] != 0 => vec![addr_of(slots)],
            Sysno::connect | Sysno::bind => {
                let sfd = p.raw[0] as i32;
                let addr = match args.get(1).map(Value::plain) {
                    Some(Value::Addr(a)) => Some((**a).clone()),
                    _ => None,
                };
                let old = args
                    .first()
                    .and_then(Value::as_fd)
                    .and_then(|f| f.target.clone());
                if let Some(Target::Socket(old)) = old.as_deref() {
                    let mut s = old.clone();
                    if call == Sysno::connect {
                        s.remote = addr;
                        s.local = local.or(s.local);
                    } else {
                        s.local = local.or(addr);
                    }
                    // The fd table takes it from the exit event (Processes::apply).
                    let t = Arc::new(Target::Socket(s));
                    if let Some(v) = args.get_mut(0) {
                        *v = Value::Fd(Fd::new(sfd, Some(t)));
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// What a new fd refers to: the kernel's path for an open, else from its kind.
    fn new_target(&self, pid: u32, p: &Pending, inputs: &Args, fd: i32, k: FdInfo) -> Target {
        let call = p.call.canonical();
        if let Some((path, dev, ino)) = &p.kpath
            && matches!(
                call,
                Some(Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat)
            )
        {
            return Target::File {
                path: Str::from(path.as_slice()),
                dev: *dev,
                ino: *ino,
            };
        }
        match call {
            Some(Sysno::socket | Sysno::socketpair) => {
                return Target::Socket(Socket {
                    ino: k.ino,
                    family: p.raw[0] as u16,
                    sock_type: (p.raw[1] & 0xf) as u16,
                    local: None,
                    remote: None,
                });
            }
            Some(Sysno::accept | Sysno::accept4) => {
                let listening = inputs
                    .first()
                    .and_then(Value::as_fd)
                    .and_then(|f| f.target.clone());
                let (family, sock_type, local) = match listening.as_deref() {
                    Some(Target::Socket(s)) => (s.family, s.sock_type, s.local.clone()),
                    _ => (0, 0, None),
                };
                return Target::Socket(Socket {
                    ino: k.ino,
                    family,
                    sock_type,
                    local,
                    remote: None,
                });
            }
            Some(Sysno::memfd_create) => {
                let name = inputs
                    .first()
                    .and_then(Value::as_str)
                    .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                    .unwrap_or_default();
                return Target::Other {
                    label: Str::from(format!("/memfd:{name} (deleted)")),
                    ino: k.ino,
                };
            }
            _ => {}
        }
        if !k.is_some() {
            return Target::Other {
                label: Str::from("?"),
                ino: 0,
            };
        }
        self.probe(pid, fd, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fold_as_text() {
        assert_eq!(fold(b"/home/u", b"../x/./y//z"), b"/home/x/y/z");
        assert_eq!(fold(b"/", b".."), b"/");
        assert_eq!(fold(b"/a", b"/etc/../etc/passwd"), b"/etc/passwd");
    }

    #[test]
    fn argv_keeps_its_items_and_says_when_it_was_cut() {
        assert_eq!(
            argv_value(b"ls\0-l\0", 6).as_list().map(|l| l.len()),
            Some(2)
        );
        let v = argv_value(b"ls\0-l", 100);
        assert_eq!(v.cut().map(|c| c.bytes), Some(95));
        assert_eq!(v.as_list().map(|l| l.len()), Some(2));
    }

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(status_of(3 << 8), ExitStatus::Code(3));
        assert_eq!(
            status_of(9),
            ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            }
        );
    }
}
