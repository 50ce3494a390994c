//! `vigil mvee` (issue 12, multi-variant execution) on real programs: no false alarm and the
//! same output as a native run on coreutils pipelines, python, tar and gzip, and the
//! programs/mvee_*.c programs (workers, dup'ed stdout, randomness, times, a 1 ms timer with a
//! signal handler, a killed child, a TCP echo pair); divergences caught (an address leak, a jump
//! to an address read from input, with the log's `divergence` event and a backtrack from it);
//! and bad input (variant counts, missing commands, a program that ptraces, a variant crashing
//! alone, a straggler, kill -9 of vigil). Every run is bounded: a monitor that hangs fails its
//! test (its process group is killed) instead of hanging the suite.

mod common;

use common::{os, read_log, text, vigil};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vigil_event::{Divergence, EventKind};
use vigil_testkit::{program, require_ptrace, scratch_dir};

/// How long any one run may take before the test kills it and fails.
const BOUND: Duration = Duration::from_secs(60);

/// How a bounded run ended.
#[derive(Debug)]
struct Run {
    /// The shell's view: the exit code, or 128+N when killed by signal N.
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn shell_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => unreachable!("a process ends with a code or a signal"),
    }
}

/// Kills the process group `pgid` when not disarmed (dropped) within `bound`.
struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn new(pgid: u32, bound: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < bound {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !flag.load(Ordering::SeqCst) {
                let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` (stdin empty, in a process group of its own) to its end. Fails the test when it
/// runs past `bound` (the whole group is killed first) or when something it started still
/// holds its output a few seconds after it ended (a variant left behind).
fn bounded(cmd: &mut Command, bound: Duration) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pgid = child.id();
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > bound {
            let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
            let _ = child.wait();
            let o = out.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
            let e = err.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
            panic!(
                "{cmd:?} still running after {bound:?}: killed\nstdout:\n{}\nstderr:\n{}",
                text(&o),
                text(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    let collect = |rx: mpsc::Receiver<Vec<u8>>, what: &str| {
        rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
            let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
            panic!("{cmd:?} ended ({status}) but its {what} is still held open 5 s later")
        })
    };
    let stdout = text(&collect(out, "stdout"));
    let stderr = text(&collect(err, "stderr"));
    Run {
        code: shell_code(status),
        stdout,
        stderr,
        took,
    }
}

fn args(cmd: &[&OsStr]) -> Vec<OsString> {
    cmd.iter().map(|s| s.to_os_string()).collect()
}

/// `vigil mvee OPTS -- CMD...` in `dir`, bounded.
fn mvee_in(dir: &Path, opts: &[&str], cmd: &[&OsStr]) -> Run {
    require_ptrace();
    bounded(
        vigil()
            .current_dir(dir)
            .arg("mvee")
            .args(opts)
            .arg("--")
            .args(args(cmd)),
        BOUND,
    )
}

fn mvee(opts: &[&str], cmd: &[&OsStr]) -> Run {
    mvee_in(&scratch_dir("mvee"), opts, cmd)
}

/// `CMD...` natively in `dir`, bounded.
fn native_in(dir: &Path, cmd: &[&OsStr]) -> Run {
    bounded(Command::new(cmd[0]).args(&cmd[1..]).current_dir(dir), BOUND)
}

fn native(cmd: &[&OsStr]) -> Run {
    native_in(&scratch_dir("mvee-native"), cmd)
}

/// No false alarm: the program's own success, nothing about a divergence.
fn assert_no_alarm(r: &Run, what: &str) {
    assert!(
        !r.stderr.contains("divergence"),
        "{what}: a false alarm\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        r.code, 0,
        "{what}: exit status\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
}

/// A divergence: exit code 4 and a report whose first line starts `vigil: divergence: `.
fn assert_divergence(r: &Run, what: &str) {
    assert_eq!(
        r.code, 4,
        "{what}: a divergence exits with 4\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.starts_with("vigil: divergence: "),
        "{what}: the report's first line\nstderr:\n{}",
        r.stderr
    );
}

/// The one `divergence` event of a log, and its sequence number.
fn divergence_in(log: &Path) -> (u64, Divergence) {
    let events = read_log(log);
    let found: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Divergence(d) => Some((e.seq, d.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one divergence event in {} ({} events)",
        log.display(),
        events.len()
    );
    found.into_iter().next().unwrap()
}

/// Whether variant `index` is one the divergence says disagreed.
fn diverged(d: &Divergence, index: u32) -> bool {
    d.variants.iter().any(|v| v.index == index && v.diverged)
}

/// `key=value ` words as a map (values run to the next space).
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split(' ').filter_map(|w| w.split_once('=')).collect()
}

/// Masks `pid=N` and `ppid=N`, which differ from run to run.
fn mask_pids(s: &str) -> String {
    s.split('\n')
        .map(|l| {
            l.split(' ')
                .map(|w| match w.split_once('=') {
                    Some((k @ ("pid" | "ppid"), _)) => format!("{k}=*"),
                    _ => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A program of programs/ run natively and under `vigil mvee OPTS`, each in a directory of
/// its own: both succeed, the monitored one without a false alarm, and `file` (relative to
/// the run's directory), when given, ends the same in both. Returns (native, monitored).
fn both(name: &str, opts: &[&str], argv: &[&str], file: Option<&str>) -> (Run, Run) {
    let prog = program(name);
    let mut cmd: Vec<&OsStr> = vec![prog.as_os_str()];
    cmd.extend(argv.iter().map(OsStr::new));
    let nd = scratch_dir(&format!("mvee-native-{name}"));
    let md = scratch_dir(&format!("mvee-{name}"));
    let n = native_in(&nd, &cmd);
    assert_eq!(n.code, 0, "{name} natively: {}", n.stderr);
    let m = mvee_in(&md, opts, &cmd);
    assert_no_alarm(&m, name);
    if let Some(f) = file {
        assert_eq!(
            std::fs::read(md.join(f)).unwrap(),
            std::fs::read(nd.join(f)).unwrap(),
            "{name}: {f} as natively"
        );
    }
    (n, m)
}

/// [`both`], printing the same (pid values masked); returns the monitored run.
fn same_as_native(name: &str, opts: &[&str], argv: &[&str]) -> Run {
    let (n, m) = both(name, opts, argv, None);
    assert_eq!(
        mask_pids(&m.stdout),
        mask_pids(&n.stdout),
        "{name} {opts:?}: the same output as natively"
    );
    m
}

// ---------------------------------------------------------------------------------------------
// No false alarm, same output as without vigil.

#[test]
fn coreutils_pipelines_under_sh_match_native() {
    for script in [
        "seq 1 2000 | sort -r | head -5 | wc -l",
        "seq 1 2000 | sort -rn | head -5",
        "ls / | grep -c .",
        "for i in 1 2 3 4 5; do echo line $i; done | tac",
        "cut -d: -f1 /etc/passwd | sort | uniq | wc -l",
        "x=0; for i in $(seq 1 50); do x=$((x + i)); done; echo $x",
    ] {
        let cmd = [os("sh"), os("-c"), os(script)];
        let n = native(&cmd);
        assert_eq!(n.code, 0, "{script} natively: {}", n.stderr);
        assert!(!n.stdout.is_empty(), "{script} prints something natively");
        let m = mvee(&[], &cmd);
        assert_no_alarm(&m, script);
        assert_eq!(m.stdout, n.stdout, "{script}: the same output as natively");
    }
    // Standard error is the program's too, and written once.
    let m = mvee(
        &[],
        &[os("sh"), os("-c"), os("echo to-stderr >&2; echo to-stdout")],
    );
    assert_no_alarm(&m, "stderr");
    assert_eq!(m.stdout, "to-stdout\n");
    assert_eq!(m.stderr.matches("to-stderr").count(), 1, "{}", m.stderr);
    // And the exit status is the program's.
    let m = mvee(&[], &[os("sh"), os("-c"), os("echo bye; exit 7")]);
    assert_eq!((m.code, m.stdout.as_str()), (7, "bye\n"), "{}", m.stderr);
    assert!(!m.stderr.contains("divergence"), "{}", m.stderr);
}

const COUNT_LINES_PY: &str = r#"
import json, os, sys
d = sys.argv[1]
counts = {}
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name)) as f:
        counts[name] = sum(1 for _ in f)
out = json.dumps({"files": counts, "total": sum(counts.values())}, sort_keys=True)
with open(sys.argv[2], "w") as f:
    f.write(out + "\n")
print(out)
"#;

#[test]
fn python_reading_files_and_writing_json_matches_native() {
    let dir = scratch_dir("mvee-python");
    std::fs::create_dir(dir.join("data")).unwrap();
    for (name, lines) in [("a.txt", 3), ("b.txt", 10), ("c.txt", 250)] {
        let body: String = (0..lines)
            .map(|i| format!("line {i} of {name}\n"))
            .collect();
        std::fs::write(dir.join("data").join(name), body).unwrap();
    }
    // The interpreter itself (python3 may be a shell-script shim in PATH).
    let which = native(&[
        os("python3"),
        os("-c"),
        os("import sys; print(sys.executable)"),
    ]);
    assert_eq!(which.code, 0, "python3: {}", which.stderr);
    let python = which.stdout.trim().to_string();
    let run = |out: &str, under: bool| {
        let cmd = [
            os(&python),
            os("-c"),
            os(COUNT_LINES_PY),
            os("data"),
            os(out),
        ];
        if under {
            mvee_in(&dir, &[], &cmd)
        } else {
            native_in(&dir, &cmd)
        }
    };
    let n = run("native.json", false);
    assert_eq!(n.code, 0, "python3 natively: {}", n.stderr);
    let m = run("mvee.json", true);
    assert_no_alarm(&m, "python3");
    assert_eq!(m.stdout, n.stdout);
    let written = std::fs::read_to_string(dir.join("mvee.json")).unwrap();
    assert_eq!(
        written,
        std::fs::read_to_string(dir.join("native.json")).unwrap(),
        "the file written under vigil mvee (once) is the native one"
    );
    let j: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(j["total"], 263, "{written}");
    assert_eq!(j["files"]["c.txt"], 250, "{written}");
}

#[test]
fn tar_and_gzip_of_a_directory_match_native() {
    let dir = scratch_dir("mvee-tar");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
    let big: String = (0..20000)
        .map(|i| format!("{i} {}\n", i * 7919 % 10007))
        .collect();
    std::fs::write(data.join("big.txt"), &big).unwrap();
    std::fs::write(data.join("sub/small.txt"), "small\n").unwrap();
    std::fs::write(data.join("sub/deeper/empty"), "").unwrap();
    std::fs::write(
        data.join("sub/deeper/bin"),
        (0u8..=255).collect::<Vec<u8>>(),
    )
    .unwrap();

    let n = native_in(&dir, &[os("tar"), os("czf"), os("native.tgz"), os("data")]);
    assert_eq!(n.code, 0, "{}", n.stderr);
    let m = mvee_in(
        &dir,
        &[],
        &[os("tar"), os("czf"), os("mvee.tgz"), os("data")],
    );
    assert_no_alarm(&m, "tar czf");
    // The archive written under vigil mvee lists like the native one and extracts to the
    // same files (written once: two variants writing it would have garbled it).
    let list_native = native_in(&dir, &[os("tar"), os("tzf"), os("native.tgz")]);
    let list_mvee = native_in(&dir, &[os("tar"), os("tzf"), os("mvee.tgz")]);
    assert_eq!(list_native.code, 0, "{}", list_native.stderr);
    assert_eq!(list_mvee.code, 0, "{}", list_mvee.stderr);
    assert_eq!(list_mvee.stdout, list_native.stdout);
    assert!(list_native.stdout.contains("data/sub/deeper/bin"));
    std::fs::create_dir(dir.join("x")).unwrap();
    let x = native_in(
        &dir,
        &[os("tar"), os("xzf"), os("mvee.tgz"), os("-C"), os("x")],
    );
    assert_eq!(x.code, 0, "{}", x.stderr);
    for f in [
        "big.txt",
        "sub/small.txt",
        "sub/deeper/empty",
        "sub/deeper/bin",
    ] {
        assert_eq!(
            std::fs::read(dir.join("x/data").join(f)).unwrap(),
            std::fs::read(data.join(f)).unwrap(),
            "{f} extracted from the archive written under vigil mvee"
        );
    }
    // Listing under vigil mvee.
    let m = mvee_in(&dir, &[], &[os("tar"), os("tzf"), os("native.tgz")]);
    assert_no_alarm(&m, "tar tzf");
    assert_eq!(m.stdout, list_native.stdout);

    // gzip round trip and compressed bytes, through pipes.
    for script in [
        "gzip -c < data/big.txt | gzip -dc | sha256sum",
        "gzip -9c < data/big.txt | sha256sum",
        "gzip -c < data/big.txt | gzip -dc | cmp - data/big.txt && echo same",
    ] {
        let cmd = [os("sh"), os("-c"), os(script)];
        let n = native_in(&dir, &cmd);
        assert_eq!(n.code, 0, "{script} natively: {}", n.stderr);
        let m = mvee_in(&dir, &[], &cmd);
        assert_no_alarm(&m, script);
        assert_eq!(m.stdout, n.stdout, "{script}");
    }
}

#[test]
fn forked_workers_match_native() {
    let m = same_as_native("mvee_fork_workers", &[], &[]);
    assert!(
        m.stdout
            .contains("parent: worker 2 exited with 12 (waitpid)\nparent: no child left"),
        "{}",
        m.stdout
    );
    assert_eq!(m.stdout.matches("parent ok").count(), 3, "{}", m.stdout);
}

#[test]
fn duplicated_and_redirected_stdout_match_native() {
    let prog = program("mvee_dup_stdout");
    let dir = scratch_dir("mvee-dup");
    let n = native_in(&dir, &[prog.as_os_str(), os("native.txt")]);
    assert_eq!(n.code, 0, "{}", n.stderr);
    let m = mvee_in(&dir, &[], &[prog.as_os_str(), os("mvee.txt")]);
    assert_no_alarm(&m, "mvee_dup_stdout");
    assert_eq!(mask_pids(&m.stdout), mask_pids(&n.stdout));
    // Each write through a duplicate of stdout happened once.
    for line in [
        "dup: fd",
        "dup2: fd 5",
        "F_DUPFD_CLOEXEC",
        "dup3: fd 7",
        "after close(1)",
    ] {
        assert_eq!(m.stdout.matches(line).count(), 1, "{line}:\n{}", m.stdout);
    }
    assert!(
        m.stdout.contains("pid stable: yes\nppid stable: yes"),
        "{}",
        m.stdout
    );
    // The redirected lines are in the file, once, not on stdout.
    let native_file = std::fs::read_to_string(dir.join("native.txt")).unwrap();
    let file = std::fs::read_to_string(dir.join("mvee.txt")).unwrap();
    assert_eq!(mask_pids(&file), mask_pids(&native_file));
    assert!(
        file.starts_with("redirected: line 1\nredirected: pid="),
        "{file}"
    );
    assert!(!m.stdout.contains("redirected"), "{}", m.stdout);
    // The pids the file and stdout show are the same (virtual) ones.
    let pid_in = |s: &str, prefix: &str| {
        let line = s.lines().find(|l| l.starts_with(prefix)).unwrap();
        (
            fields(line)["pid"].to_string(),
            fields(line)["ppid"].to_string(),
        )
    };
    assert_eq!(
        pid_in(&file, "redirected: pid"),
        pid_in(&m.stdout, "restored:")
    );
}

#[test]
fn random_bytes_are_one_output() {
    let prog = program("mvee_random");
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let m = mvee(&[], &[prog.as_os_str()]);
        assert_no_alarm(&m, "mvee_random");
        let lines: Vec<&str> = m.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "one output, not one per variant:\n{}",
            m.stdout
        );
        for (line, name) in lines.iter().zip(["urandom", "getrandom", "at_random"]) {
            let hex = line
                .strip_prefix(&format!("{name}: "))
                .unwrap_or_else(|| panic!("{line:?} is not {name}"));
            assert_eq!(hex.len(), 32, "{line}");
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
            assert_ne!(hex, "0".repeat(32), "{line}");
        }
        outputs.push(m.stdout);
    }
    assert_ne!(
        outputs[0], outputs[1],
        "randomness is still random from run to run"
    );
}

#[test]
fn times_and_tsc_are_one_output() {
    let prog = program("mvee_time");
    let rounds = 20;
    let m = mvee(&[], &[prog.as_os_str(), os(&rounds.to_string())]);
    assert_no_alarm(&m, "mvee_time");
    let lines: Vec<&str> = m.stdout.lines().collect();
    assert_eq!(lines.len(), rounds + 2, "one output:\n{}", m.stdout);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let secs = |v: &str| v.parse::<f64>().unwrap_or_else(|e| panic!("{v}: {e}"));
    for (i, line) in lines[..rounds].iter().enumerate() {
        assert!(line.starts_with(&format!("round {i}: ")), "{line}");
        let f = fields(line);
        let real = secs(f["realtime"]);
        assert!(
            (now - real).abs() < 120.0,
            "realtime {real} is now ({now}): {line}"
        );
        // Read one after the other, each at its own rendezvous: a loaded machine (the whole
        // suite at once) can hold a variant for a while between them.
        assert!((secs(f["gettimeofday"]) - real).abs() < 30.0, "{line}");
        assert!((secs(f["time"]) - real).abs() <= 30.0, "{line}");
        assert!(secs(f["monotonic"]) > 0.0, "{line}");
        let (a, b) = (f["rdtsc"], f["rdtscp"]);
        assert!(
            a.parse::<u64>().unwrap() <= b.parse::<u64>().unwrap(),
            "{line}"
        );
        assert!(f["cpu"].parse::<u32>().is_ok(), "{line}");
    }
    assert_eq!(lines[rounds], "monotonic: ok", "{}", m.stdout);
    assert_eq!(lines[rounds + 1], "tsc: ok", "{}", m.stdout);
}

/// `vigil mvee: signals: D delivered, delay mean X us, p99 Y us` → (D, X, Y).
fn signal_stats(stderr: &str) -> (u64, f64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vigil mvee:") && l.contains("signals:"))
        .unwrap_or_else(|| panic!("no `vigil mvee: signals:` line in:\n{stderr}"));
    let after = |key: &str| {
        let at = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
            + key.len();
        line[at..]
            .trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
            .to_string()
    };
    let delivered = after("signals:")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let mean = after("mean")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let p99 = after("p99")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    (delivered, mean, p99)
}

#[test]
fn timer_signals_are_delivered_and_their_delay_reported() {
    let prog = program("mvee_timer");
    let n = native(&[prog.as_os_str()]);
    assert_eq!(n.code, 0, "{}", n.stderr);
    let checksum = n
        .stdout
        .lines()
        .find(|l| l.starts_with("checksum: "))
        .unwrap();
    for mode in ["syscalls", "pure"] {
        let m = mvee(&["--stats"], &[prog.as_os_str(), os(mode)]);
        assert_no_alarm(&m, &format!("mvee_timer {mode}"));
        let lines: Vec<&str> = m.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "one output:\n{}", m.stdout);
        let runs: u64 = lines[0]
            .strip_prefix("handler runs: ")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{}", m.stdout));
        assert!(runs > 0, "the handler ran under vigil mvee ({mode})");
        assert_eq!(lines[1], "pipe: ok");
        assert_eq!(lines[2], checksum, "the computation is the native one");
        let (delivered, mean, p99) = signal_stats(&m.stderr);
        eprintln!(
            "mvee_timer {mode}: {runs} handler runs, {delivered} signals delivered, delay mean {mean} us, p99 {p99} us ({:?} in all)",
            m.took
        );
        for l in m.stderr.lines().filter(|l| l.starts_with("vigil mvee:")) {
            eprintln!("  {l}");
        }
        assert!(
            delivered >= runs,
            "every handler run is a delivered signal: {delivered} < {runs}"
        );
        assert!(mean.is_finite() && p99.is_finite(), "{}", m.stderr);
        for what in ["lockstep", "leader-only", "rdtsc"] {
            assert!(
                m.stderr
                    .lines()
                    .any(|l| l.starts_with("vigil mvee:") && l.contains(what)),
                "--stats reports {what}:\n{}",
                m.stderr
            );
        }
    }
}

#[test]
fn killing_and_waiting_for_a_child_matches_native() {
    let m = same_as_native("mvee_killchild", &[], &[]);
    assert!(
        m.stdout.contains("child killed by signal 15"),
        "{}",
        m.stdout
    );
    assert!(!m.stdout.contains("NO"), "{}", m.stdout);
}

#[test]
fn tcp_echo_server_and_client_match_native() {
    let m = same_as_native("mvee_echo", &[], &[]);
    assert!(
        m.stdout.contains("client: echo multi-variant execution\n"),
        "{}",
        m.stdout
    );
    assert!(m.stdout.contains("server: echoed 34 bytes"), "{}", m.stdout);
}

#[test]
fn three_variants_agree_and_catch_a_leak() {
    same_as_native("mvee_fork_workers", &["-n", "3"], &[]);
    same_as_native("mvee_killchild", &["-n", "3"], &[]);
    let cmd = [os("sh"), os("-c"), os("seq 1 2000 | sort -rn | head -3")];
    let m = mvee(&["-n", "3"], &cmd);
    assert_no_alarm(&m, "sh -n 3");
    assert_eq!(m.stdout, "2000\n1999\n1998\n");
    let leak = program("mvee_leak");
    let m = mvee(&["-n", "3"], &[leak.as_os_str(), os("stack")]);
    assert_divergence(&m, "mvee_leak stack, 3 variants");
}

// ---------------------------------------------------------------------------------------------
// Divergences caught.

#[test]
fn leaked_addresses_are_divergences() {
    let leak = program("mvee_leak");
    for mode in ["stack", "func", "heap"] {
        // The premise: the address differs from process to process natively.
        let a = native(&[leak.as_os_str(), os(mode)]);
        let b = native(&[leak.as_os_str(), os(mode)]);
        assert_eq!((a.code, b.code), (0, 0), "{}{}", a.stderr, b.stderr);
        assert!(a.stdout.starts_with(&format!("{mode}: 0x")), "{}", a.stdout);
        assert_ne!(a.stdout, b.stdout, "{mode}: ASLR makes the address differ");
        let m = mvee(&[], &[leak.as_os_str(), os(mode)]);
        assert_divergence(&m, &format!("mvee_leak {mode}"));
        assert!(
            !m.stdout.contains("0x"),
            "{mode}: the leak never reaches stdout: {}",
            m.stdout
        );
    }
}

/// The offset of `getpid` in the libc this test runs with (from libc's load address), and
/// that libc's inode.
fn getpid_offset() -> (u64, String) {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"getpid".as_ptr()) } as u64;
    assert_ne!(addr, 0, "dlsym(getpid)");
    let (base, inode) = libc_base("self");
    assert!(
        addr > base,
        "getpid {addr:#x} lies in libc (loaded at {base:#x})"
    );
    (addr - base, inode)
}

/// Where libc.so.6 is loaded in process PID, and its inode: from /proc/PID/maps, the start of
/// its executable mapping minus that mapping's file offset (libc's segments have vaddr equal
/// to file offset). Only the executable mapping counts: the process may also have libc's file
/// mapped as data (this test's panic backtraces map it to read its symbols).
fn libc_base(pid: &str) -> (u64, String) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || !f[5].ends_with("/libc.so.6") || !f[1].contains('x') {
                return None;
            }
            let start = u64::from_str_radix(f[0].split('-').next()?, 16).ok()?;
            let offset = u64::from_str_radix(f[2], 16).ok()?;
            Some((start - offset, f[4].to_string()))
        })
        .unwrap_or_else(|| panic!("no executable libc.so.6 mapping in /proc/{pid}/maps:\n{maps}"))
}

/// Runs `cmd` (mvee_jump, directly or under vigil): waits for `pid N` and `ready`, computes
/// getpid's address in process N from its /proc/N/maps, writes it to the program's stdin and
/// lets it finish.
fn jump(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let _dog = Watchdog::new(child.id(), BOUND);
    let err = reader(child.stderr.take().unwrap());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    let mut seen = String::new();
    let mut next = |seen: &mut String| {
        line.clear();
        out.read_line(&mut line).unwrap();
        seen.push_str(&line);
        line.trim_end().to_string()
    };
    let first = next(&mut seen);
    let ready = next(&mut seen);
    let pid = match (first.strip_prefix("pid "), ready.as_str()) {
        (Some(pid), "ready") => pid.to_string(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mvee_jump did not get ready: {seen:?}\nstderr:\n{}",
                text(&err.recv_timeout(Duration::from_secs(5)).unwrap_or_default())
            )
        }
    };
    let (offset, inode) = getpid_offset();
    let (base, its_inode) = libc_base(&pid);
    assert_eq!(its_inode, inode, "the program maps the test's libc");
    writeln!(stdin, "{:x}", base + offset).unwrap();
    drop(stdin);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    let stderr = text(&err.recv_timeout(Duration::from_secs(5)).unwrap_or_default());
    Run {
        code: shell_code(status),
        stdout: seen,
        stderr,
        took: start.elapsed(),
    }
}

#[test]
fn a_jump_to_an_address_valid_in_the_leader_only_is_caught_and_backtracked() {
    let prog = program("mvee_jump");
    // Natively the crafted address is valid: getpid runs and returns.
    let n = jump(&mut Command::new(&prog));
    assert_eq!(n.code, 0, "{n:?}");
    assert!(n.stdout.ends_with("calling\nreturned\n"), "{}", n.stdout);

    require_ptrace();
    let dir = scratch_dir("mvee-jump");
    let log = dir.join("jump.vlog");
    let m = jump(
        vigil()
            .current_dir(&dir)
            .arg("mvee")
            .arg("-o")
            .arg(&log)
            .arg("--")
            .arg(&prog),
    );
    assert_divergence(&m, "mvee_jump");
    assert!(m.stdout.contains("calling\n"), "{}", m.stdout);
    assert!(
        !m.stdout.contains("returned"),
        "stopped before the hijacked call had an effect: {}",
        m.stdout
    );
    let (seq, d) = divergence_in(&log);
    assert_eq!(d.what.to_string(), "crash", "{d:?}");
    assert!(diverged(&d, 1), "variant 1 (not the leader) crashed: {d:?}");
    assert!(!diverged(&d, 0), "{d:?}");

    let show = bounded(vigil().arg("show").arg(&log), BOUND);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.contains("divergence"), "{}", show.stdout);
    let back = bounded(
        vigil()
            .arg("backtrack")
            .arg(&log)
            .args(["--from", &format!("event:{seq}")]),
        BOUND,
    );
    assert_eq!(
        back.code, 0,
        "backtrack from the divergence: {}",
        back.stderr
    );
    assert!(back.stdout.contains("mvee_jump"), "{}", back.stdout);
}

// ---------------------------------------------------------------------------------------------
// Bad input.

#[test]
fn bad_variant_counts_are_refused_in_one_line() {
    for n in ["1", "0", "17", "1000", "x"] {
        let r = mvee(&["-n", n], &[os("true")]);
        assert_eq!(r.code, 2, "-n {n}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "-n {n}: one line: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(n),
            "-n {n}: the message names it: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    // The bounds themselves are accepted.
    for n in ["2", "16"] {
        let r = mvee(&["-n", n], &[os("sh"), os("-c"), os("echo ok")]);
        assert_no_alarm(&r, &format!("-n {n}"));
        assert_eq!(r.stdout, "ok\n", "-n {n}");
    }
}

#[test]
fn missing_and_unexecutable_commands_exit_127_and_126() {
    let dir = scratch_dir("mvee-missing");
    let r = mvee_in(&dir, &[], &[os("/nonexistent/vigil-no-such-command")]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("vigil-no-such-command"), "{}", r.stderr);
    let r = mvee_in(&dir, &[], &[os("vigil-no-such-command-in-path")]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    std::fs::write(dir.join("not-executable"), "#!/bin/sh\necho hi\n").unwrap();
    let r = mvee_in(&dir, &[], &[dir.join("not-executable").as_os_str()]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(r.stderr.contains("not-executable"), "{}", r.stderr);
}

#[test]
fn a_program_that_ptraces_is_refused_clearly() {
    // strace's own ptrace fails (EPERM): it says so and exits 1; vigil adds a note of its own.
    let r = mvee(&[], &[os("strace"), os("-f"), os("true")]);
    assert_eq!(r.code, 1, "strace fails to trace\n{}", r.stderr);
    assert!(!r.stderr.contains("divergence"), "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("vigil") && l.contains("ptrace")),
        "a note from vigil about ptrace:\n{}",
        r.stderr
    );
    assert!(r.took < Duration::from_secs(30), "{:?}", r.took);
    // gdb too: it cannot run its inferior, and nothing hangs.
    let r = mvee(
        &[],
        &[
            os("gdb"),
            os("-batch"),
            os("-nx"),
            os("-ex"),
            os("run"),
            os("--args"),
            os("true"),
        ],
    );
    assert!(!r.stderr.contains("divergence"), "{}", r.stderr);
    assert_ne!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("vigil") && l.contains("ptrace")),
        "a note from vigil about ptrace:\n{}",
        r.stderr
    );
}

#[test]
fn a_variant_crashing_alone_is_a_divergence() {
    let prog = program("mvee_straggler");
    // Natively (and in the leader) the program ends normally.
    let n = native(&[prog.as_os_str(), os("crash")]);
    assert_eq!(
        (n.code, n.stdout.as_str()),
        (0, "leader: done\n"),
        "{}",
        n.stderr
    );
    let dir = scratch_dir("mvee-crash");
    let m = mvee_in(
        &dir,
        &["-o", "crash.vlog"],
        &[prog.as_os_str(), os("crash")],
    );
    assert_divergence(&m, "mvee_straggler crash");
    // At once, not after the default 10 s rendezvous bound.
    assert!(m.took < Duration::from_secs(8), "not a hang: {:?}", m.took);
    let first = m.stderr.lines().next().unwrap_or_default();
    assert!(first.contains("crash"), "{}", m.stderr);
    assert!(!m.stdout.contains("leader: done"), "{}", m.stdout);
    let (_, d) = divergence_in(&dir.join("crash.vlog"));
    assert_eq!(d.what.to_string(), "crash", "{d:?}");
    assert!(diverged(&d, 1) && !diverged(&d, 0), "{d:?}");
}

#[test]
fn a_straggler_is_a_timeout_divergence_naming_it() {
    let prog = program("mvee_straggler");
    let dir = scratch_dir("mvee-straggler");
    let m = mvee_in(
        &dir,
        &["--timeout", "1s", "-o", "spin.vlog"],
        &[prog.as_os_str(), os("spin")],
    );
    assert_divergence(&m, "mvee_straggler spin");
    assert!(
        m.took < Duration::from_secs(8),
        "a 1 s rendezvous bound ends the run within a few seconds: {:?}",
        m.took
    );
    let first = m.stderr.lines().next().unwrap_or_default();
    assert!(first.contains("timeout"), "{}", m.stderr);
    assert!(
        m.stderr.contains("variant 1"),
        "names the straggler: {}",
        m.stderr
    );
    let (_, d) = divergence_in(&dir.join("spin.vlog"));
    assert_eq!(d.what.to_string(), "timeout", "{d:?}");
    assert!(diverged(&d, 1) && !diverged(&d, 0), "{d:?}");
}

/// (pid, parent pid, comm, state) of every process.
fn processes() -> Vec<(u32, u32, String, char)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(p) = stat(pid) {
            all.push(p);
        }
    }
    all
}

fn stat(pid: u32) -> Option<(u32, u32, String, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let mut rest = s[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, ppid, comm, state))
}

fn descendants(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm, _) in &all {
            if *ppid == p {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

#[test]
fn killing_vigil_leaves_no_variant_behind() {
    require_ptrace();
    let mut child = vigil()
        .args(["mvee", "--", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _dog = Watchdog::new(child.id(), BOUND);
    let start = Instant::now();
    let variants: Vec<u32> = loop {
        let sleeps: Vec<u32> = descendants(child.id())
            .into_iter()
            .filter(|(_, comm)| comm == "sleep")
            .map(|(pid, _)| pid)
            .collect();
        if sleeps.len() >= 2 {
            break sleeps;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
            let _ = child.wait();
            panic!("two `sleep` variants under vigil's pid never appeared: {sleeps:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL, to vigil alone
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        // Gone, or a zombie waiting for its new parent: neither running nor stopped.
        let left: Vec<_> = variants
            .iter()
            .filter_map(|&p| stat(p))
            .filter(|(_, _, _, state)| !matches!(state, 'Z' | 'X'))
            .collect();
        if left.is_empty() {
            break;
        }
        if killed.elapsed() > Duration::from_secs(2) {
            for (p, ..) in &left {
                let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
            }
            panic!("variants left behind 2 s after vigil was killed: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`both`] with `--stats`, printing exactly the same; returns the monitored run.
fn native_and_mvee_agree(prog: &str, args_: &[&str], file: Option<&str>) -> Run {
    let (n, m) = both(prog, &["--stats"], args_, file);
    assert_eq!(m.stdout, n.stdout, "{prog}: the same output as natively");
    m
}

#[test]
fn epoll_events_carry_each_variants_own_pointers() {
    // The events' data are pointers into each variant's own memory: the leader's pointers in
    // another variant would make it read through a wrong address (a crash, a divergence).
    let m = native_and_mvee_agree("mvee_epoll", &[], None);
    assert!(m.stdout.contains("pipe readable: 1 bytes"), "{}", m.stdout);
    assert!(
        m.stdout.contains("socket readable: 2 bytes"),
        "{}",
        m.stdout
    );
}

#[test]
fn a_file_opened_for_writing_can_be_mapped() {
    // Only the leader opens it (the others hold /dev/null, which cannot be mapped): the
    // others map a copy of its bytes; the file is changed once.
    let m = native_and_mvee_agree("mvee_mapwrite", &["mapped.txt"], Some("mapped.txt"));
    assert!(
        m.stdout.contains("mapped: hello from the file"),
        "{}",
        m.stdout
    );
}

#[test]
fn an_fd_received_over_a_socket_is_the_same_number_everywhere() {
    native_and_mvee_agree("mvee_scm", &["scm.txt"], Some("scm.txt"));
}

#[test]
fn unique_names_and_own_proc_files_are_no_false_alarm() {
    // tac of a pipe makes a temporary file whose name gnulib seeds with a stack address;
    // grep reads its own /proc/self/maps (glibc's pthread_getattr_np): both differ between
    // variants by nature. Repeated: the layouts change every run.
    for _ in 0..4 {
        for script in ["seq 1 300 | tac | head -3", "ls / | grep -c ."] {
            let cmd = [os("sh"), os("-c"), os(script)];
            let n = native(&cmd);
            let m = mvee(&[], &cmd);
            assert_no_alarm(&m, script);
            assert_eq!(m.stdout, n.stdout, "{script}");
        }
    }
    // Printing the layout itself is what a leak is: caught.
    let m = mvee(&[], &[os("cat"), os("/proc/self/maps")]);
    assert_eq!(
        m.code, 4,
        "cat /proc/self/maps prints the layout: {}",
        m.stderr
    );
}

#[test]
fn the_log_has_the_leaders_events_and_rules_run_online() {
    let dir = scratch_dir("mvee-log-rules");
    let log = dir.join("run.vlog");
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "RULE diverged\nPATTERN { [divergence:d] }\nRETURN { d.what, d.call }\n",
    )
    .unwrap();
    let leak = program("mvee_leak");
    let m = mvee_in(
        &dir,
        &[
            "-o",
            log.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
        ],
        &[leak.as_os_str(), os("stack")],
    );
    assert_eq!(m.code, 4, "{}", m.stderr);
    // The divergence rule matched online (matches go to standard output).
    assert!(
        m.stdout.contains("args") && m.stdout.contains("write"),
        "the divergence rule's match: {}",
        m.stdout
    );
    // The log is a normal vigil log of the leader: its exec, its calls, then the divergence.
    let events = read_log(&log);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::ProcessExec(_))),
        "an exec event"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::SyscallExit(x)
            if x.call.base_name() == Some("openat"))),
        "the leader's calls, decoded"
    );
    let last = events.last().unwrap();
    assert!(
        matches!(&last.kind, EventKind::Divergence(d) if d.what == "args"),
        "the divergence ends the log: {:?}",
        last.kind
    );
    let show = vigil().arg("show").arg(&log).output().unwrap();
    assert!(text(&show.stdout).contains("divergence"));
    // The monitor's own decisions are actions by mvee (the C library's rseq, refused).
    assert!(
        events.iter().any(|e| matches!(&e.kind, EventKind::Action(a)
            if a.by == "mvee" && a.action == "refuse" && a.detail.to_string().contains("rseq"))),
        "the refused rseq is an action"
    );
    // A deny rule refuses the call in every variant: the program sees EACCES and says so.
    let deny = dir.join("deny.rules");
    std::fs::write(
        &deny,
        "RULE no_passwd\nPATTERN { [openat:o] }\nWHERE { o.path == \"/etc/passwd\" }\nDO { deny(EACCES) }\n",
    )
    .unwrap();
    let m = mvee_in(
        &dir,
        &["--rules", deny.to_str().unwrap()],
        &[
            os("sh"),
            os("-c"),
            os("cat /etc/passwd >/dev/null || echo refused"),
        ],
    );
    assert_no_alarm(&m, "deny");
    assert!(m.stdout.contains("refused"), "{}\n{}", m.stdout, m.stderr);
}

#[test]
fn a_c_project_builds_with_make_and_gcc() {
    // gcc's cc1 hashes addresses in its garbage-collected heap and grows it (brk, mmap) at
    // moments that differ between variants: calls on a variant's own memory may disagree
    // without a divergence; everything else (the objects written, the program run) agrees.
    let dir = scratch_dir("mvee-make");
    vigil_testkit::c_project(&dir, 8).unwrap();
    let m = mvee_in(&dir, &["--stats"], &[os("make"), os("-s"), os("-B")]);
    assert_no_alarm(&m, "make");
    assert_eq!(m.code, 0, "{}", m.stderr);
    let built = native_in(&dir, &[dir.join("prog").as_os_str()]);
    assert_eq!(built.code, 0);
    // The same program built natively prints the same.
    let native_dir = scratch_dir("mvee-make-native");
    vigil_testkit::c_project(&native_dir, 8).unwrap();
    let n = native_in(&native_dir, &[os("make"), os("-s"), os("-B")]);
    assert_eq!(n.code, 0, "{}", n.stderr);
    let native_built = native_in(&native_dir, &[native_dir.join("prog").as_os_str()]);
    assert_eq!(built.stdout, native_built.stdout);
}

#[test]
fn a_program_reading_the_terminal_gets_it() {
    // Under a terminal (script(1) gives the run one), the variants' group takes the
    // foreground: the leader reads the terminal instead of being stopped (SIGTTIN) or failing
    // with EIO, which made the variants disagree.
    require_ptrace();
    let vigil_bin = env!("CARGO_BIN_EXE_vigil");
    let mut child = Command::new("script")
        .args(["-qec", &format!("{vigil_bin} mvee -- head -1"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("script(1) from util-linux runs a command under a terminal");
    let pgid = child.id();
    let _dog = Watchdog::new(pgid, BOUND);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"typed line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(!stdout.contains("divergence"), "{stdout}");
    // The terminal echoes the line, and head prints it once more.
    assert_eq!(stdout.matches("typed line").count(), 2, "{stdout}");
}

#[test]
fn relaxed_lockstep_agrees_and_catches_the_same() {
    // --relaxed: calls that read only a variant's own state run without waiting; everything
    // with an effect outside still waits until every earlier call is compared.
    for script in [
        "seq 1 2000 | sort -r | head -5",
        "ls / | grep -c .",
        "for i in 1 2 3; do cat /etc/hostname > /dev/null; echo $i; done | tac",
    ] {
        let cmd = [os("sh"), os("-c"), os(script)];
        let n = native(&cmd);
        let m = mvee(&["--relaxed", "--stats"], &cmd);
        assert_no_alarm(&m, script);
        assert_eq!(m.stdout, n.stdout, "{script}");
        assert!(
            m.stderr.contains("without a rendezvous (--relaxed)"),
            "{}",
            m.stderr
        );
    }
    let workers = program("mvee_fork_workers");
    let m = mvee(&["--relaxed"], &[workers.as_os_str()]);
    assert_no_alarm(&m, "workers");
    let timer = program("mvee_timer");
    let m = mvee(&["--relaxed", "--stats"], &[timer.as_os_str()]);
    assert_no_alarm(&m, "timer");
    // A leak is still caught, and so is an innocuous call only some variants make: at the
    // write that follows it, before anything reaches the outside.
    let leak = program("mvee_leak");
    let m = mvee(&["--relaxed"], &[leak.as_os_str(), os("stack")]);
    assert_eq!(m.code, 4, "{}", m.stderr);
    let extra = program("mvee_extra");
    for opts in [&["--relaxed"][..], &[][..]] {
        let m = mvee(opts, &[extra.as_os_str()]);
        assert_eq!(m.code, 4, "{opts:?}: {}", m.stderr);
        assert!(
            m.stderr.starts_with("vigil: divergence: call"),
            "{opts:?}: {}",
            m.stderr
        );
        assert!(
            !m.stdout.contains("done"),
            "{opts:?}: nothing written: {}",
            m.stdout
        );
    }
    // Natively (and when every variant makes the extra call) it is no divergence.
    let m = mvee(&["--relaxed"], &[extra.as_os_str(), os("always")]);
    assert_no_alarm(&m, "extra always");
    assert_eq!(m.stdout, "done\n");
}

#[test]
fn a_signal_interrupting_a_leader_only_read_is_no_false_alarm() {
    // The leader's read of a pipe is interrupted by a handled signal: it goes back into the
    // read (the kernel makes it again) and the signal reaches every variant at the next
    // common point. Before, the leader was held waiting for the others, stopped at their entry
    // stops where no signal reaches them: a `signal` divergence after the bound.
    for _ in 0..3 {
        let m = native_and_mvee_agree("mvee_sigread", &[], None);
        assert!(
            m.stdout.contains("read 1 byte 'x', child 0"),
            "{}",
            m.stdout
        );
        assert!(m.stdout.contains("handled 1"), "{}", m.stdout);
    }
}

#[test]
fn a_variant_that_never_gets_a_signal_is_reported_non_compliant() {
    // The leader alone gets a handled SIGUSR1 from outside: the other variant waits for it in
    // the monitor's loop, which ends after --signal-wait with the call that says so.
    require_ptrace();
    let prog = program("mvee_usr1");
    let mut child = vigil()
        .args(["mvee", "--signal-wait", "300ms", "--"])
        .arg(&prog)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _dog = Watchdog::new(child.id(), BOUND);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: i32 = line
        .trim()
        .strip_prefix("pid ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the program's pid: {line:?}"));
    kill(Pid::from_raw(pid), Signal::SIGUSR1).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(shell_code(status), 4, "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("vigil: divergence: signal") && first.contains("variant 1"),
        "{err}"
    );
    assert!(first.contains("SIGUSR1"), "{err}");
}
