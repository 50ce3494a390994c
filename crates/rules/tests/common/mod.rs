//! Building event streams by hand and running rules over them.
#![allow(dead_code)]

use std::sync::Arc;
use vigil_event::value::{SockAddr, Socket};
use vigil_event::*;
use vigil_rules::*;

pub struct Stream {
    pub events: Vec<Event>,
    pub time: u64,
    entries: std::collections::HashMap<u32, u64>,
}

impl Stream {
    pub fn new() -> Self {
        Stream {
            events: Vec::new(),
            time: 1_000_000_000,
            entries: Default::default(),
        }
    }

    /// Advances the clock.
    pub fn wait_ms(&mut self, ms: u64) -> &mut Self {
        self.time += ms * 1_000_000;
        self
    }

    pub fn push(&mut self, pid: u32, tid: u32, kind: EventKind) -> u64 {
        let seq = self.events.len() as u64 + 1;
        self.time += 1000;
        self.events.push(Event {
            seq,
            time_ns: self.time,
            pid,
            tid,
            kind,
        });
        seq
    }

    fn args(call: SyscallId, named: &[(&str, Value)]) -> Args {
        let sig = call.signature();
        let n = sig.args.len() + sig.outputs.len();
        let mut a: Args = (0..n).map(|_| Value::Absent).collect();
        for (name, v) in named {
            let i = sig
                .field_index(name)
                .unwrap_or_else(|| panic!("{call} has no {name}"));
            a[i] = v.clone();
        }
        while a.last() == Some(&Value::Absent) {
            a.pop();
        }
        a
    }

    pub fn enter(&mut self, pid: u32, tid: u32, name: &str, named: &[(&str, Value)]) -> u64 {
        let call = SyscallId::from_name(name).unwrap();
        let mut args = Self::args(call, named);
        args.truncate(call.signature().args.len());
        let seq = self.push(
            pid,
            tid,
            EventKind::SyscallEntry(SyscallEntry { call, args }),
        );
        self.entries.insert(tid, seq);
        seq
    }

    pub fn exit(
        &mut self,
        pid: u32,
        tid: u32,
        name: &str,
        ret: i64,
        named: &[(&str, Value)],
    ) -> u64 {
        let call = SyscallId::from_name(name).unwrap();
        let args = Self::args(call, named);
        let entry_seq = self.entries.remove(&tid).unwrap_or(0);
        self.push(
            pid,
            tid,
            EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq,
                ret,
                args,
            }),
        )
    }

    /// Entry and exit.
    pub fn call(&mut self, pid: u32, name: &str, ret: i64, named: &[(&str, Value)]) -> u64 {
        self.enter(pid, pid, name, named);
        self.exit(pid, pid, name, ret, named)
    }

    pub fn open(&mut self, pid: u32, path: &str, flags: u64) -> u64 {
        let fd = Value::Fd(Fd::new(
            3,
            Some(Arc::new(Target::File {
                path: path.into(),
                dev: 1,
                ino: 7,
            })),
        ));
        self.call(
            pid,
            "openat",
            3,
            &[
                ("dirfd", Value::Fd(Fd::new(-100, None))),
                ("path", Value::Str(path.into())),
                ("flags", Value::Uint(flags)),
                ("fd", fd),
            ],
        )
    }

    pub fn read(&mut self, pid: u32, path: &str) -> u64 {
        let fd = Value::Fd(Fd::new(
            3,
            Some(Arc::new(Target::File {
                path: path.into(),
                dev: 1,
                ino: 7,
            })),
        ));
        self.call(pid, "read", 10, &[("fd", fd), ("count", Value::Uint(10))])
    }

    pub fn connect(&mut self, pid: u32, addr: &str) -> u64 {
        let a: SockAddr = SockAddr::V4(addr.parse().unwrap());
        let s = Socket {
            ino: 9,
            family: 2,
            sock_type: 1,
            local: None,
            remote: Some(a.clone()),
        };
        let fd = Value::Fd(Fd::new(4, Some(Arc::new(Target::Socket(s)))));
        self.call(
            pid,
            "connect",
            0,
            &[
                ("fd", fd),
                ("addr", Value::Addr(Arc::new(a))),
                ("addrlen", Value::Uint(16)),
            ],
        )
    }

    pub fn start(&mut self, pid: u32, ppid: u32, exe: &str) -> u64 {
        self.push(
            pid,
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid,
                exe: exe.into(),
                argv: vec![Str::from(exe)].into(),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        )
    }

    pub fn exec(&mut self, pid: u32, exe: &str, argv: &[&str]) -> u64 {
        let argv: Vec<Str> = argv.iter().map(|a| Str::from(*a)).collect();
        self.push(
            pid,
            pid,
            EventKind::ProcessExec(ProcessExec {
                exe: exe.into(),
                argv: argv.into(),
                creds: Creds::default(),
                dev: 1,
                ino: 2,
            }),
        )
    }

    pub fn exit_process(&mut self, pid: u32) -> u64 {
        self.push(
            pid,
            pid,
            EventKind::ThreadExit(ThreadExit {
                status: ExitStatus::Code(0),
            }),
        );
        self.push(
            pid,
            pid,
            EventKind::ProcessExit(ProcessExit {
                status: ExitStatus::Code(0),
            }),
        )
    }
}

pub fn rules(src: &str) -> RuleSet {
    RuleSet::parse(src, "test.rules").unwrap_or_else(|d| panic!("{}", d.render(false)))
}

pub fn run(src: &str, events: &[Event]) -> Vec<Match> {
    let rs = rules(src);
    let mut e = rs.engine(Limits::default());
    let mut out = Vec::new();
    for ev in events {
        e.process(ev, &mut out);
    }
    e.finish();
    out
}

/// The diagnostics of a bad file, rendered.
pub fn errors(src: &str) -> String {
    match RuleSet::parse(src, "bad.rules") {
        Ok(_) => panic!("expected errors in:\n{src}"),
        Err(d) => d.render(false),
    }
}
