//! Rules over the event kinds of the shared-memory and multi-variant parts: `smo_read`,
//! `smo_write` (a read-modify-write counts as both), `address_space` and `divergence`, with
//! their fields, matched and not matched.

mod common;

use common::*;
use std::sync::Arc;
use vigil_event::*;
use vigil_rules::Val;

fn smo(access: MemAccess, path: &str, offset: u64) -> EventKind {
    EventKind::SmoAccess(SmoAccess {
        access,
        object: SmoObject {
            kind: SmoKind::File,
            dev: 8,
            ino: 99,
            path: path.into(),
        },
        offset,
        len: 4096,
        addr: 0x7f00_0000_0000 + offset,
        ip: 0x401000,
        via: SmoVia::Fault,
        private: false,
        map_offset: 0,
        map_len: 3 * 4096,
    })
}

#[test]
fn a_write_then_a_read_of_the_same_shared_page_by_another_process() {
    let src = r#"RULE flow PATTERN { [smo_write:w, smo_read:r] } WHERE { w.path == r.path, w.offset == r.offset, w.pid != r.pid } RETURN { w.pid, r.pid, r.path, r.access, r.object, r.via, r.addr }"#;
    let mut s = Stream::new();
    s.push(10, 10, smo(MemAccess::Write, "/tmp/shm", 4096));
    s.push(11, 11, smo(MemAccess::Read, "/tmp/shm", 0)); // another page: no
    s.push(12, 12, smo(MemAccess::ReadWrite, "/tmp/shm", 4096)); // a read too: yes
    let m = run(src, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Int(10),
            Val::Int(12),
            Val::Str("/tmp/shm".into()),
            Val::Str("read_write".into()),
            Val::Str("file".into()),
            Val::Str("fault".into()),
            Val::Int(0x7f00_0000_1000),
        ]
    );
    // A read is not a write: a pattern of writes only sees the write and the read-write.
    let m = run(
        r#"RULE w PATTERN { [smo_write:w] } RETURN { w.access }"#,
        &s.events,
    );
    let got: Vec<&Val> = m.iter().map(|m| &m.values[0]).collect();
    assert_eq!(
        got,
        [&Val::Str("write".into()), &Val::Str("read_write".into())]
    );
    // `type` is the exact type.
    let m = run(
        r#"RULE t PATTERN { [smo_read:r] } WHERE { r.type == "smo_read" } RETURN { r.pid }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
}

#[test]
fn address_space_and_divergence_fields() {
    let mut s = Stream::new();
    let vma = |path: &str, ino| Vma {
        start: 0x1000,
        end: 0x2000,
        prot: 5,
        shared: false,
        offset: 0,
        dev: 8,
        ino,
        path: path.into(),
    };
    s.push(
        5,
        5,
        EventKind::AddressSpace(AddressSpace {
            vmas: Arc::from(vec![
                vma("/bin/sh", 3),
                vma("[heap]", 0),
                vma("/lib/libc.so", 4),
            ]),
        }),
    );
    let m = run(
        r#"RULE a PATTERN { [address_space:a] } WHERE { a.vmas > 2 } RETURN { a.vmas, a.paths }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].values[0], Val::Int(3));
    assert_eq!(
        m[0].values[1],
        Val::List(Arc::from(vec![
            Str::from("/bin/sh"),
            Str::from("/lib/libc.so")
        ]))
    );
    let write = SyscallId::from_name("write").unwrap();
    s.push(
        7,
        7,
        EventKind::Divergence(Divergence {
            what: "args".into(),
            call: Some(write),
            fields: Arc::from(vec![Str::from("buf")]),
            detail: "buffers differ".into(),
            variants: Arc::from(vec![
                VariantState {
                    index: 0,
                    pid: 7,
                    tid: 7,
                    diverged: false,
                    call: Some(write),
                    args: Args::new(),
                    detail: "".into(),
                },
                VariantState {
                    index: 1,
                    pid: 8,
                    tid: 8,
                    diverged: true,
                    call: Some(write),
                    args: Args::new(),
                    detail: "".into(),
                },
            ]),
        }),
    );
    let m = run(
        r#"RULE d PATTERN { [divergence:d] } WHERE { d.call == "write", d.what == "args" } RETURN { d.variants, d.fields, d.detail, d.diverged_pids }"#,
        &s.events,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Int(2),
            Val::List(Arc::from(vec![Str::from("buf")])),
            Val::Str("buffers differ".into()),
            Val::List(Arc::from(vec![Str::from("8")])),
        ]
    );
    let m = run(
        r#"RULE d PATTERN { [divergence:d] } WHERE { d.call == "read" } RETURN { d.pid }"#,
        &s.events,
    );
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn fields_of_new_kinds_are_checked() {
    let e = errors(r#"RULE x PATTERN { [smo_read:r] } RETURN { r.vmas }"#);
    assert!(e.contains("no field `vmas`"), "{e}");
    let e =
        errors(r#"RULE x PATTERN { [openat:o] } WHERE { o.type == "smo_reed" } RETURN { o.pid }"#);
    assert!(e.contains("did you mean `smo_read`"), "{e}");
}
