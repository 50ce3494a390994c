//! Appending events: records accumulate in a block buffer that is sealed (compressed, CRC'd,
//! written with one write_all) when it reaches BLOCK_TARGET or on flush.
//!
//! The writer never produces what the reader refuses: every event is measured before it is
//! encoded, a block is sealed before an event would push it past BLOCK_RAW_LIMIT, and an event
//! larger than EVENT_MAX has its string lists cut (keeping a prefix, marked with `Value::Cut`)
//! or, when that is not enough, is refused with `LogError::EventTooLarge` and nothing written.

use crate::LogError;
use crate::codec::{
    BLOCK_MEM_MAX, Bound, EVENT_MEM_MAX, Encoder, PAIR_EXTRA, cost, measure, pair_mem, string_bound,
};
use crate::format::{
    BLOCK_HEADER_LEN, BLOCK_MAX, BLOCK_RAW_LIMIT, BLOCK_TARGET, BlockHeader, EVENT_MAX, EndRecord,
    LogMeta, RATIO_MAX, encode_header,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use vigil_event::{Args, Cut, Event, EventKind, Str, Value};

const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events: u64,
    pub blocks: u64,
    /// Bytes in the file, header included.
    pub bytes: u64,
    /// Events stored with string lists cut to fit (each marked with `Value::Cut`).
    pub cut: u64,
}

pub struct LogWriter<W: Write> {
    out: W,
    name: String,
    enc: Encoder,
    /// An entry held back in case its exit comes next (they are then stored as one record),
    /// with its size bound.
    held: Option<(Event, Bound)>,
    compressed: Vec<u8>,
    block: Vec<u8>,
    /// zstd at a low level: most of its ratio at a small fraction of its cost.
    zstd: zstd::bulk::Compressor<'static>,
    stats: WriterStats,
    /// The last event appended: its seq and time, for the end record.
    last: (u64, u64),
    /// What the block's events cost a reader in memory, bounded (see `codec::cost`).
    mem: u64,
}

/// An event of a kind the event model does not have (yet): stored as an extension record that a
/// reader which does not know `kind` skips and counts. Written by `LogWriter::append_extension`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionEvent {
    pub seq: u64,
    pub time_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// The extension kind's id (docs/log-format.md lists them).
    pub kind: u64,
    /// The kind's own encoding.
    pub body: Vec<u8>,
}

