//! The multi-variant execution benchmark (issue 12, `vigil mvee`, 2 variants on this 2-core
//! machine), in one run, the configurations of a workload interleaved run by run (round robin,
//! the order rotated each run: the machine is noisy):
//! - cpu: `xz -9 -c` of 6 MiB of text and a pure compute loop (programs/compute.c), natively,
//!   as two native copies at once (the CPU and memory contention two variants have on two
//!   cores: what the machine costs, not the monitor) and under `vigil mvee`; the target
//!   is ≤1.2x native;
//! - syscall: the recording benchmark's workloads B (find), B2 (tar) and C (500 short
//!   processes), natively, under `vigil record` with the strace set and under `vigil mvee`;
//!   µs per lockstep call = (mvee − native) / the lockstep calls `--stats` counted;
//! - signal: programs/bench_timer.c (a 1 ms SIGALRM on a CPU-bound loop, a cheap syscall every
//!   ~100 µs) under `vigil mvee --stats`: signals delivered, delay mean and p99 per run, and
//!   the median of the means (the source documents: under 0.5 ms on average).
//!
//! A workload that diverges or fails under a configuration is said at once (which, how, the
//! first lines of its standard error), has no figure for that configuration, is listed again
//! at the end and in the JSON, and the others go on: nothing is hidden, no figure made up.

use crate::record::{self, STRACE_SET};
use crate::stats::{flag_count, flag_value, median, time_copies};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// What `--only` may name.
const PARTS: &[&str] = &["xz", "compute", "B", "B2", "C", "timer"];
/// Runs per configuration when `--runs` does not say (the slow workloads included: a few
/// minutes in all).
const RUNS: usize = 5;
/// Bytes of text `xz -9` compresses (about 4 s natively here).
const XZ_BYTES: usize = 6 << 20;
/// The exit code of `vigil mvee` when the variants diverged.
const EXIT_DIVERGENCE: i32 = 4;
/// Lines of a failed run's standard error shown.
const STDERR_LINES: usize = 12;

/// What the benchmark was asked to do: `--only xz|compute|B|B2|C|timer`, `--runs N`.
pub struct Options {
    pub only: Option<String>,
    pub runs: Option<usize>,
}

impl Options {
    pub fn from_args(args: &[String]) -> Result<Options, String> {
        let only = flag_value(args, "--only")?;
        if let Some(o) = &only
            && !PARTS.contains(&o.as_str())
        {
            return Err(format!("--only {o}: expected one of {}", PARTS.join(", ")));
        }
        let runs = flag_count(args, "--runs")?.map(|n| n as usize);
        Ok(Options { only, runs })
    }

    fn wants(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == part)
    }
}

/// The counts `vigil mvee --stats` prints at the end.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct MveeStats {
    variants: u64,
    lockstep: u64,
    /// Mean µs from a call's first arrival to its rendezvous.
    rendezvous_us: f64,
    leader_only: u64,
    refused: u64,
    rdtsc: u64,
    signals: u64,
    delay_mean_us: f64,
    delay_p99_us: f64,
    at_once: u64,
}

/// The number just before `marker` in `line` ("(17.6 us from" → 17.6).
fn num_before(line: &str, marker: &str) -> Option<f64> {
    let at = line.find(marker)?;
    line[..at]
        .split_whitespace()
        .last()?
        .trim_start_matches('(')
        .parse()
        .ok()
}

/// The number just after `marker` in `line`.
fn num_after(line: &str, marker: &str) -> Option<f64> {
    let at = line.find(marker)? + marker.len();
    line[at..].split_whitespace().next()?.parse().ok()
}

/// Is this one of the two lines `--stats` prints?
fn is_stats_line(line: &str) -> bool {
    line.starts_with("vigil mvee: ")
        && (line.contains(" lockstep calls (") || line.starts_with("vigil mvee: signals: "))
}

