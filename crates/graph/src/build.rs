//! Turning events into objects and edges (the rules are tabulated in docs/graph.md).
//!
//! Memory matters: a 10M-event log must fit in well under 100 bytes per event. Nodes are few
//! (objects, not events); each edge is 32 bytes; adjacency is two index arrays built once.
//!
//! Shared-memory objects are divided into parts at the analysis's granularity (crate::smo): a
//! store through a mapping goes to its part (and the part to its file), a load comes from every
//! part its range overlaps, and read(2)/write(2) of a file that has parts meet the parts their
//! file offset covers. A store's edge lasts for its access episode, closed here as the log
//! goes by (the writer's next syscall, the end of the monitoring slice).

use crate::smo::{Granularity, Parts, Range, SmoConfig, SmoStats};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use syscalls::Sysno;
use vigil_event::value::{AF_INET, AF_INET6};
use vigil_event::*;

pub type NodeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    Process,
    File,
    Filename,
    Pipe,
    Socket,
    /// A part of a shared-memory object (the object, a vma's range, a page or a minipage).
    Smo,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Process => "process",
            NodeKind::File => "file",
            NodeKind::Filename => "filename",
            NodeKind::Pipe => "pipe",
            NodeKind::Socket => "socket",
            NodeKind::Smo => "smo",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    /// What a person reads: `1234 cat /etc/passwd`, `/tmp/x`, `pipe:[77]`, `127.0.0.1:5->...`.
    pub label: String,
    pub pid: Option<u32>,
    /// Every path the object was known by, in order (a file that was renamed has several).
    pub paths: Vec<Str>,
    /// First and last seq at which the object took part in an event.
    pub first_seq: u64,
    pub last_seq: u64,
    /// For a shared-memory part: which bytes of its object it stands for.
    pub part: Option<Part>,
    /// Some edge leads into it (so far, while the graph is built).
    pub(crate) written: bool,
}

/// The bytes of a shared-memory object a part stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Offset in the object (the file offset for a file).
    pub offset: u64,
    /// None: the whole object (object granularity, or what was written to a file at no known
    /// offset).
    pub length: Option<u64>,
}

/// `from` caused `to` through `call` (a syscall name, `fork`/`clone`/`vfork`, `smo_read`/
/// `smo_write`), in the event `seq` (a syscall's exit, a shared-memory access).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub seq: u64,
    pub time_ns: u64,
    pub call: Call,
    /// What `span` measures.
    pub span_kind: SpanKind,
    /// `Lead`: how much earlier than `seq` the effect could take place: a call changes its
    /// object from its entry on (another process can read what a write wrote before the write
    /// returns), while information reaches the calling process only at the exit (lead 0).
    /// `Tail`: how much later than `seq` it can still take place: a store through a mapping
    /// carries what the writer holds until its access episode ends.
    pub span: u32,
}

/// Whether an edge's span reaches back (a call's entry) or forward (an access episode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Lead,
    Tail,
}

impl Edge {
    /// The first moment of the effect, the one the time rule orders edges by: the entry of a
    /// call acting on an object, the exit of a call that brings information to the process,
    /// the fault that started an access episode.
    pub fn at(&self) -> u64 {
        match self.span_kind {
            SpanKind::Lead => self.seq.saturating_sub(self.span as u64),
            SpanKind::Tail => self.seq,
        }
    }

    /// The last moment of the effect: the end of a store's access episode, `at` otherwise.
    pub fn until(&self) -> u64 {
        match self.span_kind {
            SpanKind::Lead => self.at(),
            SpanKind::Tail => self.seq.saturating_add(self.span as u64),
        }
    }
}

/// The call name of the edge from a file to its whole-object part (crate::object skips it).
pub(crate) const CONTENTS: &str = "contents";

/// The span of an episode not closed yet.
const OPEN: u32 = u32::MAX;

/// An edge's syscall, as an index into a small name table (keeps edges at 32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call(pub u16);

#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    calls: Vec<&'static str>,
    call_ids: FxHashMap<&'static str, u16>,
    /// The current process node of each pid (a pid reused later gets a new node).
    procs: FxHashMap<u32, NodeId>,
    /// Every process node a pid has had, in order (for `proc:PID@N`).
    pid_history: FxHashMap<u32, Vec<NodeId>>,
    files: FxHashMap<(u64, u64), NodeId>,
    /// The file object a path names now (updated by opens, renames, links, unlinks).
    by_path: FxHashMap<Str, NodeId>,
    filenames: FxHashMap<Str, NodeId>,
    /// File objects known only by a path so far (no device/inode seen yet).
    unidentified: rustc_hash::FxHashSet<NodeId>,
    pipes: FxHashMap<u64, NodeId>,
    sockets: FxHashMap<SocketKey, NodeId>,
    others: FxHashMap<u64, NodeId>,
    smo: SmoConfig,
    smo_stats: SmoStats,
    /// Shared-memory objects and their parts; files by their node, the others by identity.
    objects: Vec<Parts>,
    smo_files: FxHashMap<NodeId, u32>,
    smo_mem: FxHashMap<(SmoKind, u64, u64), u32>,
    episodes: Episodes,
    /// Reused list of parts.
    scratch: Vec<NodeId>,
    first_seq: Option<u64>,
    last_seq: u64,
    first_time: u64,
    last_time: u64,
    events: u64,
    /// Detection points that moved no information (a divergence): their process node.
    detections: FxHashMap<u64, NodeId>,
}

