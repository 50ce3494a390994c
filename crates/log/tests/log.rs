//! The log's promises: exact round trips, self-contained blocks, damage reported and survived.

use proptest::prelude::*;
use std::io::Cursor;
use std::time::Duration;
use vigil_event::testing::stream;
use vigil_event::*;
use vigil_log::*;

fn meta() -> LogMeta {
    LogMeta {
        created_ns: 1,
        hostname: "test".into(),
        backend: "test".into(),
        command: vec!["x".into()],
        selection: "default".into(),
        vigil_version: "0".into(),
        contiguous_seq: false,
        command_cut: None,
        smo: None,
        smo_slice_ns: None,
    }
}

/// A block's byte range in the file and the events written into it.
type Block = (std::ops::Range<usize>, Vec<Event>);

/// Writes events, sealing a block every `per_block` events; returns the bytes and, for each
/// block, its byte range and its events.
fn write_blocks(events: &[Event], per_block: usize) -> (Vec<u8>, Vec<Block>) {
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    let mut blocks = Vec::new();
    let mut start = w.stats().bytes as usize;
    for chunk in events.chunks(per_block.max(1)) {
        for ev in chunk {
            w.append(ev).unwrap();
        }
        w.flush().unwrap();
        let end = w.stats().bytes as usize;
        blocks.push((start..end, chunk.to_vec()));
        start = end;
    }
    let stats = w.stats();
    let bytes = w.into_inner().unwrap();
    // Closing adds the end record after the last block.
    assert_eq!(&bytes[stats.bytes as usize..][..4], b"VEND");
    (bytes, blocks)
}

