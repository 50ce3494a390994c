//! proptest strategies for random, well-formed events (values consistent with each argument's
//! kind, as a backend produces them). Used by property tests across the workspace.

use crate::Str;
use crate::event::*;
use crate::memory::{
    AddressSpace, Divergence, FaultAccess, MemAccess, SignalFault, SmoAccess, SmoKind, SmoObject,
    SmoVia, VariantState, Vma,
};
use crate::syscall::{self, ArgKind, SyscallId};
use crate::value::{AddrRange, Cut, Fd, Resolution, SockAddr, Socket, Target, Value};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

pub fn text() -> impl Strategy<Value = Str> {
    prop_oneof![
        4 => "/[a-z]{1,8}(/[a-z0-9._-]{1,12}){0,3}".prop_map(|s| Str::from(s.as_str())),
        1 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Str::from),
    ]
}

pub fn resolution() -> impl Strategy<Value = Resolution> {
    prop_oneof![
        Just(Resolution::Exact),
        Just(Resolution::Lexical),
        Just(Resolution::Unknown),
    ]
}

pub fn sockaddr() -> impl Strategy<Value = SockAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, p)| SockAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), p))),
        (any::<u128>(), any::<u16>(), any::<u32>(), any::<u32>())
            .prop_map(|(ip, p, f, s)| SockAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), p, f, s))),
        text().prop_map(SockAddr::Unix),
        (any::<u32>(), any::<u32>()).prop_map(|(pid, groups)| SockAddr::Netlink { pid, groups }),
        (100u16..200, proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(family, d)| {
            SockAddr::Other {
                family,
                data: Arc::from(d),
            }
        }),
    ]
}

pub fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (text(), any::<u64>(), any::<u64>()).prop_map(|(path, dev, ino)| Target::File {
            path,
            dev,
            ino
        }),
        any::<u64>().prop_map(|ino| Target::Pipe { ino }),
        (
            any::<u64>(),
            any::<u16>(),
            any::<u16>(),
            proptest::option::of(sockaddr()),
            proptest::option::of(sockaddr())
        )
            .prop_map(
                |(ino, family, sock_type, local, remote)| Target::Socket(Socket {
                    ino,
                    family,
                    sock_type,
                    local,
                    remote
                })
            ),
        (text(), any::<u64>()).prop_map(|(label, ino)| Target::Other { label, ino }),
    ]
}

/// A value such as a backend would store for an argument of this kind.
pub fn value_for(kind: ArgKind) -> BoxedStrategy<Value> {
    let v: BoxedStrategy<Value> = match kind {
        ArgKind::Fd | ArgKind::DirFd => (-100i32..1024, proptest::option::of(target()))
            .prop_map(|(n, t)| Value::Fd(Fd::new(n, t.map(Arc::new))))
            .boxed(),
        k if k.is_path() => prop_oneof![
            3 => text().prop_map(Value::Str),
            1 => (text(), proptest::option::of(text()), resolution()).prop_map(|(v, g, how)| {
                Value::resolved(Value::Str(v), g.map_or(Value::Absent, Value::Str), how)
            }),
            // Given relative: the tail of the resolved path (stored compactly in the log).
            1 => (text(), 1usize..6).prop_map(|(v, n)| {
                let b = v.as_bytes();
                let tail = Str::new(&b[b.len().saturating_sub(n).max(1).min(b.len())..]);
                Value::resolved(Value::Str(v), Value::Str(tail), Resolution::Exact)
            }),
            1 => (text(), 1usize..6).prop_map(|(v, n)| {
                let b = v.as_bytes();
                let tail = Str::new(&b[b.len().saturating_sub(n).max(1).min(b.len())..]);
                Value::resolved(Value::Str(v), Value::Str(tail), Resolution::Lexical)
            }),
        ]
        .boxed(),
        ArgKind::Str => text().prop_map(Value::Str).boxed(),
        ArgKind::Pid => prop_oneof![
            3 => any::<i64>().prop_map(Value::Int),
            1 => (any::<i64>(), any::<i64>(), resolution()).prop_map(|(v, g, how)| {
                Value::resolved(Value::Int(v), Value::Int(g), how)
            }),
        ]
        .boxed(),
        ArgKind::Int | ArgKind::Signal => any::<i64>().prop_map(Value::Int).boxed(),
        ArgKind::Argv => (
            proptest::collection::vec(text(), 0..4),
            proptest::option::of((any::<u64>(), any::<u64>(), any::<bool>())),
        )
            .prop_map(|(v, cut)| {
                let list = Value::List(v.into());
                match cut {
                    None => list,
                    Some((items, bytes, exact)) => Value::Cut(Arc::new(Cut {
                        kept: list,
                        items,
                        bytes,
                        exact,
                    })),
                }
            })
            .boxed(),
        ArgKind::SockAddr(_) | ArgKind::SockAddrOut => {
            sockaddr().prop_map(|a| Value::Addr(Arc::new(a))).boxed()
        }
        ArgKind::Hex => prop_oneof![
            8 => any::<u64>().prop_map(Value::Uint),
            1 => bytes().prop_map(Value::Bytes),
            1 => (any::<u64>(), any::<u64>()).prop_map(|(start, len)| Value::Range(AddrRange { start, len })),
        ]
        .boxed(),
        _ => any::<u64>().prop_map(Value::Uint).boxed(),
    };
    prop_oneof![
        10 => v,
        1 => Just(Value::Absent),
        1 => any::<u64>().prop_map(Value::Unreadable),
    ]
    .boxed()
}