/// Stores whose access episode is still open: per thread (its next syscall ends them) and in
/// order of their deadline (the end of the monitoring slice).
#[derive(Default)]
struct Episodes {
    by_tid: FxHashMap<u32, (u32, Vec<u32>)>,
    deadlines: VecDeque<(u64, u32)>,
}

impl Episodes {
    fn active(&self) -> bool {
        !self.by_tid.is_empty() || !self.deadlines.is_empty()
    }
}

/// Where a read(2)/write(2)-like call met a file.
enum Io {
    /// Not a file with shared-memory parts: the whole file, as ever.
    Plain,
    /// A file with parts, at these bytes (at the analysis's granularity).
    At(u32, Range),
    /// A file with parts, at an offset the log does not have: the whole object.
    Unknown,
    /// Nothing moved (a read at the end of the file).
    Nothing,
}

/// A connected socket is one object for both ends (client and server see the same pair of
/// addresses, swapped); an unconnected one is its inode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SocketKey {
    Connection(String, String),
    Inode(u64),
}

/// Names kept per file object (the most recent).
const MAX_NAMES: usize = 16;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 1;
const MAP_SHARED_VALIDATE: u64 = 3;
use vigil_event::memory::{SMO_WINDOW_END, SMO_WINDOW_START};

impl GraphBuilder {
    pub fn new() -> Self {
        GraphBuilder::default()
    }

    /// A builder for a log recorded (and analysed) as `smo` says: the granularity of
    /// shared-memory parts, whether every shared mapping was monitored, the slice.
    pub fn with_smo(smo: SmoConfig) -> Self {
        GraphBuilder {
            smo,
            ..GraphBuilder::default()
        }
    }

    fn call(&mut self, name: &'static str) -> Call {
        if let Some(&id) = self.call_ids.get(name) {
            return Call(id);
        }
        let id = self.calls.len() as u16;
        self.calls.push(name);
        self.call_ids.insert(name, id);
        Call(id)
    }

