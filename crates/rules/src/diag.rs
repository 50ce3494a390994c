//! Diagnostics: what is wrong, where (a byte span, shown as line and column with a caret), and
//! a hint. Every error of a file is collected in one pass.

use crate::ast::Span;
use miette::{Diagnostic, LabeledSpan, SourceCode};
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
        let offset = offset.min(self.src.len());
        let line = self.src[..offset].matches('\n').count() + 1;
        (line, column(&self.src, offset) + 1)
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
        for d in self.list.iter().take(MAX_SHOWN) {
            let (line, col) = self.line_col(d.span.start);
            out.push_str(&format!(
                "{}:{line}:{col}: error: {}\n",
                self.name, d.message
            ));
            let (line_start, line_end) = line_bounds(&self.src, d.span.start);
            if line_end - line_start > LONG_LINE {
                out.push_str(&excerpt(&self.src[line_start..line_end], d, line_start));
                continue;
            }
            let one = One {
                d,
                src: Source {
                    name: &self.name,
                    text: &self.src,
                },
            };
            let mut s = String::new();
            if handler.render_report(&mut s, &one).is_ok() {
                out.push_str(&s);
            }
        }
        if self.list.len() > MAX_SHOWN {
            out.push_str(&format!(
                "... and {} more (the first {MAX_SHOWN} are shown)\n",
                self.list.len() - MAX_SHOWN
            ));
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

/// Errors drawn at most: past that, a file is not a rule file with mistakes but something
/// else, and drawing each (with its line) would take long for nothing.
const MAX_SHOWN: usize = 100;

/// The byte range of the line holding `offset` (without its newline).
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
}

/// 0-based column of `offset` in characters, as editors count (not bytes).
fn column(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let (start, _) = line_bounds(text, offset);
    text.get(start..offset).map_or(0, |t| t.chars().count())
}

/// Longer source lines are shown as an excerpt around the error (miette draws whole lines,
/// and panics on columns past 65,535).
const LONG_LINE: usize = 400;

/// `  | …text around the error…` and a caret under it.
fn excerpt(line: &str, d: &Diag, line_start: usize) -> String {
    let at = d.span.start.saturating_sub(line_start).min(line.len());
    let mut from = at.saturating_sub(60);
    while !line.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (at + 60).min(line.len());
    while !line.is_char_boundary(to) {
        to += 1;
    }
    let lead = if from > 0 { "…" } else { "" };
    let tail = if to < line.len() { "…" } else { "" };
    let caret = lead.chars().count() + line[from..at].chars().count();
    let mut s = format!(
        "  │ {lead}{}{tail}\n  │ {}^ here\n",
        &line[from..to],
        " ".repeat(caret)
    );
    if let Some(h) = &d.help {
        s.push_str(&format!("  help: {h}\n"));
    }
    s
}

/// The rule file for miette, reporting columns in characters as the header line does
/// (miette's own count is in bytes, which differs after non-ASCII text).
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl SourceCode for Source<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column(self.text, inner.span().offset()),
            inner.line_count(),
        )))
    }
}

struct One<'a> {
    d: &'a Diag,
    src: Source<'a>,
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
