//! Backtracking and forward tracking over logs of real processes.

mod common;

use common::*;
use serde_json::Value as J;
use std::path::Path;
use vigil_event::EventKind;
use vigil_testkit::scratch_dir;

/// Runs `vigil backtrack|forward LOG --from OBJ --format json [extra]` and parses the result.
fn track(cmd: &str, log: &Path, from: &str, extra: &[&str]) -> J {
    let out = run(vigil()
        .arg(cmd)
        .arg(log)
        .args(["--from", from, "--format", "json"])
        .args(extra));
    assert!(out.status.success(), "{cmd} {from}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn node_id(g: &J, pred: impl Fn(&J) -> bool) -> Option<u64> {
    g["nodes"]
        .as_array()?
        .iter()
        .find(|n| pred(n))
        .and_then(|n| n["id"].as_u64())
}

fn has_path(g: &J, path: &Path) -> bool {
    node_id(g, |n| n["path"].as_str() == path.to_str()).is_some()
}

fn has_pid(g: &J, pid: u32) -> bool {
    node_id(g, |n| n["pid"].as_u64() == Some(pid as u64)).is_some()
}

/// The edge from -> to made by one of `calls`: its seq and syscall.
fn edge(g: &J, from: u64, to: u64, calls: &[&str]) -> Option<(u64, String)> {
    g["edges"]
        .as_array()?
        .iter()
        .find(|e| {
            e["from"] == from
                && e["to"] == to
                && calls.contains(&e["syscall"].as_str().unwrap_or(""))
        })
        .map(|e| {
            (
                e["seq"].as_u64().unwrap_or(0),
                e["syscall"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Pids of the processes the log started, in start order.
fn started_pids(events: &[vigil_event::Event]) -> Vec<u32> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ProcessStart(_)))
        .map(|e| e.pid)
        .collect()
}

#[test]
fn the_source_documents_worked_example() {
    // T0 P1 creates P2; T1 P2 writes B; T2 P2 writes C; T3 P1 reads A; T4 P1 creates P3;
    // T5 P3 reads B; T6 P3 writes X; T7 P3 reads C; T8 P1 creates P4; T9 P4 writes D.
    // P1 is the shell; the subshells are P2-P4; builtins make P1 itself read A.
    let dir = scratch_dir("worked").canonicalize().unwrap();
    std::fs::write(dir.join("A"), "from the outside\n").unwrap();
    std::fs::write(dir.join("example.sh"), "( echo b > B; echo c > C )\nread -r x < A\n( read -r y < B; echo \"$y\" > X; read -r z < C )\n( echo d > D )\n").unwrap();
    let (out, events, log) = record_in(&dir, &[], &[os("sh"), os("example.sh")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pids = started_pids(&events);
    let [p1, p2, p3, p4] = pids[..] else {
        panic!("expected 4 processes, got {pids:?}")
    };
    let [a, b, c, x, d] = ["A", "B", "C", "X", "D"].map(|f| dir.join(f));

    let back = track("backtrack", &log, &format!("file:{}", x.display()), &[]);
    for f in [&a, &b, &x] {
        assert!(has_path(&back, f), "backtrack from X lacks {}", f.display());
    }
    for p in [p1, p2, p3] {
        assert!(has_pid(&back, p), "backtrack from X lacks process {p}");
    }
    for f in [&c, &d] {
        assert!(
            !has_path(&back, f),
            "backtrack from X must not contain {}",
            f.display()
        );
    }
    assert!(!has_pid(&back, p4), "backtrack from X must not contain P4");
    let id = |pred: &dyn Fn(&J) -> bool| node_id(&back, pred).expect("node");
    let (n1, n2, n3) = (
        id(&|n| n["pid"] == p1),
        id(&|n| n["pid"] == p2),
        id(&|n| n["pid"] == p3),
    );
    let (na, nb, nx) = (
        id(&|n| n["path"].as_str() == a.to_str()),
        id(&|n| n["path"].as_str() == b.to_str()),
        id(&|n| n["path"].as_str() == x.to_str()),
    );
    let t = |from, to, calls: &[&str], what: &str| {
        edge(&back, from, to, calls).unwrap_or_else(|| panic!("edge {what} missing: {back}"))
    };
    let create = ["fork", "clone", "vfork"];
    let (t0, t1, t3) = (
        t(n1, n2, &create, "P1->P2"),
        t(n2, nb, &["write"], "P2->B"),
        t(na, n1, &["read"], "A->P1"),
    );
    let (t4, t5, t6) = (
        t(n1, n3, &create, "P1->P3"),
        t(nb, n3, &["read"], "B->P3"),
        t(n3, nx, &["write"], "P3->X"),
    );
    assert!(
        t0.0 < t1.0 && t1.0 < t3.0 && t3.0 < t4.0 && t4.0 < t5.0 && t5.0 < t6.0,
        "T0 < T1 < T3 < T4 < T5 < T6"
    );
    assert_eq!(back["detection_point"], nx);
    assert!(
        back["entry_points"]
            .as_array()
            .unwrap()
            .contains(&J::from(na)),
        "A is an entry point"
    );

    let fwd = track("forward", &log, &format!("file:{}", a.display()), &[]);
    for f in [&x, &d] {
        assert!(has_path(&fwd, f), "forward from A lacks {}", f.display());
    }
    for p in [p1, p3, p4] {
        assert!(has_pid(&fwd, p), "forward from A lacks process {p}");
    }
    for f in [&b, &c] {
        assert!(
            !has_path(&fwd, f),
            "forward from A must not contain {}",
            f.display()
        );
    }
    assert!(!has_pid(&fwd, p2), "forward from A must not contain P2");
}

#[test]
fn data_is_followed_through_a_pipe() {
    let dir = scratch_dir("graph-pipe").canonicalize().unwrap();
    std::fs::write(dir.join("secret"), "the secret\n").unwrap();
    let (out, events, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat secret | tr a-z A-Z > out")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("out").display()),
        &[],
    );
    assert!(
        has_path(&g, &dir.join("secret")),
        "the secret reaches out through cat | tr: {g}"
    );
    assert!(
        node_id(&g, |n| n["kind"] == "pipe").is_some(),
        "through the pipe"
    );
    let cat = events.iter().find_map(|e| match &e.kind {
        EventKind::ProcessExec(p) if p.exe.to_string().ends_with("/cat") => Some(e.pid),
        _ => None,
    });
    assert!(has_pid(&g, cat.unwrap()));
}

#[test]
fn data_is_followed_across_a_loopback_tcp_connection() {
    let dir = scratch_dir("graph-tcp").canonicalize().unwrap();
    std::fs::write(dir.join("secret"), "exfiltrated\n").unwrap();
    // A server that writes what it receives to `received`, and a client that sends `secret`.
    let script = r#"
import socket, sys, os
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
if os.fork() == 0:
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(open("secret", "rb").read()); c.close(); os._exit(0)
conn, _ = srv.accept()
data = conn.recv(1024)
open("received", "wb").write(data)
os.wait()
"#;
    std::fs::write(dir.join("tcp.py"), script).unwrap();
    let (out, _events, log) = record_in(&dir, &[], &[os("python3"), os("tcp.py")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("received").display()),
        &[],
    );
    assert!(
        node_id(&g, |n| n["kind"] == "socket"
            && n["label"].as_str().is_some_and(|l| l.contains("127.0.0.1")))
        .is_some(),
        "through the connection: {g}"
    );
    assert!(
        has_path(&g, &dir.join("secret")),
        "the client's read of the secret is found: {g}"
    );
    let summary = text(&run(vigil().arg("summary").arg(&log)).stdout);
    assert!(
        summary.contains("connected to by")
            && summary.contains("accepted from by")
            && summary.contains("127.0.0.1"),
        "{summary}"
    );
}

#[test]
fn a_renamed_file_is_still_found() {
    let dir = scratch_dir("graph-rename").canonicalize().unwrap();
    std::fs::write(dir.join("secret"), "x\n").unwrap();
    let (out, _, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat secret > tmp1; mv tmp1 final")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("final").display()),
        &[],
    );
    assert!(
        has_path(&g, &dir.join("secret")),
        "written as tmp1, renamed to final: {g}"
    );
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["syscall"].as_str().unwrap_or("").starts_with("rename")),
        "the rename is part of the story"
    );
}

#[test]
fn json_has_the_documented_shape_and_filters_are_counted() {
    let dir = scratch_dir("graph-json").canonicalize().unwrap();
    let (_, _, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat /etc/hostname > copy")],
    );
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("copy").display()),
        &[],
    );
    // `smo` only when the log has shared-memory accesses: sh maps glibc's
    // gconv-modules.cache MAP_SHARED, and its loads from it are recorded (issue 11).
    let mut keys: Vec<&String> = g.as_object().unwrap().keys().collect();
    keys.sort();
    let has_smo = read_log(&log)
        .iter()
        .any(|e| matches!(e.kind, vigil_event::EventKind::SmoAccess(_)));
    let mut want = vec![
        "detection_point",
        "edges",
        "entry_points",
        "filtered",
        "nodes",
    ];
    if has_smo {
        want.push("smo");
    }
    assert_eq!(keys, want);
    for n in g["nodes"].as_array().unwrap() {
        let mut k: Vec<&String> = n.as_object().unwrap().keys().collect();
        k.sort();
        assert_eq!(k, ["id", "kind", "label", "path", "pid"]);
        assert!(
            ["process", "file", "filename", "pipe", "socket", "smo"]
                .contains(&n["kind"].as_str().unwrap())
        );
    }
    for e in g["edges"].as_array().unwrap() {
        let mut k: Vec<&String> = e.as_object().unwrap().keys().collect();
        k.sort();
        assert_eq!(k, ["from", "seq", "syscall", "time_ns", "to"]);
    }
    let filtered = g["filtered"]["shared libraries and the loader cache"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        filtered > 0,
        "libc was filtered and counted: {}",
        g["filtered"]
    );
    let all = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("copy").display()),
        &["--include-all"],
    );
    assert!(all["nodes"].as_array().unwrap().len() > g["nodes"].as_array().unwrap().len());
    assert!(all["filtered"].as_object().unwrap().is_empty());
    let excl = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("copy").display()),
        &["--exclude", "/etc/hostname"],
    );
    assert!(!has_path(&excl, Path::new("/etc/hostname")));
    assert_eq!(excl["filtered"]["--exclude /etc/hostname"], 1);
    let explain = text(&run(vigil().args(["backtrack", "--explain-filters"])).stdout);
    assert!(
        explain.contains("/proc/**") && explain.contains("*.so"),
        "{explain}"
    );
}