impl LogWriter<std::fs::File> {
    /// Creates (or truncates) a log file, readable by its owner only (mode 0600, also when an
    /// older file of that name was more open): it holds whole command lines and every path the
    /// traced programs touched.
    pub fn create(path: &Path, meta: &LogMeta) -> Result<Self, LogError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let name = path.display().to_string();
        let io = |e| LogError::Io {
            path: name.clone(),
            source: e,
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        if f.metadata().map_err(io)?.is_file() {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        let mut w = LogWriter::new(f, meta)?;
        w.name = name;
        Ok(w)
    }
}

impl<W: Write> LogWriter<W> {
    /// The name errors give the output (`log` by default).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn new(mut out: W, meta: &LogMeta) -> Result<Self, LogError> {
        let header = encode_header(meta)?;
        out.write_all(&header).map_err(|e| LogError::io("log", e))?;
        let stats = WriterStats {
            bytes: header.len() as u64,
            ..WriterStats::default()
        };
        let zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| LogError::WriterGone(format!("zstd: {e}")))?;
        Ok(LogWriter {
            out,
            name: "log".into(),
            enc: Encoder::default(),
            held: None,
            compressed: Vec::new(),
            block: Vec::new(),
            zstd,
            stats,
            last: (0, 0),
            mem: 0,
        })
    }

    /// Appends one event. An event too large for one block (in bytes, or in the memory a
    /// reader needs for it) has its string lists cut to fit (counted in `WriterStats::cut`);
    /// one that still does not fit is refused with `LogError::EventTooLarge` (or
    /// `EventTooLargeInMemory`), and the writer goes on as if it had not been given.
    pub fn append(&mut self, ev: &Event) -> Result<(), LogError> {
        let mut size = measure(ev);
        let fitted;
        let ev = if size.fresh() > EVENT_MAX || size.mem > EVENT_MEM_MAX {
            fitted = fit(ev, &size)?;
            size = measure(&fitted);
            self.stats.cut += 1;
            &fitted
        } else {
            ev
        };
        self.stats.events += 1;
        self.last = (ev.seq, ev.time_ns);
        if let Some((entry, entry_size)) = self.held.take() {
            if Encoder::pairs(&entry, ev) {
                // A patched pair also writes the entry's own values where they differ.
                let entry_part = if Encoder::pair_is_patched(&entry, ev) {
                    entry_size.in_block(self.enc.defined())
                } else {
                    0
                };
                let bytes = size.in_block(self.enc.defined()) + entry_part + PAIR_EXTRA;
                let mem = pair_mem(&entry, &entry_size, ev, &size);
                // Stored apart unless the pair fits a block of its own.
                if bytes <= BLOCK_RAW_LIMIT as u64 && mem <= BLOCK_MEM_MAX {
                    self.room(bytes, mem)?;
                    self.enc.pair(&entry, ev);
                    return self.seal_if_full();
                }
            }
            self.room(entry_size.in_block(self.enc.defined()), entry_size.mem)?;
            self.enc.event(&entry);
        }
        if matches!(ev.kind, EventKind::SyscallEntry(_)) {
            self.held = Some((ev.clone(), size));
            return Ok(());
        }
        self.room(size.in_block(self.enc.defined()), size.mem)?;
        self.enc.event(ev);
        self.seal_if_full()
    }

    /// Appends an event of an extension kind (see `ExtensionEvent`). Its body is bounded like
    /// any event's: one larger than EVENT_MAX is refused with `LogError::EventTooLarge`.
    pub fn append_extension(&mut self, ev: &ExtensionEvent) -> Result<(), LogError> {
        let need = ev.body.len() as u64 + 64;
        if need > EVENT_MAX {
            return Err(LogError::EventTooLarge {
                seq: ev.seq,
                bytes: need,
                max: EVENT_MAX,
            });
        }
        self.stats.events += 1;
        self.last = (ev.seq, ev.time_ns);
        if let Some((entry, size)) = self.held.take() {
            self.room(size.in_block(self.enc.defined()), size.mem)?;
            self.enc.event(&entry);
        }
        // A reader counts the events of a kind it does not know by kind.
        self.room(need, cost::KIND)?;
        self.enc
            .extension(ev.seq, ev.time_ns, (ev.pid, ev.tid), ev.kind, &ev.body);
        self.seal_if_full()
    }

    /// Seals the block first if `need` more bytes could take it past BLOCK_RAW_LIMIT, or `mem`
    /// more of a reader's memory past BLOCK_MEM_MAX; then counts `mem` in. An event alone takes
    /// at most EVENT_MAX (+ PAIR_EXTRA) and EVENT_MEM_MAX, which a fresh block always has room
    /// for.
    fn room(&mut self, need: u64, mem: u64) -> Result<(), LogError> {
        if (self.enc.buf.len() as u64).saturating_add(need) > BLOCK_RAW_LIMIT as u64
            || self.mem.saturating_add(mem) > BLOCK_MEM_MAX
        {
            self.seal()?;
        }
        self.mem = self.mem.saturating_add(mem);
        Ok(())
    }

    fn seal_if_full(&mut self) -> Result<(), LogError> {
        if self.enc.buf.len() >= BLOCK_TARGET {
            self.seal()
        } else {
            Ok(())
        }
    }

    /// Compresses the block's records and writes the block in one write.
    fn seal(&mut self) -> Result<(), LogError> {
        if self.enc.events == 0 {
            self.mem = 0;
            return Ok(());
        }
        let raw = &self.enc.buf;
        self.compressed
            .resize(zstd::zstd_safe::compress_bound(raw.len()), 0);
        let n = self
            .zstd
            .compress_to_buffer(raw, &mut self.compressed)
            .map_err(|e| LogError::WriterGone(format!("compression failed: {e}")))?;
        // A reader refuses a payload that decompresses more than RATIO_MAX times its size (a
        // crafted block would make it work for nothing): pad one that compressed that well
        // with a skippable zstd frame, which decompression ignores.
        let n = pad_to_ratio(&mut self.compressed, n, raw.len());
        if raw.len() > BLOCK_MAX || n > BLOCK_MAX {
            // Cannot happen (events are measured before they are encoded); refuse rather than
            // write a block every reader would reject.
            return Err(LogError::WriterGone(format!(
                "a block of {} bytes ({n} compressed) is beyond the format's limit",
                raw.len()
            )));
        }
        let (first_seq, first_time) = self.enc.first.unwrap_or((0, 0));
        let header = BlockHeader {
            compressed_len: n as u32,
            raw_len: raw.len() as u32,
            events: self.enc.events,
            number: Some(self.stats.blocks),
            first_seq,
            first_time,
        };
        self.block.clear();
        header.encode(&self.compressed[..n], &mut self.block);
        self.block.extend_from_slice(&self.compressed[..n]);
        debug_assert_eq!(self.block.len(), BLOCK_HEADER_LEN + n);
        self.out
            .write_all(&self.block)
            .map_err(|e| LogError::io(&self.name, e))?;
        self.stats.blocks += 1;
        self.stats.bytes += self.block.len() as u64;
        self.enc.reset();
        self.mem = 0;
        Ok(())
    }

    /// Writes everything appended so far (a partial block included) and flushes the output.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if let Some((entry, size)) = self.held.take() {
            self.room(size.in_block(self.enc.defined()), size.mem)?;
            self.enc.event(&entry);
        }
        self.seal()?;
        self.out.flush().map_err(|e| LogError::io(&self.name, e))
    }

    /// Writes everything appended and closes the log with its end record (the counts a reader
    /// checks what it read against). A log whose writer was never finished (vigil killed, the
    /// disk full) has no end record, and readers say so.
    pub fn finish(mut self) -> Result<WriterStats, LogError> {
        self.close()?;
        Ok(self.stats)
    }

    /// Closes the log like `finish` and gives back the output (an in-memory log, in tests and
    /// tools).
    pub fn into_inner(mut self) -> Result<W, LogError> {
        self.close()?;
        Ok(self.out)
    }

    fn close(&mut self) -> Result<(), LogError> {
        self.flush()?;
        let (last_seq, last_time) = self.last;
        let end = EndRecord {
            blocks: self.stats.blocks,
            events: self.stats.events,
            last_seq,
            last_time,
        };
        self.block.clear();
        end.encode(&mut self.block);
        self.out
            .write_all(&self.block)
            .map_err(|e| LogError::io(&self.name, e))?;
        self.stats.bytes += self.block.len() as u64;
        self.out.flush().map_err(|e| LogError::io(&self.name, e))
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Whether nothing is waiting to be written.
    pub fn is_flushed(&self) -> bool {
        self.held.is_none() && self.enc.events == 0
    }
}

