//! Every feature of the language, matching and not matching.

mod common;

use common::*;
use vigil_event::Value;
use vigil_rules::Val;

const O_CREAT: u64 = 0o100;

#[test]
fn the_seed_rule_runs_as_written() {
    let src = "RULE nosyscallexit\nPATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall] }\nWHERE { [ProcessId], [ThreadId], a.SyscallNr < 300 }\nRETURN { a.SyscallNr, a.TimeStamp }\n";
    let mut s = Stream::new();
    s.call(10, "read", 1, &[]); // entry+exit: fine
    let a = s.enter(10, 11, "write", &[]); // thread 11 enters write...
    s.call(10, "read", 1, &[]); // another thread's calls do not count (tid join)
    s.enter(10, 11, "close", &[]); // ... and enters again with no exit: planted
    s.exit(10, 11, "close", 0, &[]);
    s.enter(20, 20, "read", &[]); // entered, then the thread ends: not a match
    s.push(
        20,
        20,
        vigil_event::EventKind::ThreadExit(vigil_event::ThreadExit {
            status: vigil_event::ExitStatus::Code(0),
        }),
    );
    s.enter(30, 30, "io_uring_setup", &[]); // nr 425 >= 300: excluded by the condition
    s.enter(30, 30, "read", &[]);
    let m = run(src, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].values[0], Val::Int(1)); // write is syscall 1
    assert_eq!(
        m[0].values[1],
        Val::Int(s.events[a as usize - 1].time_ns as i64)
    );
    assert_eq!(m[0].seqs[0], a);
}

#[test]
fn sequence_alternative_and_bindings() {
    let src = r#"RULE dropper PATTERN { [connect:c, (openat|creat):w, exec:x] } WHERE { [ProcessId], w.path startswith "/tmp/", x.exe == w.path } RETURN { c.addr, w.path, x.pid }"#;
    let mut s = Stream::new();
    s.connect(5, "203.0.113.9:4444");
    s.open(5, "/tmp/payload", O_CREAT | 1);
    s.exec(5, "/tmp/payload", &["payload"]);
    // Same steps, wrong order or other files: no match.
    s.open(6, "/tmp/other", O_CREAT | 1);
    s.connect(6, "203.0.113.9:4444");
    s.exec(6, "/tmp/other", &["x"]);
    s.connect(7, "1.2.3.4:80");
    s.open(7, "/home/u/file", 1);
    s.exec(7, "/home/u/file", &["x"]);
    let m = run(src, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        m[0].values,
        vec![
            Val::Str("203.0.113.9:4444".into()),
            Val::Str("/tmp/payload".into()),
            Val::Int(5)
        ]
    );
    assert_eq!(m[0].seqs.len(), 3);
}

#[test]
fn negation_between_events() {
    let src =
        "RULE r PATTERN { [openat:a, ~close, read:b] } WHERE { [ProcessId] } RETURN { b.seq }";
    let mut s = Stream::new();
    s.open(1, "/x", 0);
    s.read(1, "/x"); // match
    s.open(2, "/y", 0);
    s.call(
        2,
        "close",
        0,
        &[("fd", Value::Fd(vigil_event::Fd::new(3, None)))],
    );
    s.read(2, "/y"); // a close came between: no match
    assert_eq!(run(src, &s.events).len(), 1);
}

#[test]
fn negation_with_a_condition_on_the_negated_event() {
    let src =
        r#"RULE r PATTERN { [openat:a, ~openat:x, read] } WHERE { [ProcessId], x.path == a.path }"#;
    let mut s = Stream::new();
    s.open(1, "/x", 0);
    s.open(1, "/other", 0); // a different path does not cancel
    s.read(1, "/x");
    s.open(2, "/y", 0);
    s.open(2, "/y", 0); // same path cancels the first run (the second starts its own)
    s.read(2, "/y");
    let m = run(src, &s.events);
    // pid 1: runs from /x (not cancelled) and from /other -> 2; pid 2: only the second open's run.
    assert_eq!(m.len(), 3, "{m:?}");
}

