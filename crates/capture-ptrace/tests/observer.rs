//! The observer against the recorder. A real program (programs/observed.c: opens through a
//! dirfd and a symlink and relative to a changed cwd, dup2, a pipe, a thread, a fork whose
//! child execs through /proc/self/exe, a caught signal, exit statuses) runs under this test's
//! own minimal ptrace loop on vigil-tracee: spawned with a seccomp filter that traps every
//! call, each call followed to its exit with PTRACE_SYSCALL, every stop handed to an
//! `Observer`. Its events must be those `PtraceBackend` records of the same program: the same
//! calls in the same order per thread, with the same decoded paths and fd targets, the same
//! process tree, execs, snapshots, signals and exits (pids, addresses and inode numbers, which
//! differ between two runs, are compared by role).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use vigil_capture::{Backend, Outcome, Selection, Verdict};
use vigil_capture_ptrace::{ObserveError, Observer, PtraceBackend};
use vigil_event::value::Target;
use vigil_event::{ArgKind, Event, EventKind, ExitStatus, Value};
use vigil_tracee::{Command, Error, Event as PEvent, Options, Resume, Stop, Stopped, Tracer, Wait};

/// SECCOMP_RET_TRACE for every call of every ABI.
fn trap_all() -> Vec<libc::sock_filter> {
    vec![libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0x7ff0_0000,
    }]
}

/// A scratch directory holding `in` and `link -> in`, and the program's argv.
fn setup() -> (PathBuf, Vec<OsString>) {
    let prog = vigil_testkit::program("observed");
    let dir = vigil_testkit::scratch_dir("observer");
    std::fs::write(dir.join("in"), b"from the child\n").unwrap();
    std::os::unix::fs::symlink("in", dir.join("link")).unwrap();
    let argv = vec![prog.into_os_string(), dir.into_os_string()];
    (PathBuf::from(&argv[1]), argv)
}

/// `vigil record`'s events of `argv`.
fn record(argv: &[OsString]) -> (Vec<Event>, Outcome) {
    vigil_testkit::require_ptrace();
    let mut b = PtraceBackend::new(argv.to_vec(), Selection::default()).unwrap();
    b.decide_at_entry(false);
    b.report_path_changes(false);
    let mut events = Vec::new();
    let outcome = b
        .run(&mut |e: Event| {
            events.push(e);
            Verdict::Continue
        })
        .unwrap();
    (events, outcome)
}

