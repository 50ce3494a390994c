//! The reconstruction as a tree for people, DOT and SVG for pictures, JSON for tools.

use crate::GraphError;
use crate::build::{Graph, NodeId, NodeKind};
use crate::object::clock;
use crate::track::{Direction, Tracked};
use rustc_hash::FxHashMap;
use serde_json::json;
use std::fmt::Write;

/// The JSON form (docs/graph.md):
/// `{"nodes":[{"id","kind","label","pid","path"}], "edges":[{"from","to","time_ns","seq","syscall"}],
///   "detection_point", "entry_points", "filtered"}`.
pub fn render_json(g: &Graph, t: &Tracked) -> serde_json::Value {
    let nodes: Vec<_> = t
        .nodes
        .iter()
        .map(|&n| {
            let node = g.node(n);
            json!({
                "id": n,
                "kind": node.kind.name(),
                "label": node.label,
                "pid": node.pid,
                "path": node.paths.last().map(|p| p.to_string()),
            })
        })
        .collect();
    let edges: Vec<_> = t
        .edges
        .iter()
        .map(|&i| {
            let e = &g.edges[i];
            json!({"from": e.from, "to": e.to, "time_ns": e.time_ns, "seq": e.seq, "syscall": g.call_name(e.call)})
        })
        .collect();
    json!({
        "nodes": nodes,
        "edges": edges,
        "detection_point": t.start,
        "entry_points": t.entry_points,
        "filtered": t.filtered,
    })
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
        let _ = writeln!(
            out,
            "{prefix}{arrow} {} {dim}{} #{}{reset} {}{}",
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

/// SVG, laid out in-process (no Graphviz needed).
pub fn render_svg(g: &Graph, t: &Tracked) -> Result<String, GraphError> {
    layout_builtin(&render_dot(g, t))
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
