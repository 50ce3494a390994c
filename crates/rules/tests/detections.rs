//! Each rule of rules/detections.rules on its plain case, on every evasion that
//! applies to it, and on a benign near miss. Events are built as the capture records them: a
//! path through a symlink, `..` or a dirfd is the absolute path the kernel resolved with the
//! program's string beside it; io_uring operations and i386 calls carry their own ABI and the
//! arguments of their x86_64 twin; execveat and fexecve are an exec whose exe is what the
//! kernel ran. The whole file runs on every case, so the rules are also checked side by side.

mod common;

use common::*;
use std::sync::{Arc, OnceLock};
use vigil_event::value::{SockAddr, Socket};
use vigil_event::*;
use vigil_rules::{Limits, Match, RuleSet};

const RULES: &str = include_str!("../../../rules/detections.rules");

const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_PATH: u64 = 0o10000000;

fn detections() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| rules(RULES))
}

/// The matches of one rule of the file over these events (all twenty run).
fn fired(rule: &str, events: &[Event]) -> Vec<Match> {
    let rs = detections();
    let index = rs
        .rules()
        .iter()
        .position(|r| r.name == rule)
        .unwrap_or_else(|| panic!("no rule {rule} in rules/detections.rules"));
    let mut e = rs.engine(Limits::default());
    let mut out = Vec::new();
    for ev in events {
        e.process(ev, &mut out);
    }
    e.finish();
    out.retain(|m| m.rule == index);
    out
}

type Case<'a> = (&'a str, usize, &'a dyn Fn(&mut Stream));

/// Each case builds a stream from scratch; the rule must match it that many times. Every
/// case is checked and all the wrong ones are reported together.
fn check(rule: &str, cases: &[Case]) {
    let mut wrong = Vec::new();
    for (what, want, build) in cases {
        let mut s = Stream::new();
        build(&mut s);
        let got = fired(rule, &s.events);
        if got.len() != *want {
            wrong.push(format!(
                "{what}: {} matches, expected {want}: {:?}",
                got.len(),
                got.iter().map(|m| &m.output).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "rule {rule}:\n{}", wrong.join("\n"));
}

/// The OUTPUT of the one match of `rule` over a stream.
fn output(rule: &str, build: &dyn Fn(&mut Stream)) -> String {
    let mut s = Stream::new();
    build(&mut s);
    let m = fired(rule, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    m[0].output.clone().unwrap_or_default()
}

// ---- values as the capture records them

fn p(path: &str) -> Value {
    Value::Str(path.into())
}

/// A path the program gave as `given` (through a symlink, `..`, a dirfd) and the kernel
/// resolved to `real`.
fn via(real: &str, given: &str) -> Value {
    Value::resolved(p(real), p(given), Resolution::Exact)
}

fn file_fd(num: i32, path: &str, ino: u64) -> Value {
    Value::Fd(Fd::new(
        num,
        Some(Arc::new(Target::File {
            path: path.into(),
            dev: 8,
            ino,
        })),
    ))
}

fn sock_fd(num: i32, remote: &str) -> Value {
    let remote: SockAddr = match remote.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) => SockAddr::V4(a),
        Ok(std::net::SocketAddr::V6(a)) => SockAddr::V6(a),
        Err(_) => SockAddr::Unix(remote.into()),
    };
    let family = remote.family();
    Value::Fd(Fd::new(
        num,
        Some(Arc::new(Target::Socket(Socket {
            ino: 900,
            family,
            sock_type: 1,
            local: None,
            remote: Some(remote),
        }))),
    ))
}

fn pipe_fd(num: i32) -> Value {
    Value::Fd(Fd::new(num, Some(Arc::new(Target::Pipe { ino: 5 }))))
}

fn addr(a: &str) -> Value {
    let a = match a.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) => SockAddr::V4(a),
        Ok(std::net::SocketAddr::V6(a)) => SockAddr::V6(a),
        Err(_) => SockAddr::Unix(a.into()),
    };
    Value::Addr(Arc::new(a))
}

fn dir_fd(path: &str) -> Value {
    file_fd(9, path, 2)
}

/// An open-like call as recorded: `call` is `open`, `openat`, `openat2`, `creat`,
/// `io_uring:openat`, `i386:open`...; on success its fd names the file (inode `ino`).
fn open_ino(s: &mut Stream, pid: u32, call: &str, path: Value, flags: u64, ret: i64, ino: u64) {
    let id = SyscallId::from_name(call).unwrap_or_else(|| panic!("{call}"));
    let sig = id.signature();
    let real = path.as_str().map(|p| p.to_string()).unwrap_or_default();
    let mut args = vec![("path", path)];
    if sig.field_index("dirfd").is_some() {
        args.push(("dirfd", Value::Fd(Fd::new(-100, None))));
    }
    if sig.field_index("flags").is_some() {
        args.push(("flags", Value::Uint(flags)));
    }
    if ret >= 0 {
        args.push(("fd", file_fd(ret as i32, &real, ino)));
    }
    s.call(pid, call, ret, &args);
}

fn open(s: &mut Stream, pid: u32, call: &str, path: Value, flags: u64) {
    open_ino(s, pid, call, path, flags, 3, 7);
}

/// `openat(dirfd, name)`: the dirfd refers to `dir`, the kernel resolved `real`.
fn open_at_dirfd(s: &mut Stream, pid: u32, dir: &str, name: &str, real: &str, flags: u64) {
    s.call(
        pid,
        "openat",
        3,
        &[
            ("dirfd", dir_fd(dir)),
            ("path", via(real, name)),
            ("flags", Value::Uint(flags)),
            ("fd", file_fd(3, real, 7)),
        ],
    );
}

fn exec_ino(s: &mut Stream, pid: u32, exe: &str, argv: &[&str], ino: u64) -> u64 {
    let argv: Vec<Str> = argv.iter().map(|a| Str::from(*a)).collect();
    s.push(
        pid,
        pid,
        EventKind::ProcessExec(ProcessExec {
            exe: exe.into(),
            argv: argv.into(),
            creds: Creds::default(),
            dev: 8,
            ino,
        }),
    )
}

/// A successful execve as recorded: its entry, the exec event, its exit (path: the file the
/// program asked for, resolved; exe: what the kernel ran).
fn execve(s: &mut Stream, pid: u32, call: &str, path: Value, exe: &str, ino: u64) {
    s.enter(pid, pid, call, &[("path", path.clone())]);
    exec_ino(s, pid, exe, &["x"], ino);
    s.exit(pid, pid, call, 0, &[("path", path)]);
}

fn rename(s: &mut Stream, pid: u32, call: &str, old: &str, new: &str) {
    s.call(pid, call, 0, &[("oldpath", p(old)), ("newpath", p(new))]);
}

fn connect(s: &mut Stream, pid: u32, call: &str, to: &str, ret: i64) {
    s.call(
        pid,
        call,
        ret,
        &[
            ("fd", sock_fd(4, to)),
            ("addr", addr(to)),
            ("addrlen", Value::Uint(16)),
        ],
    );
}

fn read_fd(s: &mut Stream, pid: u32, call: &str, fd: Value) {
    s.call(pid, call, 10, &[("fd", fd)]);
}

