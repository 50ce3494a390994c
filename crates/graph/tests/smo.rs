//! Shared-memory objects in the graph, on events written as the recorder emits them (process
//! starts, openat/ftruncate/mmap exits with their fd targets, `smo_read`/`smo_write` faults
//! with the part, the mapping's range and the address, read/write exits with their file
//! offset): parts at every granularity, read(2)/write(2) meeting the parts they cover, private
//! mappings, the whole-object fallback, and access episodes in the time rule.

use std::sync::Arc;
use vigil_event::*;
use vigil_graph::*;

const PAGE: u64 = 4096;
const SHARED: &str = "/tmp/shared";
const SHARED_INO: u64 = 42;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_SHARED: u64 = 1;
const MAP_PRIVATE: u64 = 2;
const O_RDWR: u64 = 2;
const O_WRONLY: u64 = 1;
const O_CREAT: u64 = 0o100;
const BASE: u64 = 0x7f00_0000_0000;

/// A log under construction: one event per millisecond, in seq order.
struct Log {
    events: Vec<Event>,
    meta_smo: Option<&'static str>,
    slice_ns: Option<u64>,
}

fn file(path: &str, ino: u64) -> Arc<Target> {
    Arc::new(Target::File {
        path: path.into(),
        dev: 8,
        ino,
    })
}

fn fd(num: i32, t: &Arc<Target>) -> Value {
    Value::Fd(Fd::new(num, Some(t.clone())))
}