/// The events of `argv` run under this test's loop, each stop handed to an observer. With
/// `at_exec`, the program is run up to its exec first (tracee's `spawn_until_exec`) and the
/// observer is told of it there, so the observer never sees its first execve.
fn observe(argv: &[OsString], at_exec: bool) -> (Vec<Event>, Outcome) {
    vigil_testkit::require_ptrace();
    let program = PathBuf::from(&argv[0]);
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .options(
            Options::PTRACE_O_TRACESYSGOOD
                | Options::PTRACE_O_TRACEFORK
                | Options::PTRACE_O_TRACEVFORK
                | Options::PTRACE_O_TRACECLONE
                | Options::PTRACE_O_TRACEEXEC
                | Options::PTRACE_O_TRACESECCOMP
                | Options::PTRACE_O_EXITKILL,
        )
        .seccomp(trap_all());
    let mut events = Vec::new();
    let mut sink = |e: Event| {
        events.push(e);
        Verdict::Continue
    };
    let mut obs = Observer::new(&mut sink, Selection::default());
    obs.decide_at_entry(false);
    obs.report_path_changes(false);
    let mut tracer = Tracer::new();
    let mut started = false;
    if at_exec {
        let (_child, s) = tracer.spawn_until_exec(&mut cmd).unwrap();
        obs.spawned(&s, &program, argv).unwrap();
        started = true;
        s.cont().unwrap();
    } else {
        let (_child, _running) = tracer.spawn(&mut cmd).unwrap();
    }
    // Threads between a call's entry and exit (resumed with PTRACE_SYSCALL to see the exit).
    let mut in_call: HashSet<i32> = HashSet::new();
    // New tasks whose first stop came before their creator's event: held until then.
    let mut held: HashMap<i32, Stopped> = HashMap::new();
    let how = |in_call: &HashSet<i32>, tid: i32| {
        if in_call.contains(&tid) {
            Resume::Syscall
        } else {
            Resume::Cont
        }
    };
    loop {
        let s = match tracer.wait() {
            Ok(Wait::Stopped(s)) => s,
            Ok(Wait::Exited { tid, exit }) => {
                in_call.remove(&tid);
                obs.exited(tid, exit).unwrap();
                continue;
            }
            Err(Error::NoTracees) => break,
            Err(e) => panic!("wait: {e}"),
        };
        let tid = s.tid();
        match *s.stop() {
            Stop::Seccomp { .. } => {
                if !started {
                    // The first stop is the execve of the command, before its exec.
                    obs.spawned(&s, &program, argv).unwrap();
                    started = true;
                }
                obs.syscall_entry(&s).unwrap();
                in_call.insert(tid);
                s.syscall().unwrap();
            }
            Stop::SyscallExit { ret, .. } => {
                obs.syscall_exit(&s, ret).unwrap();
                in_call.remove(&tid);
                s.cont().unwrap();
            }
            Stop::Event(PEvent::Fork { .. } | PEvent::Vfork { .. } | PEvent::Clone { .. }) => {
                let child = obs.new_child(&s).unwrap();
                if let Some(c) = held.remove(&child) {
                    c.cont().unwrap();
                }
                s.resume(how(&in_call, tid), None).unwrap();
            }
            Stop::Event(PEvent::Exec { .. }) => {
                obs.exec(&s).unwrap();
                s.resume(how(&in_call, tid), None).unwrap();
            }
            Stop::Signal { .. } => {
                obs.signal(&s).unwrap();
                s.deliver(how(&in_call, tid)).unwrap();
            }
            Stop::Interrupt if !obs.observes(tid) => {
                held.insert(tid, s);
            }
            Stop::GroupStop { .. } => {
                s.listen().unwrap();
            }
            _ => {
                s.resume(how(&in_call, tid), None).unwrap();
            }
        }
    }
    assert!(held.is_empty(), "tasks never announced: {:?}", held.keys());
    let outcome = obs.finish();
    (events, outcome)
}

/// Each thread's events as text, keyed by (process, thread) numbered in order of appearance;
/// pids, addresses, pointers and inode numbers left out (they differ between two runs).
fn by_thread(events: &[Event]) -> BTreeMap<(usize, usize), Vec<String>> {
    let mut procs: HashMap<u32, usize> = HashMap::new();
    let mut threads: HashMap<u32, (usize, usize)> = HashMap::new();
    let mut per_proc: HashMap<usize, usize> = HashMap::new();
    let mut out: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    for e in events {
        match &e.kind {
            EventKind::ProcessStart(_) => {
                let n = procs.len();
                procs.insert(e.pid, n);
                threads.insert(e.tid, (n, 0));
                per_proc.insert(n, 1);
            }
            EventKind::ThreadStart(_) => {
                let p = procs[&e.pid];
                let n = per_proc.entry(p).or_default();
                threads.insert(e.tid, (p, *n));
                *n += 1;
            }
            _ => {}
        }
        let pid = |p: u32| {
            procs
                .get(&p)
                .map_or("outside".to_string(), |n| format!("P{n}"))
        };
        let key = *threads
            .get(&e.tid)
            .unwrap_or_else(|| panic!("event of an unknown thread: {e:?}"));
        let text = match &e.kind {
            EventKind::ProcessStart(s) => format!(
                "start ppid={} exe={} argv={:?} flags={:#x}",
                pid(s.ppid),
                s.exe,
                s.argv,
                s.clone_flags
            ),
            EventKind::ThreadStart(_) => "thread start".to_string(),
            EventKind::ProcessExec(x) => format!(
                "exec {} argv={:?} dev={} ino={} creds={:?}",
                x.exe, x.argv, x.dev, x.ino, x.creds
            ),
            EventKind::AddressSpace(a) => {
                let mut v: Vec<String> = a
                    .vmas
                    .iter()
                    .map(|v| format!("{} {} {}", v.path, v.prot, v.shared))
                    .collect();
                v.sort();
                format!("space {v:?}")
            }
            EventKind::SyscallEntry(c) => format!("> {}{}", c.call, args(c.call, &c.args)),
            EventKind::SyscallExit(x) => {
                let ret = match x.call.canonical().map(|s| s.name()) {
                    // Pids and addresses.
                    Some("clone" | "clone3" | "fork" | "vfork" | "mmap" | "mremap") => "_".into(),
                    _ => x.ret.to_string(),
                };
                format!("< {} = {ret}{}", x.call, args(x.call, &x.args))
            }
            EventKind::Signal(s) => format!(
                "signal {} code={} from={} fault={}",
                s.signal,
                s.code,
                pid(s.sender_pid),
                s.fault.is_some()
            ),
            EventKind::ThreadExit(x) => format!("thread exit {}", x.status),
            EventKind::ProcessExit(x) => format!("exit {}", x.status),
            other => format!("{other:?}"),
        };
        out.entry(key).or_default().push(text);
    }
    out
}