#[test]
fn tree_dot_and_svg_outputs() {
    let dir = scratch_dir("graph-out").canonicalize().unwrap();
    let (_, _, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat /etc/hostname > copy")],
    );
    let from = format!("file:{}", dir.join("copy").display());
    let tree = text(&run(vigil().arg("backtrack").arg(&log).args(["--from", &from])).stdout);
    // (cat copies with copy_file_range.)
    assert!(
        tree.contains("(detection point")
            && tree.contains("<- copy_file_range")
            && tree.contains("/etc/hostname")
            && !tree.contains("\x1b["),
        "{tree}"
    );
    let dot = text(
        &run(vigil()
            .arg("backtrack")
            .arg(&log)
            .args(["--from", &from, "--format", "dot"]))
        .stdout,
    );
    assert!(
        dot.starts_with("digraph vigil {") && dot.contains("-> n"),
        "{dot}"
    );
    let svg_path = dir.join("g.svg");
    let out = run(vigil()
        .arg("backtrack")
        .arg(&log)
        .args(["--from", &from, "--format", "svg", "-o"])
        .arg(&svg_path));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("hostname"),
        "{}",
        &svg[..svg.len().min(300)]
    );
}

#[test]
fn processes_and_events_as_starting_points() {
    let dir = scratch_dir("graph-proc").canonicalize().unwrap();
    let (_, events, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat /etc/hostname > copy")],
    );
    let root = events[0].pid;
    let g = track("forward", &log, &format!("proc:{root}"), &[]);
    assert!(has_path(&g, &dir.join("copy")), "{g}");
    let g1 = track("forward", &log, &format!("proc:{root}@1"), &[]);
    assert_eq!(g1["detection_point"], g["detection_point"]);
    let write = events.iter().find(|e| matches!(&e.kind, EventKind::SyscallExit(x) if x.call.to_string() == "copy_file_range" && x.ret > 0)).unwrap();
    let g = track("backtrack", &log, &format!("event:{}", write.seq), &[]);
    assert!(has_path(&g, Path::new("/etc/hostname")), "{g}");
}

