//! Constants, the file header, the block header and the end record (docs/log-format.md).
//!
//! Version 2 numbers its blocks and ends a closed log with an end record, so a reader can tell a
//! log that lost, repeated or reordered blocks, or was never closed, from an intact one.
//! Version 1 logs (no block numbers, no end record) are still read.

use crate::LogError;
use serde::{Deserialize, Serialize};

pub const FILE_MAGIC: &[u8; 8] = b"VIGILLOG";
/// The major format version this vigil writes. A reader reads every major version it knows
/// (1 and 2) whatever the minor version; a newer major version is refused.
pub const FORMAT_VERSION: u32 = 2;
/// The minor version written: additions a reader of the same major version can skip (records
/// of extension kinds, fields after the known ones of the end record). 2.1 writes the extension
/// kinds of docs/log-format.md (shared-memory accesses, address spaces, divergences, syscall
/// events holding byte buffers or address ranges); 2.2 adds signals with their fault (extension
/// kind 6) and the fields of a shared-memory access that say through which mapping it was made.
pub const FORMAT_MINOR: u16 = 2;
/// The oldest major version this vigil reads.
pub const OLDEST_VERSION: u16 = 1;

pub const BLOCK_MAGIC: &[u8; 4] = b"VBK2";
pub const BLOCK_MAGIC_V1: &[u8; 4] = b"VBK1";
pub const END_MAGIC: &[u8; 4] = b"VEND";
/// magic, compressed length, raw length, event count, block number, first seq, first time, CRC.
pub const BLOCK_HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8 + 4;
/// Version 1: no block number.
pub const BLOCK_HEADER_LEN_V1: usize = 4 + 4 + 4 + 4 + 8 + 8 + 4;
/// The end record's body as this version writes it: blocks, events, last seq, last time.
pub const END_BODY_LEN: usize = 4 * 8;
/// A longer body (a later minor version's additions) is read up to this; beyond, it is damage.
pub const END_BODY_MAX: usize = 64 * 1024;
/// A block is sealed once its raw records reach this size.
pub const BLOCK_TARGET: usize = 64 * 1024;
/// No valid block is larger; a length field beyond this is corruption, not a reason to allocate.
pub const BLOCK_MAX: usize = 16 * 1024 * 1024;
/// The writer seals a block before its raw records would pass this, so that both the raw and
/// the compressed payload (zstd's worst case is 15 MiB + 60 KiB) stay within BLOCK_MAX.
pub const BLOCK_RAW_LIMIT: usize = 15 * 1024 * 1024;
/// A block's raw payload is at most this many times its compressed payload: a reader refuses
/// the rest unread (decompressing them would cost it far more than the file holds), and the
/// writer pads a payload that compressed better than that with a skippable zstd frame.
pub const RATIO_MAX: usize = 64;
/// Every event record takes at least this many bytes of a raw payload (tag, time delta, one
/// byte of fields); a pair record, 7 bytes for two events.
pub const EVENT_MIN_BYTES: usize = 3;
/// The most one event (its record and the definitions it needs) may take in a block. Larger
/// events have their string lists cut (with a marker) or are refused; never written.
/// Room for the largest argv the kernel accepts (~6 MiB of strings) several times over.
pub const EVENT_MAX: u64 = 14 * 1024 * 1024;
/// A reader refuses metadata longer than this: a length beyond it is damage, not a reason to
/// allocate.
pub const HEADER_MAX: usize = 1024 * 1024;
/// The writer keeps the metadata within this, well inside HEADER_MAX: a command line that would
/// take it further is cut (`LogMeta::command_cut` says what was left out). The whole command
/// line is in the log anyway, in the events of the process that ran it.
pub const META_MAX: usize = 64 * 1024;

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
    /// Whether the writer numbers every event, with no gap (a recording: 1, 2, 3...): the
    /// reader then reports a gap in seq as events missing. False for imports, whose seqs only
    /// increase, and for version 1 logs, which do not say.
    #[serde(default)]
    pub contiguous_seq: bool,
    /// What `command` leaves out to keep the header within META_MAX: `None` when it is whole.
    /// Written only when something was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_cut: Option<CommandCut>,
    /// How shared-memory objects were monitored (`record --smo`): `off`, `object`, `vma`,
    /// `page` or `minipage:BYTES`. `None` for logs that do not say (older ones, imports):
    /// no shared-memory access was recorded in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smo: Option<String>,
    /// The monitoring slice (`record --smo-slice`) in nanoseconds: an access episode (the
    /// pages granted at a fault) lasts at most this long, or until the process's next syscall
    /// stop, whichever comes first. `None` when `smo` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smo_slice_ns: Option<u64>,
}

