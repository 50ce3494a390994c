//! The time rule on hand-built event sequences.

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

    fn start(&mut self, pid: u32, ppid: u32) -> u64 {
        self.push(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid,
                exe: "/bin/x".into(),
                argv: vec![Str::from("x")].into(),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        )
    }

    fn io(&mut self, pid: u32, call: &str, path: &str, ino: u64, ret: i64) -> u64 {
        let t = Arc::new(Target::File {
            path: path.into(),
            dev: 1,
            ino,
        });
        let args: Args = [
            Value::Fd(Fd::new(3, Some(t))),
            Value::Uint(0),
            Value::Uint(10),
        ]
        .into_iter()
        .collect();
        self.push(
            pid,
            EventKind::SyscallExit(SyscallExit {
                call: SyscallId::from_name(call).unwrap(),
                entry_seq: 0,
                ret,
                args,
            }),
        )
    }

    fn graph(&self) -> Graph {
        let mut b = GraphBuilder::new();
        for e in &self.events {
            b.add(e);
        }
        b.finish()
    }
}

fn labels(g: &Graph, t: &Tracked) -> Vec<String> {
    let mut v: Vec<String> = t.nodes.iter().map(|&n| g.node(n).label.clone()).collect();
    v.sort();
    v
}

fn start(g: &Graph, spec: &str) -> NodeId {
    ObjectSpec::parse(spec).unwrap().resolve(g).unwrap().0
}

#[test]
fn an_edge_after_the_threshold_is_not_followed() {
    let mut l = Log::new();
    l.start(10, 1);
    l.start(20, 1);
    l.io(20, "read", "/f", 7, 5); // Q reads F ...
    l.io(10, "write", "/f", 7, 5); // ... before P writes it: P cannot have influenced Q
    l.io(20, "write", "/out", 8, 5);
    let g = l.graph();
    let none = Filters::new(true, &[]).unwrap();
    let out = start(&g, "file:/out");
    let t = track(
        &g,
        out,
        default_at(&g, out, Direction::Backward),
        Direction::Backward,
        &none,
        Limits::default(),
    );
    let got = labels(&g, &t);
    assert!(
        got.iter().any(|l| l.starts_with("20 ")) && got.contains(&"/f".to_string()),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|l| l.starts_with("10 ")),
        "P wrote /f after Q read it: {got:?}"
    );
    // Forward from P: its write reaches /f, but Q read /f earlier, so not Q.
    let p = start(&g, "proc:10");
    let f = track(
        &g,
        p,
        default_at(&g, p, Direction::Forward),
        Direction::Forward,
        &none,
        Limits::default(),
    );
    let got = labels(&g, &f);
    assert!(
        got.contains(&"/f".to_string()) && !got.iter().any(|l| l.starts_with("20 ")),
        "{got:?}"
    );
}

#[test]
fn a_later_threshold_reopens_an_object_already_reached() {
    // X <- Q(write@6) ; Q <- F(read@5) ; F <- P(write@4) ; and Q <- G(read@2), G <- P(write@3):
    // P reaches F in time (4 <= 5) but G only after Q read it (3 > 2).
    let mut l = Log::new();
    l.start(10, 1); // 1
    l.start(20, 1); // 2 (seqs shift by two; order is what matters)
    l.io(20, "read", "/g", 2, 5);
    l.io(10, "write", "/g", 2, 5);
    l.io(10, "write", "/f", 1, 5);
    l.io(20, "read", "/f", 1, 5);
    l.io(20, "write", "/x", 3, 5);
    let g = l.graph();
    let none = Filters::new(true, &[]).unwrap();
    let x = start(&g, "file:/x");
    let t = track(
        &g,
        x,
        default_at(&g, x, Direction::Backward),
        Direction::Backward,
        &none,
        Limits::default(),
    );
    let names: Vec<_> = t
        .edges
        .iter()
        .map(|&i| {
            (
                g.node(g.edges[i].from).label.clone(),
                g.node(g.edges[i].to).label.clone(),
            )
        })
        .collect();
    assert!(
        names.iter().any(|(a, b)| a.starts_with("10 ") && b == "/f"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|(a, b)| a.starts_with("10 ") && b == "/g"),
        "P wrote /g after Q read it: {names:?}"
    );
    assert!(
        names.iter().any(|(a, b)| a == "/g" && b.starts_with("20 ")),
        "but /g itself was read by Q: {names:?}"
    );
}

