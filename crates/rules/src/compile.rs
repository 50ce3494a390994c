//! From syntax to what the engine runs: a linear automaton per rule (positive steps, with the
//! negations that guard each gap), conditions placed at the earliest step where all they need is
//! known, and the values each run must keep (only those still needed later).

use crate::ast::{
    self, ActionDef, CmpOp, Cond, Elem, Expr, Lit, RuleDef, Set, Span, Spanned, StrOp,
};
use crate::diag::Diag;
use crate::fields::{self, EventClass, FieldRef, Type, Val};
use globset::{Glob, GlobSet, GlobSetBuilder};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use syscalls::Sysno;
use vigil_event::syscall::ArgKind;
use vigil_event::{Str, flags};

/// A value in a condition: a field of a bound event, a constant, or a repetition count.
#[derive(Clone, Debug)]
pub enum CExpr {
    /// Field of binding `b`: read from the event when `b` is the event being matched, else
    /// from the run's slot.
    Field {
        b: usize,
        f: FieldRef,
        slot: usize,
    },
    Const(Val),
    Count(usize),
}

#[derive(Clone, Debug)]
pub enum CCond {
    Cmp(CExpr, CmpOp, CExpr),
    In(CExpr, Arc<FxHashSet<Val>>),
    Glob(CExpr, Arc<GlobSet>),
    Regex(CExpr, Arc<regex::Regex>),
    Starts(CExpr, Arc<[String]>),
    Ends(CExpr, Arc<[String]>),
    Contains(CExpr, Arc<[String]>),
    Has(CExpr, i64),
    And(Box<CCond>, Box<CCond>),
    Or(Box<CCond>, Box<CCond>),
    Not(Box<CCond>),
}

/// The largest count a repetition may ask for: a counting run or window keeps up to this
/// many events (or distinct values) per key.
pub const MAX_REPEAT: u32 = 65_536;

#[derive(Clone, Debug)]
pub struct RepC {
    pub min: u32,
    pub max: Option<u32>,
    pub distinct: Option<FieldRef>,
}

/// A positive element of the sequence.
#[derive(Clone, Debug)]
pub struct Step {
    pub classes: Vec<EventClass>,
    pub binding: Option<usize>,
    pub rep: Option<RepC>,
    /// Checked when an event is matched to this step.
    pub conds: Vec<CCond>,
    /// The source text of each of `conds` (for the automaton's drawing).
    pub cond_text: Vec<String>,
    /// Values of this step's event kept for later: (field, slot).
    pub captures: Vec<(FieldRef, usize)>,
    /// A condition `this.field == earlier.field` (the earlier value in a run's slot): runs
    /// waiting at this step are indexed by that value.
    pub probe: Option<(FieldRef, usize)>,
}

/// An event that must not occur in a gap.
#[derive(Clone, Debug)]
pub struct Neg {
    pub classes: Vec<EventClass>,
    pub binding: Option<usize>,
    pub conds: Vec<CCond>,
    /// The source text of each of `conds`.
    pub cond_text: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum CAction {
    Exec(Vec<CExpr>),
    Kill,
    Stop,
    Deny(i32),
}

#[derive(Clone, Debug)]
pub enum TemplatePart {
    Text(String),
    /// `{a.path|a.fd.path}`: the first of these that has a value (nothing if none has).
    Value(Vec<CExpr>),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub priority: String,
    pub tags: Vec<String>,
    pub steps: Vec<Step>,
    /// `gaps[i]`: negations after step i (the last one: after the final step, until WITHIN).
    pub gaps: Vec<Vec<Neg>>,
    pub join: Vec<FieldRef>,
    pub within_ns: Option<u64>,
    pub returns: Vec<(String, CExpr)>,
    pub output: Option<Vec<TemplatePart>>,
    pub actions: Vec<CAction>,
    /// The deny errno, when the rule decides at a syscall's entry.
    pub deny: Option<i32>,
    pub slots: usize,
    /// A single repeated step: counted in a sliding window per key.
    pub sliding: bool,
    pub uses_proc_table: bool,
    pub bindings: Vec<String>,
    /// For each binding, the positive step it belongs to (usize::MAX for negated ones).
    pub binding_step: Vec<usize>,
    /// Runs are indexed by their steps' probes (no repetition, which counts in place).
    pub indexed: bool,
    /// Every class a negation names.
    pub neg_classes: Vec<EventClass>,
}

impl Rule {
    pub fn trailing_negation(&self) -> bool {
        self.gaps.last().is_some_and(|g| !g.is_empty())
    }
}

#[derive(Clone, Debug)]
pub struct Compiled {
    pub rules: Vec<Rule>,
}

/// Literal comparisons per (binding, field), to find rules that can never match.
type Constraints = FxHashMap<(usize, FieldRef), Vec<(CmpOp, Val, Span)>>;

struct Binding {
    name: String,
    /// Position: step index, or the gap after step index for negated events.
    step: usize,
    negated: bool,
    classes: Vec<EventClass>,
    rep: bool,
}

struct Ctx<'a> {
    diags: Vec<Diag>,
    lists: FxHashMap<String, (Vec<Spanned<Lit>>, Span)>,
    macros: FxHashMap<String, &'a ast::MacroDef>,
    /// This rule's WHERE already expanded past MAX_CONJUNCTS (reported once).
    too_many_conds: bool,
    /// The top-level condition being expanded (where an expansion problem is reported).
    top: Span,
}

fn errno_number(name: &str) -> Option<i32> {
    (1..200).find(|&i| syscalls::Errno::new(i).name() == Some(name))
}

/// Compiles a parsed file; every semantic error is reported.
pub fn compile(file: &ast::File, src: &str) -> Result<Compiled, Vec<Diag>> {
    let mut cx = Ctx {
        diags: Vec::new(),
        lists: FxHashMap::default(),
        macros: FxHashMap::default(),
        too_many_conds: false,
        top: 0..0,
    };
    for l in &file.lists {
        if cx
            .lists
            .insert(l.name.node.clone(), (l.items.clone(), l.name.span.clone()))
            .is_some()
        {
            cx.diags.push(Diag::new(
                l.name.span.clone(),
                format!("list `{}` is defined twice", l.name.node),
            ));
        }
    }
    for m in &file.macros {
        if BUILTINS.contains(&m.name.node.as_str()) {
            cx.diags.push(Diag::new(
                m.name.span.clone(),
                format!(
                    "`{}` is built into the language: give the macro another name",
                    m.name.node
                ),
            ));
            continue;
        }
        if cx.macros.insert(m.name.node.clone(), m).is_some() {
            cx.diags.push(Diag::new(
                m.name.span.clone(),
                format!("macro `{}` is defined twice", m.name.node),
            ));
        }
    }
    if file.rules.is_empty() && cx.diags.is_empty() {
        cx.diags.push(
            Diag::new(0..0, "no rules in this file")
                .help("a rule starts with RULE name, then PATTERN { [ ... ] }"),
        );
    }
    let mut names: FxHashMap<&str, Span> = FxHashMap::default();
    let mut rules = Vec::new();
    for r in &file.rules {
        if r.name.node.is_empty() {
            continue;
        }
        if let Some(first) = names.get(r.name.node.as_str()) {
            let (line, _) = line_of(src, first.start);
            cx.diags.push(
                Diag::new(
                    r.name.span.clone(),
                    format!(
                        "a rule named `{}` already exists (line {line})",
                        r.name.node
                    ),
                )
                .help("rule names must be unique"),
            );
            continue;
        }
        names.insert(&r.name.node, r.name.span.clone());
        if r.broken {
            continue;
        }
        if let Some(rule) = compile_rule(&mut cx, r, src) {
            rules.push(rule);
        }
    }
    if cx.diags.is_empty() {
        Ok(Compiled { rules })
    } else {
        Err(cx.diags)
    }
}

