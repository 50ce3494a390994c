//! `vigil record` on real programs: the recorded events say what the programs really did.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use vigil_event::{EventKind, ExitStatus, Target, Value};
use vigil_testkit::{program, scratch_dir};

#[test]
fn cat_of_a_file_records_open_reads_and_writes() {
    let dir = scratch_dir("cat");
    let file = dir.join("data.txt");
    std::fs::write(&file, vec![b'x'; 10_000]).unwrap();
    let (out, events, _) = record_in(&dir, &[], &[os("cat"), file.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 10_000, "the command keeps its stdout");

    let opens: Vec<_> = exits(&events, "openat")
        .into_iter()
        .filter(|(e, _)| path_arg(e, "path").as_deref() == file.to_str())
        .collect();
    assert_eq!(opens.len(), 1, "one openat of the file");
    let (open_ev, open) = opens[0];
    let flags = open_ev.arg("flags").and_then(Value::as_uint).unwrap();
    assert_eq!(flags & 3, 0, "opened O_RDONLY");
    assert!(open.ret >= 0);
    assert!(
        matches!(fd_target(open_ev, "fd"), Some(Target::File { ino, .. }) if ino != 0),
        "new fd labelled with dev/ino"
    );

    let read: i64 = exits(&events, "read")
        .iter()
        .filter(|(e, x)| fd_path(e, "fd").as_deref() == file.to_str() && x.ret > 0)
        .map(|(_, x)| x.ret)
        .sum();
    assert_eq!(read, 10_000, "bytes read from the file");
    let written: i64 = exits(&events, "write")
        .iter()
        .filter(|(e, x)| {
            e.arg("fd")
                .and_then(Value::as_fd)
                .is_some_and(|fd| fd.num == 1)
                && x.ret > 0
        })
        .map(|(_, x)| x.ret)
        .sum();
    assert_eq!(written, 10_000, "bytes written to stdout");
    // Every exit points back at its entry.
    for (e, x) in exits(&events, "read") {
        let entry = events
            .iter()
            .find(|en| en.seq == x.entry_seq)
            .expect("entry present");
        assert!(
            matches!(entry.kind, EventKind::SyscallEntry(_))
                && entry.tid == e.tid
                && entry.seq < e.seq
        );
    }
}

#[test]
fn shell_pipeline_with_redirection_is_followed_through_pipe_and_dup2() {
    let dir = scratch_dir("pipeline");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat /etc/passwd | grep root > out")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pipes = [exits(&events, "pipe"), exits(&events, "pipe2")].concat();
    let (pipe_ev, _) = pipes.first().expect("the shell made a pipe");
    let Some(Target::Pipe { ino }) = fd_target(pipe_ev, "wfd") else {
        panic!("pipe outputs are pipe fds")
    };
    assert_ne!(ino, 0);
    // cat's stdout becomes the pipe's write end; grep's stdin its read end.
    let dup2_onto = |fd: i64| {
        exits(&events, "dup2").into_iter().any(|(e, x)| {
            x.ret == fd
                && matches!(fd_target(e, "oldfd"), Some(Target::Pipe { ino: i }) if i == ino)
        })
    };
    assert!(dup2_onto(1), "dup2(pipe, 1) in cat's process");
    assert!(dup2_onto(0), "dup2(pipe, 0) in grep's process");
    let cat_pid = events.iter().find_map(|e| match &e.kind {
        EventKind::ProcessExec(p) if p.exe.to_string().ends_with("/cat") => Some(e.pid),
        _ => None,
    });
    let to_pipe = exits(&events, "write").into_iter().any(|(e, x)| {
        Some(e.pid) == cat_pid
            && x.ret > 0
            && matches!(fd_target(e, "fd"), Some(Target::Pipe { ino: i }) if i == ino)
    });
    assert!(to_pipe, "cat writes into the pipe");
    let out_path = dir.join("out").canonicalize().unwrap();
    let grep_write = exits(&events, "write")
        .into_iter()
        .find(|(e, x)| x.ret > 0 && fd_path(e, "fd").as_deref() == out_path.to_str());
    let (grep_ev, _) =
        grep_write.expect("grep's write to fd 1 resolves to `out` through the fd table");
    assert_eq!(
        grep_ev.arg("fd").and_then(Value::as_fd).map(|f| f.num),
        Some(1)
    );
    assert!(std::fs::read_to_string(&out_path).unwrap().contains("root"));
}

#[test]
fn threads_are_followed_with_their_own_calls() {
    let dir = scratch_dir("threads");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[program("threads").as_os_str(), dir.as_os_str(), os("4")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let starts: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ThreadStart(_)))
        .collect();
    assert_eq!(starts.len(), 4, "four threads started");
    let pid = starts[0].pid;
    assert!(starts.iter().all(|e| e.pid == pid && e.tid != pid));
    for i in 0..4 {
        let path = dir.join(format!("thread{i}.txt"));
        let (open_ev, _) = exits(&events, "openat")
            .into_iter()
            .find(|(e, _)| path_arg(e, "path").as_deref() == path.to_str())
            .expect("each thread opens its file");
        assert!(
            starts.iter().any(|s| s.tid == open_ev.tid),
            "opened by one of the new threads"
        );
        let wrote = exits(&events, "write").into_iter().any(|(e, x)| {
            e.tid == open_ev.tid && x.ret > 0 && fd_path(e, "fd").as_deref() == path.to_str()
        });
        assert!(
            wrote,
            "thread {i}'s write resolves to its own file (shared fd table)"
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ThreadExit(_)) && e.tid != pid)
            .count(),
        4
    );
}

