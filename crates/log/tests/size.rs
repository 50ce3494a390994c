//! The writer never produces what its reader refuses: events of several MiB (the kernel's own
//! argv limit) are stored whole, larger string lists are cut with an exact marker, and an event
//! that cannot be cut to fit is refused with a typed error, the log staying readable.

mod common;

use common::layout;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;
use vigil_event::*;
use vigil_log::*;

fn meta() -> LogMeta {
    LogMeta {
        backend: "test".into(),
        ..LogMeta::default()
    }
}

/// `n` distinct strings of `len` bytes each, tagged with `tag`.
fn strings(tag: &str, n: usize, len: usize) -> Arc<[Str]> {
    (0..n)
        .map(|i| {
            let mut s = format!("{tag}-{i}-").into_bytes();
            s.resize(len, b'x');
            Str::from(s)
        })
        .collect()
}

fn execve(argv: Value) -> Args {
    [
        Value::Str("/bin/true".into()),
        argv,
        Value::Uint(0x7ffd_0000),
    ]
    .into_iter()
    .collect()
}

fn ev(seq: u64, tid: u32, kind: EventKind) -> Event {
    Event {
        seq,
        time_ns: 1_000 + seq,
        pid: 7,
        tid,
        kind,
    }
}

fn entry(seq: u64, tid: u32, args: Args) -> Event {
    ev(
        seq,
        tid,
        EventKind::SyscallEntry(SyscallEntry {
            call: SyscallId::from_name("execve").unwrap(),
            args,
        }),
    )
}

fn exit(seq: u64, tid: u32, entry_seq: u64, args: Args) -> Event {
    ev(
        seq,
        tid,
        EventKind::SyscallExit(SyscallExit {
            call: SyscallId::from_name("execve").unwrap(),
            entry_seq,
            ret: -7, // E2BIG
            args,
        }),
    )
}

fn exec(seq: u64, argv: Arc<[Str]>) -> Event {
    ev(
        seq,
        7,
        EventKind::ProcessExec(ProcessExec {
            exe: "/bin/true".into(),
            argv,
            creds: Creds::default(),
            dev: 1,
            ino: 2,
        }),
    )
}

fn small(seq: u64) -> Event {
    ev(
        seq,
        7,
        EventKind::ThreadStart(ThreadStart { creator_tid: 7 }),
    )
}

/// Every event and every issue of an in-memory log.
fn read_all(bytes: Vec<u8>) -> (Vec<Event>, Vec<String>) {
    let mut events = Vec::new();
    let mut issues = Vec::new();
    for item in LogReader::new(Cursor::new(bytes), "mem").unwrap() {
        match item {
            Ok(e) => events.push(e),
            Err(i) => issues.push(i.to_string()),
        }
    }
    (events, issues)
}

fn write(events: &[Event]) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    for e in events {
        w.append(e).unwrap();
    }
    w.into_inner().unwrap()
}

/// Three threads' execve calls with ~6 MiB argvs each, interleaved (so no entry pairs with its
/// exit and all three entries wait in one block), an adjacent entry/exit pair, and a process
/// exec with a ~6 MiB argv: a block of 64 KiB target would have grown to ~19 MiB.
#[test]
fn events_of_several_mib_are_stored_whole() {
    let argv = |t: &str| strings(t, 1536, 4096); // 6 MiB
    let (a, b, c, d) = (argv("a"), argv("b"), argv("c"), argv("d"));
    let args = |l: &Arc<[Str]>| execve(Value::List(l.clone()));
    let events = vec![
        small(1),
        entry(2, 11, args(&a)),
        entry(3, 12, args(&b)),
        entry(4, 13, args(&c)),
        exit(5, 11, 2, args(&a)),
        exit(6, 12, 3, args(&b)),
        exit(7, 13, 4, args(&c)),
        entry(8, 14, args(&d)),
        exit(9, 14, 8, args(&d)),
        exec(10, d.clone()),
        small(11),
    ];
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    for e in &events {
        w.append(e).unwrap();
    }
    assert_eq!(w.stats().cut, 0, "nothing of this size is cut");
    let (back, issues) = read_all(w.into_inner().unwrap());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(back, events);
}

