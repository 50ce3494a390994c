//! Rules from the command line: check, dot, match over logs, watch while tracing, actions.

mod common;

use common::*;
use std::path::Path;
use vigil_event::*;
use vigil_testkit::{program, scratch_dir};

/// `vigil watch --rules RULES -o LOG`, the command still to be given.
fn watch(rules: &Path, log: &Path) -> std::process::Command {
    let mut c = vigil();
    c.args(["watch", "--rules"]).arg(rules).arg("-o").arg(log);
    c
}

fn write_rules(dir: &Path, name: &str, src: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, src).unwrap();
    p
}

#[test]
fn check_reports_every_error_with_its_position_and_exit_1() {
    let dir = scratch_dir("rules-check");
    let good = write_rules(
        &dir,
        "good.rules",
        "RULE a PATTERN { [openat:o] } WHERE { o.path == \"/x\" }\nRULE b PATTERN { [exec] }\n",
    );
    let out = run(vigil().args(["rules", "check"]).arg(&good));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 rules OK: a, b"));
    let bad = write_rules(
        &dir,
        "bad.rules",
        "RULE a PATTERN { [opnat] }\nRULE b PATTERN { [openat:o] } WHERE { o.path > 3 }\n",
    );
    let out = run(vigil().args(["rules", "check"]).arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.rules:1:19: error: unknown event type `opnat` (did you mean `openat`?)"),
        "{err}"
    );
    assert!(err.contains("bad.rules:2:39: error: type error"), "{err}");
    assert!(err.contains("2 errors in"), "{err}");
    let empty = write_rules(&dir, "empty.rules", "");
    let out = run(vigil().args(["rules", "check"]).arg(&empty));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no rules in this file"));
    let out = run(vigil()
        .args(["rules", "check"])
        .arg(dir.join("missing.rules")));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.rules"));
}

