//! What a checksum cannot see: whole blocks lost, repeated or reordered, a log never closed, an
//! end record that disagrees, seqs that jump; and the compatibility rule (unknown extension
//! kinds are skipped and counted, a newer major version refused, version 1 still read). Every
//! case is a real file on disk, damaged the way a crash, a cut copy or an editor would.
// Files are spliced from lists of byte ranges; a one-range list is meant.
#![allow(clippy::single_range_in_vec_init)]

mod common;

use common::{Layout, layout};
use std::io::Cursor;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigil_event::*;
use vigil_log::*;

fn meta(contiguous_seq: bool) -> LogMeta {
    LogMeta {
        backend: "test".into(),
        contiguous_seq,
        ..LogMeta::default()
    }
}

fn event(seq: u64) -> Event {
    Event {
        seq,
        time_ns: 1_000_000 + seq * 10,
        pid: 100 + (seq % 3) as u32,
        tid: 100 + (seq % 3) as u32,
        kind: EventKind::Signal(SignalDelivery {
            signal: 15,
            code: 0,
            sender_pid: seq as u32,
            sender_uid: 0,
            fault: None,
        }),
    }
}

/// Writes seqs `seqs` to `path`, a block every `per_block` events, and closes the log.
fn write_log(path: &Path, contiguous: bool, seqs: &[u64], per_block: usize) -> Vec<u8> {
    let mut w = LogWriter::create(path, &meta(contiguous)).unwrap();
    for chunk in seqs.chunks(per_block) {
        for &s in chunk {
            w.append(&event(s)).unwrap();
        }
        w.flush().unwrap();
    }
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

/// A recording of seqs 1..=50 in 5 blocks of 10.
fn recording(dir: &Path) -> (Vec<u8>, Layout) {
    let seqs: Vec<u64> = (1..=50).collect();
    let bytes = write_log(&dir.join("good.vlog"), true, &seqs, 10);
    let l = layout(&bytes);
    assert_eq!(l.blocks.len(), 5);
    (bytes, l)
}

/// A file made of these byte ranges of `bytes`, in this order.
fn splice(dir: &Path, name: &str, bytes: &[u8], parts: &[Range<usize>]) -> PathBuf {
    let path = dir.join(name);
    let out: Vec<u8> = parts
        .iter()
        .flat_map(|r| bytes[r.clone()].to_vec())
        .collect();
    std::fs::write(&path, out).unwrap();
    path
}

fn read(path: &Path) -> (Vec<Event>, Vec<ReadIssue>) {
    let mut events = Vec::new();
    let mut issues = Vec::new();
    for item in LogReader::open(path).unwrap() {
        match item {
            Ok(e) => events.push(e),
            Err(i) => issues.push(i),
        }
    }
    (events, issues)
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[test]
fn a_closed_log_reads_with_no_issue() {
    let dir = tempfile::tempdir().unwrap();
    let (_, l) = recording(dir.path());
    assert!(l.end.is_some(), "finish() writes the end record");
    let (events, issues) = read(&dir.path().join("good.vlog"));
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(seqs(&events), (1..=50).collect::<Vec<_>>());
}

#[test]
fn a_log_cut_at_a_block_boundary_is_not_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let path = splice(dir.path(), "cut.vlog", &bytes, &[0..l.blocks[2].end]);
    let (events, issues) = read(&path);
    assert_eq!(seqs(&events), (1..=30).collect::<Vec<_>>());
    assert_eq!(issues.len(), 1, "{issues:?}");
    let want = Totals {
        blocks: 3,
        events: 30,
        last_seq: Some(30),
    };
    assert!(
        matches!(&issues[0], ReadIssue::NotClosed { offset, read } if *offset == l.blocks[2].end as u64 && *read == want),
        "{issues:?}"
    );
    let msg = issues[0].to_string();
    assert!(
        msg.contains("not closed")
            && msg.contains("interrupted")
            && msg.contains(&format!("byte {}", l.blocks[2].end))
            && msg.contains("3 blocks, 30 events, last seq 30"),
        "{msg}"
    );
}

/// `kill -9` of the recorder right after it wrote the header.
#[test]
fn a_header_only_log_is_not_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let path = splice(
        dir.path(),
        "header.vlog",
        &bytes,
        std::slice::from_ref(&l.header),
    );
    let (events, issues) = read(&path);
    assert!(events.is_empty());
    assert_eq!(issues.len(), 1, "{issues:?}");
    let empty = Totals {
        blocks: 0,
        events: 0,
        last_seq: None,
    };
    assert!(
        matches!(&issues[0], ReadIssue::NotClosed { offset, read } if *offset == l.header.end as u64 && *read == empty),
        "{issues:?}"
    );
    assert!(issues[0].is_damage());
}

