//! Evidence that cannot be destroyed quietly: oversized events never make a block the reader
//! refuses, and damage to a log's structure is reported with exit code 3.
// Files are spliced from lists of byte ranges; a one-range list is meant.
#![allow(clippy::single_range_in_vec_init)]

mod common;

use common::*;
use vigil_testkit::scratch_dir;

/// One JSON line of an execve call (entry or exit) whose argv is `n` strings of 4096 bytes.
fn execve_line(seq: u64, exit: bool, n: usize) -> String {
    let arg = "a".repeat(4090);
    let argv: Vec<String> = (0..n).map(|i| format!("{i:05}-{arg}")).collect();
    let mut v = serde_json::json!({
        "seq": seq, "time_ns": 1000 + seq, "pid": 5, "tid": 5,
        "type": if exit { "syscall_exit" } else { "syscall_entry" },
        "syscall": "execve",
        "args": {"path": "/bin/true", "argv": argv},
    });
    if exit {
        v["entry_seq"] = (seq - 1).into();
        v["ret"] = (-7).into();
    }
    v.to_string()
}

/// A 17 MiB argv in one JSON line: the import cuts it with a marker counting exactly what was
/// dropped, says so, and the log reads back without damage.
#[test]
fn import_of_a_17_mib_argv_cuts_it_with_an_exact_marker() {
    let dir = scratch_dir("import-17mib");
    let src = dir.join("big.jsonl");
    let n = 17 * 256; // 17 MiB of arguments
    let start = r#"{"seq":1,"time_ns":1000,"pid":5,"tid":5,"type":"process_start","ppid":1,"exe":"/bin/sh","argv":["sh"]}"#;
    std::fs::write(
        &src,
        format!(
            "{start}\n{}\n{}\n",
            execve_line(2, false, n),
            execve_line(3, true, n)
        ),
    )
    .unwrap();
    let log = dir.join("big.vlog");
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 with argument lists cut"),
        "{}",
        text(&out.stderr)
    );
    let exported = run(vigil().arg("export").arg(&log));
    assert_eq!(
        exported.status.code(),
        Some(0),
        "{}",
        text(&exported.stderr)
    );
    assert!(!text(&exported.stderr).contains("corrupt"));
    let lines: Vec<serde_json::Value> = text(&exported.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for l in &lines[1..] {
        let kept = l["args"]["argv"].as_array().unwrap().len();
        let cut = &l["args"]["argv_cut"];
        assert!(kept > 0 && kept < n, "{kept}");
        assert_eq!(cut["items"].as_u64().unwrap() as usize, n - kept);
        assert_eq!(cut["bytes"].as_u64().unwrap() as usize, (n - kept) * 4096);
        assert_eq!(cut["exact"], true);
    }
}

/// A single string too large for any block cannot carry a marker: the import stops naming the
/// line, and leaves no log that reads as valid: an existing log of that name stays as it was.
#[test]
fn import_of_a_string_too_large_for_the_log_names_the_line() {
    let dir = scratch_dir("import-huge-string");
    let src = dir.join("huge.jsonl");
    let start = r#"{"seq":1,"time_ns":1000,"pid":5,"tid":5,"type":"process_start","ppid":1,"exe":"/bin/sh","argv":["sh"]}"#;
    let huge = serde_json::json!({
        "seq": 2, "time_ns": 2000, "pid": 5, "tid": 5, "type": "syscall_entry",
        "syscall": "openat",
        "args": {"dirfd": {"fd": -100}, "path": "p".repeat(20 << 20), "flags": "O_RDONLY"},
    });
    std::fs::write(&src, format!("{start}\n\n{huge}\n")).unwrap();
    let log = dir.join("huge.vlog");
    std::fs::write(&log, "an older log").unwrap();
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 3")
            && err.contains("too large")
            && err.contains("seq 2")
            && err.contains("nothing was written to"),
        "{err}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), b"an older log");
}

