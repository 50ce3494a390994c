//! vigil's pattern rules: a language over the event stream (docs/rules.md), compiled to linear
//! automata with negation, repetition and time frames, matched online (while tracing) and
//! offline (over a log) by the same engine, with actions.

pub mod action;
mod ast;
mod compile;
mod diag;
pub mod dot;
mod engine;
mod fields;
mod lexer;
mod parser;
mod runs;

pub use ast::CmpOp;
pub use compile::{CAction, CCond, CExpr, Compiled, Rule};
pub use diag::{Diag, Diagnostics};
pub use engine::{Engine, Limits, MAX_SEQS, Match, RuleStats, Stats};
pub use fields::{EventClass, FieldRef, Sub, Val};

use std::sync::Arc;

/// A checked rule file, ready to run.
pub struct RuleSet {
    pub compiled: Arc<Compiled>,
}

impl RuleSet {
    /// Parses and checks `src`; every error of the file is returned at once.
    pub fn parse(src: &str, name: &str) -> Result<RuleSet, Diagnostics> {
        let (file, mut diags) = parser::parse(src);
        match compile::compile(&file, src) {
            Ok(c) if diags.is_empty() => Ok(RuleSet {
                compiled: Arc::new(c),
            }),
            Ok(_) => Err(Diagnostics {
                name: name.into(),
                src: src.into(),
                list: diags,
            }),
            Err(more) => {
                diags.extend(more);
                diags.sort_by_key(|d| d.span.start);
                diags.dedup();
                Err(Diagnostics {
                    name: name.into(),
                    src: src.into(),
                    list: diags,
                })
            }
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.compiled.rules
    }

    /// Whether any rule needs what a syscall's entry names established before the call runs:
    /// a `deny` (decided there), or an entry pattern (`NAME.entry`, `syscall`, in a step or a
    /// negation) whose event's arguments the rule reads (a path, an fd, flags). Only then must
    /// the backend walk an entry's paths; a rule on entries that reads only numbers and
    /// names (`dangling_syscall`: pid, tid, nr) does not need it, nor does one on exits, whose
    /// paths are the kernel's own answer.
    pub fn looks_at_entries(&self) -> bool {
        self.rules().iter().any(reads_entry_arguments)
    }

    pub fn engine(&self, limits: Limits) -> Engine {
        Engine::new(self.compiled.clone(), limits)
    }

    /// The same rules with every partial match checked against every event of its key, as if
    /// no run were indexed by value: the reference the index is tested against.
    pub fn without_run_index(&self) -> RuleSet {
        let mut c = (*self.compiled).clone();
        for r in &mut c.rules {
            r.indexed = false;
        }
        RuleSet {
            compiled: Arc::new(c),
        }
    }
}

/// See `RuleSet::looks_at_entries`.
fn reads_entry_arguments(r: &Rule) -> bool {
    use compile::{CExpr, late_exprs};
    use fields::{EventClass, FieldRef};
    if r.deny.is_some() {
        return true;
    }
    let entry = |classes: &[EventClass]| {
        classes
            .iter()
            .any(|c| matches!(c, EventClass::Entry(_) | EventClass::AnyEntry))
    };
    // The bindings that name an entry event, step or negation. Only bound events are read: a
    // condition is placed at the (bound) event whose binding it names.
    let events = r
        .steps
        .iter()
        .map(|s| (&s.classes, s.binding, &s.conds))
        .chain(
            r.gaps
                .iter()
                .flatten()
                .map(|n| (&n.classes, n.binding, &n.conds)),
        );
    let bound: Vec<usize> = events
        .clone()
        .filter(|(classes, ..)| entry(classes))
        .filter_map(|(_, b, _)| b)
        .collect();
    if bound.is_empty() {
        return false;
    }
    // Every field the rule reads: in its conditions, and once a match is complete (RETURN,
    // OUTPUT, exec). What a step keeps for later is read in one of those too.
    let in_conds = events
        .flat_map(|(.., conds)| conds)
        .flat_map(compile::cond_fields);
    let late = late_exprs(&r.returns, &r.actions, &r.output).filter_map(|e| match e {
        CExpr::Field { b, f, .. } => Some((*b, *f)),
        CExpr::Const(_) | CExpr::Count(_) => None,
    });
    in_conds.chain(late).any(|(b, f)| {
        bound.contains(&b)
            && matches!(
                f,
                FieldRef::Arg(..) | FieldRef::ArgAs(..) | FieldRef::Path | FieldRef::OpenForWrite
            )
    })
}
