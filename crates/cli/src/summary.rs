//! `vigil summary`: what a recording contains, at a glance: processes, syscalls, files, and
//! network endpoints with how each connection attempt ended.

use crate::exit::{Damage, Failure, open_log};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use syscalls::{Errno, Sysno};
use vigil_event::{Event, EventKind, ExitStatus, SmoKind, SockAddr, Str, Target, Value, errno_of};

#[derive(clap::Args)]
pub struct SummaryArgs {
    /// The log to read.
    pub log: PathBuf,
}

struct Proc {
    pid: u32,
    ppid: u32,
    exe: Str,
    argv: Vec<Str>,
    start_ns: u64,
    end_ns: Option<u64>,
    status: Option<ExitStatus>,
}

#[derive(Default)]
struct CallStats {
    /// Calls that ended (a restarted call ends once, when it is run again).
    count: u64,
    errors: u64,
    /// Interrupted by a signal and restarted by the kernel: neither a call nor an error.
    restarted: u64,
    time_ns: u64,
}

#[derive(Default)]
pub struct Summary {
    events: u64,
    by_type: BTreeMap<&'static str, u64>,
    first_ns: Option<u64>,
    last_ns: u64,
    procs: Vec<Proc>,
    live: HashMap<u32, usize>,
    calls: BTreeMap<String, CallStats>,
    entry_time: HashMap<u32, u64>,
    read: BTreeSet<Str>,
    written: BTreeSet<Str>,
    executed: BTreeSet<Str>,
    created: BTreeSet<Str>,
    deleted: BTreeSet<Str>,
    renamed: BTreeSet<(Str, Str)>,
    endpoints: BTreeMap<String, BTreeSet<String>>,
    lost: u64,
    /// Shared-memory accesses by object (its label): reads, writes.
    smo: BTreeMap<String, (u64, u64)>,
    /// Divergences: seq and their one-line description.
    divergences: Vec<(u64, String)>,
    /// Explains the faults that killed processes (when the summary reads a log file).
    deaths: Option<crate::faults::DeathExplainer>,
    /// Processes killed by a fault, with the fault explained: index in `procs`.
    fatal: Vec<(usize, vigil_procstate::FaultExplanation)>,
}