fn write_fd(s: &mut Stream, pid: u32, call: &str, fd: Value) {
    s.call(pid, call, 10, &[("fd", fd)]);
}

// ---- the rules

#[test]
fn read_credentials() {
    let o =
        |call: &'static str, path: Value| move |s: &mut Stream| open(s, 1, call, path.clone(), 0);
    check(
        "read_credentials",
        &[
            ("openat /etc/shadow", 1, &o("openat", p("/etc/shadow"))),
            (
                "through a symlink",
                1,
                &o("openat", via("/etc/shadow", "/tmp/innocent")),
            ),
            (
                "relative path",
                1,
                &o("openat", via("/etc/shadow", "../../etc/shadow")),
            ),
            ("dirfd", 1, &|s| {
                open_at_dirfd(s, 1, "/etc", "shadow", "/etc/shadow", 0)
            }),
            ("open", 1, &o("open", p("/etc/gshadow"))),
            ("openat2", 1, &o("openat2", p("/root/.ssh/id_ed25519"))),
            (
                "io_uring openat",
                1,
                &o("io_uring:openat", p("/etc/sudoers")),
            ),
            ("i386 open", 1, &o("i386:open", p("/etc/shadow"))),
            (
                "the backup /etc/shadow-",
                1,
                &o("openat", p("/etc/shadow-")),
            ),
            ("refused (EACCES)", 0, &|s| {
                open_ino(s, 1, "openat", p("/etc/shadow"), 0, -13, 0)
            }),
            ("O_PATH reads nothing", 0, &|s| {
                open(s, 1, "openat", p("/etc/shadow"), O_PATH)
            }),
            (
                "/etc/passwd is not a secret",
                0,
                &o("openat", p("/etc/passwd")),
            ),
        ],
    );
    assert_eq!(
        output("read_credentials", &|s| {
            s.start(42, 1, "/usr/bin/cat");
            open(s, 42, "openat", via("/etc/shadow", "/tmp/l"), 0);
        }),
        "/usr/bin/cat (pid 42) opened the credential file /etc/shadow"
    );
}

#[test]
fn write_below_etc() {
    let o = |call: &'static str, path: Value, flags: u64| {
        move |s: &mut Stream| open(s, 1, call, path.clone(), flags)
    };
    let r = |call: &'static str, old: &'static str, new: &'static str| {
        move |s: &mut Stream| rename(s, 1, call, old, new)
    };
    check(
        "write_below_etc",
        &[
            ("O_WRONLY", 1, &o("openat", p("/etc/hosts"), O_WRONLY)),
            (
                "O_RDWR, the issue's miss",
                1,
                &o("openat", p("/etc/hosts"), O_RDWR),
            ),
            (
                "O_RDONLY|O_TRUNC truncates",
                1,
                &o("openat", p("/etc/hosts"), O_TRUNC),
            ),
            ("O_CREAT", 1, &o("openat", p("/etc/new"), O_CREAT)),
            (
                "through a symlink",
                1,
                &o("openat", via("/etc/ld.so.preload", "/tmp/l"), O_WRONLY),
            ),
            (
                "relative path",
                1,
                &o("openat", via("/etc/passwd", "../etc/passwd"), O_RDWR),
            ),
            ("dirfd", 1, &|s| {
                open_at_dirfd(s, 1, "/etc", "passwd", "/etc/passwd", O_RDWR)
            }),
            ("open", 1, &o("open", p("/etc/passwd"), O_WRONLY | O_APPEND)),
            ("openat2", 1, &o("openat2", p("/etc/passwd"), O_RDWR)),
            ("creat", 1, &o("creat", p("/etc/profile.d/x.sh"), 0)),
            (
                "io_uring openat",
                1,
                &o("io_uring:openat", p("/etc/passwd"), O_RDWR),
            ),
            ("i386 open", 1, &o("i386:open", p("/etc/passwd"), O_WRONLY)),
            ("truncate", 1, &|s| {
                s.call(1, "truncate", 0, &[("path", p("/etc/hosts.deny"))]);
            }),
            ("rename onto /etc", 1, &r("rename", "/tmp/x", "/etc/passwd")),
            ("renameat2", 1, &r("renameat2", "/tmp/x", "/etc/passwd")),
            (
                "io_uring renameat",
                1,
                &r("io_uring:renameat", "/tmp/x", "/etc/passwd"),
            ),
            ("i386 rename", 1, &r("i386:rename", "/tmp/x", "/etc/passwd")),
            ("link", 1, &r("linkat", "/tmp/x", "/etc/cron.d/x")),
            ("symlink", 1, &|s| {
                s.call(
                    1,
                    "symlinkat",
                    0,
                    &[
                        ("target", p("/tmp/x")),
                        ("linkpath", p("/etc/ld.so.preload")),
                    ],
                );
            }),
            ("O_RDONLY read", 0, &o("openat", p("/etc/passwd"), 0)),
            (
                "O_PATH|O_RDWR",
                0,
                &o("openat", p("/etc/passwd"), O_PATH | O_RDWR),
            ),
            (
                "a write elsewhere",
                0,
                &o("openat", p("/home/u/etc/x"), O_RDWR),
            ),
            (
                "a file moved out of /etc",
                0,
                &r("rename", "/etc/x", "/tmp/x"),
            ),
        ],
    );
    assert_eq!(
        output("write_below_etc", &|s| {
            s.start(7, 1, "/usr/bin/vi");
            rename(s, 7, "renameat2", "/etc/.passwd.swp", "/etc/passwd");
        }),
        "/usr/bin/vi (pid 7) changed a file below /etc: renameat2 /etc/passwd (ok)"
    );
    assert_eq!(
        output("write_below_etc", &|s| {
            s.start(7, 1, "/bin/sh");
            open_ino(s, 7, "openat", p("/etc/shadow"), O_RDWR, -13, 0);
        }),
        "/bin/sh (pid 7) changed a file below /etc: openat /etc/shadow (EACCES)"
    );
}

#[test]
fn cron_persistence() {
    let o = |call: &'static str, path: Value, flags: u64| {
        move |s: &mut Stream| open(s, 1, call, path.clone(), flags)
    };
    check(
        "cron_persistence",
        &[
            (
                "a new file in /etc/cron.d",
                1,
                &o(
                    "openat",
                    p("/etc/cron.d/evil"),
                    O_WRONLY | O_CREAT | O_TRUNC,
                ),
            ),
            (
                "appending to /etc/crontab (no O_CREAT)",
                1,
                &o("openat", p("/etc/crontab"), O_WRONLY | O_APPEND),
            ),
            ("O_RDWR", 1, &o("openat", p("/etc/cron.daily/x"), O_RDWR)),
            (
                "a user crontab",
                1,
                &o("openat", p("/var/spool/cron/crontabs/root"), O_WRONLY),
            ),
            ("crontab -e: a temporary file renamed", 1, &|s| {
                rename(
                    s,
                    1,
                    "rename",
                    "/tmp/crontab.Xa1",
                    "/var/spool/cron/crontabs/root",
                )
            }),
            ("renameat2 into /etc/cron.d", 1, &|s| {
                rename(s, 1, "renameat2", "/tmp/x", "/etc/cron.d/x")
            }),
            ("a symlink into /etc/cron.d", 1, &|s| {
                s.call(
                    1,
                    "symlink",
                    0,
                    &[("target", p("/tmp/x")), ("linkpath", p("/etc/cron.d/x"))],
                );
            }),
            (
                "through a symlink",
                1,
                &o("openat", via("/etc/cron.d/x", "/tmp/l"), O_WRONLY),
            ),
            ("dirfd", 1, &|s| {
                open_at_dirfd(
                    s,
                    1,
                    "/etc/cron.d",
                    "x",
                    "/etc/cron.d/x",
                    O_WRONLY | O_CREAT,
                )
            }),
            ("creat", 1, &o("creat", p("/etc/cron.hourly/x"), 0)),
            ("openat2", 1, &o("openat2", p("/etc/cron.d/x"), O_WRONLY)),
            (
                "io_uring openat",
                1,
                &o("io_uring:openat", p("/etc/cron.d/x"), O_RDWR),
            ),
            ("i386 open", 1, &o("i386:open", p("/etc/crontab"), O_WRONLY)),
            (
                "cron reading its table",
                0,
                &o("openat", p("/etc/crontab"), 0),
            ),
            (
                "another file in /etc",
                0,
                &o("openat", p("/etc/crypttab"), O_WRONLY),
            ),
        ],
    );
}

