//! Property tests over every input the log crate reads, run by `cargo test` with a few hundred
//! cases each (seconds) and by `scripts/fuzz` with as many as its time allows (PROPTEST_CASES,
//! docs/fuzzing.md). The inputs are what a damaged disk or an attacker could hand vigil:
//!
//! - log files: random bytes after a valid header; valid logs mutated byte by byte; blocks
//!   whose raw payload is random or built from the record grammar with random fields, then
//!   compressed and given a valid checksum, so the mutation reaches the decoder (a checksum
//!   guards against accidents, not against a crafted file); headers with random metadata.
//! - JSON lines: random bytes; exported events with values replaced by edge cases (huge,
//!   negative, fractional numbers, wrong types, long strings), keys added or dropped, bytes
//!   flipped.
//!
//! What must hold: nothing panics; a reader ends; what it delivers never goes back in seq
//! without a report saying so, and is an event the writer stores and reads back exactly; an import either stores exactly the
//! events its lines describe or names the line it stopped at.

mod common;

use common::{BLOCK_HEADER_LEN, block_fields, block_frame, compress, layout, put};
use proptest::prelude::*;
use std::io::Cursor;
use vigil_event::testing::stream;
use vigil_event::*;
use vigil_log::*;

/// The case count: PROPTEST_CASES when set (scripts/fuzz), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

fn meta() -> LogMeta {
    LogMeta {
        backend: "fuzz".into(),
        contiguous_seq: true,
        ..LogMeta::default()
    }
}

/// The metadata of a log whose seqs only have to increase (`import`'s): what the tests write
/// again what a reader delivered, which may have gaps where damage was skipped.
fn loose_meta() -> LogMeta {
    LogMeta {
        backend: "import".into(),
        contiguous_seq: false,
        ..LogMeta::default()
    }
}

fn header() -> Vec<u8> {
    let bytes = LogWriter::new(Vec::new(), &meta())
        .unwrap()
        .into_inner()
        .unwrap();
    bytes[layout(&bytes).header].to_vec()
}

fn write(events: &[Event], per_block: usize) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new(), &meta()).unwrap();
    for (i, e) in events.iter().enumerate() {
        w.append(e).unwrap();
        if (i + 1) % per_block == 0 {
            w.flush().unwrap();
        }
    }
    w.into_inner().unwrap()
}

/// Reads a log and checks what every read must give: no panic, an end, no seq that goes back
/// unreported, and events the writer stores and reads back exactly (or refuses as too large).
fn read_checked(bytes: &[u8]) -> Result<(Vec<Event>, usize), TestCaseError> {
    let Ok(reader) = LogReader::new(Cursor::new(bytes.to_vec()), "fuzz") else {
        return Ok((Vec::new(), 0));
    };
    let mut events = Vec::new();
    let mut issues = 0usize;
    // Seq anomalies reported: each report names the first anomaly of its block and counts
    // the `others`, of either kind (a gap may be named and a step back counted).
    let (mut anomalies, mut reports) = (0u64, 0u64);
    for item in reader {
        match item {
            Ok(e) => events.push(e),
            Err(issue) => {
                issues += 1;
                match issue {
                    ReadIssue::SeqRepeat { others, .. } | ReadIssue::SeqGap { others, .. } => {
                        reports += 1;
                        anomalies = anomalies.saturating_add(others).saturating_add(1);
                    }
                    _ => {}
                }
            }
        }
        // Each issue or event accounts for bytes of the file: a reader that loops would pass
        // this long before it ran out of memory.
        prop_assert!(
            issues <= bytes.len() + 8,
            "{issues} issues from {} bytes",
            bytes.len()
        );
    }
    // Blocks repeated or out of place are never delivered; a block in its place whose seqs do
    // not increase is (tests/integrity.rs), but never silently: every step back is counted in a
    // seq report.
    let back = events.windows(2).filter(|w| w[0].seq >= w[1].seq).count() as u64;
    prop_assert!(
        back == 0 || (reports > 0 && back <= anomalies),
        "{back} seqs go back, {reports} seq reports ({anomalies} anomalies counted)"
    );
    let mut w = LogWriter::new(Vec::new(), &loose_meta()).unwrap();
    let mut stored = Vec::new();
    // (Those that went back are left out: a log holding them would be reported.)
    let mut last = None;
    for e in &events {
        if last.is_some_and(|l| e.seq <= l) {
            continue;
        }
        last = Some(e.seq);
        match w.append(e) {
            Ok(()) => stored.push(e.clone()),
            Err(err) if err.is_event_too_large() => {}
            Err(err) => return Err(TestCaseError::fail(format!("{err}"))),
        }
    }
    let again = w.into_inner().unwrap();
    let back: Vec<Event> = LogReader::new(Cursor::new(again), "again")
        .unwrap()
        .map(|r| r.map_err(|i| TestCaseError::fail(format!("rewritten log: {i}"))))
        .collect::<Result<_, _>>()?;
    prop_assert_eq!(
        back,
        stored,
        "what the reader gave does not survive the writer"
    );
    Ok((events, issues))
}