#[test]
fn a_duplicated_block_is_reported_and_its_events_given_once() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let b = &l.blocks;
    let end = l.end.clone().unwrap();
    let parts = [
        l.header.clone(),
        b[0].clone(),
        b[1].clone(),
        b[1].clone(),
        b[2].start..end.end,
    ];
    let path = splice(dir.path(), "dup.vlog", &bytes, &parts);
    let (events, issues) = read(&path);
    assert_eq!(seqs(&events), (1..=50).collect::<Vec<_>>());
    assert_eq!(issues.len(), 1, "{issues:?}");
    let at = (b[1].end) as u64; // the copy starts where the original ends
    assert!(
        matches!(&issues[0], ReadIssue::BlockRepeated { offset, block: 1, events: 10 } if *offset == at),
        "{issues:?}"
    );
    let msg = issues[0].to_string();
    assert!(
        msg.contains(&format!("block 1 at byte {at}")) && msg.contains("repeats"),
        "{msg}"
    );
}

#[test]
fn two_swapped_blocks_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let b = &l.blocks;
    let end = l.end.clone().unwrap();
    let parts = [
        l.header.clone(),
        b[0].clone(),
        b[2].clone(),
        b[1].clone(),
        b[3].start..end.end,
    ];
    let path = splice(dir.path(), "swap.vlog", &bytes, &parts);
    let (events, issues) = read(&path);
    // Events stay in order: block 1's, met after block 2's, are reported, not delivered.
    let want: Vec<u64> = (1..=10).chain(21..=50).collect();
    assert_eq!(seqs(&events), want);
    assert_eq!(issues.len(), 2, "{issues:?}");
    let block2_at = b[0].end as u64;
    let block1_at = block2_at + b[2].len() as u64;
    assert!(
        matches!(&issues[0], ReadIssue::BlocksMissing { offset, block: 2, expected: 1 } if *offset == block2_at),
        "{issues:?}"
    );
    assert!(
        matches!(&issues[1], ReadIssue::BlockOutOfPlace { offset, block: 1, expected: 3, events: 10, first_seq: 11 } if *offset == block1_at),
        "{issues:?}"
    );
    assert!(
        issues[0].to_string().contains(&format!(
            "block 1 is missing (lost, or out of place): block 2 is next, at byte {block2_at}"
        )),
        "{}",
        issues[0]
    );
    assert!(
        issues[1].to_string().contains(&format!(
            "block 1 at byte {block1_at} is out of place (block 3 was due)"
        )),
        "{}",
        issues[1]
    );
}

#[test]
fn a_lost_block_in_the_middle_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let b = &l.blocks;
    let end = l.end.clone().unwrap();
    let parts = [l.header.start..b[1].end, b[3].start..end.end];
    let path = splice(dir.path(), "lost.vlog", &bytes, &parts);
    let (events, issues) = read(&path);
    assert_eq!(events.len(), 40);
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(
        matches!(
            &issues[0],
            ReadIssue::BlocksMissing {
                block: 3,
                expected: 2,
                ..
            }
        ),
        "{issues:?}"
    );
    // The end record confirms it: 5 blocks written, 4 read.
    assert!(
        matches!(&issues[1], ReadIssue::EndMismatch { written, read, .. }
            if written.blocks == 5 && written.events == 50 && read.blocks == 4 && read.events == 40),
        "{issues:?}"
    );
}

