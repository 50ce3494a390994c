//! strace-like text for events: `openat(AT_FDCWD</tmp>, "/etc/passwd", O_RDONLY) = 3</etc/passwd>`.

use crate::event::{Args, Event, EventKind, errno_of};
use crate::flags;
use crate::memory::{AddressSpace, Divergence, SmoAccess, SmoKind, SmoVia};
use crate::syscall::{ArgKind, Signature, SyscallId};
use crate::value::{AT_FDCWD, Resolution, Value};
use std::fmt::Write;

/// One value as strace would show it. A path the program gave in another form than the one
/// the kernel resolved shows both: `"/etc/shadow" (given "l/../shadow")`.
pub fn value(kind: ArgKind, v: &Value, out: &mut String) {
    match v {
        Value::Resolved(r) => {
            value(kind, &r.value, out);
            if r.given != Value::Absent && !given_is_suffix(&r.value, &r.given) {
                out.push_str(" (given ");
                value(kind, &r.given, out);
                out.push(')');
            }
            match r.how {
                Resolution::Exact => {}
                Resolution::Lexical => out.push_str(" (not resolved: folded as text)"),
                Resolution::Unknown => out.push_str(" (unresolved: relative to what is unknown)"),
            }
        }
        Value::Cut(c) => {
            value(kind, &c.kept, out);
            let at_least = if c.exact { "" } else { "at least " };
            let _ = write!(
                out,
                " /* not recorded: {at_least}{} more items, {at_least}{} bytes */",
                c.items, c.bytes
            );
        }
        Value::Absent => out.push('?'),
        Value::Unreadable(addr) => {
            let _ = write!(out, "{addr:#x}");
        }
        Value::Str(s) => {
            out.push('"');
            out.push_str(&s.escaped());
            out.push('"');
        }
        Value::Fd(fd) => {
            if fd.num == AT_FDCWD && kind == ArgKind::DirFd {
                out.push_str("AT_FDCWD");
            } else {
                let _ = write!(out, "{}", fd.num);
            }
            if let Some(t) = &fd.target {
                let _ = write!(out, "<{t}>");
            }
        }
        Value::List(items) => {
            out.push('[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('"');
                out.push_str(&s.escaped());
                out.push('"');
            }
            out.push(']');
        }
        Value::Addr(a) => {
            let _ = write!(out, "{{{a}}}");
        }
        Value::Bytes(b) => bytes(b, out),
        Value::Range(r) => {
            let _ = write!(out, "[{:#x}+{}]", r.start, r.len);
        }
        Value::Int(i) => match kind {
            ArgKind::Signal => out.push_str(&flags::signal_name(*i)),
            _ => {
                let _ = write!(out, "{i}");
            }
        },
        Value::Uint(u) => match kind {
            ArgKind::Hex if *u == 0 => out.push_str("NULL"),
            ArgKind::Hex => {
                let _ = write!(out, "{u:#x}");
            }
            ArgKind::Envp => {
                let _ = write!(out, "[/* {u} vars */]");
            }
            ArgKind::Uid | ArgKind::Gid if *u as u32 == u32::MAX => out.push_str("-1"),
            k => match flags::render(k, *u) {
                Some(s) => out.push_str(&s),
                None => {
                    let _ = write!(out, "{u}");
                }
            },
        },
    }
}