/// A version 2 block with a valid checksum around `raw` (compressed, padded to the ratio).
fn block(raw: &[u8], events: u32, number: u64, first_seq: u64, first_time: u64) -> Vec<u8> {
    let payload = compress(raw, 1, raw.len().div_ceil(RATIO_MAX));
    block_frame(
        &payload,
        raw.len() as u32,
        events,
        number,
        first_seq,
        first_time,
    )
}

/// A varint-sized number: mostly small, sometimes at an edge.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..16,
        2 => 0u64..100_000,
        1 => prop::sample::select(vec![
            127, 128, 255, 256, 65_535, 65_536, (1 << 31) - 1, 1 << 31, u32::MAX as u64,
            1 << 32, i64::MAX as u64, u64::MAX - 1, u64::MAX,
        ]),
        1 => any::<u64>(),
    ]
}

/// One piece of a raw payload, after the grammar of docs/log-format.md (records, their
/// fields, values with their tags), each field a random number: most are wrong somewhere.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let var = number().prop_map(|n| {
        let mut v = Vec::new();
        put(&mut v, n);
        v
    });
    let bytes = proptest::collection::vec(any::<u8>(), 0..24);
    prop_oneof![
        // A string definition: shared prefix, length, bytes.
        3 => (0u64..40, bytes.clone()).prop_map(|(shared, b)| {
            let mut v = vec![0x80];
            put(&mut v, shared);
            put(&mut v, b.len() as u64);
            v.extend(b);
            v
        }),
        // A target definition: kind, then fields.
        1 => (0u8..5, proptest::collection::vec(number(), 0..6)).prop_map(|(k, f)| {
            let mut v = vec![0x81, k];
            f.into_iter().for_each(|n| put(&mut v, n));
            v
        }),
        // An event header: a tag (any kind, any flags), then numbers.
        6 => (0u8..0x40, proptest::collection::vec(number(), 0..8)).prop_map(|(tag, f)| {
            let mut v = vec![tag];
            f.into_iter().for_each(|n| put(&mut v, n));
            v
        }),
        // A value: a tag and what may follow it.
        4 => (0u8..13, proptest::collection::vec(number(), 0..4)).prop_map(|(tag, f)| {
            let mut v = vec![tag];
            f.into_iter().for_each(|n| put(&mut v, n));
            v
        }),
        1 => (0x82u8..=0xff, bytes).prop_map(|(tag, b)| {
            let mut v = vec![tag];
            put(&mut v, b.len() as u64);
            v.extend(b);
            v
        }),
        2 => var,
    ]
}

/// A byte-level mutation of a file: (kind, where, what, how long).
type Mutation = (u8, prop::sample::Index, u64, usize);

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(
        (0u8..7, any::<prop::sample::Index>(), number(), 1usize..64),
        1..6,
    )
}

