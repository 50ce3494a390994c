//! `vigil maps` against the kernel's own /proc/PID/maps (a real program copies its maps at
//! three points of its run), `maps`'s refusals, and the explanation of a fatal fault by
//! `summary` and `show`: on real crashes as recorded, and on the same recordings with the
//! fault the recorder gives written into their signal event (export, edit, import), so the
//! explanation is checked whatever the recorder fills in.

mod common;

use common::*;
use std::path::Path;
use vigil_event::{Event, EventKind, Value};
use vigil_testkit::{program, scratch_dir};

/// The fields of a /proc/PID/maps line: start, end, perms, offset, inode, path.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Line {
    start: u64,
    end: u64,
    perms: String,
    offset: u64,
    inode: u64,
    path: String,
}

fn parse_line(line: &str) -> Line {
    let mut rest = line;
    let mut f = Vec::new();
    for _ in 0..5 {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        f.push(&rest[..end]);
        rest = &rest[end..];
    }
    let (start, end) = f[0].split_once('-').unwrap();
    Line {
        start: u64::from_str_radix(start, 16).unwrap(),
        end: u64::from_str_radix(end, 16).unwrap(),
        perms: f[1].to_string(),
        offset: u64::from_str_radix(f[2], 16).unwrap(),
        inode: f[4].parse().unwrap(),
        path: rest.trim().to_string(),
    }
}

/// The maps lines of `vigil maps` text output (vigil's columns are indented, comments start
/// with `#`).
fn model_lines(stdout: &str) -> Vec<Line> {
    stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with('#'))
        .map(parse_line)
        .collect()
}

/// Adjacent private anonymous mappings with the same permissions, joined.
fn join_anonymous(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for l in lines {
        match out.last_mut() {
            Some(p)
                if p.end == l.start
                    && p.perms == l.perms
                    && p.perms.ends_with('p')
                    && p.inode == 0
                    && l.inode == 0
                    && p.path.is_empty()
                    && l.path.is_empty() =>
            {
                p.end = l.end
            }
            _ => out.push(l),
        }
    }
    out
}

/// Compares the kernel's maps with the model's. Documented differences:
/// - `[stack]`: its start moves down as the stack grows, which no event says: the end only;
/// - shared anonymous memory (`/dev/zero (deleted)`) mapped by a recorded mmap: the model
///   names it with an id of its own (the kernel's shmem inode is in no event): not the inode;
/// - `[heap]` when the recording left brk out (`with_heap` false): not compared;
/// - adjacent private anonymous mappings with the same permissions: the kernel keeps them
///   apart when one had pages written and the other not (anon_vma, VM_ACCOUNT), which no
///   event says (a mapping placed beside a written one shares its anon_vma): compared joined.
fn compare(real: &str, model: &str, with_heap: bool, what: &str) {
    let keep = |l: &Line| with_heap || l.path != "[heap]";
    let real: Vec<Line> = join_anonymous(
        real.lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_line)
            .filter(keep)
            .collect(),
    );
    let model: Vec<Line> = join_anonymous(model_lines(model).into_iter().filter(keep).collect());
    let norm = |l: &Line| {
        let mut l = l.clone();
        if l.path == "[stack]" {
            l.start = 0;
        }
        if l.path == "/dev/zero (deleted)" && l.perms.ends_with('s') {
            l.inode = 0;
        }
        l
    };
    let (r, m): (Vec<Line>, Vec<Line>) = (
        real.iter().map(norm).collect(),
        model.iter().map(norm).collect(),
    );
    assert!(
        r == m,
        "{what}: the model differs from the kernel\nkernel:\n{}\nmodel:\n{}",
        real.iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join("\n"),
        model
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(r.len() > 10, "{what}: a real layout has many mappings");
}

fn maps(log: &Path, args: &[&str]) -> std::process::Output {
    run(vigil().arg("maps").arg(log).args(args))
}

fn first_pid(events: &[Event]) -> u32 {
    events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ProcessStart(_)))
        .map(|e| e.pid)
        .unwrap()
}

