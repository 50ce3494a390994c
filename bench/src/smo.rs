//! The shared-memory monitoring benchmark (issue 11, `vigil record --smo MODE`), in one run:
//! - ring: a producer and a consumer exchanging 10,000 64-byte messages through a shared 64 KiB
//!   ring (programs/smo_ring.c), natively and under `--smo off|object|page|minipage`,
//!   interleaved run by run: median time, shared-memory events, µs per monitored fault;
//! - cost: the source documents' cost model counted (programs/smo_cost.c): the shared-memory
//!   events of each phase, per mode;
//! - falsedep: false dependencies removed (programs/smo_falsedep.c): how many of K writers a
//!   backtrack from the reader's output blames at object, VMA and page granularity;
//! - zero: the recording benchmark's workloads A, B and C (no shared mappings) under
//!   `--smo page` against `--smo off`, interleaved: the cost of the feature when unused.
//!
//! A vigil that does not know `--smo` (or `backtrack --granularity`) makes the benchmark fail
//! with a message saying so: no figure is made up.

use crate::stats::{flag_count, flag_value, median, time_command};
use std::path::Path;
use std::process::{Command, Stdio};
use vigil_event::{EventKind, MemAccess, SmoVia, SyscallId};

/// The monitoring modes the ring is measured under (`off` is the baseline for the per-fault
/// cost).
const RING_MODES: &[&str] = &["off", "object", "page", "minipage"];
/// The modes the cost model is counted under.
const COST_MODES: &[&str] = &["off", "object", "vma", "page", "minipage"];
/// smo_cost's phases, in order, and what the cost model says for page monitoring.
const PHASES: &[(&str, &str)] = &[
    ("a", "1000 loads of a page: 1 read"),
    ("b", "1000 stores to a page: 1 write"),
    ("c", "1000 loads then 1000 stores: 1 read + 1 write"),
    ("d", "one read-modify-write: 1 read_write"),
    ("e", "a long run of loads: 1 read per slice"),
];
/// Millions of loads in smo_cost's phase (e): long enough to span several 10 ms slices.
const SPIN_MILLIONS: &str = "100";

/// What the benchmark was asked to do: `--only ring|cost|falsedep|zero`, `--runs N` (ring
/// and zero-cost runs per configuration), `--ring-n N` (messages).
pub struct Options {
    pub only: Option<String>,
    pub runs: Option<usize>,
    pub ring_n: u64,
}

impl Options {
    pub fn from_args(args: &[String]) -> Result<Options, String> {
        let only = flag_value(args, "--only")?;
        if let Some(o) = &only
            && !["fault", "ring", "cost", "falsedep", "zero"].contains(&o.as_str())
        {
            return Err(format!(
                "--only {o}: expected fault, ring, cost, falsedep or zero"
            ));
        }
        Ok(Options {
            only,
            runs: flag_count(args, "--runs")?.map(|n| n as usize),
            ring_n: flag_count(args, "--ring-n")?.unwrap_or(10_000),
        })
    }

    fn wants(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == section)
    }
}

