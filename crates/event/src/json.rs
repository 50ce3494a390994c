//! The JSON form of an event (one object per line in `vigil export`; read back by `vigil import`).
//! docs/event-schema.md documents it. `from_json(to_json(e)) == e` for every event.

use crate::Str;
use crate::event::*;
use crate::flags;
use crate::memory::{
    AddressSpace, Divergence, FaultAccess, MemAccess, SignalFault, SmoAccess, SmoKind, SmoObject,
    SmoVia, VariantState, Vma,
};
use crate::syscall::{Abi, ArgKind, SyscallId};
use crate::value::{AddrRange, Cut, Fd, Resolution, Resolved, SockAddr, Socket, Target, Value};
use serde_json::{Map, Value as J, json};
use std::net::{SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("field `{field}`: {message}")]
pub struct JsonError {
    pub field: String,
    pub message: String,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError {
        field: field.to_string(),
        message: message.into(),
    })
}

/// A string as the export writes it: a JSON string when it is valid UTF-8, else
/// `{"bytes_hex": "..."}` (docs/event-schema.md). Every JSON vigil writes uses this form.
pub fn str_json(s: &Str) -> J {
    match s.as_str() {
        Some(t) => J::String(t.to_string()),
        None => json!({ "bytes_hex": hex(s.as_bytes()) }),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads hex digit pairs. Byte by byte: a pair that is not two ASCII hex digits is an error,
/// whatever it holds (slicing the text two bytes at a time cut a multi-byte character, a
/// panic; `u8::from_str_radix` took a sign, "+f").
fn unhex(field: &str, s: &str) -> Result<Vec<u8>, JsonError> {
    if !s.len().is_multiple_of(2) {
        return err(field, "hex string of odd length");
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
            _ => err(field, "bad hex digit"),
        })
        .collect()
}

fn addr_json(a: &SockAddr) -> J {
    match a {
        SockAddr::V4(v) => json!({ "inet": v.to_string() }),
        SockAddr::V6(v) if v.flowinfo() != 0 => {
            json!({ "inet6": v.to_string(), "flowinfo": v.flowinfo() })
        }
        SockAddr::V6(v) => json!({ "inet6": v.to_string() }),
        SockAddr::Unix(p) => json!({ "unix": str_json(p) }),
        SockAddr::Netlink { pid, groups } => json!({ "netlink": { "pid": pid, "groups": groups } }),
        SockAddr::Other { family, data } => json!({ "family": family, "data_hex": hex(data) }),
    }
}

fn target_json(t: &Target) -> J {
    match t {
        Target::File { path, dev, ino } => {
            json!({"kind": "file", "path": str_json(path), "dev": dev, "ino": ino})
        }
        Target::Pipe { ino } => json!({"kind": "pipe", "ino": ino}),
        Target::Socket(s) => {
            let mut m = Map::new();
            m.insert("kind".into(), "socket".into());
            m.insert("ino".into(), s.ino.into());
            m.insert("family".into(), s.family.into());
            m.insert("type".into(), s.sock_type.into());
            if let Some(a) = &s.local {
                m.insert("local".into(), addr_json(a));
            }
            if let Some(a) = &s.remote {
                m.insert("remote".into(), addr_json(a));
            }
            J::Object(m)
        }
        Target::Other { label, ino } => {
            json!({"kind": "other", "label": str_json(label), "ino": ino})
        }
    }
}

/// One value; flag kinds are written by name so a reader need not know the bits. A resolved
/// or cut value is written as its plain value (what the kernel used, what was kept); its
/// given form and cut marker go beside it (see `syscall_json`).
pub fn value_json(kind: ArgKind, v: &Value) -> J {
    match v.plain() {
        Value::Absent => J::Null,
        Value::Unreadable(a) => json!({ "unreadable": a }),
        Value::Int(i) if kind == ArgKind::Signal && (0..=64).contains(i) => {
            flags::signal_name(*i).into()
        }
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => match flags::render(kind, *u) {
            Some(s) if kind != ArgKind::Mode => s.into(),
            Some(s) => s.into(),
            None => (*u).into(),
        },
        Value::Str(s) => str_json(s),
        Value::Fd(fd) => {
            let mut m = Map::new();
            m.insert("fd".into(), fd.num.into());
            if let Some(t) = &fd.target {
                m.insert("target".into(), target_json(t));
            }
            J::Object(m)
        }
        Value::List(items) => J::Array(items.iter().map(str_json).collect()),
        Value::Addr(a) => addr_json(a),
        Value::Bytes(b) => json!({ "hex": hex(b) }),
        Value::Range(r) => json!({ "range": { "start": r.start, "len": r.len } }),
        // plain() never returns a wrapper.
        Value::Resolved(_) | Value::Cut(_) => J::Null,
    }
}

/// Suffixes of the keys that sit beside an argument: `path_given`, `path_resolution`,
/// `argv_cut`.
const GIVEN: &str = "_given";
const RESOLUTION: &str = "_resolution";
const CUT: &str = "_cut";

/// The keys beside an argument that say what was given, how sure vigil is and what was cut.
fn annotations(a: &mut Map<String, J>, name: &str, kind: ArgKind, v: &Value) {
    if let Some(g) = v.given() {
        a.insert(format!("{name}{GIVEN}"), value_json(kind, g));
    }
    let how = v.resolution();
    if how != Resolution::Exact {
        a.insert(format!("{name}{RESOLUTION}"), how.name().into());
    }
    if let Some(c) = v.cut() {
        a.insert(
            format!("{name}{CUT}"),
            json!({"items": c.items, "bytes": c.bytes, "exact": c.exact}),
        );
    }
}

fn status_json(m: &mut Map<String, J>, s: ExitStatus) {
    match s {
        ExitStatus::Code(c) => {
            m.insert("exit_code".into(), c.into());
        }
        ExitStatus::Signal {
            signal,
            core_dumped,
        } => {
            m.insert("signal".into(), flags::signal_name(signal as i64).into());
            m.insert("core_dumped".into(), core_dumped.into());
        }
    }
}

fn creds_json(m: &mut Map<String, J>, c: &Creds) {
    m.insert("uid".into(), c.uid.into());
    m.insert("euid".into(), c.euid.into());
    m.insert("gid".into(), c.gid.into());
    m.insert("egid".into(), c.egid.into());
}

pub fn to_json(ev: &Event) -> J {
    let mut m = Map::new();
    m.insert("seq".into(), ev.seq.into());
    m.insert("time_ns".into(), ev.time_ns.into());
    m.insert("pid".into(), ev.pid.into());
    m.insert("tid".into(), ev.tid.into());
    m.insert("type".into(), ev.type_name().into());
    match &ev.kind {
        EventKind::SyscallEntry(SyscallEntry { call, args }) => {
            syscall_json(&mut m, *call, args);
        }
        EventKind::SyscallExit(x) => {
            syscall_json(&mut m, x.call, &x.args);
            m.insert("entry_seq".into(), x.entry_seq.into());
            m.insert("ret".into(), x.ret.into());
            if let Some(e) = x.errno() {
                let name = syscalls::Errno::new(e)
                    .name()
                    .map(str::to_string)
                    .unwrap_or(e.to_string());
                m.insert("errno".into(), name.into());
            }
        }
        EventKind::ProcessStart(p) => {
            m.insert("ppid".into(), p.ppid.into());
            m.insert("exe".into(), str_json(&p.exe));
            m.insert(
                "argv".into(),
                J::Array(p.argv.iter().map(str_json).collect()),
            );
            creds_json(&mut m, &p.creds);
            m.insert("clone_flags".into(), p.clone_flags.into());
        }
        EventKind::ProcessExec(p) => {
            m.insert("exe".into(), str_json(&p.exe));
            m.insert(
                "argv".into(),
                J::Array(p.argv.iter().map(str_json).collect()),
            );
            creds_json(&mut m, &p.creds);
            m.insert("dev".into(), p.dev.into());
            m.insert("ino".into(), p.ino.into());
        }
        EventKind::ProcessExit(p) => status_json(&mut m, p.status),
        EventKind::ThreadExit(t) => status_json(&mut m, t.status),
        EventKind::ThreadStart(t) => {
            m.insert("creator_tid".into(), t.creator_tid.into());
        }
        EventKind::Signal(s) => {
            m.insert("signal".into(), flags::signal_name(s.signal as i64).into());
            m.insert("code".into(), s.code.into());
            m.insert("sender_pid".into(), s.sender_pid.into());
            m.insert("sender_uid".into(), s.sender_uid.into());
            if let Some(f) = s.fault {
                m.insert(
                    "fault".into(),
                    json!({"addr": f.addr, "ip": f.ip, "access": f.access.name()}),
                );
            }
        }
        EventKind::Lost(l) => {
            m.insert("count".into(), l.count.into());
            m.insert("reason".into(), str_json(&l.reason));
        }
        EventKind::Action(a) => {
            m.insert("action".into(), str_json(&a.action));
            m.insert("by".into(), str_json(&a.by));
            m.insert("target_pid".into(), a.target_pid.into());
            m.insert("detail".into(), str_json(&a.detail));
        }
        EventKind::SmoAccess(a) => smo_json(&mut m, a),
        EventKind::AddressSpace(s) => {
            m.insert(
                "vmas".into(),
                J::Array(s.vmas.iter().map(vma_json).collect()),
            );
        }
        EventKind::Divergence(d) => divergence_json(&mut m, d),
    }
    J::Object(m)
}

fn smo_json(m: &mut Map<String, J>, a: &SmoAccess) {
    let o = &a.object;
    m.insert(
        "object".into(),
        json!({"kind": o.kind.name(), "dev": o.dev, "ino": o.ino, "path": str_json(&o.path)}),
    );
    m.insert("offset".into(), a.offset.into());
    m.insert("len".into(), a.len.into());
    m.insert("addr".into(), a.addr.into());
    m.insert("ip".into(), a.ip.into());
    m.insert("via".into(), a.via.name().into());
    if let SmoVia::Syscall(c) = a.via {
        call_json(m, "via_", c);
    }
    if a.private {
        m.insert("private".into(), true.into());
    }
    m.insert("map_offset".into(), a.map_offset.into());
    m.insert("map_len".into(), a.map_len.into());
}

/// `{prefix}syscall` (and `{prefix}abi` beside it for another ABI than x86_64, and
/// `{prefix}nr`).
fn call_json(m: &mut Map<String, J>, prefix: &str, call: SyscallId) {
    m.insert(format!("{prefix}syscall"), call.to_string().into());
    if call.abi != Abi::X86_64 {
        m.insert(format!("{prefix}abi"), call.abi.name().into());
    }
    m.insert(format!("{prefix}nr"), call.nr.into());
}

fn vma_json(v: &Vma) -> J {
    json!({
        "start": v.start,
        "end": v.end,
        "perms": v.perms(),
        "offset": v.offset,
        "dev": v.dev,
        "ino": v.ino,
        "path": str_json(&v.path),
    })
}

fn divergence_json(m: &mut Map<String, J>, d: &Divergence) {
    m.insert("what".into(), str_json(&d.what));
    if let Some(c) = d.call {
        call_json(m, "", c);
    }
    m.insert(
        "fields".into(),
        J::Array(d.fields.iter().map(str_json).collect()),
    );
    m.insert("detail".into(), str_json(&d.detail));
    let variants = d
        .variants
        .iter()
        .map(|v| {
            let mut o = Map::new();
            o.insert("index".into(), v.index.into());
            o.insert("pid".into(), v.pid.into());
            o.insert("tid".into(), v.tid.into());
            o.insert("diverged".into(), v.diverged.into());
            if let Some(c) = v.call {
                syscall_json(&mut o, c, &v.args);
            }
            o.insert("detail".into(), str_json(&v.detail));
            J::Object(o)
        })
        .collect();
    m.insert("variants".into(), J::Array(variants));
}

fn syscall_json(m: &mut Map<String, J>, call: SyscallId, args: &Args) {
    call_json(m, "", call);
    let sig = call.signature();
    let mut a = Map::new();
    for (i, v) in args.iter().enumerate() {
        if *v == Value::Absent {
            continue;
        }
        if let Some(spec) = sig.field(i) {
            a.insert(spec.name.into(), value_json(spec.kind, v));
            annotations(&mut a, spec.name, spec.kind, v);
        }
    }
    m.insert("args".into(), J::Object(a));
}

// ---- reading back ----

struct Obj<'a> {
    m: &'a Map<String, J>,
    ctx: &'a str,
}