fn line_of(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    (
        before.matches('\n').count() + 1,
        before.rfind('\n').map_or(offset, |n| offset - n - 1) + 1,
    )
}

/// A conjunct after macro expansion, with the bindings it uses.
struct Conjunct {
    cond: Spanned<Cond>,
    /// Macro parameter names → binding names, for conditions from macro bodies.
    rename: FxHashMap<String, String>,
}

/// Compiles one rule, phase by phase: the pattern's shape, distinct counts, joins, the
/// conditions placed at the step that checks them, RETURN/OUTPUT/DO, what deny requires, the
/// slots that keep values for later steps, and the rule itself.
fn compile_rule(cx: &mut Ctx, r: &RuleDef, src: &str) -> Option<Rule> {
    let errors_before = cx.diags.len();
    let Some(pattern) = &r.pattern else {
        cx.diags.push(
            Diag::new(
                r.name.span.clone(),
                format!("rule `{}` has no PATTERN", r.name.node),
            )
            .help("add PATTERN { [event, ...] }"),
        );
        return None;
    };
    if pattern.node.is_empty() {
        cx.diags.push(Diag::new(
            pattern.span.clone(),
            "an empty pattern can never match",
        ));
        return None;
    }
    let mut shape = pattern_shape(cx, r, pattern)?;
    distinct_counts(cx, pattern, &mut shape.steps);
    let join = joins(cx, r, &shape.steps, &shape.gaps);
    place_conditions(
        cx,
        r,
        src,
        &shape.bindings,
        &mut shape.steps,
        &mut shape.gaps,
    );
    let mut outs = outputs(cx, r, src, &shape.bindings);
    if outs.deny.is_some() {
        check_deny(cx, r, pattern, &mut shape.steps, &shape.gaps, &outs.returns);
    }
    let slots = slots(&shape, &outs);
    if cx.diags.len() > errors_before {
        return None;
    }
    assign_slots(&slots, &mut shape, &mut outs);
    Some(finish(r, shape, outs, join, slots))
}

/// A pattern's steps, the negations in the gaps between them, and its bindings.
struct Shape {
    steps: Vec<Step>,
    gaps: Vec<Vec<Neg>>,
    bindings: Vec<Binding>,
}

fn pattern_shape(cx: &mut Ctx, r: &RuleDef, pattern: &Spanned<Vec<Elem>>) -> Option<Shape> {
    // Steps, gaps, bindings.
    let mut steps: Vec<Step> = Vec::new();
    let mut gaps: Vec<Vec<Neg>> = Vec::new();
    let mut bindings: Vec<Binding> = Vec::new();
    let mut pending_negs: Vec<(Neg, Span)> = Vec::new();
    for e in &pattern.node {
        let classes = classes_of(cx, e);
        if let Some(rep) = &e.rep {
            if e.negated {
                cx.diags.push(Diag::new(
                    rep.span.clone(),
                    "a negated event cannot have a count",
                ));
            }
            if rep.node.max.is_some_and(|m| m < rep.node.min) || rep.node.max == Some(0) {
                cx.diags.push(Diag::new(
                    rep.span.clone(),
                    "this count can never be met (no possible match)",
                ));
            }
            if rep.node.min.max(rep.node.max.unwrap_or(0)) > MAX_REPEAT {
                cx.diags.push(
                    Diag::new(
                        rep.span.clone(),
                        format!("a count above {MAX_REPEAT} is not supported"),
                    )
                    .help("a run keeps what it counts; this bounds the memory one key can take"),
                );
            }
        }
        let binding = e.binding.as_ref().map(|b| {
            if bindings.iter().any(|x| x.name == b.node) {
                cx.diags.push(Diag::new(
                    b.span.clone(),
                    format!("`{}` is bound twice in this pattern", b.node),
                ));
            }
            bindings.push(Binding {
                name: b.node.clone(),
                step: steps.len(),
                negated: e.negated,
                classes: classes.clone(),
                rep: e.rep.is_some(),
            });
            bindings.len() - 1
        });
        if e.negated {
            if steps.is_empty() {
                cx.diags.push(
                    Diag::new(e.span.clone(), "a negation needs an event before it").help(
                        "~x means \"no x between its neighbours\"; start the pattern with an event",
                    ),
                );
            }
            if let Some(b) = binding {
                bindings[b].step = steps.len().saturating_sub(1);
            }
            pending_negs.push((
                Neg {
                    classes,
                    binding,
                    conds: Vec::new(),
                    cond_text: Vec::new(),
                },
                e.span.clone(),
            ));
        } else {
            if let Some(last) = gaps.last_mut() {
                last.extend(pending_negs.drain(..).map(|(n, _)| n));
            }
            let rep = e.rep.as_ref().map(|r| RepC {
                min: r.node.min,
                max: r.node.max,
                distinct: None,
            });
            steps.push(Step {
                classes,
                binding,
                rep,
                conds: Vec::new(),
                cond_text: Vec::new(),
                captures: Vec::new(),
                probe: None,
            });
            gaps.push(Vec::new());
        }
    }
    let trailing_span = pending_negs.first().map(|(_, s)| s.clone());
    if let Some(last) = gaps.last_mut() {
        last.extend(pending_negs.drain(..).map(|(n, _)| n));
    }
    if steps.is_empty() {
        return None;
    }
    if let Some(span) = trailing_span
        && r.within.is_none()
    {
        cx.diags.push(
            Diag::new(
                span,
                "a negation at the end of a pattern needs WITHIN: the time frame is its deadline",
            )
            .help("e.g. WITHIN 5s: \"a, then no b within 5s\""),
        );
    }
    Some(Shape {
        steps,
        gaps,
        bindings,
    })
}

/// `[x]{n, distinct field}`: the field every event of the step has.
fn distinct_counts(cx: &mut Ctx, pattern: &Spanned<Vec<Elem>>, steps: &mut [Step]) {
    // Distinct counts.
    for (e, s) in pattern.node.iter().filter(|e| !e.negated).zip(0..) {
        if let Some(rep) = &e.rep
            && let Some(field) = &rep.node.distinct
        {
            match fields::resolve_on_every(&steps[s].classes, &[field.as_str()]) {
                Ok((f, _, _)) => {
                    if let Some(r) = steps[s].rep.as_mut() {
                        r.distinct = Some(f);
                    }
                }
                Err(m) => cx.diags.push(Diag::new(rep.span.clone(), m)),
            }
        }
    }
}

