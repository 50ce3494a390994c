//! Streaming reads: block by block, never the whole file. Damage is reported as it is met and
//! reading goes on from the next block that verifies.
//!
//! Beyond each block's checksum, the reader checks what a checksum cannot see (version 2):
//! that blocks come numbered 0, 1, 2... (a block lost, repeated or moved is reported), that seqs
//! strictly increase (and, in a recording, follow each other with no gap), and that the log ends
//! with an end record whose counts match what was read (a log without one was not closed: the
//! recorder was killed or the file was cut). Events are only ever delivered in file order with
//! increasing seqs: a repeated or misplaced block is reported and its events are not delivered.

use crate::LogError;
use crate::codec::{Decoder, SeqCheck, Skipped};
use crate::format::{
    BLOCK_MAGIC, BLOCK_MAGIC_V1, BLOCK_MAX, BlockHeader, END_MAGIC, EndRecord, LogMeta, Version,
    read_header,
};
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use vigil_event::Event;

/// How much of a log: blocks, events and the last seq (`None` when there were no events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub blocks: u64,
    pub events: u64,
    pub last_seq: Option<u64>,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} blocks, {} events", self.blocks, self.events)?;
        match self.last_seq {
            Some(s) => write!(f, ", last seq {s}"),
            None => Ok(()),
        }
    }
}

/// A problem met while reading. None is fatal: the events of every intact block are still
/// delivered. All but `UnknownKinds` are damage (`is_damage`).
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadIssue {
    /// A block that failed its checksum or did not decode, and the bytes skipped to the next
    /// block that verifies.
    CorruptBlock {
        offset: u64,
        skipped: u64,
        reason: String,
    },
    /// Incomplete data at the end (a crash mid-write, or a copy cut short); reading ends.
    TornTail { offset: u64, bytes: u64 },
    /// Version 2: the file ends (at `offset`) without an end record: the writer never finished
    /// (vigil was killed, the machine stopped) or the file was cut. `read` is what was read.
    NotClosed { offset: u64, read: Totals },
    /// Version 2: block `block` at `offset` came where block `expected` was due: the blocks in
    /// between are missing here (lost, or moved elsewhere in the file).
    BlocksMissing {
        offset: u64,
        block: u64,
        expected: u64,
    },
    /// Version 2: a block read before appears again; its events are not delivered twice.
    BlockRepeated {
        offset: u64,
        block: u64,
        events: u32,
    },
    /// Version 2: a block that was missing at its place turns up later; its events, older than
    /// those already delivered, are not delivered (events stay in order).
    BlockOutOfPlace {
        offset: u64,
        block: u64,
        expected: u64,
        events: u32,
        first_seq: u64,
    },
    /// In a recording (every event numbered), seq jumps from `after` to `next` inside or between
    /// blocks that are in place: events are missing. `others`: further seq anomalies in the same
    /// block. `block` is `None` in version 1 logs.
    SeqGap {
        offset: u64,
        block: Option<u64>,
        after: u64,
        next: u64,
        others: u64,
    },
    /// Seq `seq` follows `prev` without being larger: events repeat or are out of order.
    SeqRepeat {
        offset: u64,
        block: Option<u64>,
        prev: u64,
        seq: u64,
        others: u64,
    },
    /// Version 2: the end record's counts differ from what was read (blocks or events lost).
    EndMismatch {
        offset: u64,
        written: Totals,
        read: Totals,
    },
    /// Version 2: bytes after the end record (added after the log was closed); not read.
    AfterEnd { offset: u64, bytes: u64 },
    /// Not damage: events of extension kinds this vigil does not know (written by a newer one)
    /// were skipped: (kind id, count) for each kind (the first 256 kinds; `events` counts them
    /// all), and extension records that are not events.
    UnknownKinds {
        events: u64,
        kinds: Vec<(u64, u64)>,
        records: u64,
    },
    /// Reading failed; iteration ends.
    Io(std::io::Error),
}

impl ReadIssue {
    /// Whether the log is damaged (anything but events of kinds this vigil does not know).
    pub fn is_damage(&self) -> bool {
        !matches!(self, ReadIssue::UnknownKinds { .. })
    }
}

