//! Shared-memory accesses in the graph: a write through a file mapping is an edge from the
//! process to the file, a read one from the file to the process, a read-modify-write both;
//! SysV and shared anonymous memory, address-space snapshots and divergences add no edges.

use std::sync::Arc;
use vigil_event::*;
use vigil_graph::*;

fn ev(seq: u64, pid: u32, kind: EventKind) -> Event {
    Event {
        seq,
        time_ns: seq * 1000,
        pid,
        tid: pid,
        kind,
    }
}

fn start(seq: u64, pid: u32) -> Event {
    ev(
        seq,
        pid,
        EventKind::ProcessStart(ProcessStart {
            ppid: 1,
            exe: "/bin/prog".into(),
            argv: Arc::from(vec![Str::from("prog")]),
            creds: Creds::default(),
            clone_flags: 0,
        }),
    )
}

fn smo(seq: u64, pid: u32, access: MemAccess, kind: SmoKind) -> Event {
    ev(
        seq,
        pid,
        EventKind::SmoAccess(SmoAccess {
            access,
            object: SmoObject {
                kind,
                dev: 8,
                ino: 42,
                path: "/tmp/shared".into(),
            },
            offset: 0,
            len: 4096,
            addr: 0x7f00_0000_0000,
            ip: 0x401000,
            via: SmoVia::Fault,
            private: false,
            map_offset: 0,
            map_len: 3 * 4096,
        }),
    )
}

/// (from, to, call) of every edge, by label.
fn edges(g: &Graph) -> Vec<(String, String, &'static str)> {
    g.edges
        .iter()
        .filter(|e| g.call_name(e.call).starts_with("smo"))
        .map(|e| {
            (
                g.nodes[e.from as usize].label.clone(),
                g.nodes[e.to as usize].label.clone(),
                g.call_name(e.call),
            )
        })
        .collect()
}

#[test]
fn shared_file_accesses_are_read_and_write_edges() {
    let mut b = GraphBuilder::new();
    let events = [
        start(1, 10),
        start(2, 11),
        start(3, 12),
        smo(4, 10, MemAccess::Write, SmoKind::File),
        smo(5, 11, MemAccess::Read, SmoKind::File),
        smo(6, 12, MemAccess::ReadWrite, SmoKind::File),
        // Not files: no edge (yet).
        smo(7, 10, MemAccess::Write, SmoKind::SysvShm),
        smo(8, 11, MemAccess::Read, SmoKind::SharedAnon),
        ev(
            9,
            10,
            EventKind::AddressSpace(AddressSpace {
                vmas: Arc::from(vec![]),
            }),
        ),
        ev(
            10,
            10,
            EventKind::Divergence(Divergence {
                what: "exit".into(),
                call: None,
                fields: Arc::from(vec![]),
                detail: "".into(),
                variants: Arc::from(vec![]),
            }),
        ),
    ];
    for e in &events {
        b.add(e);
    }
    let g = b.finish();
    let p = |pid: u32| format!("{pid} prog");
    let f = "/tmp/shared".to_string();
    assert_eq!(
        edges(&g),
        vec![
            (p(10), f.clone(), "smo_write"),
            (f.clone(), p(11), "smo_read"),
            (f.clone(), p(12), "smo_read"),
            (p(12), f.clone(), "smo_write"),
        ]
    );
    // The snapshot and the divergence added no edge: only fork edges and the four above.
    assert_eq!(g.edges.len(), 3 + 4, "{:?}", g.edges);
    // The file written through the mapping is the one its writer leads to: backtracking from
    // the reader finds the writer.
    assert_eq!(g.nodes.iter().filter(|n| n.label == f).count(), 1);
}
