//! A traced program behaves exactly as without vigil: it starts with the signal dispositions and
//! blocked-signal mask vigil's caller gave it, whatever vigil itself does with signals.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::Command;
use vigil_testkit::scratch_dir;

/// The signal lines of /proc/self/status of `grep` run natively or under vigil, started by a
/// parent that sets up signals with `setup` first.
fn sig_lines(under_vigil: bool, setup: fn()) -> String {
    let dir = scratch_dir("transparency");
    let mut cmd = if under_vigil {
        vigil_testkit::require_ptrace();
        let mut c = vigil();
        c.args(["record", "-q", "-o"])
            .arg(dir.join("run.vlog"))
            .arg("--");
        c
    } else {
        Command::new("/usr/bin/env")
    };
    cmd.args(["grep", "-E", "^Sig(Blk|Ign|Cgt)", "/proc/self/status"]);
    // SAFETY: the closure only calls async-signal-safe functions (signal, sigprocmask).
    unsafe {
        cmd.pre_exec(move || {
            setup();
            Ok(())
        });
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn plain() {}

fn ignoring_and_blocking() {
    // SAFETY: async-signal-safe calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[test]
fn the_traced_command_starts_with_its_callers_signal_setup() {
    for (what, setup) in [
        ("a plain caller", plain as fn()),
        (
            "a caller ignoring SIGPIPE and SIGHUP and blocking SIGUSR1 and SIGTERM",
            ignoring_and_blocking,
        ),
    ] {
        let native = sig_lines(false, setup);
        let traced = sig_lines(true, setup);
        assert!(native.contains("SigIgn"), "{native}");
        assert_eq!(traced, native, "{what}: under vigil vs natively");
    }
}

#[test]
fn a_broken_pipe_kills_the_writer_as_it_does_natively() {
    let dir = scratch_dir("sigpipe");
    let script = "yes | head -1 >/dev/null; echo ${PIPESTATUS[*]}";
    let native = run(Command::new("bash").args(["-c", script]));
    let (out, _, _) = record_in(&dir, &[], &[os("bash"), os("-c"), os(script)]);
    assert_eq!(text(&native.stdout), "141 0\n");
    assert_eq!(text(&out.stdout), "141 0\n", "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("Broken pipe"),
        "{}",
        text(&out.stderr)
    );
}

/// `vigil record` of programs/count_signals in its own process group; once it is ready, `send`
/// signals it (given vigil's pid, which is also the group's id). Returns the program's counts.
fn counted(send: fn(i32)) -> String {
    use std::io::{BufRead, BufReader};
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("count-signals");
    let mut child = vigil()
        .args(["record", "-q", "-o"])
        .arg(dir.join("run.vlog"))
        .arg("--")
        .arg(vigil_testkit::program("count_signals"))
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    send(child.id() as i32);
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success());
    line
}

#[test]
fn a_signal_to_the_whole_process_group_reaches_the_command_once() {
    // SAFETY: kill takes integers only.
    let to_group = |pgid: i32| unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    };
    assert_eq!(counted(to_group), "1 0\n");
    // Sent to vigil alone, it is passed on: once too.
    // SAFETY: kill takes integers only.
    let to_vigil = |pid: i32| unsafe {
        libc::kill(pid, libc::SIGINT);
    };
    assert_eq!(counted(to_vigil), "0 1\n");
}

#[test]
fn a_signal_ends_the_wait_for_what_the_command_left_running() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("daemon-wait");
    let log = dir.join("run.vlog");
    signal_ends_the_wait(&[os("record"), os("-q"), os("-o"), log.as_os_str()]);
}

/// `watch` waits the same way, and says so the same way.
#[test]
fn a_signal_ends_the_wait_of_watch_too() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("daemon-wait-watch");
    let rules = dir.join("none.rules");
    std::fs::write(
        &rules,
        "RULE none\nPATTERN { [unlink:u] }\nWHERE { u.path == \"/nonexistent/vigil\" }\n",
    )
    .unwrap();
    signal_ends_the_wait(&[os("watch"), os("--rules"), rules.as_os_str()]);
}

/// Runs vigil with `args` on a command that leaves a daemon behind, ends vigil's wait for it
/// with SIGTERM, and checks what vigil said and that the daemon runs on.
fn signal_ends_the_wait(args: &[&std::ffi::OsStr]) {
    let started = std::time::Instant::now();
    let mut child = vigil()
        .args(args)
        .args([
            "--",
            "sh",
            "-c",
            "sleep 30 >/dev/null 2>&1 & echo $!; exit 3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut pid = String::new();
    {
        use std::io::Read;
        let mut b = [0u8; 1];
        while stdout.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            pid.push(b[0] as char);
        }
    }
    let daemon: i32 = pid.trim().parse().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "vigil waits for the daemon"
    );
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(3), "the command's own status");
    assert!(
        text(&out.stderr).contains("stopped waiting for 1 process"),
        "{}",
        text(&out.stderr)
    );
    // The daemon was detached, not killed, and it was not signalled in vigil's place.
    let alive =
        std::fs::read_to_string(format!("/proc/{daemon}/stat")).is_ok_and(|s| !s.contains(") Z "));
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    assert!(alive, "the daemon {daemon} runs on");
}
