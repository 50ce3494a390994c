//! Reconstruction at scale: build the graph of a synthetic log and backtrack through it, at 1M
//! and 10M events; wall time and peak memory of `vigil backtrack`, per event.

use std::path::Path;
use std::time::Instant;
use vigil_log::{LogMeta, LogWriter};

/// Writes `n` synthetic events unless the file is already there.
fn synthetic_log(scratch: &Path, n: usize) -> std::path::PathBuf {
    let path = scratch.join(format!("graph-{n}.vlog"));
    let done = scratch.join(format!("graph-{n}.done"));
    if path.exists() && done.exists() {
        return path;
    }
    let meta = LogMeta {
        backend: "synthetic".into(),
        ..LogMeta::default()
    };
    let mut w = LogWriter::create(&path, &meta).expect("create the synthetic log");
    for ev in vigil_testkit::synthetic::Events::new(7).take(n) {
        w.append(&ev).expect("write the synthetic log");
    }
    w.finish().expect("finish the synthetic log");
    let _ = std::fs::write(&done, "");
    path
}

/// Runs a command, returning wall seconds and its peak resident memory in bytes.
///
/// The peak is measured by a small intermediate process (`vigil-bench peak-rss CMD...`, see
/// `peak_rss_main`): a child forked straight from this process, which by then holds the
/// synthetic logs' data, would report this process's peak, not its own (`ru_maxrss` survives
/// exec: the kernel keeps the larger of the old and new address spaces' high-water marks).
/// The intermediate is small when it forks, so the command's figure is its own.
fn run_measured(cmd: &mut std::process::Command) -> (f64, u64) {
    let me = std::env::current_exe().expect("the benchmark's own path");
    let start = Instant::now();
    let out = std::process::Command::new(me)
        .arg("peak-rss")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("spawn the command through the peak-rss intermediate");
    let secs = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?} failed: {err}",
        cmd.get_program()
    );
    let peak = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the intermediate reports the peak");
    (secs, peak)
}

/// `vigil-bench peak-rss CMD ARGS...`: runs CMD (output to /dev/null), exits with its status
/// and prints `peak-rss-bytes N` (its own ru_maxrss) on standard error.
// Reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn peak_rss_main(args: &[String]) -> ! {
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("usage: vigil-bench peak-rss CMD ARGS...");
        std::process::exit(2)
    };
    let child = match std::process::Command::new(prog)
        .args(rest)
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peak-rss: {prog}: {e}");
            std::process::exit(127)
        }
    };
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child; status and ru are valid out-pointers.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    eprintln!("peak-rss-bytes {}", ru.ru_maxrss as u64 * 1024);
    let ok = r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    std::process::exit(if ok { 0 } else { 1 })
}

pub fn run(vigil: &Path, scratch: &Path) -> serde_json::Value {
    println!(
        "\n== reconstruction: build the graph and backtrack over a synthetic log (median of 3) =="
    );
    println!(
        "  {:>10} {:>9} {:>12} {:>11} {:>14}",
        "events", "seconds", "events/s", "peak MiB", "bytes/event"
    );
    let mut rows = Vec::new();
    for n in [1_000_000usize, 10_000_000] {
        let log = synthetic_log(scratch, n);
        let mut times = Vec::new();
        let mut peak = 0;
        for _ in 0..3 {
            let (t, rss) = run_measured(
                std::process::Command::new(vigil)
                    .arg("backtrack")
                    .arg(&log)
                    .args([
                        "--from",
                        "file:/var/log/app/service1.log",
                        "--format",
                        "json",
                        "-o",
                        "/dev/null",
                    ]),
            );
            times.push(t);
            peak = peak.max(rss);
        }
        let t = crate::stats::median(times);
        let per_event = peak as f64 / n as f64;
        println!(
            "  {n:>10} {t:>9.2} {:>12.0} {:>11.0} {per_event:>14.1}",
            n as f64 / t,
            peak as f64 / (1 << 20) as f64
        );
        rows.push(serde_json::json!({"events": n, "seconds": t, "events_per_s": n as f64 / t, "peak_rss_bytes": peak, "bytes_per_event": per_event}));
    }
    println!(
        "  (targets at 10M: under 5 s and under 100 bytes of memory per event; peak RSS counts everything)"
    );
    serde_json::json!({ "graph": rows })
}
