//! Event classes, fields and values: what a rule can name, and how it is read from an event.

use crate::ast::CmpOp;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use syscalls_names::*;
use vigil_event::syscall::{ArgKind, Signature};
use vigil_event::value::Target;
use vigil_event::*;

mod syscalls_names {
    pub use vigil_event::syscall::{all_names, known};
}

/// What kind of event a pattern element stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventClass {
    AnyEntry,
    AnyExit,
    /// A syscall's entry / exit, by x86_64 number (calls of other ABIs by their x86_64 twin).
    Entry(u32),
    Exit(u32),
    /// An event of a type that is not a syscall's entry or exit (the event model's table,
    /// `EVENT_TYPES`, lists them: every one is a pattern name by its type name).
    Event(EventType),
}

/// Pattern names besides syscall names and the event model's type names: the two wildcards,
/// and the older names of some event types.
pub const CLASS_NAMES: &[(&str, EventClass)] = &[
    ("syscall", EventClass::AnyEntry),
    ("syscallexit", EventClass::AnyExit),
    ("processstart", EventClass::Event(EventType::ProcessStart)),
    ("exec", EventClass::Event(EventType::ProcessExec)),
    ("processexit", EventClass::Event(EventType::ProcessExit)),
    ("threadstart", EventClass::Event(EventType::ThreadStart)),
    (
        "threadtermination",
        EventClass::Event(EventType::ThreadExit),
    ),
];

/// The event types a pattern can name by their type name (all but syscall entries and exits,
/// which patterns name by syscall).
fn event_classes() -> impl Iterator<Item = (&'static str, EventClass)> {
    EVENT_TYPES
        .iter()
        .filter(|t| !t.ty.is_syscall())
        .map(|t| (t.name, EventClass::Event(t.ty)))
}

/// Syscalls of another ABI with no x86_64 twin get their own numbers, above any real one.
const FOREIGN: u32 = 1 << 20;

fn sys_key(call: SyscallId) -> u32 {
    match call.canonical() {
        Some(s) => s.id() as u32,
        None => FOREIGN + ((call.abi as u32) << 16) + (call.nr & 0xffff),
    }
}

impl EventClass {
    pub fn parse(name: &str) -> Option<EventClass> {
        if let Some((_, c)) = CLASS_NAMES.iter().find(|(n, _)| *n == name) {
            return Some(*c);
        }
        if let Some((_, c)) = event_classes().find(|(n, _)| *n == name) {
            return Some(c);
        }
        let (base, entry) = match name.strip_suffix(".entry") {
            Some(b) => (b, true),
            None => (name, false),
        };
        let id = SyscallId::from_name(base)?;
        let k = sys_key(id);
        Some(if entry {
            EventClass::Entry(k)
        } else {
            EventClass::Exit(k)
        })
    }

    /// The concrete class of an event.
    pub fn of(ev: &Event) -> EventClass {
        match &ev.kind {
            EventKind::SyscallEntry(e) => EventClass::Entry(sys_key(e.call)),
            EventKind::SyscallExit(x) => EventClass::Exit(sys_key(x.call)),
            _ => EventClass::Event(ev.event_type()),
        }
    }

    /// Whether a pattern class accepts an event of concrete class `c`.
    pub fn covers(self, c: EventClass) -> bool {
        match (self, c) {
            (EventClass::AnyEntry, EventClass::Entry(_))
            | (EventClass::AnyExit, EventClass::Exit(_)) => true,
            (EventClass::Event(pattern), EventClass::Event(ty)) => ty.counts_as(pattern),
            (a, b) => a == b,
        }
    }

    /// The syscall signature, for classes naming one syscall.
    pub fn signature(self) -> Option<&'static Signature> {
        match self {
            EventClass::Entry(n) | EventClass::Exit(n) if n < FOREIGN => {
                Some(SyscallId::x86_64(n).signature())
            }
            _ => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            EventClass::Entry(n) if n < FOREIGN => format!("{}.entry", SyscallId::x86_64(n)),
            EventClass::Exit(n) if n < FOREIGN => SyscallId::x86_64(n).to_string(),
            EventClass::Entry(n) | EventClass::Exit(n) => format!("syscall_{n}"),
            c => CLASS_NAMES
                .iter()
                .copied()
                .chain(event_classes())
                .find(|(_, k)| *k == c)
                .map_or("?", |(n, _)| n)
                .to_string(),
        }
    }

    pub fn is_syscall(self) -> bool {
        matches!(
            self,
            EventClass::AnyEntry | EventClass::AnyExit | EventClass::Entry(_) | EventClass::Exit(_)
        )
    }

    pub fn is_exit(self) -> bool {
        matches!(self, EventClass::AnyExit | EventClass::Exit(_))
    }
}

/// Every event type name, for suggestions.
pub fn type_names() -> impl Iterator<Item = &'static str> {
    CLASS_NAMES
        .iter()
        .map(|(n, _)| *n)
        .chain(event_classes().map(|(n, _)| n))
        .chain(all_names())
}