/// A command's status and output.
struct Ran {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_capture(cmd: &[String]) -> Ran {
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd[0]));
    Ran {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// `vigil record -q --smo MODE [--syscalls SET] -o LOG -- CMD...`
fn record_cmd(
    vigil: &Path,
    mode: &str,
    syscalls: Option<&str>,
    log: &Path,
    cmd: &[String],
) -> Vec<String> {
    let mut v = vec![
        vigil.display().to_string(),
        "record".into(),
        "-q".into(),
        "--smo".into(),
        mode.into(),
    ];
    if let Some(set) = syscalls {
        v.extend(["--syscalls".into(), set.into()]);
    }
    v.extend(["-o".into(), log.display().to_string(), "--".into()]);
    v.extend(cmd.iter().cloned());
    v
}

/// Fails with a clear message when this vigil has no `--smo` (or lacks one of the modes).
fn probe(vigil: &Path, scratch: &Path) -> Result<(), String> {
    let log = scratch.join("smo-probe.vlog");
    for mode in ["off", "object", "vma", "page", "minipage", "minipage:64"] {
        let r = run_capture(&record_cmd(vigil, mode, None, &log, &strs(&["/bin/true"])));
        if !r.ok {
            let why = r.stderr.lines().next().unwrap_or("").trim().to_string();
            return Err(format!(
                "{} rejects `record --smo {mode}` (exit {}: {why}): this vigil has no \
                 shared-memory monitoring (issue 11's capture side); build one that has it \
                 (`cargo build --release` on a branch with it) and run again",
                vigil.display(),
                r.code.map_or("by signal".to_string(), |c| c.to_string())
            ));
        }
        let meta_mode = vigil_log::LogReader::open(&log)
            .map_err(|e| format!("cannot read the probe log {}: {e}", log.display()))?
            .meta()
            .smo
            .clone();
        let base = mode.split(':').next().unwrap_or(mode);
        if meta_mode
            .as_deref()
            .is_none_or(|m| m.split(':').next() != Some(base))
        {
            return Err(format!(
                "`record --smo {mode}` wrote a log whose header says smo = {meta_mode:?}: \
                 the recording does not say it monitored shared memory in that mode"
            ));
        }
    }
    Ok(())
}

/// The shared-memory events of a log, and what they say.
#[derive(Default, Clone, Copy)]
struct SmoCounts {
    events: u64,
    reads: u64,
    writes: u64,
    read_writes: u64,
    /// Events of a fault or a single step (the monitored faults); the rest are the kernel's
    /// accesses for a syscall's buffer.
    faults: u64,
    by_syscall: u64,
}

impl SmoCounts {
    fn add(&mut self, a: &vigil_event::SmoAccess) {
        self.events += 1;
        match a.access {
            MemAccess::Read => self.reads += 1,
            MemAccess::Write => self.writes += 1,
            MemAccess::ReadWrite => self.read_writes += 1,
        }
        match a.via {
            SmoVia::Fault | SmoVia::Step => self.faults += 1,
            SmoVia::Syscall(_) => self.by_syscall += 1,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"smo_events": self.events, "reads": self.reads, "writes": self.writes,
            "read_writes": self.read_writes, "faults": self.faults, "by_syscall": self.by_syscall})
    }

    /// "2 (1r 1w)"
    fn short(&self) -> String {
        let mut parts = Vec::new();
        for (n, l) in [
            (self.reads, "r"),
            (self.writes, "w"),
            (self.read_writes, "rw"),
        ] {
            if n > 0 {
                parts.push(format!("{n}{l}"));
            }
        }
        if self.by_syscall > 0 {
            parts.push(format!("{} by syscall", self.by_syscall));
        }
        if parts.is_empty() {
            "0".into()
        } else {
            format!("{} ({})", self.events, parts.join(" "))
        }
    }
}

fn read_events(log: &Path) -> Vec<vigil_event::Event> {
    let reader = vigil_log::LogReader::open(log)
        .unwrap_or_else(|e| panic!("cannot read the benchmark log {}: {e}", log.display()));
    reader
        .map(|r| r.unwrap_or_else(|e| panic!("benchmark log {}: {e}", log.display())))
        .collect()
}

/// Shared-memory counts, all events, recorded syscalls.
fn log_counts(log: &Path) -> (SmoCounts, u64, u64) {
    let mut c = SmoCounts::default();
    let (mut events, mut calls) = (0, 0);
    for ev in read_events(log) {
        events += 1;
        match &ev.kind {
            EventKind::SmoAccess(a) => c.add(a),
            EventKind::SyscallExit(_) => calls += 1,
            _ => {}
        }
    }
    (c, events, calls)
}

/// Runs `warm` once, then each of `configs` `runs` times, interleaved run by run (this
/// machine's noise hits them alike): the median seconds of each.
fn interleaved_medians<'a>(
    warm: &[String],
    configs: impl Iterator<Item = &'a Vec<String>> + Clone,
    runs: usize,
) -> Vec<f64> {
    time_command(warm);
    let n = configs.clone().count();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..runs {
        for (i, c) in configs.clone().enumerate() {
            times[i].push(time_command(c).as_secs_f64());
        }
    }
    times.into_iter().map(median).collect()
}

