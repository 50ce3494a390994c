//! `vigil mvee`: runs a command as N variants in lockstep (crates/mvee) and reports a
//! divergence; with `-o`, the leader's events and the monitor's decisions go to a log.

use crate::exit::Failure;
use crate::record::{LogSink, meta_for, parse_duration_ns};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use vigil_capture::{EventSink, Selection};
use vigil_event::EventKind;
use vigil_mvee::{Config, Journal, JournalError, MveeError, Outcome, Report, Stats};
use vigil_tracee::{Exit, SpawnError};

/// Exit code of a run whose variants diverged.
pub const EXIT_DIVERGENCE: i32 = 4;

#[derive(Args)]
pub struct MveeArgs {
    /// How many variants (2 to 16).
    #[arg(short = 'n', long = "variants", default_value = "2", value_name = "N")]
    pub variants: String,
    /// Write the leader's events and the monitor's decisions (divergences) to this log.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Rules to run online over the leader's events and the divergences.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// How the variants differ besides ASLR: `stack` (a different initial stack offset per
    /// variant) or `none`.
    #[arg(long, default_value = "stack", value_name = "KIND")]
    pub diversify: String,
    /// How long a rendezvous waits for a variant that does not reach its next system call
    /// before it is a divergence naming the straggler (`10s`, `500ms`).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,
    /// How long a variant waits for a signal the others already received before it is a
    /// divergence.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub signal_wait: String,
    /// Print the monitor's counts at the end (lockstep calls, leader-only calls, signals and
    /// their delay).
    #[arg(long)]
    pub stats: bool,
    /// The command to run, after `--`.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn duration(flag: &str, s: &str) -> Result<Duration, Failure> {
    parse_duration_ns(s)
        .map(Duration::from_nanos)
        .ok_or_else(|| {
            Failure::new(
                2,
                format!("{flag} {s}: expected a duration such as 10s or 500ms"),
            )
        })
}

/// The log side of a run: divergences as events (the leader's own events come with the
/// observer of capture-ptrace).
struct LogJournal {
    sink: LogSink,
    next_seq: u64,
    notes: Vec<String>,
}

impl Journal for LogJournal {
    fn divergence(&mut self, report: &Report) -> Result<Option<u64>, JournalError> {
        let seq = self.next_seq;
        let _verdict = self
            .sink
            .event(vigil_event::Event {
                seq,
                time_ns: vigil_capture::now_ns(),
                pid: report.pid as u32,
                tid: report.tid as u32,
                kind: EventKind::Divergence(report.divergence.clone()),
            })
            .map_err(|e| JournalError(e.to_string()))?;
        self.next_seq += 1;
        Ok(Some(seq))
    }
    fn note(&mut self, text: &str) {
        self.notes.push(text.to_string());
        crate::out::err(format_args!("vigil mvee: {text}"));
    }
}

struct Quiet;
impl Journal for Quiet {
    fn note(&mut self, text: &str) {
        crate::out::err(format_args!("vigil mvee: {text}"));
    }
}

pub fn run(a: MveeArgs) -> Result<i32, Failure> {
    let n: usize = a.variants.parse().map_err(|_| {
        Failure::new(
            2,
            format!(
                "-n {}: expected a number of variants from 2 to {}",
                a.variants,
                vigil_mvee::MAX_VARIANTS
            ),
        )
    })?;
    if !(2..=vigil_mvee::MAX_VARIANTS).contains(&n) {
        return Err(Failure::new(
            2,
            format!(
                "-n {n}: a run has 2 to {} variants",
                vigil_mvee::MAX_VARIANTS
            ),
        ));
    }
    let diversify_stack = match a.diversify.as_str() {
        "stack" => true,
        "none" => false,
        other => {
            return Err(Failure::new(
                2,
                format!("--diversify {other}: expected `stack` or `none`"),
            ));
        }
    };
    if a.rules.is_some() {
        return Err(Failure::new(2, "--rules: not available yet for vigil mvee"));
    }
    let mut cfg = Config::new(a.command.clone());
    cfg.variants = n;
    cfg.diversify_stack = diversify_stack;
    cfg.timeout = duration("--timeout", &a.timeout)?;
    cfg.signal_wait = duration("--signal-wait", &a.signal_wait)?;
    let mut log = match &a.output {
        Some(path) => {
            crate::files::refuse_dash_log(path, "mvee")?;
            let selection =
                Selection::parse("default").map_err(|e| Failure::new(1, e.to_string()))?;
            let meta = meta_for("mvee", &a.command, &selection, None);
            Some(LogJournal {
                sink: LogSink::create(path, &meta)?,
                next_seq: 0,
                notes: Vec::new(),
            })
        }
        None => None,
    };
    let result = match &mut log {
        Some(j) => vigil_mvee::run(&cfg, j),
        None => vigil_mvee::run(&cfg, &mut Quiet),
    };
    if let Some(j) = &mut log {
        j.sink.publish()?;
        j.sink.finish().map_err(Failure::log)?;
    }
    let (outcome, stats) = result.map_err(failure)?;
    if a.stats {
        print_stats(&stats);
    }
    match outcome {
        Outcome::Exited(Exit::Exited(c)) => Ok(c),
        Outcome::Exited(Exit::Killed { signal, .. }) => Ok(128 + signal),
        Outcome::Diverged(r) => {
            crate::out::err(format_args!("{}", r.text.trim_end()));
            if let (Some(seq), Some(path)) = (r.seq, &a.output) {
                crate::out::err(format_args!(
                    "vigil: the divergence is event {seq} of {}: `vigil backtrack {} --from event:{seq}` shows what led there",
                    path.display(),
                    path.display()
                ));
            }
            Ok(EXIT_DIVERGENCE)
        }
    }
}

fn failure(e: MveeError) -> Failure {
    match &e {
        MveeError::Spawn(SpawnError::NotFound { .. }) => Failure::new(127, e.to_string()),
        MveeError::Spawn(SpawnError::Exec { errno, .. }) if *errno == nix::errno::Errno::ENOENT => {
            Failure::new(127, e.to_string())
        }
        MveeError::Spawn(SpawnError::NotExecutable { .. } | SpawnError::Exec { .. }) => {
            Failure::new(126, e.to_string())
        }
        MveeError::Config(_) => Failure::new(2, e.to_string()),
        _ => Failure::new(1, format!("mvee: {e}")),
    }
}

fn print_stats(s: &Stats) {
    let per_call = if s.lockstep > 0 {
        s.lockstep_ns as f64 / s.lockstep as f64 / 1000.0
    } else {
        0.0
    };
    crate::out::err(format_args!(
        "vigil mvee: {} variants, {} variant sets; {} lockstep calls ({per_call:.1} us from first arrival to rendezvous, mean), {} leader-only, {} refused, {} rdtsc",
        s.variants, s.sets, s.lockstep, s.leader_only, s.refused, s.rdtsc
    ));
    let mut d = s.signal_delays_ns.clone();
    d.sort_unstable();
    let mean = if d.is_empty() {
        0.0
    } else {
        d.iter().sum::<u64>() as f64 / d.len() as f64 / 1000.0
    };
    let p99 = d
        .get(((d.len() * 99).div_ceil(100)).saturating_sub(1))
        .map_or(0.0, |&x| x as f64 / 1000.0);
    crate::out::err(format_args!(
        "vigil mvee: signals: {} delivered, delay mean {mean:.0} us, p99 {p99:.0} us; {} delivered at once",
        s.signals_synced, s.signals_immediate
    ));
}