/// JOIN fields: on every event of the pattern, negated ones too.
fn joins(cx: &mut Ctx, r: &RuleDef, steps: &[Step], gaps: &[Vec<Neg>]) -> Vec<FieldRef> {
    // Joins.
    let mut join = Vec::new();
    for j in &r.joins {
        let mut all: Vec<EventClass> = steps.iter().flat_map(|s| s.classes.clone()).collect();
        all.extend(gaps.iter().flatten().flat_map(|n| n.classes.clone()));
        match fields::resolve_on_every(&all, &[j.node.as_str()]) {
            Ok((f, _, _)) => join.push(f),
            Err(m) => cx.diags.push(
                Diag::new(j.span.clone(), format!("cannot join on `{}`: {m}", j.node))
                    .help("every event of the pattern, negated ones too, must have the field"),
            ),
        }
    }
    join
}

/// WHERE, macros expanded: each condition compiled and placed at the step (or negated event)
/// that checks it; conditions that can never hold are reported.
fn place_conditions(
    cx: &mut Ctx,
    r: &RuleDef,
    src: &str,
    bindings: &[Binding],
    steps: &mut [Step],
    gaps: &mut [Vec<Neg>],
) {
    // Conditions, with macros expanded.
    let mut conjuncts: Vec<Conjunct> = Vec::new();
    cx.too_many_conds = false;
    for c in &r.conds {
        cx.top = c.span.clone();
        expand(cx, c, &FxHashMap::default(), &mut conjuncts, 0);
    }
    let mut lit_constraints: Constraints = FxHashMap::default();
    for cj in &conjuncts {
        let mut used = Vec::new();
        collect_bindings(&cj.cond.node, &cj.rename, &mut used);
        let mut ids = Vec::new();
        for (name, span) in &used {
            match bindings.iter().position(|b| &b.name == name) {
                Some(i) => ids.push(i),
                None => {
                    let hint = vigil_event::suggest(name, bindings.iter().map(|b| b.name.as_str()));
                    cx.diags.push(
                        Diag::new(
                            span.clone(),
                            format!("`{name}` is not an event of this pattern{hint}"),
                        )
                        .help("name an event in PATTERN with type:name"),
                    );
                }
            }
        }
        if ids.len() != used.len() {
            continue;
        }
        let mut b = Builder {
            cx: &mut *cx,
            bindings,
            rename: &cj.rename,
        };
        let Some(cc) = b.cond(&cj.cond) else { continue };
        let text = src
            .get(cj.cond.span.clone())
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Literal comparisons on a field, to find rules that can never match.
        if let (Cond::Cmp(_, op, _), Some(CExpr::Field { b, f, .. }), Some(CExpr::Const(v))) =
            (&cj.cond.node, b_expr(&cc, 0), b_expr(&cc, 1))
        {
            lit_constraints
                .entry((b, f))
                .or_default()
                .push((*op, v, cj.cond.span.clone()));
        }
        // Where the condition is checked: at its latest event, or at its negated event.
        let neg = ids.iter().copied().find(|&i| bindings[i].negated);
        let latest = ids.iter().map(|&i| bindings[i].step).max();
        match (neg, latest) {
            (Some(n), _) => {
                let gap = bindings[n].step;
                let too_late = ids
                    .iter()
                    .any(|&i| !bindings[i].negated && bindings[i].step > gap);
                if too_late {
                    cx.diags.push(
                        Diag::new(
                            cj.cond.span.clone(),
                            "a condition on a negated event can only use events before it",
                        )
                        .help("the negated event is checked before the later events exist"),
                    );
                    continue;
                }
                if ids.iter().any(|&i| bindings[i].negated && i != n) {
                    cx.diags.push(Diag::new(
                        cj.cond.span.clone(),
                        "a condition can use at most one negated event",
                    ));
                    continue;
                }
                if let Some(neg) = gaps[gap].iter_mut().find(|x| x.binding == Some(n)) {
                    neg.conds.push(cc);
                    neg.cond_text.push(text);
                }
            }
            (None, Some(step)) => {
                steps[step].conds.push(cc);
                steps[step].cond_text.push(text);
            }
            (None, None) => {
                // No event involved: decided now.
                let v = eval_const(&cc);
                if v == Some(false) {
                    cx.diags.push(Diag::new(
                        cj.cond.span.clone(),
                        "this condition is always false: the rule can never match",
                    ));
                }
            }
        }
    }
    check_contradictions(cx, &lit_constraints);
}

/// What a match gives: RETURN values, the OUTPUT template, the DO actions (and deny's errno).
struct Outputs {
    returns: Vec<(String, CExpr)>,
    output: Option<Vec<TemplatePart>>,
    actions: Vec<CAction>,
    deny: Option<i32>,
}

fn outputs(cx: &mut Ctx, r: &RuleDef, src: &str, bindings: &[Binding]) -> Outputs {
    // RETURN, OUTPUT, DO.
    let returns: Vec<(String, CExpr)> = r
        .returns
        .iter()
        .filter_map(|e| {
            let mut b = Builder {
                cx: &mut *cx,
                bindings,
                rename: &FxHashMap::default(),
            };
            let (ce, _) = b.expr(e)?;
            Some((src[e.span.clone()].to_string(), ce))
        })
        .collect();
    let output = r.output.as_ref().map(|o| template(cx, bindings, o));
    let mut actions = Vec::new();
    let mut deny = None;
    for a in &r.actions {
        match &a.node {
            ActionDef::Kill => actions.push(CAction::Kill),
            ActionDef::Stop => actions.push(CAction::Stop),
            ActionDef::Deny(e) => match errno_number(&e.node) {
                Some(n) => {
                    deny = Some(n);
                    actions.push(CAction::Deny(n));
                }
                None => cx.diags.push(
                    Diag::new(e.span.clone(), format!("`{}` is not an errno name", e.node))
                        .help("e.g. EPERM, EACCES, ENOENT"),
                ),
            },
            ActionDef::Exec(args) => {
                if args.is_empty() {
                    cx.diags
                        .push(Diag::new(a.span.clone(), "exec needs the program to run"));
                    continue;
                }
                if !matches!(&args[0].node, Expr::Lit(Lit::Str(_))) {
                    cx.diags.push(Diag::new(args[0].span.clone(), "exec's program must be a string: vigil never runs a command line through a shell"));
                }
                let mut b = Builder {
                    cx: &mut *cx,
                    bindings,
                    rename: &FxHashMap::default(),
                };
                let list: Vec<CExpr> = args
                    .iter()
                    .filter_map(|x| b.expr(x).map(|(e, _)| e))
                    .collect();
                actions.push(CAction::Exec(list));
            }
        }
    }
    Outputs {
        returns,
        output,
        actions,
        deny,
    }
}

