//! Diagnostics: what is wrong, where (a byte span, shown as line and column with a caret), and
//! a hint. Every error of a file is collected in one pass.

use crate::ast::Span;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diag {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diag {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, h: impl Into<String>) -> Self {
        let h = h.into();
        if !h.is_empty() {
            self.help = Some(h);
        }
        self
    }
}

/// Every problem found in a rule file, with its source for rendering.
#[derive(Debug)]
pub struct Diagnostics {
    pub name: String,
    pub src: String,
    pub list: Vec<Diag>,
}

impl Diagnostics {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.src[..offset.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
            before[nl + 1..].chars().count()
        }) + 1;
        (line, col)
    }

    /// All diagnostics, each with its file:line:column, the source line and a caret under the
    /// offending text (miette's renderer, without colours unless `colour`).
    pub fn render(&self, colour: bool) -> String {
        let theme = if colour {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        for d in &self.list {
            let (line, col) = self.line_col(d.span.start);
            out.push_str(&format!(
                "{}:{line}:{col}: error: {}\n",
                self.name, d.message
            ));
            let one = One {
                d,
                src: NamedSource::new(&self.name, self.src.clone()),
            };
            let mut s = String::new();
            if handler.render_report(&mut s, &one).is_ok() {
                out.push_str(&s);
            }
        }
        out.push_str(&format!(
            "{} error{} in {}\n",
            self.list.len(),
            if self.list.len() == 1 { "" } else { "s" },
            self.name
        ));
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

struct One<'a> {
    d: &'a Diag,
    src: NamedSource<String>,
}

impl fmt::Debug for One<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl fmt::Display for One<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for One<'_> {}

impl Diagnostic for One<'_> {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.d.span.end.saturating_sub(self.d.span.start).max(1);
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            self.d.span.start,
            len,
        ))))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.d
            .help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
}