fn mutate(bytes: &mut Vec<u8>, from: usize, muts: &[Mutation]) {
    for &(kind, at, value, len) in muts {
        if bytes.len() <= from {
            bytes.push(value as u8);
            continue;
        }
        let i = from + at.index(bytes.len() - from);
        let end = (i + len).min(bytes.len());
        match kind {
            0 => bytes[i] ^= (value as u8).max(1),
            1 => bytes
                .splice(i..i, value.to_le_bytes()[..len.min(8)].to_vec())
                .for_each(drop),
            2 => bytes.drain(i..end).for_each(drop),
            3 => {
                let copy = bytes[i..end].to_vec();
                let j = from + (value as usize) % (bytes.len() - from);
                bytes.splice(j..j, copy).for_each(drop);
            }
            // A 4-byte field (a length, a count) set to an edge value.
            4 if i + 4 <= bytes.len() => {
                bytes[i..i + 4].copy_from_slice(&(value as u32).to_le_bytes());
            }
            5 => bytes.truncate(i),
            _ => bytes[i] = value as u8,
        }
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Random bytes after a valid header.
    #[test]
    fn random_bytes_after_a_header(tail in proptest::collection::vec(any::<u8>(), 0..2048),
                                   magic in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..6)) {
        let mut bytes = header();
        let start = bytes.len();
        bytes.extend(tail);
        // Frame starts sprinkled in, so the scan has something to try.
        for (at, which) in magic {
            if bytes.len() > start + 4 {
                let i = start + at.index(bytes.len() - start - 4);
                let m: &[u8; 4] = [b"VBK2", b"VEND", b"VBK1"][which as usize];
                bytes[i..i + 4].copy_from_slice(m);
            }
        }
        read_checked(&bytes)?;
    }

}

// Each case writes a log and decodes it twice: fewer by default, as many as asked under
// scripts/fuzz.
proptest! {
    #![proptest_config(config(64))]

    /// Valid logs mutated byte by byte (flips, insertions, deletions, copies, 4-byte fields set
    /// to edge values, cuts), header included.
    #[test]
    fn mutated_logs(events in stream(1..120), per_block in 1usize..40, muts in mutations(),
                    header_too in any::<bool>()) {
        let mut bytes = write(&events, per_block);
        let from = if header_too { 0 } else { header().len() };
        mutate(&mut bytes, from, &muts);
        read_checked(&bytes)?;
    }

    /// Real blocks whose raw payload is mutated (or kept), and whose header fields (event count,
    /// block number, first seq and time) may be changed, then compressed and checksummed again:
    /// the decoder gets records no writer made, with nothing to stop them before it.
    #[test]
    fn mutated_payloads_with_valid_checksums(events in stream(1..120), per_block in 1usize..40,
                                             muts in mutations(), which in any::<prop::sample::Index>(),
                                             count_delta in -2i64..3,
                                             keep_payload in prop::bool::weighted(0.25),
                                             fields in (prop::option::weighted(0.2, number()),
                                                        prop::option::weighted(0.2, number()),
                                                        prop::option::weighted(0.2, number()))) {
        let bytes = write(&events, per_block);
        let blocks = layout(&bytes).blocks;
        let r = blocks[which.index(blocks.len())].clone();
        let b = &bytes[r.clone()];
        let f = block_fields(b);
        let mut raw = zstd::bulk::decompress(&b[BLOCK_HEADER_LEN..], f.raw_len as usize).unwrap();
        if !keep_payload {
            mutate(&mut raw, 0, &muts);
        }
        let count = (f.events as i64 + count_delta).max(0) as u32;
        let number = fields.0.unwrap_or(f.number);
        let first_seq = fields.1.unwrap_or(f.first_seq);
        let first_time = fields.2.unwrap_or(f.first_time);
        let mut file = bytes[..r.start].to_vec();
        file.extend(block(&raw, count, number, first_seq, first_time));
        file.extend_from_slice(&bytes[r.end..]);
        read_checked(&file)?;
    }

}

proptest! {
    #![proptest_config(config(200))]

    /// Blocks whose raw payload is built from the record grammar with random fields, and whose
    /// header fields (block number, first seq and time) are sometimes at an edge.
    #[test]
    fn grammar_built_payloads(blocks in proptest::collection::vec(
                                  (proptest::collection::vec(piece(), 1..40), 0u32..50, number(),
                                   number(), prop::option::weighted(0.2, number())), 1..4)) {
        let mut file = header();
        for (i, (pieces, count, first_seq, first_time, renumber)) in blocks.into_iter().enumerate() {
            let raw: Vec<u8> = pieces.concat();
            file.extend(block(&raw, count, renumber.unwrap_or(i as u64), first_seq, first_time));
        }
        read_checked(&file)?;
    }

    /// Headers with random metadata (checksum made valid) and random versions.
    #[test]
    fn random_headers(meta in proptest::collection::vec(any::<u8>(), 0..300),
                      json in any::<bool>(), major in 0u16..4, minor in 0u16..3) {
        let body = if json {
            let s = String::from_utf8_lossy(&meta).into_owned();
            format!(r#"{{"backend":"x","command":["{}"],"command_cut":{{"items":{},"bytes":1}}}}"#,
                    s.replace(['"', '\\'], ""), meta.len()).into_bytes()
        } else {
            meta
        };
        let mut h = Vec::new();
        h.extend_from_slice(b"VIGILLOG");
        h.extend_from_slice(&major.to_le_bytes());
        h.extend_from_slice(&minor.to_le_bytes());
        h.extend_from_slice(&(body.len() as u32).to_le_bytes());
        h.extend_from_slice(&body);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        let log = write(&[], 1);
        h.extend_from_slice(&log[header().len()..]);
        read_checked(&h)?;
    }
}