/// deny decides at the call's entry: the last event is matched there, so it must be a
/// syscall, not wait for a trailing negation, and not use the call's result.
fn check_deny(
    cx: &mut Ctx,
    r: &RuleDef,
    pattern: &Spanned<Vec<Elem>>,
    steps: &mut [Step],
    gaps: &[Vec<Neg>],
    returns: &[(String, CExpr)],
) {
    let n = steps.len() - 1;
    let last = &mut steps[n];
    let mut ok = true;
    for c in last.classes.iter_mut() {
        *c = match *c {
            EventClass::Exit(k) | EventClass::Entry(k) => EventClass::Entry(k),
            EventClass::AnyEntry | EventClass::AnyExit => EventClass::AnyEntry,
            _ => {
                ok = false;
                *c
            }
        };
    }
    if !ok {
        cx.diags.push(Diag::new(
            pattern.span.clone(),
            "deny needs the pattern to end with a syscall: it stops that call before it runs",
        ));
    }
    if trailing_negation(gaps) {
        cx.diags.push(Diag::new(
            pattern.span.clone(),
            "deny cannot wait for a trailing negation: it decides at the call's entry",
        ));
    }
    let uses_result = |c: &CCond| {
        cond_fields(c)
            .iter()
            .any(|(b, f)| *b == last_binding(steps) && is_result(*f, &steps[n].classes))
    };
    let uses_result_ret = returns
        .iter()
        .any(|(_, e)| expr_uses_result(e, last_binding(steps), &steps[n].classes));
    if steps[n].conds.iter().any(uses_result) || uses_result_ret {
        let span = r
            .actions
            .iter()
            .find(|a| matches!(a.node, ActionDef::Deny(_)))
            .map_or(pattern.span.clone(), |a| a.span.clone());
        cx.diags.push(Diag::new(span, "deny decides before the call runs: its last event cannot use `ret`, `errno` or outputs").help("remove the condition on the result, or drop deny"));
    }
}

/// The values kept for later: every (binding, field) read after its own step (by a later
/// step's condition, a negation's, RETURN, OUTPUT or exec), numbered.
struct Slots {
    of: FxHashMap<(usize, FieldRef), usize>,
    count: usize,
}

fn slots(shape: &Shape, outs: &Outputs) -> Slots {
    let mut slots = Slots {
        of: FxHashMap::default(),
        count: 0,
    };
    let mut need = |b: usize, f: FieldRef| {
        slots.of.entry((b, f)).or_insert_with(|| {
            slots.count += 1;
            slots.count - 1
        });
    };
    for (si, s) in shape.steps.iter().enumerate() {
        for c in &s.conds {
            for (b, f) in cond_fields(c) {
                if shape.bindings[b].step < si || shape.bindings[b].negated {
                    need(b, f);
                }
            }
        }
    }
    for n in shape.gaps.iter().flatten() {
        for c in &n.conds {
            for (b, f) in cond_fields(c) {
                if Some(b) != n.binding {
                    need(b, f);
                }
            }
        }
    }
    for e in late_exprs(&outs.returns, &outs.actions, &outs.output) {
        if let CExpr::Field { b, f, .. } = e {
            need(*b, *f);
        }
    }
    slots
}

/// What a complete match evaluates: RETURN values, exec arguments, OUTPUT's values.
pub(crate) fn late_exprs<'a>(
    returns: &'a [(String, CExpr)],
    actions: &'a [CAction],
    output: &'a Option<Vec<TemplatePart>>,
) -> impl Iterator<Item = &'a CExpr> {
    let exec = actions.iter().flat_map(|a| match a {
        CAction::Exec(args) => &args[..],
        CAction::Kill | CAction::Stop | CAction::Deny(_) => &[],
    });
    let output = output.iter().flatten().flat_map(|p| match p {
        TemplatePart::Value(e) => &e[..],
        TemplatePart::Text(_) => &[],
    });
    returns.iter().map(|(_, e)| e).chain(exec).chain(output)
}

/// Gives every field reference its slot, and tells each step what to keep.
fn assign_slots(slots: &Slots, shape: &mut Shape, outs: &mut Outputs) {
    let fix = |e: &mut CExpr| {
        if let CExpr::Field { b, f, slot } = e
            && let Some(&s) = slots.of.get(&(*b, *f))
        {
            *slot = s;
        }
    };
    for s in shape.steps.iter_mut() {
        s.conds.iter_mut().for_each(|c| visit_exprs(c, &fix));
    }
    for n in shape.gaps.iter_mut().flatten() {
        n.conds.iter_mut().for_each(|c| visit_exprs(c, &fix));
    }
    outs.returns.iter_mut().for_each(|(_, e)| fix(e));
    for a in outs.actions.iter_mut() {
        if let CAction::Exec(args) = a {
            args.iter_mut().for_each(fix);
        }
    }
    if let Some(o) = outs.output.as_mut() {
        for p in o.iter_mut() {
            if let TemplatePart::Value(e) = p {
                e.iter_mut().for_each(fix);
            }
        }
    }
    for ((b, f), slot) in &slots.of {
        if !shape.bindings[*b].negated
            && let Some(si) = shape.steps.iter().position(|s| s.binding == Some(*b))
        {
            shape.steps[si].captures.push((*f, *slot));
        }
    }
}

/// The rule: what the engine needs to run it fast (probes, indexing, the process table).
fn finish(r: &RuleDef, shape: Shape, outs: Outputs, join: Vec<FieldRef>, slots: Slots) -> Rule {
    let Shape {
        mut steps,
        gaps,
        bindings,
    } = shape;
    let Outputs {
        returns,
        output,
        actions,
        deny,
    } = outs;
    let Slots {
        of: slot_of,
        count: nslots,
    } = slots;
    let uses_proc_table = slot_of
        .keys()
        .any(|(_, f)| matches!(f, FieldRef::Exe | FieldRef::Comm | FieldRef::Ppid))
        || steps
            .iter()
            .flat_map(|s| s.conds.iter())
            .chain(gaps.iter().flatten().flat_map(|n| n.conds.iter()))
            .flat_map(cond_fields)
            .any(|(_, f)| matches!(f, FieldRef::Exe | FieldRef::Comm | FieldRef::Ppid))
        || join
            .iter()
            .any(|f| matches!(f, FieldRef::Exe | FieldRef::Comm | FieldRef::Ppid));
    let binding_step: Vec<usize> = (0..bindings.len())
        .map(|b| {
            steps
                .iter()
                .position(|s| s.binding == Some(b))
                .unwrap_or(usize::MAX)
        })
        .collect();
    let sliding = steps.len() == 1
        && steps[0].rep.is_some()
        && !trailing_negation(&gaps)
        && r.within.is_some();
    for (i, st) in steps.iter_mut().enumerate() {
        st.probe = st.binding.filter(|_| i > 0).and_then(|cur| {
            st.conds.iter().find_map(|c| match c {
                CCond::Cmp(x, CmpOp::Eq, y) => match (x, y) {
                    (CExpr::Field { b, f, .. }, CExpr::Field { b: o, slot, .. })
                    | (CExpr::Field { b: o, slot, .. }, CExpr::Field { b, f, .. })
                        if *b == cur && *o != cur =>
                    {
                        Some((*f, *slot))
                    }
                    _ => None,
                },
                _ => None,
            })
        });
    }
    let indexed = !sliding && steps.iter().all(|s| s.rep.is_none());
    let neg_classes = gaps
        .iter()
        .flatten()
        .flat_map(|n| n.classes.iter().copied())
        .collect();
    Rule {
        indexed,
        neg_classes,
        name: r.name.node.clone(),
        priority: r
            .priority
            .as_ref()
            .map_or_else(|| "medium".to_string(), |p| p.node.clone()),
        tags: r.tags.iter().map(|t| t.node.clone()).collect(),
        steps,
        gaps,
        join,
        within_ns: r.within.as_ref().map(|w| w.node),
        returns,
        output,
        actions,
        deny,
        slots: nslots,
        sliding,
        uses_proc_table,
        binding_step,
        bindings: bindings.iter().map(|b| b.name.clone()).collect(),
    }
}

