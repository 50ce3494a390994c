//! `vigil backtrack` and `vigil forward`: reconstruct how information flowed, from a log.

use crate::exit::{Damage, Failure, open_log};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use vigil_graph::{
    Direction, Filters, Graph, GraphBuilder, GraphError, Limits, ObjectSpec, SmoConfig, TimeSpec,
};

#[derive(clap::Args)]
pub struct TrackArgs {
    /// The log to read.
    #[arg(required_unless_present = "explain_filters")]
    pub log: Option<PathBuf>,
    /// Where to start: file:PATH, proc:PID, proc:PID@N (the N-th process with that pid), event:SEQ.
    #[arg(
        long,
        required_unless_present = "explain_filters",
        value_name = "OBJECT"
    )]
    pub from: Option<String>,
    /// The moment of the starting point: a seq, +OFFSET from the log's start (+2.5s), or epoch
    /// seconds (1763820000.25). Default: the object's last event (backtrack), first (forward).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "tree")]
    pub format: Format,
    /// Where to write (standard output by default, or `-`). A file is written under a
    /// temporary name and renamed into place once complete; it may not be the log.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// List the noise filters and exit.
    #[arg(long)]
    pub explain_filters: bool,
    /// Also leave out objects whose path matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Turn the default noise filters off.
    #[arg(long)]
    pub include_all: bool,
    /// Follow at most this many edges from the starting point.
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,
    /// Only edges at or after this moment (same forms as --at).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only edges at or before this moment.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// --format svg: stop Graphviz after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = vigil_graph::GRAPHVIZ_TIME_LIMIT.as_secs_f64())]
    pub draw_time_limit: f64,
    /// The parts shared memory is divided into: object, vma, page, minipage (the recording's
    /// size) or minipage:N. Default: what the log was recorded with; finer is an error.
    #[arg(long, value_name = "GRANULARITY")]
    pub granularity: Option<String>,
}