#[test]
fn bad_objects_and_times_are_refused_clearly() {
    let dir = scratch_dir("graph-bad").canonicalize().unwrap();
    let (_, _, log) = record_in(
        &dir,
        &[],
        &[os("sh"), os("-c"), os("cat /etc/hostname > copy")],
    );
    let fail = |args: &[&str]| {
        let out = run(vigil().arg("backtrack").arg(&log).args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        text(&out.stderr)
    };
    let copy = dir.join("copy").display().to_string();
    let e = fail(&["--from", &format!("file:{copy}x")]);
    assert!(
        e.contains("no file") && e.contains(&copy) && e.contains("nearest"),
        "{e}"
    );
    let e = fail(&["--from", "proc:99999999"]);
    assert!(e.contains("no process 99999999"), "{e}");
    let e = fail(&["--from", "bogus"]);
    assert!(e.contains("file:PATH"), "{e}");
    let e = fail(&["--from", "proc:12@0"]);
    assert!(e.contains("proc:12@0"), "{e}");
    let e = fail(&["--from", &format!("file:{copy}"), "--at", "999999999"]);
    assert!(e.contains("outside the log"), "{e}");
    let e = fail(&["--from", &format!("file:{copy}"), "--at", "+10000s"]);
    assert!(e.contains("outside the log"), "{e}");
    let e = fail(&["--from", &format!("file:{copy}"), "--at", "yesterday"]);
    assert!(e.contains("not a time"), "{e}");
    // A bad glob is a bad command line (exit 2), as `show --path` says.
    let out = run(vigil().arg("backtrack").arg(&log).args([
        "--from",
        &format!("file:{copy}"),
        "--exclude",
        "[unclosed",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--exclude"),
        "{}",
        text(&out.stderr)
    );
    let out = run(vigil()
        .arg("backtrack")
        .arg(dir.join("missing.vlog"))
        .args(["--from", "proc:1"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.vlog"));
}

#[test]
fn permission_and_attribute_changes_are_edges() {
    let dir = scratch_dir("graph-attr").canonicalize().unwrap();
    std::fs::write(dir.join("target"), "x").unwrap();
    let (out, _, log) = record_in(
        &dir,
        &[],
        &[
            os("sh"),
            os("-c"),
            os(
                "chmod 600 target; setfattr -n user.tag -v evil target 2>/dev/null || python3 -c 'import os; os.setxattr(\"target\", \"user.tag\", b\"evil\")'",
            ),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("target").display()),
        &[],
    );
    let calls: Vec<&str> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["syscall"].as_str())
        .collect();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("fchmodat") || *c == "chmod"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c.ends_with("setxattr")), "{calls:?}");
}

#[test]
fn a_written_library_is_followed_with_the_default_filters_on() {
    // `hook.so` matches the default noise glob **/*.so, like a library an attacker drops. The
    // shell writes it, cat reads it: backtracking from cat's output shows the write, while the
    // libraries nobody wrote (libc) stay filtered and counted.
    let dir = scratch_dir("graph-written-so").canonicalize().unwrap();
    let (out, events, log) = record_in(
        &dir,
        &[],
        &[
            os("sh"),
            os("-c"),
            os("echo hooked > hook.so; cat hook.so > out"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = track(
        "backtrack",
        &log,
        &format!("file:{}", dir.join("out").display()),
        &[],
    );
    let so = node_id(&g, |n| n["path"].as_str() == dir.join("hook.so").to_str())
        .unwrap_or_else(|| panic!("hook.so is shown: {g}"));
    let sh = started_pids(&events)[0];
    let sh_node = node_id(&g, |n| n["pid"].as_u64() == Some(sh as u64))
        .unwrap_or_else(|| panic!("the shell that wrote it: {g}"));
    assert!(
        edge(&g, sh_node, so, &["write"]).is_some(),
        "the shell's write to hook.so: {g}"
    );
    assert!(
        !g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["label"].as_str().unwrap_or("").contains("libc.so")),
        "{g}"
    );
    assert!(
        g["filtered"]["shared libraries and the loader cache"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        g["filtered"]
    );
}
