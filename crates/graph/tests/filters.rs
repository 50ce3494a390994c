//! Noise filters hide reads of an object, never writes to it: /etc/ld.so.preload, a library or
//! the loader cache a recorded process wrote is part of the attack, found by backtracking and
//! forward tracking with the default filters on, while reads of untouched libraries, and of
//! devices whoever wrote them, stay out and are counted.

use std::sync::Arc;
use vigil_event::*;
use vigil_graph::*;

struct Log {
    events: Vec<Event>,
}

impl Log {
    fn new() -> Self {
        Log { events: Vec::new() }
    }

    fn push(&mut self, pid: u32, kind: EventKind) -> u64 {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            time_ns: 1_000_000 * seq,
            pid,
            tid: pid,
            kind,
        });
        seq
    }

    fn start(&mut self, pid: u32, exe: &str) {
        self.push(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid: 1,
                exe: exe.into(),
                argv: vec![Str::from(exe)].into(),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        );
    }

    fn exit(&mut self, pid: u32, call: &str, args: Vec<Value>, ret: i64) {
        self.push(
            pid,
            EventKind::SyscallExit(SyscallExit {
                call: SyscallId::from_name(call).unwrap(),
                entry_seq: 0,
                ret,
                args: args.into_iter().collect(),
            }),
        );
    }

    /// read or write of a file through an fd.
    fn io(&mut self, pid: u32, call: &str, path: &str, ino: u64) {
        self.exit(
            pid,
            call,
            vec![fd(3, path, ino), Value::Uint(0), Value::Uint(10)],
            10,
        );
    }

    /// openat(path, flags) returning an fd of the file.
    fn open(&mut self, pid: u32, path: &str, flags: u64, ino: u64) {
        self.exit(
            pid,
            "openat",
            vec![
                Value::Fd(Fd::new(-100, None)),
                Value::Str(path.into()),
                Value::Uint(flags),
                Value::Uint(0o644),
                fd(3, path, ino),
            ],
            3,
        );
    }

    /// A shared library mapped for execution.
    fn map(&mut self, pid: u32, path: &str, ino: u64) {
        self.exit(
            pid,
            "mmap",
            vec![
                Value::Uint(0),
                Value::Uint(4096),
                Value::Uint(5),
                Value::Uint(2),
                fd(3, path, ino),
            ],
            0x7f00_0000_0000,
        );
    }

    fn graph(&self) -> Graph {
        let mut b = GraphBuilder::new();
        for e in &self.events {
            b.add(e);
        }
        b.finish()
    }
}

fn fd(num: i32, path: &str, ino: u64) -> Value {
    Value::Fd(Fd::new(
        num,
        Some(Arc::new(Target::File {
            path: path.into(),
            dev: 8,
            ino,
        })),
    ))
}

fn from(g: &Graph, spec: &str, direction: Direction, filters: &Filters) -> Tracked {
    let n = ObjectSpec::parse(spec).unwrap().resolve(g).unwrap().0;
    track(
        g,
        n,
        default_at(g, n, direction),
        direction,
        filters,
        Limits::default(),
    )
}

fn labels(g: &Graph, t: &Tracked) -> Vec<String> {
    t.nodes.iter().map(|&n| g.node(n).label.clone()).collect()
}

/// (from, to, syscall) of the edges followed.
fn edges(g: &Graph, t: &Tracked) -> Vec<(String, String, String)> {
    t.edges
        .iter()
        .map(|&i| {
            let e = &g.edges[i];
            (
                g.node(e.from).label.clone(),
                g.node(e.to).label.clone(),
                g.call_name(e.call).to_string(),
            )
        })
        .collect()
}

