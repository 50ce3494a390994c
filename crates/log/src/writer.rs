//! Appending events: records accumulate in a block buffer that is sealed (compressed, CRC'd,
//! written with one write_all) when it reaches BLOCK_TARGET or on flush.

use crate::LogError;
use crate::codec::Encoder;
use crate::format::{BLOCK_HEADER_LEN, BLOCK_TARGET, BlockHeader, LogMeta, encode_header};
use std::io::Write;
use std::path::Path;
use vigil_event::{Event, EventKind};

const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events: u64,
    pub blocks: u64,
    /// Bytes in the file, header included.
    pub bytes: u64,
}

pub struct LogWriter<W: Write> {
    out: W,
    name: String,
    enc: Encoder,
    /// An entry held back in case its exit comes next (they are then stored as one record).
    held: Option<Event>,
    compressed: Vec<u8>,
    block: Vec<u8>,
    /// zstd at a low level: most of its ratio at a small fraction of its cost.
    zstd: zstd::bulk::Compressor<'static>,
    stats: WriterStats,
}

impl LogWriter<std::fs::File> {
    pub fn create(path: &Path, meta: &LogMeta) -> Result<Self, LogError> {
        let name = path.display().to_string();
        let f = std::fs::File::create(path).map_err(|e| LogError::Io {
            path: name.clone(),
            source: e,
        })?;
        let mut w = LogWriter::new(f, meta)?;
        w.name = name;
        Ok(w)
    }
}

impl<W: Write> LogWriter<W> {
    pub fn new(mut out: W, meta: &LogMeta) -> Result<Self, LogError> {
        let header = encode_header(meta);
        out.write_all(&header).map_err(|e| LogError::io("log", e))?;
        let stats = WriterStats {
            events: 0,
            blocks: 0,
            bytes: header.len() as u64,
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
        })
    }

    pub fn append(&mut self, ev: &Event) -> Result<(), LogError> {
        self.stats.events += 1;
        if let Some(entry) = self.held.take() {
            if Encoder::pairs(&entry, ev) {
                self.enc.pair(&entry, ev);
                return self.seal_if_full();
            }
            self.enc.event(&entry);
        }
        if matches!(ev.kind, EventKind::SyscallEntry(_)) {
            self.held = Some(ev.clone());
            return Ok(());
        }
        self.enc.event(ev);
        self.seal_if_full()
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
            return Ok(());
        }
        let raw = &self.enc.buf;
        self.compressed
            .resize(zstd::zstd_safe::compress_bound(raw.len()), 0);
        let n = self
            .zstd
            .compress_to_buffer(raw, &mut self.compressed)
            .map_err(|e| LogError::WriterGone(format!("compression failed: {e}")))?;
        let (first_seq, first_time) = self.enc.first.unwrap_or((0, 0));
        let header = BlockHeader {
            compressed_len: n as u32,
            raw_len: raw.len() as u32,
            events: self.enc.events,
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
        Ok(())
    }

    /// Writes everything appended so far (a partial block included) and flushes the output.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if let Some(entry) = self.held.take() {
            self.enc.event(&entry);
        }
        self.seal()?;
        self.out.flush().map_err(|e| LogError::io(&self.name, e))
    }

    pub fn finish(mut self) -> Result<WriterStats, LogError> {
        self.flush()?;
        Ok(self.stats)
    }

    /// Flushes and gives back the output (an in-memory log, in tests and tools).
    pub fn into_inner(mut self) -> Result<W, LogError> {
        self.flush()?;
        Ok(self.out)
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Whether nothing is waiting to be written.
    pub fn is_flushed(&self) -> bool {
        self.held.is_none() && self.enc.events == 0
    }
}
