//! The system-wide (eBPF) benchmark: workloads A, B, B2 and C natively, under `vigil record
//! --system` filtered to the workload's cgroup with the strace set, under the ptrace backend
//! (`vigil record` with the same set), and under `bpftrace` counting the same syscalls per pid
//! in the same cgroup (the least any eBPF tool pays), interleaved run by run. Then a syscall
//! storm: the rate vigil keeps up with without loss, and the ring size at which loss starts;
//! and vigil's own CPU time per million records.
//!
//! Every configuration runs the workload through the same wrapper, which moves itself into a
//! fresh cgroup v2 directory and execs the workload, so native runs pay it too. A system-wide
//! recorder is started before each measured run and stopped after it (its start-up, loading
//! the programs and reading /proc, is not the workload's cost), and is not running during the
//! other configurations' runs.

use crate::record::{STRACE_SET, vigil_command, which, workload_b2, workloads_abc};
use crate::stats::median;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cgroup the workloads run in.
fn cgroup_dir() -> Option<PathBuf> {
    let m = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let root = m.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })?;
    let d = root.join("vigil-bench");
    std::fs::create_dir_all(&d).ok()?;
    Some(d)
}

/// `sh -c 'echo $$ > CG/cgroup.procs && exec "$@"' sh CMD...`
fn in_cgroup(cg: &Path, cmd: &[String]) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".into(),
        format!("echo $$ > {}/cgroup.procs && exec \"$@\"", cg.display()),
        "sh".into(),
    ];
    v.extend(cmd.iter().cloned());
    v
}

fn time(cmd: &[String]) -> Duration {
    let t = Instant::now();
    let st = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("vigil-bench: system: `{}` failed", cmd.join(" "));
    }
    t.elapsed()
}

/// A background recorder (vigil --system or bpftrace), started and waited for until it says
/// it is attached.
struct Recorder {
    child: Child,
    /// The last line of its stderr (vigil's summary), read when it ends.
    err: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Recorder {
    fn start(cmd: &[String], ready: &str, on_stdout: bool) -> Option<Recorder> {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(if on_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let ready = ready.to_string();
        let err = if on_stdout {
            let out = child.stdout.take()?;
            let e = child.stderr.take()?;
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if l.contains(&ready) {
                        let _ = tx.send(());
                    }
                }
            });
            std::thread::spawn(move || BufReader::new(e).lines().map_while(Result::ok).collect())
        } else {
            let e = child.stderr.take()?;
            std::thread::spawn(move || {
                let mut lines = Vec::new();
                for l in BufReader::new(e).lines().map_while(Result::ok) {
                    if l.contains(&ready) {
                        let _ = tx.send(());
                    }
                    lines.push(l);
                }
                lines
            })
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("vigil-bench: system: `{}` did not start", cmd.join(" "));
            return None;
        }
        Some(Recorder {
            child,
            err: Some(err),
        })
    }

    /// Stops it (SIGINT, as Ctrl-C; again if it has not ended within 3 s, then SIGKILL
    /// after 10 s: a bpftrace that is still attaching can miss the first) and returns what
    /// it printed on stderr.
    fn stop(mut self) -> Vec<String> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let start = Instant::now();
        let mut sent = 0;
        loop {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            let waited = start.elapsed();
            if waited >= Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                eprintln!("vigil-bench: system: a recorder did not stop at SIGINT: killed");
                break;
            }
            if sent == 0 || (sent == 1 && waited >= Duration::from_secs(3)) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.err
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

fn system_cmd(vigil: &Path, log: &Path, cg: &Path, set: &str, buffer: &str) -> Vec<String> {
    vec![
        vigil.display().to_string(),
        "record".into(),
        "--system".into(),
        "-o".into(),
        log.display().to_string(),
        "--syscalls".into(),
        set.into(),
        "--cgroup".into(),
        cg.display().to_string(),
        "--buffer".into(),
        buffer.into(),
    ]
}

/// bpftrace counting the set's syscalls per pid in the cgroup.
fn bpftrace_cmd(bpftrace: &Path, cg: &Path, set: &str) -> Vec<String> {
    let ids: Vec<String> = set
        .split(',')
        .filter_map(|n| n.parse::<syscalls::Sysno>().ok())
        .map(|s| format!("args->id == {}", s.id()))
        .collect();
    let prog = format!(
        "tracepoint:raw_syscalls:sys_enter /cgroup == cgroupid(\"{}\") && ({})/ {{ @[pid, args->id] = count(); }}",
        cg.display(),
        ids.join(" || ")
    );
    vec![bpftrace.display().to_string(), "-e".into(), prog]
}

