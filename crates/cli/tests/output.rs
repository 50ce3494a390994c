//! What every command does when its output cannot be written: a full disk (`>/dev/full`) is
//! one message and exit 1, a reader that went away (`| head`) is a quiet success, and a failing
//! standard error never panics nor changes the exit code the command would have had.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vigil_testkit::scratch_dir;

/// A small log: a shell that forks a child which writes a file, and a failed open.
const EVENTS: &str = r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/sh","argv":["sh","-c","x"]}
{"seq":2,"time_ns":2000,"pid":11,"tid":11,"type":"process_start","ppid":10,"exe":"/bin/sh","argv":["sh"]}
{"seq":3,"time_ns":3000,"pid":11,"tid":11,"type":"syscall_entry","syscall":"write","args":{"fd":{"fd":1,"target":{"kind":"file","path":"/tmp/out","dev":1,"ino":2}},"buf":4096,"count":5}}
{"seq":4,"time_ns":4000,"pid":11,"tid":11,"type":"syscall_exit","syscall":"write","entry_seq":3,"ret":5,"args":{"fd":{"fd":1,"target":{"kind":"file","path":"/tmp/out","dev":1,"ino":2}},"buf":4096,"count":5}}
{"seq":5,"time_ns":5000,"pid":11,"tid":11,"type":"syscall_exit","syscall":"openat","entry_seq":0,"ret":-2,"args":{"dirfd":{"fd":-100},"path":"/etc/missing","flags":"O_RDONLY"}}
{"seq":6,"time_ns":6000,"pid":11,"tid":11,"type":"process_exit","exit_code":0}
{"seq":7,"time_ns":7000,"pid":10,"tid":10,"type":"process_exit","exit_code":0}
"#;

const RULE: &str = "RULE writes\nPATTERN { [write:w] }\nRETURN { w.pid, w.fd }\n";

struct Fixture {
    log: PathBuf,
    rules: PathBuf,
}

fn fixture(tag: &str) -> Fixture {
    let dir = scratch_dir(tag);
    let src = dir.join("in.jsonl");
    std::fs::write(&src, EVENTS).unwrap();
    let log = dir.join("in.vlog");
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rules = dir.join("w.rules");
    std::fs::write(&rules, RULE).unwrap();
    Fixture { log, rules }
}

/// Every command that writes to standard output, with its arguments.
fn commands(f: &Fixture) -> Vec<Vec<String>> {
    let log = f.log.display().to_string();
    let rules = f.rules.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&["summary", &log]),
        s(&["show", &log]),
        s(&["show", &log, "--format", "json"]),
        s(&["export", &log]),
        s(&["rules", "check", &rules]),
        s(&["rules", "dot", &rules]),
        s(&["match", "--rules", &rules, &log]),
        s(&["match", "--rules", &rules, &log, "--format", "json"]),
        s(&["backtrack", "--explain-filters"]),
        s(&["backtrack", &log, "--from", "file:/tmp/out"]),
        s(&[
            "backtrack",
            &log,
            "--from",
            "file:/tmp/out",
            "--format",
            "dot",
        ]),
        s(&[
            "backtrack",
            &log,
            "--from",
            "file:/tmp/out",
            "--format",
            "json",
        ]),
        s(&["forward", &log, "--from", "proc:10"]),
        s(&["--help"]),
        s(&["--version"]),
        s(&["show", "--help"]),
    ]
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    Stdio::from(w)
}

fn run_with(args: &[String], stdout: Stdio, stderr: Stdio) -> std::process::Output {
    let mut cmd = vigil();
    cmd.args(args).stdout(stdout).stderr(stderr);
    run(&mut cmd)
}

#[test]
fn a_full_disk_on_standard_output_is_one_message_and_exit_1() {
    let f = fixture("out-full");
    for args in commands(&f) {
        // Sanity: the command writes something when it can.
        let ok = run(vigil().args(&args));
        assert_eq!(ok.status.code(), Some(0), "{args:?}: {}", text(&ok.stderr));
        assert!(!ok.stdout.is_empty(), "{args:?} printed nothing");
        let out = run_with(&args, Stdio::from(dev_full()), Stdio::piped());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.matches("No space left on device").count(),
            1,
            "{args:?}: one message: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_pipe_on_standard_output_is_a_quiet_success() {
    let f = fixture("out-pipe");
    for args in commands(&f) {
        let out = run_with(&args, closed_pipe(), Stdio::piped());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: quiet: {err}");
    }
}

/// A copy of `log` with its last bytes cut off, as a crash would leave it.
fn torn_copy(log: &Path) -> PathBuf {
    let bytes = std::fs::read(log).unwrap();
    let torn = log.with_extension("torn.vlog");
    std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
    torn
}

#[test]
fn a_failing_standard_error_keeps_the_exit_code() {
    let f = fixture("out-stderr");
    let torn = torn_copy(&f.log);
    for cmd in ["show", "summary", "export"] {
        let reported = run(vigil().arg(cmd).arg(&torn));
        assert_eq!(reported.status.code(), Some(3), "{cmd}");
        assert!(text(&reported.stderr).contains("warning"), "{cmd}");
        let out = run_with(
            &[cmd.to_string(), torn.display().to_string()],
            Stdio::null(),
            Stdio::from(dev_full()),
        );
        assert_eq!(out.status.code(), Some(3), "{cmd} 2>/dev/full");
    }
    // An error message that cannot be written still exits with the error's code.
    let out = run_with(
        &["show".into(), "/nonexistent.vlog".into()],
        Stdio::null(),
        Stdio::from(dev_full()),
    );
    assert_eq!(out.status.code(), Some(1));
    let out = run_with(
        &[
            "show".into(),
            f.log.display().to_string(),
            "--path".into(),
            "[".into(),
        ],
        Stdio::null(),
        Stdio::from(dev_full()),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn record_with_a_full_standard_error_exits_with_the_commands_status() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("out-record");
    let log = dir.join("r.vlog");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("record")
        .arg("-o")
        .arg(&log)
        .args(["--", "sh", "-c", "exit 7"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(dev_full()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(!read_log(&log).is_empty());
}
