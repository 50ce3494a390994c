//! The reconstruction as a tree for people, DOT and SVG for pictures, JSON for tools.

use crate::GraphError;
use crate::build::{Graph, NodeId, NodeKind};
use crate::object::clock;
use crate::track::{Direction, Tracked};
use rustc_hash::FxHashMap;
use serde_json::json;
use std::fmt::Write;

/// The JSON form (docs/graph.md):
/// `{"nodes":[{"id","kind","label","pid","path"(,"offset","length")}],
///   "edges":[{"from","to","time_ns","seq","syscall"(,"until")}],
///   "detection_point", "entry_points", "filtered"(, "smo")}`.
pub fn render_json(g: &Graph, t: &Tracked) -> serde_json::Value {
    let nodes: Vec<_> = t
        .nodes
        .iter()
        .map(|&n| {
            let node = g.node(n);
            let mut j = json!({
                "id": n,
                "kind": node.kind.name(),
                "label": node.label,
                "pid": node.pid,
                // As the export writes it: text, or {"bytes_hex"} for bytes that are not UTF-8.
                "path": node.paths.last().map(vigil_event::json::str_json),
            });
            // A shared-memory part: the bytes of its object (length null: the whole object).
            if let (Some(p), Some(m)) = (node.part, j.as_object_mut()) {
                m.insert("offset".into(), p.offset.into());
                m.insert("length".into(), p.length.into());
            }
            j
        })
        .collect();
    let edges: Vec<_> = t
        .edges
        .iter()
        .map(|&i| {
            let e = &g.edges[i];
            let mut j = json!({"from": e.from, "to": e.to, "time_ns": e.time_ns, "seq": e.seq, "syscall": g.call_name(e.call)});
            // A store through a mapping: the last seq of its access episode.
            if e.until() > e.seq
                && let Some(m) = j.as_object_mut()
            {
                m.insert("until".into(), e.until().into());
            }
            j
        })
        .collect();
    let mut out = json!({
        "nodes": nodes,
        "edges": edges,
        "detection_point": t.start,
        "entry_points": t.entry_points,
        "filtered": t.filtered,
    });
    // Only for logs with shared-memory accesses: the others' JSON is as it always was.
    if (g.smo.accesses > 0 || g.smo.whole_object > 0)
        && let Some(m) = out.as_object_mut()
    {
        m.insert(
            "smo".into(),
            json!({
                "granularity": g.granularity.to_string(),
                "accesses": g.smo.accesses,
                "parts": g.smo.parts,
                "whole_object": g.smo.whole_object,
            }),
        );
    }
    out
}

fn color(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Process => "\x1b[1;36m",
        NodeKind::File => "\x1b[32m",
        NodeKind::Filename => "\x1b[33m",
        NodeKind::Pipe | NodeKind::Socket => "\x1b[35m",
        NodeKind::Smo => "\x1b[34m",
    }
}

/// Levels of the tree drawn with guide characters (`│  `); a deeper line draws these and
/// then its depth as `[N] `, so each line stays short however deep the graph goes and the
/// output is linear in its size (a 100,000-deep fork chain would otherwise print 15 GB).
pub const MAX_GUIDES: usize = 32;

