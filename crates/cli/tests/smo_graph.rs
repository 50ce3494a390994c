//! Issue 11's graph scenarios end to end: the real programs (programs/smo_*.c) recorded for real
//! with `vigil record --syscalls default,getppid --smo MODE`, then `vigil backtrack --format json`
//! at each granularity, asserting which processes a backtrack from an output file reaches.
//! Processes are told apart by the `ROLE pid=N` lines the programs print. Every scenario has a
//! process that must NOT be reached (a writer of another page, of another mapping, a private
//! writer), so a graph that blamed every process would fail.

mod common;

use common::*;
use serde_json::Value as J;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use vigil_testkit::{program, scratch_dir};

/// Records `make(dir)` in a fresh directory with `--smo mode` and the getppid markers; the
/// command must succeed. Returns the directory, what the program printed and the log.
fn record(
    tag: &str,
    mode: &str,
    make: impl Fn(&Path) -> Vec<OsString>,
) -> (PathBuf, String, PathBuf) {
    let dir = scratch_dir(tag);
    let cmd = make(&dir);
    let args: Vec<&std::ffi::OsStr> = cmd.iter().map(OsString::as_os_str).collect();
    let (out, _, log) = record_in(
        &dir,
        &["--syscalls", "default,getppid", "--smo", mode],
        &args,
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{tag}: {}\n{stdout}",
        text(&out.stderr)
    );
    (dir, stdout, log)
}