/// The `--stats` lines of a run's standard error; None when either is missing or unreadable.
fn parse_stats(stderr: &str) -> Option<MveeStats> {
    let calls = stderr
        .lines()
        .find(|l| l.starts_with("vigil mvee: ") && l.contains(" lockstep calls ("))?;
    let sig = stderr
        .lines()
        .find(|l| l.starts_with("vigil mvee: signals: "))?;
    let int = |line: &str, marker: &str| num_before(line, marker).map(|x| x as u64);
    Some(MveeStats {
        variants: int(calls, " variants,")?,
        lockstep: int(calls, " lockstep calls")?,
        rendezvous_us: num_before(calls, " us from first arrival")?,
        leader_only: int(calls, " leader-only")?,
        refused: int(calls, " refused")?,
        rdtsc: int(calls, " rdtsc")?,
        signals: int(sig, " delivered,")?,
        delay_mean_us: num_after(sig, "delay mean ")?,
        delay_p99_us: num_after(sig, "p99 ")?,
        at_once: int(sig, " delivered at once")?,
    })
}

/// A run that failed: which workload, under what, on which run, how, and the start of its
/// standard error (the `--stats` lines left out: the divergence report comes after them).
#[derive(Debug, Clone)]
struct Failure {
    workload: String,
    config: String,
    run: usize,
    what: String,
    stderr: Vec<String>,
}

impl Failure {
    fn new(workload: &str, config: &str, run: usize, what: String, stderr: &str) -> Failure {
        Failure {
            workload: workload.into(),
            config: config.into(),
            run,
            what,
            stderr: stderr
                .lines()
                .filter(|l| !is_stats_line(l))
                .take(STDERR_LINES)
                .map(str::to_string)
                .collect(),
        }
    }

    fn headline(&self) -> String {
        format!(
            "{} under {} (run {}): {}",
            self.workload,
            self.config,
            if self.run == 0 {
                "warm-up".to_string()
            } else {
                self.run.to_string()
            },
            self.what
        )
    }

    fn print(&self) {
        println!("  !! FAILED: {}", self.headline());
        if self.stderr.is_empty() {
            println!("  !!   (nothing on standard error)");
        }
        for l in &self.stderr {
            println!("  !!   | {l}");
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"workload": self.workload, "config": self.config, "run": self.run,
            "what": self.what, "stderr_head": self.stderr})
    }
}

/// How a configuration runs the workload.
#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    Native,
    /// Two native copies at once.
    Pair,
    Record,
    Mvee,
}

struct Config {
    label: &'static str,
    how: How,
    cmd: Vec<String>,
}

/// A configuration's runs: their seconds and (under mvee) counts, or the failure that ended
/// them.
#[derive(Default)]
struct Measured {
    times: Vec<f64>,
    stats: Vec<MveeStats>,
    failure: Option<Failure>,
}

impl Measured {
    /// The median time; None after a failure (no figure from the runs that went through).
    fn median(&self) -> Option<f64> {
        (self.failure.is_none() && !self.times.is_empty()).then(|| median(self.times.clone()))
    }

    fn stat(&self, f: impl Fn(&MveeStats) -> f64) -> Option<f64> {
        (self.failure.is_none() && !self.stats.is_empty())
            .then(|| median(self.stats.iter().map(f).collect()))
    }
}

/// `vigil mvee --stats [--relaxed] -- CMD`.
fn mvee_cmd(vigil: &Path, cmd: &[String], relaxed: bool) -> Vec<String> {
    let mut v = vec![vigil.display().to_string(), "mvee".into(), "--stats".into()];
    if relaxed {
        v.push("--relaxed".into());
    }
    v.push("--".into());
    v.extend(cmd.iter().cloned());
    v
}

/// "exit 4: the variants diverged", "killed by signal 9"...
fn describe(status: &ExitStatus, how: How) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(EXIT_DIVERGENCE), _) if how == How::Mvee => {
            format!("exit {EXIT_DIVERGENCE}: the variants diverged")
        }
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => format!("{status}"),
    }
}

