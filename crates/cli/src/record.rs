//! `vigil record`: trace a command tree into a log.
//!
//! The log is written under a temporary name in its directory and renamed to its own name as
//! soon as the traced command has started (its first exec): from then on it can be followed
//! (`vigil show -f`) while it is written, and it stays, readable up to where it stops, however
//! the recording ends. A recording that fails before that (the command cannot be executed,
//! tracing is not permitted) removes its temporary file and leaves an existing file of the
//! log's name as it was.

use crate::exit::{Failure, hostname};
use crate::files::{Input, NewFile};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigil_capture::{Backend, BackendError, EventSink, Outcome, Selection, SinkError, Verdict};
use vigil_capture_ptrace::{PtraceBackend, SmoMode};
use vigil_event::{Event, EventKind};
use vigil_log::{BackgroundWriter, LogError, LogMeta, LogWriter, WriterStats};

#[derive(clap::Args)]
pub struct RecordArgs {
    /// The log to write. Not `-`: the traced command writes to standard output. The log
    /// takes this name once the command has started; if it fails to start, an existing file of
    /// that name is left as it was.
    #[arg(short, long, default_value = "vigil.vlog")]
    pub output: PathBuf,
    /// Syscalls to record: names and classes (file, process, network, memory, identity, all,
    /// default), comma-separated.
    #[arg(long, default_value = "default")]
    pub syscalls: String,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub smo: SmoArgs,
    #[command(flatten)]
    pub system: crate::system::SystemArgs,
    /// The command to trace, after `--`. vigil exits when the command and every process it
    /// started have exited (daemons it left running included); Ctrl-C or SIGTERM after the
    /// command has exited stops that wait.
    #[arg(
        required_unless_present = "system",
        conflicts_with = "system",
        trailing_var_arg = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// Shared-memory monitoring options (record, watch).
#[derive(clap::Args, Clone, Debug)]
pub struct SmoArgs {
    /// How shared memory (files mapped MAP_SHARED, /dev/shm, memfd, SysV shm, shared anonymous
    /// memory) is monitored: `page` (each 4 KiB page a process loads from or stores to),
    /// `object` (the whole object), `vma` (each mapping), `minipage[:BYTES]` (every access,
    /// single-stepped: the exact bytes, in parts of BYTES, a power of two from 8 to 2048,
    /// default 64), or `off`.
    #[arg(long, default_value = "page", value_name = "MODE")]
    pub smo: String,
    /// How long a process keeps access to a part it touched before vigil takes it back, so
    /// that repeated accesses show again (`10ms`, `1s`, `500us`; a bare number is ms). Every
    /// syscall stop of the process ends the slice too.
    #[arg(long, default_value = "10ms", value_name = "DURATION")]
    pub smo_slice: String,
}

impl SmoArgs {
    /// The mode and the slice in nanoseconds, or a usage error naming the bad option.
    pub fn parse(&self) -> Result<(SmoMode, u64), Failure> {
        let mode = SmoMode::parse(&self.smo).map_err(|e| Failure::new(2, format!("--smo {e}")))?;
        let slice = parse_duration_ns(&self.smo_slice).ok_or_else(|| {
            Failure::new(
                2,
                format!(
                    "--smo-slice {}: expected a duration from 1us to 60s such as 10ms, 1s or 500us",
                    self.smo_slice
                ),
            )
        })?;
        Ok((mode, slice))
    }
}

/// `10ms`, `1s`, `500us`, `2000ns`, or a bare number of milliseconds; 1 µs to 60 s.
pub fn parse_duration_ns(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "ms"),
    };
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    let ns = v * mult;
    (ns.is_finite() && (1e3..=60e9).contains(&ns)).then_some(ns as u64)
}

/// Sends events to the log writer thread; remembers the first write error. The log file is
/// renamed into place at the first exec (see the module's note).
pub struct LogSink {
    writer: Option<BackgroundWriter>,
    pub error: Option<LogError>,
    pub unwritten: u64,
    file: NewFile,
    /// Renaming the log into place failed (reported at the end).
    publish_error: Option<Failure>,
}

impl LogSink {
    pub fn create(path: &Path, meta: &LogMeta) -> Result<LogSink, Failure> {
        let file = NewFile::create(path)?;
        let writer = LogWriter::new(file.writer()?, meta)
            .map_err(Failure::log)?
            .named(path.display().to_string());
        // At most this much is lost if vigil is killed: the writer seals a block this often.
        let bg = BackgroundWriter::spawn(writer, Duration::from_millis(100));
        Ok(LogSink {
            writer: Some(bg),
            error: None,
            unwritten: 0,
            file,
            publish_error: None,
        })
    }

    /// Where the log is being written now (its temporary name until the command starts).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Renames the log into place (once; done at the first exec).
    pub fn publish(&mut self) -> Result<(), Failure> {
        match self.publish_error.take() {
            Some(f) => Err(f),
            None => self.file.publish(),
        }
    }

    pub fn push(&mut self, ev: Event) {
        if matches!(ev.kind, EventKind::ProcessExec(_))
            && self.publish_error.is_none()
            && let Err(f) = self.file.publish()
        {
            self.publish_error = Some(f);
        }
        match (&self.writer, &self.error) {
            (Some(w), None) => {
                if let Err(e) = w.push(ev) {
                    self.error = Some(e);
                    self.unwritten += 1;
                }
            }
            _ => self.unwritten += 1,
        }
    }