/// "block N at byte X" (version 2) or "the block at byte X" (version 1).
struct Place(Option<u64>, u64);

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "block {n} at byte {}", self.1),
            None => write!(f, "the block at byte {}", self.1),
        }
    }
}

/// "; N more seq anomalies in that block", or nothing.
struct Others(u64);

impl fmt::Display for Others {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, "; {n} more seq anomalies in that block"),
        }
    }
}

impl fmt::Display for ReadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadIssue::CorruptBlock {
                offset,
                skipped,
                reason,
            } => {
                write!(
                    f,
                    "corrupt block at byte {offset} ({reason}): skipped {skipped} bytes"
                )
            }
            ReadIssue::TornTail { offset, bytes } => {
                write!(
                    f,
                    "incomplete block at byte {offset} ({bytes} bytes at the end): the log was cut short, e.g. by a crash while recording"
                )
            }
            ReadIssue::NotClosed { offset, read } => write!(
                f,
                "the log is not closed (it ends at byte {offset} without an end record): the recording was interrupted (e.g. vigil was killed) or the file was cut; read {read}"
            ),
            ReadIssue::BlocksMissing {
                offset,
                block,
                expected,
            } => {
                if block.saturating_sub(*expected) <= 1 {
                    write!(f, "block {expected} is missing")?;
                } else {
                    write!(f, "blocks {expected} to {} are missing", block - 1)?;
                }
                write!(
                    f,
                    " (lost, or out of place): block {block} is next, at byte {offset}"
                )
            }
            ReadIssue::BlockRepeated {
                offset,
                block,
                events,
            } => write!(
                f,
                "block {block} at byte {offset} repeats a block already read: its {events} events were skipped"
            ),
            ReadIssue::BlockOutOfPlace {
                offset,
                block,
                expected,
                events,
                first_seq,
            } => write!(
                f,
                "block {block} at byte {offset} is out of place (block {expected} was due): its {events} events, from seq {first_seq}, belong earlier in the log and were skipped to keep the events in order"
            ),
            ReadIssue::SeqGap {
                offset,
                block,
                after,
                next,
                others,
            } => write!(
                f,
                "seq jumps from {after} to {next} in {}: {} events are missing from a recording that numbers every event{}",
                Place(*block, *offset),
                next.saturating_sub(*after).saturating_sub(1),
                Others(*others)
            ),
            ReadIssue::SeqRepeat {
                offset,
                block,
                prev,
                seq,
                others,
            } => write!(
                f,
                "seq {seq} follows seq {prev} in {}: events repeat or are out of order{}",
                Place(*block, *offset),
                Others(*others)
            ),
            ReadIssue::EndMismatch {
                offset,
                written,
                read,
            } => write!(
                f,
                "the end record at byte {offset} does not match what was read: it says {written} were written; read {read}"
            ),
            ReadIssue::AfterEnd { offset, bytes } => write!(
                f,
                "{bytes} bytes after the end record, from byte {offset}: added after the log was closed; not read"
            ),
            ReadIssue::UnknownKinds {
                events,
                kinds,
                records,
            } => {
                write!(
                    f,
                    "{events} events of kinds this vigil does not know were skipped ("
                )?;
                for (i, (kind, n)) in kinds.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}extension kind {kind}: {n}")?;
                }
                let listed: u64 = kinds.iter().map(|(_, n)| n).sum();
                if *events > listed {
                    let sep = if kinds.is_empty() { "" } else { ", " };
                    write!(f, "{sep}other kinds: {}", events - listed)?;
                }
                write!(f, ")")?;
                if *records > 0 {
                    write!(f, ", and {records} extension records")?;
                }
                write!(f, ": a newer vigil wrote them, and reads them")
            }
            ReadIssue::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

/// At most this many ranges of missing block numbers are remembered (to recognise a block that
/// turns up late); a log damaged beyond that has been reported many times over already.
const MISSING_MAX: usize = 4096;
/// At most this many kinds of unknown extension events are counted kind by kind; the others
/// together.
const KINDS_KEPT: usize = 256;