/// The price of one monitored fault alone: programs/smo_touch.c stores once to each of N
/// shared pages (N faults, nothing else), natively, under `--smo off` and `--smo page`,
/// interleaved; µs per fault = (page − off) / N, checked against the events counted.
fn fault(vigil: &Path, scratch: &Path, opts: &Options) -> Result<serde_json::Value, String> {
    const N: u64 = 5000;
    let prog = vigil_testkit::program("smo_touch").display().to_string();
    let cmd = vec![prog, N.to_string()];
    let runs = opts.runs.unwrap_or(7);
    println!(
        "\n== one monitored fault (programs/smo_touch.c: a store to each of {N} shared pages), \
         median of {runs} interleaved runs =="
    );
    let log = |m: &str| scratch.join(format!("smo-touch-{m}.vlog"));
    let configs: Vec<(&str, Vec<String>)> = vec![
        ("native", cmd.clone()),
        (
            "--smo off",
            record_cmd(vigil, "off", None, &log("off"), &cmd),
        ),
        (
            "--smo page",
            record_cmd(vigil, "page", None, &log("page"), &cmd),
        ),
    ];
    let med = interleaved_medians(&cmd, configs.iter().map(|(_, c)| c), runs);
    let (smo, _, _) = log_counts(&log("page"));
    // One per page, and now and then one more: a slice that ended between a grant and the
    // store it was for.
    if smo.faults < N {
        return Err(format!(
            "smo_touch {N} under --smo page made {} faults, fewer than its {N} pages",
            smo.faults
        ));
    }
    let us = (med[2] - med[1]) * 1e6 / smo.faults as f64;
    for (i, (label, _)) in configs.iter().enumerate() {
        println!("  {label:<12} {:>10.4} s", med[i]);
    }
    println!(
        "  {} faults: {us:.1} µs per monitored fault ((page − off) / faults)",
        smo.faults
    );
    Ok(
        serde_json::json!({"faults": smo.faults, "pages": N, "runs": runs,
        "native_s": med[0], "off_s": med[1], "page_s": med[2], "us_per_fault": us}),
    )
}

fn ring(vigil: &Path, scratch: &Path, opts: &Options) -> serde_json::Value {
    let prog = vigil_testkit::program("smo_ring").display().to_string();
    let n = opts.ring_n.to_string();
    let cmd = vec![prog, n.clone()];
    let runs = opts.runs.unwrap_or(5);
    println!(
        "\n== shared-memory ring: {n} 64-byte messages through a 64 KiB MAP_SHARED ring in \
         /dev/shm (programs/smo_ring.c), median of {runs} interleaved runs =="
    );
    let log = |mode: &str| scratch.join(format!("smo-ring-{}.vlog", mode.replace(':', "-")));
    let mut configs: Vec<(String, Vec<String>)> = vec![("native".into(), cmd.clone())];
    for m in RING_MODES {
        configs.push((
            format!("--smo {m}"),
            record_cmd(vigil, m, None, &log(m), &cmd),
        ));
    }
    let med = interleaved_medians(&cmd, configs.iter().map(|(_, c)| c), runs);
    let native = med[0];
    let off = med[1];
    let header = [
        "median s",
        "x native",
        "x off",
        "smo events",
        "faults",
        "by call",
        "events",
        "µs/fault",
    ];
    print!("  {:<16}", "config");
    for h in header {
        print!(" {h:>10}");
    }
    println!();
    let mut rows = Vec::new();
    for (i, (label, c)) in configs.iter().enumerate() {
        let mut row = serde_json::json!({"config": label, "median_s": med[i],
            "x_native": med[i] / native, "runs": runs, "messages": opts.ring_n});
        let mut cols = vec![format!("{:.4}", med[i]), format!("{:.2}", med[i] / native)];
        if i > 0 {
            // Count from a recording of this very configuration.
            time_command(c);
            let mode = RING_MODES[i - 1];
            let (smo, events, calls) = log_counts(&log(mode));
            row["x_off"] = (med[i] / off).into();
            row["smo"] = smo.json();
            row["events"] = events.into();
            row["syscalls"] = calls.into();
            cols.extend([
                format!("{:.2}", med[i] / off),
                smo.events.to_string(),
                smo.faults.to_string(),
                smo.by_syscall.to_string(),
                events.to_string(),
            ]);
            if i > 1 && smo.faults > 0 {
                let us = (med[i] - off) * 1e6 / smo.faults as f64;
                row["us_per_fault"] = us.into();
                cols.push(format!("{us:.1}"));
            }
        }
        print!("  {label:<16}");
        for c in cols {
            print!(" {c:>10}");
        }
        println!();
        rows.push(row);
    }
    println!(
        "  µs/fault = (median of the mode − median of --smo off) / the mode's faults (events of \
         a fault or a single step)"
    );
    serde_json::Value::Array(rows)
}

