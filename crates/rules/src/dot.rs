//! A rule's automaton in Graphviz DOT: states between the pattern's events, the events that
//! advance, repeat or kill a partial match, and the accepting state.

use crate::compile::Rule;
use std::fmt::Write;

fn classes(c: &[crate::fields::EventClass]) -> String {
    c.iter().map(|x| x.name()).collect::<Vec<_>>().join(" | ")
}

/// Escapes text for a DOT string; lines are joined with DOT's own `\n` afterwards.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A label of several lines, each escaped.
fn lines(parts: &[String]) -> String {
    parts.iter().map(|p| esc(p)).collect::<Vec<_>>().join("\\n")
}

pub fn render(rule: &Rule) -> String {
    let n = rule.steps.len();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=circle];",
        esc(&rule.name)
    );
    let _ = writeln!(o, "  s{n} [shape=doublecircle, label=\"match\"];");
    let _ = writeln!(o, "  dead [shape=box, style=dashed, label=\"dropped\"];");
    for (i, s) in rule.steps.iter().enumerate() {
        let name = s
            .binding
            .map(|b| format!(":{}", rule.bindings[b]))
            .unwrap_or_default();
        let rep = s.rep.as_ref().map(|r| match r.max {
            Some(m) if m == r.min => format!("[{}]", r.min),
            Some(m) => format!("[{}..{}]", r.min, m),
            None => format!("[>={}]", r.min),
        });
        let mut label = vec![format!(
            "{}{}{name}",
            classes(&s.classes),
            rep.clone().unwrap_or_default()
        )];
        label.extend(s.cond_text.iter().map(|t| format!("if {t}")));
        let _ = writeln!(o, "  s{i} -> s{} [label=\"{}\"];", i + 1, lines(&label));
        if rep.is_some() {
            let _ = writeln!(
                o,
                "  s{i} -> s{i} [label=\"{} (again)\", style=dotted];",
                esc(&classes(&s.classes))
            );
        }
    }
    for (g, negs) in rule.gaps.iter().enumerate() {
        for neg in negs {
            let name = neg
                .binding
                .map(|b| format!(":{}", rule.bindings[b]))
                .unwrap_or_default();
            let mut label = vec![format!("~{}{name}", classes(&neg.classes))];
            label.extend(neg.cond_text.iter().map(|t| format!("if {t}")));
            let _ = writeln!(
                o,
                "  s{} -> dead [label=\"{}\", style=dashed];",
                g + 1,
                lines(&label)
            );
        }
    }
    if let Some(w) = rule.within_ns {
        let _ = writeln!(
            o,
            "  within [shape=plaintext, label=\"WITHIN {}\"];",
            fmt_ns(w)
        );
    }
    o.push_str("}\n");
    o
}

pub fn fmt_ns(ns: u64) -> String {
    match ns {
        n if n % 3_600_000_000_000 == 0 => format!("{}h", n / 3_600_000_000_000),
        n if n % 60_000_000_000 == 0 => format!("{}m", n / 60_000_000_000),
        n if n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n => format!("{n}ns"),
    }
}