/// Runs a configuration once: its wall time and, under mvee, the counts; Err((how it failed,
/// its standard error)).
fn run_once(c: &Config, scratch: &Path) -> Result<(f64, Option<MveeStats>), (String, String)> {
    let copies = if c.how == How::Pair { 2 } else { 1 };
    let files: Vec<PathBuf> = (0..copies)
        .map(|i| scratch.join(format!("mvee-stderr-{i}.txt")))
        .collect();
    let (t, outs) =
        time_copies(&c.cmd, &files).map_err(|e| (format!("cannot run it: {e}"), String::new()))?;
    for (status, err) in &outs {
        if !status.success() {
            return Err((describe(status, c.how), err.clone()));
        }
    }
    let stats = match c.how {
        How::Mvee => {
            let err = outs.first().map_or("", |(_, e)| e.as_str());
            Some(parse_stats(err).ok_or_else(|| {
                (
                    "exit 0 but no `vigil mvee:` statistics lines on its standard error".into(),
                    err.to_string(),
                )
            })?)
        }
        _ => None,
    };
    Ok((t.as_secs_f64(), stats))
}

/// Runs the first configuration once (the page cache), then each configuration `runs` times,
/// round robin, starting one further each run. A configuration that fails is said at once and
/// run no more.
fn measure(
    workload: &str,
    configs: &[Config],
    runs: usize,
    scratch: &Path,
    failures: &mut Vec<Failure>,
) -> Vec<Measured> {
    let mut m: Vec<Measured> = configs.iter().map(|_| Measured::default()).collect();
    let n = configs.len();
    let mut fail = |m: &mut Measured, i: usize, run: usize, (what, err): (String, String)| {
        let f = Failure::new(workload, configs[i].label, run, what, &err);
        f.print();
        failures.push(f.clone());
        m.failure = Some(f);
    };
    if let Err(e) = run_once(&configs[0], scratch) {
        fail(&mut m[0], 0, 0, e);
    }
    for r in 0..runs {
        for k in 0..n {
            let i = (k + r) % n;
            if m[i].failure.is_some() {
                continue;
            }
            match run_once(&configs[i], scratch) {
                Ok((t, s)) => {
                    m[i].times.push(t);
                    m[i].stats.extend(s);
                }
                Err(e) => fail(&mut m[i], i, r + 1, e),
            }
        }
    }
    m
}