/// The part of a command line the header does not hold: the arguments after those kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCut {
    /// Arguments left out entirely.
    pub items: u64,
    /// Bytes left out: those of the arguments left out, and the end of the last one kept
    /// when only its beginning fitted.
    pub bytes: u64,
}

impl LogMeta {
    /// The command line as one string, with a marker of what the header left out.
    pub fn command_line(&self) -> String {
        let mut s = self.command.join(" ");
        if let Some(c) = self.command_cut {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&format!(
                "[... {} more arguments, {} bytes not kept in the log header]",
                c.items, c.bytes
            ));
        }
        s
    }

    /// This metadata with its command line cut, if needed, so that it encodes within `max`
    /// bytes: whole arguments are kept from the start while they fit (the first one, the
    /// program, at least in part), and `command_cut` counts what was left out.
    fn fitted(&self, max: usize) -> Result<LogMeta, LogError> {
        let json_len = |m: &LogMeta| serde_json::to_vec(m).map(|v| v.len());
        let too_large = |e: String| LogError::HeaderTooLarge(e);
        if json_len(self).map_err(|e| too_large(e.to_string()))? <= max {
            return Ok(self.clone());
        }
        // Room for the arguments: what the rest takes with the largest marker possible.
        let mut out = LogMeta {
            command: Vec::new(),
            command_cut: Some(CommandCut {
                items: u64::MAX,
                bytes: u64::MAX,
            }),
            ..self.clone()
        };
        let fixed = json_len(&out).map_err(|e| too_large(e.to_string()))?;
        let Some(mut room) = max.checked_sub(fixed) else {
            return Err(too_large(format!(
                "{fixed} bytes of metadata besides the command line (at most {max})"
            )));
        };
        let mut cut = CommandCut::default();
        for (i, arg) in self.command.iter().enumerate() {
            // Its JSON string, quotes and escapes included, and a comma.
            let need = serde_json::to_string(arg).map_or(usize::MAX, |j| j.len()) + 1;
            if cut.items == 0 && need <= room {
                room -= need;
                out.command.push(arg.clone());
                continue;
            }
            if i == 0 {
                // The program's name alone is too long: keep its beginning. A char takes at
                // most 6 bytes in JSON (\u00XX); two quotes and a comma.
                let mut end = (room.saturating_sub(3) / 6).min(arg.len());
                while !arg.is_char_boundary(end) {
                    end -= 1;
                }
                out.command.push(arg[..end].to_string());
                cut.bytes += (arg.len() - end) as u64;
                room = 0;
                continue;
            }
            cut.items += 1;
            cut.bytes += arg.len() as u64;
        }
        out.command_cut = Some(cut);
        Ok(out)
    }
}

