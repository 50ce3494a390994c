//! Recursive-descent parser. Errors are recorded and parsing resumes at the next clause or
//! rule, so one run reports every problem of a file. Never panics, whatever the input.

use crate::ast::*;
use crate::diag::Diag;
use crate::lexer::{Tok, lex};

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    end: usize,
    diags: Vec<Diag>,
}

/// Recovery: stop skipping at these.
fn is_clause(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Pattern
            | Tok::Where
            | Tok::Within
            | Tok::Return
            | Tok::Do
            | Tok::Priority
            | Tok::Tags
            | Tok::Output
    )
}

fn is_top(t: &Tok) -> bool {
    matches!(t, Tok::Rule | Tok::List | Tok::Macro)
}

const MAX_DEPTH: usize = 64;

type PResult<T> = Result<T, ()>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.pos + 1).map(|(t, _)| t)
    }

    fn span(&self) -> Span {
        self.toks
            .get(self.pos)
            .map_or(self.end..self.end, |(_, s)| s.clone())
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].1.end
        }
    }

    fn bump(&mut self) -> Option<(Tok, Span)> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn error<T>(&mut self, expected: &str) -> PResult<T> {
        let (msg, span) = match self.toks.get(self.pos) {
            Some((t, s)) => (
                format!("expected {expected}, found {}", t.describe()),
                s.clone(),
            ),
            None => (
                format!("expected {expected}, found the end of the file"),
                self.end..self.end,
            ),
        };
        self.diags.push(Diag::new(span, msg));
        Err(())
    }

    fn expect(&mut self, want: Tok, what: &str) -> PResult<Span> {
        if self.peek() == Some(&want) {
            Ok(self.bump().map_or(0..0, |(_, s)| s))
        } else {
            self.error(what)
        }
    }

    fn ident(&mut self, what: &str) -> PResult<Spanned<String>> {
        match self.peek() {
            Some(Tok::Ident(_)) => match self.bump() {
                Some((Tok::Ident(s), span)) => Ok(Spanned { node: s, span }),
                _ => self.error(what),
            },
            _ => self.error(what),
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == w)
    }

    /// Skips to the next clause keyword or top-level item.
    fn recover(&mut self, stop_at_clause: bool) {
        while let Some(t) = self.peek() {
            if is_top(t) || (stop_at_clause && is_clause(t)) {
                return;
            }
            self.pos += 1;
        }
    }

    fn file(&mut self) -> File {
        let mut f = File::default();
        while let Some(t) = self.peek() {
            match t {
                Tok::Rule => {
                    if let Some(r) = self.rule() {
                        f.rules.push(r);
                    }
                }
                Tok::List => match self.list_def() {
                    Ok(l) => f.lists.push(l),
                    Err(()) => self.recover(false),
                },
                Tok::Macro => match self.macro_def() {
                    Ok(m) => f.macros.push(m),
                    Err(()) => self.recover(false),
                },
                _ => {
                    let _ = self.error::<()>("RULE, LIST or MACRO");
                    self.pos += 1;
                    self.recover(false);
                }
            }
        }
        f
    }

    fn lit(&mut self) -> PResult<Spanned<Lit>> {
        let start = self.span().start;
        let node = match self.peek().cloned() {
            Some(Tok::Int(i)) => {
                self.pos += 1;
                Lit::Int(i)
            }
            Some(Tok::Minus) => {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Int(i)) => {
                        self.pos += 1;
                        Lit::Int(-i)
                    }
                    _ => return self.error("a number after `-`"),
                }
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Lit::Str(s)
            }
            Some(Tok::Ident(s)) => {
                self.pos += 1;
                Lit::Name(s)
            }
            _ => return self.error("a number, a string or a name"),
        };
        Ok(Spanned {
            node,
            span: start..self.prev_end(),
        })
    }

    fn list_def(&mut self) -> PResult<ListDef> {
        self.bump();
        let name = self.ident("the list's name")?;
        self.expect(Tok::Assign, "`=`")?;
        let close = match self.peek() {
            Some(Tok::LBracket) => Tok::RBracket,
            Some(Tok::LParen) => Tok::RParen,
            _ => return self.error("`[` starting the list"),
        };
        self.bump();
        let mut items = Vec::new();
        while self.peek() != Some(&close) {
            items.push(self.lit()?);
            if self.peek() == Some(&Tok::Comma) {
                self.bump();
            } else {
                break;
            }
        }
        self.expect(close, "`]` closing the list")?;
        Ok(ListDef { name, items })
    }

    fn macro_def(&mut self) -> PResult<MacroDef> {
        self.bump();
        let name = self.ident("the macro's name")?;
        self.expect(Tok::LParen, "`(` and the macro's parameters")?;
        let mut params = Vec::new();
        while self.peek() != Some(&Tok::RParen) {
            params.push(self.ident("a parameter name")?);
            if self.peek() == Some(&Tok::Comma) {
                self.bump();
            } else {
                break;
            }
        }
        self.expect(Tok::RParen, "`)`")?;
        self.expect(Tok::Assign, "`=`")?;
        self.expect(Tok::LBrace, "`{`")?;
        let body = self.cond(0)?;
        self.expect(Tok::RBrace, "`}` closing the macro")?;
        Ok(MacroDef { name, params, body })
    }

    fn rule(&mut self) -> Option<RuleDef> {
        let start = self.bump().map_or(0, |(_, s)| s.start);
        let name = match self.ident("the rule's name") {
            Ok(n) => n,
            Err(()) => {
                self.recover(true);
                Spanned {
                    node: String::new(),
                    span: start..self.prev_end(),
                }
            }
        };
        let mut r = RuleDef {
            name,
            ..RuleDef::default()
        };
        while let Some(t) = self.peek().cloned() {
            if !is_clause(&t) {
                if is_top(&t) {
                    break;
                }
                let _ = self.error::<()>(
                    "a clause (PATTERN, WHERE, WITHIN, RETURN, DO, PRIORITY, TAGS, OUTPUT)",
                );
                r.broken = true;
                self.pos += 1;
                self.recover(true);
                continue;
            }
            let kw = self.span();
            self.bump();
            let ok = match t {
                Tok::Pattern => self.pattern_clause(&mut r, kw.clone()),
                Tok::Where => self.where_clause(&mut r),
                Tok::Within => match self.peek().cloned() {
                    Some(Tok::Duration(d)) => {
                        let s = self.span();
                        self.bump();
                        if r.within.is_some() {
                            self.diags
                                .push(Diag::new(kw.clone(), "a second WITHIN clause"));
                        }
                        r.within = Some(Spanned { node: d, span: s });
                        Ok(())
                    }
                    _ => self.error("a duration such as 5s, 250ms, 2m"),
                },
                Tok::Return => self.brace_list(|p| p.expr().map(|e| r.returns.push(e))),
                Tok::Do => self.brace_list(|p| p.action().map(|a| r.actions.push(a))),
                Tok::Priority => match self.peek().cloned() {
                    Some(Tok::Ident(s)) => {
                        let span = self.span();
                        self.bump();
                        r.priority = Some(Spanned { node: s, span });
                        Ok(())
                    }
                    Some(Tok::Int(i)) => {
                        let span = self.span();
                        self.bump();
                        r.priority = Some(Spanned {
                            node: i.to_string(),
                            span,
                        });
                        Ok(())
                    }
                    _ => self.error("a priority (low, medium, high, critical, or a number)"),
                },
                Tok::Tags => self.brace_list(|p| {
                    let span = p.span();
                    match p.bump() {
                        Some((Tok::Ident(s) | Tok::Str(s), _)) => {
                            r.tags.push(Spanned { node: s, span });
                            Ok(())
                        }
                        _ => {
                            p.pos -= 1;
                            p.error("a tag")
                        }
                    }
                }),
                Tok::Output => match self.peek().cloned() {
                    Some(Tok::Str(s)) => {
                        let span = self.span();
                        self.bump();
                        r.output = Some(Spanned { node: s, span });
                        Ok(())
                    }
                    _ => self.error("an output template string"),
                },
                _ => Ok(()),
            };
            if ok.is_err() {
                r.broken = true;
                self.recover(true);
            }
        }
        Some(r)
    }

    /// `{ item, item, ... }`.
    fn brace_list(&mut self, mut item: impl FnMut(&mut Self) -> PResult<()>) -> PResult<()> {
        self.expect(Tok::LBrace, "`{`")?;
        while self.peek() != Some(&Tok::RBrace) {
            item(self)?;
            if self.peek() == Some(&Tok::Comma) {
                self.bump();
            } else {
                break;
            }
        }
        self.expect(Tok::RBrace, "`}`").map(|_| ())
    }

    fn pattern_clause(&mut self, r: &mut RuleDef, kw: Span) -> PResult<()> {
        self.expect(Tok::LBrace, "`{`")?;
        let start = self
            .expect(Tok::LBracket, "`[` starting the sequence")?
            .start;
        let mut elems = Vec::new();
        while self.peek() != Some(&Tok::RBracket) {
            elems.push(self.elem()?);
            if self.peek() == Some(&Tok::Comma) {
                self.bump();
            } else {
                break;
            }
        }
        let end = self.expect(Tok::RBracket, "`,` or `]`")?.end;
        self.expect(Tok::RBrace, "`}`")?;
        if r.pattern.is_some() {
            self.diags.push(Diag::new(kw, "a second PATTERN clause"));
        }
        r.pattern = Some(Spanned {
            node: elems,
            span: start..end,
        });
        Ok(())
    }

    fn elem(&mut self) -> PResult<Elem> {
        let start = self.span().start;
        let negated = if self.peek() == Some(&Tok::Tilde) {
            self.bump();
            true
        } else {
            false
        };
        let mut alts = Vec::new();
        if self.peek() == Some(&Tok::LParen) {
            self.bump();
            loop {
                alts.push(self.ident("an event type")?);
                if self.peek() == Some(&Tok::Pipe) {
                    self.bump();
                } else {
                    break;
                }
            }
            self.expect(Tok::RParen, "`|` or `)`")?;
        } else {
            let mut t =
                self.ident("an event type (a syscall name, syscall, syscallexit, exec, ...)")?;
            // `openat.entry`: the entry of a syscall instead of its exit.
            if self.peek() == Some(&Tok::Dot) {
                self.bump();
                let e = self.ident("`entry`")?;
                t.node = format!("{}.{}", t.node, e.node);
                t.span.end = e.span.end;
            }
            alts.push(t);
        }
        let rep = if self.peek() == Some(&Tok::LBracket) {
            Some(self.rep()?)
        } else {
            None
        };
        let binding = if self.peek() == Some(&Tok::Colon) {
            self.bump();
            Some(self.ident("a name for the event")?)
        } else {
            None
        };
        Ok(Elem {
            negated,
            alts,
            rep,
            binding,
            span: start..self.prev_end(),
        })
    }

    fn int(&mut self, what: &str) -> PResult<u32> {
        match self.peek().cloned() {
            Some(Tok::Int(i)) if (0..=u32::MAX as i64).contains(&i) => {
                self.bump();
                Ok(i as u32)
            }
            _ => self.error(what),
        }
    }

    fn rep(&mut self) -> PResult<Spanned<Rep>> {
        let start = self.bump().map_or(0, |(_, s)| s.start);
        let (min, max) = match self.peek() {
            Some(Tok::Gt) => {
                self.bump();
                let n = self.int("a count")?;
                (n.saturating_add(1), None)
            }
            Some(Tok::Ge) => {
                self.bump();
                (self.int("a count")?, None)
            }
            _ => {
                let n = self.int("a count: [>n], [>=n], [n] or [n..m]")?;
                if self.peek() == Some(&Tok::DotDot) {
                    self.bump();
                    let m = self.int("the upper count of n..m")?;
                    (n, Some(m))
                } else {
                    (n, Some(n))
                }
            }
        };
        let distinct = if self.is_word("distinct") {
            self.bump();
            Some(
                self.ident("the field whose distinct values are counted")?
                    .node,
            )
        } else {
            None
        };
        let end = self.expect(Tok::RBracket, "`]`")?.end;
        Ok(Spanned {
            node: Rep { min, max, distinct },
            span: start..end,
        })
    }

    fn where_clause(&mut self, r: &mut RuleDef) -> PResult<()> {
        self.brace_list(|p| {
            if p.peek() == Some(&Tok::LBracket) {
                p.bump();
                let f = p.ident("a field to join on, such as ProcessId")?;
                p.expect(Tok::RBracket, "`]`")?;
                r.joins.push(f);
                Ok(())
            } else {
                let c = p.cond(0)?;
                r.conds.push(c);
                Ok(())
            }
        })
    }

    fn cond(&mut self, depth: usize) -> PResult<Spanned<Cond>> {
        if depth > MAX_DEPTH {
            return self.error("a shallower condition (nested too deeply)");
        }
        self.binary(depth, "or", Tok::OrOr, Cond::Or, |p, d| {
            p.binary(d, "and", Tok::AndAnd, Cond::And, Self::not_cond)
        })
    }

    /// A chain `next (op next)*`, where `op` is a word or a symbol. `and`/`or` are associative,
    /// so the operands become a balanced tree (evaluated left to right as written): a chain of
    /// thousands of operands must not become a tree thousands of levels deep, which every
    /// recursive pass, and Drop, would walk on the stack.
    fn binary(
        &mut self,
        depth: usize,
        word: &str,
        symbol: Tok,
        make: fn(Box<Spanned<Cond>>, Box<Spanned<Cond>>) -> Cond,
        next: fn(&mut Self, usize) -> PResult<Spanned<Cond>>,
    ) -> PResult<Spanned<Cond>> {
        let mut operands = vec![next(self, depth)?];
        while self.is_word(word) || self.peek() == Some(&symbol) {
            self.bump();
            operands.push(next(self, depth)?);
        }
        match balanced(operands, make) {
            Some(c) => Ok(c),
            None => self.error("a condition"),
        }
    }

    fn not_cond(&mut self, depth: usize) -> PResult<Spanned<Cond>> {
        if depth > MAX_DEPTH {
            return self.error("fewer `not`s in a row (nested too deeply)");
        }
        if self.is_word("not") || self.peek() == Some(&Tok::Bang) {
            let start = self.span().start;
            self.bump();
            let inner = self.not_cond(depth + 1)?;
            let span = start..inner.span.end;
            return Ok(Spanned {
                node: Cond::Not(Box::new(inner)),
                span,
            });
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> PResult<Spanned<Cond>> {
        let start = self.span().start;
        if self.peek() == Some(&Tok::LParen) {
            self.bump();
            let c = self.cond(depth + 1)?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(Spanned {
                node: c.node,
                span: start..self.prev_end(),
            });
        }
        // A macro call: NAME(binding, ...), where NAME is not `count`.
        if let (Some(Tok::Ident(name)), Some(Tok::LParen)) = (self.peek(), self.peek2())
            && name != "count"
        {
            let name = self.ident("a macro name")?;
            self.bump();
            let mut args = Vec::new();
            while self.peek() != Some(&Tok::RParen) {
                args.push(self.ident("an event name")?);
                if self.peek() == Some(&Tok::Comma) {
                    self.bump();
                } else {
                    break;
                }
            }
            self.expect(Tok::RParen, "`)`")?;
            return Ok(Spanned {
                node: Cond::Macro(name, args),
                span: start..self.prev_end(),
            });
        }
        let lhs = self.expr()?;
        let op = match self.peek() {
            Some(Tok::Eq) => Some(CmpOp::Eq),
            Some(Tok::Ne) => Some(CmpOp::Ne),
            Some(Tok::Lt) => Some(CmpOp::Lt),
            Some(Tok::Le) => Some(CmpOp::Le),
            Some(Tok::Gt) => Some(CmpOp::Gt),
            Some(Tok::Ge) => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let rhs = self.expr()?;
            let span = start..rhs.span.end;
            return Ok(Spanned {
                node: Cond::Cmp(lhs, op, rhs),
                span,
            });
        }
        let word = match self.peek() {
            Some(Tok::Ident(w)) => w.clone(),
            _ => return self.error("a comparison (==, !=, <, <=, >, >=, in, glob, matches, startswith, endswith, contains, has)"),
        };
        let str_op = match word.as_str() {
            "glob" => Some(StrOp::Glob),
            "matches" => Some(StrOp::Matches),
            "startswith" => Some(StrOp::StartsWith),
            "endswith" => Some(StrOp::EndsWith),
            "contains" => Some(StrOp::Contains),
            _ => None,
        };
        if word == "in" {
            self.bump();
            let set = self.set()?;
            return Ok(Spanned {
                node: Cond::In(lhs, set),
                span: start..self.prev_end(),
            });
        }
        if let Some(op) = str_op {
            self.bump();
            let set = self.set()?;
            return Ok(Spanned {
                node: Cond::Str(lhs, op, set),
                span: start..self.prev_end(),
            });
        }
        if word == "has" {
            self.bump();
            let mut flags = vec![self.ident("a flag name such as O_CREAT")?];
            while self.peek() == Some(&Tok::Pipe) {
                self.bump();
                flags.push(self.ident("a flag name")?);
            }
            return Ok(Spanned {
                node: Cond::Has(lhs, flags),
                span: start..self.prev_end(),
            });
        }
        self.error("a comparison (==, !=, <, <=, >, >=, in, glob, matches, startswith, endswith, contains, has)")
    }

    /// A string, a list of literals in parentheses or brackets, or a list's name.
    fn set(&mut self) -> PResult<Set> {
        match self.peek().cloned() {
            Some(Tok::Str(_)) => Ok(Set::Items(vec![self.lit()?])),
            Some(Tok::Ident(_)) => Ok(Set::List(self.ident("a list name")?)),
            Some(Tok::LParen) | Some(Tok::LBracket) => {
                let close = if self.peek() == Some(&Tok::LParen) {
                    Tok::RParen
                } else {
                    Tok::RBracket
                };
                self.bump();
                let mut items = Vec::new();
                while self.peek() != Some(&close) {
                    items.push(self.lit()?);
                    if self.peek() == Some(&Tok::Comma) {
                        self.bump();
                    } else {
                        break;
                    }
                }
                self.expect(close, "the end of the list")?;
                Ok(Set::Items(items))
            }
            _ => self.error("a string, a list (\"a\", \"b\") or a list's name"),
        }
    }

    fn expr(&mut self) -> PResult<Spanned<Expr>> {
        let start = self.span().start;
        match (self.peek().cloned(), self.peek2().cloned()) {
            (Some(Tok::Ident(w)), Some(Tok::LParen)) if w == "count" => {
                self.bump();
                self.bump();
                let b = self.ident("an event name")?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(Spanned {
                    node: Expr::Count(b),
                    span: start..self.prev_end(),
                })
            }
            (Some(Tok::Ident(_)), Some(Tok::Dot)) => {
                let binding = self.ident("an event name")?;
                let mut path = Vec::new();
                while self.peek() == Some(&Tok::Dot) {
                    self.bump();
                    path.push(self.ident("a field name")?);
                }
                Ok(Spanned {
                    node: Expr::Field { binding, path },
                    span: start..self.prev_end(),
                })
            }
            _ => {
                let l = self.lit()?;
                Ok(Spanned {
                    node: Expr::Lit(l.node),
                    span: l.span,
                })
            }
        }
    }

    fn action(&mut self) -> PResult<Spanned<ActionDef>> {
        let name = self.ident("an action: exec(...), kill, stop, deny(ERRNO)")?;
        let node = match name.node.as_str() {
            "kill" => ActionDef::Kill,
            "stop" => ActionDef::Stop,
            "deny" => {
                self.expect(Tok::LParen, "`(` and an errno name, e.g. deny(EPERM)")?;
                let e = self.ident("an errno name such as EPERM")?;
                self.expect(Tok::RParen, "`)`")?;
                ActionDef::Deny(e)
            }
            "exec" => {
                self.expect(
                    Tok::LParen,
                    "`(` and the program, e.g. exec(\"/usr/bin/logger\", a.path)",
                )?;
                let mut args = Vec::new();
                while self.peek() != Some(&Tok::RParen) {
                    args.push(self.expr()?);
                    if self.peek() == Some(&Tok::Comma) {
                        self.bump();
                    } else {
                        break;
                    }
                }
                self.expect(Tok::RParen, "`)`")?;
                ActionDef::Exec(args)
            }
            other => {
                let hint = vigil_event::suggest(other, ["exec", "kill", "stop", "deny"]);
                self.diags.push(
                    Diag::new(name.span.clone(), format!("unknown action `{other}`{hint}"))
                        .help("actions: exec(\"program\", args...), kill, stop, deny(EPERM)"),
                );
                return Err(());
            }
        };
        Ok(Spanned {
            node,
            span: name.span.start..self.prev_end(),
        })
    }
}

/// Parses a rule file; the diagnostics are every syntax error found.
pub fn parse(src: &str) -> (File, Vec<Diag>) {
    let (toks, bad) = lex(src);
    // The parser stumbles on whatever follows text the lexer refused (a missing value, a
    // missing duration): that follow-on error says nothing new, so it is not reported.
    // Tokens and refused text both come in source order: binary searches, so a garbage file
    // of many bad characters is not quadratic.
    let follow_on: Vec<usize> = bad
        .iter()
        .map(|(span, _)| {
            let next = toks.partition_point(|(_, s)| s.start < span.end);
            toks.get(next).map_or(src.len(), |(_, s)| s.start)
        })
        .collect();
    let mut diags: Vec<Diag> = bad
        .into_iter()
        .map(|(span, why)| Diag::new(span, why))
        .collect();
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        diags: Vec::new(),
    };
    let file = p.file();
    diags.extend(
        p.diags
            .into_iter()
            .filter(|d| follow_on.binary_search(&d.span.start).is_err()),
    );
    diags.sort_by_key(|d| d.span.start);
    (file, diags)
}

/// Joins operands pairwise, left to right, into a tree of depth log2(n).
fn balanced(
    mut items: Vec<Spanned<Cond>>,
    make: fn(Box<Spanned<Cond>>, Box<Spanned<Cond>>) -> Cond,
) -> Option<Spanned<Cond>> {
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut it = items.into_iter();
        while let Some(left) = it.next() {
            match it.next() {
                Some(right) => {
                    let span = left.span.start..right.span.end;
                    next.push(Spanned {
                        node: make(Box::new(left), Box::new(right)),
                        span,
                    });
                }
                None => next.push(left),
            }
        }
        items = next;
    }
    items.pop()
}