/// Process 10 (the attacker) writes /etc/ld.so.preload and a library in /tmp; process 20 (a
/// victim) maps libc, reads the preload list, maps the attacker's library and writes /home/u/out.
fn preload_attack() -> Log {
    let mut l = Log::new();
    l.start(10, "/tmp/dropper");
    l.start(20, "/usr/bin/victim");
    l.map(20, "/usr/lib/x86_64-linux-gnu/libc.so.6", 1);
    l.open(10, "/tmp/evil.so", 0o1101, 2); // O_WRONLY|O_CREAT|O_TRUNC
    l.io(10, "write", "/tmp/evil.so", 2);
    l.open(10, "/etc/ld.so.preload", 0o1101, 3);
    l.io(10, "write", "/etc/ld.so.preload", 3);
    l.start(30, "/usr/bin/victim");
    l.io(30, "read", "/etc/ld.so.preload", 3);
    l.map(30, "/tmp/evil.so", 2);
    l.map(30, "/usr/lib/x86_64-linux-gnu/libc.so.6", 1);
    l.io(30, "read", "/etc/ld.so.cache", 4);
    l.io(30, "write", "/home/u/out", 5);
    l
}

#[test]
fn backtracking_shows_a_write_to_a_filtered_file_and_still_hides_untouched_libraries() {
    let l = preload_attack();
    let g = l.graph();
    let defaults = Filters::new(false, &[]).unwrap();
    let t = from(&g, "file:/home/u/out", Direction::Backward, &defaults);
    let e = edges(&g, &t);
    let has = |from: &str, to: &str, call: &str| {
        e.iter()
            .any(|(a, b, c)| a.starts_with(from) && b.starts_with(to) && c == call)
    };
    assert!(
        has("10 ", "/etc/ld.so.preload", "write"),
        "the write to the preload list: {e:?}"
    );
    assert!(
        has("/etc/ld.so.preload", "30 ", "read"),
        "the victim's read of it: {e:?}"
    );
    assert!(
        has("10 ", "/tmp/evil.so", "write"),
        "a written .so is followed: {e:?}"
    );
    let nodes = labels(&g, &t);
    assert!(
        !nodes
            .iter()
            .any(|n| n.contains("libc.so.6") || n == "/etc/ld.so.cache"),
        "untouched libraries and the loader cache stay filtered: {nodes:?}"
    );
    assert_eq!(
        t.filtered.get("shared libraries and the loader cache"),
        Some(&2),
        "libc and the cache are counted, not the written ones: {:?}",
        t.filtered
    );
}

#[test]
fn a_read_before_the_write_is_still_noise() {
    // Process 20 read the preload list before process 10 wrote it: 10 is not among 20's causes,
    // and the untouched list it read is filtered.
    let mut l = Log::new();
    l.start(10, "/tmp/dropper");
    l.start(20, "/usr/bin/victim");
    l.io(20, "read", "/etc/ld.so.preload", 3);
    l.io(10, "write", "/etc/ld.so.preload", 3);
    l.io(20, "write", "/home/u/out", 5);
    let g = l.graph();
    let t = from(
        &g,
        "file:/home/u/out",
        Direction::Backward,
        &Filters::new(false, &[]).unwrap(),
    );
    let nodes = labels(&g, &t);
    assert!(
        !nodes
            .iter()
            .any(|n| n.starts_with("10 ") || n == "/etc/ld.so.preload"),
        "{nodes:?}"
    );
    assert_eq!(
        t.filtered.get("shared libraries and the loader cache"),
        Some(&1)
    );
}

#[test]
fn forward_tracking_follows_a_write_to_a_filtered_file_to_its_readers() {
    let l = preload_attack();
    let g = l.graph();
    let t = from(
        &g,
        "proc:10",
        Direction::Forward,
        &Filters::new(false, &[]).unwrap(),
    );
    let nodes = labels(&g, &t);
    for want in ["/etc/ld.so.preload", "/tmp/evil.so", "/home/u/out"] {
        assert!(nodes.iter().any(|n| n == want), "{want}: {nodes:?}");
    }
    assert!(nodes.iter().any(|n| n.starts_with("30 ")), "{nodes:?}");
    assert!(
        !nodes.iter().any(|n| n.starts_with("20 ")),
        "process 20 read nothing 10 wrote: {nodes:?}"
    );
}

