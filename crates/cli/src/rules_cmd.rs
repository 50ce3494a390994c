//! `vigil rules check|dot`, `vigil match` (rules over a log) and `vigil watch` (rules online
//! while tracing). Both run the same engine on the same events, so they find the same matches.

use crate::exit::{Damage, Failure, open_log};
use crate::files::{Input, NewFile};
use crate::record::{LogSink, backend, command_inputs, meta_for, parse_selection, run_backend};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigil_capture::{Backend, EventSink};
use vigil_rules::action::{Actor, match_json, match_text};
use vigil_rules::{Compiled, Engine, Limits, Match, RuleSet};
use vigil_watch::RulesSink;

#[derive(clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// Check a rule file: every error with its line, column and a caret under it.
    Check { file: PathBuf },
    /// Draw a rule's automaton in Graphviz DOT.
    Dot {
        file: PathBuf,
        /// The rule to draw (the first one by default).
        #[arg(long)]
        rule: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Output {
    /// Output format of matches.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write matches to this file instead of standard output (`-`: standard output). The file
    /// is written under a temporary name and renamed into place at the end.
    #[arg(long, value_name = "FILE")]
    pub matches: Option<PathBuf>,
    /// Print processing statistics (to standard error) at the end.
    #[arg(long)]
    pub stats: bool,
    /// Most partial matches kept per rule and join key (older ones are evicted and counted).
    #[arg(long, default_value_t = Limits::default().max_runs_per_key)]
    pub max_runs_per_key: usize,
    /// Most partial matches (and events held in counting windows) kept per rule.
    #[arg(long, default_value_t = Limits::default().max_runs_per_rule)]
    pub max_runs_per_rule: usize,
    /// Most join keys with state kept per rule (the oldest key is evicted and counted).
    #[arg(long, default_value_t = Limits::default().max_keys_per_rule)]
    pub max_keys_per_rule: usize,
}

impl Output {
    /// The --matches file; `None` for standard output.
    pub(crate) fn matches_file(&self) -> Option<&Path> {
        crate::files::output_arg(self.matches.as_deref())
    }
}

impl Default for Output {
    /// As on the command line with no options.
    fn default() -> Self {
        let l = Limits::default();
        Output {
            format: Format::Text,
            matches: None,
            stats: false,
            max_runs_per_key: l.max_runs_per_key,
            max_runs_per_rule: l.max_runs_per_rule,
            max_keys_per_rule: l.max_keys_per_rule,
        }
    }
}

#[derive(clap::Args)]
pub struct MatchArgs {
    /// The rule file.
    #[arg(long)]
    pub rules: PathBuf,
    /// The log to read.
    pub log: PathBuf,
    #[command(flatten)]
    pub out: Output,
    /// Do not run exec actions (kill, stop and deny only apply while watching).
    #[arg(long)]
    pub no_actions: bool,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The rule file.
    #[arg(long)]
    pub rules: PathBuf,
    /// Also record everything into this log (actions taken included). Not `-`: the traced
    /// command writes to standard output. The log takes this name once the command has
    /// started; if it fails to start, an existing file of that name is left as it was.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Syscalls to trace (see `vigil record --help`).
    #[arg(long, default_value = "default")]
    pub syscalls: String,
    #[command(flatten)]
    pub smo: crate::record::SmoArgs,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub system: crate::system::SystemArgs,
    /// The command to trace, after `--`.
    #[arg(
        required_unless_present = "system",
        conflicts_with = "system",
        trailing_var_arg = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

pub fn load(path: &Path) -> Result<RuleSet, Failure> {
    let src = std::fs::read_to_string(path).map_err(|e| Failure::io(path, "cannot read", e))?;
    RuleSet::parse(&src, &path.display().to_string()).map_err(|d| {
        // The diagnostics are the message: several lines, each error with its place.
        let text = d.render(std::io::stderr().is_terminal());
        Failure::new(1, text.trim_end().to_string())
    })
}

pub fn rules(a: RulesArgs) -> Result<i32, Failure> {
    match a.command {
        RulesCommand::Check { file } => {
            let rs = load(&file)?;
            let names: Vec<&str> = rs.rules().iter().map(|r| r.name.as_str()).collect();
            crate::out::print(&format!(
                "{}: {} rule{} OK: {}\n",
                file.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ))?;
            Ok(0)
        }
        RulesCommand::Dot { file, rule } => {
            let rs = load(&file)?;
            let r = match &rule {
                Some(name) => rs.rules().iter().find(|r| &r.name == name).ok_or_else(|| {
                    let hint =
                        vigil_event::suggest(name, rs.rules().iter().map(|r| r.name.as_str()));
                    Failure::new(
                        1,
                        format!("{}: no rule named `{name}`{hint}", file.display()),
                    )
                })?,
                None => &rs.rules()[0],
            };
            crate::out::print(&vigil_rules::dot::render(r))?;
            Ok(0)
        }
    }
}

/// Where matches are written, as text or JSON lines. A write error is kept (the first one)
/// and ends the printing, not the run: `watch` still traces its command to the end.
pub(crate) struct Printer {
    out: Box<dyn Write>,
    /// The --matches file, renamed into place by `finish`, or None for standard output
    /// (line by line, for `watch`).
    file: Option<NewFile>,
    format: Format,
    error: Option<std::io::Error>,
}

impl Printer {
    pub(crate) fn new(o: &Output) -> Result<Printer, Failure> {
        let file = o.matches_file().map(NewFile::create).transpose()?;
        let out: Box<dyn Write> = match &file {
            Some(f) => Box::new(std::io::BufWriter::new(f.writer()?)),
            None => Box::new(std::io::LineWriter::new(std::io::stdout())),
        };
        Ok(Printer {
            out,
            file,
            format: o.format,
            error: None,
        })
    }

    pub(crate) fn print(&mut self, m: &Match, c: &Compiled) {
        if self.error.is_some() {
            return;
        }
        let line = match self.format {
            Format::Text => match_text(c, m),
            Format::Json => match_json(c, m).to_string(),
        };
        if let Err(e) = writeln!(self.out, "{line}") {
            self.error = Some(e);
        }
    }

    pub(crate) fn finish(mut self) -> Result<(), Failure> {
        if self.error.is_none()
            && let Err(e) = self.out.flush()
        {
            self.error = Some(e);
        }
        match (self.error, self.file) {
            (None, file) => file.map(NewFile::commit).transpose().map(|_| ()),
            (Some(e), None) => Err(crate::out::stdout_failure(&e)),
            (Some(e), Some(f)) => Err(Failure::io(f.dest(), "cannot write matches to", e)),
        }
    }
}

pub(crate) fn print_stats(
    engine: &Engine,
    actor: &Actor,
    total: Duration,
    engine_time: Option<Duration>,
) {
    let s = &engine.stats;
    let rate = |d: Duration| s.events as f64 / d.as_secs_f64().max(1e-9);
    crate::out::err(format_args!(
        "vigil: {} events in {:.3} s ({:.0} events/s)",
        s.events,
        total.as_secs_f64(),
        rate(total)
    ));
    if let Some(e) = engine_time {
        crate::out::err(format_args!(
            "vigil: rules engine {:.3} s ({:.0} events/s)",
            e.as_secs_f64(),
            rate(e)
        ));
    }
    for (r, st) in engine.compiled().rules.iter().zip(&s.rules) {
        crate::out::err(format_args!(
            "vigil: rule {}: {} matches; partial matches open {} (peak {}), evicted {} (keys evicted {}), expired {}, ended with their process {}",
            r.name,
            st.matches,
            st.open,
            st.peak_open,
            st.evicted,
            st.evicted_keys,
            st.expired,
            st.finished_at_exit
        ));
    }
    if s.undecided_at_end > 0 {
        crate::out::err(format_args!(
            "vigil: {} partial matches were still waiting for a deadline when the events ended",
            s.undecided_at_end
        ));
    }
    if actor.execs + actor.suppressed + actor.failed > 0 {
        crate::out::err(format_args!(
            "vigil: exec actions run {}, held back by the rate limit {}, failed {}",
            actor.execs, actor.suppressed, actor.failed
        ));
    }
}

pub(crate) fn limits(o: &Output) -> Limits {
    Limits {
        max_runs_per_key: o.max_runs_per_key.max(1),
        max_runs_per_rule: o.max_runs_per_rule.max(1),
        max_keys_per_rule: o.max_keys_per_rule.max(1),
    }
}

pub fn match_log(a: MatchArgs) -> Result<i32, Failure> {
    let inputs = [Input::File(&a.rules), Input::File(&a.log)];
    crate::files::refuse_same(a.out.matches_file(), &inputs)?;
    let rs = load(&a.rules)?;
    let mut reader = open_log(&a.log)?;
    let mut printer = Printer::new(&a.out)?;
    let mut engine = rs.engine(limits(&a.out));
    let mut actor = Actor::default();
    actor.exec_enabled = !a.no_actions;
    let mut damage = Damage::new(&a.log);
    let compiled = rs.compiled.clone();
    let start = Instant::now();
    let mut in_engine = Duration::ZERO;
    let mut matches = Vec::new();
    while let Some(batch) = reader.next_batch() {
        let events = match batch {
            Ok(e) => e,
            Err(issue) => {
                damage.report(&issue);
                continue;
            }
        };
        // The engine's own time: matches of a block are printed after it.
        let t = Instant::now();
        for ev in &events {
            engine.process(ev, &mut matches);
        }
        in_engine += t.elapsed();
        for m in matches.drain(..) {
            printer.print(&m, &compiled);
            // Offline there is no live process: only exec actions are carried out.
            let _ = actor.act(
                &compiled,
                &m,
                vigil_rules::action::TargetState::Recorded,
                false,
            );
        }
    }
    engine.finish();
    printer.finish()?;
    if a.out.stats {
        print_stats(&engine, &actor, start.elapsed(), Some(in_engine));
    }
    Ok(damage.exit_code(0))
}

pub fn watch(a: WatchArgs) -> Result<i32, Failure> {
    if let Some(p) = &a.output {
        crate::files::refuse_dash_log(p, "watch")?;
    }
    let rs = load(&a.rules)?;
    let selection = parse_selection(&a.syscalls)?;
    if a.system.system {
        return crate::system::watch(&a, rs, selection);
    }
    let (smo, slice) = a.smo.parse()?;
    let mut tracer = backend(&a.command, selection.clone())?;
    tracer.monitor_shared_memory(smo, slice);
    let mut inputs = command_inputs(&tracer, &a.command);
    inputs.push(Input::File(&a.rules));
    if let Some(p) = &a.output {
        crate::files::refuse_same(Some(p), &inputs)?;
        inputs.push(Input::File(p));
    }
    crate::files::refuse_same(a.out.matches_file(), &inputs)?;
    let mut log = match &a.output {
        Some(p) => Some(LogSink::create(
            p,
            &meta_for(tracer.name(), &a.command, &selection, Some((smo, slice))),
        )?),
        None => None,
    };
    if let Some(l) = &log {
        crate::record::protect_log(&mut tracer, l.path())?;
    }
    // Paths at a call's entry are walked before it runs only when a rule reads entries
    // (deny, NAME.entry, syscall); the others read the exit, which holds the kernel's answer.
    tracer.decide_at_entry(rs.looks_at_entries());
    let mut printer = Printer::new(&a.out)?;
    let start = Instant::now();
    let engine = rs.engine(limits(&a.out));
    let (outcome, stats) = {
        let next = log.as_mut().map(|l| l as &mut dyn EventSink);
        let mut sink = RulesSink::new(engine, |m: &Match, c: &Compiled| printer.print(m, c), next);
        let outcome = run_backend(&mut tracer, &mut sink);
        sink.engine.finish();
        let unlogged = sink.unforwarded;
        (outcome, (sink.engine, sink.actor, unlogged))
    };
    let ended = outcome.map(|o| crate::record::command_ended(&o));
    if let Some(l) = log.as_mut() {
        // A command that never started leaves no log (and an older one as it was).
        let published = match &ended {
            Ok(_) => l.publish(),
            Err(_) => Ok(()),
        };
        let status = match &ended {
            Ok((_, status)) => status.clone(),
            Err(f) => f.message.clone(),
        };
        if let Err(f) = published {
            let _ = l.finish();
            let _ = printer.finish();
            return Err(Failure::new(
                f.code,
                format!("{}; the command {status}", f.message),
            ));
        }
        if let Err(e) = l.finish() {
            // The rules went on watching and acting to the end; only the log stopped.
            let _ = printer.finish();
            return Err(Failure::new(
                1,
                format!(
                    "the log is incomplete: {e} ({} later events were not logged; the rules saw them all); the command {status}",
                    stats.2
                ),
            ));
        }
    }
    printer.finish()?;
    if a.out.stats {
        print_stats(&stats.0, &stats.1, start.elapsed(), None);
    }
    let (code, _) = ended?;
    Ok(code)
}