#[test]
fn fork_and_exec_make_process_events() {
    let dir = scratch_dir("forkexec");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[
            program("forkexec").as_os_str(),
            os("/bin/sh"),
            os("-c"),
            os("exit 3"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "vigil exits with the command's status"
    );
    let root = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ProcessStart(_)))
        .unwrap()
        .pid;
    let child = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessStart(p) if p.ppid == root => Some(e.pid),
            _ => None,
        })
        .expect("a child process of the root");
    let exec = events.iter().find_map(|e| match &e.kind {
        EventKind::ProcessExec(p) if e.pid == child => Some(p.clone()),
        _ => None,
    });
    let exec = exec.expect("the child execs");
    assert_eq!(
        exec.argv.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["/bin/sh", "-c", "exit 3"]
    );
    assert!(exec.exe.to_string().starts_with('/'));
    assert_ne!(exec.ino, 0);
    let status = |pid| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::ProcessExit(x) if e.pid == pid => Some(x.status),
            _ => None,
        })
    };
    assert_eq!(status(child), Some(ExitStatus::Code(3)));
    assert_eq!(status(root), Some(ExitStatus::Code(3)));
    let child_start = events.iter().position(|e| e.pid == child).unwrap();
    let child_exec = events
        .iter()
        .position(|e| e.pid == child && matches!(e.kind, EventKind::ProcessExec(_)))
        .unwrap();
    assert!(child_start < child_exec, "start before exec");
}