/// A runtime value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    Null,
    Int(i64),
    Str(Str),
    List(Arc<[Str]>),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Null => f.write_str("-"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Str(s) => write!(f, "{s}"),
            Val::List(l) => {
                let parts: Vec<String> = l.iter().map(|s| s.to_string()).collect();
                write!(f, "[{}]", parts.join(" "))
            }
        }
    }
}

impl Val {
    /// The JSON form, with strings as the export writes them (text when valid UTF-8, else
    /// `{"bytes_hex": ...}`), so a tool reads a match's path as it reads the event's.
    pub fn to_json(&self) -> serde_json::Value {
        use vigil_event::json::str_json;
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(i) => (*i).into(),
            Val::Str(s) => str_json(s),
            Val::List(l) => serde_json::Value::Array(l.iter().map(str_json).collect()),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// `a op b` as a rule's condition evaluates it: numbers by value, a null equal only to null,
/// other values by equality only. Used by the engine and by the compiler's constant folding.
pub fn compare(a: &Val, op: CmpOp, b: &Val) -> bool {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        },
        _ => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => false,
        },
    }
}

/// The type of a field, for checking rules before they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Int,
    Str,
    List,
    /// Differs between the events a name may stand for.
    Any,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Int => "a number",
            Type::Str => "a string",
            Type::List => "a list of strings",
            Type::Any => "a value",
        }
    }
}