fn secs(x: Option<f64>) -> String {
    x.map_or("FAILED".into(), |v| format!("{v:.3}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn cpu(
    vigil: &Path,
    scratch: &Path,
    opts: &Options,
    failures: &mut Vec<Failure>,
) -> Vec<serde_json::Value> {
    let runs = opts.runs.unwrap_or(RUNS);
    let mut work: Vec<(&str, String, Vec<String>)> = Vec::new();
    if opts.wants("xz") {
        let input = record::doc_input(scratch, "mvee-xz-input.txt", XZ_BYTES, true);
        work.push((
            "xz",
            format!("xz -9 -c of {} MiB of text", XZ_BYTES >> 20),
            vec![
                "xz".into(),
                "-9".into(),
                "-c".into(),
                input.display().to_string(),
            ],
        ));
    }
    if opts.wants("compute") {
        work.push((
            "compute",
            "programs/compute.c: 400 M rounds of integer arithmetic, no syscall in the loop".into(),
            vec![vigil_testkit::program("compute").display().to_string()],
        ));
    }
    if work.is_empty() {
        return Vec::new();
    }
    println!(
        "\n== multi-variant execution, CPU-bound: native, two native copies at once (the \
         machine's share), vigil mvee with 2 variants; median of {runs} interleaved runs =="
    );
    let mut rows = Vec::new();
    for (name, what, cmd) in work {
        let configs = [
            Config {
                label: "native",
                how: How::Native,
                cmd: cmd.clone(),
            },
            Config {
                label: "2 native copies",
                how: How::Pair,
                cmd: cmd.clone(),
            },
            Config {
                label: "vigil mvee",
                how: How::Mvee,
                cmd: mvee_cmd(vigil, &cmd, false),
            },
            Config {
                label: "vigil mvee --relaxed",
                how: How::Mvee,
                cmd: mvee_cmd(vigil, &cmd, true),
            },
        ];
        println!("\n{name} — {what}");
        let m = measure(name, &configs, runs, scratch, failures);
        let (native, pair, mvee) = (m[0].median(), m[1].median(), m[2].median());
        let relaxed = m[3].median();
        println!(
            "  {:<8} {:>9} {:>11} {:>9} {:>12} {:>14} {:>13} {:>9}",
            "workload",
            "native s",
            "2 copies s",
            "mvee s",
            "mvee/native",
            "copies/native",
            "mvee/copies",
            "lockstep"
        );
        println!(
            "  {:<8} {:>9} {:>11} {:>9} {:>12} {:>14} {:>13} {:>9}",
            name,
            secs(native),
            secs(pair),
            secs(mvee),
            fmt_opt(ratio(mvee, native), 2),
            fmt_opt(ratio(pair, native), 2),
            fmt_opt(ratio(mvee, pair), 2),
            fmt_opt(m[2].stat(|s| s.lockstep as f64), 0)
        );
        if let Some(x) = ratio(mvee, native) {
            println!(
                "  target ≤ 1.2x native: {x:.2}x, {}; two native copies alone take {} of one \
                 (the machine), the monitor {} on top of them",
                if x <= 1.2 { "met" } else { "NOT met" },
                fmt_opt(ratio(pair, native), 2) + "x",
                fmt_opt(ratio(mvee, pair), 2) + "x"
            );
        }
        println!(
            "  --relaxed: {} s, {}x native, {}x two copies",
            secs(relaxed),
            fmt_opt(ratio(relaxed, native), 2),
            fmt_opt(ratio(relaxed, pair), 2)
        );
        rows.push(
            serde_json::json!({"workload": name, "what": what, "runs": runs,
            "native_s": native, "two_native_copies_s": pair, "mvee_s": mvee,
            "mvee_over_native": ratio(mvee, native), "copies_over_native": ratio(pair, native),
            "mvee_over_copies": ratio(mvee, pair),
            "relaxed_s": relaxed, "relaxed_over_native": ratio(relaxed, native),
            "relaxed_over_copies": ratio(relaxed, pair),
            "lockstep_calls": m[2].stat(|s| s.lockstep as f64),
            "failed": configs.iter().zip(&m).filter(|(_, x)| x.failure.is_some())
                .map(|(c, _)| c.label).collect::<Vec<_>>()}),
        );
    }
    rows
}

fn syscall(
    vigil: &Path,
    scratch: &Path,
    opts: &Options,
    failures: &mut Vec<Failure>,
) -> Vec<serde_json::Value> {
    let runs = opts.runs.unwrap_or(RUNS);
    let mut work: Vec<record::Workload> = record::workloads_abc(scratch)
        .into_iter()
        .filter(|w| w.name == "B" || w.name == "C")
        .collect();
    work.insert(1, record::workload_b2(scratch));
    work.retain(|w| opts.wants(w.name));
    if work.is_empty() {
        return Vec::new();
    }
    println!(
        "\n== multi-variant execution, syscall-heavy: native, vigil record (strace set), vigil \
         mvee with 2 variants; median of {runs} interleaved runs =="
    );
    let mut rows = Vec::new();
    for w in work {
        let log = scratch.join(format!("mvee-record-{}.vlog", w.name));
        let configs = [
            Config {
                label: "native",
                how: How::Native,
                cmd: w.cmd.clone(),
            },
            Config {
                label: "vigil record",
                how: How::Record,
                cmd: record::vigil_command(vigil, &log, STRACE_SET, &w.cmd),
            },
            Config {
                label: "vigil mvee",
                how: How::Mvee,
                cmd: mvee_cmd(vigil, &w.cmd, false),
            },
            Config {
                label: "vigil mvee --relaxed",
                how: How::Mvee,
                cmd: mvee_cmd(vigil, &w.cmd, true),
            },
        ];
        println!("\n{} — {}", w.name, w.what);
        let m = measure(w.name, &configs, runs, scratch, failures);
        let (native, rec, mvee) = (m[0].median(), m[1].median(), m[2].median());
        let relaxed = m[3].median();
        let lockstep = m[2].stat(|s| s.lockstep as f64);
        let rendezvous = m[2].stat(|s| s.rendezvous_us);
        let per_call = match (mvee, native, lockstep) {
            (Some(a), Some(b), Some(n)) if n > 0.0 => Some((a - b) * 1e6 / n),
            _ => None,
        };
        println!(
            "  {:<4} {:>9} {:>9} {:>9} {:>12} {:>12} {:>14} {:>9} {:>11} {:>13}",
            "",
            "native s",
            "record s",
            "mvee s",
            "mvee/native",
            "mvee/record",
            "record/native",
            "lockstep",
            "µs/lockstep",
            "rendezvous µs"
        );
        println!(
            "  {:<4} {:>9} {:>9} {:>9} {:>12} {:>12} {:>14} {:>9} {:>11} {:>13}",
            w.name,
            secs(native),
            secs(rec),
            secs(mvee),
            fmt_opt(ratio(mvee, native), 2),
            fmt_opt(ratio(mvee, rec), 2),
            fmt_opt(ratio(rec, native), 2),
            fmt_opt(lockstep, 0),
            fmt_opt(per_call, 1),
            fmt_opt(rendezvous, 1)
        );
        println!(
            "  --relaxed: {} s, {}x native, {}x record",
            secs(relaxed),
            fmt_opt(ratio(relaxed, native), 2),
            fmt_opt(ratio(relaxed, rec), 2)
        );
        rows.push(
            serde_json::json!({"workload": w.name, "what": w.what, "runs": runs,
            "native_s": native, "record_s": rec, "mvee_s": mvee,
            "mvee_over_native": ratio(mvee, native), "mvee_over_record": ratio(mvee, rec),
            "record_over_native": ratio(rec, native), "lockstep_calls": lockstep,
            "leader_only_calls": m[2].stat(|s| s.leader_only as f64),
            "us_per_lockstep_call": per_call, "rendezvous_mean_us": rendezvous,
            "relaxed_s": relaxed, "relaxed_over_native": ratio(relaxed, native),
            "relaxed_over_record": ratio(relaxed, rec),
            "failed": configs.iter().zip(&m).filter(|(_, x)| x.failure.is_some())
                .map(|(c, _)| c.label).collect::<Vec<_>>()}),
        );
    }
    println!(
        "  µs/lockstep = (median mvee − median native) / the lockstep calls --stats counted; \
         rendezvous µs: --stats' mean from a call's first arrival to its rendezvous"
    );
    rows
}

/// The number after "signals " in bench_timer's output.
fn handled(stdout: &str) -> Option<u64> {
    num_after(stdout, "signals ").map(|x| x as u64)
}

fn signals(vigil: &Path, opts: &Options, failures: &mut Vec<Failure>) -> Option<serde_json::Value> {
    if !opts.wants("timer") {
        return None;
    }
    let runs = opts.runs.unwrap_or(RUNS);
    let prog = vigil_testkit::program("bench_timer").display().to_string();
    let native_cmd = vec![prog];
    let mvee = mvee_cmd(vigil, &native_cmd, false);
    println!(
        "\n== signal delivery delay: programs/bench_timer.c (SIGALRM every 1 ms on a CPU-bound \
         loop, a getppid every ~100 µs of work), {runs} runs under vigil mvee --stats, each \
         after a native run =="
    );
    println!(
        "  {:>3} {:>9} {:>14} {:>9} {:>12} {:>10} {:>11} {:>10} {:>8}",
        "run",
        "native s",
        "native handled",
        "mvee s",
        "mvee handled",
        "delivered",
        "mean µs",
        "p99 µs",
        "at once"
    );
    let mut rows = Vec::new();
    let mut means = Vec::new();
    let mut p99s = Vec::new();
    let run = |cmd: &[String]| {
        let start = Instant::now();
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .output()
            .map(|o| (start.elapsed().as_secs_f64(), o))
    };
    for r in 1..=runs {
        let native = match run(&native_cmd) {
            Ok((t, o)) if o.status.success() => {
                Some((t, handled(&String::from_utf8_lossy(&o.stdout))))
            }
            Ok((_, o)) => {
                let f = Failure::new(
                    "timer",
                    "native",
                    r,
                    describe(&o.status, How::Native),
                    &String::from_utf8_lossy(&o.stderr),
                );
                f.print();
                failures.push(f);
                None
            }
            Err(e) => {
                let f = Failure::new("timer", "native", r, format!("cannot run it: {e}"), "");
                f.print();
                failures.push(f);
                None
            }
        };
        let under = match run(&mvee) {
            Ok((t, o)) => {
                let err = String::from_utf8_lossy(&o.stderr).into_owned();
                match (o.status.success(), parse_stats(&err)) {
                    (true, Some(s)) => Some((t, handled(&String::from_utf8_lossy(&o.stdout)), s)),
                    (ok, _) => {
                        let what = if ok {
                            "exit 0 but no `vigil mvee:` statistics lines on its standard error"
                                .into()
                        } else {
                            describe(&o.status, How::Mvee)
                        };
                        let f = Failure::new("timer", "vigil mvee", r, what, &err);
                        f.print();
                        failures.push(f);
                        None
                    }
                }
            }
            Err(e) => {
                let f = Failure::new("timer", "vigil mvee", r, format!("cannot run it: {e}"), "");
                f.print();
                failures.push(f);
                None
            }
        };
        let count = |x: Option<u64>| x.map_or("-".into(), |n| n.to_string());
        println!(
            "  {:>3} {:>9} {:>14} {:>9} {:>12} {:>10} {:>11} {:>10} {:>8}",
            r,
            secs(native.map(|n| n.0)),
            count(native.and_then(|n| n.1)),
            secs(under.map(|u| u.0)),
            count(under.and_then(|u| u.1)),
            count(under.map(|u| u.2.signals)),
            fmt_opt(under.map(|u| u.2.delay_mean_us), 0),
            fmt_opt(under.map(|u| u.2.delay_p99_us), 0),
            count(under.map(|u| u.2.at_once)),
        );
        if let Some((_, _, s)) = under {
            means.push(s.delay_mean_us);
            p99s.push(s.delay_p99_us);
        }
        rows.push(
            serde_json::json!({"run": r, "native_s": native.map(|n| n.0),
            "native_handled": native.and_then(|n| n.1), "mvee_s": under.map(|u| u.0),
            "mvee_handled": under.and_then(|u| u.1), "delivered": under.map(|u| u.2.signals),
            "delay_mean_us": under.map(|u| u.2.delay_mean_us),
            "delay_p99_us": under.map(|u| u.2.delay_p99_us),
            "delivered_at_once": under.map(|u| u.2.at_once)}),
        );
    }
    let (mean, p99) = if means.is_empty() {
        (None, None)
    } else {
        (Some(median(means.clone())), Some(median(p99s)))
    };
    match mean {
        Some(m) => println!(
            "  median of the {} means: {m:.0} µs ({} the source documents' under 500 µs on \
             average); median p99: {} µs",
            means.len(),
            if m < 500.0 { "within" } else { "ABOVE" },
            fmt_opt(p99, 0)
        ),
        None => println!("  no run under vigil mvee went through: no delay figure"),
    }
    Some(serde_json::json!({"runs": rows, "median_of_means_us": mean,
        "median_p99_us": p99, "source_documents_mean_us": 500}))
}

/// Runs the parts asked for: the figures, and every failure (a workload that diverged or
/// failed under some configuration), already printed where it happened and listed again
/// here.
pub fn run(vigil: &Path, scratch: &Path, opts: &Options) -> (serde_json::Value, Vec<String>) {
    let mut failures = Vec::new();
    let cpu_rows = cpu(vigil, scratch, opts, &mut failures);
    let sys_rows = syscall(vigil, scratch, opts, &mut failures);
    let sig = signals(vigil, opts, &mut failures);
    if !failures.is_empty() {
        println!("\n== FAILURES: these runs diverged or failed (no figure for them) ==");
        for f in &failures {
            println!("  {}", f.headline());
            if let Some(first) = f.stderr.first() {
                println!("    {first}");
            }
        }
    }
    let json = serde_json::json!({"mvee": {"cpu": cpu_rows, "syscall": sys_rows,
        "signals": sig, "failures": failures.iter().map(Failure::json).collect::<Vec<_>>()}});
    (json, failures.iter().map(Failure::headline).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "some output of the program\n\
        vigil mvee: 2 variants, 1 variant sets; 231229 lockstep calls (17.6 us from first arrival to rendezvous, mean), 2008 leader-only, 1 refused, 8 rdtsc\n\
        vigil mvee: signals: 532 delivered, delay mean 170 us, p99 307 us; 3 delivered at once\n";

    #[test]
    fn stats_lines_parse() {
        let s = parse_stats(STATS).unwrap();
        assert_eq!(
            s,
            MveeStats {
                variants: 2,
                lockstep: 231229,
                rendezvous_us: 17.6,
                leader_only: 2008,
                refused: 1,
                rdtsc: 8,
                signals: 532,
                delay_mean_us: 170.0,
                delay_p99_us: 307.0,
                at_once: 3,
            }
        );
    }

    #[test]
    fn missing_or_garbled_stats_are_none() {
        // Only the first line (a run that stopped before the second).
        let first = STATS.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_stats(&first), None);
        assert_eq!(parse_stats("vigil: divergence: call at read\n"), None);
        let garbled = STATS.replace("231229 lockstep", "many lockstep");
        assert_eq!(parse_stats(&garbled), None);
    }

    #[test]
    fn a_failure_shows_the_report_not_the_stats() {
        let err = format!("{STATS}vigil: divergence: call at clock_gettime\n  variant 0: x\n");
        let f = Failure::new("B2", "vigil mvee", 1, "exit 4".into(), &err);
        assert_eq!(
            f.stderr,
            [
                "some output of the program",
                "vigil: divergence: call at clock_gettime",
                "  variant 0: x"
            ]
        );
        assert_eq!(f.headline(), "B2 under vigil mvee (run 1): exit 4");
    }

    #[test]
    fn options_parse_and_reject() {
        let a = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let o = Options::from_args(&a(&["--only", "B2", "--runs", "3"])).unwrap();
        assert_eq!((o.only.as_deref(), o.runs), (Some("B2"), Some(3)));
        assert!(o.wants("B2") && !o.wants("B") && !o.wants("timer"));
        assert!(Options::from_args(&a(&[])).unwrap().wants("timer"));
        assert!(Options::from_args(&a(&["--only", "ring"])).is_err());
        assert!(Options::from_args(&a(&["--runs", "0"])).is_err());
        assert!(Options::from_args(&a(&["--runs"])).is_err());
    }

    #[test]
    fn a_failed_configuration_has_no_median() {
        let mut m = Measured {
            times: vec![3.0, 1.0, 2.0],
            ..Measured::default()
        };
        assert_eq!(m.median(), Some(2.0));
        m.failure = Some(Failure::new("C", "vigil mvee", 3, "exit 4".into(), ""));
        assert_eq!(m.median(), None);
    }

    #[test]
    fn a_divergence_is_named() {
        use std::os::unix::process::ExitStatusExt;
        let st = ExitStatus::from_raw(EXIT_DIVERGENCE << 8);
        assert!(describe(&st, How::Mvee).contains("diverged"));
        assert_eq!(describe(&st, How::Native), "exit 4");
        assert_eq!(
            describe(&ExitStatus::from_raw(9), How::Mvee),
            "killed by signal 9"
        );
    }
}
