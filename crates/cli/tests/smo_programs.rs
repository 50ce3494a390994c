//! The real programs issue 11's shared-memory tests and benchmarks run (programs/smo_*.c): each
//! does natively what its header comment says (exit status or signal, output, files written),
//! and gives the same output under plain `vigil record` (pids and addresses aside). The second
//! half shows the programs are deterministic, so a later test can compare a monitored run with
//! a native one, and that the markers (getppid calls) tests look for are where the headers say.

mod common;

use common::*;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_event::{Event, EventKind, ExitStatus};
use vigil_testkit::{program, scratch_dir};

/// How a run ended and what it printed.
#[derive(Debug)]
struct Outcome {
    /// The shell's view: the exit code, or 128+N when killed by signal N.
    shell: i32,
    stdout: String,
    stderr: String,
}

fn native(cmd: &[OsString], dir: &Path) -> Outcome {
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd[0]));
    let shell = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => unreachable!("a process ends with a code or a signal"),
    };
    Outcome {
        shell,
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// `vigil record --syscalls default,getppid` of the command (the markers recorded too).
fn recorded(cmd: &[OsString], dir: &Path) -> (Outcome, Vec<Event>) {
    let args: Vec<&OsStr> = cmd.iter().map(OsString::as_os_str).collect();
    let (out, events, _) = record_in(dir, &["--syscalls", "default,getppid"], &args);
    let shell = out.status.code().expect("vigil exits with a code");
    (
        Outcome {
            shell,
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        },
        events,
    )
}

/// The output with what changes from run to run masked: pids, tids, SysV ids, addresses.
fn normalize(out: &str) -> String {
    out.lines()
        .map(|l| {
            l.split(' ')
                .map(|tok| match tok.split_once('=') {
                    Some((k, v))
                        if matches!(k, "pid" | "child" | "tid" | "shmid")
                            || v.starts_with("0x") =>
                    {
                        format!("{k}=*")
                    }
                    _ => tok.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of `key=` in the first line starting with `prefix`.
fn field<'a>(out: &'a str, prefix: &str, key: &str) -> &'a str {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"));
    let k = format!(" {key}=");
    let at = line
        .find(&k)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + k.len();
    // A value may hold spaces (a message): it runs to the next ` KEY=` word.
    let rest = &line[at..];
    let is_key = |w: &str| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let mut end = rest.len();
    let mut pos = 0;
    for w in rest.split(' ') {
        if pos > 0 && is_key(w) {
            end = pos - 1;
            break;
        }
        pos += w.len() + 1;
    }
    &rest[..end]
}

/// A run natively and a run under `vigil record`, each in a directory of its own (`make` builds
/// the command for a directory): both end the same way and print the same (normalized) output,
/// and the log says the traced command ended that way. Returns (native, its dir, recorded, its
/// dir, the recorded events).
fn both(
    tag: &str,
    make: impl Fn(&Path) -> Vec<OsString>,
) -> (Outcome, PathBuf, Outcome, PathBuf, Vec<Event>) {
    let ndir = scratch_dir(&format!("{tag}-native"));
    let vdir = scratch_dir(&format!("{tag}-vigil"));
    let n = native(&make(&ndir), &ndir);
    let (v, events) = recorded(&make(&vdir), &vdir);
    assert_eq!(
        n.shell, v.shell,
        "{tag}: the same end natively and under vigil\nnative: {}\nvigil: {}",
        n.stderr, v.stderr
    );
    assert_eq!(
        normalize(&n.stdout),
        normalize(&v.stdout),
        "{tag}: the same output natively and under vigil"
    );
    let root = events.first().expect("an event").pid;
    let end = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ProcessExit(x) if e.pid == root => Some(x.status),
            _ => None,
        })
        .expect("the traced command's exit is recorded");
    assert_eq!(end.shell_code(), n.shell, "{tag}: the log's exit status");
    (n, ndir, v, vdir, events)
}

fn s(x: impl AsRef<OsStr>) -> OsString {
    x.as_ref().to_os_string()
}

fn prog(name: &str) -> OsString {
    program(name).into_os_string()
}

/// getppid exits per pid, in log order.
fn markers(events: &[Event]) -> Vec<u32> {
    exits(events, "getppid")
        .into_iter()
        .map(|(e, _)| e.pid)
        .collect()
}

/// Pids whose exec has `mode` as argv[1].
fn exec_pids(events: &[Event], mode: &str) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ProcessExec(x)
                if x.argv.get(1).map(|a| a.as_ref()) == Some(mode.as_bytes()) =>
            {
                Some(e.pid)
            }
            _ => None,
        })
        .collect()
}