/// The seqs of the writes of `pid` to standard error (maps_points's marks).
fn marks(events: &[Event], pid: u32) -> Vec<u64> {
    exits(events, "write")
        .into_iter()
        .filter(|(e, x)| {
            e.pid == pid
                && x.ret > 0
                && e.arg("fd")
                    .and_then(Value::as_fd)
                    .is_some_and(|fd| fd.num == 2)
        })
        .map(|(e, _)| e.seq)
        .collect()
}

#[test]
fn maps_agrees_with_the_kernel_at_three_points() {
    let prog = program("maps_points");
    // The default selection has no brk (it is not a decoded call): the heap is compared when
    // the recording adds it.
    for (extra, with_heap) in [(&[][..], false), (&["--syscalls", "default,brk"][..], true)] {
        let dir = scratch_dir("maps-points");
        let data = dir.join("data");
        let (out, events, log) = record_in(
            &dir,
            extra,
            &[prog.as_os_str(), dir.as_os_str(), data.as_os_str()],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let pid = first_pid(&events);
        let seqs = marks(&events, pid);
        assert_eq!(seqs.len(), 3, "three marks: {}", text(&out.stderr));
        for (n, seq) in seqs.iter().enumerate() {
            let real = std::fs::read_to_string(dir.join(format!("maps.{}", n + 1))).unwrap();
            let o = maps(&log, &["--pid", &pid.to_string(), "--at", &seq.to_string()]);
            assert!(o.status.success(), "{}", text(&o.stderr));
            let model = text(&o.stdout);
            assert!(
                model.starts_with(&format!("# process {pid} at seq {seq} (")),
                "{model}"
            );
            compare(
                &real,
                &model,
                with_heap,
                &format!("point {} (seq {seq}, {extra:?})", n + 1),
            );
            // The JSON form says the same mappings.
            let j = maps(
                &log,
                &[
                    "--pid",
                    &pid.to_string(),
                    "--at",
                    &seq.to_string(),
                    "--format",
                    "json",
                ],
            );
            assert!(j.status.success(), "{}", text(&j.stderr));
            let objs: Vec<serde_json::Value> = text(&j.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let lines = model_lines(&model);
            assert_eq!(objs.len(), lines.len());
            for (o, l) in objs.iter().zip(&lines) {
                assert_eq!(o["start"].as_u64(), Some(l.start));
                assert_eq!(o["end"].as_u64(), Some(l.end));
                assert_eq!(o["perms"].as_str(), Some(l.perms.as_str()));
                assert_eq!(o["seq"].as_u64(), Some(*seq));
                assert_eq!(o["shared"].as_bool(), Some(l.perms.ends_with('s')));
            }
        }
        // vigil's columns at point 2: the data file mapped shared is a shared-memory object,
        // its private mapping is not; anonymous memory is anonymous.
        let o = maps(
            &log,
            &["--pid", &pid.to_string(), "--at", &seqs[1].to_string()],
        );
        let model = text(&o.stdout);
        let lines: Vec<&str> = model.lines().collect();
        let data_path = data.to_str().unwrap();
        let cols = |pred: &dyn Fn(&str) -> bool| -> Vec<String> {
            lines
                .windows(2)
                .filter(|w| !w[0].starts_with(' ') && pred(w[0]))
                .map(|w| w[1].trim().to_string())
                .collect()
        };
        // Split in three by the mprotect of its middle page.
        let shared = cols(&|l| l.ends_with(data_path) && l.contains("-s "));
        assert_eq!(shared.len(), 3, "{model}");
        for c in &shared {
            assert!(
                c.starts_with("shared file  smo: file ") && c.contains("  read: "),
                "{c}"
            );
        }
        let private = cols(&|l| l.ends_with(data_path) && l.contains(" rw-p "));
        assert_eq!(private.len(), 1, "{model}");
        assert!(
            private[0].starts_with("private file  read: ") && private[0].contains("copied: "),
            "{}",
            private[0]
        );
        let sanon = cols(&|l| l.contains(" rw-s ") && l.ends_with("/dev/zero (deleted)"));
        assert_eq!(sanon.len(), 1, "{model}");
        assert!(
            sanon[0].starts_with("shared anon  smo: shared_anon "),
            "{}",
            sanon[0]
        );
        let anon = cols(&|l| l.contains(" ---p ") && l.ends_with(" 0"));
        assert!(anon.iter().all(|c| c == "private anon"), "{anon:?}");
    }
}

/// With shared-memory monitoring (issue 11's recorder: `--smo page`, the default), the
/// stores maps_points makes show in `maps`: the written page of the shared file mapping, and
/// the page its private mapping copied on write. NEEDS the recorder's `smo_*` events
/// (crates/capture-ptrace, the lead's part of issue 11).
#[test]
fn maps_shows_the_parts_written_and_the_pages_copied() {
    let prog = program("maps_points");
    let dir = scratch_dir("maps-smo");
    let data = dir.join("data");
    let (out, events, log) = record_in(
        &dir,
        &[],
        &[prog.as_os_str(), dir.as_os_str(), data.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::SmoAccess(_))),
        "the recording has no shared-memory access events: this test needs the recorder's \
         --smo monitoring (issue 11, crates/capture-ptrace)"
    );
    let pid = first_pid(&events);
    let seqs = marks(&events, pid);
    let o = maps(
        &log,
        &["--pid", &pid.to_string(), "--at", &seqs[1].to_string()],
    );
    let model = text(&o.stdout);
    let data_path = data.to_str().unwrap();
    let lines: Vec<&str> = model.lines().collect();
    let cols = |perms: &str| -> String {
        lines
            .windows(2)
            .find(|w| w[0].ends_with(data_path) && w[0].contains(perms))
            .map(|w| w[1].trim().to_string())
            .unwrap_or_default()
    };
    // Its first page (the mprotect splits it: the first line is page 0).
    // shared[0] = 'a': file page 0 written (at least its first byte).
    let shared = cols(" rw-s ");
    assert!(shared.contains("written: 0x0-"), "{model}");
    // priv[P] = 'b' through the private mapping of pages 4..7: page 5 copied.
    let private = cols(" rw-p ");
    assert!(
        private.contains("copied: 1 page (0x5000-0x6000)"),
        "{model}"
    );
}

/// forkexec /bin/true: a parent and a child that forks, execs and exits.
fn forkexec_log(dir: &Path, extra: &[&str]) -> (Vec<Event>, std::path::PathBuf) {
    let fe = program("forkexec");
    let (out, events, log) = record_in(dir, extra, &[fe.as_os_str(), os("/bin/true")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (events, log)
}

#[test]
fn maps_of_a_forked_child_is_its_parents_then_its_own() {
    let dir = scratch_dir("maps-fork");
    let (events, log) = forkexec_log(&dir, &[]);
    let parent = first_pid(&events);
    let start = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ProcessStart(_)) && e.pid != parent)
        .unwrap();
    let child = start.pid;
    let at = start.seq.to_string();
    let p = maps(&log, &["--pid", &parent.to_string(), "--at", &at]);
    let c = maps(&log, &["--pid", &child.to_string(), "--at", &at]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert_eq!(
        model_lines(&text(&p.stdout)),
        model_lines(&text(&c.stdout)),
        "fork copies the address space"
    );
    // Its last state (the default): /bin/true's, not its parent's.
    let c = maps(&log, &["--pid", &child.to_string()]);
    let out = text(&c.stdout);
    assert!(out.contains(", before it exited at seq "), "{out}");
    let lines = model_lines(&out);
    assert!(lines.iter().any(|l| l.path.ends_with("/true")), "{out}");
    assert!(
        !lines.iter().any(|l| l.path.ends_with("/forkexec")),
        "{out}"
    );
}

#[test]
fn maps_refuses_what_it_cannot_show_with_one_clear_message() {
    let dir = scratch_dir("maps-refuse");
    let (events, log) = forkexec_log(&dir, &[]);
    let parent = first_pid(&events);
    let (child_start, child) = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ProcessStart(_)) && e.pid != parent)
        .map(|e| (e.seq, e.pid))
        .unwrap();
    let child_exit = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ProcessExit(_)) && e.pid == child)
        .unwrap()
        .seq;
    let last = events.last().unwrap().seq;
    let refused = |args: &[&str], code: i32, wants: &[&str]| {
        let o = maps(&log, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "one message: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
        }
    };
    refused(
        &["--pid", "4000000"],
        1,
        &["no process 4000000 in the log", "spans seq 1 ("],
    );
    refused(
        &[
            "--pid",
            &parent.to_string(),
            "--at",
            &(last + 1).to_string(),
        ],
        1,
        &[
            &format!("--at {}: outside the log", last + 1),
            &format!("to seq {last} ("),
        ],
    );
    refused(
        &["--pid", &parent.to_string(), "--at", "+100000s"],
        1,
        &["outside the log, which spans seq 1"],
    );
    refused(
        &["--pid", &parent.to_string(), "--at", "soon"],
        2,
        &["--at", "is not a time"],
    );
    refused(
        &[
            "--pid",
            &child.to_string(),
            "--at",
            &(child_start - 1).to_string(),
        ],
        1,
        &[
            &format!(
                "process {child} had not started yet at seq {}",
                child_start - 1
            ),
            &format!("starts at seq {child_start} ("),
        ],
    );
    refused(
        &["--pid", &child.to_string(), "--at", &last.to_string()],
        1,
        &[
            &format!("process {child} had already exited at seq {last}"),
            &format!("exited at seq {child_exit} ("),
            "exit 0",
        ],
    );
    // Recorded without memory calls: no snapshot, no mmap (shared-memory monitoring, on by
    // default, takes a snapshot at each exec whatever --syscalls says).
    let dir = scratch_dir("maps-refuse-file");
    let (events, log) = forkexec_log(&dir, &["--syscalls", "file", "--smo", "off"]);
    let parent = first_pid(&events);
    let o = maps(&log, &["--pid", &parent.to_string()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for w in [
        "has no address-space events for process",
        "recorded without memory calls (--syscalls ",
        "add `memory` to --syscalls",
    ] {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
    // With monitoring on, the snapshot is there, and what the calls changed is not: said.
    let dir = scratch_dir("maps-note-file");
    let (events, log) = forkexec_log(&dir, &["--syscalls", "file"]);
    let o = maps(&log, &["--pid", &first_pid(&events).to_string()]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("the recording left out mmap, munmap, mprotect, mremap, brk, shmat, shmdt:"),
        "{err}"
    );
}

#[test]
fn maps_at_a_time() {
    let dir = scratch_dir("maps-time");
    let (events, log) = forkexec_log(&dir, &[]);
    let parent = first_pid(&events);
    // At +0s: the first event only (the start: nothing known of its memory yet, but the log
    // has its snapshot later).
    let o = maps(&log, &["--pid", &parent.to_string(), "--at", "+0s"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with(&format!("# process {parent} at seq 1 (")));
    // An epoch time: the last event at or before it.
    let ev = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::AddressSpace(_)))
        .unwrap();
    let at = format!(
        "{}.{:09}",
        ev.time_ns / 1_000_000_000,
        ev.time_ns % 1_000_000_000
    );
    let o = maps(&log, &["--pid", &parent.to_string(), "--at", &at]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains(&format!("at seq {} (", ev.seq)), "{out}");
    assert!(model_lines(&out).len() > 5, "{out}");
}

/// What each fatal_fault mode touches, how, and what vigil must call it.
const FAULTS: [(&str, &str, &str); 6] = [
    ("null", "write", "not mapped, e.g. a NULL dereference"),
    ("rodata", "write", "write to a read-only mapping"),
    ("nx", "execute", "execute of a non-executable mapping"),
    ("guard", "write", "guard page"),
    (
        "bus",
        "read",
        "bus error beyond the end of the mapped file (offset 0x1004; the file is 4096 bytes)",
    ),
    ("stack", "write", "stack overflow"),
];

fn record_fault(mode: &str) -> (std::path::PathBuf, Vec<Event>, std::path::PathBuf, u64) {
    let dir = scratch_dir(&format!("fault-{mode}"));
    let prog = program("fatal_fault");
    let file = dir.join("one-page");
    let (out, events, log) = record_in(&dir, &[], &[prog.as_os_str(), os(mode), file.as_os_str()]);
    let said = text(&out.stdout);
    let addr = said
        .trim()
        .strip_prefix("addr 0x")
        .map(|h| u64::from_str_radix(h, 16).unwrap())
        .unwrap_or_else(|| panic!("{mode}: {said:?} {}", text(&out.stderr)));
    assert!(
        !out.status.success(),
        "{mode}: the program must die of its fault"
    );
    (dir, events, log, addr)
}

fn summary_and_show(log: &Path) -> (String, String) {
    let s = run(vigil().arg("summary").arg(log));
    assert!(s.status.success(), "{}", text(&s.stderr));
    let sh = run(vigil().arg("show").arg(log));
    assert!(sh.status.success(), "{}", text(&sh.stderr));
    (text(&s.stdout), text(&sh.stdout))
}

fn check_explained(mode: &str, want: &str, summary: &str, show: &str) {
    let sig = if mode == "bus" { "SIGBUS" } else { "SIGSEGV" };
    assert!(
        summary.contains("\nFatal faults (1):\n"),
        "{mode}: summary:\n{summary}"
    );
    let fatal = summary.split("\nFatal faults (1):\n").nth(1).unwrap();
    let head = fatal.lines().next().unwrap();
    assert!(
        head.contains(&format!("killed by {sig} at 0x")) && head.contains(want),
        "{mode}: {head}"
    );
    // show: under the exit line.
    let lines: Vec<&str> = show.lines().collect();
    let exit = lines
        .iter()
        .position(|l| l.contains(&format!("+++ killed by {sig}")))
        .unwrap_or_else(|| panic!("{mode}: no exit line in\n{show}"));
    let next = lines.get(exit + 1).copied().unwrap_or_default();
    assert!(
        next.starts_with("    ") && next.contains(want),
        "{mode}: {next:?} after {:?}",
        lines[exit]
    );
}

/// The real thing: the recorder fills in the fault of a signal it saw raised by an access.
/// NEEDS `SignalDelivery::fault` from the recorder (crates/capture-ptrace, the lead's part of
/// issue 11).
#[test]
fn summary_and_show_explain_real_fatal_faults() {
    for (mode, _, want) in FAULTS {
        let (_, events, log, addr) = record_fault(mode);
        let fault = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Signal(s) => Some(s.fault),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{mode}: no signal event"));
        let fault = fault.unwrap_or_else(|| {
            panic!(
                "{mode}: the signal event has no fault: this test needs the recorder to fill \
                 SignalDelivery::fault (crates/capture-ptrace, issue 11)"
            )
        });
        if mode != "stack" {
            assert_eq!(fault.addr, addr, "{mode}");
        }
        let (summary, show) = summary_and_show(&log);
        check_explained(mode, want, &summary, &show);
    }
}

/// Exports `log`, writes `fault` into its first or last signal event, imports it back.
fn with_fault(dir: &Path, log: &Path, last: bool, fault: serde_json::Value) -> std::path::PathBuf {
    let ex = run(vigil().arg("export").arg(log));
    assert!(ex.status.success(), "{}", text(&ex.stderr));
    let mut lines: Vec<serde_json::Value> = text(&ex.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut signals = lines.iter_mut().filter(|l| l["type"] == "signal");
    let sig = if last { signals.last() } else { signals.next() }.expect("a signal event");
    sig["fault"] = fault;
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let edited = dir.join("edited.jsonl");
    std::fs::write(&edited, jsonl).unwrap();
    let imported = dir.join("edited.vlog");
    let im = run(vigil().arg("import").arg(&edited).arg("-o").arg(&imported));
    assert!(im.status.success(), "{}", text(&im.stderr));
    imported
}

/// The same crashes, with the fault the recorder would give written into the recording's
/// last signal event (address from the program, access from the mode): the explanation
/// itself, whatever the recorder fills in.
#[test]
fn summary_and_show_explain_a_fault_given_in_the_log() {
    for (mode, access, want) in FAULTS {
        let (dir, _, log, addr) = record_fault(mode);
        // A stack overflow faults below what the program said (the deepest frame).
        let addr = if mode == "stack" {
            addr - (6 << 20)
        } else {
            addr
        };
        let ip = if access == "execute" { addr } else { 0x401000 };
        let imported = with_fault(
            &dir,
            &log,
            true,
            serde_json::json!({"addr": addr, "ip": ip, "access": access}),
        );
        let (summary, show) = summary_and_show(&imported);
        check_explained(mode, want, &summary, &show);
        // The mapping or the nearest ones are named with their maps lines.
        let fatal = summary.split("\nFatal faults (1):\n").nth(1).unwrap();
        let detail = fatal.lines().nth(1).unwrap_or_default();
        let expected_detail = match mode {
            "null" | "stack" => "    nearest mapping below: ",
            _ => "    mapping: ",
        };
        assert!(detail.starts_with(expected_detail), "{mode}: {fatal}");
        if mode == "bus" {
            assert!(detail.ends_with("/one-page"), "{detail}");
        }
    }
}

/// A crash handler that resets SIGSEGV and raises it again dies of the fault it caught (the
/// raised signal has no fault); a process killed with kill(1) has no fault to explain.
#[test]
fn the_fault_explained_is_the_last_one_before_the_death() {
    let (dir, events, log, addr) = record_fault("reraise");
    let signals = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Signal(_)))
        .count();
    assert_eq!(signals, 2, "the fault, then the handler's raise");
    let imported = with_fault(
        &dir,
        &log,
        false,
        serde_json::json!({"addr": addr, "ip": 0x401000, "access": "write"}),
    );
    let (summary, show) = summary_and_show(&imported);
    check_explained(
        "null",
        "not mapped, e.g. a NULL dereference",
        &summary,
        &show,
    );

    let dir = scratch_dir("fault-kill");
    let (out, _, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os("kill -SEGV $$")]);
    assert_eq!(out.status.code(), Some(139), "{}", text(&out.stderr));
    let (summary, show) = summary_and_show(&log);
    assert!(!summary.contains("Fatal faults"), "{summary}");
    let lines: Vec<&str> = show.lines().collect();
    let exit = lines
        .iter()
        .position(|l| l.contains("+++ killed by SIGSEGV"))
        .unwrap();
    assert!(
        lines.get(exit + 1).is_none_or(|l| !l.starts_with("    ")),
        "{show}"
    );
}