#[test]
fn trailing_negation_uses_within_as_its_deadline() {
    let src = "RULE no_cleanup PATTERN { [openat:a, ~unlinkat] } WHERE { [ProcessId] } WITHIN 5s RETURN { a.path }";
    let mut s = Stream::new();
    s.open(1, "/tmp/a", O_CREAT | 1); // never unlinked: matches once 5s have passed
    s.open(2, "/tmp/b", O_CREAT | 1);
    s.wait_ms(1000);
    s.call(2, "unlinkat", 0, &[("path", Value::Str("/tmp/b".into()))]); // cleaned up in time
    s.open(3, "/tmp/c", O_CREAT | 1);
    s.exit_process(3); // process gone: nothing more can come from it, so it matches at exit
    let before = run(src, &s.events);
    assert_eq!(
        before.len(),
        1,
        "only pid 3's run is decided before the deadline: {before:?}"
    );
    s.wait_ms(6000);
    s.call(9, "getpid", 9, &[]); // time passes the deadline
    let m = run(src, &s.events);
    let paths: Vec<String> = m.iter().map(|m| m.values[0].to_string()).collect();
    assert_eq!(paths, ["/tmp/c", "/tmp/a"], "{m:?}");
}

#[test]
fn within_limits_a_sequence() {
    let src = "RULE r PATTERN { [connect, exec] } WHERE { [ProcessId] } WITHIN 5s";
    let mut s = Stream::new();
    s.connect(1, "1.1.1.1:1");
    s.wait_ms(4000);
    s.exec(1, "/bin/sh", &["sh"]); // within 5s
    s.connect(2, "1.1.1.1:1");
    s.wait_ms(6000);
    s.exec(2, "/bin/sh", &["sh"]); // too late
    assert_eq!(run(src, &s.events).len(), 1);
}

#[test]
fn repetition_counts() {
    let mut s = Stream::new();
    for i in 0..5 {
        s.open(1, &format!("/f{i}"), 0);
    }
    for _ in 0..3 {
        s.open(2, "/same", 0);
    }
    s.exec(1, "/bin/x", &[]);
    s.exec(2, "/bin/x", &[]);
    let m = |p: &str| {
        run(
            &format!(
                "RULE r PATTERN {{ [openat{p}:o, exec] }} WHERE {{ [ProcessId] }} RETURN {{ count(o) }}"
            ),
            &s.events,
        )
    };
    assert_eq!(m("[>4]").len(), 1, "more than 4 opens: pid 1 only");
    assert_eq!(m("[>4]")[0].values[0], Val::Int(5));
    assert_eq!(m("[>=3]").len(), 2);
    assert_eq!(m("[3]").len(), 1, "exactly 3: pid 2 (pid 1 exceeds)");
    assert_eq!(m("[2..4]").len(), 1);
    assert_eq!(
        m("[>2 distinct path]").len(),
        1,
        "pid 2 opened one distinct path"
    );
}

#[test]
fn per_key_counting_threshold_in_a_sliding_window() {
    // "more than 20 distinct files opened by one process within 10s"
    let src = "RULE ransom PATTERN { [openat[>20 distinct path]:o] } WHERE { [ProcessId] } WITHIN 10s RETURN { o.pid, count(o) }";
    let mut s = Stream::new();
    for i in 0..25 {
        s.open(1, &format!("/home/u/doc{i}"), 2);
        s.wait_ms(100);
    }
    for i in 0..25 {
        s.open(2, &format!("/data/{i}"), 2);
        s.wait_ms(1000); // spread over 25s: never 21 within 10s
    }
    for _ in 0..30 {
        s.open(3, "/same/file", 2); // many opens, one distinct file
    }
    let m = run(src, &s.events);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].values, vec![Val::Int(1), Val::Int(21)]);
}

