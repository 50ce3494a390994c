//! Shared-memory monitoring as the recorder does it (issue 11), asserted on the events of real
//! programs (programs/smo_*.c) recorded with `vigil record --smo ...`: who accessed which part,
//! how (fault, step or a syscall's buffer), in which order across processes (the coherence
//! protocol), through which kind of object; the program's own signals and protections left
//! to it; and the options' bad input.

mod common;

use common::*;
use std::ffi::OsStr;
use std::path::Path;
use vigil_event::{Event, EventKind, MemAccess, SmoAccess, SmoKind, SmoVia};
use vigil_testkit::{program, scratch_dir};

/// Records `prog args...` in `dir` with `--smo mode` (and the getppid markers).
fn rec(dir: &Path, mode: &str, prog: &str, args: &[&OsStr]) -> (std::process::Output, Vec<Event>) {
    let p = program(prog);
    let mut cmd: Vec<&OsStr> = vec![p.as_os_str()];
    cmd.extend_from_slice(args);
    let (out, events, _) = record_in(dir, &["--syscalls", "default,getppid", "--smo", mode], &cmd);
    (out, events)
}

fn smo(events: &[Event]) -> Vec<(&Event, &SmoAccess)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SmoAccess(a) => Some((e, a)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_store_in_one_process_then_a_load_in_another_are_two_events_in_that_order() {
    let dir = scratch_dir("smoc-fork-anon");
    let (out, events) = rec(
        &dir,
        "page",
        "smo_misc",
        &[os("fork-anon"), dir.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let acc = smo(&events);
    assert!(!acc.is_empty());
    assert!(
        acc.iter()
            .all(|(_, a)| a.object.kind == SmoKind::SharedAnon)
    );
    // (That a read after another process's write is an event of its own is the coherence
    // test below, where only the protocol can make it so.)
    // Both processes wrote and read: two distinct pids among writers and readers.
    let writers: std::collections::BTreeSet<u32> = acc
        .iter()
        .filter(|(_, a)| a.access.writes())
        .map(|(e, _)| e.pid)
        .collect();
    let readers: std::collections::BTreeSet<u32> = acc
        .iter()
        .filter(|(_, a)| a.access.reads())
        .map(|(e, _)| e.pid)
        .collect();
    assert_eq!(writers.len(), 2, "{acc:?}");
    assert_eq!(readers.len(), 2, "{acc:?}");
}

#[test]
fn the_ring_is_exchanged_correctly_and_each_handoff_faults_again() {
    let dir = scratch_dir("smoc-ring");
    let (out, events) = rec(
        &dir,
        "page",
        "smo_ring",
        &[os("200"), dir.join("ring").as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let ring = stdout
        .lines()
        .find(|l| l.starts_with("ring "))
        .expect("the ring's line");
    let field = |k: &str| {
        ring.split(' ')
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or("")
    };
    assert_eq!(field("n="), "200", "{ring}");
    assert_eq!(field("producer="), field("consumer="), "{ring}");
    let acc = smo(&events);
    // 200 messages cross from the producer to the consumer: the consumer cannot read what
    // the producer wrote without a new read fault after the write, so there are at least
    // as many consumer reads as ... handoffs the consumer observed; at least one per 64
    // messages (a page holds 64 of them) and both sides have many events.
    let pids: std::collections::BTreeSet<u32> = acc.iter().map(|(e, _)| e.pid).collect();
    assert_eq!(pids.len(), 2, "producer and consumer");
    assert!(acc.len() >= 2 * 200 / 64, "{}", acc.len());
}

#[test]
fn the_kernel_reading_or_writing_a_shared_page_is_an_access_of_the_call() {
    let dir = scratch_dir("smoc-kernel");
    let (out, events) = rec(
        &dir,
        "page",
        "smo_misc",
        &[os("write-from-smo"), dir.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let acc = smo(&events);
    let via = |name: &str, access: MemAccess| {
        acc.iter().any(|(_, a)| {
            matches!(a.via, SmoVia::Syscall(c) if c.to_string() == name) && a.access == access
        })
    };
    // write(2) from the mapping: the kernel read it; read(2) into it: the kernel wrote it.
    assert!(via("write", MemAccess::Read), "{acc:?}");
    assert!(via("read", MemAccess::Write), "{acc:?}");
    // The kernel's write is emitted after the call's exit (it happens during the call).
    for (e, a) in &acc {
        if let SmoVia::Syscall(c) = a.via
            && c.to_string() == "read"
        {
            let exit = exits(&events, "read")
                .into_iter()
                .rfind(|(x, _)| x.seq < e.seq && x.tid == e.tid);
            assert!(
                exit.is_some(),
                "the read's exit precedes its write into the mapping"
            );
        }
    }
}

#[test]
fn read_and_write_of_a_mapped_file_record_their_file_offset() {
    let dir = scratch_dir("smoc-rw");
    let (out, events) = rec(&dir, "page", "smo_rw", &[dir.join("f").as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "read=mapped,written\n");
    let offset = |name: &str| -> Vec<Option<u64>> {
        exits(&events, name)
            .iter()
            .filter(|(_, x)| {
                matches!(x.args.first(), Some(vigil_event::Value::Fd(fd))
                    if fd.target.as_deref().and_then(|t| t.path()).is_some_and(|p| p.as_bytes().ends_with(b"/f")))
            })
            .map(|(_, x)| match x.args.get(3) {
                Some(vigil_event::Value::Uint(o)) => Some(*o),
                _ => None,
            })
            .collect()
    };
    assert_eq!(offset("write"), vec![Some(8192)]);
    assert_eq!(offset("read"), vec![Some(4096), Some(8192)]);
    // A file nobody maps keeps no offset (the program's stdout here).
    assert!(
        exits(&events, "write")
            .iter()
            .filter(|(_, x)| x.args.len() > 3)
            .count()
            == 1
    );
}

#[test]
fn threads_are_told_apart_and_sysv_and_memfd_objects_are_named() {
    let dir = scratch_dir("smoc-kinds");
    let (out, events) = rec(&dir, "page", "smo_misc", &[os("threads"), dir.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tids: std::collections::BTreeSet<u32> = smo(&events)
        .iter()
        .filter(|(_, a)| a.access.writes())
        .map(|(e, _)| e.tid)
        .collect();
    assert_eq!(tids.len(), 4, "four writer threads");
    for (mode, kind) in [("sysv", SmoKind::SysvShm), ("memfd", SmoKind::File)] {
        let (out, events) = rec(&dir, "page", "smo_misc", &[os(mode), dir.as_os_str()]);
        assert!(out.status.success(), "{mode}: {}", text(&out.stderr));
        let acc = smo(&events);
        assert!(!acc.is_empty(), "{mode}");
        assert!(
            acc.iter().all(|(_, a)| a.object.kind == kind),
            "{mode}: {acc:?}"
        );
    }
}

#[test]
fn the_programs_own_faults_reach_it_and_carry_their_address() {
    let dir = scratch_dir("smoc-own");
    // Its own handler for its own guard page: delivered, handled, the run goes on.
    let (out, events) = rec(
        &dir,
        "page",
        "smo_misc",
        &[os("segv-handler"), dir.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let segv: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Signal(s) if s.signal == libc::SIGSEGV))
        .collect();
    assert_eq!(segv.len(), 1, "only the program's own fault is a signal");
    let EventKind::Signal(s) = &segv[0].kind else {
        unreachable!()
    };
    assert!(s.fault.is_some(), "{s:?}");
    // mprotect of its own shared mapping read-only, then a store: killed as natively.
    let (out, events) = rec(
        &dir,
        "page",
        "smo_misc",
        &[os("mprotect-ro"), dir.as_os_str()],
    );
    assert_eq!(out.status.code(), Some(139), "{}", text(&out.stderr));
    let last_signal = events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::Signal(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the SIGSEGV is recorded");
    let f = last_signal.fault.expect("with its fault");
    assert_eq!(f.access, vigil_event::FaultAccess::Write);
    assert!(
        f.addr >= 0x6ee0_0000_0000 && f.addr < 0x6f00_0000_0000,
        "{f:?}"
    );
}

#[test]
fn minipage_names_the_exact_bytes_and_separates_two_stores_in_one_page() {
    let dir = scratch_dir("smoc-mini");
    let (out, events) = rec(
        &dir,
        "minipage:64",
        "smo_vma",
        &[
            os("mini"),
            dir.join("f").as_os_str(),
            dir.join("out").as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stores: Vec<(u64, u64)> = smo(&events)
        .iter()
        .filter(|(_, a)| a.access == MemAccess::Write && a.via == SmoVia::Step)
        .map(|(_, a)| (a.offset, a.len))
        .collect();
    assert!(stores.contains(&(0, 8)), "{stores:?}");
    assert!(stores.contains(&(2048, 8)), "{stores:?}");
    // Page mode: one part for both.
    let (out, events) = rec(
        &dir,
        "page",
        "smo_vma",
        &[
            os("mini"),
            dir.join("f2").as_os_str(),
            dir.join("out2").as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        smo(&events)
            .iter()
            .all(|(_, a)| a.offset == 0 && a.len == 4096 && a.via != SmoVia::Step)
    );
}

#[test]
fn off_records_no_access_and_no_protection() {
    let dir = scratch_dir("smoc-off");
    let (out, events) = rec(&dir, "off", "smo_misc", &[os("fork-anon"), dir.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(smo(&events).is_empty());
    // No shared mapping was moved into vigil's window either.
    let placed_in_window = exits(&events, "mmap")
        .iter()
        .any(|(_, x)| (0x6ee0_0000_0000..0x6f00_0000_0000).contains(&(x.ret as u64)));
    assert!(!placed_in_window);
}

#[test]
fn a_private_mapping_of_a_shared_file_reads_through_and_writes_privately() {
    let dir = scratch_dir("smoc-private");
    let p = program("smo_private");
    let file = dir.join("f");
    let (out, events, _) = record_in(
        &dir,
        &["--smo", "page"],
        &[
            p.as_os_str(),
            file.as_os_str(),
            dir.join("out1").as_os_str(),
            dir.join("out2").as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let acc = smo(&events);
    let stdout = text(&out.stdout);
    let p_pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("p pid="))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("p prints its pid");
    // p's load of page 0, which it never wrote, reads the file (w's store)...
    assert!(
        acc.iter()
            .any(|(e, a)| e.pid == p_pid && a.private && a.access.reads() && a.offset == 0),
        "{acc:?}"
    );
    // ...its load of page 1, its own copy since its store, reads nothing of the file: it was
    // copied before the file was shared, and vigil found the copy in the page map and
    // recorded it as the private store it was (when found: ip 0).
    assert!(
        !acc.iter()
            .any(|(e, a)| e.pid == p_pid && a.offset == 4096 && a.access.reads()),
        "{acc:?}"
    );
    assert!(
        acc.iter().any(|(e, a)| e.pid == p_pid
            && a.offset == 4096
            && a.private
            && a.access == MemAccess::Write
            && a.ip == 0),
        "{acc:?}"
    );
    // w's stores are shared writes; r reads page 1 through a shared mapping.
    assert!(acc.iter().any(|(_, a)| !a.private && a.access.writes()));
    assert!(
        acc.iter()
            .any(|(e, a)| e.pid != p_pid && !a.private && a.access.reads() && a.offset == 4096)
    );
}

#[test]
fn bad_smo_options_are_refused_with_one_message() {
    for (args, want) in [
        (vec!["--smo", "pages"], "unknown mode"),
        (vec!["--smo", "minipage:4"], "power of two from 8 to 2048"),
        (
            vec!["--smo", "minipage:4096"],
            "power of two from 8 to 2048",
        ),
        (vec!["--smo", "minipage:48"], "power of two from 8 to 2048"),
        (vec!["--smo-slice", "0"], "--smo-slice"),
        (vec!["--smo-slice", "10 parsecs"], "--smo-slice"),
    ] {
        let dir = scratch_dir("smoc-bad");
        let log = dir.join("l.vlog");
        let mut cmd = vigil();
        cmd.arg("record")
            .arg("-o")
            .arg(&log)
            .args(&args)
            .args(["--", "true"]);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!log.exists());
    }
}

#[test]
fn a_process_vigil_stops_waiting_for_gets_its_shared_memory_back() {
    // The daemon's store faults after every write(2) while traced; after vigil detaches it
    // goes on storing: it must not die of a protection vigil left behind.
    let dir = scratch_dir("smoc-detach");
    let p = program("smo_detach");
    let log = dir.join("d.vlog");
    let out = run(std::process::Command::new(&p)
        .arg("reap")
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .arg(&log)
        .current_dir(&dir));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("daemon alive"),
        "{}",
        text(&out.stderr)
    );
    let events = read_log(&log);
    assert!(
        !smo(&events).is_empty(),
        "the daemon's stores were monitored before the detach"
    );
}

#[test]
fn a_path_in_a_shared_page_is_read_by_the_kernel_and_by_vigil() {
    // The path starts 6 bytes before the second page: the kernel reads across both protected
    // pages (no EFAULT), and the open's event names the file.
    let dir = scratch_dir("smoc-path");
    let (out, events) = rec(&dir, "page", "smo_path", &[os("/etc/hostname")]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "open=0\n");
    let opens = exits(&events, "openat");
    let last = opens.last().expect("the open");
    assert_eq!(path_arg(last.0, "path").as_deref(), Some("/etc/hostname"));
    let by_open: Vec<u64> = smo(&events)
        .iter()
        .filter(|(_, a)| matches!(a.via, SmoVia::Syscall(c) if c.to_string() == "openat"))
        .map(|(_, a)| a.offset)
        .collect();
    assert_eq!(by_open, vec![0, 4096], "both pages, as the open's accesses");
}

/// `rec`, under `timeout 120`: a recorder that hangs fails the test instead of the suite.
fn rec_bounded(dir: &Path, mode: &str, args: &[&str]) -> (std::process::Output, Vec<Event>) {
    vigil_testkit::require_ptrace();
    let log = dir.join("run.vlog");
    let out = run(std::process::Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .args(["record", "-q", "-o"])
        .arg(&log)
        .args(["--smo", mode, "--"])
        .arg(program("smo_edge"))
        .args(args)
        .current_dir(dir));
    assert_ne!(out.status.code(), Some(124), "vigil hung");
    (out, read_log(&log))
}

#[test]
fn minipage_names_the_exact_bytes_a_syscall_reads_from_the_first_page() {
    let dir = scratch_dir("smoc-minibuf");
    let d = dir.to_str().unwrap_or(".");
    let (out, events) = rec_bounded(&dir, "minipage:64", &["minipage-buf", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let acc = smo(&events);
    let w = acc
        .iter()
        .find(|(_, a)| matches!(a.via, SmoVia::Syscall(c) if c.to_string() == "write"))
        .unwrap_or_else(|| panic!("write(2)'s access: {acc:?}"));
    assert_eq!((w.1.offset, w.1.len), (100, 10), "{:?}", w.1);
}

#[test]
fn buffers_at_the_top_of_the_address_space_or_of_huge_length_are_checked_quickly() {
    let dir = scratch_dir("smoc-hugelen");
    let d = dir.to_str().unwrap_or(".");
    let (out, _) = rec_bounded(&dir, "page", &["huge-len", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("huge-len done"));
}

#[test]
fn object_granularity_keeps_another_mappings_read_only_protection() {
    let dir = scratch_dir("smoc-objro");
    let d = dir.to_str().unwrap_or(".");
    let (out, _) = rec_bounded(&dir, "object", &["object-ro", d]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_write_takes_a_readers_grant_away_so_its_next_load_is_a_new_event() {
    // No slice ends during the reader's spin (60 s): only coherence can make it fault again.
    let dir = scratch_dir("smoc-coherence");
    let p = program("smo_coherence");
    let (out, events, _) = record_in(
        &dir,
        &["--smo", "page", "--smo-slice", "60s"],
        &[p.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "saw 1\n");
    let acc = smo(&events);
    let write = acc
        .iter()
        .find(|(_, a)| a.access.writes())
        .map(|(e, _)| (e.pid, e.seq))
        .expect("the child's store");
    let reads: Vec<u64> = acc
        .iter()
        .filter(|(e, a)| e.pid != write.0 && a.access.reads())
        .map(|(e, _)| e.seq)
        .collect();
    assert!(
        reads.iter().any(|&s| s < write.1),
        "the reader's first load, before the store: {acc:?}"
    );
    assert!(
        reads.iter().any(|&s| s > write.1),
        "the reader's load after the store is an event of its own: {acc:?}"
    );
}

#[test]
fn a_slice_that_ends_at_a_buffer_call_ends_every_other_grant_too() {
    // Four pages granted in one slice; a write(2) from page 1 ends the slice: the loads of
    // pages 0, 2 and 3 after it are new events.
    let dir = scratch_dir("smoc-slice");
    let p = program("smo_slice");
    let (out, events, _) = record_in(
        &dir,
        &["--smo", "page", "--smo-slice", "60s"],
        &[p.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "sum=0\n");
    let write = exits(&events, "write")
        .into_iter()
        .find(|(_, x)| x.ret == 1)
        .map(|(e, _)| e.seq)
        .expect("the write from page 1");
    let mut after: Vec<u64> = smo(&events)
        .iter()
        .filter(|(e, a)| e.seq > write && a.via == SmoVia::Fault && a.access.reads())
        .map(|(_, a)| a.offset)
        .collect();
    after.sort();
    assert_eq!(after, vec![0, 2 * 4096, 3 * 4096]);
}
