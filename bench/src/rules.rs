//! The rule engine against Elastic's EQL (shared/bench/eql-peer) on the same 1M generated
//! events, in one run: matches against the planted truth, events/s end to end and engine-only,
//! the open-partial-match stress case, and the cost of `watch` with the detection rules over `record`.

use crate::record::{STRACE_SET, which};
use crate::stats::{median, time_command};
use std::path::{Path, PathBuf};
use std::process::Command;

const EVENTS: usize = 1_000_000;
/// EQL's maxspan expiry scans every open partial match per event: the stress case runs it on
/// a prefix only, or it would take many minutes.
const STRESS_PREFIX: usize = 20_000;

fn kit() -> Option<PathBuf> {
    let p = std::env::var_os("VIGIL_EQL_KIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| vigil_testkit::workspace_root().join("../shared/bench/eql-peer"));
    p.join("gen_events.py").exists().then_some(p)
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The peer, installed once into a venv under the scratch dir.
fn eql_python(dir: &Path) -> Option<PathBuf> {
    let venv = dir.join("venv");
    let py = venv.join("bin/python");
    if py.exists()
        && Command::new(&py)
            .args(["-c", "import eql"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Some(py);
    }
    let python = which("python3")?;
    sh(Command::new(python).args(["-m", "venv"]).arg(&venv));
    sh(Command::new(venv.join("bin/pip")).args(["install", "-q", "eql==1.0.1"]));
    Some(py)
}

/// Generated events, their vigil conversion and log (cached across runs).
fn prepare(kit: &Path, dir: &Path, vigil: &Path) -> (PathBuf, PathBuf, serde_json::Value) {
    let events = dir.join("events.jsonl");
    let log = dir.join("events.vlog");
    if !log.exists() || !events.exists() {
        sh(Command::new("python3")
            .arg(kit.join("gen_events.py"))
            .arg(EVENTS.to_string())
            .arg(&events)
            .arg("42"));
        let converted = dir.join("events.vigil.jsonl");
        sh(Command::new("python3")
            .arg(vigil_testkit::workspace_root().join("bench/eql/to_vigil.py"))
            .arg(&events)
            .arg(&converted));
        sh(Command::new(vigil)
            .arg("import")
            .arg(&converted)
            .arg("-o")
            .arg(&log));
    }
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("events.jsonl.truth.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    (events, log, truth)
}

struct VigilRun {
    matches: u64,
    events: u64,
    e2e: f64,
    engine: f64,
}

/// `vigil match --stats`: matches and rates from its statistics (median of 3 runs).
fn vigil_match(vigil: &Path, rules: &Path, log: &Path) -> VigilRun {
    let mut e2e = Vec::new();
    let mut engine = Vec::new();
    let (mut matches, mut events) = (0, 0);
    for _ in 0..3 {
        let out = sh(Command::new(vigil)
            .arg("match")
            .arg("--rules")
            .arg(rules)
            .arg(log)
            .args(["--stats", "--matches", "/dev/null"]));
        for line in out.lines() {
            let num = |s: &str| s.trim_start_matches('(').parse::<f64>().unwrap_or(0.0);
            let w: Vec<&str> = line.split_whitespace().collect();
            if line.contains(" events in ") {
                events = num(w[1]) as u64;
                e2e.push(num(w[6]));
            } else if line.contains("rules engine") {
                engine.push(num(w[5]));
            } else if line.contains(" matches;") {
                matches = num(w[3]) as u64;
            }
        }
    }
    VigilRun {
        matches,
        events,
        e2e: median(e2e),
        engine: median(engine),
    }
}

/// eql's own command line, `eql query -f EVENTS QUERY --config eql_config.json`, as the kit's
/// README runs it: events/s over the whole command (interpreter start, JSON decoding, output).
fn eql_cli(py: &Path, kit: &Path, events: &Path, query: &Path) -> f64 {
    let Some(bin) = py.parent().map(|d| d.join("eql")) else {
        return 0.0;
    };
    let q = std::fs::read_to_string(query).unwrap_or_default();
    let start = std::time::Instant::now();
    sh(Command::new(bin)
        .arg("query")
        .arg("-f")
        .arg(events)
        .arg(q.trim())
        .arg("--config")
        .arg(kit.join("eql_config.json")));
    EVENTS as f64 / start.elapsed().as_secs_f64()
}

/// run_eql_api.py: (matches, events/s).
fn eql_run(py: &Path, kit: &Path, events: &Path, query: &Path, preload: bool) -> (u64, f64) {
    let mut c = Command::new(py);
    c.arg(kit.join("run_eql_api.py")).arg(events).arg(query);
    if preload {
        c.arg("--preload");
    }
    let out = sh(&mut c);
    let j: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    (
        j["matches"].as_u64().unwrap_or(0),
        j["events_per_s"].as_f64().unwrap_or(0.0),
    )
}

pub fn run(vigil: &Path, scratch: &Path) -> serde_json::Value {
    println!(
        "\n== rules: vigil against Elastic EQL 1.0.1 on the same generated events, in one run =="
    );
    let Some(kit) = kit() else {
        println!(
            "  WARNING: the eql-peer kit (shared/bench/eql-peer) is not here: set VIGIL_EQL_KIT. Skipped."
        );
        return serde_json::json!({"rules": "skipped: no eql-peer kit"});
    };
    let dir = scratch.join("eql");
    let _ = std::fs::create_dir_all(&dir);
    let (events, log, truth) = prepare(&kit, &dir, vigil);
    let Some(py) = eql_python(&dir) else {
        println!("  WARNING: python3 is missing (scripts/setup installs it). Skipped.");
        return serde_json::json!({"rules": "skipped: no python3"});
    };
    let rules_dir = vigil_testkit::workspace_root().join("bench/eql");
    println!(
        "  {EVENTS} generated events (seed 42); vigil reads them as {} events (a syscall is an entry and an exit)",
        vigil_match(vigil, &rules_dir.join("filter.rules"), &log).events
    );
    println!(
        "  {:<10} {:>6} {:>6} {:>6} | {:>12} {:>12} | {:>9} {:>9} {:>9} | {:>8} {:>8} {:>8}",
        "query",
        "truth",
        "vigil",
        "eql",
        "vigil e2e/s",
        "vigil eng/s",
        "eql cli/s",
        "eql e2e/s",
        "eql eng/s",
        "x cli",
        "x e2e",
        "x engine"
    );
    let mut rows = Vec::new();
    for (name, query, truth_key) in [
        ("filter", "q_filter.eql", "filter"),
        ("seq3", "q_seq3.eql", "seq3"),
        ("nosysexit", "q_nosysexit.eql", "nosysexit"),
    ] {
        let v = vigil_match(vigil, &rules_dir.join(format!("{name}.rules")), &log);
        let (eql_matches, eql_e2e) = eql_run(&py, &kit, &events, &kit.join(query), false);
        let (_, eql_engine) = eql_run(&py, &kit, &events, &kit.join(query), true);
        let cli = eql_cli(&py, &kit, &events, &kit.join(query));
        let t = truth[truth_key].as_u64().unwrap_or(0);
        println!(
            "  {name:<10} {t:>6} {:>6} {eql_matches:>6} | {:>12.0} {:>12.0} | {cli:>9.0} {eql_e2e:>9.0} {eql_engine:>9.0} | {:>7.1}x {:>7.1}x {:>7.1}x{}",
            v.matches,
            v.e2e,
            v.engine,
            v.e2e / cli.max(1.0),
            v.e2e / eql_e2e.max(1.0),
            v.engine / eql_engine.max(1.0),
            if v.matches == t {
                ""
            } else {
                "   <- WRONG MATCH COUNT"
            }
        );
        rows.push(serde_json::json!({"query": name, "truth": t, "vigil_matches": v.matches, "eql_matches": eql_matches,
            "vigil_events": v.events, "vigil_e2e_events_per_s": v.e2e, "vigil_engine_events_per_s": v.engine,
            "eql_cli_events_per_s": cli, "ratio_cli": v.e2e / cli.max(1.0),
            "eql_e2e_events_per_s": eql_e2e, "eql_engine_events_per_s": eql_engine,
            "ratio_e2e": v.e2e / eql_e2e.max(1.0), "ratio_engine": v.engine / eql_engine.max(1.0), "correct": v.matches == t}));
    }
    // Thousands of open partial matches under a time window.
    let v = vigil_match(vigil, &rules_dir.join("stress.rules"), &log);
    let prefix = dir.join("prefix.jsonl");
    if !prefix.exists() {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let head: String = text
            .lines()
            .take(STRESS_PREFIX)
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = std::fs::write(&prefix, head);
    }
    let (_, eql_stress) = eql_run(&py, &kit, &prefix, &rules_dir.join("stress.eql"), true);
    println!(
        "\n  open-partial stress ([syscall entry, failing exit] by pid and syscall within 5s: every entry opens a partial match):"
    );
    println!(
        "    vigil: {:.0} events/s end to end, {:.0} engine-only over all {} events ({} matches)",
        v.e2e, v.engine, v.events, v.matches
    );
    println!(
        "    eql:   {eql_stress:.0} events/s engine-only over the first {STRESS_PREFIX} events -> vigil {:.0}x",
        v.engine / eql_stress.max(1.0)
    );
    let stress = serde_json::json!({"vigil_e2e_events_per_s": v.e2e, "vigil_engine_events_per_s": v.engine, "vigil_matches": v.matches,
        "eql_engine_events_per_s": eql_stress, "eql_events": STRESS_PREFIX, "ratio_engine": v.engine / eql_stress.max(1.0)});
    let one_key = one_key(vigil, &dir);
    let watch = watch_overhead(vigil, scratch);
    serde_json::json!({"rules": rows, "stress": stress, "one_key": one_key, "watch_overhead": watch})
}

/// One process with 1,024 open partial matches (the per-key cap): a step that joins on a value
/// (`r.fd == o.ret`, looked up in the run index) and a key at its cap (each new run evicts).
fn one_key(vigil: &Path, dir: &Path) -> serde_json::Value {
    use std::io::Write;
    let write = |name: &str, opens: usize, reads: usize| -> PathBuf {
        let log = dir.join(format!("{name}.vlog"));
        if log.exists() {
            return log;
        }
        let jsonl = dir.join(format!("{name}.jsonl"));
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&jsonl).unwrap_or_else(|e| panic!("{}: {e}", jsonl.display())),
        );
        let mut seq = 0u64;
        let mut line = |kind: serde_json::Value| {
            seq += 1;
            let mut j = kind;
            j["seq"] = seq.into();
            j["time_ns"] = (seq * 1000).into();
            j["pid"] = 100.into();
            j["tid"] = 100.into();
            let _ = writeln!(f, "{j}");
            seq
        };
        for i in 0..opens {
            let args =
                serde_json::json!({"dirfd": -100, "path": format!("/f{i}"), "flags": 0, "mode": 0});
            let e = line(
                serde_json::json!({"type": "syscall_entry", "syscall": "openat", "args": args}),
            );
            line(
                serde_json::json!({"type": "syscall_exit", "syscall": "openat", "ret": i % 1000 + 3, "entry_seq": e, "args": args}),
            );
        }
        for _ in 0..reads {
            let args = serde_json::json!({"fd": {"fd": 2000}, "buf": 0, "count": 1});
            let e =
                line(serde_json::json!({"type": "syscall_entry", "syscall": "read", "args": args}));
            line(
                serde_json::json!({"type": "syscall_exit", "syscall": "read", "ret": 1, "entry_seq": e, "args": args}),
            );
        }
        drop(f);
        sh(Command::new(vigil)
            .arg("import")
            .arg(&jsonl)
            .arg("-o")
            .arg(&log));
        log
    };
    let rules = |name: &str, src: &str| -> PathBuf {
        let p = dir.join(name);
        let _ = std::fs::write(&p, src);
        p
    };
    println!("\n  one process, 1,024 open partial matches (the per-key cap):");
    let mut figures = Vec::new();
    for (what, name, src, opens, reads) in [
        (
            "200,000 reads, none on an open file's fd (r.fd == o.ret):",
            "one_key_join",
            "RULE r PATTERN { [openat:o, read:r] } WHERE { [ProcessId], r.fd == o.ret } WITHIN 60s\n",
            1024,
            200_000,
        ),
        (
            "200,000 opens, each evicting the key's oldest run:",
            "one_key_cap",
            "RULE r PATTERN { [openat:o, read:r] } WHERE { [ProcessId] }\n",
            200_000,
            0,
        ),
    ] {
        let v = vigil_match(
            vigil,
            &rules(&format!("{name}.rules"), src),
            &write(name, opens, reads),
        );
        println!(
            "    {what:<62} {:.0} events/s end to end, {:.0} engine-only",
            v.e2e, v.engine
        );
        figures.push(v);
    }
    let (joined, capped) = (&figures[0], &figures[1]);
    serde_json::json!({"joined_e2e_events_per_s": joined.e2e, "joined_engine_events_per_s": joined.engine,
        "capped_e2e_events_per_s": capped.e2e, "capped_engine_events_per_s": capped.engine})
}

/// `vigil watch` with the detection rules (rules/detections.rules) against `vigil record` alone, on the recording workloads.
pub fn watch_overhead(vigil: &Path, scratch: &Path) -> serde_json::Value {
    let rules = vigil_testkit::workspace_root().join("rules/detections.rules");
    let src = scratch.join("src64k.bin");
    let _ = std::fs::write(&src, vec![0x5au8; 64 * 1024]);
    let dst = scratch.join("copies");
    let _ = std::fs::create_dir_all(&dst);
    let copy = vigil_testkit::program("copy64k").display().to_string();
    let workloads: Vec<(&str, Vec<String>)> = vec![
        (
            "A",
            vec![
                copy,
                src.display().to_string(),
                dst.display().to_string(),
                "100".into(),
            ],
        ),
        (
            "B",
            ["find", "/usr", "-type", "f"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        (
            "C",
            ["sh", "-c", "for i in $(seq 500); do /bin/true; done"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
    ];
    println!(
        "\n  watch with the detection rules (rules/detections.rules) against record alone, same syscalls ({STRACE_SET}), median of 9, interleaved:"
    );
    let log = scratch.join("watch.vlog");
    let mut rows = Vec::new();
    for (name, cmd) in workloads {
        let base = |sub: &str| -> Vec<String> {
            let mut v = vec![vigil.display().to_string(), sub.into()];
            if sub == "watch" {
                v.extend([
                    "--rules".into(),
                    rules.display().to_string(),
                    "--matches".into(),
                    "/dev/null".into(),
                ]);
            } else {
                v.push("-q".into());
            }
            v.extend([
                "-o".into(),
                log.display().to_string(),
                "--syscalls".into(),
                STRACE_SET.into(),
                "--".into(),
            ]);
            v.extend(cmd.iter().cloned());
            v
        };
        let (record, watch) = (base("record"), base("watch"));
        let (mut r, mut w) = (Vec::new(), Vec::new());
        time_command(&record);
        for _ in 0..9 {
            r.push(time_command(&record).as_secs_f64());
            w.push(time_command(&watch).as_secs_f64());
        }
        let (r, w) = (median(r), median(w));
        println!(
            "    {name}: record {r:.4} s, watch {w:.4} s -> watch costs {:+.1}%",
            (w / r - 1.0) * 100.0
        );
        rows.push(serde_json::json!({"workload": name, "record_s": r, "watch_s": w, "overhead": w / r - 1.0}));
    }
    serde_json::Value::Array(rows)
}