/// The summary line's numbers: records, lost, CPU seconds.
fn parse_summary(lines: &[String]) -> (u64, u64, f64) {
    let Some(l) = lines
        .iter()
        .rev()
        .find(|l| l.contains("records from the kernel"))
    else {
        return (0, 0, 0.0);
    };
    let num_before = |key: &str| -> Option<f64> {
        let i = l.find(key)?;
        l[..i].split_whitespace().last()?.parse().ok()
    };
    let records = num_before(" records from the kernel").unwrap_or(0.0) as u64;
    let lost = num_before(" LOST").unwrap_or(0.0) as u64;
    let cpu = l
        .find("vigil used ")
        .and_then(|i| l[i + 11..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (records, lost, cpu)
}

pub fn run(vigil: &Path, scratch: &Path, only: Option<&str>) -> serde_json::Value {
    let Some(cg) = cgroup_dir() else {
        eprintln!("vigil-bench: system: no cgroup v2 hierarchy to run the workloads in");
        return serde_json::json!({ "system": "no cgroup v2" });
    };
    let bpftrace = which("bpftrace");
    let mut results = Vec::new();
    println!(
        "\n== system-wide recording (eBPF): median wall time, ratios against native, the ptrace backend and bpftrace in the same run =="
    );
    let mut work = workloads_abc(scratch);
    work.insert(2, workload_b2(scratch));
    let log = scratch.join("bench-system.vlog");
    let plog = scratch.join("bench-system-ptrace.vlog");
    for w in work {
        if only.is_some_and(|o| o != w.name) {
            continue;
        }
        let cmd = in_cgroup(&cg, &w.cmd);
        // This machine moves a median by 10-20% from run to run: at least 7 runs.
        let runs = w.runs.max(7);
        // Warm the page cache.
        time(&cmd);
        let labels = ["native", "vigil --system", "vigil (ptrace)", "bpftrace"];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); 4];
        let mut cpu = Vec::new();
        let mut records = Vec::new();
        let mut lost = 0u64;
        for _ in 0..runs {
            times[0].push(time(&cmd).as_secs_f64());
            if let Some(r) = Recorder::start(
                &system_cmd(vigil, &log, &cg, STRACE_SET, "64m"),
                "vigil: recording the machine",
                false,
            ) {
                times[1].push(time(&cmd).as_secs_f64());
                let (rec, l, c) = parse_summary(&r.stop());
                records.push(rec as f64);
                cpu.push(c);
                lost += l;
            }
            times[2].push(time(&vigil_command(vigil, &plog, STRACE_SET, &cmd)).as_secs_f64());
            if let Some(bt) = &bpftrace
                && let Some(r) =
                    Recorder::start(&bpftrace_cmd(bt, &cg, STRACE_SET), "Attaching", true)
            {
                times[3].push(time(&cmd).as_secs_f64());
                r.stop();
            }
        }
        let med: Vec<f64> = times
            .into_iter()
            .map(|t| if t.is_empty() { f64::NAN } else { median(t) })
            .collect();
        println!("\n{} — {} ({} runs, strace set)", w.name, w.what, runs);
        println!(
            "  {:<18} {:>10} {:>10} {:>10} {:>11}",
            "config", "median s", "x native", "x ptrace", "x bpftrace"
        );
        for (i, l) in labels.iter().enumerate() {
            println!(
                "  {:<18} {:>10.4} {:>10.3} {:>10.3} {:>11.3}",
                l,
                med[i],
                med[i] / med[0],
                med[i] / med[2],
                med[i] / med[3]
            );
        }
        let rec_med = if records.is_empty() {
            0.0
        } else {
            median(records.clone())
        };
        let cpu_med = if cpu.is_empty() { 0.0 } else { median(cpu) };
        println!(
            "  vigil --system: {:.0} records per run, {} lost in all runs, vigil's CPU {:.3} s per run ({:.2} s per million records)",
            rec_med,
            lost,
            cpu_med,
            cpu_med * 1e6 / rec_med.max(1.0)
        );
        results.push(serde_json::json!({
            "workload": w.name, "what": w.what, "runs": runs,
            "native_s": med[0], "system_s": med[1], "ptrace_s": med[2], "bpftrace_s": med[3],
            "system_x_native": med[1] / med[0], "ptrace_x_native": med[2] / med[0],
            "bpftrace_x_native": med[3] / med[0], "system_x_bpftrace": med[1] / med[3],
            "records_per_run": rec_med, "lost": lost, "vigil_cpu_s": cpu_med,
            "cpu_s_per_million_records": cpu_med * 1e6 / rec_med.max(1.0),
        }));
    }
    let (storm, rate) = if only.is_none() || only == Some("storm") {
        (storm(vigil, &cg, &log), sustained(vigil, &cg, &log))
    } else {
        (serde_json::Value::Null, serde_json::Value::Null)
    };
    serde_json::json!({ "system": results, "system_storm": storm, "system_sustained": rate })
}

