//! Blocks crafted to make a reader work or allocate far more than the file holds: each has a
//! valid checksum, so only the reader's own limits stand between it and the cost. A payload
//! that decompresses more than RATIO_MAX times its size, a block that would take more than
//! BLOCK_MEM_MAX of memory once decoded (events, front-coded strings, lists), counts larger than
//! the block, more events than its header says, and a file full of frame starts each claiming
//! megabytes: every one is refused as damage, quickly, and the intact blocks around it are read.

mod common;

use common::{BLOCK_HEADER_LEN, block_fields, block_frame, layout, put};
use std::io::Cursor;
use std::time::{Duration, Instant};
use vigil_event::*;
use vigil_log::*;

fn meta() -> LogMeta {
    LogMeta {
        backend: "crafted".into(),
        ..LogMeta::default()
    }
}

/// The header of an empty log (the file header, then nothing).
fn file_header() -> Vec<u8> {
    let bytes = LogWriter::new(Vec::new(), &meta())
        .unwrap()
        .into_inner()
        .unwrap();
    bytes[layout(&bytes).header].to_vec()
}

/// A version 2 block as docs/log-format.md lays it out, with a valid CRC.
fn block(payload: &[u8], raw_len: u32, events: u32, number: u64, first_seq: u64) -> Vec<u8> {
    block_frame(payload, raw_len, events, number, first_seq, 1_000)
}

/// A raw payload compressed, padded with a skippable frame to at least `min` bytes.
fn compress(raw: &[u8], min: usize) -> Vec<u8> {
    common::compress(raw, 3, min)
}

/// A real block holding thread starts with seqs `seqs`, written by the writer, and its
/// number fixed up to `number`.
fn real_block(seqs: std::ops::Range<u64>, number: u64) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    for seq in seqs {
        w.append(&thread_start(seq)).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let b = &bytes[layout(&bytes).blocks[0].clone()];
    let f = block_fields(b);
    block(
        &b[BLOCK_HEADER_LEN..],
        f.raw_len,
        f.events,
        number,
        f.first_seq,
    )
}

fn thread_start(seq: u64) -> Event {
    Event {
        seq,
        time_ns: 1_000 + seq,
        pid: 9,
        tid: 9,
        kind: EventKind::ThreadStart(ThreadStart { creator_tid: 9 }),
    }
}

/// Reads a file made of the header and `frames`; the events, the issues, and how long it took.
fn read(frames: &[Vec<u8>]) -> (Vec<Event>, Vec<String>, Duration) {
    let mut bytes = file_header();
    frames.iter().for_each(|f| bytes.extend_from_slice(f));
    let t = Instant::now();
    let mut events = Vec::new();
    let mut issues = Vec::new();
    for item in LogReader::new(Cursor::new(bytes), "crafted").unwrap() {
        match item {
            Ok(e) => events.push(e),
            Err(i) => issues.push(i.to_string()),
        }
    }
    (events, issues, t.elapsed())
}

fn corrupt(issues: &[String]) -> Vec<&String> {
    issues
        .iter()
        .filter(|i| i.starts_with("corrupt block"))
        .collect()
}