/// A call's arguments, those that differ between runs left out.
fn args(call: vigil_event::SyscallId, args: &[Value]) -> String {
    let sig = call.signature();
    let mut s = String::new();
    for (i, v) in args.iter().enumerate() {
        let kind = sig.field(i).map(|a| a.kind);
        if matches!(kind, Some(ArgKind::Hex | ArgKind::Pid)) {
            continue;
        }
        s.push(' ');
        s.push_str(&value(v));
    }
    s
}

fn value(v: &Value) -> String {
    match v {
        Value::Fd(fd) => {
            let t = match fd.target.as_deref() {
                Some(Target::File { path, .. }) => path.to_string(),
                Some(Target::Pipe { .. }) => "pipe".into(),
                Some(Target::Socket(s)) => format!("socket {} {}", s.family, s.sock_type),
                Some(Target::Other { label, .. }) => label.to_string(),
                None => "?".into(),
            };
            format!("{}<{t}>", fd.num)
        }
        Value::Resolved(r) => format!("{}({:?} given {})", value(&r.value), r.how, value(&r.given)),
        Value::Unreadable(_) => "unreadable".into(),
        Value::Range(_) => "range".into(),
        other => format!("{other:?}"),
    }
}

/// The observer's threads, each against the recorder's: the first difference in full.
fn assert_same(
    observed: &BTreeMap<(usize, usize), Vec<String>>,
    recorded: &BTreeMap<(usize, usize), Vec<String>>,
) {
    assert_eq!(
        observed.keys().collect::<Vec<_>>(),
        recorded.keys().collect::<Vec<_>>(),
        "the same processes and threads"
    );
    for (key, want) in recorded {
        let got = &observed[key];
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g, w, "thread {key:?}, event {i}");
        }
        assert_eq!(
            got.len(),
            want.len(),
            "thread {key:?}: {got:#?}\nvs\n{want:#?}"
        );
    }
}

fn check_program_ran(dir: &Path, outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        Some(ExitStatus::Code(7)),
        "the child's 3, plus 4: {outcome:?}"
    );
    assert_eq!(
        std::fs::read(dir.join("out")).unwrap(),
        b"hello\nfrom the child\n"
    );
}

