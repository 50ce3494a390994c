//! Records inside a block: string and target definitions, then events, delta- and
//! varint-encoded. Strings and targets are defined once per block, before their first use, so a
//! block decodes on its own.

use rustc_hash::FxHashMap;
use std::net::{SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use vigil_event::value::Socket;
use vigil_event::*;

const DEF_STR: u8 = 0x80;
const DEF_TARGET: u8 = 0x81;
const SAME_THREAD: u8 = 0x10;
const NEXT_SEQ: u8 = 0x20;
const KIND_MASK: u8 = 0x0f;

const K_ENTRY: u8 = 0;
const K_EXIT: u8 = 1;
const K_PAIR: u8 = 2;
const K_START: u8 = 3;
const K_EXEC: u8 = 4;
const K_PEXIT: u8 = 5;
const K_TSTART: u8 = 6;
const K_TEXIT: u8 = 7;
const K_SIGNAL: u8 = 8;
const K_LOST: u8 = 9;
const K_ACTION: u8 = 10;
/// Version 2: an entry and its exit whose inputs differ in a few places (the path the kernel
/// resolved where the entry held the text folded): K_PAIR's fields, then the patches.
const K_PAIR_PATCHED: u8 = 11;
/// Patch codes: the entry's resolved value, now exact; the exit's value, written out.
const PATCH_EXACT: u8 = 0;
const PATCH_VALUE: u8 = 1;
/// Version 2: an event of an extension kind (one the core kinds above do not cover): the usual
/// event header, then a varint kind id, a varint body length and the body. A reader that does
/// not know the kind skips the body and counts the event.
const K_EXT: u8 = 15;
/// Version 2: tags 0x82..=0xBF are extension records that are not events (definitions a later
/// version may add): a varint body length and the body, skipped by a reader that does not know
/// the tag.
const EXT_RECORDS: std::ops::RangeInclusive<u8> = 0x82..=0xbf;

/// Extension kinds this vigil knows (docs/log-format.md assigns them). Version 2.1 writes them.
pub mod ext {
    /// A read or write of a shared-memory object (`smo_read`, `smo_write`, `smo_read_write`).
    pub const SMO_ACCESS: u64 = 1;
    /// An address-space snapshot.
    pub const ADDRESS_SPACE: u64 = 2;
    /// A divergence between variants.
    pub const DIVERGENCE: u64 = 3;
    /// A syscall entry whose values include a byte buffer or an address range (value tags 12
    /// and 13, which a 2.0 reader does not know): the fields of kind 0.
    pub const ENTRY_WIDE: u64 = 4;
    /// The same for a syscall exit: the fields of kind 1.
    pub const EXIT_WIDE: u64 = 5;
    /// A signal the kernel raised at a faulting access (the fields of a signal, then the
    /// fault's address, instruction pointer and access kind). Version 2.2.
    pub const SIGNAL_FAULT: u64 = 6;
}

/// Whether a value needs value tags a version 2.0 reader does not know (12 bytes, 13 range):
/// an event holding one is stored as an extension event, which such a reader skips.
fn is_wide(v: &Value) -> bool {
    match v {
        Value::Bytes(_) | Value::Range(_) => true,
        Value::Resolved(r) => is_wide(&r.value) || is_wide(&r.given),
        Value::Cut(c) => is_wide(&c.kept),
        _ => false,
    }
}

fn has_wide(args: &[Value]) -> bool {
    args.iter().any(is_wide)
}

/// Whether `exit` is `entry` (a resolved value marked lexical or unknown) confirmed exact by the
/// kernel: the same value and given form, now exact.
fn made_exact(entry: &Value, exit: &Value) -> bool {
    match entry {
        Value::Resolved(r) if r.how != Resolution::Exact => {
            *exit == Value::resolved(r.value.clone(), r.given.clone(), Resolution::Exact)
        }
        _ => false,
    }
}

/// When a resolved value's given form is the tail of its value (an exact path given relative to
/// a directory: `out` of `/tmp/x/out`), the length of that tail: stored as a length (value tag
/// 10) instead of a second string.
fn given_tail(r: &Resolved) -> Option<usize> {
    match (&r.value, &r.given, r.how) {
        (Value::Str(v), Value::Str(g), Resolution::Exact | Resolution::Lexical)
            if !g.is_empty() && v.len() > g.len() && v.as_bytes().ends_with(g.as_bytes()) =>
        {
            Some(g.len())
        }
        _ => None,
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn abi_code(a: Abi) -> u64 {
    match a {
        Abi::X86_64 => 0,
        Abi::I386 => 1,
        Abi::X32 => 2,
        Abi::IoUring => 3,
    }
}

/// Bytes of `v` as a LEB128 varint.
fn varlen(v: u64) -> u64 {
    u64::from(64 - (v | 1).leading_zeros()).div_ceil(7)
}

/// What a block costs a reader in memory once decoded, in units documented in
/// docs/log-format.md (each at least the size of what it stands for): the reader charges every
/// allocation against BLOCK_MEM_MAX before making it, and refuses a block that would pass it;
/// the writer measures each event's share beforehand (`Bound::mem`) and seals a block before it
/// would pass it. So a crafted block cannot make a reader allocate far more than a real one.
pub mod cost {
    /// An event.
    pub const EVENT: u64 = 256;
    /// An argument value (in the event's argument list).
    pub const VALUE: u64 = 32;
    /// A reference to a string in a list (argv).
    pub const REF: u64 = 16;
    /// A string defined, besides its bytes; a list, besides its items; a byte string
    /// (socket address data), besides its bytes.
    pub const HEAP: u64 = 16;
    /// An fd target defined.
    pub const TARGET: u64 = 128;
    /// A wrapper around a value (resolved, cut) or a socket address.
    pub const WRAPPER: u64 = 96;
    /// A kind of extension event not known, counted by kind.
    pub const KIND: u64 = 64;
    /// A mapping of an address-space snapshot.
    pub const VMA: u64 = 96;
    /// A variant of a divergence (besides its argument values).
    pub const VARIANT: u64 = 256;
}

/// The most a block may cost a reader once decoded (see `cost`): 64 MiB.
pub const BLOCK_MEM_MAX: u64 = 64 * 1024 * 1024;
/// The most one event may cost (`Bound::mem`); an event with string lists beyond it has them cut
/// like one too large in bytes. Any event, and any pair of an entry and its exit stored as one
/// record (`pair_mem`), fits in a fresh block.
pub const EVENT_MEM_MAX: u64 = 48 * 1024 * 1024;

/// An upper bound of the bytes an event's records take in a block: the event record and the
/// definitions of every string and target it uses (as if none were defined yet), references
/// counted at their widest. The writer checks it before encoding, so a block never grows past
/// what a reader accepts and an event that cannot fit is refused before anything is written.
/// `mem` bounds the same way what the event costs a reader in memory (see `cost`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bound {
    bytes: u64,
    /// String references (each may need a definition, counted in `bytes`).
    strings: u64,
    /// Target references.
    targets: u64,
    /// What decoding it may cost (every string counted as if defined for it).
    pub mem: u64,
}

/// The fixed part of an event record, generously: tag, seq and time deltas, pid, tid, and the
/// kind's integers (call, entry seq, return value, exit time, argument counts, credentials...).
const EVENT_FIXED: u64 = 1 + 10 + 10 + 5 + 10 + 80;

impl Bound {
    fn string(&mut self, s: &Str) {
        let n = s.len() as u64;
        // DEF_STR, shared-prefix length, suffix length, suffix: at most the whole string.
        self.bytes += 1 + 2 * varlen(n) + n;
        self.strings += 1;
        self.mem += cost::HEAP + n;
    }

    /// A list of strings: the list, a reference per item, and each string.
    fn list(&mut self, l: &[Str]) {
        self.bytes += 10;
        self.mem += cost::HEAP + cost::REF * l.len() as u64;
        l.iter().for_each(|s| self.string(s));
    }

    fn addr(&mut self, a: &SockAddr) {
        self.mem += cost::WRAPPER;
        self.bytes += 1 + match a {
            SockAddr::V4(_) => 6,
            SockAddr::V6(_) => 18 + 5 + 5,
            SockAddr::Unix(p) => {
                self.string(p);
                0
            }
            SockAddr::Netlink { .. } => 10,
            SockAddr::Other { data, .. } => {
                self.mem += cost::HEAP + data.len() as u64;
                3 + 10 + data.len() as u64
            }
        };
    }

    fn target(&mut self, t: &Target) {
        self.targets += 1;
        self.mem += cost::TARGET;
        // DEF_TARGET, kind, and the kind's fields.
        self.bytes += 2 + match t {
            Target::File { path, .. } => {
                self.string(path);
                20
            }
            Target::Pipe { .. } => 10,
            Target::Socket(s) => {
                for a in s.local.iter().chain(s.remote.iter()) {
                    self.addr(a);
                }
                10 + 3 + 3 + 1
            }
            Target::Other { label, .. } => {
                self.string(label);
                10
            }
        };
    }

    fn value(&mut self, v: &Value) {
        self.bytes += 1;
        match v {
            Value::Absent => {}
            Value::Unreadable(_) | Value::Int(_) | Value::Uint(_) => self.bytes += 10,
            Value::Str(s) => self.string(s),
            Value::Fd(fd) => {
                // The fd number, and a one-byte "no target" when there is none.
                self.bytes += 5 + 1;
                if let Some(t) = &fd.target {
                    self.target(t);
                }
            }
            Value::List(l) => self.list(l),
            Value::Addr(a) => self.addr(a),
            Value::Resolved(r) => {
                self.bytes += 1 + 10;
                self.mem += cost::WRAPPER;
                self.value(&r.value);
                self.value(&r.given);
            }
            Value::Cut(c) => {
                self.bytes += 1 + 10 + 10;
                self.mem += cost::WRAPPER;
                self.value(&c.kept);
            }
            Value::Bytes(b) => {
                self.bytes += 10 + b.len() as u64;
                self.mem += cost::HEAP + b.len() as u64;
            }
            Value::Range(_) => self.bytes += 20,
        }
    }

    fn values(&mut self, args: &[Value]) {
        // Twice: a reader may hold an argument list twice (an exit stored with its entry gets
        // a copy of the entry's).
        self.mem += 2 * cost::VALUE * args.len() as u64;
        args.iter().for_each(|v| self.value(v));
    }

    fn event(&mut self, ev: &Event) {
        self.bytes += EVENT_FIXED;
        self.mem += cost::EVENT;
        match &ev.kind {
            EventKind::SyscallEntry(e) => self.values(&e.args),
            EventKind::SyscallExit(x) => self.values(&x.args),
            EventKind::ProcessStart(ProcessStart { exe, argv, .. })
            | EventKind::ProcessExec(ProcessExec { exe, argv, .. }) => {
                self.string(exe);
                self.list(argv);
            }
            EventKind::Lost(l) => self.string(&l.reason),
            EventKind::Action(a) => {
                for s in [&a.action, &a.by, &a.detail] {
                    self.string(s);
                }
            }
            EventKind::SmoAccess(a) => {
                self.bytes += 20 + 6 * 10;
                self.string(&a.object.path);
            }
            EventKind::AddressSpace(s) => {
                self.bytes += 20;
                self.mem += cost::VMA * s.vmas.len() as u64;
                for v in s.vmas.iter() {
                    self.bytes += 1 + 5 * 10;
                    self.string(&v.path);
                }
            }
            EventKind::Divergence(d) => {
                self.bytes += 20 + 10;
                self.mem += cost::HEAP + cost::REF * d.fields.len() as u64;
                for s in [&d.what, &d.detail].into_iter().chain(d.fields.iter()) {
                    self.string(s);
                }
                self.mem += cost::VARIANT * d.variants.len() as u64;
                for v in d.variants.iter() {
                    self.bytes += 5 * 10 + 1;
                    self.string(&v.detail);
                    self.values(&v.args);
                }
            }
            EventKind::ProcessExit(_)
            | EventKind::ThreadStart(_)
            | EventKind::ThreadExit(_)
            | EventKind::Signal(_) => {}
        }
        // Stored as an extension event: the kind id and the body's length.
        if is_extension(ev) {
            self.bytes += 20;
        }
    }

    /// The total in a block that already defines `defined` (strings, targets): references
    /// reach back past them.
    pub fn in_block(&self, defined: (usize, usize)) -> u64 {
        let (strings, targets) = defined;
        self.bytes
            + self.strings * varlen(strings as u64 + self.strings)
            + self.targets * varlen(targets as u64 + self.targets + 1)
    }

    /// The total in a block of its own.
    pub fn fresh(&self) -> u64 {
        self.in_block((0, 0))
    }
}

/// Whether `ev` is stored as an extension event (kind 15).
fn is_extension(ev: &Event) -> bool {
    match &ev.kind {
        EventKind::SyscallEntry(e) => has_wide(&e.args),
        EventKind::SyscallExit(x) => has_wide(&x.args),
        EventKind::SmoAccess(_) | EventKind::AddressSpace(_) | EventKind::Divergence(_) => true,
        EventKind::ProcessStart(_)
        | EventKind::ProcessExec(_)
        | EventKind::ProcessExit(_)
        | EventKind::ThreadStart(_)
        | EventKind::ThreadExit(_)
        | EventKind::Signal(_)
        | EventKind::Lost(_)
        | EventKind::Action(_) => false,
    }
}

/// What an entry and its exit stored as one pair record cost a reader (see `cost`): the
/// entry, a second event, and the exit's values where they are not the entry's (its extra
/// outputs, and the inputs it patches); `exit` is the exit's own bound.
pub fn pair_mem(entry: &Event, entry_size: &Bound, exit: &Event, exit_size: &Bound) -> u64 {
    let (EventKind::SyscallEntry(e), EventKind::SyscallExit(x)) = (&entry.kind, &exit.kind) else {
        return entry_size.mem + exit_size.mem;
    };
    let mut b = Bound {
        mem: entry_size.mem + cost::EVENT + 2 * cost::VALUE * x.args.len() as u64,
        ..Bound::default()
    };
    for (i, v) in x.args.iter().enumerate() {
        if e.args.get(i) != Some(v) {
            b.value(v);
        }
    }
    b.mem
}

/// Bounds the bytes `ev` takes in a block. Stored as a pair with its entry, an exit takes at
/// most `PAIR_EXTRA` more than its own bound.
pub fn measure(ev: &Event) -> Bound {
    let mut b = Bound::default();
    b.event(ev);
    b
}

/// A pair record holds the exit's arguments once, plus the exit's time delta and the count of
/// its extra outputs.
pub const PAIR_EXTRA: u64 = 20;

/// The bound a string adds to an event (its definition and a reference): what dropping it from
/// a list saves, at least.
pub fn string_bound(s: &Str) -> u64 {
    let mut b = Bound::default();
    b.string(s);
    b.bytes + 1
}

/// Encodes events of one block.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
    strings: FxHashMap<Str, u32>,
    /// The string defined last, which the next definition is front-coded against.
    last_def: Option<Str>,
    targets: FxHashMap<Arc<Target>, u32>,
    prev_seq: u64,
    prev_time: u64,
    prev_thread: Option<(u32, u32)>,
    prev_dev: u64,
    prev_ino: u64,
    pub events: u32,
    pub first: Option<(u64, u64)>,
}

impl Encoder {
    pub fn reset(&mut self) {
        self.buf.clear();
        self.strings.clear();
        self.last_def = None;
        self.targets.clear();
        self.prev_thread = None;
        self.prev_dev = 0;
        self.prev_ino = 0;
        self.events = 0;
        self.first = None;
    }

    /// Strings and targets defined in the block so far.
    pub fn defined(&self) -> (usize, usize) {
        (self.strings.len(), self.targets.len())
    }

    fn str_id(&mut self, s: &Str) -> u32 {
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        // Front coding: most strings share a long prefix with the one defined before them
        // (paths under the same directory), so only the rest is stored.
        let b = s.as_bytes();
        let shared = self.last_def.as_ref().map_or(0, |p| {
            p.as_bytes()
                .iter()
                .zip(b)
                .take_while(|(x, y)| x == y)
                .count()
        });
        self.buf.push(DEF_STR);
        put(&mut self.buf, shared as u64);
        put(&mut self.buf, (b.len() - shared) as u64);
        self.buf.extend_from_slice(&b[shared..]);
        self.strings.insert(s.clone(), id);
        self.last_def = Some(s.clone());
        id
    }

    /// A reference to a defined string: its distance back from the latest definition, so the
    /// string just defined (the usual case) costs one byte.
    fn str_ref(&self, s: &Str) -> u64 {
        self.strings.len() as u64 - 1 - self.strings[s] as u64
    }

    fn target_ref(&self, t: &Arc<Target>) -> u64 {
        self.targets.len() as u64 - 1 - self.targets[t] as u64
    }

    fn addr_strings(&mut self, a: &SockAddr) {
        if let SockAddr::Unix(p) = a {
            self.str_id(p);
        }
    }

    fn target_id(&mut self, t: &Arc<Target>) -> u32 {
        if let Some(&id) = self.targets.get(t) {
            return id;
        }
        // Strings first: the definition refers to them.
        match &**t {
            Target::File { path, .. } => {
                self.str_id(path);
            }
            Target::Other { label, .. } => {
                self.str_id(label);
            }
            Target::Socket(s) => {
                for a in s.local.iter().chain(s.remote.iter()) {
                    self.addr_strings(a);
                }
            }
            Target::Pipe { .. } => {}
        }
        let mut def = std::mem::take(&mut self.buf);
        def.push(DEF_TARGET);
        match &**t {
            Target::File { path, dev, ino } => {
                def.push(0);
                put(&mut def, self.str_ref(path));
                // Device and inode as deltas from the previous file: mostly one byte each.
                put(&mut def, zigzag(dev.wrapping_sub(self.prev_dev) as i64));
                put(&mut def, zigzag(ino.wrapping_sub(self.prev_ino) as i64));
                self.prev_dev = *dev;
                self.prev_ino = *ino;
            }
            Target::Pipe { ino } => {
                def.push(1);
                put(&mut def, *ino);
            }
            Target::Socket(s) => {
                def.push(2);
                put(&mut def, s.ino);
                put(&mut def, s.family as u64);
                put(&mut def, s.sock_type as u64);
                def.push(s.local.is_some() as u8 | (s.remote.is_some() as u8) << 1);
                for a in s.local.iter().chain(s.remote.iter()) {
                    self.put_addr(&mut def, a);
                }
            }
            Target::Other { label, ino } => {
                def.push(3);
                put(&mut def, self.str_ref(label));
                put(&mut def, *ino);
            }
        }
        self.buf = def;
        let id = self.targets.len() as u32;
        self.targets.insert(t.clone(), id);
        id
    }

    fn put_addr(&self, out: &mut Vec<u8>, a: &SockAddr) {
        match a {
            SockAddr::V4(v) => {
                out.push(0);
                out.extend_from_slice(&v.ip().octets());
                out.extend_from_slice(&v.port().to_le_bytes());
            }
            SockAddr::V6(v) => {
                out.push(1);
                out.extend_from_slice(&v.ip().octets());
                out.extend_from_slice(&v.port().to_le_bytes());
                put(out, v.flowinfo() as u64);
                put(out, v.scope_id() as u64);
            }
            SockAddr::Unix(p) => {
                out.push(2);
                put(
                    out,
                    self.strings
                        .get(p)
                        .map_or(0, |&id| self.strings.len() as u64 - 1 - id as u64),
                );
            }
            SockAddr::Netlink { pid, groups } => {
                out.push(3);
                put(out, *pid as u64);
                put(out, *groups as u64);
            }
            SockAddr::Other { family, data } => {
                out.push(4);
                put(out, *family as u64);
                put(out, data.len() as u64);
                out.extend_from_slice(data);
            }
        }
    }

    /// Defines every string and target the values use, so the values can follow in one run.
    fn define(&mut self, args: &[Value]) {
        for v in args {
            self.define_value(v);
        }
    }

    fn define_value(&mut self, v: &Value) {
        {
            match v {
                Value::Str(s) => {
                    self.str_id(s);
                }
                Value::Fd(Fd {
                    target: Some(t), ..
                }) => {
                    self.target_id(t);
                }
                Value::List(l) => {
                    for s in l.iter() {
                        self.str_id(s);
                    }
                }
                Value::Addr(a) => self.addr_strings(a),
                Value::Resolved(r) => {
                    self.define_value(&r.value);
                    if given_tail(r).is_none() {
                        self.define_value(&r.given);
                    }
                }
                Value::Cut(c) => self.define_value(&c.kept),
                _ => {}
            }
        }
    }

    fn put_args(&mut self, args: &[Value]) {
        put(&mut self.buf, args.len() as u64);
        for v in args {
            self.put_value(v);
        }
    }

    fn put_value(&mut self, v: &Value) {
        match v {
            Value::Absent => self.buf.push(0),
            Value::Unreadable(a) => {
                self.buf.push(1);
                put(&mut self.buf, *a);
            }
            Value::Int(i) => {
                self.buf.push(2);
                put(&mut self.buf, zigzag(*i));
            }
            Value::Uint(u) => {
                self.buf.push(3);
                put(&mut self.buf, *u);
            }
            Value::Str(s) => {
                self.buf.push(4);
                let r = self.str_ref(s);
                put(&mut self.buf, r);
            }
            Value::Fd(fd) => {
                self.buf.push(5);
                put(&mut self.buf, zigzag(fd.num as i64));
                let t = fd.target.as_ref().map_or(0, |t| self.target_ref(t) + 1);
                put(&mut self.buf, t);
            }
            Value::List(l) => {
                self.buf.push(6);
                put(&mut self.buf, l.len() as u64);
                for s in l.iter() {
                    let r = self.str_ref(s);
                    put(&mut self.buf, r);
                }
            }
            Value::Addr(a) => {
                self.buf.push(7);
                let mut tmp = std::mem::take(&mut self.buf);
                self.put_addr(&mut tmp, a);
                self.buf = tmp;
            }
            Value::Resolved(r) if given_tail(r).is_some() => {
                // 10: exact, 11: folded as text (an entry not walked).
                self.buf
                    .push(if r.how == Resolution::Exact { 10 } else { 11 });
                self.put_value(&r.value);
                put(&mut self.buf, given_tail(r).unwrap_or(0) as u64);
            }
            Value::Resolved(r) => {
                self.buf.push(8);
                self.buf.push(match r.how {
                    Resolution::Exact => 0,
                    Resolution::Lexical => 1,
                    Resolution::Unknown => 2,
                });
                self.put_value(&r.value);
                self.put_value(&r.given);
            }
            Value::Cut(c) => {
                self.buf.push(9);
                self.buf.push(c.exact as u8);
                put(&mut self.buf, c.items);
                put(&mut self.buf, c.bytes);
                self.put_value(&c.kept);
            }
            // Only in extension events (see `is_wide`).
            Value::Bytes(b) => {
                self.buf.push(12);
                put(&mut self.buf, b.len() as u64);
                self.buf.extend_from_slice(b);
            }
            Value::Range(r) => {
                self.buf.push(13);
                put(&mut self.buf, r.start);
                put(&mut self.buf, r.len);
            }
        }
    }

    fn header(&mut self, kind: u8, ev: &Event) {
        self.header_of(kind, ev.seq, ev.time_ns, (ev.pid, ev.tid));
    }

    fn header_of(&mut self, kind: u8, seq: u64, time_ns: u64, thread: (u32, u32)) {
        let first = *self.first.get_or_insert((seq, time_ns));
        if self.events == 0 {
            self.prev_seq = first.0.wrapping_sub(1);
            self.prev_time = first.1;
        }
        let (pid, tid) = thread;
        let mut tag = kind;
        let same = self.prev_thread == Some(thread);
        if same {
            tag |= SAME_THREAD;
        }
        let next = seq == self.prev_seq.wrapping_add(1);
        if next {
            tag |= NEXT_SEQ;
        }
        self.buf.push(tag);
        if !next {
            put(
                &mut self.buf,
                zigzag(seq.wrapping_sub(self.prev_seq.wrapping_add(1)) as i64),
            );
        }
        put(
            &mut self.buf,
            zigzag(time_ns.wrapping_sub(self.prev_time) as i64),
        );
        if !same {
            put(&mut self.buf, pid as u64);
            put(&mut self.buf, zigzag(tid as i64 - pid as i64));
        }
        self.prev_seq = seq;
        self.prev_time = time_ns;
        self.prev_thread = Some(thread);
        self.events += 1;
    }

    /// An event of an extension kind: the event header, the kind id, the body's length and
    /// the body (opaque here).
    pub fn extension(
        &mut self,
        seq: u64,
        time_ns: u64,
        thread: (u32, u32),
        kind: u64,
        body: &[u8],
    ) {
        self.header_of(K_EXT, seq, time_ns, thread);
        put(&mut self.buf, kind);
        put(&mut self.buf, body.len() as u64);
        self.buf.extend_from_slice(body);
    }

    fn put_call(&mut self, c: SyscallId) {
        put(&mut self.buf, (c.nr as u64) << 2 | abi_code(c.abi));
    }

    fn put_status(&mut self, s: ExitStatus) {
        match s {
            ExitStatus::Code(c) => {
                self.buf.push(0);
                put(&mut self.buf, zigzag(c as i64));
            }
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                self.buf.push(1 | (core_dumped as u8) << 1);
                put(&mut self.buf, zigzag(signal as i64));
            }
        }
    }

    fn put_creds(&mut self, c: &Creds) {
        for v in [c.uid, c.euid, c.gid, c.egid] {
            put(&mut self.buf, v as u64);
        }
    }

    /// Whether `exit` can be stored with `entry` as one pair record.
    pub fn pairs(entry: &Event, exit: &Event) -> bool {
        match (&entry.kind, &exit.kind) {
            (EventKind::SyscallEntry(e), EventKind::SyscallExit(x)) => {
                exit.seq == entry.seq.wrapping_add(1)
                    && exit.pid == entry.pid
                    && exit.tid == entry.tid
                    && x.entry_seq == entry.seq
                    && x.call == e.call
                    && x.args.len() >= e.args.len()
                    && !has_wide(&e.args)
                    && !has_wide(&x.args)
            }
            _ => false,
        }
    }

    /// Whether a pair would need patches (its exit's inputs are not its entry's).
    pub fn pair_is_patched(entry: &Event, exit: &Event) -> bool {
        match (&entry.kind, &exit.kind) {
            (EventKind::SyscallEntry(e), EventKind::SyscallExit(x)) => {
                x.args.get(..e.args.len()) != Some(&e.args[..])
            }
            _ => false,
        }
    }

    /// An entry and its exit in one record (the arguments written once).
    pub fn pair(&mut self, entry: &Event, exit: &Event) {
        let (EventKind::SyscallEntry(e), EventKind::SyscallExit(x)) = (&entry.kind, &exit.kind)
        else {
            self.event(entry);
            self.event(exit);
            return;
        };
        // The inputs the exit holds differently (the kernel's answer for a path).
        let patches: Vec<(usize, Option<&Value>)> = e
            .args
            .iter()
            .zip(x.args.iter())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, (!made_exact(a, b)).then_some(b)))
            .collect();
        self.define(&e.args);
        self.define(&x.args);
        let kind = if patches.is_empty() {
            K_PAIR
        } else {
            K_PAIR_PATCHED
        };
        self.header(kind, entry);
        self.put_call(e.call);
        self.put_args(&e.args);
        put(
            &mut self.buf,
            zigzag(exit.time_ns.wrapping_sub(entry.time_ns) as i64),
        );
        put(&mut self.buf, zigzag(x.ret));
        self.put_args(&x.args[e.args.len()..]);
        if !patches.is_empty() {
            put(&mut self.buf, patches.len() as u64);
            for (i, v) in patches {
                put(&mut self.buf, i as u64);
                match v {
                    None => self.buf.push(PATCH_EXACT),
                    Some(v) => {
                        self.buf.push(PATCH_VALUE);
                        self.put_value(v);
                    }
                }
            }
        }
        self.prev_seq = exit.seq;
        self.prev_time = exit.time_ns;
        self.events += 1;
    }

    /// An extension event: the event header, the kind id, then the body `body` writes,
    /// preceded by its length. Strings and targets the body uses are defined before.
    fn ext_event(&mut self, ev: &Event, id: u64, body: impl FnOnce(&mut Self)) {
        self.header(K_EXT, ev);
        put(&mut self.buf, id);
        let start = self.buf.len();
        body(self);
        let b = self.buf.split_off(start);
        put(&mut self.buf, b.len() as u64);
        self.buf.extend_from_slice(&b);
    }

    fn put_opt_call(&mut self, c: Option<SyscallId>) {
        match c {
            None => self.buf.push(0),
            Some(c) => {
                self.buf.push(1);
                self.put_call(c);
            }
        }
    }

    fn put_str(&mut self, s: &Str) {
        let r = self.str_ref(s);
        put(&mut self.buf, r);
    }

    pub fn event(&mut self, ev: &Event) {
        match &ev.kind {
            EventKind::SyscallEntry(e) if has_wide(&e.args) => {
                self.define(&e.args);
                self.ext_event(ev, ext::ENTRY_WIDE, |s| {
                    s.put_call(e.call);
                    s.put_args(&e.args);
                });
            }
            EventKind::SyscallExit(x) if has_wide(&x.args) => {
                self.define(&x.args);
                self.ext_event(ev, ext::EXIT_WIDE, |s| {
                    s.put_call(x.call);
                    put(&mut s.buf, zigzag(ev.seq.wrapping_sub(x.entry_seq) as i64));
                    put(&mut s.buf, zigzag(x.ret));
                    s.put_args(&x.args);
                });
            }
            EventKind::SmoAccess(a) => {
                self.str_id(&a.object.path);
                self.ext_event(ev, ext::SMO_ACCESS, |s| {
                    s.buf.push(match a.access {
                        MemAccess::Read => 0,
                        MemAccess::Write => 1,
                        MemAccess::ReadWrite => 2,
                    });
                    s.buf.push(match a.object.kind {
                        SmoKind::File => 0,
                        SmoKind::SysvShm => 1,
                        SmoKind::SharedAnon => 2,
                    });
                    put(&mut s.buf, a.object.dev);
                    put(&mut s.buf, a.object.ino);
                    s.put_str(&a.object.path);
                    for v in [a.offset, a.len, a.addr, a.ip] {
                        put(&mut s.buf, v);
                    }
                    match a.via {
                        SmoVia::Fault => s.buf.push(0),
                        SmoVia::Step => s.buf.push(1),
                        SmoVia::Syscall(c) => {
                            s.buf.push(2);
                            s.put_call(c);
                        }
                    }
                    s.buf.push(u8::from(a.private));
                    put(&mut s.buf, a.map_offset);
                    put(&mut s.buf, a.map_len);
                });
            }
            EventKind::AddressSpace(sp) => {
                for v in sp.vmas.iter() {
                    self.str_id(&v.path);
                }
                self.ext_event(ev, ext::ADDRESS_SPACE, |s| {
                    put(&mut s.buf, sp.vmas.len() as u64);
                    for v in sp.vmas.iter() {
                        put(&mut s.buf, v.start);
                        put(&mut s.buf, v.end.wrapping_sub(v.start));
                        s.buf.push(v.prot | (v.shared as u8) << 7);
                        put(&mut s.buf, v.offset);
                        put(&mut s.buf, v.dev);
                        put(&mut s.buf, v.ino);
                        s.put_str(&v.path);
                    }
                });
            }
            EventKind::Divergence(d) => {
                for t in [&d.what, &d.detail].into_iter().chain(d.fields.iter()) {
                    self.str_id(t);
                }
                for v in d.variants.iter() {
                    self.str_id(&v.detail);
                    self.define(&v.args);
                }
                self.ext_event(ev, ext::DIVERGENCE, |s| {
                    s.put_str(&d.what);
                    s.put_opt_call(d.call);
                    put(&mut s.buf, d.fields.len() as u64);
                    for f in d.fields.iter() {
                        s.put_str(f);
                    }
                    s.put_str(&d.detail);
                    put(&mut s.buf, d.variants.len() as u64);
                    for v in d.variants.iter() {
                        put(&mut s.buf, v.index as u64);
                        put(&mut s.buf, v.pid as u64);
                        put(&mut s.buf, zigzag(v.tid as i64 - v.pid as i64));
                        s.buf.push(v.diverged as u8);
                        s.put_opt_call(v.call);
                        s.put_args(&v.args);
                        s.put_str(&v.detail);
                    }
                });
            }
            EventKind::SyscallEntry(e) => {
                self.define(&e.args);
                self.header(K_ENTRY, ev);
                self.put_call(e.call);
                self.put_args(&e.args);
            }
            EventKind::SyscallExit(x) => {
                self.define(&x.args);
                self.header(K_EXIT, ev);
                self.put_call(x.call);
                put(
                    &mut self.buf,
                    zigzag(ev.seq.wrapping_sub(x.entry_seq) as i64),
                );
                put(&mut self.buf, zigzag(x.ret));
                self.put_args(&x.args);
            }
            EventKind::ProcessStart(p) => {
                self.str_id(&p.exe);
                p.argv.iter().for_each(|a| {
                    self.str_id(a);
                });
                self.header(K_START, ev);
                put(&mut self.buf, p.ppid as u64);
                self.put_image(&p.exe, &p.argv);
                self.put_creds(&p.creds);
                put(&mut self.buf, p.clone_flags);
            }
            EventKind::ProcessExec(p) => {
                self.str_id(&p.exe);
                p.argv.iter().for_each(|a| {
                    self.str_id(a);
                });
                self.header(K_EXEC, ev);
                self.put_image(&p.exe, &p.argv);
                self.put_creds(&p.creds);
                put(&mut self.buf, p.dev);
                put(&mut self.buf, p.ino);
            }
            EventKind::ProcessExit(p) => {
                self.header(K_PEXIT, ev);
                self.put_status(p.status);
            }
            EventKind::ThreadStart(t) => {
                self.header(K_TSTART, ev);
                put(&mut self.buf, t.creator_tid as u64);
            }
            EventKind::ThreadExit(t) => {
                self.header(K_TEXIT, ev);
                self.put_status(t.status);
            }
            EventKind::Signal(s) if s.fault.is_some() => {
                self.ext_event(ev, ext::SIGNAL_FAULT, |b| {
                    put(&mut b.buf, zigzag(s.signal as i64));
                    put(&mut b.buf, zigzag(s.code as i64));
                    put(&mut b.buf, s.sender_pid as u64);
                    put(&mut b.buf, s.sender_uid as u64);
                    if let Some(f) = s.fault {
                        put(&mut b.buf, f.addr);
                        put(&mut b.buf, f.ip);
                        b.buf.push(match f.access {
                            FaultAccess::Unknown => 0,
                            FaultAccess::Read => 1,
                            FaultAccess::Write => 2,
                            FaultAccess::ReadWrite => 3,
                            FaultAccess::Execute => 4,
                        });
                    }
                });
            }
            EventKind::Signal(s) => {
                self.header(K_SIGNAL, ev);
                put(&mut self.buf, zigzag(s.signal as i64));
                put(&mut self.buf, zigzag(s.code as i64));
                put(&mut self.buf, s.sender_pid as u64);
                put(&mut self.buf, s.sender_uid as u64);
            }
            EventKind::Lost(l) => {
                self.str_id(&l.reason);
                self.header(K_LOST, ev);
                put(&mut self.buf, l.count);
                let r = self.str_ref(&l.reason);
                put(&mut self.buf, r);
            }
            EventKind::Action(a) => {
                for t in [&a.action, &a.by, &a.detail] {
                    self.str_id(t);
                }
                self.header(K_ACTION, ev);
                for t in [&a.action, &a.by] {
                    let r = self.str_ref(t);
                    put(&mut self.buf, r);
                }
                put(&mut self.buf, a.target_pid as u64);
                let r = self.str_ref(&a.detail);
                put(&mut self.buf, r);
            }
        }
    }

    fn put_image(&mut self, exe: &Str, argv: &[Str]) {
        let r = self.str_ref(exe);
        put(&mut self.buf, r);
        put(&mut self.buf, argv.len() as u64);
        for a in argv {
            let r = self.str_ref(a);
            put(&mut self.buf, r);
        }
    }
}