#[test]
fn exec_from_tmp() {
    check(
        "exec_from_tmp",
        &[
            ("a program in /tmp", 1, &|s| {
                execve(s, 1, "execve", p("/tmp/x"), "/tmp/x", 5);
            }),
            (
                "execveat of /dev/shm (the exec event is what the kernel ran)",
                1,
                &|s| {
                    exec_ino(s, 1, "/dev/shm/x", &["x"], 5);
                },
            ),
            ("through a symlink: the exe is the real file", 1, &|s| {
                execve(
                    s,
                    1,
                    "execve",
                    via("/var/tmp/x", "/usr/local/bin/tool"),
                    "/var/tmp/x",
                    5,
                );
            }),
            ("a script in /tmp: the exe is its interpreter", 1, &|s| {
                execve(
                    s,
                    1,
                    "execve",
                    via("/tmp/s.sh", "./s.sh"),
                    "/usr/bin/dash",
                    5,
                );
            }),
            ("a script through i386 execve", 1, &|s| {
                execve(s, 1, "i386:execve", p("/tmp/s.sh"), "/usr/bin/dash", 5);
            }),
            ("the loader trick: ld.so maps the program", 1, &|s| {
                execve(
                    s,
                    1,
                    "execve",
                    p("/lib64/ld-linux-x86-64.so.2"),
                    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                    5,
                );
                s.call(
                    1,
                    "mmap",
                    0x7f00_0000_0000,
                    &[("prot", Value::Uint(5)), ("fd", file_fd(3, "/tmp/x", 9))],
                );
            }),
            ("LD_PRELOAD of a library in /dev/shm", 1, &|s| {
                s.call(
                    1,
                    "mmap",
                    0x7f00_0000_0000,
                    &[
                        ("prot", Value::Uint(5)),
                        ("fd", file_fd(3, "/dev/shm/evil.so", 9)),
                    ],
                );
            }),
            ("a program elsewhere", 0, &|s| {
                execve(s, 1, "execve", p("/usr/bin/ls"), "/usr/bin/ls", 5)
            }),
            ("a file in /tmp mapped for reading", 0, &|s| {
                s.call(
                    1,
                    "mmap",
                    0x7f00_0000_0000,
                    &[("prot", Value::Uint(1)), ("fd", file_fd(3, "/tmp/data", 9))],
                );
            }),
            ("an execve that failed", 0, &|s| {
                s.call(1, "execve", -2, &[("path", p("/tmp/missing"))]);
            }),
            ("/tmpfoo is not /tmp", 0, &|s| {
                exec_ino(s, 1, "/tmpfoo/x", &["x"], 5);
            }),
        ],
    );
    assert_eq!(
        output("exec_from_tmp", &|s| execve(
            s,
            3,
            "execve",
            via("/tmp/s.sh", "./s.sh"),
            "/usr/bin/dash",
            5
        )),
        "/usr/bin/dash (pid 3) ran code from a temporary directory /tmp/s.sh"
    );
}

#[test]
fn dropper() {
    // A download: connect, the file written; then run, by the same or another process.
    let download = |s: &mut Stream, pid: u32, call: &str, path: &str, flags: u64| {
        connect(s, pid, "connect", "203.0.113.9:80", 0);
        open_ino(s, pid, call, p(path), flags, 3, 77);
    };
    check(
        "dropper",
        &[
            ("curl -o /tmp/x; /tmp/x (three processes)", 1, &|s| {
                download(
                    s,
                    10,
                    "openat",
                    "/tmp/payload",
                    O_WRONLY | O_CREAT | O_TRUNC,
                );
                execve(s, 11, "execve", p("/tmp/payload"), "/tmp/payload", 77);
            }),
            ("one process", 1, &|s| {
                download(s, 10, "openat", "/tmp/payload", O_WRONLY | O_CREAT);
                execve(s, 10, "execve", p("/tmp/payload"), "/tmp/payload", 77);
            }),
            ("an existing file overwritten O_RDWR", 1, &|s| {
                download(s, 10, "openat", "/tmp/payload", O_RDWR);
                exec_ino(s, 11, "/tmp/payload", &["p"], 77);
            }),
            ("creat", 1, &|s| {
                download(s, 10, "creat", "/dev/shm/p", 0);
                exec_ino(s, 11, "/dev/shm/p", &["p"], 77);
            }),
            ("io_uring connect and openat", 1, &|s| {
                connect(s, 10, "io_uring:connect", "203.0.113.9:443", 0);
                open_ino(
                    s,
                    10,
                    "io_uring:openat",
                    p("/tmp/p"),
                    O_WRONLY | O_CREAT,
                    3,
                    77,
                );
                exec_ino(s, 11, "/tmp/p", &["p"], 77);
            }),
            ("renamed before it runs (followed by inode)", 1, &|s| {
                download(s, 10, "openat", "/tmp/p.part", O_WRONLY | O_CREAT);
                rename(s, 10, "renameat2", "/tmp/p.part", "/tmp/p");
                exec_ino(s, 11, "/tmp/p", &["p"], 77);
            }),
            ("deleted, then fexecve'd", 1, &|s| {
                download(s, 10, "openat", "/tmp/p", O_RDWR | O_CREAT);
                s.call(10, "unlink", 0, &[("path", p("/tmp/p"))]);
                exec_ino(s, 10, "/tmp/p (deleted)", &["p"], 77);
            }),
            ("a downloaded script, run by its interpreter", 1, &|s| {
                download(s, 10, "openat", "/tmp/p.sh", O_WRONLY | O_CREAT);
                execve(s, 11, "execve", p("/tmp/p.sh"), "/usr/bin/dash", 5);
            }),
            ("a DNS query, then the download: one alert", 1, &|s| {
                connect(s, 10, "connect", "192.0.2.53:53", 0);
                download(s, 10, "openat", "/tmp/payload", O_WRONLY | O_CREAT);
                exec_ino(s, 11, "/tmp/payload", &["p"], 77);
            }),
            ("no connection: a build runs its test program", 0, &|s| {
                open_ino(
                    s,
                    10,
                    "openat",
                    p("/tmp/conftest"),
                    O_WRONLY | O_CREAT,
                    3,
                    77,
                );
                exec_ino(s, 10, "/tmp/conftest", &["conftest"], 77);
            }),
            ("a connection to a unix socket", 0, &|s| {
                connect(s, 10, "connect", "/run/nscd/socket", 0);
                open_ino(s, 10, "openat", p("/tmp/x"), O_WRONLY | O_CREAT, 3, 77);
                exec_ino(s, 10, "/tmp/x", &["x"], 77);
            }),
            (
                "written by another process than the one that connected",
                0,
                &|s| {
                    connect(s, 10, "connect", "203.0.113.9:80", 0);
                    open_ino(s, 12, "openat", p("/tmp/x"), O_WRONLY | O_CREAT, 3, 77);
                    exec_ino(s, 11, "/tmp/x", &["x"], 77);
                },
            ),
            ("run after 30 s", 0, &|s| {
                download(s, 10, "openat", "/tmp/x", O_WRONLY | O_CREAT);
                s.wait_ms(31_000);
                exec_ino(s, 11, "/tmp/x", &["x"], 77);
            }),
        ],
    );
    assert_eq!(
        output("dropper", &|s| {
            s.start(10, 1, "/usr/bin/curl");
            download(s, 10, "openat", "/tmp/p", O_WRONLY | O_CREAT);
            exec_ino(s, 11, "/tmp/p", &["p"], 77);
        }),
        "/usr/bin/curl (pid 10) downloaded from 203.0.113.9:80 into /tmp/p, which pid 11 then ran as /tmp/p"
    );
}

