//! `vigil maps`: one process's address space at a moment of a log, reconstructed from the
//! log (the exec snapshot, then every memory call) by vigil_procstate's replay, in the form of
//! /proc/PID/maps with vigil's own columns: shared or private, file or anonymous, the
//! shared-memory object, the parts of it read and written so far, and the pages a private
//! file mapping copied on write.

use crate::exit::{Damage, Failure, open_log};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use vigil_event::json::str_json;
use vigil_procstate::replay::{Life, LogSpan, MapsAt, MapsAtError, Moment, VmaView};
use vigil_procstate::{Backing, ObjectId};

#[derive(clap::Args)]
pub struct MapsArgs {
    /// The log to read.
    pub log: PathBuf,
    /// The process.
    #[arg(long)]
    pub pid: u32,
    /// The moment: a seq (just after that event), +OFFSET from the log's first event (+2.5s,
    /// +300ms, +40us), or seconds since the epoch (1763820000.25). Default: the end of the
    /// log, or the process's last state before it exited.
    #[arg(long, value_name = "SEQ|TIME")]
    pub at: Option<String>,
    /// Output format: text (/proc/PID/maps lines, each followed by vigil's columns) or json
    /// (one object per mapping, a line each).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--at` as a moment (the forms `backtrack --at` accepts).
fn moment(at: Option<&str>) -> Result<Moment, Failure> {
    let Some(s) = at else {
        return Ok(Moment::End);
    };
    let t = vigil_graph::TimeSpec::parse(s).map_err(|e| Failure::new(2, format!("--at: {e}")))?;
    Ok(match t {
        vigil_graph::TimeSpec::Seq(s) => Moment::Seq(s),
        vigil_graph::TimeSpec::Offset(o) => Moment::SinceStart((o * 1e9) as u64),
        // To the nanosecond (a double holds epoch nanoseconds only to a few hundred).
        vigil_graph::TimeSpec::Epoch(e) => Moment::Time(epoch_ns(s).unwrap_or((e * 1e9) as u64)),
    })
}

/// `SECONDS.FRACTION` since the epoch, exactly, in nanoseconds.
fn epoch_ns(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    secs.checked_mul(1_000_000_000)?
        .checked_add(digits.parse().ok()?)
}

/// UTC time of day, microseconds (as `show` prints times).
pub fn clock(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06} UTC",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        (ns / 1000) % 1_000_000
    )
}

fn span_text(span: &LogSpan) -> String {
    format!(
        "seq {} ({}) to seq {} ({})",
        span.first_seq,
        clock(span.first_ns),
        span.last_seq,
        clock(span.last_ns)
    )
}

fn exit_text(life: &Life) -> String {
    match life.exit {
        Some((seq, ns, status)) => format!("at seq {seq} ({}), {status}", clock(ns)),
        None => "(no exit in the log)".to_string(),
    }
}

/// The calls that change an address space.
const MEMORY_CALLS: [&str; 7] = [
    "mmap", "munmap", "mprotect", "mremap", "brk", "shmat", "shmdt",
];

/// The calls that change an address space which the recording's syscall selection (the log
/// header) left out; `None` when the header does not say.
fn memory_calls_left_out(selection: &str) -> Option<Vec<&'static str>> {
    if selection.is_empty() {
        return None;
    }
    let sel = vigil_capture::Selection::parse(selection).ok()?;
    Some(
        MEMORY_CALLS
            .into_iter()
            .filter(|n| vigil_event::SyscallId::from_name(n).is_some_and(|c| !sel.contains(c)))
            .collect(),
    )
}

/// Whether the recording had the main memory calls (mmap and munmap).
fn records_memory_calls(selection: &str) -> Option<bool> {
    memory_calls_left_out(selection).map(|out| !out.iter().any(|c| ["mmap", "munmap"].contains(c)))
}