/// A 20 MiB argv (the E2BIG execve of 4096 arguments of 4096 bytes, and more) is stored with a
/// prefix of the list and a marker counting exactly what was dropped; the entry and exit both
/// read back, as does what comes after them.
#[test]
fn a_list_too_large_for_one_event_is_cut_with_exact_counts() {
    let big = strings("arg", 5120, 4096); // 20 MiB
    let args = execve(Value::List(big.clone()));
    let events = vec![
        small(1),
        entry(2, 7, args.clone()),
        exit(3, 7, 2, args.clone()),
        small(4),
    ];
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    for e in &events {
        w.append(e).unwrap();
    }
    assert_eq!(w.stats().cut, 2, "the entry and the exit");
    let (back, issues) = read_all(w.into_inner().unwrap());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(back.len(), 4);
    assert_eq!(back[0], events[0]);
    assert_eq!(back[3], events[3]);
    for e in &back[1..3] {
        let raw = e.arg_raw("argv").expect("argv");
        let cut = raw.cut().expect("a cut marker");
        let kept = raw.as_list().expect("the kept prefix");
        assert!(!kept.is_empty() && kept.len() < big.len());
        assert_eq!(&kept[..], &big[..kept.len()], "a prefix is kept");
        assert_eq!(cut.items as usize, big.len() - kept.len());
        let dropped: usize = big[kept.len()..].iter().map(|s| s.len()).sum();
        assert_eq!(cut.bytes as usize, dropped);
        assert!(cut.exact);
        // The rest of the call is whole.
        assert_eq!(e.arg("path").and_then(|v| v.as_str()).unwrap(), "/bin/true");
    }

    // A list the capture had already cut: the counts add up, and stay a lower bound.
    let earlier = Value::Cut(Arc::new(Cut {
        kept: Value::List(big.clone()),
        items: 7,
        bytes: 100,
        exact: false,
    }));
    let (back, issues) = read_all(write(&[entry(1, 7, execve(earlier))]));
    assert!(issues.is_empty(), "{issues:?}");
    let raw = back[0].arg_raw("argv").unwrap();
    let (cut, kept) = (raw.cut().unwrap(), raw.as_list().unwrap());
    assert_eq!(cut.items as usize, 7 + big.len() - kept.len());
    let dropped: usize = big[kept.len()..].iter().map(|s| s.len()).sum();
    assert_eq!(cut.bytes as usize, 100 + dropped);
    assert!(!cut.exact);
}

/// One string of 20 MiB cannot be marked inside a `Value::Str`, nor can a process image's argv
/// be: the writer refuses the event with a typed error and goes on; the log reads back whole.
#[test]
fn an_event_that_cannot_be_cut_is_refused_and_the_log_stays_readable() {
    let huge = Str::from(vec![b'p'; 20 << 20]);
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    let kept = vec![
        small(1),
        entry(2, 7, execve(Value::List(strings("a", 3, 10)))),
        small(5),
        exec(6, strings("ok", 2, 10)),
        small(8),
    ];
    w.append(&kept[0]).unwrap();
    w.append(&kept[1]).unwrap(); // held, waiting for its exit
    let huge_path = entry(3, 8, [Value::Str(huge.clone())].into_iter().collect());
    match w.append(&huge_path) {
        Err(LogError::EventTooLarge { seq, bytes, max }) => {
            assert_eq!(seq, 3);
            assert!(bytes > 20 << 20 && max == EVENT_MAX);
        }
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
    w.append(&kept[2]).unwrap();
    w.append(&kept[3]).unwrap();
    let huge_exec = exec(7, strings("big", 5120, 4096));
    let e = w.append(&huge_exec).unwrap_err();
    assert!(matches!(e, LogError::EventTooLarge { seq: 7, .. }), "{e:?}");
    assert!(e.to_string().contains("seq 7"), "{e}");
    w.append(&kept[4]).unwrap();
    assert_eq!(w.stats().events, 5, "refused events are not counted");
    let (back, issues) = read_all(w.into_inner().unwrap());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(back, kept);
}

/// While recording, an event the log cannot hold becomes a `Lost` event with its seq: the loss
/// is in the log, and the numbering has no gap.
#[test]
fn the_background_writer_records_a_refused_event_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bg.vlog");
    let bg = BackgroundWriter::spawn(
        LogWriter::create(&path, &meta()).unwrap(),
        Duration::from_millis(20),
    );
    bg.push(small(1)).unwrap();
    bg.push(exec(2, strings("big", 5120, 4096))).unwrap();
    bg.push(small(3)).unwrap();
    let stats = bg.finish().unwrap();
    assert_eq!(stats.events, 3);
    let (back, issues) = read_all(std::fs::read(&path).unwrap());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(back.len(), 3);
    assert_eq!((back[1].seq, back[1].pid, back[1].tid), (2, 7, 7));
    match &back[1].kind {
        EventKind::Lost(l) => {
            assert_eq!(l.count, 1);
            let why = l.reason.to_string();
            assert!(
                why.contains("process_exec") && why.contains("too large"),
                "{why}"
            );
        }
        other => panic!("expected a lost event, got {other:?}"),
    }
}

