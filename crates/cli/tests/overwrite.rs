//! Never lose a user's data to an output: an output that is an input is refused; every file is
//! written under a temporary name and renamed into place only when complete, so a command that
//! fails leaves what was there and no temporary file; a recording takes its log's name once the
//! command has started, so one that fails to start leaves an older log of that name intact,
//! and the log can be followed while it is written; `-` is standard output where that makes
//! sense and refused where the traced command writes there.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use vigil_testkit::scratch_dir;

const JSONL: &str = r#"{"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/app","argv":["app"]}
{"seq":2,"time_ns":2000,"pid":10,"tid":10,"type":"syscall_entry","syscall":"openat","args":{"dirfd":{"fd":-100},"path":"/etc/hosts","flags":"O_RDONLY"}}
{"seq":3,"time_ns":3000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"openat","entry_seq":2,"ret":3,"args":{"dirfd":{"fd":-100},"path":"/etc/hosts","flags":"O_RDONLY"}}
{"seq":4,"time_ns":4000,"pid":10,"tid":10,"type":"process_exit","exit_code":0}
"#;

/// A directory with `in.jsonl` and the log `in.vlog` imported from it.
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch_dir(tag);
    let jsonl = dir.join("in.jsonl");
    std::fs::write(&jsonl, JSONL).unwrap();
    let log = dir.join("in.vlog");
    let out = run(vigil().arg("import").arg(&jsonl).arg("-o").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, jsonl, log)
}

/// The names in `dir` that look like vigil's temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Runs `args`; asserts it failed with `code` and left `file` holding `before`.
fn refused(args: &[&std::ffi::OsStr], code: i32, file: &Path, before: &[u8]) -> String {
    let out = run(vigil().args(args));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(
        std::fs::read(file).unwrap(),
        before,
        "{args:?} changed {file:?}"
    );
    err
}

/// `export x.vlog -o x.vlog` left 0 bytes and exited 0; `match --matches v.vlog v.vlog` and
/// `backtrack v.vlog ... -o v.vlog` overwrote the log. Whatever the name (a symlink, a hard
/// link, a `>>` redirection of standard output), the same file is refused before anything is
/// opened.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let (dir, jsonl, log) = setup("same-file");
    let before = std::fs::read(&log).unwrap();
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "RULE any\nPATTERN { [syscall:a] }\nRETURN { a.pid }\n",
    )
    .unwrap();
    let link = dir.join("link.vlog");
    std::os::unix::fs::symlink(&log, &link).unwrap();
    let hard = dir.join("hard.vlog");
    std::fs::hard_link(&log, &hard).unwrap();
    for out in [&log, &link, &hard] {
        let err = refused(
            &[os("export"), log.as_os_str(), os("-o"), out.as_os_str()],
            2,
            &log,
            &before,
        );
        assert!(err.contains("is an input of this command"), "{err}");
    }
    refused(
        &[
            os("match"),
            os("--rules"),
            rules.as_os_str(),
            log.as_os_str(),
            os("--matches"),
            log.as_os_str(),
        ],
        2,
        &log,
        &before,
    );
    let rules_text = std::fs::read(&rules).unwrap();
    refused(
        &[
            os("match"),
            os("--rules"),
            rules.as_os_str(),
            log.as_os_str(),
            os("--matches"),
            rules.as_os_str(),
        ],
        2,
        &rules,
        &rules_text,
    );
    refused(
        &[
            os("backtrack"),
            log.as_os_str(),
            os("--from"),
            os("file:/etc/hosts"),
            os("-o"),
            link.as_os_str(),
        ],
        2,
        &log,
        &before,
    );
    let jsonl_text = std::fs::read(&jsonl).unwrap();
    refused(
        &[os("import"), jsonl.as_os_str(), os("-o"), jsonl.as_os_str()],
        2,
        &jsonl,
        &jsonl_text,
    );
    // Standard output appending to the log being read.
    let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let out = run(vigil().arg("export").arg(&log).stdout(append));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("standard output (the same file as"));
    assert_eq!(std::fs::read(&log).unwrap(), before);
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

