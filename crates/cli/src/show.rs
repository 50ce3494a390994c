//! `vigil show`: an strace-like listing of a log.

use crate::exit::{Damage, Failure, open_log};
use globset::{Glob, GlobMatcher};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use vigil_event::{Event, EventKind, SyscallEntry, SyscallId, Target, Value, render};

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The log to read.
    pub log: PathBuf,
    /// Only these processes (repeatable).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Only these syscalls (names, comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub syscall: Vec<String>,
    /// Only calls with a path argument, or an fd on a file, matching this glob.
    #[arg(long)]
    pub path: Option<String>,
    /// Only failed calls.
    #[arg(long)]
    pub failed: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// How times are shown.
    #[arg(long, value_enum, default_value = "clock")]
    pub time: TimeFormat,
    /// Keep reading as the log grows (for a log being recorded), until the recording closes it.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// UTC time of day, microseconds.
    Clock,
    /// Seconds since the log's first event.
    Relative,
    None,
}

struct Filter {
    pids: HashSet<u32>,
    syscalls: HashSet<SyscallId>,
    path: Option<GlobMatcher>,
    failed: bool,
}

impl Filter {
    /// Whether a call passes the filters that can be decided from its arguments alone.
    fn call_passes(&self, pid: u32, call: SyscallId, args: &[Value]) -> bool {
        if !self.pids.is_empty() && !self.pids.contains(&pid) {
            return false;
        }
        if !self.syscalls.is_empty() && !self.syscalls.contains(&call) {
            return false;
        }
        match &self.path {
            None => true,
            Some(g) => args.iter().any(|v| match v.plain() {
                Value::Str(s) => g.is_match(String::from_utf8_lossy(s.as_bytes()).as_ref()),
                Value::Fd(fd) => match fd.target.as_deref() {
                    Some(Target::File { path, .. }) => {
                        g.is_match(String::from_utf8_lossy(path.as_bytes()).as_ref())
                    }
                    _ => false,
                },
                _ => false,
            }),
        }
    }

    fn other_passes(&self, ev: &Event) -> bool {
        (self.pids.is_empty() || self.pids.contains(&ev.pid))
            && self.syscalls.is_empty()
            && self.path.is_none()
            && !self.failed
    }
}

