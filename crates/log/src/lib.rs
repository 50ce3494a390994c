//! vigil's event log: append-only, versioned, self-checking, streamed.
//!
//! A file header (magic, version, metadata, CRC) is followed by blocks. Each block is a CRC'd,
//! lz4-compressed run of records and is self-contained: the strings and fd targets its events
//! use are defined inside it. A torn or corrupt block therefore never breaks the ones after it:
//! the reader reports it with its byte offset and resumes at the next block that verifies.
//! The on-disk format is documented in docs/log-format.md.

mod background;
mod codec;
mod format;
pub mod jsonl;
mod reader;
mod writer;

pub use background::BackgroundWriter;
pub use format::{EVENT_MAX, FORMAT_VERSION, LogMeta};
pub use reader::{LogReader, ReadIssue};
pub use writer::{LogWriter, WriterStats};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a vigil log (no VIGILLOG header)")]
    NotALog { path: String },
    #[error(
        "{path}: log format version {found} is not supported (this vigil reads version {supported})"
    )]
    UnsupportedVersion {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("{path}: corrupt log header: {reason}")]
    CorruptHeader { path: String, reason: String },
    #[error("the log writer stopped: {0}")]
    WriterGone(String),
    /// One event that cannot be stored within a block even with its string lists cut (a single
    /// string, or a process image's argv, too large): nothing of it was written and the log
    /// stays as it was.
    #[error(
        "event seq {seq} is too large for the log: it needs {bytes} bytes, one event may take {max}; it was not written"
    )]
    EventTooLarge { seq: u64, bytes: u64, max: u64 },
}

impl LogError {
    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.to_string(),
            source,
        }
    }
}