#[test]
fn the_observer_records_what_the_recorder_records() {
    let (dir, argv) = setup();
    let (rec_events, rec_outcome) = record(&argv);
    check_program_ran(&dir, &rec_outcome);
    let (obs_events, obs_outcome) = observe(&argv, false);
    check_program_ran(&dir, &obs_outcome);
    assert!(obs_outcome.sink_error.is_none());
    assert_eq!(obs_outcome.detached, 0, "every exit was reported");
    assert_eq!(obs_outcome.events, obs_events.len() as u64);
    // Gap-free seqs from 1, as the recorder's.
    assert!(
        obs_events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1)
    );
    let (got, want) = (by_thread(&obs_events), by_thread(&rec_events));
    assert_same(&got, &want);
    // What the comparison stands on (it would pass on two empty logs): the decoding itself.
    let all: Vec<&String> = got.values().flatten().collect();
    let has = |needle: &str| all.iter().any(|l| l.contains(needle));
    let d = dir.display();
    assert!(
        has(&format!("Str(\"{d}/in\")(Exact given Str(\"link\"))")),
        "the open through a dirfd and a symlink names the symlink's target:\n{all:#?}"
    );
    assert!(
        has(&format!("< write = 6 10<{d}/out>")),
        "the write on the dup2'ed fd names the file:\n{all:#?}"
    );
    assert!(has("4<pipe> 5<pipe>"), "pipe2's fds:\n{all:#?}");
    assert!(
        has(&format!("Str(\"{d}/in\")(Exact given Str(\"in\"))")),
        "the child's relative open, against the cwd chdir gave it:\n{all:#?}"
    );
    assert!(
        has("(Exact given Str(\"/proc/self/exe\"))"),
        "the exec through /proc/self/exe names the program, not vigil:\n{all:#?}"
    );
    assert!(
        has(&format!(
            "start ppid=P0 exe={}",
            Path::new(&argv[0]).display()
        )),
        "the fork's child, of the first process:\n{all:#?}"
    );
    assert!(
        has("signal 10 code=-6 from=P1"),
        "the child's raise(SIGUSR1), sent by itself:\n{all:#?}"
    );
    assert_eq!(got.len(), 3, "the process, its thread, its child");
}

#[test]
fn told_at_the_exec_the_observer_gives_the_same_log_but_the_first_execve() {
    let (dir, argv) = setup();
    let (rec_events, _) = record(&argv);
    let (obs_events, obs_outcome) = observe(&argv, true);
    check_program_ran(&dir, &obs_outcome);
    let mut want = by_thread(&rec_events);
    let got = by_thread(&obs_events);
    // The recorder saw the command's own execve, entry and exit, around its exec.
    let root = want.get_mut(&(0, 0)).unwrap();
    assert!(root[1].starts_with("> execve"), "{root:#?}");
    root.remove(1);
    let exit = root.iter().position(|l| l.starts_with("< execve")).unwrap();
    root.remove(exit);
    assert_same(&got, &want);
}

#[test]
fn the_observer_refuses_stops_it_cannot_take() {
    vigil_testkit::require_ptrace();
    let mut events = Vec::new();
    let mut sink = |e: Event| {
        events.push(e);
        Verdict::Continue
    };
    let mut obs = Observer::new(&mut sink, Selection::default());
    let mut tracer = Tracer::new();
    let mut cmd = Command::new("true");
    let (_child, s) = tracer.spawn_until_exec(&mut cmd).unwrap();
    let tid = s.tid();
    assert!(matches!(
        obs.syscall_entry(&s),
        Err(ObserveError::WrongStop { .. })
    ));
    assert!(matches!(
        obs.exec(&s),
        Err(ObserveError::NotObserved { .. })
    ));
    obs.spawned(&s, Path::new("/bin/true"), &["true".into()])
        .unwrap();
    assert!(matches!(
        obs.spawned(&s, Path::new("/bin/true"), &["true".into()]),
        Err(ObserveError::AlreadyObserved { .. })
    ));
    assert!(matches!(
        obs.new_child(&s),
        Err(ObserveError::WrongStop { .. })
    ));
    assert!(matches!(
        obs.signal(&s),
        Err(ObserveError::WrongStop { .. })
    ));
    // The caller's own event comes in the same sequence.
    let seq = obs
        .emit(
            tid as u32,
            tid as u32,
            EventKind::Action(vigil_event::Action {
                action: "noted".into(),
                by: "test".into(),
                target_pid: tid as u32,
                detail: "".into(),
            }),
        )
        .unwrap();
    s.cont().unwrap();
    let exit = loop {
        match tracer.wait().unwrap() {
            Wait::Exited { tid: t, exit } if t == tid => break exit,
            Wait::Stopped(s) => {
                s.cont().unwrap();
            }
            Wait::Exited { .. } => {}
        }
    };
    obs.exited(tid, exit).unwrap();
    let outcome = obs.finish();
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type().name()).collect();
    assert_eq!(seq, 4, "{kinds:?}");
    assert_eq!(
        kinds,
        [
            "process_start",
            "process_exec",
            "address_space",
            "action",
            "thread_exit",
            "process_exit"
        ]
    );
}