/// Why a block's records did not decode.
pub type DecodeError = String;

/// Checks, event by event across blocks, that seqs strictly increase and, in a log that numbers
/// every event, follow each other with no gap. Keeps the first anomaly of a block and counts
/// the others, so a badly broken block makes one report, not thousands.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqCheck {
    /// The seq of the last event read, in file order.
    pub last: Option<u64>,
    /// Gaps are anomalies (the writer numbers every event).
    pub contiguous: bool,
    /// The next seq may jump ahead without a report (blocks before it were lost, and that was
    /// reported already).
    pub relaxed: bool,
    /// The first anomaly in the current block: the previous seq and the one that followed.
    pub first: Option<(u64, u64)>,
    /// Further anomalies in the current block.
    pub others: u64,
}

impl SeqCheck {
    pub fn see(&mut self, seq: u64) {
        if let Some(prev) = self.last {
            let wrong = seq <= prev || (self.contiguous && !self.relaxed && seq != prev + 1);
            if wrong {
                if self.first.is_none() {
                    self.first = Some((prev, seq));
                } else {
                    self.others += 1;
                }
            }
        }
        self.relaxed = false;
        self.last = Some(seq);
    }
}

/// What a block held besides the events it decoded.
#[derive(Debug, Default)]
pub struct Skipped {
    /// Events of extension kinds this reader does not know: (kind id, count).
    pub kinds: std::collections::BTreeMap<u64, u64>,
    /// Extension records that are not events, by tag.
    pub records: std::collections::BTreeMap<u8, u64>,
}