fn trailing_negation(gaps: &[Vec<Neg>]) -> bool {
    gaps.last().is_some_and(|g| !g.is_empty())
}

fn last_binding(steps: &[Step]) -> usize {
    steps.last().and_then(|s| s.binding).unwrap_or(usize::MAX)
}

/// Fields only known after a call returns.
fn is_result(f: FieldRef, classes: &[EventClass]) -> bool {
    match f {
        FieldRef::Ret | FieldRef::Errno => true,
        FieldRef::Arg(name, _) | FieldRef::ArgAs(name, _) => classes
            .iter()
            .filter_map(|c| c.signature())
            .any(|s| s.outputs.iter().any(|o| o.name == name)),
        _ => false,
    }
}

fn expr_uses_result(e: &CExpr, b: usize, classes: &[EventClass]) -> bool {
    matches!(e, CExpr::Field { b: x, f, .. } if *x == b && is_result(*f, classes))
}

fn b_expr(c: &CCond, side: usize) -> Option<CExpr> {
    match c {
        CCond::Cmp(l, _, r) => Some(if side == 0 { l.clone() } else { r.clone() }),
        _ => None,
    }
}

fn classes_of(cx: &mut Ctx, e: &Elem) -> Vec<EventClass> {
    let mut out = Vec::new();
    for a in &e.alts {
        match EventClass::parse(&a.node) {
            Some(c) => out.push(c),
            None => {
                let hint = vigil_event::suggest(&a.node, fields::type_names());
                cx.diags.push(Diag::new(a.span.clone(), format!("unknown event type `{}`{hint}", a.node)).help("a syscall name (its exit), NAME.entry, syscall, syscallexit, processstart, exec, processexit, threadstart, threadtermination, signal, lost, action"));
            }
        }
    }
    out
}

/// Predicates built into the language, called like macros (docs/rules.md).
pub const BUILTINS: &[&str] = &["open_for_write"];

/// How many conditions a rule's WHERE may expand to: macros calling macros multiply, and a
/// few lines could otherwise ask for billions.
const MAX_CONJUNCTS: usize = 10_000;

fn expand(
    cx: &mut Ctx,
    c: &Spanned<Cond>,
    rename: &FxHashMap<String, String>,
    out: &mut Vec<Conjunct>,
    depth: usize,
) {
    if out.len() > MAX_CONJUNCTS {
        if !cx.too_many_conds {
            cx.too_many_conds = true;
            cx.diags.push(
                Diag::new(
                    cx.top.clone(),
                    format!("this rule has more than {MAX_CONJUNCTS} conditions (macros expanded)"),
                )
                .help("macros that call other macros several times multiply"),
            );
        }
        return;
    }
    match &c.node {
        Cond::And(a, b) => {
            expand(cx, a, rename, out, depth);
            expand(cx, b, rename, out, depth);
        }
        Cond::Macro(name, _) if BUILTINS.contains(&name.node.as_str()) => out.push(Conjunct {
            cond: c.clone(),
            rename: rename.clone(),
        }),
        Cond::Macro(name, args) if depth < 16 => {
            let Some(m) = cx.macros.get(&name.node).copied() else {
                let hint = vigil_event::suggest(&name.node, cx.macros.keys().map(String::as_str));
                cx.diags.push(Diag::new(
                    name.span.clone(),
                    format!("unknown macro `{}`{hint}", name.node),
                ));
                return;
            };
            if m.params.len() != args.len() {
                cx.diags.push(Diag::new(
                    c.span.clone(),
                    format!(
                        "macro `{}` takes {} event(s), given {}",
                        name.node,
                        m.params.len(),
                        args.len()
                    ),
                ));
                return;
            }
            let mut inner = FxHashMap::default();
            for (p, a) in m.params.iter().zip(args) {
                inner.insert(
                    p.node.clone(),
                    rename
                        .get(&a.node)
                        .cloned()
                        .unwrap_or_else(|| a.node.clone()),
                );
            }
            // The body is checked against the macro's own source span but reported at the call.
            let body = Spanned {
                node: m.body.node.clone(),
                span: c.span.clone(),
            };
            expand(cx, &body, &inner, out, depth + 1);
        }
        Cond::Macro(name, _) => cx.diags.push(Diag::new(
            name.span.clone(),
            "macros nest too deeply (a macro calling itself?)",
        )),
        _ => out.push(Conjunct {
            cond: c.clone(),
            rename: rename.clone(),
        }),
    }
}

/// The event names a condition uses (after macro parameters are renamed), each once.
fn collect_bindings(c: &Cond, rename: &FxHashMap<String, String>, out: &mut Vec<(String, Span)>) {
    let mut add = |name: &Spanned<String>| {
        let n = rename
            .get(&name.node)
            .cloned()
            .unwrap_or_else(|| name.node.clone());
        if !out.iter().any(|(x, _)| *x == n) {
            out.push((n, name.span.clone()));
        }
    };
    let mut add_expr = |e: &Spanned<Expr>| {
        if let Expr::Field { binding, .. } | Expr::Count(binding) = &e.node {
            add(binding);
        }
    };
    match c {
        Cond::Cmp(l, _, r) => {
            add_expr(l);
            add_expr(r);
        }
        Cond::In(e, _) | Cond::Str(e, _, _) | Cond::Has(e, _) => add_expr(e),
        Cond::And(a, b) | Cond::Or(a, b) => {
            collect_bindings(&a.node, rename, out);
            collect_bindings(&b.node, rename, out);
        }
        Cond::Not(a) => collect_bindings(&a.node, rename, out),
        Cond::Macro(_, args) => args.iter().for_each(&mut add),
    }
}

struct Builder<'a, 'c> {
    cx: &'a mut Ctx<'c>,
    bindings: &'a [Binding],
    rename: &'a FxHashMap<String, String>,
}

impl Builder<'_, '_> {
    fn err(&mut self, span: &Span, msg: impl Into<String>) {
        self.cx.diags.push(Diag::new(span.clone(), msg));
    }