pub fn bytes() -> impl Strategy<Value = Arc<[u8]>> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Arc::from)
}

pub fn smo_access() -> impl Strategy<Value = SmoAccess> {
    let access = prop_oneof![
        Just(MemAccess::Read),
        Just(MemAccess::Write),
        Just(MemAccess::ReadWrite)
    ];
    let kind = prop_oneof![
        Just(SmoKind::File),
        Just(SmoKind::SysvShm),
        Just(SmoKind::SharedAnon)
    ];
    let via = prop_oneof![
        Just(SmoVia::Fault),
        Just(SmoVia::Step),
        syscall_id().prop_map(SmoVia::Syscall)
    ];
    (
        access,
        (kind, any::<u64>(), any::<u64>(), text()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        via,
        (any::<bool>(), any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |(
                access,
                (kind, dev, ino, path),
                (offset, len, addr, ip),
                via,
                (private, map_offset, map_len),
            )| SmoAccess {
                access,
                object: SmoObject {
                    kind,
                    dev,
                    ino,
                    path,
                },
                offset,
                len,
                addr,
                ip,
                via,
                private,
                map_offset,
                map_len,
            },
        )
}

pub fn vma() -> impl Strategy<Value = Vma> {
    (
        (any::<u64>(), any::<u64>(), 0u8..8, any::<bool>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), text()),
    )
        .prop_map(
            |((start, end, prot, shared), (offset, dev, ino, path))| Vma {
                start,
                end,
                prot,
                shared,
                offset,
                dev,
                ino,
                path,
            },
        )
}

pub fn divergence() -> impl Strategy<Value = Divergence> {
    let variant = (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>()),
        proptest::option::of(syscall_id()),
        text(),
    )
        .prop_flat_map(|((index, pid, tid, diverged), call, detail)| {
            let args = match call {
                Some(c) => args_for(c, false),
                None => Just(Args::new()).boxed(),
            };
            args.prop_map(move |args| VariantState {
                index,
                pid,
                tid,
                diverged,
                call,
                args,
                detail: detail.clone(),
            })
        });
    (
        (text(), proptest::option::of(syscall_id())),
        (proptest::collection::vec(text(), 0..3), text()),
        proptest::collection::vec(variant, 0..3),
    )
        .prop_map(|((what, call), (fields, detail), variants)| Divergence {
            what,
            call,
            fields: fields.into(),
            detail,
            variants: variants.into(),
        })
}

pub fn syscall_id() -> impl Strategy<Value = SyscallId> {
    let known: Vec<SyscallId> = syscall::known()
        .map(|(s, _)| SyscallId::from_sysno(s))
        .collect();
    prop_oneof![
        8 => proptest::sample::select(known),
        1 => (0u32..460).prop_map(SyscallId::x86_64),
        1 => (0u32..440).prop_map(|nr| SyscallId { abi: crate::Abi::I386, nr }),
        1 => (0u32..70).prop_map(|nr| SyscallId { abi: crate::Abi::IoUring, nr }),
    ]
}

