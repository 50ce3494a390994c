//! What `record` does when the world goes wrong around it: the disk fills up while it writes.

mod common;

use common::*;
use vigil_testkit::scratch_dir;

/// A directory on a tmpfs of `kib` KiB, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn new(kib: u32) -> SmallDisk {
        let dir = scratch_dir("small-disk");
        let out = run(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir));
        assert!(
            out.status.success(),
            "PRIVILEGE MISSING: mounting a tmpfs needs root: {}",
            text(&out.stderr)
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_reports_the_incomplete_log_and_the_commands_status() {
    vigil_testkit::require_ptrace();
    let disk = SmallDisk::new(64);
    let log = disk.0.join("run.vlog");
    let out = run(vigil().args(["record", "-q", "-o"]).arg(&log).args([
        "--",
        "sh",
        "-c",
        "find /usr/share/doc >/dev/null; exit 5",
    ]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the log is incomplete"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("the command exit 5"),
        "the command's own status: {err}"
    );
    // What was written reads back as far as it goes.
    let r = vigil_log::LogReader::open(&log).expect("the header was written");
    assert!(r.filter_map(Result::ok).count() > 0);
}

#[test]
fn show_follow_prints_each_line_while_it_waits_for_the_next() {
    use std::io::{BufRead, BufReader};
    vigil_testkit::require_ptrace();
    let dir = scratch_dir("follow");
    let log = dir.join("run.vlog");
    let mut rec = vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args(["--", "sh", "-c", "echo first-line > /dev/null; sleep 4"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut show = vigil()
        .args(["show", "-f"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = show.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Long before the recording ends, the exec of sleep is on screen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut seen = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("exec /usr/bin/sleep") => {
                seen = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = show.kill();
    let _ = rec.kill();
    let _ = (show.wait(), rec.wait());
    assert!(seen, "show -f printed nothing while the command slept");
}

#[test]
fn watch_on_a_full_disk_keeps_enforcing_its_rules_and_says_the_log_stopped() {
    vigil_testkit::require_ptrace();
    let disk = SmallDisk::new(64);
    let dir = scratch_dir("watch-full").canonicalize().unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "token\n").unwrap();
    let rules = dir.join("deny.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE no_secret\nPATTERN {{ [openat:o] }}\nWHERE {{ o.path == \"{}\" }}\nDO {{ kill }}\n",
            secret.display()
        ),
    )
    .unwrap();
    let log = disk.0.join("w.vlog");
    // The disk fills during the find; the open of the secret comes after.
    let out = run(vigil()
        .args(["watch", "--rules"])
        .arg(&rules)
        .arg("-o")
        .arg(&log)
        .args([
            "--",
            "sh",
            "-c",
            &format!(
                "find /usr/share/doc >/dev/null; cat {} ; echo survived",
                secret.display()
            ),
        ]));
    let err = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the log is incomplete"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        stdout.contains("match #1"),
        "the rule still matched after the log stopped: {stdout} {err}"
    );
    assert!(!stdout.contains("token"), "cat was killed: {stdout}");
    assert!(stdout.contains("survived"), "the shell went on: {stdout}");
}
