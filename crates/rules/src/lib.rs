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

pub use compile::{CAction, Compiled, Rule};
pub use diag::{Diag, Diagnostics};
pub use engine::{Engine, Limits, MAX_SEQS, Match, RuleStats, Stats};
pub use fields::Val;

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
    use compile::{CAction, CCond, CExpr, TemplatePart};
    use fields::{EventClass, FieldRef};
    if r.deny.is_some() {
        return true;
    }
    let entry = |c: &EventClass| matches!(c, EventClass::Entry(_) | EventClass::AnyEntry);
    // The bindings that name an entry event.
    let mut bound: Vec<usize> = r
        .steps
        .iter()
        .filter(|s| s.classes.iter().any(entry))
        .filter_map(|s| s.binding)
        .collect();
    bound.extend(
        r.gaps
            .iter()
            .flatten()
            .filter(|n| n.classes.iter().any(entry))
            .filter_map(|n| n.binding),
    );
    let unbound_entry_conds = r
        .steps
        .iter()
        .filter(|s| s.classes.iter().any(entry) && s.binding.is_none())
        .map(|s| &s.conds)
        .chain(
            r.gaps
                .iter()
                .flatten()
                .filter(|n| n.classes.iter().any(entry) && n.binding.is_none())
                .map(|n| &n.conds),
        );
    let is_arg = |f: &FieldRef| {
        matches!(
            f,
            FieldRef::Arg(..) | FieldRef::ArgAs(..) | FieldRef::Path | FieldRef::OpenForWrite
        )
    };
    fn expr_reads(e: &CExpr, hit: &dyn Fn(usize, &FieldRef) -> bool) -> bool {
        match e {
            CExpr::Field { b, f, .. } => hit(*b, f),
            CExpr::Const(_) | CExpr::Count(_) => false,
        }
    }
    // The fields a condition reads, by binding (compile.rs's walk of it).
    fn cond_reads(c: &CCond, hit: &dyn Fn(usize, &FieldRef) -> bool) -> bool {
        compile::cond_fields(c).iter().any(|(b, f)| hit(*b, f))
    }
    let hit = |b: usize, f: &FieldRef| bound.contains(&b) && is_arg(f);
    // A condition of an unbound entry step reads its own event, whatever binding it names.
    let own = |_: usize, f: &FieldRef| is_arg(f);
    let steps = r.steps.iter().any(|s| {
        s.conds.iter().any(|c| cond_reads(c, &hit))
            || s.captures
                .iter()
                .any(|(f, _)| s.binding.is_some_and(|b| bound.contains(&b)) && is_arg(f))
    });
    let negs = r
        .gaps
        .iter()
        .flatten()
        .any(|n| n.conds.iter().any(|c| cond_reads(c, &hit)));
    let unbound = unbound_entry_conds
        .into_iter()
        .flatten()
        .any(|c| cond_reads(c, &own));
    let returns = r.returns.iter().any(|(_, e)| expr_reads(e, &hit));
    let output = r.output.iter().flatten().any(|p| match p {
        TemplatePart::Value(es) => es.iter().any(|e| expr_reads(e, &hit)),
        TemplatePart::Text(_) => false,
    });
    let actions = r.actions.iter().any(|a| match a {
        CAction::Exec(es) => es.iter().any(|e| expr_reads(e, &hit)),
        CAction::Kill | CAction::Stop | CAction::Deny(_) => false,
    });
    steps || negs || unbound || returns || output || actions
}