impl TrackArgs {
    /// From `object` in `log`, with every option at its default.
    pub fn defaults(log: &std::path::Path, object: &str) -> TrackArgs {
        TrackArgs {
            log: Some(log.to_path_buf()),
            from: Some(object.to_string()),
            at: None,
            format: Format::Tree,
            output: None,
            explain_filters: false,
            exclude: Vec::new(),
            include_all: false,
            max_depth: None,
            since: None,
            until: None,
            draw_time_limit: vigil_graph::GRAPHVIZ_TIME_LIMIT.as_secs_f64(),
            granularity: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Tree,
    Dot,
    Svg,
    Json,
}

pub fn backtrack(a: TrackArgs) -> Result<i32, Failure> {
    run(a, Direction::Backward)
}

pub fn forward(a: TrackArgs) -> Result<i32, Failure> {
    run(a, Direction::Forward)
}

fn graph_error(e: GraphError) -> Failure {
    // A glob that does not parse is a bad command line, as `show --path` says; so is a
    // granularity the log cannot give.
    let code = match e {
        GraphError::BadPattern { .. }
        | GraphError::BadGranularity { .. }
        | GraphError::TooFine { .. }
        | GraphError::NotMonitored { .. } => 2,
        _ => 1,
    };
    Failure::new(code, e.to_string())
}

/// Reads a log into a graph, with shared memory divided at `granularity` (None: as
/// recorded). Blocks are decoded on a second thread while this one builds.
pub fn build_graph(
    log: &std::path::Path,
    granularity: Option<&str>,
    damage: &mut Damage,
) -> Result<Graph, Failure> {
    let mut reader = open_log(log)?;
    let meta = reader.meta();
    let smo = SmoConfig::for_log(meta.smo.as_deref(), meta.smo_slice_ns, granularity)
        .map_err(|e| Failure::new(2, format!("{}: {e}", log.display())))?;
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    let decoder = std::thread::spawn(move || {
        while let Some(batch) = reader.next_batch() {
            if tx.send(batch).is_err() {
                return;
            }
        }
    });
    let mut builder = GraphBuilder::with_smo(smo);
    for batch in rx {
        match batch {
            Ok(events) => events.iter().for_each(|ev| builder.add(ev)),
            Err(issue) => damage.report(&issue),
        }
    }
    let _ = decoder.join();
    let g = builder.finish();
    if g.events == 0 {
        return Err(graph_error(GraphError::EmptyLog));
    }
    if g.smo.whole_object > 0 {
        crate::out::err(format_args!(
            "vigil: note: {}: {} read/write call(s) of files with shared-memory parts have no file offset in the log: each counts as touching the whole object",
            log.display(),
            g.smo.whole_object
        ));
    }
    Ok(g)
}

fn run(a: TrackArgs, direction: Direction) -> Result<i32, Failure> {
    let filters = Filters::new(a.include_all, &a.exclude).map_err(graph_error)?;
    if !(a.draw_time_limit.is_finite() && a.draw_time_limit > 0.0 && a.draw_time_limit < 1e9) {
        return Err(Failure::new(
            2,
            "--draw-time-limit: a number of seconds above 0",
        ));
    }
    if a.explain_filters {
        let mut text = filters.explain().join("\n");
        text.push('\n');
        crate::out::print(&text)?;
        return Ok(0);
    }
    let (Some(log), Some(from)) = (&a.log, &a.from) else {
        return Err(Failure::new(2, "LOG and --from OBJECT are required"));
    };
    let output = crate::files::output_arg(a.output.as_deref());
    crate::files::refuse_same(output, &[crate::files::Input::File(log)])?;
    // Check what the user typed before reading a possibly large log.
    let spec = ObjectSpec::parse(from).map_err(graph_error)?;
    let parse_time = |t: &Option<String>| {
        t.as_deref()
            .map(|s| TimeSpec::parse(s).map(|p| (p, s.to_string())))
            .transpose()
            .map_err(graph_error)
    };
    let (at, since, until) = (
        parse_time(&a.at)?,
        parse_time(&a.since)?,
        parse_time(&a.until)?,
    );
    let mut damage = Damage::new(log);
    let g = build_graph(log, a.granularity.as_deref(), &mut damage)?;
    let to_seq = |t: Option<(TimeSpec, String)>| {
        t.map(|(t, s)| t.to_seq(&g, &s))
            .transpose()
            .map_err(graph_error)
    };
    let (start, event_at) = spec
        .resolve(&g)
        .map_err(|e| Failure::new(1, format!("{}: {e}", log.display())))?;
    let at = match to_seq(at)? {
        Some(s) => s,
        None => event_at.unwrap_or_else(|| vigil_graph::default_at(&g, start, direction)),
    };
    let limits = Limits {
        max_depth: a.max_depth,
        since: to_seq(since)?,
        until: to_seq(until)?,
    };
    let tracked = vigil_graph::track(&g, start, at, direction, &filters, limits);
    let colour = output.is_none() && std::io::stdout().is_terminal();
    let text = match a.format {
        Format::Tree => vigil_graph::render_tree(&g, &tracked, colour),
        Format::Dot => vigil_graph::render_dot(&g, &tracked),
        Format::Svg => {
            let drawer = vigil_graph::SvgDrawer {
                graphviz: vigil_graph::find_graphviz(),
                time_limit: std::time::Duration::from_secs_f64(a.draw_time_limit),
            };
            vigil_graph::render_svg(&g, &tracked, &drawer).map_err(graph_error)?
        }
        Format::Json => format!("{}\n", vigil_graph::render_json(&g, &tracked)),
    };
    match output {
        Some(p) => {
            let file = crate::files::NewFile::create(p)?;
            file.writer()?
                .write_all(text.as_bytes())
                .map_err(|e| Failure::io(p, "cannot write", e))?;
            file.commit()?;
        }
        None => crate::out::print(&text)?,
    }
    Ok(damage.exit_code(0))
}