    fn binding(&mut self, b: &Spanned<String>) -> Option<usize> {
        let name = self.rename.get(&b.node).unwrap_or(&b.node);
        let found = self.bindings.iter().position(|x| &x.name == name);
        if found.is_none() {
            let hint = vigil_event::suggest(name, self.bindings.iter().map(|x| x.name.as_str()));
            self.err(
                &b.span,
                format!("`{name}` is not an event of this pattern{hint}"),
            );
        }
        found
    }

    /// An expression, its type, and (for fields) the argument kind for naming flags.
    fn expr(&mut self, e: &Spanned<Expr>) -> Option<(CExpr, Type)> {
        self.expr_kind(e).map(|(c, t, _)| (c, t))
    }

    fn expr_kind(&mut self, e: &Spanned<Expr>) -> Option<(CExpr, Type, Option<ArgKind>)> {
        match &e.node {
            Expr::Lit(Lit::Int(i)) => Some((CExpr::Const(Val::Int(*i)), Type::Int, None)),
            Expr::Lit(Lit::Str(s)) => Some((
                CExpr::Const(Val::Str(Str::from(s.as_str()))),
                Type::Str,
                None,
            )),
            Expr::Lit(Lit::Name(n)) => {
                self.err(&e.span, format!("`{n}` is not a value here: strings are quoted, and names of flags, signals and errnos go on the right of a comparison with a field"));
                None
            }
            Expr::Count(b) => {
                let i = self.binding(b)?;
                if !self.bindings[i].rep {
                    self.err(
                        &e.span,
                        format!(
                            "count({}) needs a repeated event, e.g. openat[>5]:{}",
                            b.node, b.node
                        ),
                    );
                    return None;
                }
                Some((CExpr::Count(i), Type::Int, None))
            }
            Expr::Field { binding, path } => {
                let i = self.binding(binding)?;
                if self.bindings[i].classes.is_empty() {
                    return None; // its event type is unknown, which was reported already
                }
                let names: Vec<&str> = path.iter().map(|p| p.node.as_str()).collect();
                match fields::resolve(&self.bindings[i].classes, &names) {
                    Ok((f, t, kind)) => Some((
                        CExpr::Field {
                            b: i,
                            f,
                            slot: usize::MAX,
                        },
                        t,
                        kind,
                    )),
                    Err(m) => {
                        let span = path
                            .first()
                            .map_or(e.span.clone(), |p| p.span.start..e.span.end);
                        self.err(&span, m);
                        None
                    }
                }
            }
        }
    }

    /// A literal on the side of a field: names are flags, signals or errnos of that field.
    fn lit_for(
        &mut self,
        l: &Spanned<Lit>,
        ty: Type,
        kind: Option<ArgKind>,
        field: &CExpr,
    ) -> Option<Val> {
        match &l.node {
            Lit::Int(i) => Some(Val::Int(*i)),
            Lit::Str(s) => Some(Val::Str(Str::from(s.as_str()))),
            Lit::Name(n) => {
                // Fields whose values are names: a bare name is that name (checked in
                // check_call_literal).
                if let CExpr::Field {
                    f:
                        FieldRef::Call
                        | FieldRef::Abi
                        | FieldRef::ViaSyscall
                        | FieldRef::Access
                        | FieldRef::Object
                        | FieldRef::Via
                        | FieldRef::FaultAccess,
                    ..
                } = field
                {
                    return Some(Val::Str(Str::from(n.as_str())));
                }
                if let CExpr::Field {
                    f: FieldRef::Errno, ..
                } = field
                {
                    return if errno_number(n).is_some() {
                        Some(Val::Str(Str::from(n.as_str())))
                    } else {
                        self.err(&l.span, format!("`{n}` is not an errno name"));
                        None
                    };
                }
                if let CExpr::Field {
                    f: FieldRef::Signal,
                    ..
                } = field
                    && let Some(s) = flags::signal_from_name(n)
                {
                    return Some(Val::Int(s));
                }
                if let Some(k) = kind
                    && let Some(v) = flags::parse(k, n)
                {
                    if let CExpr::Field {
                        b,
                        f: FieldRef::Arg(name, fields::Sub::None),
                        ..
                    } = field
                        && fields::distinct_arg_kinds(&self.bindings[*b].classes, name)
                            .iter()
                            .any(|other| flags::parse(*other, n) != Some(v))
                    {
                        self.err(
                            &l.span,
                            format!("`{n}` does not mean the same on every call of this alternative: test it with `has`, or bind the calls separately"),
                        );
                        return None;
                    }
                    return Some(Val::Int(v as i64));
                }
                let _ = ty;
                let hint = kind
                    .map(|k| vigil_event::suggest(n, flags::names(k)))
                    .unwrap_or_default();
                self.err(
                    &l.span,
                    format!("`{n}` is not a name this field knows{hint} (quote strings: \"{n}\")"),
                );
                None
            }
        }
    }

    fn set(
        &mut self,
        set: &Set,
        ty: Type,
        kind: Option<ArgKind>,
        field: &CExpr,
    ) -> Option<Vec<Val>> {
        let items: Vec<Spanned<Lit>> = match set {
            Set::Items(i) => i.clone(),
            Set::List(name) => match self.cx.lists.get(&name.node) {
                Some((items, _)) => items.clone(),
                None => {
                    let hint =
                        vigil_event::suggest(&name.node, self.cx.lists.keys().map(String::as_str));
                    self.err(&name.span, format!("unknown list `{}`{hint}", name.node));
                    return None;
                }
            },
        };
        let mut out = Vec::new();
        for l in &items {
            let v = self.lit_for(l, ty, kind, field)?;
            out.push(v);
        }
        Some(out)
    }

    fn strings(&mut self, vals: Vec<Val>, span: &Span, op: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for v in vals {
            match v {
                // The pattern itself, not its human form (a glob's `\*` stays one).
                Val::Str(s) => out.push(s.to_text().into_owned()),
                other => {
                    self.err(span, format!("`{op}` takes strings, not {other}"));
                    return None;
                }
            }
        }
        Some(out)
    }