fn refusal(e: MapsAtError, log: &Path, given: Option<&str>, selection: &str) -> Failure {
    let name = log.display();
    let msg = match e {
        MapsAtError::EmptyLog => format!("{name}: the log has no events"),
        MapsAtError::PidNotInLog { pid, span } => format!(
            "{name}: no process {pid} in the log (it spans {})",
            span_text(&span)
        ),
        MapsAtError::OutsideLog { span, .. } => format!(
            "--at {}: outside the log, which spans {}",
            given.unwrap_or("?"),
            span_text(&span)
        ),
        MapsAtError::NotStarted { pid, at_seq, life } => format!(
            "process {pid} had not started yet at seq {at_seq}: it starts at seq {} ({})",
            life.start_seq,
            clock(life.start_ns)
        ),
        MapsAtError::Exited {
            pid,
            at_seq,
            life,
            next,
        } => {
            let again = next.map_or(String::new(), |n| {
                format!(
                    "; another process {pid} starts at seq {} ({})",
                    n.start_seq,
                    clock(n.start_ns)
                )
            });
            format!(
                "process {pid} had already exited at seq {at_seq}: it exited {}{again}",
                exit_text(&life)
            )
        }
        MapsAtError::NoAddressSpace { pid } => match records_memory_calls(selection) {
            Some(false) => format!(
                "{name} has no address-space events for process {pid}: it was recorded without \
                 memory calls (--syscalls {selection}); record with the default selection, or add \
                 `memory` to --syscalls, to have them (memory calls and a snapshot at each exec)"
            ),
            _ => format!(
                "{name} has no address-space events for process {pid} (no snapshot at exec, no \
                 memory call: its start was not traced, or the recording left memory calls out); \
                 record it with `vigil record` and the default selection to have them"
            ),
        },
    };
    Failure::new(1, msg)
}

pub fn run(a: MapsArgs) -> Result<i32, Failure> {
    let at = moment(a.at.as_deref())?;
    let reader = open_log(&a.log)?;
    let selection = reader.meta().selection.clone();
    let mut damage = Damage::new(&a.log);
    let events = reader.filter_map(|item| match item {
        Ok(ev) => Some(ev),
        Err(issue) => {
            damage.report(&issue);
            None
        }
    });
    let result = vigil_procstate::maps_at(events, a.pid, at);
    let m = result.map_err(|e| refusal(e, &a.log, a.at.as_deref(), &selection))?;
    warnings(&m, &a.log, &selection);
    let mut out = crate::out::Stdout::new();
    let written = match a.format {
        Format::Text => text(&m, &mut out),
        Format::Json => json(&m, &mut out),
    };
    written.map_err(|e| out.failure(&e))?;
    out.finish()?;
    Ok(damage.exit_code(0))
}

/// What may make the view wrong or partial, on standard error.
fn warnings(m: &MapsAt, log: &Path, selection: &str) {
    let name = log.display();
    if let Some(out) = memory_calls_left_out(selection)
        && !out.is_empty()
    {
        let heap = if out.contains(&"brk") {
            " (without brk, [heap] is as it was at exec)"
        } else {
            ""
        };
        crate::out::err(format_args!(
            "vigil: note: {name}: the recording left out {}: what they changed is not in the \
             model{heap}",
            out.join(", ")
        ));
    }
    if m.errors > 0 {
        let first = m.first_errors.first().map_or(String::new(), |(seq, e)| {
            format!(" (first: seq {seq}: {e})")
        });
        crate::out::err(format_args!(
            "vigil: warning: {name}: the model could not apply {} event(s) up to seq {}{first}",
            m.errors, m.seq
        ));
    }
    if m.unplaced > 0 {
        crate::out::err(format_args!(
            "vigil: warning: {name}: {} shared-memory access(es) name an address the model does \
             not map as their object; they are not shown",
            m.unplaced
        ));
    }
    if !m.view.snapshot && m.view.calls {
        crate::out::err(format_args!(
            "vigil: note: {name}: no snapshot of process {}'s address space at exec: only what \
             recorded memory calls mapped is shown",
            m.view.pid
        ));
    }
}

fn ranges(r: &[Range<u64>]) -> String {
    if r.is_empty() {
        return "-".to_string();
    }
    r.iter()
        .map(|r| format!("{:#x}-{:#x}", r.start, r.end))
        .collect::<Vec<_>>()
        .join(",")
}