#[test]
fn reverse_shell() {
    let c2 = "203.0.113.9:4444";
    check(
        "reverse_shell",
        &[
            ("connect, dup2 onto 0, exec sh", 1, &|s| {
                connect(s, 1, "connect", c2, 0);
                s.call(
                    1,
                    "dup2",
                    0,
                    &[
                        ("oldfd", sock_fd(4, c2)),
                        ("newfd", Value::Int(0)),
                        ("fd", sock_fd(0, c2)),
                    ],
                );
                exec_ino(s, 1, "/usr/bin/dash", &["sh", "-i"], 5);
                read_fd(s, 1, "read", sock_fd(0, c2));
            }),
            ("dup3 (no dup2 at all)", 1, &|s| {
                s.call(
                    1,
                    "dup3",
                    0,
                    &[
                        ("oldfd", sock_fd(4, c2)),
                        ("newfd", Value::Int(0)),
                        ("fd", sock_fd(0, c2)),
                    ],
                );
                exec_ino(s, 1, "/bin/bash", &["bash", "-i"], 5);
                read_fd(s, 1, "read", sock_fd(0, c2));
            }),
            ("the parent set it up, the child runs the shell", 1, &|s| {
                connect(s, 1, "connect", c2, 0);
                s.start(2, 1, "/usr/bin/python3");
                exec_ino(s, 2, "/bin/sh", &["/bin/sh", "-i"], 5);
                read_fd(s, 2, "read", sock_fd(0, c2));
            }),
            ("io_uring read of the socket", 1, &|s| {
                exec_ino(s, 1, "/usr/bin/zsh", &["zsh"], 5);
                read_fd(s, 1, "io_uring:read", sock_fd(0, c2));
            }),
            ("i386 read", 1, &|s| {
                exec_ino(s, 1, "/bin/sh", &["sh"], 5);
                read_fd(s, 1, "i386:read", sock_fd(0, c2));
            }),
            ("recvfrom on IPv6", 1, &|s| {
                exec_ino(s, 1, "/bin/sh", &["sh"], 5);
                read_fd(s, 1, "recvfrom", sock_fd(0, "[2001:db8::1]:4444"));
            }),
            ("reads three commands: one alert", 1, &|s| {
                exec_ino(s, 1, "/bin/sh", &["sh"], 5);
                for _ in 0..3 {
                    read_fd(s, 1, "read", sock_fd(0, c2));
                }
            }),
            ("a shell reading a pipe", 0, &|s| {
                exec_ino(s, 1, "/bin/sh", &["sh"], 5);
                read_fd(s, 1, "read", pipe_fd(0));
            }),
            ("a shell on a unix socket (ssh's socketpair)", 0, &|s| {
                exec_ino(s, 1, "/bin/sh", &["sh"], 5);
                read_fd(s, 1, "read", sock_fd(0, "/run/x.sock"));
            }),
            ("a shell reading another socket than stdin", 0, &|s| {
                exec_ino(s, 1, "/bin/bash", &["bash"], 5);
                read_fd(s, 1, "read", sock_fd(3, c2));
            }),
            ("not a shell", 0, &|s| {
                exec_ino(s, 1, "/usr/sbin/inetd-service", &["svc"], 5);
                read_fd(s, 1, "read", sock_fd(0, c2));
            }),
        ],
    );
    assert_eq!(
        output("reverse_shell", &|s| {
            exec_ino(s, 8, "/usr/bin/dash", &["sh"], 5);
            read_fd(s, 8, "read", sock_fd(0, c2));
        }),
        "shell /usr/bin/dash (pid 8) reads its commands from the network: its standard input is a connection to 203.0.113.9:4444"
    );
}

#[test]
fn shell_reads_secret_then_connects() {
    let out = "198.51.100.7:443";
    check(
        "shell_reads_secret_then_connects",
        &[
            ("read /etc/shadow, then connect", 1, &|s| {
                open(s, 1, "openat", p("/etc/shadow"), 0);
                read_fd(s, 1, "read", file_fd(3, "/etc/shadow", 7));
                connect(s, 1, "connect", out, 0);
            }),
            ("opened, read three times, sent: one alert", 1, &|s| {
                open(s, 1, "openat", p("/etc/shadow"), 0);
                for _ in 0..3 {
                    read_fd(s, 1, "read", file_fd(3, "/etc/shadow", 7));
                }
                write_fd(s, 1, "write", sock_fd(4, out));
            }),
            (
                "curl -F @/etc/shadow: connect first, the secret sent after",
                1,
                &|s| {
                    connect(s, 1, "connect", out, -115);
                    open(s, 1, "openat", p("/etc/shadow"), 0);
                    read_fd(s, 1, "read", file_fd(3, "/etc/shadow", 7));
                    write_fd(s, 1, "write", sock_fd(4, out));
                },
            ),
            ("nc < /etc/shadow: the file is stdin", 1, &|s| {
                read_fd(s, 1, "read", file_fd(0, "/etc/shadow", 7));
                s.call(
                    1,
                    "sendto",
                    10,
                    &[("fd", sock_fd(4, out)), ("dest", addr(out))],
                );
            }),
            ("sendfile from the secret to a socket", 1, &|s| {
                open(s, 1, "openat", via("/etc/shadow", "../../etc/shadow"), 0);
                s.call(
                    1,
                    "sendfile",
                    10,
                    &[
                        ("out_fd", sock_fd(4, out)),
                        ("in_fd", file_fd(3, "/etc/shadow", 7)),
                    ],
                );
            }),
            ("mapped, then written to a socket", 1, &|s| {
                s.call(
                    1,
                    "mmap",
                    0x7f00_0000_0000,
                    &[
                        ("prot", Value::Uint(1)),
                        ("fd", file_fd(3, "/root/.ssh/id_rsa", 7)),
                    ],
                );
                write_fd(s, 1, "writev", sock_fd(4, out));
            }),
            ("io_uring open and send", 1, &|s| {
                open(s, 1, "io_uring:openat", p("/etc/shadow"), 0);
                s.call(1, "io_uring:send", 10, &[("fd", sock_fd(4, out))]);
            }),
            ("i386 read, then connect", 1, &|s| {
                read_fd(s, 1, "i386:read", file_fd(3, "/etc/shadow", 7));
                connect(s, 1, "i386:connect", out, 0);
            }),
            ("then a unix socket (sudo logging to /dev/log)", 0, &|s| {
                open(s, 1, "openat", p("/etc/sudoers"), 0);
                connect(s, 1, "connect", "/dev/log", 0);
                write_fd(s, 1, "write", sock_fd(4, "/dev/log"));
            }),
            ("a file that is not a secret", 0, &|s| {
                open(s, 1, "openat", p("/etc/passwd"), 0);
                connect(s, 1, "connect", out, 0);
            }),
            ("the secret written to a file", 0, &|s| {
                open(s, 1, "openat", p("/etc/shadow"), 0);
                write_fd(s, 1, "write", file_fd(5, "/tmp/copy", 8));
            }),
            ("connect after 60 s", 0, &|s| {
                open(s, 1, "openat", p("/etc/shadow"), 0);
                s.wait_ms(61_000);
                connect(s, 1, "connect", out, 0);
            }),
        ],
    );
}