/// A storm of close(-1) calls at full speed on one core, recorded with the ring buffer at
/// several sizes: what was delivered, what was lost (the two add up to what the storm did),
/// and the rate.
fn storm(vigil: &Path, cg: &Path, log: &Path) -> serde_json::Value {
    let prog = vigil_testkit::program("ebpf_storm");
    let n: u64 = 500_000;
    println!(
        "\n== syscall storm: {n} close(-1) calls (2 records each) at full speed, ring buffer sizes =="
    );
    println!(
        "  {:<8} {:>12} {:>12} {:>12} {:>14} {:>12}",
        "--buffer", "records", "lost", "sum/2n", "calls/s", "vigil cpu s"
    );
    let mut rows = Vec::new();
    for buf in ["256k", "1m", "4m", "16m", "64m", "256m"] {
        let Some(r) = Recorder::start(
            &system_cmd(vigil, log, cg, "close", buf),
            "vigil: recording the machine",
            false,
        ) else {
            continue;
        };
        let cmd = in_cgroup(cg, &[prog.display().to_string(), n.to_string()]);
        let t = time(&cmd).as_secs_f64();
        let (records, lost, cpu) = parse_summary(&r.stop());
        // The storm's own exec and start-up make a few records of their own.
        let sum = (records + lost) as f64 / (2 * n) as f64;
        let rate = n as f64 / t;
        println!(
            "  {:<8} {:>12} {:>12} {:>12.4} {:>14.0} {:>12.3}",
            buf, records, lost, sum, rate, cpu
        );
        rows.push(
            serde_json::json!({"buffer": buf, "records": records, "lost": lost,
            "records_plus_lost_over_2n": sum, "calls_per_s": rate, "vigil_cpu_s": cpu}),
        );
    }
    serde_json::Value::Array(rows)
}

/// The sustained rate: the storm paced at fixed rates for 2 s each, vigil's reader and writer
/// pinned to one core (taskset) and the storm to the other, with a 4 MiB ring: the highest
/// rate with nothing lost.
fn sustained(vigil: &Path, cg: &Path, log: &Path) -> serde_json::Value {
    let prog = vigil_testkit::program("ebpf_storm");
    let Some(taskset) = which("taskset") else {
        println!("  (taskset not found: sustained rate not measured)");
        return serde_json::Value::Null;
    };
    println!(
        "\n== sustained rate: paced close(-1) storm for 2 s, vigil on one core (taskset -c 1), --buffer 4m =="
    );
    println!(
        "  {:>14} {:>14} {:>12} {:>12} {:>14}",
        "calls/s asked", "records/s", "records", "lost", "cpu s/M rec"
    );
    let mut rows = Vec::new();
    let mut best = 0.0f64;
    for rate in [
        50_000u64, 100_000, 200_000, 300_000, 400_000, 600_000, 800_000,
    ] {
        let mut cmd = vec![taskset.display().to_string(), "-c".into(), "1".into()];
        cmd.extend(system_cmd(vigil, log, cg, "close", "4m"));
        let Some(r) = Recorder::start(&cmd, "vigil: recording the machine", false) else {
            continue;
        };
        let n = rate * 2;
        let storm = in_cgroup(
            cg,
            &[
                taskset.display().to_string(),
                "-c".into(),
                "0".into(),
                prog.display().to_string(),
                n.to_string(),
                rate.to_string(),
            ],
        );
        let t = time(&storm).as_secs_f64();
        let (records, lost, cpu) = parse_summary(&r.stop());
        let per_s = 2.0 * n as f64 / t;
        if lost == 0 {
            best = best.max(per_s);
        }
        println!(
            "  {:>14} {:>14.0} {:>12} {:>12} {:>14.2}",
            rate,
            per_s,
            records,
            lost,
            cpu * 1e6 / records.max(1) as f64
        );
        rows.push(
            serde_json::json!({"calls_per_s": rate, "records_per_s": per_s,
            "records": records, "lost": lost, "vigil_cpu_s": cpu}),
        );
    }
    println!("  highest sustained rate without loss: {best:.0} records/s");
    serde_json::json!({"rows": rows, "best_records_per_s_without_loss": best})
}
