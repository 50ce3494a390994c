//! `vigil mvee`: runs a command as N variants in lockstep (crates/mvee) and reports a
//! divergence; with `-o`, the leader's events and the monitor's decisions go to a log.

use crate::exit::Failure;
use crate::files::Input;
use crate::record::{LogSink, meta_for, parse_duration_ns, parse_selection};
use crate::rules_cmd::{Format, Printer, limits, load};
use clap::Args;
use std::cell::Cell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use vigil_capture::{EventSink, SinkError};
use vigil_capture_ptrace::{ObserveError, Observer};
use vigil_event::{Event, EventKind, Verdict};
use vigil_mvee::{Config, Journal, JournalError, MveeError, Outcome, Report, Stats};
use vigil_rules::{Compiled, Match};
use vigil_tracee::{Exit, SpawnError, Stopped};
use vigil_watch::RulesSink;

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
    /// Relaxed lockstep: calls that read only a variant's own state (reads and stats of
    /// files every variant opened itself, brk, madvise) run without waiting for the others and
    /// are compared as soon as all have made them; calls with an effect outside the variants
    /// still wait until every earlier call is compared. Faster where variants drift apart
    /// between calls; a divergence in such a call is reported at the next call that waits.
    #[arg(long)]
    pub relaxed: bool,
    /// Print the monitor's counts at the end (lockstep calls, leader-only calls, signals and
    /// their delay), and the rules' processing statistics with --rules.
    #[arg(long)]
    pub stats: bool,
    /// Syscalls the log records (see `vigil record --help`); every call is compared
    /// whatever this says.
    #[arg(long, default_value = "default")]
    pub syscalls: String,
    /// Output format of rule matches.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write rule matches to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub matches: Option<PathBuf>,
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

/// Hands the sink's verdicts (a rule's deny, kill or stop) to the journal, which the monitor
/// asks after each entry: the observer in front of it does not carry verdicts out.
struct Tap<'a> {
    inner: &'a mut dyn EventSink,
    verdict: Rc<Cell<Verdict>>,
}

impl EventSink for Tap<'_> {
    fn event(&mut self, event: Event) -> Result<Verdict, SinkError> {
        let v = self.inner.event(event)?;
        if v != Verdict::Continue {
            self.verdict.set(v);
        }
        Ok(v)
    }
    fn generated(&mut self) -> Vec<(u32, u32, EventKind)> {
        self.inner.generated()
    }
    fn verdicts_for_others(&mut self) -> Vec<(u32, Verdict)> {
        let others = self.inner.verdicts_for_others();
        // Every process of the run is a variant set of the one program: a kill or stop for
        // another process of it ends the run too.
        if let Some(&(_, v)) = others
            .iter()
            .find(|(_, v)| matches!(v, Verdict::Kill | Verdict::Stop))
        {
            self.verdict.set(v);
        }
        others
    }
}

/// The leader's events, with the recorder's decoding (capture-ptrace's Observer), into the
/// log and the rules.
struct Recorder<'s> {
    obs: Observer<'s>,
    verdict: Rc<Cell<Verdict>>,
}

fn j(e: ObserveError) -> JournalError {
    JournalError(e.to_string())
}

impl Journal for Recorder<'_> {
    fn wants_events(&self) -> bool {
        true
    }
    fn spawned(
        &mut self,
        t: &Stopped,
        program: &Path,
        argv: &[OsString],
    ) -> Result<(), JournalError> {
        self.obs.spawned(t, program, argv).map_err(j)
    }
    fn entry(&mut self, t: &Stopped) -> Result<(), JournalError> {
        self.obs.syscall_entry(t).map(|_| ()).map_err(j)
    }
    fn verdict(&mut self) -> Verdict {
        self.verdict.replace(Verdict::Continue)
    }
    fn exit(&mut self, t: &Stopped, ret: i64) -> Result<(), JournalError> {
        self.obs.syscall_exit(t, ret).map(|_| ()).map_err(j)
    }
    fn child(&mut self, parent: &Stopped) -> Result<(), JournalError> {
        self.obs.new_child(parent).map(|_| ()).map_err(j)
    }
    fn exec(&mut self, t: &Stopped) -> Result<(), JournalError> {
        self.obs.exec(t).map_err(j)
    }
    fn signal(&mut self, t: &Stopped) -> Result<(), JournalError> {
        self.obs.signal(t).map_err(j)
    }
    fn exited(&mut self, tid: i32, exit: Exit) -> Result<(), JournalError> {
        self.obs.exited(tid, exit).map_err(j)
    }
    fn divergence(&mut self, report: &Report) -> Result<Option<u64>, JournalError> {
        self.obs
            .emit(
                report.pid as u32,
                report.tid as u32,
                EventKind::Divergence(report.divergence.clone()),
            )
            .map(Some)
            .map_err(j)
    }
    fn note(&mut self, text: &str) {
        note(text);
    }
    fn action(
        &mut self,
        pid: i32,
        tid: i32,
        action: &str,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.obs
            .emit(
                pid as u32,
                tid as u32,
                EventKind::Action(vigil_event::Action {
                    action: action.into(),
                    by: "mvee".into(),
                    target_pid: pid as u32,
                    detail: detail.into(),
                }),
            )
            .map(|_| ())
            .map_err(j)
    }
}