#[test]
fn setuid_to_root() {
    let set = |call: &'static str, field: &'static str, ret: i64| {
        move |s: &mut Stream| {
            s.call(1, call, ret, &[(field, Value::Int(0))]);
        }
    };
    check(
        "setuid_to_root",
        &[
            ("setuid(0)", 1, &set("setuid", "uid", 0)),
            ("setreuid(-1, 0)", 1, &|s| {
                s.call(
                    1,
                    "setreuid",
                    0,
                    &[("ruid", Value::Int(-1)), ("euid", Value::Int(0))],
                );
            }),
            ("setresuid(0, 0, 0)", 1, &|s| {
                s.call(
                    1,
                    "setresuid",
                    0,
                    &[
                        ("ruid", Value::Int(0)),
                        ("euid", Value::Int(0)),
                        ("suid", Value::Int(0)),
                    ],
                );
            }),
            (
                "setfsuid(0) from fsuid 1000",
                1,
                &set("setfsuid", "fsuid", 1000),
            ),
            ("i386 setuid32", 1, &set("i386:setuid32", "uid", 0)),
            ("i386 setresuid32", 1, &|s| {
                s.call(
                    1,
                    "i386:setresuid32",
                    0,
                    &[
                        ("ruid", Value::Int(-1)),
                        ("euid", Value::Int(0)),
                        ("suid", Value::Int(-1)),
                    ],
                );
            }),
            ("setuid(1000)", 0, &|s| {
                s.call(1, "setuid", 0, &[("uid", Value::Int(1000))]);
            }),
            ("setuid(0) refused", 0, &set("setuid", "uid", -1)),
            (
                "setfsuid(0) when the fsuid was root already",
                0,
                &set("setfsuid", "fsuid", 0),
            ),
        ],
    );
}

#[test]
fn ptrace_attach() {
    let ptrace = |call: &'static str, request: i64| {
        move |s: &mut Stream| {
            s.call(
                1,
                call,
                0,
                &[("request", Value::Int(request)), ("pid", Value::Int(99))],
            );
        }
    };
    check(
        "ptrace_attach",
        &[
            ("PTRACE_ATTACH", 1, &ptrace("ptrace", 16)),
            ("PTRACE_SEIZE", 1, &ptrace("ptrace", 0x4206)),
            ("i386 ptrace", 1, &ptrace("i386:ptrace", 16)),
            ("process_vm_writev", 1, &|s| {
                s.call(1, "process_vm_writev", 64, &[("pid", Value::Int(99))]);
            }),
            ("/proc/PID/mem opened for writing", 1, &|s| {
                open(s, 1, "openat", p("/proc/99/mem"), O_RDWR)
            }),
            ("/proc/self/mem (resolved)", 1, &|s| {
                open(
                    s,
                    1,
                    "openat",
                    via("/proc/1/mem", "/proc/self/mem"),
                    O_WRONLY,
                )
            }),
            ("a thread's mem, by openat2", 1, &|s| {
                open(s, 1, "openat2", p("/proc/99/task/100/mem"), O_RDWR)
            }),
            ("io_uring openat of mem", 1, &|s| {
                open(s, 1, "io_uring:openat", p("/proc/99/mem"), O_RDWR)
            }),
            ("PTRACE_TRACEME", 0, &ptrace("ptrace", 0)),
            ("PTRACE_PEEKDATA", 0, &ptrace("ptrace", 2)),
            ("/proc/PID/mem read", 0, &|s| {
                open(s, 1, "openat", p("/proc/99/mem"), 0)
            }),
            ("/proc/PID/maps", 0, &|s| {
                open(s, 1, "openat", p("/proc/99/maps"), O_RDWR)
            }),
            ("process_vm_readv", 0, &|s| {
                s.call(1, "process_vm_readv", 64, &[("pid", Value::Int(99))]);
            }),
        ],
    );
}

#[test]
fn memfd_exec() {
    check(
        "memfd_exec",
        &[
            ("memfd_create, then fexecve", 1, &|s| {
                s.call(1, "memfd_create", 3, &[("name", p("x"))]);
                exec_ino(s, 1, "/memfd:x (deleted)", &["x"], 5);
            }),
            (
                "execveat(AT_EMPTY_PATH), exit recorded too: one alert",
                1,
                &|s| {
                    execve(
                        s,
                        1,
                        "execveat",
                        p("/memfd:x (deleted)"),
                        "/memfd:x (deleted)",
                        5,
                    );
                },
            ),
            ("the memfd inherited by a child", 1, &|s| {
                s.call(1, "memfd_create", 3, &[("name", p("x"))]);
                s.start(2, 1, "/usr/bin/python3");
                exec_ino(s, 2, "/memfd:x (deleted)", &["x"], 5);
            }),
            ("through /proc/self/fd/N", 1, &|s| {
                execve(
                    s,
                    1,
                    "execve",
                    via("/memfd:x (deleted)", "/proc/self/fd/3"),
                    "/memfd:x (deleted)",
                    5,
                );
            }),
            ("a script in a memfd: the exe is its interpreter", 1, &|s| {
                execve(
                    s,
                    1,
                    "execveat",
                    p("/memfd:s (deleted)"),
                    "/usr/bin/dash",
                    5,
                );
            }),
            ("i386 execve of a memfd script", 1, &|s| {
                execve(
                    s,
                    1,
                    "i386:execve",
                    via("/memfd:s (deleted)", "/proc/self/fd/3"),
                    "/usr/bin/dash",
                    5,
                );
            }),
            ("a file deleted before it ran", 1, &|s| {
                exec_ino(s, 1, "/home/u/x (deleted)", &["x"], 5);
            }),
            ("a memfd never executed", 0, &|s| {
                s.call(1, "memfd_create", 3, &[("name", p("x"))]);
                exec_ino(s, 1, "/usr/bin/ls", &["ls"], 5);
            }),
            ("a program whose name says memfd", 0, &|s| {
                exec_ino(s, 1, "/usr/bin/memfd-test", &["t"], 5);
            }),
        ],
    );
}

