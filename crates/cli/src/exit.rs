//! Exit codes, user-facing failures, and reporting of log damage (on standard error, through
//! crate::out, so a failing standard error never changes the exit code).

use std::path::Path;
use vigil_log::{LogError, LogReader, ReadIssue};

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    an error (unreadable file, bad rule, invalid object...); the message names it
  2    invalid command line (an output that is one of the inputs, `-o -` where the log cannot
       go to standard output, included)
  3    the log was damaged (corrupt, cut, not closed, blocks lost or out of place): everything
       intact was processed, the damage was reported
  4    mvee: the variants diverged (every variant was killed; the report is on standard
       error, and a `divergence` event in the log with -o)
  126  record/watch/mvee: the command is not executable
  127  record/watch/mvee: the command was not found
  N    record/watch/mvee: otherwise the traced command's own exit status (128+S if killed by
       signal S)";

/// Damaged log: everything intact was processed and the damage reported.
pub const EXIT_DAMAGED: i32 = 3;

/// A failure to report: one line, and the exit code it means.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Stops the command with `code` and no message (the reader of standard output went away).
    pub fn quiet(code: i32) -> Self {
        Failure::new(code, "")
    }

    pub fn io(path: &Path, what: &str, e: std::io::Error) -> Self {
        Failure::new(1, format!("{what} {}: {e}", path.display()))
    }

    pub fn log(e: LogError) -> Self {
        Failure::new(1, e.to_string())
    }
}

pub fn open_log(path: &Path) -> Result<LogReader<std::fs::File>, Failure> {
    LogReader::open(path).map_err(Failure::log)
}

/// Counts and prints problems met while reading a log: damage (corrupt, torn, lost, repeated
/// or misplaced blocks, seq gaps, a log not closed) makes the exit code 3; events of kinds this
/// vigil does not know (a newer vigil's log) are a note, not damage.
pub struct Damage {
    name: String,
    pub issues: u64,
}

impl Damage {
    pub fn new(path: &Path) -> Self {
        Damage {
            name: path.display().to_string(),
            issues: 0,
        }
    }

    pub fn report(&mut self, issue: &ReadIssue) {
        if issue.is_damage() {
            self.issues += 1;
            crate::out::err(format_args!("vigil: warning: {}: {issue}", self.name));
        } else {
            crate::out::err(format_args!("vigil: note: {}: {issue}", self.name));
        }
    }

    /// `ok` when the log was intact, EXIT_DAMAGED otherwise.
    pub fn exit_code(&self, ok: i32) -> i32 {
        if self.issues > 0 { EXIT_DAMAGED } else { ok }
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}