impl<'a> Obj<'a> {
    fn name(&self, k: &str) -> String {
        if self.ctx.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.ctx)
        }
    }
    fn get(&self, k: &str) -> Result<&'a J, JsonError> {
        match self.m.get(k) {
            Some(v) => Ok(v),
            None => err(&self.name(k), "missing"),
        }
    }
    fn u64(&self, k: &str) -> Result<u64, JsonError> {
        self.get(k)?
            .as_u64()
            .map_or_else(|| err(&self.name(k), "expected an unsigned integer"), Ok)
    }
    fn u64_or(&self, k: &str, d: u64) -> Result<u64, JsonError> {
        if self.m.contains_key(k) {
            self.u64(k)
        } else {
            Ok(d)
        }
    }
    fn u32(&self, k: &str) -> Result<u32, JsonError> {
        u32::try_from(self.u64(k)?).or_else(|_| err(&self.name(k), "out of range for 32 bits"))
    }
    fn u32_or(&self, k: &str, d: u32) -> Result<u32, JsonError> {
        if self.m.contains_key(k) {
            self.u32(k)
        } else {
            Ok(d)
        }
    }
    fn i64(&self, k: &str) -> Result<i64, JsonError> {
        self.get(k)?
            .as_i64()
            .map_or_else(|| err(&self.name(k), "expected an integer"), Ok)
    }
    fn i32(&self, k: &str) -> Result<i32, JsonError> {
        i32::try_from(self.i64(k)?).or_else(|_| err(&self.name(k), "out of range for 32 bits"))
    }
    fn u16_or(&self, k: &str, d: u16) -> Result<u16, JsonError> {
        u16::try_from(self.u32_or(k, u32::from(d))?)
            .or_else(|_| err(&self.name(k), "out of range for 16 bits"))
    }
    fn bool_or(&self, k: &str, d: bool) -> Result<bool, JsonError> {
        match self.m.get(k) {
            None => Ok(d),
            Some(J::Bool(b)) => Ok(*b),
            Some(_) => err(&self.name(k), "expected true or false"),
        }
    }
    fn i32_or(&self, k: &str, d: i32) -> Result<i32, JsonError> {
        if self.m.contains_key(k) {
            self.i32(k)
        } else {
            Ok(d)
        }
    }
    fn str(&self, k: &str) -> Result<Str, JsonError> {
        str_from(&self.name(k), self.get(k)?)
    }
    fn str_or_empty(&self, k: &str) -> Result<Str, JsonError> {
        if self.m.contains_key(k) {
            self.str(k)
        } else {
            Ok(Str::from(""))
        }
    }
    fn list(&self, k: &str) -> Result<Arc<[Str]>, JsonError> {
        match self.m.get(k) {
            None => Ok(Arc::from(Vec::new())),
            Some(J::Array(a)) => {
                let field = self.name(k);
                a.iter()
                    .map(|v| str_from(&field, v))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arc::from)
            }
            Some(_) => err(&self.name(k), "expected an array of strings"),
        }
    }
}