#[test]
fn writable_executable_mapping() {
    let m = |call: &'static str, prot: u64| {
        move |s: &mut Stream| {
            s.call(1, call, 0, &[("prot", Value::Uint(prot))]);
        }
    };
    check(
        "writable_executable_mapping",
        &[
            ("mprotect RWX", 1, &m("mprotect", 7)),
            ("mmap RWX (an anonymous shellcode buffer)", 1, &m("mmap", 7)),
            ("i386 mprotect RWX", 1, &m("i386:mprotect", 7)),
            ("mprotect R-X", 0, &m("mprotect", 5)),
            ("mmap RW-", 0, &m("mmap", 3)),
        ],
    );
}

#[test]
fn log_tampering() {
    let unlink = |call: &'static str, path: Value| {
        move |s: &mut Stream| {
            s.call(1, call, 0, &[("path", path.clone())]);
        }
    };
    let o = |call: &'static str, path: Value, flags: u64| {
        move |s: &mut Stream| open(s, 1, call, path.clone(), flags)
    };
    let ftruncate = |call: &'static str, path: &'static str| {
        move |s: &mut Stream| {
            s.call(
                1,
                call,
                0,
                &[("fd", file_fd(3, path, 7)), ("length", Value::Int(0))],
            );
        }
    };
    check(
        "log_tampering",
        &[
            ("unlinkat", 1, &unlink("unlinkat", p("/var/log/auth.log"))),
            ("unlink", 1, &unlink("unlink", p("/var/log/auth.log"))),
            (
                "i386 unlink",
                1,
                &unlink("i386:unlink", p("/var/log/auth.log")),
            ),
            (
                "io_uring unlinkat",
                1,
                &unlink("io_uring:unlinkat", p("/var/log/auth.log")),
            ),
            ("rmdir", 1, &unlink("rmdir", p("/var/log/journal/abc"))),
            (
                "unlink through a relative path",
                1,
                &unlink("unlink", via("/var/log/wtmp", "../log/wtmp")),
            ),
            ("truncate", 1, &unlink("truncate", p("/var/log/wtmp"))),
            ("ftruncate", 1, &ftruncate("ftruncate", "/var/log/syslog")),
            (
                "io_uring ftruncate",
                1,
                &ftruncate("io_uring:ftruncate", "/var/log/syslog"),
            ),
            (
                "> /var/log/auth.log (O_TRUNC)",
                1,
                &o(
                    "openat",
                    p("/var/log/auth.log"),
                    O_WRONLY | O_CREAT | O_TRUNC,
                ),
            ),
            (
                "O_RDONLY|O_TRUNC still truncates",
                1,
                &o("open", p("/var/log/auth.log"), O_TRUNC),
            ),
            (
                "openat2 O_TRUNC",
                1,
                &o("openat2", p("/var/log/auth.log"), O_RDWR | O_TRUNC),
            ),
            ("creat", 1, &o("creat", p("/var/log/lastlog"), 0)),
            ("moved away", 1, &|s| {
                rename(s, 1, "rename", "/var/log/auth.log", "/tmp/a")
            }),
            ("replaced by renameat2", 1, &|s| {
                rename(s, 1, "renameat2", "/tmp/clean", "/var/log/auth.log")
            }),
            (
                "the volatile journal",
                1,
                &unlink("unlinkat", p("/run/log/journal/x/system.journal")),
            ),
            (
                "appending",
                0,
                &o(
                    "openat",
                    p("/var/log/syslog"),
                    O_WRONLY | O_APPEND | O_CREAT,
                ),
            ),
            ("reading", 0, &o("openat", p("/var/log/syslog"), 0)),
            ("ftruncate elsewhere", 0, &ftruncate("ftruncate", "/tmp/x")),
            (
                "unlinkat elsewhere",
                0,
                &unlink("unlinkat", p("/var/tmp/x")),
            ),
            (
                "an rmdir-style unlinkat elsewhere (AT_REMOVEDIR is O_TRUNC's bit)",
                0,
                &|s| {
                    s.call(
                        1,
                        "unlinkat",
                        0,
                        &[("path", p("/tmp/d")), ("flags", Value::Uint(0x200))],
                    );
                },
            ),
        ],
    );
}

#[test]
fn history_cleared() {
    let h = "/root/.bash_history";
    let o = |call: &'static str, path: &'static str, flags: u64| {
        move |s: &mut Stream| open(s, 1, call, p(path), flags)
    };
    check(
        "history_cleared",
        &[
            (
                "> ~/.bash_history",
                1,
                &o("openat", h, O_WRONLY | O_CREAT | O_TRUNC),
            ),
            (
                "open O_TRUNC",
                1,
                &o("open", "/home/u/.zsh_history", O_WRONLY | O_TRUNC),
            ),
            ("openat2", 1, &o("openat2", h, O_RDWR | O_TRUNC)),
            ("creat", 1, &o("creat", h, 0)),
            (
                "io_uring openat",
                1,
                &o("io_uring:openat", h, O_WRONLY | O_TRUNC),
            ),
            ("i386 open", 1, &o("i386:open", h, O_WRONLY | O_TRUNC)),
            ("through a relative path", 1, &|s| {
                open(s, 1, "openat", via(h, ".bash_history"), O_WRONLY | O_TRUNC)
            }),
            (
                "zsh's .histfile",
                1,
                &o("openat", "/home/u/.histfile", O_WRONLY | O_TRUNC),
            ),
            ("truncate -s0", 1, &|s| {
                s.call(
                    1,
                    "truncate",
                    0,
                    &[("path", p(h)), ("length", Value::Int(0))],
                );
            }),
            ("ftruncate", 1, &|s| {
                s.call(
                    1,
                    "ftruncate",
                    0,
                    &[("fd", file_fd(3, h, 7)), ("length", Value::Int(0))],
                );
            }),
            ("rm", 1, &|s| {
                s.call(1, "unlinkat", 0, &[("path", p(h))]);
            }),
            ("moved away", 1, &|s| rename(s, 1, "renameat2", h, "/tmp/h")),
            ("ln -sf /dev/null", 1, &|s| {
                s.call(
                    1,
                    "symlinkat",
                    0,
                    &[("target", p("/dev/null")), ("linkpath", p(h))],
                );
            }),
            (
                "bash saving its history through a temporary file",
                0,
                &|s| {
                    open(
                        s,
                        1,
                        "openat",
                        p("/root/.bash_history-1234.tmp"),
                        O_WRONLY | O_CREAT | O_TRUNC,
                    );
                    rename(s, 1, "rename", "/root/.bash_history-1234.tmp", h);
                },
            ),
            ("bash appending", 0, &o("openat", h, O_WRONLY | O_APPEND)),
            ("reading it", 0, &o("openat", h, 0)),
        ],
    );
}