/// smo_cost's smo events per phase: phase k lies between the k-th and the (k+1)-th getppid
/// exit of the process. Also each phase's duration in ns (between those exits).
fn phases(log: &Path) -> Result<Vec<(SmoCounts, u64)>, String> {
    let events = read_events(log);
    let root = events.first().map(|e| e.pid).ok_or("an empty log")?;
    let getppid = SyscallId::x86_64(libc::SYS_getppid as u32);
    let marks: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e.pid == root)
        .filter_map(|e| match &e.kind {
            EventKind::SyscallExit(x) if x.call == getppid => Some((e.seq, e.time_ns)),
            _ => None,
        })
        .collect();
    // Without the long phase (e) (minipage), one marker less: (e) counts nothing.
    if marks.len() != PHASES.len() + 1 && marks.len() != PHASES.len() {
        return Err(format!(
            "{} getppid markers in {}, expected {}",
            marks.len(),
            log.display(),
            PHASES.len() + 1
        ));
    }
    let mut out: Vec<(SmoCounts, u64)> = marks
        .windows(2)
        .map(|w| {
            let mut c = SmoCounts::default();
            for e in events.iter().filter(|e| e.seq > w[0].0 && e.seq < w[1].0) {
                if let EventKind::SmoAccess(a) = &e.kind {
                    c.add(a);
                }
            }
            (c, w[1].1.saturating_sub(w[0].1))
        })
        .collect();
    out.resize_with(PHASES.len(), || (SmoCounts::default(), 0));
    Ok(out)
}

fn cost(vigil: &Path, scratch: &Path) -> Result<serde_json::Value, String> {
    let prog = vigil_testkit::program("smo_cost").display().to_string();
    let file = scratch.join("smo-cost.bin").display().to_string();
    println!(
        "\n== the cost model (programs/smo_cost.c): shared-memory events per phase, per mode \
         (one recording each, --syscalls default,getppid: the markers) =="
    );
    for (p, what) in PHASES {
        println!("  ({p}) {what}");
    }
    print!("  {:<12}", "mode");
    for (p, _) in PHASES {
        print!(" {:>18}", format!("({p})"));
    }
    println!(" {:>10}", "(e) ms");
    let mut rows = Vec::new();
    for mode in COST_MODES {
        let log = scratch.join(format!("smo-cost-{mode}.vlog"));
        // minipage single-steps every load: the long phase (e) would take hours there, and it
        // counts accesses, not slices, so it is left out (phase (e) shows 0).
        let spin = if mode.starts_with("minipage") {
            "0"
        } else {
            SPIN_MILLIONS
        };
        let cmd = vec![prog.clone(), file.clone(), spin.into()];
        let r = run_capture(&record_cmd(
            vigil,
            mode,
            Some("default,getppid"),
            &log,
            &cmd,
        ));
        if !r.ok {
            return Err(format!(
                "smo_cost under --smo {mode} failed ({:?}): {}{}",
                r.code, r.stdout, r.stderr
            ));
        }
        let ph = phases(&log)?;
        print!("  {:<12}", mode);
        let mut prow = serde_json::Map::new();
        for ((p, _), (c, ns)) in PHASES.iter().zip(&ph) {
            print!(" {:>18}", c.short());
            let mut v = c.json();
            v["ns"] = (*ns).into();
            prow.insert(p.to_string(), v);
        }
        let e_ms = ph.last().map_or(0.0, |(_, ns)| *ns as f64 / 1e6);
        println!(" {:>10.1}", e_ms);
        if *mode == "page" {
            let got: Vec<(u64, u64, u64)> = ph
                .iter()
                .take(4)
                .map(|(c, _)| (c.reads, c.writes, c.read_writes))
                .collect();
            let model = [(1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1)];
            println!(
                "  page mode, phases (a)-(d) against the model 1r, 1w, 1r+1w, 1rw: {}",
                if got == model {
                    "holds".to_string()
                } else {
                    format!("DIFFERS ({got:?})")
                }
            );
        }
        rows.push(serde_json::json!({"mode": mode, "phases": prow}));
    }
    println!(
        "  (e) spans several 10 ms slices: one read per slice it spans (its duration is the last \
         column, under that mode)"
    );
    Ok(serde_json::Value::Array(rows))
}