/// A note of the monitor, on standard error.
fn note(text: &str) {
    crate::out::err(format_args!("vigil mvee: {text}"));
}

/// Without a log or rules: notes only.
struct Quiet;
impl Journal for Quiet {
    fn note(&mut self, text: &str) {
        note(text);
    }
}

pub fn run(a: MveeArgs) -> Result<i32, Failure> {
    let start = Instant::now();
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
    let mut cfg = Config::new(a.command.clone());
    cfg.variants = n;
    cfg.diversify_stack = diversify_stack;
    cfg.relaxed = a.relaxed;
    if a.relaxed && (a.output.is_some() || a.rules.is_some()) {
        crate::out::err(format_args!(
            "vigil mvee: --relaxed has no effect with -o or --rules: the leader's calls are recorded one by one, at their rendezvous"
        ));
    }
    cfg.timeout = duration("--timeout", &a.timeout)?;
    cfg.signal_wait = duration("--signal-wait", &a.signal_wait)?;
    let selection = parse_selection(&a.syscalls)?;
    let program = vigil_tracee::resolve_program(&a.command[0], std::env::var_os("PATH").as_deref())
        .map_err(|e| failure(MveeError::Spawn(e)))?;
    let mut inputs = vec![Input::File(&program)];
    inputs.extend(a.command.iter().skip(1).map(|x| Input::File(Path::new(x))));
    if let Some(r) = &a.rules {
        inputs.push(Input::File(r));
    }
    if let Some(p) = &a.output {
        crate::files::refuse_dash_log(p, "mvee")?;
        crate::files::refuse_same(Some(p), &inputs)?;
    }
    let rules = a.rules.as_deref().map(load).transpose()?;
    let mut log = match &a.output {
        Some(p) => Some(LogSink::create(
            p,
            &meta_for("mvee", &a.command, &selection, None),
        )?),
        None => None,
    };
    let out = crate::rules_cmd::Output {
        format: a.format,
        matches: a.matches.clone(),
        stats: a.stats,
        ..Default::default()
    };
    let mut printer = match &rules {
        Some(_) => Some(Printer::new(&out)?),
        None => None,
    };
    let verdict = Rc::new(Cell::new(Verdict::Continue));
    let mut rule_stats = None;
    let (result, observed) = {
        let mut next = log.as_mut().map(|l| l as &mut dyn EventSink);
        let mut sink = match (&rules, printer.as_mut()) {
            (Some(rs), Some(p)) => Some(RulesSink::new(
                rs.engine(limits(&out)),
                |m: &Match, c: &Compiled| p.print(m, c),
                next.take(),
            )),
            _ => None,
        };
        let inner: Option<&mut dyn EventSink> = match sink.as_mut() {
            Some(s) => Some(s),
            None => next,
        };
        let r = match inner {
            Some(inner) => {
                let mut tap = Tap {
                    inner,
                    verdict: verdict.clone(),
                };
                let mut obs = Observer::new(&mut tap, selection.clone());
                obs.decide_at_entry(rules.as_ref().is_some_and(|r| r.looks_at_entries()));
                obs.report_path_changes(false);
                let mut rec = Recorder {
                    obs,
                    verdict: verdict.clone(),
                };
                let r = vigil_mvee::run(&cfg, &mut rec);
                (r, Some(rec.obs.finish()))
            }
            None => (vigil_mvee::run(&cfg, &mut Quiet), None),
        };
        if let Some(mut s) = sink {
            s.engine.finish();
            rule_stats = Some((s.engine, s.actor));
        }
        r
    };
    if let Some(l) = &mut log {
        let ended = observed
            .as_ref()
            .and_then(|o| o.sink_error.as_ref().map(|e| e.to_string()));
        l.publish()?;
        l.finish().map_err(Failure::log)?;
        if let Some(e) = ended {
            return Err(Failure::new(1, format!("the log is incomplete: {e}")));
        }
    }
    if let Some(p) = printer {
        p.finish()?;
    }
    if let (true, Some((engine, actor))) = (a.stats, &rule_stats) {
        crate::rules_cmd::print_stats(engine, actor, start.elapsed(), None);
    }
    let (outcome, stats) = result.map_err(failure)?;
    if a.stats {
        print_stats(&stats);
    }
    match outcome {
        Outcome::Stopped { pid, action } => {
            crate::out::err(format_args!(
                "vigil mvee: a rule's {} action ended the run (process {pid}); every variant was killed",
                match action {
                    Verdict::Stop => "stop",
                    _ => "kill",
                }
            ));
            Ok(128 + libc::SIGKILL)
        }
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
    crate::out::err(format_args!(
        "vigil mvee: {} calls compared without a rendezvous (--relaxed), {} run unsynchronised (own /proc reads, disagreeing memory calls), {} generated names unified",
        s.relaxed, s.unsynchronised, s.names_unified
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