/// A JSON value at an edge of what a field can hold, or of the wrong type.
fn edge_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        prop::sample::select(vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(-0.0),
            json!(2147483647),
            json!(2147483648u64),
            json!(-2147483649i64),
            json!(4294967295u64),
            json!(4294967296u64),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e300),
            json!(""),
            json!("x"),
            json!("SIGKILL"),
            json!("O_RDONLY|O_BOGUS"),
            json!([]),
            json!({}),
            json!({"fd": 3}),
            json!({"bytes_hex": "zz"}),
            json!({"bytes_hex": "abc"}),
            json!({"unreadable": -1}),
            json!({"kind": "file"}),
            json!({"inet": "1.2.3.4:5"}),
            json!({"inet6": "[::1]:9", "flowinfo": 4294967296u64}),
            json!({"netlink": {"pid": -1, "groups": 0}}),
            json!({"family": 70000, "data_hex": ""}),
            json!({"items": u64::MAX, "bytes": -1, "exact": "no"}),
        ]),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(|s| json!(s)),
        proptest::collection::vec("[a-z_]{1,8}", 0..4).prop_map(|v| json!(v)),
    ]
}

/// Replaces, drops or adds a key somewhere in `v`, `path` choosing where: each index picks a
/// key of an object or an element of an array to go into; the last one picked in an object is
/// dropped (op 0), gets a sibling `key` (op 1) or is replaced (op 2). A path that runs into a
/// scalar, an empty container or its own end replaces what it reached.
fn mutate_json(
    v: &mut serde_json::Value,
    path: &[prop::sample::Index],
    op: u8,
    new: serde_json::Value,
    key: &str,
) {
    use serde_json::Value as J;
    let Some((i, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        J::Object(m) if !m.is_empty() => {
            let k = m.keys().nth(i.index(m.len())).cloned().unwrap_or_default();
            if rest.is_empty() {
                match op {
                    0 => {
                        m.remove(&k);
                    }
                    1 => {
                        m.insert(key.to_string(), new);
                    }
                    _ => {
                        m.insert(k, new);
                    }
                }
            } else if let Some(next) = m.get_mut(&k) {
                mutate_json(next, rest, op, new, key);
            }
        }
        J::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate_json(&mut a[i.index(n)], rest, op, new, key);
        }
        _ => *v = new,
    }
}

