//! Measures how long drawing a reconstruction takes, by size, so the thresholds of
//! `--format svg` (docs/graph.md) rest on figures: `dot` writes the DOT of graphs of growing
//! size (forward tracking over synthetic logs, as `vigil forward` would draw them) into a
//! folder; `builtin FILE.dot` lays one out with the built-in layout (layout-rs) and prints the
//! seconds it took. Time Graphviz with `dot -Tsvg`, and the built-in layout under `timeout`.
//!
//! cargo run --release -p vigil-graph --example svg_sizes -- dot /tmp/svg-sizes

use std::time::Instant;
use vigil_graph::{Direction, Filters, GraphBuilder, Limits, ObjectSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dot") => write_dots(args.get(1).map_or("/tmp/svg-sizes", String::as_str)),
        Some("builtin") => {
            let Some(file) = args.get(1) else {
                eprintln!("usage: svg_sizes builtin FILE.dot");
                std::process::exit(2);
            };
            let dot = std::fs::read_to_string(file).unwrap_or_else(|e| {
                eprintln!("{file}: {e}");
                std::process::exit(1)
            });
            let t = Instant::now();
            match vigil_graph::layout_builtin(&dot) {
                Ok(svg) => println!("{:.3} s, {} bytes", t.elapsed().as_secs_f64(), svg.len()),
                Err(e) => println!("error: {e}"),
            }
        }
        _ => {
            eprintln!("usage: svg_sizes dot DIR | builtin FILE.dot");
            std::process::exit(2);
        }
    }
}

fn write_dots(dir: &str) {
    let _ = std::fs::create_dir_all(dir);
    let filters = Filters::new(false, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut sizes = std::collections::BTreeSet::new();
    for events in [10_000usize, 50_000, 200_000, 1_000_000] {
        let mut b = GraphBuilder::new();
        for ev in vigil_testkit::synthetic::Events::new(11).take(events) {
            b.add(&ev);
        }
        let g = b.finish();
        for pid in (1000..1060).step_by(7) {
            for depth in [2u32, 3, 4, 5, 6, 8] {
                let Ok((start, _)) = ObjectSpec::Process { pid, nth: None }.resolve(&g) else {
                    continue;
                };
                let at = vigil_graph::default_at(&g, start, Direction::Forward);
                let limits = Limits {
                    max_depth: Some(depth),
                    ..Limits::default()
                };
                let t = vigil_graph::track(&g, start, at, Direction::Forward, &filters, limits);
                // One graph per size bucket (a tenth of a decade).
                let bucket = ((t.nodes.len() as f64).log10() * 10.0) as u32;
                if t.nodes.len() < 20 || !sizes.insert(bucket) {
                    continue;
                }
                let name = format!("{dir}/n{:06}-e{:06}.dot", t.nodes.len(), t.edges.len());
                let _ = std::fs::write(&name, vigil_graph::render_dot(&g, &t));
                println!("{name}");
            }
        }
    }
}