pub fn run(a: ShowArgs) -> Result<i32, Failure> {
    let mut reader = open_log(&a.log)?;
    if a.follow {
        reader = reader.follow(Some(std::time::Duration::from_millis(200)));
    }
    let mut syscalls = HashSet::new();
    for name in &a.syscall {
        let id = SyscallId::from_name(name).ok_or_else(|| {
            Failure::new(
                2,
                format!(
                    "--syscall: unknown syscall `{name}`{}",
                    vigil_event::suggest(name, vigil_event::syscall::all_names())
                ),
            )
        })?;
        syscalls.insert(id);
    }
    let path = match &a.path {
        Some(p) => Some(
            Glob::new(p)
                .map_err(|e| Failure::new(2, format!("--path: {e}")))?
                .compile_matcher(),
        ),
        None => None,
    };
    let filter = Filter {
        pids: a.pid.iter().copied().collect(),
        syscalls,
        path,
        failed: a.failed,
    };
    let mut damage = Damage::new(&a.log);
    let mut out = crate::out::Stdout::new();
    let mut faults = crate::faults::DeathExplainer::new(&a.log);
    let mut listing = Listing {
        time: a.time,
        first_ns: None,
        open: HashMap::new(),
        last_open: None,
        out: &mut out,
    };
    for item in reader {
        let ev = match item {
            Ok(ev) => ev,
            Err(issue) => {
                damage.report(&issue);
                continue;
            }
        };
        // Every event, whatever is shown.
        let fatal = faults.add(&ev);
        let written = if a.format == Format::Json {
            listing.json(&ev, &filter)
        } else {
            let passes = filter.other_passes(&ev);
            listing.text(ev, &filter).and_then(|()| match fatal {
                Some(e) if passes => listing.fault(&e),
                _ => Ok(()),
            })
        };
        // Following a log being written, every line is shown as it comes: the reader may wait
        // a long time for the next one.
        let written = written.and_then(|()| {
            if a.follow {
                listing.out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            return Err(listing.out.failure(&e));
        }
    }
    if a.format == Format::Text
        && let Err(e) = listing.flush_unfinished()
    {
        return Err(listing.out.failure(&e));
    }
    out.finish()?;
    Ok(damage.exit_code(0))
}

struct Listing<'o> {
    time: TimeFormat,
    first_ns: Option<u64>,
    /// Entries waiting for their exit, by thread.
    open: HashMap<u32, (Event, bool)>,
    /// The thread whose entry was printed last without its result.
    last_open: Option<u32>,
    out: &'o mut crate::out::Stdout,
}

impl Listing<'_> {
    fn prefix(&mut self, ev: &Event) -> String {
        let first = *self.first_ns.get_or_insert(ev.time_ns);
        let t = match self.time {
            TimeFormat::Clock => {
                let s = ev.time_ns / 1_000_000_000;
                let us = (ev.time_ns / 1000) % 1_000_000;
                format!(
                    "{:02}:{:02}:{:02}.{us:06} ",
                    (s / 3600) % 24,
                    (s / 60) % 60,
                    s % 60
                )
            }
            TimeFormat::Relative => {
                format!("{:>12.6} ", ev.time_ns.saturating_sub(first) as f64 / 1e9)
            }
            TimeFormat::None => String::new(),
        };
        if ev.pid == ev.tid {
            format!("{t}{:<6} ", ev.pid)
        } else {
            format!("{t}{}/{} ", ev.pid, ev.tid)
        }
    }

    /// Ends a line left open by an entry, as strace does when another thread's event comes.
    fn interrupt(&mut self) -> std::io::Result<()> {
        if let Some(tid) = self.last_open.take()
            && let Some((_, printed)) = self.open.get_mut(&tid)
        {
            *printed = true;
            writeln!(self.out, " <unfinished ...>")?;
        }
        Ok(())
    }

    fn text(&mut self, ev: Event, f: &Filter) -> std::io::Result<()> {
        match &ev.kind {
            EventKind::SyscallEntry(SyscallEntry { call, args }) => {
                if f.failed || !f.call_passes(ev.pid, *call, args) {
                    // Decided at exit (the result is needed), printed then in one line.
                    self.open.insert(ev.tid, (ev, false));
                    return Ok(());
                }
                self.interrupt()?;
                let mut line = self.prefix(&ev);
                // How sure an entry's path is matters at its exit, which says what the
                // kernel resolved (and shows it when it differs).
                render::call(*call, &entry_view(args), &mut line);
                line.truncate(line.len() - 1); // the ')' comes with the result
                write!(self.out, "{line}")?;
                self.last_open = Some(ev.tid);
                self.open.insert(ev.tid, (ev, false));
            }
            EventKind::SyscallExit(x) => {
                let entry = self.open.remove(&ev.tid);
                let shown_entry = entry.as_ref().is_some_and(|(e, _)| {
                    f.call_passes(e.pid, x.call, e.args().map_or(&[][..], |(_, a)| a)) && !f.failed
                });
                if !f.call_passes(ev.pid, x.call, &x.args) || (f.failed && !x.failed()) {
                    if shown_entry && self.last_open == Some(ev.tid) {
                        self.last_open = None;
                        writeln!(self.out, ") = ?")?;
                    }
                    return Ok(());
                }
                let mut result = String::new();
                render::result(x.call, x.ret, &x.args, &mut result);
                if shown_entry && let Some((e, _)) = &entry {
                    // Inputs the kernel's answer corrected (the path it really opened).
                    render::changed_inputs(
                        x.call,
                        e.args().map_or(&[][..], |(_, a)| a),
                        &x.args,
                        &mut result,
                    );
                }
                if shown_entry && self.last_open == Some(ev.tid) {
                    self.last_open = None;
                    writeln!(self.out, "){result}")?;
                } else if shown_entry {
                    self.interrupt()?;
                    let p = self.prefix(&ev);
                    writeln!(self.out, "{p}<... {} resumed>){result}", x.call)?;
                } else {
                    self.interrupt()?;
                    let mut line = self.prefix(&ev);
                    render::call(x.call, &x.args, &mut line);
                    writeln!(self.out, "{line}{result}")?;
                }
            }
            _ => {
                // A thread that ends inside a call (exit_group, killed) never returns from it.
                if matches!(ev.kind, EventKind::ThreadExit(_)) {
                    self.finish_without_result(ev.tid, f)?;
                }
                if matches!(ev.kind, EventKind::ThreadExit(_)) && ev.pid == ev.tid {
                    return Ok(()); // the process exit line that follows says it
                }
                if f.other_passes(&ev)
                    && let Some(text) = render::lifecycle(&ev)
                {
                    self.interrupt()?;
                    let p = self.prefix(&ev);
                    writeln!(self.out, "{p}{text}")?;
                }
            }
        }
        Ok(())
    }

    fn finish_without_result(&mut self, tid: u32, f: &Filter) -> std::io::Result<()> {
        let Some((entry, _)) = self.open.remove(&tid) else {
            return Ok(());
        };
        let Some(call) = entry.syscall() else {
            return Ok(());
        };
        let args = entry.args().map_or(&[][..], |(_, a)| a);
        if !f.call_passes(entry.pid, call, args) || f.failed {
            return Ok(());
        }
        if self.last_open == Some(tid) {
            self.last_open = None;
            return writeln!(self.out, ") = ?");
        }
        self.interrupt()?;
        let p = self.prefix(&entry);
        writeln!(self.out, "{p}<... {call} resumed>) = ?")
    }

    /// What killed a process, under its exit line (indented, as an address space is).
    fn fault(&mut self, e: &vigil_procstate::FaultExplanation) -> std::io::Result<()> {
        for l in crate::faults::describe(e) {
            writeln!(self.out, "    {l}")?;
        }
        Ok(())
    }

    fn flush_unfinished(&mut self) -> std::io::Result<()> {
        self.interrupt()?;
        Ok(())
    }

    fn json(&mut self, ev: &Event, f: &Filter) -> std::io::Result<()> {
        let pass = match &ev.kind {
            EventKind::SyscallEntry(e) => !f.failed && f.call_passes(ev.pid, e.call, &e.args),
            EventKind::SyscallExit(x) => {
                f.call_passes(ev.pid, x.call, &x.args) && (!f.failed || x.failed())
            }
            _ => f.other_passes(ev),
        };
        if pass {
            writeln!(self.out, "{}", vigil_event::json::to_json(ev))?;
        }
        Ok(())
    }
}

/// An entry's arguments as `show` prints them: a path not walked at entry (nothing decided
/// there) is shown as folded, without the note the exit makes moot.
fn entry_view(args: &[Value]) -> vigil_event::Args {
    args.iter()
        .map(|v| match v {
            Value::Resolved(r) if r.how == vigil_event::Resolution::Lexical => Value::resolved(
                r.value.clone(),
                r.given.clone(),
                vigil_event::Resolution::Exact,
            ),
            v => v.clone(),
        })
        .collect()
}