/// Pids of the processes in a `backtrack --format json` answer.
fn backtrack_pids(json: &str) -> Result<Vec<u32>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("backtrack's JSON: {e}"))?;
    Ok(v["nodes"]
        .as_array()
        .ok_or("backtrack's JSON has no nodes")?
        .iter()
        .filter(|n| n["kind"] == "process")
        .filter_map(|n| n["pid"].as_u64().map(|p| p as u32))
        .collect())
}

fn falsedep(vigil: &Path, scratch: &Path) -> Result<serde_json::Value, String> {
    let prog = vigil_testkit::program("smo_falsedep").display().to_string();
    println!(
        "\n== false dependencies (programs/smo_falsedep.c): K writers each store to their own \
         page of one file, a reader loads page 0 and writes OUT; writers a backtrack from OUT \
         blames, per granularity (recorded with --smo page; the true answer is 1) =="
    );
    println!(
        "  {:<3} {:<34} {:>7} {:>5} {:>5}",
        "K", "layout", "object", "vma", "page"
    );
    let mut rows = Vec::new();
    for k in [2u32, 4, 8] {
        for layout in ["whole", "own"] {
            let file = scratch.join(format!("smo-falsedep-{k}-{layout}.bin"));
            let out = scratch.join(format!("smo-falsedep-{k}-{layout}.out"));
            let log = scratch.join(format!("smo-falsedep-{k}-{layout}.vlog"));
            let cmd = vec![
                prog.clone(),
                file.display().to_string(),
                out.display().to_string(),
                k.to_string(),
                layout.into(),
            ];
            let r = run_capture(&record_cmd(vigil, "page", None, &log, &cmd));
            if !r.ok {
                return Err(format!(
                    "smo_falsedep under --smo page failed ({:?}): {}{}",
                    r.code, r.stdout, r.stderr
                ));
            }
            let writers: Vec<u32> = r
                .stdout
                .lines()
                .filter(|l| l.starts_with("writer "))
                .filter_map(|l| {
                    l.split(' ')
                        .find_map(|w| w.strip_prefix("pid="))
                        .and_then(|p| p.parse().ok())
                })
                .collect();
            if writers.len() != k as usize {
                return Err(format!(
                    "smo_falsedep printed {} writers, expected {k}: {}",
                    writers.len(),
                    r.stdout
                ));
            }
            let mut blamed = serde_json::Map::new();
            let mut cols = Vec::new();
            for g in ["object", "vma", "page"] {
                let b = run_capture(&[
                    vigil.display().to_string(),
                    "backtrack".into(),
                    log.display().to_string(),
                    "--from".into(),
                    format!("file:{}", out.display()),
                    "--granularity".into(),
                    g.into(),
                    "--format".into(),
                    "json".into(),
                ]);
                if !b.ok {
                    let why = b.stderr.lines().next().unwrap_or("").trim().to_string();
                    return Err(format!(
                        "`vigil backtrack --granularity {g}` failed (exit {:?}: {why}){}",
                        b.code,
                        if b.code == Some(2) {
                            ": this vigil's graph does not know shared-memory granularity yet"
                        } else {
                            ""
                        }
                    ));
                }
                let pids = backtrack_pids(&b.stdout)?;
                let n = writers.iter().filter(|w| pids.contains(w)).count();
                blamed.insert(g.into(), n.into());
                cols.push(n);
            }
            let what = if layout == "whole" {
                "whole (all map the whole file)"
            } else {
                "own (each maps only its page)"
            };
            println!(
                "  {:<3} {:<34} {:>7} {:>5} {:>5}",
                k, what, cols[0], cols[1], cols[2]
            );
            rows.push(serde_json::json!({"k": k, "layout": layout, "writers_blamed": blamed}));
        }
    }
    Ok(serde_json::Value::Array(rows))
}

