//! A deterministic stream of realistic events, for benchmarks: a few hundred live processes
//! that open, read, write and close files and pipes, fork, exec and exit, as a recording of a
//! busy machine would contain. Same seed, same events.

use std::sync::Arc;
use vigil_event::*;

/// xorshift64*: small, fast, deterministic; statistical quality is irrelevant here.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

struct Proc {
    pid: u32,
    exe: Str,
    fds: Vec<(i32, Arc<Target>)>,
}

pub struct Events {
    rng: Rng,
    seq: u64,
    time: u64,
    next_pid: u32,
    procs: Vec<Proc>,
    paths: Vec<Str>,
    exes: Vec<Str>,
    queue: std::collections::VecDeque<Event>,
}

fn sys(name: &str) -> SyscallId {
    SyscallId::from_name(name).unwrap_or_default()
}

impl Events {
    pub fn new(seed: u64) -> Self {
        let paths = (0..2000)
            .map(|i| match i % 5 {
                0 => Str::from(format!("/home/user/project/src/module{i}.rs")),
                1 => Str::from(format!("/var/log/app/service{}.log", i % 40)),
                2 => Str::from(format!("/usr/lib/x86_64-linux-gnu/lib{}.so.6", i % 60)),
                3 => Str::from(format!("/tmp/build-{}/obj{i}.o", i % 17)),
                _ => Str::from(format!("/etc/conf.d/item{}.conf", i % 90)),
            })
            .collect();
        let exes = [
            "/usr/bin/bash",
            "/usr/bin/cat",
            "/usr/bin/python3",
            "/usr/sbin/nginx",
            "/usr/bin/cc",
            "/usr/bin/make",
            "/usr/bin/git",
        ]
        .iter()
        .map(|s| Str::from(*s))
        .collect();
        let mut e = Events {
            rng: Rng::new(seed),
            seq: 0,
            time: 1_760_000_000_000_000_000,
            next_pid: 1000,
            procs: Vec::new(),
            paths,
            exes,
            queue: Default::default(),
        };
        for _ in 0..300 {
            e.spawn(1);
        }
        e
    }

    fn push(&mut self, pid: u32, kind: EventKind) {
        self.seq += 1;
        self.time += 1 + self.rng.below(20_000);
        self.queue.push_back(Event {
            seq: self.seq,
            time_ns: self.time,
            pid,
            tid: pid,
            kind,
        });
    }

    fn call(&mut self, pid: u32, name: &str, args: Args, outputs: Vec<Value>, ret: i64) {
        let call = sys(name);
        let entry_seq = self.seq + 1;
        self.push(
            pid,
            EventKind::SyscallEntry(SyscallEntry {
                call,
                args: args.clone(),
            }),
        );
        let mut all = args;
        if !outputs.is_empty() {
            all.resize(call.signature().args.len(), Value::Absent);
            all.extend(outputs);
        }
        self.push(
            pid,
            EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq,
                ret,
                args: all,
            }),
        );
    }

    fn spawn(&mut self, ppid: u32) {
        let pid = self.next_pid;
        self.next_pid += 1;
        let exe = self.exes[self.rng.below(self.exes.len() as u64) as usize].clone();
        let argv: Arc<[Str]> = vec![exe.clone()].into();
        let stdio: Vec<(i32, Arc<Target>)> = (0..3)
            .map(|fd| {
                (
                    fd,
                    Arc::new(Target::File {
                        path: Str::from("/dev/pts/0"),
                        dev: 24,
                        ino: 3,
                    }),
                )
            })
            .collect();
        self.push(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid,
                exe: exe.clone(),
                argv: argv.clone(),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        );
        let ino = 100 + self.rng.below(7);
        self.push(
            pid,
            EventKind::ProcessExec(ProcessExec {
                exe: exe.clone(),
                argv,
                creds: Creds::default(),
                dev: 2049,
                ino,
            }),
        );
        self.procs.push(Proc {
            pid,
            exe,
            fds: stdio,
        });
    }

    /// One burst of activity of a random process.
    fn step(&mut self) {
        let i = self.rng.below(self.procs.len() as u64) as usize;
        let pid = self.procs[i].pid;
        let r = self.rng.below(1000);
        if r < 150 && self.procs[i].fds.len() < 16 {
            let path = self.paths[self.rng.below(self.paths.len() as u64) as usize].clone();
            let fd = (3..)
                .find(|f| !self.procs[i].fds.iter().any(|(x, _)| x == f))
                .unwrap_or(3);
            let ino = 10_000 + self.rng.below(2000);
            let target = Arc::new(Target::File {
                path: path.clone(),
                dev: 2049,
                ino,
            });
            let flags = if self.rng.below(4) == 0 {
                0o1101
            } else {
                0o2000000
            };
            let args: Args = [
                Value::Fd(Fd::new(-100, None)),
                Value::Str(path),
                Value::Uint(flags),
            ]
            .into_iter()
            .collect();
            self.procs[i].fds.push((fd, target.clone()));
            self.call(
                pid,
                "openat",
                args,
                vec![Value::Fd(Fd::new(fd, Some(target)))],
                fd as i64,
            );
        } else if r < 850 {
            let (fd, target) = {
                let fds = &self.procs[i].fds;
                fds[self.rng.below(fds.len() as u64) as usize].clone()
            };
            let name = if self.rng.below(3) == 0 {
                "write"
            } else {
                "read"
            };
            let count = 1 << (6 + self.rng.below(7));
            let args: Args = [
                Value::Fd(Fd::new(fd, Some(target))),
                Value::Uint(0x7ffd_0000_1000 + self.rng.below(64) * 4096),
                Value::Uint(count),
            ]
            .into_iter()
            .collect();
            let ret = self.rng.below(count + 1) as i64;
            self.call(pid, name, args, vec![], ret);
        } else if r < 980 {
            if self.procs[i].fds.len() > 3 {
                let (fd, target) = self.procs[i]
                    .fds
                    .pop()
                    .unwrap_or((3, Arc::new(Target::Pipe { ino: 1 })));
                let args: Args = [Value::Fd(Fd::new(fd, Some(target)))].into_iter().collect();
                self.call(pid, "close", args, vec![], 0);
            }
        } else if r < 990 {
            self.spawn(pid);
        } else {
            // The process exits; another takes its place.
            let p = self.procs.swap_remove(i);
            self.push(
                p.pid,
                EventKind::ThreadExit(ThreadExit {
                    status: ExitStatus::Code(0),
                }),
            );
            self.push(
                p.pid,
                EventKind::ProcessExit(ProcessExit {
                    status: ExitStatus::Code(0),
                }),
            );
            let _ = p.exe;
            if self.procs.len() < 300 {
                self.spawn(1);
            }
        }
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        while self.queue.is_empty() {
            self.step();
        }
        self.queue.pop_front()
    }
}