/// Several processes of one log killed by faults: each explained, in order (the model is
/// replayed once, as far as the last death).
#[test]
fn every_death_by_a_fault_in_a_log_is_explained() {
    let dir = scratch_dir("fault-many");
    let prog = program("fatal_fault");
    let p = prog.to_str().unwrap();
    let script = format!("{p} null x; {p} rodata x; {p} nx x; exit 0");
    let (out, _, log) = record_in(&dir, &[], &[os("sh"), os("-c"), os(&script)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let addrs: Vec<u64> = text(&out.stdout)
        .lines()
        .map(|l| u64::from_str_radix(l.strip_prefix("addr 0x").unwrap(), 16).unwrap())
        .collect();
    assert_eq!(addrs.len(), 3);
    let ex = run(vigil().arg("export").arg(&log));
    let mut lines: Vec<serde_json::Value> = text(&ex.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let faults = [
        (addrs[0], "write"),
        (addrs[1], "write"),
        (addrs[2], "execute"),
    ];
    let segvs = lines
        .iter_mut()
        .filter(|l| l["type"] == "signal" && l["signal"] == "SIGSEGV");
    let mut n = 0;
    for (l, (addr, access)) in segvs.zip(faults) {
        let ip = if access == "execute" { addr } else { 0x401000 };
        l["fault"] = serde_json::json!({"addr": addr, "ip": ip, "access": access});
        n += 1;
    }
    assert_eq!(n, 3);
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("edited.jsonl"), jsonl).unwrap();
    let imported = dir.join("edited.vlog");
    let im = run(vigil()
        .arg("import")
        .arg(dir.join("edited.jsonl"))
        .arg("-o")
        .arg(&imported));
    assert!(im.status.success(), "{}", text(&im.stderr));
    let (summary, show) = summary_and_show(&imported);
    let wants = [
        "not mapped, e.g. a NULL dereference",
        "write to a read-only mapping",
        "execute of a non-executable mapping",
    ];
    let fatal = summary
        .split("\nFatal faults (3):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{summary}"));
    let heads: Vec<&str> = fatal
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("    "))
        .collect();
    assert_eq!(heads.len(), 3, "{fatal}");
    for (h, w) in heads.iter().zip(wants) {
        assert!(h.contains(w), "{h} lacks {w}");
    }
    let shown: Vec<&str> = show
        .lines()
        .filter(|l| l.starts_with("    SIGSEGV at "))
        .collect();
    assert_eq!(shown.len(), 3, "{show}");
    for (h, w) in shown.iter().zip(wants) {
        assert!(h.contains(w), "{h} lacks {w}");
    }
}