#[test]
fn string_conditions_lists_and_macros() {
    let src = r#"
LIST sensitive = ["/etc/shadow", "/etc/sudoers"]
MACRO secret(e) = { e.path in sensitive or e.path glob "/root/.ssh/*" }
RULE eq PATTERN { [openat:o] } WHERE { o.path == "/etc/shadow" }
RULE glob PATTERN { [openat:o] } WHERE { o.path glob "/tmp/*.sh" }
RULE re PATTERN { [openat:o] } WHERE { o.path matches "^/dev/(mem|kmem)$" }
RULE pre PATTERN { [openat:o] } WHERE { o.path startswith "/proc/" and o.path endswith "/environ" }
RULE inl PATTERN { [openat:o] } WHERE { o.path in ("/a", "/b") }
RULE mac PATTERN { [openat:o] } WHERE { secret(o) }
RULE neg PATTERN { [openat:o] } WHERE { not (o.path contains "lib") and o.path != "/a" }
"#;
    let mut s = Stream::new();
    for p in [
        "/etc/shadow",
        "/tmp/x.sh",
        "/tmp/x.txt",
        "/dev/mem",
        "/dev/memory",
        "/proc/1/environ",
        "/a",
        "/root/.ssh/id_rsa",
        "/usr/lib/x",
    ] {
        s.open(1, p, 0);
    }
    let rs = rules(src);
    let m = run(src, &s.events);
    let hits = |rule: &str| -> Vec<String> {
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == rule)
            .map(|x| {
                s.events[x.seqs[0] as usize - 1]
                    .arg("path")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(hits("eq"), ["/etc/shadow"]);
    assert_eq!(hits("glob"), ["/tmp/x.sh"]);
    assert_eq!(hits("re"), ["/dev/mem"]);
    assert_eq!(hits("pre"), ["/proc/1/environ"]);
    assert_eq!(hits("inl"), ["/a"]);
    assert_eq!(hits("mac"), ["/etc/shadow", "/root/.ssh/id_rsa"]);
    assert_eq!(
        hits("neg").len(),
        7,
        "all but /a and /usr/lib/x: {:?}",
        hits("neg")
    );
}

#[test]
fn flags_by_name_and_cross_event_comparisons() {
    let src = "RULE creat PATTERN { [openat:o] } WHERE { o.flags has O_CREAT|O_EXCL }\nRULE same PATTERN { [openat:a, read:b] } WHERE { [ProcessId], b.fd.path == a.path }";
    let mut s = Stream::new();
    s.open(1, "/x", O_CREAT | 0o200);
    s.open(1, "/y", O_CREAT);
    s.read(1, "/y"); // same file as the last open
    s.read(1, "/z");
    let m = run(src, &s.events);
    let rs = rules(src);
    assert_eq!(
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == "creat")
            .count(),
        1
    );
    // "same": both opens start runs; the read of /y matches the run of /y only.
    assert_eq!(
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == "same")
            .count(),
        1
    );
}

#[test]
fn priority_tags_and_output_template() {
    let src = r#"RULE r PRIORITY high TAGS { persistence, mitre_t1053 } OUTPUT "pid {o.pid} wrote {o.path}" PATTERN { [openat:o] } WHERE { o.path glob "/etc/cron.d/*" }"#;
    let mut s = Stream::new();
    s.open(42, "/etc/cron.d/evil", 1);
    let rs = rules(src);
    let m = run(src, &s.events);
    assert_eq!(
        m[0].output.as_deref(),
        Some("pid 42 wrote /etc/cron.d/evil")
    );
    let j = vigil_rules::action::match_json(&rs.compiled, &m[0]);
    assert_eq!(j["priority"], "high");
    assert_eq!(j["tags"], serde_json::json!(["persistence", "mitre_t1053"]));
    assert_eq!(j["seqs"], serde_json::json!([m[0].seqs[0]]));
}

#[test]
fn every_rule_sees_every_event() {
    let src = "RULE a PATTERN { [openat] }\nRULE b PATTERN { [openat:o] } WHERE { o.path == \"/x\" }\nRULE c PATTERN { [syscallexit] }";
    let mut s = Stream::new();
    s.open(1, "/x", 0);
    let m = run(src, &s.events);
    let mut rules: Vec<usize> = m.iter().map(|x| x.rule).collect();
    rules.sort();
    assert_eq!(rules, [0, 1, 2], "not first-match-wins");
}