/// Bytes as strace shows a buffer: `"ab\x00\n"`, the first 64 bytes and `...` after them.
pub fn bytes(b: &[u8], out: &mut String) {
    const SHOWN: usize = 64;
    out.push('"');
    for &c in b.iter().take(SHOWN) {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
    if b.len() > SHOWN {
        out.push_str("...");
    }
}

/// Whether a given relative path is the tail of the resolved one (`out` of `/tmp/x/out`):
/// nothing the reader needs to see twice.
fn given_is_suffix(value: &Value, given: &Value) -> bool {
    match (value, given) {
        (Value::Str(v), Value::Str(g)) => {
            let (v, g) = (v.as_bytes(), g.as_bytes());
            !g.is_empty()
                && g[0] != b'/'
                && v.len() > g.len()
                && v.ends_with(g)
                && v[v.len() - g.len() - 1] == b'/'
                && !g.split(|&b| b == b'/').any(|c| c == b".." || c == b".")
        }
        _ => false,
    }
}

/// The arguments between parentheses; trailing absent values are left out.
pub fn args(sig: &Signature, args: &Args, with_outputs: bool, out: &mut String) {
    let n = if with_outputs {
        args.len()
    } else {
        args.len().min(sig.args.len())
    };
    let n = args[..n]
        .iter()
        .rposition(|v| *v != Value::Absent)
        .map_or(0, |i| i + 1);
    for (i, v) in args[..n].iter().enumerate() {
        let Some(spec) = sig.field(i) else { break };
        if i > 0 {
            out.push_str(", ");
        }
        if i >= sig.args.len() {
            out.push_str(spec.name);
            out.push('=');
        }
        value(spec.kind, v, out);
    }
}

/// The call without its result: `read(3</etc/passwd>, 0x7ffd..., 4096)`.
pub fn call(call: SyscallId, args_: &Args, out: &mut String) {
    let _ = write!(out, "{call}(");
    args(call.signature(), args_, false, out);
    out.push(')');
}

/// ` = 3</etc/passwd>`, ` = -1 ENOENT (No such file or directory)`, ` = 0x7f00...`.
pub fn result(call: SyscallId, ret: i64, args_: &Args, out: &mut String) {
    out.push_str(" = ");
    if let Some(e) = errno_of(ret) {
        let errno = syscalls::Errno::new(e);
        match errno.name_and_description() {
            Some((n, d)) => {
                let _ = write!(out, "-1 {n} ({d})");
            }
            None => {
                let _ = write!(out, "-1 errno {e}");
            }
        }
        return;
    }
    let sig = call.signature();
    if matches!(sig.name, "mmap" | "mremap" | "shmat") {
        let _ = write!(out, "{:#x}", ret as u64);
        return;
    }
    let _ = write!(out, "{ret}");
    // The fd a call returned, with what it refers to.
    for (i, spec) in sig.outputs.iter().enumerate() {
        let v = args_.get(sig.args.len() + i);
        match (spec.kind, v) {
            (ArgKind::Fd, Some(Value::Fd(fd))) if fd.num as i64 == ret => {
                if let Some(t) = &fd.target {
                    let _ = write!(out, "<{t}>");
                }
            }
            (_, Some(v)) if *v != Value::Absent => {
                let _ = write!(out, " {}=", spec.name);
                value(spec.kind, v, out);
            }
            _ => {}
        }
    }
}

/// ` [resolved: path="/etc/shadow"]` for each input the exit event holds differently from its
/// entry (the kernel's own answer, when the program changed the argument during the call).
pub fn changed_inputs(call: SyscallId, entry: &[Value], exit: &[Value], out: &mut String) {
    let sig = call.signature();
    for (i, (a, b)) in entry.iter().zip(exit.iter()).enumerate() {
        if a.plain() == b.plain() || i >= sig.args.len() {
            continue;
        }
        if let Some(spec) = sig.field(i) {
            let _ = write!(out, " [resolved: {}=", spec.name);
            value(spec.kind, b.plain(), out);
            out.push(']');
        }
    }
}

/// A one-line description of a non-syscall event: `+++ exited with 0 +++`, `--- SIGINT ---`.
pub fn lifecycle(ev: &Event) -> Option<String> {
    Some(match &ev.kind {
        EventKind::ProcessStart(p) => {
            format!("+++ process started by {} ({}) +++", p.ppid, p.exe)
        }
        EventKind::ProcessExec(p) => {
            let argv: Vec<String> = p.argv.iter().map(|a| format!("{a:?}")).collect();
            format!(
                "+++ exec {} [{}] uid={} +++",
                p.exe,
                argv.join(", "),
                p.creds.euid
            )
        }
        EventKind::ProcessExit(p) => format!("+++ {} +++", p.status),
        EventKind::ThreadStart(t) => format!("+++ thread started by {} +++", t.creator_tid),
        EventKind::ThreadExit(t) => format!("+++ thread {} +++", t.status),
        EventKind::Signal(s) => {
            let mut line = format!(
                "--- {} {{si_code={}",
                flags::signal_name(s.signal as i64),
                s.code
            );
            if s.sender_pid != 0 {
                let _ = write!(line, ", si_pid={}, si_uid={}", s.sender_pid, s.sender_uid);
            }
            line.push_str("} ---");
            line
        }
        EventKind::Lost(l) => format!("!!! {} events lost: {} !!!", l.count, l.reason),
        EventKind::Action(a) => {
            let by = if a.by.is_empty() {
                String::new()
            } else {
                format!(" (rule {})", a.by)
            };
            let detail = if a.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", a.detail)
            };
            format!("*** vigil {} {}{by}{detail} ***", a.action, a.target_pid)
        }
        EventKind::SmoAccess(a) => smo_access(a),
        EventKind::AddressSpace(s) => address_space(s),
        EventKind::Divergence(d) => divergence(d),
        EventKind::SyscallEntry(_) | EventKind::SyscallExit(_) => return None,
    })
}