#[test]
fn dot_draws_the_automaton() {
    let dir = scratch_dir("rules-dot");
    let f = write_rules(
        &dir,
        "r.rules",
        "RULE seed\nPATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall] }\nWHERE { [ProcessId], [ThreadId], a.SyscallNr < 300 }\nRETURN { a.SyscallNr, a.TimeStamp }\nRULE other PATTERN { [openat[>3]:o] }\n",
    );
    let out = run(vigil().args(["rules", "dot"]).arg(&f));
    let dot = text(&out.stdout);
    assert!(
        dot.starts_with("digraph \"seed\"")
            && dot.contains("s0 -> s1")
            && dot.contains("~syscallexit | threadtermination")
            && dot.contains("doublecircle"),
        "{dot}"
    );
    let other = text(
        &run(vigil()
            .args(["rules", "dot"])
            .arg(&f)
            .args(["--rule", "other"]))
        .stdout,
    );
    assert!(other.contains("(again)"), "repetition loop: {other}");
    // Conditions are drawn as written, each on its own line, quotes escaped for DOT.
    assert!(dot.contains("syscall:a\\nif a.SyscallNr < 300"), "{dot}");
    let quoted = write_rules(
        &dir,
        "q.rules",
        "RULE q PATTERN { [openat:o, ~close:c, read:r] } WHERE { o.path glob \"/tmp/*\", c.fd == o.ret, r.fd == o.ret }\n",
    );
    let q = text(&run(vigil().args(["rules", "dot"]).arg(&quoted)).stdout);
    assert!(q.contains(r#"openat:o\nif o.path glob \"/tmp/*\""#), "{q}");
    assert!(q.contains(r#"~close:c\nif c.fd == o.ret"#), "{q}");
    assert!(q.contains(r#"read:r\nif r.fd == o.ret"#), "{q}");
    let out = run(vigil()
        .args(["rules", "dot"])
        .arg(&f)
        .args(["--rule", "sed"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean `seed`"));
}

/// A log of realistic background activity with `planted` syscall entries left without exit.
fn seeded_log(dir: &Path, planted: usize) -> std::path::PathBuf {
    let mut events: Vec<Event> = vigil_testkit::synthetic::Events::new(3)
        .take(20_000)
        .collect();
    let mut seq = events.last().unwrap().seq;
    let mut time = events.last().unwrap().time_ns;
    let read = SyscallId::from_name("read").unwrap();
    let close = SyscallId::from_name("close").unwrap();
    for i in 0..planted {
        let (pid, tid) = (90_000 + i as u32, 90_000 + i as u32);
        for (call, exit) in [(read, false), (close, false), (close, true)] {
            seq += 1;
            time += 1000;
            let kind = if exit {
                EventKind::SyscallExit(SyscallExit {
                    call,
                    entry_seq: seq - 1,
                    ret: 0,
                    args: Args::new(),
                })
            } else {
                EventKind::SyscallEntry(SyscallEntry {
                    call,
                    args: Args::new(),
                })
            };
            events.push(Event {
                seq,
                time_ns: time,
                pid,
                tid,
                kind,
            });
        }
    }
    let path = dir.join("seeded.vlog");
    let mut w = vigil_log::LogWriter::create(&path, &vigil_log::LogMeta::default()).unwrap();
    for e in &events {
        w.append(e).unwrap();
    }
    w.finish().unwrap();
    path
}

#[test]
fn the_seed_rule_finds_exactly_the_planted_cases() {
    let dir = scratch_dir("rules-seed");
    let rules = write_rules(
        &dir,
        "seed.rules",
        "RULE nosyscallexit\nPATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall] }\nWHERE { [ProcessId], [ThreadId], a.SyscallNr < 300 }\nRETURN { a.SyscallNr, a.TimeStamp }\n",
    );
    let log = seeded_log(&dir, 7);
    let out = run(vigil()
        .args(["match", "--rules"])
        .arg(&rules)
        .arg(&log)
        .arg("--stats"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("match #{} {{ 0 ", i + 1)) && l.ends_with(" }"),
            "read is syscall 0: {l}"
        );
    }
    assert!(
        text(&out.stderr).contains("rule nosyscallexit: 7 matches"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn watch_denies_an_open_before_it_runs() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("rules-deny").canonicalize().unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "top secret\n").unwrap();
    let rules = write_rules(
        &dir,
        "deny.rules",
        &format!(
            "RULE guard\nPATTERN {{ [openat:o] }}\nWHERE {{ o.path == \"{}\" }}\nRETURN {{ o.pid, o.path }}\nDO {{ deny(EACCES) }}\n",
            secret.display()
        ),
    );
    let log = dir.join("w.vlog");
    let matches = dir.join("m.txt");
    let out = run(watch(&rules, &log)
        .arg("--matches")
        .arg(&matches)
        .args(["--", "cat", "/etc/hostname"])
        .arg(&secret));
    assert_eq!(out.status.code(), Some(1), "cat fails on the denied file");
    assert!(
        text(&out.stderr).contains(&format!("cat: {}: Permission denied", secret.display())),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string("/etc/hostname").unwrap(),
        "other files still open"
    );
    let online = std::fs::read_to_string(&matches).unwrap();
    assert_eq!(online.lines().count(), 1);
    let events = read_log(&log);
    let denied = exits(&events, "openat")
        .into_iter()
        .find(|(e, _)| path_arg(e, "path").as_deref() == secret.to_str())
        .unwrap();
    assert_eq!(denied.1.ret, -13, "EACCES recorded as the call's result");
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::Action(a) if a.action == "deny" && a.by == "guard" && a.detail == "EACCES")), "the action is logged");
    // The same rules over the recorded log find the same match.
    let offline = run(vigil().args(["match", "--rules"]).arg(&rules).arg(&log));
    assert_eq!(text(&offline.stdout), online);
}

#[test]
fn watch_kills_a_process_that_reads_a_file_then_connects() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("rules-kill").canonicalize().unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "token\n").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rules = write_rules(
        &dir,
        "kill.rules",
        &format!(
            "RULE exfil\nPATTERN {{ [read:r, connect:c] }}\nWHERE {{ [ProcessId], r.fd.path == \"{}\" }}\nRETURN {{ c.pid, c.addr }}\nDO {{ kill }}\n",
            secret.display()
        ),
    );
    let log = dir.join("k.vlog");
    let out = run(watch(&rules, &log)
        .arg("--")
        .arg(program("rules_exfil"))
        .arg(&secret)
        .arg(port.to_string()));
    assert_eq!(
        out.status.code(),
        Some(137),
        "killed by SIGKILL: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("127.0.0.1:{port}")),
        "the match: {stdout}"
    );
    assert!(
        !stdout.contains("survived"),
        "stopped before going on: {stdout}"
    );
    let events = read_log(&log);
    assert!(
        events.iter().any(
            |e| matches!(&e.kind, EventKind::Action(a) if a.action == "kill" && a.by == "exfil")
        )
    );
    drop(listener);
}

#[test]
fn kill_hits_the_matched_process_even_when_another_process_completes_the_match() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("rules-kill-other").canonicalize().unwrap();
    // The deadline of "sleep 3, then no exit within 300ms" passes during the sibling's
    // `sleep 1`: the event that decides the match is that sibling's, the kill is for sleep 3.
    let rules = write_rules(
        &dir,
        "kill-other.rules",
        "RULE long_sleep PATTERN { [exec:e, ~processexit] } WHERE { [ProcessId], e.exe glob \"*/sleep\", e.argv contains \"3\" } WITHIN 300ms RETURN { e.pid, e.exe } DO { kill }\n",
    );
    let log = dir.join("k.vlog");
    let out = run(watch(&rules, &log).args([
        "--",
        "sh",
        "-c",
        "sleep 3 & SP=$!; sleep 1; wait $SP; echo sleep=$?",
    ]));
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the shell lives: {}",
        text(&out.stderr)
    );
    assert!(stdout.contains("sleep=137"), "sleep 3 was killed: {stdout}");
    assert!(stdout.contains("match #1 {"), "{stdout}");
    let events = read_log(&log);
    let sleep3 = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExec(x) if x.argv.last().is_some_and(|a| a.as_bytes() == b"3") => {
                Some(e.pid)
            }
            _ => None,
        })
        .expect("sleep 3's exec is in the log");
    assert!(events.iter().any(
        |e| matches!(&e.kind, EventKind::Action(a) if a.action == "kill" && a.target_pid == sleep3)
    ));
}

