//! The recording benchmark: workloads A (copy a 64 KiB file 100 times with stdio), B (a
//! syscall-heavy tree walk) and C (500 short processes), each natively, under `vigil record`
//! and under `strace -f --seccomp-bpf`, with the same syscall set, in one run.

use crate::stats::{median, time_command};
use std::path::{Path, PathBuf};

/// The set a kernel-module interposer from the source documents logged on workload A
/// (openat/openat2 standing in for open; pread is pread64).
pub const INTERPOSER_SET: &str = "fork,vfork,execve,open,openat,openat2,creat,mount,access,readlink,mmap,ioperm,setuid,setreuid,setresuid,setfsuid,pread64,mremap,fdatasync,fsync,readv";
/// The set strace was measured with.
pub const STRACE_SET: &str = "openat,read,write,execve,clone,clone3,fork,vfork,mmap";

pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) cmd: Vec<String>,
    sets: Vec<&'static str>,
    pub(crate) runs: usize,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Workloads A, B and C: single-process or sequential, no shared mappings, cheap to set up
/// (the shared-memory benchmark's zero-cost check runs them too).
pub(crate) fn workloads_abc(scratch: &Path) -> Vec<Workload> {
    let src = scratch.join("src64k.bin");
    std::fs::write(&src, vec![0x5au8; 64 * 1024]).expect("write the 64 KiB source");
    let dst = scratch.join("copies");
    std::fs::create_dir_all(&dst).expect("create the copy directory");
    let copy = vigil_testkit::program("copy64k");
    vec![
        Workload {
            name: "A",
            what: "copy a 64 KiB file 100 times (fopen/fread/fwrite)",
            cmd: vec![
                copy.display().to_string(),
                src.display().to_string(),
                dst.display().to_string(),
                "100".into(),
            ],
            sets: vec![INTERPOSER_SET, STRACE_SET],
            runs: 21,
        },
        Workload {
            name: "B",
            what: "find /usr -type f",
            cmd: s(&["find", "/usr", "-type", "f"]),
            sets: vec![STRACE_SET],
            // Its ratio against strace moves by ±10% from run to run on this machine.
            runs: 15,
        },
        Workload {
            name: "C",
            what: "a shell loop starting 500 short processes",
            cmd: s(&["sh", "-c", "for i in $(seq 500); do /bin/true; done"]),
            sets: vec![STRACE_SET],
            runs: 5,
        },
    ]
}

/// Workload B2: a tar of two documentation trees into a file (the multi-variant benchmark
/// runs it too).
pub(crate) fn workload_b2(scratch: &Path) -> Workload {
    Workload {
        name: "B2",
        what: "tar of /usr/share/doc and /usr/share/man into a file",
        cmd: vec![
            "tar".into(),
            "-cf".into(),
            scratch.join("share.tar").display().to_string(),
            "/usr/share/doc".into(),
            "/usr/share/man".into(),
        ],
        sets: vec![STRACE_SET],
        runs: 5,
    }
}

fn workloads(scratch: &Path) -> Vec<Workload> {
    let project = c_project(scratch);
    let pylib = python_tree(scratch);
    let xz_in = xz_input(scratch);
    let tgz = scratch.join("doc.tgz");
    let mut all = workloads_abc(scratch);
    all.insert(2, workload_b2(scratch));
    all.extend(vec![
        // Real parallel workloads on the machine's cores (-j2, -T2): the tracer competes
        // with the traced processes for the CPUs.
        Workload {
            name: "P1",
            what: "make -B -j2 of a 25-file C project (gcc -O1)",
            cmd: vec![
                "make".into(),
                "-s".into(),
                "-B".into(),
                "-j2".into(),
                "-C".into(),
                project.display().to_string(),
            ],
            sets: vec![STRACE_SET],
            runs: 5,
        },
        Workload {
            name: "P2",
            what: "python3 -m compileall -f -j2 of a copy of six stdlib packages",
            cmd: vec![
                "python3".into(),
                "-m".into(),
                "compileall".into(),
                "-f".into(),
                "-q".into(),
                "-j2".into(),
                pylib.display().to_string(),
            ],
            sets: vec![STRACE_SET],
            runs: 5,
        },
        Workload {
            name: "P3",
            what: "tar czf of /usr/share/doc (tar and gzip in a pipe)",
            cmd: vec![
                "tar".into(),
                "-czf".into(),
                tgz.display().to_string(),
                "/usr/share/doc".into(),
            ],
            sets: vec![STRACE_SET],
            runs: 5,
        },
        Workload {
            name: "P4",
            what: "xz -T2 -3 of 48 MiB of text",
            cmd: vec![
                "sh".into(),
                "-c".into(),
                format!("xz -T2 -3 -c {} > /dev/null", xz_in.display()),
            ],
            sets: vec![STRACE_SET],
            runs: 5,
        },
    ]);
    all
}