fn file_path(v: Option<&Value>) -> Option<Str> {
    match v? {
        Value::Fd(fd) => match fd.target.as_deref()? {
            Target::File { path, .. } => Some(path.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn str_arg(ev: &Event, name: &str) -> Option<Str> {
    ev.arg(name)?.as_str().cloned()
}

impl Summary {
    pub fn add(&mut self, ev: &Event) {
        if let Some(e) = self.deaths.as_mut().and_then(|d| d.add(ev))
            && let Some(&i) = self.live.get(&ev.pid)
        {
            self.fatal.push((i, e));
        }
        self.events += 1;
        *self.by_type.entry(ev.type_name()).or_default() += 1;
        self.first_ns.get_or_insert(ev.time_ns);
        self.last_ns = self.last_ns.max(ev.time_ns);
        match &ev.kind {
            EventKind::ProcessStart(p) => {
                self.live.insert(ev.pid, self.procs.len());
                self.procs.push(Proc {
                    pid: ev.pid,
                    ppid: p.ppid,
                    exe: p.exe.clone(),
                    argv: p.argv.to_vec(),
                    start_ns: ev.time_ns,
                    end_ns: None,
                    status: None,
                });
            }
            EventKind::ProcessExec(p) => {
                if let Some(&i) = self.live.get(&ev.pid) {
                    self.procs[i].exe = p.exe.clone();
                    self.procs[i].argv = p.argv.to_vec();
                }
                self.executed.insert(p.exe.clone());
            }
            EventKind::ProcessExit(p) => {
                if let Some(i) = self.live.remove(&ev.pid) {
                    self.procs[i].end_ns = Some(ev.time_ns);
                    self.procs[i].status = Some(p.status);
                }
            }
            EventKind::Lost(l) => self.lost += l.count,
            EventKind::SyscallEntry(_) => {
                self.entry_time.insert(ev.tid, ev.time_ns);
            }
            EventKind::SyscallExit(x) => {
                let name = x.call.to_string();
                let stats = self.calls.entry(name).or_default();
                if x.restarted() {
                    stats.restarted += 1;
                } else {
                    stats.count += 1;
                    if x.failed() {
                        stats.errors += 1;
                    }
                }
                if let Some(t) = self.entry_time.remove(&ev.tid) {
                    stats.time_ns += ev.time_ns.saturating_sub(t);
                }
                if x.restarted() {
                    // It did nothing yet: its effects come with the exit of the call run again.
                } else if x.call.canonical() == Some(Sysno::connect) {
                    self.add_connect(ev, x.ret);
                } else if errno_of(x.ret).is_none() {
                    self.add_effects(ev, x.call.meaning(), x.ret);
                }
            }
            EventKind::SmoAccess(a) => {
                let label = match a.object.kind {
                    SmoKind::File => a.object.path.escaped(),
                    k => format!(
                        "{}:[{}] {}",
                        k.name(),
                        a.object.ino,
                        a.object.path.escaped()
                    ),
                };
                let e = self.smo.entry(label).or_default();
                e.0 += a.access.reads() as u64;
                e.1 += a.access.writes() as u64;
            }
            EventKind::Divergence(_) => {
                let text = vigil_event::render::lifecycle(ev).unwrap_or_default();
                let first = text.lines().next().unwrap_or_default().to_string();
                self.divergences.push((ev.seq, first));
            }
            // Counted by type above; nothing more to sum up.
            EventKind::ThreadStart(_)
            | EventKind::ThreadExit(_)
            | EventKind::Signal(_)
            | EventKind::Action(_)
            | EventKind::AddressSpace(_) => {}
        }
    }

    /// A connect, by how it ended: a failed one is not a connection, and a non-blocking one
    /// that returned EINPROGRESS (what curl does) may still fail later, which the log does not
    /// show (the program learns it from poll and SO_ERROR).
    fn add_connect(&mut self, ev: &Event, ret: i64) {
        let Some(Value::Addr(a)) = ev.arg("addr") else {
            return;
        };
        let what = match errno_of(ret).map(Errno::new) {
            None | Some(Errno::EISCONN) => "connected to".to_string(),
            Some(Errno::EINPROGRESS | Errno::EALREADY) => "connecting to (in progress)".to_string(),
            Some(e) => format!(
                "failed to connect to ({})",
                e.name()
                    .map_or_else(|| e.into_raw().to_string(), str::to_string)
            ),
        };
        self.endpoints
            .entry(endpoint(a))
            .or_default()
            .insert(format!("{what} by {}", ev.pid));
    }

    fn add_effects(&mut self, ev: &Event, call: Option<Sysno>, ret: i64) {
        let Some(call) = call else {
            return;
        };
        match call {
            Sysno::read | Sysno::pread64 | Sysno::readv | Sysno::preadv | Sysno::preadv2
                if ret > 0 =>
            {
                self.read.extend(file_path(ev.arg("fd")))
            }
            Sysno::write
            | Sysno::pwrite64
            | Sysno::writev
            | Sysno::pwritev
            | Sysno::pwritev2
            | Sysno::ftruncate
                if ret >= 0 =>
            {
                self.written.extend(file_path(ev.arg("fd")))
            }
            Sysno::truncate => self.written.extend(str_arg(ev, "path")),
            Sysno::sendfile => {
                self.read.extend(file_path(ev.arg("in_fd")));
                self.written.extend(file_path(ev.arg("out_fd")));
            }
            Sysno::copy_file_range => {
                self.read.extend(file_path(ev.arg("fd_in")));
                self.written.extend(file_path(ev.arg("fd_out")));
            }
            Sysno::mmap => {
                let shared_writable = ev
                    .arg("flags")
                    .and_then(Value::as_uint)
                    .is_some_and(|f| f & 0xf == 1 || f & 0xf == 3)
                    && ev
                        .arg("prot")
                        .and_then(Value::as_uint)
                        .is_some_and(|p| p & 2 != 0);
                if let Some(p) = file_path(ev.arg("fd")) {
                    if shared_writable {
                        self.written.insert(p.clone());
                    }
                    self.read.insert(p);
                }
            }
            Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat => {
                let flags = if call == Sysno::creat {
                    0o1101
                } else {
                    ev.arg("flags").and_then(Value::as_uint).unwrap_or(0)
                };
                if let Some(p) = str_arg(ev, "path") {
                    if flags & 0o100 != 0 {
                        self.created.insert(p.clone());
                    }
                    if flags & 3 != 0 && flags & 0o1000 != 0 {
                        self.written.insert(p);
                    }
                }
            }
            Sysno::mkdir | Sysno::mkdirat => self.created.extend(str_arg(ev, "path")),
            Sysno::symlink | Sysno::symlinkat => self.created.extend(str_arg(ev, "linkpath")),
            Sysno::link | Sysno::linkat => self.created.extend(str_arg(ev, "newpath")),
            Sysno::unlink | Sysno::unlinkat | Sysno::rmdir => {
                self.deleted.extend(str_arg(ev, "path"))
            }
            Sysno::rename | Sysno::renameat | Sysno::renameat2 => {
                if let (Some(a), Some(b)) = (str_arg(ev, "oldpath"), str_arg(ev, "newpath")) {
                    self.renamed.insert((a, b));
                }
            }
            Sysno::execve | Sysno::execveat => self.executed.extend(str_arg(ev, "path")),
            Sysno::bind | Sysno::sendto | Sysno::accept | Sysno::accept4 => {
                let addr = match call {
                    Sysno::accept | Sysno::accept4 => ev.arg("peer").and_then(addr_of),
                    Sysno::sendto => ev.arg("dest").and_then(addr_of),
                    // The address the socket got: the kernel picks the port of a bind to port
                    // 0, and the exit's fd says which (its local address after the call).
                    _ => bound_addr(ev).or_else(|| ev.arg("addr").and_then(addr_of)),
                };
                if let Some(a) = addr {
                    let what = match call {
                        Sysno::bind => "bound",
                        Sysno::accept | Sysno::accept4 => "accepted from",
                        _ => "sent to",
                    };
                    self.endpoints
                        .entry(endpoint(a))
                        .or_default()
                        .insert(format!("{what} by {}", ev.pid));
                }
            }
            _ => {}
        }
    }

    /// Writes the summary. Memory and output are linear in the number of processes however
    /// deep their tree is: the tree is walked without recursion and its indentation stops
    /// growing at MAX_INDENT levels (deeper lines say their depth instead).
    pub fn render(
        &self,
        log: &Path,
        meta: &vigil_log::LogMeta,
        o: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let span = self.last_ns.saturating_sub(self.first_ns.unwrap_or(0)) as f64 / 1e9;
        // The header is the log's: shown with the escaping names get, argument by argument,
        // and what was cut from it said as the log says it (LogMeta::command_line).
        let escaped = vigil_log::LogMeta {
            command: meta
                .command
                .iter()
                .map(|a| Str::from(a.as_str()).to_string())
                .collect(),
            ..meta.clone()
        };
        writeln!(
            o,
            "Log {} ({} backend, host {}): {}",
            log.display(),
            Str::from(meta.backend.as_str()),
            Str::from(meta.hostname.as_str()),
            escaped.command_line(),
        )?;
        let types: Vec<String> = self
            .by_type
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        writeln!(
            o,
            "{} events over {span:.3} s: {}",
            self.events,
            types.join(", ")
        )?;
        if self.lost > 0 {
            writeln!(
                o,
                "WARNING: {} events were lost by the capture backend",
                self.lost
            )?;
        }
        if !self.divergences.is_empty() {
            writeln!(o, "\nDivergences ({}):", self.divergences.len())?;
            for (seq, text) in &self.divergences {
                writeln!(o, "  seq {seq}: {text}")?;
            }
        }
        if !self.smo.is_empty() {
            writeln!(o, "\nShared memory ({} objects):", self.smo.len())?;
            writeln!(o, "  {:>9} {:>9}  object", "reads", "writes")?;
            for (label, (r, w)) in &self.smo {
                writeln!(o, "  {r:>9} {w:>9}  {label}")?;
            }
        }
        writeln!(o, "\nProcesses ({}):", self.procs.len())?;
        self.render_tree(o)?;
        if !self.fatal.is_empty() {
            writeln!(o, "\nFatal faults ({}):", self.fatal.len())?;
            for (i, e) in &self.fatal {
                let p = &self.procs[*i];
                let mut lines = crate::faults::describe(e).into_iter();
                if let Some(head) = lines.next() {
                    writeln!(o, "  {} [{}] killed by {head}", p.pid, p.exe)?;
                }
                for l in lines {
                    writeln!(o, "    {l}")?;
                }
            }
        }
        writeln!(
            o,
            "\nSyscalls ({} calls):",
            self.calls.values().map(|c| c.count).sum::<u64>()
        )?;
        writeln!(
            o,
            "  {:>9} {:>7} {:>9} {:>12}  syscall",
            "calls", "errors", "restarted", "time (ms)"
        )?;
        let mut calls: Vec<_> = self.calls.iter().collect();
        calls.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        for (name, c) in calls {
            writeln!(
                o,
                "  {:>9} {:>7} {:>9} {:>12.3}  {name}",
                c.count,
                c.errors,
                c.restarted,
                c.time_ns as f64 / 1e6
            )?;
        }
        let section =
            |o: &mut dyn std::io::Write, title: &str, set: &BTreeSet<Str>| -> std::io::Result<()> {
                writeln!(o, "\n{title} ({}):", set.len())?;
                for p in set {
                    writeln!(o, "  {p}")?;
                }
                Ok(())
            };
        section(o, "Files read", &self.read)?;
        section(o, "Files written", &self.written)?;
        section(o, "Files executed", &self.executed)?;
        section(
            o,
            "Files created (opened with O_CREAT, made by mkdir/link/symlink)",
            &self.created,
        )?;
        section(o, "Files deleted", &self.deleted)?;
        writeln!(o, "\nFiles renamed ({}):", self.renamed.len())?;
        for (a, b) in &self.renamed {
            writeln!(o, "  {a} -> {b}")?;
        }
        writeln!(o, "\nNetwork endpoints ({}):", self.endpoints.len())?;
        for (ep, uses) in &self.endpoints {
            writeln!(
                o,
                "  {ep}: {}",
                uses.iter().cloned().collect::<Vec<_>>().join("; ")
            )?;
        }
        Ok(())
    }

    /// The process tree: each process under the one that started it, if that one is in the
    /// log and was alive then (pids are reused); every process is shown once. A stack, not
    /// recursion: a traced program decides how deep the tree is.
    fn render_tree(&self, o: &mut dyn std::io::Write) -> std::io::Result<()> {
        let pids: BTreeSet<u32> = self.procs.iter().map(|p| p.pid).collect();
        let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for (i, p) in self.procs.iter().enumerate() {
            if pids.contains(&p.ppid) && p.ppid != p.pid {
                children.entry(p.ppid).or_default().push(i);
            } else {
                roots.push(i);
            }
        }
        // A process whose parent's pid is in the log but whose parent was not alive when it
        // started (the pid was reused) hangs under no one: it is a root too, after the others.
        roots.extend(0..self.procs.len());
        let mut seen = vec![false; self.procs.len()];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for r in roots {
            stack.push((r, 1));
            while let Some((i, depth)) = stack.pop() {
                if std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                let p = &self.procs[i];
                self.render_proc(p, depth, o)?;
                // Children started while this process lived, first child on top.
                let kids = children.get(&p.pid).map_or(&[][..], Vec::as_slice);
                for &c in kids.iter().rev() {
                    let child = &self.procs[c];
                    if !seen[c]
                        && child.start_ns >= p.start_ns
                        && p.end_ns.is_none_or(|e| child.start_ns <= e)
                    {
                        stack.push((c, depth + 1));
                    }
                }
            }
        }
        Ok(())
    }

    fn render_proc(
        &self,
        p: &Proc,
        depth: usize,
        o: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let argv: Vec<String> = p.argv.iter().map(|a| a.to_string()).collect();
        let status = p
            .status
            .map_or("still running at end of log".to_string(), |s| s.to_string());
        let life = p.end_ns.map_or(String::new(), |e| {
            format!(", {:.3} s", e.saturating_sub(p.start_ns) as f64 / 1e9)
        });
        let deep = if depth > MAX_INDENT {
            format!("[depth {depth}] ")
        } else {
            String::new()
        };
        writeln!(
            o,
            "{:indent$}{deep}{} {} [{}] {status}{life}",
            "",
            p.pid,
            argv.join(" "),
            p.exe,
            indent = depth.min(MAX_INDENT) * 2
        )
    }
}

/// Levels of the process tree shown by indentation; deeper ones print their depth instead, so
/// a 100,000-deep fork chain prints 100,000 short lines, not 10 GB of spaces.
pub const MAX_INDENT: usize = 32;

fn endpoint(a: &SockAddr) -> String {
    a.to_string()
}

fn addr_of(v: &Value) -> Option<&SockAddr> {
    match v {
        Value::Addr(a) => Some(a),
        _ => None,
    }
}

/// The local address of a bind's socket after the call, when the exit recorded it.
fn bound_addr(ev: &Event) -> Option<&SockAddr> {
    match ev.arg("fd")? {
        Value::Fd(fd) => match fd.target.as_deref()? {
            Target::Socket(s) => s.local.as_ref(),
            _ => None,
        },
        _ => None,
    }
}

pub fn run(a: SummaryArgs) -> Result<i32, Failure> {
    let reader = open_log(&a.log)?;
    let meta = reader.meta().clone();
    let mut damage = Damage::new(&a.log);
    let mut s = Summary {
        deaths: Some(crate::faults::DeathExplainer::new(&a.log)),
        ..Summary::default()
    };
    for item in reader {
        match item {
            Ok(ev) => s.add(&ev),
            Err(issue) => damage.report(&issue),
        }
    }
    let mut out = crate::out::Stdout::new();
    s.render(&a.log, &meta, &mut out)
        .map_err(|e| out.failure(&e))?;
    out.finish()?;
    Ok(damage.exit_code(0))
}