/// A part of an fd or address argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sub {
    None,
    Path,
    Kind,
    Ino,
    Port,
    Ip,
    Remote,
    Local,
}

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldRef {
    Seq,
    Time,
    Pid,
    Tid,
    Type,
    /// The process's executable now (from the engine's process table for syscall events).
    Exe,
    /// The executable's file name.
    Comm,
    Ppid,
    Nr,
    Syscall,
    /// The syscall by its x86_64 meaning (`open` for `i386:open`).
    Call,
    /// The ABI a call was made through: `x86_64`, `i386`, `x32`, `io_uring`.
    Abi,
    Ret,
    Errno,
    /// `ok`, or the errno name of a failed call.
    Result,
    /// 1 when an open-like call may change its file (`open_for_write(e)`), else 0.
    OpenForWrite,
    Argv,
    Uid,
    Euid,
    Gid,
    Egid,
    Dev,
    Ino,
    ExitCode,
    Signal,
    Code,
    SenderPid,
    CreatorTid,
    Count,
    Reason,
    ActionName,
    By,
    TargetPid,
    Detail,
    /// Shared-memory accesses: `read`, `write`, `read_write`.
    Access,
    /// The kind of shared-memory object: `file`, `sysv_shm`, `shared_anon`.
    Object,
    Path,
    Offset,
    Len,
    Addr,
    Ip,
    /// `fault`, `step` or `syscall` (a kernel access on behalf of a syscall).
    Via,
    /// The syscall of a kernel access (by its x86_64 meaning), null for the others.
    ViaSyscall,
    /// 1 for an access through a MAP_PRIVATE mapping, 0 otherwise.
    Private,
    /// The range of the object the mapping accessed through covers.
    MapOffset,
    MapLen,
    /// Signals: where a kernel-raised SIGSEGV/SIGBUS/... pointed (`fault.addr`, `fault.ip`,
    /// `fault.access`), null for a signal without one.
    FaultAddr,
    FaultIp,
    FaultAccess,
    /// Address-space snapshots: the number of mappings, and the files mapped.
    Vmas,
    Paths,
    /// Divergences: what differed, the arguments that did, how many variants, the pids of
    /// the variants that disagreed.
    What,
    Fields,
    Variants,
    DivergedPids,
    Arg(&'static str, Sub),
    /// The argument `name` of the events where it has this kind, null on the others: flag
    /// names mean different bits in different kinds (O_TRUNC is AT_REMOVEDIR's bit).
    ArgAs(&'static str, ArgKind),
}

const ALIASES: &[(&str, &str)] = &[
    ("ProcessId", "pid"),
    ("ThreadId", "tid"),
    ("SyscallNr", "nr"),
    ("TimeStamp", "time"),
];

/// Names valid for an event of this class (for messages).
pub fn field_names(classes: &[EventClass]) -> Vec<String> {
    let mut v: Vec<String> = ["seq", "time", "pid", "tid", "type", "exe", "comm", "ppid"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(ALIASES.iter().map(|(a, _)| a.to_string()));
    for c in classes {
        if c.is_syscall() {
            v.extend(["nr", "syscall", "call", "abi"].map(String::from));
            if c.is_exit() {
                v.extend(["ret", "errno", "result"].map(String::from));
            }
        }
        match c.signature() {
            Some(sig) => v.extend(
                sig.args
                    .iter()
                    .chain(sig.outputs.iter())
                    .map(|a| a.name.to_string()),
            ),
            None if c.is_syscall() => {
                for (_, sig) in known() {
                    v.extend(
                        sig.args
                            .iter()
                            .chain(sig.outputs.iter())
                            .map(|a| a.name.to_string()),
                    );
                }
            }
            None => {}
        }
        v.extend(
            SPECIAL
                .iter()
                .filter(|(_, _, _, on)| on.iter().any(|k| k.covers(*c)))
                .map(|(n, ..)| n.to_string()),
        );
        if has(SIGNAL, *c) {
            v.extend(FAULT_PARTS.iter().map(|(p, ..)| format!("fault.{p}")));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The kinds an argument has on the events of `classes`, each once.
pub fn distinct_arg_kinds(classes: &[EventClass], name: &str) -> Vec<ArgKind> {
    let mut v = arg_kinds(classes, name);
    let mut seen = Vec::new();
    v.retain(|k| {
        let new = !seen.contains(k);
        seen.push(*k);
        new
    });
    v
}

fn arg_kinds(classes: &[EventClass], name: &str) -> Vec<ArgKind> {
    let mut kinds = Vec::new();
    let mut push = |sig: &Signature| {
        if let Some(a) = sig
            .args
            .iter()
            .chain(sig.outputs.iter())
            .find(|a| a.name == name)
        {
            kinds.push(a.kind);
        }
    };
    for c in classes {
        match c.signature() {
            Some(sig) => push(sig),
            None if c.is_syscall() => known().for_each(|(_, sig)| push(sig)),
            None => {}
        }
    }
    kinds
}

/// The static name of an argument (the engine compares pointers to these, not strings).
fn static_arg_name(name: &str) -> Option<&'static str> {
    known()
        .flat_map(|(_, s)| s.args.iter().chain(s.outputs.iter()))
        .map(|a| a.name)
        .find(|n| *n == name)
}

fn kind_type(k: ArgKind) -> Type {
    match k {
        k if k.is_path() => Type::Str,
        ArgKind::Str | ArgKind::SockAddr(_) | ArgKind::SockAddrOut => Type::Str,
        ArgKind::Argv => Type::List,
        _ => Type::Int,
    }
}

const fn ev(t: EventType) -> EventClass {
    EventClass::Event(t)
}

const PROCESS: &[EventClass] = &[ev(EventType::ProcessStart), ev(EventType::ProcessExec)];
const EXITS: &[EventClass] = &[ev(EventType::ProcessExit), ev(EventType::ThreadExit)];
const SIGNAL_OR_EXIT: &[EventClass] = &[
    ev(EventType::ProcessExit),
    ev(EventType::ThreadExit),
    ev(EventType::Signal),
];
const SIGNAL: &[EventClass] = &[ev(EventType::Signal)];
const LOST: &[EventClass] = &[ev(EventType::Lost)];
const ACTION: &[EventClass] = &[ev(EventType::Action)];
const SMO: &[EventClass] = &[
    ev(EventType::SmoRead),
    ev(EventType::SmoWrite),
    ev(EventType::SmoReadWrite),
];
const EXEC_OR_SMO: &[EventClass] = &[
    ev(EventType::ProcessExec),
    ev(EventType::SmoRead),
    ev(EventType::SmoWrite),
    ev(EventType::SmoReadWrite),
];
const SPACE: &[EventClass] = &[ev(EventType::AddressSpace)];
const DIVERGENCE: &[EventClass] = &[ev(EventType::Divergence)];
const ACTION_OR_DIVERGENCE: &[EventClass] = &[ev(EventType::Action), ev(EventType::Divergence)];

/// The fields that belong to kinds of event (not syscall arguments): name, where the value
/// comes from, its type, and the classes of event that have it. docs/rules.md lists them.
const SPECIAL: &[(&str, FieldRef, Type, &[EventClass])] = &[
    ("argv", FieldRef::Argv, Type::List, PROCESS),
    ("uid", FieldRef::Uid, Type::Int, PROCESS),
    ("euid", FieldRef::Euid, Type::Int, PROCESS),
    ("gid", FieldRef::Gid, Type::Int, PROCESS),
    ("egid", FieldRef::Egid, Type::Int, PROCESS),
    ("dev", FieldRef::Dev, Type::Int, EXEC_OR_SMO),
    ("ino", FieldRef::Ino, Type::Int, EXEC_OR_SMO),
    ("exit_code", FieldRef::ExitCode, Type::Int, EXITS),
    ("signal", FieldRef::Signal, Type::Int, SIGNAL_OR_EXIT),
    ("code", FieldRef::Code, Type::Int, SIGNAL),
    ("sender_pid", FieldRef::SenderPid, Type::Int, SIGNAL),
    ("sender_uid", FieldRef::Uid, Type::Int, SIGNAL),
    (
        "creator_tid",
        FieldRef::CreatorTid,
        Type::Int,
        &[ev(EventType::ThreadStart)],
    ),
    ("count", FieldRef::Count, Type::Int, LOST),
    ("reason", FieldRef::Reason, Type::Str, LOST),
    ("action", FieldRef::ActionName, Type::Str, ACTION),
    ("by", FieldRef::By, Type::Str, ACTION),
    ("target_pid", FieldRef::TargetPid, Type::Int, ACTION),
    ("detail", FieldRef::Detail, Type::Str, ACTION_OR_DIVERGENCE),
    ("access", FieldRef::Access, Type::Str, SMO),
    ("object", FieldRef::Object, Type::Str, SMO),
    ("path", FieldRef::Path, Type::Str, SMO),
    ("offset", FieldRef::Offset, Type::Int, SMO),
    ("len", FieldRef::Len, Type::Int, SMO),
    ("addr", FieldRef::Addr, Type::Int, SMO),
    ("ip", FieldRef::Ip, Type::Int, SMO),
    ("via", FieldRef::Via, Type::Str, SMO),
    ("via_syscall", FieldRef::ViaSyscall, Type::Str, SMO),
    ("private", FieldRef::Private, Type::Int, SMO),
    ("map_offset", FieldRef::MapOffset, Type::Int, SMO),
    ("map_len", FieldRef::MapLen, Type::Int, SMO),
    ("vmas", FieldRef::Vmas, Type::Int, SPACE),
    ("paths", FieldRef::Paths, Type::List, SPACE),
    ("what", FieldRef::What, Type::Str, DIVERGENCE),
    ("fields", FieldRef::Fields, Type::List, DIVERGENCE),
    ("variants", FieldRef::Variants, Type::Int, DIVERGENCE),
    (
        "diverged_pids",
        FieldRef::DivergedPids,
        Type::List,
        DIVERGENCE,
    ),
];

/// The parts of a signal's `fault`.
const FAULT_PARTS: &[(&str, FieldRef, Type)] = &[
    ("addr", FieldRef::FaultAddr, Type::Int),
    ("ip", FieldRef::FaultIp, Type::Int),
    ("access", FieldRef::FaultAccess, Type::Str),
];

/// The fields that belong to one kind of event (not a syscall argument), and the classes of
/// event that have each. `on` is widened to every class the listed ones cover.
fn special(name: &str) -> Option<(FieldRef, Type, &'static [EventClass])> {
    SPECIAL
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, f, t, on)| (*f, *t, *on))
}

/// Whether a field of event classes `on` is on events of class `c`.
fn has(on: &[EventClass], c: EventClass) -> bool {
    on.iter().any(|k| k.covers(c) || c.covers(*k))
}

/// Resolves a field every one of `classes` has (a join, a `distinct` count): a field some
/// events lack would leave them out silently.
pub fn resolve_on_every(
    classes: &[EventClass],
    path: &[&str],
) -> Result<(FieldRef, Type, Option<ArgKind>), String> {
    for c in classes {
        resolve(std::slice::from_ref(c), path)?;
    }
    resolve(classes, path)
}

/// Whether `name` is a value the `call` field can take: an x86_64 syscall name, or the
/// ABI-qualified name of a call with no x86_64 twin (`i386:mmap2`). `Err` says what to write.
pub fn check_call_name(name: &str) -> Result<(), String> {
    match SyscallId::from_name(name) {
        Some(id) => match id.canonical() {
            Some(s) if s.name() != name => Err(format!(
                "`call` names a syscall by its x86_64 meaning: `{name}` is `{}` here",
                s.name()
            )),
            _ => Ok(()),
        },
        None => Err(format!(
            "`{name}` is not a system call{}",
            vigil_event::suggest(name, all_names())
        )),
    }
}

/// Whether `name` is a value the `type` field can take (`Event::type_name`, from the event
/// model's table). `Err` says what to write.
pub fn check_type_name(name: &str) -> Result<(), String> {
    if EventType::from_name(name).is_some() {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not an event type (the `type` field is one of {}){}",
        EventType::names().collect::<Vec<_>>().join(", "),
        vigil_event::suggest(name, EventType::names())
    ))
}

/// Whether `name` is one of `names`, the values of field `field`. `Err` says what to write.
fn check_one_of(field: &str, name: &str, names: &[&str]) -> Result<(), String> {
    if names.contains(&name) {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a value of `{field}` (one of {}){}",
        names.join(", "),
        vigil_event::suggest(name, names.iter().copied())
    ))
}

/// The values of a shared-memory access's `access`.
pub fn check_access_name(name: &str) -> Result<(), String> {
    check_one_of("access", name, &["read", "write", "read_write"])
}

/// The values of a shared-memory access's `object`.
pub fn check_object_name(name: &str) -> Result<(), String> {
    let names = [SmoKind::File, SmoKind::SysvShm, SmoKind::SharedAnon].map(SmoKind::name);
    check_one_of("object", name, &names)
}

/// The values of a shared-memory access's `via`.
pub fn check_via_name(name: &str) -> Result<(), String> {
    check_one_of("via", name, &["fault", "step", "syscall"])
}

/// The values of a signal's `fault.access`.
pub fn check_fault_access_name(name: &str) -> Result<(), String> {
    let names = [
        FaultAccess::Unknown,
        FaultAccess::Read,
        FaultAccess::Write,
        FaultAccess::ReadWrite,
        FaultAccess::Execute,
    ]
    .map(FaultAccess::name);
    check_one_of("fault.access", name, &names)
}

/// Whether `name` is a value the `abi` field can take. `Err` says what to write.
pub fn check_abi_name(name: &str) -> Result<(), String> {
    match Abi::from_name(name) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`{name}` is not an ABI (x86_64, i386, x32, io_uring){}",
            vigil_event::suggest(name, ["x86_64", "i386", "x32", "io_uring"])
        )),
    }
}