#[test]
fn an_end_record_that_disagrees_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let end = l.end.clone().unwrap();
    // The end record claims 60 events (its CRC made to match): events were removed.
    let mut forged = bytes.clone();
    forged[end.start + 16..end.start + 24].copy_from_slice(&60u64.to_le_bytes());
    let crc = crc32fast::hash(&forged[end.start..end.end - 4]);
    forged[end.end - 4..end.end].copy_from_slice(&crc.to_le_bytes());
    let path = dir.path().join("forged.vlog");
    std::fs::write(&path, &forged).unwrap();
    let (events, issues) = read(&path);
    assert_eq!(events.len(), 50);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        matches!(&issues[0], ReadIssue::EndMismatch { offset, written, read }
            if *offset == end.start as u64 && written.events == 60 && read.events == 50),
        "{issues:?}"
    );
    let msg = issues[0].to_string();
    assert!(
        msg.contains(&format!("end record at byte {}", end.start))
            && msg.contains("it says 5 blocks, 60 events, last seq 50")
            && msg.contains("read 5 blocks, 50 events, last seq 50"),
        "{msg}"
    );
    // The last block cut out, the end record kept: the same check finds it.
    let b = &l.blocks;
    let path = splice(
        dir.path(),
        "nolast.vlog",
        &bytes,
        &[0..b[3].end, end.clone()],
    );
    let (events, issues) = read(&path);
    assert_eq!(events.len(), 40);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        matches!(&issues[0], ReadIssue::EndMismatch { read, .. } if read.last_seq == Some(40)),
        "{issues:?}"
    );
}

#[test]
fn data_after_the_end_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, l) = recording(dir.path());
    let end = l.end.unwrap();
    let extra = bytes[l.blocks[4].clone()].to_vec();
    bytes.extend_from_slice(&extra);
    let path = dir.path().join("after.vlog");
    std::fs::write(&path, &bytes).unwrap();
    let (events, issues) = read(&path);
    assert_eq!(events.len(), 50);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        matches!(&issues[0], ReadIssue::AfterEnd { offset, bytes } if *offset == end.end as u64 && *bytes == extra.len() as u64),
        "{issues:?}"
    );
}

#[test]
fn seq_gaps_count_in_recordings_and_repeats_in_every_log() {
    let dir = tempfile::tempdir().unwrap();
    let gap: Vec<u64> = (1..=10).chain(14..=20).collect();
    // A recording numbers every event: 11..13 are missing.
    write_log(&dir.path().join("gap.vlog"), true, &gap, 5);
    let (events, issues) = read(&dir.path().join("gap.vlog"));
    assert_eq!(seqs(&events), gap);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        matches!(
            &issues[0],
            ReadIssue::SeqGap {
                block: Some(2),
                after: 10,
                next: 14,
                others: 0,
                ..
            }
        ),
        "{issues:?}"
    );
    let msg = issues[0].to_string();
    assert!(
        msg.contains("seq jumps from 10 to 14 in block 2 at byte") && msg.contains("3 events"),
        "{msg}"
    );
    // An import only promises increasing seqs: the same gap is fine there.
    write_log(&dir.path().join("import.vlog"), false, &gap, 5);
    let (_, issues) = read(&dir.path().join("import.vlog"));
    assert!(issues.is_empty(), "{issues:?}");
    // A seq that goes back is wrong in any log.
    let back: Vec<u64> = (1..=10).chain(5..=8).collect();
    write_log(&dir.path().join("back.vlog"), false, &back, 20);
    let (events, issues) = read(&dir.path().join("back.vlog"));
    assert_eq!(
        events.len(),
        14,
        "the block is in place: its events are given"
    );
    assert!(
        matches!(
            &issues[..],
            [ReadIssue::SeqRepeat {
                block: Some(0),
                prev: 10,
                seq: 5,
                ..
            }]
        ),
        "{issues:?}"
    );
}