fn prog(name: &str) -> OsString {
    program(name).into_os_string()
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> OsString {
    x.as_ref().to_os_string()
}

/// The `pid=` of the line of `out` that starts with `prefix`.
fn pid_of(out: &str, prefix: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"));
    line.split(' ')
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid= in {line:?}"))
}

/// `vigil backtrack LOG --from FROM --format json [extra]`, which must succeed.
fn backtrack(log: &Path, from: &str, extra: &[&str]) -> J {
    let out = run(vigil()
        .arg("backtrack")
        .arg(log)
        .args(["--from", from, "--format", "json"])
        .args(extra));
    assert!(
        out.status.success(),
        "backtrack {from} {extra:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn nodes(g: &J) -> &Vec<J> {
    g["nodes"].as_array().unwrap()
}

/// The pids of the process nodes reached.
fn procs(g: &J) -> BTreeSet<u64> {
    nodes(g).iter().filter_map(|n| n["pid"].as_u64()).collect()
}

/// The pids of the processes reached through a shared-memory part: those with an edge into an
/// `smo` node (a store through a mapping, or a write(2) of a file that has parts).
fn part_writers(g: &J) -> BTreeSet<u64> {
    let kind = |id: &J| {
        nodes(g)
            .iter()
            .find(|n| n["id"] == *id)
            .unwrap_or_else(|| panic!("no node {id} in {g}"))
    };
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| kind(&e["to"])["kind"] == "smo")
        .filter_map(|e| kind(&e["from"])["pid"].as_u64())
        .collect()
}

fn file(dir: &Path, name: &str) -> String {
    format!("file:{}", dir.join(name).display())
}

// ---- 1. two writers and a reader of one 3-page file ----

fn pages(how: &str) -> (PathBuf, String, PathBuf) {
    record(&format!("smo-graph-pages-{how}"), "page", |d| {
        vec![
            prog("smo_pages"),
            s("run"),
            s(d.join("f")),
            s(d.join("out")),
            s(how),
        ]
    })
}

#[test]
fn w2_not_w1_at_page_both_at_object_with_a_loading_reader() {
    let (dir, out, log) = pages("load");
    let (w1, w2, r) = (
        pid_of(&out, "w1 "),
        pid_of(&out, "w2 "),
        pid_of(&out, "r-load "),
    );
    let page = procs(&backtrack(&log, &file(&dir, "out"), &[]));
    assert!(page.contains(&r) && page.contains(&w2), "{page:?}");
    assert!(
        !page.contains(&w1),
        "page: W1 stored to another page {page:?}"
    );
    let explicit = procs(&backtrack(
        &log,
        &file(&dir, "out"),
        &["--granularity", "page"],
    ));
    assert_eq!(page, explicit, "page is the recording's own granularity");
    let object = procs(&backtrack(
        &log,
        &file(&dir, "out"),
        &["--granularity", "object"],
    ));
    assert!(
        object.contains(&w1) && object.contains(&w2),
        "object: {object:?}"
    );
    // The page the reader loaded is the part W2 stored to, and the JSON says the granularity.
    let g = backtrack(&log, &file(&dir, "out"), &[]);
    assert_eq!(g["smo"]["granularity"], "page");
    assert!(
        nodes(&g)
            .iter()
            .any(|n| n["kind"] == "smo" && n["offset"] == 4096 && n["length"] == 4096),
        "{g}"
    );
    assert!(
        !nodes(&g)
            .iter()
            .any(|n| n["kind"] == "smo" && n["offset"] == 0 && n["length"] == 4096),
        "page 0 is not reached: {g}"
    );
}

#[test]
fn w2_only_at_page_with_a_pread_reader() {
    let (dir, out, log) = pages("read");
    let (w1, w2, r) = (
        pid_of(&out, "w1 "),
        pid_of(&out, "w2 "),
        pid_of(&out, "r-read "),
    );
    let page = procs(&backtrack(&log, &file(&dir, "out"), &[]));
    assert!(page.contains(&r) && page.contains(&w2), "{page:?}");
    assert!(
        !page.contains(&w1),
        "page: W1 stored to another page {page:?}"
    );
    let object = procs(&backtrack(
        &log,
        &file(&dir, "out"),
        &["--granularity", "object"],
    ));
    assert!(
        object.contains(&w1) && object.contains(&w2),
        "object: {object:?}"
    );
}

// ---- 2. disjoint and overlapping mappings: object, vma, page differ ----

#[test]
fn smo_vma_flows_differ_by_granularity() {
    let (dir, out, log) = record("smo-graph-vma-flows", "page", |d| {
        vec![
            prog("smo_vma"),
            s("flows"),
            s(d.join("f")),
            s(d.join("out")),
        ]
    });
    let (wa, wb, wc, r) = (
        pid_of(&out, "wa "),
        pid_of(&out, "wb "),
        pid_of(&out, "wc "),
        pid_of(&out, "r "),
    );
    let writers = |g: &str| -> Vec<u64> {
        let reached = procs(&backtrack(&log, &file(&dir, "out"), &["--granularity", g]));
        assert!(reached.contains(&r), "{g}: the reader {reached:?}");
        [wa, wb, wc]
            .into_iter()
            .filter(|w| reached.contains(w))
            .collect()
    };
    assert_eq!(writers("object"), [wa, wb, wc], "object");
    assert_eq!(
        writers("vma"),
        [wa, wc],
        "vma: r's mapping overlaps wa's and wc's"
    );
    assert_eq!(writers("page"), [wc], "page");
}

// ---- 3. two stores in one page 2 KiB apart: minipage separates them ----

#[test]
fn smo_vma_mini_separates_stores_at_minipage() {
    let (dir, out, log) = record("smo-graph-vma-mini", "minipage:64", |d| {
        vec![prog("smo_vma"), s("mini"), s(d.join("f")), s(d.join("out"))]
    });
    let (x, y, r) = (pid_of(&out, "x "), pid_of(&out, "y "), pid_of(&out, "r "));
    for g in [
        None,
        Some("minipage"),
        Some("minipage:64"),
        Some("minipage:2048"),
    ] {
        let extra: Vec<&str> = g.map_or(vec![], |g| vec!["--granularity", g]);
        let reached = procs(&backtrack(&log, &file(&dir, "out"), &extra));
        assert!(
            reached.contains(&r) && reached.contains(&y),
            "{g:?}: {reached:?}"
        );
        assert!(
            !reached.contains(&x),
            "{g:?}: x stored 2 KiB away {reached:?}"
        );
    }
    let page = procs(&backtrack(
        &log,
        &file(&dir, "out"),
        &["--granularity", "page"],
    ));
    assert!(page.contains(&x) && page.contains(&y), "page: {page:?}");
}

// ---- 4. a MAP_PRIVATE mapping ----

fn private() -> (PathBuf, String, PathBuf) {
    record("smo-graph-private", "page", |d| {
        vec![
            prog("smo_private"),
            s(d.join("f")),
            s(d.join("out1")),
            s(d.join("out2")),
        ]
    })
}

#[test]
fn private_stores_flow_nowhere_and_private_loads_see_the_shared_writer() {
    let (dir, out, log) = private();
    let (p, w, r) = (pid_of(&out, "p "), pid_of(&out, "w "), pid_of(&out, "r "));
    for g in ["page", "vma", "object"] {
        // OUT1: p loaded page 0 (which it never wrote) through its private mapping: w's store.
        let out1 = backtrack(&log, &file(&dir, "out1"), &["--granularity", g]);
        assert!(procs(&out1).contains(&p), "{g}");
        assert!(
            part_writers(&out1).contains(&w),
            "{g}: OUT1 <- page 0 <- w: {out1}"
        );
        // OUT2: r loaded page 1 MAP_SHARED: w's store. p stored to page 1 too, privately: no
        // flow to the file. (p is still reached, as a cause of the driver: it tells the
        // driver on a pipe that it has stored, and the driver then forks r; so the check is
        // that p is no writer of any part.)
        let out2 = backtrack(&log, &file(&dir, "out2"), &["--granularity", g]);
        assert!(procs(&out2).contains(&r), "{g}");
        let writers = part_writers(&out2);
        assert!(writers.contains(&w), "{g}: OUT2 <- page 1 <- w: {out2}");
        assert!(
            !writers.contains(&p),
            "{g}: p's private store reached OUT2: {out2}"
        );
    }
}

/// KNOWN GAP (capture side, not the graph): p stores to its private mapping before any process
/// maps the file shared, so the store is not monitored (docs/shared-memory.md: "Pages a process
/// copied before the object became shared are found in /proc/PID/pagemap and left alone"), and
/// nothing in the log says the page was copied: `vigil maps` shows `copied: 0 pages` for p's
/// mapping. The issue asks that "the maps view shows its copied pages"; the recorder would have
/// to record the copies it finds in pagemap (e.g. as an `smo_write` with `private: true` or a
/// note in the AddressSpace model). This test fails until then.
#[test]
fn maps_shows_the_private_writers_copied_page() {
    let (dir, out, log) = private();
    let p = pid_of(&out, "p ");
    let maps = run(vigil()
        .arg("maps")
        .arg(&log)
        .args(["--pid", &p.to_string()]));
    assert!(maps.status.success(), "{}", text(&maps.stderr));
    let maps = text(&maps.stdout);
    let f = dir.join("f").display().to_string();
    let lines: Vec<&str> = maps.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&f) && l.contains(" rw-p "))
        .unwrap_or_else(|| panic!("no private rw mapping of {f} in:\n{maps}"));
    let columns = lines[at + 1];
    assert!(
        columns.contains("copied: 1 page (0x1000-0x2000)"),
        "p copied file page 1 on write: {columns:?}\n{maps}"
    );
}