/// Resolves `path` (after the binding) for events of `classes`. A binding that stands for an
/// alternative may name a field only some of its events have: on the others the field has no
/// value (null), so `(unlink|ftruncate):u` can test `u.path` and `u.fd.path`. A name that is a
/// field of one event type and an argument of a syscall in the same alternative is refused as
/// ambiguous. Errors say what is valid.
pub fn resolve(
    classes: &[EventClass],
    path: &[&str],
) -> Result<(FieldRef, Type, Option<ArgKind>), String> {
    let first = ALIASES
        .iter()
        .find(|(a, _)| *a == path[0])
        .map_or(path[0], |(_, n)| n);
    let only = |f: FieldRef, t: Type| -> Result<(FieldRef, Type, Option<ArgKind>), String> {
        if path.len() > 1 {
            Err(format!("`{}` has no part `{}`", path[0], path[1]))
        } else {
            Ok((f, t, None))
        }
    };
    let any = |pred: fn(EventClass) -> bool| classes.iter().any(|c| pred(*c));
    let any_syscall = any(EventClass::is_syscall);
    match first {
        "seq" => return only(FieldRef::Seq, Type::Int),
        "time" => return only(FieldRef::Time, Type::Int),
        "pid" => return only(FieldRef::Pid, Type::Int),
        "tid" => return only(FieldRef::Tid, Type::Int),
        "type" => return only(FieldRef::Type, Type::Str),
        "exe" => return only(FieldRef::Exe, Type::Str),
        "comm" => return only(FieldRef::Comm, Type::Str),
        "ppid" => return only(FieldRef::Ppid, Type::Int),
        "nr" if any_syscall => return only(FieldRef::Nr, Type::Int),
        "syscall" if any_syscall => return only(FieldRef::Syscall, Type::Str),
        "call" if any_syscall || classes.contains(&EventClass::Event(EventType::Divergence)) => {
            return only(FieldRef::Call, Type::Str);
        }
        "abi" if any_syscall => return only(FieldRef::Abi, Type::Str),
        "ret" if any(EventClass::is_exit) => return only(FieldRef::Ret, Type::Int),
        "errno" if any(EventClass::is_exit) => return only(FieldRef::Errno, Type::Str),
        "result" if any(EventClass::is_exit) => return only(FieldRef::Result, Type::Str),
        _ => {}
    }
    // A signal's fault, by its parts: `s.fault.addr`, `s.fault.ip`, `s.fault.access`.
    if first == "fault" && classes.iter().any(|c| has(SIGNAL, *c)) {
        let parts = || {
            FAULT_PARTS
                .iter()
                .map(|(p, ..)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(part) = path.get(1) else {
            return Err(format!("`fault` has parts: name one ({})", parts()));
        };
        let Some((_, f, t)) = FAULT_PARTS.iter().find(|(p, ..)| p == part) else {
            return Err(format!(
                "`fault` has no part `{part}` (its parts: {}){}",
                parts(),
                vigil_event::suggest(part, FAULT_PARTS.iter().map(|(p, ..)| *p))
            ));
        };
        if let Some(more) = path.get(2) {
            return Err(format!("`fault.{part}` has no part `{more}`"));
        }
        return Ok((*f, *t, None));
    }
    if let Some((f, t, on)) = special(first)
        && classes.iter().any(|c| has(on, *c))
    {
        let all = classes.iter().all(|c| has(on, *c));
        if all || arg_kinds(classes, first).is_empty() {
            return only(f, t);
        }
        return Err(format!(
            "`{first}` is a field of {} and an argument of a syscall in this alternative: bind them in separate elements",
            on.iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    if any_syscall {
        let kinds = arg_kinds(classes, first);
        if let (Some(&kind), Some(name)) = (kinds.first(), static_arg_name(first)) {
            let same = kinds.iter().all(|k| kind_type(*k) == kind_type(kind));
            let sub = match path.get(1).copied() {
                None => Sub::None,
                Some(s) => {
                    let fd_like = matches!(kind, ArgKind::Fd | ArgKind::DirFd);
                    let addr_like = matches!(kind, ArgKind::SockAddr(_) | ArgKind::SockAddrOut);
                    let sub = match s {
                        "path" if fd_like => Sub::Path,
                        "kind" if fd_like => Sub::Kind,
                        "ino" if fd_like => Sub::Ino,
                        "remote" if fd_like => Sub::Remote,
                        "local" if fd_like => Sub::Local,
                        "port" if fd_like || addr_like => Sub::Port,
                        "ip" if fd_like || addr_like => Sub::Ip,
                        _ => {
                            let valid = if fd_like {
                                "path, kind, ino, remote, local, port, ip"
                            } else if addr_like {
                                "port, ip"
                            } else {
                                "none"
                            };
                            return Err(format!(
                                "`{first}` has no part `{s}` (its parts: {valid})"
                            ));
                        }
                    };
                    if path.len() > 2 {
                        return Err(format!("`{first}.{s}` has no part `{}`", path[2]));
                    }
                    sub
                }
            };
            let t = match sub {
                Sub::None if same => kind_type(kind),
                Sub::None => Type::Any,
                Sub::Ino | Sub::Port => Type::Int,
                _ => Type::Str,
            };
            return Ok((
                FieldRef::Arg(name, sub),
                t,
                (sub == Sub::None).then_some(kind),
            ));
        }
    }
    let names = field_names(classes);
    let hint = vigil_event::suggest(path[0], names.iter().map(String::as_str));
    let on: Vec<String> = classes.iter().map(|c| c.name()).collect();
    Err(format!(
        "no field `{}` on {}{hint}",
        path[0],
        on.join(" | ")
    ))
}

/// The engine's view of live processes, for `exe`, `comm` and `ppid` of syscall events.
#[derive(Default)]
pub struct ProcTable {
    procs: FxHashMap<u32, (Str, u32)>,
}

impl ProcTable {
    pub fn update(&mut self, ev: &Event) {
        match &ev.kind {
            EventKind::ProcessStart(p) => {
                self.procs.insert(ev.pid, (p.exe.clone(), p.ppid));
            }
            EventKind::ProcessExec(p) => {
                let ppid = self.procs.get(&ev.pid).map_or(0, |e| e.1);
                self.procs.insert(ev.pid, (p.exe.clone(), ppid));
            }
            EventKind::ProcessExit(_) => {
                self.procs.remove(&ev.pid);
            }
            _ => {}
        }
    }
}

fn comm_of(exe: &Str) -> Str {
    let b = exe.as_bytes();
    Str::new(&b[b.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1)..])
}

fn fd_part(v: &Value, sub: Sub) -> Val {
    let v = v.plain();
    let Value::Fd(fd) = v else {
        return match (v, sub) {
            (Value::Addr(a), Sub::None) => Val::Str(Str::from(a.to_string())),
            (Value::Addr(a), Sub::Port) => a.port().map_or(Val::Null, |p| Val::Int(p as i64)),
            (Value::Addr(a), Sub::Ip) => match &**a {
                SockAddr::V4(x) => Val::Str(Str::from(x.ip().to_string())),
                SockAddr::V6(x) => Val::Str(Str::from(x.ip().to_string())),
                _ => Val::Null,
            },
            (v, Sub::None) => plain(v),
            _ => Val::Null,
        };
    };
    if sub == Sub::None {
        return Val::Int(fd.num as i64);
    }
    let Some(t) = fd.target.as_deref() else {
        return Val::Null;
    };
    let sock = |local: bool| match t {
        Target::Socket(s) => {
            if local {
                s.local.as_ref()
            } else {
                s.remote.as_ref()
            }
        }
        _ => None,
    };
    match sub {
        Sub::Path => t.path().map_or(Val::Null, |p| Val::Str(p.clone())),
        Sub::Kind => Val::Str(Str::from(t.kind_name())),
        Sub::Ino => Val::Int(t.ino() as i64),
        Sub::Remote => sock(false).map_or(Val::Null, |a| Val::Str(Str::from(a.to_string()))),
        Sub::Local => sock(true).map_or(Val::Null, |a| Val::Str(Str::from(a.to_string()))),
        Sub::Port => sock(false)
            .and_then(|a| a.port())
            .map_or(Val::Null, |p| Val::Int(p as i64)),
        Sub::Ip => match sock(false) {
            Some(SockAddr::V4(x)) => Val::Str(Str::from(x.ip().to_string())),
            Some(SockAddr::V6(x)) => Val::Str(Str::from(x.ip().to_string())),
            _ => Val::Null,
        },
        Sub::None => Val::Null,
    }
}

/// A `Str` of a static name (a syscall, an event type), made once: conditions on `call` and
/// `type` are evaluated for many events, and a new string each time showed in the engine's time.
fn interned(name: &'static str) -> Str {
    thread_local! {
        static NAMES: std::cell::RefCell<FxHashMap<&'static str, Str>> = Default::default();
    }
    NAMES.with(|n| {
        n.borrow_mut()
            .entry(name)
            .or_insert_with(|| Str::from(name))
            .clone()
    })
}

/// `ECONNREFUSED`, or the number when the errno has no name.
fn errno_name(e: i32) -> Str {
    match syscalls::Errno::new(e).name() {
        Some(n) => Str::from(n),
        None => Str::from(e.to_string()),
    }
}

fn plain(v: &Value) -> Val {
    match v.plain() {
        Value::Absent => Val::Null,
        Value::Unreadable(a) => Val::Int(*a as i64),
        Value::Int(i) => Val::Int(*i),
        Value::Uint(u) => Val::Int(*u as i64),
        Value::Str(s) => Val::Str(s.clone()),
        Value::Fd(fd) => Val::Int(fd.num as i64),
        Value::List(l) => Val::List(l.clone()),
        Value::Addr(a) => Val::Str(Str::from(a.to_string())),
        Value::Bytes(b) => Val::Str(Str::new(b)),
        Value::Range(r) => Val::Int(r.start as i64),
        // plain() never returns a wrapper.
        Value::Resolved(_) | Value::Cut(_) => Val::Null,
    }
}

fn status(s: ExitStatus) -> (Val, Val) {
    match s {
        ExitStatus::Code(c) => (Val::Int(c as i64), Val::Null),
        ExitStatus::Signal { signal, .. } => (Val::Null, Val::Int(signal as i64)),
    }
}

/// Reads a field from an event; Null when the event does not have it.
pub fn get(ev: &Event, f: FieldRef, procs: &ProcTable) -> Val {
    use EventKind as K;
    match f {
        FieldRef::Seq => Val::Int(ev.seq as i64),
        FieldRef::Time => Val::Int(ev.time_ns as i64),
        FieldRef::Pid => Val::Int(ev.pid as i64),
        FieldRef::Tid => Val::Int(ev.tid as i64),
        FieldRef::Type => Val::Str(interned(ev.type_name())),
        FieldRef::Exe | FieldRef::Comm => {
            let exe = match &ev.kind {
                K::ProcessStart(p) => Some(p.exe.clone()),
                K::ProcessExec(p) => Some(p.exe.clone()),
                _ => procs.procs.get(&ev.pid).map(|e| e.0.clone()),
            };
            match (exe, f) {
                (Some(e), FieldRef::Comm) => Val::Str(comm_of(&e)),
                (Some(e), _) => Val::Str(e),
                (None, _) => Val::Null,
            }
        }
        FieldRef::Ppid => match &ev.kind {
            K::ProcessStart(p) => Val::Int(p.ppid as i64),
            _ => procs
                .procs
                .get(&ev.pid)
                .map_or(Val::Null, |e| Val::Int(e.1 as i64)),
        },
        FieldRef::Nr => ev.syscall().map_or(Val::Null, |c| Val::Int(c.nr as i64)),
        FieldRef::Syscall => ev
            .syscall()
            .map_or(Val::Null, |c| Val::Str(Str::from(c.to_string()))),
        FieldRef::Call => match &ev.kind {
            K::Divergence(d) => d.call,
            _ => ev.syscall(),
        }
        .map_or(Val::Null, |c| {
            Val::Str(match c.canonical() {
                Some(s) => interned(s.name()),
                None => Str::from(c.to_string()),
            })
        }),
        FieldRef::Abi => ev
            .syscall()
            .map_or(Val::Null, |c| Val::Str(interned(c.abi.name()))),
        FieldRef::Result => match &ev.kind {
            K::SyscallExit(x) => Val::Str(match x.errno() {
                Some(e) => errno_name(e),
                None => interned("ok"),
            }),
            _ => Val::Null,
        },
        FieldRef::OpenForWrite => Val::Int(ev.open_intent().is_some_and(|i| i.for_write()) as i64),
        FieldRef::Ret => match &ev.kind {
            K::SyscallExit(x) => Val::Int(x.ret),
            _ => Val::Null,
        },
        FieldRef::Errno => match &ev.kind {
            K::SyscallExit(x) => x.errno().map_or(Val::Null, |e| Val::Str(errno_name(e))),
            _ => Val::Null,
        },
        FieldRef::Argv => match &ev.kind {
            K::ProcessStart(p) => Val::List(p.argv.clone()),
            K::ProcessExec(p) => Val::List(p.argv.clone()),
            _ => Val::Null,
        },
        FieldRef::Uid | FieldRef::Euid | FieldRef::Gid | FieldRef::Egid => {
            let c = match &ev.kind {
                K::ProcessStart(p) => &p.creds,
                K::ProcessExec(p) => &p.creds,
                K::Signal(s) if f == FieldRef::Uid => return Val::Int(s.sender_uid as i64),
                _ => return Val::Null,
            };
            Val::Int(match f {
                FieldRef::Uid => c.uid,
                FieldRef::Euid => c.euid,
                FieldRef::Gid => c.gid,
                _ => c.egid,
            } as i64)
        }
        FieldRef::Dev | FieldRef::Ino => match &ev.kind {
            K::ProcessExec(p) => Val::Int(if f == FieldRef::Dev { p.dev } else { p.ino } as i64),
            K::SmoAccess(a) => Val::Int(if f == FieldRef::Dev {
                a.object.dev
            } else {
                a.object.ino
            } as i64),
            _ => Val::Null,
        },
        FieldRef::ExitCode | FieldRef::Signal => {
            let (code, sig) = match &ev.kind {
                K::ProcessExit(p) => status(p.status),
                K::ThreadExit(t) => status(t.status),
                K::Signal(s) => (Val::Null, Val::Int(s.signal as i64)),
                _ => (Val::Null, Val::Null),
            };
            if f == FieldRef::ExitCode { code } else { sig }
        }
        FieldRef::Code => match &ev.kind {
            K::Signal(s) => Val::Int(s.code as i64),
            _ => Val::Null,
        },
        FieldRef::SenderPid => match &ev.kind {
            K::Signal(s) => Val::Int(s.sender_pid as i64),
            _ => Val::Null,
        },
        FieldRef::CreatorTid => match &ev.kind {
            K::ThreadStart(t) => Val::Int(t.creator_tid as i64),
            _ => Val::Null,
        },
        FieldRef::Count | FieldRef::Reason => match &ev.kind {
            K::Lost(l) if f == FieldRef::Count => Val::Int(l.count as i64),
            K::Lost(l) => Val::Str(l.reason.clone()),
            _ => Val::Null,
        },
        FieldRef::ActionName | FieldRef::By | FieldRef::TargetPid | FieldRef::Detail => {
            match &ev.kind {
                K::Action(a) => match f {
                    FieldRef::ActionName => Val::Str(a.action.clone()),
                    FieldRef::By => Val::Str(a.by.clone()),
                    FieldRef::TargetPid => Val::Int(a.target_pid as i64),
                    _ => Val::Str(a.detail.clone()),
                },
                K::Divergence(d) if f == FieldRef::Detail => Val::Str(d.detail.clone()),
                _ => Val::Null,
            }
        }
        FieldRef::Access
        | FieldRef::Object
        | FieldRef::Path
        | FieldRef::Offset
        | FieldRef::Len
        | FieldRef::Addr
        | FieldRef::Ip
        | FieldRef::Via
        | FieldRef::ViaSyscall
        | FieldRef::Private
        | FieldRef::MapOffset
        | FieldRef::MapLen => {
            let K::SmoAccess(a) = &ev.kind else {
                return Val::Null;
            };
            match f {
                FieldRef::Access => Val::Str(interned(a.access.name())),
                FieldRef::Object => Val::Str(interned(a.object.kind.name())),
                FieldRef::Path => Val::Str(a.object.path.clone()),
                FieldRef::Offset => Val::Int(a.offset as i64),
                FieldRef::Len => Val::Int(a.len as i64),
                FieldRef::Addr => Val::Int(a.addr as i64),
                FieldRef::Ip => Val::Int(a.ip as i64),
                FieldRef::Private => Val::Int(a.private as i64),
                FieldRef::MapOffset => Val::Int(a.map_offset as i64),
                FieldRef::MapLen => Val::Int(a.map_len as i64),
                FieldRef::Via => Val::Str(interned(a.via.name())),
                _ => match a.via {
                    SmoVia::Syscall(c) => Val::Str(match c.canonical() {
                        Some(s) => interned(s.name()),
                        None => Str::from(c.to_string()),
                    }),
                    _ => Val::Null,
                },
            }
        }
        FieldRef::FaultAddr | FieldRef::FaultIp | FieldRef::FaultAccess => {
            let K::Signal(s) = &ev.kind else {
                return Val::Null;
            };
            match (s.fault, f) {
                (None, _) => Val::Null,
                (Some(x), FieldRef::FaultAddr) => Val::Int(x.addr as i64),
                (Some(x), FieldRef::FaultIp) => Val::Int(x.ip as i64),
                (Some(x), _) => Val::Str(interned(x.access.name())),
            }
        }
        FieldRef::Vmas | FieldRef::Paths => {
            let K::AddressSpace(s) = &ev.kind else {
                return Val::Null;
            };
            if f == FieldRef::Vmas {
                return Val::Int(s.vmas.len() as i64);
            }
            // Each file once, in the order mapped: a set, not a scan of the list per mapping.
            let mut seen = rustc_hash::FxHashSet::default();
            let paths: Vec<Str> = s
                .vmas
                .iter()
                .filter(|v| v.ino != 0 && seen.insert(&v.path))
                .map(|v| v.path.clone())
                .collect();
            Val::List(paths.into())
        }
        FieldRef::What | FieldRef::Fields | FieldRef::Variants | FieldRef::DivergedPids => {
            let K::Divergence(d) = &ev.kind else {
                return Val::Null;
            };
            match f {
                FieldRef::What => Val::Str(d.what.clone()),
                FieldRef::Fields => Val::List(d.fields.clone()),
                FieldRef::Variants => Val::Int(d.variants.len() as i64),
                _ => Val::List(
                    d.variants
                        .iter()
                        .filter(|v| v.diverged)
                        .map(|v| Str::from(v.pid.to_string()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
            }
        }
        FieldRef::ArgAs(name, kind) => {
            let Some((sig, args)) = ev.args() else {
                return Val::Null;
            };
            match sig.field_index(name) {
                Some(i) if sig.field(i).is_some_and(|a| a.kind == kind) => {
                    args.get(i).map_or(Val::Null, |v| fd_part(v, Sub::None))
                }
                _ => Val::Null,
            }
        }
        FieldRef::Arg(name, sub) => {
            let Some((sig, args)) = ev.args() else {
                return Val::Null;
            };
            match sig.field_index(name).and_then(|i| args.get(i)) {
                Some(v) => fd_part(v, sub),
                None => Val::Null,
            }
        }
    }
}