#[test]
fn kernel_module_load() {
    let o = |call: &'static str, path: &'static str, flags: u64| {
        move |s: &mut Stream| open(s, 1, call, p(path), flags)
    };
    let ko = "/lib/modules/6.18.0/extra/rootkit.ko";
    check(
        "kernel_module_load",
        &[
            ("a new .ko", 1, &o("openat", ko, O_WRONLY | O_CREAT)),
            (
                "an existing module overwritten O_RDWR",
                1,
                &o("openat", ko, O_RDWR),
            ),
            (
                "a compressed module",
                1,
                &o("openat", "/tmp/r.ko.zst", O_WRONLY | O_CREAT),
            ),
            ("creat", 1, &o("creat", ko, 0)),
            ("openat2", 1, &o("openat2", ko, O_WRONLY | O_CREAT)),
            (
                "io_uring openat",
                1,
                &o("io_uring:openat", ko, O_WRONLY | O_CREAT),
            ),
            ("i386 open", 1, &o("i386:open", ko, O_WRONLY | O_CREAT)),
            ("renamed into place", 1, &|s| {
                rename(s, 1, "renameat2", "/tmp/x", ko)
            }),
            ("finit_module", 1, &|s| {
                s.call(1, "finit_module", 0, &[]);
            }),
            ("init_module", 1, &|s| {
                s.call(1, "init_module", 0, &[]);
            }),
            ("modprobe reading a module", 0, &o("openat", ko, 0)),
            (
                "a backup copy",
                0,
                &o("openat", "/tmp/rootkit.ko.bak", O_WRONLY | O_CREAT),
            ),
        ],
    );
}

#[test]
fn mass_file_open() {
    let calls = [
        "openat",
        "open",
        "openat2",
        "creat",
        "io_uring:openat",
        "i386:open",
    ];
    check(
        "mass_file_open",
        &[
            ("201 files by openat", 1, &|s| {
                for i in 0..201 {
                    open(s, 1, "openat", p(&format!("/home/u/doc{i}")), O_RDWR);
                }
            }),
            (
                "201 files through every open call and ABI together",
                1,
                &|s| {
                    for i in 0..201 {
                        open(
                            s,
                            1,
                            calls[i % calls.len()],
                            p(&format!("/home/u/doc{i}")),
                            O_RDWR,
                        );
                    }
                },
            ),
            ("200 files", 0, &|s| {
                for i in 0..200 {
                    open(s, 1, "openat", p(&format!("/home/u/doc{i}")), O_RDWR);
                }
            }),
            ("300 opens of one file", 0, &|s| {
                for _ in 0..300 {
                    open(s, 1, "openat", p("/home/u/doc"), O_RDWR);
                }
            }),
            ("201 files over 4 s", 0, &|s| {
                for i in 0..201 {
                    open(s, 1, "openat", p(&format!("/home/u/doc{i}")), O_RDWR);
                    s.wait_ms(20);
                }
            }),
        ],
    );
}

#[test]
fn fork_storm() {
    let start = |s: &mut Stream, pid: u32, ppid: u32, flags: u64| {
        s.push(
            pid,
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid,
                exe: "/bin/sh".into(),
                argv: vec![Str::from("sh")].into(),
                creds: Creds::default(),
                clone_flags: flags,
            }),
        );
    };
    check(
        "fork_storm",
        &[
            ("200 forks", 1, &|s| {
                for i in 0..200 {
                    start(s, 1000 + i, 1, 0x11);
                }
            }),
            ("fork, vfork and clone3 mixed", 1, &|s| {
                for i in 0..200 {
                    start(s, 1000 + i, 1, [0x11, 0x4111, 0x3d0f00][i as usize % 3]);
                }
            }),
            ("199", 0, &|s| {
                for i in 0..199 {
                    start(s, 1000 + i, 1, 0x11);
                }
            }),
            ("200 over 2 s", 0, &|s| {
                for i in 0..200 {
                    start(s, 1000 + i, 1, 0x11);
                    s.wait_ms(10);
                }
            }),
        ],
    );
}

#[test]
fn temp_file_left_behind() {
    let later = |s: &mut Stream| {
        s.wait_ms(11_000);
        s.call(99, "getpid", 99, &[]);
    };
    let created = |call: &'static str, flags: u64| {
        move |s: &mut Stream| {
            open(s, 1, call, p("/tmp/x"), flags);
            later(s);
        }
    };
    check(
        "temp_file_left_behind",
        &[
            (
                "openat O_CREAT, left",
                1,
                &created("openat", O_WRONLY | O_CREAT),
            ),
            ("creat", 1, &created("creat", 0)),
            ("openat2", 1, &created("openat2", O_RDWR | O_CREAT)),
            (
                "io_uring openat",
                1,
                &created("io_uring:openat", O_WRONLY | O_CREAT),
            ),
            ("i386 open", 1, &created("i386:open", O_WRONLY | O_CREAT)),
            ("through a relative path", 1, &|s| {
                open(s, 1, "openat", via("/tmp/x", "x"), O_WRONLY | O_CREAT);
                later(s);
            }),
            ("the process ended without removing it", 1, &|s| {
                open(s, 1, "openat", p("/var/tmp/x"), O_WRONLY | O_CREAT);
                s.exit_process(1);
            }),
            ("removed by unlink (not unlinkat)", 0, &|s| {
                open(s, 1, "openat", p("/tmp/x"), O_WRONLY | O_CREAT);
                s.call(1, "unlink", 0, &[("path", p("/tmp/x"))]);
                later(s);
            }),
            ("removed by unlinkat", 0, &|s| {
                open(s, 1, "openat", p("/tmp/x"), O_WRONLY | O_CREAT);
                s.call(1, "unlinkat", 0, &[("path", p("/tmp/x"))]);
                later(s);
            }),
            ("moved away", 0, &|s| {
                open(s, 1, "openat", p("/tmp/x"), O_WRONLY | O_CREAT);
                rename(s, 1, "renameat2", "/tmp/x", "/home/u/x");
                later(s);
            }),
            ("creation refused (EEXIST)", 0, &|s| {
                open_ino(
                    s,
                    1,
                    "openat",
                    p("/tmp/x"),
                    O_WRONLY | O_CREAT | 0o200,
                    -17,
                    0,
                );
                later(s);
            }),
            ("a file created elsewhere", 0, &|s| {
                open(s, 1, "openat", p("/home/u/x"), O_WRONLY | O_CREAT);
                later(s);
            }),
        ],
    );
}

#[test]
fn dangling_syscall() {
    check(
        "dangling_syscall",
        &[
            ("an entry, then another, no exit", 1, &|s| {
                s.enter(1, 1, "read", &[]);
                s.enter(1, 1, "write", &[]);
            }),
            ("i386 calls", 1, &|s| {
                s.enter(1, 1, "i386:read", &[]);
                s.enter(1, 1, "i386:write", &[]);
            }),
            ("entries with their exits", 0, &|s| {
                s.call(1, "read", 1, &[]);
                s.call(1, "write", 1, &[]);
            }),
            ("two threads", 0, &|s| {
                s.enter(1, 1, "read", &[]);
                s.enter(1, 2, "write", &[]);
            }),
            ("an io_uring operation completes later", 0, &|s| {
                s.enter(1, 1, "io_uring:read", &[]);
                s.enter(1, 1, "read", &[]);
            }),
            (
                "a call with io_uring operations submitted inside it",
                0,
                &|s| {
                    s.enter(1, 1, "read", &[]);
                    s.enter(1, 1, "io_uring:openat", &[]);
                },
            ),
        ],
    );
}

