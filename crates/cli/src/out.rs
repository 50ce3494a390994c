//! Everything the CLI prints goes through here, so that output errors have one exit path and
//! none of them panics (println! and eprintln! do, on a full disk or a closed descriptor).
//!
//! - Standard output carries what was asked for. A reader that went away (`vigil show | head`:
//!   EPIPE) is a quiet success, exit 0: the reader has what it wanted. Any other error (ENOSPC
//!   on `>/dev/full`, EIO, a closed descriptor) is one message on standard error and exit 1:
//!   the output is incomplete and the user must know.
//! - Standard error carries messages. Failing to write one is ignored: it can neither panic nor
//!   change the exit code the command would have had (`vigil record ... 2>/dev/full` still
//!   exits with the traced command's status).

use crate::exit::Failure;
use std::io::{self, BufWriter, StdoutLock, Write};

/// What an error writing to standard output means for the command: a closed pipe stops it
/// quietly with success, anything else is a failure with one message.
pub fn stdout_failure(e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::quiet(0)
    } else {
        Failure::new(1, format!("cannot write to standard output: {e}"))
    }
}

/// Writes a line to standard error; an error doing so is ignored (see the module's header).
pub fn err(msg: impl std::fmt::Display) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{msg}");
    let _ = e.flush();
}

/// Writes `text` to standard output and flushes it.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut o = Stdout::new();
    o.write_all(text.as_bytes()).map_err(|e| o.failure(&e))?;
    o.finish()
}

/// A writer that remembers the first error its inner writer returned, so the cause survives
/// layers that wrap or replace it (a BufWriter, an encoder, a library's own error type).
pub struct Keeper<W: Write> {
    inner: W,
    first_error: Option<io::Error>,
}

impl<W: Write> Keeper<W> {
    pub fn new(inner: W) -> Self {
        Keeper {
            inner,
            first_error: None,
        }
    }

    fn keep<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r
            && self.first_error.is_none()
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.first_error = Some(io::Error::new(e.kind(), e.to_string()));
        }
        r
    }
}

impl<W: Write> Write for Keeper<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}

/// Standard output, buffered, for a command's results.
pub struct Stdout {
    w: BufWriter<Keeper<StdoutLock<'static>>>,
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Stdout {
    pub fn new() -> Self {
        Stdout {
            w: BufWriter::with_capacity(64 * 1024, Keeper::new(io::stdout().lock())),
        }
    }

    /// The failure an error met while writing means: the first error standard output itself
    /// returned when there was one (a library may have wrapped it), else `e`.
    pub fn failure(&self, e: &io::Error) -> Failure {
        stdout_failure(self.w.get_ref().first_error.as_ref().unwrap_or(e))
    }

    /// Whether standard output has failed (a later write would fail too).
    pub fn failed(&self) -> Option<Failure> {
        self.w.get_ref().first_error.as_ref().map(stdout_failure)
    }

    /// Flushes: Ok when everything was written.
    pub fn finish(mut self) -> Result<(), Failure> {
        match self.w.flush() {
            Ok(()) => self.failed().map_or(Ok(()), Err),
            Err(e) => Err(self.failure(&e)),
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