    fn cond(&mut self, c: &Spanned<Cond>) -> Option<CCond> {
        Some(match &c.node {
            Cond::And(a, b) => CCond::And(Box::new(self.cond(a)?), Box::new(self.cond(b)?)),
            Cond::Or(a, b) => {
                let (x, y) = (self.cond(a), self.cond(b));
                CCond::Or(Box::new(x?), Box::new(y?))
            }
            Cond::Not(a) => CCond::Not(Box::new(self.cond(a)?)),
            Cond::Macro(name, args) if BUILTINS.contains(&name.node.as_str()) => {
                self.open_for_write(args, &c.span)?
            }
            Cond::Macro(name, _) => {
                self.err(&name.span, "a macro inside `or`/`not` must be written out (macros are expanded in WHERE's top-level conditions)");
                return None;
            }
            Cond::Cmp(l, op, r) => {
                let (le, lt, lk) = self.expr_kind(l)?;
                let (re, rt) = match &r.node {
                    Expr::Lit(lit) => {
                        let v = self.lit_for(
                            &Spanned {
                                node: lit.clone(),
                                span: r.span.clone(),
                            },
                            lt,
                            lk,
                            &le,
                        )?;
                        self.check_call_literal(&le, &v, &r.span)?;
                        let t = match v {
                            Val::Int(_) => Type::Int,
                            _ => Type::Str,
                        };
                        (CExpr::Const(v), t)
                    }
                    _ => self.expr(r)?,
                };
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                let mismatch = lt != Type::Any && rt != Type::Any && lt != rt;
                if mismatch || (ordered && (lt == Type::Str || lt == Type::List || rt == Type::Str))
                {
                    let sym = match op {
                        CmpOp::Eq => "==",
                        CmpOp::Ne => "!=",
                        CmpOp::Lt => "<",
                        CmpOp::Le => "<=",
                        CmpOp::Gt => ">",
                        CmpOp::Ge => ">=",
                    };
                    let lhs = &self.cx_src(l);
                    self.err(
                        &c.span,
                        format!(
                            "type error: `{lhs}` is {}, compared with `{sym}` to {}",
                            lt.name(),
                            rt.name()
                        ),
                    );
                    return None;
                }
                CCond::Cmp(le, *op, re)
            }
            Cond::In(e, set) => {
                let (ce, t, k) = self.expr_kind(e)?;
                let vals = self.set(set, t, k, &ce)?;
                for v in &vals {
                    self.check_call_literal(&ce, v, &e.span)?;
                }
                CCond::In(ce, Arc::new(vals.into_iter().collect()))
            }
            Cond::Str(e, op, set) => {
                let (ce, t, k) = self.expr_kind(e)?;
                let opname = match op {
                    StrOp::Glob => "glob",
                    StrOp::Matches => "matches",
                    StrOp::StartsWith => "startswith",
                    StrOp::EndsWith => "endswith",
                    StrOp::Contains => "contains",
                };
                if t == Type::Int {
                    self.err(
                        &c.span,
                        format!(
                            "type error: `{opname}` works on strings, and `{}` is a number",
                            self.cx_src(e)
                        ),
                    );
                    return None;
                }
                let vals = self.set(set, Type::Str, k, &ce)?;
                let strs = self.strings(vals, &c.span, opname)?;
                match op {
                    StrOp::Glob => {
                        let mut b = GlobSetBuilder::new();
                        for s in &strs {
                            match Glob::new(s) {
                                Ok(g) => {
                                    b.add(g);
                                }
                                Err(err) => {
                                    self.err(&c.span, format!("bad glob `{s}`: {}", err.kind()));
                                    return None;
                                }
                            }
                        }
                        match b.build() {
                            Ok(g) => CCond::Glob(ce, Arc::new(g)),
                            Err(err) => {
                                self.err(&c.span, format!("bad glob: {err}"));
                                return None;
                            }
                        }
                    }
                    StrOp::Matches => {
                        let pattern = strs.join("|");
                        match regex::Regex::new(&pattern) {
                            Ok(re) => CCond::Regex(ce, Arc::new(re)),
                            Err(err) => {
                                self.err(&c.span, format!("bad regular expression: {err}"));
                                return None;
                            }
                        }
                    }
                    StrOp::StartsWith => CCond::Starts(ce, strs.into()),
                    StrOp::EndsWith => CCond::Ends(ce, strs.into()),
                    StrOp::Contains => CCond::Contains(ce, strs.into()),
                }
            }
            Cond::Has(e, names) => {
                let (ce, t, k) = self.expr_kind(e)?;
                if t != Type::Int {
                    self.err(
                        &c.span,
                        format!(
                            "type error: `has` tests flag bits, and `{}` is {}",
                            self.cx_src(e),
                            t.name()
                        ),
                    );
                    return None;
                }
                // The argument may have several kinds across an alternative (open flags on
                // openat, AT_* flags on unlinkat): the names are read in each kind that has
                // them all, and tested only on the events where the argument has that kind.
                let kinds = match &ce {
                    CExpr::Field {
                        b,
                        f: FieldRef::Arg(name, fields::Sub::None),
                        ..
                    } => fields::distinct_arg_kinds(&self.bindings[*b].classes, name),
                    _ => k.into_iter().collect(),
                };
                let mask_in = |kind: ArgKind| -> Option<i64> {
                    let mut mask = 0i64;
                    for n in names {
                        match flags::parse(kind, &n.node) {
                            Some(v) if v != 0 => mask |= v as i64,
                            _ => return None,
                        }
                    }
                    Some(mask)
                };
                let masks: Vec<(ArgKind, i64)> = kinds
                    .iter()
                    .filter_map(|&kind| mask_in(kind).map(|m| (kind, m)))
                    .collect();
                let Some(&(_, first_mask)) = masks.first() else {
                    let bad = names
                        .iter()
                        .find(|n| {
                            k.and_then(|k| flags::parse(k, &n.node))
                                .is_none_or(|v| v == 0)
                        })
                        .unwrap_or(&names[0]);
                    let hint = k
                        .map(|k| vigil_event::suggest(&bad.node, flags::names(k)))
                        .unwrap_or_default();
                    self.err(
                        &bad.span,
                        format!("`{}` is not a flag of this field{hint}", bad.node),
                    );
                    return None;
                };
                let uniform =
                    masks.len() == kinds.len() && masks.iter().all(|(_, m)| *m == first_mask);
                match (&ce, uniform) {
                    (
                        CExpr::Field {
                            b,
                            f: FieldRef::Arg(name, _),
                            slot,
                        },
                        false,
                    ) => {
                        let has = |(kind, mask): (ArgKind, i64)| {
                            CCond::Has(
                                CExpr::Field {
                                    b: *b,
                                    f: FieldRef::ArgAs(name, kind),
                                    slot: *slot,
                                },
                                mask,
                            )
                        };
                        let mut it = masks.into_iter().map(has);
                        let first = it.next()?;
                        it.fold(first, |acc, c| CCond::Or(Box::new(acc), Box::new(c)))
                    }
                    _ => CCond::Has(ce, first_mask),
                }
            }
        })
    }

    /// A literal compared with `call`, `abi`, `type` or a field of names (`access`, `via`,
    /// `object`, `via_syscall`, `fault.access`) must be a value the field can take.
    fn check_call_literal(&mut self, field: &CExpr, v: &Val, span: &Span) -> Option<()> {
        let check: fn(&str) -> Result<(), String> = match field {
            CExpr::Field {
                f: FieldRef::Call | FieldRef::ViaSyscall,
                ..
            } => fields::check_call_name,
            CExpr::Field {
                f: FieldRef::Access,
                ..
            } => fields::check_access_name,
            CExpr::Field {
                f: FieldRef::Object,
                ..
            } => fields::check_object_name,
            CExpr::Field {
                f: FieldRef::Via, ..
            } => fields::check_via_name,
            CExpr::Field {
                f: FieldRef::FaultAccess,
                ..
            } => fields::check_fault_access_name,
            CExpr::Field {
                f: FieldRef::Abi, ..
            } => fields::check_abi_name,
            CExpr::Field {
                f: FieldRef::Type, ..
            } => fields::check_type_name,
            _ => return Some(()),
        };
        if let Val::Str(name) = v
            && let Err(m) = check(&name.to_string())
        {
            self.err(span, m);
            return None;
        }
        Some(())
    }

