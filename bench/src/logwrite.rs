//! Raw log write and read throughput on one core, from a synthetic writer (no tracing).

use std::time::Instant;
use vigil_log::{LogMeta, LogReader, LogWriter};

pub fn run(scratch: &std::path::Path) -> serde_json::Value {
    let n: u64 = std::env::var("VIGIL_BENCH_LOG_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let events: Vec<_> = vigil_testkit::synthetic::Events::new(42)
        .take(n as usize)
        .collect();
    let path = scratch.join("logwrite.vlog");
    let meta = LogMeta {
        created_ns: 0,
        hostname: "bench".into(),
        backend: "synthetic".into(),
        command: vec![],
        selection: String::new(),
        vigil_version: String::new(),
        contiguous_seq: false,
        command_cut: None,
        smo: None,
        smo_slice_ns: None,
    };
    let mut write_rates = Vec::new();
    let mut read_rates = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let mut w = LogWriter::create(&path, &meta).expect("create the log");
        for ev in &events {
            w.append(ev).expect("append");
        }
        let stats = w.finish().expect("finish");
        write_rates.push(n as f64 / start.elapsed().as_secs_f64());
        bytes = stats.bytes;
        let start = Instant::now();
        let count = LogReader::open(&path)
            .expect("open")
            .filter(|r| r.is_ok())
            .count();
        read_rates.push(count as f64 / start.elapsed().as_secs_f64());
        assert_eq!(count as u64, n, "every event reads back");
    }
    let write = crate::stats::median(write_rates);
    let read = crate::stats::median(read_rates);
    println!("\n== log throughput, one core, {n} synthetic events (median of 3) ==");
    println!(
        "  write {:.2} M events/s, read {:.2} M events/s, {:.2} bytes/event",
        write / 1e6,
        read / 1e6,
        bytes as f64 / n as f64
    );
    serde_json::json!({"log": {"events": n, "write_events_per_s": write, "read_events_per_s": read, "bytes_per_event": bytes as f64 / n as f64}})
}