#[test]
fn watch_stops_a_process_and_sigcont_resumes_it() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("rules-stop").canonicalize().unwrap();
    let marker = dir.join("stop-marker");
    let after = dir.join("after");
    std::fs::write(&marker, "x\n").unwrap();
    let _ = std::fs::remove_file(&after);
    let rules = write_rules(
        &dir,
        "stop.rules",
        "RULE halt PATTERN { [openat:o] } WHERE { o.path endswith \"/stop-marker\" } RETURN { o.pid } DO { stop }\n",
    );
    let log = dir.join("s.vlog");
    let mut child = watch(&rules, &log)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "cat {} > /dev/null; touch {}",
            marker.display(),
            after.display()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The cat that opened the marker is found stopped (group-stop: state T, or t under ptrace).
    let stopped = (0..200).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let stopped = status.lines().any(|l| {
                l.starts_with("State:")
                    && (l.contains("T (stopped)") || l.contains("t (tracing stop)"))
            });
            (stopped
                && cmdline.starts_with(b"cat\0")
                && String::from_utf8_lossy(&cmdline).contains("stop-marker"))
            .then_some(pid)
        })
    });
    let Some(cat) = stopped else {
        let _ = child.kill();
        panic!("the cat that opened the marker was never seen stopped");
    };
    // It stays stopped: what follows it in the script has not run.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!after.exists(), "the script went on while cat was stopped");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cat),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(after.exists(), "resumed by SIGCONT, the script finished");
    assert!(
        text(&out.stdout).contains(&format!("match #1 {{ {cat} }}")),
        "{}",
        text(&out.stdout)
    );
    let events = read_log(&log);
    assert!(events.iter().any(
        |e| matches!(&e.kind, EventKind::Action(a) if a.action == "stop" && a.target_pid == cat as u32)
    ));
}

