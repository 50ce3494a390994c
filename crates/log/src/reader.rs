//! Streaming reads: block by block, never the whole file. Damage is reported as it is met and
//! reading goes on from the next block that verifies.

use crate::LogError;
use crate::codec::Decoder;
use crate::format::{BLOCK_HEADER_LEN, BLOCK_MAGIC, BlockHeader, LogMeta, read_header};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use vigil_event::Event;

/// A problem met while reading. `CorruptBlock` and `TornTail` are not fatal: the events of every
/// intact block are still delivered.
#[derive(Debug)]
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
    /// Reading failed; iteration ends.
    Io(std::io::Error),
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
            ReadIssue::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

pub struct LogReader<R: Read> {
    input: R,
    meta: LogMeta,
    /// Unconsumed bytes, starting at file offset `offset`.
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    eof: bool,
    follow: Option<Duration>,
    /// The current block's events not yet handed out one by one.
    events: std::vec::IntoIter<Event>,
    /// A decoded block not yet handed out (given whole by next_batch).
    block: Option<Vec<Event>>,
    scratch: Vec<u8>,
    zstd: zstd::bulk::Decompressor<'static>,
    done: bool,
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

enum Step {
    Block,
    Issue(ReadIssue),
    End,
}

impl<R: Read> LogReader<R> {
    pub fn new(mut input: R, name: &str) -> Result<Self, LogError> {
        let (meta, header_len) = read_header(&mut input, name)?;
        Ok(LogReader {
            input,
            meta,
            buf: Vec::with_capacity(256 * 1024),
            start: 0,
            offset: header_len,
            eof: false,
            follow: None,
            events: Vec::new().into_iter(),
            block: None,
            scratch: Vec::new(),
            zstd: zstd::bulk::Decompressor::new().map_err(|e| LogError::io(name, e))?,
            done: false,
        })
    }

    pub fn meta(&self) -> &LogMeta {
        &self.meta
    }

    /// With `Some(poll)`, reaching the end waits for more data instead of ending (for a log
    /// that is still being written); incomplete data at the end is then not an error.
    pub fn follow(mut self, poll: Option<Duration>) -> Self {
        self.follow = poll;
        self
    }

    fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Reads until `need` bytes are available or the input ends.
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
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.eof = false;
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Checks the complete block starting `at` bytes into the buffer, reading as needed.
    /// Returns its total length when it verifies.
    fn verify_at(&mut self, at: usize) -> std::io::Result<Option<usize>> {
        if !self.fill(at + BLOCK_HEADER_LEN)? {
            return Ok(None);
        }
        let s = self.start + at;
        if &self.buf[s..s + 4] != BLOCK_MAGIC {
            return Ok(None);
        }
        let mut hb = [0u8; BLOCK_HEADER_LEN];
        hb.copy_from_slice(&self.buf[s..s + BLOCK_HEADER_LEN]);
        let (h, crc) = BlockHeader::parse(&hb);
        if !h.plausible() {
            return Ok(None);
        }
        let total = BLOCK_HEADER_LEN + h.compressed_len as usize;
        if !self.fill(at + total)? {
            return Ok(None);
        }
        let s = self.start + at;
        Ok(
            BlockHeader::crc_ok(&hb, &self.buf[s + BLOCK_HEADER_LEN..s + total], crc)
                .then_some(total),
        )
    }

    /// Skips from a bad spot to the next block that verifies, consuming as it scans so a large
    /// damaged region is never held in memory. Returns the bytes skipped and whether a block
    /// was found.
    fn resync(&mut self) -> std::io::Result<(u64, bool)> {
        self.consume(1);
        let mut skipped = 1u64;
        loop {
            if !self.fill(4)? {
                let rest = self.available();
                self.consume(rest);
                return Ok((skipped + rest as u64, false));
            }
            match self.buf[self.start..]
                .windows(4)
                .position(|w| w == BLOCK_MAGIC)
            {
                Some(i) => {
                    self.consume(i);
                    skipped += i as u64;
                    if self.verify_at(0)?.is_some() {
                        return Ok((skipped, true));
                    }
                    self.consume(1);
                    skipped += 1;
                }
                None => {
                    let n = self.available() - 3;
                    self.consume(n);
                    skipped += n as u64;
                }
            }
        }
    }