fn dev_text(dev: u64) -> String {
    let (major, minor) = vigil_procstate::maps::dev_split(dev);
    format!("{major:02x}:{minor:02x}")
}

/// `file` for a file mapping, `anon` for anonymous memory (private, shared, SysV).
fn backing(v: &VmaView) -> &'static str {
    match v.vma.object() {
        Some(ObjectId::File { .. }) => "file",
        _ => "anon",
    }
}

/// The shared-memory object a shared mapping is: kind and identity.
fn smo_text(v: &VmaView) -> Option<String> {
    if !v.is_smo() {
        return None;
    }
    let o = v.object()?;
    Some(match v.vma.object()? {
        ObjectId::File { dev, ino } => format!("file {} {ino}", dev_text(*dev)),
        ObjectId::SysV(shmid) => format!("sysv_shm shmid {shmid}"),
        ObjectId::SharedAnon(_) => format!("shared_anon ino {}", o.ino),
    })
}

/// vigil's columns for one mapping.
fn columns(v: &VmaView) -> String {
    let mut s = format!(
        "{} {}",
        if v.vma.shared { "shared" } else { "private" },
        backing(v)
    );
    if let Some(smo) = smo_text(v) {
        s.push_str(&format!("  smo: {smo}"));
    }
    if matches!(v.vma.backing, Backing::Object { .. }) {
        s.push_str(&format!(
            "  read: {}  written: {}",
            ranges(&v.read),
            ranges(&v.written)
        ));
        // A private mapping that is or was writable (or has copies): the pages it copied.
        if !v.vma.shared && (v.vma.prot.writable() || v.vma.accounted || !v.copied.is_empty()) {
            let n = v.copied_pages();
            s.push_str(&format!(
                "  copied: {n} page{}{}",
                if n == 1 { "" } else { "s" },
                if n == 0 {
                    String::new()
                } else {
                    format!(" ({})", ranges(&v.copied))
                }
            ));
        }
    }
    s
}

fn moment_text(m: &MapsAt) -> String {
    if m.at_exit {
        format!(
            "its last state (seq {}), before it exited {}",
            m.seq,
            exit_text(&m.life)
        )
    } else {
        format!("seq {} ({})", m.seq, clock(m.time_ns))
    }
}

fn text(m: &MapsAt, o: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        o,
        "# process {} at {}: {} mapping{}",
        m.view.pid,
        moment_text(m),
        m.view.vmas.len(),
        if m.view.vmas.len() == 1 { "" } else { "s" }
    )?;
    writeln!(
        o,
        "# each /proc/PID/maps line is followed by vigil's columns: shared or private, file or \
         anon, the shared-memory object, the parts of the object read and written so far \
         (object offsets), the pages copied on write"
    )?;
    for v in &m.view.vmas {
        writeln!(o, "{}", v.vma)?;
        writeln!(o, "    {}", columns(v))?;
    }
    Ok(())
}

fn json(m: &MapsAt, o: &mut dyn Write) -> std::io::Result<()> {
    let pairs = |r: &[Range<u64>]| -> serde_json::Value {
        r.iter()
            .map(|r| serde_json::json!([r.start, r.end]))
            .collect()
    };
    for v in &m.view.vmas {
        let ev = v.vma.to_event();
        let smo = match (v.is_smo(), v.object()) {
            (true, Some(obj)) => serde_json::json!({
                "kind": obj.kind.name(),
                "dev": obj.dev,
                "ino": obj.ino,
                "path": str_json(&obj.path),
            }),
            _ => serde_json::Value::Null,
        };
        let line = serde_json::json!({
            "pid": m.view.pid,
            "seq": m.seq,
            "start": ev.start,
            "end": ev.end,
            "perms": ev.perms(),
            "offset": ev.offset,
            "dev": ev.dev,
            "ino": ev.ino,
            "path": str_json(&ev.path),
            "shared": v.vma.shared,
            "backing": backing(v),
            "smo": smo,
            "read": pairs(&v.read),
            "written": pairs(&v.written),
            "copied": pairs(&v.copied),
            "copied_pages": v.copied_pages(),
        });
        writeln!(o, "{line}")?;
    }
    Ok(())
}