    /// `open_for_write(e)`: the open-like call `e` may change its file (docs/rules.md).
    fn open_for_write(&mut self, args: &[Spanned<String>], span: &Span) -> Option<CCond> {
        let [arg] = args else {
            self.err(
                span,
                "open_for_write takes one event of the pattern, e.g. open_for_write(o)",
            );
            return None;
        };
        let b = self.binding(arg)?;
        let classes = &self.bindings[b].classes;
        if classes.is_empty() {
            return None; // its event type is unknown, which was reported already
        }
        let opens =
            [Sysno::open, Sysno::openat, Sysno::openat2, Sysno::creat].map(|s| s.id() as u32);
        let can_open = classes.iter().any(|c| match c {
            EventClass::AnyEntry | EventClass::AnyExit => true,
            EventClass::Entry(k) | EventClass::Exit(k) => opens.contains(k),
            _ => false,
        });
        if !can_open {
            self.err(
                span,
                format!(
                    "open_for_write({}) can never be true: `{}` is not an open (open, openat, openat2, creat)",
                    arg.node, arg.node
                ),
            );
            return None;
        }
        Some(CCond::Cmp(
            CExpr::Field {
                b,
                f: FieldRef::OpenForWrite,
                slot: usize::MAX,
            },
            CmpOp::Eq,
            CExpr::Const(Val::Int(1)),
        ))
    }

    fn cx_src(&self, e: &Spanned<Expr>) -> String {
        match &e.node {
            Expr::Field { binding, path } => {
                let mut s = binding.node.clone();
                for p in path {
                    s.push('.');
                    s.push_str(&p.node);
                }
                s
            }
            Expr::Count(b) => format!("count({})", b.node),
            Expr::Lit(Lit::Int(i)) => i.to_string(),
            Expr::Lit(Lit::Str(s)) => format!("\"{s}\""),
            Expr::Lit(Lit::Name(n)) => n.clone(),
        }
    }
}

fn template(cx: &mut Ctx, bindings: &[Binding], o: &Spanned<String>) -> Vec<TemplatePart> {
    let mut parts = Vec::new();
    let mut rest = o.node.as_str();
    while let Some(open) = rest.find('{') {
        parts.push(TemplatePart::Text(rest[..open].to_string()));
        let Some(close) = rest[open..].find('}') else {
            cx.diags
                .push(Diag::new(o.span.clone(), "unclosed `{` in OUTPUT"));
            return parts;
        };
        let inner = rest[open + 1..open + close].trim();
        let mut choices = Vec::new();
        for one in inner.split('|').map(str::trim) {
            let mut it = one.split('.');
            let b = it.next().unwrap_or_default();
            let path: Vec<&str> = it.collect();
            match bindings.iter().position(|x| x.name == b) {
                Some(i) if !path.is_empty() => match fields::resolve(&bindings[i].classes, &path) {
                    Ok((f, _, _)) => choices.push(CExpr::Field {
                        b: i,
                        f,
                        slot: usize::MAX,
                    }),
                    Err(m) => cx.diags.push(Diag::new(
                        o.span.clone(),
                        format!("in OUTPUT {{{inner}}}: {m}"),
                    )),
                },
                _ => cx.diags.push(Diag::new(
                    o.span.clone(),
                    format!("in OUTPUT: `{{{one}}}` is not event.field of this pattern"),
                )),
            }
        }
        parts.push(TemplatePart::Value(choices));
        rest = &rest[open + close + 1..];
    }
    parts.push(TemplatePart::Text(rest.to_string()));
    parts
}

pub fn cond_fields(c: &CCond) -> Vec<(usize, FieldRef)> {
    let mut out = Vec::new();
    fn e(x: &CExpr, out: &mut Vec<(usize, FieldRef)>) {
        if let CExpr::Field { b, f, .. } = x {
            out.push((*b, *f));
        }
    }
    fn walk(c: &CCond, out: &mut Vec<(usize, FieldRef)>) {
        match c {
            CCond::Cmp(a, _, b) => {
                e(a, out);
                e(b, out);
            }
            CCond::In(x, _)
            | CCond::Glob(x, _)
            | CCond::Regex(x, _)
            | CCond::Starts(x, _)
            | CCond::Ends(x, _)
            | CCond::Contains(x, _)
            | CCond::Has(x, _) => e(x, out),
            CCond::And(a, b) | CCond::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            CCond::Not(a) => walk(a, out),
        }
    }
    walk(c, &mut out);
    out
}

fn visit_exprs(c: &mut CCond, f: &dyn Fn(&mut CExpr)) {
    match c {
        CCond::Cmp(a, _, b) => {
            f(a);
            f(b);
        }
        CCond::In(x, _)
        | CCond::Glob(x, _)
        | CCond::Regex(x, _)
        | CCond::Starts(x, _)
        | CCond::Ends(x, _)
        | CCond::Contains(x, _)
        | CCond::Has(x, _) => f(x),
        CCond::And(a, b) | CCond::Or(a, b) => {
            visit_exprs(a, f);
            visit_exprs(b, f);
        }
        CCond::Not(a) => visit_exprs(a, f),
    }
}

/// Value of a condition without events (constants only).
fn eval_const(c: &CCond) -> Option<bool> {
    match c {
        CCond::Cmp(CExpr::Const(a), op, CExpr::Const(b)) => Some(fields::compare(a, *op, b)),
        _ => None,
    }
}

/// Literal constraints on one field that no value can satisfy together.
fn check_contradictions(cx: &mut Ctx, all: &Constraints) {
    for list in all.values() {
        let eqs: Vec<&(CmpOp, Val, Span)> = list.iter().filter(|c| c.0 == CmpOp::Eq).collect();
        let impossible = |why: &str, span: &Span, cx: &mut Ctx| {
            cx.diags.push(Diag::new(
                span.clone(),
                format!("{why}: the rule can never match"),
            ))
        };
        if let Some(first) = eqs.first() {
            if let Some(other) = eqs.iter().find(|c| c.1 != first.1) {
                impossible("this field cannot equal two different values", &other.2, cx);
                continue;
            }
            if let Some(ne) = list.iter().find(|c| c.0 == CmpOp::Ne && c.1 == first.1) {
                impossible(
                    "this field must both equal and differ from the same value",
                    &ne.2,
                    cx,
                );
                continue;
            }
        }
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        for (op, v, _) in list {
            if let Val::Int(x) = v {
                match op {
                    CmpOp::Gt => lo = lo.max(x.saturating_add(1)),
                    CmpOp::Ge => lo = lo.max(*x),
                    CmpOp::Lt => hi = hi.min(x.saturating_sub(1)),
                    CmpOp::Le => hi = hi.min(*x),
                    CmpOp::Eq => {
                        lo = lo.max(*x);
                        hi = hi.min(*x);
                    }
                    CmpOp::Ne => {}
                }
            }
        }
        if lo > hi {
            impossible(
                "no number satisfies these bounds together",
                &list[list.len() - 1].2,
                cx,
            );
        }
    }
}