/// The frames of an in-memory version 2 log: (compressed length, raw length) of each block.
fn block_lengths(bytes: &[u8]) -> Vec<(usize, usize)> {
    layout(bytes)
        .blocks
        .into_iter()
        .map(|r| {
            let f = common::block_fields(&bytes[r]);
            (f.compressed_len as usize, f.raw_len as usize)
        })
        .collect()
}

/// A command line of 12 arguments of 100 kB would make a 1.2 MB header, past what a reader
/// accepts (every later read failed: "metadata length 1200975 is implausible"): the writer
/// keeps the arguments that fit and says exactly what it left out.
#[test]
fn a_long_command_line_is_cut_in_the_header_with_a_marker() {
    let arg = |i: usize| format!("{i:02}{}", "a".repeat(100_000 - 2));
    let mut command = vec!["/usr/bin/prog".to_string()];
    command.extend((0..12).map(arg));
    let meta = LogMeta {
        backend: "test".into(),
        command: command.clone(),
        ..LogMeta::default()
    };
    let bytes = write_with(&meta, &[small(1)]);
    let header_len = 16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize + 4;
    assert!(header_len <= META_MAX + 20, "{header_len}");
    let reader = LogReader::new(Cursor::new(bytes.clone()), "mem").unwrap();
    let read = reader.meta().clone();
    // The program and as many whole arguments as fit in 64 KiB: none of 100 kB.
    assert_eq!(read.command, ["/usr/bin/prog"]);
    assert_eq!(
        read.command_cut,
        Some(CommandCut {
            items: 12,
            bytes: 1_200_000
        })
    );
    assert!(
        read.command_line()
            .ends_with("[... 12 more arguments, 1200000 bytes not kept in the log header]"),
        "{}",
        read.command_line()
    );
    let (events, issues) = read_all(bytes);
    assert_eq!((events.len(), issues.len()), (1, 0), "{issues:?}");

    // Short arguments before the long ones are kept whole; a program name alone too long
    // keeps its beginning.
    let mut command = vec!["prog".to_string(), "-v".into(), "x".repeat(70_000)];
    command.push("tail".into());
    let meta = LogMeta {
        command,
        ..LogMeta::default()
    };
    let read = LogReader::new(Cursor::new(write_with(&meta, &[])), "mem")
        .unwrap()
        .meta()
        .clone();
    assert_eq!(read.command, ["prog", "-v"]);
    assert_eq!(
        read.command_cut,
        Some(CommandCut {
            items: 2,
            bytes: 70_004
        })
    );
    let meta = LogMeta {
        command: vec!["é".repeat(50_000), "arg".into()],
        ..LogMeta::default()
    };
    let read = LogReader::new(Cursor::new(write_with(&meta, &[])), "mem")
        .unwrap()
        .meta()
        .clone();
    let kept = read.command[0].len();
    assert!(kept > 1000 && kept < 100_000, "{kept}");
    assert_eq!(
        read.command_cut,
        Some(CommandCut {
            items: 1,
            bytes: (100_000 - kept + 3) as u64
        })
    );
    // A command line that fits has no marker, and none is written.
    let meta = LogMeta {
        command: vec!["ls".into(), "-l".into()],
        ..LogMeta::default()
    };
    let bytes = write_with(&meta, &[]);
    assert!(!String::from_utf8_lossy(&bytes).contains("command_cut"));
    let read = LogReader::new(Cursor::new(bytes), "mem")
        .unwrap()
        .meta()
        .clone();
    assert_eq!(
        (read.command_line().as_str(), read.command_cut),
        ("ls -l", None)
    );
}