    fn node(&mut self, kind: NodeKind, label: String, seq: u64) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            kind,
            label,
            pid: None,
            paths: Vec::new(),
            first_seq: seq,
            last_seq: seq,
            part: None,
            written: false,
        });
        id
    }

    fn touch(&mut self, n: NodeId, seq: u64) {
        let node = &mut self.nodes[n as usize];
        node.first_seq = node.first_seq.min(seq);
        node.last_seq = node.last_seq.max(seq);
    }

    fn edge(&mut self, from: NodeId, to: NodeId, ev: &Event, call: &'static str) {
        if from == to {
            return;
        }
        // A calling process acting on something else: effective from the call's entry. Any
        // other event is effective when it happens (a fault is seen at the access itself).
        let lead = match &ev.kind {
            EventKind::SyscallExit(x)
                if self.procs.get(&ev.pid) == Some(&from)
                    && x.entry_seq > 0
                    && x.entry_seq <= ev.seq =>
            {
                u32::try_from(ev.seq - x.entry_seq).unwrap_or(0)
            }
            _ => 0,
        };
        self.push_edge(from, to, ev, call, SpanKind::Lead, lead);
    }

    fn push_edge(
        &mut self,
        from: NodeId,
        to: NodeId,
        ev: &Event,
        call: &'static str,
        span_kind: SpanKind,
        span: u32,
    ) {
        let call = self.call(call);
        let e = Edge {
            from,
            to,
            seq: ev.seq,
            time_ns: ev.time_ns,
            call,
            span_kind,
            span,
        };
        self.touch(from, e.at());
        self.touch(to, e.at());
        self.nodes[to as usize].written = true;
        self.edges.push(e);
    }

    /// Another edge of the same event with the same moment(s), `from` -> `to`.
    fn same_edge(&mut self, like: usize, from: NodeId, to: NodeId) {
        if from == to {
            return;
        }
        let e = Edge {
            from,
            to,
            ..self.edges[like]
        };
        self.touch(from, e.at());
        self.touch(to, e.at());
        self.nodes[to as usize].written = true;
        self.edges.push(e);
    }

    fn process(&mut self, pid: u32, seq: u64) -> NodeId {
        if let Some(&n) = self.procs.get(&pid) {
            return n;
        }
        // A process whose start the log does not show (it began before recording).
        let n = self.node(NodeKind::Process, format!("{pid} (not recorded)"), seq);
        self.nodes[n as usize].pid = Some(pid);
        self.procs.insert(pid, n);
        self.pid_history.entry(pid).or_default().push(n);
        n
    }

    fn add_path(&mut self, n: NodeId, path: &Str) {
        let node = &mut self.nodes[n as usize];
        if node.paths.last() == Some(path) {
            return;
        }
        node.label = path.to_string();
        if let Some(i) = node.paths.iter().position(|p| p == path) {
            let p = node.paths.remove(i);
            node.paths.push(p);
        } else {
            node.paths.push(path.clone());
            // A file rarely has many names; keep the latest few.
            if node.paths.len() > MAX_NAMES {
                node.paths.remove(0);
            }
        }
    }

    fn file(&mut self, path: &Str, dev: u64, ino: u64, seq: u64) -> NodeId {
        let n = if (dev, ino) != (0, 0) {
            match self.files.get(&(dev, ino)) {
                Some(&n) => n,
                None => {
                    // Opened under a name we already gave an inode-less object to: the same file.
                    let n = match self.by_path.get(path) {
                        Some(&n) if self.is_unidentified_file(n) => {
                            self.unidentified.remove(&n);
                            n
                        }
                        _ => self.node(NodeKind::File, path.to_string(), seq),
                    };
                    self.files.insert((dev, ino), n);
                    n
                }
            }
        } else {
            self.file_by_path(path, seq)
        };
        self.add_path(n, path);
        self.by_path.insert(path.clone(), n);
        n
    }

    fn is_unidentified_file(&self, n: NodeId) -> bool {
        self.unidentified.contains(&n)
    }

    /// The file a path names now; a new object if none is known.
    fn file_by_path(&mut self, path: &Str, seq: u64) -> NodeId {
        if let Some(&n) = self.by_path.get(path) {
            return n;
        }
        let n = self.node(NodeKind::File, path.to_string(), seq);
        self.unidentified.insert(n);
        self.add_path(n, path);
        self.by_path.insert(path.clone(), n);
        n
    }

    fn filename(&mut self, path: &Str, seq: u64) -> NodeId {
        if let Some(&n) = self.filenames.get(path) {
            return n;
        }
        let n = self.node(NodeKind::Filename, format!("name {path}"), seq);
        self.nodes[n as usize].paths.push(path.clone());
        self.filenames.insert(path.clone(), n);
        n
    }

    /// The object an fd referred to.
    fn target(&mut self, t: &Arc<Target>, seq: u64) -> Option<NodeId> {
        Some(match &**t {
            Target::File { path, dev, ino } => self.file(path, *dev, *ino, seq),
            Target::Pipe { ino } => match self.pipes.get(ino) {
                Some(&n) => n,
                None => {
                    let n = self.node(NodeKind::Pipe, format!("pipe:[{ino}]"), seq);
                    self.pipes.insert(*ino, n);
                    n
                }
            },
            Target::Socket(s) => {
                let key = match (&s.local, &s.remote) {
                    (Some(l), Some(r)) if matches!(s.family, AF_INET | AF_INET6) => {
                        let (a, b) = (l.to_string(), r.to_string());
                        if a <= b {
                            SocketKey::Connection(a, b)
                        } else {
                            SocketKey::Connection(b, a)
                        }
                    }
                    _ => SocketKey::Inode(s.ino),
                };
                match self.sockets.get(&key) {
                    Some(&n) => n,
                    None => {
                        let label = match &key {
                            SocketKey::Connection(a, b) => format!("socket {a} <-> {b}"),
                            SocketKey::Inode(_) => format!("socket {t}"),
                        };
                        let n = self.node(NodeKind::Socket, label, seq);
                        self.sockets.insert(key, n);
                        n
                    }
                }
            }
            Target::Other { label, ino } => match self.others.get(ino) {
                Some(&n) => n,
                None => {
                    let n = self.node(NodeKind::File, label.to_string(), seq);
                    self.others.insert(*ino, n);
                    n
                }
            },
        })
    }

    fn fd_node(&mut self, ev: &Event, name: &str) -> Option<NodeId> {
        match ev.arg(name)? {
            Value::Fd(Fd {
                target: Some(t), ..
            }) => {
                let t = t.clone();
                self.target(&t, ev.seq)
            }
            _ => None,
        }
    }

    fn path_arg(ev: &Event, name: &str) -> Option<Str> {
        ev.arg(name)?.as_str().cloned()
    }

    fn uint_arg(ev: &Event, name: &str) -> u64 {
        ev.arg(name).and_then(Value::as_uint).unwrap_or(0)
    }

    /// Adds what one event says about information flow.
    pub fn add(&mut self, ev: &Event) {
        if self.episodes.active() {
            self.end_episodes(ev);
        }
        self.events += 1;
        self.first_seq.get_or_insert(ev.seq);
        if self.events == 1 {
            self.first_time = ev.time_ns;
        }
        self.last_seq = self.last_seq.max(ev.seq);
        self.last_time = self.last_time.max(ev.time_ns);
        match &ev.kind {
            EventKind::ProcessStart(p) => {
                let parent = self.process(p.ppid, ev.seq);
                let child = self.node(
                    NodeKind::Process,
                    format!("{} {}", ev.pid, argv_label(&p.argv, &p.exe)),
                    ev.seq,
                );
                self.nodes[child as usize].pid = Some(ev.pid);
                self.procs.insert(ev.pid, child);
                self.pid_history.entry(ev.pid).or_default().push(child);
                let how = if p.clone_flags & libc_clone::VFORK != 0 {
                    "vfork"
                } else if p.clone_flags & !0xff == 0 {
                    "fork"
                } else {
                    "clone"
                };
                self.edge(parent, child, ev, how);
            }
            EventKind::ProcessExec(x) => {
                let proc_ = self.process(ev.pid, ev.seq);
                self.nodes[proc_ as usize].label =
                    format!("{} {}", ev.pid, argv_label(&x.argv, &x.exe));
                let file = self.file(&x.exe, x.dev, x.ino, ev.seq);
                self.edge(file, proc_, ev, "execve");
            }
            EventKind::ProcessExit(_) => {
                if let Some(&n) = self.procs.get(&ev.pid) {
                    self.touch(n, ev.seq);
                }
            }
            EventKind::SyscallExit(x) if !x.failed() => self.add_call(ev, x),
            EventKind::SmoAccess(a) => self.add_smo(ev, a),
            // No flow of information: the process took part, nothing more. Said kind by kind,
            // so that a new kind is a decision here, not a silent default.
            EventKind::SyscallExit(_)
            | EventKind::SyscallEntry(_)
            | EventKind::ThreadStart(_)
            | EventKind::ThreadExit(_)
            | EventKind::Signal(_)
            | EventKind::Lost(_)
            | EventKind::Action(_)
            // A snapshot of mappings: the mmaps that made them are the flows.
            | EventKind::AddressSpace(_)
            => {
                if let Some(&n) = self.procs.get(&ev.pid) {
                    self.touch(n, ev.seq);
                }
            }
            // A detection point, not a flow: `event:SEQ` starts from its process as it was
            // at that moment.
            EventKind::Divergence(_) => {
                if let Some(&n) = self.procs.get(&ev.pid) {
                    self.touch(n, ev.seq);
                    self.detections.insert(ev.seq, n);
                }
            }
        }
    }

    /// A shared-memory access. A load comes from every part of the object its range overlaps
    /// (the whole-object part included), at the access: coherence took read access away from
    /// every other process before any store, so what it saw was there at its event. A store
    /// goes to its part, and from the part to the file (the file is the whole of its parts),
    /// for as long as the access episode lasts. A store through a private mapping stays in the
    /// process (copy on write): no edge. A read-modify-write is both.
    fn add_smo(&mut self, ev: &Event, a: &SmoAccess) {
        self.smo_stats.accesses += 1;
        let p = self.process(ev.pid, ev.seq);
        self.touch(p, ev.seq);
        let obj = self.smo_object(&a.object, ev);
        let range = self
            .smo
            .granularity
            .access_range(a.offset, a.len, (a.map_offset, a.map_len));
        if a.access.reads() {
            let mut parts = std::mem::take(&mut self.scratch);
            self.objects[obj as usize].overlapping(range, &mut parts);
            for &part in &parts {
                self.edge(part, p, ev, "smo_read");
            }
            self.scratch = parts;
        }
        if a.access.writes() && !a.private {
            let part = self.part(obj, range, ev.seq);
            let first = self.edges.len();
            // A store seen by single-stepping is the store itself; one seen by a fault opens
            // an episode that the slice or the next syscall ends; a kernel access lasts until
            // its syscall returns.
            let (kind, span) = match a.via {
                SmoVia::Step => (SpanKind::Lead, 0),
                SmoVia::Fault | SmoVia::Syscall(_) => (SpanKind::Tail, OPEN),
            };
            self.push_edge(p, part, ev, "smo_write", kind, span);
            if let Some(f) = self.objects[obj as usize].file {
                self.same_edge(first, part, f);
            }
            if kind == SpanKind::Tail {
                let deadline = match (a.via, self.smo.slice_ns) {
                    (SmoVia::Fault, Some(slice)) => Some(ev.time_ns.saturating_add(slice)),
                    _ => None,
                };
                let list = &mut self.episodes.by_tid.entry(ev.tid).or_default();
                list.0 = ev.pid;
                for i in first..self.edges.len() {
                    list.1.push(i as u32);
                    if let Some(d) = deadline {
                        self.episodes.deadlines.push_back((d, i as u32));
                    }
                }
            }
        }
    }

    /// Ends access episodes: those whose slice ran out before this event (at the event
    /// before it), and those of a thread that stops at a syscall, exits or execs (at this
    /// event: vigil protects the pages again at that stop).
    fn end_episodes(&mut self, ev: &Event) {
        while let Some(&(deadline, e)) = self.episodes.deadlines.front() {
            if deadline >= ev.time_ns {
                break;
            }
            self.episodes.deadlines.pop_front();
            self.close(e, self.last_seq);
        }
        let ended = match &ev.kind {
            EventKind::SyscallEntry(_) | EventKind::SyscallExit(_) | EventKind::ThreadExit(_) => {
                self.episodes.by_tid.remove(&ev.tid).map(|(_, l)| l)
            }
            EventKind::ProcessExit(_) | EventKind::ProcessExec(_) => {
                let mut all = Vec::new();
                self.episodes.by_tid.retain(|_, (pid, l)| {
                    if *pid == ev.pid {
                        all.append(l);
                        false
                    } else {
                        true
                    }
                });
                Some(all)
            }
            _ => None,
        };
        for e in ended.into_iter().flatten() {
            self.close(e, ev.seq);
        }
        // Deadlines of episodes closed otherwise are dropped as they come up; drop the ones
        // at the front now so that `active` turns false once nothing is open.
        while let Some(&(_, e)) = self.episodes.deadlines.front() {
            if self.edges[e as usize].span != OPEN {
                self.episodes.deadlines.pop_front();
            } else {
                break;
            }
        }
    }

    fn close(&mut self, e: u32, end: u64) {
        let edge = &mut self.edges[e as usize];
        if edge.span_kind == SpanKind::Tail && edge.span == OPEN {
            edge.span = u32::try_from(end.saturating_sub(edge.seq)).unwrap_or(OPEN - 1);
            let until = edge.until();
            let (from, to) = (edge.from, edge.to);
            self.touch(from, until);
            self.touch(to, until);
        }
    }

    /// The object an access is to, with its parts; made at its first access. When something
    /// had been written to a file before (or its name led to it), its first access also makes
    /// its whole-object part, which holds what the file had then (the edge `contents`, placed
    /// just before the access: the access itself is not in it).
    fn smo_object(&mut self, o: &SmoObject, ev: &Event) -> u32 {
        if o.kind == SmoKind::File {
            let f = self.file(&o.path, o.dev, o.ino, ev.seq);
            if let Some(&i) = self.smo_files.get(&f) {
                return i;
            }
            let i = self.objects.len() as u32;
            self.objects.push(Parts {
                file: Some(f),
                base: self.nodes[f as usize].label.clone(),
                ..Parts::default()
            });
            self.smo_files.insert(f, i);
            if self.nodes[f as usize].written {
                let whole = self.part(i, Range::Whole, ev.seq);
                self.push_edge(
                    f,
                    whole,
                    ev,
                    CONTENTS,
                    SpanKind::Lead,
                    u32::from(ev.seq > 0),
                );
            }
            return i;
        }
        let key = (o.kind, o.dev, o.ino);
        if let Some(&i) = self.smo_mem.get(&key) {
            return i;
        }
        let i = self.objects.len() as u32;
        let base = if o.path.is_empty() {
            format!("{} {}", o.kind.name(), o.ino)
        } else {
            format!("{} {} {}", o.kind.name(), o.ino, o.path)
        };
        self.objects.push(Parts {
            base,
            ..Parts::default()
        });
        self.smo_mem.insert(key, i);
        i
    }

    /// The part of object `obj` for `range`, made if it is new.
    fn part(&mut self, obj: u32, range: Range, seq: u64) -> NodeId {
        let parts = &self.objects[obj as usize];
        let existing = match range {
            Range::Whole => parts.whole,
            Range::Bytes(s, e) => parts.by_range.get(&(s, e)).copied(),
        };
        if let Some(n) = existing {
            return n;
        }
        let (label, part) = match range {
            Range::Whole => (
                format!("{} [whole]", parts.base),
                Part {
                    offset: 0,
                    length: None,
                },
            ),
            Range::Bytes(s, e) => (
                format!("{} [{s}+{}]", parts.base, e - s),
                Part {
                    offset: s,
                    length: Some(e - s),
                },
            ),
        };
        let path = parts
            .file
            .and_then(|f| self.nodes[f as usize].paths.last().cloned());
        let n = self.node(NodeKind::Smo, label, seq);
        let node = &mut self.nodes[n as usize];
        node.part = Some(part);
        node.paths.extend(path);
        self.smo_stats.parts += 1;
        let parts = &mut self.objects[obj as usize];
        match range {
            Range::Whole => parts.whole = Some(n),
            Range::Bytes(s, e) => {
                parts.by_range.insert((s, e), n);
                parts.max_len = parts.max_len.max(e - s);
            }
        }
        n
    }

    /// Where a read(2)/write(2)-like call of file `f` met it: for a file with shared-memory
    /// parts, the bytes from its file offset (the `offset` output of read/write/readv/writev,
    /// the argument of the p* calls) for its return value.
    fn io(&self, f: NodeId, ev: &Event, x: &SyscallExit, call: Sysno) -> Io {
        if self.smo_files.is_empty() {
            return Io::Plain;
        }
        let Some(&obj) = self.smo_files.get(&f) else {
            return Io::Plain;
        };
        let Ok(len @ 1..) = u64::try_from(x.ret) else {
            return Io::Nothing;
        };
        let offset = match call {
            Sysno::read | Sysno::readv | Sysno::write | Sysno::writev => {
                ev.arg("offset").and_then(Value::as_uint)
            }
            // -1 for preadv2/pwritev2 is the file position, which the log does not have.
            _ => ev
                .arg("offset")
                .and_then(Value::as_int)
                .and_then(|o| u64::try_from(o).ok()),
        };
        match offset {
            Some(o) => Io::At(obj, self.smo.granularity.io_range(o, o.saturating_add(len))),
            None => Io::Unknown,
        }
    }

    /// A read-like call from `src`: from the parts it covers when the file has parts.
    fn read_from(&mut self, src: NodeId, p: NodeId, ev: &Event, x: &SyscallExit, call: Sysno) {
        let name = x.call.signature().name;
        match self.io(src, ev, x, call) {
            Io::Plain => self.edge(src, p, ev, name),
            Io::Unknown => {
                self.smo_stats.whole_object += 1;
                self.edge(src, p, ev, name);
            }
            Io::At(obj, range) => {
                let mut parts = std::mem::take(&mut self.scratch);
                self.objects[obj as usize].overlapping(range, &mut parts);
                for &part in &parts {
                    self.edge(part, p, ev, name);
                }
                self.scratch = parts;
            }
            Io::Nothing => {}
        }
    }

    /// A write-like call to `dst`: to the part it covers (and so the file) when the file has
    /// parts and the offset is known; otherwise the file and its whole-object part.
    fn write_to(&mut self, p: NodeId, dst: NodeId, ev: &Event, x: &SyscallExit, call: Sysno) {
        let name = x.call.signature().name;
        match self.io(dst, ev, x, call) {
            Io::Plain => self.edge(p, dst, ev, name),
            Io::Unknown => {
                self.smo_stats.whole_object += 1;
                self.write_file(p, dst, ev, name);
            }
            Io::At(obj, range) => {
                let part = self.part(obj, range, ev.seq);
                let first = self.edges.len();
                self.edge(p, part, ev, name);
                if self.edges.len() > first {
                    self.same_edge(first, part, dst);
                }
            }
            Io::Nothing => {}
        }
    }

    /// A change of file `f` at no known place (a truncation, a write at an unknown offset):
    /// the file, and, when it has shared-memory parts, its whole-object part, which every
    /// load and read of a part also reads.
    fn write_file(&mut self, p: NodeId, f: NodeId, ev: &Event, name: &'static str) {
        self.edge(p, f, ev, name);
        if let Some(&obj) = self.smo_files.get(&f) {
            let whole = self.part(obj, Range::Whole, ev.seq);
            self.edge(p, whole, ev, name);
        }
    }

    fn add_call(&mut self, ev: &Event, x: &SyscallExit) {
        let name = x.call.signature().name;
        let p = self.process(ev.pid, ev.seq);
        self.touch(p, ev.seq);
        let Some(call) = x.call.meaning() else {
            return;
        };
        match call {
            Sysno::read
            | Sysno::pread64
            | Sysno::readv
            | Sysno::preadv
            | Sysno::preadv2
            | Sysno::recvfrom
            | Sysno::recvmsg => {
                if let Some(src) = self.fd_node(ev, "fd") {
                    self.read_from(src, p, ev, x, call);
                }
            }
            Sysno::write
            | Sysno::pwrite64
            | Sysno::writev
            | Sysno::pwritev
            | Sysno::pwritev2
            | Sysno::sendto
            | Sysno::sendmsg => {
                if let Some(dst) = self.fd_node(ev, "fd") {
                    self.write_to(p, dst, ev, x, call);
                }
            }
            Sysno::ftruncate => {
                if let Some(dst) = self.fd_node(ev, "fd") {
                    self.write_file(p, dst, ev, name);
                }
            }
            Sysno::sendfile | Sysno::copy_file_range => {
                let (i, o) = if call == Sysno::sendfile {
                    ("in_fd", "out_fd")
                } else {
                    ("fd_in", "fd_out")
                };
                if let Some(src) = self.fd_node(ev, i) {
                    self.edge(src, p, ev, name);
                }
                if let Some(dst) = self.fd_node(ev, o) {
                    self.write_file(p, dst, ev, name);
                }
            }
            Sysno::truncate => {
                if let Some(path) = Self::path_arg(ev, "path") {
                    let f = self.file_by_path(&path, ev.seq);
                    self.write_file(p, f, ev, name);
                }
            }
            Sysno::mmap => {
                let prot = Self::uint_arg(ev, "prot");
                let flags = Self::uint_arg(ev, "flags");
                let shared = matches!(flags & 0xf, MAP_SHARED | MAP_SHARED_VALIDATE);
                if let Some(f) = self.fd_node(ev, "fd") {
                    // Mapping a file reads all of it, unless the recording monitored the
                    // mapping: then every load through it is an `smo_read` of the part it
                    // touched, and an edge from the whole file here would make the process
                    // depend on every store made before (page granularity would find W1 as
                    // well as W2). A shared mapping the recorder placed in its window is
                    // monitored; one outside it (MAP_FIXED, an address hint) is not
                    // (`unmonitored` in the log) and keeps the edge. Private mappings keep it
                    // too: they are monitored only if the file is mapped shared at some time.
                    let monitored_here = self.smo.monitored
                        && shared
                        && u64::try_from(x.ret)
                            .is_ok_and(|a| (SMO_WINDOW_START..SMO_WINDOW_END).contains(&a));
                    if prot & (PROT_READ | PROT_EXEC) != 0 && !monitored_here {
                        self.edge(f, p, ev, name);
                    }
                    // A shared writable mapping carries writes back to the file (and to every
                    // other process mapping it). When the recording monitored shared memory,
                    // every store through it is an `smo_write` event of its own instead.
                    if prot & PROT_WRITE != 0 && shared && !self.smo.monitored {
                        self.write_file(p, f, ev, name);
                    }
                }
            }
            Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat => {
                // The new fd's target labels the file with the name it was opened by.
                let intent = ev.open_intent().unwrap_or_default();
                let file = self.fd_node(ev, "fd");
                if intent.create
                    && let Some(path) = Self::path_arg(ev, "path")
                {
                    let fname = self.filename(&path, ev.seq);
                    self.edge(p, fname, ev, name);
                    if let Some(f) = file {
                        self.edge(fname, f, ev, name);
                    }
                }
                // O_TRUNC changes the file even if nothing is written, whatever the access mode
                // (Linux truncates on O_RDONLY|O_TRUNC too).
                if intent.truncate
                    && let Some(f) = file
                {
                    self.write_file(p, f, ev, name);
                }
            }
            Sysno::rename | Sysno::renameat | Sysno::renameat2 | Sysno::link | Sysno::linkat => {
                let (Some(old), Some(new)) =
                    (Self::path_arg(ev, "oldpath"), Self::path_arg(ev, "newpath"))
                else {
                    return;
                };
                let file = self.by_path.get(&old).copied();
                let target = self.filename(&new, ev.seq);
                self.edge(p, target, ev, name);
                if name.starts_with("rename") {
                    let source = self.filename(&old, ev.seq);
                    self.edge(p, source, ev, name);
                    self.by_path.remove(&old);
                }
                if let Some(f) = file {
                    self.add_path(f, &new);
                    self.by_path.insert(new.clone(), f);
                    // The name now leads to the file: whoever renamed it is among its causes.
                    self.edge(target, f, ev, name);
                }
            }
            Sysno::unlink | Sysno::unlinkat | Sysno::rmdir | Sysno::mkdir | Sysno::mkdirat => {
                if let Some(path) = Self::path_arg(ev, "path") {
                    let fname = self.filename(&path, ev.seq);
                    self.edge(p, fname, ev, name);
                    if !name.starts_with("mkdir") {
                        self.by_path.remove(&path);
                    }
                }
            }
            Sysno::symlink | Sysno::symlinkat => {
                if let Some(path) = Self::path_arg(ev, "linkpath") {
                    let fname = self.filename(&path, ev.seq);
                    self.edge(p, fname, ev, name);
                }
            }
            Sysno::chmod
            | Sysno::fchmodat
            | Sysno::fchmodat2
            | Sysno::chown
            | Sysno::lchown
            | Sysno::fchownat
            | Sysno::setxattr
            | Sysno::lsetxattr => {
                if let Some(path) = Self::path_arg(ev, "path") {
                    let f = self.file_by_path(&path, ev.seq);
                    self.edge(p, f, ev, name);
                }
            }
            Sysno::fchmod | Sysno::fchown | Sysno::fsetxattr => {
                if let Some(f) = self.fd_node(ev, "fd") {
                    self.edge(p, f, ev, name);
                }
            }
            Sysno::kill | Sysno::tkill | Sysno::tgkill => {
                let target = match call {
                    Sysno::tgkill => ev.arg("tgid"),
                    Sysno::tkill => ev.arg("tid"),
                    _ => ev.arg("pid"),
                }
                .and_then(Value::as_int);
                if let Some(t) = target
                    .filter(|t| *t > 0)
                    .and_then(|t| self.procs.get(&(t as u32)).copied())
                {
                    self.edge(p, t, ev, name);
                }
            }
            Sysno::accept | Sysno::accept4 => {
                // Touch the connection so it exists from the moment it does.
                let _ = self.fd_node(ev, "newfd");
            }
            _ => {}
        }
    }

    pub fn finish(mut self) -> Graph {
        // Episodes still open end with the log (the writer neither stopped at a syscall nor
        // ran out of its slice in it).
        let open: Vec<u32> = std::mem::take(&mut self.episodes.by_tid)
            .into_values()
            .flat_map(|(_, l)| l)
            .chain(self.episodes.deadlines.drain(..).map(|(_, e)| e))
            .collect();
        for e in open {
            self.close(e, self.last_seq);
        }
        let max_tail = self
            .edges
            .iter()
            .filter(|e| e.span_kind == SpanKind::Tail)
            .map(|e| e.span as u64)
            .max()
            .unwrap_or(0);
        let n = self.nodes.len();
        // Adjacency in compressed form, by counting sort over the edges in order of their moment.
        // Edges are stored in event order; adjacency lists are in the order of their moment
        // (`Edge::at`), which differs only locally (an entry precedes its exit by a few events),
        // so this stable sort is close to linear.
        let mut by_at: Vec<u32> = (0..self.edges.len() as u32).collect();
        by_at.sort_by_key(|&i| self.edges[i as usize].at());
        let csr = |key: &dyn Fn(&Edge) -> NodeId| {
            let mut off = vec![0u32; n + 1];
            for e in &self.edges {
                off[key(e) as usize + 1] += 1;
            }
            for i in 0..n {
                off[i + 1] += off[i];
            }
            let mut next = off.clone();
            let mut order = vec![0u32; self.edges.len()];
            for &i in &by_at {
                let slot = &mut next[key(&self.edges[i as usize]) as usize];
                order[*slot as usize] = i;
                *slot += 1;
            }
            (order, off)
        };
        let (by_to, in_off) = csr(&|e| e.to);
        let (by_from, out_off) = csr(&|e| e.from);
        Graph {
            nodes: self.nodes,
            edges: self.edges,
            calls: self.calls,
            in_order: by_to,
            in_off,
            out_order: by_from,
            out_off,
            pid_history: self.pid_history,
            by_path: self.by_path,
            filenames: self.filenames,
            first_seq: self.first_seq.unwrap_or(0),
            last_seq: self.last_seq,
            first_time: self.first_time,
            last_time: self.last_time,
            events: self.events,
            detections: self.detections,
            max_tail,
            granularity: self.smo.granularity,
            smo: self.smo_stats,
        }
    }
}