/// The next format additions (shared-memory accesses, address-space snapshots, divergences)
/// come as extension kinds: this reader skips them, counts them, reports them as a note (not
/// damage), and reads the events around them.
#[test]
fn unknown_extension_kinds_are_skipped_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ext.vlog");
    let mut w = LogWriter::create(&path, &meta(true)).unwrap();
    let ext = |seq: u64, kind: u64, body: &[u8]| ExtensionEvent {
        seq,
        time_ns: 1_000_000 + seq * 10,
        pid: 100,
        tid: 100,
        kind,
        body: body.to_vec(),
    };
    w.append(&event(1)).unwrap();
    w.append_extension(&ext(2, 42, b"a page fault")).unwrap();
    w.append(&event(3)).unwrap();
    w.append_extension(&ext(4, 42, &[0xc0; 300])).unwrap();
    w.append_extension(&ext(5, 7, b"")).unwrap();
    w.flush().unwrap();
    w.append(&event(6)).unwrap();
    w.finish().unwrap();
    let (events, issues) = read(&path);
    assert_eq!(seqs(&events), [1, 3, 6], "the known events, whole");
    assert_eq!(events[1], event(3));
    // Skipped events keep their seqs: no gap, and the end record's counts match.
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        matches!(&issues[0], ReadIssue::UnknownKinds { events: 3, kinds, records: 0 } if kinds == &[(7, 1), (42, 2)]),
        "{issues:?}"
    );
    assert!(!issues[0].is_damage());
    let msg = issues[0].to_string();
    assert!(
        msg.contains("3 events of kinds this vigil does not know")
            && msg.contains("extension kind 42: 2")
            && msg.contains("newer vigil"),
        "{msg}"
    );
}

/// Version 1 logs (written by the version 1 writer, kept in tests/data) read as before: no
/// block numbers and no end record to check, so no issue.
#[test]
fn version_1_logs_still_read() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut r = LogReader::open(&data.join("v1.vlog")).unwrap();
    assert_eq!(r.version().major, 1);
    let mut out = Vec::new();
    let mut issues = Vec::new();
    let n = jsonl::export(&mut r, &mut out, &mut |i| issues.push(i.to_string())).unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(n, 120);
    let want = std::fs::read(data.join("v1.jsonl")).unwrap();
    assert!(
        out == want,
        "the v1 log reads back as the v1 reader exported it"
    );
    // Damage in a v1 log is still found by its checksums; nothing else is asked of it.
    let mut bytes = std::fs::read(data.join("v1.vlog")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let issues: Vec<String> = LogReader::new(Cursor::new(bytes), "v1")
        .unwrap()
        .filter_map(|i| i.err().map(|e| e.to_string()))
        .collect();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].contains("corrupt block"), "{issues:?}");
}