#[test]
fn devices_hand_nothing_from_a_writer_to_a_reader() {
    // A terminal and /dev/null: a write to them is shown, but what another process reads from
    // them is not what the writer put there, whatever the order.
    let mut l = Log::new();
    l.start(10, "/usr/bin/noisy");
    l.start(20, "/bin/sh");
    l.io(10, "write", "/dev/pts/0", 1);
    l.io(10, "write", "/dev/null", 2);
    l.io(20, "read", "/dev/pts/0", 1);
    l.io(20, "read", "/dev/null", 2);
    l.io(20, "write", "/home/u/typed", 3);
    let g = l.graph();
    let defaults = Filters::new(false, &[]).unwrap();
    let back = from(&g, "file:/home/u/typed", Direction::Backward, &defaults);
    let nodes = labels(&g, &back);
    assert!(
        !nodes
            .iter()
            .any(|n| n.starts_with("10 ") || n.starts_with("/dev/")),
        "{nodes:?}"
    );
    assert_eq!(back.filtered.get("terminals"), Some(&1));
    assert_eq!(back.filtered.get("/dev/null"), Some(&1));
    let fwd = from(&g, "proc:10", Direction::Forward, &defaults);
    let e = edges(&g, &fwd);
    assert!(
        e.iter()
            .any(|(a, b, c)| a.starts_with("10 ") && b == "/dev/pts/0" && c == "write"),
        "the write is shown: {e:?}"
    );
    assert!(
        !labels(&g, &fwd).iter().any(|n| n.starts_with("20 ")),
        "its reader is not reached through the terminal: {e:?}"
    );
}

#[test]
fn an_exclude_pattern_hides_reads_of_a_file_but_not_writes_to_it() {
    let mut l = Log::new();
    l.start(10, "/bin/sh");
    l.start(20, "/usr/bin/cat");
    l.io(20, "read", "/srv/app/static.cfg", 1);
    l.io(10, "write", "/srv/app/dynamic.cfg", 2);
    l.io(20, "read", "/srv/app/dynamic.cfg", 2);
    l.io(20, "write", "/home/u/out", 3);
    let g = l.graph();
    let excl = Filters::new(true, &["/srv/app/*.cfg".to_string()]).unwrap();
    let t = from(&g, "file:/home/u/out", Direction::Backward, &excl);
    let nodes = labels(&g, &t);
    assert!(
        nodes.iter().any(|n| n == "/srv/app/dynamic.cfg")
            && nodes.iter().any(|n| n.starts_with("10 ")),
        "the written file and its writer: {nodes:?}"
    );
    assert!(
        !nodes.iter().any(|n| n == "/srv/app/static.cfg"),
        "{nodes:?}"
    );
    assert_eq!(t.filtered.get("--exclude /srv/app/*.cfg"), Some(&1));
}

#[test]
fn an_open_with_o_trunc_is_a_write_whatever_its_access_mode() {
    // Linux truncates on O_RDONLY|O_TRUNC: the opener changed the file.
    let mut l = Log::new();
    l.start(10, "/bin/sh");
    l.start(20, "/usr/bin/cat");
    l.open(10, "/srv/log", 0o1000, 1); // O_RDONLY|O_TRUNC
    l.io(20, "read", "/srv/log", 1);
    l.io(20, "write", "/home/u/out", 2);
    let g = l.graph();
    let t = from(
        &g,
        "file:/home/u/out",
        Direction::Backward,
        &Filters::new(true, &[]).unwrap(),
    );
    let e = edges(&g, &t);
    assert!(
        e.iter()
            .any(|(a, b, c)| a.starts_with("10 ") && b == "/srv/log" && c == "openat"),
        "{e:?}"
    );
}