#[test]
fn runs_of_an_exited_process_are_dropped() {
    let src = "RULE r PATTERN { [openat, connect] } WHERE { [ProcessId] }";
    let mut s = Stream::new();
    s.open(1, "/x", 0);
    s.exit_process(1);
    s.connect(1, "1.1.1.1:1"); // a new process reusing pid 1
    let rs = rules(src);
    let mut e = rs.engine(vigil_rules::Limits::default());
    let mut out = Vec::new();
    for ev in &s.events {
        e.process(ev, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(e.stats.rules[0].finished_at_exit, 1);
    assert_eq!(e.open_runs(), 0);
}

#[test]
fn memory_is_capped_and_evictions_counted() {
    let src = "RULE r PATTERN { [openat:o, connect] } WHERE { [ProcessId] } RETURN { o.seq }";
    let mut s = Stream::new();
    let opens: Vec<u64> = (0..50).map(|_| s.open(1, "/x", 0)).collect();
    s.connect(1, "1.2.3.4:80");
    let rs = rules(src);
    let mut e = rs.engine(vigil_rules::Limits {
        max_runs_per_key: 10,
        max_runs_per_rule: 100,
        max_keys_per_rule: 100,
    });
    let mut out = Vec::new();
    for ev in &s.events[..s.events.len() - 2] {
        e.process(ev, &mut out);
    }
    assert_eq!(e.stats.rules[0].open, 10);
    assert_eq!(e.stats.rules[0].evicted, 40);
    // The oldest runs were the ones evicted: the newest ten complete.
    for ev in &s.events[s.events.len() - 2..] {
        e.process(ev, &mut out);
    }
    let mut firsts: Vec<u64> = out.iter().map(|m| m.seqs[0]).collect();
    firsts.sort();
    assert_eq!(firsts, opens[40..]);
}

#[test]
fn keys_and_counting_windows_are_capped_per_rule() {
    let mut s = Stream::new();
    for pid in 1..=50 {
        for i in 0..20 {
            s.open(pid, &format!("/f{i}"), 0);
        }
    }
    let limits = vigil_rules::Limits {
        max_runs_per_key: 1024,
        max_runs_per_rule: 100,
        max_keys_per_rule: 10,
    };
    // Partial matches of 50 processes, 10 keys kept.
    let rs = rules("RULE r PATTERN { [openat, connect] } WHERE { [ProcessId] }");
    let mut e = rs.engine(limits);
    let mut out = Vec::new();
    s.events.iter().for_each(|ev| e.process(ev, &mut out));
    assert_eq!(e.stats.rules[0].evicted_keys, 40);
    assert!(e.stats.rules[0].open <= 100, "{:?}", e.stats.rules[0]);
    // A counting window holds its events; over the rule's cap, the oldest keys go.
    let rs = rules(
        "RULE r PATTERN { [openat[>1000]:o] } WHERE { [ProcessId] } WITHIN 1h RETURN { count(o) }",
    );
    let limits = vigil_rules::Limits {
        max_keys_per_rule: 1000,
        ..limits
    };
    let mut e = rs.engine(limits);
    s.events.iter().for_each(|ev| e.process(ev, &mut out));
    assert!(out.is_empty());
    assert!(e.stats.rules[0].evicted >= 900, "{:?}", e.stats.rules[0]);
    assert!(
        e.stats.rules[0].evicted_keys >= 45,
        "{:?}",
        e.stats.rules[0]
    );
}

#[test]
fn a_key_over_the_window_cap_alone_stays_evictable_later() {
    // Process 1 alone goes over the rule's window cap (nothing older to evict); when process 2
    // comes, process 1 is still the oldest key and is the one evicted.
    let rs = rules(
        "RULE r PATTERN { [openat[>1000]:o] } WHERE { [ProcessId] } WITHIN 1h RETURN { count(o) }",
    );
    let mut e = rs.engine(vigil_rules::Limits {
        max_runs_per_key: 1024,
        max_runs_per_rule: 10,
        max_keys_per_rule: 1000,
    });
    let mut s = Stream::new();
    for i in 0..20 {
        s.open(1, &format!("/a{i}"), 0);
    }
    s.open(2, "/b", 0);
    let mut out = Vec::new();
    s.events.iter().for_each(|ev| e.process(ev, &mut out));
    assert_eq!(e.stats.rules[0].evicted_keys, 1, "{:?}", e.stats.rules[0]);
    assert_eq!(e.stats.rules[0].evicted, 20, "{:?}", e.stats.rules[0]);
}

#[test]
fn a_repetition_reports_every_counted_event() {
    let mut s = Stream::new();
    let opens: Vec<u64> = (0..5)
        .map(|i| s.open(1, &format!("/f{}", i % 3), 0))
        .collect();
    let x = s.exec(1, "/bin/x", &[]);
    let m = run(
        "RULE r PATTERN { [openat[>4]:o, exec] } WHERE { [ProcessId] }",
        &s.events,
    );
    assert_eq!(m[0].seqs, [&opens[..], &[x]].concat());
    // With `distinct`, the events that brought a new value.
    let m = run(
        "RULE r PATTERN { [openat[>2 distinct path]:o, exec] } WHERE { [ProcessId] }",
        &s.events,
    );
    assert_eq!(m[0].seqs, [&opens[..3], &[x]].concat());
    // A counting window lists the events in its time frame.
    let m = run(
        "RULE r PATTERN { [openat[>2 distinct path]:o] } WHERE { [ProcessId] } WITHIN 1s",
        &s.events,
    );
    assert_eq!(m[0].seqs, opens[..3]);
    // Beyond MAX_SEQS, the rest are counted.
    let mut s = Stream::new();
    for _ in 0..300 {
        s.open(1, "/f", 0);
    }
    s.exec(1, "/bin/x", &[]);
    let m = run(
        "RULE r PATTERN { [openat[>299]:o, exec] } WHERE { [ProcessId] }",
        &s.events,
    );
    assert_eq!(m[0].seqs.len(), vigil_rules::MAX_SEQS);
    assert_eq!(m[0].seqs_omitted as usize, 301 - vigil_rules::MAX_SEQS);
}

#[test]
fn entry_events_and_process_fields() {
    let src = r#"RULE r PATTERN { [execve.entry:e] } WHERE { e.comm == "sh" }
RULE p PATTERN { [exec:x] } WHERE { x.argv contains "-c" and x.uid == 0 }"#;
    let mut s = Stream::new();
    s.start(5, 1, "/bin/sh");
    s.enter(5, 5, "execve", &[("path", Value::Str("/bin/ls".into()))]);
    s.exec(5, "/bin/ls", &["sh", "-c", "x"]);
    let m = run(src, &s.events);
    assert_eq!(m.len(), 2, "{m:?}");
}

#[test]
fn json_values_keep_the_return_order() {
    let src = "RULE r PATTERN { [openat:o] } RETURN { o.path, o.pid, o.fd, o.seq }";
    let mut s = Stream::new();
    s.open(1, "/x", 0);
    let rs = rules(src);
    let m = run(src, &s.events);
    let j = vigil_rules::action::match_json(&rs.compiled, &m[0]);
    let keys: Vec<&String> = j["values"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["o.path", "o.pid", "o.fd", "o.seq"]);
}

/// An open event of any open-like call: `name` may be `openat`, `openat2`, `creat`,
/// `io_uring:openat`, `i386:open`...; `flags` is left out when the call has none.
fn open_call(s: &mut Stream, pid: u32, name: &str, path: &str, flags: u64) -> u64 {
    let mut args = vec![("path", Value::Str(path.into()))];
    if name != "creat" && !name.ends_with(":creat") {
        args.push(("flags", Value::Uint(flags)));
    }
    s.call(pid, name, 3, &args)
}

#[test]
fn open_for_write_reads_the_access_mode_creat_trunc_and_o_path() {
    let src = "RULE w PATTERN { [(open|openat|openat2|creat):o] } WHERE { open_for_write(o) } RETURN { o.path }";
    let mut s = Stream::new();
    for (name, path, flags) in [
        ("openat", "/wronly", 1),
        ("openat", "/rdwr", 2),
        ("openat", "/rdonly", 0),
        ("openat", "/creat-rdonly", O_CREAT),
        ("openat", "/trunc-rdonly", 0o1000),
        ("openat", "/o-path-rdwr", 0o10000000 | 2),
        ("openat", "/accmode-3", 3),
        ("openat2", "/openat2-rdwr", 2),
        ("openat2", "/openat2-rdonly", 0),
        ("creat", "/creat", 0),
        ("io_uring:openat", "/uring-rdwr", 2),
        ("io_uring:openat", "/uring-rdonly", 0),
        ("i386:open", "/i386-wronly", 1),
        ("i386:creat", "/i386-creat", 0),
    ] {
        open_call(&mut s, 1, name, path, flags);
    }
    let got: Vec<String> = run(src, &s.events)
        .iter()
        .map(|m| m.values[0].to_string())
        .collect();
    assert_eq!(
        got,
        [
            "/wronly",
            "/rdwr",
            "/creat-rdonly",
            "/trunc-rdonly",
            "/openat2-rdwr",
            "/creat",
            "/uring-rdwr",
            "/i386-wronly",
            "/i386-creat"
        ]
    );
    // Negated, inside `or`, inside a macro, at a syscall's entry (so deny can use it).
    let src = r#"
MACRO writes_tmp(e) = { open_for_write(e) and e.path startswith "/tmp/" }
RULE not_w PATTERN { [openat:o] } WHERE { not open_for_write(o) } RETURN { o.path }
RULE either PATTERN { [openat:o] } WHERE { o.path == "/rdonly" or open_for_write(o) and o.path == "/rdwr" } RETURN { o.path }
RULE mac PATTERN { [openat:o] } WHERE { writes_tmp(o) } RETURN { o.path }
RULE guard PATTERN { [openat:o] } WHERE { open_for_write(o), o.path == "/tmp/a" } DO { deny(EPERM) }
"#;
    let mut s = Stream::new();
    for (path, flags) in [("/rdonly", 0), ("/rdwr", 2), ("/tmp/a", 1), ("/tmp/b", 0)] {
        open_call(&mut s, 1, "openat", path, flags);
    }
    let rs = rules(src);
    let m = run(src, &s.events);
    let hits = |rule: &str| -> Vec<String> {
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == rule)
            .map(|x| x.values.first().map_or(String::new(), |v| v.to_string()))
            .collect()
    };
    assert_eq!(hits("not_w"), ["/rdonly", "/tmp/b"]);
    assert_eq!(hits("either"), ["/rdonly", "/rdwr"]);
    assert_eq!(hits("mac"), ["/tmp/a"]);
    assert_eq!(
        hits("guard").len(),
        1,
        "matched at the entry of the write open"
    );
}

#[test]
fn open_for_write_is_refused_where_it_cannot_be_true() {
    let e = errors("RULE r PATTERN { [exec:x] } WHERE { open_for_write(x) }");
    assert!(
        e.contains("open_for_write(x) can never be true: `x` is not an open"),
        "{e}"
    );
    let e = errors("RULE r PATTERN { [openat:o, read:r] } WHERE { open_for_write(o, r) }");
    assert!(e.contains("open_for_write takes one event"), "{e}");
    let e = errors("MACRO open_for_write(e) = { e.pid == 1 }\nRULE r PATTERN { [openat:o] }");
    assert!(
        e.contains("`open_for_write` is built into the language"),
        "{e}"
    );
    // An alternative with an open in it is fine: it is false on the other events.
    let src = r#"RULE r PATTERN { [(openat|truncate):o] } WHERE { open_for_write(o) or o.call == truncate }"#;
    let mut s = Stream::new();
    open_call(&mut s, 1, "openat", "/a", 0);
    s.call(1, "truncate", 0, &[("path", Value::Str("/b".into()))]);
    assert_eq!(run(src, &s.events).len(), 1, "the truncate only");
}

#[test]
fn an_alternative_may_use_fields_only_some_of_its_events_have() {
    // path on unlink, fd on ftruncate; ret on execve but not on exec; none of them elsewhere.
    let src = r#"
RULE tamper PATTERN { [(unlink|ftruncate):u] } WHERE { u.path glob "/var/log/*" or u.fd.path glob "/var/log/*" } RETURN { u.call }
RULE ran PATTERN { [(exec|execve):x] } WHERE { x.type == "process_exec" or x.ret == 0 } RETURN { x.type }
RULE neq PATTERN { [(unlink|ftruncate):u] } WHERE { u.path != "/var/log/a" } RETURN { u.call }
"#;
    let mut s = Stream::new();
    let log = |p: &str| {
        Value::Fd(vigil_event::Fd::new(
            3,
            Some(std::sync::Arc::new(vigil_event::Target::File {
                path: p.into(),
                dev: 1,
                ino: 2,
            })),
        ))
    };
    s.call(1, "unlink", 0, &[("path", Value::Str("/var/log/a".into()))]);
    s.call(1, "ftruncate", 0, &[("fd", log("/var/log/b"))]);
    s.call(1, "ftruncate", 0, &[("fd", log("/home/b"))]);
    s.exec(1, "/bin/true", &["true"]);
    s.call(1, "execve", 0, &[("path", Value::Str("/bin/true".into()))]);
    s.call(1, "execve", -2, &[("path", Value::Str("/nope".into()))]);
    let rs = rules(src);
    let m = run(src, &s.events);
    let hits = |rule: &str| -> Vec<String> {
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == rule)
            .map(|x| x.values[0].to_string())
            .collect()
    };
    assert_eq!(hits("tamper"), ["unlink", "ftruncate"]);
    assert_eq!(hits("ran"), ["process_exec", "syscall_exit"]);
    // A field an event does not have is null: `!=` holds for it.
    assert_eq!(hits("neq"), ["ftruncate", "ftruncate"]);
    // A field none of the events has is still an error; so is one that means two things.
    let e = errors("RULE r PATTERN { [(unlink|exec):u] } WHERE { u.pth == \"x\" }");
    assert!(e.contains("no field `pth`"), "{e}");
    let e = errors("RULE r PATTERN { [(setuid|exec):u] } WHERE { u.uid == 0 }");
    assert!(e.contains("`uid` is a field of"), "{e}");
    // Joins and distinct counts need the field on every event: else some are left out.
    let e = errors("RULE r PATTERN { [openat:o, exec:x] } WHERE { [path] }");
    assert!(e.contains("cannot join on `path`"), "{e}");
    let e = errors(
        "RULE r PATTERN { [(openat|exec)[>3 distinct path]:o] } WHERE { [ProcessId] } WITHIN 1s",
    );
    assert!(e.contains("no field `path` on exec"), "{e}");
}