    /// Decodes the next block into `self.events`, or says why not.
    fn next_block(&mut self) -> Step {
        loop {
            match self.fill(BLOCK_HEADER_LEN) {
                Ok(true) => {}
                Ok(false) => {
                    let left = self.available();
                    if left == 0 && self.follow.is_none() {
                        return Step::End;
                    }
                    if let Some(poll) = self.follow {
                        std::thread::sleep(poll);
                        continue;
                    }
                    return self.tail(left);
                }
                Err(e) => return Step::Issue(ReadIssue::Io(e)),
            }
            let at_offset = self.offset;
            match self.verify_at(0) {
                Ok(Some(total)) => {
                    let s = self.start;
                    let mut hb = [0u8; BLOCK_HEADER_LEN];
                    hb.copy_from_slice(&self.buf[s..s + BLOCK_HEADER_LEN]);
                    let (h, _) = BlockHeader::parse(&hb);
                    let result = self.decode(&h, s + BLOCK_HEADER_LEN, s + total);
                    self.consume(total);
                    return match result {
                        Ok(()) => Step::Block,
                        Err(reason) => Step::Issue(ReadIssue::CorruptBlock {
                            offset: at_offset,
                            skipped: total as u64,
                            reason,
                        }),
                    };
                }
                Ok(None) if self.eof => {
                    if let Some(poll) = self.follow {
                        // A block still being written: wait for the rest of it.
                        std::thread::sleep(poll);
                        continue;
                    }
                    // Cut short, or a corrupt length field with intact blocks after it.
                    return match self.resync() {
                        Ok((skipped, true)) => Step::Issue(ReadIssue::CorruptBlock {
                            offset: at_offset,
                            skipped,
                            reason: "damaged block header".into(),
                        }),
                        Ok((bytes, false)) => {
                            self.done = true;
                            Step::Issue(ReadIssue::TornTail {
                                offset: at_offset,
                                bytes,
                            })
                        }
                        Err(e) => Step::Issue(ReadIssue::Io(e)),
                    };
                }
                Ok(None) => {
                    let magic_ok = &self.buf[self.start..self.start + 4] == BLOCK_MAGIC;
                    let reason = if magic_ok {
                        "checksum mismatch"
                    } else {
                        "no block starts here"
                    };
                    return match self.resync() {
                        Ok((skipped, true)) => Step::Issue(ReadIssue::CorruptBlock {
                            offset: at_offset,
                            skipped,
                            reason: reason.into(),
                        }),
                        Ok((skipped, false)) => Step::Issue(ReadIssue::CorruptBlock {
                            offset: at_offset,
                            skipped,
                            reason: format!("{reason}; no intact block after it"),
                        }),
                        Err(e) => Step::Issue(ReadIssue::Io(e)),
                    };
                }
                Err(e) => return Step::Issue(ReadIssue::Io(e)),
            }
        }
    }

    fn tail(&mut self, left: usize) -> Step {
        let offset = self.offset;
        self.consume(left);
        self.done = true;
        Step::Issue(ReadIssue::TornTail {
            offset,
            bytes: left as u64,
        })
    }

    fn decode(&mut self, h: &BlockHeader, from: usize, to: usize) -> Result<(), String> {
        self.scratch.resize(h.raw_len as usize, 0);
        let n = self
            .zstd
            .decompress_to_buffer(&self.buf[from..to], &mut self.scratch)
            .map_err(|e| format!("decompression failed: {e}"))?;
        if n != h.raw_len as usize {
            return Err(format!("decompressed {n} bytes, expected {}", h.raw_len));
        }
        let mut decoded = Vec::with_capacity(h.events as usize);
        let mut dec = Decoder::new(&self.scratch[..n], h.first_seq, h.first_time);
        dec.decode_all(&mut decoded)?;
        if decoded.len() != h.events as usize {
            return Err(format!(
                "{} events decoded, the header says {}",
                decoded.len(),
                h.events
            ));
        }
        self.block = Some(decoded);
        Ok(())
    }
}

impl<R: Read> LogReader<R> {
    /// The events of the next block at once (or the next issue): for consumers that take
    /// millions of events, this avoids moving each one through the iterator.
    pub fn next_batch(&mut self) -> Option<Result<Vec<Event>, ReadIssue>> {
        loop {
            if self.events.len() > 0 {
                return Some(Ok(std::mem::take(&mut self.events).collect()));
            }
            if let Some(b) = self.block.take() {
                return Some(Ok(b));
            }
            if let Some(stop) = self.advance() {
                return stop;
            }
        }
    }

    /// Reads the next block; `Some` when that yields an issue or the end instead.
    fn advance(&mut self) -> Option<Option<Result<Vec<Event>, ReadIssue>>> {
        if self.done {
            return Some(None);
        }
        match self.next_block() {
            Step::Block => None,
            Step::Issue(issue) => {
                if matches!(issue, ReadIssue::Io(_) | ReadIssue::TornTail { .. }) {
                    self.done = true;
                }
                Some(Some(Err(issue)))
            }
            Step::End => {
                self.done = true;
                Some(None)
            }
        }
    }
}

impl<R: Read> Iterator for LogReader<R> {
    type Item = Result<Event, ReadIssue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ev) = self.events.next() {
                return Some(Ok(ev));
            }
            if let Some(b) = self.block.take() {
                self.events = b.into_iter();
                continue;
            }
            match self.advance() {
                None => {}
                Some(None) => return None,
                Some(Some(Err(issue))) => return Some(Err(issue)),
                Some(Some(Ok(_))) => {}
            }
        }
    }
}