fn read_all(bytes: &[u8]) -> (Vec<Event>, Vec<String>) {
    let r = LogReader::new(Cursor::new(bytes.to_vec()), "mem").unwrap();
    let mut events = Vec::new();
    let mut issues = Vec::new();
    for item in r {
        match item {
            Ok(e) => events.push(e),
            Err(i) => issues.push(i.to_string()),
        }
    }
    (events, issues)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(events in stream(0..300), per_block in 1usize..80) {
        let (bytes, _) = write_blocks(&events, per_block);
        let (back, issues) = read_all(&bytes);
        prop_assert!(issues.is_empty(), "{:?}", issues);
        prop_assert_eq!(back, events);
    }

    /// Random damage never panics the reader, and every block left intact comes back whole.
    #[test]
    fn damage_is_survived(events in stream(20..300), per_block in 5usize..40,
                          flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
                          cut in proptest::option::of(any::<prop::sample::Index>())) {
        let (mut bytes, blocks) = write_blocks(&events, per_block);
        let body = blocks[0].0.start;
        let mut touched: Vec<usize> = Vec::new();
        for (at, x) in &flips {
            let i = body + at.index(bytes.len() - body);
            bytes[i] ^= x;
            touched.push(i);
        }
        let len = match cut { Some(c) => body + c.index(bytes.len() - body + 1), None => bytes.len() };
        bytes.truncate(len);
        let (back, _issues) = read_all(&bytes);
        for (range, evs) in &blocks {
            let intact = range.end <= len && !touched.iter().any(|t| range.contains(t));
            if intact {
                let pos = back.iter().position(|e| *e == evs[0]);
                prop_assert!(pos.is_some(), "intact block {:?} lost", range);
                let pos = pos.unwrap_or(0);
                prop_assert_eq!(&back[pos..pos + evs.len()], &evs[..]);
            }
        }
        for e in &back {
            prop_assert!(events.contains(e), "a damaged block produced an event that was never written");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whole blocks dropped, repeated or moved (and the end record with them or not) are always
    /// reported, and what is delivered is never out of order nor given twice.
    #[test]
    fn moved_blocks_are_reported_and_events_stay_in_order(
        events in stream(40..200),
        per_block in 5usize..30,
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        keep_end in any::<bool>(),
    ) {
        let (bytes, blocks) = write_blocks(&events, per_block);
        let header = &bytes[..blocks[0].0.start];
        let end = &bytes[blocks.last().map_or(0, |b| b.0.end)..];
        let picked: Vec<usize> = order.iter().map(|i| i.index(blocks.len())).collect();
        let mut file = header.to_vec();
        for &i in &picked {
            file.extend_from_slice(&bytes[blocks[i].0.clone()]);
        }
        if keep_end {
            file.extend_from_slice(end);
        }
        let intact = keep_end && picked == (0..blocks.len()).collect::<Vec<_>>();
        let (back, issues) = read_all(&file);
        prop_assert_eq!(issues.is_empty(), intact, "{:?} {:?}", picked, issues);
        for w in back.windows(2) {
            prop_assert!(w[0].seq < w[1].seq, "out of order: {} then {}", w[0].seq, w[1].seq);
        }
        for e in &back {
            prop_assert!(events.contains(e));
        }
    }
}

/// A fixed random stream of `n` events.
fn sample(n: usize) -> Vec<Event> {
    use proptest::strategy::ValueTree;
    stream(n..n + 1)
        .new_tree(&mut proptest::test_runner::TestRunner::deterministic())
        .unwrap()
        .current()
}

fn entry(seq: u64, tid: u32, name: &str, args: Args) -> Event {
    Event {
        seq,
        time_ns: 1000 + seq,
        pid: 7,
        tid,
        kind: EventKind::SyscallEntry(SyscallEntry {
            call: SyscallId::from_name(name).unwrap(),
            args,
        }),
    }
}

fn exit(seq: u64, tid: u32, name: &str, entry_seq: u64, args: Args) -> Event {
    Event {
        seq,
        time_ns: 1000 + seq,
        pid: 7,
        tid,
        kind: EventKind::SyscallExit(SyscallExit {
            call: SyscallId::from_name(name).unwrap(),
            entry_seq,
            ret: 3,
            args,
        }),
    }
}

#[test]
fn pairs_are_expanded_exactly_and_save_space() {
    let fd = |n| {
        Value::Fd(Fd::new(
            n,
            Some(std::sync::Arc::new(Target::File {
                path: "/etc/passwd".into(),
                dev: 1,
                ino: 2,
            })),
        ))
    };
    let a: Args = [fd(3), Value::Uint(0x1000), Value::Uint(4096)]
        .into_iter()
        .collect();
    let mut with_out = a.clone();
    with_out.push(fd(4));
    let events = vec![
        entry(1, 7, "read", a.clone()),
        exit(2, 7, "read", 1, a.clone()),
        entry(3, 7, "dup", a[..1].iter().cloned().collect()),
        exit(4, 7, "dup", 3, [fd(3), fd(4)].into_iter().collect()),
        entry(5, 7, "read", a.clone()),
        entry(6, 8, "read", a.clone()), // another thread in between: no pair
        exit(7, 7, "read", 5, a.clone()),
        exit(8, 8, "read", 6, with_out.clone()),
        entry(9, 7, "read", a.clone()), // never returns
    ];
    let (bytes, _) = write_blocks(&events, 100);
    let (back, issues) = read_all(&bytes);
    assert!(issues.is_empty());
    assert_eq!(back, events);
    // The same reads as pairs take less room than as separate records.
    let many: Vec<Event> = (0..1000)
        .flat_map(|i| {
            [
                entry(2 * i + 1, 7, "read", a.clone()),
                exit(2 * i + 2, 7, "read", 2 * i + 1, a.clone()),
            ]
        })
        .collect();
    let (paired, _) = write_blocks(&many, 2000);
    assert!(
        paired.len() / many.len() < 8,
        "{} bytes per event",
        paired.len() / many.len()
    );
}

#[test]
fn foreign_files_versions_and_headers_are_refused() {
    let err = |b: &[u8]| {
        LogReader::new(Cursor::new(b.to_vec()), "x.vlog")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(err(b"hello world, not a log").contains("not a vigil log"));
    assert!(err(b"").contains("not a vigil log"));
    let (good, _) = write_blocks(&[], 1);
    // A newer major version: refused, naming the version a reader needs.
    let mut v3 = good.clone();
    v3[8] = 3;
    v3[10] = 0;
    let e = err(&v3);
    assert!(
        e.contains("version 3.0")
            && e.contains("needs a vigil that reads format version 3")
            && e.contains("x.vlog"),
        "{e}"
    );
    // A newer minor version of version 2 is read (its additions are skippable).
    let mut v2_7 = good.clone();
    v2_7[10] = 7;
    let crc_at = v2_7.len() - 44 - 4;
    let crc = crc32fast::hash(&v2_7[..crc_at]);
    v2_7[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    let r = LogReader::new(Cursor::new(v2_7), "x.vlog").unwrap();
    assert_eq!((r.version().major, r.version().minor), (2, 7));
    // Version 0 never existed.
    let mut v0 = good.clone();
    v0[8] = 0;
    v0[10] = 0;
    let e = err(&v0);
    assert!(e.contains("version 0 is not one vigil writes"), "{e}");
    let mut bad = good.clone();
    bad[20] ^= 1;
    assert!(err(&bad).contains("corrupt log header"));
    assert!(err(&good[..12]).contains("corrupt log header"));
}

#[test]
fn torn_tail_and_corrupt_middle_are_reported_with_offsets() {
    let events: Vec<Event> = sample(600);
    let (bytes, blocks) = write_blocks(&events, 100);
    // Torn: cut inside the last block.
    let last = blocks.last().unwrap().0.clone();
    let (back, issues) = read_all(&bytes[..last.start + 10]);
    assert_eq!(back.len(), 500);
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(
        issues[0].contains(&format!("byte {}", last.start)),
        "{issues:?}"
    );
    assert!(issues[0].contains("incomplete"), "{issues:?}");
    // ... and so the log has no end record either.
    assert!(
        issues[1].contains("not closed") && issues[1].contains("5 blocks, 500 events"),
        "{issues:?}"
    );
    // Corrupt: a byte in the middle of block 2; blocks 3.. still read.
    let mut bad = bytes.clone();
    let b2 = blocks[2].0.clone();
    bad[b2.start + 50] ^= 0xff;
    let (back, issues) = read_all(&bad);
    assert_eq!(back.len(), 500);
    assert_eq!(back[200..], events[300..]);
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(
        issues[0].contains(&format!("corrupt block at byte {}", b2.start))
            && issues[0].contains("checksum"),
        "{issues:?}"
    );
    // The end record tells how much the corrupt block held.
    assert!(
        issues[1].contains("it says 6 blocks, 600 events")
            && issues[1].contains("read 5 blocks, 500 events"),
        "{issues:?}"
    );
    // A damaged length field in block 1 (so it seems to run past the end): later blocks are found.
    let mut bad = bytes.clone();
    let b1 = blocks[1].0.start;
    bad[b1 + 6] = 0x7f;
    let (back, issues) = read_all(&bad);
    assert_eq!(back.len(), 500, "{issues:?}");
    assert!(issues[0].contains(&format!("byte {b1}")), "{issues:?}");
}

#[test]
fn a_log_can_be_read_while_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.vlog");
    let writer = LogWriter::create(&path, &meta()).unwrap();
    let bg = BackgroundWriter::spawn(writer, Duration::from_millis(20));
    let reader = LogReader::open(&path)
        .unwrap()
        .follow(Some(Duration::from_millis(5)));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for item in reader {
            if tx.send(item.map_err(|e| e.to_string())).is_err() {
                break;
            }
        }
    });
    let events: Vec<Event> = (1..=50)
        .map(|i| Event {
            seq: i,
            time_ns: i,
            pid: 1,
            tid: 1,
            kind: EventKind::ThreadStart(ThreadStart { creator_tid: 1 }),
        })
        .collect();
    for (i, ev) in events.iter().enumerate() {
        bg.push(ev.clone()).unwrap();
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(40));
        }
    }
    for want in &events {
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the follower sees the event")
            .unwrap();
        assert_eq!(&got, want);
    }
    bg.finish().unwrap();
}

