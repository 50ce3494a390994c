//! `vigil backtrack|forward --granularity`: shared memory analysed at the recording's
//! granularity or a coarser one; a finer one, or one that does not parse, is refused with a
//! message that names both and exit code 2.

mod common;

use common::*;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_event::*;
use vigil_testkit::scratch_dir;

const PAGE: u64 = 4096;

/// W1 (pid 10) stores to page 0 of /tmp/shared, W2 (11) to page 1, R (20) loads page 1 and
/// writes /tmp/out: a log whose header says `--smo MODE` (None: says nothing).
fn log(dir: &Path, name: &str, mode: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    let meta = vigil_log::LogMeta {
        backend: "synthetic".into(),
        smo: mode.map(String::from),
        smo_slice_ns: mode.map(|_| 10_000_000),
        ..Default::default()
    };
    let mut w = vigil_log::LogWriter::create(&path, &meta).unwrap();
    let mut seq = 0;
    let mut push = |pid: u32, kind: EventKind| {
        seq += 1;
        w.append(&Event {
            seq,
            time_ns: 1_000_000 * seq,
            pid,
            tid: pid,
            kind,
        })
        .unwrap();
    };
    for pid in [10, 11, 20] {
        push(
            pid,
            EventKind::ProcessStart(ProcessStart {
                ppid: 1,
                exe: "/bin/prog".into(),
                argv: Arc::from(vec![Str::from("prog")]),
                creds: Creds::default(),
                clone_flags: 0x11,
            }),
        );
    }
    let access = |access: MemAccess, page: u64| {
        EventKind::SmoAccess(SmoAccess {
            access,
            object: SmoObject {
                kind: SmoKind::File,
                dev: 8,
                ino: 42,
                path: "/tmp/shared".into(),
            },
            offset: page * PAGE,
            len: PAGE,
            addr: 0x7f00_0000_0000 + page * PAGE,
            ip: 0x401000,
            via: SmoVia::Fault,
            private: false,
            map_offset: 0,
            map_len: 3 * PAGE,
        })
    };
    push(10, access(MemAccess::Write, 0));
    push(11, access(MemAccess::Write, 1));
    push(20, access(MemAccess::Read, 1));
    let out = Arc::new(Target::File {
        path: "/tmp/out".into(),
        dev: 8,
        ino: 77,
    });
    push(
        20,
        EventKind::SyscallExit(SyscallExit {
            call: SyscallId::from_name("write").unwrap(),
            entry_seq: 0,
            ret: 5,
            args: [
                Value::Fd(Fd::new(3, Some(out))),
                Value::Uint(0x1000),
                Value::Uint(5),
            ]
            .into_iter()
            .collect(),
        }),
    );
    w.finish().unwrap();
    path
}

fn backtrack(log: &Path, extra: &[&str]) -> std::process::Output {
    run(vigil()
        .arg("backtrack")
        .arg(log)
        .args(["--from", "file:/tmp/out", "--format", "json"])
        .args(extra))
}

/// The pids reached, sorted.
fn pids(out: &std::process::Output) -> Vec<u64> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g: J = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<u64> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn coarser_granularities_merge_the_writers() {
    let dir = scratch_dir("granularity-ok");
    let page = log(&dir, "page.vlog", Some("page"));
    assert_eq!(pids(&backtrack(&page, &[])), vec![1, 11, 20]);
    assert_eq!(
        pids(&backtrack(&page, &["--granularity", "page"])),
        vec![1, 11, 20]
    );
    for g in ["vma", "object"] {
        assert_eq!(
            pids(&backtrack(&page, &["--granularity", g])),
            vec![1, 10, 11, 20],
            "{g}"
        );
    }
    // JSON says which granularity the parts are, and what each part covers.
    let out = backtrack(&page, &[]);
    let g: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["smo"]["granularity"], "page");
    assert_eq!(g["smo"]["accesses"], 3);
    let part = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "smo" && n["offset"] == 4096)
        .unwrap_or_else(|| panic!("{g}"));
    assert_eq!(part["length"], 4096);
    assert_eq!(part["path"], "/tmp/shared");
    // Forward tracking takes the option too.
    let fwd = run(vigil().arg("forward").arg(&page).args([
        "--from",
        "proc:10",
        "--format",
        "json",
        "--granularity",
        "object",
    ]));
    assert!(pids(&fwd).contains(&20));
    let fwd = run(vigil()
        .arg("forward")
        .arg(&page)
        .args(["--from", "proc:10", "--format", "json"]));
    assert!(!pids(&fwd).contains(&20));
}

#[test]
fn a_granularity_finer_than_the_recording_is_refused() {
    let dir = scratch_dir("granularity-bad");
    let object = log(&dir, "object.vlog", Some("object"));
    let out = backtrack(&object, &["--granularity", "page"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "--granularity page is finer than the recording (--smo object): the log cannot say which page was accessed"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let page = log(&dir, "page.vlog", Some("page"));
    for (g, what) in [
        ("minipage:64", "which 64-byte part"),
        ("minipage", "which minipage"),
    ] {
        let out = backtrack(&page, &["--granularity", g]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "--granularity {g} is finer than the recording (--smo page)"
            )) && err.contains(what),
            "{err}"
        );
    }
    let vma = log(&dir, "vma.vlog", Some("vma"));
    let out = backtrack(&vma, &["--granularity", "page"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("(--smo vma)"));
    let mini = log(&dir, "mini.vlog", Some("minipage:64"));
    let out = backtrack(&mini, &["--granularity", "minipage:32"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("which 32-byte part"));
    // Malformed.
    for bad in ["pages", "minipage:100", "minipage:4096", "minipage:x"] {
        let out = backtrack(&page, &["--granularity", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).contains(&format!("--granularity {bad}:")),
            "{}",
            text(&out.stderr)
        );
    }
    // A recording that monitored nothing: only object (what its mmaps give).
    let off = log(&dir, "off.vlog", Some("off"));
    let out = backtrack(&off, &["--granularity", "page"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--smo off"));
    assert!(
        backtrack(&off, &["--granularity", "object"])
            .status
            .success()
    );
}

#[test]
fn a_log_that_does_not_say_takes_any_granularity_with_a_size() {
    let dir = scratch_dir("granularity-unknown");
    let old = log(&dir, "old.vlog", None);
    // Each access covers the parts its recorded range overlaps.
    assert_eq!(pids(&backtrack(&old, &[])), vec![1, 11, 20]);
    assert_eq!(
        pids(&backtrack(&old, &["--granularity", "minipage:64"])),
        vec![1, 11, 20]
    );
    assert_eq!(
        pids(&backtrack(&old, &["--granularity", "object"])),
        vec![1, 10, 11, 20]
    );
    let out = backtrack(&old, &["--granularity", "minipage"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("minipage:64"),
        "{}",
        text(&out.stderr)
    );
}