/// `ev` with its string lists cut so that it fits in EVENT_MAX and EVENT_MEM_MAX: the largest
/// lists first, each keeping a prefix, with a `Cut` marker counting exactly what was dropped
/// (added to what an earlier cut already counted). Only syscall arguments can carry a marker:
/// any other event, or one whose size is not in its lists (a single huge string), is
/// `EventTooLarge` (or `EventTooLargeInMemory`).
fn fit(ev: &Event, size: &Bound) -> Result<Event, LogError> {
    let too_large = |size: &Bound| {
        if size.fresh() > EVENT_MAX {
            LogError::EventTooLarge {
                seq: ev.seq,
                bytes: size.fresh(),
                max: EVENT_MAX,
            }
        } else {
            LogError::EventTooLargeInMemory {
                seq: ev.seq,
                mem: size.mem,
                max: EVENT_MEM_MAX,
            }
        }
    };
    fn args(kind: &mut EventKind) -> Option<&mut Args> {
        match kind {
            EventKind::SyscallEntry(e) => Some(&mut e.args),
            EventKind::SyscallExit(x) => Some(&mut x.args),
            _ => None,
        }
    }
    let mut out = ev.clone();
    let Some(list) = args(&mut out.kind) else {
        return Err(too_large(size));
    };
    // Bytes first, then what is still over in memory (an item weighs more there).
    let over = size.fresh().saturating_sub(EVENT_MAX);
    if over > 0 {
        cut_lists(list, over, string_bound, CUT_MARKER);
    }
    let mut cut = measure(&out);
    if cut.mem > EVENT_MEM_MAX
        && let Some(list) = args(&mut out.kind)
    {
        cut_lists(
            list,
            cut.mem - EVENT_MEM_MAX,
            item_mem,
            cost::WRAPPER + 2 * cost::VALUE,
        );
        cut = measure(&out);
    }
    if cut.fresh() > EVENT_MAX || cut.mem > EVENT_MEM_MAX {
        return Err(too_large(size));
    }
    Ok(out)
}