impl Skipped {
    pub fn events(&self) -> u64 {
        self.kinds.values().sum()
    }
}

/// Decodes the records of one block.
pub struct Decoder<'a> {
    b: &'a [u8],
    p: usize,
    /// The log's major format version: extension records exist from version 2 on.
    major: u16,
    pub seqs: SeqCheck,
    pub skipped: Skipped,
    strings: Vec<Str>,
    targets: Vec<Arc<Target>>,
    prev_seq: u64,
    prev_time: u64,
    thread: (u32, u32),
    prev_dev: u64,
    prev_ino: u64,
    /// What the block may still cost in memory (see `cost`), charged before each allocation.
    mem_left: u64,
    /// The events the block header says it holds: decoding stops as soon as there are more.
    events_max: u64,
    events: u64,
    /// Skip every extension kind, as a reader that knows none of them does (tests).
    pub ignore_known: bool,
}

impl<'a> Decoder<'a> {
    pub fn new(b: &'a [u8], first_seq: u64, first_time: u64, major: u16, seqs: SeqCheck) -> Self {
        Decoder {
            b,
            p: 0,
            major,
            seqs,
            skipped: Skipped::default(),
            strings: Vec::new(),
            targets: Vec::new(),
            prev_seq: first_seq.wrapping_sub(1),
            prev_time: first_time,
            thread: (0, 0),
            prev_dev: 0,
            prev_ino: 0,
            mem_left: BLOCK_MEM_MAX,
            events_max: u64::MAX,
            events: 0,
            ignore_known: false,
        }
    }

