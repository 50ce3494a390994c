//! Evidence a traced program cannot forge, evade or destroy: each attack of the threat model
//! (docs/threat-model.md) run for real under vigil, asserting on what the log says.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use vigil_event::*;
use vigil_testkit::{program, scratch_dir};

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap()
}

/// The plain path an event's argument names, and the program's own string when it differs.
fn path_and_given(ev: &Event, name: &str) -> (Option<String>, Option<String>) {
    let raw = ev.arg_raw(name);
    (
        raw.and_then(Value::as_str).map(|s| s.to_string()),
        raw.and_then(Value::given)
            .and_then(Value::as_str)
            .map(|s| s.to_string()),
    )
}

/// The race test needs the CPU to itself: the others hold this shared, it exclusively.
static CPU: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

fn actions<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Action> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Action(a) if a.action == kind => Some(a),
            _ => None,
        })
        .collect()
}

/// Every event of a log that may have been cut short (vigil killed): issues are skipped.
fn read_log_lenient(log: &Path) -> Vec<Event> {
    vigil_log::LogReader::open(log)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .collect()
}

#[test]
fn paths_through_symlinks_and_dotdot_are_recorded_as_the_kernel_resolved_them() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-symlink"));
    let real = dir.join("real");
    std::fs::create_dir_all(real.join("ssl")).unwrap();
    let secret = real.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let x = dir.join("x");
    std::fs::create_dir(&x).unwrap();
    symlink(real.join("ssl"), x.join("l")).unwrap();
    symlink(&secret, x.join("sh")).unwrap();
    // `x/l/../secret` is real/secret: `..` applies to where l points, not to x.
    let script = "cat x/l/../secret >/dev/null; cat x/sh >/dev/null; mkdir x/l/newdir; unlink x/sh";
    let (out, events, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os(script)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret_s = secret.to_str().unwrap();
    let opens: Vec<_> = exits(&events, "openat")
        .into_iter()
        .filter(|(e, _)| fd_path(e, "fd").as_deref() == Some(secret_s))
        .collect();
    assert_eq!(opens.len(), 2, "both opens of the secret are seen as such");
    let mut givens: Vec<String> = opens
        .iter()
        .map(|(e, _)| {
            let (p, g) = path_and_given(e, "path");
            assert_eq!(p.as_deref(), Some(secret_s), "the path is the real one");
            g.expect("the program's own string is kept beside it")
        })
        .collect();
    givens.sort();
    assert_eq!(givens, ["x/l/../secret", "x/sh"]);
    // No exit names a file that does not exist (an entry may hold the text folded, marked
    // lexical: `record` walks an open for reading only through the kernel's answer).
    let wrong = x.join("secret");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::SyscallExit(_))
                && e.arg("path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| *p == wrong.to_str().unwrap())),
        "nothing is recorded at {}",
        wrong.display()
    );
    // mkdir through a symlinked directory: where it was really made.
    let mk = exits(&events, "mkdir");
    assert_eq!(
        path_and_given(mk[0].0, "path").0.as_deref(),
        real.join("ssl/newdir").to_str()
    );
    // unlink names the link itself, not what it points to.
    let ul = exits(&events, "unlink");
    assert_eq!(
        path_and_given(ul[0].0, "path").0.as_deref(),
        x.join("sh").to_str()
    );
    // show prints both forms when they differ; --path selects by the real path.
    let shown = text(&run(vigil().arg("show").arg(&log).args(["--path", secret_s])).stdout);
    assert!(
        shown.contains(&format!("\"{secret_s}\" (given \"x/l/../secret\")")),
        "{shown}"
    );
    // The graph finds the file by its real path.
    let bt = run(vigil().arg("backtrack").arg(&log).args([
        "--from",
        &format!("file:{secret_s}"),
        "--format",
        "json",
    ]));
    assert!(bt.status.success(), "{}", text(&bt.stderr));
}