#[test]
fn failed_privileged_open() {
    let refused = |s: &mut Stream, call: &str, errno: i64| {
        open_ino(s, 1, call, p("/root/secret"), 0, -errno, 0);
    };
    check(
        "failed_privileged_open",
        &[
            ("five EACCES", 1, &|s| {
                (0..5).for_each(|_| refused(s, "openat", 13))
            }),
            ("every open call and ABI, EACCES and EPERM", 1, &|s| {
                for (call, e) in [
                    ("open", 13),
                    ("openat2", 1),
                    ("creat", 13),
                    ("io_uring:openat", 13),
                    ("i386:open", 1),
                ] {
                    refused(s, call, e);
                }
            }),
            ("four", 0, &|s| {
                (0..4).for_each(|_| refused(s, "openat", 13))
            }),
            ("five ENOENT", 0, &|s| {
                (0..5).for_each(|_| refused(s, "openat", 2))
            }),
            ("five over 10 s", 0, &|s| {
                for _ in 0..5 {
                    refused(s, "openat", 13);
                    s.wait_ms(2_500);
                }
            }),
        ],
    );
}

#[test]
fn failed_privileged_open_names_the_last_refusal() {
    let out = output("failed_privileged_open", &|s| {
        s.start(4, 1, "/usr/bin/find");
        for path in ["/root/a", "/root/b", "/root/c", "/root/d", "/root/e"] {
            open_ino(s, 4, "openat", p(path), 0, -13, 0);
        }
    });
    assert_eq!(
        out,
        "/usr/bin/find (pid 4) was refused 5 opens within 5 s, the last /root/e (EACCES)"
    );
}

#[test]
fn unusual_port() {
    let c = |call: &'static str, to: &'static str, ret: i64| {
        move |s: &mut Stream| connect(s, 1, call, to, ret)
    };
    check(
        "unusual_port",
        &[
            ("connected", 1, &c("connect", "203.0.113.9:4444", 0)),
            (
                "non-blocking: EINPROGRESS (curl)",
                1,
                &c("connect", "203.0.113.9:4444", -115),
            ),
            (
                "refused: the C2 is down",
                1,
                &c("connect", "203.0.113.9:31337", -111),
            ),
            ("unreachable", 1, &c("connect", "203.0.113.9:1337", -101)),
            ("IPv6", 1, &c("connect", "[2001:db8::1]:6667", 0)),
            (
                "io_uring connect",
                1,
                &c("io_uring:connect", "203.0.113.9:4444", -115),
            ),
            ("i386 connect", 1, &c("i386:connect", "203.0.113.9:4444", 0)),
            ("a UDP datagram", 1, &|s| {
                s.call(
                    1,
                    "sendto",
                    10,
                    &[
                        ("fd", sock_fd(4, "203.0.113.9:4444")),
                        ("dest", addr("203.0.113.9:4444")),
                    ],
                );
            }),
            ("a non-blocking connect asked again: one alert", 1, &|s| {
                connect(s, 1, "connect", "203.0.113.9:4444", -115);
                connect(s, 1, "connect", "203.0.113.9:4444", -114);
                connect(s, 1, "connect", "203.0.113.9:4444", -106);
            }),
            ("port 443", 0, &c("connect", "203.0.113.9:443", 0)),
            ("a unix socket", 0, &c("connect", "/run/4444", 0)),
        ],
    );
    let out = |ret: i64| {
        output("unusual_port", &move |s| {
            s.start(5, 1, "/usr/bin/curl");
            connect(s, 5, "connect", "203.0.113.9:4444", ret);
        })
    };
    assert_eq!(
        out(-115),
        "/usr/bin/curl (pid 5) called 203.0.113.9:4444, a port backdoors and IRC bots use: EINPROGRESS"
    );
    assert!(out(0).ends_with(": ok"), "{}", out(0));
    assert!(out(-111).ends_with(": ECONNREFUSED"), "{}", out(-111));
}

/// Every rule of the file has an OUTPUT and a test above.
fn vigil_action(s: &mut Stream, pid: u32, action: &str, by: &str, detail: &str) {
    s.push(
        pid,
        pid,
        EventKind::Action(Action {
            action: action.into(),
            by: by.into(),
            target_pid: pid,
            detail: detail.into(),
        }),
    );
}

#[test]
fn io_uring_use() {
    check(
        "io_uring_use",
        &[
            ("a ring set up", 1, &|s| {
                s.call(1, "io_uring_setup", 3, &[("entries", Value::Uint(8))]);
            }),
            ("through the i386 ABI", 1, &|s| {
                s.call(1, "i386:io_uring_setup", 3, &[("entries", Value::Uint(8))]);
            }),
            ("a refused setup", 0, &|s| {
                s.call(1, "io_uring_setup", -(libc_enosys()), &[]);
            }),
        ],
    );
}

fn libc_enosys() -> i64 {
    38
}

#[test]
fn io_uring_sqpoll() {
    check(
        "io_uring_sqpoll",
        &[
            ("vigil's alert", 1, &|s| {
                vigil_action(
                    s,
                    1,
                    "alert",
                    "",
                    "io_uring ring fd 3 is polled by a kernel thread (IORING_SETUP_SQPOLL): ...",
                )
            }),
            ("a rule's own alert is not vigil's", 0, &|s| {
                vigil_action(s, 1, "alert", "some_rule", "IORING_SETUP_SQPOLL")
            }),
            ("another alert", 0, &|s| {
                vigil_action(s, 1, "alert", "", "something else")
            }),
        ],
    );
}

#[test]
fn vigil_tampering() {
    check(
        "vigil_tampering",
        &[
            ("a kill of vigil refused", 1, &|s| {
                vigil_action(
                    s,
                    1,
                    "refused",
                    "",
                    "kill: SIGKILL aimed at vigil itself: refused",
                )
            }),
            ("a group SIGKILL redirected", 1, &|s| {
                vigil_action(s, 1, "redirected", "", "kill: SIGKILL to process group 7")
            }),
            ("a path changed during a call", 1, &|s| {
                vigil_action(s, 1, "path-changed", "", "openat: vigil resolved /tmp/h")
            }),
            ("an untraced child killed", 1, &|s| {
                vigil_action(s, 1, "killed", "", "clone3 child")
            }),
            ("a rule's deny is not an attack on vigil", 0, &|s| {
                vigil_action(s, 1, "deny", "guard", "EACCES")
            }),
            ("a rule's kill", 0, &|s| {
                vigil_action(s, 1, "kill", "dropper", "")
            }),
        ],
    );
}

#[test]
fn every_rule_has_an_output_and_a_test() {
    let rs = detections();
    assert_eq!(rs.rules().len(), 23);
    let me = include_str!("detections.rs");
    for r in rs.rules() {
        assert!(r.output.is_some(), "rule {} has no OUTPUT", r.name);
        assert!(
            me.contains(&format!("fn {}() {{", r.name)),
            "rule {} has no test",
            r.name
        );
    }
}
