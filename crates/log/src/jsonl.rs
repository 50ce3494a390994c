//! JSON lines: one event per line, in the form of vigil_event::json (docs/event-schema.md).

use crate::{LogError, LogReader, LogWriter, ReadIssue};
use std::io::{BufRead, Read, Write};

/// Writes every event as one JSON line; issues met while reading go to `on_issue`.
/// Returns the number of events written.
pub fn export<R: Read, W: Write>(
    reader: &mut LogReader<R>,
    out: W,
    on_issue: &mut dyn FnMut(&ReadIssue),
) -> Result<u64, LogError> {
    let mut out = std::io::BufWriter::new(out);
    let mut n = 0;
    for item in reader {
        match item {
            Ok(ev) => {
                let line = vigil_event::json::to_json(&ev);
                serde_json::to_writer(&mut out, &line)
                    .map_err(|e| LogError::io("output", e.into()))?;
                out.write_all(b"\n")
                    .map_err(|e| LogError::io("output", e))?;
                n += 1;
            }
            Err(issue) => on_issue(&issue),
        }
    }
    out.flush().map_err(|e| LogError::io("output", e))?;
    Ok(n)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    pub events: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("reading the input: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The longest line read: no event that long could be stored (one event may take EVENT_MAX
/// bytes; JSON escapes a byte in at most 6), and a file with no newline is not read whole.
pub const LINE_MAX: u64 = 128 * 1024 * 1024;

/// Reads JSON lines into a log. Blank lines are skipped; `seq` must strictly increase. A line
/// that is not UTF-8, not JSON, not an event, or longer than LINE_MAX stops the import with its
/// number.
pub fn import<R: BufRead, W: Write>(
    mut input: R,
    writer: &mut LogWriter<W>,
) -> Result<ImportStats, ImportError> {
    let mut stats = ImportStats::default();
    let mut last_seq: Option<(u64, u64)> = None;
    let mut buf = Vec::new();
    for line_no in 1u64.. {
        buf.clear();
        let n = (&mut input)
            .take(LINE_MAX + 1)
            .read_until(b'\n', &mut buf)
            .map_err(ImportError::Read)?;
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if n as u64 > LINE_MAX {
            return Err(ImportError::Line {
                line: line_no,
                message: format!("longer than {} MiB: not an event", LINE_MAX >> 20),
            });
        }
        let line = std::str::from_utf8(&buf).map_err(|e| ImportError::Line {
            line: line_no,
            message: format!(
                "not UTF-8 (at byte {}): JSON lines are UTF-8; a string that is not is written {{\"bytes_hex\": ...}}",
                e.valid_up_to() + 1
            ),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| ImportError::Line {
                line: line_no,
                message: format!("not JSON: {e}"),
            })?;
        let ev = vigil_event::json::from_json(&value).map_err(|e| ImportError::Line {
            line: line_no,
            message: e.to_string(),
        })?;
        if let Some((prev, prev_line)) = last_seq
            && ev.seq <= prev
        {
            return Err(ImportError::Line {
                line: line_no,
                message: format!(
                    "seq {} does not follow seq {prev} of line {prev_line}: seq must strictly increase",
                    ev.seq
                ),
            });
        }
        last_seq = Some((ev.seq, line_no));
        writer.append(&ev).map_err(|e| {
            if e.is_event_too_large() {
                // Said about the line that holds it: the user can find and fix it.
                ImportError::Line {
                    line: line_no,
                    message: e.to_string(),
                }
            } else {
                ImportError::Log(e)
            }
        })?;
        stats.events += 1;
    }
    Ok(stats)
}