#[test]
fn a_deny_on_the_real_path_cannot_be_bypassed_by_a_symlink() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-deny"));
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::create_dir(dir.join("x")).unwrap();
    symlink(&dir, dir.join("x/l")).unwrap();
    symlink(&secret, dir.join("x/sh")).unwrap();
    let rules = dir.join("deny.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE guard PATTERN {{ [openat:o] }} WHERE {{ o.path == \"{}\" }} DO {{ deny(EACCES) }}\n",
            secret.display()
        ),
    )
    .unwrap();
    for via in ["x/sh", "x/l/secret", "x/l/x/../secret"] {
        let out = run(vigil()
            .current_dir(&dir)
            .args(["watch", "--rules"])
            .arg(&rules)
            .args(["--", "cat", via]));
        assert_ne!(out.status.code(), Some(0), "cat {via} must be denied");
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{via}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_chrooted_program_opens_files_inside_its_root_and_they_are_recorded_so() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-chroot"));
    let jail = dir.join("jail");
    std::fs::create_dir(&jail).unwrap();
    std::fs::write(jail.join("secret"), "in the jail").unwrap();
    std::fs::write(dir.join("secret"), "outside").unwrap();
    // Absolute inside the jail: /secret there is jail/secret.
    symlink("/secret", jail.join("abslink")).unwrap();
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[program("chroot_open").as_os_str(), jail.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = jail.join("secret");
    let opened: Vec<_> = exits(&events, "open")
        .into_iter()
        .chain(exits(&events, "openat"))
        .filter(|(_, x)| x.ret >= 0)
        .filter(|(e, _)| {
            path_and_given(e, "path")
                .1
                .is_some_and(|g| ["/secret", "/abslink", "secret"].contains(&g.as_str()))
        })
        .collect();
    assert_eq!(opened.len(), 3, "three opens inside the jail");
    for (e, _) in opened {
        assert_eq!(path_and_given(e, "path").0.as_deref(), want.to_str());
        assert_eq!(fd_path(e, "fd").as_deref(), want.to_str());
    }
}

#[test]
fn the_credentials_rule_sees_through_a_symlink_and_dotdot() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-rule-symlink"));
    // /etc/ssl exists on Debian: `l/../shadow` is /etc/shadow.
    symlink("/etc/ssl", dir.join("l")).unwrap();
    symlink("/etc/shadow", dir.join("sh")).unwrap();
    let rules = vigil_testkit::workspace_root().join("rules/detections.rules");
    for via in ["l/../shadow", "sh"] {
        let out = run(vigil()
            .current_dir(&dir)
            .args(["watch", "--rules"])
            .arg(&rules)
            .args(["--", "cat", via]));
        let matches = text(&out.stdout);
        assert!(
            matches.contains("read_credentials") && matches.contains("/etc/shadow"),
            "{via}: {matches}"
        );
    }
}