/// The path from the detection point back to the entry points (or forward from the entry
/// point), one object per line; an object reached twice is shown once and then referred to.
pub fn render_tree(g: &Graph, t: &Tracked, colour: bool) -> String {
    // Children of an object in the tree: the far ends of the followed edges.
    let mut children: FxHashMap<NodeId, Vec<usize>> = FxHashMap::default();
    for &i in &t.edges {
        let e = &g.edges[i];
        let (parent, _) = match t.direction {
            Direction::Backward => (e.to, e.from),
            Direction::Forward => (e.from, e.to),
        };
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| std::cmp::Reverse(g.edges[i].seq));
        if t.direction == Direction::Forward {
            list.reverse();
        }
    }
    let (reset, dim) = if colour {
        ("\x1b[0m", "\x1b[2m")
    } else {
        ("", "")
    };
    let name = |n: NodeId| {
        let node = g.node(n);
        if colour {
            format!(
                "{}{}{reset} [{}]",
                color(node.kind),
                node.label,
                node.kind.name()
            )
        } else {
            format!("{} [{}]", node.label, node.kind.name())
        }
    };
    let mut out = String::new();
    let what = if t.direction == Direction::Backward {
        "detection point"
    } else {
        "entry point"
    };
    let _ = writeln!(
        out,
        "{} {dim}({what}, at event {}){reset}",
        name(t.start),
        t.at
    );
    let mut shown: FxHashMap<NodeId, ()> = FxHashMap::default();
    shown.insert(t.start, ());
    // Depth-first with a stack (a traced program decides how deep the graph is): each entry is
    // an edge to print, its depth and whether it is its parent's last. `last_at[k]` says
    // whether the entry shown at depth k+1 on the current path was a last child, which is all
    // the guide characters need: memory stays linear in the graph.
    let mut stack: Vec<(usize, usize, bool)> = Vec::new();
    let push_children = |stack: &mut Vec<(usize, usize, bool)>, n: NodeId, depth: usize| {
        if let Some(list) = children.get(&n) {
            for (k, &i) in list.iter().enumerate().rev() {
                stack.push((i, depth, k + 1 == list.len()));
            }
        }
    };
    push_children(&mut stack, t.start, 1);
    let mut last_at: Vec<bool> = Vec::new();
    let mut prefix = String::new();
    while let Some((i, depth, last)) = stack.pop() {
        last_at.truncate(depth - 1);
        prefix.clear();
        for &l in last_at.iter().take(MAX_GUIDES) {
            prefix.push_str(if l { "   " } else { "│  " });
        }
        if depth > MAX_GUIDES + 1 {
            let _ = write!(prefix, "[{depth}] ");
        }
        prefix.push_str(if last { "└─ " } else { "├─ " });
        last_at.push(last);
        let e = &g.edges[i];
        let (arrow, far) = match t.direction {
            Direction::Backward => ("<-", e.from),
            Direction::Forward => ("->", e.to),
        };
        let again = shown.insert(far, ()).is_some();
        // A store through a mapping shows how long its access episode lasted.
        let until = if e.until() > e.seq {
            format!("..#{}", e.until())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{prefix}{arrow} {} {dim}{} #{}{until}{reset} {}{}",
            g.call_name(e.call),
            clock(e.time_ns),
            e.seq,
            name(far),
            if again {
                format!(" {dim}(shown above){reset}")
            } else {
                String::new()
            }
        );
        if !again {
            push_children(&mut stack, far, depth + 1);
        }
    }
    let entries: Vec<String> = t
        .entry_points
        .iter()
        .map(|&n| g.node(n).label.clone())
        .collect();
    let _ = writeln!(
        out,
        "\n{} objects, {} edges; entry points: {}",
        t.nodes.len(),
        t.edges.len(),
        entries.join(", ")
    );
    if t.filtered.is_empty() {
        let _ = writeln!(out, "filtered: nothing");
    } else {
        let parts: Vec<String> = t
            .filtered
            .iter()
            .map(|(k, v)| format!("{v} by {k}"))
            .collect();
        let _ = writeln!(
            out,
            "filtered: {} (--explain-filters, --include-all)",
            parts.join(", ")
        );
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT.
pub fn render_dot(g: &Graph, t: &Tracked) -> String {
    let mut out = String::from("digraph vigil {\n  rankdir=LR;\n");
    for &n in &t.nodes {
        let node = g.node(n);
        let shape = match node.kind {
            NodeKind::Process => "box",
            NodeKind::File => "ellipse",
            NodeKind::Filename => "note",
            NodeKind::Pipe | NodeKind::Socket => "diamond",
            NodeKind::Smo => "hexagon",
        };
        let extra = if n == t.start { ", style=bold" } else { "" };
        let _ = writeln!(
            out,
            "  n{n} [label=\"{}\", shape={shape}{extra}];",
            dot_escape(&node.label)
        );
    }
    for &i in &t.edges {
        let e = &g.edges[i];
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{} #{}\"];",
            e.from,
            e.to,
            g.call_name(e.call),
            e.seq
        );
    }
    out.push_str("}\n");
    out
}

/// The largest graph the built-in layout (layout-rs) draws: it is super-linear, 0.9 s for
/// 97 objects and 119 edges, 3.9 s for 146 and 201, 12 s for 202 and 301, over 100 s for 400
/// and 1,200 (release build; docs/graph.md).
pub const BUILTIN_MAX: (usize, usize) = (100, 150);
/// The largest graph handed to Graphviz: past it, `dot` ran for minutes or ran out of memory
/// in our measurements (1,313 objects and 2,155 edges took 33 s, 1,991 and 4,333 over 100 s,
/// a 20,000-process chain crashed after 3 minutes).
pub const GRAPHVIZ_MAX: (usize, usize) = (1500, 3000);
/// How long Graphviz may take by default before it is stopped.
pub const GRAPHVIZ_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Bounds on dot's network simplex and crossing minimisation: the layout of a 430-object
/// graph took 10.4 s without them, 3.1 s with them; small graphs converge before the bounds.
const GRAPHVIZ_ARGS: &[&str] = &["-Tsvg", "-Gnslimit=2", "-Gnslimit1=2", "-Gmclimit=0.2"];