pub struct LogReader<R: Read> {
    input: R,
    meta: LogMeta,
    version: Version,
    /// Unconsumed bytes, starting at file offset `offset`.
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    follow: Option<Duration>,
    /// The current block's events not yet handed out one by one.
    events: std::vec::IntoIter<Event>,
    /// A decoded block not yet handed out (given whole by next_batch).
    block: Option<Vec<Event>>,
    /// Issues to hand out before the block's events.
    issues: VecDeque<ReadIssue>,
    scratch: Vec<u8>,
    zstd: zstd::bulk::Decompressor<'static>,
    done: bool,
    /// The block number due next (version 2).
    next_number: u64,
    /// Block numbers skipped over, as ranges: a block from one that turns up later is out of
    /// place, any other earlier block is a repeat.
    missing: Vec<std::ops::Range<u64>>,
    /// Blocks and events found (delivered, or out of place), for the end record's check.
    blocks_found: u64,
    events_found: u64,
    seqs: SeqCheck,
    /// Damage was reported since the last good block: a jump in block numbers or seqs after it
    /// is part of that damage, not reported again.
    damaged: bool,
    closed: bool,
    skipped: Skipped,
    /// Bytes checksummed for frames that failed (see WASTE_FREE).
    waste: u64,
    /// Events of unknown kinds beyond the KINDS_KEPT kinds counted one by one.
    other_kinds: u64,
}

impl LogReader<std::fs::File> {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|e| LogError::Io {
            path: name.clone(),
            source: e,
        })?;
        LogReader::new(f, &name)
    }
}

enum Frame {
    Block(BlockHeader),
    End(EndRecord),
}

/// What is at a position in the file.
enum Check {
    /// A frame that verifies, and its length.
    Frame(Frame, usize),
    /// Not a frame that verifies, and why.
    Bad(String),
    /// The file ends before the frame does.
    Short,
}

/// Checksums computed for frames that then failed their check may cost this much for free, and
/// 4 bytes more per byte read: beyond, a frame's checksum is not tried. Damage that occurs by
/// accident never comes near it (a damaged block is checked once, and the 4-byte magic rarely
/// occurs by chance in what follows); a file crafted with a frame start every few bytes, each
/// claiming megabytes, would otherwise take time quadratic in its size.
const WASTE_FREE: u64 = 2 * BLOCK_MAX as u64;
const WASTE_PER_BYTE: u64 = 4;

/// A damaged block's header, kept while the reader skips to the next frame, with a checksum of
/// the bytes it skips: if the header's CRC matches them once a frame is found (or the file
/// ends), the block was whole and only its length field was wrong.
struct LengthCheck {
    header: Vec<u8>,
    claimed: u64,
    crc: u32,
    /// Bytes of the header still to skip before the payload starts.
    header_left: usize,
    payload: crc32fast::Hasher,
    payload_len: u64,
}

impl LengthCheck {
    fn feed(&mut self, bytes: &[u8]) {
        let skip = self.header_left.min(bytes.len());
        self.header_left -= skip;
        self.payload.update(&bytes[skip..]);
        self.payload_len += (bytes.len() - skip) as u64;
    }

    /// If the block verifies with the bytes skipped as its payload: a reason that says so.
    fn verdict(&self) -> Option<String> {
        if self.header_left > 0 || self.payload_len == self.claimed {
            return None;
        }
        let len = u32::try_from(self.payload_len).ok()?;
        let mut h = self.header.clone();
        h[4..8].copy_from_slice(&len.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h[..h.len() - 4]);
        crc.combine(&self.payload);
        (crc.finalize() == self.crc).then(|| {
            format!(
                "its length field is damaged: it says {} bytes, the block holds {} (its checksum matches that length)",
                self.claimed, self.payload_len
            )
        })
    }
}

impl<R: Read> LogReader<R> {
    pub fn new(mut input: R, name: &str) -> Result<Self, LogError> {
        let (meta, header_len, version) = read_header(&mut input, name)?;
        let seqs = SeqCheck {
            contiguous: meta.contiguous_seq,
            ..SeqCheck::default()
        };
        Ok(LogReader {
            input,
            meta,
            version,
            buf: Vec::with_capacity(256 * 1024),
            start: 0,
            offset: header_len,
            follow: None,
            events: Vec::new().into_iter(),
            block: None,
            issues: VecDeque::new(),
            scratch: Vec::new(),
            zstd: zstd::bulk::Decompressor::new().map_err(|e| LogError::io(name, e))?,
            done: false,
            next_number: 0,
            missing: Vec::new(),
            blocks_found: 0,
            events_found: 0,
            seqs,
            damaged: false,
            closed: false,
            skipped: Skipped::default(),
            waste: 0,
            other_kinds: 0,
        })
    }