/// Up to `max` regular files under `dir`, depth first, in name order.
fn walk_files(dir: &Path, max: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries.into_iter().rev() {
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
            if out.len() >= max {
                return out;
            }
        }
    }
    out
}

/// 48 MiB that compress like real data: the doc tree's text, repeated (written once).
fn xz_input(scratch: &Path) -> PathBuf {
    doc_input(scratch, "xz-input.bin", 48 << 20, false)
}

/// `bytes` bytes that compress like real data, in `scratch/name` (written once): the files of
/// /usr/share/doc in order (only those that are UTF-8 text when `text_only`: no compressed
/// changelogs), up to 12 MiB of them, repeated to fill.
pub(crate) fn doc_input(scratch: &Path, name: &str, bytes: usize, text_only: bool) -> PathBuf {
    let path = scratch.join(name);
    if path.exists() {
        return path;
    }
    let mut data = Vec::new();
    // Without the filter the first 4000 files hold enough; the text files are fewer and smaller.
    let max_files = if text_only { 100_000 } else { 4000 };
    for f in walk_files(Path::new("/usr/share/doc"), max_files) {
        if let Ok(b) = std::fs::read(&f) {
            if text_only && std::str::from_utf8(&b).is_err() {
                continue;
            }
            data.extend_from_slice(&b);
        }
        if data.len() > bytes.min(12 << 20) {
            break;
        }
    }
    if data.is_empty() {
        data = b"vigil benchmark input line\n".to_vec();
    }
    let mut all = Vec::with_capacity(bytes + data.len());
    while all.len() < bytes {
        all.extend_from_slice(&data);
    }
    all.truncate(bytes);
    std::fs::write(&path, all).expect("write the benchmark's input file");
    path
}

/// A C project of 25 files, each with some work for the compiler, and its Makefile.
fn c_project(scratch: &Path) -> PathBuf {
    let dir = scratch.join("cproject");
    vigil_testkit::c_project(&dir, 24).expect("write the C project");
    dir
}

/// A copy of six packages of Python's standard library, for compileall to work on.
fn python_tree(scratch: &Path) -> PathBuf {
    let dir = scratch.join("pylib");
    if dir.join("json").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create the Python tree");
    // The benchmark's own setup: a failure here is a broken machine, said plainly.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))",
        ])
        .output()
        .expect("run python3 (scripts/setup installs it)");
    let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !base.is_empty(),
        "python3 did not say where its standard library is"
    );
    for pkg in ["json", "email", "http", "xml", "asyncio", "unittest"] {
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(Path::new(&base).join(pkg))
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot copy {base}/{pkg} for workload P2");
    }
    dir
}

/// `vigil record -q -o LOG --syscalls SET -- CMD...`
pub(crate) fn vigil_command(vigil: &Path, log: &Path, set: &str, cmd: &[String]) -> Vec<String> {
    let mut v = s(&["record", "-q", "-o"]);
    v.insert(0, vigil.display().to_string());
    v.extend([
        log.display().to_string(),
        "--syscalls".into(),
        set.to_string(),
        "--".into(),
    ]);
    v.extend(cmd.iter().cloned());
    v
}

/// `strace -f -o OUT --seccomp-bpf -e trace=SET CMD...`
fn strace_command(strace: &Path, out: &Path, set: &str, cmd: &[String]) -> Vec<String> {
    let mut v = vec![
        strace.display().to_string(),
        "-f".into(),
        "-o".into(),
        out.display().to_string(),
        "--seccomp-bpf".into(),
        "-e".into(),
        format!("trace={set}"),
    ];
    v.extend(cmd.iter().cloned());
    v
}

fn set_name(set: &str) -> &'static str {
    if set == INTERPOSER_SET {
        "interposer set"
    } else {
        "strace set"
    }
}

/// Recorded syscalls and events in a vigil log.
fn log_counts(log: &Path) -> (u64, u64) {
    let reader = vigil_log::LogReader::open(log).expect("read the benchmark log");
    let (mut calls, mut events) = (0, 0);
    for ev in reader.flatten() {
        events += 1;
        if matches!(ev.kind, vigil_event::EventKind::SyscallExit(_)) {
            calls += 1;
        }
    }
    (calls, events)
}

