//! show, summary, export, import, and what they do with damaged or foreign files.

mod common;

use common::*;
use std::io::Write;
use vigil_testkit::scratch_dir;

/// Two threads whose calls interleave: entry A, entry B, exit A, exit B.
const INTERLEAVED: &str = r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/app","argv":["app"]}
{"seq":2,"time_ns":2000,"pid":10,"tid":10,"type":"syscall_entry","syscall":"read","args":{"fd":{"fd":0,"target":{"kind":"pipe","ino":5}},"buf":4096,"count":10}}
{"seq":3,"time_ns":3000,"pid":10,"tid":11,"type":"syscall_entry","syscall":"openat","args":{"dirfd":{"fd":-100},"path":"/etc/shadow","flags":"O_RDONLY"}}
{"seq":4,"time_ns":4000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"read","entry_seq":2,"ret":10,"args":{"fd":{"fd":0,"target":{"kind":"pipe","ino":5}},"buf":4096,"count":10}}
{"seq":5,"time_ns":5000,"pid":10,"tid":11,"type":"syscall_exit","syscall":"openat","entry_seq":3,"ret":-13,"args":{"dirfd":{"fd":-100},"path":"/etc/shadow","flags":"O_RDONLY"}}
{"seq":6,"time_ns":6000,"pid":10,"tid":10,"type":"syscall_entry","syscall":"exit_group","args":{"status":0}}
{"seq":7,"time_ns":7000,"pid":10,"tid":10,"type":"thread_exit","exit_code":0}
{"seq":8,"time_ns":7000,"pid":10,"tid":10,"type":"process_exit","exit_code":0}
"#;

fn import(dir: &std::path::Path, jsonl: &str) -> std::path::PathBuf {
    let src = dir.join("in.jsonl");
    std::fs::write(&src, jsonl).unwrap();
    let log = dir.join("in.vlog");
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    log
}

#[test]
fn show_marks_calls_interrupted_by_another_thread() {
    let dir = scratch_dir("show-interleave");
    let log = import(&dir, INTERLEAVED);
    let out = run(vigil().arg("show").arg(&log).args(["--time", "none"]));
    assert!(out.status.success());
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines[1].starts_with("10")
            && lines[1].ends_with("read(0<pipe:[5]>, 0x1000, 10 <unfinished ...>"),
        "{listing}"
    );
    assert!(
        lines[2].contains("10/11")
            && lines[2].ends_with("openat(AT_FDCWD, \"/etc/shadow\", O_RDONLY <unfinished ...>"),
        "{listing}"
    );
    assert!(lines[3].ends_with("<... read resumed>) = 10"), "{listing}");
    assert!(
        lines[4].ends_with("<... openat resumed>) = -1 EACCES (Permission denied)"),
        "{listing}"
    );
    assert!(lines[5].ends_with("exit_group(0) = ?"), "{listing}");
    assert!(lines[6].ends_with("+++ exit 0 +++"), "{listing}");
}

