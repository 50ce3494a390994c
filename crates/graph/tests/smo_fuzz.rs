//! Shared-memory accesses and read/write calls with arbitrary offsets, lengths and mappings
//! (zero, huge, at the top of the address range), at every granularity, mixed into random
//! event streams: the graph is built and tracked from every object in both directions without
//! a panic, and what it builds holds together (edges in event order, episodes that end no
//! earlier than they begin, every part with its bytes).

use proptest::prelude::*;
use std::sync::Arc;
use vigil_event::*;
use vigil_graph::*;

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..20_000,
        Just(u64::MAX),
        Just(u64::MAX - 4095),
        any::<u64>()
    ]
}

fn access() -> impl Strategy<Value = EventKind> {
    (
        prop_oneof![
            Just(MemAccess::Read),
            Just(MemAccess::Write),
            Just(MemAccess::ReadWrite)
        ],
        0u64..3,
        offset(),
        prop_oneof![Just(0u64), 1u64..9000, Just(u64::MAX)],
        (
            offset(),
            prop_oneof![Just(0u64), 1u64..20_000, Just(u64::MAX)],
        ),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(access, obj, offset, len, map, private, via)| {
            let kind = [SmoKind::File, SmoKind::SysvShm, SmoKind::SharedAnon][obj as usize % 3];
            EventKind::SmoAccess(SmoAccess {
                access,
                object: SmoObject {
                    kind,
                    dev: 8,
                    ino: 42,
                    path: "/f".into(),
                },
                offset,
                len,
                addr: offset,
                ip: 1,
                via: match via {
                    0 => SmoVia::Fault,
                    1 => SmoVia::Step,
                    _ => SmoVia::Syscall(SyscallId::x86_64(0)),
                },
                private,
                map_offset: map.0,
                map_len: map.1,
            })
        })
}

/// read/write/pread64/pwrite64/ftruncate/mmap of /f, offsets and returns of any size.
fn io() -> impl Strategy<Value = EventKind> {
    (
        prop::sample::select(vec![
            "read",
            "write",
            "pread64",
            "pwrite64",
            "readv",
            "writev",
            "preadv2",
            "ftruncate",
            "mmap",
        ]),
        prop_oneof![
            Just(Value::Absent),
            offset().prop_map(Value::Uint),
            any::<i64>().prop_map(Value::Int)
        ],
        prop_oneof![Just(0i64), 1i64..10_000, Just(i64::MAX), Just(-9)],
    )
        .prop_map(|(call, off, ret)| {
            let id = SyscallId::from_name(call).unwrap();
            let sig = id.signature();
            let t = Arc::new(Target::File {
                path: "/f".into(),
                dev: 8,
                ino: 42,
            });
            let args: Args = sig
                .args
                .iter()
                .chain(sig.outputs.iter())
                .map(|a| match a.name {
                    "fd" => Value::Fd(Fd::new(3, Some(t.clone()))),
                    "offset" => off.clone(),
                    "prot" => Value::Uint(3),
                    "flags" => Value::Uint(1),
                    _ => Value::Uint(4096),
                })
                .collect();
            EventKind::SyscallExit(SyscallExit {
                call: id,
                entry_seq: 0,
                ret,
                args,
            })
        })
}

/// A random stream, the recording's mode, and the granularity asked for.
type Case = (Vec<Event>, Option<&'static str>, Option<&'static str>);

fn case() -> impl Strategy<Value = Case> {
    let events = proptest::collection::vec(
        (
            prop_oneof![3 => access(), 2 => io(), 2 => vigil_event::testing::kind()],
            1u32..4,
            0u64..5_000_000,
        ),
        1..60,
    )
    .prop_map(|items| {
        let mut time = 1_000_000_000u64;
        items
            .into_iter()
            .enumerate()
            .map(|(i, (kind, pid, dt))| {
                time += dt;
                Event {
                    seq: i as u64 + 1,
                    time_ns: time,
                    pid,
                    tid: pid,
                    kind,
                }
            })
            .collect::<Vec<_>>()
    });
    (
        events,
        prop::sample::select(vec![
            None,
            Some("page"),
            Some("vma"),
            Some("object"),
            Some("minipage:8"),
            Some("off"),
        ]),
        prop::sample::select(vec![
            None,
            Some("object"),
            Some("vma"),
            Some("page"),
            Some("minipage:2048"),
        ]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_stream_builds_and_tracks((events, mode, wanted) in case()) {
        // A granularity finer than the recording is refused, not built.
        let Ok(cfg) = SmoConfig::for_log(mode, Some(10_000_000), wanted) else {
            return Ok(());
        };
        let mut b = GraphBuilder::with_smo(cfg);
        for e in &events {
            b.add(e);
        }
        let g = b.finish();
        prop_assert!(g.edges.windows(2).all(|w| w[0].seq <= w[1].seq));
        for e in &g.edges {
            prop_assert!(e.until() >= e.at(), "{e:?}");
            prop_assert!(e.until() <= g.last_seq.max(e.seq), "{e:?}");
        }
        for n in &g.nodes {
            prop_assert_eq!(n.kind == NodeKind::Smo, n.part.is_some());
        }
        let none = Filters::new(true, &[]).unwrap();
        for n in 0..g.nodes.len() as NodeId {
            for d in [Direction::Backward, Direction::Forward] {
                let t = track(&g, n, default_at(&g, n, d), d, &none, Limits::default());
                prop_assert!(t.nodes.contains(&n));
            }
        }
        if !g.nodes.is_empty() {
            let t = track(&g, 0, g.last_seq, Direction::Backward, &none, Limits::default());
            let _ = render_json(&g, &t);
            let _ = render_tree(&g, &t, false);
        }
    }
}