pub fn run(vigil: &Path, scratch: &Path, only: Option<&str>) -> serde_json::Value {
    let strace = which("strace");
    let mut results = Vec::new();
    println!(
        "\n== recording overhead: median wall time of N runs, ratios against native and strace in the same run =="
    );
    for w in workloads(scratch) {
        if only.is_some_and(|o| o != w.name) {
            continue;
        }
        let log = scratch.join(format!("bench-{}.vlog", w.name));
        let strace_out = scratch.join(format!("bench-{}.strace", w.name));
        // configs: (label, set, command)
        let mut configs: Vec<(String, &str, Vec<String>)> =
            vec![("native".into(), "", w.cmd.clone())];
        for set in &w.sets {
            configs.push((
                format!("vigil ({})", set_name(set)),
                set,
                vigil_command(vigil, &log, set, &w.cmd),
            ));
            if let Some(st) = &strace {
                configs.push((
                    format!("strace ({})", set_name(set)),
                    set,
                    strace_command(st, Path::new("/dev/null"), set, &w.cmd),
                ));
            }
        }
        // Warm the page cache, then interleave the configurations run by run.
        time_command(&w.cmd);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for _ in 0..w.runs {
            for (i, (_, _, cmd)) in configs.iter().enumerate() {
                times[i].push(time_command(cmd).as_secs_f64());
            }
        }
        let med: Vec<f64> = times.into_iter().map(median).collect();
        let native = med[0];
        println!("\n{} — {} ({} runs)", w.name, w.what, w.runs);
        println!(
            "  {:<28} {:>10} {:>10} {:>11} {:>14}",
            "config", "median s", "x native", "x strace", "µs/traced call"
        );
        let mut rows = Vec::new();
        for (i, (label, set, _)) in configs.iter().enumerate() {
            let x_native = med[i] / native;
            // The strace figure for the same set, for vigil rows.
            let peer = configs
                .iter()
                .position(|(l, s2, _)| l.starts_with("strace") && s2 == set)
                .map(|j| med[j]);
            let mut row = serde_json::json!({"workload": w.name, "config": label, "median_s": med[i], "x_native": x_native});
            let mut per_call = String::new();
            if label.starts_with("vigil") {
                // Count the calls this set records, from a recording of this very workload.
                time_command(&vigil_command(vigil, &log, set, &w.cmd));
                let (calls, events) = log_counts(&log);
                let bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
                let us = (med[i] - native) * 1e6 / calls.max(1) as f64;
                per_call = format!("{us:.2}");
                row["traced_calls"] = calls.into();
                row["events"] = events.into();
                row["log_bytes"] = bytes.into();
                row["log_bytes_per_event"] = (bytes as f64 / events.max(1) as f64).into();
                row["us_per_traced_call"] = us.into();
                if let Some(p) = peer {
                    row["x_strace"] = (med[i] / p).into();
                }
                if let Some(st) = &strace {
                    // strace's text output for the same run and set, to compare sizes.
                    time_command(&strace_command(st, &strace_out, set, &w.cmd));
                    let sbytes = std::fs::metadata(&strace_out).map_or(0, |m| m.len());
                    row["strace_text_bytes"] = sbytes.into();
                    row["log_over_strace_bytes"] = (bytes as f64 / sbytes.max(1) as f64).into();
                }
            }
            let xs = peer
                .filter(|_| label.starts_with("vigil"))
                .map_or(String::from("-"), |p| format!("{:.2}", med[i] / p));
            println!(
                "  {:<28} {:>10.4} {:>10.2} {:>11} {:>14}",
                label, med[i], x_native, xs, per_call
            );
            rows.push(row);
        }
        for r in rows.iter().filter(|r| r.get("log_bytes").is_some()) {
            println!(
                "  log: {} — {} events, {:.1} bytes/event, {} bytes vs strace text {} bytes ({:.3} of strace)",
                r["config"].as_str().unwrap_or(""),
                r["events"],
                r["log_bytes_per_event"].as_f64().unwrap_or(0.0),
                r["log_bytes"],
                r["strace_text_bytes"],
                r["log_over_strace_bytes"].as_f64().unwrap_or(0.0)
            );
        }
        results.extend(rows);
    }
    if strace.is_none() {
        println!(
            "\nWARNING: strace is not installed (scripts/setup installs it): no peer figures."
        );
    }
    serde_json::json!({ "record": results })
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}
