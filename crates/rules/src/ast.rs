//! The syntax tree of a rule file, with source spans for diagnostics.

use std::ops::Range;

pub type Span = Range<usize>;

#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct File {
    pub lists: Vec<ListDef>,
    pub macros: Vec<MacroDef>,
    pub rules: Vec<RuleDef>,
}

#[derive(Clone, Debug)]
pub struct ListDef {
    pub name: Spanned<String>,
    pub items: Vec<Spanned<Lit>>,
}

#[derive(Clone, Debug)]
pub struct MacroDef {
    pub name: Spanned<String>,
    pub params: Vec<Spanned<String>>,
    pub body: Spanned<Cond>,
}

#[derive(Clone, Debug, Default)]
pub struct RuleDef {
    pub name: Spanned<String>,
    pub pattern: Option<Spanned<Vec<Elem>>>,
    pub joins: Vec<Spanned<String>>,
    pub conds: Vec<Spanned<Cond>>,
    pub within: Option<Spanned<u64>>,
    pub returns: Vec<Spanned<Expr>>,
    pub actions: Vec<Spanned<ActionDef>>,
    pub priority: Option<Spanned<String>>,
    pub tags: Vec<Spanned<String>>,
    pub output: Option<Spanned<String>>,
    /// A syntax error was found in it: only its name is checked further.
    pub broken: bool,
}

impl Default for Spanned<String> {
    fn default() -> Self {
        Spanned {
            node: String::new(),
            span: 0..0,
        }
    }
}

/// One element of a sequence: an event (or alternative), maybe negated.
#[derive(Clone, Debug)]
pub struct Elem {
    pub negated: bool,
    pub alts: Vec<Spanned<String>>,
    pub rep: Option<Spanned<Rep>>,
    pub binding: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rep {
    pub min: u32,
    pub max: Option<u32>,
    /// Count distinct values of this field instead of events.
    pub distinct: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Lit {
    Int(i64),
    Str(String),
    /// A bare name: a flag, signal or errno name, resolved against the field it is compared with.
    Name(String),
}

#[derive(Clone, Debug)]
pub enum Expr {
    /// `a.path`, `a.fd.path`, `a.SyscallNr`.
    Field {
        binding: Spanned<String>,
        path: Vec<Spanned<String>>,
    },
    Lit(Lit),
    /// `count(a)`.
    Count(Spanned<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
pub enum StrOp {
    Glob,
    Matches,
    StartsWith,
    EndsWith,
    Contains,
}

/// The right side of `in`, `glob`...: literals, or the name of a list.
#[derive(Clone, Debug)]
pub enum Set {
    Items(Vec<Spanned<Lit>>),
    List(Spanned<String>),
}

#[derive(Clone, Debug)]
pub enum Cond {
    Cmp(Spanned<Expr>, CmpOp, Spanned<Expr>),
    In(Spanned<Expr>, Set),
    Str(Spanned<Expr>, StrOp, Set),
    Has(Spanned<Expr>, Vec<Spanned<String>>),
    And(Box<Spanned<Cond>>, Box<Spanned<Cond>>),
    Or(Box<Spanned<Cond>>, Box<Spanned<Cond>>),
    Not(Box<Spanned<Cond>>),
    Macro(Spanned<String>, Vec<Spanned<String>>),
}

#[derive(Clone, Debug)]
pub enum ActionDef {
    Exec(Vec<Spanned<Expr>>),
    Kill,
    Stop,
    Deny(Spanned<String>),
}
