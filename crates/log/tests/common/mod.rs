//! What the log's integration tests share about the file format of docs/log-format.md: where
//! the header, each block and the end record of a file are, a block header's fields, and
//! blocks built by hand around a payload (with a valid checksum: a checksum guards against
//! accidents, not against a crafted file).
// Each test file uses some of these.
#![allow(dead_code)]

use std::ops::Range;

/// A version 2 block header's length: the payload follows it.
pub const BLOCK_HEADER_LEN: usize = 44;

/// Appends `v` as a LEB128 varint, as the codec writes numbers.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// The header, each frame (blocks, then the end record) of a version 2 log file, by byte range.
pub struct Layout {
    pub header: Range<usize>,
    pub blocks: Vec<Range<usize>>,
    pub end: Option<Range<usize>>,
}

/// Splits a version 2 file into its frames; panics on anything else (the tests give it files
/// a writer made).
pub fn layout(b: &[u8]) -> Layout {
    let header = 0..16 + u32_at(b, 12) as usize + 4;
    let (mut blocks, mut end) = (Vec::new(), None);
    let mut at = header.end;
    while at < b.len() {
        match &b[at..at + 4] {
            b"VBK2" => {
                let len = BLOCK_HEADER_LEN + u32_at(b, at + 4) as usize;
                blocks.push(at..at + len);
                at += len;
            }
            b"VEND" => {
                end = Some(at..at + 8 + u32_at(b, at + 4) as usize + 4);
                at = b.len();
            }
            other => panic!("no frame at byte {at}: {other:?}"),
        }
    }
    Layout {
        header,
        blocks,
        end,
    }
}

/// The fields of a version 2 block header.
pub struct BlockFields {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub events: u32,
    pub number: u64,
    pub first_seq: u64,
    pub first_time: u64,
}

/// The header fields of the block `b` starts with.
pub fn block_fields(b: &[u8]) -> BlockFields {
    BlockFields {
        compressed_len: u32_at(b, 4),
        raw_len: u32_at(b, 8),
        events: u32_at(b, 12),
        number: u64_at(b, 16),
        first_seq: u64_at(b, 24),
        first_time: u64_at(b, 32),
    }
}

/// A version 2 block around `payload` (compressed), with these header fields and a valid CRC.
pub fn block_frame(
    payload: &[u8],
    raw_len: u32,
    events: u32,
    number: u64,
    first_seq: u64,
    first_time: u64,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"VBK2");
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&raw_len.to_le_bytes());
    b.extend_from_slice(&events.to_le_bytes());
    b.extend_from_slice(&number.to_le_bytes());
    b.extend_from_slice(&first_seq.to_le_bytes());
    b.extend_from_slice(&first_time.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&b);
    h.update(payload);
    b.extend_from_slice(&h.finalize().to_le_bytes());
    b.extend_from_slice(payload);
    b
}

/// `raw` compressed at `level`, padded as the writer pads it, with a skippable zstd frame, to
/// at least `min` bytes.
pub fn compress(raw: &[u8], level: i32, min: usize) -> Vec<u8> {
    let mut c = zstd::bulk::compress(raw, level).unwrap();
    if c.len() < min {
        // Magic 0x184D2A50, the frame's length, then that many bytes.
        let body = (min - c.len()).saturating_sub(8);
        c.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        c.extend_from_slice(&(body as u32).to_le_bytes());
        c.resize(c.len() + body, 0);
    }
    c
}