/// Pads a compressed payload of `n` bytes (in `buf`) for a raw payload of `raw` bytes with a
/// skippable zstd frame so that it is at least `raw / RATIO_MAX` bytes; returns its length.
fn pad_to_ratio(buf: &mut Vec<u8>, n: usize, raw: usize) -> usize {
    let want = raw.div_ceil(RATIO_MAX);
    if n >= want {
        return n;
    }
    // Magic 0x184D2A50, the frame's length, then that many bytes (zeros).
    let body = (want - n).saturating_sub(8);
    buf.truncate(n);
    buf.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    buf.extend_from_slice(&(body as u32).to_le_bytes());
    buf.resize(n + 8 + body, 0);
    buf.len()
}

/// A list value and what an earlier cut of it already dropped (items, bytes, exact).
fn list_of(v: &Value) -> Option<(&Arc<[vigil_event::Str]>, u64, u64, bool)> {
    match v {
        Value::List(l) => Some((l, 0, 0, true)),
        Value::Cut(c) => match &c.kept {
            Value::List(l) => Some((l, c.items, c.bytes, c.exact)),
            _ => None,
        },
        _ => None,
    }
}

/// The bytes a cut marker adds: tag, exactness, item and byte counts.
const CUT_MARKER: u64 = 1 + 1 + 10 + 10;

/// What dropping a list item saves of an event's memory bound (`Bound::mem`): its reference
/// and its string.
fn item_mem(s: &Str) -> u64 {
    cost::REF + cost::HEAP + s.len() as u64
}

/// Drops items from the end of the largest lists until `over` is saved, `item` saying what
/// each item weighs and `marker` what a cut marker adds.
fn cut_lists(args: &mut Args, mut over: u64, item: fn(&Str) -> u64, marker: u64) {
    let mut lists: Vec<(usize, u64)> = args
        .iter()
        .enumerate()
        .filter_map(|(i, v)| list_of(v).map(|(l, ..)| (i, l.iter().map(item).sum())))
        .collect();
    lists.sort_by_key(|l| std::cmp::Reverse(l.1));
    for (i, _) in lists {
        if over == 0 {
            break;
        }
        let Some((list, items, bytes, exact)) = list_of(&args[i]) else {
            continue;
        };
        over += marker;
        let (mut keep, mut saved, mut dropped) = (list.len(), 0u64, 0u64);
        while keep > 0 && saved < over {
            keep -= 1;
            saved += item(&list[keep]);
            dropped += list[keep].len() as u64;
        }
        let cut = Value::Cut(Arc::new(Cut {
            kept: Value::List(list[..keep].into()),
            items: items.saturating_add((list.len() - keep) as u64),
            bytes: bytes.saturating_add(dropped),
            exact,
        }));
        args[i] = cut;
        over = over.saturating_sub(saved);
    }
}
