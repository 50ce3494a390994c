//! Turning events into objects and edges (the rules are tabulated in docs/graph.md).
//!
//! Memory matters: a 10M-event log must fit in well under 100 bytes per event. Nodes are few
//! (objects, not events); each edge is 32 bytes; adjacency is two index arrays built once.

use rustc_hash::FxHashMap;
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
    /// A part of a shared-memory object (object, vma, page or minipage), for page-level
    /// monitoring (a later part of vigil).
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
}

/// `from` caused `to` through `call` (a syscall name, or `fork`/`clone`/`vfork`), in the event
/// `seq` (a syscall's exit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub seq: u64,
    pub time_ns: u64,
    pub call: Call,
    /// How much earlier than `seq` the effect could take place: a call changes its object from
    /// its entry on (another process can read what a write wrote before the write returns),
    /// while information reaches the calling process only at the exit (lead 0).
    pub lead: u32,
}

impl Edge {
    /// The moment the time rule uses: the entry of a call acting on an object, the exit of a
    /// call that brings information to the process.
    pub fn at(&self) -> u64 {
        self.seq - self.lead as u64
    }
}

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
    first_seq: Option<u64>,
    last_seq: u64,
    first_time: u64,
    last_time: u64,
    events: u64,
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

impl GraphBuilder {
    pub fn new() -> Self {
        GraphBuilder::default()
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
        let call = self.call(call);
        self.touch(from, ev.seq - lead as u64);
        self.touch(to, ev.seq - lead as u64);
        self.edges.push(Edge {
            from,
            to,
            seq: ev.seq,
            time_ns: ev.time_ns,
            call,
            lead,
        });
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
            // A detection point (backtrack from it), not a flow.
            | EventKind::Divergence(_) => {
                if let Some(&n) = self.procs.get(&ev.pid) {
                    self.touch(n, ev.seq);
                }
            }
        }
    }

    /// A shared-memory access: a read is object -> process, a write process -> object, a
    /// read-modify-write both; the object is the file's node when it is a file (SysV and
    /// shared anonymous memory are not files: their parts come with issue 11's SMO nodes).
    fn add_smo(&mut self, ev: &Event, a: &SmoAccess) {
        let p = self.process(ev.pid, ev.seq);
        self.touch(p, ev.seq);
        match a.object.kind {
            SmoKind::File => {
                let f = self.file(&a.object.path, a.object.dev, a.object.ino, ev.seq);
                if a.access.reads() {
                    self.edge(f, p, ev, "smo_read");
                }
                if a.access.writes() {
                    self.edge(p, f, ev, "smo_write");
                }
            }
            SmoKind::SysvShm | SmoKind::SharedAnon => {}
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
                    self.edge(src, p, ev, name);
                }
            }
            Sysno::write
            | Sysno::pwrite64
            | Sysno::writev
            | Sysno::pwritev
            | Sysno::pwritev2
            | Sysno::sendto
            | Sysno::sendmsg
            | Sysno::ftruncate => {
                if let Some(dst) = self.fd_node(ev, "fd") {
                    self.edge(p, dst, ev, name);
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
                    self.edge(p, dst, ev, name);
                }
            }
            Sysno::truncate => {
                if let Some(path) = Self::path_arg(ev, "path") {
                    let f = self.file_by_path(&path, ev.seq);
                    self.edge(p, f, ev, name);
                }
            }
            Sysno::mmap => {
                let prot = Self::uint_arg(ev, "prot");
                let flags = Self::uint_arg(ev, "flags");
                if let Some(f) = self.fd_node(ev, "fd") {
                    if prot & (PROT_READ | PROT_EXEC) != 0 {
                        self.edge(f, p, ev, name);
                    }
                    // A shared writable mapping carries writes back to the file (and to every
                    // other process mapping it), until page-level monitoring refines it.
                    if prot & PROT_WRITE != 0
                        && matches!(flags & 0xf, MAP_SHARED | MAP_SHARED_VALIDATE)
                    {
                        self.edge(p, f, ev, name);
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
                    self.edge(p, f, ev, name);
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

    pub fn finish(self) -> Graph {
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
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_time: u64,
    pub last_time: u64,
    pub events: u64,
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
