//! vigil's benchmarks. Each section prints medians and ratios against the peer measured in the
//! same run; `bench/out/results.json` keeps the figures. Timings are never asserted anywhere.
//!
//! usage: vigil-bench [all|record|memread|log|graph|rules|watch] [--only WORKLOAD]
//!        vigil-bench smo [--only ring|cost|falsedep|zero] [--runs N] [--ring-n N]
//!        vigil-bench mvee [--only xz|compute|B|B2|C|timer] [--runs N]
//!        vigil-bench system [--only A|B|B2|C|storm]   (root: eBPF)

mod graph;
mod logwrite;
mod memread;
mod mvee;
mod record;
mod rules;
mod smo;
mod stats;
mod system;

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("all");
    if what == "peak-rss" {
        graph::peak_rss_main(&args[1..]);
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let root = vigil_testkit::workspace_root();
    let vigil = std::env::var_os("VIGIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/vigil"));
    if !vigil.exists() {
        eprintln!(
            "vigil-bench: {} not found: build it with `cargo build --release` (bench/run does)",
            vigil.display()
        );
        std::process::exit(1);
    }
    let scratch = root.join("target/bench-scratch");
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("vigil-bench: cannot create {}: {e}", scratch.display());
        std::process::exit(1);
    }
    let mut results = serde_json::Map::new();
    // A section that cannot run with this vigil (smo without --smo), or a workload that
    // diverged or failed under vigil mvee: said, and the exit status.
    let mut failed = false;
    let mut section = |v: serde_json::Value| {
        if let serde_json::Value::Object(m) = v {
            results.extend(m);
        }
    };
    match what {
        "all" => {
            section(logwrite::run(&scratch));
            section(memread::run());
            section(record::run(&vigil, &scratch, only));
            section(graph::run(&vigil, &scratch));
            section(rules::run(&vigil, &scratch));
            let opts = smo::Options {
                only: None,
                runs: None,
                ring_n: 10_000,
            };
            match smo::run(&vigil, &scratch, &opts) {
                Ok(v) => section(v),
                Err(e) => {
                    eprintln!("\nvigil-bench: smo: {e}");
                    failed = true;
                }
            }
            let opts = mvee::Options {
                only: None,
                runs: None,
            };
            let (v, failures) = mvee::run(&vigil, &scratch, &opts);
            section(v);
            failed |= mvee_failed(&failures);
        }
        "smo" => {
            match smo::Options::from_args(&args[1..]).and_then(|o| smo::run(&vigil, &scratch, &o)) {
                Ok(v) => section(v),
                Err(e) => {
                    eprintln!("vigil-bench: smo: {e}");
                    std::process::exit(1);
                }
            }
        }
        "mvee" => match mvee::Options::from_args(&args[1..]) {
            Ok(opts) => {
                let (v, failures) = mvee::run(&vigil, &scratch, &opts);
                section(v);
                failed |= mvee_failed(&failures);
            }
            Err(e) => {
                eprintln!("vigil-bench: mvee: {e}");
                std::process::exit(2);
            }
        },
        "record" => section(record::run(&vigil, &scratch, only)),
        "system" => section(system::run(&vigil, &scratch, only)),
        "graph" => section(graph::run(&vigil, &scratch)),
        "rules" => section(rules::run(&vigil, &scratch)),
        "watch" => {
            section(serde_json::json!({"watch_overhead": rules::watch_overhead(&vigil, &scratch)}))
        }
        "memread" => section(memread::run()),
        "log" => section(logwrite::run(&scratch)),
        other => {
            eprintln!(
                "vigil-bench: unknown benchmark `{other}` (all, record, memread, log, graph, rules, watch, smo, mvee, system)"
            );
            std::process::exit(2);
        }
    }
    let out = root.join("bench/out");
    let _ = std::fs::create_dir_all(&out);
    let path = out.join(format!("{what}.json"));
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::Value::Object(results)).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nfigures written to {}", path.display()),
        Err(e) => eprintln!("vigil-bench: cannot write {}: {e}", path.display()),
    }
    if failed {
        std::process::exit(1);
    }
}

/// Says on standard error which workloads diverged or failed under `vigil mvee` (the figures
/// are written all the same); true when some did.
fn mvee_failed(failures: &[String]) -> bool {
    for f in failures {
        eprintln!("vigil-bench: mvee: {f}");
    }
    !failures.is_empty()
}