fn write_with(meta: &LogMeta, events: &[Event]) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new(), meta).unwrap();
    for e in events {
        w.append(e).unwrap();
    }
    w.into_inner().unwrap()
}

/// A payload that compresses more than RATIO_MAX times (one long run of the same byte) is
/// padded so that no block decompresses more than that: a reader may then refuse every block
/// that would, unread.
#[test]
fn blocks_that_compress_too_well_are_padded_and_read_back() {
    let path = Str::from(vec![b'A'; 4 << 20]);
    let open = ev(
        1,
        7,
        EventKind::SyscallEntry(SyscallEntry {
            call: SyscallId::from_name("openat").unwrap(),
            args: [Value::Int(-100), Value::Str(path), Value::Uint(0)]
                .into_iter()
                .collect(),
        }),
    );
    let events = [open, small(2)];
    let bytes = write(&events);
    let blocks = block_lengths(&bytes);
    assert_eq!(blocks.len(), 1);
    let (compressed, raw) = blocks[0];
    assert!(raw > 4 << 20, "{raw}");
    assert!(
        compressed * RATIO_MAX >= raw && compressed < raw / 32,
        "padded to the ratio, no more: {compressed} for {raw}"
    );
    let (read, issues) = read_all(bytes);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(read, events);
}

/// An argv of millions of empty strings is small on disk (a byte per item) but each item is a
/// reference in memory: past EVENT_MEM_MAX it is cut like one too large in bytes, with an exact
/// marker, so no block costs a reader more memory than BLOCK_MEM_MAX.
#[test]
fn an_argv_too_large_in_memory_is_cut_with_an_exact_marker() {
    let n = 2_000_000;
    let empty: Arc<[Str]> = (0..n).map(|_| Str::from("")).collect();
    let e = entry(1, 7, execve(Value::List(empty.clone())));
    let bytes = write(std::slice::from_ref(&e));
    let (read, issues) = read_all(bytes);
    assert!(issues.is_empty(), "{issues:?}");
    let EventKind::SyscallEntry(got) = &read[0].kind else {
        panic!("{:?}", read[0]);
    };
    let cut = got.args[1].cut().expect("a cut marker");
    let Value::List(kept) = got.args[1].plain() else {
        panic!("{:?}", got.args[1]);
    };
    let kept = kept.len();
    assert!(kept > 100_000 && kept < n, "{kept}");
    assert_eq!(
        (cut.items as usize, cut.bytes, cut.exact),
        (n - kept, 0, true)
    );
    // An exec event cannot carry a marker: refused, the log as it was.
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    match w.append(&exec(1, empty)) {
        Err(LogError::EventTooLargeInMemory { seq: 1, mem, max }) => {
            assert!(mem > max && max == EVENT_MEM_MAX, "{mem} {max}")
        }
        other => panic!("expected EventTooLargeInMemory, got {other:?}"),
    }
    w.append(&small(2)).unwrap();
    let (read, issues) = read_all(w.into_inner().unwrap());
    assert_eq!((read, issues), (vec![small(2)], vec![]));
}