#[test]
fn relative_paths_are_resolved_against_the_cwd() {
    let dir = scratch_dir("chdir").canonicalize().unwrap();
    std::fs::create_dir_all(dir.join("d/sub")).unwrap();
    let (out, events, _) = record_in(&dir, &[], &[program("chdir_rel").as_os_str(), os("d")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let opened: Vec<String> = exits(&events, "openat")
        .into_iter()
        .filter(|(_, x)| x.ret >= 0)
        .filter_map(|(e, _)| path_arg(e, "path"))
        .collect();
    let d = dir.join("d");
    for want in [d.join("a.txt"), d.join("b.txt")] {
        assert!(
            opened.iter().any(|p| Some(p.as_str()) == want.to_str()),
            "{} in {opened:?}",
            want.display()
        );
    }
    assert_eq!(
        opened
            .iter()
            .filter(|p| Some(p.as_str()) == d.join("a.txt").to_str())
            .count(),
        2,
        "reopened after fchdir back: {opened:?}"
    );
    let chdir = exits(&events, "chdir");
    assert_eq!(path_arg(chdir[0].0, "path").as_deref(), d.to_str());
    assert_eq!(
        fd_path(exits(&events, "fchdir")[0].0, "fd").as_deref(),
        dir.to_str()
    );
}

#[test]
fn openat_with_a_dirfd_is_resolved_against_that_directory() {
    let dir = scratch_dir("dirfd").canonicalize().unwrap();
    let sub = dir.join("x");
    std::fs::create_dir_all(&sub).unwrap();
    let (out, events, _) = record_in(&dir, &[], &[program("openat_dirfd").as_os_str(), os("x")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = sub.join("inner.txt");
    let (ev, x) = exits(&events, "openat")
        .into_iter()
        .find(|(e, _)| path_arg(e, "path").as_deref() == want.to_str())
        .expect("openat resolved through the dirfd");
    assert!(x.ret >= 0);
    assert_eq!(fd_path(ev, "dirfd").as_deref(), sub.to_str());
    let (u, _) = exits(&events, "unlinkat")[0];
    assert_eq!(path_arg(u, "path").as_deref(), want.to_str());
}

#[test]
fn a_command_killed_by_a_signal_gives_128_plus_n() {
    let dir = scratch_dir("killed");
    let (out, events, _) = record_in(&dir, &[], &[program("killed").as_os_str(), os("15")]);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "about to die\n");
    let root = events[0].pid;
    let sig = events.iter().find_map(|e| match &e.kind {
        EventKind::Signal(s) => Some(s.clone()),
        _ => None,
    });
    let sig = sig.expect("the signal is recorded");
    assert_eq!(sig.signal, 15);
    assert_eq!(sig.sender_pid, root, "sent by the process itself");
    let status = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::ProcessExit(x) => Some(x.status),
        _ => None,
    });
    assert_eq!(
        status,
        Some(ExitStatus::Signal {
            signal: 15,
            core_dumped: false
        })
    );
}

#[test]
fn a_32bit_syscall_from_a_64bit_program_is_seen() {
    let dir = scratch_dir("int80");
    let (out, events, _) = record_in(&dir, &[], &[program("int80").as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (ev, x) = exits(&events, "i386:open")
        .into_iter()
        .next()
        .expect("i386 open recorded");
    assert_eq!(path_arg(ev, "path").as_deref(), Some("/etc/hostname"));
    assert!(x.ret >= 0);
    assert!(!exits(&events, "i386:close").is_empty());
}

#[test]
fn syscalls_option_limits_what_is_recorded_but_not_fd_resolution() {
    let dir = scratch_dir("select");
    let file = dir.join("f.txt");
    std::fs::write(&file, "hello").unwrap();
    let (out, events, _) = record_in(
        &dir,
        &["--syscalls", "read,process"],
        &[os("cat"), file.as_os_str()],
    );
    assert!(out.status.success());
    assert!(exits(&events, "openat").is_empty(), "openat not selected");
    assert!(exits(&events, "close").is_empty(), "close not selected");
    assert!(
        !exits(&events, "execve").is_empty(),
        "process class selected"
    );
    let read_from_file = exits(&events, "read")
        .into_iter()
        .any(|(e, x)| x.ret == 5 && fd_path(e, "fd").as_deref() == file.to_str());
    assert!(
        read_from_file,
        "read's fd still resolved: open is traced for bookkeeping"
    );
}

#[test]
fn bad_commands_fail_like_a_shell() {
    let dir = scratch_dir("badcmd");
    let out = run(vigil().current_dir(&dir).args([
        "record",
        "-q",
        "-o",
        "x.vlog",
        "--",
        "no-such-command-xyz",
    ]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("no-such-command-xyz: command not found"),
        "{}",
        text(&out.stderr)
    );
    let script = dir.join("not-exec.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(vigil()
        .current_dir(&dir)
        .args(["record", "-q", "-o", "x.vlog", "--"])
        .arg(&script));
    assert_eq!(out.status.code(), Some(126));
    assert!(
        text(&out.stderr).contains("not-exec.sh"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unwritable_log_path_stops_before_running_the_command() {
    let dir = scratch_dir("badout");
    let marker = dir.join("ran");
    let out = run(vigil()
        .args([
            "record",
            "-q",
            "-o",
            "/nonexistent-dir/x.vlog",
            "--",
            "touch",
        ])
        .arg(&marker));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent-dir/x.vlog"),
        "{}",
        text(&out.stderr)
    );
    assert!(!marker.exists(), "the command must not run without its log");
}

#[test]
fn unknown_syscall_names_are_refused_with_a_suggestion() {
    let out = run(vigil().args(["record", "--syscalls", "openat,raed", "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("`raed`") && err.contains("read"), "{err}");
    let out = run(vigil().args(["record", "--bogus-flag", "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigint_sent_to_vigil_reaches_the_command() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("sigint");
    let log = dir.join("run.vlog");
    let mut child = vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    // Wait until sleep runs under vigil.
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
        .is_ok_and(|c| !c.trim().is_empty())
    {
        assert!(start.elapsed().as_secs() < 10, "sleep did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "vigil exits as the command did: killed by SIGINT"
    );
    let events = read_log(&log);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Signal(s) if s.signal == 2))
    );
}

#[test]
fn killing_vigil_leaves_no_tracee_and_a_readable_log() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("kill9");
    let log = dir.join("run.vlog");
    let mut child = vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args([
            "--",
            "sh",
            "-c",
            "while :; do cat /etc/hostname >/dev/null; done",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Every complete block is readable; a torn tail, if any, is reported, not fatal; and the
    // log says it was not closed.
    let reader = vigil_log::LogReader::open(&log).unwrap();
    let mut events = Vec::new();
    let mut not_closed = 0;
    for item in reader {
        match item {
            Ok(e) => events.push(e),
            Err(vigil_log::ReadIssue::TornTail { .. }) => {}
            Err(vigil_log::ReadIssue::NotClosed { read, .. }) => {
                not_closed += 1;
                assert_eq!(read.events, events.len() as u64);
            }
            Err(other) => panic!("unexpected damage: {other}"),
        }
    }
    assert_eq!(
        not_closed, 1,
        "a killed recorder leaves a log that is not closed"
    );
    assert!(events.len() > 100, "only {} events survived", events.len());
    let shell = events[0].pid;
    assert!(
        !std::path::Path::new(&format!("/proc/{shell}")).exists()
            || std::fs::read_to_string(format!("/proc/{shell}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the traced shell died with vigil (PTRACE_O_EXITKILL)"
    );
}

#[test]
fn fds_reused_by_calls_vigil_does_not_stop_on_are_not_mislabelled() {
    // Only read is recorded: open, close, pipe and dup2 run without stopping the tracee, so
    // vigil must check its fd table against the kernel before using it.
    let dir = scratch_dir("fdreuse");
    let a = dir.join("a.txt");
    let b = dir.join("b.txt");
    std::fs::write(&a, "aaa").unwrap();
    std::fs::write(&b, "bbbb").unwrap();
    let (out, events, _) = record_in(
        &dir,
        &["--syscalls", "read"],
        &[program("fdreuse").as_os_str(), a.as_os_str(), b.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reads: Vec<_> = exits(&events, "read")
        .into_iter()
        .filter(|(e, _)| {
            e.arg("fd")
                .and_then(Value::as_fd)
                .is_some_and(|f| f.num >= 3)
        })
        .collect();
    // The program's own three reads come after the dynamic loader's.
    let reads = &reads[reads.len() - 3..];
    assert_eq!(fd_path(reads[0].0, "fd").as_deref(), a.to_str());
    assert!(
        matches!(fd_target(reads[1].0, "fd"), Some(Target::Pipe { .. })),
        "fd 3 is now the pipe: {:?}",
        fd_target(reads[1].0, "fd")
    );
    assert_eq!(
        fd_path(reads[2].0, "fd").as_deref(),
        b.to_str(),
        "dup2 replaced the pipe's write end"
    );
}

#[test]
fn credentials_follow_setuid_into_the_next_exec() {
    // setpriv (util-linux) calls setresuid/setresgid, then execs id.
    let dir = scratch_dir("creds");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[
            os("setpriv"),
            os("--reuid=65534"),
            os("--regid=65534"),
            os("--clear-groups"),
            os("--"),
            os("/usr/bin/id"),
            os("-u"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "65534");
    assert!(
        !exits(&events, "setresuid").is_empty(),
        "the uid change is recorded"
    );
    let execs: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ProcessExec(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        execs.first().map(|p| p.creds.euid),
        Some(0),
        "setpriv itself runs as root"
    );
    let id = execs
        .iter()
        .find(|p| p.exe.to_string().ends_with("/id"))
        .expect("id is executed");
    assert_eq!(
        (id.creds.uid, id.creds.euid, id.creds.gid),
        (65534, 65534, 65534)
    );
}

#[test]
fn ctrl_c_on_the_terminal_reaches_the_command_once() {
    use std::os::unix::process::CommandExt;
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("ctrlc");
    let log = dir.join("run.vlog");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.try_clone().unwrap();
    let mut cmd = vigil();
    cmd.args(["record", "-q", "-o"])
        .arg(&log)
        .args(["--", "sleep", "30"]);
    cmd.stdin(std::process::Stdio::from(slave.try_clone().unwrap()))
        .stdout(std::process::Stdio::from(slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A session whose controlling terminal is the pty: vigil is its foreground group.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
        .is_ok_and(|c| !c.trim().is_empty())
    {
        assert!(start.elapsed().as_secs() < 10, "sleep did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::unistd::write(&pty.master, b"\x03").unwrap(); // ^C typed on the terminal
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "vigil exits as sleep did: killed by SIGINT"
    );
    let sigints = read_log(&log)
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::Signal(s) if s.signal == 2))
        .count();
    assert_eq!(
        sigints, 1,
        "the command got the terminal's SIGINT once, not a second forwarded copy"
    );
}

/// 12 arguments of 100 kB made a 1.2 MB header that every later read refused ("metadata
/// length 1200975 is implausible"). The header keeps what fits and says what it left out; the
/// exec event still holds the whole command line.
#[test]
fn a_long_command_line_leaves_a_readable_log() {
    let dir = scratch_dir("long-argv");
    let args: Vec<String> = (0..12)
        .map(|i| format!("{i:02}{}", "x".repeat(100_000 - 2)))
        .collect();
    let mut cmd = vec![os("/bin/true")];
    cmd.extend(args.iter().map(|a| os(a)));
    let (out, events, log) = record_in(&dir, &[], &cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let meta = vigil_log::LogReader::open(&log).unwrap().meta().clone();
    assert_eq!(meta.command, ["/bin/true"]);
    assert_eq!(
        meta.command_cut,
        Some(vigil_log::CommandCut {
            items: 12,
            bytes: 1_200_000
        })
    );
    let exec = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExec(x) => Some(x),
            _ => None,
        })
        .expect("an exec event");
    assert_eq!(exec.argv.len(), 13);
    assert_eq!(exec.argv[12].as_bytes(), args[11].as_bytes());
    let summary = run(vigil().arg("summary").arg(&log));
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    assert!(
        text(&summary.stdout).contains(
            "/bin/true [... 12 more arguments, 1200000 bytes not kept in the log header]"
        ),
        "{}",
        text(&summary.stdout)
    );
}
