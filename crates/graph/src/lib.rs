//! Attack reconstruction. A log becomes a dependency graph: objects (processes, files, file
//! names, pipes, socket endpoints, shared-memory parts) joined by time-stamped cause → effect
//! edges, one per event that moves information. Backtracking walks from a detection point to
//! the entry points with Backtracker's time rule; forward tracking is its mirror image.
//! The edge rules are listed in docs/graph.md.

mod build;
mod filter;
mod object;
mod output;
mod smo;
mod track;

pub use build::{Edge, Graph, GraphBuilder, Node, NodeId, NodeKind, Part, SpanKind};
pub use filter::{Filters, NOISE};
pub use object::{ObjectSpec, TimeSpec};
pub use output::{
    BUILTIN_MAX, GRAPHVIZ_MAX, GRAPHVIZ_TIME_LIMIT, MAX_GUIDES, SvgDrawer, find_graphviz,
    layout_builtin, render_dot, render_json, render_svg, render_tree,
};
pub use smo::{Granularity, MINIPAGE_MAX, MINIPAGE_MIN, PAGE, SmoConfig, SmoMode, SmoStats};
pub use track::{Direction, Limits, Tracked, default_at, track};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("`{0}` is not an object: use file:PATH, proc:PID, proc:PID@N or event:SEQ")]
    BadObject(String),
    #[error("no {what} in the log{hint}")]
    NotInLog { what: String, hint: String },
    #[error(
        "`{0}` is not a time: use a sequence number (1234), an offset from the log's start (+2.5s) or seconds since the epoch (1763820000.25)"
    )]
    BadTime(String),
    #[error("{given} is outside the log, which spans {first} to {last}")]
    TimeOutsideLog {
        given: String,
        first: String,
        last: String,
    },
    #[error("bad --exclude pattern `{pattern}`: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("--granularity {given}: {why}")]
    BadGranularity { given: String, why: String },
    #[error(
        "--granularity {given} is finer than the recording (--smo {recorded}): the log cannot say {what}"
    )]
    TooFine {
        given: String,
        recorded: String,
        what: String,
    },
    #[error(
        "--granularity {given}: the recording did not monitor shared memory (--smo off): its shared mappings count as whole-file flows at their mmap; only --granularity object applies"
    )]
    NotMonitored { given: String },
    #[error("the log has no events")]
    EmptyLog,
    #[error("cannot draw the graph: {0}")]
    Render(String),
    #[error(
        "the graph has {nodes} objects and {edges} edges, more than {what} can draw as SVG ({max_nodes} objects, {max_edges} edges): narrow it (--max-depth N, --since/--until TIME, --exclude GLOB) or write it with --format dot or json"
    )]
    TooLarge {
        nodes: usize,
        edges: usize,
        what: &'static str,
        max_nodes: usize,
        max_edges: usize,
    },
    #[error(
        "Graphviz did not finish drawing {nodes} objects and {edges} edges in {limit:?} and was stopped: narrow the graph (--max-depth N, --since/--until TIME, --exclude GLOB), allow more time (--draw-time-limit), or write it with --format dot"
    )]
    DrawTimeout {
        nodes: usize,
        edges: usize,
        limit: std::time::Duration,
    },
}