/// `~~~ smo_write /tmp/f [4096+4096] at 0x7f0000001000 ip 0x401000 (fault) ~~~`; a private
/// mapping's access says so (`(fault, private)`), and a copy found after the fact has no ip.
fn smo_access(a: &SmoAccess) -> String {
    let what = a.access.event_type().name();
    let object = match (a.object.kind, a.object.path.is_empty()) {
        (SmoKind::File, false) => a.object.path.escaped(),
        (k, false) => format!("{} {}", k.name(), a.object.path.escaped()),
        (k, true) => format!("{}:[{}]", k.name(), a.object.ino),
    };
    let mut via = match a.via {
        SmoVia::Syscall(c) => format!("by {c}"),
        v => v.name().to_string(),
    };
    if a.private {
        via.push_str(", private");
    }
    format!(
        "~~~ {what} {object} [{}+{}] at {:#x} ip {:#x} ({via}) ~~~",
        a.offset, a.len, a.addr, a.ip
    )
}

/// `+++ address space: N mappings +++` and each mapping as a line of /proc/PID/maps.
fn address_space(s: &AddressSpace) -> String {
    let mut out = format!("+++ address space: {} mappings +++", s.vmas.len());
    for v in s.vmas.iter() {
        let _ = write!(
            out,
            "\n    {:x}-{:x} {} {:08x} {:02x}:{:02x} {} {}",
            v.start,
            v.end,
            v.perms(),
            v.offset,
            (v.dev >> 8) & 0xfff,
            (v.dev & 0xff) | ((v.dev >> 12) & 0xfff00),
            v.ino,
            v.path.escaped()
        );
    }
    out
}

/// `!!! divergence (args) at write: ... !!!`, then each variant's side.
fn divergence(d: &Divergence) -> String {
    let mut out = format!("!!! divergence ({})", d.what);
    if let Some(c) = d.call {
        let _ = write!(out, " at {c}");
    }
    if !d.fields.is_empty() {
        let f: Vec<String> = d.fields.iter().map(|f| f.escaped()).collect();
        let _ = write!(out, " in {}", f.join(", "));
    }
    if !d.detail.is_empty() {
        let _ = write!(out, ": {}", d.detail.escaped());
    }
    out.push_str(" !!!");
    for v in d.variants.iter() {
        let _ = write!(out, "\n    variant {} (pid {}", v.index, v.pid);
        if v.tid != v.pid {
            let _ = write!(out, ", tid {}", v.tid);
        }
        out.push(')');
        if v.diverged {
            out.push_str(" [diverged]");
        }
        out.push_str(": ");
        if let Some(c) = v.call {
            call(c, &v.args, &mut out);
        }
        if !v.detail.is_empty() {
            if v.call.is_some() {
                out.push(' ');
            }
            out.push_str(&v.detail.escaped());
        }
    }
    out
}