    /// Stops decoding at more than `events` events (the count the block header gives).
    pub fn expect_events(mut self, events: u64) -> Self {
        self.events_max = events;
        self
    }

    /// Charges `n` units of memory (see `cost`) to the block before allocating them.
    fn charge(&mut self, n: u64) -> Result<(), DecodeError> {
        match self.mem_left.checked_sub(n) {
            Some(left) => {
                self.mem_left = left;
                Ok(())
            }
            None => Err(format!(
                "it would take more than {} MiB of memory once decoded, more than any block vigil writes",
                BLOCK_MEM_MAX >> 20
            )),
        }
    }

    /// A count of items that each take at least one byte: no more than the bytes left.
    fn count(&mut self, what: &str) -> Result<usize, DecodeError> {
        let n = self.var()?;
        if n > (self.b.len() - self.p) as u64 {
            return Err(format!("{what} of {n} items is longer than its block"));
        }
        Ok(n as usize)
    }

    /// What the memory charged so far comes to (tests compare it with the writer's bound).
    #[cfg(test)]
    pub fn mem_used(&self) -> u64 {
        BLOCK_MEM_MAX - self.mem_left
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.p).ok_or("record cut short")?;
        self.p += 1;
        Ok(v)
    }

    fn var(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err("varint larger than 64 bits".into());
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn var32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.var()?).map_err(|_| "value out of range".to_string())
    }

    fn zz(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.var()?))
    }

    /// A tid, stored as its distance from `pid`: any i64, so the sum may overflow (a crafted
    /// block) before it is found out of range.
    fn tid_of(&mut self, pid: u32) -> Result<u32, DecodeError> {
        i64::from(pid)
            .checked_add(self.zz()?)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| "tid out of range".into())
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .p
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("record cut short")?;
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<Str, DecodeError> {
        let back = self.var()? as usize;
        let id = self
            .strings
            .len()
            .checked_sub(back)
            .and_then(|n| n.checked_sub(1))
            .ok_or_else(|| format!("reference to an undefined string ({back} back)"))?;
        Ok(self.strings[id].clone())
    }

    fn addr(&mut self) -> Result<SockAddr, DecodeError> {
        Ok(match self.u8()? {
            0 => {
                let b = self.bytes(6)?;
                SockAddr::V4(SocketAddrV4::new(
                    [b[0], b[1], b[2], b[3]].into(),
                    u16::from_le_bytes([b[4], b[5]]),
                ))
            }
            1 => {
                let b = self.bytes(18)?;
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&b[..16]);
                let port = u16::from_le_bytes([b[16], b[17]]);
                let flow = self.var32()?;
                let scope = self.var32()?;
                SockAddr::V6(SocketAddrV6::new(ip.into(), port, flow, scope))
            }
            2 => SockAddr::Unix(self.string()?),
            3 => SockAddr::Netlink {
                pid: self.var32()?,
                groups: self.var32()?,
            },
            4 => {
                let family = u16::try_from(self.var()?).map_err(|_| "family out of range")?;
                let n = self.var()? as usize;
                self.charge(cost::HEAP.saturating_add(n as u64))?;
                SockAddr::Other {
                    family,
                    data: Arc::from(self.bytes(n)?),
                }
            }
            t => return Err(format!("unknown address tag {t}")),
        })
    }

    fn target(&mut self) -> Result<Target, DecodeError> {
        Ok(match self.u8()? {
            0 => {
                let path = self.string()?;
                let dev = self.prev_dev.wrapping_add(self.zz()? as u64);
                let ino = self.prev_ino.wrapping_add(self.zz()? as u64);
                self.prev_dev = dev;
                self.prev_ino = ino;
                Target::File { path, dev, ino }
            }
            1 => Target::Pipe { ino: self.var()? },
            2 => {
                let ino = self.var()?;
                let family = u16::try_from(self.var()?).map_err(|_| "family out of range")?;
                let sock_type = u16::try_from(self.var()?).map_err(|_| "type out of range")?;
                let present = self.u8()?;
                let local = if present & 1 != 0 {
                    Some(self.addr()?)
                } else {
                    None
                };
                let remote = if present & 2 != 0 {
                    Some(self.addr()?)
                } else {
                    None
                };
                Target::Socket(Socket {
                    ino,
                    family,
                    sock_type,
                    local,
                    remote,
                })
            }
            3 => Target::Other {
                label: self.string()?,
                ino: self.var()?,
            },
            t => return Err(format!("unknown target tag {t}")),
        })
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    /// A value; `depth` bounds the nesting of wrappers a crafted block could pile up.
    fn value_at(&mut self, depth: u32) -> Result<Value, DecodeError> {
        if depth > 4 {
            return Err("values nested too deeply".into());
        }
        Ok(match self.u8()? {
            0 => Value::Absent,
            1 => Value::Unreadable(self.var()?),
            2 => Value::Int(self.zz()?),
            3 => Value::Uint(self.var()?),
            4 => Value::Str(self.string()?),
            5 => {
                let num = i32::try_from(self.zz()?).map_err(|_| "fd out of range")?;
                let t = self.var()? as usize;
                let target = if t == 0 {
                    None
                } else {
                    let id = self.targets.len().checked_sub(t).ok_or_else(|| {
                        format!("reference to an undefined target ({} back)", t - 1)
                    })?;
                    Some(self.targets[id].clone())
                };
                Value::Fd(Fd { num, target })
            }
            6 => {
                let n = self.count("a list")?;
                self.charge(cost::HEAP + cost::REF * n as u64)?;
                let mut l = Vec::with_capacity(n);
                for _ in 0..n {
                    l.push(self.string()?);
                }
                Value::List(l.into())
            }
            7 => {
                self.charge(cost::WRAPPER)?;
                Value::Addr(Arc::new(self.addr()?))
            }
            8 => {
                let how = match self.u8()? {
                    0 => Resolution::Exact,
                    1 => Resolution::Lexical,
                    2 => Resolution::Unknown,
                    t => return Err(format!("unknown resolution {t}")),
                };
                self.charge(cost::WRAPPER)?;
                let value = self.value_at(depth + 1)?;
                let given = self.value_at(depth + 1)?;
                Value::Resolved(Arc::new(Resolved { value, given, how }))
            }
            t @ (10 | 11) if self.major >= 2 => {
                self.charge(cost::WRAPPER)?;
                let value = self.value_at(depth + 1)?;
                let n = self.var()? as usize;
                let given = match &value {
                    Value::Str(v) if n > 0 && n < v.len() => {
                        Value::Str(Str::new(&v.as_bytes()[v.len() - n..]))
                    }
                    _ => return Err("a resolved value's tail does not fit it".into()),
                };
                Value::Resolved(Arc::new(Resolved {
                    value,
                    given,
                    how: if t == 10 {
                        Resolution::Exact
                    } else {
                        Resolution::Lexical
                    },
                }))
            }
            9 => {
                let exact = match self.u8()? {
                    0 => false,
                    1 => true,
                    t => return Err(format!("bad cut marker {t}")),
                };
                let items = self.var()?;
                let bytes = self.var()?;
                self.charge(cost::WRAPPER)?;
                let kept = self.value_at(depth + 1)?;
                Value::Cut(Arc::new(Cut {
                    kept,
                    items,
                    bytes,
                    exact,
                }))
            }
            12 if self.major >= 2 => {
                let n = self.count("a byte string")?;
                self.charge(cost::HEAP + n as u64)?;
                Value::Bytes(Arc::from(self.bytes(n)?))
            }
            13 if self.major >= 2 => Value::Range(AddrRange {
                start: self.var()?,
                len: self.var()?,
            }),
            t => return Err(format!("unknown value tag {t}")),
        })
    }

    fn args(&mut self) -> Result<Args, DecodeError> {
        let n = self.count("an argument list")?;
        self.charge(cost::VALUE * n as u64)?;
        let mut a = Args::with_capacity(n);
        for _ in 0..n {
            a.push(self.value()?);
        }
        Ok(a)
    }

    fn call(&mut self) -> Result<SyscallId, DecodeError> {
        let v = self.var()?;
        let abi = match v & 3 {
            0 => Abi::X86_64,
            1 => Abi::I386,
            2 => Abi::X32,
            _ => Abi::IoUring,
        };
        Ok(SyscallId {
            abi,
            nr: u32::try_from(v >> 2).map_err(|_| "syscall number out of range")?,
        })
    }

    fn status(&mut self) -> Result<ExitStatus, DecodeError> {
        let tag = self.u8()?;
        let v = i32::try_from(self.zz()?).map_err(|_| "status out of range")?;
        Ok(match tag & 1 {
            0 => ExitStatus::Code(v),
            _ => ExitStatus::Signal {
                signal: v,
                core_dumped: tag & 2 != 0,
            },
        })
    }

    fn creds(&mut self) -> Result<Creds, DecodeError> {
        Ok(Creds {
            uid: self.var32()?,
            euid: self.var32()?,
            gid: self.var32()?,
            egid: self.var32()?,
        })
    }

    fn image(&mut self) -> Result<(Str, Arc<[Str]>), DecodeError> {
        let exe = self.string()?;
        let n = self.count("an argv")?;
        self.charge(cost::HEAP + cost::REF * n as u64)?;
        let mut argv = Vec::with_capacity(n);
        for _ in 0..n {
            argv.push(self.string()?);
        }
        Ok((exe, argv.into()))
    }

    /// One more event decoded: within the header's count and the block's memory.
    fn count_event(&mut self) -> Result<(), DecodeError> {
        self.count_in_header()?;
        self.charge(cost::EVENT)
    }

    /// One more event in the block (decoded, or skipped as of an unknown kind): within the
    /// header's count.
    fn count_in_header(&mut self) -> Result<(), DecodeError> {
        self.events += 1;
        if self.events > self.events_max {
            return Err(format!(
                "more events than the {} its header says (decoding stopped there)",
                self.events_max
            ));
        }
        Ok(())
    }

    /// Whether this reader knows extension kind `kind` (a test may pretend it knows none).
    fn knows(&self, kind: u64) -> bool {
        (ext::SMO_ACCESS..=ext::SIGNAL_FAULT).contains(&kind) && !self.ignore_known
    }

    fn opt_call(&mut self) -> Result<Option<SyscallId>, DecodeError> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.call()?),
            t => return Err(format!("bad call marker {t}")),
        })
    }

    /// The body of an extension event of a kind this reader knows.
    fn ext_kind(&mut self, kind: u64, seq: u64) -> Result<EventKind, DecodeError> {
        Ok(match kind {
            ext::ENTRY_WIDE => EventKind::SyscallEntry(SyscallEntry {
                call: self.call()?,
                args: self.args()?,
            }),
            ext::EXIT_WIDE => {
                let call = self.call()?;
                let entry_seq = seq.wrapping_sub(self.zz()? as u64);
                EventKind::SyscallExit(SyscallExit {
                    call,
                    entry_seq,
                    ret: self.zz()?,
                    args: self.args()?,
                })
            }
            ext::SIGNAL_FAULT => EventKind::Signal(SignalDelivery {
                signal: i32::try_from(self.zz()?).map_err(|_| "signal out of range")?,
                code: i32::try_from(self.zz()?).map_err(|_| "code out of range")?,
                sender_pid: self.var32()?,
                sender_uid: self.var32()?,
                fault: Some(SignalFault {
                    addr: self.var()?,
                    ip: self.var()?,
                    access: match self.u8()? {
                        0 => FaultAccess::Unknown,
                        1 => FaultAccess::Read,
                        2 => FaultAccess::Write,
                        3 => FaultAccess::ReadWrite,
                        4 => FaultAccess::Execute,
                        t => return Err(format!("unknown fault access {t}")),
                    },
                }),
            }),
            ext::SMO_ACCESS => {
                let access = match self.u8()? {
                    0 => MemAccess::Read,
                    1 => MemAccess::Write,
                    2 => MemAccess::ReadWrite,
                    t => return Err(format!("unknown memory access {t}")),
                };
                let kind = match self.u8()? {
                    0 => SmoKind::File,
                    1 => SmoKind::SysvShm,
                    2 => SmoKind::SharedAnon,
                    t => return Err(format!("unknown shared-memory object kind {t}")),
                };
                let object = SmoObject {
                    kind,
                    dev: self.var()?,
                    ino: self.var()?,
                    path: self.string()?,
                };
                let (offset, len, addr, ip) = (self.var()?, self.var()?, self.var()?, self.var()?);
                let via = match self.u8()? {
                    0 => SmoVia::Fault,
                    1 => SmoVia::Step,
                    2 => SmoVia::Syscall(self.call()?),
                    t => return Err(format!("unknown access path {t}")),
                };
                let private = match self.u8()? {
                    0 => false,
                    1 => true,
                    t => return Err(format!("bad private marker {t}")),
                };
                EventKind::SmoAccess(SmoAccess {
                    access,
                    object,
                    offset,
                    len,
                    addr,
                    ip,
                    via,
                    private,
                    map_offset: self.var()?,
                    map_len: self.var()?,
                })
            }
            ext::ADDRESS_SPACE => {
                let n = self.count("an address space")?;
                self.charge(cost::VMA * n as u64)?;
                let mut vmas = Vec::with_capacity(n);
                for _ in 0..n {
                    let start = self.var()?;
                    let end = start.wrapping_add(self.var()?);
                    let bits = self.u8()?;
                    if bits & 0x78 != 0 {
                        return Err(format!("bad mapping permissions {bits:#x}"));
                    }
                    vmas.push(Vma {
                        start,
                        end,
                        prot: bits & 7,
                        shared: bits & 0x80 != 0,
                        offset: self.var()?,
                        dev: self.var()?,
                        ino: self.var()?,
                        path: self.string()?,
                    });
                }
                EventKind::AddressSpace(AddressSpace { vmas: vmas.into() })
            }
            ext::DIVERGENCE => {
                let what = self.string()?;
                let call = self.opt_call()?;
                let n = self.count("a list of fields")?;
                self.charge(cost::HEAP + cost::REF * n as u64)?;
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    fields.push(self.string()?);
                }
                let detail = self.string()?;
                let n = self.count("a list of variants")?;
                self.charge(cost::VARIANT * n as u64)?;
                let mut variants = Vec::with_capacity(n);
                for _ in 0..n {
                    let index = self.var32()?;
                    let pid = self.var32()?;
                    let tid = self.tid_of(pid)?;
                    let diverged = match self.u8()? {
                        0 => false,
                        1 => true,
                        t => return Err(format!("bad divergence marker {t}")),
                    };
                    variants.push(VariantState {
                        index,
                        pid,
                        tid,
                        diverged,
                        call: self.opt_call()?,
                        args: self.args()?,
                        detail: self.string()?,
                    });
                }
                EventKind::Divergence(Divergence {
                    what,
                    call,
                    fields: fields.into(),
                    detail,
                    variants: variants.into(),
                })
            }
            k => return Err(format!("extension kind {k} is not known")),
        })
    }

    /// Decodes every record, appending events to `out`.
    pub fn decode_all(&mut self, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        while self.p < self.b.len() {
            let tag = self.u8()?;
            match tag {
                DEF_STR => {
                    let shared = self.var()? as usize;
                    let n = self.var()? as usize;
                    let rest = self.bytes(n)?;
                    let prev_len = self.strings.last().map_or(0, |p| p.len());
                    if shared > prev_len {
                        return Err("string shares more than its predecessor has".into());
                    }
                    // Front coding lets a few bytes define a long string: charged in full.
                    self.charge(cost::HEAP + (shared + n) as u64)?;
                    let prev = self.strings.last().map_or(&[][..], |p| p.as_bytes());
                    let mut v = Vec::with_capacity(shared + n);
                    v.extend_from_slice(&prev[..shared]);
                    v.extend_from_slice(rest);
                    self.strings.push(Str::from(v));
                    continue;
                }
                DEF_TARGET => {
                    self.charge(cost::TARGET)?;
                    let t = self.target()?;
                    self.targets.push(Arc::new(t));
                    continue;
                }
                t if self.major >= 2 && EXT_RECORDS.contains(&t) => {
                    let n = self.var()? as usize;
                    self.bytes(n)?;
                    *self.skipped.records.entry(t).or_default() += 1;
                    continue;
                }
                t if t & 0xc0 != 0 => return Err(format!("unknown record tag {t:#x}")),
                _ => {}
            }
            let seq = if tag & NEXT_SEQ != 0 {
                self.prev_seq.wrapping_add(1)
            } else {
                self.prev_seq
                    .wrapping_add(1)
                    .wrapping_add(self.zz()? as u64)
            };
            let time = self.prev_time.wrapping_add(self.zz()? as u64);
            if tag & SAME_THREAD == 0 {
                let pid = self.var32()?;
                self.thread = (pid, self.tid_of(pid)?);
            }
            let (pid, tid) = self.thread;
            self.prev_seq = seq;
            self.prev_time = time;
            self.seqs.see(seq);
            let kind = match tag & KIND_MASK {
                K_ENTRY => EventKind::SyscallEntry(SyscallEntry {
                    call: self.call()?,
                    args: self.args()?,
                }),
                K_EXIT => {
                    let call = self.call()?;
                    let entry_seq = seq.wrapping_sub(self.zz()? as u64);
                    EventKind::SyscallExit(SyscallExit {
                        call,
                        entry_seq,
                        ret: self.zz()?,
                        args: self.args()?,
                    })
                }
                K_PAIR | K_PAIR_PATCHED if tag & KIND_MASK == K_PAIR || self.major >= 2 => {
                    let call = self.call()?;
                    let args = self.args()?;
                    let exit_time = time.wrapping_add(self.zz()? as u64);
                    let ret = self.zz()?;
                    let extra = self.args()?;
                    self.charge(cost::VALUE * (args.len() + extra.len()) as u64)?;
                    let mut all = args.clone();
                    all.extend(extra);
                    if tag & KIND_MASK == K_PAIR_PATCHED {
                        let n = self.var()? as usize;
                        if n == 0 || n > args.len() {
                            return Err("a patched pair with no or too many patches".into());
                        }
                        for _ in 0..n {
                            let i = self.var()? as usize;
                            let Some(slot) = all.get_mut(i).filter(|_| i < args.len()) else {
                                return Err("a patch past the entry's inputs".into());
                            };
                            let code = self.u8()?;
                            // Either way, a new wrapper or value.
                            self.charge(cost::WRAPPER)?;
                            *slot = match code {
                                PATCH_EXACT => match &*slot {
                                    Value::Resolved(r) => Value::resolved(
                                        r.value.clone(),
                                        r.given.clone(),
                                        Resolution::Exact,
                                    ),
                                    _ => return Err("an exact patch of a plain value".into()),
                                },
                                PATCH_VALUE => self.value()?,
                                c => return Err(format!("unknown patch code {c}")),
                            };
                        }
                    }
                    self.count_event()?;
                    out.push(Event {
                        seq,
                        time_ns: time,
                        pid,
                        tid,
                        kind: EventKind::SyscallEntry(SyscallEntry { call, args }),
                    });
                    self.prev_seq = seq.wrapping_add(1);
                    self.prev_time = exit_time;
                    self.seqs.see(self.prev_seq);
                    EventKind::SyscallExit(SyscallExit {
                        call,
                        entry_seq: seq,
                        ret,
                        args: all,
                    })
                }
                K_START => {
                    let ppid = self.var32()?;
                    let (exe, argv) = self.image()?;
                    EventKind::ProcessStart(ProcessStart {
                        ppid,
                        exe,
                        argv,
                        creds: self.creds()?,
                        clone_flags: self.var()?,
                    })
                }
                K_EXEC => {
                    let (exe, argv) = self.image()?;
                    EventKind::ProcessExec(ProcessExec {
                        exe,
                        argv,
                        creds: self.creds()?,
                        dev: self.var()?,
                        ino: self.var()?,
                    })
                }
                K_PEXIT => EventKind::ProcessExit(ProcessExit {
                    status: self.status()?,
                }),
                K_TSTART => EventKind::ThreadStart(ThreadStart {
                    creator_tid: self.var32()?,
                }),
                K_TEXIT => EventKind::ThreadExit(ThreadExit {
                    status: self.status()?,
                }),
                K_SIGNAL => EventKind::Signal(SignalDelivery {
                    signal: i32::try_from(self.zz()?).map_err(|_| "signal out of range")?,
                    code: i32::try_from(self.zz()?).map_err(|_| "code out of range")?,
                    sender_pid: self.var32()?,
                    sender_uid: self.var32()?,
                    fault: None,
                }),
                K_LOST => EventKind::Lost(Lost {
                    count: self.var()?,
                    reason: self.string()?,
                }),
                K_ACTION => EventKind::Action(Action {
                    action: self.string()?,
                    by: self.string()?,
                    target_pid: self.var32()?,
                    detail: self.string()?,
                }),
                K_EXT if self.major >= 2 => {
                    let kind = self.var()?;
                    let n = self.var()? as usize;
                    let end = self.p.checked_add(n).filter(|&e| e <= self.b.len());
                    if let Some(end) = end
                        && self.knows(kind)
                    {
                        let k = self.ext_kind(kind, seq)?;
                        if self.p != end {
                            return Err(format!(
                                "an event of extension kind {kind} does not fill its {n} bytes"
                            ));
                        }
                        k
                    } else {
                        self.bytes(n)?;
                        // Counted as an event of the block, not delivered.
                        self.count_in_header()?;
                        if !self.skipped.kinds.contains_key(&kind) {
                            self.charge(cost::KIND)?;
                        }
                        *self.skipped.kinds.entry(kind).or_default() += 1;
                        continue;
                    }
                }
                k => return Err(format!("unknown event kind {k}")),
            };
            let (seq, time) = if matches!(tag & KIND_MASK, K_PAIR | K_PAIR_PATCHED) {
                (seq.wrapping_add(1), self.prev_time)
            } else {
                (seq, time)
            };
            self.count_event()?;
            out.push(Event {
                seq,
                time_ns: time,
                pid,
                tid,
                kind,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_event::testing::stream;

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut b = Vec::new();
            put(&mut b, v);
            assert_eq!((varlen(v), b.len() as u64), (n, n), "{v}");
        }
    }

    /// Extension records (events of unknown kinds, and records that are not events) are
    /// skipped and counted in version 2, and are corruption in version 1, which had none.
    #[test]
    fn extension_records_are_skipped_from_version_2_on() {
        let ev = |seq: u64| Event {
            seq,
            time_ns: 10 * seq,
            pid: 3,
            tid: 3,
            kind: EventKind::ThreadStart(ThreadStart { creator_tid: 3 }),
        };
        let mut enc = Encoder::default();
        enc.event(&ev(1));
        enc.buf.extend_from_slice(&[0x85, 3, 1, 2, 3]);
        enc.extension(2, 20, (3, 3), 300, b"body");
        enc.event(&ev(3));
        let mut out = Vec::new();
        let mut dec = Decoder::new(&enc.buf, 1, 10, 2, SeqCheck::default());
        dec.decode_all(&mut out).unwrap();
        assert_eq!(out, [ev(1), ev(3)]);
        assert_eq!(
            dec.skipped.kinds.into_iter().collect::<Vec<_>>(),
            [(300, 1)]
        );
        assert_eq!(
            dec.skipped.records.into_iter().collect::<Vec<_>>(),
            [(0x85, 1)]
        );
        assert_eq!(dec.seqs.last, Some(3));
        let e = Decoder::new(&enc.buf, 1, 10, 1, SeqCheck::default())
            .decode_all(&mut Vec::new())
            .unwrap_err();
        assert!(e.contains("unknown record tag 0x85"), "{e}");
        let mut enc = Encoder::default();
        enc.extension(2, 20, (3, 3), 300, b"body");
        let e = Decoder::new(&enc.buf, 2, 20, 1, SeqCheck::default())
            .decode_all(&mut Vec::new())
            .unwrap_err();
        assert!(e.contains("unknown event kind 15"), "{e}");
    }

    /// The kinds stored as extension events come back whole from a reader that knows them,
    /// and a reader that does not (a 2.0 reader) skips each, counts it by kind, and still
    /// delivers the events around them.
    #[test]
    fn known_extension_kinds_round_trip_and_are_skipped_by_a_reader_that_does_not_know_them() {
        let ev = |seq: u64, kind: EventKind| Event {
            seq,
            time_ns: 10 * seq,
            pid: 3,
            tid: 4,
            kind,
        };
        let plain = |seq| ev(seq, EventKind::ThreadStart(ThreadStart { creator_tid: 3 }));
        let smo = SmoAccess {
            access: MemAccess::ReadWrite,
            object: SmoObject {
                kind: SmoKind::File,
                dev: 2049,
                ino: 77,
                path: "/tmp/shared".into(),
            },
            offset: 4096,
            len: 4096,
            addr: 0x7f00_0000_1000,
            ip: 0x40_1000,
            via: SmoVia::Syscall(SyscallId::x86_64(1)),
            private: true,
            map_offset: 4096,
            map_len: 8192,
        };
        let vma = Vma {
            start: 0x40_0000,
            end: 0x40_1000,
            prot: vigil_event::memory::PROT_READ | vigil_event::memory::PROT_EXEC,
            shared: false,
            offset: 0,
            dev: 2049,
            ino: 12,
            path: "/bin/true".into(),
        };
        let bytes = Value::Bytes(Arc::from(&b"\x00ab"[..]));
        let div = Divergence {
            what: "args".into(),
            call: Some(SyscallId::x86_64(1)),
            fields: Arc::from(vec![Str::from("buf")]),
            detail: "the buffers differ".into(),
            variants: Arc::from(vec![
                VariantState {
                    index: 0,
                    pid: 10,
                    tid: 10,
                    diverged: false,
                    call: Some(SyscallId::x86_64(1)),
                    args: [Value::Int(1), bytes.clone()].into_iter().collect(),
                    detail: "".into(),
                },
                VariantState {
                    index: 1,
                    pid: 20,
                    tid: 21,
                    diverged: true,
                    call: None,
                    args: Args::new(),
                    detail: "exited with 1".into(),
                },
            ]),
        };
        let wide = EventKind::SyscallEntry(SyscallEntry {
            call: SyscallId::x86_64(1),
            args: [
                Value::Int(1),
                Value::Range(AddrRange {
                    start: 0x1000,
                    len: 16,
                }),
                bytes,
            ]
            .into_iter()
            .collect(),
        });
        let events = vec![
            plain(1),
            ev(2, EventKind::SmoAccess(smo)),
            ev(
                3,
                EventKind::AddressSpace(AddressSpace {
                    vmas: Arc::from(vec![vma]),
                }),
            ),
            ev(4, EventKind::Divergence(div)),
            ev(5, wide),
            plain(6),
        ];
        let mut enc = Encoder::default();
        events.iter().for_each(|e| enc.event(e));
        let mut out = Vec::new();
        let mut dec = Decoder::new(&enc.buf, 1, 10, 2, SeqCheck::default());
        dec.decode_all(&mut out).unwrap();
        assert_eq!(out, events);
        assert_eq!(dec.skipped.events(), 0);
        let mut out = Vec::new();
        let mut dec = Decoder::new(&enc.buf, 1, 10, 2, SeqCheck::default());
        dec.ignore_known = true;
        dec.decode_all(&mut out).unwrap();
        assert_eq!(out, [plain(1), plain(6)]);
        assert_eq!(
            dec.skipped.kinds.into_iter().collect::<Vec<_>>(),
            [
                (ext::SMO_ACCESS, 1),
                (ext::ADDRESS_SPACE, 1),
                (ext::DIVERGENCE, 1),
                (ext::ENTRY_WIDE, 1)
            ]
        );
        assert_eq!(dec.seqs.last, Some(6));
    }

    proptest! {
        /// The bound the writer relies on is never below what the encoder writes, in a block of
        /// its own or after other events, alone or as a pair.
        #[test]
        fn the_size_bound_holds(events in stream(1..40)) {
            let mut enc = Encoder::default();
            let mut total_mem = 0;
            for (i, ev) in events.iter().enumerate() {
                let defined = enc.defined();
                let before = enc.buf.len() as u64;
                enc.event(ev);
                prop_assert!(enc.buf.len() as u64 - before <= measure(ev).in_block(defined));
                let mut fresh = Encoder::default();
                fresh.event(ev);
                prop_assert!(fresh.buf.len() as u64 <= measure(ev).fresh());
                // The same call's exit right after it: a pair record.
                if let EventKind::SyscallEntry(e) = &ev.kind {
                    let mut args = e.args.clone();
                    args.push(Value::Int(i as i64));
                    let exit = Event {
                        seq: ev.seq + 1,
                        kind: EventKind::SyscallExit(SyscallExit {
                            call: e.call,
                            entry_seq: ev.seq,
                            ret: -1,
                            args,
                        }),
                        ..ev.clone()
                    };
                    let mut pair = Encoder::default();
                    pair.pair(ev, &exit);
                    prop_assert!(pair.buf.len() as u64 <= measure(&exit).fresh() + PAIR_EXTRA);
                    // What the pair costs a reader, within the writer's measure of it.
                    let mut dec = Decoder::new(&pair.buf, ev.seq, ev.time_ns, 2, SeqCheck::default());
                    dec.decode_all(&mut Vec::new()).map_err(TestCaseError::fail)?;
                    let want = pair_mem(ev, &measure(ev), &exit, &measure(&exit));
                    prop_assert!(dec.mem_used() <= want, "{} > {want}", dec.mem_used());
                }
                // Alone in a block, and the whole block so far: what it costs a reader is
                // within the writer's measure.
                let mut dec = Decoder::new(&fresh.buf, ev.seq, ev.time_ns, 2, SeqCheck::default());
                dec.decode_all(&mut Vec::new()).map_err(TestCaseError::fail)?;
                prop_assert!(dec.mem_used() <= measure(ev).mem, "{} > {}", dec.mem_used(), measure(ev).mem);
                total_mem += measure(ev).mem;
                let first = events[0].seq;
                let mut dec = Decoder::new(&enc.buf, first, events[0].time_ns, 2, SeqCheck::default());
                dec.decode_all(&mut Vec::new()).map_err(TestCaseError::fail)?;
                prop_assert!(dec.mem_used() <= total_mem);
            }
        }
    }

    /// The memory units stand for at least what they count.
    #[test]
    fn memory_costs_cover_the_types() {
        use std::mem::size_of;
        assert!(cost::EVENT >= size_of::<Event>() as u64);
        assert!(cost::VALUE >= size_of::<Value>() as u64);
        assert!(cost::REF >= size_of::<Str>() as u64);
        assert!(cost::TARGET >= (size_of::<Target>() + 16) as u64);
        assert!(cost::WRAPPER >= (size_of::<Resolved>().max(size_of::<Cut>()) + 16) as u64);
        assert!(cost::WRAPPER >= (size_of::<SockAddr>() + 16) as u64);
        assert!(cost::VMA >= (size_of::<Vma>() + 16) as u64);
        assert!(cost::VARIANT >= (size_of::<VariantState>() + 16) as u64);
    }
}