fn file_starts(path: &Path, offset: usize, want: &str) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got = &data[offset..offset + want.len()];
    assert_eq!(
        String::from_utf8_lossy(got),
        want,
        "{} at offset {offset}",
        path.display()
    );
}

// ---- smo_pages ----

fn pages_case(how: &str) {
    let (n, ndir, v, vdir, events) = both(&format!("smo-pages-{how}"), |d| {
        vec![
            prog("smo_pages"),
            s("run"),
            s(d.join("f")),
            s(d.join("out")),
            s(how),
        ]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    let reader = if how == "load" { "r-load" } else { "r-read" };
    let roles: Vec<&str> = n
        .stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(roles, ["w1", "w2", reader, "done"]);
    assert_eq!(field(&n.stdout, reader, "read"), "W2 wrote page 1");
    for dir in [&ndir, &vdir] {
        let f = dir.join("f");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 3 * 4096);
        file_starts(&f, 0, "W1 wrote page 0");
        file_starts(&f, 4096, "W2 wrote page 1");
        file_starts(&f, 8192, "\0\0\0\0");
        let out = std::fs::read(dir.join("out")).unwrap();
        assert_eq!(out.len(), 64, "OUT holds the 64 bytes read");
        assert!(out.starts_with(b"W2 wrote page 1\0"));
    }
    // One recording holds the three children, each an exec of the program, in order, each
    // with its two markers around its access.
    let w1 = exec_pids(&events, "w1");
    let w2 = exec_pids(&events, "w2");
    let r = exec_pids(&events, reader);
    assert_eq!((w1.len(), w2.len(), r.len()), (1, 1, 1), "{}", v.stdout);
    assert!(w1[0] != w2[0] && w2[0] != r[0]);
    assert_eq!(markers(&events), [w1[0], w1[0], w2[0], w2[0], r[0], r[0]]);
}

#[test]
fn smo_pages_writers_then_a_loading_reader() {
    pages_case("load");
}

#[test]
fn smo_pages_writers_then_a_pread_reader() {
    pages_case("read");
}

// ---- smo_cost ----

#[test]
fn smo_cost_runs_its_phases_between_markers() {
    let (n, _, _, _, events) = both("smo-cost", |d| vec![prog("smo_cost"), s(d.join("cost"))]);
    assert_eq!(n.shell, 0, "{n:?}");
    assert!(n.stdout.contains("\nsum=0 d=1\ndone"), "{}", n.stdout);
    let m = markers(&events);
    assert_eq!(
        m.len(),
        5,
        "a marker before, between and after the 4 phases"
    );
    assert!(m.iter().all(|&p| p == m[0]), "one process");
    // No system call inside a phase: between two marker exits, the next marker's entry and
    // the phase's shared-memory accesses only. The cost model, counted: in one slice a run of
    // reads is one fault, a run of writes one, reads then writes two, a read-modify-write one.
    assert_eq!(
        phases(&events),
        vec![
            vec!["smo_read"],
            vec!["smo_write"],
            vec!["smo_read", "smo_write"],
            vec!["smo_read_write"]
        ]
    );
}

/// The shared-memory events of each phase of smo_cost (between consecutive markers), by type;
/// asserts nothing else happened there but the next marker's entry.
fn phases(events: &[Event]) -> Vec<Vec<&'static str>> {
    let seqs: Vec<u64> = exits(events, "getppid")
        .iter()
        .map(|(e, _)| e.seq)
        .collect();
    seqs.windows(2)
        .map(|w| {
            let between: Vec<&Event> = events
                .iter()
                .filter(|e| e.seq > w[0] && e.seq < w[1])
                .collect();
            let other = between
                .iter()
                .filter(|e| !matches!(e.kind, EventKind::SmoAccess(_)))
                .count();
            assert_eq!(other, 1, "a phase makes no system call: {between:?}");
            between
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::SmoAccess(_) => Some(e.kind.event_type().name()),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// smo_cost under `--smo MODE`: the shared-memory events per phase.
fn cost_under(mode: &str) -> Vec<Vec<&'static str>> {
    let dir = scratch_dir(&format!("smo-cost-{}", mode.replace(':', "-")));
    let cost = prog("smo_cost");
    let file = dir.join("cost");
    let (out, events, _) = record_in(
        &dir,
        // Phases are ended by their getppid stops; a slice as long as allowed keeps the timer
        // from ending one in the middle on a loaded machine (an extra fault, a flaky count).
        &[
            "--syscalls",
            "default,getppid",
            "--smo",
            mode,
            "--smo-slice",
            "60s",
        ],
        &[cost.as_os_str(), file.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    phases(&events)
}

#[test]
fn the_cost_model_holds_per_slice_in_every_mode() {
    // minipage: every access faults (1000 loads, 1000 stores, both, one read-modify-write).
    let counts: Vec<(usize, usize, usize)> = cost_under("minipage:64")
        .iter()
        .map(|p| {
            let n = |t: &str| p.iter().filter(|x| **x == t).count();
            (n("smo_read"), n("smo_write"), n("smo_read_write"))
        })
        .collect();
    assert_eq!(
        counts,
        vec![(1000, 0, 0), (0, 1000, 0), (1000, 1000, 0), (0, 0, 1)]
    );
    // vma and object: each phase's syscall stop ended the slice; the first fault of a phase
    // grants the whole mapping (or object) at its level.
    for mode in ["vma", "object"] {
        assert_eq!(
            cost_under(mode),
            vec![
                vec!["smo_read"],
                vec!["smo_write"],
                vec!["smo_read", "smo_write"],
                vec!["smo_read_write"]
            ],
            "{mode}"
        );
    }
}

#[test]
fn smo_cost_long_phase_adds_a_marker() {
    let dir = scratch_dir("smo-cost-spin");
    let n = native(&[prog("smo_cost"), s(dir.join("c")), s("2")], &dir);
    assert_eq!(n.shell, 0, "{n:?}");
    let (_, events) = recorded(&[prog("smo_cost"), s(dir.join("c")), s("1")], &dir);
    assert_eq!(markers(&events).len(), 6);
}

// ---- smo_vma ----

#[test]
fn smo_vma_alias_sees_a_store_through_the_other_mapping() {
    let (n, ..) = both("smo-vma-alias", |d| {
        vec![prog("smo_vma"), s("alias"), s(d.join("f"))]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(field(&n.stdout, "alias", "read"), "stored through V1");
    let addr = |k| u64::from_str_radix(field(&n.stdout, "alias", k).trim_start_matches("0x"), 16);
    let (v1, v2, st, ld) = (
        addr("v1").unwrap(),
        addr("v2").unwrap(),
        addr("store").unwrap(),
        addr("load").unwrap(),
    );
    assert_eq!(st, v1 + 4096, "the store is at file page 1 through V1");
    assert_eq!(ld, v2, "the load is at file page 1 through V2");
    assert_ne!(st, ld, "two addresses, one file page");
}

#[test]
fn smo_vma_flows_and_minipage_programs() {
    let (n, ndir, _, _, events) = both("smo-vma-flows", |d| {
        vec![
            prog("smo_vma"),
            s("flows"),
            s(d.join("f")),
            s(d.join("out")),
        ]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    let maps: Vec<(&str, &str, &str)> = ["wa", "wb", "wc", "r "]
        .iter()
        .map(|r| {
            (
                r.trim(),
                field(&n.stdout, r, "map"),
                field(&n.stdout, r, "page"),
            )
        })
        .collect();
    assert_eq!(
        maps,
        [
            ("wa", "0-1", "0"),
            ("wb", "2-2", "2"),
            ("wc", "1-2", "1"),
            ("r", "0-1", "1")
        ]
    );
    assert_eq!(field(&n.stdout, "r ", "read"), "wc wrote page 1");
    let f = ndir.join("f");
    file_starts(&f, 0, "wa wrote page 0");
    file_starts(&f, 4096, "wc wrote page 1");
    file_starts(&f, 8192, "wb wrote page 2");
    assert!(
        std::fs::read(ndir.join("out"))
            .unwrap()
            .starts_with(b"wc wrote page 1\0")
    );
    assert_eq!(
        markers(&events).len(),
        8,
        "two markers in each of 4 children"
    );

    let (n, ndir, ..) = both("smo-vma-mini", |d| {
        vec![prog("smo_vma"), s("mini"), s(d.join("f")), s(d.join("out"))]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(field(&n.stdout, "y ", "offset"), "2048");
    assert_eq!(field(&n.stdout, "r ", "read"), "y@2048");
    let f = ndir.join("f");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 4096);
    file_starts(&f, 0, "x@0\0");
    file_starts(&f, 2048, "y@2048\0");
    assert_eq!(std::fs::read(ndir.join("out")).unwrap(), b"y@2048\0\0");
}

// ---- smo_private ----

#[test]
fn smo_private_stores_stay_private_and_loads_see_the_shared_writer() {
    let (n, ndir, _, vdir, events) = both("smo-private", |d| {
        vec![
            prog("smo_private"),
            s(d.join("f")),
            s(d.join("out1")),
            s(d.join("out2")),
        ]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    let roles: Vec<&str> = n
        .stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(roles, ["w", "p", "r", "done"]);
    assert_eq!(field(&n.stdout, "p ", "wrote"), "1");
    assert_eq!(field(&n.stdout, "p ", "page0"), "w shared page 0");
    assert_eq!(field(&n.stdout, "p ", "page1"), "p private page 1");
    assert_eq!(field(&n.stdout, "r ", "page1"), "w shared page 1");
    for dir in [&ndir, &vdir] {
        file_starts(&dir.join("f"), 4096, "w shared page 1\0");
        assert!(
            std::fs::read(dir.join("out1"))
                .unwrap()
                .starts_with(b"w shared page 0\0")
        );
        assert!(
            std::fs::read(dir.join("out2"))
                .unwrap()
                .starts_with(b"w shared page 1\0")
        );
    }
    // p: two access phases (store; loads), w and r one each.
    assert_eq!(markers(&events).len(), 8);
}

// ---- smo_misc ----

fn misc(mode: &str) -> (Outcome, PathBuf, Outcome, Vec<Event>) {
    let (n, ndir, v, _, events) = both(&format!("smo-misc-{mode}"), |d| {
        vec![prog("smo_misc"), s(mode), s(d)]
    });
    (n, ndir, v, events)
}

#[test]
fn smo_misc_segv_handler_handles_its_own_guard_page() {
    let (n, ..) = misc("segv-handler");
    assert_eq!(n.shell, 0, "{n:?}");
    let l = "segv-handler calls";
    assert_eq!(field(&n.stdout, l, "addr"), "guard+16");
    assert_eq!(field(&n.stdout, l, "code"), "SEGV_ACCERR");
    assert_eq!(field(&n.stdout, l, "shared_seen"), "1111");
    assert_eq!(field(&n.stdout, l, "shared_sum"), "3333");
    assert!(n.stdout.contains("segv-handler calls=1 "), "{}", n.stdout);
}

#[test]
fn smo_misc_threads_store_to_their_own_pages() {
    let (n, ndir, _, events) = misc("threads");
    assert_eq!(n.shell, 0, "{n:?}");
    assert!(n.stdout.contains("threads bad=0"));
    let data = std::fs::read(ndir.join("threads.smo")).unwrap();
    for t in 0..4usize {
        let w = u64::from_le_bytes(data[t * 4096 + 8..t * 4096 + 16].try_into().unwrap());
        assert_eq!(w, (t as u64 + 1) * 1000 + 1, "thread {t}'s page");
    }
    let threads = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ThreadStart(_)))
        .count();
    assert_eq!(threads, 4, "four threads recorded");
}

#[test]
fn smo_misc_fork_anon_memfd_and_sysv_exchange_data() {
    let (n, ..) = misc("fork-anon");
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(
        field(&n.stdout, "fork-anon", "read"),
        "child answers: question from the parent"
    );
    let (n, ..) = misc("memfd");
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(
        field(&n.stdout, "memfd", "read"),
        "child answers: memfd question"
    );
    let (n, _, _, events) = misc("sysv");
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(
        field(&n.stdout, "sysv", "page0"),
        "child via inherited attach"
    );
    assert_eq!(field(&n.stdout, "sysv", "page1"), "child via own attach");
    let starts = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ProcessStart(_)))
        .count();
    assert_eq!(starts, 2, "the command and its child");
}

#[test]
fn smo_misc_kernel_transfers_from_and_into_a_shared_mapping() {
    let (n, ndir, ..) = misc("write-from-smo");
    assert_eq!(n.shell, 0, "{n:?}");
    for step in [
        "write",
        "read",
        "pwrite",
        "pread",
        "writev",
        "readv",
        "send-recv",
    ] {
        assert!(
            n.stdout.contains(&format!("\n{step} ok n=64\n")),
            "{step}: {}",
            n.stdout
        );
    }
    let f = ndir.join("wfs.smo");
    file_starts(&f, 4096, "read into page 1\0");
    file_starts(&f, 8192, "page 0 written with pwrite\0");
    file_starts(&f, 8192 + 64, "readv into page 2\0");
    file_starts(&f, 8192 + 128, "page 0 written with pwrite\0");
}

#[test]
fn smo_misc_mprotect_ro_dies_of_sigsegv_as_natively() {
    let (n, _, v, events) = misc("mprotect-ro");
    assert_eq!(n.shell, 128 + libc::SIGSEGV, "{n:?}");
    assert!(n.stdout.contains("mprotect-ro pid="));
    assert!(n.stdout.contains("\nstoring to read-only addr=0x"));
    assert!(!n.stdout.contains("succeeded") && !v.stdout.contains("succeeded"));
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::ProcessExit(x) if matches!(x.status, ExitStatus::Signal { signal, .. } if signal == libc::SIGSEGV)
    )));
}

#[test]
fn smo_misc_unmap_remap_and_deleted_keep_their_data() {
    let (n, ndir, ..) = misc("unmap-remap");
    assert_eq!(n.shell, 0, "{n:?}");
    let l = "unmap-remap page2";
    assert_eq!(field(&n.stdout, l, "after"), "moved page 2");
    assert_eq!(field(&n.stdout, l, "file4"), "grown page 4");
    file_starts(&ndir.join("remap.smo"), 3 * 4096, "page 3\0");
    let (n, ndir, ..) = misc("deleted");
    assert_eq!(n.shell, 0, "{n:?}");
    assert_eq!(field(&n.stdout, "deleted", "nlink"), "0");
    assert_eq!(field(&n.stdout, "deleted", "again"), "stored after close");
    assert!(!ndir.join("deleted.smo").exists());
}

/// The three dumps of `smo_misc maps`, each line reduced to perms, offset and path (the
/// directory replaced by DIR).
fn maps_dumps(out: &str, dir: &Path) -> Vec<Vec<String>> {
    let d = dir.display().to_string();
    let mut dumps: Vec<Vec<String>> = Vec::new();
    for l in out.lines() {
        if l.starts_with("== maps ") {
            dumps.push(Vec::new());
        } else if let Some(cur) = dumps.last_mut() {
            if l.starts_with("maps ") || l == "done" {
                continue;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5..).map(|p| p.join(" ")).unwrap_or_default();
            cur.push(format!("{} {} {}", f[1], f[2], path.replace(&d, "DIR")));
        }
    }
    dumps
}

#[test]
fn smo_misc_maps_prints_three_snapshots() {
    let ndir = scratch_dir("smo-misc-maps-native");
    let vdir = scratch_dir("smo-misc-maps-vigil");
    let cmd = |d: &Path| vec![prog("smo_misc"), s("maps"), s(d)];
    let n = native(&cmd(&ndir), &ndir);
    assert_eq!(n.shell, 0, "{n:?}");
    let nd = maps_dumps(&n.stdout, &ndir);
    assert_eq!(nd.len(), 3);
    let file = "DIR/maps.smo".to_string();
    assert!(!nd[0].iter().any(|l| l.ends_with(&file)));
    assert!(
        nd[1].contains(&format!("rw-s 00000000 {file}")),
        "{:?}",
        nd[1]
    );
    assert!(
        nd[1].contains(&format!("r--s 00001000 {file}")),
        "{:?}",
        nd[1]
    );
    assert!(
        nd[1]
            .iter()
            .any(|l| l.starts_with("rw-s") && l.contains("/dev/zero"))
    );
    assert!(!nd[2].iter().any(|l| l.contains("/dev/zero")));
    assert!(
        nd[2].contains(&format!("rw-s 00000000 {file}")),
        "{:?}",
        nd[2]
    );
    let (v, events) = recorded(&cmd(&vdir), &vdir);
    assert_eq!(v.shell, 0, "{v:?}");
    // The same mappings with the program's own protections (vigil gives them back while a
    // maps file is read), in another order: vigil places shared mappings in its address
    // window (docs/architecture.md).
    let sorted = |d: Vec<Vec<String>>| -> Vec<Vec<String>> {
        d.into_iter()
            .map(|mut l| {
                l.sort();
                l
            })
            .collect()
    };
    assert_eq!(
        sorted(maps_dumps(&v.stdout, &vdir)),
        sorted(nd),
        "the same layouts under vigil"
    );
    assert_eq!(markers(&events).len(), 3);
}

// ---- smo_ring ----

/// The checksum smo_ring's two sides compute over N messages, computed here independently.
fn ring_checksum(n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..n {
        for k in 0..8u64 {
            let v = if k == 0 {
                i
            } else {
                (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((k << 56) | (k * 0x123_4567))
            };
            h = (h ^ v).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

#[test]
fn smo_ring_both_sides_agree_on_every_message() {
    let (n, ndir, ..) = both("smo-ring", |d| {
        vec![prog("smo_ring"), s("3000"), s(d.join("ring"))]
    });
    assert_eq!(n.shell, 0, "{n:?}");
    let want = format!("{:016x}", ring_checksum(3000));
    assert_eq!(
        n.stdout.trim(),
        format!("ring n=3000 producer={want} consumer={want}")
    );
    assert_eq!(
        std::fs::metadata(ndir.join("ring")).unwrap().len(),
        64 * 1024
    );
    // The default: 10000 messages through a /dev/shm file it removes.
    let dir = scratch_dir("smo-ring-default");
    let n = native(&[prog("smo_ring")], &dir);
    assert_eq!(n.shell, 0, "{n:?}");
    let want = format!("{:016x}", ring_checksum(10_000));
    assert_eq!(
        n.stdout.trim(),
        format!("ring n=10000 producer={want} consumer={want}")
    );
}

// ---- smo_falsedep ----

#[test]
fn smo_falsedep_writers_then_one_reader() {
    for layout in ["whole", "own"] {
        let (n, ndir, _, _, events) = both(&format!("smo-falsedep-{layout}"), |d| {
            vec![
                prog("smo_falsedep"),
                s(d.join("f")),
                s(d.join("out")),
                s("3"),
                s(layout),
            ]
        });
        assert_eq!(n.shell, 0, "{n:?}");
        let lines: Vec<&str> = n.stdout.lines().collect();
        assert_eq!(lines.len(), 5, "{}", n.stdout);
        for (i, line) in lines.iter().take(3).enumerate() {
            assert!(line.starts_with(&format!("writer {i} pid=")));
            assert!(line.ends_with(&format!(" page={i}")));
            file_starts(&ndir.join("f"), i * 4096, &format!("writer {i}\0"));
        }
        assert_eq!(field(&n.stdout, "reader", "read"), "writer 0");
        assert_eq!(lines[4], "done");
        assert_eq!(std::fs::read(ndir.join("out")).unwrap().len(), 64);
        assert_eq!(markers(&events).len(), 8);
    }
}