fn obj<'a>(field: &'a str, v: &'a J) -> Result<Obj<'a>, JsonError> {
    match v {
        J::Object(m) => Ok(Obj { m, ctx: field }),
        _ => err(field, "expected an object"),
    }
}

fn str_from(field: &str, v: &J) -> Result<Str, JsonError> {
    match v {
        J::String(s) => Ok(Str::from(s.as_str())),
        J::Object(m) => match m.get("bytes_hex") {
            Some(J::String(h)) => Ok(Str::from(unhex(field, h)?)),
            _ => err(field, "expected a string or {\"bytes_hex\": ...}"),
        },
        _ => err(field, "expected a string"),
    }
}

fn addr_from(field: &str, v: &J) -> Result<SockAddr, JsonError> {
    let o = obj(field, v)?;
    if let Some(J::String(s)) = o.m.get("inet") {
        return s
            .parse::<SocketAddrV4>()
            .map(SockAddr::V4)
            .or_else(|_| err(field, "bad IPv4 address"));
    }
    if let Some(J::String(s)) = o.m.get("inet6") {
        let mut a = s
            .parse::<SocketAddrV6>()
            .or_else(|_| err(field, "bad IPv6 address"))?;
        a.set_flowinfo(o.u32_or("flowinfo", 0)?);
        return Ok(SockAddr::V6(a));
    }
    if o.m.contains_key("unix") {
        return Ok(SockAddr::Unix(o.str("unix")?));
    }
    if let Some(n) = o.m.get("netlink") {
        let n = obj(field, n)?;
        return Ok(SockAddr::Netlink {
            pid: n.u32("pid")?,
            groups: n.u32("groups")?,
        });
    }
    if let Some(J::String(h)) = o.m.get("data_hex") {
        let family =
            u16::try_from(o.u64("family")?).or_else(|_| err(field, "family out of range"))?;
        return Ok(SockAddr::Other {
            family,
            data: Arc::from(unhex(field, h)?),
        });
    }
    err(
        field,
        "unknown address form (expected inet, inet6, unix, netlink or family+data_hex)",
    )
}

