//! vigil's event log: append-only, versioned, self-checking, streamed.
//!
//! A file header (magic, version, metadata, CRC) is followed by numbered blocks and, once the
//! writer is finished, an end record. Each block is a CRC'd, zstd-compressed run of records and
//! is self-contained: the strings and fd targets its events use are defined inside it. A torn
//! or corrupt block therefore never breaks the ones after it: the reader reports it with its
//! byte offset and resumes at the next block that verifies. Block numbers, seq numbers and the
//! end record let the reader also report what a checksum cannot see: blocks lost, repeated or
//! reordered, and a log that was never closed. The on-disk format is documented in
//! docs/log-format.md.

mod background;
mod codec;
mod format;
pub mod jsonl;
mod reader;
mod writer;

pub use background::BackgroundWriter;
pub use codec::{BLOCK_MEM_MAX, EVENT_MEM_MAX};
pub use format::{
    CommandCut, EVENT_MAX, FORMAT_MINOR, FORMAT_VERSION, HEADER_MAX, LogMeta, META_MAX, RATIO_MAX,
    Version,
};
pub use reader::{LogReader, ReadIssue, Totals};
pub use writer::{ExtensionEvent, LogWriter, WriterStats};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a vigil log (no VIGILLOG header)")]
    NotALog { path: String },
    /// A log of a newer major version: its records may mean what this vigil cannot know.
    #[error(
        "{path}: log format version {major}.{minor} is newer than this vigil reads (format versions 1 and 2): it needs a vigil that reads format version {major}"
    )]
    NewerVersion {
        path: String,
        major: u16,
        minor: u16,
    },
    #[error(
        "{path}: log format version {found} is not one vigil writes (this vigil reads format versions 1 and 2)"
    )]
    UnsupportedVersion { path: String, found: u32 },
    #[error("{path}: corrupt log header: {reason}")]
    CorruptHeader { path: String, reason: String },
    /// The metadata cannot be made to fit the header (not the command line: that is cut).
    #[error("the log header cannot be written: {0}")]
    HeaderTooLarge(String),
    #[error("the log writer stopped: {0}")]
    WriterGone(String),
    /// One event that cannot be stored within a block even with its string lists cut (a single
    /// string, or a process image's argv, too large): nothing of it was written and the log
    /// stays as it was.
    #[error(
        "event seq {seq} is too large for the log: it needs {bytes} bytes, one event may take {max}; it was not written"
    )]
    EventTooLarge { seq: u64, bytes: u64, max: u64 },
    /// One event that would cost a reader more memory than one event may (docs/log-format.md,
    /// size limits), even with its string lists cut: not written, like `EventTooLarge`.
    #[error(
        "event seq {seq} is too large for the log: reading it back would take {mem} bytes of memory, one event may take {max}; it was not written"
    )]
    EventTooLargeInMemory { seq: u64, mem: u64, max: u64 },
}

impl LogError {
    /// Whether this refuses one event (nothing of it written, the log as it was) rather than
    /// stopping the writer.
    pub fn is_event_too_large(&self) -> bool {
        matches!(
            self,
            LogError::EventTooLarge { .. } | LogError::EventTooLargeInMemory { .. }
        )
    }

    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.to_string(),
            source,
        }
    }
}
