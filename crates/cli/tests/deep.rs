//! A traced program decides how deep its process tree is: `if (fork() > 0) _exit(0)` in a loop
//! builds a chain as deep as it likes in seconds. summary and every graph output must walk such
//! a chain without recursion (no stack overflow) and print it in output linear in its size.

mod common;

use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use vigil_event::{Creds, Event, EventKind, ExitStatus, ProcessExit, ProcessStart, Str};
use vigil_testkit::scratch_dir;

const DEPTH: u32 = 100_000;
const FIRST_PID: u32 = 1000;

/// A log of `depth` processes, each started by the previous one, which then exits at once.
fn fork_chain(dir: &Path, depth: u32) -> PathBuf {
    let log = dir.join("chain.vlog");
    let meta = vigil_log::LogMeta {
        backend: "synthetic".into(),
        ..Default::default()
    };
    let mut w = vigil_log::LogWriter::create(&log, &meta).unwrap();
    let argv: Arc<[Str]> = vec![Str::from("chain")].into();
    let mut seq = 0;
    let mut event = |pid: u32, kind: EventKind| {
        seq += 1;
        Event {
            seq,
            time_ns: 1_000_000 * seq,
            pid,
            tid: pid,
            kind,
        }
    };
    for i in 0..depth {
        let pid = FIRST_PID + i;
        let start = event(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid: pid - 1,
                exe: Str::from("/tmp/chain"),
                argv: argv.clone(),
                creds: Creds::default(),
                clone_flags: 0,
            }),
        );
        w.append(&start).unwrap();
        if i > 0 {
            let exit = event(
                pid - 1,
                EventKind::ProcessExit(ProcessExit {
                    status: ExitStatus::Code(0),
                }),
            );
            w.append(&exit).unwrap();
        }
    }
    w.finish().unwrap();
    log
}

/// Runs `cmd`, killing it as soon as its output passes `limit` bytes or it runs past a
/// minute (the old quadratic output took minutes and gigabytes); returns its exit code and
/// output.
fn run_bounded(cmd: &mut Command, limit: usize) -> (Option<i32>, Vec<u8>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let done = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*done;
            let guard = lock.lock().unwrap();
            let (guard, timeout) = cv
                .wait_timeout_while(guard, std::time::Duration::from_secs(60), |d| !*d)
                .unwrap();
            // Still ours: the child is only reaped after `done` is set.
            if timeout.timed_out() && !*guard {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        })
    };
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut too_much = false;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > limit {
            too_much = true;
            let _ = child.kill();
            break;
        }
    }
    {
        let (lock, cv) = &*done;
        let mut d = lock.lock().unwrap();
        let status = child.wait().unwrap();
        *d = true;
        cv.notify_all();
        drop(d);
        watchdog.join().unwrap();
        assert!(
            !too_much,
            "{cmd:?}: output passed {limit} bytes: not linear in the graph; it began:\n{}",
            text(&out[..out.len().min(2000)])
        );
        (status.code(), out)
    }
}

#[test]
fn a_100000_deep_fork_chain_is_summarised_and_tracked_in_linear_output() {
    let dir = scratch_dir("deep-chain");
    let log = fork_chain(&dir, DEPTH);
    let last = FIRST_PID + DEPTH - 1;
    let n = DEPTH as usize;
    let from = format!("proc:{last}");
    // Two at a time: each takes seconds in a debug build.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // summary: every process once, the deepest with its depth.
            let (code, out) = run_bounded(vigil().arg("summary").arg(&log), 120 * n);
            assert_eq!(code, Some(0), "summary crashed");
            let summary = text(&out);
            let procs = summary
                .lines()
                .filter(|l| l.contains(" chain [/tmp/chain]"));
            assert_eq!(procs.count(), n, "every process once");
            assert!(
                summary.contains(&format!("[depth {DEPTH}] {last} chain")),
                "the deepest line says its depth"
            );
            assert!(
                summary.lines().all(|l| l.len() < 200),
                "no line grows with the depth"
            );
        });
        scope.spawn(|| {
            // backtrack from the deepest process, as a tree: the whole chain, one short line
            // each.
            let (code, out) = run_bounded(
                vigil().arg("backtrack").arg(&log).args(["--from", &from]),
                200 * n,
            );
            assert_eq!(code, Some(0), "backtrack crashed");
            let tree = text(&out);
            assert!(
                tree.contains(&format!("{DEPTH} edges")),
                "{}",
                &tree[tree.len().saturating_sub(300)..]
            );
            assert!(
                tree.contains(&format!("[{DEPTH}] └─ <- fork")),
                "the deepest line says its depth"
            );
            assert!(tree.lines().all(|l| l.len() < 250));
        });
    });
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let first = format!("proc:{FIRST_PID}");
            let (code, out) = run_bounded(
                vigil().arg("forward").arg(&log).args(["--from", &first]),
                200 * n,
            );
            assert_eq!(code, Some(0), "forward crashed");
            // (The first process's parent is not in the log: one level less.)
            let deepest = format!("[{}] └─ -> fork", DEPTH - 1);
            assert!(text(&out).contains(&deepest));
        });
        scope.spawn(|| {
            let (code, out) = run_bounded(
                vigil()
                    .arg("backtrack")
                    .arg(&log)
                    .args(["--from", &from, "--format", "dot"]),
                300 * n,
            );
            assert_eq!(code, Some(0), "--format dot crashed");
            assert!(out.len() > 50 * n, "the DOT holds the chain");
        });
    });
}