fn target_from(field: &str, v: &J) -> Result<Target, JsonError> {
    let o = obj(field, v)?;
    let kind = o.get("kind")?.as_str().unwrap_or_default();
    Ok(match kind {
        "file" => Target::File {
            path: o.str("path")?,
            dev: o.u64_or("dev", 0)?,
            ino: o.u64_or("ino", 0)?,
        },
        "pipe" => Target::Pipe { ino: o.u64("ino")? },
        "socket" => Target::Socket(Socket {
            ino: o.u64_or("ino", 0)?,
            family: o.u16_or("family", 0)?,
            sock_type: o.u16_or("type", 0)?,
            local: o
                .m
                .get("local")
                .map(|a| addr_from(&o.name("local"), a))
                .transpose()?,
            remote: o
                .m
                .get("remote")
                .map(|a| addr_from(&o.name("remote"), a))
                .transpose()?,
        }),
        "other" => Target::Other {
            label: o.str("label")?,
            ino: o.u64_or("ino", 0)?,
        },
        k => {
            return err(
                &o.name("kind"),
                format!("unknown target kind `{k}` (file, pipe, socket, other)"),
            );
        }
    })
}

/// Reads one value of the given kind.
pub fn value_from(field: &str, kind: ArgKind, v: &J) -> Result<Value, JsonError> {
    if v.is_null() {
        return Ok(Value::Absent);
    }
    if let J::Object(m) = v
        && let Some(a) = m.get("unreadable")
    {
        return a
            .as_u64()
            .map(Value::Unreadable)
            .map_or_else(|| err(field, "bad unreadable address"), Ok);
    }
    if let J::Object(m) = v
        && m.len() == 1
    {
        if let Some(J::String(h)) = m.get("hex") {
            return Ok(Value::Bytes(Arc::from(unhex(field, h)?)));
        }
        if let Some(r) = m.get("range") {
            let r = obj(field, r)?;
            return Ok(Value::Range(AddrRange {
                start: r.u64("start")?,
                len: r.u64("len")?,
            }));
        }
    }
    Ok(match kind {
        ArgKind::Fd | ArgKind::DirFd => match v {
            J::Number(n) => match n.as_i64().map(i32::try_from) {
                Some(Ok(fd)) => Value::Fd(Fd::new(fd, None)),
                Some(Err(_)) => return err(field, format!("fd {n} is out of range for 32 bits")),
                None => return err(field, format!("fd {n} is not an integer")),
            },
            _ => {
                let o = obj(field, v)?;
                let target =
                    o.m.get("target")
                        .map(|t| target_from(&o.name("target"), t))
                        .transpose()?;
                Value::Fd(Fd::new(o.i32("fd")?, target.map(Arc::new)))
            }
        },
        k if k.is_path() || k == ArgKind::Str => Value::Str(str_from(field, v)?),
        ArgKind::Argv => match v {
            J::Array(a) => Value::List(
                a.iter()
                    .map(|x| str_from(field, x))
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
            ),
            _ => return err(field, "expected an array of strings"),
        },
        ArgKind::SockAddr(_) | ArgKind::SockAddrOut => Value::Addr(Arc::new(addr_from(field, v)?)),
        ArgKind::Int | ArgKind::Signal | ArgKind::Pid => match v {
            J::Number(n) => Value::Int(
                n.as_i64()
                    .map_or_else(|| err(field, "expected an integer"), Ok)?,
            ),
            J::String(s) => match flags::signal_from_name(s) {
                Some(sig) if kind == ArgKind::Signal => Value::Int(sig),
                _ => return err(field, format!("`{s}` is not a signal name")),
            },
            _ => return err(field, "expected an integer"),
        },
        _ => match v {
            J::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Value::Uint(u),
                (None, Some(i)) => Value::Uint(i as u64),
                _ => return err(field, "expected an integer"),
            },
            J::String(s) => match flags::parse(kind, s) {
                Some(u) => Value::Uint(u),
                None => return err(field, format!("cannot read `{s}` as {kind:?}")),
            },
            _ => return err(field, "expected a number or flag names"),
        },
    })
}

