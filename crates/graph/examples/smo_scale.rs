//! How the graph scales with shared-memory accesses: a producer and consumers exchanging data
//! through a mapped 64 KiB ring (stores, loads, a syscall every few accesses), built and
//! backtracked at each granularity. `cargo run --release -p vigil-graph --example smo_scale
//! -- [EVENTS]` prints the time and the graph's size; a log without accesses costs nothing
//! extra (docs/graph.md, "Scale").

use std::sync::Arc;
use std::time::Instant;
use vigil_event::*;
use vigil_graph::*;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let events = ring(n);
    for (mode, g) in [
        ("minipage:64", None),
        ("minipage:64", Some("page")),
        ("minipage:64", Some("vma")),
        ("minipage:64", Some("object")),
    ] {
        let t0 = Instant::now();
        let Ok(cfg) = SmoConfig::for_log(Some(mode), Some(10_000_000), g) else {
            eprintln!("bad granularity");
            return;
        };
        let mut b = GraphBuilder::with_smo(cfg);
        for e in &events {
            b.add(e);
        }
        let graph = b.finish();
        let built = t0.elapsed();
        let Ok((start, _)) = ObjectSpec::parse("file:/tmp/out").and_then(|s| s.resolve(&graph))
        else {
            eprintln!("no /tmp/out");
            return;
        };
        let Ok(none) = Filters::new(true, &[]) else {
            return;
        };
        let t1 = Instant::now();
        let t = track(
            &graph,
            start,
            default_at(&graph, start, Direction::Backward),
            Direction::Backward,
            &none,
            Limits::default(),
        );
        println!(
            "{:>12}: {} events, build {:.2} s, backtrack {:.3} s; {} nodes ({} parts), {} edges, {} reached",
            graph.granularity.to_string(),
            events.len(),
            built.as_secs_f64(),
            t1.elapsed().as_secs_f64(),
            graph.nodes.len(),
            graph.smo.parts,
            graph.edges.len(),
            t.nodes.len()
        );
    }
}

/// Pid 10 stores 64-byte messages round a 64 KiB ring; pids 11..14 load them; every 8th event
/// is a syscall of the process (which ends its episode); 1 in 1000 a consumer writes /tmp/out.
fn ring(n: u64) -> Vec<Event> {
    let ring = 64 * 1024;
    let write = SyscallId::from_name("write").unwrap_or(SyscallId::x86_64(1));
    let getpid = SyscallId::from_name("getpid").unwrap_or(SyscallId::x86_64(39));
    let out = Arc::new(Target::File {
        path: "/tmp/out".into(),
        dev: 8,
        ino: 77,
    });
    let mut v = Vec::with_capacity(n as usize);
    for seq in 1..=n {
        let pid = if seq % 1000 == 0 {
            11
        } else {
            10 + (seq % 5) as u32
        };
        let kind = if seq % 1000 == 0 {
            EventKind::SyscallExit(SyscallExit {
                call: write,
                entry_seq: 0,
                ret: 8,
                args: [Value::Fd(Fd::new(3, Some(out.clone())))]
                    .into_iter()
                    .collect(),
            })
        } else if seq % 8 == 0 {
            EventKind::SyscallExit(SyscallExit {
                call: getpid,
                entry_seq: 0,
                ret: pid as i64,
                args: Args::new(),
            })
        } else {
            let offset = (seq * 64) % ring;
            EventKind::SmoAccess(SmoAccess {
                access: if pid == 10 {
                    MemAccess::Write
                } else {
                    MemAccess::Read
                },
                object: SmoObject {
                    kind: SmoKind::File,
                    dev: 8,
                    ino: 42,
                    path: "/dev/shm/ring".into(),
                },
                offset,
                len: 8,
                addr: 0x7f00_0000_0000 + offset,
                ip: 0x401000,
                via: SmoVia::Fault,
                private: false,
                map_offset: 0,
                map_len: ring,
            })
        };
        v.push(Event {
            seq,
            time_ns: seq * 1000,
            pid,
            tid: pid,
            kind,
        });
    }
    v
}