#[test]
fn exec_actions_get_the_match_as_json_and_never_go_through_a_shell() {
    let dir = scratch_dir("rules-exec").canonicalize().unwrap();
    let sink = dir.join("alert.json");
    let rules = write_rules(
        &dir,
        "exec.rules",
        &format!(
            "RULE alert PRIORITY high PATTERN {{ [syscall:a, ~(syscallexit|threadtermination), syscall] }} WHERE {{ [ProcessId], [ThreadId] }} RETURN {{ a.pid }} DO {{ exec(\"tee\", \"{}\") }}\n",
            sink.display()
        ),
    );
    let log = seeded_log(&dir, 1);
    let out = run(vigil()
        .args(["match", "--rules"])
        .arg(&rules)
        .arg(&log)
        .args(["--format", "json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(printed["rule"], "alert");
    assert_eq!(printed["priority"], "high");
    assert_eq!(printed["values"]["a.pid"], 90000);
    let start = std::time::Instant::now();
    while !sink.exists() || std::fs::read_to_string(&sink).unwrap().trim().is_empty() {
        assert!(start.elapsed().as_secs() < 10, "the program was not run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&sink).unwrap().trim()).unwrap();
    assert_eq!(got, printed, "the program read the match on its stdin");
    let quiet = run(vigil()
        .args(["match", "--no-actions", "--rules"])
        .arg(&rules)
        .arg(&log));
    assert!(quiet.status.success());
}

/// The text of one rule of rules/detections.rules (from `RULE name` to the blank line).
fn detection_rule(name: &str) -> String {
    let file =
        std::fs::read_to_string(vigil_testkit::workspace_root().join("rules/detections.rules"))
            .unwrap();
    let start = file
        .find(&format!("RULE {name} "))
        .unwrap_or_else(|| panic!("no rule {name}"));
    let rest = &file[start..];
    rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
}

/// JSON matches of a `--format json --matches FILE` run.
fn json_matches(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn write_below_etc_fires_live_on_writes_without_o_wronly() {
    vigil_testkit::require_ptrace();
    // The rule as shipped, with /etc/ moved to a directory of our own.
    let dir = scratch_dir("rules-live-writes").canonicalize().unwrap();
    for f in ["rdwr", "openat2", "dirfd", "i386", "read"] {
        std::fs::write(dir.join(f), "x\n").unwrap();
    }
    let rule =
        detection_rule("write_below_etc").replace("\"/etc/\"", &format!("\"{}/\"", dir.display()));
    assert!(rule.contains(&dir.display().to_string()), "{rule}");
    let rules = write_rules(&dir, "writes.rules", &rule);
    let matches = dir.join("m.json");
    let _ = std::fs::remove_file(&matches);
    let prog = program("rules_evasions").display().to_string();
    let script = format!(
        "{prog} rdwr rdwr; {prog} openat2 openat2; {prog} dirfd {d} dirfd; {prog} i386 {d}/i386; cat read > /dev/null",
        d = dir.display()
    );
    let out = run(watch(&rules, &dir.join("w.vlog"))
        .current_dir(&dir)
        .args(["--format", "json", "--matches"])
        .arg(&matches)
        .args(["--", "sh", "-c", &script]));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    for line in [
        "openat O_RDWR: 3",
        "openat2 O_WRONLY: 3",
        "openat dirfd O_RDWR: 4",
        "i386 open O_RDWR: 3",
    ] {
        assert!(stdout.contains(line), "the program did it: {stdout}");
    }
    let got: Vec<String> = json_matches(&matches)
        .iter()
        .map(|m| m["output"].as_str().unwrap_or("").to_string())
        .collect();
    let d = dir.display();
    let want = [
        format!("changed a file below /etc: openat {d}/rdwr (ok)"),
        format!("changed a file below /etc: openat2 {d}/openat2 (ok)"),
        format!("changed a file below /etc: openat {d}/dirfd (ok)"),
        format!("changed a file below /etc: open {d}/i386 (ok)"),
    ];
    assert_eq!(got.len(), want.len(), "cat's read is not a write: {got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.ends_with(w.as_str()), "{g} / {w}");
    }
}

#[test]
fn unusual_port_fires_live_on_a_connect_in_progress_and_a_refused_one() {
    vigil_testkit::require_ptrace();
    // The whole rule file, as shipped. 4444 listens (a non-blocking connect is EINPROGRESS);
    // 1337 is closed (a blocking connect is refused).
    let listener = std::net::TcpListener::bind("127.0.0.1:4444")
        .expect("port 4444 must be free on 127.0.0.1 for this test");
    drop(std::net::TcpListener::bind("127.0.0.1:1337").expect("port 1337 must be free"));
    let dir = scratch_dir("rules-live-port").canonicalize().unwrap();
    let rules = vigil_testkit::workspace_root().join("rules/detections.rules");
    let matches = dir.join("m.json");
    let _ = std::fs::remove_file(&matches);
    let log = dir.join("p.vlog");
    let prog = program("rules_evasions").display().to_string();
    let out = run(watch(&rules, &log)
        .args(["--format", "json", "--matches"])
        .arg(&matches)
        .args([
            "--",
            "sh",
            "-c",
            &format!("{prog} connect 4444 nonblock; {prog} connect 1337 block; true"),
        ]));
    drop(listener);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("connect: in progress") && stdout.contains("connect: Connection refused"),
        "{stdout}"
    );
    let port: Vec<String> = json_matches(&matches)
        .iter()
        .filter(|m| m["rule"] == "unusual_port")
        .map(|m| m["output"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(port.len(), 2, "{port:#?}");
    assert!(
        port[0].ends_with("called 127.0.0.1:4444, a port backdoors and IRC bots use: EINPROGRESS"),
        "{port:?}"
    );
    assert!(
        port[1].ends_with("called 127.0.0.1:1337, a port backdoors and IRC bots use: ECONNREFUSED"),
        "{port:?}"
    );
    // The summary of the same log says how each ended, and calls neither "connected".
    let summary = text(&run(vigil().arg("summary").arg(&log)).stdout);
    assert!(
        summary.contains("127.0.0.1:4444: connecting to (in progress) by")
            && summary.contains("127.0.0.1:1337: failed to connect to (ECONNREFUSED) by"),
        "{summary}"
    );
}
