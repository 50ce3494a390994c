//! Constants and the file header.

use crate::LogError;
use serde::{Deserialize, Serialize};

pub const FILE_MAGIC: &[u8; 8] = b"VIGILLOG";
pub const FORMAT_VERSION: u32 = 1;
pub const BLOCK_MAGIC: &[u8; 4] = b"VBK1";
/// magic, compressed length, raw length, event count, first seq, first time, CRC.
pub const BLOCK_HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8 + 8 + 4;
/// A block is sealed once its raw records reach this size.
pub const BLOCK_TARGET: usize = 64 * 1024;
/// No valid block is larger; a length field beyond this is corruption, not a reason to allocate.
pub const BLOCK_MAX: usize = 16 * 1024 * 1024;
/// The writer seals a block before its raw records would pass this, so that both the raw and
/// the compressed payload (zstd's worst case is 15 MiB + 60 KiB) stay within BLOCK_MAX.
pub const BLOCK_RAW_LIMIT: usize = 15 * 1024 * 1024;
/// The most one event (its record and the definitions it needs) may take in a block. Larger
/// events have their string lists cut (with a marker) or are refused; never written.
/// Room for the largest argv the kernel accepts (~6 MiB of strings) several times over.
pub const EVENT_MAX: u64 = 14 * 1024 * 1024;
const HEADER_MAX: usize = 1024 * 1024;

/// Who recorded the log, how and where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMeta {
    pub created_ns: u64,
    pub hostname: String,
    /// "ptrace", "ebpf", "import", ...
    pub backend: String,
    /// The traced command line, empty if none.
    pub command: Vec<String>,
    /// The syscalls recorded.
    pub selection: String,
    pub vigil_version: String,
}

pub fn encode_header(meta: &LogMeta) -> Vec<u8> {
    let body = serde_json::to_vec(meta).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads and checks the header; returns the metadata and the header's length in bytes.
pub fn read_header(r: &mut impl std::io::Read, path: &str) -> Result<(LogMeta, u64), LogError> {
    let mut fixed = [0u8; 16];
    let n = read_full(r, &mut fixed).map_err(|e| LogError::io(path, e))?;
    if n < 8 || &fixed[..8] != FILE_MAGIC {
        return Err(LogError::NotALog { path: path.into() });
    }
    if n < 16 {
        return Err(LogError::CorruptHeader {
            path: path.into(),
            reason: "the file ends inside the header".into(),
        });
    }
    let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    if version != FORMAT_VERSION {
        return Err(LogError::UnsupportedVersion {
            path: path.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    if len > HEADER_MAX {
        return Err(LogError::CorruptHeader {
            path: path.into(),
            reason: format!("metadata length {len} is implausible"),
        });
    }
    let mut rest = vec![0u8; len + 4];
    let n = read_full(r, &mut rest).map_err(|e| LogError::io(path, e))?;
    if n < rest.len() {
        return Err(LogError::CorruptHeader {
            path: path.into(),
            reason: "the file ends inside the header".into(),
        });
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fixed);
    hasher.update(&rest[..len]);
    let want = u32::from_le_bytes([rest[len], rest[len + 1], rest[len + 2], rest[len + 3]]);
    if hasher.finalize() != want {
        return Err(LogError::CorruptHeader {
            path: path.into(),
            reason: "checksum mismatch".into(),
        });
    }
    let meta = serde_json::from_slice(&rest[..len]).map_err(|e| LogError::CorruptHeader {
        path: path.into(),
        reason: format!("metadata: {e}"),
    })?;
    Ok((meta, (16 + len + 4) as u64))
}

/// Like read_exact, but returns how much was read instead of failing at EOF.
pub fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The fixed block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub events: u32,
    pub first_seq: u64,
    pub first_time: u64,
}

impl BlockHeader {
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(BLOCK_MAGIC);
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.events.to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.first_time.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&out[start..]);
        h.update(payload);
        out.extend_from_slice(&h.finalize().to_le_bytes());
    }

    /// Parses a header (the magic already checked) without trusting it.
    pub fn parse(b: &[u8; BLOCK_HEADER_LEN]) -> (BlockHeader, u32) {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            u64::from_le_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        let h = BlockHeader {
            compressed_len: u32_at(4),
            raw_len: u32_at(8),
            events: u32_at(12),
            first_seq: u64_at(16),
            first_time: u64_at(24),
        };
        (h, u32_at(32))
    }

    pub fn plausible(&self) -> bool {
        (self.compressed_len as usize) <= BLOCK_MAX
            && (self.raw_len as usize) <= BLOCK_MAX
            && self.events as usize <= self.raw_len as usize
    }

    pub fn crc_ok(b: &[u8; BLOCK_HEADER_LEN], payload: &[u8], want: u32) -> bool {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..BLOCK_HEADER_LEN - 4]);
        h.update(payload);
        h.finalize() == want
    }
}