#[test]
fn show_filters() {
    let dir = scratch_dir("show-filter");
    let log = import(&dir, INTERLEAVED);
    let show = |args: &[&str]| {
        text(
            &run(vigil()
                .arg("show")
                .arg(&log)
                .args(["--time", "none"])
                .args(args))
            .stdout,
        )
    };
    let failed = show(&["--failed"]);
    assert_eq!(failed.lines().count(), 1, "{failed}");
    assert!(
        failed.contains("openat(AT_FDCWD, \"/etc/shadow\", O_RDONLY) = -1 EACCES"),
        "{failed}"
    );
    let by_path = show(&["--path", "/etc/*"]);
    assert_eq!(by_path.lines().count(), 1, "{by_path}");
    assert!(
        show(&["--syscall", "read"])
            .lines()
            .all(|l| l.contains("read("))
    );
    assert_eq!(show(&["--pid", "99"]).lines().count(), 0);
    let json = show(&["--format", "json", "--syscall", "openat"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "entry and exit");
    assert_eq!(lines[1]["errno"], "EACCES");
    let bad = run(vigil().arg("show").arg(&log).args(["--syscall", "opnat"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("openat"),
        "suggests the real name"
    );
}

#[test]
fn export_then_import_is_lossless() {
    let dir = scratch_dir("roundtrip");
    let (_, events, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os("ls / | wc -l > n.txt")]);
    let exported = run(vigil().arg("export").arg(&log).args(["--format", "jsonl"]));
    assert!(exported.status.success());
    let again = import(&dir, &text(&exported.stdout));
    assert_eq!(read_log(&again), events);
    let exported2 = run(vigil().arg("export").arg(&again));
    assert_eq!(exported.stdout, exported2.stdout);
    let first: serde_json::Value =
        serde_json::from_str(text(&exported.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "process_start");
}

#[test]
fn import_errors_name_the_line() {
    let dir = scratch_dir("import-bad");
    let src = dir.join("bad.jsonl");
    let mut f = std::fs::File::create(&src).unwrap();
    writeln!(f, "{}", INTERLEAVED.lines().next().unwrap()).unwrap();
    writeln!(f, r#"{{"seq":2,"time_ns":1,"pid":1,"type":"syscall_exit","syscall":"openat","ret":0,"args":{{"flags":"O_NOPE"}}}}"#).unwrap();
    let out = run(vigil()
        .arg("import")
        .arg(&src)
        .arg("-o")
        .arg(dir.join("x.vlog")));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("args.flags"),
        "{err}"
    );
}

#[test]
fn the_demo_summarises_matches_a_rule_and_backtracks() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("demo");
    let out = run(vigil().arg("demo").arg("-o").arg(dir.join("demo.vlog")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "Processes (",
        "sort",
        "tr a-z A-Z",
        "Syscalls (",
        "openat",
        "Files read",
        "users.txt",
        "Files written",
        "upper.txt",
        "Files deleted",
        "archive.txt",
        "Files renamed",
        "backup.txt -> ",
        "Files executed",
        "/usr/bin/sort",
        // The built-in rule finds the mv then rm of archive.txt.
        "match #1 {",
        "archive.txt was renamed by pid",
        // count.txt traced back through wc, upper.txt, tr, the pipe, sort, to users.txt.
        "(detection point",
        "<- write",
        "wc -l [process]",
        "pipe:[",
        "sort users.txt [process]",
        "users.txt [file]",
        "entry points:",
    ] {
        assert!(s.contains(want), "the demo's output lacks `{want}`:\n{s}");
    }
}

#[test]
fn foreign_truncated_and_corrupt_logs_are_reported_not_fatal() {
    let dir = scratch_dir("damaged");
    // Not a log at all.
    let foreign = dir.join("foreign.vlog");
    std::fs::write(&foreign, "hello, I am a text file\n").unwrap();
    for cmd in ["show", "summary", "export"] {
        let out = run(vigil().arg(cmd).arg(&foreign));
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("foreign.vlog"), "{err}");
    }
    // A real log, cut in the middle of its last block (before its end record).
    let (_, events, log) = record_in(
        &dir,
        &[],
        &[
            os("sh"),
            os("-c"),
            os("for i in 1 2 3 4 5 6 7 8; do cat /etc/passwd > /dev/null; done"),
        ],
    );
    let bytes = std::fs::read(&log).unwrap();
    let cut = dir.join("cut.vlog");
    let last = layout(&bytes).blocks.pop().unwrap();
    std::fs::write(&cut, &bytes[..last.end - 10]).unwrap();
    let out = run(vigil().arg("export").arg(&cut));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("byte"),
        "names the offset: {}",
        text(&out.stderr)
    );
    let n = text(&out.stdout).lines().count();
    assert!(n < events.len(), "the torn block is dropped");
    // A flipped byte in the middle: the bad block is skipped, later ones still read.
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x55;
    let bad = dir.join("flipped.vlog");
    std::fs::write(&bad, &flipped).unwrap();
    let out = run(vigil().arg("summary").arg(&bad));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("corrupt"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("Processes"));
}

#[test]
fn summary_says_how_each_connect_ended() {
    let connect = |seq: u32, call: &str, to: &str, ret: i64| {
        format!(
            r#"{{"seq":{seq},"time_ns":{seq}000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"{call}","entry_seq":0,"ret":{ret},"args":{{"fd":{{"fd":3}},"addr":{{"inet":"{to}"}},"addrlen":16}}}}"#
        )
    };
    let log = [
        r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/usr/bin/curl","argv":["curl"]}"#.to_string(),
        connect(2, "connect", "127.0.0.1:80", 0),
        connect(3, "connect", "203.0.113.9:4444", -115),
        connect(4, "connect", "127.0.0.1:1", -111),
        connect(5, "connect", "198.51.100.1:22", -101),
        connect(6, "io_uring:connect", "192.0.2.7:443", -111),
        connect(7, "i386:connect", "192.0.2.8:443", 0),
    ]
    .join("\n");
    let dir = scratch_dir("summary-connect");
    let log = import(&dir, &format!("{log}\n"));
    let out = run(vigil().arg("summary").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let line = |ep: &str| {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{ep}:")))
            .unwrap_or_else(|| panic!("no line for {ep}:\n{summary}"))
            .trim()
            .to_string()
    };
    assert_eq!(line("127.0.0.1:80"), "127.0.0.1:80: connected to by 10");
    assert_eq!(
        line("203.0.113.9:4444"),
        "203.0.113.9:4444: connecting to (in progress) by 10"
    );
    assert_eq!(
        line("127.0.0.1:1"),
        "127.0.0.1:1: failed to connect to (ECONNREFUSED) by 10"
    );
    assert_eq!(
        line("198.51.100.1:22"),
        "198.51.100.1:22: failed to connect to (ENETUNREACH) by 10"
    );
    assert_eq!(
        line("192.0.2.7:443"),
        "192.0.2.7:443: failed to connect to (ECONNREFUSED) by 10"
    );
    assert_eq!(line("192.0.2.8:443"), "192.0.2.8:443: connected to by 10");
    assert!(summary.contains("Network endpoints (6):"), "{summary}");
}

#[test]
fn summary_does_not_count_restarted_calls_as_errors() {
    // A read interrupted by a signal (ERESTARTSYS) and run again, then one that really failed
    // (EINTR); wait4 and nanosleep interrupted (ERESTARTNOHAND, ERESTART_RESTARTBLOCK); a
    // connect interrupted before it finished (ERESTARTSYS), run again and connected.
    let exit = |seq: u32, call: &str, ret: i64, args: &str| {
        format!(
            r#"{{"seq":{seq},"time_ns":{seq}000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"{call}","entry_seq":0,"ret":{ret},"args":{{{args}}}}}"#
        )
    };
    let read = r#""fd":{"fd":0},"buf":4096,"count":10"#;
    let connect = r#""fd":{"fd":3},"addr":{"inet":"192.0.2.1:80"},"addrlen":16"#;
    let log = [
        r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/app","argv":["app"]}"#.to_string(),
        exit(2, "read", -512, read),
        exit(3, "read", 10, read),
        exit(4, "read", -4, read),
        exit(5, "wait4", -514, ""),
        exit(6, "nanosleep", -516, ""),
        exit(7, "connect", -512, connect),
        exit(8, "connect", 0, connect),
        exit(9, "pause", -513, ""),
    ]
    .join("\n");
    let dir = scratch_dir("summary-restart");
    let log = import(&dir, &format!("{log}\n"));
    let out = run(vigil().arg("summary").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let row = |call: &str| -> Vec<String> {
        summary
            .lines()
            .find(|l| l.split_whitespace().last() == Some(call))
            .unwrap_or_else(|| panic!("no row for {call}:\n{summary}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // calls, errors, restarted, time, name
    assert_eq!(row("read")[..3], ["2", "1", "1"], "{summary}");
    assert_eq!(row("wait4")[..3], ["0", "0", "1"], "{summary}");
    assert_eq!(row("nanosleep")[..3], ["0", "0", "1"], "{summary}");
    assert_eq!(row("pause")[..3], ["0", "0", "1"], "{summary}");
    assert_eq!(row("connect")[..3], ["1", "0", "1"], "{summary}");
    assert!(summary.contains("Syscalls (3 calls):"), "{summary}");
    assert!(
        summary.contains("192.0.2.1:80: connected to by 10") && !summary.contains("failed"),
        "{summary}"
    );
}

#[test]
fn summary_shows_the_port_a_bind_got() {
    // Two binds to port 0 (the kernel picks the port: the exit's fd says which), one to a
    // fixed port, and one whose exit does not say (an older log): its address as given.
    let bind = |seq: u32, fd: u32, addr: &str, local: Option<&str>| {
        let target = match local {
            Some(l) => format!(
                r#","target":{{"kind":"socket","ino":{seq},"family":2,"type":1,"local":{{"inet":"{l}"}}}}"#
            ),
            None => String::new(),
        };
        format!(
            r#"{{"seq":{seq},"time_ns":{seq}000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"bind","entry_seq":0,"ret":0,"args":{{"fd":{{"fd":{fd}{target}}},"addr":{{"inet":"{addr}"}},"addrlen":16}}}}"#
        )
    };
    let log = [
        r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/usr/bin/server","argv":["server"]}"#.to_string(),
        bind(2, 3, "127.0.0.1:0", Some("127.0.0.1:47433")),
        bind(3, 4, "0.0.0.0:0", Some("0.0.0.0:39162")),
        bind(4, 5, "127.0.0.1:8080", Some("127.0.0.1:8080")),
        bind(5, 6, "127.0.0.1:9090", None),
    ]
    .join("\n");
    let dir = scratch_dir("summary-bind");
    let log = import(&dir, &format!("{log}\n"));
    let out = run(vigil().arg("summary").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let endpoints = &summary[summary.find("Network endpoints").unwrap()..];
    assert_eq!(
        endpoints.lines().skip(1).map(str::trim).collect::<Vec<_>>(),
        [
            "0.0.0.0:39162: bound by 10",
            "127.0.0.1:47433: bound by 10",
            "127.0.0.1:8080: bound by 10",
            "127.0.0.1:9090: bound by 10",
        ],
        "{summary}"
    );
}

/// The kinds of the shared-memory and multi-variant parts, imported: show prints them,
/// summary counts them (and lists the objects and the divergence), export gives back the same
/// lines, and backtracking from the reader of a shared file finds its writer.
const NEW_KINDS: &str = r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/w","argv":["w"]}
{"seq":2,"time_ns":2000,"pid":11,"tid":11,"type":"process_start","ppid":1,"exe":"/bin/r","argv":["r"]}
{"seq":3,"time_ns":3000,"pid":10,"tid":10,"type":"address_space","vmas":[{"start":4194304,"end":4198400,"perms":"r-xp","offset":0,"dev":2049,"ino":12,"path":"/bin/w"},{"start":140737488216064,"end":140737488351232,"perms":"rw-p","offset":0,"dev":0,"ino":0,"path":"[stack]"}]}
{"seq":4,"time_ns":4000,"pid":10,"tid":10,"type":"smo_write","object":{"kind":"file","dev":2049,"ino":77,"path":"/tmp/shared"},"offset":4096,"len":4096,"addr":139637976731648,"ip":4198400,"via":"fault"}
{"seq":5,"time_ns":5000,"pid":11,"tid":11,"type":"smo_read","object":{"kind":"file","dev":2049,"ino":77,"path":"/tmp/shared"},"offset":4096,"len":4096,"addr":139637976735744,"ip":4198500,"via":"syscall","via_syscall":"write","via_nr":1}
{"seq":6,"time_ns":6000,"pid":11,"tid":11,"type":"divergence","what":"args","syscall":"write","nr":1,"fields":["buf"],"detail":"the buffers differ","variants":[{"index":0,"pid":11,"tid":11,"diverged":false,"syscall":"write","nr":1,"args":{"fd":{"fd":1},"buf":{"hex":"414243"},"count":3},"detail":""},{"index":1,"pid":21,"tid":21,"diverged":true,"syscall":"write","nr":1,"args":{"fd":{"fd":1},"buf":{"hex":"414244"},"count":3},"detail":""}]}
"#;

#[test]
fn new_kinds_are_shown_summarised_exported_and_followed() {
    let dir = scratch_dir("new-kinds");
    let log = import(&dir, NEW_KINDS);
    let out = run(vigil().arg("show").arg(&log).args(["--time", "none"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for want in [
        "+++ address space: 2 mappings +++",
        "    400000-401000 r-xp 00000000 08:01 12 /bin/w",
        "~~~ smo_write /tmp/shared [4096+4096] at 0x7f0000001000 ip 0x401000 (fault) ~~~",
        "~~~ smo_read /tmp/shared [4096+4096] at 0x7f0000002000 ip 0x401064 (by write) ~~~",
        "!!! divergence (args) at write in buf: the buffers differ !!!",
        "    variant 1 (pid 21) [diverged]: write(1, \"ABD\", 3)",
    ] {
        assert!(listing.contains(want), "{want}\n{listing}");
    }
    let out = run(vigil().arg("summary").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    for want in [
        "address_space 1",
        "divergence 1",
        "smo_read 1",
        "smo_write 1",
        "Divergences (1):",
        "seq 6: !!! divergence (args) at write in buf: the buffers differ !!!",
        "Shared memory (1 objects):",
        "        1         1  /tmp/shared",
    ] {
        assert!(summary.contains(want), "{want}\n{summary}");
    }
    let out = run(vigil().arg("export").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let back: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let given: Vec<serde_json::Value> = NEW_KINDS
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back.len(), given.len());
    for (b, g) in back.iter().zip(&given) {
        for (k, v) in g.as_object().unwrap() {
            assert_eq!(b.get(k), Some(v), "{k} in {b}");
        }
    }
    let out = run(vigil()
        .arg("backtrack")
        .arg(&log)
        .args(["--from", "proc:11"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let graph = text(&out.stdout);
    assert!(
        graph.contains("/tmp/shared") && graph.contains("10 w"),
        "{graph}"
    );
}