// ---- 5. false dependencies: K writers, one reader ----

#[test]
fn falsedep_counts_writers_by_granularity() {
    const K: usize = 4;
    for (layout, want) in [("whole", [K, K, 1]), ("own", [K, 1, 1])] {
        let (dir, out, log) = record(&format!("smo-graph-falsedep-{layout}"), "page", |d| {
            vec![
                prog("smo_falsedep"),
                s(d.join("f")),
                s(d.join("out")),
                s(K.to_string()),
                s(layout),
            ]
        });
        let writers: Vec<u64> = (0..K)
            .map(|i| pid_of(&out, &format!("writer {i} ")))
            .collect();
        let reader = pid_of(&out, "reader ");
        let got: Vec<usize> = ["object", "vma", "page"]
            .iter()
            .map(|g| {
                let reached = procs(&backtrack(&log, &file(&dir, "out"), &["--granularity", g]));
                assert!(reached.contains(&reader), "{layout} {g}");
                // Writer 0 is the true dependency at every granularity.
                assert!(reached.contains(&writers[0]), "{layout} {g}: {reached:?}");
                writers.iter().filter(|w| reached.contains(w)).count()
            })
            .collect();
        assert_eq!(got, want, "{layout}: writers blamed at object, vma, page");
    }
}

// ---- 6. a mapping and read(2)/write(2) of the same file ----

#[test]
fn stores_read_with_read2_and_writes_loaded_through_a_mapping() {
    let (dir, out, log) = record("smo-graph-rw", "page", |d| {
        vec![
            prog("smo_rw"),
            s("flows"),
            s(d.join("f")),
            s(d.join("out1")),
            s(d.join("out2")),
        ]
    });
    let [d0, ms, dw, ww, rr, rl] =
        ["d0 ", "ms ", "dw ", "ww ", "rr ", "rl "].map(|r| pid_of(&out, r));
    // OUT1: rr read(2) page 1, which ms stored through a mapping.
    let out1 = procs(&backtrack(&log, &file(&dir, "out1"), &[]));
    assert!(out1.contains(&rr) && out1.contains(&ms), "{out1:?}");
    for other in [d0, dw, ww] {
        assert!(
            !out1.contains(&other),
            "OUT1 reached {other}: {out1:?}\n{out}"
        );
    }
    // OUT2: rl loaded page 2, which ww wrote with write(2).
    let out2 = procs(&backtrack(&log, &file(&dir, "out2"), &[]));
    assert!(out2.contains(&rl) && out2.contains(&ww), "{out2:?}");
    for other in [d0, ms, dw] {
        assert!(
            !out2.contains(&other),
            "OUT2 reached {other}: {out2:?}\n{out}"
        );
    }
    // At object granularity every writer of the file is a cause of both.
    let object = procs(&backtrack(
        &log,
        &file(&dir, "out1"),
        &["--granularity", "object"],
    ));
    for w in [d0, ms, dw, ww] {
        assert!(object.contains(&w), "object: {w} {object:?}");
    }
}

// ---- 7. a granularity finer than the recording ----

#[test]
fn a_granularity_finer_than_an_object_recording_is_refused() {
    let (dir, stdout, log) = pages_object();
    let out = run(vigil().arg("backtrack").arg(&log).args([
        "--from",
        &file(&dir, "out"),
        "--granularity",
        "page",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one message: {err:?}");
    assert!(
        err.contains("--granularity page is finer than the recording (--smo object)"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // The recording's own granularity works, and cannot tell the writers apart.
    let own = procs(&backtrack(&log, &file(&dir, "out"), &[]));
    for w in ["w1 ", "w2 "] {
        assert!(own.contains(&pid_of(&stdout, w)), "{w}: {own:?}");
    }
}

fn pages_object() -> (PathBuf, String, PathBuf) {
    record("smo-graph-pages-object", "object", |d| {
        vec![
            prog("smo_pages"),
            s("run"),
            s(d.join("f")),
            s(d.join("out")),
            s("load"),
        ]
    })
}