#[test]
fn background_writer_keeps_order_and_flushes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bg.vlog");
    let bg = BackgroundWriter::spawn(
        LogWriter::create(&path, &meta()).unwrap(),
        Duration::from_millis(50),
    );
    let events: Vec<Event> = sample(3000);
    for ev in &events {
        bg.push(ev.clone()).unwrap();
    }
    // Without finish(): the periodic flush alone puts everything on disk; the log is not
    // closed yet, and says so.
    std::thread::sleep(Duration::from_millis(400));
    let (on_disk, issues) = read_all(&std::fs::read(&path).unwrap());
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].contains("not closed"), "{issues:?}");
    assert_eq!(on_disk, events);
    let stats = bg.finish().unwrap();
    assert_eq!(stats.events, events.len() as u64);
    let (closed, issues) = read_all(&std::fs::read(&path).unwrap());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(closed, events);
}

#[test]
fn jsonl_round_trip_and_import_errors() {
    let events: Vec<Event> = sample(200);
    let (bytes, _) = write_blocks(&events, 64);
    let mut reader = LogReader::new(Cursor::new(bytes), "mem").unwrap();
    let mut out = Vec::new();
    let n = jsonl::export(&mut reader, &mut out, &mut |_| panic!("no damage")).unwrap();
    assert_eq!(n, 200);
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    let stats = jsonl::import(Cursor::new(out.clone()), &mut w).unwrap();
    assert_eq!(stats.events, 200);
    let (back, _) = read_all(&w.into_inner().unwrap());
    assert_eq!(back, events);

    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    let bad = format!("{}\n\n{}\n", lines[1], lines[0]);
    let e = jsonl::import(Cursor::new(bad), &mut w)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("line 3:") && e.contains("strictly increase"),
        "{e}"
    );
    let e = jsonl::import(Cursor::new("{not json\n"), &mut w)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("line 1: not JSON"), "{e}");
    let e = jsonl::import(
        Cursor::new(r#"{"seq":1,"time_ns":0,"pid":1,"type":"proces_exit","exit_code":0}"#),
        &mut w,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("process_exit"), "suggests the right type: {e}");
}