/// Wraps a value read back with what its annotations say (given form, resolution, cut).
fn annotated(a: &Obj, name: &str, kind: ArgKind, v: Value) -> Result<Value, JsonError> {
    let given_key = format!("{name}{GIVEN}");
    let how_key = format!("{name}{RESOLUTION}");
    let cut_key = format!("{name}{CUT}");
    let mut v = v;
    if let Some(c) = a.m.get(&cut_key) {
        let field = a.name(&cut_key);
        let c = obj(&field, c)?;
        v = Value::Cut(Arc::new(Cut {
            kept: v,
            items: c.u64_or("items", 0)?,
            bytes: c.u64_or("bytes", 0)?,
            exact: c.bool_or("exact", true)?,
        }));
    }
    let given = match a.m.get(&given_key) {
        Some(g) => value_from(&a.name(&given_key), kind, g)?,
        None => Value::Absent,
    };
    let how = match a.m.get(&how_key) {
        Some(J::String(s)) => Resolution::from_name(s).map_or_else(
            || err(&a.name(&how_key), "expected exact, lexical or unknown"),
            Ok,
        )?,
        Some(_) => return err(&a.name(&how_key), "expected a string"),
        None => Resolution::Exact,
    };
    if given != Value::Absent || how != Resolution::Exact {
        v = Value::Resolved(Arc::new(Resolved {
            value: v,
            given,
            how,
        }));
    }
    Ok(v)
}

fn status_from(o: &Obj) -> Result<ExitStatus, JsonError> {
    if o.m.contains_key("exit_code") {
        return Ok(ExitStatus::Code(o.i32("exit_code")?));
    }
    Ok(ExitStatus::Signal {
        signal: signal_from(o)?,
        core_dumped: o.bool_or("core_dumped", false)?,
    })
}

/// A signal given by name or by number.
fn signal_from(o: &Obj) -> Result<i32, JsonError> {
    match o.get("signal")? {
        J::String(s) => match flags::signal_from_name(s).map(i32::try_from) {
            Some(Ok(n)) => Ok(n),
            Some(Err(_)) => err("signal", format!("`{s}` is out of range for 32 bits")),
            None => err("signal", format!("unknown signal `{s}`")),
        },
        J::Number(_) => o.i32("signal"),
        _ => err("signal", "expected a signal name or number"),
    }
}

fn creds_from(o: &Obj) -> Result<Creds, JsonError> {
    Ok(Creds {
        uid: o.u32_or("uid", 0)?,
        euid: o.u32_or("euid", 0)?,
        gid: o.u32_or("gid", 0)?,
        egid: o.u32_or("egid", 0)?,
    })
}

fn syscall_from(o: &Obj) -> Result<(SyscallId, Args), JsonError> {
    let call = match call_from(o, "")? {
        Some(c) => c,
        None => return err(&o.name("nr"), "missing"),
    };
    Ok((call, args_from(o, call)?))
}

/// The `args` of a syscall event (or a variant) calling `call`.
fn args_from(o: &Obj, call: SyscallId) -> Result<Args, JsonError> {
    let sig = call.signature();
    let mut args = Args::new();
    if let Some(a) = o.m.get("args") {
        let a = obj("args", a)?;
        for name in a.m.keys() {
            let base = [GIVEN, RESOLUTION, CUT]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| sig.field_index(b).is_some())
                .unwrap_or(name);
            if sig.field_index(base).is_none() {
                let names: Vec<&str> = sig.args.iter().chain(sig.outputs).map(|x| x.name).collect();
                return err(
                    &a.name(name),
                    format!(
                        "`{call}` has no argument `{name}` (it has: {})",
                        names.join(", ")
                    ),
                );
            }
        }
        let total = sig.args.len() + sig.outputs.len();
        for i in 0..total {
            let Some(spec) = sig.field(i) else { break };
            let v = match a.m.get(spec.name) {
                Some(v) => value_from(&a.name(spec.name), spec.kind, v)?,
                None => Value::Absent,
            };
            args.push(annotated(&a, spec.name, spec.kind, v)?);
        }
        while args.last() == Some(&Value::Absent) {
            args.pop();
        }
    }
    Ok(args)
}