/// How to draw SVG: with Graphviz's `dot` (found by `find_graphviz`), stopped after a time
/// limit, or with the built-in layout when Graphviz is not installed.
#[derive(Clone, Debug)]
pub struct SvgDrawer {
    pub graphviz: Option<std::path::PathBuf>,
    pub time_limit: std::time::Duration,
}

/// `dot` on the PATH, if Graphviz is installed.
pub fn find_graphviz() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("dot"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// SVG of the tracked graph. Graphviz draws it when installed; otherwise the built-in layout
/// draws small graphs only. A graph too large for either is refused with what narrows it.
pub fn render_svg(g: &Graph, t: &Tracked, drawer: &SvgDrawer) -> Result<String, GraphError> {
    let (nodes, edges) = (t.nodes.len(), t.edges.len());
    let too_large = |what: &'static str, max: (usize, usize)| GraphError::TooLarge {
        nodes,
        edges,
        what,
        max_nodes: max.0,
        max_edges: max.1,
    };
    match &drawer.graphviz {
        Some(dot) => {
            if nodes > GRAPHVIZ_MAX.0 || edges > GRAPHVIZ_MAX.1 {
                return Err(too_large("Graphviz", GRAPHVIZ_MAX));
            }
            run_graphviz(dot, render_dot(g, t), drawer.time_limit, nodes, edges)
        }
        None => {
            if nodes > BUILTIN_MAX.0 || edges > BUILTIN_MAX.1 {
                return Err(too_large(
                    "the built-in layout (Graphviz is not installed: scripts/setup installs it)",
                    BUILTIN_MAX,
                ));
            }
            layout_builtin(&render_dot(g, t))
        }
    }
}

/// Runs `dot -Tsvg` on `input`, feeding it and reading it on threads (neither side can block
/// the other), and stops it after `limit`.
fn run_graphviz(
    dot: &std::path::Path,
    input: String,
    limit: std::time::Duration,
    nodes: usize,
    edges: usize,
) -> Result<String, GraphError> {
    use std::io::{Read, Write as _};
    use std::process::{Command, Stdio};
    let failed = |why: String| GraphError::Render(format!("Graphviz ({}): {why}", dot.display()));
    let mut child = Command::new(dot)
        .args(GRAPHVIZ_ARGS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("no pipes to it".into()));
    };
    let feeder = std::thread::spawn(move || {
        // An error here (dot stopped reading) shows in its status.
        let _ = stdin.write_all(input.as_bytes());
    });
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut v);
        v
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if std::time::Instant::now() >= deadline => break Err(None),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => break Err(Some(e)),
        }
    };
    let status = match status {
        Ok(st) => st,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            // The threads are left to end when the pipes close: a process dot started could
            // hold them open, and waiting for it is what the limit is there to avoid.
            return Err(match e {
                None => GraphError::DrawTimeout {
                    nodes,
                    edges,
                    limit,
                },
                Some(e) => failed(format!("cannot wait for it: {e}")),
            });
        }
    };
    let _ = feeder.join();
    let svg = reader.join().unwrap_or_default();
    let errors = err_reader.join().unwrap_or_default();
    match status {
        st if !st.success() => {
            let msg = String::from_utf8_lossy(&errors);
            let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Err(failed(format!(
                "it failed ({st}){}",
                if first.is_empty() {
                    String::new()
                } else {
                    format!(": {first}")
                }
            )))
        }
        _ => String::from_utf8(svg).map_err(|_| failed("its output is not UTF-8".into())),
    }
}

/// Lays out DOT text with the built-in layout (layout-rs) and draws it as SVG.
pub fn layout_builtin(dot: &str) -> Result<String, GraphError> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    // layout-rs knows fewer shapes than Graphviz: draw with the ones it has.
    let dot = dot
        .replace("shape=note", "shape=box")
        .replace("shape=diamond", "shape=circle")
        .replace("shape=hexagon", "shape=circle");
    let mut parser = DotParser::new(&dot);
    let ast = parser.process().map_err(GraphError::Render)?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&ast);
    let mut visual = builder.get();
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}