/// Where `given` (a line imported) and `stored` (its event exported) both hold a number at the
/// same place, it is the same number.
fn numbers_agree(
    given: &serde_json::Value,
    stored: &serde_json::Value,
    at: &str,
) -> Result<(), TestCaseError> {
    use serde_json::Value as J;
    match (given, stored) {
        (J::Number(a), J::Number(b)) => {
            let same = match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                // A negative number for an unsigned argument is its 64 bits as a register holds
                // them (-1 is 2^64-1): the same bits, by design (docs/event-schema.md).
                (Some(x), None, _, Some(y)) if x < 0 => x as u64 == y,
                _ => a.as_f64() == b.as_f64() && a.is_f64() == b.is_f64(),
            };
            prop_assert!(same, "{at}: the line says {a}, the log holds {b}");
        }
        (J::Object(a), J::Object(b)) => {
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    numbers_agree(v, w, &format!("{at}.{k}"))?;
                }
            }
        }
        (J::Array(a), J::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                numbers_agree(v, w, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Imports `text`; checks that it either stores exactly the events its lines describe, read
/// back whole, or stops at a line that exists, having stored the lines before it.
fn import_checked(text: &[u8]) -> Result<(), TestCaseError> {
    let mut w = LogWriter::new(Vec::new(), &loose_meta()).unwrap();
    let lines = text.split(|&b| b == b'\n').count() as u64;
    match jsonl::import(Cursor::new(text.to_vec()), &mut w) {
        Ok(stats) => {
            let bytes = w.into_inner().unwrap();
            let back: Vec<Event> = LogReader::new(Cursor::new(bytes), "import")
                .unwrap()
                .map(|r| r.map_err(|i| TestCaseError::fail(format!("imported log: {i}"))))
                .collect::<Result<_, _>>()?;
            prop_assert_eq!(back.len() as u64, stats.events);
            // Each event is the one its line describes, and no number was changed on the way
            // (cut to a field's width, rounded, its sign lost): where the line and the event
            // written back as JSON both hold a number, it is the same number.
            let described: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .filter(|l| !String::from_utf8_lossy(l).trim().is_empty())
                .collect();
            prop_assert_eq!(described.len(), back.len());
            for (line, ev) in described.iter().zip(&back) {
                let given: serde_json::Value = serde_json::from_slice(line).unwrap();
                let stored = vigil_event::json::to_json(ev);
                numbers_agree(&given, &stored, "")?;
            }
            // Exported again and imported again: the same events.
            let mut out = Vec::new();
            let mut w2 = LogWriter::new(Vec::new(), &loose_meta()).unwrap();
            back.iter().for_each(|e| w2.append(e).unwrap());
            let mut r = LogReader::new(Cursor::new(w2.into_inner().unwrap()), "again").unwrap();
            jsonl::export(&mut r, &mut out, &mut |i| panic!("{i}")).unwrap();
            let mut w3 = LogWriter::new(Vec::new(), &loose_meta()).unwrap();
            jsonl::import(Cursor::new(out), &mut w3)
                .map_err(|e| TestCaseError::fail(format!("re-import: {e}")))?;
            let again: Vec<Event> = LogReader::new(Cursor::new(w3.into_inner().unwrap()), "again")
                .unwrap()
                .map(|r| r.map_err(|i| TestCaseError::fail(format!("{i}"))))
                .collect::<Result<_, _>>()?;
            prop_assert_eq!(again, back);
        }
        Err(jsonl::ImportError::Line { line, message }) => {
            prop_assert!(
                line >= 1 && line <= lines,
                "line {line} of {lines}: {message}"
            );
        }
        Err(e) => return Err(TestCaseError::fail(format!("not about a line: {e}"))),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(200))]

    /// Random bytes, as lines.
    #[test]
    fn random_json_lines(text in proptest::collection::vec(any::<u8>(), 0..512),
                         lines in proptest::collection::vec("\\PC{0,80}", 0..6)) {
        import_checked(&text)?;
        import_checked(lines.join("\n").as_bytes())?;
    }

}

proptest! {
    #![proptest_config(config(100))]

    /// Exported events with a value replaced by an edge case, a key dropped or added, or bytes
    /// mutated.
    #[test]
    fn mutated_json_lines(events in stream(1..30),
                          edits in proptest::collection::vec((any::<prop::sample::Index>(),
                              proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
                              0u8..3, edge_json(), "[a-z_]{1,12}"), 1..4),
                          muts in proptest::collection::vec((0u8..7, any::<prop::sample::Index>(), number(), 1usize..16), 0..3)) {
        let mut w = LogWriter::new(Vec::new(), &loose_meta()).unwrap();
        // Seqs from the stream may repeat across threads' pairs: renumber.
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            e.seq = i as u64 + 1;
            w.append(&e).unwrap();
        }
        let mut r = LogReader::new(Cursor::new(w.into_inner().unwrap()), "x").unwrap();
        let mut out = Vec::new();
        jsonl::export(&mut r, &mut out, &mut |i| panic!("{i}")).unwrap();
        let mut lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        for (line, path, op, new, key) in edits {
            let n = lines.len();
            mutate_json(&mut lines[line.index(n)], &path, op, new, &key);
        }
        let mut text: Vec<u8> = lines
            .iter()
            .flat_map(|l| {
                let mut b = serde_json::to_vec(l).unwrap();
                b.push(b'\n');
                b
            })
            .collect();
        mutate(&mut text, 0, &muts);
        import_checked(&text)?;
    }
}