/// A recording of 50 events (seqs 1..=50) in 5 blocks of 10, written by the log library.
fn recording(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("good.vlog");
    let meta = vigil_log::LogMeta {
        backend: "ptrace".into(),
        contiguous_seq: true,
        ..vigil_log::LogMeta::default()
    };
    let mut w = vigil_log::LogWriter::create(&path, &meta).unwrap();
    for seq in 1..=50u64 {
        let ev = vigil_event::Event {
            seq,
            time_ns: 1_000_000_000 * seq,
            pid: 42,
            tid: 42,
            kind: vigil_event::EventKind::Signal(vigil_event::SignalDelivery {
                signal: 10,
                code: 0,
                sender_pid: 1,
                sender_uid: 0,
                fault: None,
            }),
        };
        w.append(&ev).unwrap();
        if seq % 10 == 0 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// `vigil show` of a file made of these byte ranges: its exit code, warnings and lines listed.
fn show_spliced(
    dir: &std::path::Path,
    name: &str,
    bytes: &[u8],
    parts: &[std::ops::Range<usize>],
) -> (Option<i32>, String, usize) {
    let path = dir.join(name);
    let file: Vec<u8> = parts
        .iter()
        .flat_map(|r| bytes[r.clone()].to_vec())
        .collect();
    std::fs::write(&path, file).unwrap();
    let out = run(vigil().arg("show").arg(&path));
    (
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout).lines().count(),
    )
}

#[test]
fn show_warns_and_exits_3_when_blocks_are_lost_repeated_or_moved() {
    let dir = scratch_dir("show-integrity");
    let bytes = recording(&dir);
    let l = layout(&bytes);
    let (h, b, end) = (l.header.clone(), l.blocks.clone(), l.end.clone().unwrap());
    assert_eq!(b.len(), 5);

    let (code, err, n) = show_spliced(&dir, "intact.vlog", &bytes, &[0..bytes.len()]);
    assert_eq!((code, err.as_str(), n), (Some(0), "", 50));

    // Cut exactly at a block boundary: no torn block, but no end record either.
    let (code, err, n) = show_spliced(&dir, "cut.vlog", &bytes, &[0..b[2].end]);
    assert_eq!((code, n), (Some(3), 30), "{err}");
    assert!(
        err.contains("warning:")
            && err.contains("cut.vlog")
            && err.contains("not closed")
            && err.contains(&format!("byte {}", b[2].end))
            && err.contains("30 events"),
        "{err}"
    );

    // Header only: vigil killed right after it started.
    let (code, err, n) = show_spliced(&dir, "header.vlog", &bytes, std::slice::from_ref(&h));
    assert_eq!((code, n), (Some(3), 0), "{err}");
    assert!(
        err.contains("not closed") && err.contains("interrupted"),
        "{err}"
    );

    // A block repeated.
    let parts = [h.start..b[1].end, b[1].clone(), b[2].start..end.end];
    let (code, err, n) = show_spliced(&dir, "dup.vlog", &bytes, &parts);
    assert_eq!((code, n), (Some(3), 50), "{err}");
    assert!(
        err.contains(&format!("block 1 at byte {} repeats", b[1].end)),
        "{err}"
    );

    // Two blocks swapped.
    let parts = [
        h.start..b[0].end,
        b[2].clone(),
        b[1].clone(),
        b[3].start..end.end,
    ];
    let (code, err, n) = show_spliced(&dir, "swap.vlog", &bytes, &parts);
    assert_eq!((code, n), (Some(3), 40), "{err}");
    assert!(
        err.contains("block 1 is missing")
            && err.contains("block 1 at byte")
            && err.contains("out of place"),
        "{err}"
    );

    // The last block gone, the end record kept: its counts disagree.
    let parts = [h.start..b[3].end, end.clone()];
    let (code, err, n) = show_spliced(&dir, "short.vlog", &bytes, &parts);
    assert_eq!((code, n), (Some(3), 40), "{err}");
    assert!(
        err.contains(&format!("the end record at byte {}", b[3].end))
            && err.contains("it says 5 blocks, 50 events, last seq 50")
            && err.contains("read 4 blocks, 40 events, last seq 40"),
        "{err}"
    );

    // The other readers say the same.
    for cmd in ["summary", "export"] {
        let out = run(vigil().arg(cmd).arg(dir.join("cut.vlog")));
        assert_eq!(out.status.code(), Some(3), "{cmd}");
        assert!(text(&out.stderr).contains("not closed"), "{cmd}");
    }
}

/// A log from a newer vigil: extension kinds this one does not know are a note (exit 0), a
/// newer major version is refused naming the version needed (exit 1).
#[test]
fn newer_logs_are_read_as_far_as_the_rule_allows() {
    let dir = scratch_dir("show-newer");
    let path = dir.join("ext.vlog");
    let mut w = vigil_log::LogWriter::create(&path, &vigil_log::LogMeta::default()).unwrap();
    let start = r#"{"seq":1,"time_ns":1000,"pid":5,"tid":5,"type":"process_start","ppid":1,"exe":"/bin/sh","argv":["sh"]}"#;
    let ev = vigil_event::json::from_json(&serde_json::from_str(start).unwrap()).unwrap();
    w.append(&ev).unwrap();
    w.append_extension(&vigil_log::ExtensionEvent {
        seq: 2,
        time_ns: 2000,
        pid: 5,
        tid: 5,
        kind: 9,
        body: vec![1, 2, 3],
    })
    .unwrap();
    w.finish().unwrap();
    let out = run(vigil().arg("show").arg(&path));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("note:") && err.contains("extension kind 9: 1") && !err.contains("warning"),
        "{err}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 3;
    let v3 = dir.join("v3.vlog");
    std::fs::write(&v3, &bytes).unwrap();
    let out = run(vigil().arg("show").arg(&v3));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("v3.vlog") && err.contains("needs a vigil that reads format version 3"),
        "{err}"
    );
}

/// Logs and everything else vigil writes hold whole command lines and every path: owner only.
#[test]
fn files_vigil_creates_are_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("modes");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let (out, _, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os("cat /etc/hostname")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&log), 0o600, "record -o");
    // An older, more open file of that name is narrowed when vigil writes over it.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (out, _, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os("cat /etc/hostname")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&log), 0o600, "record -o over an existing 0644 file");

    let jsonl = dir.join("out.jsonl");
    let out = run(vigil().arg("export").arg(&log).arg("-o").arg(&jsonl));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&jsonl), 0o600, "export -o");

    let imported = dir.join("imported.vlog");
    let out = run(vigil().arg("import").arg(&jsonl).arg("-o").arg(&imported));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&imported), 0o600, "import -o");

    let rules = dir.join("any.rules");
    std::fs::write(
        &rules,
        "RULE any\nPATTERN { [syscall:a] }\nRETURN { a.pid }\n",
    )
    .unwrap();
    let matches = dir.join("matches.txt");
    let out = run(vigil()
        .args(["match", "--rules"])
        .arg(&rules)
        .arg(&log)
        .arg("--matches")
        .arg(&matches));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::metadata(&matches).unwrap().len() > 0);
    assert_eq!(mode(&matches), 0o600, "match --matches");

    let graph = dir.join("graph.json");
    let out = run(vigil()
        .arg("backtrack")
        .arg(&log)
        .args(["--from", "file:/etc/hostname", "--format", "json", "-o"])
        .arg(&graph));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&graph), 0o600, "backtrack -o");
}