    pub fn meta(&self) -> &LogMeta {
        &self.meta
    }

    /// The log's format version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// With `Some(poll)`, reaching the end waits for more data instead of ending (for a log
    /// that is still being written), until the end record; incomplete data at the end, or no
    /// end record yet, is then not an issue.
    pub fn follow(mut self, poll: Option<Duration>) -> Self {
        self.follow = poll;
        self
    }

    fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Reads until `need` bytes are available; false if the input ends first.
    fn fill(&mut self, need: usize) -> std::io::Result<bool> {
        if self.available() >= need {
            return Ok(true);
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        while self.available() < need {
            match self.input.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn magic_at(&self, s: usize) -> &[u8] {
        &self.buf[s..s + 4]
    }

    /// Whether `m` starts a frame in this version.
    fn is_magic(&self, m: &[u8]) -> bool {
        if self.version.major == 1 {
            m == BLOCK_MAGIC_V1
        } else {
            m == BLOCK_MAGIC || m == END_MAGIC
        }
    }

    /// Checks the frame starting `at` bytes into the buffer, reading as needed.
    fn verify_at(&mut self, at: usize) -> std::io::Result<Check> {
        if !self.fill(at + 4)? {
            return Ok(Check::Short);
        }
        let magic = self.magic_at(self.start + at);
        if !self.is_magic(magic) {
            return Ok(Check::Bad("no block starts here".into()));
        }
        if magic == END_MAGIC {
            if !self.fill(at + 8)? {
                return Ok(Check::Short);
            }
            let s = self.start + at;
            let Some(n) = EndRecord::body_len(&self.buf[s..s + 8]) else {
                return Ok(Check::Bad("implausible end record length".into()));
            };
            let total = 8 + n + 4;
            if !self.fill(at + total)? {
                return Ok(Check::Short);
            }
            let s = self.start + at;
            return Ok(match EndRecord::parse(&self.buf[s..s + total]) {
                Some(end) => Check::Frame(Frame::End(end), total),
                None => Check::Bad("end record checksum mismatch".into()),
            });
        }
        let hl = BlockHeader::len(self.version.major);
        if !self.fill(at + hl)? {
            return Ok(Check::Short);
        }
        let s = self.start + at;
        let (h, crc) = BlockHeader::parse(self.version.major, &self.buf[s..s + hl]);
        if let Err(reason) = h.check() {
            return Ok(Check::Bad(reason));
        }
        let total = hl + h.compressed_len as usize;
        let allowed = WASTE_FREE.saturating_add(WASTE_PER_BYTE.saturating_mul(self.offset));
        if self.waste.saturating_add(total as u64) > allowed {
            return Ok(Check::Bad(format!(
                "its checksum was not tried: checking the damage before it has already taken {} MiB",
                self.waste >> 20
            )));
        }
        if !self.fill(at + total)? {
            return Ok(Check::Short);
        }
        let s = self.start + at;
        let (header, payload) = (&self.buf[s..s + hl], &self.buf[s + hl..s + total]);
        if BlockHeader::crc_ok(header, payload, crc) {
            return Ok(Check::Frame(Frame::Block(h), total));
        }
        let reason = raw_len_verdict(header, payload, crc, h.raw_len)
            .unwrap_or_else(|| "checksum mismatch".into());
        self.waste = self.waste.saturating_add(total as u64);
        Ok(Check::Bad(reason))
    }

    /// Consumes `n` bytes, feeding them to `check`.
    fn skip(&mut self, n: usize, check: &mut Option<LengthCheck>) {
        if let Some(c) = check {
            c.feed(&self.buf[self.start..self.start + n]);
        }
        self.consume(n);
    }

    /// Skips from a bad spot to the next frame that verifies, consuming as it scans so a large
    /// damaged region is never held in memory. Returns the bytes skipped and whether a frame
    /// was found. `check`, the damaged block's header, is fed what is skipped.
    fn resync(&mut self, check: &mut Option<LengthCheck>) -> std::io::Result<(u64, bool)> {
        self.skip(1, check);
        let mut skipped = 1u64;
        loop {
            if !self.fill(4)? {
                let rest = self.available();
                self.skip(rest, check);
                return Ok((skipped + rest as u64, false));
            }
            let found = self.buf[self.start..]
                .windows(4)
                .position(|w| self.is_magic(w));
            match found {
                Some(i) => {
                    self.skip(i, check);
                    skipped += i as u64;
                    if let Check::Frame(..) = self.verify_at(0)? {
                        return Ok((skipped, true));
                    }
                    self.skip(1, check);
                    skipped += 1;
                }
                None => {
                    let n = self.available() - 3;
                    self.skip(n, check);
                    skipped += n as u64;
                }
            }
        }
    }

    /// The header of a block at the current position that failed its checks, to see while
    /// skipping it whether only its length field was wrong.
    fn length_check(&self) -> Option<LengthCheck> {
        let hl = BlockHeader::len(self.version.major);
        let header = self.buf.get(self.start..self.start + hl)?;
        if !self.is_magic(&header[..4]) || &header[..4] == END_MAGIC {
            return None;
        }
        let (h, crc) = BlockHeader::parse(self.version.major, header);
        Some(LengthCheck {
            header: header.to_vec(),
            claimed: u64::from(h.compressed_len),
            crc,
            header_left: hl,
            payload: crc32fast::Hasher::new(),
            payload_len: 0,
        })
    }

    fn damage(&mut self, issue: ReadIssue) {
        self.issues.push_back(issue);
        self.damaged = true;
    }

    fn fail(&mut self, e: std::io::Error) {
        self.issues.push_back(ReadIssue::Io(e));
        self.done = true;
    }

    fn totals(&self) -> Totals {
        Totals {
            blocks: self.blocks_found,
            events: self.events_found,
            last_seq: self.seqs.last,
        }
    }

    /// Reads the next frame: a block's events into `self.block`, issues into `self.issues`,
    /// or the end (`self.done`).
    fn step(&mut self) {
        loop {
            match self.fill(1) {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(poll) = self.follow {
                        std::thread::sleep(poll);
                        continue;
                    }
                    return self.end_of_input();
                }
                Err(e) => return self.fail(e),
            }
            let offset = self.offset;
            match self.verify_at(0) {
                Ok(Check::Frame(Frame::Block(h), total)) => return self.on_block(h, total, offset),
                Ok(Check::Frame(Frame::End(end), total)) => {
                    self.consume(total);
                    return self.on_end(end, offset);
                }
                Ok(Check::Short) => {
                    if let Some(poll) = self.follow {
                        // A block still being written: wait for the rest of it.
                        std::thread::sleep(poll);
                        continue;
                    }
                    // Cut short, or a corrupt length field with intact blocks after it.
                    let mut check = self.length_check();
                    return match self.resync(&mut check) {
                        Ok((skipped, found)) => {
                            let verdict = check.as_ref().and_then(LengthCheck::verdict);
                            match (verdict, found) {
                                (Some(reason), _) => self.damage(ReadIssue::CorruptBlock {
                                    offset,
                                    skipped,
                                    reason,
                                }),
                                (None, true) => self.damage(ReadIssue::CorruptBlock {
                                    offset,
                                    skipped,
                                    reason: match &check {
                                        Some(c) => format!(
                                            "damaged block header: its length ({} bytes) reaches past the next intact frame",
                                            c.claimed
                                        ),
                                        None => "damaged block header".into(),
                                    },
                                }),
                                (None, false) => {
                                    self.damage(ReadIssue::TornTail {
                                        offset,
                                        bytes: skipped,
                                    });
                                }
                            }
                            if !found {
                                self.end_of_input();
                            }
                        }
                        Err(e) => self.fail(e),
                    };
                }
                Ok(Check::Bad(reason)) => {
                    let mut check = self.length_check();
                    return match self.resync(&mut check) {
                        Ok((skipped, found)) => {
                            let reason = match check.as_ref().and_then(LengthCheck::verdict) {
                                Some(r) => r,
                                None if found => reason,
                                None => format!("{reason}; no intact block after it"),
                            };
                            self.damage(ReadIssue::CorruptBlock {
                                offset,
                                skipped,
                                reason,
                            });
                        }
                        Err(e) => self.fail(e),
                    };
                }
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Takes `n` out of the missing block numbers; whether it was there.
    fn take_missing(&mut self, n: u64) -> bool {
        let Some(i) = self.missing.iter().position(|r| r.contains(&n)) else {
            return false;
        };
        let r = self.missing.remove(i);
        for part in [r.start..n, n + 1..r.end] {
            if !part.is_empty() {
                self.missing.push(part);
            }
        }
        true
    }

    fn on_block(&mut self, h: BlockHeader, total: usize, offset: u64) {
        let hl = BlockHeader::len(self.version.major);
        if let Some(n) = h.number
            && n < self.next_number
        {
            self.consume(total);
            let issue = if self.take_missing(n) {
                self.blocks_found += 1;
                self.events_found += u64::from(h.events);
                ReadIssue::BlockOutOfPlace {
                    offset,
                    block: n,
                    expected: self.next_number,
                    events: h.events,
                    first_seq: h.first_seq,
                }
            } else {
                ReadIssue::BlockRepeated {
                    offset,
                    block: n,
                    events: h.events,
                }
            };
            return self.issues.push_back(issue);
        }
        let jumped = h.number.is_some_and(|n| n > self.next_number);
        let seqs = SeqCheck {
            relaxed: jumped || self.damaged,
            first: None,
            others: 0,
            ..self.seqs
        };
        let s = self.start;
        let result = self.decode(&h, s + hl, s + total, seqs);
        self.consume(total);
        let (events, seqs, skipped) = match result {
            Ok(r) => r,
            Err(reason) => {
                return self.damage(ReadIssue::CorruptBlock {
                    offset,
                    skipped: total as u64,
                    reason,
                });
            }
        };
        if let Some(n) = h.number {
            if jumped {
                if self.missing.len() >= MISSING_MAX {
                    self.missing.remove(0);
                }
                self.missing.push(self.next_number..n);
                if !self.damaged {
                    self.issues.push_back(ReadIssue::BlocksMissing {
                        offset,
                        block: n,
                        expected: self.next_number,
                    });
                }
            }
            self.next_number = n + 1;
        }
        self.damaged = false;
        self.blocks_found += 1;
        self.events_found += u64::from(h.events);
        if let Some((prev, seq)) = seqs.first {
            let (block, others) = (h.number, seqs.others);
            self.issues.push_back(if seq > prev {
                ReadIssue::SeqGap {
                    offset,
                    block,
                    after: prev,
                    next: seq,
                    others,
                }
            } else {
                ReadIssue::SeqRepeat {
                    offset,
                    block,
                    prev,
                    seq,
                    others,
                }
            });
        }
        self.seqs = seqs;
        for (k, n) in skipped.kinds {
            // Counted by kind up to KINDS_KEPT kinds (a crafted log could name millions).
            let kinds = &mut self.skipped.kinds;
            if kinds.len() < KINDS_KEPT || kinds.contains_key(&k) {
                *kinds.entry(k).or_default() += n;
            } else {
                self.other_kinds += n;
            }
        }
        for (t, n) in skipped.records {
            *self.skipped.records.entry(t).or_default() += n;
        }
        self.block = Some(events);
    }

    fn on_end(&mut self, end: EndRecord, offset: u64) {
        self.closed = true;
        let written = Totals {
            blocks: end.blocks,
            events: end.events,
            last_seq: (end.events > 0).then_some(end.last_seq),
        };
        let read = self.totals();
        if written != read {
            self.issues.push_back(ReadIssue::EndMismatch {
                offset,
                written,
                read,
            });
        }
        if self.follow.is_none() {
            // Nothing may follow the end record.
            let at = self.offset;
            let mut bytes = 0u64;
            loop {
                match self.fill(1) {
                    Ok(true) => {
                        let n = self.available();
                        bytes += n as u64;
                        self.consume(n);
                    }
                    Ok(false) => break,
                    Err(e) => return self.fail(e),
                }
            }
            if bytes > 0 {
                self.issues
                    .push_back(ReadIssue::AfterEnd { offset: at, bytes });
            }
        }
        self.finish_reading();
    }

    /// The input ended (not following it).
    fn end_of_input(&mut self) {
        if self.version.major >= 2 && !self.closed {
            let read = self.totals();
            self.issues.push_back(ReadIssue::NotClosed {
                offset: self.offset,
                read,
            });
        }
        self.finish_reading();
    }

    fn finish_reading(&mut self) {
        let events = self.skipped.events() + self.other_kinds;
        let records: u64 = self.skipped.records.values().sum();
        if events + records > 0 {
            self.issues.push_back(ReadIssue::UnknownKinds {
                events,
                kinds: std::mem::take(&mut self.skipped.kinds)
                    .into_iter()
                    .collect(),
                records,
            });
        }
        self.done = true;
    }

    #[allow(clippy::type_complexity)]
    fn decode(
        &mut self,
        h: &BlockHeader,
        from: usize,
        to: usize,
        seqs: SeqCheck,
    ) -> Result<(Vec<Event>, SeqCheck, Skipped), String> {
        // What the zstd frame says it holds, checked before decompressing it (decompression
        // never writes past raw_len either way).
        let payload = &self.buf[from..to];
        if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(payload)
            && size != u64::from(h.raw_len)
        {
            return Err(format!(
                "its payload holds {size} bytes, its header says {}",
                h.raw_len
            ));
        }
        self.scratch.resize(h.raw_len as usize, 0);
        let n = self
            .zstd
            .decompress_to_buffer(&self.buf[from..to], &mut self.scratch)
            .map_err(|e| format!("decompression failed: {e}"))?;
        if n != h.raw_len as usize {
            return Err(format!("decompressed {n} bytes, expected {}", h.raw_len));
        }
        // The count is checked, not trusted, before allocating for it.
        let mut decoded = Vec::with_capacity((h.events as usize).min(1 << 16));
        let mut dec = Decoder::new(
            &self.scratch[..n],
            h.first_seq,
            h.first_time,
            self.version.major,
            seqs,
        )
        .expect_events(u64::from(h.events));
        dec.decode_all(&mut decoded)?;
        let found = decoded.len() as u64 + dec.skipped.events();
        if found != u64::from(h.events) {
            return Err(format!(
                "{found} events decoded, the header says {}",
                h.events
            ));
        }
        Ok((decoded, dec.seqs, dec.skipped))
    }
}

/// When a block fails its checksum: whether its raw length field alone is wrong (the zstd
/// frame says how much it holds, and the checksum matches with that number instead).
fn raw_len_verdict(header: &[u8], payload: &[u8], crc: u32, raw_len: u32) -> Option<String> {
    let size = zstd::zstd_safe::get_frame_content_size(payload).ok()??;
    let size = u32::try_from(size).ok()?;
    if size == raw_len {
        return None;
    }
    let mut h = header.to_vec();
    h[8..12].copy_from_slice(&size.to_le_bytes());
    BlockHeader::crc_ok(&h, payload, crc).then(|| {
        format!(
            "its raw length field is damaged: it says {raw_len} bytes, the payload holds {size} (its checksum matches that length)"
        )
    })
}

impl<R: Read> LogReader<R> {
    /// The events of the next block at once (or the next issue): for consumers that take
    /// millions of events, this avoids moving each one through the iterator.
    pub fn next_batch(&mut self) -> Option<Result<Vec<Event>, ReadIssue>> {
        loop {
            if let Some(issue) = self.issues.pop_front() {
                return Some(Err(issue));
            }
            if self.events.len() > 0 {
                return Some(Ok(std::mem::take(&mut self.events).collect()));
            }
            if let Some(b) = self.block.take() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

impl<R: Read> Iterator for LogReader<R> {
    type Item = Result<Event, ReadIssue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(issue) = self.issues.pop_front() {
                return Some(Err(issue));
            }
            if let Some(ev) = self.events.next() {
                return Some(Ok(ev));
            }
            if let Some(b) = self.block.take() {
                self.events = b.into_iter();
                continue;
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}
