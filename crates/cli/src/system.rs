//! `vigil record --system` and `vigil watch --system`: the whole machine through the eBPF
//! backend, filtered in the kernel by pid tree, process name and cgroup.
//!
//! The log is created under a temporary name and takes its own once the programs are
//! attached: a capture that cannot start (no privilege, no BPF, a pid that does not exist)
//! leaves no log behind, and an existing file of that name as it was.

use crate::exit::Failure;
use crate::record::{LogSink, meta_for};
use std::path::PathBuf;
use std::time::Duration;
use vigil_capture::{Backend, BackendError, EventSink, Outcome, Selection};
use vigil_capture_ebpf::{EbpfBackend, SystemConfig};

/// What `--system` captures (record and watch).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SystemArgs {
    /// Record the whole machine through eBPF (root) instead of one command: every process
    /// that matches --pid/--comm/--cgroup (any of them; all processes when none is given),
    /// until Ctrl-C, SIGTERM or --duration.
    #[arg(long)]
    pub system: bool,
    /// With --system: this process and its descendants (repeatable).
    #[arg(long = "pid", value_name = "PID", requires = "system")]
    pub pids: Vec<u32>,
    /// With --system: processes of this name, as the kernel keeps it (at most 15 bytes,
    /// exact; repeatable).
    #[arg(long = "comm", value_name = "NAME", requires = "system")]
    pub comms: Vec<String>,
    /// With --system: processes in this cgroup (v2) or below it: a path under the cgroup2
    /// mount, or relative to it (repeatable).
    #[arg(long = "cgroup", value_name = "PATH", requires = "system")]
    pub cgroups: Vec<PathBuf>,
    /// With --system: stop after this long (`30s`, `500ms`, `2m`).
    #[arg(long, value_name = "DURATION", requires = "system")]
    pub duration: Option<String>,
    /// With --system: the ring buffer between the kernel and vigil (`16m`, a power of two
    /// from 4k to 1g). Records that do not fit are counted and logged as `lost` events.
    #[arg(long, value_name = "SIZE", default_value = "16m", requires = "system")]
    pub buffer: String,
}

/// `30s`, `500ms`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs <= 365.0 * 86400.0)
        .then(|| Duration::from_secs_f64(secs))
}

/// `16m`, `4k`, `1g`, or a number of bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

impl SystemArgs {
    pub fn config(&self, selection: Selection) -> Result<SystemConfig, Failure> {
        let duration = match &self.duration {
            Some(d) => Some(parse_duration(d).ok_or_else(|| {
                Failure::new(
                    2,
                    format!("--duration {d}: expected a duration such as 30s, 500ms or 2m"),
                )
            })?),
            None => None,
        };
        let buffer = parse_size(&self.buffer).ok_or_else(|| {
            Failure::new(
                2,
                format!(
                    "--buffer {}: expected a size such as 16m, 256k or 1g",
                    self.buffer
                ),
            )
        })?;
        Ok(SystemConfig {
            selection,
            pids: self.pids.clone(),
            comms: self.comms.clone(),
            cgroups: self.cgroups.clone(),
            buffer,
            duration,
            stop_on_signals: true,
            enforce: Vec::new(),
            rule_names: Vec::new(),
            // Recording alone: drained every 100 ms (watch sets 10 ms).
            drain_every: Duration::from_millis(100),
        })
    }

    /// What the log's header says was recorded.
    pub fn describe(&self) -> Vec<std::ffi::OsString> {
        let mut v = vec!["--system".into()];
        for p in &self.pids {
            v.push(format!("--pid={p}").into());
        }
        for c in &self.comms {
            v.push(format!("--comm={c}").into());
        }
        for c in &self.cgroups {
            v.push(format!("--cgroup={}", c.display()).into());
        }
        v
    }
}

pub fn backend(config: SystemConfig) -> Result<EbpfBackend, Failure> {
    EbpfBackend::new(config).map_err(|e| Failure::new(e.exit_code(), e.to_string()))
}

pub fn run_backend(b: &mut EbpfBackend, sink: &mut dyn EventSink) -> Result<Outcome, Failure> {
    b.run(sink)
        .map_err(|e| Failure::new(e.exit_code(), e.to_string()))
}

/// Says on stderr when the capture has started (scripts and benchmarks wait for this line).
pub fn announce(b: &mut EbpfBackend, quiet: bool) {
    if !quiet {
        b.on_ready(|s| {
            crate::out::err(format_args!(
                "vigil: recording the machine ({} process(es) already running matched); Ctrl-C or SIGTERM stops",
                s.existing
            ))
        });
    }
}

/// The end of a system-wide capture, in words (events lost included: never silent).
pub fn report(b: &EbpfBackend, outcome: &Outcome) -> String {
    let s = &b.stats;
    let mut m = format!(
        "{} process(es) already running matched; {} records from the kernel",
        s.existing, s.records
    );
    if s.lost > 0 {
        m.push_str(&format!(
            "; {} LOST (the ring buffer was full: see the `lost` events; a larger --buffer or a narrower filter helps)",
            s.lost
        ));
    }
    if s.malformed > 0 {
        m.push_str(&format!("; {} malformed records", s.malformed));
    }
    if outcome.stopped {
        m.push_str("; stopped by a signal");
    }
    m.push_str(&format!(
        "; vigil used {:.3} s of CPU",
        s.cpu_us as f64 / 1e6
    ));
    if s.records >= 1000 {
        m.push_str(&format!(
            " ({:.2} s per million records)",
            s.cpu_us as f64 / s.records as f64
        ));
    }
    m
}