fn zero_cost(vigil: &Path, scratch: &Path, opts: &Options) -> serde_json::Value {
    println!(
        "\n== zero cost when unused: the recording benchmark's workloads (no shared mappings), \
         default syscall set, --smo page against --smo off, interleaved =="
    );
    println!(
        "  {:<4} {:>5} {:>10} {:>12} {:>12} {:>10}",
        "", "runs", "native s", "smo off s", "smo page s", "page / off"
    );
    let log = scratch.join("smo-zero.vlog");
    let mut rows = Vec::new();
    for w in crate::record::workloads_abc(scratch) {
        let runs = opts.runs.unwrap_or(w.runs);
        let configs = [
            w.cmd.clone(),
            record_cmd(vigil, "off", None, &log, &w.cmd),
            record_cmd(vigil, "page", None, &log, &w.cmd),
        ];
        let med = interleaved_medians(&w.cmd, configs.iter(), runs);
        // The page recording of these workloads must hold no shared-memory event.
        let (smo, _, _) = log_counts(&log);
        println!(
            "  {:<4} {:>5} {:>10.4} {:>12.4} {:>12.4} {:>10.3}{}",
            w.name,
            runs,
            med[0],
            med[1],
            med[2],
            med[2] / med[1],
            if smo.events > 0 {
                format!("  ({} smo events)", smo.events)
            } else {
                String::new()
            }
        );
        rows.push(
            serde_json::json!({"workload": w.name, "what": w.what, "runs": runs,
            "native_s": med[0], "smo_off_s": med[1], "smo_page_s": med[2],
            "page_over_off": med[2] / med[1], "smo_events": smo.events}),
        );
    }
    serde_json::Value::Array(rows)
}

/// Runs the sections asked for; an error when this vigil cannot run them.
pub fn run(vigil: &Path, scratch: &Path, opts: &Options) -> Result<serde_json::Value, String> {
    probe(vigil, scratch)?;
    let mut out = serde_json::Map::new();
    if opts.wants("fault") {
        out.insert("fault".into(), fault(vigil, scratch, opts)?);
    }
    if opts.wants("ring") {
        out.insert("ring".into(), ring(vigil, scratch, opts));
    }
    if opts.wants("cost") {
        out.insert("cost_model".into(), cost(vigil, scratch)?);
    }
    if opts.wants("falsedep") {
        out.insert("false_dependencies".into(), falsedep(vigil, scratch)?);
    }
    if opts.wants("zero") {
        out.insert("zero_cost".into(), zero_cost(vigil, scratch, opts));
    }
    Ok(serde_json::json!({ "smo": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        strs(v)
    }

    #[test]
    fn options_parse_and_reject() {
        let o = Options::from_args(&args(&["--only", "cost", "--runs", "3"])).unwrap();
        assert_eq!(o.only.as_deref(), Some("cost"));
        assert_eq!((o.runs, o.ring_n), (Some(3), 10_000));
        assert!(o.wants("cost") && !o.wants("ring"));
        let o = Options::from_args(&args(&["--ring-n", "500"])).unwrap();
        assert!(o.wants("ring") && o.wants("zero"));
        assert_eq!(o.ring_n, 500);
        assert!(Options::from_args(&args(&["--only", "A"])).is_err());
        assert!(Options::from_args(&args(&["--runs", "0"])).is_err());
        assert!(Options::from_args(&args(&["--runs"])).is_err());
    }

    #[test]
    fn backtrack_pids_are_the_process_nodes() {
        let j = r#"{"nodes":[{"id":1,"kind":"process","pid":12},{"id":2,"kind":"file","pid":null},
            {"id":3,"kind":"process","pid":14},{"id":4,"kind":"smo","pid":null}],"edges":[]}"#;
        assert_eq!(backtrack_pids(j).unwrap(), [12, 14]);
        assert!(backtrack_pids("{}").is_err());
    }
}