mod libc_clone {
    pub const VFORK: u64 = 0x4000;
}

fn argv_label(argv: &[Str], exe: &Str) -> String {
    if argv.is_empty() {
        return exe.to_string();
    }
    let mut s = argv
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The whole graph, with adjacency.
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    calls: Vec<&'static str>,
    in_order: Vec<u32>,
    in_off: Vec<u32>,
    out_order: Vec<u32>,
    out_off: Vec<u32>,
    pub(crate) pid_history: FxHashMap<u32, Vec<NodeId>>,
    pub(crate) by_path: FxHashMap<Str, NodeId>,
    pub(crate) filenames: FxHashMap<Str, NodeId>,
    /// Detection points that moved no information (a divergence): their process node.
    pub(crate) detections: FxHashMap<u64, NodeId>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_time: u64,
    pub last_time: u64,
    pub events: u64,
    /// The longest access episode (`Edge::span` of a `Tail` edge): forward tracking looks
    /// this far back for stores still going on at an object's threshold.
    pub max_tail: u64,
    /// The granularity of its shared-memory parts.
    pub granularity: Granularity,
    pub smo: SmoStats,
}

impl Graph {
    pub fn call_name(&self, c: Call) -> &'static str {
        self.calls.get(c.0 as usize).copied().unwrap_or("?")
    }

    /// Indices of the edges into `n` (in order of `Edge::at`) with `after < at <= upto`.
    pub fn incoming_between(&self, n: NodeId, after: Option<u64>, upto: u64) -> &[u32] {
        let all =
            &self.in_order[self.in_off[n as usize] as usize..self.in_off[n as usize + 1] as usize];
        let lo = after.map_or(0, |a| {
            all.partition_point(|&e| self.edges[e as usize].at() <= a)
        });
        let hi = all.partition_point(|&e| self.edges[e as usize].at() <= upto);
        &all[lo..hi.max(lo)]
    }

    /// Indices of the edges out of `n` (in order of `Edge::at`) with `from <= at < before`.
    pub fn outgoing_between(&self, n: NodeId, from: u64, before: Option<u64>) -> &[u32] {
        let all = &self.out_order
            [self.out_off[n as usize] as usize..self.out_off[n as usize + 1] as usize];
        let lo = all.partition_point(|&e| self.edges[e as usize].at() < from);
        let hi = before.map_or(all.len(), |b| {
            all.partition_point(|&e| self.edges[e as usize].at() < b)
        });
        &all[lo..hi.max(lo)]
    }

    /// Indices of the edges into `n`, in seq order.
    pub fn incoming(&self, n: NodeId) -> impl Iterator<Item = usize> + '_ {
        let (a, b) = (
            self.in_off[n as usize] as usize,
            self.in_off[n as usize + 1] as usize,
        );
        self.in_order[a..b].iter().map(|&e| e as usize)
    }

    /// Indices of the edges out of `n`, in seq order.
    pub fn outgoing(&self, n: NodeId) -> impl Iterator<Item = usize> + '_ {
        let (a, b) = (
            self.out_off[n as usize] as usize,
            self.out_off[n as usize + 1] as usize,
        );
        self.out_order[a..b].iter().map(|&e| e as usize)
    }

    pub fn node(&self, n: NodeId) -> &Node {
        &self.nodes[n as usize]
    }

    /// Bytes held by the graph's tables (for the benchmark's memory figure).
    pub fn approx_bytes(&self) -> usize {
        self.edges.len() * std::mem::size_of::<Edge>()
            + (self.in_order.len() + self.out_order.len() + self.in_off.len() + self.out_off.len())
                * 4
            + self.nodes.len() * (std::mem::size_of::<Node>() + 48)
    }
}