/// A format version: major (what a reader must know) and minor (additions it may skip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The file header for `meta`, its command line cut to keep the metadata within META_MAX (so
/// every reader, whose limit is HEADER_MAX, can read it).
pub fn encode_header(meta: &LogMeta) -> Result<Vec<u8>, LogError> {
    let meta = meta.fitted(META_MAX)?;
    let body = serde_json::to_vec(&meta).map_err(|e| LogError::HeaderTooLarge(e.to_string()))?;
    if body.len() > META_MAX {
        return Err(LogError::HeaderTooLarge(format!(
            "{} bytes of metadata (at most {META_MAX})",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&(FORMAT_VERSION as u16).to_le_bytes());
    out.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads and checks the header; returns the metadata, the header's length in bytes and the
/// format version.
pub fn read_header(
    r: &mut impl std::io::Read,
    path: &str,
) -> Result<(LogMeta, u64, Version), LogError> {
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
    let version = Version {
        major: u16::from_le_bytes([fixed[8], fixed[9]]),
        minor: u16::from_le_bytes([fixed[10], fixed[11]]),
    };
    if version.major > FORMAT_VERSION as u16 {
        return Err(LogError::NewerVersion {
            path: path.into(),
            major: version.major,
            minor: version.minor,
        });
    }
    // Version 1 had no minor versions: its field was the whole 32-bit number 1.
    if version.major < OLDEST_VERSION || (version.major == 1 && version.minor != 0) {
        return Err(LogError::UnsupportedVersion {
            path: path.into(),
            found: u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
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
    Ok((meta, (16 + len + 4) as u64, version))
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

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32_at(b, i)) | u64::from(u32_at(b, i + 4)) << 32
}

/// The fixed block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub events: u32,
    /// The block's place in the log: 0, 1, 2... (version 2); `None` in version 1.
    pub number: Option<u64>,
    pub first_seq: u64,
    pub first_time: u64,
}

impl BlockHeader {
    /// The header's length in a log of this major version.
    pub fn len(major: u16) -> usize {
        if major == 1 {
            BLOCK_HEADER_LEN_V1
        } else {
            BLOCK_HEADER_LEN
        }
    }

    /// Writes a version 2 header.
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(BLOCK_MAGIC);
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.events.to_le_bytes());
        out.extend_from_slice(&self.number.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.first_time.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&out[start..]);
        h.update(payload);
        out.extend_from_slice(&h.finalize().to_le_bytes());
    }

    /// Parses a header of `BlockHeader::len(major)` bytes (the magic already checked) without
    /// trusting it; returns it and the CRC it claims.
    pub fn parse(major: u16, b: &[u8]) -> (BlockHeader, u32) {
        let (number, rest) = if major == 1 {
            (None, 16)
        } else {
            (Some(u64_at(b, 16)), 24)
        };
        let h = BlockHeader {
            compressed_len: u32_at(b, 4),
            raw_len: u32_at(b, 8),
            events: u32_at(b, 12),
            number,
            first_seq: u64_at(b, rest),
            first_time: u64_at(b, rest + 8),
        };
        (h, u32_at(b, rest + 16))
    }

    /// Checks the header's fields against each other and the format's limits, before anything
    /// is read or allocated for it; says which one is wrong.
    pub fn check(&self) -> Result<(), String> {
        let (compressed, raw, events) = (
            self.compressed_len as usize,
            self.raw_len as usize,
            self.events as usize,
        );
        let mib = BLOCK_MAX >> 20;
        if compressed > BLOCK_MAX {
            return Err(format!(
                "compressed length {compressed} is over the {mib} MiB limit"
            ));
        }
        if raw > BLOCK_MAX {
            return Err(format!("raw length {raw} is over the {mib} MiB limit"));
        }
        if compressed == 0 || raw == 0 || events == 0 {
            return Err(format!(
                "it claims {compressed} bytes compressed, {raw} bytes raw and {events} events: a block holds at least one event"
            ));
        }
        if events > raw / EVENT_MIN_BYTES {
            return Err(format!(
                "it claims {events} events in {raw} bytes: an event takes at least {EVENT_MIN_BYTES}"
            ));
        }
        if self.number == Some(u64::MAX) {
            return Err(format!(
                "it is numbered {}: no log holds that many blocks (the next one would have no number)",
                u64::MAX
            ));
        }
        if raw > compressed.saturating_mul(RATIO_MAX) {
            return Err(format!(
                "it claims {raw} bytes from {compressed} compressed, over {RATIO_MAX} times as many: no block vigil writes decompresses that much"
            ));
        }
        Ok(())
    }

    /// Whether the header (`b`, its CRC last) and the payload match the CRC.
    pub fn crc_ok(b: &[u8], payload: &[u8], want: u32) -> bool {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..b.len() - 4]);
        h.update(payload);
        h.finalize() == want
    }
}

/// What a closed log says about itself: written by `LogWriter::finish` after the last block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndRecord {
    /// Blocks written (the next block number).
    pub blocks: u64,
    /// Events written.
    pub events: u64,
    /// The last event's seq and time (0 when there were none).
    pub last_seq: u64,
    pub last_time: u64,
}

impl EndRecord {
    /// magic, body length, body, CRC of all before it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(END_MAGIC);
        out.extend_from_slice(&(END_BODY_LEN as u32).to_le_bytes());
        for v in [self.blocks, self.events, self.last_seq, self.last_time] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// The body's length, from the 8 bytes of magic and length; `None` when implausible.
    pub fn body_len(b: &[u8]) -> Option<usize> {
        let n = u32_at(b, 4) as usize;
        (END_BODY_LEN..=END_BODY_MAX).contains(&n).then_some(n)
    }

    /// Parses a whole end record (magic, length, body, CRC): `None` unless its CRC matches.
    /// Fields after the ones this version knows are skipped.
    pub fn parse(b: &[u8]) -> Option<EndRecord> {
        let n = b.len().checked_sub(4)?;
        if n < 8 + END_BODY_LEN || crc32fast::hash(&b[..n]) != u32_at(b, n) {
            return None;
        }
        Some(EndRecord {
            blocks: u64_at(b, 8),
            events: u64_at(b, 16),
            last_seq: u64_at(b, 24),
            last_time: u64_at(b, 32),
        })
    }
}