/// Reads an event from its JSON form.
pub fn from_json(v: &J) -> Result<Event, JsonError> {
    let o = obj("", v)?;
    let ty = match o.get("type")? {
        J::String(s) => s.as_str(),
        _ => return err("type", "expected a string"),
    };
    let kind = match ty {
        "syscall_entry" => {
            let (call, args) = syscall_from(&o)?;
            EventKind::SyscallEntry(SyscallEntry { call, args })
        }
        "syscall_exit" => {
            let (call, args) = syscall_from(&o)?;
            EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq: o.u64_or("entry_seq", 0)?,
                ret: o.i64("ret")?,
                args,
            })
        }
        "process_start" => EventKind::ProcessStart(ProcessStart {
            ppid: o.u32_or("ppid", 0)?,
            exe: o.str_or_empty("exe")?,
            argv: o.list("argv")?,
            creds: creds_from(&o)?,
            clone_flags: o.u64_or("clone_flags", 0)?,
        }),
        "process_exec" => EventKind::ProcessExec(ProcessExec {
            exe: o.str("exe")?,
            argv: o.list("argv")?,
            creds: creds_from(&o)?,
            dev: o.u64_or("dev", 0)?,
            ino: o.u64_or("ino", 0)?,
        }),
        "process_exit" => EventKind::ProcessExit(ProcessExit {
            status: status_from(&o)?,
        }),
        "thread_exit" => EventKind::ThreadExit(ThreadExit {
            status: status_from(&o)?,
        }),
        "thread_start" => EventKind::ThreadStart(ThreadStart {
            creator_tid: o.u32("creator_tid")?,
        }),
        "signal" => EventKind::Signal(SignalDelivery {
            signal: signal_from(&o)?,
            code: o.i32_or("code", 0)?,
            sender_pid: o.u32_or("sender_pid", 0)?,
            sender_uid: o.u32_or("sender_uid", 0)?,
            fault: match o.m.get("fault") {
                None | Some(J::Null) => None,
                Some(v) => {
                    let ctx = o.name("fault");
                    let f = obj(&ctx, v)?;
                    let Some(access) = f.get("access")?.as_str().and_then(FaultAccess::from_name)
                    else {
                        return err(
                            "fault.access",
                            "expected unknown, read, write, read_write or execute",
                        );
                    };
                    Some(SignalFault {
                        addr: f.u64("addr")?,
                        ip: f.u64_or("ip", 0)?,
                        access,
                    })
                }
            },
        }),
        "action" => EventKind::Action(Action {
            action: o.str("action")?,
            by: o.str_or_empty("by")?,
            target_pid: o.u32_or("target_pid", 0)?,
            detail: o.str_or_empty("detail")?,
        }),
        "lost" => EventKind::Lost(Lost {
            count: o.u64("count")?,
            reason: o.str_or_empty("reason")?,
        }),
        "smo_read" => smo_from(&o, MemAccess::Read)?,
        "smo_write" => smo_from(&o, MemAccess::Write)?,
        "smo_read_write" => smo_from(&o, MemAccess::ReadWrite)?,
        "address_space" => EventKind::AddressSpace(AddressSpace {
            vmas: match o.get("vmas")? {
                J::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| vma_from(&format!("vmas[{i}]"), v))
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
                _ => return err("vmas", "expected an array"),
            },
        }),
        "divergence" => divergence_from(&o)?,
        other => {
            let hint = crate::suggest(other, crate::EventType::names());
            return err("type", format!("unknown event type `{other}`{hint}"));
        }
    };
    let pid = o.u32("pid")?;
    Ok(Event {
        seq: o.u64("seq")?,
        time_ns: o.u64("time_ns")?,
        pid,
        tid: o.u32_or("tid", pid)?,
        kind,
    })
}

/// A syscall named by `{prefix}syscall`, or by `{prefix}nr` (and `{prefix}abi`); `None` when
/// neither is there. Given both, the name and the number (and the ABI) must agree.
fn call_from(o: &Obj, prefix: &str) -> Result<Option<SyscallId>, JsonError> {
    let key = format!("{prefix}syscall");
    let nr_key = format!("{prefix}nr");
    let abi_key = format!("{prefix}abi");
    if let Some(v) = o.m.get(&key) {
        let Some(name) = v.as_str() else {
            return err(&o.name(&key), "expected a syscall name");
        };
        let Some(c) = SyscallId::from_name(name) else {
            let hint = crate::suggest(name, crate::syscall::all_names());
            return err(&o.name(&key), format!("unknown syscall `{name}`{hint}"));
        };
        // `nr` and `abi` say again what the name says (export writes all three): one that
        // says otherwise is refused, not silently overruled by the name.
        if o.m.contains_key(&nr_key) && o.u32(&nr_key)? != c.nr {
            return err(
                &o.name(&nr_key),
                format!(
                    "{} is not the number of `{name}` ({})",
                    o.u64(&nr_key)?,
                    c.nr
                ),
            );
        }
        if let Some(a) = o.m.get(&abi_key)
            && a.as_str() != Some(c.abi.name())
        {
            return err(
                &o.name(&abi_key),
                format!("{a} is not the ABI of `{name}` ({})", c.abi.name()),
            );
        }
        return Ok(Some(c));
    }
    if !o.m.contains_key(&nr_key) {
        return Ok(None);
    }
    let abi = match o.m.get(&abi_key).and_then(J::as_str) {
        Some(a) => Abi::from_name(a).map_or_else(
            || err(&o.name(&abi_key), "expected x86_64, i386 or x32"),
            Ok,
        )?,
        None => Abi::X86_64,
    };
    Ok(Some(SyscallId {
        abi,
        nr: o.u32(&nr_key)?,
    }))
}

fn smo_from(o: &Obj, access: MemAccess) -> Result<EventKind, JsonError> {
    let ob = obj("object", o.get("object")?)?;
    let kind = match ob.get("kind")?.as_str().and_then(SmoKind::from_name) {
        Some(k) => k,
        None => return err("object.kind", "expected file, sysv_shm or shared_anon"),
    };
    let via = match o.get("via")?.as_str() {
        Some("fault") => SmoVia::Fault,
        Some("step") => SmoVia::Step,
        Some("syscall") => match call_from(o, "via_")? {
            Some(c) => SmoVia::Syscall(c),
            None => return err("via_syscall", "missing"),
        },
        _ => return err("via", "expected fault, step or syscall"),
    };
    Ok(EventKind::SmoAccess(SmoAccess {
        access,
        object: SmoObject {
            kind,
            dev: ob.u64_or("dev", 0)?,
            ino: ob.u64_or("ino", 0)?,
            path: ob.str_or_empty("path")?,
        },
        offset: o.u64("offset")?,
        len: o.u64("len")?,
        addr: o.u64("addr")?,
        ip: o.u64_or("ip", 0)?,
        via,
        private: o.bool_or("private", false)?,
        map_offset: o.u64_or("map_offset", 0)?,
        map_len: o.u64_or("map_len", 0)?,
    }))
}