    pub fn finish(&mut self) -> Result<WriterStats, LogError> {
        match (self.writer.take(), self.error.take()) {
            (_, Some(e)) => Err(e),
            (Some(w), None) => w.finish(),
            (None, None) => Ok(WriterStats::default()),
        }
    }
}

impl EventSink for LogSink {
    /// Fails from the first write error on (kept for `finish`): the capture then stops.
    fn event(&mut self, event: Event) -> Result<Verdict, SinkError> {
        self.push(event);
        match &self.error {
            Some(e) => Err(SinkError::msg(e)),
            None => Ok(Verdict::Continue),
        }
    }
}

pub fn meta_for(
    backend: &str,
    command: &[OsString],
    selection: &Selection,
    smo: Option<(SmoMode, u64)>,
) -> LogMeta {
    LogMeta {
        created_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        hostname: hostname(),
        backend: backend.into(),
        command: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        selection: selection.describe(),
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        // The backend numbers every event it hands on, and every one is logged.
        contiguous_seq: true,
        command_cut: None,
        smo: smo.map(|(m, _)| m.to_string()),
        smo_slice_ns: smo.and_then(|(m, s)| (m != SmoMode::Off).then_some(s)),
    }
}

pub fn parse_selection(spec: &str) -> Result<Selection, Failure> {
    Selection::parse(spec).map_err(|e| Failure::new(2, e.to_string()))
}

/// Builds the backend, reporting a missing or non-executable command like a shell would.
pub fn backend(command: &[OsString], selection: Selection) -> Result<PtraceBackend, Failure> {
    PtraceBackend::new(command.to_vec(), selection)
        .map_err(|e| Failure::new(e.exit_code(), e.to_string()))
}

/// The traced command's program and its arguments (those that name files): a log written over
/// one of them would destroy what the command was asked to work on.
pub fn command_inputs<'a>(backend: &'a PtraceBackend, command: &'a [OsString]) -> Vec<Input<'a>> {
    let mut inputs = vec![Input::File(backend.program())];
    inputs.extend(command.iter().skip(1).map(|a| Input::File(Path::new(a))));
    inputs
}

/// The traced programs may not destroy the log that records them.
pub fn protect_log(backend: &mut PtraceBackend, log: &Path) -> Result<(), Failure> {
    backend
        .protect(log)
        .map_err(|e| Failure::new(1, format!("{}: {e}", log.display())))
}

/// Runs any backend into `sink`; its failure to capture at all is the command's failure.
pub fn run_backend<B: Backend>(
    backend: &mut B,
    sink: &mut dyn EventSink,
) -> Result<Outcome, Failure> {
    backend
        .run(sink)
        .map_err(|e| Failure::new(e.exit_code(), e.to_string()))
}

/// How the traced command ended: vigil's exit code (the command's, as a shell gives it) and
/// its status in words, for messages. Processes it left running, which vigil stopped waiting
/// for, are reported here.
pub fn command_ended(outcome: &Outcome) -> (i32, String) {
    if outcome.detached > 0 {
        crate::out::err(format_args!(
            "vigil: stopped waiting for {} process(es) the command left running: they go on untraced, and the system calls vigil traced fail for them with ENOSYS (a seccomp filter cannot be removed)",
            outcome.detached
        ));
    }
    let code = outcome.status.map_or(0, |s| s.shell_code());
    let status = outcome
        .status
        .map_or("left no status".to_string(), |s| s.to_string());
    (code, status)
}

pub fn run(a: RecordArgs) -> Result<i32, Failure> {
    crate::files::refuse_dash_log(&a.output, "record")?;
    let selection = parse_selection(&a.syscalls)?;
    if a.system.system {
        return crate::system::record(&a.system, selection, &a.output, a.quiet);
    }
    let (smo, slice) = a.smo.parse()?;
    let mut backend = backend(&a.command, selection.clone())?;
    backend.monitor_shared_memory(smo, slice);
    crate::files::refuse_same(Some(&a.output), &command_inputs(&backend, &a.command))?;
    // No rule decides at a call's entry here: the kernel's answer at the exit suffices.
    backend.decide_at_entry(false);
    backend.report_path_changes(false);
    let mut sink = LogSink::create(
        &a.output,
        &meta_for(backend.name(), &a.command, &selection, Some((smo, slice))),
    )?;
    protect_log(&mut backend, sink.path())?;
    let outcome = run_backend(&mut backend, &mut sink);
    // A command that never started leaves no log (and an older one as it was).
    let published = match &outcome {
        Ok(_) => sink.publish(),
        Err(_) => Ok(()),
    };
    let written = sink.finish();
    let outcome = outcome?;
    let (code, status) = command_ended(&outcome);
    // The log could not take its name: say so, with what the command did.
    if let Err(f) = published {
        return Err(Failure::new(
            f.code,
            format!("{}; the command {status}", f.message),
        ));
    }
    match written {
        Ok(stats) => {
            if !a.quiet {
                crate::out::err(format_args!(
                    "vigil: {} events, {} bytes ({:.1} per event) in {}; the command {}",
                    stats.events,
                    stats.bytes,
                    stats.bytes as f64 / stats.events.max(1) as f64,
                    a.output.display(),
                    status,
                ));
            }
            Ok(code)
        }
        // The recording failed (a full disk...): say so, and what the command did.
        Err(e) => Err(Failure::new(
            1,
            format!(
                "the log is incomplete: {e} (recording stopped there: {} later events were not recorded); the command {status}",
                outcome.undelivered
            ),
        )),
    }
}