/// The reported case: 566 bytes, a valid checksum, zstd of 16 MiB of zeros. Zeros decode as
/// syscall entries of 7 bytes: 2.4 million events, 0.5 s and 488 MB per block. Now refused
/// before decompressing, by its ratio; padded to pass the ratio, by the memory it would take;
/// either way fast, and the intact blocks around it are read.
#[test]
fn a_zstd_bomb_is_refused_unread() {
    let raw = vec![0u8; 16 << 20];
    let events = (raw.len() / 7) as u32;
    let bomb = compress(&raw, 0);
    assert!(bomb.len() < 1000, "{}", bomb.len());
    let (got, issues, took) = read(&[
        real_block(1..4, 0),
        block(&bomb, raw.len() as u32, events, 1, 4),
        real_block(4..7, 2),
    ]);
    assert_eq!(got.len(), 6, "{issues:?}");
    let bad = corrupt(&issues);
    assert_eq!(bad.len(), 1, "{issues:?}");
    assert!(bad[0].contains("over 64 times as many"), "{issues:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Padded to exactly the ratio (256 KiB on disk): decoded within the memory limit, which
    // stops it long before 2.4 million events.
    let padded = compress(&raw, raw.len().div_ceil(RATIO_MAX));
    let (got, issues, took) = read(&[
        real_block(1..4, 0),
        block(&padded, raw.len() as u32, events, 1, 4),
        real_block(4..7, 2),
    ]);
    assert_eq!(got.len(), 6, "{issues:?}");
    let bad = corrupt(&issues);
    assert_eq!(bad.len(), 1, "{issues:?}");
    assert!(bad[0].contains("more than 64 MiB of memory"), "{issues:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Forty of them in 23 kB (20 s before): one damaged region, skipped whole.
    let mut frames: Vec<Vec<u8>> = (0..40)
        .map(|i| block(&bomb, raw.len() as u32, events, i, 1))
        .collect();
    let size: usize = frames.iter().map(Vec::len).sum();
    frames.push(real_block(1..4, 40));
    let (got, issues, took) = read(&frames);
    assert_eq!(got.len(), 3, "{issues:?}");
    let bad = corrupt(&issues);
    assert_eq!(bad.len(), 1, "{issues:?}");
    assert!(
        bad[0].ends_with(&format!("skipped {size} bytes")),
        "{issues:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// A block whose header claims fewer events than its payload holds stops decoding at the
/// first one too many, not after millions.
#[test]
fn decoding_stops_at_the_events_the_header_claims() {
    // Thread starts of 3 bytes each: tag 0x36 (same thread, next seq), time delta, creator.
    let mut raw = vec![0x06, 0, 0, 9, 0, 9];
    for _ in 0..100_000 {
        raw.extend_from_slice(&[0x36, 2, 9]);
    }
    let payload = compress(&raw, raw.len().div_ceil(RATIO_MAX));
    let (got, issues, _) = read(&[block(&payload, raw.len() as u32, 10, 0, 1)]);
    assert!(got.is_empty());
    let bad = corrupt(&issues);
    assert!(
        bad.len() == 1 && bad[0].contains("more events than the 10 its header says"),
        "{issues:?}"
    );
}

/// Front coding lets five bytes define a string as long as the one before it: 64 KiB defined
/// once, then redefined 2,000 times plus a byte, is 128 MiB of strings from 90 KiB of payload.
#[test]
fn front_coded_strings_cannot_amplify() {
    let mut raw = vec![0x80, 0];
    put(&mut raw, 65_536);
    raw.extend(std::iter::repeat_n(b'p', 65_536));
    for i in 0..2_000u32 {
        raw.push(0x80);
        put(&mut raw, 65_536);
        put(&mut raw, 1);
        raw.push(i as u8);
    }
    // One event using the last string, so the block is otherwise valid.
    raw.extend_from_slice(&[0x0a, 0, 0, 9, 0, 0, 0, 9, 0]);
    let payload = compress(&raw, raw.len().div_ceil(RATIO_MAX));
    let (_, issues, took) = read(&[block(&payload, raw.len() as u32, 1, 0, 1)]);
    let bad = corrupt(&issues);
    assert!(
        bad.len() == 1 && bad[0].contains("more than 64 MiB of memory"),
        "{issues:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A list (or argument list, or argv) claiming more items than the bytes left in its block
/// is refused before anything is allocated for it; one of a few million one-byte references
/// is refused by what it would take in memory.
#[test]
fn counts_larger_than_their_block_or_its_memory_are_refused() {
    // A syscall entry (openat) with one argument: a list.
    let entry = |list_len: u64, refs: usize| {
        let mut raw = vec![0x80, 0, 1, b'x', 0x00, 0, 0, 9, 0];
        put(&mut raw, 257 << 2);
        raw.push(1);
        raw.push(6);
        put(&mut raw, list_len);
        raw.extend(std::iter::repeat_n(0u8, refs));
        raw
    };
    let raw = entry(1 << 40, 10);
    let payload = compress(&raw, raw.len().div_ceil(RATIO_MAX));
    let (_, issues, _) = read(&[block(&payload, raw.len() as u32, 1, 0, 1)]);
    assert!(
        corrupt(&issues)
            .iter()
            .any(|i| i.contains("a list of 1099511627776 items is longer than its block")),
        "{issues:?}"
    );
    let n = 5_000_000;
    let raw = entry(n as u64, n);
    let payload = compress(&raw, raw.len().div_ceil(RATIO_MAX));
    let (_, issues, _) = read(&[block(&payload, raw.len() as u32, 1, 0, 1)]);
    assert!(
        corrupt(&issues)
            .iter()
            .any(|i| i.contains("more than 64 MiB of memory")),
        "{issues:?}"
    );
}

/// A frame start every 48 bytes, each claiming a megabyte that is there but does not verify:
/// checking each one's checksum would take time quadratic in the file's size (8 MiB: hours).
/// The reader stops trying checksums past a budget that grows with what it reads, and still
/// finds the intact block after the crafted region.
#[test]
fn a_file_full_of_frame_starts_is_skipped_in_linear_time() {
    let mut pattern = Vec::new();
    pattern.extend_from_slice(b"VBK2");
    pattern.extend_from_slice(&(1u32 << 20).to_le_bytes());
    pattern.extend_from_slice(&(1u32 << 20).to_le_bytes());
    pattern.extend_from_slice(&1000u32.to_le_bytes());
    pattern.resize(48, 0x5a);
    let junk: Vec<u8> = pattern.iter().copied().cycle().take(8 << 20).collect();
    let (got, issues, took) = read(&[junk, real_block(1..4, 0)]);
    assert_eq!(got.len(), 3, "{issues:?}");
    assert_eq!(corrupt(&issues).len(), 1, "{issues:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// Found by tests/fuzz.rs: a field whose every value is a possible varint can still overflow
/// the arithmetic that reads it. A tid stored as `tid - pid` of i64::MAX overflowed the sum
/// (a panic in a debug build; a divergence variant's tid did too, found in review), and a
/// string reference of u64::MAX back wrapped to "the latest string" plus one: an index past
/// the end, a panic in every build. All are now damage, the block reported and the blocks
/// around it read.
#[test]
fn references_and_deltas_at_the_edge_of_their_range_are_damage() {
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    // A thread start: tag 6, seq and time deltas 0, pid 5, tid - pid = i64::MAX, creator 0.
    let mut tid = vec![6, 0, 0, 5];
    put(&mut tid, zigzag(i64::MAX));
    tid.push(0);
    // A syscall entry of read with one argument, a string reference u64::MAX back.
    let mut string = vec![0, 0, 0, 5, 0, 0, 1, 4];
    put(&mut string, u64::MAX);
    // A divergence (extension kind 3) whose one variant has tid - pid = i64::MAX: a string
    // "x" defined, then the event's header, its kind and length, and the body: what, no call,
    // no fields, detail, one variant (index 0, pid 5, the tid, not diverged, no call, no
    // arguments, detail).
    let mut body = vec![0, 0, 0, 0, 1, 0, 5];
    put(&mut body, zigzag(i64::MAX));
    body.extend_from_slice(&[0, 0, 0, 0]);
    let mut variant = vec![0x80, 0, 1, b'x', 15, 0, 0, 5, 0, 3, body.len() as u8];
    variant.extend_from_slice(&body);
    for (raw, says) in [
        (tid, "tid out of range"),
        (string, "undefined string"),
        (variant, "tid out of range"),
    ] {
        let (got, issues, _) = read(&[
            real_block(1..4, 0),
            block(&compress(&raw, 0), raw.len() as u32, 1, 1, 4),
            real_block(4..7, 2),
        ]);
        assert_eq!(got.len(), 6, "{issues:?}");
        let bad = corrupt(&issues);
        assert_eq!(bad.len(), 1, "{issues:?}");
        assert!(bad[0].contains(says), "{issues:?}");
    }
}

/// Found by tests/fuzz.rs: a block numbered u64::MAX (a checksum guards against accidents, not
/// against a crafted file) made the reader compute the number due next, u64::MAX + 1: a panic
/// in a debug build, block 0 due next in a release one. No log holds that many blocks: the
/// block is damage, named for its number, and the blocks around it are read.
#[test]
fn the_last_possible_block_number_is_damage() {
    let (got, issues, _) = read(&[
        real_block(1..4, 0),
        real_block(4..7, u64::MAX),
        real_block(7..10, 1),
    ]);
    assert_eq!(got.len(), 6, "{issues:?}");
    let bad = corrupt(&issues);
    assert_eq!(bad.len(), 1, "{issues:?}");
    assert!(
        bad[0].contains("no log holds that many blocks"),
        "{issues:?}"
    );
}