pub fn record(
    sys: &SystemArgs,
    selection: Selection,
    output: &std::path::Path,
    quiet: bool,
) -> Result<i32, Failure> {
    let mut b = backend(sys.config(selection.clone())?)?;
    announce(&mut b, quiet);
    let mut sink = LogSink::create(
        output,
        &meta_for(b.name(), &sys.describe(), &selection, None),
    )?;
    let outcome = run_backend(&mut b, &mut sink);
    let published = match &outcome {
        Ok(_) => sink.publish(),
        Err(_) => Ok(()),
    };
    let written = sink.finish();
    let outcome = outcome?;
    published?;
    match written {
        Ok(stats) => {
            if !quiet {
                crate::out::err(format_args!(
                    "vigil: {} events, {} bytes ({:.1} per event) in {}; {}",
                    stats.events,
                    stats.bytes,
                    stats.bytes as f64 / stats.events.max(1) as f64,
                    output.display(),
                    report(&b, &outcome),
                ));
            }
            Ok(0)
        }
        Err(e) => Err(Failure::new(
            1,
            format!(
                "the log is incomplete: {e} (recording stopped there: {} later events were not recorded)",
                outcome.undelivered
            ),
        )),
    }
}

/// A RulesSink that also arms processes, in the kernel, for kill rules whose run waits for
/// its final connect (see system_rules.rs).
struct Arming<'a> {
    inner: vigil_watch::RulesSink<'a>,
    rules: Vec<u32>,
    arm: vigil_capture_ebpf::ArmHandle,
    armed: std::collections::HashSet<(u32, u32)>,
}

impl EventSink for Arming<'_> {
    fn event(
        &mut self,
        event: vigil_event::Event,
    ) -> Result<vigil_capture::Verdict, vigil_capture::SinkError> {
        let pid = event.pid;
        let exited = matches!(event.kind, vigil_event::EventKind::ProcessExit(_));
        let v = self.inner.event(event)?;
        for &r in &self.rules {
            let want = !exited && self.inner.engine.waits_for_last_step(r as usize, pid);
            let has = self.armed.contains(&(pid, r));
            if want != has {
                self.arm.arm(pid, r, want);
                if want {
                    self.armed.insert((pid, r));
                } else {
                    self.armed.remove(&(pid, r));
                }
            }
        }
        Ok(v)
    }

    /// The rules' own `deny` actions are left out: the backend refused the call where the
    /// kernel decides (fanotify, the connect hook) and logged that, with where.
    fn generated(&mut self) -> Vec<(u32, u32, vigil_event::EventKind)> {
        let mut g = self.inner.generated();
        g.retain(|(_, _, k)| {
            !matches!(k, vigil_event::EventKind::Action(a) if a.action.as_bytes() == b"deny")
        });
        g
    }

    fn verdicts_for_others(&mut self) -> Vec<(u32, vigil_capture::Verdict)> {
        self.inner.verdicts_for_others()
    }
}

/// `vigil watch --system`: the rules online over the whole machine.
pub fn watch(
    a: &crate::rules_cmd::WatchArgs,
    rs: vigil_rules::RuleSet,
    selection: Selection,
) -> Result<i32, Failure> {
    use crate::rules_cmd::{Printer, limits, print_stats};
    let plan = crate::system_rules::plan(&rs).map_err(|m| Failure::new(2, m))?;
    let mut config = a.system.config(selection.clone())?;
    config.enforce = plan.enforce.clone();
    config.rule_names = plan.names.clone();
    // Rules online: a match is acted on at most 10 ms after its event was recorded.
    config.drain_every = Duration::from_millis(10);
    let mut b = backend(config)?;
    for n in &plan.notes {
        crate::out::err(format_args!("vigil: {n}"));
    }
    announce(&mut b, false);
    if let Some(p) = &a.output {
        crate::files::refuse_same(Some(p), &[crate::files::Input::File(&a.rules)])?;
    }
    let mut log = match &a.output {
        Some(p) => Some(LogSink::create(
            p,
            &meta_for(b.name(), &a.system.describe(), &selection, None),
        )?),
        None => None,
    };
    let mut printer = Printer::new(&a.out)?;
    let start = std::time::Instant::now();
    let engine = rs.engine(limits(&a.out));
    let arm = b.arm_handle();
    let (outcome, stats) = {
        let next = log.as_mut().map(|l| l as &mut dyn EventSink);
        let inner = vigil_watch::RulesSink::new(
            engine,
            |m: &vigil_rules::Match, c: &vigil_rules::Compiled| printer.print(m, c),
            next,
        );
        let mut sink = Arming {
            inner,
            rules: plan.armed_by_user.clone(),
            arm,
            armed: Default::default(),
        };
        let outcome = run_backend(&mut b, &mut sink);
        sink.inner.engine.finish();
        let unlogged = sink.inner.unforwarded;
        (outcome, (sink.inner.engine, sink.inner.actor, unlogged))
    };
    if let Some(l) = log.as_mut() {
        if outcome.is_ok() {
            l.publish()?;
        }
        if let Err(e) = l.finish() {
            let _ = printer.finish();
            return Err(Failure::new(
                1,
                format!(
                    "the log is incomplete: {e} ({} later events were not logged; the rules saw them all)",
                    stats.2
                ),
            ));
        }
    }
    printer.finish()?;
    let outcome = outcome?;
    crate::out::err(format_args!("vigil: {}", report(&b, &outcome)));
    if a.out.stats {
        print_stats(&stats.0, &stats.1, start.elapsed(), None);
    }
    Ok(0)
}