/// `import missing.jsonl -o keep.vlog` replaced an existing log with an empty one; an import
/// that failed half-way left a log that read as its first lines. Now the existing log stays as
/// it was, a new one is not created, and no temporary file is left.
#[test]
fn a_failed_import_leaves_no_log_and_an_existing_one_as_it_was() {
    let (dir, _, log) = setup("import-fails");
    let before = std::fs::read(&log).unwrap();
    let err = refused(
        &[
            os("import"),
            dir.join("missing.jsonl").as_os_str(),
            os("-o"),
            log.as_os_str(),
        ],
        1,
        &log,
        &before,
    );
    assert!(err.contains("missing.jsonl"), "{err}");
    let half = dir.join("half.jsonl");
    std::fs::write(&half, format!("{}not json\n", JSONL)).unwrap();
    let err = refused(
        &[os("import"), half.as_os_str(), os("-o"), log.as_os_str()],
        1,
        &log,
        &before,
    );
    assert!(
        err.contains("line 5") && err.contains("nothing was written"),
        "{err}"
    );
    let new = dir.join("new.vlog");
    let out = run(vigil().arg("import").arg(&half).arg("-o").arg(&new));
    assert_eq!(out.status.code(), Some(1));
    assert!(!new.exists(), "no log that reads as valid");
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

/// A complete output replaces the old file (mode 0600), through a symlink the file it names;
/// a device is written in place, not replaced.
#[test]
fn a_complete_output_replaces_the_old_file_and_leaves_no_temporary() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let (dir, _, log) = setup("replace");
    let out_file = dir.join("out.jsonl");
    std::fs::write(&out_file, "old contents\n").unwrap();
    std::fs::set_permissions(&out_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("out-link.jsonl");
    std::os::unix::fs::symlink(&out_file, &link).unwrap();
    let out = run(vigil().arg("export").arg(&log).arg("-o").arg(&link));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let exported = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(exported.lines().count(), 4, "{exported}");
    let mode = std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = run(vigil().arg("export").arg(&log).args(["-o", "/dev/null"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A log that cannot be read leaves the output as it was.
    let before = std::fs::read(&out_file).unwrap();
    refused(
        &[
            os("export"),
            dir.join("missing.vlog").as_os_str(),
            os("-o"),
            out_file.as_os_str(),
        ],
        1,
        &out_file,
        &before,
    );
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

/// `-o -` created a file named `-`. It is standard output for export, import, match
/// --matches, backtrack and forward; record, watch and demo refuse it (the traced command
/// writes to standard output).
#[test]
fn dash_is_standard_output_or_refused() {
    let (dir, _, log) = setup("dash");
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "RULE any\nPATTERN { [syscall:a] }\nRETURN { a.pid }\n",
    )
    .unwrap();
    let in_dir = |args: &[&str]| run(vigil().current_dir(&dir).args(args));
    let log_s = log.to_str().unwrap();
    let out = in_dir(&["export", log_s, "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4);
    let out = in_dir(&[
        "match",
        "--rules",
        rules.to_str().unwrap(),
        log_s,
        "--matches",
        "-",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("match #1"),
        "{}",
        text(&out.stdout)
    );
    for cmd in ["backtrack", "forward"] {
        let out = in_dir(&[
            cmd, log_s, "--from", "proc:10", "--format", "json", "-o", "-",
        ]);
        assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
        let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    }
    let out = in_dir(&["import", dir.join("in.jsonl").to_str().unwrap(), "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.starts_with(b"VIGILLOG"));
    let piped = dir.join("piped.vlog");
    std::fs::write(&piped, &out.stdout).unwrap();
    assert_eq!(read_log(&piped).len(), 4, "a whole, closed log");
    for args in [
        &["record", "-o", "-", "--", "true"][..],
        &[
            "watch",
            "--rules",
            rules.to_str().unwrap(),
            "-o",
            "-",
            "--",
            "true",
        ],
        &["demo", "-o", "-"],
    ] {
        let out = in_dir(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("-o -: the log cannot go to standard output"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!dir.join("-").exists(), "no file named -");
}

/// A recording whose command fails to start (here: not an executable format) removed the log
/// of that name and left an empty one. Now the older log stays, and no temporary file; the
/// log's own name cannot be one of the command's files either.
#[test]
fn a_recording_that_fails_to_start_keeps_an_existing_log() {
    vigil_testkit::require_ptrace();
    let (dir, _, log) = setup("record-fails");
    let before = std::fs::read(&log).unwrap();
    let bad = dir.join("bad.bin");
    std::fs::write(&bad, b"\x7fELF\x02 not really").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "RULE any\nPATTERN { [syscall:a] }\nRETURN { a.pid }\n",
    )
    .unwrap();
    let err = refused(
        &[
            os("record"),
            os("-q"),
            os("-o"),
            log.as_os_str(),
            os("--"),
            bad.as_os_str(),
        ],
        126,
        &log,
        &before,
    );
    assert!(err.contains("cannot execute"), "{err}");
    refused(
        &[
            os("watch"),
            os("--rules"),
            rules.as_os_str(),
            os("-o"),
            log.as_os_str(),
            os("--"),
            bad.as_os_str(),
        ],
        126,
        &log,
        &before,
    );
    // The script the command would read, or the rules watch reads.
    let script = dir.join("s.sh");
    std::fs::write(&script, "echo hi\n").unwrap();
    let err = refused(
        &[
            os("record"),
            os("-o"),
            script.as_os_str(),
            os("--"),
            os("sh"),
            script.as_os_str(),
        ],
        2,
        &script,
        b"echo hi\n",
    );
    assert!(err.contains("is an input of this command"), "{err}");
    let rules_text = std::fs::read(&rules).unwrap();
    refused(
        &[
            os("watch"),
            os("--rules"),
            rules.as_os_str(),
            os("-o"),
            rules.as_os_str(),
            os("--"),
            os("true"),
        ],
        2,
        &rules,
        &rules_text,
    );
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

/// Once the command has started, the log is under its own name and can be followed while it
/// is written; `show -f` ends at its end record.
#[test]
fn a_recording_can_be_followed_under_its_name() {
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("follow");
    let log = dir.join("run.vlog");
    std::fs::write(&log, "an older file").unwrap();
    let mut rec = vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args([
            "--",
            "sh",
            "-c",
            "cat /etc/hostname >/dev/null; sleep 2; cat /etc/hosts >/dev/null",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read(&log).unwrap().starts_with(b"VIGILLOG") {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never took its name"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(rec.try_wait().unwrap().is_none(), "still recording");
    let follow = vigil().arg("show").arg("-f").arg(&log).output().unwrap();
    assert!(rec.wait().unwrap().success());
    assert!(follow.status.success(), "{}", text(&follow.stderr));
    let listing = text(&follow.stdout);
    assert!(
        listing.contains("/etc/hostname") && listing.contains("/etc/hosts"),
        "{listing}"
    );
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}