#[test]
fn batches_hold_the_same_events_as_the_iterator() {
    let events = sample(500);
    let (mut bytes, blocks) = write_blocks(&events, 60);
    bytes[blocks[3].0.start + 40] ^= 0x10; // one damaged block in the middle
    let (one_by_one, issues) = read_all(&bytes);
    let mut r = LogReader::new(Cursor::new(bytes), "mem").unwrap();
    let (mut batched, mut batch_issues) = (Vec::new(), 0);
    while let Some(b) = r.next_batch() {
        match b {
            Ok(evs) => batched.extend(evs),
            Err(_) => batch_issues += 1,
        }
    }
    assert_eq!(batched, one_by_one);
    assert_eq!(batch_issues, issues.len());
    assert_eq!(
        batch_issues, 2,
        "the corrupt block, and the end record's counts"
    );
}

/// An entry whose path was folded as text (not walked: nothing decided at entry) and its exit
/// holding the kernel's answer: stored as one patched pair, read back exactly, and smaller than
/// the two events apart.
#[test]
fn an_exit_correcting_its_entrys_inputs_pairs_with_it() {
    let call = SyscallId::from_name("openat").unwrap();
    let dirfd = Value::Fd(Fd::new(-100, None));
    let lexical = |p: &str, g: &str| {
        Value::resolved(
            Value::Str(p.into()),
            Value::Str(g.into()),
            Resolution::Lexical,
        )
    };
    let exact = |p: &str, g: &str| {
        Value::resolved(
            Value::Str(p.into()),
            Value::Str(g.into()),
            Resolution::Exact,
        )
    };
    let mut events = Vec::new();
    let mut seq = 1;
    for (entry_path, exit_path) in [
        // Confirmed: the fold was right.
        (lexical("/tmp/x/out", "out"), exact("/tmp/x/out", "out")),
        // Corrected: a symlink the fold did not follow.
        (
            lexical("/tmp/x/shadow", "l/../shadow"),
            exact("/etc/shadow", "l/../shadow"),
        ),
        // Unchanged (an ordinary pair).
        (
            Value::Str("/etc/passwd".into()),
            Value::Str("/etc/passwd".into()),
        ),
    ] {
        let entry_args: Args = vec![dirfd.clone(), entry_path, Value::Uint(0)].into();
        let mut exit_args: Args = vec![dirfd.clone(), exit_path, Value::Uint(0)].into();
        exit_args.push(Value::Absent);
        exit_args.push(Value::Fd(Fd::new(3, None)));
        events.push(Event {
            seq,
            time_ns: 1000 + seq,
            pid: 7,
            tid: 7,
            kind: EventKind::SyscallEntry(SyscallEntry {
                call,
                args: entry_args,
            }),
        });
        events.push(Event {
            seq: seq + 1,
            time_ns: 1001 + seq,
            pid: 7,
            tid: 7,
            kind: EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq: seq,
                ret: 3,
                args: exit_args,
            }),
        });
        seq += 2;
    }
    let (bytes, _) = write_blocks(&events, 100);
    let (back, issues) = read_all(&bytes);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(back, events);
    // Each pair is one record: the same events written one by one take more room.
    let mut apart = LogWriter::new(Vec::new(), &meta()).unwrap();
    for ev in &events {
        apart.append(ev).unwrap();
        apart.flush().unwrap();
    }
    let (paired, _) = write_blocks(&events, 100);
    assert!(paired.len() < apart.into_inner().unwrap().len());
}

/// A line that is not UTF-8 is named by its number (it was "reading the input: stream did not
/// contain valid UTF-8", with no line); CRLF line ends are read like LF.
#[test]
fn import_names_the_line_that_is_not_utf8() {
    let good = r#"{"seq":1,"time_ns":0,"pid":1,"type":"process_exit","exit_code":0}"#;
    let mut input = format!("{good}\r\n\n").into_bytes();
    input
        .extend_from_slice(br#"{"seq":2,"time_ns":0,"pid":1,"type":"lost","count":1,"reason":"ab"#);
    input.extend_from_slice(&[0xff, 0xfe]);
    input.extend_from_slice(b"\"}\n");
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    let e = jsonl::import(Cursor::new(input), &mut w).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, jsonl::ImportError::Line { line: 3, .. })
            && msg.contains("not UTF-8 (at byte 66)")
            && msg.contains("bytes_hex"),
        "{msg}"
    );
    assert_eq!(w.stats().events, 1, "the line before it was read");
}