#[test]
fn failed_calls_move_nothing_and_limits_apply() {
    let mut l = Log::new();
    l.start(10, 1);
    l.io(10, "read", "/secret", 1, -13); // EACCES: no information moved
    l.io(10, "read", "/data", 2, 4);
    l.io(10, "write", "/out", 3, 4);
    let g = l.graph();
    let none = Filters::new(true, &[]).unwrap();
    let out = start(&g, "file:/out");
    let t = track(
        &g,
        out,
        default_at(&g, out, Direction::Backward),
        Direction::Backward,
        &none,
        Limits::default(),
    );
    let got = labels(&g, &t);
    assert!(
        !got.contains(&"/secret".to_string()) && got.contains(&"/data".to_string()),
        "{got:?}"
    );
    let shallow = track(
        &g,
        out,
        default_at(&g, out, Direction::Backward),
        Direction::Backward,
        &none,
        Limits {
            max_depth: Some(1),
            ..Limits::default()
        },
    );
    assert_eq!(
        labels(&g, &shallow).len(),
        2,
        "the file and its writer only"
    );
    assert_eq!(
        shallow.filtered.get("--max-depth"),
        Some(&2),
        "the reads' sources and the parent are counted as cut off"
    );
}

#[test]
fn a_write_counts_from_its_entry_a_read_at_its_exit() {
    // Client: write entry (3) ... server: read exit (4) returns the data ... client: write exit (5).
    // Observed order puts the write's exit after the read, but the data flowed.
    let mut l = Log::new();
    l.start(10, 1); // 1
    l.start(20, 1); // 2
    let sock = Arc::new(Target::Pipe { ino: 99 });
    let args: Args = [
        Value::Fd(Fd::new(3, Some(sock))),
        Value::Uint(0),
        Value::Uint(4),
    ]
    .into_iter()
    .collect();
    let write = SyscallId::from_name("write").unwrap();
    let read = SyscallId::from_name("read").unwrap();
    let w_entry = l.push(
        10,
        EventKind::SyscallEntry(SyscallEntry {
            call: write,
            args: args.clone(),
        }),
    );
    l.push(
        20,
        EventKind::SyscallExit(SyscallExit {
            call: read,
            entry_seq: 0,
            ret: 4,
            args: args.clone(),
        }),
    );
    l.push(
        10,
        EventKind::SyscallExit(SyscallExit {
            call: write,
            entry_seq: w_entry,
            ret: 4,
            args,
        }),
    );
    let g = l.graph();
    let none = Filters::new(true, &[]).unwrap();
    let server = start(&g, "proc:20");
    let t = track(
        &g,
        server,
        default_at(&g, server, Direction::Backward),
        Direction::Backward,
        &none,
        Limits::default(),
    );
    assert!(
        labels(&g, &t).iter().any(|l| l.starts_with("10 ")),
        "the writer is among the reader's causes: {:?}",
        labels(&g, &t)
    );
}

#[test]
fn a_divergence_is_a_detection_point_at_its_moment() {
    // P reads /in, diverges, then reads /late: backtracking from the divergence reaches
    // /in, not /late (read after the detection point).
    let mut l = Log::new();
    l.start(10, 1);
    l.io(10, "read", "/in", 1, 5);
    let d = l.push(
        10,
        EventKind::Divergence(vigil_event::memory::Divergence {
            what: "args".into(),
            call: SyscallId::from_name("write"),
            fields: Arc::from(vec![Str::from("buf")]),
            detail: "buffers differ".into(),
            variants: Arc::from(Vec::new()),
        }),
    );
    l.io(10, "read", "/late", 2, 5);
    let g = l.graph();
    let (node, at) = ObjectSpec::parse(&format!("event:{d}"))
        .unwrap()
        .resolve(&g)
        .unwrap();
    assert_eq!(node, start(&g, "proc:10"));
    assert_eq!(at, Some(d));
    let none = Filters::new(true, &[]).unwrap();
    let t = track(&g, node, d, Direction::Backward, &none, Limits::default());
    let got = labels(&g, &t);
    assert!(got.contains(&"/in".to_string()), "{got:?}");
    assert!(!got.contains(&"/late".to_string()), "{got:?}");
}