impl Log {
    /// A recording made with `record --smo MODE` and a 10 ms slice.
    fn recorded(mode: &'static str) -> Self {
        Log {
            events: Vec::new(),
            meta_smo: Some(mode),
            slice_ns: Some(10_000_000),
        }
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

    fn start(&mut self, pid: u32) {
        self.push(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid: 1,
                exe: "/bin/prog".into(),
                argv: Arc::from(vec![Str::from("prog")]),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        );
    }

    /// A syscall exit with its arguments and outputs by name (the others absent).
    fn exit(&mut self, pid: u32, call: &str, named: &[(&str, Value)], ret: i64) -> u64 {
        let id = SyscallId::from_name(call).unwrap();
        let sig = id.signature();
        let args: Args = sig
            .args
            .iter()
            .chain(sig.outputs.iter())
            .map(|a| {
                named
                    .iter()
                    .find(|(n, _)| *n == a.name)
                    .map_or(Value::Absent, |(_, v)| v.clone())
            })
            .collect();
        self.push(
            pid,
            EventKind::SyscallExit(SyscallExit {
                call: id,
                entry_seq: 0,
                ret,
                args,
            }),
        )
    }

    fn openat(&mut self, pid: u32, t: &Arc<Target>, flags: u64) {
        let path = match &**t {
            Target::File { path, .. } => path.clone(),
            _ => unreachable!(),
        };
        self.exit(
            pid,
            "openat",
            &[
                ("path", Value::Str(path)),
                ("flags", Value::Uint(flags)),
                ("mode", Value::Uint(0o644)),
                ("fd", fd(3, t)),
            ],
            3,
        );
    }

    /// `mmap(NULL, len, prot, flags, fd, offset)`.
    fn mmap(&mut self, pid: u32, t: &Arc<Target>, prot: u64, flags: u64, offset: u64, len: u64) {
        self.mmap_at(pid, t, prot, flags, offset, len, BASE + offset);
    }

    /// `mmap` that returned `addr`.
    #[allow(clippy::too_many_arguments)]
    fn mmap_at(
        &mut self,
        pid: u32,
        t: &Arc<Target>,
        prot: u64,
        flags: u64,
        offset: u64,
        len: u64,
        addr: u64,
    ) {
        self.exit(
            pid,
            "mmap",
            &[
                ("addr", Value::Uint(0)),
                ("length", Value::Uint(len)),
                ("prot", Value::Uint(prot)),
                ("flags", Value::Uint(flags)),
                ("fd", fd(3, t)),
                ("offset", Value::Uint(offset)),
            ],
            addr as i64,
        );
    }

    /// Opens the shared file and maps `[offset, offset+len)` of it, shared or private.
    fn map(&mut self, pid: u32, prot: u64, flags: u64, offset: u64, len: u64) {
        let t = file(SHARED, SHARED_INO);
        self.openat(pid, &t, O_RDWR);
        self.mmap(pid, &t, prot, flags, offset, len);
    }

    /// An access of the shared file through a mapping of `map` = (offset, len) of it, as the
    /// recorder reports a fault: `part` = (offset, len) at the recording's granularity.
    #[allow(clippy::too_many_arguments)]
    fn access(
        &mut self,
        pid: u32,
        access: MemAccess,
        part: (u64, u64),
        map: (u64, u64),
        private: bool,
        via: SmoVia,
    ) -> u64 {
        self.access_of(
            pid,
            access,
            SmoObject {
                kind: SmoKind::File,
                dev: 8,
                ino: SHARED_INO,
                path: SHARED.into(),
            },
            part,
            map,
            private,
            via,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn access_of(
        &mut self,
        pid: u32,
        access: MemAccess,
        object: SmoObject,
        part: (u64, u64),
        map: (u64, u64),
        private: bool,
        via: SmoVia,
    ) -> u64 {
        // The mapping starts at BASE + its offset, so the address of an offset is the same
        // in every mapping: simple, and what matters is the file offset.
        let addr = BASE + part.0;
        self.push(
            pid,
            EventKind::SmoAccess(SmoAccess {
                access,
                object,
                offset: part.0,
                len: part.1,
                addr,
                ip: 0x401000,
                via,
                private,
                map_offset: map.0,
                map_len: map.1,
            }),
        )
    }

    fn store(&mut self, pid: u32, page: u64, map: (u64, u64)) -> u64 {
        self.access(
            pid,
            MemAccess::Write,
            (page * PAGE, PAGE),
            map,
            false,
            SmoVia::Fault,
        )
    }

    fn load(&mut self, pid: u32, page: u64, map: (u64, u64)) -> u64 {
        self.access(
            pid,
            MemAccess::Read,
            (page * PAGE, PAGE),
            map,
            false,
            SmoVia::Fault,
        )
    }

    /// The process writes `path` with write(2) (a file without shared-memory parts).
    fn write_out(&mut self, pid: u32, path: &str, ino: u64) {
        let t = file(path, ino);
        self.openat(pid, &t, O_WRONLY | O_CREAT);
        self.exit(
            pid,
            "write",
            &[
                ("fd", fd(3, &t)),
                ("buf", Value::Uint(0x1000)),
                ("count", Value::Uint(10)),
            ],
            10,
        );
    }

    /// read(2) or write(2) of the shared file: `offset` is the exit's output (None: absent).
    fn rw(&mut self, pid: u32, call: &str, offset: Option<u64>, count: u64) {
        let t = file(SHARED, SHARED_INO);
        self.exit(
            pid,
            call,
            &[
                ("fd", fd(3, &t)),
                ("buf", Value::Uint(0x1000)),
                ("count", Value::Uint(count)),
                ("offset", offset.map_or(Value::Absent, Value::Uint)),
            ],
            count as i64,
        );
    }

    /// pread64/pwrite64 of the shared file at `offset`.
    fn prw(&mut self, pid: u32, call: &str, offset: i64, count: u64) {
        let t = file(SHARED, SHARED_INO);
        self.exit(
            pid,
            call,
            &[
                ("fd", fd(3, &t)),
                ("buf", Value::Uint(0x1000)),
                ("count", Value::Uint(count)),
                ("offset", Value::Int(offset)),
            ],
            count as i64,
        );
    }

    /// A setup process that creates the shared file, `pages` long, with ftruncate.
    fn create_shared(&mut self, pid: u32, pages: u64) {
        self.start(pid);
        let t = file(SHARED, SHARED_INO);
        self.openat(pid, &t, O_RDWR | O_CREAT);
        self.exit(
            pid,
            "ftruncate",
            &[
                ("fd", fd(3, &t)),
                ("length", Value::Int((pages * PAGE) as i64)),
            ],
            0,
        );
    }

    fn graph(&self, granularity: Option<&str>) -> Graph {
        let cfg = SmoConfig::for_log(self.meta_smo, self.slice_ns, granularity).unwrap();
        let mut b = GraphBuilder::with_smo(cfg);
        for e in &self.events {
            b.add(e);
        }
        b.finish()
    }
}

fn resolve(g: &Graph, spec: &str) -> NodeId {
    ObjectSpec::parse(spec).unwrap().resolve(g).unwrap().0
}

fn track_from(g: &Graph, spec: &str, direction: Direction) -> Tracked {
    let n = resolve(g, spec);
    let none = Filters::new(true, &[]).unwrap();
    track(
        g,
        n,
        default_at(g, n, direction),
        direction,
        &none,
        Limits::default(),
    )
}

/// The pids among the objects reached, sorted.
fn pids(g: &Graph, t: &Tracked) -> Vec<u32> {
    let mut v: Vec<u32> = t.nodes.iter().filter_map(|&n| g.node(n).pid).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn backtrack_pids(g: &Graph, spec: &str) -> Vec<u32> {
    pids(g, &track_from(g, spec, Direction::Backward))
}

fn forward_pids(g: &Graph, spec: &str) -> Vec<u32> {
    pids(g, &track_from(g, spec, Direction::Forward))
}

const S: u32 = 5; // creates the shared file
const W1: u32 = 10;
const W2: u32 = 11;
const R: u32 = 20;
const WHOLE: (u64, u64) = (0, 3 * PAGE);

/// The source documents' granularity slide: W1 stores to page 0, W2 to page 1, R loads page 1
/// (through a load, or with read(2) when `read_syscall`) and writes OUT with write(2).
fn two_writers_one_reader(read: &dyn Fn(&mut Log)) -> Log {
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [W1, W2, R] {
        l.start(p);
    }
    l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.map(W2, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.map(R, PROT_READ, MAP_SHARED, 0, 3 * PAGE);
    l.store(W1, 0, WHOLE);
    l.store(W2, 1, WHOLE);
    read(&mut l);
    l.write_out(R, "/tmp/out", 77);
    l
}

#[test]
fn page_granularity_separates_the_writers_object_does_not() {
    let l = two_writers_one_reader(&|l| {
        l.load(R, 1, WHOLE);
    });
    let page = l.graph(None);
    assert_eq!(page.granularity, Granularity::Page);
    assert_eq!(
        backtrack_pids(&page, "file:/tmp/out"),
        vec![1, S, W2, R],
        "page 1 was stored by W2 only (S created the file, 1 is everyone's parent)"
    );
    for g in ["object", "vma"] {
        let coarse = l.graph(Some(g));
        assert_eq!(
            backtrack_pids(&coarse, "file:/tmp/out"),
            vec![1, S, W1, W2, R],
            "{g}: both stores are to the part R loaded"
        );
    }
    // Forward: W1's store reaches its page and the file, not R.
    assert_eq!(forward_pids(&page, "proc:10"), vec![W1]);
    assert_eq!(forward_pids(&page, "proc:11"), vec![W2, R]);
    assert_eq!(
        forward_pids(&l.graph(Some("object")), "proc:10"),
        vec![W1, R]
    );
    // The file is the whole of its parts: backtracking from it finds both writers.
    assert_eq!(
        backtrack_pids(&page, &format!("file:{SHARED}")),
        vec![1, S, W1, W2]
    );
    // The parts are objects of kind smo with their bytes; object granularity has one.
    let parts = |g: &Graph| -> Vec<(String, Option<Part>)> {
        g.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Smo)
            .map(|n| (n.label.clone(), n.part))
            .collect()
    };
    assert_eq!(
        parts(&page),
        vec![
            (
                format!("{SHARED} [whole]"),
                Some(Part {
                    offset: 0,
                    length: None
                })
            ),
            (
                format!("{SHARED} [0+4096]"),
                Some(Part {
                    offset: 0,
                    length: Some(4096)
                })
            ),
            (
                format!("{SHARED} [4096+4096]"),
                Some(Part {
                    offset: 4096,
                    length: Some(4096)
                })
            ),
        ]
    );
    assert_eq!(parts(&l.graph(Some("object"))).len(), 1);
    assert_eq!(page.smo.accesses, 3);
    assert_eq!(page.smo.whole_object, 0);
}

#[test]
fn read_syscall_of_a_page_meets_only_that_page() {
    // R reads page 1 with read(2) (the recorder gives the file offset it started at).
    let l = two_writers_one_reader(&|l| l.rw(R, "read", Some(PAGE), PAGE));
    let page = l.graph(None);
    assert_eq!(backtrack_pids(&page, "file:/tmp/out"), vec![1, S, W2, R]);
    assert_eq!(
        backtrack_pids(&l.graph(Some("object")), "file:/tmp/out"),
        vec![1, S, W1, W2, R]
    );
    // pread64 at an offset is the same; a read that spans both pages meets both.
    let l = two_writers_one_reader(&|l| l.prw(R, "pread64", PAGE as i64, 100));
    assert_eq!(
        backtrack_pids(&l.graph(None), "file:/tmp/out"),
        vec![1, S, W2, R]
    );
    let l = two_writers_one_reader(&|l| l.rw(R, "read", Some(100), PAGE));
    assert_eq!(
        backtrack_pids(&l.graph(None), "file:/tmp/out"),
        vec![1, S, W1, W2, R]
    );
    // A read of page 2, which nobody stored to: neither writer.
    let l = two_writers_one_reader(&|l| l.rw(R, "read", Some(2 * PAGE), PAGE));
    assert_eq!(
        backtrack_pids(&l.graph(None), "file:/tmp/out"),
        vec![1, S, R]
    );
}

#[test]
fn a_read_without_its_offset_counts_as_the_whole_object() {
    let l = two_writers_one_reader(&|l| l.rw(R, "read", None, PAGE));
    let g = l.graph(None);
    assert_eq!(
        backtrack_pids(&g, "file:/tmp/out"),
        vec![1, S, W1, W2, R],
        "conservative: the log cannot say which part was read"
    );
    assert_eq!(g.smo.whole_object, 1);
    // A read at the end of the file moved nothing.
    let l = two_writers_one_reader(&|l| {
        let t = file(SHARED, SHARED_INO);
        l.exit(
            R,
            "read",
            &[("fd", fd(3, &t)), ("offset", Value::Uint(3 * PAGE))],
            0,
        );
    });
    assert_eq!(
        backtrack_pids(&l.graph(None), "file:/tmp/out"),
        vec![1, S, R],
        "no bytes, no edge (S through R's mmap of the file it created: this synthetic mapping \
         is outside the recorder's window, so not monitored, and keeps its edge)"
    );
}

#[test]
fn write_syscall_then_load_is_followed_at_part_precision() {
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [W1, W2, R] {
        l.start(p);
    }
    l.map(R, PROT_READ, MAP_SHARED, 0, 3 * PAGE);
    l.load(R, 2, WHOLE); // the file has parts from here on
    let t = file(SHARED, SHARED_INO);
    l.openat(W1, &t, O_RDWR);
    l.rw(W1, "write", Some(0), PAGE);
    l.openat(W2, &t, O_RDWR);
    l.prw(W2, "pwrite64", PAGE as i64, 16);
    l.load(R, 1, WHOLE);
    l.write_out(R, "/tmp/out", 77);
    let g = l.graph(None);
    assert_eq!(backtrack_pids(&g, "file:/tmp/out"), vec![1, S, W2, R]);
    assert_eq!(
        backtrack_pids(&l.graph(Some("object")), "file:/tmp/out"),
        vec![1, S, W1, W2, R]
    );
    // The writes still reach the file as a whole (a later cp or exec of it sees them).
    assert_eq!(
        backtrack_pids(&g, &format!("file:{SHARED}")),
        vec![1, S, W1, W2]
    );
    // A load of page 2, which neither wrote: neither.
    let mut l2 = Log::recorded("page");
    l2.events = l.events[..l.events.len() - 3].to_vec();
    l2.load(R, 2, WHOLE);
    l2.write_out(R, "/tmp/out", 77);
    assert_eq!(
        backtrack_pids(&l2.graph(None), "file:/tmp/out"),
        vec![1, S, R]
    );
    // A write at an unknown offset reaches every part (page 2 too): counted.
    let mut l2 = Log::recorded("page");
    l2.events = l.events[..l.events.len() - 4].to_vec();
    l2.rw(W2, "write", None, 16);
    l2.load(R, 2, WHOLE);
    l2.write_out(R, "/tmp/out", 77);
    let g = l2.graph(None);
    assert_eq!(backtrack_pids(&g, "file:/tmp/out"), vec![1, S, W2, R]);
    assert_eq!(g.smo.whole_object, 1);
}

#[test]
fn files_without_parts_are_whole_files_as_before() {
    // The same reads and writes of a file nobody maps: the whole file, offsets or not.
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [W1, W2, R] {
        l.start(p);
    }
    let t = file(SHARED, SHARED_INO);
    for (p, o) in [(W1, 0), (W2, PAGE)] {
        l.openat(p, &t, O_RDWR);
        l.prw(p, "pwrite64", o as i64, 16);
    }
    l.openat(R, &t, O_RDWR);
    l.prw(R, "pread64", PAGE as i64, 16);
    l.write_out(R, "/tmp/out", 77);
    let g = l.graph(None);
    assert_eq!(backtrack_pids(&g, "file:/tmp/out"), vec![1, S, W1, W2, R]);
    assert!(g.nodes.iter().all(|n| n.kind != NodeKind::Smo));
    assert_eq!(g.smo, SmoStats::default());
}

/// W1 stores to page 0 through a mapping of pages 0-1, W2 to page 2 through one of pages 2-3;
/// Ra loads page 1 through a mapping of page 1 only, Rb loads page 1 through one of pages 1-2.
fn mappings() -> Log {
    let mut l = Log::recorded("page");
    l.create_shared(S, 4);
    for p in [W1, W2, 20, 21] {
        l.start(p);
    }
    let (a, b, c, d) = (
        (0, 2 * PAGE),
        (2 * PAGE, 2 * PAGE),
        (PAGE, PAGE),
        (PAGE, 2 * PAGE),
    );
    l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, a.0, a.1);
    l.map(W2, PROT_READ | PROT_WRITE, MAP_SHARED, b.0, b.1);
    l.map(20, PROT_READ, MAP_SHARED, c.0, c.1);
    l.map(21, PROT_READ, MAP_SHARED, d.0, d.1);
    l.store(W1, 0, a);
    l.store(W2, 2, b);
    l.load(20, 1, c);
    l.load(21, 1, d);
    l
}

#[test]
fn vma_granularity_differs_from_object_and_page() {
    let l = mappings();
    let (object, vma, page) = (
        l.graph(Some("object")),
        l.graph(Some("vma")),
        l.graph(Some("page")),
    );
    let writers = |g: &Graph, r: u32| -> Vec<u32> {
        backtrack_pids(g, &format!("proc:{r}"))
            .into_iter()
            .filter(|p| [W1, W2].contains(p))
            .collect()
    };
    // Ra's mapping [4096, 8192) shares bytes with W1's [0, 8192), not with W2's.
    assert_eq!(writers(&object, 20), vec![W1, W2]);
    assert_eq!(writers(&vma, 20), vec![W1]);
    assert_eq!(writers(&page, 20), Vec::<u32>::new());
    // Rb's [4096, 12288) overlaps both mappings; page 1 was stored to by nobody.
    assert_eq!(writers(&object, 21), vec![W1, W2]);
    assert_eq!(writers(&vma, 21), vec![W1, W2]);
    assert_eq!(writers(&page, 21), Vec::<u32>::new());
    // Forward from W1 at vma: both readers (their mappings overlap its own); from W2, Rb.
    assert_eq!(forward_pids(&vma, "proc:10"), vec![W1, 20, 21]);
    assert_eq!(forward_pids(&vma, "proc:11"), vec![W2, 21]);
    // A part per mapping range at vma granularity.
    let labels: Vec<&str> = vma
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Smo)
        .map(|n| n.label.as_str())
        .collect();
    assert_eq!(
        labels,
        vec![
            "/tmp/shared [whole]",
            "/tmp/shared [0+8192]",
            "/tmp/shared [8192+8192]"
        ]
    );
}

#[test]
fn minipage_separates_two_stores_in_one_page_page_does_not() {
    // Recorded at minipage:64: the events carry the exact bytes of each access.
    let mut l = Log::recorded("minipage:64");
    l.create_shared(S, 1);
    for p in [W1, W2, R] {
        l.start(p);
    }
    for p in [W1, W2, R] {
        l.map(p, PROT_READ | PROT_WRITE, MAP_SHARED, 0, PAGE);
    }
    let m = (0, PAGE);
    l.access(W1, MemAccess::Write, (0, 8), m, false, SmoVia::Step);
    l.access(W2, MemAccess::Write, (2048, 8), m, false, SmoVia::Step);
    l.access(R, MemAccess::Read, (2052, 4), m, false, SmoVia::Step);
    l.write_out(R, "/tmp/out", 77);
    for g in [
        None,
        Some("minipage"),
        Some("minipage:128"),
        Some("minipage:2048"),
    ] {
        assert_eq!(
            backtrack_pids(&l.graph(g), "file:/tmp/out"),
            vec![1, S, W2, R],
            "{g:?}: the stores are 2 KiB apart"
        );
    }
    for g in ["page", "vma", "object"] {
        assert_eq!(
            backtrack_pids(&l.graph(Some(g)), "file:/tmp/out"),
            vec![1, S, W1, W2, R],
            "{g}: one part holds both stores"
        );
    }
    // An access across a part boundary touches both parts.
    let mut l2 = Log::recorded("minipage:64");
    l2.events = l.events[..l.events.len() - 3].to_vec();
    l2.access(R, MemAccess::Read, (60, 8), m, false, SmoVia::Step);
    l2.write_out(R, "/tmp/out", 77);
    assert_eq!(
        backtrack_pids(&l2.graph(None), "file:/tmp/out"),
        vec![1, S, W1, R]
    );
    // Finer than recorded is refused.
    assert!(SmoConfig::for_log(Some("minipage:64"), None, Some("minipage:32")).is_err());
}

#[test]
fn stores_through_a_private_mapping_never_flow() {
    const P: u32 = 30;
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [W2, P, R] {
        l.start(p);
    }
    l.map(W2, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.map(P, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0, 3 * PAGE);
    l.map(R, PROT_READ, MAP_SHARED, 0, 3 * PAGE);
    l.store(W2, 1, WHOLE);
    // P loads page 1 (not copied yet: it sees W2's store), then stores to pages 0 and 1.
    l.access(P, MemAccess::Read, (PAGE, PAGE), WHOLE, true, SmoVia::Fault);
    l.access(P, MemAccess::Write, (0, PAGE), WHOLE, true, SmoVia::Fault);
    l.access(
        P,
        MemAccess::ReadWrite,
        (PAGE, PAGE),
        WHOLE,
        true,
        SmoVia::Fault,
    );
    l.write_out(P, "/tmp/p-out", 78);
    l.load(R, 0, WHOLE);
    l.load(R, 1, WHOLE);
    l.write_out(R, "/tmp/out", 77);
    for g in ["page", "vma", "object"] {
        let g = l.graph(Some(g));
        assert_eq!(
            backtrack_pids(&g, "file:/tmp/out"),
            vec![1, S, W2, R],
            "P's copies never reach the file"
        );
        assert!(!forward_pids(&g, "proc:30").contains(&R));
        // P's own loads depend on the shared writer.
        assert!(backtrack_pids(&g, "file:/tmp/p-out").contains(&W2));
        assert!(!backtrack_pids(&g, &format!("file:{SHARED}")).contains(&P));
    }
}

#[test]
fn monitored_shared_mappings_are_not_whole_file_flows_at_mmap() {
    // Only mmaps: with --smo page, stores show as smo_write events, so the writable shared
    // mapping itself moves nothing; a log that does not say keeps the mmap's edge.
    let build = |meta: Option<&'static str>| {
        let mut l = Log::recorded("page");
        l.meta_smo = meta;
        l.start(W1);
        l.start(R);
        l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, PAGE);
        l.map(R, PROT_READ, MAP_SHARED, 0, PAGE);
        l.write_out(R, "/tmp/out", 77);
        l
    };
    assert!(!backtrack_pids(&build(Some("page")).graph(None), "file:/tmp/out").contains(&W1));
    assert!(backtrack_pids(&build(None).graph(None), "file:/tmp/out").contains(&W1));
    assert!(backtrack_pids(&build(Some("off")).graph(None), "file:/tmp/out").contains(&W1));
}

#[test]
fn a_reader_that_maps_after_the_stores_depends_on_its_page_only() {
    // The reader maps the file after both stores (as real programs run one after the other
    // do): its mmap is no read of the whole file when the recorder monitored the mapping (it
    // lies in the recorder's window), so only its load of page 1 brings W2's store. A shared
    // mapping outside the window (MAP_FIXED, an address hint) was not monitored: its mmap
    // still reads the whole file, W1's store included.
    let build = |addr: u64| {
        let mut l = Log::recorded("page");
        l.create_shared(S, 3);
        for p in [W1, W2, R] {
            l.start(p);
        }
        l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
        l.map(W2, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
        l.store(W1, 0, WHOLE);
        l.store(W2, 1, WHOLE);
        let t = file(SHARED, SHARED_INO);
        l.openat(R, &t, O_RDWR);
        l.mmap_at(R, &t, PROT_READ, MAP_SHARED, 0, 3 * PAGE, addr);
        l.load(R, 1, WHOLE);
        l.write_out(R, "/tmp/out", 77);
        l
    };
    let window = build(0x6ee0_0000_0000).graph(None);
    let reached = backtrack_pids(&window, "file:/tmp/out");
    assert!(
        reached.contains(&W2) && !reached.contains(&W1),
        "{reached:?}"
    );
    let outside = build(BASE).graph(None);
    let reached = backtrack_pids(&outside, "file:/tmp/out");
    assert!(
        reached.contains(&W1) && reached.contains(&W2),
        "{reached:?}"
    );
}

#[test]
fn shared_memory_that_is_not_a_file_has_parts_too() {
    let seg = |kind: SmoKind, ino: u64| SmoObject {
        kind,
        dev: 0,
        ino,
        path: if kind == SmoKind::SysvShm {
            "/SYSV00000000 (deleted)".into()
        } else {
            "".into()
        },
    };
    let mut l = Log::recorded("page");
    for p in [W1, W2, R] {
        l.start(p);
    }
    let m = (0, 2 * PAGE);
    l.access_of(
        W1,
        MemAccess::Write,
        seg(SmoKind::SysvShm, 7),
        (0, PAGE),
        m,
        false,
        SmoVia::Fault,
    );
    l.access_of(
        W2,
        MemAccess::Write,
        seg(SmoKind::SharedAnon, 7),
        (0, PAGE),
        m,
        false,
        SmoVia::Fault,
    );
    l.access_of(
        R,
        MemAccess::Read,
        seg(SmoKind::SysvShm, 7),
        (0, PAGE),
        m,
        false,
        SmoVia::Fault,
    );
    l.write_out(R, "/tmp/out", 77);
    let g = l.graph(None);
    assert_eq!(
        backtrack_pids(&g, "file:/tmp/out"),
        vec![1, W1, R],
        "the segment and the anonymous memory are different objects"
    );
    let labels: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Smo)
        .map(|n| n.label.as_str())
        .collect();
    assert_eq!(
        labels,
        vec![
            "sysv_shm 7 /SYSV00000000 (deleted) [0+4096]",
            "shared_anon 7 [0+4096]"
        ]
    );
}

/// The episode rule: X stores the secret to page 2; W stores to page 0 (a write fault, its
/// episode begins), then loads the secret from page 2 and, still inside the episode, copies
/// it to page 0 with no new event; R then loads page 0. `between` adds events after W's load.
fn episode(between: &dyn Fn(&mut Log)) -> Log {
    const X: u32 = 40;
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [X, W1, R] {
        l.start(p);
    }
    l.map(X, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.map(R, PROT_READ, MAP_SHARED, 0, 3 * PAGE);
    l.store(X, 2, WHOLE);
    l.store(W1, 0, WHOLE);
    between(&mut l);
    l
}

fn reaches_secret(l: &Log) -> bool {
    backtrack_pids(&l.graph(None), "file:/tmp/out").contains(&40)
}

#[test]
fn a_store_lasts_for_its_access_episode() {
    // W loads the secret after its write fault and stores it without a new fault: R's load
    // of page 0 must lead back to X.
    let l = episode(&|l| {
        l.load(W1, 2, WHOLE);
        l.load(R, 0, WHOLE);
        l.write_out(R, "/tmp/out", 77);
    });
    assert!(
        reaches_secret(&l),
        "the store's episode covers the later load"
    );
    assert!(forward_pids(&l.graph(None), "proc:40").contains(&R));
    // Every granularity applies the rule (the same part at object level anyway).
    assert!(backtrack_pids(&l.graph(Some("vma")), "file:/tmp/out").contains(&40));
    // The edge says how long the episode lasted: until R's load revoked... or rather until
    // W's next syscall stop (here, none: the end of the process's events, the log's end).
    let g = l.graph(None);
    let store = g
        .edges
        .iter()
        .find(|e| g.call_name(e.call) == "smo_write" && g.node(e.from).pid == Some(W1))
        .unwrap();
    assert_eq!(store.span_kind, SpanKind::Tail);
    assert!(store.until() > store.seq, "{store:?}");

    // R loaded page 0 before W loaded the secret: coherence had taken W's write access away
    // before R's load, so nothing W obtained later can be in what R saw.
    let l = episode(&|l| {
        l.load(R, 0, WHOLE);
        l.write_out(R, "/tmp/out", 77);
        l.load(W1, 2, WHOLE);
    });
    assert!(!reaches_secret(&l));

    // A syscall of W between its store and its load ends the episode (vigil protects the page
    // again at every syscall stop): a later store would have faulted again.
    let l = episode(&|l| {
        l.exit(W1, "getpid", &[], W1 as i64);
        l.load(W1, 2, WHOLE);
        l.load(R, 0, WHOLE);
        l.write_out(R, "/tmp/out", 77);
    });
    assert!(!reaches_secret(&l));
    assert!(!forward_pids(&l.graph(None), "proc:40").contains(&R));

    // So does the end of the slice (10 ms: ten events here) ...
    let l = episode(&|l| {
        for _ in 0..12 {
            l.exit(R, "getpid", &[], R as i64);
        }
        l.load(W1, 2, WHOLE);
        l.load(R, 0, WHOLE);
        l.write_out(R, "/tmp/out", 77);
    });
    assert!(!reaches_secret(&l));
    // ... but not another process's syscalls within the slice.
    let l = episode(&|l| {
        for _ in 0..3 {
            l.exit(R, "getpid", &[], R as i64);
        }
        l.load(W1, 2, WHOLE);
        l.load(R, 0, WHOLE);
        l.write_out(R, "/tmp/out", 77);
    });
    assert!(reaches_secret(&l));

    // A store seen by single-stepping (minipage mode) is exactly its event.
    let mut l = episode(&|_| {});
    l.events.pop();
    l.access(W1, MemAccess::Write, (0, 8), WHOLE, false, SmoVia::Step);
    l.load(W1, 2, WHOLE);
    l.load(R, 0, WHOLE);
    l.write_out(R, "/tmp/out", 77);
    assert!(!reaches_secret(&l));
}

#[test]
fn a_kernel_store_lasts_until_its_syscall_returns() {
    // read(fd, smo_ptr, n): the kernel stores into page 0 (an smo_write via the syscall,
    // reported between the entry and the exit); the data comes from the pipe at the exit.
    const X: u32 = 40;
    let mut l = Log::recorded("page");
    l.create_shared(S, 1);
    for p in [X, W1, R] {
        l.start(p);
    }
    l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, PAGE);
    l.map(R, PROT_READ, MAP_SHARED, 0, PAGE);
    let pipe = Arc::new(Target::Pipe { ino: 99 });
    let write = SyscallId::from_name("write").unwrap();
    let read = SyscallId::from_name("read").unwrap();
    let pipe_args =
        |fdv: Value| -> Args { [fdv, Value::Uint(0), Value::Uint(8)].into_iter().collect() };
    l.push(
        X,
        EventKind::SyscallExit(SyscallExit {
            call: write,
            entry_seq: 0,
            ret: 8,
            args: pipe_args(Value::Fd(Fd::new(4, Some(pipe.clone())))),
        }),
    );
    let entry = l.push(
        W1,
        EventKind::SyscallEntry(SyscallEntry {
            call: read,
            args: pipe_args(Value::Fd(Fd::new(4, Some(pipe.clone())))),
        }),
    );
    l.access(
        W1,
        MemAccess::Write,
        (0, PAGE),
        (0, PAGE),
        false,
        SmoVia::Syscall(read),
    );
    l.push(
        W1,
        EventKind::SyscallExit(SyscallExit {
            call: read,
            entry_seq: entry,
            ret: 8,
            args: pipe_args(Value::Fd(Fd::new(4, Some(pipe)))),
        }),
    );
    l.load(R, 0, (0, PAGE));
    l.write_out(R, "/tmp/out", 77);
    assert!(reaches_secret(&l), "what the read brought is in the page");
}

#[test]
fn edges_stay_32_bytes() {
    assert_eq!(std::mem::size_of::<Edge>(), 32);
}

#[test]
fn a_threshold_that_rises_later_extends_a_store_already_followed() {
    // Two readers of page 0 write OUT: Rlo loaded it early, Rhi late. The part is reached
    // first through Rlo (so W's store is followed with W's threshold at Rlo's load), then
    // through Rhi: W's threshold must rise with it, to W's load of the secret in between.
    const X: u32 = 40;
    const RHI: u32 = 21;
    const RLO: u32 = 22;
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [X, W1, RHI, RLO] {
        l.start(p);
    }
    for p in [X, W1, RHI, RLO] {
        l.map(p, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    }
    l.store(X, 2, WHOLE);
    l.store(W1, 0, WHOLE);
    l.load(RLO, 0, WHOLE);
    l.load(W1, 2, WHOLE);
    l.load(RHI, 0, WHOLE);
    let out = file("/tmp/out", 77);
    for p in [RHI, RLO] {
        l.openat(p, &out, O_WRONLY | O_CREAT);
        l.exit(
            p,
            "write",
            &[("fd", fd(3, &out)), ("count", Value::Uint(1))],
            1,
        );
    }
    let g = l.graph(None);
    assert!(backtrack_pids(&g, "file:/tmp/out").contains(&X));
    // And Rlo alone does not reach the secret (its load came before W's).
    assert!(!backtrack_pids(&g, "proc:22").contains(&X));
    assert!(backtrack_pids(&g, "proc:21").contains(&X));
}

#[test]
fn what_the_file_held_before_its_first_access_is_in_every_part() {
    // R maps the file; then S writes it with pwrite64 (the file has no parts yet, so that is
    // a whole-file write); then W1 stores to page 1, the file's first access, and R loads
    // page 0: what S wrote is there, what W1 stored is not.
    const T: u32 = 6;
    let mut l = Log::recorded("page");
    l.create_shared(S, 3);
    for p in [T, W1, R] {
        l.start(p);
    }
    l.map(R, PROT_READ, MAP_SHARED, 0, 3 * PAGE);
    let t = file(SHARED, SHARED_INO);
    l.openat(T, &t, O_RDWR);
    l.prw(T, "pwrite64", 0, 100);
    l.map(W1, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 3 * PAGE);
    l.store(W1, 1, WHOLE);
    l.load(R, 0, WHOLE);
    l.write_out(R, "/tmp/out", 77);
    let g = l.graph(None);
    assert_eq!(backtrack_pids(&g, "file:/tmp/out"), vec![1, S, T, R]);
    let contents = g
        .edges
        .iter()
        .find(|e| g.call_name(e.call) == "contents")
        .unwrap();
    assert_eq!(g.node(contents.to).label, format!("{SHARED} [whole]"));
    assert_eq!(
        contents.at(),
        contents.seq - 1,
        "just before the first access"
    );
    // event:SEQ of that access names the part it stored to, not the contents.
    let (n, _) = ObjectSpec::parse(&format!("event:{}", contents.seq))
        .unwrap()
        .resolve(&g)
        .unwrap();
    assert_eq!(g.node(n).label, format!("{SHARED} [4096+4096]"));
}