/// Following a log being written ends at its end record instead of waiting forever.
#[test]
fn following_a_log_ends_at_its_end_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("follow.vlog");
    let bg = BackgroundWriter::spawn(
        LogWriter::create(&path, &meta(true)).unwrap(),
        Duration::from_millis(10),
    );
    let reader = LogReader::open(&path)
        .unwrap()
        .follow(Some(Duration::from_millis(5)));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let items: Vec<Result<Event, String>> =
            reader.map(|i| i.map_err(|e| e.to_string())).collect();
        let _ = tx.send(items);
    });
    for s in 1..=20 {
        bg.push(event(s)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    bg.finish().unwrap();
    let items = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the follower stops at the end record");
    let events: Vec<Event> = items.into_iter().map(|i| i.unwrap()).collect();
    assert_eq!(seqs(&events), (1..=20).collect::<Vec<_>>());
}

/// `bytes` with the 4-byte little-endian field at `at` set to `f(old value)`, written to `name`.
fn patched(dir: &Path, name: &str, bytes: &[u8], at: usize, f: impl Fn(u32) -> u32) -> PathBuf {
    let mut b = bytes.to_vec();
    let old = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    b[at..at + 4].copy_from_slice(&f(old).to_le_bytes());
    let path = dir.join(name);
    std::fs::write(&path, b).unwrap();
    path
}

/// The one corrupt-block report of a read, and its events.
fn corrupt_reason(path: &Path) -> (Vec<u64>, String) {
    let (events, issues) = read(path);
    let reasons: Vec<String> = issues
        .iter()
        .filter(|i| matches!(i, ReadIssue::CorruptBlock { .. }))
        .map(|i| i.to_string())
        .collect();
    assert_eq!(reasons.len(), 1, "{issues:?}");
    (seqs(&events), reasons[0].clone())
}

/// Each kind of damage is reported for what it is. A wrong length field was called "checksum
/// mismatch" in the middle of a log and "cut short by a crash" at the end of one not closed;
/// the bytes the reader skips now show whether the block, at its real length, verifies. A raw
/// length of 0 was "checksum mismatch" too.
#[test]
fn each_damage_gets_its_true_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, l) = recording(dir.path());
    let (b2, last) = (l.blocks[2].clone(), l.blocks[4].clone());
    let len2 = (b2.len() - 44) as u32;
    let want_length = |claimed: u32, real: u32| {
        format!(
            "its length field is damaged: it says {claimed} bytes, the block holds {real} (its checksum matches that length)"
        )
    };
    let all_but = |gone: std::ops::Range<u64>| -> Vec<u64> {
        (1..=50).filter(|s| !gone.contains(s)).collect()
    };

    // A length too long, and one too short, in the middle of a closed log.
    for (name, claimed) in [("longer", len2 + 1000), ("shorter", len2 - 10)] {
        let path = patched(dir.path(), name, &bytes, b2.start + 4, |_| claimed);
        let (seqs, reason) = corrupt_reason(&path);
        assert!(reason.contains(&want_length(claimed, len2)), "{reason}");
        assert_eq!(seqs, all_but(21..31), "{name}");
    }

    // The last block's length past the end of a log that was never closed: not a torn tail.
    let cut = splice(dir.path(), "unclosed", &bytes, &[0..last.end]);
    let len4 = (last.len() - 44) as u32;
    let path = patched(
        dir.path(),
        "unclosed-long",
        &std::fs::read(&cut).unwrap(),
        last.start + 4,
        |n| n + 100,
    );
    let (events, issues) = read(&path);
    assert_eq!(seqs(&events), (1..=40).collect::<Vec<_>>());
    assert!(
        !issues
            .iter()
            .any(|i| matches!(i, ReadIssue::TornTail { .. })),
        "{issues:?}"
    );
    assert!(
        issues[0]
            .to_string()
            .contains(&want_length(len4 + 100, len4)),
        "{issues:?}"
    );
    // A block really cut short still is one.
    let torn = splice(dir.path(), "torn", &bytes, &[0..last.end - 5]);
    let (_, issues) = read(&torn);
    assert!(
        matches!(issues[0], ReadIssue::TornTail { .. }),
        "{issues:?}"
    );

    // A raw length of 0, with or without events: no block is empty.
    let path = patched(dir.path(), "raw0", &bytes, b2.start + 8, |_| 0);
    let (_, reason) = corrupt_reason(&path);
    assert!(
        reason.contains("0 bytes raw") && reason.contains("a block holds at least one event"),
        "{reason}"
    );
    let zeroed = std::fs::read(&path).unwrap();
    let path = patched(dir.path(), "raw0-events0", &zeroed, b2.start + 12, |_| 0);
    let (_, reason) = corrupt_reason(&path);
    assert!(
        reason.contains("a block holds at least one event"),
        "{reason}"
    );

    // Another wrong raw length: the zstd frame says how much the payload holds.
    let raw = u32::from_le_bytes(bytes[b2.start + 8..b2.start + 12].try_into().unwrap());
    let path = patched(dir.path(), "raw-wrong", &bytes, b2.start + 8, |n| n + 5);
    let (seqs, reason) = corrupt_reason(&path);
    assert!(
        reason.contains(&format!(
            "its raw length field is damaged: it says {} bytes, the payload holds {raw}",
            raw + 5
        )),
        "{reason}"
    );
    assert_eq!(seqs, all_but(21..31));

    // A flipped payload byte is a checksum mismatch, nothing more precise.
    let mut flipped = bytes.clone();
    flipped[b2.start + 50] ^= 0x40;
    let path = dir.path().join("flipped");
    std::fs::write(&path, flipped).unwrap();
    let (_, reason) = corrupt_reason(&path);
    assert!(reason.contains("(checksum mismatch)"), "{reason}");
}