fn vma_from(field: &str, v: &J) -> Result<Vma, JsonError> {
    let o = obj(field, v)?;
    let Some((prot, shared)) = o.get("perms")?.as_str().and_then(Vma::parse_perms) else {
        return err(&o.name("perms"), "expected four letters like r-xp or rw-s");
    };
    Ok(Vma {
        start: o.u64("start")?,
        end: o.u64("end")?,
        prot,
        shared,
        offset: o.u64_or("offset", 0)?,
        dev: o.u64_or("dev", 0)?,
        ino: o.u64_or("ino", 0)?,
        path: o.str_or_empty("path")?,
    })
}

fn divergence_from(o: &Obj) -> Result<EventKind, JsonError> {
    let variants = match o.get("variants")? {
        J::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let field = format!("variants[{i}]");
                let vo = obj(&field, v)?;
                let call = call_from(&vo, "")?;
                let args = match call {
                    Some(c) => args_from(&vo, c)?,
                    None => Args::new(),
                };
                let pid = vo.u32("pid")?;
                Ok(VariantState {
                    index: vo.u32("index")?,
                    pid,
                    tid: vo.u32_or("tid", pid)?,
                    diverged: vo.bool_or("diverged", false)?,
                    call,
                    args,
                    detail: vo.str_or_empty("detail")?,
                })
            })
            .collect::<Result<Vec<_>, JsonError>>()?,
        _ => return err("variants", "expected an array"),
    };
    Ok(EventKind::Divergence(Divergence {
        what: o.str("what")?,
        call: call_from(o, "")?,
        fields: o.list("fields")?,
        detail: o.str_or_empty("detail")?,
        variants: variants.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn json_round_trips(events in crate::testing::stream(1..20)) {
            for ev in events {
                let j = to_json(&ev);
                let back = from_json(&j).map_err(|e| TestCaseError::fail(format!("{e}: {j}")))?;
                prop_assert_eq!(back, ev);
            }
        }
    }

    /// A number that does not fit its field is refused with the field's name, never cut to
    /// fit: a bare fd of 2^31 was read as -2147483648, a signal of 2^32+9 as SIGKILL.
    #[test]
    fn numbers_too_large_for_their_field_are_refused() {
        let read = |line: &str| from_json(&serde_json::from_str::<J>(line).unwrap());
        let ev = |rest: &str| format!(r#"{{"seq":1,"time_ns":1,"pid":1,{rest}}}"#);
        let read_fd = |fd: &str| {
            read(&ev(&format!(
                r#""type":"syscall_entry","syscall":"read","args":{{"fd":{fd}}}"#
            )))
        };
        let e = read_fd("2147483648").unwrap_err();
        assert_eq!(e.field, "args.fd");
        assert!(
            e.message
                .contains("fd 2147483648 is out of range for 32 bits"),
            "{e}"
        );
        assert_eq!(read_fd("-1.5").unwrap_err().field, "args.fd");
        assert_eq!(
            read_fd(r#"{"fd":4294967296}"#).unwrap_err().field,
            "args.fd.fd"
        );
        assert!(read_fd("2147483647").is_ok() && read_fd("-100").is_ok());
        let refused = [
            (
                r#""type":"signal","signal":4294967305"#,
                "signal",
                "out of range for 32 bits",
            ),
            (
                r#""type":"signal","signal":"SIGKILL","code":8589934592"#,
                "code",
                "out of range for 32 bits",
            ),
            (
                r#""type":"signal","signal":"SIGKILL","code":"x""#,
                "code",
                "expected an integer",
            ),
            (
                r#""type":"process_exit","signal":4294967305"#,
                "signal",
                "out of range for 32 bits",
            ),
            (
                r#""type":"process_exit","signal":"SIGKILL","core_dumped":1"#,
                "core_dumped",
                "expected true or false",
            ),
            (
                r#""type":"syscall_exit","syscall":"connect","ret":0,"args":{"fd":{"fd":3,"target":{"kind":"socket","family":65538}}}"#,
                "args.fd.target.family",
                "out of range for 16 bits",
            ),
            (
                r#""type":"syscall_entry","syscall":"execve","args":{"argv":[],"argv_cut":{"items":1,"exact":"yes"}}"#,
                "args.argv_cut.exact",
                "expected true or false",
            ),
        ];
        for (rest, field, message) in refused {
            let e = read(&ev(rest)).unwrap_err();
            assert!(
                e.field == field && e.message.contains(message),
                "{rest}: {e}"
            );
        }
    }

    /// Found by crates/log/tests/fuzz.rs: a line naming `fork` with `"nr": 0` (read) was
    /// imported as fork, its `nr` silently ignored. The name and the number (and the ABI) must
    /// agree; either alone is enough.
    #[test]
    fn a_syscall_number_or_abi_that_contradicts_its_name_is_refused() {
        let read = |rest: &str| {
            from_json(
                &serde_json::from_str::<J>(&format!(
                    r#"{{"seq":1,"time_ns":1,"pid":1,"type":"syscall_entry",{rest}}}"#
                ))
                .unwrap(),
            )
        };
        let e = read(r#""syscall":"fork","nr":0"#).unwrap_err();
        assert_eq!(e.field, "nr");
        assert!(e.message.contains("not the number of `fork` (57)"), "{e}");
        assert_eq!(
            read(r#""syscall":"fork","nr":4294967353"#)
                .unwrap_err()
                .field,
            "nr"
        );
        let e = read(r#""syscall":"i386:read","abi":"x86_64","nr":3"#).unwrap_err();
        assert_eq!(e.field, "abi");
        assert_eq!(
            read(r#""syscall":"read","abi":"i386""#).unwrap_err().field,
            "abi"
        );
        for ok in [
            r#""syscall":"fork","nr":57"#,
            r#""syscall":"fork""#,
            r#""nr":57"#,
            r#""syscall":"i386:read","abi":"i386","nr":3"#,
            r#""syscall":"read","abi":"x86_64""#,
        ] {
            assert!(read(ok).is_ok(), "{ok}: {:?}", read(ok));
        }
    }

    /// The same holds wherever an event names a call: the syscall of a shared-memory access
    /// (`via_syscall`, `via_nr`) and of a divergence's variant; found in review, where a
    /// contradicting number was silently overruled by the name.
    #[test]
    fn a_call_number_that_contradicts_its_name_is_refused_in_every_kind() {
        let read = |rest: &str| {
            from_json(
                &serde_json::from_str::<J>(&format!(r#"{{"seq":1,"time_ns":1,"pid":1,{rest}}}"#))
                    .unwrap(),
            )
        };
        let smo = |via: &str| {
            read(&format!(
                r#""type":"smo_write","object":{{"kind":"file","path":"/f"}},"offset":0,"len":1,"addr":4096,"via":"syscall",{via}"#
            ))
        };
        let e = smo(r#""via_syscall":"write","via_nr":0"#).unwrap_err();
        assert_eq!(e.field, "via_nr");
        assert!(e.message.contains("not the number of `write` (1)"), "{e}");
        assert_eq!(
            smo(r#""via_syscall":"write","via_abi":"i386""#)
                .unwrap_err()
                .field,
            "via_abi"
        );
        assert!(smo(r#""via_syscall":"write","via_nr":1"#).is_ok());
        assert!(smo(r#""via_nr":1"#).is_ok());
        let variant = |call: &str| {
            read(&format!(
                r#""type":"divergence","what":"call","variants":[{{"index":0,"pid":2,{call}}}]"#
            ))
        };
        let e = variant(r#""syscall":"write","nr":0"#).unwrap_err();
        assert_eq!(e.field, "variants[0].nr");
        assert!(variant(r#""syscall":"write","nr":1"#).is_ok());
    }

    /// Found by crates/log/tests/fuzz.rs: a signal no name stands for (0, 100, -1) is exported
    /// as its number in a string ("0"), which import refused as an unknown signal name, so
    /// import(export(log)) failed. Such a string is read back as its number, within 32 bits.
    #[test]
    fn signals_without_a_name_round_trip() {
        for signal in [0, 65, 100, -1, i32::MAX, i32::MIN] {
            let ev = Event {
                seq: 1,
                time_ns: 1,
                pid: 1,
                tid: 1,
                kind: EventKind::Signal(SignalDelivery {
                    signal,
                    code: 0,
                    sender_pid: 0,
                    sender_uid: 0,
                    fault: None,
                }),
            };
            let j = to_json(&ev);
            assert_eq!(from_json(&j).unwrap(), ev, "{j}");
            let ev = Event {
                kind: EventKind::ProcessExit(ProcessExit {
                    status: ExitStatus::Signal {
                        signal,
                        core_dumped: false,
                    },
                }),
                ..ev
            };
            let j = to_json(&ev);
            assert_eq!(from_json(&j).unwrap(), ev, "{j}");
        }
        let j: J = serde_json::from_str(
            r#"{"seq":1,"time_ns":1,"pid":1,"type":"signal","signal":"4294967305"}"#,
        )
        .unwrap();
        let e = from_json(&j).unwrap_err();
        assert!(
            e.field == "signal" && e.message.contains("out of range for 32 bits"),
            "{e}"
        );
    }

    /// Found by crates/log/tests/fuzz.rs: `{"bytes_hex": "\u{9aff3}?"}` (an even number of
    /// bytes, not of characters) panicked, slicing inside a character; "+f" was read as 0x0f.
    #[test]
    fn hex_strings_are_read_byte_by_byte() {
        let read = |hex: &str| {
            let line = format!(
                r#"{{"seq":1,"time_ns":1,"pid":1,"type":"syscall_entry","syscall":"openat","args":{{"path":{{"bytes_hex":"{hex}"}}}}}}"#
            );
            from_json(&serde_json::from_str::<J>(&line).unwrap())
        };
        for bad in ["\u{9aff3}?", "é\u{e9}", "+f", "-1", "0x", " 1", "zz"] {
            let e = read(bad).unwrap_err();
            assert!(
                e.field == "args.path" && e.message.contains("hex"),
                "{bad}: {e}"
            );
        }
        let ev = read("2f74ff00aB").unwrap();
        let EventKind::SyscallEntry(s) = ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(s.args[1], Value::Str(Str::new(b"/t\xff\x00\xab")));
    }

    #[test]
    fn import_errors_name_the_field() {
        let j: J = serde_json::from_str(
            r#"{"seq":1,"time_ns":1,"pid":1,"type":"syscall_exit","syscall":"opnat","ret":0}"#,
        )
        .unwrap();
        let e = from_json(&j).unwrap_err();
        assert_eq!(e.field, "syscall");
        assert!(e.message.contains("did you mean `openat`"), "{}", e.message);
        let j: J = serde_json::from_str(r#"{"seq":1,"time_ns":1,"pid":1,"type":"syscall_exit","syscall":"openat","ret":0,"args":{"flags":"O_BOGUS"}}"#).unwrap();
        assert_eq!(from_json(&j).unwrap_err().field, "args.flags");
    }
}
