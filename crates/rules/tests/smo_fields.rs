//! Every field of a shared-memory access and of a signal's fault, as rules see them, and the
//! detection the issue asks for: a process wrote a shared page that another process then
//! executed (an instruction fetch is recorded as an `smo_read` whose `addr` is its `ip`).

mod common;

use common::*;
use vigil_event::*;
use vigil_rules::Val;

const PAGE: u64 = 4096;
const BASE: u64 = 0x7f00_0000_0000;

/// An access to page `page` of /tmp/code (a shared file mapping of 3 pages from offset 0),
/// at `addr`, by the instruction at `ip`.
fn access(access: MemAccess, page: u64, addr: u64, ip: u64) -> SmoAccess {
    SmoAccess {
        access,
        object: SmoObject {
            kind: SmoKind::File,
            dev: 8,
            ino: 99,
            path: "/tmp/code".into(),
        },
        offset: page * PAGE,
        len: PAGE,
        addr,
        ip,
        via: SmoVia::Fault,
        private: false,
        map_offset: 0,
        map_len: 3 * PAGE,
    }
}

#[test]
fn every_field_of_a_shared_memory_access() {
    let mut s = Stream::new();
    let write = SyscallId::from_name("write").unwrap();
    let mut a = access(MemAccess::Read, 1, BASE + PAGE + 16, 0x401000);
    a.via = SmoVia::Syscall(write);
    a.private = true;
    a.map_offset = PAGE;
    a.map_len = 2 * PAGE;
    s.push(10, 11, EventKind::SmoAccess(a));
    let m = run(
        r#"RULE all PATTERN { [smo_read:r] } RETURN { r.access, r.object, r.path, r.dev, r.ino, r.offset, r.len, r.addr, r.ip, r.via, r.via_syscall, r.private, r.map_offset, r.map_len, r.pid, r.tid }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Str("read".into()),
            Val::Str("file".into()),
            Val::Str("/tmp/code".into()),
            Val::Int(8),
            Val::Int(99),
            Val::Int(PAGE as i64),
            Val::Int(PAGE as i64),
            Val::Int((BASE + PAGE + 16) as i64),
            Val::Int(0x401000),
            Val::Str("syscall".into()),
            Val::Str("write".into()),
            Val::Int(1),
            Val::Int(PAGE as i64),
            Val::Int(2 * PAGE as i64),
            Val::Int(10),
            Val::Int(11),
        ]
    );
    // A fault: via `fault`, no syscall, not private.
    s.push(
        10,
        10,
        EventKind::SmoAccess(access(MemAccess::Write, 0, BASE, 0x401000)),
    );
    let m = run(
        r#"RULE w PATTERN { [smo_write:w] } WHERE { w.via == fault, w.private == 0 } RETURN { w.via_syscall }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].values, vec![Val::Null]);
    // Names are checked, bare or quoted.
    let m = run(
        r#"RULE k PATTERN { [smo_read:r] } WHERE { r.via_syscall == write, r.access == read, r.object == "file" } RETURN { r.pid }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    for (bad, want) in [
        (r#"r.access == "raed""#, "did you mean `read`"),
        (r#"r.via == faults"#, "did you mean `fault`"),
        (r#"r.object == "sysv""#, "not a value of `object`"),
        (r#"r.via_syscall == wirte"#, "did you mean `write`"),
    ] {
        let e = errors(&format!(
            "RULE x PATTERN {{ [smo_read:r] }} WHERE {{ {bad} }} RETURN {{ r.pid }}"
        ));
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn a_signal_says_where_its_fault_pointed() {
    let mut s = Stream::new();
    let signal = |fault: Option<SignalFault>| {
        EventKind::Signal(SignalDelivery {
            signal: 11,
            code: 1,
            sender_pid: 0,
            sender_uid: 0,
            fault,
        })
    };
    s.push(
        10,
        10,
        signal(Some(SignalFault {
            addr: 0x1234,
            ip: 0x401000,
            access: FaultAccess::Execute,
        })),
    );
    s.push(11, 11, signal(None));
    let m = run(
        r#"RULE s PATTERN { [signal:s] } RETURN { s.pid, s.fault.addr, s.fault.ip, s.fault.access }"#,
        &s.events,
    );
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Int(10),
            Val::Int(0x1234),
            Val::Int(0x401000),
            Val::Str("execute".into())
        ]
    );
    assert_eq!(
        m[1].values,
        vec![Val::Int(11), Val::Null, Val::Null, Val::Null]
    );
    let m = run(
        r#"RULE s PATTERN { [signal:s] } WHERE { s.signal == SIGSEGV, s.fault.access == execute, s.fault.addr == s.fault.ip } RETURN { s.pid }"#,
        &s.events,
    );
    assert_eq!(m.len(), 0, "addr != ip here: {m:?}");
    let m = run(
        r#"RULE s PATTERN { [signal:s] } WHERE { s.fault.access in (execute, read) } RETURN { s.pid }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    let e = errors(r#"RULE x PATTERN { [signal:s] } RETURN { s.fault }"#);
    assert!(e.contains("`fault` has parts"), "{e}");
    let e = errors(r#"RULE x PATTERN { [signal:s] } RETURN { s.fault.adr }"#);
    assert!(e.contains("did you mean `addr`"), "{e}");
    let e = errors(
        r#"RULE x PATTERN { [signal:s] } WHERE { s.fault.access == exec } RETURN { s.pid }"#,
    );
    assert!(e.contains("not a value of `fault.access`"), "{e}");
    // Not a field of other events.
    let e = errors(r#"RULE x PATTERN { [smo_read:r] } RETURN { r.fault.addr }"#);
    assert!(e.contains("no field `fault`"), "{e}");
}

/// The detection: another process executes code from a shared page after a process wrote it.
const SHARED_CODE: &str = r#"
RULE shared_page_executed
PATTERN { [smo_write:w, smo_read:x] }
WHERE   { w.dev == x.dev, w.ino == x.ino, w.offset == x.offset, w.pid != x.pid, x.ip == x.addr }
RETURN  { w.pid, x.pid, x.path, x.offset, x.ip }
"#;

#[test]
fn a_process_executes_a_shared_page_another_process_wrote() {
    let mut s = Stream::new();
    let code = BASE + PAGE; // page 1 of the mapping
    // The writer stores code into page 1; it also stores to page 2.
    s.push(
        10,
        10,
        EventKind::SmoAccess(access(MemAccess::Write, 1, code + 64, 0x401000)),
    );
    s.push(
        10,
        10,
        EventKind::SmoAccess(access(MemAccess::Write, 2, code + PAGE, 0x401000)),
    );
    // The other process reads page 1 as data (ip elsewhere): no detection.
    s.push(
        20,
        20,
        EventKind::SmoAccess(access(MemAccess::Read, 1, code + 8, 0x402000)),
    );
    // It executes page 0, which nobody wrote: none either.
    s.push(
        20,
        20,
        EventKind::SmoAccess(access(MemAccess::Read, 0, BASE + 32, BASE + 32)),
    );
    // The writer executes its own page: not another process.
    s.push(
        10,
        10,
        EventKind::SmoAccess(access(MemAccess::Read, 1, code + 64, code + 64)),
    );
    // The other process jumps into page 1: the instruction fetch faults with addr == ip.
    s.push(
        20,
        20,
        EventKind::SmoAccess(access(MemAccess::Read, 1, code + 64, code + 64)),
    );
    let m = run(SHARED_CODE, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Int(10),
            Val::Int(20),
            Val::Str("/tmp/code".into()),
            Val::Int(PAGE as i64),
            Val::Int((code + 64) as i64),
        ]
    );
    // An execution before the write is not one of written code.
    let mut early = Stream::new();
    early.push(
        20,
        20,
        EventKind::SmoAccess(access(MemAccess::Read, 1, code + 64, code + 64)),
    );
    early.push(
        10,
        10,
        EventKind::SmoAccess(access(MemAccess::Write, 1, code + 64, 0x401000)),
    );
    assert!(run(SHARED_CODE, &early.events).is_empty());
}
