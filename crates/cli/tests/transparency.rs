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
        ("a caller ignoring SIGPIPE and SIGHUP and blocking SIGUSR1 and SIGTERM", ignoring_and_blocking),
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
    assert!(!text(&out.stderr).contains("Broken pipe"), "{}", text(&out.stderr));
}
