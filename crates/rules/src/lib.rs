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
pub mod watch;

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

    /// Whether any rule looks at a syscall's entry: a `deny` (decided there), or a pattern
    /// or negation naming `NAME.entry` or `syscall`. Only then must the backend establish
    /// what an entry's paths name before the call runs; otherwise the exit's answer (the
    /// kernel's own) is what every rule reads, and walking at entry is wasted work.
    pub fn looks_at_entries(&self) -> bool {
        use fields::EventClass;
        let entry = |c: &EventClass| matches!(c, EventClass::Entry(_) | EventClass::AnyEntry);
        self.rules().iter().any(|r| {
            r.deny.is_some()
                || r.steps.iter().any(|s| s.classes.iter().any(entry))
                || r.gaps.iter().flatten().any(|n| n.classes.iter().any(entry))
        })
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