/// Arguments of a call: inputs only for entries, inputs and outputs for exits; no trailing
/// absent values (backends trim them).
pub fn args_for(call: SyscallId, exit: bool) -> BoxedStrategy<Args> {
    let sig = call.signature();
    let n = sig.args.len() + if exit { sig.outputs.len() } else { 0 };
    let parts: Vec<BoxedStrategy<Value>> = (0..n)
        .map(|i| value_for(sig.field(i).map_or(ArgKind::Hex, |a| a.kind)))
        .collect();
    parts
        .prop_map(|mut v| {
            while v.last() == Some(&Value::Absent) {
                v.pop();
            }
            Args::from_vec(v)
        })
        .boxed()
}

fn status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        any::<i32>().prop_map(ExitStatus::Code),
        (1i32..65, any::<bool>()).prop_map(|(signal, core_dumped)| ExitStatus::Signal {
            signal,
            core_dumped
        }),
    ]
}

fn creds() -> impl Strategy<Value = Creds> {
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(uid, euid, gid, egid)| {
        Creds {
            uid,
            euid,
            gid,
            egid,
        }
    })
}

pub fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        6 => syscall_id().prop_flat_map(|c| args_for(c, false).prop_map(move |args| EventKind::SyscallEntry(SyscallEntry { call: c, args }))),
        6 => (syscall_id(), any::<u64>(), any::<i64>()).prop_flat_map(|(c, e, r)| args_for(c, true)
            .prop_map(move |args| EventKind::SyscallExit(SyscallExit { call: c, entry_seq: e, ret: r, args }))),
        1 => (any::<u32>(), text(), proptest::collection::vec(text(), 0..3), creds(), any::<u64>())
            .prop_map(|(ppid, exe, argv, creds, clone_flags)| EventKind::ProcessStart(ProcessStart { ppid, exe, argv: argv.into(), creds, clone_flags })),
        1 => (text(), proptest::collection::vec(text(), 0..3), creds(), any::<u64>(), any::<u64>())
            .prop_map(|(exe, argv, creds, dev, ino)| EventKind::ProcessExec(ProcessExec { exe, argv: argv.into(), creds, dev, ino })),
        1 => status().prop_map(|status| EventKind::ProcessExit(ProcessExit { status })),
        1 => any::<u32>().prop_map(|creator_tid| EventKind::ThreadStart(ThreadStart { creator_tid })),
        1 => status().prop_map(|status| EventKind::ThreadExit(ThreadExit { status })),
        1 => (1i32..65, any::<i32>(), any::<u32>(), any::<u32>(), proptest::option::of(signal_fault()))
            .prop_map(|(signal, code, sender_pid, sender_uid, fault)| EventKind::Signal(SignalDelivery { signal, code, sender_pid, sender_uid, fault })),
        1 => (any::<u64>(), text()).prop_map(|(count, reason)| EventKind::Lost(Lost { count, reason })),
        1 => (text(), text(), any::<u32>(), text()).prop_map(|(action, by, target_pid, detail)| EventKind::Action(Action { action, by, target_pid, detail })),
        1 => smo_access().prop_map(EventKind::SmoAccess),
        1 => proptest::collection::vec(vma(), 0..4).prop_map(|v| EventKind::AddressSpace(AddressSpace { vmas: v.into() })),
        1 => divergence().prop_map(EventKind::Divergence),
    ]
}

/// A stream of `len` events with increasing seq and time, a handful of pids/tids.
pub fn stream(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec((kind(), 0u64..3, 0u64..2_000_000, 1u32..6, 0u32..3), len).prop_map(
        |items| {
            let mut seq = 0u64;
            let mut time = 1_700_000_000_000_000_000u64;
            items
                .into_iter()
                .map(|(kind, dseq, dt, pid, t)| {
                    seq += 1 + dseq;
                    time += dt;
                    let pid = 1000 + pid;
                    Event {
                        seq,
                        time_ns: time,
                        pid,
                        tid: pid + t * 100,
                        kind,
                    }
                })
                .collect()
        },
    )
}

/// The fault of a signal raised at an access.
fn signal_fault() -> impl Strategy<Value = SignalFault> {
    let access = prop_oneof![
        Just(FaultAccess::Unknown),
        Just(FaultAccess::Read),
        Just(FaultAccess::Write),
        Just(FaultAccess::ReadWrite),
        Just(FaultAccess::Execute),
    ];
    (any::<u64>(), any::<u64>(), access).prop_map(|(addr, ip, access)| SignalFault {
        addr,
        ip,
        access,
    })
}