#[test]
fn a_pipe_reopened_through_dev_fd_is_the_pipe() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-devfd"));
    let (out, events, log) = record_in(
        &dir,
        &[],
        &[os("bash"), os("-c"), os("cat <(echo hi) > out")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let open = exits(&events, "openat")
        .into_iter()
        .find(|(e, _)| {
            path_and_given(e, "path")
                .1
                .is_some_and(|g| g.starts_with("/dev/fd/"))
        })
        .expect("cat opens /dev/fd/N");
    assert!(
        matches!(fd_target(open.0, "fd"), Some(Target::Pipe { .. })),
        "the fd is the pipe: {:?}",
        fd_target(open.0, "fd")
    );
    // Backtracking from out reaches the process that wrote "hi" into the pipe.
    let bt = run(vigil()
        .arg("backtrack")
        .arg(&log)
        .args(["--from", &format!("file:{}", dir.join("out").display())]));
    let tree = text(&bt.stdout);
    assert!(tree.contains("[pipe]"), "{tree}");
    let writer = exits(&events, "write")
        .into_iter()
        .find(|(e, x)| x.ret == 3 && matches!(fd_target(e, "fd"), Some(Target::Pipe { .. })))
        .expect("echo hi writes the pipe");
    assert!(
        tree.contains(&format!(" {} ", writer.0.pid)),
        "the writer {} is in the backtrack:\n{tree}",
        writer.0.pid
    );
}

#[test]
fn a_thread_racing_the_path_buffer_cannot_forge_the_fd_label() {
    let _cpu = CPU.write().unwrap_or_else(|e| e.into_inner());
    let dir = canon(&scratch_dir("ev-race"));
    let secret = dir.join("secret");
    let harmless = dir.join("harmless");
    std::fs::write(&secret, "s").unwrap();
    std::fs::write(&harmless, "h").unwrap();
    let secret_id = {
        let m = std::fs::metadata(&secret).unwrap();
        (m.dev(), m.ino())
    };
    let prog = program("race_open");
    let rules = dir.join("none.rules");
    std::fs::write(
        &rules,
        "RULE never PATTERN { [openat:o] } WHERE { o.ret < -5000 }\n",
    )
    .unwrap();
    // `record` (paths walked by the kernel alone) and `watch` (this rule reads exits, so the
    // entry is not walked: a folded name that differs from the kernel's answer is walked
    // after the call, and a change under vigil is reported): the race must show in each.
    let (mut raced_record, mut raced_watch) = (false, false);
    for attempt in 0..12 {
        let watching = attempt % 2 == 1;
        if (watching && raced_watch) || (!watching && raced_record) {
            continue;
        }
        let log = dir.join("run.vlog");
        let mut cmd = vigil();
        if watching {
            cmd.args(["watch", "--rules"])
                .arg(&rules)
                .arg("-o")
                .arg(&log);
        } else {
            cmd.args(["record", "-q", "-o"]).arg(&log);
        }
        let out = run(cmd
            .arg("--")
            .arg(&prog)
            .arg(&secret)
            .arg(&harmless)
            .arg("2000"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let events = read_log(&log);
        let hits: usize = text(&out.stdout).trim().parse().unwrap();
        let mut labelled = 0;
        for (e, x) in exits(&events, "openat") {
            if x.ret < 0 {
                continue;
            }
            let Some(Target::File { path, dev, ino }) = fd_target(e, "fd") else {
                continue;
            };
            let is_secret = (dev, ino) == secret_id;
            assert_eq!(
                path == secret.to_str().unwrap(),
                is_secret,
                "fd label {path} for (dev, ino) {:?}",
                (dev, ino)
            );
            if is_secret {
                labelled += 1;
                assert_eq!(
                    path_and_given(e, "path").0.as_deref(),
                    secret.to_str(),
                    "the exit's path is the kernel's answer"
                );
            }
        }
        assert_eq!(
            labelled, hits,
            "every open of the secret is labelled as such"
        );
        if watching {
            raced_watch |= !actions(&events, "path-changed").is_empty();
        } else {
            // The entry holds what vigil read, the exit what the kernel opened.
            let entry_path = |seq: u64| {
                events
                    .iter()
                    .find(|e| e.seq == seq)
                    .and_then(|e| e.arg("path"))
                    .cloned()
            };
            raced_record |= exits(&events, "openat")
                .iter()
                .any(|(e, x)| x.ret >= 0 && entry_path(x.entry_seq).as_ref() != e.arg("path"));
        }
    }
    assert!(
        raced_record && raced_watch,
        "the race was never provoked (record: {raced_record}, watch: {raced_watch}) in 6 x 2000 opens each: this test would not catch a regression"
    );
}

#[test]
fn an_i386_call_uses_the_low_32_bits_of_its_pointer_as_the_kernel_does() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-int80"));
    let real = dir.join("real.txt");
    std::fs::write(&real, "r").unwrap();
    let prog = program("int80_highbits");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[
            prog.as_os_str(),
            real.as_os_str(),
            os("/tmp/harmless-decoy"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (e, x) = exits(&events, "i386:open")
        .into_iter()
        .next()
        .expect("i386 open");
    assert!(x.ret >= 0);
    assert_eq!(path_and_given(e, "path").0.as_deref(), real.to_str());
    assert_eq!(fd_path(e, "fd").as_deref(), real.to_str());
}

#[test]
fn fexecve_of_a_memfd_records_what_the_kernel_executed() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-fexecve"));
    let prog = program("fexecve_memfd");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[
            prog.as_os_str(),
            os("/bin/echo"),
            os("echo"),
            os("from-memory"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-memory\n");
    let (e, _) = exits(&events, "execveat")
        .into_iter()
        .next()
        .expect("execveat");
    let (p, g) = path_and_given(e, "path");
    assert_eq!(p.as_deref(), Some("/memfd:payload (deleted)"));
    assert_eq!(g.as_deref(), Some(""));
    let exec = events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExec(x) => Some(x),
            _ => None,
        })
        .unwrap();
    assert_eq!(exec.exe.to_string(), "/memfd:payload (deleted)");
    assert_eq!(exec.argv.len(), 2);
}

#[test]
fn pids_inside_a_pid_namespace_are_translated() {
    let _cpu = shared();
    let dir = scratch_dir("ev-pidns");
    let prog = program("pidns_kill");
    let (out, events, _) = record_in(&dir, &[], &[prog.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (e, x) = exits(&events, "kill")
        .into_iter()
        .find(|(e, _)| e.arg("sig").and_then(Value::as_int) == Some(15))
        .expect("the kill");
    assert_eq!(x.ret, 0);
    let raw = e.arg_raw("pid").unwrap();
    assert_eq!(
        raw.given().and_then(Value::as_int),
        Some(2),
        "as the program named it"
    );
    let real = raw.as_int().unwrap() as u32;
    // The real target is the process that then died of SIGTERM.
    let died = events.iter().any(|ev| {
        ev.pid == real
            && matches!(&ev.kind, EventKind::ProcessExit(p) if p.status == ExitStatus::Signal { signal: 15, core_dumped: false })
    });
    assert!(died, "pid {real} is the sleeper killed by SIGTERM");
    // The signal's sender is named as vigil sees it too.
    let sender = events
        .iter()
        .find_map(|ev| match &ev.kind {
            EventKind::Signal(s) if ev.pid == real && s.signal == 15 => Some(s.sender_pid),
            _ => None,
        })
        .unwrap();
    assert_eq!(sender, e.pid);
}

#[test]
fn a_cwd_longer_than_path_max_is_unknown_not_the_root() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-longcwd"));
    let prog = program("longcwd");
    let (out, events, _) = record_in(&dir, &[], &[prog.as_os_str(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (e, x) = exits(&events, "openat")
        .into_iter()
        .find(|(e, _)| path_and_given(e, "path").0.as_deref() == Some("deep.txt"))
        .expect("the relative open");
    assert!(x.ret >= 0);
    assert_eq!(e.arg_raw("path").unwrap().resolution(), Resolution::Unknown);
    assert!(
        !events.iter().any(|e| e
            .arg("path")
            .and_then(Value::as_str)
            .is_some_and(|p| *p == "/deep.txt")),
        "never resolved against /"
    );
    // The file it wrote is still one object, by device and inode.
    assert!(matches!(fd_target(e, "fd"), Some(Target::File { ino, .. }) if ino != 0));
}

#[test]
fn no_child_of_a_traced_process_runs_untraced() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-untraced"));
    let prog = program("clone_untraced");
    let (out, events, _) = record_in(&dir, &[], &[prog.as_os_str(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "2", "both children ran");
    for name in ["clone.0", "clone3.0"] {
        let p = dir.join(name);
        assert!(p.exists());
        assert!(
            exits(&events, "openat")
                .iter()
                .any(|(e, _)| fd_path(e, "fd").as_deref() == p.to_str()),
            "the child that made {name} was traced"
        );
    }
    assert_eq!(actions(&events, "changed").len(), 2);
    // A thread setting CLONE_UNTRACED again behind vigil's back: every child that ran was
    // traced, the others were killed before they could act.
    let race = canon(&scratch_dir("ev-untraced-race"));
    let (out, events, _) = record_in(
        &race,
        &[],
        &[prog.as_os_str(), race.as_os_str(), os("race")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: Vec<_> = std::fs::read_dir(&race)
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("clone"))
        .collect();
    for f in &made {
        let p = f.path();
        assert!(
            exits(&events, "openat")
                .iter()
                .any(|(e, _)| fd_path(e, "fd").as_deref() == p.to_str()),
            "{} was made by an untraced child",
            p.display()
        );
    }
    let killed = actions(&events, "killed").len();
    assert_eq!(
        made.len() + killed,
        201,
        "each child either ran traced or was killed"
    );
}

#[test]
fn io_uring_operations_are_recorded_as_calls() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-uring"));
    let src = dir.join("src.txt");
    std::fs::write(&src, "hello uring\n").unwrap();
    let dst = dir.join("dst.txt");
    let prog = program("uring_copy");
    let (out, events, log) = record_in(
        &dir,
        &[],
        &[prog.as_os_str(), src.as_os_str(), dst.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&dst).unwrap(), b"hello uring\n");
    let opens = exits(&events, "io_uring:openat");
    assert_eq!(opens.len(), 2, "both opens, submitted through the ring");
    assert_eq!(
        path_and_given(opens[0].0, "path").0.as_deref(),
        src.to_str()
    );
    assert_eq!(fd_path(opens[0].0, "fd").as_deref(), src.to_str());
    let reads = exits(&events, "io_uring:read");
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].1.ret, 12);
    assert_eq!(fd_path(reads[0].0, "fd").as_deref(), src.to_str());
    let writes = exits(&events, "io_uring:write");
    assert_eq!(fd_path(writes[0].0, "fd").as_deref(), dst.to_str());
    // The flow from src to dst is in the graph.
    let bt = text(
        &run(vigil()
            .arg("backtrack")
            .arg(&log)
            .args(["--from", &format!("file:{}", dst.display())]))
        .stdout,
    );
    assert!(bt.contains(src.to_str().unwrap()), "{bt}");
    // A rule on openat sees io_uring opens, and its deny refuses the submission.
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE guard PATTERN {{ [openat:o] }} WHERE {{ o.path == \"{}\" }} DO {{ deny(EACCES) }}\n",
            src.display()
        ),
    )
    .unwrap();
    let out = run(vigil()
        .args(["watch", "--rules"])
        .arg(&rules)
        .arg("--")
        .arg(&prog)
        .arg(&src)
        .arg(dir.join("dst2.txt")));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("io_uring_enter: Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join("dst2.txt").exists());
    // A polled ring is flagged.
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[
            prog.as_os_str(),
            src.as_os_str(),
            dir.join("dst3.txt").as_os_str(),
            os("sqpoll"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        actions(&events, "alert")
            .iter()
            .any(|a| a.detail.to_string().contains("IORING_SETUP_SQPOLL"))
    );
}

#[test]
fn argv_is_recorded_whole_or_cut_with_an_exact_count() {
    let _cpu = shared();
    let dir = scratch_dir("ev-argv");
    let prog = program("argv_flood");
    let (out, events, _) = record_in(
        &dir,
        &[],
        &[prog.as_os_str(), os("/bin/echo"), os("rm -rf /important")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exec = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ProcessExec(x) if x.exe.to_string().ends_with("echo") => Some(x),
            _ => None,
        })
        .next()
        .expect("echo ran");
    assert_eq!(exec.argv.len(), 5002);
    assert_eq!(exec.argv[5001].to_string(), "rm -rf /important");
    // Beyond the kernel's limit (it refuses with E2BIG): what was kept and exactly what not.
    let (out, events, log) = record_in(&dir, &[], &[prog.as_os_str(), os("/bin/echo"), os("big")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (e, x) = exits(&events, "execve")
        .into_iter()
        .find(|(_, x)| x.ret == -(libc::E2BIG as i64))
        .expect("the refused execve");
    let _ = x;
    let argv = e.arg_raw("argv").unwrap();
    let cut = argv.cut().expect("marked as cut");
    let kept = argv.as_list().unwrap();
    assert!(cut.exact);
    assert_eq!(kept.len() as u64 + cut.items, 4097);
    // Bytes count the strings without their NULs.
    let kept_bytes: u64 = kept.iter().map(|s| s.len() as u64).sum();
    let total = "/bin/echo".len() as u64 + 4096 * 4095;
    assert_eq!(kept_bytes + cut.bytes, total);
    assert!(
        kept_bytes >= 4 * 1024 * 1024,
        "kept up to the kernel's limit"
    );
    // The log holding it reads back whole.
    let reader = vigil_log::LogReader::open(&log).unwrap();
    assert!(reader.into_iter().all(|r| r.is_ok()));
}

#[test]
fn a_traced_program_cannot_kill_stop_attach_or_erase_vigil() {
    let _cpu = shared();
    let dir = canon(&scratch_dir("ev-blind"));
    let log = dir.join("run.vlog");
    let prog = program("blind_vigil");
    let out = run(vigil()
        .current_dir(&dir)
        .args(["record", "-q", "-o"])
        .arg(&log)
        .arg("--")
        .arg(&prog)
        .arg(&log)
        .process_group(0));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let field = |k: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {report}"))
            .to_string()
    };
    for k in [
        "kill_kill",
        "kill_stop",
        "kill_term",
        "ptrace_attach",
        "pidfd_send_signal",
        "open_log_write",
        "open_log_trunc",
        "truncate_log",
        "rename_log",
        "unlink_log",
    ] {
        assert_eq!(field(k), libc::EPERM.to_string(), "{k}: {report}");
    }
    assert_eq!(field("kill_probe"), "0", "a liveness probe still works");
    assert_eq!(field("group_term"), "0");
    let tg = field("tgkill_refused");
    let (a, b) = tg.split_once('/').unwrap();
    assert_eq!(a, b, "every thread of vigil refused: {tg}");
    assert_ne!(
        field("proc_fd_refused"),
        "0",
        "the log through /proc/PID/fd too"
    );
    // The log is intact and says what was refused.
    let events = read_log(&log);
    assert!(actions(&events, "refused").len() >= 12);
    assert!(!actions(&events, "ignored").is_empty(), "the group SIGTERM");
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::ProcessExit(_)))
    );
}

#[test]
fn a_group_sigkill_ends_the_program_but_not_vigil() {
    let _cpu = shared();
    let dir = scratch_dir("ev-groupkill");
    let log = dir.join("run.vlog");
    let out = run(vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .arg("--")
        .arg(program("group_kill"))
        .process_group(0));
    assert_eq!(out.status.code(), Some(128 + 9), "the command's own status");
    let events = read_log(&log);
    assert_eq!(actions(&events, "redirected").len(), 1);
    let killed = events
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::ProcessExit(p) if p.status == ExitStatus::Signal { signal: 9, core_dumped: false })
        })
        .count();
    assert_eq!(killed, 2, "the program and its child");
}

#[test]
fn killing_vigil_loses_at_most_a_short_window_and_leaves_nothing_running() {
    let _cpu = shared();
    let dir = scratch_dir("ev-kill9");
    let log = dir.join("run.vlog");
    let mut child = vigil()
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args(["--", "sh", "-c", "while :; do /bin/true; done"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    child.kill().unwrap();
    child.wait().unwrap();
    let events = read_log_lenient(&log);
    let last = events
        .last()
        .expect("events were written before the kill")
        .time_ns;
    let lost_ms = killed_at.saturating_sub(last) / 1_000_000;
    assert!(
        lost_ms < 400,
        "the last {lost_ms} ms before the kill were lost"
    );
    // The traced shell died with vigil (PTRACE_O_EXITKILL).
    let sh = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExec(x) if x.exe.to_string().ends_with("sh") => Some(e.pid),
            _ => None,
        })
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let alive =
        std::fs::read_to_string(format!("/proc/{sh}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the traced shell {sh} is still running");
}