#[test]
fn call_names_a_syscall_by_meaning_and_result_says_how_it_ended() {
    let src = r#"RULE r PATTERN { [(open|openat|connect):o] } WHERE { o.call in (open, "openat", connect) } RETURN { o.call, o.syscall, o.result }"#;
    let mut s = Stream::new();
    open_call(&mut s, 1, "openat", "/a", 0);
    open_call(&mut s, 1, "i386:open", "/b", 0);
    open_call(&mut s, 1, "io_uring:openat", "/c", 0);
    s.call(1, "connect", -111, &[]);
    let got: Vec<String> = run(src, &s.events)
        .iter()
        .map(|m| {
            m.values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        got,
        [
            "openat openat ok",
            "open i386:open ok",
            "openat io_uring:openat ok",
            "connect connect ECONNREFUSED"
        ]
    );
    let e = errors("RULE r PATTERN { [openat:o] } WHERE { o.call == \"opnat\" }");
    assert!(
        e.contains("`opnat` is not a system call (did you mean `openat`?)"),
        "{e}"
    );
    let e = errors("RULE r PATTERN { [openat:o] } WHERE { o.call in (openat, \"i386:open\") }");
    assert!(e.contains("`i386:open` is `open` here"), "{e}");
    let src = r#"RULE r PATTERN { [openat:o] } WHERE { o.abi != "x86_64" } RETURN { o.abi }"#;
    let abis: Vec<String> = run(src, &s.events)
        .iter()
        .map(|m| m.values[0].to_string())
        .collect();
    assert_eq!(abis, ["io_uring"], "i386:open is an open, not an openat");
    let e = errors(r#"RULE r PATTERN { [(exec|execve):x] } WHERE { x.type == "procces_exec" }"#);
    assert!(
        e.contains("`procces_exec` is not an event type")
            && e.contains("did you mean `process_exec`"),
        "{e}"
    );
    let e = errors("RULE r PATTERN { [openat:o] } WHERE { o.abi == i368 }");
    assert!(e.contains("`i368` is not an ABI"), "{e}");
    let e = errors("RULE r PATTERN { [openat.entry:o] } WHERE { o.result == \"ok\" }");
    assert!(e.contains("no field `result`"), "{e}");
}

#[test]
fn output_shows_the_first_field_with_a_value_and_nothing_for_none() {
    let src = r#"RULE r PATTERN { [(openat|rename|connect):o] } OUTPUT "{o.call} {o.path|o.newpath} errno {o.errno}" RETURN { o.errno }"#;
    let mut s = Stream::new();
    s.open(1, "/a", 0);
    s.call(
        1,
        "rename",
        0,
        &[
            ("oldpath", Value::Str("/b".into())),
            ("newpath", Value::Str("/c".into())),
        ],
    );
    s.call(1, "connect", -111, &[]);
    let m = run(src, &s.events);
    let out: Vec<&str> = m.iter().filter_map(|x| x.output.as_deref()).collect();
    assert_eq!(
        out,
        [
            "openat /a errno",
            "rename /c errno",
            "connect  errno ECONNREFUSED"
        ],
        "a null shows as nothing and the end is trimmed"
    );
    assert_eq!(m[0].values, [Val::Null], "RETURN still says null");
    let e = errors(r#"RULE r PATTERN { [openat:o] } OUTPUT "{o.path|o.pth}""#);
    assert!(
        e.contains("in OUTPUT {o.path|o.pth}: no field `pth`"),
        "{e}"
    );
    let e = errors(r#"RULE r PATTERN { [openat:o] } OUTPUT "{o.path|x.path}""#);
    assert!(e.contains("`{x.path}` is not event.field"), "{e}");
}

#[test]
fn a_flag_name_is_tested_only_where_the_argument_has_its_meaning() {
    // O_TRUNC (0o1000) and AT_REMOVEDIR (0x200) are the same bit: `has O_TRUNC` must not
    // take an unlinkat that removes a directory, nor `has AT_REMOVEDIR` an open that truncates.
    let src = r#"
RULE trunc PATTERN { [(openat|openat2|unlinkat):o] } WHERE { o.flags has O_TRUNC } RETURN { o.call }
RULE rmdir PATTERN { [(openat|unlinkat):o] } WHERE { o.flags has AT_REMOVEDIR } RETURN { o.call }
"#;
    let mut s = Stream::new();
    open_call(&mut s, 1, "openat", "/a", 0o1000 | 1);
    open_call(&mut s, 1, "openat2", "/a", 0o1000 | 1);
    s.call(
        1,
        "unlinkat",
        0,
        &[
            ("path", Value::Str("/d".into())),
            ("flags", Value::Uint(0x200)),
        ],
    );
    let rs = rules(src);
    let m = run(src, &s.events);
    let hits = |rule: &str| -> Vec<String> {
        m.iter()
            .filter(|x| rs.rules()[x.rule].name == rule)
            .map(|x| x.values[0].to_string())
            .collect()
    };
    assert_eq!(hits("trunc"), ["openat", "openat2"]);
    assert_eq!(hits("rmdir"), ["unlinkat"]);
    let e = errors("RULE r PATTERN { [(openat|unlinkat):o] } WHERE { o.flags has O_NOPE }");
    assert!(e.contains("`O_NOPE` is not a flag of this field"), "{e}");
    let e = errors("RULE r PATTERN { [(openat|unlinkat):o] } WHERE { o.flags == O_TRUNC }");
    assert!(e.contains("does not mean the same on every call"), "{e}");
}

/// `watch` walks paths at a call's entry (before it runs) only for rule sets that read
/// entries: everything else reads the exit, which holds the kernel's own answer.
#[test]
fn a_rule_set_says_whether_it_reads_syscall_entries() {
    let reads = |src: &str| {
        vigil_rules::RuleSet::parse(src, "t.rules")
            .unwrap_or_else(|d| panic!("{src}: {d:?}"))
            .looks_at_entries()
    };
    assert!(!reads(
        "RULE a\nPATTERN { [openat:o] }\nWHERE { o.path == \"/x\" }\n"
    ));
    assert!(!reads("RULE a\nPATTERN { [read:r, connect:c] }\n"));
    // Entries read only by number, pid and name: the exit's answer is not needed first.
    assert!(!reads("RULE a\nPATTERN { [openat.entry:o] }\n"));
    assert!(!reads(
        "RULE a\nPATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall:b] }\nWHERE { [ThreadId], a.nr < 300 }\n"
    ));
    // An entry's arguments read: its paths must be walked before the call runs.
    assert!(reads(
        "RULE a\nPATTERN { [openat.entry:o] }\nWHERE { o.path == \"/x\" }\n"
    ));
    assert!(reads(
        "RULE a\nPATTERN { [syscall:s] }\nRETURN { s.path }\n"
    ));
    assert!(reads(
        "RULE a\nPATTERN { [openat.entry:o] }\nOUTPUT \"{o.path}\"\n"
    ));
    assert!(reads(
        "RULE a\nPATTERN { [openat:o] }\nWHERE { o.path == \"/x\" }\nDO { deny(EPERM) }\n"
    ));
    assert!(reads(
        "RULE a\nPATTERN { [openat:o, ~unlink.entry:u, connect:c] }\nWHERE { u.path == o.path }\n"
    ));
    // An exec action's arguments are read too; a later step's condition on an entry's
    // argument, kept for it until then.
    assert!(reads(
        "RULE a\nPATTERN { [openat.entry:o] }\nDO { exec(\"echo\", o.path) }\n"
    ));
    assert!(!reads(
        "RULE a\nPATTERN { [openat.entry:o] }\nDO { exec(\"echo\", o.pid) }\n"
    ));
    assert!(reads(
        "RULE a\nPATTERN { [openat.entry:o, unlink:u] }\nWHERE { u.path == o.path }\n"
    ));
}

/// A comment between RULE and the rule's name ending in a 4-byte character: compiling it
/// panicked (the rule's text was cut 5 bytes before its name, inside the character).
#[test]
fn a_comment_before_a_rule_name_is_not_cut_inside_a_character() {
    for src in [
        "RULE #\u{1f600}\n\nr PATTERN { [openat:o] }\n",
        "RULE #xx\u{1f600}\n\nr PATTERN { [openat:o] }\n",
    ] {
        let rs = vigil_rules::RuleSet::parse(src, "t.rules").unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(rs.rules()[0].name, "r");
    }
}
