//! Evidence that cannot be destroyed quietly: oversized events never make a block the reader
//! refuses, and damage to a log's structure is reported with exit code 3.

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
/// line, and what it wrote before that line reads back without corruption.
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
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("too large") && err.contains("seq 2"),
        "{err}"
    );
    let exported = run(vigil().arg("export").arg(&log));
    assert!(
        !text(&exported.stderr).contains("corrupt"),
        "{}",
        text(&exported.stderr)
    );
    assert_eq!(
        text(&exported.stdout).lines().count(),
        1,
        "the event before it"
    );
}
